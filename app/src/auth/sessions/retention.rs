//! Deleting what is no longer needed, so that storage grows with live sessions and recent events,
//! not with traffic. A background task runs every `PURGE_INTERVAL`:
//! - ended sessions (revoked, expired, or idle past `REFRESH_IDLE_TTL`), `SESSION_RETENTION`
//!   after they ended, with the refresh-token rows of sessions from before generations;
//! - security events older than `SECURITY_EVENT_RETENTION`;
//! - failed-login counts untouched for 30 days (names that never existed pile up otherwise);
//! - rate-limit buckets that are empty again (PostgreSQL); DPoP proofs, hand-offs and the login's
//!   second-step challenges past their lifetimes; mailed links a day after they expired; mails that failed for good, and mail
//!   written as files (no `SMTP_URL`), after a week;
//! - signing keys retired long enough that no token they signed can still be valid.
//!
//! Rows go in batches, each its own short write transaction: a request waits for one batch at most,
//! and a pause follows each (twice the batch's time for sessions), so a large purge yields.

use crate::auth::store::db::now_ms;
use crate::auth::AuthService;
use crate::error::AppError;
use std::time::Duration;

const BATCH: usize = 500;
/// Sessions go in smaller batches (each row is in five indexes): shorter bursts of work.
const SESSION_BATCH: usize = 200;
/// Failed-login counts are kept this long after their last change.
const LOGIN_COUNT_RETENTION_MS: i64 = 30 * 86_400_000;
/// A retired key stays in the JWKS this much longer, for resource servers with a leeway of their own.
const RETIRED_KEY_MARGIN: Duration = Duration::from_secs(60);

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub security_events: u64,
    pub login_attempts: u64,
    pub signing_keys: u64,
}

/// Starts the purge; it runs now and every `PURGE_INTERVAL`, until the service is dropped.
pub(crate) fn spawn(service: &AuthService) {
    let service = std::sync::Arc::downgrade(&service.inner);
    tokio::spawn(async move {
        loop {
            let Some(inner) = service.upgrade() else { return };
            let auth = AuthService { inner };
            let retention = auth.settings().retention;
            match auth.purge_older_than(retention.sessions, Some(retention.security_events)).await {
                Ok(purged) if purged != Purged::default() => tracing::info!(?purged, "purged old rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the purge failed; it runs again later"),
            }
            drop(auth);
            tokio::time::sleep(retention.interval).await;
        }
    });
}

impl AuthService {
    /// Deletes sessions that ended more than `sessions` ago, security events older than
    /// `security_events` (`None` keeps them all), and stale login counts.
    pub async fn purge_older_than(
        &self,
        sessions: Duration,
        security_events: Option<Duration>,
    ) -> Result<Purged, AppError> {
        let now = now_ms();
        let ended_before = now - sessions.as_millis() as i64;
        let idle_before = ended_before - self.settings().refresh_idle_ttl.as_millis() as i64;
        let mut purged = Purged::default();
        // One way of ending at a time, each on its own index (see the migration that made them).
        for (ended, before) in [
            ("revoked_at <= $1", ended_before),
            ("expires_at <= $1", ended_before),
            ("last_used_at <= $1", idle_before),
        ] {
            purged.sessions += self.purge_sessions(ended, before).await?;
        }
        if let Some(age) = security_events {
            let before = now - age.as_millis() as i64;
            purged.security_events = self
                .delete_in_batches(
                    "DELETE FROM security_events WHERE id IN (SELECT id FROM security_events WHERE at < $1 LIMIT $2)",
                    before,
                )
                .await?;
        }
        let before = now - LOGIN_COUNT_RETENTION_MS;
        purged.login_attempts = self
            .delete_in_batches(
                "DELETE FROM login_attempts WHERE username_key IN \
                 (SELECT username_key FROM login_attempts WHERE updated_at < $1 AND blocked_until < $1 LIMIT $2)",
                before,
            )
            .await?;
        // Empty rate-limit buckets (PostgreSQL's; SQLite's live in memory).
        self.delete_in_batches(
            "DELETE FROM rate_limit_buckets WHERE bucket IN (SELECT bucket FROM rate_limit_buckets WHERE tat < $1 LIMIT $2)",
            now,
        )
        .await?;
        // DPoP proofs too old to be accepted anyway (PostgreSQL's; SQLite's live in memory), a
        // minute late: a check that waited in line may still be about to look for one.
        self.delete_in_batches(
            "DELETE FROM dpop_proofs WHERE id IN (SELECT id FROM dpop_proofs WHERE expires_at < $1 LIMIT $2)",
            now - 60_000,
        )
        .await?;
        // Login challenges of the second step, used or not (5 minutes each).
        self.delete_in_batches(
            "DELETE FROM mfa_challenges WHERE challenge_hash IN \
             (SELECT challenge_hash FROM mfa_challenges WHERE expires_at < $1 LIMIT $2)",
            now,
        )
        .await?;
        // Setups of one-time codes never confirmed: their secrets need not wait in the database.
        self.delete_in_batches(
            "DELETE FROM totp_secrets WHERE user_id IN \
             (SELECT user_id FROM totp_secrets WHERE confirmed_at IS NULL AND created_at < $1 LIMIT $2)",
            now - crate::auth::credentials::one_time::SETUP_TTL_MS,
        )
        .await?;
        // Hand-offs nobody redeemed.
        self.delete_in_batches(
            "DELETE FROM handoffs WHERE id IN (SELECT id FROM handoffs WHERE expires_at < $1 LIMIT $2)",
            now,
        )
        .await?;
        // Mailed links a day past their expiry (the hourly caps count the last hour's only), and
        // mails that failed for good a week ago (their message is blanked already).
        self.delete_in_batches(
            "DELETE FROM link_tokens WHERE token_hash IN (SELECT token_hash FROM link_tokens WHERE expires_at < $1 LIMIT $2)",
            now - 86_400_000,
        )
        .await?;
        // Address counts whose hour is over.
        self.delete_in_batches(
            "DELETE FROM link_recipients WHERE (email_key, purpose) IN \
             (SELECT email_key, purpose FROM link_recipients WHERE window_start < $1 LIMIT $2)",
            now - 3_600_000,
        )
        .await?;
        self.delete_in_batches(
            "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox WHERE failed_at < $1 LIMIT $2)",
            now - 7 * 86_400_000,
        )
        .await?;
        // Without SMTP_URL: mail written as files a week ago (their links have long expired).
        purge_outbox_files(&self.settings().data_dir.join("outbox"), Duration::from_secs(7 * 86_400)).await;
        // A retired key may still sign on an instance that has not read the keys since, for one
        // poll interval; its tokens then live one token lifetime, verified with the leeway.
        let config = self.settings();
        let keep = config.access_token_ttl + config.jwt_leeway + config.keys.poll_interval + RETIRED_KEY_MARGIN;
        purged.signing_keys = crate::auth::tokens::keys::purge_retired(self.db(), keep.as_millis() as i64).await?;
        Ok(purged)
    }

