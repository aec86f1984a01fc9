//! Sessions and their refresh tokens: rotation, reuse detection, expiry, logout.
//!
//! A session's refresh tokens form a chain of generations (see `tokens::refresh`): every refresh
//! spends the current generation and issues the next, in one conditional UPDATE of the session
//! row. A spent token presented again means two parties hold the chain (one of them a thief), so
//! the whole session is revoked, with one exception: the *immediate* predecessor of the current
//! token, within the grace window, gets the very pair that its first use got. That pair is rebuilt
//! from the row: the token from the generation, the access token re-signed from stored claims
//! (Ed25519 signatures are deterministic). Only the client that spent the token gets it (same
//! network and user agent; a thief replaying a stolen parent is reuse), and every grace replay is
//! recorded (`refresh_grace_replay`, with both requests' addresses).
//!
//! - `refresh`: the refresh itself; `rotation`: its UPDATE, batched. `revocation`: the one way
//!   sessions end. `cache`: what protected calls remember. `retention`: deleting what ended.
//!   `handoff`: carrying a session from one page of a tab to the next.

pub(crate) mod cache;
mod handoff;
mod refresh;
pub(crate) mod retention;
pub(crate) mod revocation;
pub(crate) mod rotation;

pub use cache::LIVENESS_TTL_MS;

use crate::api::{rfc3339, SessionInfo, TokenResponse, User};
use crate::auth::caller::{ClientInfo, Principal};
use crate::auth::events::Event;
use crate::auth::limits::rate::Action;
use crate::auth::store::db::now_ms;
use crate::auth::tokens::refresh as refresh_token;
use crate::auth::{AccessClaims, AuthService};
use crate::error::AppError;
use revocation::{Reason, Scope};
use rotation::IssuedTo;
use std::sync::Arc;

/// A session as the refresh path needs it, with its user.
#[derive(sqlx::FromRow)]
struct SessionState {
    id: String,
    user_id: String,
    username: String,
    user_created_at: i64,
    revoked_at: Option<i64>,
    expires_at: i64,
    last_used_at: i64,
    generation: i64,
    rotated_at: Option<i64>,
    access_jti: Option<String>,
    access_kid: Option<String>,
    /// The DPoP key the session is bound to (see `dpop`).
    dpop_jkt: Option<String>,
    #[sqlx(flatten)]
    issued_to: IssuedTo,
}

impl SessionState {
    /// Not revoked, not past its absolute lifetime, not idle for `idle_ms`.
    fn is_live(&self, now: i64, idle_ms: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now - self.last_used_at < idle_ms
    }

    fn user(&self) -> User {
        User { id: self.user_id.clone(), username: self.username.clone(), created_at: rfc3339(self.user_created_at) }
    }
}

/// An access token's claims with the key that signs it, and the refresh token that goes with them.
struct IssuedPair {
    claims: AccessClaims,
    kid: String,
    refresh_token: String,
    /// When the request was answered, in ms: `expiresIn` counts from here, not from the moment
    /// the response is built (a second may tick in between, and a fresh token then says 299).
    answered_at: i64,
}

/// A session as stored, for the user's list and the operator's.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

const SESSION_STATE: &str = "SELECT s.id, s.user_id, u.username, u.created_at AS user_created_at, s.revoked_at, \
     s.expires_at, s.last_used_at, s.generation, s.rotated_at, s.access_jti, s.access_kid, s.dpop_jkt, \
     s.issued_to_ip, s.issued_to_agent FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";

