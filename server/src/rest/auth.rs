//! `/api/auth/*`: signup, login, refresh, logout, sessions and password reset, for any client
//! that speaks JSON.

use super::extract::{authorization, Authenticated, Client, Json};
use super::no_store;
use crate::AppState;
use app::api::{
    Credentials, LoginResponse, MfaLogin, PasswordResetConfirm, PasswordResetRequest, RefreshRequest,
    RefreshStateResponse, SessionInfo, Signup, TokenResponse,
};
use app::auth::bearer_token;
use app::error::{AppError, ErrorBody};
use axum::body::Bytes;
use axum::extract::{FromRequest as _, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/login/mfa", post(login_mfa))
        .route("/api/auth/refresh", post(refresh).get(refresh_with_bearer))
        .route("/api/auth/refresh/state", post(refresh_state))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/logout-all", post(logout_all))
        .route("/api/auth/sessions", get(sessions))
        .route("/api/auth/sessions/{id}", delete(revoke_session))
        .route("/api/auth/password-reset", post(request_password_reset))
        .route("/api/auth/password-reset/confirm", post(confirm_password_reset))
}

#[utoipa::path(post, path = "/api/auth/signup", tag = "auth", request_body = Signup,
    responses(
        (status = 201, description = "Account created and logged in", body = TokenResponse),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the fields and reasons (`username`, `password`, `email`)", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: this address signs up too often; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn signup(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<Signup>,
) -> Result<Response, AppError> {
    Ok(no_store(StatusCode::CREATED, s.auth.signup(&body, &client).await?))
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Logged in: a new session (`TokenResponse`). For an account with one-time codes, \
            no tokens yet but `{mfaRequired: true, challenge, methods}` (`MfaChallenge`): send the challenge and a code \
            to `/api/auth/login/mfa`", body = LoginResponse),
        (status = 401, description = "`invalid_credentials`, the same for unknown users and wrong passwords", body = ErrorBody),
        (status = 422, description = "`invalid_input`", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: this address, or this username after failed attempts, must wait `Retry-After` seconds", body = ErrorBody),
    ))]
pub async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<Credentials>,
) -> Result<Response, AppError> {
    Ok(no_store(StatusCode::OK, s.auth.login(&body, &client).await?))
}

#[utoipa::path(post, path = "/api/auth/login/mfa", tag = "auth", request_body = MfaLogin,
    responses(
        (status = 200, description = "Logged in: a new session", body = TokenResponse),
        (status = 401, description = "`invalid_code`: wrong, or used already (the challenge stays, for 5 tries); \
            `invalid_mfa_challenge`: unknown, used, expired, out of tries, or from another client: log in again", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: this address, or this account after wrong passwords or codes, must wait `Retry-After` seconds", body = ErrorBody),
    ))]
pub async fn login_mfa(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<MfaLogin>,
) -> Result<Response, AppError> {
    Ok(no_store(StatusCode::OK, s.auth.login_mfa(&body, &client).await?))
}

#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the presented refresh token is spent", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token`: unknown, expired, revoked or reused (which revokes the session); a spent token presented again within `REFRESH_REUSE_GRACE` by the client that spent it gets the same pair again (200) instead", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: this address refreshes too often; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "`server_busy`: the database is busy or unreachable; retry after `Retry-After`. The token was almost always not spent, but the database may have failed after it was: a client that must never present a spent token asks `/api/auth/refresh/state` first", body = ErrorBody),
    ))]
pub async fn refresh(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<RefreshRequest>,
) -> Result<Response, AppError> {
    Ok(no_store(StatusCode::OK, s.auth.refresh(&body.refresh_token, &client).await?))
}

