//! One-time codes as a second factor. Turned on from the account: the password asked again, a
//! secret for the authenticator app, then a first code confirms it and ten recovery codes are shown
//! once. From then on a right password earns a challenge, not tokens; the login's second step
//! (`login_mfa`) trades it and a code for a session. Turning them off and making new recovery
//! codes ask for the password again. A password reset asks for a code too (`reset`).
//!
//! A code works once: a TOTP code's step must be newer than the last one accepted (RFC 6238 §5.2),
//! a recovery code is marked used, each in the transaction of what it allows. Every code tried
//! at login is counted against the account's login backoff before it is checked, like a password,
//! so someone who knows the password cannot try codes faster than they could try passwords.

use super::links::lock_user;
use crate::api::{MfaChallenge, MfaLogin, PasswordConfirmation, RecoveryCodes, TokenResponse, TotpSetup, User};
use crate::auth::caller::{ClientInfo, Principal};
use crate::auth::credentials::one_time::{self, Entered, TotpSecret, SETUP_TTL_MS};
use crate::auth::events::Event;
use crate::auth::letters::{Notice, WRONG_CODES_TOLD};
use crate::auth::limits::rate::Action;
use crate::auth::store::db::now_ms;
use crate::auth::store::writer::WriteTx;
use crate::auth::tokens::keys::{open_totp_secret, seal_totp_secret};
use crate::auth::tokens::links::{issue_prefixed, presented_prefixed};
use crate::auth::AuthService;
use crate::error::AppError;

/// Marks login challenges for secret scanners and people.
const CHALLENGE_PREFIX: &str = "bmc_";
const CHALLENGE_TTL_MS: i64 = 5 * 60_000;
/// Codes one challenge may try; then the password is asked again.
const CHALLENGE_TRIES: i64 = 5;
/// One row if one-time codes are on (confirmed) for `$1`.
const CODES_ON: &str = "SELECT 1 FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NOT NULL";
/// What the authenticator app is told the codes are for.
const ISSUER: &str = "Baton";

/// How a code step was passed (the security log's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Totp,
    RecoveryCode,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
        }
    }
}

#[derive(sqlx::FromRow)]
struct ChallengeRow {
    user_id: String,
    password_version: i64,
    jkt: Option<String>,
    user_agent: Option<String>,
    tries: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Owner {
    username: String,
    username_key: String,
    created_at: i64,
    password_version: i64,
}

pub(super) fn wrong_code() -> AppError {
    AppError::InvalidCode(
        "That code is not right, or was used already. Enter the code your authenticator app shows now, or a recovery code."
            .into(),
    )
}

impl AuthService {
    /// One-time codes are on (confirmed) for `user_id`.
    pub(crate) async fn has_one_time_codes(&self, user_id: &str) -> Result<bool, AppError> {
        let found: Option<i64> = sqlx::query_scalar(CODES_ON).bind(user_id).fetch_optional(self.db()).await?;
        Ok(found.is_some())
    }

    /// As [`Self::has_one_time_codes`], in `tx` (under the user's row lock, where a turn-on waits).
    pub(super) async fn has_one_time_codes_in(&self, tx: &mut WriteTx<'_>, user_id: &str) -> Result<bool, AppError> {
        let found: Option<i64> =
            sqlx::query_scalar(CODES_ON).bind(user_id.to_owned()).fetch_optional(&mut **tx).await?;
        Ok(found.is_some())
    }

    /// Recovery codes of `user_id` not used yet.
    pub(crate) async fn recovery_codes_left(&self, user_id: &str) -> Result<u32, AppError> {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                .bind(user_id)
                .fetch_one(self.db())
                .await?;
        Ok(u32::try_from(left).unwrap_or(0))
    }

