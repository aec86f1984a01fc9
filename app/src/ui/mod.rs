//! Everything a browser shows: the HTML shell, the routes, the pages and the route guard.

mod account;
pub mod client;
mod guard;
mod inside;
mod login;
mod next;
pub mod session;
mod sync_hydrate;

use guard::RequireAuth;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Meta, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
use session::{Auth, AuthStatus};
use sync_hydrate::SyncHydrate;

const HOLD_EARLY_SUBMITS: &str = "document.addEventListener('submit', function (e) { \
    if (!document.body.hasAttribute('data-hydrated')) { e.preventDefault(); e.target.setAttribute('data-submit-pending', ''); } \
}, true);";

/// Where the stylesheet is served; the server provides it (its name carries a hash of its content).
#[derive(Clone, Debug)]
pub struct Stylesheet(pub String);

pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy(&options);
    // In the head the server writes, outside what the browser hydrates.
    let stylesheet = use_context::<Stylesheet>()
        .map(|s| s.0)
        .unwrap_or_else(|| format!("/{}/{}.css", options.site_pkg_dir, options.output_name));
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // First, before any other script: a form submitted before the WASM is ready is
                // held back and marked, and the page sends it once hydrated (`ui::login`).
                <script nonce=leptos::nonce::use_nonce() inner_html=HOLD_EARLY_SUBMITS></script>
                <link rel="stylesheet" href=stylesheet/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// Scripts run only from our own origin or with this response's nonce (Leptos puts it on its
/// hydration scripts); WebAssembly may compile; nothing inline otherwise, no plugins, no framing.
/// Under `cargo leptos watch` the live-reload socket is allowed too.
#[cfg(feature = "ssr")]
fn set_content_security_policy(options: &LeptosOptions) {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) else {
        return;
    };
    let live_reload = match std::env::var("LEPTOS_WATCH") {
        Ok(_) => {
            let port = options.reload_external_port.unwrap_or(options.reload_port);
            format!(" ws://*:{port} wss://*:{port}")
        }
        Err(_) => String::new(),
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'{live_reload}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&policy) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let auth = Auth::provide();
    // Effects only run in the browser, after hydration: tests wait for this mark before clicking.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Baton".to_owned() } else { format!("{page} · Baton") }/>
        <Meta name="color-scheme" content="light dark"/>
        <Meta name="description" content="Baton: sign in once, stay signed in safely."/>
        <Router>
            // Children of `Router`, `Routes` and the guard become `AnyView`s: each in `SyncHydrate`,
            // see there why.
            {SyncHydrate(view! {
                <FocusHeadingOnNavigate/>
                <header class="topbar">
                    <A href="/" attr:class="brand">
                        <span class="brand-mark" aria-hidden="true"></span>
                        "Baton"
                    </A>
                    <nav aria-label="Account">
                        <Show when=move || auth.status.get() == AuthStatus::LoggedOut>
                            <A href="/login" attr:class="nav-link">"Log in"</A>
                            <A href="/signup" attr:class="button button-small">"Sign up"</A>
                        </Show>
                        <Show when=move || auth.status.get() == AuthStatus::LoggedIn>
                            <span class="nav-user" data-testid="nav-user">{move || auth.user.get().map(|u| u.username)}</span>
                        </Show>
                    </nav>
                </header>
                <main id="main" class="page">
                    <Routes fallback=|| SyncHydrate(view! { <NotFound/> })>
                        <Route path=path!("") view=|| SyncHydrate(view! { <Home/> })/>
                        <Route path=path!("/login") view=|| SyncHydrate(view! { <login::LoginPage/> })/>
                        <Route path=path!("/signup") view=|| SyncHydrate(view! { <login::SignupPage/> })/>
                        <Route path=path!("/inside") view=|| SyncHydrate(view! { <RequireAuth>{SyncHydrate(view! { <inside::InsidePage/> })}</RequireAuth> })/>
                    </Routes>
                </main>
            })}
        </Router>
    }
}

/// After a navigation inside the app, focus goes to the new page's heading, so a screen reader
/// announces the page and the next Tab starts from its top (as after a full page load).
#[component]
fn FocusHeadingOnNavigate() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        #[cfg(feature = "hydrate")]
        if previous.is_some_and(|p| p != path) {
            request_animation_frame(|| {
                use wasm_bindgen::JsCast;
                if let Some(heading) = document().query_selector("main h1").ok().flatten() {
                    let _ = heading.set_attribute("tabindex", "-1");
                    if let Some(heading) = heading.dyn_ref::<web_sys::HtmlElement>() {
                        let _ = heading.focus();
                    }
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = previous;
        path
    });
}

/// `/`: inside when logged in, else the login page.
#[component]
fn Home() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| match auth.status.get() {
        AuthStatus::LoggedIn => navigate("/inside", replace()),
        AuthStatus::LoggedOut => navigate("/login", replace()),
        AuthStatus::Checking => {}
    });
    view! { <guard::Placeholder/> }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p class="muted">"There is nothing at this address. Check the link, or start again from the home page."</p>
            <A href="/" attr:class="button">"Go to Baton"</A>
        </section>
    }
}

pub(crate) fn replace() -> leptos_router::NavigateOptions {
    leptos_router::NavigateOptions { replace: true, ..Default::default() }
}
