//! A refresh: the current generation of a live session moves on, in one conditional UPDATE
//! (see `rotation`); anything else is explained by the session's row: a spent generation is
//! reuse and ends the session, except within the grace window for the client that spent it.

use super::revocation::{Reason, Scope};
use super::rotation::{IssuedTo, Rotation};
use super::{IssuedPair, SessionState};
use crate::api::{RefreshState, TokenResponse, User};
use crate::auth::caller::ClientInfo;
use crate::auth::events::Event;
use crate::auth::letters::Notice;
use crate::auth::limits::rate::Action;
use crate::auth::store::db::now_ms;
use crate::auth::tokens::dpop;
use crate::auth::tokens::refresh::{self as refresh_token, Presented};
use crate::auth::AuthService;
use crate::error::AppError;
use sqlx::Row as _;

/// A spent generation presented again.
enum Spent {
    /// The client that spent it asks again within the grace window: it gets the same pair.
    GraceReplay(Box<IssuedPair>),
    /// Someone else presents the immediate predecessor within the window: reuse.
    OtherClient,
    /// An older generation, or the window is closed: reuse.
    Reuse,
}

/// Where a refresh token sits: its session and its generation in the session's chain.
pub(super) struct Place {
    pub session_id: String,
    pub generation: i64,
}

/// A rotation that moved its session on: whose session it is, and the pair issued.
struct Rotated {
    user_id: String,
    pair: IssuedPair,
}

