//! Sessions and their refresh tokens: rotation, reuse detection, expiry, logout.
//!
//! A session's refresh tokens form a chain of generations (see `refresh_token`): every refresh
//! spends the current generation and issues the next, in one conditional UPDATE of the session
//! row. A spent token presented again means two parties hold the chain (one of them a thief), so
//! the whole session is revoked, with one exception: the *immediate* predecessor of the current
//! token, within the grace window, gets the very pair that its first use got. That pair is rebuilt
//! from the row: the token from the generation, the access token re-signed from stored claims
//! (Ed25519 signatures are deterministic). Only the client that spent the token gets it (same
//! network and user agent; a thief replaying a stolen parent is reuse), and every grace replay is
//! recorded (`refresh_grace_replay`, with both requests' addresses).

use super::accounts::UserRow;
use super::db::now_ms;
use super::events::Event;
use super::network::network;
use super::refresh_token::{self, agent_hash, Presented};
use super::throttle::Action;
use super::{AccessClaims, AuthService, ClientInfo, Principal};
use crate::api::{rfc3339, RefreshState, SessionInfo, TokenResponse, User};
use crate::error::AppError;
use sqlx::Row as _;
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

/// Which sessions a revocation ends.
pub(super) enum Scope<'a> {
    Session(&'a str),
    AllOfUser(&'a str),
}

/// One session's move from generation `from` to the next, as [`AuthService::rotate`] asks it.
/// The writer merges the rotations of a commit group into a few statements
/// ([`Rotation::statements`]): round trips to the database per group, not per refresh.
pub(super) struct Rotation {
    session_id: String,
    from: i64,
    now: i64,
    idle_cutoff: i64,
    /// Also how the writer finds this rotation's row among those the statement returns.
    pub(super) access_jti: String,
    access_kid: String,
    to: IssuedTo,
    dpop_jkt: Option<String>,
}

impl Rotation {
    /// Values per rotation in [`Self::statements`].
    const VALUES: usize = 9;
    /// Batches are cut into powers of two up to this: a few statements, each prepared once.
    const LARGEST_BATCH: usize = 64;

    /// UPDATEs for all of `batch`, as few as the batch sizes allow: each row moves only if it is
    /// still at its `from` generation, alive, not idle too long and bound to the key presented
    /// (or to none), so of two rotations of one session (in one batch or not) only one wins.
    /// They return `user_id, dpop_jkt, access_jti` per row moved.
    pub(super) fn statements(mut batch: &[&Rotation]) -> Vec<super::writer::Statement> {
        let mut statements = Vec::new();
        while !batch.is_empty() {
            let size = Self::LARGEST_BATCH.min(1 << batch.len().ilog2());
            let (chunk, rest) = batch.split_at(size);
            let mut query = sqlx::query(Self::sql(size));
            for r in chunk {
                query = query
                    .bind(r.session_id.clone())
                    .bind(r.from)
                    .bind(r.now)
                    .bind(r.idle_cutoff)
                    .bind(r.access_jti.clone())
                    .bind(r.access_kid.clone())
                    .bind(r.to.issued_to_ip.clone())
                    .bind(r.to.issued_to_agent.clone())
                    .bind(r.dpop_jkt.clone());
            }
            statements.push(query);
            batch = rest;
        }
        statements
    }

    /// The UPDATE for `size` rotations (a power of two), written once. `CAST`s type the VALUES
    /// for PostgreSQL; SQLite and PostgreSQL both name their columns `column1`….
    fn sql(size: usize) -> &'static str {
        const SIZES: usize = Rotation::LARGEST_BATCH.ilog2() as usize + 1;
        static SQL: [std::sync::OnceLock<String>; SIZES] = [const { std::sync::OnceLock::new() }; SIZES];
        SQL[size.ilog2() as usize].get_or_init(|| {
            const TYPES: [&str; Rotation::VALUES] = ["TEXT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT"];
            let rows: Vec<String> = (0..size)
                .map(|row| {
                    let values: Vec<String> = TYPES
                        .iter()
                        .enumerate()
                        .map(|(col, ty)| format!("CAST(${} AS {ty})", row * Self::VALUES + col + 1))
                        .collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            format!(
                "UPDATE sessions SET generation = v.column2 + 1, last_used_at = v.column3, rotated_at = v.column3, \
                 access_jti = v.column5, access_kid = v.column6, issued_to_ip = v.column7, issued_to_agent = v.column8 \
                 FROM (VALUES {}) AS v \
                 WHERE sessions.id = v.column1 AND sessions.generation = v.column2 AND sessions.revoked_at IS NULL \
                 AND sessions.expires_at > v.column3 AND sessions.last_used_at > v.column4 \
                 AND (sessions.dpop_jkt IS NULL OR sessions.dpop_jkt = v.column9) \
                 RETURNING sessions.user_id, sessions.dpop_jkt, sessions.access_jti",
                rows.join(", ")
            )
        })
    }
}

/// The client a generation was issued to: its address and a hash of its user agent.
#[derive(sqlx::FromRow)]
struct IssuedTo {
    issued_to_ip: Option<String>,
    issued_to_agent: Option<String>,
}

impl IssuedTo {
    fn of(client: &ClientInfo) -> Self {
        Self { issued_to_ip: client.ip.clone(), issued_to_agent: client.user_agent.as_deref().map(agent_hash) }
    }

    /// Same network (an IPv4 address, an IPv6 /64) and the same user agent. Generations issued
    /// before this was stored name nobody and match anyone, for the few seconds of one grace window.
    fn is(&self, client: &ClientInfo) -> bool {
        if self.issued_to_ip.is_none() && self.issued_to_agent.is_none() {
            return true;
        }
        let net = |ip: Option<&str>| network(ip.and_then(|ip| ip.parse().ok()), 64);
        net(self.issued_to_ip.as_deref()) == net(client.ip.as_deref())
            && self.issued_to_agent == client.user_agent.as_deref().map(agent_hash)
    }

    fn ip(&self) -> &str {
        self.issued_to_ip.as_deref().unwrap_or("unknown")
    }
}

/// A spent generation presented again.
enum Spent {
    /// The client that spent it asks again within the grace window: it gets the same pair.
    GraceReplay(Box<IssuedPair>),
    /// Someone else presents the immediate predecessor within the window: reuse.
    OtherClient,
    /// An older generation, or the window is closed: reuse.
    Reuse,
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
    pub(super) async fn start_session(
        &self,
        user: &UserRow,
        proven_by: i64,
        client: &ClientInfo,
        jkt: Option<String>,
    ) -> Result<TokenResponse, AppError> {
        let user = User::from(user);
        let now = now_ms();
        let session_id = uuid::Uuid::new_v4().to_string();
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid();
        let expires_at = now + self.config().refresh_absolute_ttl.as_millis() as i64;
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
                let lock = sqlx::query("UPDATE users SET password_version = password_version WHERE id = $1 AND password_version = $2")
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

    #[tracing::instrument(skip_all, fields(session_id))]
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        self.limit_rate(Action::Refresh, client).await?;
        let (session_id, generation) = self.locate(refresh_token).await?.ok_or(AppError::InvalidRefreshToken)?;
        tracing::Span::current().record("session_id", session_id.as_str());
        let key = self.presented_key(client).await?;
        let now = now_ms();
        // The common case is one statement: the current generation of a live session moves on.
        if self.config().refresh_rotation {
            if let Some((user_id, pair)) = self.rotate(&session_id, generation, now, client, key.as_deref()).await? {
                let user = self.user(&user_id).await?;
                self.record(Event::Refresh, Some(&user_id), Some(&session_id), client).await;
                return self.token_response(User::clone(&user), pair);
            }
        }
        // Otherwise the session says why. Its user is read with it: a session whose user is gone
        // is gone too.
        let state = self.session_state(&session_id).await?.ok_or(AppError::InvalidRefreshToken)?;
        if !state.is_live(now, self.config().refresh_idle_ttl.as_millis() as i64) {
            return Err(AppError::InvalidRefreshToken);
        }
        // Without the session's key, a token of a bound session is worth nothing, not even the
        // revocation that presenting a spent one would cause.
        match (&state.dpop_jkt, &key) {
            (Some(bound), Some(key)) if bound == key => {}
            (Some(_), Some(_)) => return Err(super::dpop::foreign_key()),
            (Some(_), None) => return Err(super::dpop::missing()),
            (None, _) => {}
        }
        if generation == state.generation && !self.config().refresh_rotation {
            return self.extend(&state, now, client).await;
        }
        // A generation the session has not reached is not one Baton issued; the current one that
        // did not move on belongs to a session that ended a moment ago.
        if generation >= state.generation {
            return Err(AppError::InvalidRefreshToken);
        }
        let detail = match self.spent(&state, generation, now, client)? {
            Spent::GraceReplay(pair) => {
                let detail = format!("first use from {}", state.issued_to.ip());
                let session = Some(state.id.as_str());
                self.record_with(Event::RefreshGraceReplay, Some(&state.user_id), session, client, Some(&detail)).await;
                return self.token_response(state.user(), *pair);
            }
            Spent::OtherClient => Some(format!("first use from {}, then another client", state.issued_to.ip())),
            Spent::Reuse => None,
        };
        self.revoke_for_reuse(&state, client, detail.as_deref()).await?;
        Err(AppError::InvalidRefreshToken)
    }

    /// What became of `refresh_token`, without spending it (see [`RefreshState`]): for a client
    /// whose renewal got no answer. Limited and key-bound as a refresh is; an unknown or ended
    /// session is `invalid_refresh_token`. A token spent for good ends its session (`refresh_lost`)
    /// as presenting it would: the question must not let a thief find out, at no cost, which
    /// stolen tokens are still worth presenting.
    #[tracing::instrument(skip_all)]
    pub async fn refresh_state(&self, refresh_token: &str, client: &ClientInfo) -> Result<RefreshState, AppError> {
        self.limit_rate(Action::Refresh, client).await?;
        let (state, generation) = self.live_state(refresh_token, client).await?;
        Ok(match generation.cmp(&state.generation) {
            std::cmp::Ordering::Equal => RefreshState::Unspent,
            std::cmp::Ordering::Greater => return Err(AppError::InvalidRefreshToken),
            std::cmp::Ordering::Less => match self.spent(&state, generation, now_ms(), client)? {
                Spent::GraceReplay(_) => RefreshState::Replayable,
                Spent::OtherClient | Spent::Reuse => {
                    self.revoke_sessions(Scope::Session(&state.id), "refresh_lost").await?;
                    self.record(Event::RefreshLost, Some(&state.user_id), Some(&state.id), client).await;
                    RefreshState::Spent
                }
            },
        })
    }

    /// The live session whose *current* refresh token this is (with a proof of its key, if bound):
    /// what may act for the session without an access token. `invalid_refresh_token` otherwise.
    pub(super) async fn current_session(&self, refresh_token: &str, client: &ClientInfo) -> Result<String, AppError> {
        let (state, generation) = self.live_state(refresh_token, client).await?;
        if generation != state.generation {
            return Err(AppError::InvalidRefreshToken);
        }
        Ok(state.id)
    }

    /// The live session `refresh_token` names (of any generation) and that generation, after the
    /// proof of the session's key if it is bound; `invalid_refresh_token` for an unknown or ended one.
    async fn live_state(&self, refresh_token: &str, client: &ClientInfo) -> Result<(SessionState, i64), AppError> {
        let (session_id, generation) = self.locate(refresh_token).await?.ok_or(AppError::InvalidRefreshToken)?;
        let state = self.session_state(&session_id).await?.ok_or(AppError::InvalidRefreshToken)?;
        if !state.is_live(now_ms(), self.config().refresh_idle_ttl.as_millis() as i64) {
            return Err(AppError::InvalidRefreshToken);
        }
        if let Some(jkt) = &state.dpop_jkt {
            self.check_proof(client, None, Some(jkt)).await?;
        }
        Ok((state, generation))
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

    /// The session and generation a token names; `None` for a token Baton never issued.
    async fn locate(&self, token: &str) -> Result<Option<(String, i64)>, AppError> {
        Ok(match refresh_token::parse(&self.inner.rotation.get(), token) {
            None => None,
            Some(Presented::Chain { session_id, generation }) => Some((session_id, generation)),
            // A session from before generations is at generation 0 while its current token is
            // the one in `refresh_tokens` not yet spent; every spent one is older still.
            Some(Presented::Legacy { hash }) => {
                let row: Option<(String, Option<i64>)> =
                    sqlx::query_as("SELECT session_id, spent_at FROM refresh_tokens WHERE token_hash = $1")
                        .bind(hash)
                        .fetch_optional(self.db())
                        .await?;
                row.map(|(session_id, spent_at)| (session_id, if spent_at.is_none() { 0 } else { -1 }))
            }
        })
    }

    async fn session_state(&self, session_id: &str) -> Result<Option<SessionState>, AppError> {
        Ok(sqlx::query_as::<_, SessionState>(SESSION_STATE).bind(session_id).fetch_optional(self.db()).await?)
    }

    /// Moves a live session from generation `from` to the next, unless it is elsewhere by now:
    /// the UPDATE's condition decides, so two concurrent rotations cannot both win. Committed
    /// with the other refreshes waiting (see `writer`), durable before it is answered. The
    /// session's user and the new pair, or `None` when nothing moved.
    async fn rotate(
        &self,
        session_id: &str,
        from: i64,
        now: i64,
        client: &ClientInfo,
        key: Option<&str>,
    ) -> Result<Option<(String, IssuedPair)>, AppError> {
        let next = from + 1;
        let idle_cutoff = now - self.config().refresh_idle_ttl.as_millis() as i64;
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid();
        let to = IssuedTo::of(client);
        let rotation = Rotation {
            session_id: session_id.to_owned(),
            from,
            now,
            idle_cutoff,
            access_jti: jti.clone(),
            access_kid: kid.clone(),
            to,
            dpop_jkt: key.map(str::to_owned),
        };
        let returned = self.writer().rotate(rotation).await?;
        let Some(row) = returned.first().and_then(|rows| rows.first()) else { return Ok(None) };
        let user_id: String = row.try_get(0)?;
        let jkt: Option<String> = row.try_get(1)?;
        let claims = self.inner.signer.claims(&user_id, session_id, &jti, now, jkt.as_deref());
        let pair = IssuedPair { claims, kid, refresh_token: self.token_of(session_id, next)?, answered_at: now };
        Ok(Some((user_id, pair)))
    }

    /// `REFRESH_ROTATION=off`: the refresh token stays the current one; the session's idle timer
    /// slides and a new access token is issued.
    async fn extend(&self, state: &SessionState, now: i64, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        let slide = sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&state.id);
        if self.execute_write(slide).await? == 0 {
            return Err(AppError::InvalidRefreshToken);
        }
        self.record(Event::Refresh, Some(&state.user_id), Some(&state.id), client).await;
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid();
        let claims = self.inner.signer.claims(&state.user_id, &state.id, &jti, now, state.dpop_jkt.as_deref());
        let refresh_token = self.token_of(&state.id, state.generation)?;
        self.token_response(state.user(), IssuedPair { claims, kid, refresh_token, answered_at: now })
    }

    /// What a spent `generation` of a live session gets: the pair its first use got, only for the
    /// immediate predecessor, within the grace window, from the client that spent it.
    fn spent(&self, state: &SessionState, generation: i64, now: i64, client: &ClientInfo) -> Result<Spent, AppError> {
        let grace = self.config().refresh_reuse_grace.as_millis() as i64;
        let (Some(at), Some(jti), Some(kid)) = (state.rotated_at, &state.access_jti, &state.access_kid) else {
            return Ok(Spent::Reuse);
        };
        if grace == 0 || now - at > grace || generation != state.generation - 1 {
            return Ok(Spent::Reuse);
        }
        if !state.issued_to.is(client) {
            return Ok(Spent::OtherClient);
        }
        let claims = self.inner.signer.claims(&state.user_id, &state.id, jti, at, state.dpop_jkt.as_deref());
        let refresh_token = self.token_of(&state.id, state.generation)?;
        Ok(Spent::GraceReplay(Box::new(IssuedPair { claims, kid: kid.clone(), refresh_token, answered_at: now })))
    }

    /// Reuse: the session ends, and the event is stored in the same transaction.
    async fn revoke_for_reuse(&self, state: &SessionState, client: &ClientInfo, detail: Option<&str>) -> Result<(), AppError> {
        let event = self.log_event(Event::RefreshTokenReuse, Some(&state.user_id), Some(&state.id), client, detail);
        let (sid, at) = (state.id.clone(), now_ms());
        self.writer()
            .execute_grouped(move || {
                let revoke = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh_token_reuse' \
                     WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(sid.clone());
                std::iter::once(revoke).chain(event.as_ref().map(|e| e.insert())).collect()
            })
            .await?;
        self.sessions_ended().await;
        Ok(())
    }

    /// Revokes the session of `refresh_token` (of any generation). Unknown or already revoked
    /// tokens are fine: logging out twice is not an error. A session bound to a DPoP key is ended
    /// only with a proof by that key, as it is refreshed: a copied token cannot even end it.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str, client: &ClientInfo) -> Result<(), AppError> {
        let Some((session_id, _)) = self.locate(refresh_token).await? else { return Ok(()) };
        let live: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT user_id, dpop_jkt FROM sessions WHERE id = $1 AND revoked_at IS NULL")
                .bind(&session_id)
                .fetch_optional(self.db())
                .await?;
        if let Some((user_id, bound)) = live {
            if let Some(jkt) = bound {
                self.check_proof(client, None, Some(&jkt)).await?;
            }
            self.revoke_sessions(Scope::Session(&session_id), "logout").await?;
            self.record(Event::Logout, Some(&user_id), Some(&session_id), client).await;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn logout_all(&self, principal: &Principal, client: &ClientInfo) -> Result<(), AppError> {
        self.revoke_sessions(Scope::AllOfUser(&principal.user_id), "logout_all").await?;
        self.record(Event::LogoutAll, Some(&principal.user_id), Some(&principal.session_id), client).await;
        Ok(())
    }

    /// Revokes one of the caller's own sessions; another user's session is "not found".
    #[tracing::instrument(skip_all)]
    pub async fn revoke_session(&self, principal: &Principal, session_id: &str, client: &ClientInfo) -> Result<(), AppError> {
        // Session ids are UUIDs; anything else (a NUL byte, say, which PostgreSQL refuses) names none.
        if uuid::Uuid::try_parse(session_id).is_err() {
            return Err(AppError::NotFound);
        }
        let revoke = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = 'revoked' \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(session_id)
        .bind(&principal.user_id);
        let revoked = self.execute_write(revoke).await?;
        self.sessions_ended().await;
        if revoked == 0 {
            return Err(AppError::NotFound);
        }
        self.record(Event::SessionRevoked, Some(&principal.user_id), Some(session_id), client).await;
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
    pub(super) async fn live_sessions(&self, user_id: &str, limit: i64) -> Result<Vec<SessionRow>, AppError> {
        let now = now_ms();
        let idle_cutoff = now - self.config().refresh_idle_ttl.as_millis() as i64;
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
    pub(super) async fn live_user(&self, claims: &AccessClaims) -> Result<Arc<User>, AppError> {
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

    /// Ends the live sessions in `scope`; how many there were.
    pub(super) async fn revoke_sessions(&self, scope: Scope<'_>, reason: &str) -> Result<u64, AppError> {
        let (sql, value) = match scope {
            Scope::Session(id) => ("UPDATE sessions SET revoked_at = $1, revoked_reason = $3 WHERE id = $2 AND revoked_at IS NULL", id),
            Scope::AllOfUser(user_id) => (
                "UPDATE sessions SET revoked_at = $1, revoked_reason = $3 WHERE user_id = $2 AND revoked_at IS NULL",
                user_id,
            ),
        };
        let ended = self.execute_write(sqlx::query(sql).bind(now_ms()).bind(value).bind(reason)).await?;
        self.sessions_ended().await;
        Ok(ended)
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
}
