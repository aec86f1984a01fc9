//! Sessions and their refresh tokens: rotation, reuse detection, expiry, logout.
//!
//! Every refresh spends the presented token and issues its successor. A spent token presented
//! again means two parties hold the chain (one of them a thief), so the whole session is revoked,
//! with one exception: the *immediate* predecessor of the current token, within the grace window,
//! gets the very pair that its first use got. That pair can be rebuilt without storing any
//! token: a successor is `HMAC(rotation key, predecessor)` and the access token is re-signed from
//! stored claims (Ed25519 signatures are deterministic). Only the client that spent the token gets
//! it (same network and user agent; a thief replaying a stolen parent is reuse), and every grace
//! replay is recorded (`refresh_grace_replay`, with both requests' addresses).

use super::accounts::UserRow;
use super::db::now_ms;
use super::events::Event;
use super::network::network;
use super::throttle::Action;
use super::{AccessClaims, AuthService, ClientInfo, Principal};
use crate::api::{rfc3339, SessionInfo, TokenResponse, User};
use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Marks Baton refresh tokens, so secret scanners and people can tell them apart.
const TOKEN_PREFIX: &str = "brt_";

#[derive(sqlx::FromRow)]
struct PresentedToken {
    id: String,
    session_id: String,
    spent_at: Option<i64>,
    user_id: String,
    revoked_at: Option<i64>,
    expires_at: i64,
    last_used_at: i64,
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

enum Rotation {
    Rotated(IssuedPair),
    /// Another request spent the token first, at this time.
    AlreadySpent { at: i64 },
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

#[derive(sqlx::FromRow)]
struct Successor {
    token_hash: String,
    issued_at: i64,
    access_jti: String,
    access_kid: String,
    spent_at: Option<i64>,
    #[sqlx(flatten)]
    issued_to: IssuedTo,
}

/// The client a refresh token was issued to: its address and a hash of its user agent.
#[derive(sqlx::FromRow)]
struct IssuedTo {
    issued_to_ip: Option<String>,
    issued_to_agent: Option<String>,
}

impl IssuedTo {
    fn of(client: &ClientInfo) -> Self {
        Self { issued_to_ip: client.ip.clone(), issued_to_agent: client.user_agent.as_deref().map(hash) }
    }

    /// Same network (an IPv4 address, an IPv6 /64) and the same user agent. Rows issued before
    /// this was stored name nobody and match anyone, for the few seconds of one grace window.
    fn is(&self, client: &ClientInfo) -> bool {
        if self.issued_to_ip.is_none() && self.issued_to_agent.is_none() {
            return true;
        }
        let net = |ip: Option<&str>| network(ip.and_then(|ip| ip.parse().ok()), 64);
        net(self.issued_to_ip.as_deref()) == net(client.ip.as_deref())
            && self.issued_to_agent == client.user_agent.as_deref().map(hash)
    }

    fn ip(&self) -> &str {
        self.issued_to_ip.as_deref().unwrap_or("unknown")
    }
}

/// What the grace window makes of a spent token presented again.
enum GraceReplay {
    /// The client that spent it asks again: it gets the same pair.
    Granted(IssuedPair, IssuedTo),
    /// Someone else presents it: reuse.
    OtherClient(IssuedTo),
    /// Its successor is spent too, or the window is closed: reuse.
    NotEligible,
}

impl AuthService {
    /// A new session with its first refresh token; the caller has proven who `user` is.
    pub(super) async fn start_session(&self, user: &UserRow, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        let now = now_ms();
        let session_id = uuid::Uuid::new_v4().to_string();
        let refresh_token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid().to_owned();
        let absolute = self.config().refresh_absolute_ttl.as_millis() as i64;

        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip) \
             VALUES ($1, $2, $3, $3, $4, $5, $6)",
        )
        .bind(&session_id)
        .bind(&user.id)
        .bind(now)
        .bind(now + absolute)
        .bind(client.user_agent.as_deref())
        .bind(client.ip.as_deref())
        .execute(&mut *tx)
        .await?;
        let first = NewToken {
            session_id: &session_id,
            parent_id: None,
            token: &refresh_token,
            issued_at: now,
            jti: &jti,
            kid: &kid,
            to: IssuedTo::of(client),
        };
        insert_token(&mut tx, first).await?;
        tx.commit().await?;

        let claims = self.inner.signer.claims(&user.id, &session_id, &jti, now);
        self.token_response(user.into(), IssuedPair { claims, kid, refresh_token, answered_at: now })
    }

