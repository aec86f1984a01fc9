//! Accounts: signup, login, change password, delete account and the current user; the email
//! address and its verification (`email`); a password reset by mailed link (`reset`); the
//! single-use links both mail (`links`); one-time codes as a second factor (`second_factor`).

mod email;
mod links;
pub(crate) mod reset;
mod second_factor;

use super::caller::{ClientInfo, Principal};
use super::credentials::password::Lane;
use super::events::Event;
use super::letters::{address_prefix, notice_letter, Notice, Origin};
use super::limits::confirmations::Confirming;
use super::limits::rate::Action;
use super::sessions::revocation::{Reason, Scope};
use super::store::db::{is_unique_violation, now_ms};
use super::store::writer::WriteTx;
use super::tokens::links::Purpose;
use super::AuthService;
use crate::api::{
    rfc3339, AccountDeletion, Credentials, LoginResponse, PasswordChange, Secret, Signup, TokenResponse, User,
};
use crate::domain::{parse_credentials, parse_new_credentials, Password};
use crate::error::AppError;

#[derive(sqlx::FromRow)]
struct UserRow {
    pub id: String,
    pub username: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserWithHash {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
    password_version: i64,
}

/// An [`AccountRow`] by the user's id.
const ACCOUNT_BY_ID: &str = "SELECT id, username, username_key, password_hash, password_version, email, \
                             email_verified_at FROM users WHERE id = $1";

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    username: String,
    username_key: String,
    password_hash: String,
    password_version: i64,
    email: Option<String>,
    email_verified_at: Option<i64>,
}

impl AccountRow {
    /// The address notices go to: the account's, if verified.
    fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified_at.is_some())
    }
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> Self {
        User { id: row.id.clone(), username: row.username.clone(), created_at: rfc3339(row.created_at) }
    }
}

impl AuthService {
    #[tracing::instrument(skip_all)]
    pub async fn signup(&self, input: &Signup, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        self.limit_rate(Action::Signup, client).await?;
        let (username, password) = parse_new_credentials(&input.username, &input.password)?;
        let email = email::parse_optional(input.email.as_deref())?;
        let key = self.presented_key(client).await?;
        let hash = self.inner.hasher.hash(&password, Lane::Other).await?;
        let user =
            UserRow { id: uuid::Uuid::new_v4().to_string(), username: username.as_str().into(), created_at: now_ms() };
        let insert = sqlx::query(
            "INSERT INTO users (id, username, username_key, password_hash, created_at, email, email_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(username.key())
        .bind(&hash)
        .bind(user.created_at)
        .bind(email.as_ref().map(|e| e.as_str().to_owned()))
        .bind(email.as_ref().map(|e| e.key()));
        self.execute_write(insert).await.map_err(|e| {
            if is_unique_violation(&e) {
                AppError::UsernameTaken
            } else {
                AppError::from(e)
            }
        })?;
        let response = self.start_session(User::from(&user), 0, client, key).await?;
        self.record(Event::Signup.of(Some(&user.id), None, client)).await;
        if let Some(email) = email {
            self.mail_verification_link(&user.id, &user.username, email.as_str()).await;
        }
        Ok(response)
    }

    /// Unknown user and wrong password look the same from outside: same error, same throttling,
    /// and the same work, since an unknown user's attempt is checked against a dummy hash. An
    /// account with one-time codes gets the second step's challenge instead of tokens (and its
    /// attempt stays counted until a code is right).
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, input: &Credentials, client: &ClientInfo) -> Result<LoginResponse, AppError> {
        self.limit_rate(Action::Login, client).await?;
        let (username, password) = parse_credentials(&input.username, &input.password)?;
        let dpop_key = self.presented_key(client).await?;
        let key = username.key();
        let failures_before = self.claim_login_attempt(&key, client).await?;
        let found = sqlx::query_as::<_, UserWithHash>(
            "SELECT id, username, created_at, password_hash, password_version FROM users WHERE username_key = $1",
        )
        .bind(&key)
        .fetch_optional(self.db())
        .await?;
        let lane = match &found {
            Some(f) if failures_before == 0 && self.logged_in_recently_from(&f.user.id, client).await? => Lane::Known,
            _ => Lane::Other,
        };
        let verified =
            self.inner.hasher.verify(&password, found.as_ref().map(|f| f.password_hash.as_str()), lane).await?;
        let Some(UserWithHash { user, password_hash, password_version }) = found.as_ref().filter(|_| verified.ok)
        else {
            // The log may say whose account is under attack; the answer may not.
            self.record(Event::LoginFailed.of(found.as_ref().map(|f| f.user.id.as_str()), None, client)).await;
            return Err(AppError::InvalidCredentials);
        };
        let second_factor = self.has_one_time_codes(&user.id).await?;
        if !second_factor {
            self.clear_login_attempts(&key).await?;
        }
        if verified.needs_rehash {
            let hash = self.inner.hasher.hash(&password, Lane::Known).await?;
            // Only over the hash that was verified, of the same version: a password changed
            // meanwhile stays changed (and another login's rehash of it is as good as this one).
            let rehash = sqlx::query(
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3 AND password_version = $4",
            )
            .bind(&hash)
            .bind(&user.id)
            .bind(password_hash)
            .bind(password_version);
            self.execute_write(rehash).await?;
        }
        if second_factor {
            let challenge = self.issue_mfa_challenge(&user.id, *password_version, client, dpop_key.as_deref()).await?;
            return Ok(LoginResponse::SecondFactor(challenge));
        }
        let familiar = self.familiar_client(&user.id, client).await?;
        // Fails if the password changed since it was read (see `start_session`).
        let response = self.start_session(User::from(user), *password_version, client, dpop_key).await?;
        self.record(Event::Login.of(Some(&user.id), None, client)).await;
        if !familiar {
            self.notify(&user.id, Notice::NewSignIn, client);
        }
        Ok(LoginResponse::Tokens(response))
    }

