//! Rendered pages, remembered. Baton's pages depend on their URL alone: tokens live in the
//! browser, so the server renders the same HTML for everybody (the route guard decides after
//! hydration). Only the Content-Security-Policy nonce must differ per response, so the first
//! render of a URL is kept as a template with its nonce cut out, and every later request gets the
//! template with a fresh nonce: the same bytes a render would give, without rendering.
//!
//! Kept: `GET` answers of status 200 whose policy carries a nonce (pages, not files or JSON),
//! for at most [`CAPACITY`] URLs of at most [`MAX_KEY`] bytes; anything else is rendered each time.

use app::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const CAPACITY: usize = 64;
const MAX_KEY: usize = 512;
/// A rendered page is a few KB; one larger than this is not kept.
const MAX_PAGE: usize = 256 * 1024;

#[derive(Clone, Default)]
pub struct PageCache(Arc<RwLock<HashMap<String, Arc<Template>>>>);

/// A page split where its nonce was: `parts` joined by a new nonce is the page.
struct Template {
    headers: HeaderMap,
    /// The policy, split the same way.
    policy: Vec<String>,
    parts: Vec<Bytes>,
}

pub async fn serve(axum::extract::State(cache): axum::extract::State<PageCache>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let key = req.uri().path_and_query().map_or("/", |p| p.as_str());
    // A mailed link's page carries its token (in the island's props): kept nowhere, not even here.
    if req.uri().query().is_some_and(|q| q.contains("token=")) {
        let mut res = next.run(req).await;
        res.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        return res;
    }
    let hit = cache.0.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned();
    if let Some(template) = hit {
        return template.fill(&fresh_nonce());
    }
    let key = key.to_owned();
    let res = next.run(req).await;
    let Some(nonce) = nonce_of(&res) else { return res };
    if res.status() != StatusCode::OK || key.len() > MAX_KEY || res.headers().contains_key(header::SET_COOKIE) {
        return res;
    }
    // Our own render, a few KB: read whole (a render that fails midway is the same 500 it was).
    let (parts, body) = res.into_parts();
    let Ok(collected) = body.collect().await else { return AppError::Internal.into_response() };
    let bytes = collected.to_bytes();
    if bytes.len() <= MAX_PAGE {
        let mut map = cache.0.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < CAPACITY {
            map.insert(key, Arc::new(Template::cut(&parts.headers, &bytes, &nonce)));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The nonce of a page's policy (`'nonce-…'`), if the response is a page.
fn nonce_of(res: &Response) -> Option<String> {
    let policy = res.headers().get(header::CONTENT_SECURITY_POLICY)?.to_str().ok()?;
    let start = policy.find("'nonce-")? + "'nonce-".len();
    let len = policy[start..].find('\'')?;
    Some(policy[start..start + len].to_owned()).filter(|n| n.len() >= 16)
}

/// 128 random bits, as Leptos makes them.
fn fresh_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

impl Template {
    fn cut(headers: &HeaderMap, body: &Bytes, nonce: &str) -> Self {
        let mut headers = headers.clone();
        let policy = headers
            .remove(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok().map(|p| p.split(nonce).map(str::to_owned).collect()))
            .unwrap_or_default();
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::TRANSFER_ENCODING);
        let mut parts = Vec::new();
        let mut rest = 0;
        let text = body.as_ref();
        let needle = nonce.as_bytes();
        let mut i = 0;
        while i + needle.len() <= text.len() {
            if &text[i..i + needle.len()] == needle {
                parts.push(body.slice(rest..i));
                i += needle.len();
                rest = i;
            } else {
                i += 1;
            }
        }
        parts.push(body.slice(rest..));
        Self { headers, policy, parts }
    }

    fn fill(&self, nonce: &str) -> Response {
        let mut page =
            Vec::with_capacity(self.parts.iter().map(Bytes::len).sum::<usize>() + nonce.len() * self.parts.len());
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                page.extend_from_slice(nonce.as_bytes());
            }
            page.extend_from_slice(part);
        }
        let mut res = Response::new(Body::from(page));
        *res.headers_mut() = self.headers.clone();
        if let Ok(policy) = HeaderValue::from_str(&self.policy.join(nonce)) {
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        res
    }
}
