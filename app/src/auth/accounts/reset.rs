//! A forgotten password: ask for a link by username or email, open it, choose a new password.
//!
//! Asking answers the same, in the same time, whether or not an account matched: the request is
//! charged to its address's limit and answered; the lookup and the mail happen afterwards, in a
//! task of their own ([`Lookups`]: 16 at once, 1,024 waiting; past that a flood's requests are
//! dropped, logged, rather than held in memory). Only an account with
//! a verified address gets a link, at most 3 an hour. A link works once, for `RESET_TOKEN_TTL`,
//! while the password is the one it was sent for (a newer link or a change voids it). Using it
//! sets the password, ends every session, clears the login backoff (the user's own unlock), and
//! logs this device in.

use super::links::{self, Closed};
use crate::api::{PasswordResetConfirm, PasswordResetRequest, TokenResponse, User};
use crate::auth::caller::ClientInfo;
use crate::auth::credentials::password::Lane;
use crate::auth::events::Event;
use crate::auth::letters::{notice_letter, reset_letter, Notice, Origin};
use crate::auth::limits::rate::Action;
use crate::auth::sessions::revocation::{Reason, Scope};
use crate::auth::tokens::links::Purpose;
use crate::auth::AuthService;
use crate::domain::{Email, Password, Username};
use crate::error::AppError;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// An account a reset link may go to.
#[derive(sqlx::FromRow)]
struct Candidate {
    id: String,
    username: String,
    email: Option<String>,
    email_verified_at: Option<i64>,
}

/// What a reset link lets its holder change.
#[derive(sqlx::FromRow)]
struct ResetTarget {
    username: String,
    username_key: String,
    created_at: i64,
    password_version: i64,
    email_key: Option<String>,
    email_verified_at: Option<i64>,
}

/// The background lookups of reset requests: how many run, how many may wait.
pub(crate) struct Lookups {
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

impl Default for Lookups {
    fn default() -> Self {
        Self { running: Arc::new(Semaphore::new(16)), waiting: Arc::new(Semaphore::new(1024)) }
    }
}

impl AuthService {
    /// `POST /api/auth/password-reset`: always `Ok` (past the address's limit, a 429).
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        input: &PasswordResetRequest,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        self.limit_rate(Action::PasswordReset, client).await?;
        // Blank matches nobody, and is answered like any other name (202); only the length is a rule.
        let login = input.login.trim().to_owned();
        if login.chars().count() > crate::domain::EMAIL_MAX {
            return Err(AppError::invalid_field("login", "A username or an email address is at most 254 characters."));
        }
        let lookups = &self.inner.reset_lookups;
        // Refused before anything is looked up: the 503 says nothing about who exists.
        let Ok(place) = lookups.waiting.clone().try_acquire_owned() else {
            tracing::warn!(target: "security", event = "reset_requests_refused", ip = client.ip.as_deref(),
                "1,024 password-reset requests wait already: 503");
            return Err(AppError::Busy { retry_after: 5 });
        };
        let (auth, client, running) = (self.clone(), client.clone(), lookups.running.clone());
        tokio::spawn(async move {
            let Ok(_turn) = running.acquire_owned().await else { return };
            drop(place);
            if let Err(e) = auth.mail_reset_links(&login, &client).await {
                tracing::warn!(target: "mail", error = %e, "a password-reset request could not be served");
            }
        });
        Ok(())
    }

