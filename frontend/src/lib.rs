//! Baton's browser entry point. The islands (the interactive parts of the pages), the token store
//! and the refreshing client live in the `app` crate (built here with its `hydrate` feature);
//! Leptos's island script finds each island's function among this module's exports.
#![cfg(target_arch = "wasm32")]

// Nothing here names the islands: without this the crate, and its exports, would not be linked.
#[allow(unused_extern_crates)]
extern crate app;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
