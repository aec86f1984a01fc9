//! Everything a browser shows: the HTML shell, the routes, the pages and the route guard.
//!
//! Pages are rendered on the server; only their interactive parts are islands (`#[island]`), the
//! code the browser downloads: the account links of the top bar, the login and signup forms, the
//! redirect of `/`, and the inside page with its guard, loaded apart (`lazy`) so that the first
//! page a visitor opens does not wait for it. Moving between pages is a page load; every island
//! of a page reads the one [`Auth`] state of the tab.

mod account;
pub mod client;
mod guard;
mod inside;
mod login;
mod next;
mod one_time_codes;
mod recovery;
pub mod session;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;
use session::{Auth, AuthStatus};

/// A form of a lazy island (`data-lazy`) is live only once its own code came (`data-live`), after
/// the page's.
const HOLD_EARLY_SUBMITS: &str = "document.addEventListener('submit', function (e) { var f = e.target; \
    if (!document.body.hasAttribute('data-hydrated') || (f.hasAttribute('data-lazy') && !f.hasAttribute('data-live'))) \
    { e.preventDefault(); f.setAttribute('data-submit-pending', ''); } \
}, true);";

/// When the page's code cannot run (WebAssembly refused, as in iOS Lockdown Mode or by a filter;
/// the code failed to download) the page says so instead of spinning: at once where WebAssembly
/// is missing or the code's loading fails, else if the page is not live a minute after it loaded
/// (a slow network takes long, not that long). A page that goes live hides it again.
const REPORT_LOAD_FAILURE: &str = "(function () { \
    function failed() { \
        if (!document.body || document.body.hasAttribute('data-hydrated')) return; \
        var m = document.getElementById('load-failed'); if (m) m.hidden = false; \
        document.querySelectorAll('.placeholder').forEach(function (p) { p.hidden = true; }); \
    } \
    if (typeof WebAssembly !== 'object') document.addEventListener('DOMContentLoaded', failed); \
    window.addEventListener('unhandledrejection', failed); \
    window.addEventListener('load', function () { setTimeout(failed, 60000); }); \
})();";

/// Where the stylesheet is served; the server provides it (its name carries a hash of its content).
#[derive(Clone, Debug)]
pub struct Stylesheet(pub String);

/// Where the split chunks of the WASM (the lazy islands' code) are served; the server provides
/// them, and the inside page has the browser fetch them with the rest of its first load.
#[derive(Clone, Debug, Default)]
pub struct SplitChunks(pub Vec<String>);

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
                <script nonce=leptos::nonce::use_nonce() inner_html=REPORT_LOAD_FAILURE></script>
                <link rel="stylesheet" href=stylesheet/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
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
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
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
    Auth::provide();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Baton".to_owned() } else { format!("{page} · Baton") }/>
        <Meta name="color-scheme" content="light dark"/>
        <Meta name="description" content="Baton: sign in once, stay signed in safely."/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Baton"
                </A>
                <AccountNav/>
            </header>
            <main id="main" class="page">
                <noscript>
                    <p class="notice" data-testid="needs-script">"Baton needs JavaScript and WebAssembly to log you in \
                        and keep your session safe. Turn on JavaScript for this site to continue."</p>
                </noscript>
                <p id="load-failed" class="notice" role="alert" hidden=true data-testid="load-failed">
                    "This page could not start: its code did not load, or this browser does not run WebAssembly \
                    (iOS Lockdown Mode and some filters block it). Reload the page; if this stays, allow \
                    WebAssembly for this site or use another browser."
                </p>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("") view=|| view! { <Home/> }/>
                    <Route path=path!("/login") view=|| view! { <Title text="Log in"/><login::LoginPage next=next_param()/> }/>
                    <Route path=path!("/signup") view=|| view! { <Title text="Create your account"/><login::SignupPage next=next_param()/> }/>
                    <Route path=path!("/inside") view=|| view! { <Title text="Inside"/><PreloadChunks/><inside::InsideIsland/> }/>
                    <Route path=path!("/forgot") view=|| view! { <Title text="Forgot your password?"/><recovery::ForgotPage/> }/>
                    <Route path=path!("/reset") view=|| view! { <Title text="Choose a new password"/><recovery::ResetPage token=token_param()/> }/>
                    <Route path=path!("/verify") view=|| view! { <Title text="Confirm your email address"/><recovery::VerifyPage token=token_param()/> }/>
                </Routes>
            </main>
        </Router>
        // Last in the page: the island script hydrates islands in document order, waiting for
        // each lazy one, so this one comes after all of them.
        <HydrationMark/>
    }
}

