//! Accounts: signup, login and the current user.

use super::db::{is_unique_violation, now_ms};
use super::events::Event;
use super::{AuthService, ClientInfo, Principal};
use crate::api::{rfc3339, Credentials, Secret, TokenResponse, User};
use crate::domain::{parse_credentials, parse_new_credentials};
use crate::error::AppError;

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub id: String,
    pub username: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserWithHash {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> Self {
        User { id: row.id.clone(), username: row.username.clone(), created_at: rfc3339(row.created_at) }
    }
}

impl AuthService {
    #[tracing::instrument(skip_all)]
    pub async fn signup(&self, input: &Credentials, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        let (username, password) = parse_new_credentials(&input.username, &input.password)?;
        let hash = self.inner.hasher.hash(&password).await?;
        let user = UserRow { id: uuid::Uuid::new_v4().to_string(), username: username.as_str().into(), created_at: now_ms() };
        sqlx::query("INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&user.id)
            .bind(&user.username)
            .bind(username.key())
            .bind(&hash)
            .bind(user.created_at)
            .execute(self.db())
            .await
            .map_err(|e| if is_unique_violation(&e) { AppError::UsernameTaken } else { AppError::internal(e) })?;
        let response = self.start_session(&user, client).await?;
        self.record(Event::Signup, Some(&user.id), None, client).await;
        Ok(response)
    }

    /// Unknown user and wrong password look the same from outside: same error, and the same work,
    /// since an unknown user's attempt is checked against a dummy hash.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, input: &Credentials, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        let (username, password) = parse_credentials(&input.username, &input.password)?;
        let found = sqlx::query_as::<_, UserWithHash>(
            "SELECT id, username, created_at, password_hash FROM users WHERE username_key = $1",
        )
        .bind(username.key())
        .fetch_optional(self.db())
        .await
        .map_err(AppError::internal)?;
        let verified = self.inner.hasher.verify(&password, found.as_ref().map(|f| f.password_hash.as_str())).await?;
        let Some(UserWithHash { user, .. }) = found.filter(|_| verified.ok) else {
            self.record(Event::LoginFailed, None, None, client).await;
            return Err(AppError::InvalidCredentials);
        };
        if verified.needs_rehash {
            let hash = self.inner.hasher.hash(&password).await?;
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(&user.id)
                .execute(self.db())
                .await
                .map_err(AppError::internal)?;
        }
        let response = self.start_session(&user, client).await?;
        self.record(Event::Login, Some(&user.id), None, client).await;
        Ok(response)
    }

    pub async fn me(&self, principal: &Principal) -> Result<User, AppError> {
        self.user_by_id(&principal.user_id).await.map(|u| User::from(&u))
    }

    pub(super) async fn user_by_id(&self, id: &str) -> Result<UserRow, AppError> {
        sqlx::query_as::<_, UserRow>("SELECT id, username, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db())
            .await
            .map_err(AppError::internal)?
            .ok_or(AppError::InvalidToken)
    }
}

/// The tutorial's protected demo resource.
pub fn secret_for(user: &User) -> Secret {
    Secret { message: format!("Hello {}! Only a logged-in user can read this.", user.username) }
}
