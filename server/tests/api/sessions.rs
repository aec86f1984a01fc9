//! Logout, logout everywhere, listing and revoking sessions: access tokens die with their session.

use crate::common::*;
use app::api::SessionInfo;
use serde_json::{json, Value};

#[tokio::test]
async fn logout_ends_the_session_at_once_and_is_idempotent() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let refresh = tokens.refresh_token.clone();
    for _ in 0..2 {
        let res = app.post("/api/auth/logout", json!({ "refreshToken": refresh })).await;
        assert_eq!(res.status(), 204);
    }
    // Refused right away, long before the 5-minute expiry.
    assert_eq!(app.secret_status(&tokens.access_token).await, 401);
    assert_error(app.refresh(&refresh).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn logout_takes_the_refresh_token_as_bearer_too() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let res = app.http.post(app.url("/api/auth/logout")).bearer_auth(&tokens.refresh_token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.secret_status(&tokens.access_token).await, 401);
    let res = app.http.post(app.url("/api/auth/logout")).send().await.unwrap();
    assert_error(res, 401, "invalid_refresh_token").await;
    // The body is optional in the OpenAPI document, so a JSON `null` is no body.
    let other = app.login("alice").await;
    let res = app
        .http
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&other.refresh_token)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.secret_status(&other.access_token).await, 401);
}

#[tokio::test]
async fn logout_everywhere_ends_every_session_of_the_user_only() {
    let app = spawn_app().await;
    let phone = app.signup("alice").await;
    let laptop = app.login("alice").await;
    let bob = app.signup("bob").await;
    let res = app.http.post(app.url("/api/auth/logout-all")).bearer_auth(&laptop.access_token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    for t in [&phone, &laptop] {
        assert_eq!(app.secret_status(&t.access_token).await, 401);
        assert_eq!(app.refresh(&t.refresh_token).await.status(), 401);
    }
    assert_eq!(app.secret_status(&bob.access_token).await, 200);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one() {
    let app = spawn_app().await;
    let phone = app.signup("alice").await;
    let laptop = app.login("alice").await;
    let list: Vec<Value> = app.get_with("/api/auth/sessions", &laptop.access_token).await.json().await.unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<bool> = list.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current.iter().filter(|c| **c).count(), 1);
    for s in &list {
        assert_eq!(s["userAgent"], "baton-tests");
        assert_eq!(s["ip"], "127.0.0.1");
        for field in ["createdAt", "lastUsedAt", "expiresAt"] {
            assert!(s[field].as_str().unwrap().ends_with('Z'));
        }
        // To the minute: to the millisecond, it would tell a thief when the victim refreshes.
        assert!(s["lastUsedAt"].as_str().unwrap().ends_with(":00.000Z"), "{s}");
    }
    let phone_id = list.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();

    let revoke = |id: String, bearer: String| {
        let app = &app;
        async move {
            app.http.delete(app.url(&format!("/api/auth/sessions/{id}"))).bearer_auth(bearer).send().await.unwrap()
        }
    };
    // Someone else cannot revoke it, nor learn that it exists.
    let bob = app.signup("bob").await;
    assert_error(revoke(phone_id.clone(), bob.access_token.clone()).await, 404, "not_found").await;
    assert_eq!(revoke(phone_id.clone(), laptop.access_token.clone()).await.status(), 204);
    assert_eq!(app.secret_status(&phone.access_token).await, 401);
    assert_eq!(app.refresh(&phone.refresh_token).await.status(), 401);
    assert_eq!(app.secret_status(&laptop.access_token).await, 200);
    assert_error(revoke(phone_id, laptop.access_token.clone()).await, 404, "not_found").await;
    let list: Vec<Value> = app.get_with("/api/auth/sessions", &laptop.access_token).await.json().await.unwrap();
    assert_eq!(list.len(), 1);
}

#[tokio::test]
async fn a_session_id_that_is_no_uuid_is_not_found_on_either_database() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    // A NUL byte is what PostgreSQL refuses to store or compare: it was a 500 there.
    for id in ["%00", "0000%00", "not-a-session"] {
        let res = app
            .http
            .delete(app.url(&format!("/api/auth/sessions/{id}")))
            .bearer_auth(&tokens.access_token)
            .send()
            .await
            .unwrap();
        assert_error(res, 404, "not_found").await;
    }
}