    /// A session of this account (live or ended, as long as it is kept) came from the same kind
    /// of client and the same address prefix. None at all (the sessions purged after a long
    /// absence) is not familiar either: the owner hears of the sign-in.
    async fn familiar_client(&self, user_id: &str, client: &ClientInfo) -> Result<bool, AppError> {
        let family = client.user_agent.as_deref().map(super::events::agent_family);
        let prefix = client.ip.as_deref().and_then(address_prefix);
        let seen: Vec<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT user_agent, ip FROM sessions WHERE user_id = $1 ORDER BY created_at DESC LIMIT 100")
                .bind(user_id)
                .fetch_all(self.db())
                .await?;
        Ok(seen.iter().any(|(agent, ip)| {
            agent.as_deref().map(super::events::agent_family) == family
                && ip.as_deref().and_then(address_prefix) == prefix
        }))
    }

    /// A session of `user_id` began in the last 30 days from this very address: the login's
    /// hash waits in the known lane. Tied to the address, so that a flood's faster answers for
    /// known users tell an attacker nothing unless they share that user's address; and an
    /// account that failed since loses it until its next success.
    async fn logged_in_recently_from(&self, user_id: &str, client: &ClientInfo) -> Result<bool, AppError> {
        let Some(ip) = client.ip.as_deref() else { return Ok(false) };
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sessions WHERE user_id = $1 AND ip = $2 AND created_at > $3 LIMIT 1")
                .bind(user_id)
                .bind(ip)
                .bind(now_ms() - 30 * 86_400_000)
                .fetch_optional(self.db())
                .await?;
        Ok(found.is_some())
    }

