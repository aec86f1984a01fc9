//! `/api/users/*`: what a logged-in user may see.

use super::extract::Authenticated;
use crate::AppState;
use app::api::{Secret, User};
use app::error::{AppError, ErrorBody};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/users/me", get(me)).route("/api/users/secret", get(secret))
}

#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("accessToken" = [])),
    responses((status = 200, body = User), (status = 401, description = "`invalid_token`", body = ErrorBody)))]
pub async fn me(State(s): State<AppState>, Authenticated(who): Authenticated) -> Result<Json<User>, AppError> {
    Ok(Json(s.auth.me(&who).await?))
}

#[utoipa::path(get, path = "/api/users/secret", tag = "users", security(("accessToken" = [])),
    responses((status = 200, description = "The protected demo resource", body = Secret),
        (status = 401, description = "`invalid_token`", body = ErrorBody)))]
pub async fn secret(State(s): State<AppState>, Authenticated(who): Authenticated) -> Result<Json<Secret>, AppError> {
    let user = s.auth.me(&who).await?;
    Ok(Json(app::auth::secret_for(&user)))
}
