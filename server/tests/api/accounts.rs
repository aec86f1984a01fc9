//! Signup, login, and what a failed login may (not) reveal.

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn signup_returns_a_token_pair_that_opens_protected_endpoints() {
    let app = spawn_app().await;
    let res = app.post("/api/auth/signup", json!({"username": "Alice", "password": PASSWORD})).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 300);
    assert_eq!(body["user"]["username"], "Alice");
    assert!(token(&body, "refreshToken").len() >= 43, "256 bits, base64url");

    let me: Value = app.get_with("/api/users/me", &token(&body, "accessToken")).await.json().await.unwrap();
    assert_eq!(me["username"], "Alice");
    assert_eq!(me["id"], body["user"]["id"]);
    assert!(me["createdAt"].as_str().unwrap().ends_with('Z'));
    let secret = app.get_with("/api/users/secret", &token(&body, "accessToken")).await;
    assert_eq!(secret.status(), 200);
    assert!(secret.json::<Value>().await.unwrap()["message"].as_str().unwrap().contains("Alice"));
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let res = app.post("/api/auth/signup", json!({"username": "ALICE", "password": "another good passphrase"})).await;
    assert_error(res, 409, "username_taken").await;
    // …and logging in ignores case too.
    app.post("/api/auth/login", json!({"username": "Alice", "password": PASSWORD})).await.error_for_status().unwrap();
}

#[tokio::test]
async fn invalid_signups_name_every_bad_field() {
    let app = spawn_app().await;
    let res = app.post("/api/auth/signup", json!({"username": "a!", "password": "short"})).await;
    let body = assert_error(res, 422, "invalid_input").await;
    let fields: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["username", "password"]);

    let res = app.post("/api/auth/signup", json!({"username": "bob", "password": "password1"})).await;
    let body = assert_error(res, 422, "invalid_input").await;
    assert!(body["message"].as_str().unwrap().contains("common"), "{body}");

    let long = "p".repeat(129);
    let res = app.post("/api/auth/signup", json!({"username": "bob", "password": long})).await;
    assert_error(res, 422, "invalid_input").await;
}

#[tokio::test]
async fn long_unicode_passwords_are_used_whole() {
    let app = spawn_app().await;
    let password = "ünïcødé ".repeat(16); // 128 characters, 208 bytes
    let res = app.post("/api/auth/signup", json!({"username": "uni", "password": password})).await;
    assert_eq!(res.status(), 201);
    let truncated: String = password.chars().take(127).collect();
    let res = app.post("/api/auth/login", json!({"username": "uni", "password": truncated})).await;
    assert_error(res, 401, "invalid_credentials").await;
    let res = app.post("/api/auth/login", json!({"username": "uni", "password": password})).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_failed_login_does_not_reveal_whether_the_account_exists() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let wrong_password =
        app.post("/api/auth/login", json!({"username": "alice", "password": "not the password"})).await;
    let unknown_user =
        app.post("/api/auth/login", json!({"username": "mallory", "password": "not the password"})).await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_user.status(), 401);
    let strip = |h: &reqwest::header::HeaderMap| {
        let mut h = h.clone();
        h.remove("date");
        h
    };
    assert_eq!(strip(wrong_password.headers()), strip(unknown_user.headers()));
    // Not `invalid_token`: a refresh would not cure it (the browser refreshes only on that).
    assert_eq!(wrong_password.headers()["www-authenticate"], r#"Bearer realm="baton""#);
    assert_eq!(wrong_password.text().await.unwrap(), unknown_user.text().await.unwrap());
}

