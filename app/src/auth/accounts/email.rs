//! The account's email address: set at signup or changed later (the password asked again), and
//! verified by opening a mailed link (single use, a day). Only a verified address gets reset links
//! and notices, so a verified address is not given up lightly: asking for a new one leaves it in
//! place (and tells it) until the link sent to the new one is opened; a password change or reset
//! in between cancels the change. An account without a verified address takes a new one at once.

use super::links::{self, Closed};
use crate::api::{Account, EmailChange, EmailVerification};
use crate::auth::caller::{ClientInfo, Principal};
use crate::auth::events::Event;
use crate::auth::letters::{notice_letter, verify_letter, Notice, Origin};
use crate::auth::limits::rate::Action;
use crate::auth::mail::transport::deliverable;
use crate::auth::store::db::now_ms;
use crate::auth::store::writer::WriteTx;
use crate::auth::tokens::links::Purpose;
use crate::auth::AuthService;
use crate::domain::Email;
use crate::error::AppError;

const VERIFY_TTL_HOURS: u64 = 24;

/// An optional address as a form or a client sends it: absent or blank is none.
pub(super) fn parse_optional(raw: Option<&str>) -> Result<Option<Email>, AppError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => parse(raw).map(Some),
    }
}

/// The shared rule, then the mail library's own reading: what it cannot send to is refused now.
fn parse(raw: &str) -> Result<Email, AppError> {
    let email = Email::parse(raw)?;
    if !deliverable(email.as_str()) {
        return Err(AppError::invalid_field("email", "Mail cannot be sent to this address."));
    }
    Ok(email)
}

#[derive(sqlx::FromRow)]
struct AccountView {
    username: String,
    created_at: i64,
    email: Option<String>,
    email_verified_at: Option<i64>,
    /// The address of the newest live verification link, if it is not the account's.
    pending: Option<String>,
}

/// What a verification link finds, under the user row's lock.
#[derive(sqlx::FromRow)]
struct Verifying {
    username: String,
    email: Option<String>,
    email_verified_at: Option<i64>,
}

impl AuthService {
    /// `GET /api/account`.
    pub async fn account(&self, principal: &Principal) -> Result<Account, AppError> {
        let row = sqlx::query_as::<_, AccountView>(
            "SELECT username, created_at, email, email_verified_at, \
             (SELECT l.email FROM link_tokens l WHERE l.user_id = users.id AND l.purpose = 'verify_email' \
              AND l.used_at IS NULL AND l.expires_at > $2 AND (users.email_key IS NULL OR l.email_key <> users.email_key) \
              ORDER BY l.created_at DESC LIMIT 1) AS pending \
             FROM users WHERE id = $1",
        )
        .bind(&principal.user_id)
        .bind(now_ms())
        .fetch_optional(self.db())
        .await?
        .ok_or(AppError::InvalidToken)?;
        Ok(Account {
            id: principal.user_id.clone(),
            username: row.username,
            created_at: crate::api::rfc3339(row.created_at),
            email_verified: row.email.is_some() && row.email_verified_at.is_some(),
            email: row.email,
            pending_email: row.pending,
            one_time_codes: self.has_one_time_codes(&principal.user_id).await?,
            recovery_codes_left: self.recovery_codes_left(&principal.user_id).await?,
        })
    }

