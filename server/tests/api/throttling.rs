//! Throttling: per-address rate limits and per-account login backoff, under concurrent requests.

use crate::common::*;
use futures::future::join_all;
use serde_json::json;
use std::time::Duration;

/// The statuses of `n` concurrent POSTs, in no particular order, each 429 checked for its
/// Retry-After header and JSON body.
async fn concurrent_posts(app: &TestApp, path: &str, bodies: Vec<serde_json::Value>) -> Vec<u16> {
    let responses = join_all(bodies.into_iter().map(|body| app.post(path, body))).await;
    let mut statuses = Vec::new();
    for res in responses {
        let status = res.status().as_u16();
        if status == 429 {
            let retry_after = retry_after(&res);
            assert!(retry_after >= 1);
            let body = assert_error(res, 429, "too_many_requests").await;
            assert_eq!(body["retryAfter"], retry_after);
        }
        statuses.push(status);
    }
    statuses
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

#[tokio::test]
async fn the_login_limit_per_address_holds_under_concurrency() {
    let app = spawn_app_with(|c| {
        c.rate_limits.login = 5;
        trust_local_proxy(c);
    })
    .await;
    // Distinct unknown names, so that only the address limit can refuse them.
    let bodies = (0..20).map(|i| json!({"username": format!("nobody{i}"), "password": "wrong password"})).collect();
    let statuses = concurrent_posts(&app, "/api/auth/login", bodies).await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (5, 15), "{statuses:?}");

    // The server functions share the limit, and answer 429 too, not Leptos's 500.
    let res = app
        .http
        .post(app.url("/api/fn/login"))
        .form(&[("username", "nobody"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));

    // Another client behind the trusted proxy has its own allowance.
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"username": "nobody", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn the_signup_and_refresh_limits_hold_under_concurrency() {
    let app = spawn_app_with(|c| {
        c.rate_limits.signup = 3;
        c.rate_limits.refresh = 20;
    })
    .await;
    let bodies = (0..8).map(|i| json!({"username": format!("user{i}"), "password": PASSWORD})).collect();
    let statuses = concurrent_posts(&app, "/api/auth/signup", bodies).await;
    assert_eq!((count(&statuses, 201), count(&statuses, 429)), (3, 5), "{statuses:?}");

    // Which three got in is the order they reached the limit (on PostgreSQL, its row lock).
    let admitted = statuses.iter().position(|s| *s == 201).unwrap();
    let alice = app.login(&format!("user{admitted}")).await;
    let bodies = (0..30).map(|_| json!({"refreshToken": "brt_unknown"})).collect();
    let statuses = concurrent_posts(&app, "/api/auth/refresh", bodies).await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (20, 10), "{statuses:?}");
    // A refused refresh spends nothing: the token works once the wait is over.
    let res = app.refresh(&alice.refresh_token).await;
    let wait = retry_after(&res);
    assert_eq!(res.status(), 429);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(app.refresh(&alice.refresh_token).await.status(), 200);
}

#[tokio::test]
async fn failed_logins_back_off_per_account_even_under_concurrency() {
    let app = spawn_app_with(|c| c.login_backoff.free_attempts = 3).await;
    app.signup("alice").await;
    for name in ["alice", "no-such-user"] {
        // Three failures are checked freely; the third starts a one-second wait, in which the
        // rest are refused without their passwords being checked.
        let bodies = (0..20).map(|_| json!({"username": name, "password": "wrong password"})).collect();
        let statuses = concurrent_posts(&app, "/api/auth/login", bodies).await;
        assert_eq!((count(&statuses, 401), count(&statuses, 429)), (3, 17), "{name}: {statuses:?}");
    }
    // During the wait even the right password is not checked.
    let res = app.post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await;
    let wait = retry_after(&res);
    assert_error(res, 429, "too_many_requests").await;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    app.login("alice").await;
    // The success reset the count: a wrong password is an ordinary 401 again.
    let res = app.post("/api/auth/login", json!({"username": "alice", "password": "wrong password"})).await;
    assert_error(res, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn consecutive_failures_lock_the_account() {
    let app = spawn_app_with(|c| {
        c.login_backoff.free_attempts = 2;
        c.login_backoff.max_delay = Duration::from_secs(1);
        c.login_backoff.lock_after = 4;
        c.login_backoff.lock_duration = Duration::from_secs(3600);
    })
    .await;
    let user = app.signup("alice").await;
    let wrong = || app.post("/api/auth/login", json!({"username": "Alice", "password": "wrong password"}));
    for attempt in 1..=4 {
        loop {
            let res = wrong().await;
            if res.status() == 401 {
                break;
            }
            assert_eq!(res.status(), 429, "attempt {attempt}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let res = app.post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await;
    let wait = retry_after(&res);
    assert!(wait > 3500, "locked for the lock duration, not the backoff: {wait}");
    assert_error(res, 429, "too_many_requests").await;

    let (kind, user_id): (String, Option<String>) =
        sqlx::query_as("SELECT kind, user_id FROM security_events WHERE kind = 'account_locked'")
            .fetch_one(app.auth.db())
            .await
            .unwrap();
    assert_eq!((kind.as_str(), user_id.as_deref()), ("account_locked", Some(user.user.id.as_str())));
}

/// A flood of guesses from the /64s of one /48 that fills the hashing queue: a user who logged in
/// from their address before goes ahead of it. Hashes are made slow (about 2 s) so that the
/// queue's order, not chance, decides: without the known lane, Alice's turn would come after the
/// guesses queued before her, past the queue's 5 s patience.
#[tokio::test]
async fn a_login_flood_over_a_48_leaves_a_known_users_login_answered() {
    let app = spawn_app_with(|c| {
        trust_local_proxy(c);
        c.rate_limits.login = 30;
        c.argon2 = app::auth::settings::Argon2Settings { memory_kib: 64 * 1024, iterations: 48, parallelism: 1 };
        c.max_concurrent_hashes = 1;
    })
    .await;
    let alice = json!({"username": "alice", "password": PASSWORD});
    let started = std::time::Instant::now();
    let signup = app.http.post(app.url("/api/auth/signup")).header("x-forwarded-for", "198.51.100.7").json(&alice);
    assert_eq!(signup.send().await.unwrap().status(), 201);
    let hash_time = started.elapsed();

    // Six guesses, each from its own /64 of 2001:db8:1::/48; one hashes, five wait.
    let flood = join_all((0..6u32).map(|i| {
        let ip = format!("2001:db8:1:{i:x}::1");
        from_owned(&app, ip, json!({"username": format!("nobody{i}"), "password": "wrong password"}))
    }));
    let flood = tokio::spawn(flood);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let login = app.http.post(app.url("/api/auth/login")).header("x-forwarded-for", "198.51.100.7").json(&alice);
    let res = login.send().await.unwrap();
    let waited = started.elapsed();
    let statuses = flood.await.unwrap();
    assert_eq!(res.status(), 200, "alice waited {waited:?} (one hash: {hash_time:?}); the flood got {statuses:?}");
    assert!(count(&statuses, 503) > 0, "the flood did overflow the queue: {statuses:?}");
}

fn from_owned(
    app: &TestApp,
    ip: String,
    body: serde_json::Value,
) -> impl std::future::Future<Output = u16> + Send + 'static {
    let request = app.http.post(app.url("/api/auth/login")).header("x-forwarded-for", ip).json(&body);
    async move { request.send().await.unwrap().status().as_u16() }
}
