//! Prometheus metrics (`METRICS_ADDR`, off by default) on a listener of their own, never on the
//! public one: requests by route, method and status with their latency; the auth core's counters
//! (`baton_security_events_total` by event: logins, failed logins, refreshes, grace replays, reuse,
//! revocations …; `baton_rate_limited_total`; the hashing queue's depth, waits and timeouts); and
//! the database pool, read at each scrape.

use app::auth::AuthService;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Instant;
use tokio::net::TcpListener;

/// Seconds: from half a millisecond (a protected call) to a few seconds (a queued hash).
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the process-wide recorder; once per process (the binary, when `METRICS_ADDR` is set),
/// before the router is built. Without it every counter below is a no-op.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    INSTALLED.store(true, std::sync::atomic::Ordering::Release);
    Ok(handle)
}

/// Whether [`install`] ran: the per-request layer is only worth its cost then.
pub fn installed() -> bool {
    INSTALLED.load(std::sync::atomic::Ordering::Acquire)
}

/// Serves `GET /metrics` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, auth: AuthService) -> std::io::Result<()> {
    let app = Router::new().route("/metrics", get(scrape)).with_state((handle, auth));
    axum::serve(listener, app).await
}

async fn scrape(State((handle, auth)): State<(PrometheusHandle, AuthService)>) -> impl IntoResponse {
    let (size, idle) = (auth.db().size() as f64, auth.db().num_idle() as f64);
    metrics::gauge!("baton_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("baton_db_pool_connections", "state" => "in_use").set(size - idle);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
}

/// Counts and times each request to a route, labelled by the route's pattern (so ids in paths
/// make no new series), its method and status. A route layer: it runs after routing.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!("baton_http_request_duration_seconds", "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("baton_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    res
}
