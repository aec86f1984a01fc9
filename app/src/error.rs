//! The one error type of Baton. The REST API, the server functions and the pages all speak it,
//! and it travels as `{"error": "<code>", "message": "<text for people>"}`.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// One rejected input field and why, so forms can show the reason next to the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(into = "ErrorBody", try_from = "ErrorBody")]
pub enum AppError {
    #[error("{message}")]
    InvalidInput { message: String, fields: Vec<FieldError> },
    #[error("That username is already taken.")]
    UsernameTaken,
    // One message for unknown users and wrong passwords alike: it must not reveal which accounts exist.
    #[error("Wrong username or password.")]
    InvalidCredentials,
    #[error("Your session has ended. Please log in again.")]
    InvalidRefreshToken,
    #[error("The access token is missing, invalid or expired.")]
    InvalidToken,
    /// RFC 9449: a DPoP proof missing where the session needs one, or not valid for this request.
    #[error("{0}")]
    InvalidDpopProof(String),
    /// A password-reset link that is unknown, used, replaced or expired; the message says which.
    #[error("{0}")]
    InvalidResetToken(String),
    /// An email-verification link that is unknown, used, expired or for another address.
    #[error("{0}")]
    InvalidVerificationToken(String),
    /// A one-time code or recovery code that is wrong, or already used; the message says which.
    #[error("{0}")]
    InvalidCode(String),
    /// The login's code step after its challenge expired, was used, or came from another client.
    #[error("This sign-in step has expired. Please log in again.")]
    InvalidMfaChallenge,
    /// The request needs one-time codes on (`false`) or off (`true`), and they are not.
    #[error("{}", if *on { "One-time codes are already on. Turn them off first to set up another authenticator." } else { "One-time codes are not on for this account (or their setup was not started)." })]
    OneTimeCodes { on: bool },
    #[error("Not found.")]
    NotFound,
    #[error("This method is not allowed here.")]
    MethodNotAllowed,
    #[error("Too many attempts. Try again in {}.", seconds(*retry_after))]
    TooManyRequests { retry_after: u64 },
    #[error("The server is busy. Try again in {}.", seconds(*retry_after))]
    Busy { retry_after: u64 },
    #[error("The request body is larger than the server accepts.")]
    PayloadTooLarge,
    #[error("The request took too long to arrive.")]
    RequestTimeout,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    BadRequest(String),
    /// Details are logged on the server, never sent: they may hold secrets or internals.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// Only ever made in the browser: the request did not get an answer from Baton.
    #[error("{0}")]
    Network(String),
}

impl AppError {
    /// The machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "invalid_input",
            Self::UsernameTaken => "username_taken",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::InvalidToken => "invalid_token",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::InvalidResetToken(_) => "invalid_reset_token",
            Self::InvalidVerificationToken(_) => "invalid_verification_token",
            Self::InvalidCode(_) => "invalid_code",
            Self::InvalidMfaChallenge => "invalid_mfa_challenge",
            Self::OneTimeCodes { on: true } => "one_time_codes_on",
            Self::OneTimeCodes { on: false } => "one_time_codes_off",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Busy { .. } => "server_busy",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::BadRequest(_) => "bad_request",
            Self::Internal => "internal_error",
            Self::Network(_) => "network_error",
        }
    }

    pub fn status_code(&self) -> u16 {
        match self {
            Self::InvalidInput { .. } => 422,
            Self::UsernameTaken => 409,
            Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::InvalidToken
            | Self::InvalidDpopProof(_)
            | Self::InvalidCode(_)
            | Self::InvalidMfaChallenge => 401,
            Self::OneTimeCodes { .. } => 409,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::TooManyRequests { .. } => 429,
            Self::Busy { .. } => 503,
            Self::PayloadTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::UnsupportedMediaType(_) => 415,
            Self::BadRequest(_) | Self::InvalidResetToken(_) | Self::InvalidVerificationToken(_) => 400,
            Self::Internal | Self::Network(_) => 500,
        }
    }

    /// A 401 that a fresh access token would cure: the client refreshes and retries once.
    pub fn is_expired_access(&self) -> bool {
        matches!(self, Self::InvalidToken)
    }

    /// How long a client should wait before trying again, for the errors that say so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyRequests { retry_after } | Self::Busy { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The session is gone for good: the client clears its tokens.
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::InvalidRefreshToken)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::InvalidInput { message: message.clone(), fields: vec![FieldError { field: field.into(), message }] }
    }

    /// The same error about `field`: a rule checked under one name reported under another.
    pub fn for_field(self, field: &str) -> Self {
        match self {
            Self::InvalidInput { message, mut fields } => {
                fields.iter_mut().for_each(|f| f.field = field.to_owned());
                Self::InvalidInput { message, fields }
            }
            other => other,
        }
    }

    /// The message for one form field, if this error names it.
    pub fn field_message(&self, field: &str) -> Option<&str> {
        match self {
            Self::InvalidInput { fields, .. } => fields.iter().find(|f| f.field == field).map(|f| f.message.as_str()),
            _ => None,
        }
    }

    /// Logs the cause on the server and returns the detail-free [`AppError::Internal`].
    #[cfg(feature = "ssr")]
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(error = %cause, %at, "internal error");
        Self::Internal
    }
}

