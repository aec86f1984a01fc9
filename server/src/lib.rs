//! Baton's HTTP server: the JSON REST API, the Leptos server functions and server-side rendering,
//! all on one axum router. `main.rs` reads configuration and calls [`serve`]; the integration
//! tests call [`spawn`] on port 0.
// The type of a page's view nests as deep as its HTML (islands are not type-erased).
#![recursion_limit = "256"]

mod assets;
pub mod cli;
mod connections;
pub mod memory;
pub mod metrics;
mod page_cache;
mod request_limits;
pub mod rest;
mod security_headers;
pub mod settings;
mod site;

use app::auth::AuthService;
use axum::extract::FromRef;
use axum::{middleware, Router};
use leptos::prelude::LeptosOptions;
use settings::{HttpSettings, Settings};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Cloned several times per request (axum's `State`): one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<StateParts>);

/// What every request may need, behind [`AppState`]'s one `Arc`.
pub struct StateParts {
    pub auth: AuthService,
    pub http: HttpSettings,
    pub leptos_options: std::sync::Arc<LeptosOptions>,
    assets: assets::Assets,
}

impl std::ops::Deref for AppState {
    type Target = StateParts;
    fn deref(&self) -> &StateParts {
        &self.0
    }
}

impl AppState {
    /// Reads the site's build output too (see [`assets`]): the pages link the WASM, its JS and
    /// the stylesheet by names that change with their content.
    pub fn new(auth: AuthService, http: HttpSettings, mut leptos_options: LeptosOptions) -> Self {
        let assets = assets::Assets::load(&leptos_options);
        if let Some(name) = &assets.output_name {
            leptos_options.output_name = name.as_str().into();
        }
        let state = Self(std::sync::Arc::new(StateParts {
            auth,
            http,
            leptos_options: std::sync::Arc::new(leptos_options),
            assets,
        }));
        state.assets.precompress();
        state
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        LeptosOptions::clone(&state.leptos_options)
    }
}

/// The whole application: API routes first, then server functions, then the pages; every
/// response with the security headers, every request body bounded in size and time.
pub fn router(state: AppState) -> Router {
    // No origins, no CORS layer: it would refuse every cross-origin request anyway, at a cost per call.
    let origins = &state.http.cors_origins;
    let api = if origins.is_empty() { rest::router() } else { rest::router().layer(rest::cors(origins)) };
    let router = Router::new().merge(api).merge(site::router(&state));
    // Without a recorder the counters are no-ops, but their labels would still be built.
    let router = if metrics::installed() { router.route_layer(middleware::from_fn(metrics::track)) } else { router };
    router
        .layer(middleware::from_fn_with_state(state.http.limits.body_read_timeout, request_limits::read_body_in_time))
        .layer(middleware::from_fn_with_state(security_headers::hsts(&state.http), security_headers::add))
        // The path, never the query: a mailed link's token rides in it (`/reset?token=…`).
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.http.limits;
    let proxies = state.auth.settings().trusted_proxies.clone();
    connections::serve(listener, router(state), limits, proxies, shutdown).await
}

/// A server running in the background (see [`spawn`]).
pub struct Spawned {
    pub addr: SocketAddr,
    pub auth: AuthService,
    /// Sending (or dropping) it starts a graceful shutdown.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// Ends when the shutdown has finished the requests in flight.
    pub done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the auth core and serves on `addr` (port 0 picks a free port) in the background.
pub async fn spawn(
    settings: Settings,
    leptos_options: LeptosOptions,
    addr: SocketAddr,
) -> Result<Spawned, Box<dyn std::error::Error>> {
    let auth = AuthService::start(settings.auth).await?;
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    auth.listening_at(addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(auth.clone(), settings.http, leptos_options);
    let done = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(Spawned { addr, auth, stop, done })
}
