//! What an operator does from the command line (`server <command>`, see `server/src/cli.rs`):
//! unlock a username, list and end a user's sessions, purge ended sessions. Every action that
//! ends a session or unlocks an account goes to the security log like its online counterpart.

use super::caller::ClientInfo;
use super::events::Event;
use super::sessions::revocation::{Reason, Scope};
use super::sessions::SessionRow;
use super::AuthService;
use crate::api::rfc3339;
use crate::domain::Username;
use crate::error::AppError;

impl std::fmt::Display for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  created {}  last used {}  from {}  {}",
            self.id,
            rfc3339(self.created_at),
            rfc3339(self.last_used_at),
            self.ip.as_deref().unwrap_or("-"),
            self.user_agent.as_deref().unwrap_or("-"),
        )
    }
}

pub use super::sessions::retention::Purged;

/// Operator actions leave the log with no client address: this marks them.
fn operator() -> ClientInfo {
    ClientInfo::new(Some("baton-cli"), None)
}

impl AuthService {
    /// Clears the failed-login count and lock of `username` (known or not: guesses at unknown
    /// names are counted too). `false` when there was nothing to clear.
    pub async fn unlock(&self, username: &str) -> Result<bool, AppError> {
        let key = Username::parse(username)?.key();
        let cleared =
            self.execute_write(sqlx::query("DELETE FROM login_attempts WHERE username_key = $1").bind(&key)).await? > 0;
        if cleared {
            let user_id = self.user_id_by_key(&key).await;
            self.record(
                Event::AccountUnlocked.of(user_id.as_deref(), None, &operator()).with_detail(Some("by an operator")),
            )
            .await;
        }
        Ok(cleared)
    }

    /// Turns `username`'s one-time codes off (the account then logs in with its password alone)
    /// and tells the owner; `false` if they were not on; `NotFound` for no such user. Sessions
    /// stay: codes someone else turned on come with their sessions, which `revoke-sessions` ends.
    pub async fn turn_off_codes_of(&self, username: &str) -> Result<bool, AppError> {
        let user_id = self.user_id_of(username).await?;
        let by = operator();
        let turned_off = self.remove_one_time_codes(&user_id, &by).await?;
        if turned_off {
            self.record(Event::OneTimeCodesOff.of(Some(&user_id), None, &by).with_detail(Some("by an operator"))).await;
        }
        Ok(turned_off)
    }

    /// The live sessions of `username`, most recently used first; `NotFound` for no such user.
    pub async fn sessions_of(&self, username: &str) -> Result<Vec<SessionRow>, AppError> {
        let user_id = self.user_id_of(username).await?;
        self.live_sessions(&user_id, i64::MAX).await
    }

    /// Ends every session of `username`; how many were live.
    pub async fn revoke_sessions_of(&self, username: &str) -> Result<u64, AppError> {
        let user_id = self.user_id_of(username).await?;
        let ended = self.revoke(Scope::AllOfUser(user_id.clone()), Reason::Operator, None).await?;
        self.record(Event::LogoutAll.of(Some(&user_id), None, &operator()).with_detail(Some("by an operator"))).await;
        Ok(ended)
    }

    /// Ends one session by its id; `NotFound` when no live session has it.
    pub async fn revoke_session_by_id(&self, session_id: &str) -> Result<(), AppError> {
        if uuid::Uuid::try_parse(session_id).is_err() {
            return Err(AppError::NotFound);
        }
        let user_id: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1 AND revoked_at IS NULL")
                .bind(session_id)
                .fetch_optional(self.db())
                .await?;
        let Some(user_id) = user_id else { return Err(AppError::NotFound) };
        if self.revoke(Scope::Session(session_id.to_owned()), Reason::Operator, None).await? == 0 {
            return Err(AppError::NotFound);
        }
        self.record(
            Event::SessionRevoked.of(Some(&user_id), Some(session_id), &operator()).with_detail(Some("by an operator")),
        )
        .await;
        Ok(())
    }

    /// Deletes ended sessions (revoked, expired, or idle past `REFRESH_IDLE_TTL`) now, whatever
    /// `SESSION_RETENTION` says, and stale login counts. The security log keeps its rows.
    pub async fn purge(&self) -> Result<Purged, AppError> {
        self.purge_older_than(std::time::Duration::ZERO, None).await
    }

    async fn user_id_of(&self, username: &str) -> Result<String, AppError> {
        let key = Username::parse(username).map_err(|_| AppError::NotFound)?.key();
        self.user_id_by_key(&key).await.ok_or(AppError::NotFound)
    }
}