impl AuthService {
    /// A new session at generation 1, bound to DPoP key `jkt` if given; the caller has proven
    /// who `user` is with the password of version `proven_by`. The session is created only if
    /// that is still the user's password: a login that verified the old password while a password
    /// change committed gets no session (`invalid_credentials`). The user's row is locked first
    /// (a write that changes nothing), so on PostgreSQL a change cannot commit between this check
    /// and the group's commit unseen: it waits, and then its revocation sees this session.
    pub(crate) async fn start_session(
        &self,
        user: User,
        proven_by: i64,
        client: &ClientInfo,
        jkt: Option<String>,
    ) -> Result<TokenResponse, AppError> {
        let now = now_ms();
        let session_id = uuid::Uuid::new_v4().to_string();
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid();
        let expires_at = now + self.settings().refresh_absolute_ttl.as_millis() as i64;
        let to = IssuedTo::of(client);
        let (sid, user_id, agent, ip, j, k, key) = (
            session_id.clone(),
            user.id.clone(),
            client.user_agent.clone(),
            client.ip.clone(),
            jti.clone(),
            kid.clone(),
            jkt.clone(),
        );
        let returned = self
            .writer()
            .execute_grouped(move || {
                let lock = sqlx::query(
                    "UPDATE users SET password_version = password_version WHERE id = $1 AND password_version = $2",
                )
                .bind(user_id.clone())
                .bind(proven_by);
                let insert = sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, \
                     generation, rotated_at, access_jti, access_kid, issued_to_ip, issued_to_agent, dpop_jkt) \
                     SELECT $1, id, $3, $3, $4, $5, $6, 1, $3, $7, $8, $9, $10, $11 FROM users \
                     WHERE id = $2 AND password_version = $12 RETURNING id",
                )
                .bind(sid.clone())
                .bind(user_id.clone())
                .bind(now)
                .bind(expires_at)
                .bind(agent.clone())
                .bind(ip.clone())
                .bind(j.clone())
                .bind(k.clone())
                .bind(to.issued_to_ip.clone())
                .bind(to.issued_to_agent.clone())
                .bind(key.clone())
                .bind(proven_by);
                vec![lock, insert]
            })
            .await?;
        if returned.get(1).is_none_or(|rows| rows.is_empty()) {
            return Err(AppError::InvalidCredentials);
        }
        let claims = self.inner.signer.claims(&user.id, &session_id, &jti, now, jkt.as_deref());
        let refresh_token = self.token_of(&session_id, 1)?;
        self.token_response(user, IssuedPair { claims, kid, refresh_token, answered_at: now })
    }

    /// Revokes the session of `refresh_token` (of any generation). Unknown or already revoked
    /// tokens are fine: logging out twice is not an error. A session bound to a DPoP key is ended
    /// only with a proof by that key, as it is refreshed: a copied token cannot even end it.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str, client: &ClientInfo) -> Result<(), AppError> {
        let Some(refresh::Place { session_id, .. }) = self.locate(refresh_token).await? else { return Ok(()) };
        let live: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT user_id, dpop_jkt FROM sessions WHERE id = $1 AND revoked_at IS NULL")
                .bind(&session_id)
                .fetch_optional(self.db())
                .await?;
        if let Some((user_id, bound)) = live {
            self.check_session_key(bound.as_deref(), client).await?;
            self.revoke(Scope::Session(session_id.clone()), Reason::Logout, None).await?;
            self.record(Event::Logout.of(Some(&user_id), Some(&session_id), client)).await;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn logout_all(&self, principal: &Principal, client: &ClientInfo) -> Result<(), AppError> {
        self.revoke(Scope::AllOfUser(principal.user_id.clone()), Reason::LogoutAll, None).await?;
        self.record(Event::LogoutAll.of(Some(&principal.user_id), Some(&principal.session_id), client)).await;
        Ok(())
    }

    /// Revokes one of the caller's own sessions; another user's session is "not found".
    #[tracing::instrument(skip_all)]
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: &str,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        // Session ids are UUIDs; anything else (a NUL byte, say, which PostgreSQL refuses) names none.
        if uuid::Uuid::try_parse(session_id).is_err() {
            return Err(AppError::NotFound);
        }
        let scope = Scope::SessionOf { user_id: principal.user_id.clone(), session_id: session_id.to_owned() };
        let revoked = self.revoke(scope, Reason::Revoked, None).await?;
        if revoked == 0 {
            return Err(AppError::NotFound);
        }
        self.record(Event::SessionRevoked.of(Some(&principal.user_id), Some(session_id), client)).await;
        Ok(())
    }

    /// The caller's live sessions, most recently used first. `last_used_at` is given to the
    /// minute, and the list is rate-limited: to the second, it would tell a thief who holds an
    /// access token exactly when the victim refreshes (when to replay inside the grace window).
    pub async fn sessions(&self, principal: &Principal, client: &ClientInfo) -> Result<Vec<SessionInfo>, AppError> {
        self.limit_rate(Action::ListSessions, client).await?;
        let rows = self.live_sessions(&principal.user_id, 100).await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                current: r.id == principal.session_id,
                id: r.id,
                created_at: rfc3339(r.created_at),
                last_used_at: rfc3339(r.last_used_at.div_euclid(60_000) * 60_000),
                expires_at: rfc3339(r.expires_at),
                user_agent: r.user_agent,
                ip: r.ip,
            })
            .collect())
    }

    /// The user's sessions that still live (not revoked, expired or idle), most recently used first.
    pub(crate) async fn live_sessions(&self, user_id: &str, limit: i64) -> Result<Vec<SessionRow>, AppError> {
        let now = now_ms();
        let idle_cutoff = now - self.settings().refresh_idle_ttl.as_millis() as i64;
        Ok(sqlx::query_as::<_, SessionRow>(
            "SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_used_at > $3 \
             ORDER BY last_used_at DESC LIMIT $4",
        )
        .bind(user_id)
        .bind(now)
        .bind(idle_cutoff)
        .bind(limit)
        .fetch_all(self.db())
        .await?)
    }

    /// Access tokens die with their session: checked on every protected call, remembered for
    /// at most a second (see `cache`). The session's user comes with the answer.
    pub(crate) async fn live_user(&self, claims: &AccessClaims) -> Result<Arc<User>, AppError> {
        let now = now_ms();
        if let Some(user) = self.inner.live.get(&claims.sid, &claims.sub, now) {
            return Ok(user);
        }
        let epoch = self.inner.live.epoch();
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT u.username, u.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3",
        )
        .bind(&claims.sid)
        .bind(&claims.sub)
        .bind(now)
        .fetch_optional(self.db())
        .await?;
        let (username, created_at, expires_at) = row.ok_or(AppError::InvalidToken)?;
        let user = Arc::new(User { id: claims.sub.clone(), username, created_at: rfc3339(created_at) });
        self.inner.live.insert(epoch, &claims.sid, user.clone(), expires_at, now);
        Ok(user)
    }

    /// A user for a refresh answer: from memory (names never change), else from the database.
    async fn user(&self, user_id: &str) -> Result<Arc<User>, AppError> {
        if let Some(user) = self.inner.users.get(user_id) {
            return Ok(user);
        }
        let row: Option<(String, i64)> = sqlx::query_as("SELECT username, created_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.db())
            .await?;
        let (username, created_at) = row.ok_or(AppError::InvalidRefreshToken)?;
        let user = Arc::new(User { id: user_id.to_owned(), username, created_at: rfc3339(created_at) });
        self.inner.users.insert(user.clone());
        Ok(user)
    }

    /// The session with its user, if it is live at `now` (not revoked, not past its lifetime, not
    /// idle too long); a session whose user is gone is gone too.
    async fn live_session(&self, session_id: &str, now: i64) -> Result<Option<SessionState>, AppError> {
        let state = sqlx::query_as::<_, SessionState>(SESSION_STATE).bind(session_id).fetch_optional(self.db()).await?;
        let idle_ms = self.settings().refresh_idle_ttl.as_millis() as i64;
        Ok(state.filter(|state| state.is_live(now, idle_ms)))
    }

    /// The refresh token of `session_id`'s `generation`.
    fn token_of(&self, session_id: &str, generation: i64) -> Result<String, AppError> {
        refresh_token::issue(&self.inner.rotation.get()[0], session_id, generation)
            .ok_or_else(|| AppError::internal("a session id that is not a UUID"))
    }

    fn token_response(&self, user: User, pair: IssuedPair) -> Result<TokenResponse, AppError> {
        let access_token = self.inner.signer.sign(&pair.claims, &pair.kid)?;
        let expires_in = (pair.claims.exp - pair.answered_at.div_euclid(1000)).max(0) as u64;
        Ok(TokenResponse {
            user,
            access_token,
            refresh_token: pair.refresh_token,
            token_type: if pair.claims.cnf.is_some() { "DPoP" } else { "Bearer" }.into(),
            expires_in,
        })
    }

    /// Whether `session_id` is live (see [`Self::live_session`]).
    pub(crate) async fn session_is_live(&self, session_id: &str) -> Result<bool, AppError> {
        Ok(self.live_session(session_id, now_ms()).await?.is_some())
    }
}
