//! Storage grows with live sessions, not with refreshes: a session's chain is its row (rotation by
//! generation), sessions from before generations keep working, and a background purge deletes
//! ended sessions and old security events.

use crate::common::*;
use app::auth::ClientInfo;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::time::Duration;

fn client() -> ClientInfo {
    ClientInfo::new(Some("baton-tests"), Some("127.0.0.1".into()))
}

/// Every row that belongs to a session, table by table.
async fn rows_of(app: &TestApp, session_id: &str) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM sessions WHERE id = $1",
        "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1",
        "SELECT COUNT(*) FROM security_events WHERE session_id = $1",
    ] {
        counts.push(sqlx::query_scalar(sql).bind(session_id).fetch_one(app.auth.db()).await.unwrap());
    }
    counts
}

#[tokio::test]
async fn a_session_refreshed_ten_thousand_times_costs_what_one_refreshed_once_costs() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let once = app.signup("once").await;
    let many = app.signup("many").await;
    app.refreshed(&once).await;
    let first = many.refresh_token.clone();
    let mut current = first.clone();
    let mut middle = String::new();
    for i in 0..10_000 {
        current = app.auth.refresh(&current, &client()).await.expect("a refresh").refresh_token;
        if i == 5_000 {
            middle = current.clone();
        }
    }
    let (many_id, once_id) = (session_id(&many.access_token), session_id(&once.access_token));
    assert_eq!(rows_of(&app, &many_id).await, rows_of(&app, &once_id).await);
    assert!(current.len() < 100, "a token names its place in the chain without growing: {}", current.len());

    // Reuse of any older token is still detected: the session ends.
    assert_error(app.refresh(&middle).await, 401, "invalid_refresh_token").await;
    assert_error(app.refresh(&current).await, 401, "invalid_refresh_token").await;
    let reuse: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE kind = 'refresh_token_reuse'")
        .fetch_one(app.auth.db())
        .await
        .unwrap();
    assert_eq!(reuse, 1);
    assert_error(app.refresh(&first).await, 401, "invalid_refresh_token").await;
}

/// A session as the previous version stored it: generation 0, its chain in `refresh_tokens`.
async fn legacy_session(app: &TestApp, user_id: &str, spent: &str, current: &str) -> String {
    let session_id = uuid::Uuid::new_v4().to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let db = app.auth.db();
    sqlx::query("INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES ($1, $2, $3, $3, $4)")
        .bind(&session_id)
        .bind(user_id)
        .bind(now)
        .bind(now + 86_400_000)
        .execute(db)
        .await
        .unwrap();
    let hash = |t: &str| Sha256::digest(t.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>();
    let (spent_id, current_id) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    for (id, parent, token, spent_at) in
        [(&spent_id, None, spent, Some(now)), (&current_id, Some(&spent_id), current, None)]
    {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, issued_at, access_jti, access_kid, spent_at) \
             VALUES ($1, $2, $3, $4, $5, 'jti', 'kid', $6)",
        )
        .bind(id)
        .bind(&session_id)
        .bind(parent)
        .bind(hash(token))
        .bind(now)
        .bind(spent_at)
        .execute(db)
        .await
        .unwrap();
    }
    session_id
}

