//! `spawn_app()`: the real server on 127.0.0.1:0 with a fresh database, and a client for it.
//! SQLite files in a temporary directory by default; with `BATON_TEST_PG_URL` set (the test
//! command starts a PostgreSQL cluster and sets it), a fresh PostgreSQL database per test instead.
#![allow(dead_code)]

/// What signup, login and refresh answer: the helpers return it, so the tests read fields, not keys.
pub use app::api::TokenResponse;
use app::auth::{AuthService, AuthSettings};
use leptos::prelude::LeptosOptions;
use serde_json::{json, Value};
use server::settings::{HttpSettings, Settings};
use sqlx::Connection;
use std::net::SocketAddr;
use std::path::PathBuf;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub auth: AuthService,
    pub config: AuthSettings,
    pub http_settings: HttpSettings,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// With the HTTP server's settings (limits, CORS, HSTS) adjusted by `tweak`.
pub async fn spawn_app_with_http(tweak: impl FnOnce(&mut HttpSettings)) -> TestApp {
    let mut http = default_http();
    tweak(&mut http);
    start_serving(fresh_config(|_| {}).await, http, "target/site").await
}

fn default_http() -> HttpSettings {
    HttpSettings::from_lookup(|_| None).expect("defaults")
}

/// The settings every test server starts from, in-process or as a binary.
const TEST_SETTINGS: [(&str, &str); 7] = [
    // Cheap hashes keep the suite fast; the parameters themselves are tested in `app`.
    ("ARGON2_MEMORY_KIB", "8192"),
    ("ARGON2_ITERATIONS", "1"),
    // Every test comes from 127.0.0.1; the throttling tests switch these on.
    ("RATE_LIMIT_SIGNUP", "0"),
    ("RATE_LIMIT_LOGIN", "0"),
    ("RATE_LIMIT_REFRESH", "0"),
    ("RATE_LIMIT_SESSIONS", "0"),
    ("RATE_LIMIT_RESET", "0"),
];

/// `tweak` adjusts the configuration before start (short lifetimes, no grace window, …).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut AuthSettings)) -> TestApp {
    start(fresh_config(tweak).await).await
}

/// The test settings, a fresh data directory and a fresh database, adjusted by `tweak`.
async fn fresh_config(tweak: impl FnOnce(&mut AuthSettings)) -> AuthSettings {
    let data_dir = temp_dir();
    let mut config = AuthSettings::from_lookup(|name| match name {
        "BATON_DATA_DIR" => Some(data_dir.display().to_string()),
        _ => TEST_SETTINGS.iter().find(|(var, _)| *var == name).map(|(_, value)| value.to_string()),
    })
    .expect("test configuration");
    config.database_url = fresh_database(&data_dir).await.into();
    tweak(&mut config);
    config
}

/// Two instances on one database, each with its own data directory, started at the same instant
/// (on an empty database: nothing is created before both start).
pub async fn spawn_pair(tweak: impl Fn(&mut AuthSettings)) -> (TestApp, TestApp) {
    let a = fresh_config(&tweak).await;
    let b = AuthSettings { data_dir: temp_dir(), ..a.clone() };
    tokio::join!(start(a), start(b))
}

/// A client of its own, from `local` (127.0.0.2, .3 …: another machine) with `user_agent`.
pub fn client_from(local: &str, user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .user_agent(user_agent)
        .build()
        .unwrap()
}

/// The test client stands for a reverse proxy: its `X-Forwarded-For` names the client.
pub fn trust_local_proxy(config: &mut AuthSettings) {
    config.trusted_proxies =
        app::auth::limits::network::TrustedProxies { nets: vec!["127.0.0.1".parse().unwrap()], max_hops: 0 };
}

/// Starts a server on an existing configuration (the same database and keys: a restart).
pub async fn start(config: AuthSettings) -> TestApp {
    start_serving(config, default_http(), "target/site").await
}

/// A server whose site (the build output under `<site_root>/pkg`) is the test's own.
pub async fn spawn_app_serving(site_root: &std::path::Path) -> TestApp {
    start_serving(fresh_config(|_| {}).await, default_http(), &site_root.display().to_string()).await
}

async fn start_serving(config: AuthSettings, http: HttpSettings, site_root: &str) -> TestApp {
    init_test_log();
    let options = LeptosOptions::builder().output_name("baton").site_root(site_root).build();
    let server::Spawned { addr, auth, stop, done } =
        server::spawn(Settings { auth: config.clone(), http: http.clone() }, options, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("server starts");
    TestApp {
        addr,
        base: format!("http://{addr}"),
        http: reqwest::Client::builder().user_agent("baton-tests").build().unwrap(),
        auth,
        config,
        http_settings: http,
        stop: Some(stop),
        done: Some(done),
    }
}

/// `TEST_LOG=1 cargo test …` shows the in-process servers' logs (filtered by `RUST_LOG`, default
/// `info,sqlx=warn`); without it the tests stay quiet.
fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

/// The real `server` binary, for what only a process shows: its log and its signals.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    pub log: PathBuf,
}

