//! The route guard. While the session is being checked it renders a neutral placeholder, the same
//! on the server and during hydration: no mismatch, and no flash of protected content.

use super::session::{Auth, AuthStatus};
use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_navigate};

#[component]
pub fn RequireAuth(children: ChildrenFn) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = use_navigate();
    let location = use_location();
    Effect::new(move |_| {
        if auth.status.get() == AuthStatus::LoggedOut {
            let here = location.pathname.get_untracked();
            let next = encode_path(&here);
            navigate(&format!("/login?next={next}"), super::replace());
        }
    });
    view! {
        <Show when=move || auth.status.get() == AuthStatus::LoggedIn fallback=|| view! { <Placeholder/> }>
            {children()}
        </Show>
    }
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

/// Percent-encodes a path for a query parameter.
fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
