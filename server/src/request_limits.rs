//! Every request body is read in full before any handler sees it: at most [`MAX_BODY_BYTES`],
//! within `BODY_READ_TIMEOUT`. So no handler, REST or server function, ever waits on a client
//! that trickles its body, and an oversize body is refused before it is stored.

use app::error::AppError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use std::time::Duration;

/// No request to Baton needs more than a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `timeout` is `BODY_READ_TIMEOUT`.
pub async fn read_body_in_time(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    // Most requests (GET, HEAD) have no body: nothing to read, no timer to set.
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return AppError::PayloadTooLarge.into_response();
    }
    let read = Limited::new(body, MAX_BODY_BYTES).collect();
    let bytes = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return AppError::PayloadTooLarge.into_response(),
        Ok(Err(_)) => return AppError::BadRequest("The request body could not be read.".into()).into_response(),
        Err(_) => return AppError::RequestTimeout.into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
