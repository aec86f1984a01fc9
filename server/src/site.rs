//! The Leptos half: server functions at `/api/fn/*` and the server-rendered pages.

use crate::AppState;
use app::error::{AppError, ErrorBody};
use app::{shell, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::{generate_route_list, LeptosRoutes};

pub fn router(state: &AppState) -> Router<AppState> {
    let auth = state.auth.clone();
    let options = state.leptos_options.clone();
    let stylesheet = stylesheet(state);
    let chunks = app::SplitChunks(state.assets.chunks.clone());
    // `leptos_routes_with_context` also mounts every server function at its path, with the context.
    let no_script = no_script_page(&stylesheet.0);
    Router::new()
        .route("/api/{*rest}", any(crate::rest::not_found))
        // The login, signup and password-reset forms post here only when the page's code did not run.
        .route("/login", axum::routing::post(no_script.clone()))
        .route("/signup", axum::routing::post(no_script.clone()))
        .route("/forgot", axum::routing::post(no_script.clone()))
        .route("/reset", axum::routing::post(no_script))
        .route(&format!("/{}/{{file}}", options.site_pkg_dir), get(pkg_file))
        .leptos_routes_with_context(
            state,
            generate_route_list(App),
            move || {
                provide_context(auth.clone());
                provide_context(stylesheet.clone());
                provide_context(chunks.clone());
            },
            move || shell(LeptosOptions::clone(&options)),
        )
        .fallback(fallback(state))
        .layer(middleware::from_fn_with_state(crate::page_cache::PageCache::default(), crate::page_cache::serve))
        .layer(middleware::from_fn(server_fn_responses))
}

/// A file of the site's build: from memory (see `assets`), else the site's usual answer (disk, then 404).
async fn pkg_file(
    State(state): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
    request: Request,
) -> Response {
    if let Some(res) = crate::assets::serve(&state.assets, &file, request.headers()).await {
        return res;
    }
    let uri = request.uri().clone();
    fallback(&state)(uri, State(state), request).await
}

/// Where the pages link the stylesheet (a name with its content's hash, see `assets`).
fn stylesheet(state: &AppState) -> app::Stylesheet {
    let options = &state.leptos_options;
    let plain = || format!("/{}/{}.css", options.site_pkg_dir, options.output_name);
    app::Stylesheet(state.assets.stylesheet.clone().unwrap_or_else(plain))
}

/// What a login or signup form posted without JavaScript gets: the tokens live in the browser's
/// storage, so without the page's code there is nothing to keep them in. Said plainly, with the
/// way back, instead of an empty 405. Nothing of what was posted is read.
fn no_script_page(stylesheet: &str) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let page = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>JavaScript needed · Baton</title><link rel="stylesheet" href="{stylesheet}"></head>
<body><header class="topbar"><a href="/" class="brand"><span class="brand-mark" aria-hidden="true"></span>Baton</a></header>
<main id="main" class="page"><section class="card narrow"><h1>JavaScript needed</h1>
<p>Baton logs you in with code that runs in this page (JavaScript and WebAssembly), which keeps your session safe in this browser. This browser did not run it, so you were not logged in, and nothing you typed was kept.</p>
<p class="muted">Turn on JavaScript for this site, or leave a mode that blocks WebAssembly (such as iOS Lockdown Mode for this site), then try again.</p>
<a class="button" href="/login">Back to log in</a></section></main></body></html>"#
    );
    let page: std::sync::Arc<str> = page.into();
    move || {
        let mut res = axum::response::Html(page.to_string()).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
        std::future::ready(res)
    }
}

/// Files on disk, else the "page not found" page (which links the stylesheet too).
fn fallback(
    state: &AppState,
) -> impl Fn(
    axum::http::Uri,
    axum::extract::State<AppState>,
    Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
       + Clone
       + Send
       + 'static {
    let stylesheet = stylesheet(state);
    leptos_axum::file_and_error_handler_with_context::<AppState, _>(move || provide_context(stylesheet.clone()), shell)
}

/// Leptos answers every server-function error with a 500. Baton's errors say what they are, so
/// a failed login becomes a 401 and bad input a 422, exactly as in the REST API. And token
/// answers must never be cached.
async fn server_fn_responses(req: Request, next: Next) -> Response {
    let is_server_fn = req.uri().path().starts_with("/api/fn/");
    let res = next.run(req).await;
    if !is_server_fn {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    parts.headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if !parts.headers.contains_key("serverfnerror") {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return AppError::Internal.into_response();
    };
    match serde_json::from_slice::<ErrorBody>(&bytes).map(AppError::try_from) {
        Ok(Ok(err)) => {
            let mut res = err.into_response();
            res.headers_mut().insert("serverfnerror", parts.headers["serverfnerror"].clone());
            res
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}
