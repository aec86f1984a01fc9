//! Mail: a queue in the database (`mail_outbox`) and a background sender. A request only adds a
//! row, in the transaction that decided to send it, so it never waits for the mail server; a
//! relay that is down delays mail and loses none (the row stays, with backoff), and a restart,
//! of this instance or another on the same database, sends what was left. Mechanism only: the
//! words are the use cases' (see `letters`).
//!
//! - `message`: a [`Letter`] as a plain-text and HTML message. `transport`: SMTP or files.

mod message;
pub mod transport;

pub(crate) use message::Letter;

use crate::auth::settings::AuthSettings;
use crate::auth::store::db::{now_ms, Statement};
use crate::auth::AuthService;
use crate::error::AppError;
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use transport::{SendError, Transport};

/// How often the sender looks for due mail it was not woken for (retries, other instances' mail).
const POLL: Duration = Duration::from_secs(2);
/// An instance sending a mail holds it this long; then another may try. A send is cut off well
/// before (`SEND_TIMEOUT`), so two instances never send one mail at once.
const CLAIM_MS: i64 = 120_000;
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries wait 5 s, 10 s, 20 s … at most this long, for up to `GIVE_UP_MS`.
const MAX_BACKOFF_MS: i64 = 600_000;
const GIVE_UP_MS: i64 = 3 * 86_400_000;
/// A refusal the relay calls permanent (5xx) is retried this long all the same: a wrong relay
/// password or sender is refused with one too, and an operator who fixes it in time loses no mail.
const GIVE_UP_PERMANENT_MS: i64 = 3_600_000;
/// Mails taken per look, and sent at once.
const BATCH: i64 = 20;
const AT_ONCE: usize = 4;

pub(crate) struct Outbox {
    transport: Transport,
    from: String,
    wake: Arc<Notify>,
    /// This instance, as `claimed_by` names it.
    instance: String,
}

impl Outbox {
    pub(crate) fn new(settings: &AuthSettings) -> Result<Self, String> {
        let transport = Transport::new(settings.mail.smtp_url.as_ref(), &settings.data_dir)?;
        let instance = uuid::Uuid::new_v4().to_string();
        Ok(Self { transport, from: settings.mail.from.clone(), wake: Arc::default(), instance })
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
    expires_at: Option<i64>,
}

impl QueuedMail {
    pub(crate) fn insert(&self) -> Statement {
        sqlx::query(
            "INSERT INTO mail_outbox (id, kind, sender, recipient, message, created_at, next_attempt_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(self.id.clone())
        .bind(self.kind)
        .bind(self.sender.clone())
        .bind(self.recipient.clone())
        .bind(self.message.clone())
        .bind(self.at)
        .bind(self.expires_at)
    }

    /// Not sent after `at` (Unix ms): for a mail whose link expires then.
    pub(crate) fn until(self, at: i64) -> Self {
        Self { expires_at: Some(at), ..self }
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
    expires_at: Option<i64>,
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
            expires_at: None,
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

    /// Sends what is due, a few at once; the number sent.
    async fn send_due(&self) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let due = sqlx::query_as::<_, DueMail>(
            "SELECT id, kind, sender, recipient, message, attempts, created_at, expires_at FROM mail_outbox \
             WHERE failed_at IS NULL AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(self.db())
        .await?;
        let sent = futures::stream::iter(due)
            .map(|mail| self.send_one(mail))
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<Result<bool, sqlx::Error>>>()
            .await;
        sent.into_iter().try_fold(0, |n, one| one.map(|sent| n + usize::from(sent)))
    }

    /// Claims one mail and sends it, unless another instance claimed it first; whether it went.
    async fn send_one(&self, mail: DueMail) -> Result<bool, sqlx::Error> {
        let outbox = &self.inner.outbox;
        let now = now_ms();
        let claim = sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1, claimed_by = $2 WHERE id = $3 AND failed_at IS NULL \
             AND next_attempt_at <= $4 AND (claimed_until IS NULL OR claimed_until < $4)",
        )
        .bind(now + CLAIM_MS)
        .bind(outbox.instance.clone())
        .bind(mail.id.clone())
        .bind(now);
        if self.execute_write(claim).await? != 1 {
            return Ok(false);
        }
        let outcome = if mail.expires_at.is_some_and(|at| at <= now) {
            Err(SendError::Expired)
        } else {
            let sending = outbox.transport.send(&mail.id, &mail.sender, &mail.recipient, mail.message.as_bytes());
            tokio::time::timeout(SEND_TIMEOUT, sending)
                .await
                .unwrap_or_else(|_| Err(SendError::Transient(format!("no answer within {SEND_TIMEOUT:?}"))))
        };
        let sent = outcome.is_ok();
        self.settle(&mail, outcome).await?;
        Ok(sent)
    }

    /// Deletes a sent mail; schedules a retry, or gives up (blanking the message: it may hold a
    /// link). Only while this instance still holds the claim.
    async fn settle(&self, mail: &DueMail, outcome: Result<(), SendError>) -> Result<(), sqlx::Error> {
        let (id, kind, attempts) = (mail.id.as_str(), mail.kind.as_str(), mail.attempts + 1);
        let (now, age) = (now_ms(), now_ms() - mail.created_at);
        let retry = |error: &str, permanent: bool| {
            let wait = (5_000i64 << (attempts - 1).min(20)).min(MAX_BACKOFF_MS);
            if permanent {
                // Loud: a wrong relay password or sender address refuses every mail like this.
                tracing::error!(target: "mail", id, kind, attempts, retry_in_ms = wait, %error, "the relay refused a mail; retrying for an hour");
            } else {
                tracing::warn!(target: "mail", id, kind, attempts, retry_in_ms = wait, %error, "mail not sent yet");
            }
            sqlx::query(
                "UPDATE mail_outbox SET attempts = $1, next_attempt_at = $2, claimed_until = NULL, claimed_by = NULL \
                 WHERE id = $3 AND claimed_by = $4",
            )
            .bind(attempts)
            .bind(now + wait)
            .bind(id.to_owned())
        };
        let give_up = |error: &str| {
            metrics::counter!("baton_mail_total", "kind" => kind.to_owned(), "outcome" => "failed").increment(1);
            tracing::error!(target: "mail", id, kind, attempts, %error, "mail failed for good");
            sqlx::query(
                "UPDATE mail_outbox SET attempts = $1, failed_at = $2, message = '', claimed_until = NULL \
                 WHERE id = $3 AND claimed_by = $4",
            )
            .bind(attempts)
            .bind(now)
            .bind(id.to_owned())
        };
        let statement = match outcome {
            Ok(()) => {
                metrics::counter!("baton_mail_total", "kind" => kind.to_owned(), "outcome" => "sent").increment(1);
                tracing::info!(target: "mail", id, kind, attempts, "mail sent");
                sqlx::query("DELETE FROM mail_outbox WHERE id = $1 AND claimed_by = $2").bind(id.to_owned())
            }
            Err(SendError::Transient(error)) if age < GIVE_UP_MS => retry(&error, false),
            Err(SendError::Permanent(error)) if age < GIVE_UP_PERMANENT_MS => retry(&error, true),
            Err(SendError::Expired) => give_up("its link expired before it could be sent"),
            Err(SendError::Transient(error) | SendError::Permanent(error)) => give_up(&error),
        };
        self.execute_write(statement.bind(self.inner.outbox.instance.clone())).await.map(drop)
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
