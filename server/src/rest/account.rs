//! `/api/account/*`: the user's own account. The current password is asked again for both.

use super::extract::{Authenticated, Client, Json};
use crate::AppState;
use app::api::{AccountDeletion, PasswordChange};
use app::error::{AppError, ErrorBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/account/password", post(change_password)).route("/api/account", delete(delete_account))
}

#[utoipa::path(post, path = "/api/account/password", tag = "account", security(("accessToken" = [])), request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other session of the user is ended, this one stays"),
        (status = 401, description = "`invalid_credentials`: the current password is wrong; `invalid_token`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the new password breaks a rule (`fields` names `newPassword`), or the body has the wrong shape", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many wrong passwords for this account; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn change_password(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<PasswordChange>,
) -> Result<StatusCode, AppError> {
    s.auth.change_password(&who, &body, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/account", tag = "account", security(("accessToken" = [])), request_body = AccountDeletion,
    responses(
        (status = 204, description = "The account, its sessions and tokens are deleted; the username is free again"),
        (status = 401, description = "`invalid_credentials`: the password is wrong; `invalid_token`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the body has the wrong shape", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many wrong passwords for this account; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn delete_account(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<AccountDeletion>,
) -> Result<StatusCode, AppError> {
    s.auth.delete_account(&who, &body, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
