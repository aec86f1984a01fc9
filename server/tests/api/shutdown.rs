//! SIGTERM (or SIGINT) in the middle of a burst of refreshes: every refresh either completed (its
//! answer delivered) or was refused before it started, and the database agrees with what clients hold.

use crate::common::*;
use futures::future::join_all;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Chain {
    session_id: String,
    refresh_token: String,
    refreshed: i64,
}

/// Signs up `count` users on `base`: one refresh chain each.
async fn sign_up_chains(http: &reqwest::Client, base: &str, count: usize) -> Vec<Chain> {
    let mut chains = Vec::new();
    for i in 0..count {
        let res = http
            .post(format!("{base}/api/auth/signup"))
            .json(&json!({"username": format!("user{i}"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let tokens: TokenResponse = res.json().await.unwrap();
        chains.push(Chain {
            session_id: session_id(&tokens.access_token),
            refresh_token: tokens.refresh_token,
            refreshed: 0,
        });
    }
    chains
}

async fn refresh(http: &reqwest::Client, base: &str, token: &str) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/api/auth/refresh")).json(&json!({ "refreshToken": token })).send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_refresh_burst_loses_nothing() {
    signal_during_a_refresh_burst("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigint_during_a_refresh_burst_loses_nothing() {
    signal_during_a_refresh_burst("INT").await;
}

async fn signal_during_a_refresh_burst(signal: &str) {
    let dir = temp_dir();
    let database_url = fresh_database_url(&dir).await;
    // No grace window: presenting a token whose rotation was applied but never answered would
    // count as reuse and revoke the session, so a lost refresh cannot hide.
    let env = [("REFRESH_REUSE_GRACE", "0"), ("RUST_LOG", "info")];
    let mut server = start_binary(&dir, &database_url, &env).await;
    let http = reqwest::Client::new();
    let mut chains = sign_up_chains(&http, &server.base, 8).await;

    let mut chains_slow = vec![chains.pop().unwrap()];
    let base = server.base.clone();
    let bursts = chains.into_iter().map(|mut chain| {
        let base = base.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                match refresh(&http, &base, &chain.refresh_token).await {
                    Ok(res) if res.status() == 200 => {
                        let tokens: TokenResponse = res.json().await.expect("a delivered answer is complete");
                        chain.refresh_token = tokens.refresh_token;
                        chain.refreshed += 1;
                    }
                    Ok(res) => panic!("refused with {} instead of completed or not started", res.status()),
                    // The server has gone: this request never started.
                    Err(_) => return chain,
                }
            }
        })
    });
    let bursts: Vec<_> = bursts.collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // One more refresh is surely in flight when the signal comes: its body is only half sent.
    let mut slow = chains_slow.pop().unwrap();
    let body = json!({ "refreshToken": slow.refresh_token }).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /api/auth/refresh HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(format!("{head}{first_half}").as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.send_signal(signal);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(second_half.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the request in flight was finished: {answer}");
    let (_, json_body) = answer.split_once("\r\n\r\n").unwrap();
    slow.refresh_token = serde_json::from_str::<TokenResponse>(json_body).unwrap().refresh_token;
    slow.refreshed += 1;

    assert!(server.child.wait().unwrap().success(), "SIG{signal} ends the server cleanly");
    let mut chains: Vec<Chain> =
        join_all(bursts).await.into_iter().map(|r| r.expect("no refresh went wrong")).collect();
    chains.push(slow);
    let total: i64 = chains.iter().map(|c| c.refreshed).sum();
    assert!(chains.iter().all(|c| c.refreshed > 0), "every chain was refreshing when the signal came");
    assert_eq!(chains.len(), 8);
    println!("SIG{signal}: {total} refreshes completed, none lost");

    // After a restart every client's newest token is the live one: nothing was applied unanswered.
    let server = start_binary(&dir, &database_url, &env).await;
    for chain in &chains {
        let res = refresh(&http, &server.base, &chain.refresh_token).await.unwrap();
        assert_eq!(res.status(), 200, "session {} lost a refresh", chain.session_id);
    }
    drop(server);

    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
    for chain in &chains {
        let generation: i64 = sqlx::query_scalar("SELECT generation FROM sessions WHERE id = $1")
            .bind(&chain.session_id)
            .fetch_one(&db)
            .await
            .unwrap();
        // The first generation, one per completed refresh, one for the check after the restart.
        assert_eq!(generation, chain.refreshed + 2, "session {}", chain.session_id);
    }
    let revoked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL").fetch_one(&db).await.unwrap();
    assert_eq!(revoked, 0);
}

/// `kill -9` in the middle of a refresh storm (32 chains, refreshes committed in groups): after a
/// restart every chain continues from the last answer its client got. An answered refresh is
/// durable (committed, and on SQLite synced) before it is answered; a refresh applied whose answer
/// the kill cut off is the grace window's case: the same client asks again and gets the same pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_refresh_storm_loses_no_answered_refresh() {
    let dir = temp_dir();
    let database_url = fresh_database_url(&dir).await;
    let mut server = start_binary(&dir, &database_url, &[]).await;
    let http = reqwest::Client::new();
    let chains = sign_up_chains(&http, &server.base, 32).await;
    let storm: Vec<_> = chains
        .into_iter()
        .map(|mut chain| {
            let base = server.base.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let Ok(res) = refresh(&http, &base, &chain.refresh_token).await else { return chain };
                    assert_eq!(res.status(), 200, "session {}", chain.session_id);
                    // A body cut off by the kill is an answer the client never got.
                    let Ok(tokens) = res.json::<TokenResponse>().await else { return chain };
                    chain.refresh_token = tokens.refresh_token;
                    chain.refreshed += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.send_signal("KILL");
    let _ = server.child.wait();
    let chains: Vec<Chain> = join_all(storm).await.into_iter().map(|r| r.expect("no refresh went wrong")).collect();
    let total: i64 = chains.iter().map(|c| c.refreshed).sum();
    assert!(chains.iter().all(|c| c.refreshed > 0), "every chain was refreshing when the kill came");

    let server = start_binary(&dir, &database_url, &[]).await;
    for chain in &chains {
        let res = refresh(&http, &server.base, &chain.refresh_token).await.unwrap();
        assert_eq!(res.status(), 200, "session {} lost an answered refresh", chain.session_id);
    }
    println!("kill -9: {total} refreshes answered before it, none lost");
    drop(server);
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url).await.unwrap();
    let revoked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL").fetch_one(&db).await.unwrap();
    assert_eq!(revoked, 0);
    if !is_postgres() {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&db).await.unwrap();
        assert_eq!(check, "ok");
    }
}