    /// Deletes, in batches, the sessions (and their old refresh-token rows) that match `ended`
    /// with `$1` bound to `before`.
    async fn purge_sessions(&self, ended: &str, before: i64) -> Result<u64, AppError> {
        let find = format!("SELECT id FROM sessions WHERE {ended} LIMIT $2");
        // Not prepared once and reused: PostgreSQL's generic plan for `<= $1` under a LIMIT may
        // scan the table instead of the index, and then read every live session each batch.
        let mut total = 0;
        loop {
            let started = std::time::Instant::now();
            // Found by a read, deleted by id: the write holds the lock for the delete alone.
            let ids: Vec<String> = sqlx::query_scalar(&find)
                .bind(before)
                .bind(SESSION_BATCH as i64)
                .persistent(false)
                .fetch_all(self.db())
                .await?;
            if ids.is_empty() {
                return Ok(total);
            }
            let list = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let mut tx = self.begin_write().await?;
            // Tokens first: both databases cascade, but SQLite only with foreign keys on.
            let (tokens_sql, rows_sql) = (
                format!("DELETE FROM refresh_tokens WHERE session_id IN ({list})"),
                format!("DELETE FROM sessions WHERE id IN ({list})"),
            );
            let (mut tokens, mut rows) = (sqlx::query(&tokens_sql), sqlx::query(&rows_sql));
            for id in &ids {
                tokens = tokens.bind(id.clone());
                rows = rows.bind(id.clone());
            }
            tokens.execute(&mut *tx).await?;
            total += rows.execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            if ids.len() < SESSION_BATCH {
                return Ok(total);
            }
            rest_after(started, 2).await;
        }
    }

    /// Runs `sql` (binding `before` and the batch size) until it deletes less than a batch.
    async fn delete_in_batches(&self, sql: &'static str, before: i64) -> Result<u64, AppError> {
        let mut total = 0;
        loop {
            let started = std::time::Instant::now();
            let deleted = self.execute_write(sqlx::query(sql).bind(before).bind(BATCH as i64)).await?;
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
            rest_after(started, 1).await;
        }
    }
}

/// Waits `times` as long as the batch begun at `started` took, so a large purge takes a share of
/// the database's and a core's time and requests keep the rest (measured with a million ended
/// sessions: batches of 500 pausing as long as each took, the secret's p99 rose to 2.7 times its
/// quiet value; batches of 200 pausing twice, 2.2 times, and 50 pausing three times no better).
async fn rest_after(started: std::time::Instant, times: u32) {
    tokio::time::sleep(started.elapsed() * times).await;
}

/// Deletes the `.eml` files in `dir` older than `age`.
async fn purge_outbox_files(dir: &std::path::Path, age: Duration) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let old = entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if old.is_some_and(|elapsed| elapsed > age) && entry.path().extension().is_some_and(|e| e == "eml") {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}
