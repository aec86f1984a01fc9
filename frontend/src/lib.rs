//! Baton's browser entry point. The pages, the token store and the refreshing client live in the
//! `app` crate (built here with its `hydrate` feature); this crate only starts them.
#![cfg(target_arch = "wasm32")]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