#[tokio::test]
async fn login_rehashes_when_the_argon2_parameters_change() {
    let app = spawn_app().await;
    app.signup("alice").await;
    let stored = |app: &TestApp| {
        let db = app.auth.db().clone();
        async move { sqlx::query_scalar::<_, String>("SELECT password_hash FROM users").fetch_one(&db).await.unwrap() }
    };
    let before = stored(&app).await;
    assert!(before.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{before}");
    let mut config = app.stop().await;
    config.argon2.iterations = 2;
    let app = start(config).await;
    app.login("alice").await;
    let after = stored(&app).await;
    assert!(after.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"), "{after}");
    app.login("alice").await;
}

#[tokio::test]
async fn default_argon2_parameters_are_owasps_minimum() {
    let app = spawn_app_with(|c| c.argon2 = default_argon2()).await;
    app.signup("alice").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(app.auth.db()).await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
}

#[tokio::test]
async fn failed_logins_are_recorded_as_security_events_without_secrets() {
    let app = spawn_app().await;
    app.signup("alice").await;
    app.post("/api/auth/login", json!({"username": "alice", "password": "not the password"})).await;
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, detail FROM security_events ORDER BY at").fetch_all(app.auth.db()).await.unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(kinds, ["signup", "login_failed"]);
    for (_, detail) in rows {
        // The kind of client only, never its raw User-Agent ("baton-tests" here).
        assert_eq!(detail.as_deref(), Some("other"));
    }
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_every_other_session() {
    let app = spawn_app().await;
    let phone = app.signup("alice").await;
    let laptop = app.login("alice").await;
    let change = |current: &str, new: &str| {
        app.http
            .post(app.url("/api/account/password"))
            .bearer_auth(&laptop.access_token)
            .json(&json!({"currentPassword": current, "newPassword": new}))
            .send()
    };
    assert_error(change("not my password", "a brand new passphrase").await.unwrap(), 401, "invalid_credentials").await;
    let body = assert_error(change(PASSWORD, "password").await.unwrap(), 422, "invalid_input").await;
    assert_eq!(body["fields"][0]["field"], "newPassword", "{body}");
    assert_error(change(PASSWORD, PASSWORD).await.unwrap(), 422, "invalid_input").await;
    assert_eq!(change(PASSWORD, "a brand new passphrase").await.unwrap().status(), 204);

    assert_eq!(app.secret_status(&phone.access_token).await, 401, "the other session ended");
    assert_eq!(app.refresh(&phone.refresh_token).await.status(), 401);
    assert_eq!(app.secret_status(&laptop.access_token).await, 200, "this one stays");
    assert_eq!(app.refresh(&laptop.refresh_token).await.status(), 200);
    let old = app.post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await;
    assert_error(old, 401, "invalid_credentials").await;
    let new = app.post("/api/auth/login", json!({"username": "alice", "password": "a brand new passphrase"})).await;
    assert_eq!(new.status(), 200);
}

#[tokio::test]
async fn guessing_the_current_password_with_a_stolen_access_token_is_throttled() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        let res = app
            .http
            .post(app.url("/api/account/password"))
            .bearer_auth(&tokens.access_token)
            .json(&json!({"currentPassword": format!("guess number {i}"), "newPassword": "a brand new passphrase"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429], "as for logins: five free, then a wait");
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_leaves_nothing_behind() {
    let app = spawn_app().await;
    let phone = app.signup("alice").await;
    let laptop = app.login("alice").await;
    let wrong = app.delete_account(&laptop.access_token, "not my password").await;
    assert_error(wrong, 401, "invalid_credentials").await;
    assert_eq!(app.delete_account(&laptop.access_token, PASSWORD).await.status(), 204);
    for tokens in [&phone, &laptop] {
        assert_eq!(app.secret_status(&tokens.access_token).await, 401);
        assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 401);
    }
    for table in ["users", "sessions", "refresh_tokens", "login_attempts"] {
        let rows: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(app.auth.db()).await.unwrap();
        assert_eq!(rows, 0, "{table}");
    }
    assert_error(
        app.post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})).await,
        401,
        "invalid_credentials",
    )
    .await;
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM security_events WHERE kind = 'account_deleted'")
        .fetch_all(app.auth.db())
        .await
        .unwrap();
    assert_eq!(kinds.len(), 1);
    // The name is free again.
    app.signup("alice").await;
}

#[tokio::test]
async fn the_server_functions_change_the_password_and_delete_the_account_too() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let call = |endpoint: &str, form: &[(&str, &str)]| {
        app.http.post(app.url(&format!("/api/fn/{endpoint}"))).bearer_auth(&tokens.access_token).form(form).send()
    };
    let res = call("change_password", &[("current_password", PASSWORD), ("new_password", "a brand new passphrase")])
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = call("delete_account", &[("password", PASSWORD)]).await.unwrap();
    assert_eq!(res.status(), 401, "the old password no longer works");
    let res = call("delete_account", &[("password", "a brand new passphrase")]).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(app.secret_status(&tokens.access_token).await, 401);
}
