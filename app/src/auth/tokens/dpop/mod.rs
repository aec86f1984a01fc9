//! DPoP (RFC 9449): tokens bound to a key pair whose private half never leaves the client. Every
//! check that a request holds a session's key is here, but one: a refresh's rotation compares the
//! key presented with the session's in its UPDATE, saving a read (see `sessions::rotation`).
//!
//! A client that sends a `DPoP` proof with its login or signup gets a session bound to the key's
//! RFC 7638 thumbprint (`jkt`). From then on the session's refresh tokens work only with a proof
//! signed by that key, and its access tokens carry `cnf.jkt` and work only as
//! `Authorization: DPoP <token>` with a proof whose `ath` is the token's hash. A proof is a JWT
//! (`typ: dpop+jwt`, ES256, the public key in `jwk`) naming this request's method (`htm`) and URL
//! (`htu`, without query or fragment), made within the last minute (`iat`), and used once (`jti`:
//! remembered for the proof's lifetime, in memory on SQLite and in the database on PostgreSQL, so
//! no instance accepts it twice). The URL is checked against `PUBLIC_URL` where it is set (the
//! `Host` a client sends is its own choice: a proof made for another server that trusts Baton's
//! keys must not work here); unset, against the request's `Host`. Sessions started without a
//! proof stay bearer sessions unless `DPOP_REQUIRED` is on.
//!
//! - `proof`: one proof, checked on its own. `replays`: proofs already used.

mod proof;
mod replays;

pub use proof::{thumbprint, ALGORITHM, MAX_AGE_SECS};
pub(crate) use replays::{MemoryReplays, Replays, SharedReplays};

use crate::auth::caller::{ClientInfo, Scheme};
use crate::auth::store::db::now_ms;
use crate::auth::tokens::access::Confirmation;
use crate::auth::AuthService;
use crate::error::AppError;

/// A session bound to a key, and a request without a proof.
fn missing() -> AppError {
    AppError::InvalidDpopProof("This session is bound to a DPoP key: send a DPoP proof.".into())
}

/// A session bound to a key, and a proof by another.
fn foreign_key() -> AppError {
    AppError::InvalidDpopProof("The DPoP proof is signed by another key than the session's.".into())
}

impl AuthService {
    /// A protected call: an access token bound to a key (`cnf`) is accepted only as
    /// `Authorization: DPoP` with a proof by that key for this very token; an unbound one only as
    /// `Bearer`, and not at all under `DPOP_REQUIRED`.
    pub(crate) async fn check_access_binding(
        &self,
        cnf: Option<&Confirmation>,
        scheme: Scheme,
        access_token: &str,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        match (cnf, scheme) {
            (Some(cnf), Scheme::Dpop) => self.check_proof(client, Some(access_token), Some(&cnf.jkt)).await.map(drop),
            // A bound token sent as a bearer token is what a thief without the key would do.
            (Some(_), Scheme::Bearer) | (None, Scheme::Dpop) => Err(AppError::InvalidToken),
            (None, Scheme::Bearer) if self.settings().dpop_required => Err(AppError::InvalidToken),
            (None, Scheme::Bearer) => Ok(()),
        }
    }

    /// A request that acts for a session by its refresh token (logout, the token's state, a
    /// hand-off): a session bound to key `bound` needs a proof by it; an unbound one, none.
    pub(crate) async fn check_session_key(&self, bound: Option<&str>, client: &ClientInfo) -> Result<(), AppError> {
        match bound {
            Some(jkt) => self.check_proof(client, None, Some(jkt)).await.map(drop),
            None => Ok(()),
        }
    }

    /// The key a request's proof is made with, if it brings one (checked and recorded): what a
    /// new session is bound to, and what a refresh must present. With `DPOP_REQUIRED`, a request
    /// without one is refused.
    pub(crate) async fn presented_key(&self, client: &ClientInfo) -> Result<Option<String>, AppError> {
        match &client.dpop {
            Some(_) => self.check_proof(client, None, None).await.map(Some),
            None if self.settings().dpop_required => {
                Err(AppError::InvalidDpopProof("This server requires DPoP: send a DPoP proof.".into()))
            }
            None => Ok(None),
        }
    }

    /// Checks the proof `client` brings for this request (and `access_token`, on a protected
    /// call), signed by key `expected` if given, and records its use. The key's thumbprint.
    async fn check_proof(
        &self,
        client: &ClientInfo,
        access_token: Option<&str>,
        expected: Option<&str>,
    ) -> Result<String, AppError> {
        let request = client.dpop.as_ref().ok_or_else(missing)?;
        let now = now_ms();
        let verified = proof::verify(request, &self.settings().public_urls, access_token, now)?;
        if expected.is_some_and(|jkt| jkt != verified.jkt) {
            return Err(foreign_key());
        }
        if !self.inner.dpop_replays.first_use(&verified, now).await? {
            return Err(proof::refuse("it was used before"));
        }
        Ok(verified.jkt)
    }
}

/// A refresh whose token did not move its session on: the key presented (already checked by
/// [`AuthService::presented_key`]) must be the session's, before anything else is said about the
/// token. Without it a token of a bound session is worth nothing, not even the revocation that
/// presenting a spent one would cause.
pub(crate) fn check_refresh_key(bound: Option<&str>, presented: Option<&str>) -> Result<(), AppError> {
    match (bound, presented) {
        (Some(bound), Some(key)) if bound == key => Ok(()),
        (Some(_), Some(_)) => Err(foreign_key()),
        (Some(_), None) => Err(missing()),
        (None, _) => Ok(()),
    }
}