#[tokio::test]
async fn the_sessions_list_is_rate_limited() {
    let app = spawn_app_with(|c| c.rate_limits.sessions = 3).await;
    let tokens = app.signup("alice").await;
    for _ in 0..3 {
        assert_eq!(app.get_with("/api/auth/sessions", &tokens.access_token).await.status(), 200);
    }
    let res = app.get_with("/api/auth/sessions", &tokens.access_token).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "too_many_requests").await;
    // The server function shares the limit.
    let res = app.http.post(app.url("/api/fn/sessions")).bearer_auth(&tokens.access_token).send().await.unwrap();
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn only_a_trusted_proxy_names_the_client_and_its_port_is_dropped() {
    let behind_proxy = spawn_app_with(trust_local_proxy).await;
    let direct = spawn_app().await;
    for (app, expected) in [(&behind_proxy, "2001:db8::7"), (&direct, "127.0.0.1")] {
        let res = app
            .http
            .post(app.url("/api/auth/signup"))
            .header("x-forwarded-for", "6.6.6.6, [2001:db8::7]:4711")
            .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let tokens: TokenResponse = res.json().await.unwrap();
        let list: Vec<Value> = app.get_with("/api/auth/sessions", &tokens.access_token).await.json().await.unwrap();
        assert_eq!(list[0]["ip"], expected);
    }
}

