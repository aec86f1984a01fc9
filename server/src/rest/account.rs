//! `/api/account/*`: the user's own account. The current password is asked again to change the
//! password or the address, to delete the account, and to turn one-time codes on or off.

use super::extract::{Authenticated, Client, Json};
use crate::AppState;
use app::api::{
    Account, AccountDeletion, EmailChange, EmailVerification, PasswordChange, PasswordConfirmation, RecoveryCodes,
    TotpConfirmation, TotpSetup,
};
use app::error::{AppError, ErrorBody};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/account/password", post(change_password))
        .route("/api/account", get(account).delete(delete_account))
        .route("/api/account/email", post(change_email))
        .route("/api/account/email/resend", post(resend_verification))
        .route("/api/account/email/verify", post(verify_email))
        .route("/api/account/totp", post(begin_totp).delete(turn_off_totp))
        .route("/api/account/totp/confirm", post(confirm_totp))
        .route("/api/account/totp/recovery-codes", post(renew_recovery_codes))
}

#[utoipa::path(get, path = "/api/account", tag = "account", security(("accessToken" = [])),
    responses(
        (status = 200, description = "The account: username, email and whether it is verified", body = Account),
        (status = 401, description = "`invalid_token`", body = ErrorBody),
    ))]
pub async fn account(
    State(s): State<AppState>,
    Authenticated(who): Authenticated,
) -> Result<axum::Json<Account>, AppError> {
    Ok(axum::Json(s.auth.account(&who).await?))
}

#[utoipa::path(post, path = "/api/account/email", tag = "account", security(("accessToken" = [])), request_body = EmailChange,
    responses(
        (status = 202, description = "A link to verify the address is on its way (at most 5 an hour). An account with a verified address keeps it, and it is told, until the link is opened; one without takes the new address at once, unverified"),
        (status = 401, description = "`invalid_credentials`: the password is wrong; `invalid_token`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not an address mail can go to (`fields` names `email`)", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many wrong passwords for this account; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn change_email(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<EmailChange>,
) -> Result<StatusCode, AppError> {
    s.auth.change_email(&who, &body, &client).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/account/email/resend", tag = "account", security(("accessToken" = [])),
    responses(
        (status = 202, description = "If the account's address is unverified, or it is changing to another, a new link is on its way (at most 5 an hour)"),
        (status = 401, description = "`invalid_token`", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: more than `RATE_LIMIT_RESET` an hour from this address; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn resend_verification(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
) -> Result<StatusCode, AppError> {
    s.auth.resend_verification(&who, &client).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/account/email/verify", tag = "account", request_body = EmailVerification,
    responses(
        (status = 204, description = "The address the link was sent to is the account's, verified; no login needed"),
        (status = 400, description = "`invalid_verification_token`: unknown, used, replaced by a newer link, or expired", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn verify_email(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<EmailVerification>,
) -> Result<StatusCode, AppError> {
    s.auth.verify_email(&body, &client).await?;
    Ok(StatusCode::NO_CONTENT)
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

#[utoipa::path(post, path = "/api/account/totp", tag = "account", security(("accessToken" = [])), request_body = PasswordConfirmation,
    responses(
        (status = 200, description = "A new secret for the authenticator app (as text, as an `otpauth://` URI and as a QR code). \
            Nothing changes at login until a first code confirms it at `/api/account/totp/confirm`; asking again replaces it", body = TotpSetup),
        (status = 401, description = "`invalid_credentials`: the password is wrong; `invalid_token`", body = ErrorBody),
        (status = 409, description = "`one_time_codes_on`: they are on already (turn them off first)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many wrong passwords for this account; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn begin_totp(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<PasswordConfirmation>,
) -> Result<axum::response::Response, AppError> {
    Ok(super::no_store(StatusCode::OK, s.auth.begin_one_time_codes(&who, &body, &client).await?))
}

#[utoipa::path(post, path = "/api/account/totp/confirm", tag = "account", security(("accessToken" = [])), request_body = TotpConfirmation,
    responses(
        (status = 200, description = "One-time codes are on; ten recovery codes, shown this once", body = RecoveryCodes),
        (status = 401, description = "`invalid_code`: not the app's current code; `invalid_token`", body = ErrorBody),
        (status = 409, description = "`one_time_codes_off`: no setup was begun in the last 15 minutes; `one_time_codes_on`: they are on already", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn confirm_totp(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<TotpConfirmation>,
) -> Result<axum::response::Response, AppError> {
    Ok(super::no_store(StatusCode::OK, s.auth.confirm_one_time_codes(&who, &body.code, &client).await?))
}

#[utoipa::path(post, path = "/api/account/totp/recovery-codes", tag = "account", security(("accessToken" = [])), request_body = PasswordConfirmation,
    responses(
        (status = 200, description = "Ten new recovery codes, shown this once; the old ones no longer work", body = RecoveryCodes),
        (status = 401, description = "`invalid_credentials`: the password is wrong; `invalid_token`", body = ErrorBody),
        (status = 409, description = "`one_time_codes_off`: one-time codes are not on", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many wrong passwords for this account; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn renew_recovery_codes(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<PasswordConfirmation>,
) -> Result<axum::response::Response, AppError> {
    Ok(super::no_store(StatusCode::OK, s.auth.renew_recovery_codes(&who, &body, &client).await?))
}

#[utoipa::path(delete, path = "/api/account/totp", tag = "account", security(("accessToken" = [])), request_body = PasswordConfirmation,
    responses(
        (status = 204, description = "One-time codes are off, and their recovery codes void: logins ask for the password alone"),
        (status = 401, description = "`invalid_credentials`: the password is wrong; `invalid_token`", body = ErrorBody),
        (status = 409, description = "`one_time_codes_off`: they were not on", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many wrong passwords for this account; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn turn_off_totp(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Json(body): Json<PasswordConfirmation>,
) -> Result<StatusCode, AppError> {
    s.auth.turn_off_one_time_codes(&who, &body, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
