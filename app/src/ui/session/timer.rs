//! The tab's timers, on the page's own `setTimeout`: what the session, its lock and its store
//! wait with.

use futures::future::{select, Either, FutureExt};
use leptos::prelude::window;
use std::future::Future;

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `work`, or `None` when it has not finished within `ms` milliseconds.
pub async fn within<T>(ms: i32, work: impl Future<Output = T>) -> Option<T> {
    match select(work.boxed_local(), sleep(ms).boxed_local()).await {
        Either::Left((done, _)) => Some(done),
        Either::Right(_) => None,
    }
}
