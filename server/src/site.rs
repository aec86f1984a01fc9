//! The Leptos half: server functions at `/api/fn/*` and the server-rendered pages.

use crate::AppState;
use app::error::{AppError, ErrorBody};
use app::{shell, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};

pub fn router(state: &AppState) -> Router<AppState> {
    let auth = state.auth.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .route("/api/fn/{*name}", any(server_fn))
        .route("/api/{*rest}", any(crate::rest::not_found))
        .leptos_routes_with_context(
            state,
            generate_route_list(App),
            move || provide_context(auth.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
}

async fn server_fn(State(state): State<AppState>, req: Request) -> Response {
    let auth = state.auth.clone();
    let res = handle_server_fns_with_context(move || provide_context(auth.clone()), req)
        .await
        .into_response();
    with_error_status(res).await
}

/// Leptos answers every server-function error with a 500. Baton's errors say what they are, so
/// a failed login becomes a 401 and bad input a 422, exactly as in the REST API.
async fn with_error_status(res: Response) -> Response {
    if !res.headers().contains_key("serverfnerror") {
        let (mut parts, body) = res.into_parts();
        parts.headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        return Response::from_parts(parts, body);
    }
    let (parts, body) = res.into_parts();
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
