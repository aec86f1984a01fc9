//! The log of a full run of the flows, at the most verbose level, holds no password, token or
//! hash, while it does record every security event.

use crate::common::*;
use crate::mail_sink::MailSink;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn no_password_token_or_hash_reaches_the_log() {
    let dir = temp_dir();
    let database_url = fresh_database_url(&dir).await;
    let sink = MailSink::start();
    let relay = sink.url();
    let env = [
        ("RUST_LOG", "trace"),
        ("REFRESH_REUSE_GRACE", "0"),
        ("LOGIN_FREE_ATTEMPTS", "1"),
        ("RATE_LIMIT_SIGNUP", "3"),
        ("SMTP_URL", &relay),
        ("PUBLIC_URL", "http://baton.test"),
    ];
    let mut server = start_binary(&dir, &database_url, &env).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let wrong_password = "Tr0ub4dor&3 is not it";
    let long_password = format!("{}-too-long", "secret".repeat(30));
    let mut secrets = vec![PASSWORD.to_owned(), wrong_password.to_owned(), long_password.clone()];
    let keep = |tokens: &TokenResponse, secrets: &mut Vec<String>| {
        secrets.extend([tokens.access_token.clone(), tokens.refresh_token.clone()]);
    };

    // Sign up over REST and through a server function; a fourth signup hits the address limit.
    let signup = json!({"username": "alice", "password": PASSWORD});
    let res = http.post(url("/api/auth/signup")).json(&signup).send().await.unwrap();
    let alice: TokenResponse = res.json().await.unwrap();
    keep(&alice, &mut secrets);
    let form = [("username", "bob"), ("password", PASSWORD)];
    let bob: TokenResponse = http.post(url("/api/fn/signup")).form(&form).send().await.unwrap().json().await.unwrap();
    keep(&bob, &mut secrets);
    // An address, verified by its mailed link (as the API and as the page the link opens), then a
    // password reset by link: the links' tokens are secrets like the others.
    let signup = json!({"username": "dave", "password": PASSWORD, "email": "dave@example.com"});
    let dave: TokenResponse =
        http.post(url("/api/auth/signup")).json(&signup).send().await.unwrap().json().await.unwrap();
    keep(&dave, &mut secrets);
    let verify = sink.wait_for("dave@example.com", "Confirm").await.link_token("/verify");
    secrets.push(verify.clone());
    assert_eq!(http.get(url(&format!("/verify?token={verify}"))).send().await.unwrap().status(), 200);
    let res = http.post(url("/api/account/email/verify")).json(&json!({ "token": verify })).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = http.post(url("/api/auth/password-reset")).json(&json!({"login": "dave"})).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let reset = sink.wait_for("dave@example.com", "Reset").await.link_token("/reset");
    secrets.push(reset.clone());
    assert_eq!(http.get(url(&format!("/reset?token={reset}"))).send().await.unwrap().status(), 200);
    let confirm = json!({"token": reset, "newPassword": "a brand new passphrase"});
    let res = http.post(url("/api/auth/password-reset/confirm")).json(&confirm).send().await.unwrap();
    assert_eq!(res.status(), 200);
    keep(&res.json().await.unwrap(), &mut secrets);
    secrets.push("a brand new passphrase".into());
    let res = http
        .post(url("/api/auth/signup"))
        .json(&json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);

    // Failed logins, backoff, bad input that carries a password, then a good login.
    for _ in 0..2 {
        http.post(url("/api/auth/login"))
            .json(&json!({"username": "alice", "password": wrong_password}))
            .send()
            .await
            .unwrap();
    }
    let res = http
        .post(url("/api/auth/login"))
        .json(&json!({"username": "alice", "password": long_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let truncated = format!(r#"{{"username":"alice","password":"{PASSWORD}""#);
    let res = http
        .post(url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(truncated)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let res = http
        .post(url("/api/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let login: TokenResponse = res.json().await.unwrap();
    keep(&login, &mut secrets);

    // Protected calls, a tampered token, refreshes, reuse of a spent token, logouts.
    let access = login.access_token.clone();
    for path in ["/api/users/me", "/api/users/secret", "/api/auth/sessions"] {
        assert_eq!(http.get(url(path)).bearer_auth(&access).send().await.unwrap().status(), 200, "{path}");
    }
    let tampered = format!("{access}x");
    secrets.push(tampered.clone());
    assert_eq!(http.get(url("/api/users/me")).bearer_auth(&tampered).send().await.unwrap().status(), 401);
    let refresh = json!({"refreshToken": login.refresh_token});
    let res = http.post(url("/api/auth/refresh")).json(&refresh).send().await.unwrap();
    let refreshed: TokenResponse = res.json().await.unwrap();
    keep(&refreshed, &mut secrets);
    let res = http.post(url("/api/auth/refresh")).json(&refresh).send().await.unwrap();
    assert_eq!(res.status(), 401, "reuse");
    let res = http.post(url("/api/fn/refresh")).form(&[("refresh_token", &bob.refresh_token)]).send().await.unwrap();
    let bob2: TokenResponse = res.json().await.unwrap();
    keep(&bob2, &mut secrets);
    let logout = json!({"refreshToken": bob2.refresh_token});
    let res = http.post(url("/api/auth/logout")).json(&logout).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = http.post(url("/api/auth/logout-all")).bearer_auth(&alice.access_token).send().await.unwrap();
    assert_eq!(res.status(), 204);

    // The stored hashes are secrets too.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM users").fetch_all(&db).await.unwrap();
    assert!(!hashes.is_empty());
    secrets.extend(hashes);
    db.close().await;

    assert!(server.terminate());
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.lines().count() > 50, "the log is verbose: {} lines", log.lines().count());
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret of {} characters is in the log", secret.len());
    }
    for pattern in ["$argon2", "brt_", "blk_", "eyJ", "Bearer ", "authorization: "] {
        assert!(!log.contains(pattern), "{pattern:?} in the log");
    }
    for event in [
        "signup",
        "rate_limited",
        "login_failed",
        "login_throttled",
        "login",
        "refresh",
        "refresh_token_reuse",
        "logout",
        "logout_all",
        "email_verified",
        "password_reset_requested",
        "password_reset",
    ] {
        assert!(
            log.contains(&format!("event=\"{event}\"")) || log.contains(&format!("event={event}")),
            "no {event} event in the log"
        );
    }
}
