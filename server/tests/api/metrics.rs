//! `METRICS_ADDR`: Prometheus text on a listener of its own, read back with a Prometheus parser.

use crate::common::*;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s: &&Sample| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_are_scraped_from_their_own_address() {
    let dir = temp_dir();
    let database_url = fresh_database_url(&dir).await;
    let server = start_binary(&dir, &database_url, &[("METRICS_ADDR", "127.0.0.1:0"), ("RATE_LIMIT_LOGIN", "2")]).await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    let metrics_url = log
        .split("metrics on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the address in the log")
        .to_owned();
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| http.post(format!("{}{path}", server.base)).json(&body).send();

    let signup = json!({"username": "alice", "password": PASSWORD});
    let tokens: TokenResponse = post("/api/auth/signup", signup).await.unwrap().json().await.unwrap();
    assert_eq!(
        post("/api/auth/login", json!({"username": "alice", "password": "wrong password"})).await.unwrap().status(),
        401
    );
    assert_eq!(
        post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await.unwrap().status(),
        200
    );
    assert_eq!(
        post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await.unwrap().status(),
        429
    );
    assert_eq!(post("/api/auth/refresh", json!({"refreshToken": tokens.refresh_token})).await.unwrap().status(), 200);
    // Not on the public address.
    assert_eq!(http.get(format!("{}/metrics", server.base)).send().await.unwrap().status(), 404);

    let res = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");

    let requests = |route: &str, status: &str| {
        value(&scrape, "baton_http_requests_total", &[("route", route), ("status", status)])
    };
    assert_eq!(requests("/api/auth/login", "401"), 1.0, "{text}");
    assert_eq!(requests("/api/auth/login", "200"), 1.0);
    assert_eq!(requests("/api/auth/login", "429"), 1.0);
    assert_eq!(requests("/api/auth/signup", "201"), 1.0);
    assert_eq!(
        value(&scrape, "baton_http_request_duration_seconds", &[("route", "/api/auth/refresh")]),
        1.0,
        "one timed refresh"
    );
    for (event, count) in [("signup", 1.0), ("login", 1.0), ("login_failed", 1.0), ("refresh", 1.0)] {
        assert_eq!(value(&scrape, "baton_security_events_total", &[("event", event)]), count, "{event}");
    }
    assert_eq!(value(&scrape, "baton_rate_limited_total", &[("action", "login")]), 1.0);
    assert!(value(&scrape, "baton_hash_wait_seconds", &[]) >= 3.0, "signup, two logins (and the start's dummy hash)");
    assert!(text.contains("baton_db_pool_connections{state=\"idle\"}"), "{text}");
}
