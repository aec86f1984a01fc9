//! The headers every response carries. Pages get a Content-Security-Policy with a fresh nonce
//! from `app::ui::shell`; everything else (JSON, files, errors) gets one that allows nothing.

use crate::settings::HttpSettings;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

const NOTHING_ALLOWED: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const NO_POWERFUL_FEATURES: &str =
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";

/// `Strict-Transport-Security`, made once at start when `HSTS_MAX_AGE` is set.
pub fn hsts(settings: &HttpSettings) -> Option<HeaderValue> {
    let max_age = settings.hsts_max_age?;
    Some(HeaderValue::from_str(&format!("max-age={}; includeSubDomains", max_age.as_secs())).expect("digits"))
}

pub async fn add(State(hsts): State<Option<HeaderValue>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // For browsers too old for CSP's frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("permissions-policy", HeaderValue::from_static(NO_POWERFUL_FEATURES));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(NOTHING_ALLOWED));
    }
    if let Some(hsts) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    res
}