    /// The part of a reset request that depends on who exists, after it was answered.
    async fn mail_reset_links(&self, login: &str, client: &ClientInfo) -> Result<(), AppError> {
        let select = "SELECT id, username, email, email_verified_at FROM users";
        let candidates: Vec<Candidate> = if login.contains('@') {
            let Ok(email) = Email::parse(login) else { return Ok(()) };
            // An address may be on several accounts (addresses are not unique): each gets its own link.
            sqlx::query_as(&format!("{select} WHERE email_key = $1 AND email_verified_at IS NOT NULL LIMIT 10"))
                .bind(email.key())
                .fetch_all(self.db())
                .await?
        } else {
            let Ok(username) = Username::parse(login) else { return Ok(()) };
            sqlx::query_as(&format!("{select} WHERE username_key = $1"))
                .bind(username.key())
                .fetch_all(self.db())
                .await?
        };
        let origin = Origin::of(client);
        let ttl = self.settings().mail.reset_token_ttl;
        for user in candidates {
            let (Some(email), Some(_)) = (user.email.as_deref(), user.email_verified_at) else { continue };
            if !self.under_caps(&user.id, Purpose::ResetPassword, email).await? {
                tracing::info!(target: "security", event = "reset_mail_capped", user_id = %user.id, "no reset mail: a cap was reached");
                continue;
            }
            let mut tx = self.begin_write().await?;
            // The address and the password version as they are under the lock, not as read above.
            let issued = links::issue_in(&mut tx, &user.id, Purpose::ResetPassword, None, ttl.as_millis() as i64);
            let Some(link) = issued.await? else { continue };
            let letter = reset_letter(&user.username, self.link("/reset", &link.token), ttl, &origin);
            self.compose(&letter, &link.email)?.until(link.expires_at).insert().execute(&mut *tx).await?;
            if let Some(event) = self.log_event(Event::PasswordResetRequested.of(Some(&user.id), None, client)) {
                event.insert().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            self.mail_queued();
        }
        Ok(())
    }

    /// `POST /api/auth/password-reset/confirm`: the new password, and a session on this device.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        input: &PasswordResetConfirm,
        client: &ClientInfo,
    ) -> Result<TokenResponse, AppError> {
        // It costs a hash: counted like a login.
        self.limit_rate(Action::Login, client).await?;
        let link = match self.open_link(&input.token, Purpose::ResetPassword).await? {
            Ok(link) => link,
            Err(closed) => return Err(reset_refusal(closed)),
        };
        let new = Password::parse_new(&input.new_password).map_err(|e| e.for_field("newPassword"))?;
        if let Some(code) = &input.code {
            crate::auth::credentials::one_time::check_length(code)?;
        }
        let dpop_key = self.presented_key(client).await?;
        let user = sqlx::query_as::<_, ResetTarget>(
            "SELECT username, username_key, created_at, password_version, email_key, email_verified_at \
             FROM users WHERE id = $1",
        )
        .bind(&link.user_id)
        .fetch_optional(self.db())
        .await?
        .ok_or_else(|| reset_refusal(Closed::Unknown))?;
        // Only while the password and the verified address are those it was sent for (a change
        // of address voids the links sent to the old one).
        let still_theirs =
            user.email_key.as_deref() == Some(&link.email.to_lowercase()) && user.email_verified_at.is_some();
        if user.password_version != link.password_version || !still_theirs {
            return Err(reset_refusal(Closed::Used));
        }
        // The mailbox is one factor: an account with one-time codes asks for the other too (read
        // here to refuse early, and again under the lock below). Codes are counted on the link,
        // not against the login backoff: a reset is how an owner gets out of a lock.
        let code = input.code.as_deref().filter(|c| !c.trim().is_empty());
        let claimed = match (code, self.has_one_time_codes(&link.user_id).await?) {
            (None, true) => return Err(AppError::InvalidCode(CODE_NEEDED.into())),
            (Some(_), true) => {
                self.claim_reset_code_try(&link.token_hash, &link.user_id).await?;
                true
            }
            (_, false) => false,
        };
        let hash = self.inner.hasher.hash(&new, Lane::Other).await?;
        let mut tx = self.begin_write().await?;
        // The user's row first, then the link's: the order every path takes (no deadlock).
        links::lock_user(&link.user_id).execute(&mut *tx).await?;
        // The link and the password version it was sent for, both still as read: of two uses of
        // one link, or a use racing a change, one wins and the other changes nothing.
        let spent = links::spend(&link.token_hash).execute(&mut *tx).await?.rows_affected();
        let changed = sqlx::query(
            "UPDATE users SET password_hash = $1, password_version = password_version + 1 \
             WHERE id = $2 AND password_version = $3",
        )
        .bind(&hash)
        .bind(&link.user_id)
        .bind(link.password_version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 || changed != 1 {
            tx.rollback().await?;
            return Err(reset_refusal(Closed::Used));
        }
        if self.has_one_time_codes_in(&mut tx, &link.user_id).await? {
            let Some(code) = code.filter(|_| claimed) else {
                // Codes turned on since the check above: asked for, with a try of its own.
                tx.rollback().await?;
                return Err(AppError::InvalidCode(CODE_NEEDED.into()));
            };
            if self.spend_code_in(&mut tx, &link.user_id, code).await?.is_none() {
                // The link stays open for another code while it has tries to claim.
                tx.rollback().await?;
                let mut tx = self.begin_write().await?;
                let told = self.count_wrong_code_in(&mut tx, &link.user_id, client).await?;
                tx.commit().await?;
                if told {
                    self.mail_queued();
                }
                self.record(Event::LoginFailed.of(Some(&link.user_id), None, client).with_detail(Some("code"))).await;
                return Err(super::second_factor::wrong_code());
            }
        }
        // The user's own unlock: a locked or backed-off username is free again.
        sqlx::query("DELETE FROM login_attempts WHERE username_key = $1")
            .bind(&user.username_key)
            .execute(&mut *tx)
            .await?;
        // A change of address asked with the old password is cancelled with it.
        links::void(&link.user_id, Purpose::VerifyEmail).execute(&mut *tx).await?;
        let ended = self.revoke_in(&mut tx, Scope::AllOfUser(link.user_id.clone()), Reason::PasswordReset).await?;
        // The notice in the same transaction: it is queued if and only if the reset happened.
        let notice = notice_letter(&Notice::PasswordReset, &user.username, &Origin::of(client));
        self.compose(&notice, &link.email)?.insert().execute(&mut *tx).await?;
        tx.commit().await?;
        ended.announce(self).await;
        self.mail_queued();
        self.record(Event::PasswordReset.of(Some(&link.user_id), None, client)).await;
        let me = User {
            id: link.user_id.clone(),
            username: user.username,
            created_at: crate::api::rfc3339(user.created_at),
        };
        self.start_session(me, link.password_version + 1, client, dpop_key).await
    }
}

/// Wrong codes one reset link takes before it is void.
const RESET_CODE_TRIES: i64 = 5;
/// Codes all reset links of one account may try in a day: the mailbox alone must not buy a
/// steady stream of guesses (three links an hour would otherwise allow 15 an hour).
const RESET_CODE_TRIES_A_DAY: i64 = 10;
const DAY_MS: i64 = 24 * 3600 * 1000;

const CODE_NEEDED: &str =
    "This account has one-time codes: enter a code from your authenticator app, or a recovery code, as well.";

impl AuthService {
    /// Takes one of the link's code tries before its code is checked, committed: requests sent
    /// at once cannot check more codes than the link allows. Refused when the link has none
    /// left, or the account's links tried [`RESET_CODE_TRIES_A_DAY`] in the last day.
    async fn claim_reset_code_try(&self, token_hash: &str, user_id: &str) -> Result<(), AppError> {
        let since = crate::auth::store::db::now_ms() - DAY_MS;
        let claim = sqlx::query(
            "UPDATE link_tokens SET code_tries = code_tries + 1 \
             WHERE token_hash = $1 AND used_at IS NULL AND code_tries < $2 \
             AND (SELECT COALESCE(SUM(code_tries), 0) FROM link_tokens \
                  WHERE user_id = $3 AND purpose = $4 AND created_at > $5) < $6",
        )
        .bind(token_hash.to_owned())
        .bind(RESET_CODE_TRIES)
        .bind(user_id.to_owned())
        .bind(Purpose::ResetPassword.as_str())
        .bind(since)
        .bind(RESET_CODE_TRIES_A_DAY);
        if self.execute_write(claim).await? == 1 {
            return Ok(());
        }
        // Which refusal: the day's tries, or this link's.
        let (tried, oldest): (i64, Option<i64>) = sqlx::query_as(
            // PostgreSQL sums a BIGINT as NUMERIC: cast back.
            "SELECT CAST(COALESCE(SUM(code_tries), 0) AS BIGINT), MIN(created_at) FROM link_tokens \
             WHERE user_id = $1 AND purpose = $2 AND created_at > $3 AND code_tries > 0",
        )
        .bind(user_id)
        .bind(Purpose::ResetPassword.as_str())
        .bind(since)
        .fetch_one(self.db())
        .await?;
        match oldest {
            Some(oldest) if tried >= RESET_CODE_TRIES_A_DAY => {
                let wait_ms = oldest + DAY_MS - crate::auth::store::db::now_ms();
                Err(AppError::TooManyRequests { retry_after: u64::try_from(wait_ms / 1000 + 1).unwrap_or(1) })
            }
            _ => Err(reset_refusal(Closed::Used)),
        }
    }
}

fn reset_refusal(closed: Closed) -> AppError {
    AppError::InvalidResetToken(
        match closed {
            Closed::Unknown => "This reset link is not valid. Ask for a new one.",
            Closed::Used => {
                "This reset link was already used or replaced by a newer one. Ask for a new one if you need it."
            }
            Closed::Expired => "This reset link has expired. Ask for a new one.",
        }
        .into(),
    )
}