/// Starts the binary with a fresh database in `data_dir` (or the given `DATABASE_URL`) and the
/// test settings plus `env`, and waits for it to listen on its port-0 address.
pub async fn start_binary(data_dir: &std::path::Path, database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
    std::fs::create_dir_all(data_dir).unwrap();
    let log = data_dir.join(format!("server-{}.log", uuid::Uuid::new_v4()));
    let out = std::fs::File::create(&log).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("BATON_DATA_DIR", data_dir.to_str().unwrap()),
            ("DATABASE_URL", database_url),
            ("LEPTOS_SITE_ADDR", "127.0.0.1:0"),
            ("LEPTOS_OUTPUT_NAME", "baton"),
            ("LEPTOS_SITE_ROOT", "target/site"),
        ])
        .envs(TEST_SETTINGS)
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("the server binary starts");
    for _ in 0..300 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("listening on ").nth(1) {
            // Text or JSON logs: the address ends at a space or a quote.
            let base = rest.split(|c: char| c.is_whitespace() || c == '"').next().unwrap().to_owned();
            return ServerProcess { child, base, log };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
}

/// Runs `server <args>` (an operator's command) on `app`'s database and data directory, with the
/// test settings plus `env`.
pub async fn run_cli(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    run_cli_on(&app.config, args, env).await
}

/// [`run_cli`] on a configuration's database and data directory, with no server running.
pub async fn run_cli_on(config: &AuthSettings, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BATON_DATA_DIR", &config.data_dir)
        .env("DATABASE_URL", &*config.database_url)
        .envs(TEST_SETTINGS)
        .envs(env.iter().copied())
        .args(args);
    tokio::task::spawn_blocking(move || command.output().expect("the server binary runs")).await.unwrap()
}

impl ServerProcess {
    /// SIGTERM, then waits for the exit; true when it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.send_signal("TERM");
        self.child.wait().expect("the server exits").success()
    }

    /// `signal`: TERM, INT, …
    pub fn send_signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database URL for a server process: SQLite under `data_dir`, or a new PostgreSQL database.
pub async fn fresh_database_url(data_dir: &std::path::Path) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    fresh_database(data_dir).await
}

pub fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("baton-test-{}", uuid::Uuid::new_v4()))
}

async fn fresh_database(data_dir: &std::path::Path) -> String {
    match std::env::var("BATON_TEST_PG_URL") {
        Ok(base) if !base.is_empty() => {
            let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&base).await.expect("BATON_TEST_PG_URL answers");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
            let (prefix, _) = base.rsplit_once('/').expect("BATON_TEST_PG_URL ends with /<database>");
            format!("{prefix}/{name}")
        }
        _ => format!("sqlite://{}/baton.db", data_dir.display()),
    }
}

pub fn is_postgres() -> bool {
    std::env::var("BATON_TEST_PG_URL").is_ok_and(|v| !v.is_empty())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Shuts the server down gracefully: waits until the requests in flight are answered.
    pub async fn stop(mut self) -> AuthSettings {
        drop(self.stop.take());
        if let Some(done) = self.done.take() {
            done.await.expect("the server task").expect("the server stops cleanly");
        }
        self.auth.db().close().await;
        self.config.clone()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(path)).json(&body).send().await.unwrap()
    }

    pub async fn get_with(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(bearer).send().await.unwrap()
    }

    /// Signs `username` up (password "correct horse battery") and returns the token response.
    pub async fn signup(&self, username: &str) -> TokenResponse {
        let res = self.post("/api/auth/signup", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(res.status(), 201, "signup of {username}");
        res.json().await.unwrap()
    }

    pub async fn login(&self, username: &str) -> TokenResponse {
        let res = self.post("/api/auth/login", json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(res.status(), 200, "login of {username}");
        res.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.post("/api/auth/refresh", json!({ "refreshToken": refresh_token })).await
    }

    /// Refreshes with the refresh token of `tokens`, which must succeed.
    pub async fn refreshed(&self, tokens: &TokenResponse) -> TokenResponse {
        let res = self.refresh(&tokens.refresh_token).await;
        assert_eq!(res.status(), 200, "refresh");
        res.json().await.unwrap()
    }

    /// `DELETE /api/account` as the holder of `access_token`, with `password`.
    pub async fn delete_account(&self, access_token: &str, password: &str) -> reqwest::Response {
        let body = json!({ "password": password });
        self.http.delete(self.url("/api/account")).bearer_auth(access_token).json(&body).send().await.unwrap()
    }

    pub async fn secret_status(&self, access_token: &str) -> u16 {
        self.get_with("/api/users/secret", access_token).await.status().as_u16()
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// The session an access token names (its `sid` claim), read without verifying it.
pub fn session_id(access_token: &str) -> String {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// A string field of a raw JSON body, for the tests that check the wire format itself; the others
/// read the `TokenResponse` the helpers return.
pub fn token(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_else(|| panic!("{field} in {body}")).to_owned()
}

/// Asserts the `{error, message}` shape and code, returning the body.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let body: Value = res.json().await.expect("JSON error body");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// The Argon2 parameters a server gets when nothing is set (the tests run with cheaper ones).
pub fn default_argon2() -> app::auth::settings::Argon2Settings {
    AuthSettings::from_lookup(|_| None).expect("the defaults").argon2
}