    /// `POST /api/account/totp`: a new secret for the app, replacing a setup not confirmed yet.
    #[tracing::instrument(skip_all)]
    pub async fn begin_one_time_codes(
        &self,
        principal: &Principal,
        input: &PasswordConfirmation,
        client: &ClientInfo,
    ) -> Result<TotpSetup, AppError> {
        let (user, _confirming) = self.confirm_password(principal, &input.password, client).await?;
        let secret = TotpSecret::generate();
        // Only over a setup in progress (or none): codes that are on stay on.
        let stored = sqlx::query(
            "INSERT INTO totp_secrets (user_id, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = $2, created_at = $3, last_step = 0 \
             WHERE totp_secrets.confirmed_at IS NULL",
        )
        .bind(&user.id)
        .bind(seal_totp_secret(self.settings(), &user.id, secret.bytes()))
        .bind(now_ms());
        if self.execute_write(stored).await? != 1 {
            return Err(AppError::OneTimeCodes { on: true });
        }
        let uri = secret.uri(ISSUER, &user.username);
        Ok(TotpSetup { secret: secret.grouped(), qr_svg: one_time::qr_svg(&uri), otpauth_uri: uri })
    }

    /// `POST /api/account/totp/confirm`: the app's first code turns the codes on; the answer
    /// holds ten recovery codes, shown this once.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_one_time_codes(
        &self,
        principal: &Principal,
        code: &str,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes, AppError> {
        one_time::check_length(code)?;
        let _confirming = self.limit_confirmation(&principal.user_id, client).await?;
        let found: Option<(String, Option<i64>, i64)> =
            sqlx::query_as("SELECT secret, confirmed_at, created_at FROM totp_secrets WHERE user_id = $1")
                .bind(&principal.user_id)
                .fetch_optional(self.db())
                .await?;
        // A setup is confirmed within 15 minutes, or begun again (with the password).
        let (stored, secret) = match found {
            Some((_, Some(_), _)) => return Err(AppError::OneTimeCodes { on: true }),
            Some((stored, None, created_at)) if created_at > now_ms() - SETUP_TTL_MS => {
                let secret = self.open_totp_secret(&principal.user_id, &stored)?;
                (stored, secret)
            }
            _ => return Err(AppError::OneTimeCodes { on: false }),
        };
        let Some(Entered::Totp(code)) = one_time::parse_entered(code) else {
            return Err(AppError::InvalidCode("Enter the 6-digit code your authenticator app shows.".into()));
        };
        let step = secret.matching_step(&code, now_secs()).ok_or_else(|| {
            AppError::InvalidCode(
                "That code is not right. Check that the app was given this secret, and that this device's clock is right."
                    .into(),
            )
        })?;
        let codes = one_time::new_recovery_codes();
        let mut tx = self.begin_write().await?;
        lock_user(&principal.user_id).execute(&mut *tx).await?;
        // The very secret that was checked, still unconfirmed (a new setup meanwhile wins).
        let confirmed = sqlx::query(
            "UPDATE totp_secrets SET confirmed_at = $3, last_step = $4 \
             WHERE user_id = $1 AND secret = $2 AND confirmed_at IS NULL",
        )
        .bind(&principal.user_id)
        .bind(stored)
        .bind(now_ms())
        .bind(step)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if confirmed != 1 {
            tx.rollback().await?;
            return Err(AppError::OneTimeCodes { on: false });
        }
        self.replace_recovery_codes_in(&mut tx, &principal.user_id, &codes).await?;
        self.queue_notice_to_owner_in(&mut tx, &principal.user_id, Notice::OneTimeCodesOn, client).await?;
        tx.commit().await?;
        self.mail_queued();
        self.record(Event::OneTimeCodesOn.of(Some(&principal.user_id), Some(&principal.session_id), client)).await;
        Ok(RecoveryCodes { recovery_codes: codes })
    }

