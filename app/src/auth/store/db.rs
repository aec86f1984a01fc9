//! The database: one `AnyPool` that is SQLite or PostgreSQL, chosen by `DATABASE_URL`.
//! Queries use `$1` placeholders, which both drivers accept, and portable types only.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

pub type Db = AnyPool;

/// One writing statement that owns its arguments: what a job gives the writer (see `writer`).
pub(crate) type Statement = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("cannot create the SQLite database: {0}")]
    Create(String),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// `timeout` bounds every database call: taking a connection, SQLite's wait for the write lock,
/// PostgreSQL's statements (lock waits included). Past it, the request gets a 503.
#[tracing::instrument(skip_all, fields(backend = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" }))]
pub async fn connect_and_migrate(url: &str, timeout: Duration) -> Result<Db, DbSetupError> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    let url = if is_sqlite { sqlite_url_creating_dir(url)? } else { url.to_owned() };
    let options = AnyConnectOptions::from_str(&url).map_err(DbSetupError::Connect)?;
    let pool = AnyPoolOptions::new()
        .max_connections(if is_sqlite { 8 } else { 16 })
        .acquire_timeout(timeout)
        .after_connect(move |conn, _meta| {
            let ms = timeout.as_millis();
            Box::pin(async move {
                if is_sqlite {
                    // WAL lets readers run beside the one writer; the busy timeout makes concurrent
                    // writers queue instead of failing; SQLite leaves foreign keys off unless asked.
                    // FULL syncs the WAL at every commit: an answered refresh survives a power cut
                    // (NORMAL would survive only the process dying). Group commit pays for it.
                    // A page cache of 1 MiB per connection (SQLite's default is 2): memory stays
                    // bounded whatever the database's size, and the OS caches the file anyway.
                    conn.execute(&*format!("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {ms}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -1024;"))
                        .await?;
                } else {
                    // A statement stuck behind a lock (or a database that stopped answering) is
                    // cancelled by the server; its transaction rolls back and the client gets a 503.
                    // A transaction left open (a bug, or sqlx losing track of one) would hold its
                    // locks for ever: PostgreSQL ends the session instead, and the pool replaces it.
                    conn.execute(&*format!("SET statement_timeout = {ms}; SET idle_in_transaction_session_timeout = {ms}"))
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(DbSetupError::Connect)?;
    sqlx::migrate!("./migrations").run(&pool).await.map_err(DbSetupError::Migrate)?;
    Ok(pool)
}

/// A small PostgreSQL pool whose commits do not wait for the disk (`synchronous_commit = off`),
/// for the shared rate limits: a crash may forget the last few milliseconds of counts, which
/// costs nothing, and a check no longer waits for an fsync while holding its bucket's row lock.
pub async fn connect_unsynced(url: &str, timeout: Duration) -> Result<Db, DbSetupError> {
    let options = AnyConnectOptions::from_str(url).map_err(DbSetupError::Connect)?;
    Ok(AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(timeout)
        .after_connect(move |conn, _meta| {
            let ms = timeout.as_millis();
            Box::pin(async move {
                conn.execute(&*format!("SET statement_timeout = {ms}; SET synchronous_commit = off")).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

/// `sqlite://data/baton.db` → creates `data/` (0700) and the file (0600) on first run: it holds
/// password hashes, so no other user of the machine may read it.
fn sqlite_url_creating_dir(url: &str) -> Result<String, DbSetupError> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if path != ":memory:" && !path.is_empty() {
        let path = std::path::Path::new(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            super::secret_file::create_private_dir(dir).map_err(DbSetupError::Create)?;
        }
        super::secret_file::create_private_file(path).map_err(DbSetupError::Create)?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Milliseconds since the Unix epoch: the unit of every timestamp column.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The constraint violation that means "someone else got there first".
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