    #[tracing::instrument(skip_all, fields(session_id))]
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        self.limit_rate(Action::Refresh, client)?;
        let token = refresh_token.trim();
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(AppError::InvalidRefreshToken);
        }
        let presented = sqlx::query_as::<_, PresentedToken>(
            "SELECT t.id, t.session_id, t.spent_at, s.user_id, s.revoked_at, s.expires_at, s.last_used_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(hash(token))
        .fetch_optional(self.db())
        .await?
        .ok_or(AppError::InvalidRefreshToken)?;
        tracing::Span::current().record("session_id", presented.session_id.as_str());

        let now = now_ms();
        let idle = self.config().refresh_idle_ttl.as_millis() as i64;
        if presented.revoked_at.is_some() || now >= presented.expires_at || now - presented.last_used_at >= idle {
            return Err(AppError::InvalidRefreshToken);
        }
        // Only a user that is gone ends the session; a database hiccup is a 503 the client retries.
        let user = self.user_by_id(&presented.user_id).await.map_err(|e| match e {
            AppError::InvalidToken => AppError::InvalidRefreshToken,
            other => other,
        })?;

        let spent_at = match presented.spent_at {
            Some(at) => at,
            None if !self.config().refresh_rotation => return self.extend(&presented, &user, token, now, client).await,
            None => match self.rotate(&presented, token, now, client).await? {
                Rotation::Rotated(pair) => {
                    self.record(Event::Refresh, Some(&user.id), Some(&presented.session_id), client).await;
                    return self.token_response((&user).into(), pair);
                }
                // Another request spent it a moment ago: answer as for a spent token.
                Rotation::AlreadySpent { at } => at,
            },
        };

        let detail = match self.grace_replay(&presented, &user, token, spent_at, now, client).await? {
            GraceReplay::Granted(pair, first) => {
                let detail = format!("first use from {}", first.ip());
                let session = Some(presented.session_id.as_str());
                self.record_with(Event::RefreshGraceReplay, Some(&user.id), session, client, Some(&detail)).await;
                return self.token_response((&user).into(), pair);
            }
            GraceReplay::OtherClient(first) => Some(format!("first use from {}, then another client", first.ip())),
            GraceReplay::NotEligible => None,
        };
        self.revoke_sessions(Scope::Session(&presented.session_id), "refresh_token_reuse").await?;
        let session = Some(presented.session_id.as_str());
        self.record_with(Event::RefreshTokenReuse, Some(&user.id), session, client, detail.as_deref()).await;
        Err(AppError::InvalidRefreshToken)
    }

    /// Spends `presented` and stores its successor, atomically, unless another request spent it
    /// first. The UPDATE that spends it decides, so two concurrent rotations cannot both win.
    async fn rotate(&self, presented: &PresentedToken, token: &str, now: i64, client: &ClientInfo) -> Result<Rotation, AppError> {
        let successor = self.successor_of(token);
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid().to_owned();
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query("UPDATE refresh_tokens SET spent_at = $1 WHERE id = $2 AND spent_at IS NULL")
            .bind(now)
            .bind(&presented.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if spent == 0 {
            tx.rollback().await?;
            let spent_at: Option<i64> = sqlx::query_scalar("SELECT spent_at FROM refresh_tokens WHERE id = $1")
                .bind(&presented.id)
                .fetch_one(self.db())
                .await?;
            return Ok(Rotation::AlreadySpent { at: spent_at.unwrap_or(now) });
        }
        let alive = sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&presented.session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if alive == 0 {
            // Revoked between our read and our write.
            tx.rollback().await?;
            return Err(AppError::InvalidRefreshToken);
        }
        let next = NewToken {
            session_id: &presented.session_id,
            parent_id: Some(&presented.id),
            token: &successor,
            issued_at: now,
            jti: &jti,
            kid: &kid,
            to: IssuedTo::of(client),
        };
        insert_token(&mut tx, next).await?;
        tx.commit().await?;
        let claims = self.inner.signer.claims(&presented.user_id, &presented.session_id, &jti, now);
        Ok(Rotation::Rotated(IssuedPair { claims, kid, refresh_token: successor, answered_at: now }))
    }

    /// `REFRESH_ROTATION=off`: the refresh token stays the current one; the session's idle timer
    /// slides and a new access token is issued.
    async fn extend(
        &self,
        presented: &PresentedToken,
        user: &UserRow,
        token: &str,
        now: i64,
        client: &ClientInfo,
    ) -> Result<TokenResponse, AppError> {
        let slide = sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&presented.session_id);
        if self.execute_write(slide).await? == 0 {
            return Err(AppError::InvalidRefreshToken);
        }
        self.record(Event::Refresh, Some(&user.id), Some(&presented.session_id), client).await;
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid().to_owned();
        let claims = self.inner.signer.claims(&user.id, &presented.session_id, &jti, now);
        self.token_response(user.into(), IssuedPair { claims, kid, refresh_token: token.to_owned(), answered_at: now })
    }

    /// Whether the grace window gives `presented`, spent at `spent_at`, the pair its first use
    /// got: only while that pair's refresh token is still the current one.
    async fn grace_replay(
        &self,
        presented: &PresentedToken,
        user: &UserRow,
        token: &str,
        spent_at: i64,
        now: i64,
        client: &ClientInfo,
    ) -> Result<GraceReplay, AppError> {
        let grace = self.config().refresh_reuse_grace.as_millis() as i64;
        if grace == 0 || now - spent_at > grace {
            return Ok(GraceReplay::NotEligible);
        }
        let Some(next) = sqlx::query_as::<_, Successor>(
            "SELECT token_hash, issued_at, access_jti, access_kid, spent_at, issued_to_ip, issued_to_agent \
             FROM refresh_tokens WHERE parent_id = $1",
        )
        .bind(&presented.id)
        .fetch_optional(self.db())
        .await?
        else {
            return Ok(GraceReplay::NotEligible);
        };
        let successor = self.successor_of(token);
        if next.spent_at.is_some() || hash(&successor) != next.token_hash {
            return Ok(GraceReplay::NotEligible);
        }
        if !next.issued_to.is(client) {
            return Ok(GraceReplay::OtherClient(next.issued_to));
        }
        let claims = self.inner.signer.claims(&user.id, &presented.session_id, &next.access_jti, next.issued_at);
        let pair = IssuedPair { claims, kid: next.access_kid, refresh_token: successor, answered_at: now };
        Ok(GraceReplay::Granted(pair, next.issued_to))
    }

    /// Revokes the session of `refresh_token`. Unknown or already revoked tokens are fine:
    /// logging out twice is not an error.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str, client: &ClientInfo) -> Result<(), AppError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             WHERE t.token_hash = $1 AND s.revoked_at IS NULL",
        )
        .bind(hash(refresh_token.trim()))
        .fetch_optional(self.db())
        .await?;
        if let Some((session_id, user_id)) = row {
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
        self.limit_rate(Action::ListSessions, client)?;
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

    /// Access tokens die with their session: checked on every protected call.
    pub(super) async fn check_session_alive(&self, claims: &AccessClaims) -> Result<(), AppError> {
        let alive: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(&claims.sid)
        .bind(&claims.sub)
        .bind(now_ms())
        .fetch_optional(self.db())
        .await?;
        alive.map(|_| ()).ok_or(AppError::InvalidToken)
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
        Ok(self.execute_write(sqlx::query(sql).bind(now_ms()).bind(value).bind(reason)).await?)
    }

    fn successor_of(&self, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.inner.rotation_key).expect("HMAC takes any key length");
        mac.update(b"baton refresh rotation v1\0");
        mac.update(token.as_bytes());
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn token_response(&self, user: User, pair: IssuedPair) -> Result<TokenResponse, AppError> {
        let access_token = self.inner.signer.sign(&pair.claims, &pair.kid)?;
        let expires_in = (pair.claims.exp - pair.answered_at.div_euclid(1000)).max(0) as u64;
        Ok(TokenResponse {
            user,
            access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer".into(),
            expires_in,
        })
    }
}

/// A refresh token about to be stored, with the access token issued beside it.
struct NewToken<'a> {
    session_id: &'a str,
    parent_id: Option<&'a str>,
    token: &'a str,
    issued_at: i64,
    jti: &'a str,
    kid: &'a str,
    to: IssuedTo,
}

async fn insert_token(tx: &mut sqlx::AnyConnection, new: NewToken<'_>) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
         (id, session_id, parent_id, token_hash, issued_at, access_jti, access_kid, issued_to_ip, issued_to_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(new.session_id)
    .bind(new.parent_id)
    .bind(hash(new.token))
    .bind(new.issued_at)
    .bind(new.jti)
    .bind(new.kid)
    .bind(new.to.issued_to_ip)
    .bind(new.to.issued_to_agent)
    .execute(tx)
    .await?;
    Ok(())
}

/// SHA-256, hex: the refresh token is 256 random bits, so a fast hash is enough (no salt or KDF).
fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
