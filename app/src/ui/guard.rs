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
    // The page this guard guards. Its effect can still run once after the router has left it (a
    // logout navigates, then clears the session): it must not send that other page to login.
    let guarded = location.pathname.get_untracked();
    Effect::new(move |_| {
        if auth.status.get() == AuthStatus::LoggedOut && location.pathname.get_untracked() == guarded {
            // The whole address, query included, so the login brings the user back to it.
            let mut here = location.pathname.get_untracked();
            let (search, hash) = (location.search.get_untracked(), location.hash.get_untracked());
            if !search.is_empty() {
                here = format!("{here}?{}", search.trim_start_matches('?'));
            }
            if !hash.is_empty() {
                here = format!("{here}#{}", hash.trim_start_matches('#'));
            }
            navigate(&format!("/login?next={}", super::next::encode(&here)), super::replace());
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
