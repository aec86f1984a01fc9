//! The one way sessions end. A [`Scope`] says which live sessions, a [`Reason`] why; one
//! statement builder ends them, and once that is committed, every instance is told, so that none
//! keeps believing them alive (see `cache`): in this process the cache is cleared at once; on
//! PostgreSQL a `NOTIFY` on [`CHANNEL`] clears the other instances' caches within milliseconds.
//! If a notification is lost (the listening connection dropped), the cache's own bound still
//! holds: nothing is believed longer than `LIVENESS_TTL_MS` (1 s). A feature that ends sessions
//! (a password reset, a removed passkey) calls [`AuthService::revoke`], which tells the others,
//! or, inside a transaction of its own, [`AuthService::revoke_in`], whose `#[must_use]` answer
//! is announced once the transaction commits. (Deleting an account deletes its sessions rather
//! than ending them, and calls [`AuthService::sessions_ended`] itself.)

use crate::auth::events::EventRow;
use crate::auth::store::db::{now_ms, Statement};
use crate::auth::store::writer::WriteTx;
use crate::auth::AuthService;
use crate::error::AppError;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "baton_sessions_ended";

/// Which live sessions a revocation ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One session, whoever's.
    Session(String),
    /// One session, only if it is this user's: another user's session is not found.
    SessionOf { user_id: String, session_id: String },
    /// Every session of a user.
    AllOfUser(String),
    /// Every session of a user but the one that asked.
    AllOfUserBut { user_id: String, keep: String },
}

/// Why sessions ended, as `revoked_reason` stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Logout,
    LogoutAll,
    /// The user ended one of their sessions from the list.
    Revoked,
    RefreshTokenReuse,
    /// A spent refresh token's fate was asked after its answer was lost (see `refresh`).
    RefreshLost,
    PasswordChanged,
    /// The password was reset with a mailed link: every session ends.
    PasswordReset,
    Operator,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::Revoked => "revoked",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::RefreshLost => "refresh_lost",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::Operator => "operator",
        }
    }
}

impl Scope {
    /// The UPDATE that ends this scope's live sessions at `at`, returning their ids.
    fn statement(&self, reason: Reason, at: i64) -> Statement {
        // One text per scope, so each is prepared once.
        macro_rules! ending {
            ($filter:literal) => {
                sqlx::query(concat!(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE revoked_at IS NULL AND ",
                    $filter,
                    " RETURNING id"
                ))
                .bind(at)
                .bind(reason.as_str())
            };
        }
        match self {
            Self::Session(id) => ending!("id = $3").bind(id.clone()),
            Self::SessionOf { user_id, session_id } => {
                ending!("id = $3 AND user_id = $4").bind(session_id.clone()).bind(user_id.clone())
            }
            Self::AllOfUser(user_id) => ending!("user_id = $3").bind(user_id.clone()),
            Self::AllOfUserBut { user_id, keep } => {
                ending!("user_id = $3 AND id <> $4").bind(user_id.clone()).bind(keep.clone())
            }
        }
    }
}

/// Sessions ended inside a transaction that is not committed yet: [`Self::announce`] them once it is.
#[must_use = "the other instances must be told once the transaction commits"]
pub(crate) struct Ended(pub u64);

impl Ended {
    pub async fn announce(self, auth: &AuthService) -> u64 {
        auth.sessions_ended().await;
        self.0
    }
}

impl AuthService {
    /// Ends the live sessions in `scope`; how many. With `event`, the event is stored in the same
    /// commit (a group commit, shared with other requests' writes); without, the statement is a
    /// transaction of its own, as short as can be.
    pub(crate) async fn revoke(&self, scope: Scope, reason: Reason, event: Option<EventRow>) -> Result<u64, AppError> {
        let at = now_ms();
        let ended = match event {
            None => self.execute_write(scope.statement(reason, at)).await?,
            Some(event) => {
                let build = move || vec![scope.statement(reason, at), event.insert()];
                self.writer().execute_grouped(build).await?.first().map_or(0, |rows| rows.len() as u64)
            }
        };
        self.sessions_ended().await;
        Ok(ended)
    }

    /// Ends the live sessions in `scope` within `tx`, a change that must happen together with it.
    pub(crate) async fn revoke_in(
        &self,
        tx: &mut WriteTx<'_>,
        scope: Scope,
        reason: Reason,
    ) -> Result<Ended, AppError> {
        let ended = scope.statement(reason, now_ms()).fetch_all(&mut **tx).await?;
        Ok(Ended(ended.len() as u64))
    }

    /// After any revocation or deletion of sessions, once committed.
    pub(crate) async fn sessions_ended(&self) {
        self.inner.live.forget_all();
        if !self.settings().is_sqlite() {
            let sent = sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(self.db()).await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "cannot notify the other instances; their caches expire within 1 s");
            }
        }
    }
}

/// On PostgreSQL, listens for other instances' revocations until the service is dropped.
pub(crate) fn spawn_listener(service: &AuthService) {
    if service.settings().is_sqlite() {
        return;
    }
    let url = service.settings().database_url.to_string();
    let service = Arc::downgrade(&service.inner);
    tokio::spawn(async move {
        let mut listener: Option<sqlx::postgres::PgListener> = None;
        // No strong reference while waiting: it would keep the service alive.
        while service.strong_count() > 0 {
            let Some(active) = listener.as_mut() else {
                listener = connect(&url).await;
                if listener.is_none() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            };
            // Wake up now and then without a notification, to notice that the service is gone.
            let Ok(received) = tokio::time::timeout(Duration::from_secs(1), active.try_recv()).await else { continue };
            let Some(inner) = service.upgrade() else { return };
            // A notification, or a dropped connection (what was sent meanwhile is lost): either
            // way nothing cached is believed any more.
            inner.live.forget_all();
            if let Err(e) = received {
                tracing::debug!(error = %e, "the revocation listener failed; reconnecting");
                listener = None;
            }
        }
    });
}

async fn connect(url: &str) -> Option<sqlx::postgres::PgListener> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await.ok()?;
    listener.listen(CHANNEL).await.ok()?;
    Some(listener)
}
