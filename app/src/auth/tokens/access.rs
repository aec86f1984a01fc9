//! Access tokens: short-lived EdDSA (Ed25519) JWTs, signed and verified with the keys that
//! `keys` keeps in the database. The signer holds the keys it last read: the current one signs,
//! older ones verify until every token they signed has expired, a newer one is published before
//! it signs.

use crate::auth::store::db::now_ms;
use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer as _, SigningKey};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// RFC 9068's media type for access tokens: keeps an ID token or other JWT from passing as one.
pub const TOKEN_TYPE: &str = "at+jwt";
/// The most clock skew `JWT_LEEWAY` may tolerate. Baton verifies tokens it issued itself, so the
/// only skew is between its own instances' clocks: seconds, not minutes.
pub const MAX_LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id: revoking the session refuses the token.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// RFC 9449 §6: the DPoP key the token is bound to, for a DPoP session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800's confirmation claim, with the key's RFC 7638 thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// A signing key, ready to sign and verify.
pub struct Key {
    pub kid: String,
    /// From when it signs (milliseconds); until then it only verifies.
    pub activates_at: i64,
    /// Held parsed: `jsonwebtoken::encode` parses the PKCS#8 key at each call, which derives the
    /// public key again, a second scalar multiplication as costly as the signature itself.
    signing: SigningKey,
    /// The JOSE header, base64url: the same for every token this key signs.
    header: String,
    decoding: DecodingKey,
    /// The raw public key, base64url: the JWK `x`.
    public_x: String,
}

/// A new key's material: its `kid`, its PKCS#8 DER and its public key (base64url).
pub struct NewKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub public_x: String,
}

impl Key {
    pub fn generate() -> NewKey {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = signing.to_pkcs8_der().expect("an Ed25519 key always encodes as PKCS#8");
        // The kid is derived from the public key: stable, and says nothing secret.
        let public = signing.verifying_key().to_bytes();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(public);
        NewKey {
            kid: URL_SAFE_NO_PAD.encode(&digest[..12]),
            pkcs8: der.as_bytes().to_vec(),
            public_x: URL_SAFE_NO_PAD.encode(public),
        }
    }

    pub fn from_pkcs8(kid: &str, activates_at: i64, der: &[u8]) -> Result<Self, String> {
        let signing =
            SigningKey::from_pkcs8_der(der).map_err(|_| format!("signing key {kid} is not an Ed25519 PKCS#8 key"))?;
        let public = signing.verifying_key().to_bytes();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(kid.to_owned());
        let header = serde_json::to_vec(&header).map_err(|e| format!("signing key {kid}: {e}"))?;
        Ok(Self {
            kid: kid.to_owned(),
            activates_at,
            signing,
            header: URL_SAFE_NO_PAD.encode(header),
            decoding: DecodingKey::from_ed_der(&public),
            public_x: URL_SAFE_NO_PAD.encode(public),
        })
    }

    pub fn public_x(&self) -> &str {
        &self.public_x
    }
}

pub struct TokenSigner {
    /// Newest activation first.
    keys: RwLock<Arc<[Key]>>,
    issuer: String,
    audience: String,
    ttl: Duration,
    validation: Validation,
}

impl TokenSigner {
    /// A signer with `keys` (at least one).
    pub fn new(keys: Vec<Key>, issuer: &str, audience: &str, ttl: Duration, leeway: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = leeway.as_secs();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let signer = Self {
            keys: RwLock::new(Arc::from(Vec::new())),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
            validation,
        };
        signer.set_keys(keys);
        signer
    }

    /// Replaces the keys with those just read from the database.
    pub fn set_keys(&self, mut keys: Vec<Key>) {
        assert!(!keys.is_empty(), "the key ring is never empty");
        keys.sort_by_key(|k| std::cmp::Reverse(k.activates_at));
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::from(keys);
    }

    fn keys(&self) -> Arc<[Key]> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key that signs now: the latest activated. Every instance that has read the same keys
    /// picks the same one at the same moment.
    pub fn current_kid(&self) -> String {
        let (keys, now) = (self.keys(), now_ms());
        keys.iter().find(|k| k.activates_at <= now).unwrap_or(&keys[keys.len() - 1]).kid.clone()
    }

