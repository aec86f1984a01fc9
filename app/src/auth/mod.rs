//! The auth core (server only). One [`AuthService`] serves both adapters: the Leptos server
//! functions in `crate::server_fns` and the REST API in the `server` crate.
//!
//! - `accounts`: signup, login, the current user.
//! - `sessions`: refresh-token rotation with reuse detection, logout, session listing.
//! - `access_token`: Ed25519 JWTs and their keys. `password`: Argon2id off the executor.
//! - `throttle`: per-address rate limits and per-account login backoff.
//! - `network`: who the client is behind trusted proxies; the networks that limits count by.
//! - `events`: the security event log. `admin`: what the operator's command line does.

pub mod access_token;
mod accounts;
pub mod admin;
pub mod config;
pub mod db;
mod events;
pub mod network;
pub mod password;
mod secret_file;
mod sessions;
mod throttle;

pub use access_token::{AccessClaims, TokenSigner};
pub use accounts::secret_for;
pub use config::{Config, ConfigError};
pub use db::Db;
pub use sessions::SessionRow;

use crate::error::AppError;
use std::sync::Arc;

/// A place at the head of the SQLite write queue, held until the write is done; `None` on PostgreSQL.
type WriteTurn<'a> = Option<tokio::sync::MutexGuard<'a, ()>>;

/// A write transaction together with its place in the write queue: committing, rolling back or
/// dropping it gives up both. While one is open, the same task must not start another write.
pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: WriteTurn<'a>,
}

impl WriteTx<'_> {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Who made a request, for the session list and the security log. Trimmed to bounded lengths.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl ClientInfo {
    pub fn new(user_agent: Option<&str>, ip: Option<String>) -> Self {
        Self { user_agent: user_agent.map(|ua| ua.chars().take(256).collect()), ip }
    }

    /// From a request's headers and its peer address (present when served with connect info);
    /// see [`network::TrustedProxies::client_address`].
    pub fn from_request(
        headers: &http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        proxies: &network::TrustedProxies,
    ) -> Self {
        let user_agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
        Self::new(user_agent, proxies.client_address(headers, peer).map(|ip| ip.to_string()))
    }
}

/// The caller of a protected endpoint, from a verified access token of a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub session_id: String,
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
    /// Keys the derivation of each refresh token from its predecessor (see `sessions`).
    rotation_key: [u8; 32],
    /// SQLite has one writer at a time; its busy handler makes the others sleep and retry, which
    /// turns contention into 100 ms stalls. Queueing every write of this process here instead
    /// keeps them short (`begin_write`, `execute_write`). `None` on PostgreSQL, whose row locks
    /// do this properly.
    sqlite_writer: Option<tokio::sync::Mutex<()>>,
    rate_limiter: throttle::RateLimiter,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbSetupError),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("password hasher: {0}")]
    Hasher(AppError),
}

impl AuthService {
    /// Connects, migrates, loads (or makes) the keys. Everything a request needs is ready after this.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let db = db::connect_and_migrate(&config.database_url, config.db_timeout).await?;
        let signer = TokenSigner::load_or_create(
            &config.data_dir,
            &config.jwt_issuer,
            &config.jwt_audience,
            config.access_token_ttl,
            config.jwt_leeway,
        )
        .map_err(StartError::Keys)?;
        let rotation_key = secret_file::read_or_create(&config.data_dir.join("refresh-rotation.key"))
            .map_err(StartError::Keys)?;
        let hasher = password::PasswordHasher::new(config.argon2, config.max_concurrent_hashes)
            .await
            .map_err(StartError::Hasher)?;
        let sqlite_writer = config.is_sqlite().then(|| tokio::sync::Mutex::new(()));
        let rate_limiter = throttle::RateLimiter::new(config.rate_limits);
        let service =
            Self { inner: Arc::new(Inner { db, config, signer, hasher, rotation_key, sqlite_writer, rate_limiter }) };
        if let Err(e) = service.forget_old_login_attempts().await {
            tracing::warn!(error = %e, "could not forget old login attempts");
        }
        Ok(service)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Begins a write transaction. On SQLite it first waits for the writes queued before it, then
    /// takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// before it writes fails at once with "database is locked" when another connection (another
    /// process, say) committed in between, whatever the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'_>, sqlx::Error> {
        let turn = self.write_turn().await;
        let tx = match turn {
            Some(_) => self.inner.db.begin_with("BEGIN IMMEDIATE").await?,
            None => self.inner.db.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Runs one writing statement in its own transaction, queued like [`Self::begin_write`].
    pub(crate) async fn execute_write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, sqlx::Error> {
        let _turn = self.write_turn().await;
        Ok(query.execute(&self.inner.db).await?.rows_affected())
    }

    async fn write_turn(&self) -> WriteTurn<'_> {
        match &self.inner.sqlite_writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.inner.signer.jwks()
    }

    /// `GET /healthz`: the database answers.
    pub async fn healthy(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.inner.db).await.is_ok()
    }

    /// Verifies `Authorization: Bearer <access token>` and that its session still lives.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AppError> {
        let token = bearer_token(authorization).ok_or(AppError::InvalidToken)?;
        let claims = self.inner.signer.verify(token)?;
        self.check_session_alive(&claims).await?;
        Ok(Principal { user_id: claims.sub, session_id: claims.sid })
    }
}

/// The credential of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 4096).then_some(token)
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
