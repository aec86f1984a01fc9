//! The account's email address: set at signup or changed later (the password asked again), and
//! verified by opening a mailed link, which works once, for a day, for the address it was sent to.
//! Only a verified address gets reset links and notices.

use super::links::{self, Closed};
use crate::api::{Account, EmailChange, EmailVerification};
use crate::auth::caller::{ClientInfo, Principal};
use crate::auth::events::Event;
use crate::auth::letters::{verify_letter, Notice};
use crate::auth::limits::rate::Action;
use crate::auth::mail::transport::deliverable;
use crate::auth::store::db::now_ms;
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
}

impl AuthService {
    /// `GET /api/account`.
    pub async fn account(&self, principal: &Principal) -> Result<Account, AppError> {
        let row = sqlx::query_as::<_, AccountView>(
            "SELECT username, created_at, email, email_verified_at FROM users WHERE id = $1",
        )
        .bind(&principal.user_id)
        .fetch_optional(self.db())
        .await?
        .ok_or(AppError::InvalidToken)?;
        Ok(Account {
            id: principal.user_id.clone(),
            username: row.username,
            created_at: crate::api::rfc3339(row.created_at),
            email_verified: row.email.is_some() && row.email_verified_at.is_some(),
            email: row.email,
        })
    }

    /// `POST /api/account/email`: a new address, unverified until its link is opened; the old
    /// one, if verified, is told.
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
        if same && user.email_verified_at.is_some() {
            return Ok(());
        }
        if !same {
            let update =
                sqlx::query("UPDATE users SET email = $1, email_key = $2, email_verified_at = NULL WHERE id = $3")
                    .bind(email.as_str())
                    .bind(email.key())
                    .bind(&user.id);
            self.execute_write(update).await?;
            self.record(Event::EmailChanged.of(Some(&user.id), Some(&principal.session_id), client)).await;
            if let Some(old) = user.verified_email() {
                self.notify_address(&user.username, old, Notice::EmailChanged { new: email.as_str().into() }, client);
            }
        }
        self.mail_verification_link(&user.id, &user.username, email.as_str()).await;
        Ok(())
    }

    /// `POST /api/account/email/resend`: the account's unverified address gets a new link.
    pub async fn resend_verification(&self, principal: &Principal) -> Result<(), AppError> {
        let account = self.account(principal).await?;
        if let (Some(email), false) = (&account.email, account.email_verified) {
            self.mail_verification_link(&account.id, &account.username, email).await;
        }
        Ok(())
    }

    /// `POST /api/account/email/verify`: no login needed (the link may be opened on another device).
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, input: &EmailVerification, client: &ClientInfo) -> Result<(), AppError> {
        self.limit_rate(Action::HandOff, client).await?;
        let link = match self.open_link(&input.token, Purpose::VerifyEmail).await? {
            Ok(link) => link,
            Err(closed) => return Err(verify_refusal(closed)),
        };
        let mut tx = self.begin_write().await?;
        let spent = links::spend(&link.token_hash).execute(&mut *tx).await?.rows_affected();
        // The address the link went to, not whatever the account has now.
        let verified = sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email = $3")
            .bind(now_ms())
            .bind(&link.user_id)
            .bind(&link.email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if spent != 1 || verified != 1 {
            tx.rollback().await?;
            return Err(match spent {
                1 => AppError::InvalidVerificationToken(
                    "This link was for an address that is no longer on the account.".into(),
                ),
                _ => verify_refusal(Closed::Used),
            });
        }
        tx.commit().await?;
        self.record(Event::EmailVerified.of(Some(&link.user_id), None, client)).await;
        Ok(())
    }

    /// Mails a verification link to `email`, unless 5 went out this hour. Never fails its caller:
    /// the account card offers "Send again".
    pub(super) async fn mail_verification_link(&self, user_id: &str, username: &str, email: &str) {
        if let Err(e) = self.try_mail_verification_link(user_id, username, email).await {
            tracing::warn!(target: "mail", error = %e, "could not queue a verification mail");
        }
    }

    async fn try_mail_verification_link(&self, user_id: &str, username: &str, email: &str) -> Result<(), AppError> {
        let mut tx = self.begin_write().await?;
        let ttl_ms = VERIFY_TTL_HOURS as i64 * 3_600_000;
        let Some(token) = links::issue_in(&mut tx, user_id, Purpose::VerifyEmail, email, 0, ttl_ms).await? else {
            tracing::info!(target: "security", event = "verify_mail_capped", user_id, "no verification mail: 5 this hour");
            return Ok(());
        };
        let letter = verify_letter(username, self.link("/verify", &token), VERIFY_TTL_HOURS);
        self.compose(&letter, email)?.insert().execute(&mut *tx).await?;
        tx.commit().await?;
        self.mail_queued();
        Ok(())
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
