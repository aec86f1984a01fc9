//! Access tokens: short-lived EdDSA (Ed25519) JWTs, and the signing keys behind them.
//!
//! The keys live in `<data dir>/signing-keys.json` (mode 0600), made on first start, so a restart
//! logs nobody out. `server rotate-signing-key` adds a new key that signs from then on; the old ones
//! keep verifying until every token they signed has expired, and are then dropped.

use super::db::now_ms;
use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// RFC 9068's media type for access tokens: keeps an ID token or other JWT from passing as one.
pub const TOKEN_TYPE: &str = "at+jwt";
/// The most clock skew `JWT_LEEWAY` may tolerate. Baton verifies tokens it issued itself, so the
/// only skew is between its own instances' clocks: seconds, not minutes.
pub const MAX_LEEWAY_SECS: u64 = 5;
/// A retired key stays in the JWKS this long past the expiry of the last token it signed, for
/// resource servers that verify with a leeway of their own.
const RETIRED_KEY_MARGIN_MS: i64 = 60_000;
const KEY_FILE: &str = "signing-keys.json";

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
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKey {
    kid: String,
    created_at: i64,
    /// When a newer key took over signing; the key is dropped once no token it signed can be valid.
    retired_at: Option<i64>,
    /// PKCS#8 DER, base64.
    pkcs8: String,
}

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The raw public key, base64url: the JWK `x`.
    public_x: String,
}

pub struct TokenSigner {
    /// Newest first; the first one signs.
    keys: Vec<Key>,
    issuer: String,
    audience: String,
    ttl: Duration,
    validation: Validation,
}

impl TokenSigner {
    /// Loads the keys from `data_dir`, creating the first one if there is none.
    pub fn load_or_create(
        data_dir: &Path,
        issuer: &str,
        audience: &str,
        ttl: Duration,
        leeway: Duration,
    ) -> Result<Self, String> {
        let path = data_dir.join(KEY_FILE);
        let mut file = read_key_file(&path)?;
        let mut changed = false;
        if file.keys.is_empty() {
            file.keys.push(new_key());
            changed = true;
        }
        // A retired key is kept until the last token it signed has expired, plus a margin.
        let keep_until = |k: &StoredKey| k.retired_at.map(|r| r + ttl.as_millis() as i64 + RETIRED_KEY_MARGIN_MS);
        let before = file.keys.len();
        let now = now_ms();
        file.keys.retain(|k| keep_until(k).is_none_or(|t| t > now));
        changed |= file.keys.len() != before;
        if changed {
            write_key_file(&path, &file)?;
        }
        // The key that signs is the one not yet retired; the others only verify.
        let mut stored: Vec<&StoredKey> = file.keys.iter().collect();
        stored.sort_by_key(|k| (k.retired_at.is_some(), std::cmp::Reverse(k.created_at)));
        let keys = stored.into_iter().map(decode_key).collect::<Result<Vec<_>, _>>()?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = leeway.as_secs();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
            validation,
        })
    }

    /// Adds a new signing key to `data_dir`; the current one is retired. Returns the new `kid`.
    pub fn rotate(data_dir: &Path) -> Result<String, String> {
        let path = data_dir.join(KEY_FILE);
        let mut file = read_key_file(&path)?;
        let now = now_ms();
        for key in &mut file.keys {
            key.retired_at.get_or_insert(now);
        }
        let key = new_key();
        let kid = key.kid.clone();
        file.keys.push(key);
        write_key_file(&path, &file)?;
        Ok(kid)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The claims of a token issued at `issued_at_ms`; the same inputs give the same token, since
    /// Ed25519 signatures are deterministic. That is how the refresh grace window re-issues a pair.
    pub fn claims(&self, user_id: &str, session_id: &str, jti: &str, issued_at_ms: i64) -> AccessClaims {
        let iat = issued_at_ms.div_euclid(1000);
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iat,
            exp: iat + self.ttl.as_secs() as i64,
            jti: jti.to_owned(),
        }
    }

    /// Signs with the key `kid` if it is still known, else with the current key.
    pub fn sign(&self, claims: &AccessClaims, kid: &str) -> Result<String, AppError> {
        let key = self.keys.iter().find(|k| k.kid == kid).unwrap_or(&self.keys[0]);
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(AppError::internal)
    }

    /// Checks signature, algorithm, type, key id, issuer, audience, expiry and every claim.
    /// Does not check whether the session still lives: that is the caller's database lookup.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AppError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AppError::InvalidToken)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(AppError::InvalidToken);
        }
        let kid = header.kid.ok_or(AppError::InvalidToken)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(AppError::InvalidToken)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map_err(|_| AppError::InvalidToken)?
            .claims;
        // jsonwebtoken does not check `iat`: a token from the future is forged or from a broken clock.
        if claims.iat > now_ms() / 1000 + self.validation.leeway as i64 || claims.iat > claims.exp {
            return Err(AppError::InvalidToken);
        }
        Ok(claims)
    }

    /// The public keys as a JWK Set (RFC 7517), for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .keys
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

