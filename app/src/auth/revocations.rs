//! Telling every instance that sessions ended, so that none keeps believing them alive (see
//! `cache`). In this process the cache is cleared at once; on PostgreSQL a `NOTIFY` on
//! [`CHANNEL`] clears the other instances' caches within milliseconds. If a notification is lost
//! (the listening connection dropped), the cache's own bound still holds: nothing is believed
//! longer than `LIVENESS_TTL_MS` (1 s).

use super::AuthService;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "baton_sessions_ended";

impl AuthService {
    /// After any revocation or deletion of sessions, once committed.
    pub(super) async fn sessions_ended(&self) {
        self.inner.live.forget_all();
        if !self.config().is_sqlite() {
            let sent = sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(self.db()).await;
            if let Err(e) = sent {
                tracing::debug!(error = %e, "cannot notify the other instances; their caches expire within 1 s");
            }
        }
    }
}

/// On PostgreSQL, listens for other instances' revocations until the service is dropped.
pub(super) fn spawn_listener(service: &AuthService) {
    if service.config().is_sqlite() {
        return;
    }
    let url = service.config().database_url.to_string();
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