    /// The claims of a token issued at `issued_at_ms`, bound to DPoP key `jkt` if given; the same
    /// inputs give the same token, since Ed25519 signatures are deterministic. That is how the
    /// refresh grace window re-issues a pair.
    pub fn claims(
        &self,
        user_id: &str,
        session_id: &str,
        jti: &str,
        issued_at_ms: i64,
        jkt: Option<&str>,
    ) -> AccessClaims {
        let iat = issued_at_ms.div_euclid(1000);
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat,
            exp: iat + self.ttl.as_secs() as i64,
            jti: jti.to_owned(),
            cnf: jkt.map(|jkt| Confirmation { jkt: jkt.to_owned() }),
        }
    }

    /// Signs with the key `kid` if it is still known, else with the current key.
    pub fn sign(&self, claims: &AccessClaims, kid: &str) -> Result<String, AppError> {
        let keys = self.keys();
        let key = match keys.iter().find(|k| k.kid == kid) {
            Some(key) => key,
            None => {
                let current = self.current_kid();
                return self.sign(claims, &current);
            }
        };
        // JWS compact serialisation (RFC 7515 §7.1), as `jsonwebtoken::encode` writes it.
        let claims = serde_json::to_vec(claims).map_err(AppError::internal)?;
        let mut token = String::with_capacity(key.header.len() + claims.len() * 4 / 3 + 90);
        token.push_str(&key.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = key.signing.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }

    /// Checks signature, algorithm, type, key id, issuer, audience, expiry and every claim.
    /// Does not check whether the session still lives: that is the caller's database lookup.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AppError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(AppError::InvalidToken);
        }
        let kid = header.kid.ok_or(AppError::InvalidToken)?;
        let keys = self.keys();
        let key = keys.iter().find(|k| k.kid == kid).ok_or(AppError::InvalidToken)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map_err(|_| AppError::InvalidToken)?
            .claims;
        // jsonwebtoken does not check `iat`: a token from the future is forged or from a broken clock.
        if claims.iat > now_ms() / 1000 + self.validation.leeway as i64 || claims.iat > claims.exp {
            return Err(AppError::InvalidToken);
        }
        Ok(claims)
    }

    /// The public keys as a JWK Set (RFC 7517), for `/.well-known/jwks.json`: the next key (once
    /// stored), the current one and the retired ones that may still have valid tokens out.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys()
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": k.kid, "x": k.public_x,
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(activates_at: i64) -> Key {
        let new = Key::generate();
        Key::from_pkcs8(&new.kid, activates_at, &new.pkcs8).unwrap()
    }

    fn signer(keys: Vec<Key>) -> TokenSigner {
        TokenSigner::new(keys, "baton", "baton", Duration::from_secs(300), Duration::from_secs(2))
    }

    #[test]
    fn tokens_are_deterministic_and_verify() {
        let s = signer(vec![key(0)]);
        let claims = s.claims("u", "s", "j", now_ms(), None);
        let token = s.sign(&claims, &s.current_kid()).unwrap();
        assert_eq!(s.verify(&token).unwrap(), claims);
        assert_eq!(s.sign(&claims, &s.current_kid()).unwrap(), token, "same claims, same token");
    }

    #[test]
    fn tokens_are_what_jsonwebtoken_would_sign() {
        let new = Key::generate();
        let s = signer(vec![Key::from_pkcs8(&new.kid, 0, &new.pkcs8).unwrap()]);
        let claims = s.claims("u", "s", "j", now_ms(), Some("thumbprint"));
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(new.kid.clone());
        let by_jsonwebtoken =
            jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(&new.pkcs8)).unwrap();
        assert_eq!(s.sign(&claims, &new.kid).unwrap(), by_jsonwebtoken);
    }

    #[test]
    fn the_latest_activated_key_signs_and_a_next_one_is_published_first() {
        let (old, current, next) = (key(0), key(now_ms() - 1000), key(now_ms() + 60_000));
        let (old_kid, current_kid) = (old.kid.clone(), current.kid.clone());
        let s = signer(vec![next, old, current]);
        assert_eq!(s.current_kid(), current_kid);
        assert_eq!(s.jwks()["keys"].as_array().unwrap().len(), 3, "the next key is published before it signs");
        let by_old = s.sign(&s.claims("u", "s", "j", now_ms(), None), &old_kid).unwrap();
        assert!(s.verify(&by_old).is_ok(), "retired keys still verify");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let s = signer(vec![key(0)]);
        let long_ago = now_ms() - 3_600_000;
        let token = s.sign(&s.claims("u", "s", "j", long_ago, None), &s.current_kid()).unwrap();
        assert_eq!(s.verify(&token), Err(AppError::InvalidToken));
    }
}