    /// `POST /api/account/email`.
    #[tracing::instrument(skip_all)]
    pub async fn change_email(
        &self,
        principal: &Principal,
        input: &EmailChange,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        let email = parse(&input.email)?;
        let (user, _confirming) = self.confirm_password(principal, &input.password, client).await?;
        let same = user.email.as_deref().is_some_and(|old| old.to_lowercase() == email.key());
        match (same, user.verified_email()) {
            (true, Some(_)) => Ok(()),
            // The verified address stays until the new one is proven; it hears of the request.
            (false, Some(old)) => {
                if !self.under_caps(&user.id, Purpose::VerifyEmail, email.as_str()).await? {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                if !self.queue_verification_in(&mut tx, &user.id, &user.username, email.as_str()).await? {
                    return Ok(());
                }
                let asked = Notice::EmailChangeRequested { new: email.as_str().into() };
                let notice = notice_letter(&asked, &user.username, &Origin::of(client));
                self.compose(&notice, old)?.insert().execute(&mut *tx).await?;
                tx.commit().await?;
                self.mail_queued();
                self.record(Event::EmailChangeRequested.of(Some(&user.id), Some(&principal.session_id), client)).await;
                Ok(())
            }
            // Unverified (as typed again, perhaps in other case): a new link to it as stored.
            (true, None) => {
                let stored = user.email.as_deref().unwrap_or(email.as_str());
                self.mail_verification_link(&user.id, &user.username, stored).await;
                Ok(())
            }
            // No verified address to protect: the new one is the account's at once, unverified,
            // and every link for another address is void (whether or not a cap lets a new one go).
            (false, None) => {
                let mut tx = self.begin_write().await?;
                links::lock_user(&user.id).execute(&mut *tx).await?;
                sqlx::query("UPDATE users SET email = $1, email_key = $2, email_verified_at = NULL WHERE id = $3")
                    .bind(email.as_str())
                    .bind(email.key())
                    .bind(&user.id)
                    .execute(&mut *tx)
                    .await?;
                links::void(&user.id, Purpose::VerifyEmail).execute(&mut *tx).await?;
                tx.commit().await?;
                self.record(Event::EmailChanged.of(Some(&user.id), Some(&principal.session_id), client)).await;
                self.mail_verification_link(&user.id, &user.username, email.as_str()).await;
                Ok(())
            }
        }
    }

    /// `POST /api/account/email/resend`: a new link for the unverified address, or for the one
    /// the account is changing to.
    pub async fn resend_verification(&self, principal: &Principal, client: &ClientInfo) -> Result<(), AppError> {
        self.limit_rate(Action::ResendVerification, client).await?;
        let account = self.account(principal).await?;
        let unverified = account.email.as_deref().filter(|_| !account.email_verified);
        if let Some(address) = account.pending_email.as_deref().or(unverified) {
            self.mail_verification_link(&account.id, &account.username, address).await;
        }
        Ok(())
    }

    /// `POST /api/account/email/verify`: no login needed (the link may be opened on another
    /// device). The link's address becomes the account's, verified; if it replaces a verified
    /// one, reset links sent there are void and it is told.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, input: &EmailVerification, client: &ClientInfo) -> Result<(), AppError> {
        self.limit_rate(Action::HandOff, client).await?;
        let link = match self.open_link(&input.token, Purpose::VerifyEmail).await? {
            Ok(link) => link,
            Err(closed) => return Err(verify_refusal(closed)),
        };
        let mut tx = self.begin_write().await?;
        // The user's row first, then the link's: the order every path takes (no deadlock).
        links::lock_user(&link.user_id).execute(&mut *tx).await?;
        if links::spend(&link.token_hash).execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(verify_refusal(Closed::Used));
        }
        let user = sqlx::query_as::<_, Verifying>("SELECT username, email, email_verified_at FROM users WHERE id = $1")
            .bind(&link.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user) = user else {
            tx.rollback().await?;
            return Err(verify_refusal(Closed::Unknown));
        };
        let key = link.email.to_lowercase();
        let replaced = user.email.as_deref().filter(|old| old.to_lowercase() != key);
        sqlx::query("UPDATE users SET email = $1, email_key = $2, email_verified_at = $3 WHERE id = $4")
            .bind(&link.email)
            .bind(&key)
            .bind(now_ms())
            .bind(&link.user_id)
            .execute(&mut *tx)
            .await?;
        if let Some(old) = replaced {
            links::void(&link.user_id, Purpose::ResetPassword).execute(&mut *tx).await?;
            if user.email_verified_at.is_some() {
                let changed = Notice::EmailChanged { new: link.email.clone() };
                let notice = notice_letter(&changed, &user.username, &Origin::of(client));
                self.compose(&notice, old)?.insert().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.mail_queued();
        if replaced.is_some() {
            self.record(Event::EmailChanged.of(Some(&link.user_id), None, client)).await;
        }
        self.record(Event::EmailVerified.of(Some(&link.user_id), None, client)).await;
        Ok(())
    }

    /// Mails a verification link for `email`, unless a cap was reached. Never fails its caller:
    /// the account card offers "Send again".
    pub(super) async fn mail_verification_link(&self, user_id: &str, username: &str, email: &str) {
        if let Err(e) = self.try_mail_verification_link(user_id, username, email).await {
            tracing::warn!(target: "mail", error = %e, "could not queue a verification mail");
        }
    }

    async fn try_mail_verification_link(&self, user_id: &str, username: &str, email: &str) -> Result<(), AppError> {
        if !self.under_caps(user_id, Purpose::VerifyEmail, email).await? {
            tracing::info!(target: "security", event = "verify_mail_capped", user_id, "no verification mail: a cap was reached");
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        if self.queue_verification_in(&mut tx, user_id, username, email).await? {
            tx.commit().await?;
            self.mail_queued();
        }
        Ok(())
    }

    /// In `tx`: a verification link for `email` and its mail, unless a cap was reached (then
    /// `false`, and the caller drops the transaction).
    async fn queue_verification_in(
        &self,
        tx: &mut WriteTx<'_>,
        user_id: &str,
        username: &str,
        email: &str,
    ) -> Result<bool, AppError> {
        let ttl_ms = VERIFY_TTL_HOURS as i64 * 3_600_000;
        let Some(link) = links::issue_in(tx, user_id, Purpose::VerifyEmail, Some(email), ttl_ms).await? else {
            return Ok(false);
        };
        let letter = verify_letter(username, self.link("/verify", &link.token), VERIFY_TTL_HOURS);
        self.compose(&letter, &link.email)?.until(link.expires_at).insert().execute(&mut **tx).await?;
        Ok(true)
    }
}

fn verify_refusal(closed: Closed) -> AppError {
    AppError::InvalidVerificationToken(
        match closed {
            Closed::Unknown => "This confirmation link is not valid.",
            Closed::Used => "This confirmation link was already used or replaced by a newer one.",
            Closed::Expired => "This confirmation link has expired. Send a new one from your account.",
        }
        .into(),
    )
}
