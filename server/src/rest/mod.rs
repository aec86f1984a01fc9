//! The JSON REST API. Each feature has its own router; they are merged here, in one place.

mod account;
mod auth;
pub mod extract;
pub mod meta;
mod users;

use crate::AppState;
use app::error::AppError;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(account::router())
        .merge(meta::router())
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
}

/// Tokens and secrets must never sit in a browser or proxy cache.
pub(crate) fn no_store(status: axum::http::StatusCode, body: impl serde::Serialize) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse as _;
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Unknown `/api/…` paths answer in JSON too, not with the HTML 404 page.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// CORS for the REST API, for the origins in `CORS_ORIGINS` only; none by default.
pub fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        // `DPoP`: a browser app on another origin binds its sessions to its key, as Baton's own does.
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::HeaderName::from_static("dpop")])
        // What a client must read to recover: the challenge of a 401, and a server nonce (RFC 9449 §8).
        .expose_headers([header::WWW_AUTHENTICATE, header::HeaderName::from_static("dpop-nonce"), header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}