    /// `POST /api/account/totp/recovery-codes`: ten new codes; the old ones stop working.
    #[tracing::instrument(skip_all)]
    pub async fn renew_recovery_codes(
        &self,
        principal: &Principal,
        input: &PasswordConfirmation,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes, AppError> {
        let (user, _confirming) = self.confirm_password(principal, &input.password, client).await?;
        let codes = one_time::new_recovery_codes();
        let mut tx = self.begin_write().await?;
        lock_user(&user.id).execute(&mut *tx).await?;
        if !self.has_one_time_codes_in(&mut tx, &user.id).await? {
            tx.rollback().await?;
            return Err(AppError::OneTimeCodes { on: false });
        }
        self.replace_recovery_codes_in(&mut tx, &user.id, &codes).await?;
        self.queue_notice_in(&mut tx, &user, Notice::RecoveryCodesRenewed, client).await?;
        tx.commit().await?;
        self.mail_queued();
        self.record(Event::RecoveryCodesRenewed.of(Some(&user.id), Some(&principal.session_id), client)).await;
        Ok(RecoveryCodes { recovery_codes: codes })
    }

    /// `DELETE /api/account/totp`: logins ask for the password alone again.
    #[tracing::instrument(skip_all)]
    pub async fn turn_off_one_time_codes(
        &self,
        principal: &Principal,
        input: &PasswordConfirmation,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        let (user, _confirming) = self.confirm_password(principal, &input.password, client).await?;
        let mut tx = self.begin_write().await?;
        lock_user(&user.id).execute(&mut *tx).await?;
        if !delete_one_time_codes_in(&mut tx, &user.id).await? {
            tx.rollback().await?;
            return Err(AppError::OneTimeCodes { on: false });
        }
        self.queue_notice_in(&mut tx, &user, Notice::OneTimeCodesOff, client).await?;
        tx.commit().await?;
        self.mail_queued();
        self.record(Event::OneTimeCodesOff.of(Some(&user.id), Some(&principal.session_id), client)).await;
        Ok(())
    }

    /// The operator's `turn-off-codes`: the secret, recovery codes and challenges go, and the
    /// owner is told; `false` if there was no secret (on or being set up).
    pub(crate) async fn remove_one_time_codes(&self, user_id: &str, by: &ClientInfo) -> Result<bool, AppError> {
        let mut tx = self.begin_write().await?;
        lock_user(user_id).execute(&mut *tx).await?;
        if !delete_one_time_codes_in(&mut tx, user_id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        self.queue_notice_to_owner_in(&mut tx, user_id, Notice::OneTimeCodesOff, by).await?;
        tx.commit().await?;
        // Not woken here: the command's process may end in the middle of a send, which would hold
        // the mail for a claim's two minutes. The running servers' senders poll every 2 s.
        Ok(true)
    }

    /// After a right password: the challenge the code step must bring back.
    pub(super) async fn issue_mfa_challenge(
        &self,
        user_id: &str,
        password_version: i64,
        client: &ClientInfo,
        jkt: Option<&str>,
    ) -> Result<MfaChallenge, AppError> {
        let (challenge, hash) = issue_prefixed(CHALLENGE_PREFIX);
        let now = now_ms();
        let stored = sqlx::query(
            "INSERT INTO mfa_challenges (challenge_hash, user_id, password_version, jkt, user_agent, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(hash)
        .bind(user_id.to_owned())
        .bind(password_version)
        .bind(jkt.map(str::to_owned))
        .bind(client.user_agent.clone())
        .bind(now)
        .bind(now + CHALLENGE_TTL_MS);
        self.execute_write(stored).await?;
        Ok(MfaChallenge {
            mfa_required: true,
            challenge,
            methods: vec![Method::Totp.as_str().into(), Method::RecoveryCode.as_str().into()],
        })
    }

    /// `POST /api/auth/login/mfa`: the login's second step.
    #[tracing::instrument(skip_all)]
    pub async fn login_mfa(&self, input: &MfaLogin, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        self.limit_rate(Action::Login, client).await?;
        one_time::check_length(&input.code)?;
        let hash = presented_prefixed(&input.challenge, CHALLENGE_PREFIX).ok_or(AppError::InvalidMfaChallenge)?;
        let dpop_key = self.presented_key(client).await?;
        let found = sqlx::query_as::<_, ChallengeRow>(
            "SELECT user_id, password_version, jkt, user_agent, tries, expires_at, used_at \
             FROM mfa_challenges WHERE challenge_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(self.db())
        .await?;
        let Some(challenge) = found.filter(|c| {
            c.used_at.is_none()
                && c.expires_at > now_ms()
                && c.tries < CHALLENGE_TRIES
                && c.jkt == dpop_key
                && c.user_agent == client.user_agent
        }) else {
            return Err(AppError::InvalidMfaChallenge);
        };
        let owner = sqlx::query_as::<_, Owner>(
            "SELECT username, username_key, created_at, password_version FROM users WHERE id = $1",
        )
        .bind(&challenge.user_id)
        .fetch_optional(self.db())
        .await?
        .filter(|o| o.password_version == challenge.password_version)
        .ok_or(AppError::InvalidMfaChallenge)?;
        // Counted before it is checked, as a password is (concurrent guesses all count).
        self.claim_login_attempt(&owner.username_key, client).await?;
        let mut tx = self.begin_write().await?;
        let outcome = self.spend_code_in(&mut tx, &challenge.user_id, &input.code).await?;
        let Some(method) = outcome else {
            sqlx::query("UPDATE mfa_challenges SET tries = tries + 1 WHERE challenge_hash = $1")
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            let told = self.count_wrong_code_in(&mut tx, &challenge.user_id, client).await?;
            tx.commit().await?;
            if told {
                self.mail_queued();
            }
            self.record(Event::LoginFailed.of(Some(&challenge.user_id), None, client).with_detail(Some("code"))).await;
            return Err(wrong_code());
        };
        // Of two requests with one challenge, one wins; the other's code stays unspent.
        let spent = sqlx::query(
            "UPDATE mfa_challenges SET used_at = $2 WHERE challenge_hash = $1 AND used_at IS NULL AND tries < $3",
        )
        .bind(&hash)
        .bind(now_ms())
        .bind(CHALLENGE_TRIES)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            tx.rollback().await?;
            return Err(AppError::InvalidMfaChallenge);
        }
        tx.commit().await?;
        self.clear_login_attempts(&owner.username_key).await?;
        let familiar = self.familiar_client(&challenge.user_id, client).await?;
        let user = User {
            id: challenge.user_id.clone(),
            username: owner.username,
            created_at: crate::api::rfc3339(owner.created_at),
        };
        let response = self.start_session(user, owner.password_version, client, dpop_key).await?;
        self.record(Event::Login.of(Some(&challenge.user_id), None, client).with_detail(Some(method.as_str()))).await;
        if !familiar {
            self.notify(&challenge.user_id, Notice::NewSignIn, client);
        }
        Ok(response)
    }

    /// In `tx`: one more wrong code in a row for `user_id`; at [`WRONG_CODES_TOLD`] the owner's
    /// notice is queued (`true`: wake the sender after the commit).
    pub(super) async fn count_wrong_code_in(
        &self,
        tx: &mut WriteTx<'_>,
        user_id: &str,
        client: &ClientInfo,
    ) -> Result<bool, AppError> {
        let in_a_row: Option<i64> = sqlx::query_scalar(
            "UPDATE totp_secrets SET wrong_codes = wrong_codes + 1 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL RETURNING wrong_codes",
        )
        .bind(user_id.to_owned())
        .fetch_optional(&mut **tx)
        .await?;
        if in_a_row != Some(WRONG_CODES_TOLD) {
            return Ok(false);
        }
        self.queue_notice_to_owner_in(tx, user_id, Notice::WrongCodes, client).await?;
        Ok(true)
    }

    /// In `tx`: checks `raw` as a code of `user_id`'s and spends it (the TOTP step becomes the
    /// newest accepted; a recovery code is used). `None`: wrong, or already used.
    pub(super) async fn spend_code_in(
        &self,
        tx: &mut WriteTx<'_>,
        user_id: &str,
        raw: &str,
    ) -> Result<Option<Method>, AppError> {
        let secret: Option<String> =
            sqlx::query_scalar("SELECT secret FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NOT NULL")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(stored) = secret else { return Ok(None) };
        let secret = self.open_totp_secret(user_id, &stored)?;
        let spent = match one_time::parse_entered(raw) {
            Some(Entered::Totp(code)) => match secret.matching_step(&code, now_secs()) {
                // Only a step newer than the last accepted: a code replayed, or an older one
                // after it, finds no row.
                Some(step) => sqlx::query(
                    "UPDATE totp_secrets SET last_step = $2 WHERE user_id = $1 AND last_step < $2 AND confirmed_at IS NOT NULL",
                )
                .bind(user_id.to_owned())
                .bind(step)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    == 1,
                None => false,
            }
            .then_some(Method::Totp),
            Some(Entered::Recovery(code)) => (sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL",
            )
            .bind(one_time::recovery_hash(user_id, &code))
            .bind(user_id.to_owned())
            .bind(now_ms())
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1)
                .then_some(Method::RecoveryCode),
            None => None,
        };
        if spent.is_some() {
            // A right code ends the run of wrong ones.
            sqlx::query("UPDATE totp_secrets SET wrong_codes = 0 WHERE user_id = $1 AND wrong_codes > 0")
                .bind(user_id.to_owned())
                .execute(&mut **tx)
                .await?;
        }
        Ok(spent)
    }

    async fn replace_recovery_codes_in(
        &self,
        tx: &mut WriteTx<'_>,
        user_id: &str,
        codes: &[String],
    ) -> Result<(), AppError> {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id.to_owned())
            .execute(&mut **tx)
            .await?;
        let now = now_ms();
        for code in codes {
            sqlx::query("INSERT INTO recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)")
                .bind(one_time::recovery_hash(user_id, code))
                .bind(user_id.to_owned())
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// A stored secret that does not open (another `KEY_ENCRYPTION_KEY`, a row in the clear
    /// although one is set, or not one of ours) is the operator's to fix: logged, never sent.
    fn open_totp_secret(&self, user_id: &str, stored: &str) -> Result<TotpSecret, AppError> {
        let bytes = open_totp_secret(self.settings(), user_id, stored).map_err(AppError::internal)?;
        TotpSecret::from_bytes(bytes).ok_or_else(|| AppError::internal("a one-time-code secret of another length"))
    }

    /// The notice to the owner of `user_id` (read in `tx`).
    async fn queue_notice_to_owner_in(
        &self,
        tx: &mut WriteTx<'_>,
        user_id: &str,
        notice: Notice,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        let user = sqlx::query_as::<_, super::AccountRow>(super::ACCOUNT_BY_ID)
            .bind(user_id.to_owned())
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(AppError::InvalidToken)?;
        self.queue_notice_in(tx, &user, notice, client).await
    }
}

/// In `tx`: the account's secret, recovery codes and challenges go (SQLite cascades only with
/// foreign keys on, so by hand); `false` if there was no secret, on or being set up.
pub(super) async fn delete_one_time_codes_in(tx: &mut WriteTx<'_>, user_id: &str) -> Result<bool, AppError> {
    let mut had_secret = false;
    for table in ["totp_secrets", "recovery_codes", "mfa_challenges"] {
        let sql = format!("DELETE FROM {table} WHERE user_id = $1");
        let rows = sqlx::query(&sql).bind(user_id.to_owned()).execute(&mut **tx).await?.rows_affected();
        had_secret |= table == "totp_secrets" && rows > 0;
    }
    Ok(had_secret)
}

fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_prefixed_and_only_their_hash_is_kept() {
        let (challenge, hash) = issue_prefixed(CHALLENGE_PREFIX);
        assert!(challenge.starts_with("bmc_"));
        assert_eq!(presented_prefixed(&challenge, CHALLENGE_PREFIX), Some(hash));
        assert!(presented_prefixed(&challenge.replacen("bmc_", "blk_", 1), CHALLENGE_PREFIX).is_none());
    }
}
