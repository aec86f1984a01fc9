//! Extractors whose every rejection is an [`AppError`], so bad input always gets the JSON error
//! shape with a 4xx status (axum's own rejections answer in plain text).

use crate::AppState;
use app::auth::{ClientInfo, Principal};
use app::error::AppError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;

/// `axum::Json`, with rejections as [`AppError`]: 415 without a JSON content type, 400 for
/// malformed JSON, 422 for well-formed JSON of the wrong shape (unknown or missing fields, an
/// array), 413 for a body over the limit.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match axum::Json::<Object<T>>::from_request(req, state).await {
            Ok(axum::Json(Object(value))) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A body that must be a JSON object: serde also reads a struct from an array, field by position
/// (`["alice", "secret"]` would be a signup), which no client means and the OpenAPI document
/// does not allow.
struct Object<T>(T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::deserialize(deserializer)?;
        T::deserialize(serde_json::Value::Object(map)).map(Object).map_err(D::Error::custom)
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            AppError::UnsupportedMediaType("Send a JSON body with Content-Type: application/json.".into())
        }
        JsonRejection::JsonDataError(e) => AppError::InvalidInput {
            message: format!("The JSON does not have the expected fields: {}", e.body_text()),
            fields: Vec::new(),
        },
        JsonRejection::JsonSyntaxError(e) => {
            AppError::BadRequest(format!("The body is not valid JSON: {}", e.body_text()))
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        other => AppError::BadRequest(other.body_text()),
    }
}

/// The caller of a protected endpoint: a valid access token of a live session.
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let authorization = authorization(parts);
        // Only a DPoP-bound token needs the request's URL and proof; a bearer call skips that work.
        let client =
            if app::auth::presents_dpop(authorization) { client_info(parts, state) } else { ClientInfo::default() };
        state.auth.authenticate(authorization, &client).await.map(Self)
    }
}

/// The raw `Authorization` header; a header that is not text counts as absent.
pub fn authorization(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// User agent and peer address, for the session list and the security log.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(client_info(parts, state)))
    }
}

fn client_info(parts: &Parts, state: &AppState) -> ClientInfo {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    ClientInfo::from_request(&parts.method, &parts.uri, &parts.headers, peer, &state.auth.settings().trusted_proxies)
}
