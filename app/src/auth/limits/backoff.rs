//! Per account, a wait that doubles with every consecutive failed login after the first few, and
//! a lock after `LOGIN_LOCK_AFTER` failures. Kept in the database, so a restart forgives nothing
//! and every instance sees the same count.

use crate::auth::caller::ClientInfo;
use crate::auth::events::Event;
use crate::auth::settings::LoginBackoff;
use crate::auth::store::db::now_ms;
use crate::auth::AuthService;
use crate::error::AppError;
use std::time::Duration;

impl LoginBackoff {
    /// How long the next attempt must wait after `failures` consecutive failed ones.
    pub fn wait_after(&self, failures: u32) -> Duration {
        if failures >= self.lock_after {
            self.lock_duration
        } else if failures < self.free_attempts {
            Duration::ZERO
        } else {
            Duration::from_secs(1 << (failures - self.free_attempts).min(30)).min(self.max_delay)
        }
    }
}

impl AuthService {
    /// Which account a username key belongs to, if any: for the security log, and the operator's
    /// commands. A database error reads as none (the log line is not worth failing a login for).
    pub(crate) async fn user_id_by_key(&self, username_key: &str) -> Option<String> {
        sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1")
            .bind(username_key)
            .fetch_optional(self.db())
            .await
            .ok()
            .flatten()
    }

    /// Counts a login attempt against `username_key` before its password is checked (so that
    /// concurrent guesses cannot all get in before the first failure is written), or refuses it
    /// while the account waits out its backoff or lock. A success clears the count again.
    /// Returns the count before this attempt.
    #[tracing::instrument(skip_all)]
    pub(crate) async fn claim_login_attempt(&self, username_key: &str, client: &ClientInfo) -> Result<u32, AppError> {
        let policy = self.settings().login_backoff;
        // Each round either claims or sees the claim that beat it; a handful of rounds is plenty.
        for _ in 0..16 {
            let mut tx = self.begin_write().await?;
            let now = now_ms();
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT failures, blocked_until FROM login_attempts WHERE username_key = $1")
                    .bind(username_key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let failures = match row {
                Some((failures, blocked_until)) if blocked_until > now => {
                    tx.rollback().await?;
                    let retry_after = super::retry_after_secs(Duration::from_millis((blocked_until - now) as u64));
                    tracing::warn!(target: "security", event = "login_throttled", failures, ip = client.ip.as_deref(), retry_after);
                    metrics::counter!("baton_security_events_total", "event" => "login_throttled").increment(1);
                    return Err(AppError::TooManyRequests { retry_after });
                }
                Some((failures, _)) => failures,
                None => 0,
            };
            let counted = u32::try_from(failures + 1).unwrap_or(u32::MAX);
            // No wait due is no block at all: `now` would block a concurrent attempt whose clock
            // was read a millisecond earlier (seen on PostgreSQL as a 429 for a right password).
            let blocked_until = match policy.wait_after(counted) {
                wait if wait.is_zero() => 0,
                wait => now.saturating_add(wait.as_millis() as i64),
            };
            let claimed = if row.is_some() {
                sqlx::query(
                    "UPDATE login_attempts SET failures = $2, blocked_until = $3, updated_at = $4 \
                     WHERE username_key = $1 AND failures = $5",
                )
                .bind(username_key)
                .bind(failures + 1)
                .bind(blocked_until)
                .bind(now)
                .bind(failures)
                .execute(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "INSERT INTO login_attempts (username_key, failures, blocked_until, updated_at) \
                     VALUES ($1, 1, $2, $3) ON CONFLICT (username_key) DO NOTHING",
                )
                .bind(username_key)
                .bind(blocked_until)
                .bind(now)
                .execute(&mut *tx)
                .await
            }?
            .rows_affected()
                == 1;
            tx.commit().await?;
            if claimed {
                if counted == policy.lock_after {
                    let user_id = self.user_id_by_key(username_key).await;
                    self.record(Event::AccountLocked.of(user_id.as_deref(), None, client)).await;
                }
                return Ok(counted - 1);
            }
        }
        Err(AppError::Busy { retry_after: 1 })
    }

    pub(crate) async fn clear_login_attempts(&self, username_key: &str) -> Result<(), AppError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM login_attempts WHERE username_key = $1").bind(username_key).execute(&mut *tx).await?;
        Ok(tx.commit().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_locks_by_the_hundredth_failure() {
        let policy = LoginBackoff {
            free_attempts: 5,
            max_delay: Duration::from_secs(900),
            lock_after: 100,
            lock_duration: Duration::from_secs(86_400),
        };
        let waits: Vec<u64> = (0..=12).map(|n| policy.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(policy.wait_after(15), Duration::from_secs(900));
        assert_eq!(policy.wait_after(99), Duration::from_secs(900));
        assert_eq!(policy.wait_after(100), Duration::from_secs(86_400));
        assert_eq!(policy.wait_after(u32::MAX), Duration::from_secs(86_400));
    }
}
