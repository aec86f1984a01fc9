//! Several instances on one PostgreSQL, each with its own data directory: what one issues, the
//! other honours; what one ends, the other refuses; keys and rate limits are shared.
//! PostgreSQL only (SQLite is one instance's database): on SQLite these tests return at once.

use crate::common::*;
use app::auth::AuthSettings;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// Two instances, or `None` on SQLite.
async fn pair(tweak: impl Fn(&mut app::auth::AuthSettings)) -> Option<(TestApp, TestApp)> {
    if !is_postgres() {
        eprintln!("several instances need PostgreSQL: skipped on SQLite");
        return None;
    }
    Some(spawn_pair(tweak).await)
}

async fn jwks(app: &TestApp) -> Value {
    app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap()
}

fn kid(tokens: &TokenResponse) -> String {
    jsonwebtoken::decode_header(&tokens.access_token).unwrap().kid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_started_at_once_on_an_empty_database_agree_on_their_keys() {
    let Some((a, b)) = pair(|_| {}).await else { return };
    assert_eq!(jwks(&a).await, jwks(&b).await, "one JWKS");
    assert_eq!(jwks(&a).await["keys"].as_array().unwrap().len(), 1, "one key made, not one each");
    let rotation_keys: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM rotation_keys").fetch_one(a.auth.db()).await.unwrap();
    assert_eq!(rotation_keys, 1);
    // Each verifies what the other signs, at once.
    let tokens = a.signup("alice").await;
    assert_eq!(b.secret_status(&tokens.access_token).await, 200);
    let tokens = b.refreshed(&tokens).await;
    assert_eq!(a.secret_status(&tokens.access_token).await, 200);

    // The migrations serialise first starts a little (a lock); past them, on a migrated database
    // with no keys yet, 16 starts race for the first keys at the same instant and make one of each.
    let config = a.stop().await;
    b.stop().await;
    // Connections made beforehand, so that the 16 statements reach the database together.
    let db = sqlx::any::AnyPoolOptions::new()
        .min_connections(16)
        .max_connections(16)
        .connect(&config.database_url)
        .await
        .unwrap();
    let warm = (0..16).map(|_| db.acquire());
    drop(futures::future::join_all(warm).await);
    for table in ["signing_keys", "rotation_keys"] {
        sqlx::query(&format!("DELETE FROM {table}")).execute(&db).await.unwrap();
    }
    let starts = (0..16).map(|_| {
        let (db, config) = (db.clone(), AuthSettings { data_dir: temp_dir(), ..config.clone() });
        tokio::spawn(async move { app::auth::tokens::keys::prepare(&db, &config).await.map(|_| ()) })
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap().unwrap();
    }
    let signing_keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys").fetch_one(&db).await.unwrap();
    assert_eq!(signing_keys, 1);
    let rotation_keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rotation_keys").fetch_one(&db).await.unwrap();
    assert_eq!(rotation_keys, 1);
}

#[tokio::test]
async fn a_refresh_chain_alternates_between_instances() {
    let Some((a, b)) = pair(|c| c.refresh_reuse_grace = Duration::ZERO).await else { return };
    let mut tokens = a.signup("alice").await;
    for round in 0..6 {
        let (here, there) = if round % 2 == 0 { (&b, &a) } else { (&a, &b) };
        tokens = here.refreshed(&tokens).await;
        assert_eq!(there.secret_status(&tokens.access_token).await, 200, "round {round}");
    }
    let reuse: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM security_events WHERE kind = 'refresh_token_reuse'")
        .fetch_one(a.auth.db())
        .await
        .unwrap();
    assert_eq!(reuse, 0);
}

/// 20 refreshes of one token at once, half on each instance: one successor at most.
async fn split_refresh_storm(a: &TestApp, b: &TestApp, refresh_token: &str) -> Vec<(u16, Option<String>)> {
    let calls = (0..20).map(|i| {
        let app = if i % 2 == 0 { a } else { b };
        async move {
            let res = app.refresh(refresh_token).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body["refreshToken"].as_str().map(str::to_owned))
        }
    });
    futures::future::join_all(calls).await
}

#[tokio::test]
async fn twenty_simultaneous_refreshes_across_instances_give_at_most_one_successor() {
    // Without a grace window: one wins, the others are reuse and end the session.
    let Some((a, b)) = pair(|c| c.refresh_reuse_grace = Duration::ZERO).await else { return };
    let tokens = a.signup("alice").await;
    let answers = split_refresh_storm(&a, &b, &tokens.refresh_token).await;
    let successors: HashSet<_> = answers.iter().filter_map(|(_, t)| t.clone()).collect();
    assert!(successors.len() <= 1, "{answers:?}");
    assert!(answers.iter().all(|(status, _)| *status == 200 || *status == 401), "{answers:?}");

    // With the grace window, the same client's duplicates get the same pair on either instance:
    // no false reuse, the session lives.
    let (a, b) = (a.stop().await, b.stop().await);
    let (a, b) = (
        start(AuthSettings { refresh_reuse_grace: Duration::from_secs(10), ..a }).await,
        start(AuthSettings { refresh_reuse_grace: Duration::from_secs(10), ..b }).await,
    );
    let tokens = a.login("alice").await;
    let answers = split_refresh_storm(&a, &b, &tokens.refresh_token).await;
    let successors: HashSet<_> = answers.iter().filter_map(|(_, t)| t.clone()).collect();
    assert_eq!(successors.len(), 1, "{answers:?}");
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let next = successors.into_iter().next().unwrap();
    assert_eq!(b.refresh(&next).await.status(), 200, "the session lives on");
}

/// How long until `app` refuses `access`, polled every 10 ms for at most 2 s.
async fn refused_after(app: &TestApp, access: &str) -> Duration {
    let start = std::time::Instant::now();
    while app.secret_status(access).await == 200 {
        assert!(start.elapsed() < Duration::from_secs(2), "still accepted after 2 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn logout_on_one_instance_refuses_the_others_access_token_at_once() {
    let Some((a, b)) = pair(|_| {}).await else { return };
    let tokens = a.signup("alice").await;
    let access = tokens.access_token.clone();
    // A has verified the token and remembers that the session lives (for up to 1 s).
    assert_eq!(a.secret_status(&access).await, 200);
    let logout = json!({"refreshToken": tokens.refresh_token});
    let res = b.http.post(b.url("/api/auth/logout")).json(&logout).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(b.secret_status(&access).await, 401, "at once where it was ended");
    // B's notification clears A's cache: well within the 1 s the cache would otherwise keep it.
    let waited = refused_after(&a, &access).await;
    assert!(waited < Duration::from_millis(300), "refused on the other instance after {waited:?}");
}

#[tokio::test]
async fn log_out_everywhere_on_one_instance_ends_the_sessions_the_other_started() {
    let Some((a, b)) = pair(|_| {}).await else { return };
    a.signup("alice").await;
    let (laptop, phone) = (a.login("alice").await, a.login("alice").await);
    assert_eq!(a.secret_status(&phone.access_token).await, 200);
    let res = b.http.post(b.url("/api/auth/logout-all")).bearer_auth(&laptop.access_token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let waited = refused_after(&a, &phone.access_token).await;
    assert!(waited < Duration::from_millis(300), "refused on the other instance after {waited:?}");
    for tokens in [&laptop, &phone] {
        assert_eq!(a.secret_status(&tokens.access_token).await, 401);
        assert_eq!(a.refresh(&tokens.refresh_token).await.status(), 401);
    }
}

#[tokio::test]
async fn a_key_rotated_through_one_instance_signs_on_both_within_the_publish_delay() {
    let Some((a, b)) = pair(|c| {
        c.keys.publish_delay = Duration::from_secs(3);
        c.keys.poll_interval = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let (alice, bob) = (a.signup("alice").await, b.signup("bob").await);
    let old_kid = kid(&alice);
    let out =
        run_cli(&a, &["rotate-signing-key"], &[("SIGNING_KEY_PUBLISH_DELAY", "3"), ("KEY_POLL_INTERVAL", "1")]).await;
    assert!(out.status.success(), "{out:?}");
    // Published on both before it signs anywhere.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(jwks(&a).await, jwks(&b).await);
    assert_eq!(jwks(&b).await["keys"].as_array().unwrap().len(), 2);
    let (alice, bob) = (b.refreshed(&alice).await, a.refreshed(&bob).await);
    assert_eq!((kid(&alice), kid(&bob)), (old_kid.clone(), old_kid.clone()));
    // Past the publish delay both sign with it; tokens of the old key still verify on both.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (alice2, bob2) = (a.refreshed(&alice).await, b.refreshed(&bob).await);
    assert_ne!(kid(&alice2), old_kid);
    assert_eq!(kid(&alice2), kid(&bob2), "the same new key on both");
    assert_eq!(b.secret_status(&alice.access_token).await, 200);
    assert_eq!(a.secret_status(&bob2.access_token).await, 200);
}

#[tokio::test]
async fn the_per_address_limit_holds_across_instances() {
    let Some((a, b)) = pair(|c| c.rate_limits.signup = 4).await else { return };
    let mut statuses = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let res = app.post("/api/auth/signup", json!({"username": format!("user{i}"), "password": PASSWORD})).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 201, 429, 429, 429, 429], "4 a minute in all, not 4 each");
    // Another address has its own allowance, on either instance.
    let other = client_from("127.0.0.2", "baton-tests");
    let res = other
        .post(b.url("/api/auth/signup"))
        .json(&json!({"username": "carol", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A load balancer in front of the instances: requests go round the instances in rotation; a
/// connection refused or cut (an instance going away) is retried on another, as a proxy does.
#[derive(Clone, Default)]
struct Balancer {
    bases: std::sync::Arc<std::sync::RwLock<Vec<String>>>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Balancer {
    fn set(&self, bases: Vec<String>) {
        *self.bases.write().unwrap() = bases;
    }

    /// The status, and the new pair when it is a 200 (`None` for any other answer).
    async fn refresh(&self, http: &reqwest::Client, refresh_token: &str) -> (u16, Option<TokenResponse>) {
        for _ in 0..50 {
            let bases = self.bases.read().unwrap().clone();
            let base = &bases[self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % bases.len()];
            let sent = http
                .post(format!("{base}/api/auth/refresh"))
                .json(&json!({"refreshToken": refresh_token}))
                .send()
                .await;
            match sent {
                Ok(res) => {
                    let status = res.status().as_u16();
                    return (status, res.json::<TokenResponse>().await.ok());
                }
                // The answer may be lost after the refresh was done: the retry is the same
                // client's duplicate, which the grace window answers with the same pair.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!("no instance answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_refresh_load_loses_no_session_and_answers_no_5xx() {
    let Some((a, b)) = pair(|_| {}).await else { return };
    let balancer = Balancer::default();
    balancer.set(vec![a.base.clone(), b.base.clone()]);
    let mut chains = Vec::new();
    for i in 0..16 {
        chains.push(a.signup(&format!("user{i}")).await.refresh_token);
    }
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let clients: Vec<_> = chains
        .into_iter()
        .map(|mut refresh_token| {
            let (balancer, running) = (balancer.clone(), running.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
                while running.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, tokens) = balancer.refresh(&http, &refresh_token).await;
                    *statuses.entry(status).or_default() += 1;
                    if status == 200 {
                        refresh_token = tokens.expect("a 200 carries the new pair").refresh_token;
                    }
                }
                (refresh_token, statuses)
            })
        })
        .collect();

    // One instance at a time: out of the balancer, drained, restarted, back in.
    tokio::time::sleep(Duration::from_millis(700)).await;
    balancer.set(vec![b.base.clone()]);
    let a = start(a.stop().await).await;
    balancer.set(vec![a.base.clone(), b.base.clone()]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    balancer.set(vec![a.base.clone()]);
    let b = start(b.stop().await).await;
    balancer.set(vec![a.base.clone(), b.base.clone()]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    running.store(false, std::sync::atomic::Ordering::Relaxed);

    let mut total = std::collections::BTreeMap::<u16, u32>::new();
    for client in clients {
        let (refresh_token, statuses) = client.await.unwrap();
        for (status, n) in statuses {
            *total.entry(status).or_default() += n;
        }
        // No session was lost: each chain goes on, on either instance.
        assert_eq!(b.refresh(&refresh_token).await.status(), 200, "{total:?}");
    }
    eprintln!("rolling restart: refresh answers by status {total:?}");
    assert_eq!(total.keys().copied().collect::<Vec<_>>(), [200], "only 200s: {total:?}");
    assert!(total[&200] > 100, "the load ran: {total:?}");
}

#[tokio::test]
async fn a_dpop_proof_used_on_one_instance_is_refused_on_the_other() {
    let Some((a, b)) = pair(|_| {}).await else { return };
    let (key, tokens) = a.bound_session("alice").await;
    let access = tokens.access_token;
    // Behind a load balancer both instances answer one URL: here B's, sent to A with B's Host.
    let url = b.url("/api/users/secret");
    let proof = key.proof("GET", &url, Some(&access));
    let via_a = a
        .http
        .get(a.url("/api/users/secret"))
        .header("host", b.addr.to_string())
        .header("authorization", format!("DPoP {access}"))
        .header("DPoP", proof.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(via_a.status(), 200, "A accepts B's token and a proof for the shared URL");
    assert_error(b.secret_with("DPoP", &access, Some(proof)).await, 401, "invalid_dpop_proof").await;
}