impl AuthService {
    #[tracing::instrument(skip_all, fields(session_id))]
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenResponse, AppError> {
        self.limit_rate(Action::Refresh, client).await?;
        let Place { session_id, generation } =
            self.locate(refresh_token).await?.ok_or(AppError::InvalidRefreshToken)?;
        tracing::Span::current().record("session_id", session_id.as_str());
        let key = self.presented_key(client).await?;
        let now = now_ms();
        // The common case is one statement: the current generation of a live session moves on.
        if self.settings().refresh_rotation {
            if let Some(Rotated { user_id, pair }) =
                self.rotate(&session_id, generation, now, client, key.as_deref()).await?
            {
                let user = self.user(&user_id).await?;
                self.record(Event::Refresh.of(Some(&user_id), Some(&session_id), client)).await;
                return self.token_response(User::clone(&user), pair);
            }
        }
        // Otherwise the session says why.
        let state = self.live_session(&session_id, now).await?.ok_or(AppError::InvalidRefreshToken)?;
        dpop::check_refresh_key(state.dpop_jkt.as_deref(), key.as_deref())?;
        if generation == state.generation && !self.settings().refresh_rotation {
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
                self.record(
                    Event::RefreshGraceReplay.of(Some(&state.user_id), session, client).with_detail(Some(&detail)),
                )
                .await;
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
    /// session is `invalid_refresh_token`. A token spent for good ends its session as presenting
    /// it would: the question must not let a thief find out, at no cost, which stolen tokens are
    /// still worth presenting. Asked by the client its renewal was issued to, about that renewal's
    /// token, it is a lost answer (`refresh_lost`); anyone else, or an older token, is reuse, and
    /// the owner is told.
    #[tracing::instrument(skip_all)]
    pub async fn refresh_state(&self, refresh_token: &str, client: &ClientInfo) -> Result<RefreshState, AppError> {
        self.limit_rate(Action::Refresh, client).await?;
        let (state, generation) = self.live_state(refresh_token, client).await?;
        Ok(match generation.cmp(&state.generation) {
            std::cmp::Ordering::Equal => RefreshState::Unspent,
            std::cmp::Ordering::Greater => return Err(AppError::InvalidRefreshToken),
            std::cmp::Ordering::Less => match self.spent(&state, generation, now_ms(), client)? {
                Spent::GraceReplay(_) => RefreshState::Replayable,
                Spent::OtherClient | Spent::Reuse
                    if generation == state.generation - 1 && state.issued_to.is_or_unknown(client) =>
                {
                    self.revoke(Scope::Session(state.id.clone()), Reason::RefreshLost, None).await?;
                    self.record(Event::RefreshLost.of(Some(&state.user_id), Some(&state.id), client)).await;
                    RefreshState::Spent
                }
                Spent::OtherClient | Spent::Reuse => {
                    self.revoke_for_reuse(&state, client, Some("asked what became of a spent refresh token")).await?;
                    RefreshState::Spent
                }
            },
        })
    }

    /// The live session whose *current* refresh token this is (with a proof of its key, if bound):
    /// what may act for the session without an access token. `invalid_refresh_token` otherwise.
    pub(crate) async fn current_session(&self, refresh_token: &str, client: &ClientInfo) -> Result<String, AppError> {
        let (state, generation) = self.live_state(refresh_token, client).await?;
        if generation != state.generation {
            return Err(AppError::InvalidRefreshToken);
        }
        Ok(state.id)
    }

    /// The live session `refresh_token` names (of any generation) and that generation, after the
    /// proof of the session's key if it is bound; `invalid_refresh_token` for an unknown or ended one.
    async fn live_state(&self, refresh_token: &str, client: &ClientInfo) -> Result<(SessionState, i64), AppError> {
        let Place { session_id, generation } =
            self.locate(refresh_token).await?.ok_or(AppError::InvalidRefreshToken)?;
        let state = self.live_session(&session_id, now_ms()).await?.ok_or(AppError::InvalidRefreshToken)?;
        self.check_session_key(state.dpop_jkt.as_deref(), client).await?;
        Ok((state, generation))
    }

    /// The session and generation a token names; `None` for a token Baton never issued.
    pub(super) async fn locate(&self, token: &str) -> Result<Option<Place>, AppError> {
        Ok(match refresh_token::parse(&self.inner.rotation.get(), token) {
            None => None,
            Some(Presented::Chain { session_id, generation }) => Some(Place { session_id, generation }),
            // A session from before generations is at generation 0 while its current token is
            // the one in `refresh_tokens` not yet spent; every spent one is older still.
            Some(Presented::Legacy { hash }) => {
                let row: Option<(String, Option<i64>)> =
                    sqlx::query_as("SELECT session_id, spent_at FROM refresh_tokens WHERE token_hash = $1")
                        .bind(hash)
                        .fetch_optional(self.db())
                        .await?;
                row.map(|(session_id, spent_at)| Place {
                    session_id,
                    generation: if spent_at.is_none() { 0 } else { -1 },
                })
            }
        })
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
    ) -> Result<Option<Rotated>, AppError> {
        let next = from + 1;
        let idle_cutoff = now - self.settings().refresh_idle_ttl.as_millis() as i64;
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
        let returned = self.writer().merged(rotation).await?;
        let Some(row) = returned.first().and_then(|rows| rows.first()) else { return Ok(None) };
        let user_id: String = row.try_get(0)?;
        let jkt: Option<String> = row.try_get(1)?;
        let claims = self.inner.signer.claims(&user_id, session_id, &jti, now, jkt.as_deref());
        let pair = IssuedPair { claims, kid, refresh_token: self.token_of(session_id, next)?, answered_at: now };
        Ok(Some(Rotated { user_id, pair }))
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
        self.record(Event::Refresh.of(Some(&state.user_id), Some(&state.id), client)).await;
        let jti = uuid::Uuid::new_v4().to_string();
        let kid = self.inner.signer.current_kid();
        let claims = self.inner.signer.claims(&state.user_id, &state.id, &jti, now, state.dpop_jkt.as_deref());
        let refresh_token = self.token_of(&state.id, state.generation)?;
        self.token_response(state.user(), IssuedPair { claims, kid, refresh_token, answered_at: now })
    }

    /// What a spent `generation` of a live session gets: the pair its first use got, only for the
    /// immediate predecessor, within the grace window, from the client that spent it.
    fn spent(&self, state: &SessionState, generation: i64, now: i64, client: &ClientInfo) -> Result<Spent, AppError> {
        let grace = self.settings().refresh_reuse_grace.as_millis() as i64;
        let (Some(at), Some(jti), Some(kid)) = (state.rotated_at, &state.access_jti, &state.access_kid) else {
            return Ok(Spent::Reuse);
        };
        if grace == 0 || now - at > grace || generation != state.generation - 1 {
            return Ok(Spent::Reuse);
        }
        if !state.issued_to.is_or_unknown(client) {
            return Ok(Spent::OtherClient);
        }
        let claims = self.inner.signer.claims(&state.user_id, &state.id, jti, at, state.dpop_jkt.as_deref());
        let refresh_token = self.token_of(&state.id, state.generation)?;
        Ok(Spent::GraceReplay(Box::new(IssuedPair { claims, kid: kid.clone(), refresh_token, answered_at: now })))
    }

    /// Reuse: the session ends, and the event is stored in the same commit.
    async fn revoke_for_reuse(
        &self,
        state: &SessionState,
        client: &ClientInfo,
        detail: Option<&str>,
    ) -> Result<(), AppError> {
        let event = self
            .log_event(Event::RefreshTokenReuse.of(Some(&state.user_id), Some(&state.id), client).with_detail(detail));
        let ended = self.revoke(Scope::Session(state.id.clone()), Reason::RefreshTokenReuse, event).await?;
        // Told once, by whichever presentation ended the session, not at every replay after.
        if ended > 0 {
            self.notify(&state.user_id, Notice::RefreshReused, client);
        }
        Ok(())
    }
}