fn new_key() -> StoredKey {
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = signing.to_pkcs8_der().expect("an Ed25519 key always encodes as PKCS#8");
    // The kid is derived from the public key: stable, and says nothing secret.
    let public = signing.verifying_key().to_bytes();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(public);
    StoredKey {
        kid: URL_SAFE_NO_PAD.encode(&digest[..12]),
        created_at: now_ms(),
        retired_at: None,
        pkcs8: base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
    }
}

fn decode_key(stored: &StoredKey) -> Result<Key, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(&stored.pkcs8)
        .map_err(|_| format!("{KEY_FILE}: key {} is not valid base64", stored.kid))?;
    let signing = SigningKey::from_pkcs8_der(&der)
        .map_err(|_| format!("{KEY_FILE}: key {} is not an Ed25519 PKCS#8 key", stored.kid))?;
    let public = signing.verifying_key().to_bytes();
    Ok(Key {
        kid: stored.kid.clone(),
        encoding: EncodingKey::from_ed_der(&der),
        decoding: DecodingKey::from_ed_der(&public),
        public_x: URL_SAFE_NO_PAD.encode(public),
    })
}

fn write_key_file(path: &Path, file: &KeyFile) -> Result<(), String> {
    super::secret_file::write_private(path, &serde_json::to_vec_pretty(file).expect("key file serialises"))
}

fn read_key_file(path: &Path) -> Result<KeyFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn signer(dir: &Path) -> TokenSigner {
        TokenSigner::load_or_create(dir, "baton", "baton", Duration::from_secs(300), Duration::from_secs(2)).unwrap()
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("baton-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn keys_persist_with_private_permissions_and_tokens_are_deterministic() {
        let dir = tempdir("keys");
        let a = signer(&dir);
        let claims = a.claims("u", "s", "j", now_ms());
        let token = a.sign(&claims, a.current_kid()).unwrap();
        let b = signer(&dir);
        assert_eq!(b.verify(&token).unwrap(), claims, "a restart keeps verifying");
        assert_eq!(b.sign(&claims, a.current_kid()).unwrap(), token, "same claims, same token");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rotation_signs_with_the_new_key_and_still_verifies_the_old() {
        let dir = tempdir("rotate");
        let old = signer(&dir);
        let old_token = old.sign(&old.claims("u", "s", "j", now_ms()), old.current_kid()).unwrap();
        let new_kid = TokenSigner::rotate(&dir).unwrap();
        let new = signer(&dir);
        assert_eq!(new.current_kid(), new_kid);
        assert!(new.verify(&old_token).is_ok());
        assert_eq!(new.jwks()["keys"].as_array().unwrap().len(), 2);
        let header = jsonwebtoken::decode_header(new.sign(&new.claims("u", "s", "j", now_ms()), &new_kid).unwrap()).unwrap();
        assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let dir = tempdir("expiry");
        let s = signer(&dir);
        let long_ago = now_ms() - 3_600_000;
        let token = s.sign(&s.claims("u", "s", "j", long_ago), s.current_kid()).unwrap();
        assert_eq!(s.verify(&token), Err(AppError::InvalidToken));
    }
}