    /// Sets a new password after checking the current one; every other session of the user ends
    /// (whoever else knew the old password is out), this one stays.
    #[tracing::instrument(skip_all)]
    pub async fn change_password(
        &self,
        principal: &Principal,
        input: &PasswordChange,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        // The new password's rules first: a change that cannot succeed costs no hash at all (the
        // rules are public, so checking them first tells nobody anything).
        let new = Password::parse_new(&input.new_password).map_err(|e| e.for_field("newPassword"))?;
        if input.new_password == input.current_password {
            return Err(AppError::invalid_field("newPassword", "The new password must differ from the current one."));
        }
        let (user, _confirming) = self.confirm_password(principal, &input.current_password, client).await?;
        let hash = self.inner.hasher.hash(&new, Lane::Other).await?;
        let mut tx = self.begin_write().await?;
        // Over the version just confirmed: of two changes racing, the second finds it gone (a
        // login's rehash meanwhile keeps the version, and is simply replaced).
        let changed = sqlx::query(
            "UPDATE users SET password_hash = $1, password_version = password_version + 1 WHERE id = $2 AND password_version = $3",
        )
        .bind(&hash)
        .bind(&user.id)
        .bind(user.password_version)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(AppError::InvalidCredentials);
        }
        let others = Scope::AllOfUserBut { user_id: user.id.clone(), keep: principal.session_id.clone() };
        let ended = self.revoke_in(&mut tx, others, Reason::PasswordChanged).await?;
        // Reset links mailed before are void now (they were for the old password's version); a
        // change of address asked with the old password is cancelled with it.
        links::void(&user.id, Purpose::VerifyEmail).execute(&mut *tx).await?;
        self.queue_notice_in(&mut tx, &user, Notice::PasswordChanged, client).await?;
        tx.commit().await?;
        ended.announce(self).await;
        self.mail_queued();
        self.record(Event::PasswordChanged.of(Some(&user.id), Some(&principal.session_id), client)).await;
        Ok(())
    }

    /// Deletes the account after checking its password: the user, every session and refresh
    /// token, the login count. The security log keeps its rows (ids and addresses only).
    #[tracing::instrument(skip_all)]
    pub async fn delete_account(
        &self,
        principal: &Principal,
        input: &AccountDeletion,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        let (user, _confirming) = self.confirm_password(principal, &input.password, client).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)")
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&user.id).execute(&mut *tx).await?;
        second_factor::delete_one_time_codes_in(&mut tx, &user.id).await?;
        sqlx::query("DELETE FROM users WHERE id = $1").bind(&user.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM login_attempts WHERE username_key = $1")
            .bind(&user.username_key)
            .execute(&mut *tx)
            .await?;
        self.queue_notice_in(&mut tx, &user, Notice::AccountDeleted, client).await?;
        tx.commit().await?;
        self.sessions_ended().await;
        self.inner.users.forget(&user.id);
        self.mail_queued();
        self.record(Event::AccountDeleted.of(Some(&user.id), Some(&principal.session_id), client)).await;
        Ok(())
    }

    /// Queues `notice` to `user`'s verified address (none: nothing) in the transaction of the
    /// change it tells of: it goes if and only if the change happened.
    async fn queue_notice_in(
        &self,
        tx: &mut WriteTx<'_>,
        user: &AccountRow,
        notice: Notice,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        if let Some(email) = user.verified_email() {
            let letter = notice_letter(&notice, &user.username, &Origin::of(client));
            self.compose(&letter, email)?.insert().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The caller's password, checked like a login: counted against the username's backoff
    /// first, so a stolen access token does not make guessing it any cheaper; limited per address
    /// and per account, one at a time (the guard returned), in the ordinary hashing lane: a right
    /// password clears the backoff, and must not buy a place ahead of other people's logins.
    async fn confirm_password(
        &self,
        principal: &Principal,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(AccountRow, Confirming), AppError> {
        let confirming = self.limit_confirmation(&principal.user_id, client).await?;
        let user = sqlx::query_as::<_, AccountRow>(ACCOUNT_BY_ID)
            .bind(&principal.user_id)
            .fetch_optional(self.db())
            .await?
            .ok_or(AppError::InvalidToken)?;
        self.claim_login_attempt(&user.username_key, client).await?;
        // A password outside the length rules is simply not this one.
        let ok = match Password::parse(password) {
            Ok(password) => self.inner.hasher.verify(&password, Some(&user.password_hash), Lane::Other).await?.ok,
            Err(_) => false,
        };
        if !ok {
            self.record(Event::LoginFailed.of(Some(&user.id), Some(&principal.session_id), client)).await;
            return Err(AppError::InvalidCredentials);
        }
        self.clear_login_attempts(&user.username_key).await?;
        Ok((user, confirming))
    }

    /// The caller, as read with the session's liveness: no further query.
    pub async fn me(&self, principal: &Principal) -> Result<User, AppError> {
        Ok(User::clone(&principal.user))
    }
}

/// The tutorial's protected demo resource.
pub fn secret_for(user: &User) -> Secret {
    Secret { message: format!("Hello {}! Only a logged-in user can read this.", user.username) }
}
