//! The auth core (server only). One [`AuthService`] serves both adapters: the Leptos server
//! functions in `crate::server_fns` and the REST API in the `server` crate.
//!
//! - `accounts`: signup, login, the current user.
//! - `sessions`: refresh-token rotation with reuse detection, logout, session listing;
//!   `refresh_token`: the token's format. `retention`: deleting what is no longer needed.
//! - `writer`: the write queue and group commit. `cache`: what protected calls remember;
//!   `revocations`: telling every instance that sessions ended.
//! - `access_token`: Ed25519 JWTs. `keys`: the keys all instances share, in the database.
//!   `password`: Argon2id off the executor.
//! - `dpop`: DPoP proofs (RFC 9449) and sessions bound to a client's key.
//! - `throttle`: per-address rate limits and per-account login backoff.
//! - `network`: who the client is behind trusted proxies; the networks that limits count by.
//! - `events`: the security event log. `admin`: what the operator's command line does.

pub mod access_token;
mod accounts;
pub mod admin;
mod cache;
pub mod config;
pub mod db;
pub mod dpop;
mod events;
mod handoff;
pub mod keys;
pub mod network;
pub mod password;
mod refresh_token;
mod retention;
mod revocations;
mod secret_file;
mod sessions;
mod throttle;
mod writer;

pub use access_token::{AccessClaims, TokenSigner};
pub use cache::LIVENESS_TTL_MS;
pub use accounts::secret_for;
pub use config::{Config, ConfigError};
pub use db::Db;
pub use sessions::SessionRow;

use crate::error::AppError;
use std::sync::Arc;

/// Who made a request, for the session list and the security log (trimmed to bounded lengths),
/// and its DPoP proof with what the proof must name.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub dpop: Option<dpop::ProofRequest>,
    /// The request does not say it comes from a page of another origin (`Sec-Fetch-Site`, else
    /// `Origin`); a client that is no browser says nothing and counts as same-origin.
    pub same_origin: bool,
}

impl ClientInfo {
    pub fn new(user_agent: Option<&str>, ip: Option<String>) -> Self {
        Self { user_agent: user_agent.map(|ua| ua.chars().take(256).collect()), ip, dpop: None, same_origin: false }
    }

    /// From a request (its peer address is present when served with connect info); see
    /// [`network::TrustedProxies::client_address`]. The URL a DPoP proof must name is this
    /// request's path under `PUBLIC_URL`, or where that is unset, as the client addressed it: its
    /// `Host`, and the scheme a trusted proxy reports (see `dpop::verify`).
    pub fn from_request(
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        proxies: &network::TrustedProxies,
    ) -> Self {
        let user_agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
        let mut client = Self::new(user_agent, proxies.client_address(headers, peer).map(|ip| ip.to_string()));
        let from_proxy = peer.is_some_and(|p| proxies.contains(p.ip().to_canonical()));
        let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).filter(|_| from_proxy);
        let scheme = match forwarded {
            Some("https") => "https",
            Some(_) | None => uri.scheme_str().unwrap_or("http"),
        };
        let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).or(uri.host()).unwrap_or_default();
        let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or_default());
        client.same_origin = match (text("sec-fetch-site"), text("origin")) {
            (Some(site), _) => site == "same-origin",
            (None, Some(origin)) => dpop::origin(origin).is_some_and(|o| Some(o) == dpop::origin(&format!("{scheme}://{host}"))),
            (None, None) => true,
        };
        let mut proofs = headers.get_all("dpop").iter();
        if let Some(first) = proofs.next() {
            // RFC 9449 §4.3: exactly one proof; two (or one that is not text) is none valid.
            let proof = if proofs.next().is_some() { "" } else { first.to_str().unwrap_or_default() };
            client.dpop = Some(dpop::ProofRequest {
                proof: proof.to_owned(),
                method: method.as_str().to_owned(),
                htu: format!("{scheme}://{host}{}", uri.path()),
                path: uri.path().to_owned(),
            });
        }
        client
    }
}

/// The caller of a protected endpoint, from a verified access token of a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub session_id: String,
    /// Read with the session's liveness (see `cache`).
    pub user: Arc<crate::api::User>,
}

#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: Config,
    signer: TokenSigner,
    hasher: password::PasswordHasher,
    /// Authenticate refresh tokens (see `refresh_token`).
    rotation: keys::RotationKeys,
    writer: writer::Writer,
    rate_limiter: throttle::RateLimiter,
    /// Accounts whose password is being confirmed now (see `throttle::Confirming`).
    confirming: throttle::InFlight,
    /// PostgreSQL: where the shared rate limits are counted (see `db::connect_unsynced`).
    limits_db: Option<Db>,
    /// DPoP proofs already used.
    dpop_replays: dpop::Replays,
    verified: cache::VerifiedTokens,
    live: cache::LiveSessions,
    users: cache::KnownUsers,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbSetupError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("password hasher: {0}")]
    Hasher(AppError),
}

