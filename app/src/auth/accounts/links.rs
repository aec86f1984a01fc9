//! The rows of mailed links (`link_tokens`): issue one (under the account's hourly cap, voiding
//! its older ones of the same purpose), open one, spend one.

use crate::auth::store::db::{now_ms, Statement};
use crate::auth::store::writer::WriteTx;
use crate::auth::tokens::links::{self, Purpose};
use crate::auth::AuthService;
use crate::error::AppError;

/// Mails of one purpose per account per hour, whatever the addresses asking: past it the answer
/// is the same and no mail goes out (a refusal would tell who exists).
fn hourly_cap(purpose: Purpose) -> i64 {
    match purpose {
        Purpose::ResetPassword => 3,
        Purpose::VerifyEmail => 5,
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

/// In `tx`: unless `user_id` had its hourly cap of `purpose` links, voids its older ones and
/// stores a new one; the new link's token. The user's row is locked first, so that requests
/// racing for the last place under the cap (on PostgreSQL, whose transactions overlap) take it
/// one after the other.
pub(super) async fn issue_in(
    tx: &mut WriteTx<'_>,
    user_id: &str,
    purpose: Purpose,
    email: &str,
    password_version: i64,
    ttl_ms: i64,
) -> Result<Option<String>, sqlx::Error> {
    let now = now_ms();
    sqlx::query("UPDATE users SET password_version = password_version WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let sent: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM link_tokens WHERE user_id = $1 AND purpose = $2 AND created_at > $3")
            .bind(user_id)
            .bind(purpose.as_str())
            .bind(now - 3_600_000)
            .fetch_one(&mut **tx)
            .await?;
    if sent >= hourly_cap(purpose) {
        return Ok(None);
    }
    sqlx::query("UPDATE link_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
        .bind(now)
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(&mut **tx)
        .await?;
    let (token, hash) = links::issue();
    sqlx::query(
        "INSERT INTO link_tokens (token_hash, user_id, purpose, email, password_version, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(email)
    .bind(password_version)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Some(token))
}

impl AuthService {
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

/// Marks a link used, if nobody else did first: `1` row for the one who opened it.
pub(super) fn spend(token_hash: &str) -> Statement {
    let now = now_ms();
    sqlx::query("UPDATE link_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1")
        .bind(now)
        .bind(token_hash.to_owned())
}