/// In the head: the chunks start downloading with the page, not once the main WASM has run.
/// `crossorigin` as the loader's own `fetch` (CORS mode, same-origin credentials), so the browser
/// uses what it preloaded.
#[component]
fn PreloadChunks() -> impl IntoView {
    let chunks = use_context::<SplitChunks>().unwrap_or_default().0;
    chunks
        .into_iter()
        .map(|href| view! { <Link rel="preload" href as_="fetch" type_="application/wasm" crossorigin="anonymous"/> })
        .collect_view()
}

/// The request's `next` parameter, handed to the form's island as a prop.
fn next_param() -> Option<String> {
    leptos_router::hooks::use_query_map().read_untracked().get("next")
}

/// The `token` of a mailed link, handed to its page's island.
fn token_param() -> String {
    leptos_router::hooks::use_query_map().read_untracked().get("token").unwrap_or_default()
}

/// The top bar's account links (or the logged-in user's name).
#[island]
fn AccountNav() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <nav aria-label="Account">
            <Show when=move || auth.status.get() == AuthStatus::LoggedOut>
                <a href="/login" class="nav-link">"Log in"</a>
                <a href="/signup" class="button button-small">"Sign up"</a>
            </Show>
            <Show when=move || auth.status.get() == AuthStatus::LoggedIn>
                <span class="nav-user" data-testid="nav-user">{move || auth.user.get().map(|u| u.username)}</span>
            </Show>
        </nav>
    }
}

/// Hydrated after every other island of the page: the tab's session is read from storage now
/// (before, every island showed what the server rendered), and `<body data-hydrated>` tells
/// tests, and the page's first script, that the page is live.
#[island]
fn HydrationMark() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    session::hydrated();
}

/// `/`: inside when logged in, else the login page.
#[island]
fn Home() -> impl IntoView {
    let auth = Auth::get();
    Effect::new(move |_| match auth.status.get() {
        AuthStatus::LoggedIn => go("/inside"),
        AuthStatus::LoggedOut => go("/login"),
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

/// Opens `path` (a page of this site) in place of this one, as a redirect does: the Back button
/// does not return to a page that only sent the user on. The notice on display (why the session
/// ended) goes along.
pub(crate) fn go(path: &str) {
    leave(path, true);
}

/// Opens `path` (a page of this site) as a link does, through the same hand-off as [`go`].
#[cfg(feature = "hydrate")]
pub(crate) fn follow(path: &str) {
    leave(path, false);
}

fn leave(path: &str, replace: bool) {
    #[cfg(feature = "hydrate")]
    {
        // Once: an effect that runs again meanwhile (the session shown twice) must not start a
        // second hand-off and a second navigation behind the first.
        thread_local!(static LEAVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if LEAVING.with(|leaving| leaving.replace(true)) {
            return;
        }
        // Unless the page is shown again from the back/forward cache: then it may leave again.
        // (Not at its first showing, which can come after this.)
        let _ = window_event_listener(leptos::ev::pageshow, |ev| {
            if ev.persisted() {
                LEAVING.with(|leaving| leaving.set(false));
            }
        });
        let path = path.to_owned();
        leptos::task::spawn_local(async move {
            session::hand_off().await;
            let location = window().location();
            let _ = if replace { location.replace(&path) } else { location.assign(&path) };
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (path, replace);
}
