//! Carrying a session from one page of a tab to the next when the browser blocks site storage,
//! and the session lives in the page's memory only.
//!
//! The page about to leave stores what it holds with the server ([`AuthService::hand_off`], with
//! the session's refresh token, and a proof of its key if it is bound) and puts the one-time code it gets back in the tab's `window.name`; the
//! next page redeems the code ([`AuthService::take_hand_off`]) and gets it back. The name is
//! readable by any page the tab opens on the same site, so the code alone must not be enough:
//! - what is stored is sealed under a key derived from the code, and found by another hash of it:
//!   the table reveals nothing without the code;
//! - it is redeemed once, within [`LIFETIME_MS`], by the client that stored it (its network and
//!   user agent, as the grace window's), and only by a page of Baton's own origin: both calls are
//!   server functions without CORS, so a page of another origin can neither read the code that
//!   creating one answers nor the tokens that redeeming one answers, and a request that says it
//!   comes from elsewhere (`Sec-Fetch-Site`) is refused before it spends anything.

use super::rotation::IssuedTo;
use crate::auth::caller::ClientInfo;
use crate::auth::limits::rate::Action;
use crate::auth::store::db::now_ms;
use crate::auth::AuthService;
use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// Long enough for a page load on a slow network; short enough to be of no use later.
pub const LIFETIME_MS: i64 = 30_000;
/// What a page hands on: its tokens and a little about them (about 2 KiB).
const MAX_BYTES: usize = 4 * 1024;

fn derive(purpose: &str, code: &str) -> [u8; 32] {
    Sha256::new().chain_update(purpose).chain_update([0]).chain_update(code).finalize().into()
}

/// A hand-off as stored: sealed, for a session, by a client.
#[derive(sqlx::FromRow)]
struct Stored {
    sealed: String,
    session_id: String,
    #[sqlx(flatten)]
    issued_to: IssuedTo,
}

fn refused() -> AppError {
    AppError::NotFound
}

impl AuthService {
    /// Stores `payload` for the next page of the tab of the session `refresh_token` names (of
    /// its current generation); the one-time code that redeems it.
    pub async fn hand_off(&self, refresh_token: &str, payload: &str, client: &ClientInfo) -> Result<String, AppError> {
        if payload.len() > MAX_BYTES {
            return Err(AppError::PayloadTooLarge);
        }
        if !client.same_origin {
            return Err(AppError::BadRequest("A hand-off is made only by a page of Baton itself.".into()));
        }
        self.limit_rate(Action::HandOff, client).await?;
        let session_id = self.current_session(refresh_token, client).await?;
        let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let id = URL_SAFE_NO_PAD.encode(derive("baton handoff id", &code));
        let nonce: [u8; 24] = rand::random();
        let sealed = XChaCha20Poly1305::new(&derive("baton handoff key", &code).into())
            .encrypt(&XNonce::from(nonce), Payload { msg: payload.as_bytes(), aad: id.as_bytes() })
            .map_err(AppError::internal)?;
        // One outstanding per session: a page leaves once, and the table cannot be filled by one.
        let to = IssuedTo::of(client);
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM handoffs WHERE session_id = $1").bind(&session_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO handoffs (id, sealed, session_id, issued_to_ip, issued_to_agent, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
        .bind(&session_id)
        .bind(to.issued_to_ip)
        .bind(to.issued_to_agent)
        .bind(now_ms() + LIFETIME_MS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(code)
    }

    /// What the page before stored under `code`, once; `not_found` for a code that is unknown,
    /// used, expired, from another client, or whose session has ended since.
    pub async fn take_hand_off(&self, code: &str, client: &ClientInfo) -> Result<String, AppError> {
        if !client.same_origin || code.len() > 64 {
            return Err(refused());
        }
        self.limit_rate(Action::HandOff, client).await?;
        let id = URL_SAFE_NO_PAD.encode(derive("baton handoff id", code));
        let row: Option<Stored> = sqlx::query_as(
            "SELECT sealed, session_id, issued_to_ip, issued_to_agent FROM handoffs WHERE id = $1 AND expires_at > $2",
        )
        .bind(&id)
        .bind(now_ms())
        .fetch_optional(self.db())
        .await?;
        let Stored { sealed, session_id, issued_to } = row.ok_or_else(refused)?;
        // Another client learns nothing, and does not use the code up for the page it was made for.
        if !issued_to.is(client) {
            return Err(refused());
        }
        // Once: of two redemptions at the same moment, one deletes the row.
        if self.execute_write(sqlx::query("DELETE FROM handoffs WHERE id = $1").bind(&id)).await? != 1 {
            return Err(refused());
        }
        if !self.session_is_live(&session_id).await? {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(AppError::internal)?;
        let (nonce, ciphertext) =
            bytes.split_at_checked(24).ok_or_else(|| AppError::internal("a truncated hand-off"))?;
        let nonce: [u8; 24] = nonce.try_into().map_err(AppError::internal)?;
        let opened = XChaCha20Poly1305::new(&derive("baton handoff key", code).into())
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: id.as_bytes() })
            .map_err(|_| refused())?;
        String::from_utf8(opened).map_err(AppError::internal)
    }
}