/// `?` on a database call. Trouble that passes (a full pool, a lost connection, a lock held too
/// long) is a 503 that clients retry, never a code that ends a session; text the database cannot
/// store is the request's fault; the rest is a bug or an outage, logged with its cause chain and
/// where it happened.
#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    #[track_caller]
    fn from(err: sqlx::Error) -> Self {
        let at = std::panic::Location::caller();
        let chain = error_chain(&err);
        match DbFailure::of(&err) {
            DbFailure::Transient => {
                tracing::warn!(error = %chain, %at, "database busy or unreachable: answering 503");
                Self::Busy { retry_after: 1 }
            }
            DbFailure::Unstorable => {
                tracing::info!(error = %chain, %at, "input the database cannot store");
                Self::BadRequest("The request holds characters that cannot be stored.".into())
            }
            DbFailure::Other => {
                tracing::error!(error = %chain, %at, "internal error");
                Self::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
enum DbFailure {
    Transient,
    Unstorable,
    Other,
}

#[cfg(feature = "ssr")]
impl DbFailure {
    fn of(err: &sqlx::Error) -> Self {
        let db = match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
                return Self::Transient
            }
            sqlx::Error::Database(db) => db,
            _ => return Self::Other,
        };
        let code = db.code().unwrap_or_default();
        // The two backends' codes overlap as text ("22021" parses as a number), so ask which spoke.
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            return match code.parse::<i32>().map(|c| c & 0xff) {
                Ok(5 | 6) => Self::Transient,
                _ => Self::Other,
            };
        }
        match code.as_ref() {
            // Serialization failure, deadlock, too many connections, shutting down, a statement
            // cancelled by `statement_timeout` (DB_TIMEOUT), a lock not available.
            "40001" | "40P01" | "53300" | "57P01" | "57P03" | "57014" | "55P03" => Self::Transient,
            // A NUL byte or a character the encoding lacks.
            "22021" | "22P05" => Self::Unstorable,
            _ => Self::Other,
        }
    }
}

/// "outer: inner: innermost", so a log line shows why, not only what.
#[cfg(feature = "ssr")]
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

/// The wire form of [`AppError`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl From<AppError> for ErrorBody {
    fn from(err: AppError) -> Self {
        let retry_after = err.retry_after();
        let fields = match &err {
            AppError::InvalidInput { fields, .. } => fields.clone(),
            _ => Vec::new(),
        };
        ErrorBody { error: err.code().into(), message: err.to_string(), fields, retry_after }
    }
}

impl TryFrom<ErrorBody> for AppError {
    type Error = String;
    fn try_from(body: ErrorBody) -> Result<Self, String> {
        let retry_after = body.retry_after.unwrap_or(1);
        Ok(match body.error.as_str() {
            "invalid_input" => Self::InvalidInput { message: body.message, fields: body.fields },
            "username_taken" => Self::UsernameTaken,
            "invalid_credentials" => Self::InvalidCredentials,
            "invalid_refresh_token" => Self::InvalidRefreshToken,
            "invalid_token" => Self::InvalidToken,
            "invalid_dpop_proof" => Self::InvalidDpopProof(body.message),
            "invalid_reset_token" => Self::InvalidResetToken(body.message),
            "invalid_verification_token" => Self::InvalidVerificationToken(body.message),
            "invalid_code" => Self::InvalidCode(body.message),
            "invalid_mfa_challenge" => Self::InvalidMfaChallenge,
            "one_time_codes_on" => Self::OneTimeCodes { on: true },
            "one_time_codes_off" => Self::OneTimeCodes { on: false },
            "not_found" => Self::NotFound,
            "method_not_allowed" => Self::MethodNotAllowed,
            "too_many_requests" => Self::TooManyRequests { retry_after },
            "server_busy" => Self::Busy { retry_after },
            "payload_too_large" => Self::PayloadTooLarge,
            "request_timeout" => Self::RequestTimeout,
            "unsupported_media_type" => Self::UnsupportedMediaType(body.message),
            "bad_request" => Self::BadRequest(body.message),
            "network_error" => Self::Network(body.message),
            "internal_error" => Self::Internal,
            other => return Err(format!("unknown error code {other:?}")),
        })
    }
}

