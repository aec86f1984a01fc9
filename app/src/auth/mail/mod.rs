//! Mail: a queue in the database (`mail_outbox`) and a background sender. A request only adds a
//! row, in the transaction that decided to send it, so it never waits for the mail server; a
//! relay that is down delays mail and loses none (the row stays, with backoff), and a restart,
//! of this instance or another on the same database, sends what was left. Mechanism only: the
//! words are the use cases' (see `notices`).
//!
//! - `message`: a [`Letter`] as a plain-text and HTML message. `transport`: SMTP or files.

mod message;
pub mod transport;

pub(crate) use message::Letter;

use crate::auth::settings::AuthSettings;
use crate::auth::store::db::{now_ms, Statement};
use crate::auth::AuthService;
use crate::error::AppError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use transport::{SendError, Transport};

/// How often the sender looks for due mail it was not woken for (retries, other instances' mail).
const POLL: Duration = Duration::from_secs(2);
/// An instance sending a mail holds it this long; then another may try.
const CLAIM_MS: i64 = 120_000;
/// Retries wait 5 s, 10 s, 20 s … at most this long, for up to `GIVE_UP_MS`.
const MAX_BACKOFF_MS: i64 = 600_000;
const GIVE_UP_MS: i64 = 3 * 86_400_000;
/// Mails taken per look.
const BATCH: i64 = 20;

pub(crate) struct Outbox {
    transport: Transport,
    from: String,
    wake: Arc<Notify>,
}

impl Outbox {
    pub(crate) fn new(settings: &AuthSettings) -> Result<Self, String> {
        let transport = Transport::new(settings.mail.smtp_url.as_ref(), &settings.data_dir)?;
        Ok(Self { transport, from: settings.mail.from.clone(), wake: Arc::default() })
    }
}

/// A mail ready for the queue: owned, so that its INSERT can be built again by a retried group
/// commit, or run inside the transaction that decided to send it.
#[derive(Clone)]
pub(crate) struct QueuedMail {
    id: String,
    kind: &'static str,
    sender: String,
    recipient: String,
    message: String,
    at: i64,
}

impl QueuedMail {
    pub(crate) fn insert(&self) -> Statement {
        sqlx::query(
            "INSERT INTO mail_outbox (id, kind, sender, recipient, message, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(self.id.clone())
        .bind(self.kind)
        .bind(self.sender.clone())
        .bind(self.recipient.clone())
        .bind(self.message.clone())
        .bind(self.at)
    }
}

#[derive(sqlx::FromRow)]
struct DueMail {
    id: String,
    kind: String,
    sender: String,
    recipient: String,
    message: String,
    attempts: i64,
    created_at: i64,
}

impl AuthService {
    /// `letter` to `to`, as a row to queue (see [`QueuedMail::insert`]); then [`Self::mail_queued`].
    pub(crate) fn compose(&self, letter: &Letter, to: &str) -> Result<QueuedMail, AppError> {
        let outbox = &self.inner.outbox;
        let message = letter.message(&outbox.from, to).map_err(AppError::internal)?;
        Ok(QueuedMail {
            id: uuid::Uuid::new_v4().to_string(),
            kind: letter.kind,
            sender: outbox.from.clone(),
            recipient: to.to_owned(),
            // lettre writes 7-bit text (quoted-printable or base64 parts, encoded headers).
            message: String::from_utf8_lossy(&message).into_owned(),
            at: now_ms(),
        })
    }

    /// Queues one mail on its own and wakes the sender.
    pub(crate) async fn queue_mail(&self, letter: &Letter, to: &str) -> Result<(), AppError> {
        let mail = self.compose(letter, to)?;
        self.writer().execute_grouped(move || vec![mail.insert()]).await?;
        self.mail_queued();
        Ok(())
    }

    /// After a commit that queued mail: the sender looks now, not at its next poll.
    pub(crate) fn mail_queued(&self) {
        self.inner.outbox.wake.notify_one();
    }

    /// Sends what is due; the number sent.
    async fn send_due(&self) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let due = sqlx::query_as::<_, DueMail>(
            "SELECT id, kind, sender, recipient, message, attempts, created_at FROM mail_outbox \
             WHERE failed_at IS NULL AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(self.db())
        .await?;
        let mut sent = 0;
        for mail in due {
            // Another instance may have taken it since: only the one whose claim lands sends it.
            let claim = sqlx::query(
                "UPDATE mail_outbox SET claimed_until = $1 WHERE id = $2 AND failed_at IS NULL \
                 AND (claimed_until IS NULL OR claimed_until < $3)",
            )
            .bind(now_ms() + CLAIM_MS)
            .bind(mail.id.clone())
            .bind(now_ms());
            if self.execute_write(claim).await? != 1 {
                continue;
            }
            let outcome = self
                .inner
                .outbox
                .transport
                .send(&mail.id, &mail.sender, &mail.recipient, mail.message.as_bytes())
                .await;
            sent += usize::from(outcome.is_ok());
            self.settle(&mail, outcome).await?;
        }
        Ok(sent)
    }

    /// Deletes a sent mail; schedules a retry, or gives up (blanking the message: it may hold a link).
    async fn settle(&self, mail: &DueMail, outcome: Result<(), SendError>) -> Result<(), sqlx::Error> {
        let (id, kind, attempts) = (mail.id.as_str(), mail.kind.as_str(), mail.attempts + 1);
        let now = now_ms();
        let statement = match outcome {
            Ok(()) => {
                metrics::counter!("baton_mail_total", "kind" => kind.to_owned(), "outcome" => "sent").increment(1);
                tracing::info!(target: "mail", id, kind, attempts, "mail sent");
                sqlx::query("DELETE FROM mail_outbox WHERE id = $1").bind(id.to_owned())
            }
            Err(SendError::Transient(error)) if now - mail.created_at < GIVE_UP_MS => {
                let wait = (5_000i64 << (attempts - 1).min(20)).min(MAX_BACKOFF_MS);
                tracing::warn!(target: "mail", id, kind, attempts, retry_in_ms = wait, %error, "mail not sent yet");
                sqlx::query(
                    "UPDATE mail_outbox SET attempts = $1, next_attempt_at = $2, claimed_until = NULL WHERE id = $3",
                )
                .bind(attempts)
                .bind(now + wait)
                .bind(id.to_owned())
            }
            Err(SendError::Transient(error) | SendError::Permanent(error)) => {
                metrics::counter!("baton_mail_total", "kind" => kind.to_owned(), "outcome" => "failed").increment(1);
                tracing::error!(target: "mail", id, kind, attempts, %error, "mail failed for good");
                sqlx::query(
                    "UPDATE mail_outbox SET attempts = $1, failed_at = $2, message = '', claimed_until = NULL WHERE id = $3",
                )
                .bind(attempts)
                .bind(now)
                .bind(id.to_owned())
            }
        };
        self.execute_write(statement).await.map(drop)
    }
}

/// Starts the sender: it sends at once when woken, else every `POLL`, until the service is dropped.
pub(crate) fn spawn(service: &AuthService) {
    let wake = service.inner.outbox.wake.clone();
    let service = Arc::downgrade(&service.inner);
    tokio::spawn(async move {
        loop {
            let Some(inner) = service.upgrade() else { return };
            let auth = AuthService { inner };
            // A mail failing is the row's business (`settle`); this is the queue itself failing.
            if let Err(e) = auth.send_due().await {
                tracing::warn!(target: "mail", error = %e, "could not read the mail queue; trying again");
            }
            drop(auth);
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    });
}
