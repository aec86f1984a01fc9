//! Baton's HTTP server: the JSON REST API, the Leptos server functions and server-side rendering,
//! all on one axum router. `main.rs` reads configuration and calls [`serve`]; the integration
//! tests call [`spawn`] on port 0.

pub mod rest;
mod site;

use app::auth::{AuthService, Config};
use axum::extract::FromRef;
use axum::Router;
use leptos::prelude::LeptosOptions;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct AppState {
    pub auth: AuthService,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The whole application: API routes first, then server functions, then the pages.
pub fn router(state: AppState) -> Router {
    let cors = rest::cors(&state.auth.config().cors_origins);
    Router::new()
        .merge(rest::router().layer(cors))
        .merge(site::router(&state))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Starts the auth core and serves on `addr` (port 0 picks a free port) in the background.
/// Returns the bound address; dropping the returned sender shuts the server down.
pub async fn spawn(
    config: Config,
    leptos_options: LeptosOptions,
    addr: SocketAddr,
) -> Result<(SocketAddr, AuthService, tokio::sync::oneshot::Sender<()>), Box<dyn std::error::Error>> {
    let auth = AuthService::start(config).await?;
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState { auth: auth.clone(), leptos_options };
    tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok((bound, auth, stop))
}
