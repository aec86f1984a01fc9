//! The rows of mailed links (`link_tokens`): issue one (under the hourly caps, voiding the
//! account's older ones of the same purpose), open one, spend one.

use crate::auth::store::db::{now_ms, Statement};
use crate::auth::store::writer::WriteTx;
use crate::auth::tokens::links::{self, Purpose};
use crate::auth::AuthService;
use crate::error::AppError;

/// Mails of one purpose an hour, per account and per address (whichever accounts asked), however
/// many addresses ask: past either cap the answer is the same and no mail goes out (a refusal
/// would tell who exists). Per address: nobody can make Baton mail a stranger's inbox more than
/// this, however many accounts they sign up with it.
fn hourly_caps(purpose: Purpose) -> (i64, i64) {
    match purpose {
        Purpose::ResetPassword => (3, 6),
        Purpose::VerifyEmail => (5, 5),
    }
}

/// A link as found by its token.
#[derive(sqlx::FromRow)]
pub(super) struct LinkRow {
    pub token_hash: String,
    pub user_id: String,
    pub email: String,
    pub password_version: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Why a link does not open.
pub(super) enum Closed {
    Unknown,
    Used,
    Expired,
}

/// A link just stored: its token, the address it goes to, when it expires.
pub(super) struct Issued {
    pub token: String,
    pub email: String,
    pub expires_at: i64,
}

/// What the account is, read under its row's lock.
#[derive(sqlx::FromRow)]
struct Holder {
    email: Option<String>,
    email_verified_at: Option<i64>,
    password_version: i64,
}

/// In `tx`: a new link of `purpose` for `user_id`, voiding its older ones: a reset link to the
/// account's verified address (none: no link), a verification link to `verify` (the account's
/// address, or the one it is to change to). `None` past a cap. The user's row is locked first and
/// read again under the lock, so that a link always matches the account as it is now (an address
/// changed, a password changed meanwhile), and requests racing for the last place under a cap
/// take it one after the other (on PostgreSQL, whose transactions overlap).
pub(super) async fn issue_in(
    tx: &mut WriteTx<'_>,
    user_id: &str,
    purpose: Purpose,
    verify: Option<&str>,
    ttl_ms: i64,
) -> Result<Option<Issued>, sqlx::Error> {
    let now = now_ms();
    lock_user(user_id).execute(&mut **tx).await?;
    let holder =
        sqlx::query_as::<_, Holder>("SELECT email, email_verified_at, password_version FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(holder) = holder else { return Ok(None) };
    let email = match (purpose, verify, holder.email, holder.email_verified_at) {
        (Purpose::VerifyEmail, Some(address), _, _) => address.to_owned(),
        (Purpose::ResetPassword, None, Some(address), Some(_)) => address,
        _ => return Ok(None),
    };
    let (per_account, per_address) = hourly_caps(purpose);
    let (account, _) = sent_lately(&mut **tx, user_id, purpose, &email.to_lowercase(), now).await?;
    if account >= per_account {
        return Ok(None);
    }
    // The address's count, raised under its row's lock (taken after the user's: one order
    // everywhere); past the cap the caller drops the transaction, and the raise with it.
    let window = now - 3_600_000;
    let sent: i64 = sqlx::query_scalar(
        "INSERT INTO link_recipients (email_key, purpose, window_start, sent) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (email_key, purpose) DO UPDATE SET \
         sent = CASE WHEN link_recipients.window_start <= $4 THEN 1 ELSE link_recipients.sent + 1 END, \
         window_start = CASE WHEN link_recipients.window_start <= $4 THEN $3 ELSE link_recipients.window_start END \
         RETURNING sent",
    )
    .bind(email.to_lowercase())
    .bind(purpose.as_str())
    .bind(now)
    .bind(window)
    .fetch_one(&mut **tx)
    .await?;
    if sent > per_address {
        return Ok(None);
    }
    void(user_id, purpose).execute(&mut **tx).await?;
    let (token, hash) = links::issue();
    sqlx::query(
        "INSERT INTO link_tokens (token_hash, user_id, purpose, email, email_key, password_version, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(&email)
    .bind(email.to_lowercase())
    .bind(holder.password_version)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Some(Issued { token, email, expires_at: now + ttl_ms }))
}

/// Links of `purpose` issued in the last hour to `user_id`, and to `email_key` in its current
/// window (any account, deleted ones included).
async fn sent_lately<'c>(
    db: impl sqlx::Executor<'c, Database = sqlx::Any>,
    user_id: &str,
    purpose: Purpose,
    email_key: &str,
    now: i64,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM link_tokens WHERE user_id = $1 AND purpose = $2 AND created_at > $4), \
                COALESCE((SELECT sent FROM link_recipients WHERE email_key = $3 AND purpose = $2 AND window_start > $4), 0)",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(email_key)
    .bind(now - 3_600_000)
    .fetch_one(db)
    .await
}

impl AuthService {
    /// Whether a link of `purpose` for `user_id` to `email` is still under both caps: read
    /// before taking the write lock, so that a flood past the caps costs reads only (the caps
    /// are checked again under the lock, in [`issue_in`]).
    pub(super) async fn under_caps(&self, user_id: &str, purpose: Purpose, email: &str) -> Result<bool, AppError> {
        let (per_account, per_address) = hourly_caps(purpose);
        let (account, address) = sent_lately(self.db(), user_id, purpose, &email.to_lowercase(), now_ms()).await?;
        Ok(account < per_account && address < per_address)
    }

    /// The link `token` names, if it is one of `purpose` that still opens.
    pub(super) async fn open_link(&self, token: &str, purpose: Purpose) -> Result<Result<LinkRow, Closed>, AppError> {
        let Some(hash) = links::presented(token) else { return Ok(Err(Closed::Unknown)) };
        let row = sqlx::query_as::<_, LinkRow>(
            "SELECT token_hash, user_id, email, password_version, expires_at, used_at FROM link_tokens \
             WHERE token_hash = $1 AND purpose = $2",
        )
        .bind(&hash)
        .bind(purpose.as_str())
        .fetch_optional(self.db())
        .await?;
        Ok(match row {
            // Found by its hash; compared again in constant time, not by the index's lookup alone.
            Some(row) if !links::same(&row.token_hash, &hash) => Err(Closed::Unknown),
            Some(row) if row.used_at.is_some() => Err(Closed::Used),
            Some(row) if row.expires_at <= now_ms() => Err(Closed::Expired),
            Some(row) => Ok(row),
            None => Err(Closed::Unknown),
        })
    }
}

/// Voids `user_id`'s live links of `purpose` (a newer one replaces them; the change they were for
/// is over or cancelled).
pub(super) fn void(user_id: &str, purpose: Purpose) -> Statement {
    sqlx::query("UPDATE link_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
        .bind(now_ms())
        .bind(user_id.to_owned())
        .bind(purpose.as_str())
}

/// A no-op write that locks `user_id`'s row until the transaction ends (PostgreSQL; SQLite's
/// write transaction holds the whole database already): what is read of it next stays so.
pub(super) fn lock_user(user_id: &str) -> Statement {
    sqlx::query("UPDATE users SET password_version = password_version WHERE id = $1").bind(user_id.to_owned())
}

/// Marks a link used, if nobody else did first: `1` row for the one who opened it.
pub(super) fn spend(token_hash: &str) -> Statement {
    let now = now_ms();
    sqlx::query("UPDATE link_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1")
        .bind(now)
        .bind(token_hash.to_owned())
}