#[tokio::test]
async fn sessions_from_before_generations_keep_working_and_keep_reuse_detection() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let alice = app.signup("alice").await;
    let user_id = alice.user.id.clone();
    let old_token = |byte: u8| format!("brt_{}", URL_SAFE_NO_PAD.encode([byte; 32]));
    let (spent, current) = (old_token(1), old_token(2));
    let session = legacy_session(&app, &user_id, &spent, &current).await;

    // The upgrade logged nobody out: the current old-format token refreshes, onto generations.
    let res = app.refresh(&current).await;
    assert_eq!(res.status(), 200);
    let next: TokenResponse = res.json().await.unwrap();
    assert_eq!(session_id(&next.access_token), session);
    assert_eq!(app.secret_status(&next.access_token).await, 200);
    let next = app.refreshed(&next).await;

    // The old token, spent now, is reuse: the session ends.
    assert_error(app.refresh(&current).await, 401, "invalid_refresh_token").await;
    assert_error(app.refresh(&next.refresh_token).await, 401, "invalid_refresh_token").await;

    // An older one of the old chain too.
    let alice2 = app.login("alice").await;
    let other = legacy_session(&app, &user_id, &old_token(3), &old_token(4)).await;
    assert_error(app.refresh(&old_token(3)).await, 401, "invalid_refresh_token").await;
    assert_error(app.refresh(&old_token(4)).await, 401, "invalid_refresh_token").await;
    let revoked: Vec<String> =
        sqlx::query_scalar("SELECT id FROM sessions WHERE revoked_reason = 'refresh_token_reuse' ORDER BY id")
            .fetch_all(app.auth.db())
            .await
            .unwrap();
    let mut expected = vec![session, other];
    expected.sort();
    assert_eq!(revoked, expected);
    app.refreshed(&alice2).await;
}

#[tokio::test]
async fn the_background_purge_deletes_ended_sessions_and_old_events() {
    let app = spawn_app_with(|c| {
        c.retention.sessions = Duration::ZERO;
        c.retention.security_events = Duration::from_secs(86_400);
        c.retention.interval = Duration::from_millis(300);
    })
    .await;
    let alice = app.signup("alice").await;
    let gone = app.login("alice").await;
    let res = app.post("/api/auth/logout", serde_json::json!({"refreshToken": gone.refresh_token})).await;
    assert_eq!(res.status(), 204);
    let old =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 2 * 86_400_000;
    sqlx::query("INSERT INTO security_events (id, at, kind) VALUES ('old', $1, 'login')")
        .bind(old)
        .execute(app.auth.db())
        .await
        .unwrap();

    let mut left = (0, 0);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = (
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions").fetch_one(app.auth.db()).await.unwrap(),
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM security_events WHERE id = 'old'")
                .fetch_one(app.auth.db())
                .await
                .unwrap(),
        );
        if left == (1, 0) {
            break;
        }
    }
    assert_eq!(left, (1, 0), "the logged-out session and the old event went; the live session stayed");
    let recent: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM security_events").fetch_one(app.auth.db()).await.unwrap();
    assert!(recent >= 3, "this minute's events stay: {recent}");
    app.refreshed(&alice).await;
}

/// The rotations of one commit group share their statements (`Rotation::statements`): each
/// refresh still gets its own session's successor, and of two spending one token one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_committed_together_each_get_their_own_session() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let mut sessions = Vec::new();
    for i in 0..40 {
        let body = app.signup(&format!("group{i}")).await;
        sessions.push((session_id(&body.access_token), body.refresh_token));
    }
    // Every session at once, the first three twice.
    let presented: Vec<String> = sessions.iter().chain(&sessions[..3]).map(|(_, t)| t.clone()).collect();
    let answers = futures::future::join_all(presented.iter().map(|t| {
        let (auth, t) = (app.auth.clone(), t.clone());
        tokio::spawn(async move { auth.refresh(&t, &client()).await })
    }))
    .await;
    let answers: Vec<_> = answers.into_iter().map(|a| a.expect("no panic")).collect();
    for (i, (sid, _)) in sessions.iter().enumerate() {
        let mine: Vec<_> = [Some(&answers[i]), answers.get(40 + i).filter(|_| i < 3)]
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_ref().ok())
            .collect();
        assert_eq!(mine.len(), 1, "session {i}: one successor");
        assert_eq!(&session_id(&mine[0].access_token), sid, "session {i}: its own successor");
        if i >= 3 {
            let next = app.auth.refresh(&mine[0].refresh_token, &client()).await;
            assert!(next.is_ok(), "session {i}: the successor is the chain's current token");
        }
    }
}