const UNREADABLE_ANSWER: &str = "Baton's answer did not arrive whole. Check your connection and try again.";

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Request(_) => {
                Self::Network("Could not reach Baton. Check your connection and try again.".into())
            }
            ServerFnErrorErr::Args(e) | ServerFnErrorErr::MissingArg(e) => {
                Self::InvalidInput { message: format!("The request is malformed: {e}"), fields: Vec::new() }
            }
            // On the server, only a request body can fail to deserialize (not UTF-8, say).
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(_) => {
                Self::BadRequest("The request body could not be read: send UTF-8 form data or JSON.".into())
            }
            // What could not be parsed (a proxy's HTML error page, a cut-off answer) is no use to
            // a person: the message says what to do.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Response(_) => Self::Network(UNREADABLE_ANSWER.into()),
            #[cfg(not(feature = "ssr"))]
            ServerFnErrorErr::Response(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::Network(UNREADABLE_ANSWER.into())
            }
            #[cfg(feature = "ssr")]
            other => Self::internal(other),
            // The browser's own client failed before or instead of a call (`ui::client`).
            #[cfg(not(feature = "ssr"))]
            ServerFnErrorErr::ServerError(json) => serde_json::from_str(&json).unwrap_or(Self::Internal),
            #[cfg(not(feature = "ssr"))]
            _ => Self::Internal,
        }
    }
}

#[cfg(feature = "ssr")]
mod http_response {
    use super::{AppError, ErrorBody};
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = StatusCode::from_u16(self.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let retry_after = self.retry_after();
            // RFC 6750 §3 and RFC 9449 §7.1: tell the client which kind of credential failed. Only
            // a refused access token says `invalid_token`: that is the one 401 a refresh cures
            // (a wrong password or an ended session is not, and the browser must not spend a
            // refresh token on it).
            let challenge = match &self {
                AppError::InvalidDpopProof(_) => Some(r#"DPoP error="invalid_dpop_proof", algs="ES256""#),
                AppError::InvalidToken => Some(r#"Bearer error="invalid_token", DPoP algs="ES256""#),
                _ if status == StatusCode::UNAUTHORIZED => Some(r#"Bearer realm="baton""#),
                _ => None,
            };
            let mut res = (status, axum::Json(ErrorBody::from(self))).into_response();
            let headers = res.headers_mut();
            if let Some(challenge) = challenge {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            if let Some(secs) = retry_after {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_survives_the_wire() {
        let all = [
            AppError::invalid_field("username", "too short"),
            AppError::UsernameTaken,
            AppError::InvalidCredentials,
            AppError::InvalidRefreshToken,
            AppError::InvalidToken,
            AppError::InvalidDpopProof("no proof".into()),
            AppError::InvalidCode("wrong".into()),
            AppError::InvalidMfaChallenge,
            AppError::OneTimeCodes { on: true },
            AppError::OneTimeCodes { on: false },
            AppError::NotFound,
            AppError::MethodNotAllowed,
            AppError::TooManyRequests { retry_after: 7 },
            AppError::Busy { retry_after: 2 },
            AppError::PayloadTooLarge,
            AppError::RequestTimeout,
            AppError::UnsupportedMediaType("json only".into()),
            AppError::BadRequest("nope".into()),
            AppError::Internal,
            AppError::Network("offline".into()),
        ];
        for err in all {
            let json = serde_json::to_string(&err).unwrap();
            let body: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(body["error"], err.code());
            assert_eq!(body["message"], err.to_string());
            assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), err);
        }
    }

    #[test]
    fn internal_errors_carry_no_detail() {
        let json = serde_json::to_string(&AppError::Internal).unwrap();
        assert_eq!(
            json,
            r#"{"error":"internal_error","message":"Something went wrong on our side. Please try again."}"#
        );
    }
}
