//! A burst of what real users do at once, from many addresses: no request may get a 5xx. On
//! SQLite this is what "database is locked" broke (a read-then-write transaction that cannot
//! upgrade its lock fails at once, whatever the busy timeout).

use crate::common::*;
use futures::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

const USERS: usize = 20;
const CLIENTS: usize = 200;
const ROUNDS: usize = 2;

/// One client's one request: what a person at one address does next.
enum Step {
    Login { username: String, password: &'static str },
    Signup(String),
    Secret(String),
    Refresh(String),
    Logout(String),
    FormLogin(String),
}

#[tokio::test]
async fn a_mixed_burst_from_200_clients_gets_no_5xx() {
    // The shipped rate limits, so that they are part of the mix; each client has its own address.
    let app = spawn_app_with(|c| {
        c.rate_limits.signup = 10;
        c.rate_limits.login = 30;
        c.rate_limits.refresh = 120;
        // Both cores hash, as in production on this machine; the test's own client is light.
        c.max_concurrent_hashes = 2;
    })
    .await;
    let names: Vec<String> = (0..USERS).map(|i| format!("member{i}")).collect();
    let mut sessions = Vec::new();
    for name in &names {
        sessions.push(signup_from(&app, name, 2 + sessions.len()).await);
    }

    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let steps: Vec<Step> = (0..CLIENTS)
            .map(|i| {
                let name = names[i % USERS].clone();
                let session = &sessions[(i + round) % USERS];
                match i % 8 {
                    0 => Step::Login { username: name, password: PASSWORD },
                    1 => Step::Login { username: name, password: "not the password" },
                    2 => Step::Login { username: format!("stranger{round}x{i}"), password: PASSWORD },
                    3 => Step::Signup(format!("newcomer{round}x{i}")),
                    4 => Step::Secret(session.access_token.clone()),
                    5 => Step::Refresh(session.refresh_token.clone()),
                    6 => Step::Logout(sessions[(i / 8 + round * 7) % USERS].refresh_token.clone()),
                    _ => Step::FormLogin(name),
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let results = join_all(steps.into_iter().enumerate().map(|(i, step)| run(&app, client(2 + i), step))).await;
        println!("round {round}: {CLIENTS} requests at once, answered in {} ms", started.elapsed().as_millis());
        for (status, body) in results {
            assert!(status < 500, "a {status} in round {round}: {body}");
            *statuses.entry(status).or_default() += 1;
        }
        // Fresh sessions for the next round: some were logged out or rotated.
        for (i, name) in names.iter().enumerate() {
            let res = client(2 + i)
                .post(app.url("/api/auth/login"))
                .json(&json!({"username": name, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            if res.status() == 200 {
                sessions[i] = res.json().await.unwrap();
            }
        }
    }
    println!("statuses of {} requests: {statuses:?}", CLIENTS * ROUNDS);
    assert!(statuses.get(&200).copied().unwrap_or(0) > CLIENTS / 4, "most of the mix succeeds: {statuses:?}");
}

/// An HTTP client whose requests come from 127.0.0.`n`.
fn client(n: usize) -> reqwest::Client {
    let ip = Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250 + 1) as u8);
    reqwest::Client::builder().local_address(IpAddr::V4(ip)).user_agent("baton-load").build().unwrap()
}

async fn signup_from(app: &TestApp, username: &str, n: usize) -> TokenResponse {
    let res = client(n)
        .post(app.url("/api/auth/signup"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn run(app: &TestApp, http: reqwest::Client, step: Step) -> (u16, String) {
    let req = match step {
        Step::Login { username, password } => {
            http.post(app.url("/api/auth/login")).json(&json!({"username": username, "password": password}))
        }
        Step::Signup(username) => {
            http.post(app.url("/api/auth/signup")).json(&json!({"username": username, "password": PASSWORD}))
        }
        Step::Secret(access) => http.get(app.url("/api/users/secret")).bearer_auth(access),
        Step::Refresh(refresh) => http.post(app.url("/api/auth/refresh")).json(&json!({"refreshToken": refresh})),
        Step::Logout(refresh) => http.post(app.url("/api/auth/logout")).json(&json!({"refreshToken": refresh})),
        Step::FormLogin(username) => {
            http.post(app.url("/api/fn/login")).form(&[("username", username.as_str()), ("password", PASSWORD)])
        }
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}