/// Protected calls remember that a session was alive (for a second at most); every way of ending
/// a session in this process forgets that at once, even for a token that was just used.
#[tokio::test]
async fn every_way_of_ending_a_session_refuses_its_access_token_at_once() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let alice = app.signup("alice").await;
    let access = warm(&app, &alice).await;
    let res = app.post("/api/auth/logout", json!({"refreshToken": alice.refresh_token})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.secret_status(&access).await, 401, "logout");

    let (phone, laptop) = (app.login("alice").await, app.login("alice").await);
    let access = warm(&app, &phone).await;
    let id = app
        .get_with("/api/auth/sessions", &laptop.access_token)
        .await
        .json::<Vec<SessionInfo>>()
        .await
        .unwrap()
        .into_iter()
        .find(|s| !s.current)
        .unwrap()
        .id;
    let res = app
        .http
        .delete(app.url(&format!("/api/auth/sessions/{id}")))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.secret_status(&access).await, 401, "revoked from another device");

    let access = warm(&app, &laptop).await;
    let res = app.http.post(app.url("/api/auth/logout-all")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.secret_status(&access).await, 401, "log out everywhere");

    let (phone, laptop) = (app.login("alice").await, app.login("alice").await);
    let access = warm(&app, &phone).await;
    let res = app
        .http
        .post(app.url("/api/account/password"))
        .bearer_auth(&laptop.access_token)
        .json(&json!({"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.secret_status(&access).await, 401, "the password changed on another device");

    let access = warm(&app, &laptop).await;
    let thief = app.refreshed(&laptop).await;
    assert_eq!(app.refresh(&laptop.refresh_token).await.status(), 401);
    assert_eq!(app.secret_status(&access).await, 401, "reuse of a spent refresh token");
    assert_eq!(app.secret_status(&thief.access_token).await, 401);

    let last = app.post("/api/auth/login", json!({"username": "alice", "password": "a brand new passphrase"})).await;
    let last: TokenResponse = last.json().await.unwrap();
    let access = warm(&app, &last).await;
    assert_eq!(app.delete_account(&access, "a brand new passphrase").await.status(), 204);
    assert_eq!(app.secret_status(&access).await, 401, "the account was deleted");
}

/// The access token of `tokens`, used once: its session is now remembered as alive.
async fn warm(app: &TestApp, tokens: &TokenResponse) -> String {
    let access = tokens.access_token.clone();
    assert_eq!(app.secret_status(&access).await, 200);
    access
}

/// Another instance (or the operator's command line) ends a session behind this one's back: the
/// memory that it was alive lasts `LIVENESS_TTL_MS` at most.
#[tokio::test]
async fn a_session_ended_by_another_process_is_refused_within_a_second() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let access = warm(&app, &alice).await;
    sqlx::query("UPDATE sessions SET revoked_at = 1, revoked_reason = 'elsewhere'")
        .execute(app.auth.db())
        .await
        .unwrap();
    let ended = std::time::Instant::now();
    loop {
        let sent = ended.elapsed().as_millis();
        if app.secret_status(&access).await == 401 {
            break;
        }
        // The session was last seen alive before it ended: a call sent a second later is refused.
        assert!(sent < app::auth::LIVENESS_TTL_MS as u128, "accepted {sent} ms after the session ended");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `/api/fn/hand_off` and `/api/fn/take_hand_off`, as the pages of a tab whose browser blocks
/// site storage call them.
#[tokio::test]
async fn a_hand_off_code_is_redeemed_once_by_the_same_client_from_the_same_origin() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    let refresh_token = tokens.refresh_token.clone();
    let hand_off = |client: &reqwest::Client, refresh_token: &str, site: &str| {
        client
            .post(app.url("/api/fn/hand_off"))
            .header("sec-fetch-site", site)
            .form(&[("refresh_token", refresh_token), ("payload", "{\"what\":\"the page's tokens\"}")])
            .send()
    };
    let take = |client: &reqwest::Client, code: &str, site: &str| {
        client.post(app.url("/api/fn/take_hand_off")).header("sec-fetch-site", site).form(&[("code", code)]).send()
    };
    let code = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 200);
        res.json::<String>().await.unwrap()
    };
    // Made by a page of another site: refused, nothing stored.
    let res = hand_off(&app.http, &refresh_token, "cross-site").await.unwrap();
    assert_error(res, 400, "bad_request").await;
    // Only the session's current refresh token makes one: not a made-up one, not a spent one.
    assert_error(hand_off(&app.http, "brt_nonsense", "same-origin").await.unwrap(), 401, "invalid_refresh_token").await;
    let tokens = app.refreshed(&tokens).await;
    assert_error(hand_off(&app.http, &refresh_token, "same-origin").await.unwrap(), 401, "invalid_refresh_token").await;
    let refresh_token = tokens.refresh_token.clone();

    let first = code(hand_off(&app.http, &refresh_token, "same-origin").await.unwrap()).await;
    // Another machine, or a page of another site, gets nothing, and does not use the code up.
    let elsewhere = client_from("127.0.0.2", "baton-tests");
    assert_error(take(&elsewhere, &first, "same-origin").await.unwrap(), 404, "not_found").await;
    let res = take(&app.http, &first, "cross-site").await.unwrap();
    assert_error(res, 404, "not_found").await;
    let res = take(&app.http, &first, "same-origin").await.unwrap();
    assert_eq!(res.json::<String>().await.unwrap(), "{\"what\":\"the page's tokens\"}");
    // Once.
    assert_error(take(&app.http, &first, "same-origin").await.unwrap(), 404, "not_found").await;
    // Nothing readable is stored: the table holds neither the code nor the payload; and one per
    // session: a newer hand-off voids the one before.
    let replaced = code(hand_off(&app.http, &refresh_token, "same-origin").await.unwrap()).await;
    let second = code(hand_off(&app.http, &refresh_token, "same-origin").await.unwrap()).await;
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT id, sealed FROM handoffs").fetch_all(app.auth.db()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored.iter().all(|(id, sealed)| !id.contains(&second) && !sealed.contains("tokens")), "{stored:?}");
    assert_error(take(&app.http, &replaced, "same-origin").await.unwrap(), 404, "not_found").await;
    // A session that ended takes its hand-offs with it.
    app.post("/api/auth/logout", json!({"refreshToken": refresh_token})).await;
    assert_error(take(&app.http, &second, "same-origin").await.unwrap(), 404, "not_found").await;
}
