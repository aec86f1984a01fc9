//! The operator's commands (`server <command>`) and `LOG_FORMAT=json`.

use crate::common::*;
use serde_json::{json, Value};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn help_and_usage_errors() {
    let app = spawn_app().await;
    for help in ["help", "--help", "-h"] {
        let out = run_cli(&app, &[help], &[]).await;
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("unlock <username>"), "{}", stdout(&out));
    }
    for bad in [&["frobnicate"][..], &["unlock"], &["unlock", "a", "b"], &["purge", "now"]] {
        let out = run_cli(&app, bad, &[]).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: server"), "{bad:?}");
    }
}

#[tokio::test]
async fn check_config_prints_the_settings_without_the_password_and_fails_on_a_bad_value() {
    let app = spawn_app().await;
    let url = "postgres://baton:hunter2hunter2@127.0.0.1:1/baton";
    let out = run_cli(&app, &["check-config"], &[("DATABASE_URL", url), ("REFRESH_ROTATION", "off")]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("DATABASE_URL=postgres://baton:***@127.0.0.1:1/baton"), "{text}");
    assert!(text.contains("REFRESH_ROTATION=off") && text.contains("ACCESS_TOKEN_TTL=300"), "{text}");
    assert!(!text.contains("hunter2") && !String::from_utf8_lossy(&out.stderr).contains("hunter2"));

    let out = run_cli(&app, &["check-config"], &[("JWT_LEEWAY", "30")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_LEEWAY"));
}

#[tokio::test]
async fn an_operator_unlocks_lists_revokes_and_purges() {
    let app = spawn_app().await;
    let phone = app.signup("alice").await;
    let laptop = app.login("alice").await;
    // Bob's name is guessed at until he must wait; unlocking lets his next attempt through.
    for _ in 0..6 {
        app.post("/api/auth/login", json!({"username": "bob", "password": "wrong password"})).await;
    }
    let res = app.post("/api/auth/login", json!({"username": "bob", "password": "wrong password"})).await;
    assert_error(res, 429, "too_many_requests").await;
    let out = run_cli(&app, &["unlock", "Bob"], &[]).await;
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(0), "Bob: unlocked"));
    let res = app.post("/api/auth/login", json!({"username": "bob", "password": "wrong password"})).await;
    assert_error(res, 401, "invalid_credentials").await;
    let out = run_cli(&app, &["unlock", "carol"], &[]).await;
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(0), "carol: not locked, nothing to do"));

    let out = run_cli(&app, &["sessions", "alice"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("from 127.0.0.1") && l.contains("baton-tests")), "{lines:?}");
    let ids: Vec<String> = lines.iter().map(|l| l.split_whitespace().next().unwrap().to_owned()).collect();
    let (phone_access, laptop_access) = (&phone.access_token, &laptop.access_token);

    // Ending one session ends exactly one of the two.
    assert_eq!(run_cli(&app, &["revoke-session", &ids[1]], &[]).await.status.code(), Some(0));
    let statuses = [app.secret_status(phone_access).await, app.secret_status(laptop_access).await];
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 1, "{statuses:?}");
    assert_eq!(run_cli(&app, &["revoke-session", &ids[1]], &[]).await.status.code(), Some(1), "already ended");
    let out = run_cli(&app, &["revoke-sessions", "alice"], &[]).await;
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(0), "alice: 1 session(s) ended"));
    // Another process ended it: this server believes its cached "alive" for a second at most.
    tokio::time::sleep(std::time::Duration::from_millis(app::auth::LIVENESS_TTL_MS as u64 + 100)).await;
    assert_eq!([app.secret_status(phone_access).await, app.secret_status(laptop_access).await], [401, 401]);
    assert_eq!(run_cli(&app, &["sessions", "nobody"], &[]).await.status.code(), Some(1));

    let out = run_cli(&app, &["purge"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("purged 2 ended session(s)"), "{}", stdout(&out));
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(app.auth.db()).await.unwrap();
    assert_eq!(rows, 0, "both were ended, and went");
    // The security log kept what the operator did.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM security_events WHERE detail = 'by an operator' ORDER BY at")
            .fetch_all(app.auth.db())
            .await
            .unwrap();
    assert_eq!(kinds, ["account_unlocked", "session_revoked", "logout_all"]);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_security_fields() {
    let dir = temp_dir();
    let database_url = fresh_database_url(&dir).await;
    let server = start_binary(&dir, &database_url, &[("LOG_FORMAT", "json")]).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"username": "nobody", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let failed = lines.iter().find(|l| l["event"] == "login_failed").expect("the security event, as JSON");
    assert_eq!(failed["target"], "security");
    assert_eq!(failed["ip"], "127.0.0.1");
    assert_eq!(failed["level"], "WARN");
}
