//! The route guard. While the session is being checked it renders a neutral placeholder, the same
//! on the server and during hydration: no mismatch, and no flash of protected content.

use super::session::{Auth, AuthStatus};
use leptos::prelude::*;

#[component]
pub fn RequireAuth(children: ChildrenFn) -> impl IntoView {
    let auth = Auth::get();
    Effect::new(move |_| {
        if auth.status.get() == AuthStatus::LoggedOut {
            // The whole address, query included, so the login brings the user back to it.
            super::go(&format!("/login?next={}", super::next::encode(&here())));
        }
    });
    view! {
        <Show when=move || auth.status.get() == AuthStatus::LoggedIn fallback=|| view! { <Placeholder/> }>
            {children()}
        </Show>
    }
}

/// This page's path, query and fragment.
fn here() -> String {
    #[cfg(feature = "hydrate")]
    let here = {
        let location = window().location();
        let part = |p: Result<String, _>| p.unwrap_or_default();
        format!("{}{}{}", part(location.pathname()), part(location.search()), part(location.hash()))
    };
    #[cfg(not(feature = "hydrate"))]
    let here = String::new();
    here
}

#[component]
pub fn Placeholder() -> impl IntoView {
    view! {
        <div class="placeholder" role="status" aria-live="polite" aria-busy="true">
            <span class="spinner" aria-hidden="true"></span>
            <span class="visually-hidden">"Checking your session…"</span>
        </div>
    }
}
