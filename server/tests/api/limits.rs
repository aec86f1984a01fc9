//! Request limits (oversize and slow requests are cut off) and the security headers.

use crate::common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `request` on a raw connection and reads until the server answers or closes:
/// `Some(answer)`, or `None` when it closed without a word. Bounded by 10 seconds.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server held the connection open for 10 s");
    (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned())
}

fn status_of(answer: &str) -> u16 {
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn oversize_bodies_are_refused_everywhere_even_without_a_length() {
    let app = spawn_app().await;
    let huge = "x".repeat(20 * 1024);
    for path in ["/api/auth/login", "/api/fn/login", "/login"] {
        let res = app
            .http
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_error(res, 413, "payload_too_large").await;
    }
    // Chunked: no Content-Length to refuse early, so the limit applies while reading.
    let mut request = b"POST /api/fn/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
        transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        .to_vec();
    for _ in 0..20 {
        request.extend_from_slice(format!("400\r\n{}\r\n", "a".repeat(1024)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(&app, &request).await.expect("an answer");
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains(r#""error":"payload_too_large""#), "{answer}");
}

#[tokio::test]
async fn oversize_headers_are_refused() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/healthz")).header("x-filler", "y".repeat(20 * 1024)).send().await.unwrap();
    assert_eq!(res.status(), 431);
    let res = app.http.get(app.url("/healthz")).header("x-filler", "y".repeat(8 * 1024)).send().await.unwrap();
    assert_eq!(res.status(), 200, "headers under the limit pass");
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let app = spawn_app_with_http(|c| {
        c.limits.header_read_timeout = Duration::from_secs(1);
        c.limits.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    // Half a request head, then silence: the connection is closed.
    let started = std::time::Instant::now();
    let answer = raw_exchange(&app, b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await;
    assert!(answer.as_deref().is_none_or(|a| status_of(a) == 408), "{answer:?}");
    // A connection that never sends anything is closed as well.
    assert!(raw_exchange(&app, b"").await.as_deref().is_none_or(|a| status_of(a) == 408));
    // A body that stops arriving gets a 408 in JSON.
    let answer = raw_exchange(
        &app,
        b"POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"user",
    )
    .await
    .expect("an answer");
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(8), "cut off after about a second each");
    // Meanwhile everyone else was served.
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

/// A connection from `local` (127.0.0.2, …: another machine) to the app.
async fn connect_from(app: &TestApp, local: &str) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{local}:0").parse().unwrap())?;
    socket.connect(app.addr).await
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = spawn_app().await;
    let cap = app.http_settings.limits.max_connections_per_address;
    assert!(app.http_settings.limits.max_connections < 1100, "the global cap is what the flood would fill");
    // 1,100 idle sockets from one address: past its cap they are closed.
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match connect_from(&app, "127.0.0.2").await {
            Ok(stream) => idle.push(stream),
            Err(e) => panic!("socket {}: {e} (raise `ulimit -n`; scripts/test.sh does)", idle.len()),
        }
    }
    // Past the cap, a connection has two seconds to send its request (it would get a 503); these
    // send nothing, and are closed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Another address is served at once.
    let res = tokio::time::timeout(Duration::from_secs(3), app.http.get(app.url("/healthz")).send()).await;
    assert_eq!(res.expect("answered within 3 s").unwrap().status(), 200);
    // The flood's sockets beyond the cap were closed: reading them ends at once.
    let mut open = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(2), stream.read(&mut byte)).await.is_err() {
            open += 1;
        }
    }
    assert_eq!(open, cap, "{cap} held open, the rest closed");
}

#[tokio::test]
async fn a_connection_past_the_cap_is_told_to_come_back_not_reset() {
    let app = spawn_app_with_http(|c| c.limits.max_connections_per_address = 8).await;
    // An office behind one address: its first 8 connections are held open by other people.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(connect_from(&app, "127.0.0.4").await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Everyone else there gets an answer an HTTP library can read: 503, when to come back, JSON.
    let client = client_from("127.0.0.4", "baton-tests");
    for _ in 0..20 {
        let res = client.get(app.url("/healthz")).send().await.expect("an answer, not a reset connection");
        assert_eq!(res.headers()["retry-after"], "1");
        assert_error(res, 503, "server_busy").await;
    }
    // A request written whole before the answer is read is answered too.
    let mut raw = connect_from(&app, "127.0.0.4").await.unwrap();
    raw.write_all(b"POST /api/auth/login HTTP/1.1\r\nhost: x\r\ncontent-length: 2000\r\n\r\n").await.unwrap();
    raw.write_all(&[b'x'; 2000]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer))
        .await
        .expect("closed in time")
        .expect("no reset");
    assert_eq!(status_of(&String::from_utf8_lossy(&answer)), 503);
    // Once a place is free, the address is served again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_connection() {
    let app = spawn_app_with_http(|c| {
        c.limits.response_write_timeout = Duration::from_secs(1);
        c.limits.max_connections_per_address = 2;
    })
    .await;
    // Two connections that ask for much and read nothing: 1,000 pipelined requests each (megabytes), with a
    // tiny receive window, so the server's writes stall.
    let request = "GET /api/openapi.json HTTP/1.1\r\nhost: x\r\n\r\n".repeat(400);
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(app.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    // Within the write timeout (and some), the address has its connections back.
    let client = client_from("127.0.0.3", "baton-tests");
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            // Until then the address is told it holds its share (503).
            if let Ok(res) = client.get(app.url("/healthz")).timeout(Duration::from_millis(500)).send().await {
                if res.status() != 503 {
                    return res;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("served again once the stalled responses were abandoned");
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(500), "the stalled connections did hold the cap first");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let first = app.http.get(app.url("/login")).send().await.unwrap();
    let csp = first.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let html = first.text().await.unwrap();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce in the CSP");
    assert!(nonce.len() >= 22, "at least 128 bits: {nonce}");
    assert!(html.contains(&format!(r#"nonce="{nonce}""#)), "the hydration scripts carry the nonce");
    let scripts = html.matches("<script").count();
    assert_eq!(
        html.matches(&format!(r#"<script type="module" nonce="{nonce}""#)).count()
            + html.matches(&format!(r#"<script nonce="{nonce}""#)).count(),
        scripts,
        "every script has the nonce"
    );
    assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"), "{csp}");
    for directive in ["'wasm-unsafe-eval'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    let second = app.http.get(app.url("/login")).send().await.unwrap();
    assert!(
        !second.headers()["content-security-policy"].to_str().unwrap().contains(nonce),
        "a fresh nonce per response"
    );

    for (path, status) in
        [("/login", 200), ("/no/such/page", 404), ("/api/users/me", 401), ("/healthz", 200), ("/api/nothing", 404)]
    {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h["permissions-policy"].to_str().unwrap().contains("camera=()"), "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
        assert!(!h.contains_key("strict-transport-security"), "no HSTS unless configured");
    }
    let res = app.http.get(app.url("/api/users/me")).send().await.unwrap();
    assert!(res.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));

    let https = spawn_app_with_http(|c| c.hsts_max_age = Some(Duration::from_secs(31_536_000))).await;
    let res = https.http.get(https.url("/healthz")).send().await.unwrap();
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
}

/// Pages are rendered once per URL and then served from memory with a fresh nonce: each answer is
/// the render, byte for byte, except its nonce, which the policy and every script agree on.
#[tokio::test]
async fn pages_from_memory_are_the_render_with_a_fresh_nonce_each_time() {
    let app = spawn_app().await;
    let page = |path: &'static str| {
        let http = app.http.clone();
        let url = app.url(path);
        async move {
            let res = http.get(url).send().await.unwrap();
            let status = res.status().as_u16();
            let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
            let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).map(str::to_owned);
            let html = res.text().await.unwrap();
            let nonce = nonce.unwrap_or_else(|| panic!("{path}: a nonce in {csp}"));
            assert_eq!(html.matches(&format!(r#"nonce="{nonce}""#)).count(), html.matches("<script").count(), "{path}");
            (status, nonce.clone(), html.replace(&nonce, "NONCE"))
        }
    };
    let mut nonces = std::collections::HashSet::new();
    for path in ["/login", "/login?next=%2Finside", "/signup", "/no/such/page"] {
        let first = page(path).await;
        for _ in 0..3 {
            let again = page(path).await;
            assert_eq!((again.0, &again.2), (first.0, &first.2), "{path}: the same page");
            assert!(nonces.insert(again.1), "{path}: a nonce never seen before");
        }
    }
    let (plain, next) = (page("/login").await.2, page("/login?next=%2Finside").await.2);
    assert!(next.contains("/signup?next=/inside") && !plain.contains("next="), "the query is part of the page");
}