impl AuthService {
    /// Connects, migrates, loads (or makes) the keys. Everything a request needs is ready after this.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let db = db::connect_and_migrate(&config.database_url, config.db_timeout).await?;
        secret_file::create_private_dir(&config.data_dir).map_err(StartError::Keys)?;
        let loaded = keys::prepare(&db, &config).await.map_err(StartError::Keys)?;
        let signer = TokenSigner::new(
            loaded.signing,
            &config.jwt_issuer,
            &config.jwt_audience,
            config.access_token_ttl,
            config.jwt_leeway,
        );
        let rotation = keys::RotationKeys::default();
        rotation.set(loaded.rotation);
        let hasher = password::PasswordHasher::new(config.argon2, config.max_concurrent_hashes)
            .await
            .map_err(StartError::Hasher)?;
        let writer = writer::Writer::new(db.clone(), config.is_sqlite());
        let rate_limiter = throttle::RateLimiter::new(config.rate_limits);
        let limits_db = match config.is_sqlite() {
            true => None,
            false => Some(db::connect_unsynced(&config.database_url, config.db_timeout).await?),
        };
        let inner = Inner {
            db,
            config,
            signer,
            hasher,
            rotation,
            writer,
            rate_limiter,
            confirming: Default::default(),
            dpop_replays: match &limits_db {
                Some(db) => dpop::Replays::Shared(db.clone()),
                None => dpop::Replays::Memory(Default::default()),
            },
            limits_db,
            verified: Default::default(),
            live: Default::default(),
            users: Default::default(),
        };
        let service = Self { inner: Arc::new(inner) };
        retention::spawn(&service);
        keys::spawn_polling(&service);
        revocations::spawn_listener(&service);
        Ok(service)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn writer(&self) -> &writer::Writer {
        &self.inner.writer
    }

    /// See [`writer::Writer::begin`].
    pub(crate) async fn begin_write(&self) -> Result<writer::WriteTx<'_>, sqlx::Error> {
        self.inner.writer.begin().await
    }

    /// See [`writer::Writer::execute`].
    pub(crate) async fn execute_write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, sqlx::Error> {
        self.inner.writer.execute(query).await
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.inner.signer.jwks()
    }

    /// `GET /healthz`: the database answers.
    pub async fn healthy(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.inner.db).await.is_ok()
    }

    /// Verifies the access token and that its session still lives: `Authorization: Bearer …`
    /// for a bearer session; `Authorization: DPoP …` with a proof of the session's key for a
    /// DPoP-bound one (see `dpop`).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, authorization: Option<&str>, client: &ClientInfo) -> Result<Principal, AppError> {
        let (scheme, token) = access_credential(authorization).ok_or(AppError::InvalidToken)?;
        let (now, leeway) = (db::now_ms() / 1000, self.config().jwt_leeway.as_secs() as i64);
        let claims = match self.inner.verified.get(token, now, leeway) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.inner.signer.verify(token)?);
                self.inner.verified.insert(token, claims.clone(), now, leeway);
                claims
            }
        };
        match (&claims.cnf, scheme) {
            (Some(cnf), Scheme::Dpop) => self.check_proof(client, Some(token), Some(&cnf.jkt)).await.map(drop)?,
            // A bound token sent as a bearer token is what a thief without the key would do.
            (Some(_), Scheme::Bearer) | (None, Scheme::Dpop) => return Err(AppError::InvalidToken),
            (None, Scheme::Bearer) if self.config().dpop_required => return Err(AppError::InvalidToken),
            (None, Scheme::Bearer) => {}
        }
        let user = self.live_user(&claims).await?;
        Ok(Principal { user_id: claims.sub.clone(), session_id: claims.sid.clone(), user })
    }
}

/// The credential of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    access_credential(header).and_then(|(scheme, token)| (scheme == Scheme::Bearer).then_some(token))
}

/// Whether `Authorization` presents a DPoP-bound access token (`DPoP <token>`): only then does a
/// protected call need the request's DPoP proof and URL.
pub fn presents_dpop(header: Option<&str>) -> bool {
    access_credential(header).is_some_and(|(scheme, _)| scheme == Scheme::Dpop)
}

/// How an access token is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    /// RFC 9449: with a `DPoP` proof header.
    Dpop,
}

/// `Authorization: Bearer <token>` or `DPoP <token>` (schemes are case-insensitive).
fn access_credential(header: Option<&str>) -> Option<(Scheme, &str)> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    let scheme = match scheme {
        s if s.eq_ignore_ascii_case("bearer") => Scheme::Bearer,
        s if s.eq_ignore_ascii_case("dpop") => Scheme::Dpop,
        _ => return None,
    };
    (!token.is_empty() && token.len() <= 4096).then_some((scheme, token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_header_parsing() {
        use super::bearer_token;
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Some("abc"));
        for bad in [None, Some(""), Some("Bearer"), Some("Bearer "), Some("Basic abc"), Some("abc")] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }
}
