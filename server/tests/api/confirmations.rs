//! Checking a logged-in user's password again (change password, delete account): what it may
//! cost, and what a password change does to logins running at the same moment.

use crate::common::*;
use serde_json::json;

const NEW: &str = "a brand new passphrase";

impl TestApp {
    /// `POST /api/account/password` as the holder of `tokens`.
    async fn change_password(&self, tokens: &TokenResponse, current: &str, new: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/account/password"))
            .bearer_auth(&tokens.access_token)
            .json(&json!({"currentPassword": current, "newPassword": new}))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_new_password_that_breaks_the_rules_is_refused_before_any_password_is_checked() {
    let app = spawn_app().await;
    let tokens = app.signup("alice").await;
    // Whatever the current password, the rules answer first: no hash, no count against the account.
    for current in
        ["wrong guess", PASSWORD, "another wrong guess", "and another", "one more", "the sixth", "the seventh"]
    {
        let body = assert_error(app.change_password(&tokens, current, "short").await, 422, "invalid_input").await;
        assert_eq!(body["fields"][0]["field"], "newPassword", "{body}");
    }
    assert_eq!(app.change_password(&tokens, PASSWORD, NEW).await.status(), 204, "nothing was held against the account");
}

#[tokio::test]
async fn confirmations_are_limited_per_account_even_with_the_right_password() {
    // The right password clears the backoff; the account's own allowance still runs out.
    let app = spawn_app_with(|c| c.rate_limits.password_confirmations = 4).await;
    let tokens = app.signup("alice").await;
    let passwords = [PASSWORD, NEW];
    let mut statuses = Vec::new();
    for i in 0..6 {
        let res = app.change_password(&tokens, passwords[i % 2], passwords[(i + 1) % 2]).await;
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
            assert_error(res, 429, "too_many_requests").await;
        }
    }
    assert_eq!(statuses, [204, 204, 204, 204, 429, 429]);
    // Another account is not affected.
    let bob = app.signup("bob").await;
    assert_eq!(app.change_password(&bob, PASSWORD, NEW).await.status(), 204);
}

#[tokio::test]
async fn confirmations_are_limited_per_address_across_accounts() {
    let app = spawn_app_with(|c| {
        c.rate_limits.login = 3;
        c.rate_limits.password_confirmations = 100;
    })
    .await;
    let (alice, bob) = (app.signup("alice").await, app.signup("bob").await);
    assert_eq!(app.change_password(&alice, PASSWORD, NEW).await.status(), 204);
    assert_eq!(app.change_password(&alice, NEW, PASSWORD).await.status(), 204);
    assert_eq!(app.change_password(&bob, PASSWORD, NEW).await.status(), 204);
    assert_error(app.change_password(&bob, NEW, PASSWORD).await, 429, "too_many_requests").await;
    // Logins from this address keep their own allowance.
    app.login("alice").await;
}

#[tokio::test]
async fn an_account_confirms_one_password_at_a_time() {
    // Real hashes, so that the requests overlap.
    let app = spawn_app_with(|c| c.argon2 = default_argon2()).await;
    let tokens = app.signup("alice").await;
    // Four: fewer than the free attempts, so the backoff refuses none of them.
    let requests = (0..4).map(|_| app.change_password(&tokens, PASSWORD, NEW));
    let mut statuses: Vec<u16> =
        futures::future::join_all(requests).await.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1, "{statuses:?}");
    assert!(statuses.contains(&429), "the others waited for nothing: {statuses:?}");
    assert!(statuses.iter().all(|s| [204, 401, 429].contains(s)), "{statuses:?}");
}

#[tokio::test]
async fn a_login_that_checked_the_old_password_gets_no_session_once_it_changed() {
    // The failures after each change must not trip the account's backoff meanwhile.
    let app = spawn_app_with(|c| c.login_backoff.free_attempts = 99).await;
    let owner = app.signup("alice").await;
    let owner_session = session_id(&owner.access_token);
    let passwords = [PASSWORD, NEW];
    for round in 0..6 {
        let (old, new) = (passwords[round % 2], passwords[(round + 1) % 2]);
        // Logins with the old password keep coming while the owner changes it.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let logins: Vec<_> = (0..4)
            .map(|_| {
                let (http, url, done) = (app.http.clone(), app.url("/api/auth/login"), done.clone());
                tokio::spawn(async move {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let res =
                            http.post(&url).json(&json!({"username": "alice", "password": old})).send().await.unwrap();
                        assert!([200, 401].contains(&res.status().as_u16()), "{}", res.status());
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!(app.change_password(&owner, old, new).await.status(), 204, "round {round}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for login in logins {
            login.await.unwrap();
        }
        // The change ended every other session; none may have begun after it with the old password.
        let live: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions WHERE revoked_at IS NULL")
            .fetch_all(app.auth.db())
            .await
            .unwrap();
        assert_eq!(
            live,
            std::slice::from_ref(&owner_session),
            "round {round}: a session from the old password outlived the change"
        );
    }
}

#[tokio::test]
async fn a_rehash_never_writes_an_old_password_back() {
    // New Argon2 parameters at each restart: every login rehashes. Its rehash must not undo a
    // change that committed while it was hashing.
    let mut app = spawn_app().await;
    let owner = app.signup("alice").await;
    for round in 0..6 {
        let mut config = app.stop().await;
        config.argon2.iterations = 2 - (round % 2) as u32;
        app = start(config).await;
        let (old, new) = ([PASSWORD, NEW][round % 2], [PASSWORD, NEW][(round + 1) % 2]);
        let (_, changed) = tokio::join!(
            app.post("/api/auth/login", json!({"username": "alice", "password": old})),
            app.change_password(&owner, old, new)
        );
        // A rehash is no change: the change goes through whichever commits first.
        assert_eq!(changed.status(), 204, "round {round}");
        let res = app.post("/api/auth/login", json!({"username": "alice", "password": new})).await;
        assert_eq!(res.status(), 200, "round {round}: the new password must work");
        let res = app.post("/api/auth/login", json!({"username": "alice", "password": old})).await;
        assert_error(res, 401, "invalid_credentials").await;
    }
}

#[tokio::test]
async fn logins_that_rehash_at_once_all_get_in() {
    // New Argon2 parameters: every login of the burst rehashes; one rehash is stored, and none of
    // them is refused for the others' rehash.
    let app = spawn_app().await;
    app.signup("alice").await;
    let mut config = app.stop().await;
    config.argon2.iterations = 2;
    let app = start(config).await;
    // Four: each is counted as an attempt until it succeeds, and five at once may meet the backoff.
    let logins = (0..4).map(|_| app.post("/api/auth/login", json!({"username": "alice", "password": PASSWORD})));
    let statuses: Vec<u16> = futures::future::join_all(logins).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200; 4]);
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users").fetch_one(app.auth.db()).await.unwrap();
    assert!(hash.contains("t=2"), "{hash}");
}