#[utoipa::path(get, path = "/api/auth/refresh", tag = "auth", security(("refreshToken" = [])),
    responses(
        (status = 200, description = "As POST, with the refresh token as `Authorization: Bearer`", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token`", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: this address refreshes too often; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn refresh_with_bearer(
    State(s): State<AppState>,
    Client(client): Client,
    parts: Parts,
) -> Result<Response, AppError> {
    let token = bearer_token(authorization(&parts)).ok_or(AppError::InvalidRefreshToken)?;
    Ok(no_store(StatusCode::OK, s.auth.refresh(token, &client).await?))
}

#[utoipa::path(post, path = "/api/auth/refresh/state", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "What became of a refresh token whose renewal got no answer, without spending it: \
            `unspent` (the renewal never arrived: refresh with it), `replayable` (spent a moment ago by this client: \
            refreshing with it again returns the same pair), `spent` (its answer cannot be had again: the session \
            has ended, recorded as `refresh_lost`, not as reuse). With a DPoP proof by the session's key, as a refresh", body = RefreshStateResponse),
        (status = 401, description = "`invalid_refresh_token`: unknown, expired or revoked; `invalid_dpop_proof`", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: counted with refreshes; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "`server_busy`: retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn refresh_state(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<RefreshRequest>,
) -> Result<Response, AppError> {
    let state = s.auth.refresh_state(&body.refresh_token, &client).await?;
    Ok(no_store(StatusCode::OK, RefreshStateResponse { state }))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<RefreshRequest>, description = "Or send the refresh token as `Authorization: Bearer`"),
    responses(
        (status = 204, description = "The session is revoked (also when it already was)"),
        (status = 401, description = "`invalid_refresh_token`: no refresh token given", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    ))]
pub async fn logout(
    State(s): State<AppState>,
    Client(client): Client,
    parts: Parts,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    // No body, or a JSON `null` (the document declares the body optional): the Bearer header.
    let token = if body.is_empty() || body.trim_ascii() == b"null" {
        bearer_token(authorization(&parts)).ok_or(AppError::InvalidRefreshToken)?.to_owned()
    } else {
        let req = axum::http::Request::from_parts(parts, axum::body::Body::from(body));
        let Json(RefreshRequest { refresh_token }) = Json::from_request(req, &()).await?;
        refresh_token
    };
    s.auth.logout(&token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/auth/logout-all", tag = "auth", security(("accessToken" = [])),
    responses(
        (status = 204, description = "Every session of the user is revoked"),
        (status = 401, description = "`invalid_token`", body = ErrorBody),
    ))]
pub async fn logout_all(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
) -> Result<StatusCode, AppError> {
    s.auth.logout_all(&who, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("accessToken" = [])),
    responses(
        (status = 200, description = "The user's live sessions, most recently used first; `lastUsedAt` to the minute", body = Vec<SessionInfo>),
        (status = 401, description = "`invalid_token`", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: more than `RATE_LIMIT_SESSIONS` a minute from this address", body = ErrorBody),
    ))]
pub async fn sessions(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
) -> Result<axum::Json<Vec<SessionInfo>>, AppError> {
    Ok(axum::Json(s.auth.sessions(&who, &client).await?))
}

#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth", security(("accessToken" = [])),
    params(("id" = String, Path, description = "A session id from GET /api/auth/sessions")),
    responses(
        (status = 204, description = "Revoked: its tokens stop working at once"),
        (status = 401, description = "`invalid_token`", body = ErrorBody),
        (status = 404, description = "`not_found`: no live session of this user has that id", body = ErrorBody),
    ))]
pub async fn revoke_session(
    State(s): State<AppState>,
    Client(client): Client,
    Authenticated(who): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    s.auth.revoke_session(&who, &id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Always the same answer, in the same time: if an account with a verified email matches the username or address, a link valid for `RESET_TOKEN_TTL` is on its way (at most 3 an hour per account)"),
        (status = 422, description = "`invalid_input`: `login` is longer than 254 characters", body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: more than `RATE_LIMIT_RESET` requests an hour from this address; see `Retry-After`", body = ErrorBody),
        (status = 503, description = "`server_busy`: 1,024 requests wait to be looked up already; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn request_password_reset(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<PasswordResetRequest>,
) -> Result<StatusCode, AppError> {
    s.auth.request_password_reset(&body, &client).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses(
        (status = 200, description = "The password is set; every session of the account ended, its login backoff cleared; a new session for this client (DPoP-bound as for login)", body = TokenResponse),
        (status = 400, description = "`invalid_reset_token`: unknown, used, replaced or expired (the message says which)", body = ErrorBody),
        (status = 401, description = "`invalid_code`: the account has one-time codes and `code` is missing, wrong or used (a link checks 5 codes, then is void)", body = ErrorBody),
        (status = 422, description = "`invalid_input`: the new password breaks a rule (`fields` names `newPassword`)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, description = "`too_many_requests`: counted like logins, or the account's reset links checked 10 codes in the last day; see `Retry-After`", body = ErrorBody),
    ))]
pub async fn confirm_password_reset(
    State(s): State<AppState>,
    Client(client): Client,
    Json(body): Json<PasswordResetConfirm>,
) -> Result<Response, AppError> {
    Ok(no_store(StatusCode::OK, s.auth.confirm_password_reset(&body, &client).await?))
}
