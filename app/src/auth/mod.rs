//! The auth core (server only). One [`AuthService`] serves both adapters: the Leptos server
//! functions in `crate::server_fns` and the REST API in the `server` crate. This file only wires
//! the service; each concern is a folder or a file of its own:
//!
//! - `caller`: who is calling (address, user agent, DPoP proof, `Authorization`), and
//!   `authenticate` for protected calls. `origin`: URLs and origins compared as the RFCs say.
//! - `accounts`: signup, login, change password, delete account, the current user.
//! - `credentials/`: how a person proves who they are (`password`: Argon2id off the executor).
//! - `tokens/`: what Baton issues and checks: `access` JWTs, the `refresh` token's format, the
//!   `keys` all instances share, and `dpop/`, every check that a request holds a session's key.
//! - `sessions/`: the session's life: start, list and end (`mod`), `refresh` with reuse
//!   detection, the batched `rotation`, `revocation` (the one way sessions end), `cache`,
//!   `retention`, and the `handoff` between the pages of a tab.
//! - `limits/`: `rate` limits per address, login `backoff` per account, password
//!   `confirmations`, and the `network` a client counts by.
//! - `store/`: the database (`db`), the one write queue (`writer`), private files. Mechanisms only:
//!   nothing in it knows a use case.
//! - `mail/`: the queue mail waits in and its sender (SMTP or files); `letters`: what each mail
//!   says, and the notices that tell a person what happened to their account.
//! - `events`: the security event log. `admin`: the operator's command line. `settings`: every
//!   setting, read, checked, printed and documented in one table.

mod accounts;
pub mod admin;
pub mod caller;
mod credentials;
mod events;
mod letters;
pub mod limits;
pub(crate) mod mail;
pub mod origin;
mod sessions;
pub mod settings;
pub mod store;
pub mod tokens;

pub use accounts::secret_for;
pub use caller::{bearer_token, presents_dpop, ClientInfo, Principal};
pub use sessions::{SessionRow, LIVENESS_TTL_MS};
pub use settings::{AuthSettings, SettingError};
pub use store::db::Db;
pub use tokens::access::{AccessClaims, TokenSigner};

use crate::error::AppError;
use credentials::password::PasswordHasher;
use limits::confirmations::InFlight;
use limits::rate::RateLimiter;
use sessions::rotation::Rotation;
use std::sync::Arc;
use store::{db, secret_file, writer};
use tokens::{dpop, keys};

#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    settings: AuthSettings,
    signer: TokenSigner,
    hasher: PasswordHasher,
    /// Authenticate refresh tokens (see `tokens::refresh`).
    rotation: keys::RotationKeys,
    writer: writer::Writer<Rotation>,
    rate_limiter: RateLimiter,
    /// Accounts whose password is being confirmed now (see `limits::confirmations`).
    confirming: InFlight,
    /// PostgreSQL: where the shared rate limits are counted (see `db::connect_unsynced`).
    limits_db: Option<Db>,
    /// DPoP proofs already used.
    dpop_replays: dpop::Replays,
    verified: sessions::cache::VerifiedTokens,
    live: sessions::cache::LiveSessions,
    users: sessions::cache::KnownUsers,
    outbox: mail::Outbox,
    /// Where links point without `PUBLIC_URL`: the server's own address, once it listens.
    local_origin: std::sync::OnceLock<String>,
    /// Password-reset requests being looked up in the background (see `accounts::reset`).
    reset_lookups: accounts::reset::Lookups,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] db::DbSetupError),
    #[error("data directory: {0}")]
    DataDir(String),
    #[error("keys: {0}")]
    Keys(#[from] keys::KeyError),
    #[error("password hasher: {0}")]
    Hasher(AppError),
    #[error("mail: {0}")]
    Mail(String),
}

impl AuthService {
    /// Connects, migrates, loads (or makes) the keys. Everything a request needs is ready after this.
    pub async fn start(settings: AuthSettings) -> Result<Self, StartError> {
        let db = db::connect_and_migrate(&settings.database_url, settings.db_timeout).await?;
        secret_file::create_private_dir(&settings.data_dir).map_err(StartError::DataDir)?;
        let loaded = keys::prepare(&db, &settings).await?;
        let signer = TokenSigner::new(
            loaded.signing,
            &settings.jwt_issuer,
            &settings.jwt_audience,
            settings.access_token_ttl,
            settings.jwt_leeway,
        );
        let rotation = keys::RotationKeys::default();
        rotation.set(loaded.rotation);
        let hasher =
            PasswordHasher::new(settings.argon2, settings.max_concurrent_hashes).await.map_err(StartError::Hasher)?;
        let outbox = mail::Outbox::new(&settings).map_err(StartError::Mail)?;
        let writer = writer::Writer::new(db.clone(), settings.is_sqlite());
        let rate_limiter = RateLimiter::new(settings.rate_limits);
        let limits_db = match settings.is_sqlite() {
            true => None,
            false => Some(db::connect_unsynced(&settings.database_url, settings.db_timeout).await?),
        };
        let inner = Inner {
            db,
            signer,
            hasher,
            rotation,
            writer,
            rate_limiter,
            confirming: Default::default(),
            dpop_replays: match &limits_db {
                Some(db) => dpop::Replays::Shared(dpop::SharedReplays::start(db.clone())),
                None => dpop::Replays::Memory(Box::new(dpop::MemoryReplays::new(settings.dpop_replay_capacity))),
            },
            limits_db,
            verified: sessions::cache::VerifiedTokens::new(settings.cache_capacity),
            live: sessions::cache::LiveSessions::new(settings.cache_capacity),
            users: sessions::cache::KnownUsers::new(settings.cache_capacity),
            outbox,
            local_origin: Default::default(),
            reset_lookups: Default::default(),
            settings,
        };
        let service = Self { inner: Arc::new(inner) };
        sessions::retention::spawn(&service);
        keys::spawn_polling(&service);
        sessions::revocation::spawn_listener(&service);
        mail::spawn(&service);
        Ok(service)
    }

    /// The address the server listens at, for links when `PUBLIC_URL` is unset (`localhost` for
    /// loopback: a browser treats it as a secure context, and passkeys need a name, not an IP).
    pub fn listening_at(&self, addr: std::net::SocketAddr) {
        let host = if addr.ip().is_loopback() { "localhost".to_owned() } else { addr.ip().to_string() };
        let host = if addr.is_ipv6() && !addr.ip().is_loopback() { format!("[{host}]") } else { host };
        let _ = self.inner.local_origin.set(format!("http://{host}:{}", addr.port()));
    }

    /// `PUBLIC_URL`'s first origin, else the server's own address.
    fn link_origin(&self) -> String {
        match self.inner.settings.public_urls.first() {
            Some(origin) => origin.clone(),
            None => self.inner.local_origin.get().cloned().unwrap_or_else(|| "http://localhost:3000".into()),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    fn writer(&self) -> &writer::Writer<Rotation> {
        &self.inner.writer
    }

    /// See [`writer::Writer::begin`].
    async fn begin_write(&self) -> Result<writer::WriteTx<'_>, sqlx::Error> {
        self.inner.writer.begin().await
    }

    /// See [`writer::Writer::execute`].
    async fn execute_write<'q>(
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
}
