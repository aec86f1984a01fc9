//! One DPoP proof checked on its own (RFC 9449 §4.3): form, key, signature, method, URL, age and
//! `ath`. Whether it was used before is [`super::replays`]'s question; whether its key is the
//! session's, [`super`]'s.

use crate::auth::caller::ProofRequest;
use crate::auth::origin;
use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How old a proof may be; a proof is also refused from more than [`FUTURE_SECS`] ahead.
pub const MAX_AGE_SECS: i64 = 60;
pub(super) const FUTURE_SECS: i64 = 5;
/// The one algorithm accepted: what WebCrypto and every DPoP client library make.
pub const ALGORITHM: &str = "ES256";

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Jwk,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// A private key must never be sent; a proof that carries one is refused.
    d: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
}

/// A proof that passed every check but the replay check (see [`Replays`]).
#[derive(Debug)]
pub(crate) struct VerifiedProof {
    /// The key's thumbprint.
    pub jkt: String,
    /// `jkt:jti`: what must not be seen twice.
    pub replay_id: String,
    /// Until when the replay must be remembered (ms).
    pub remember_until: i64,
    /// The proof's `iat` (ms).
    pub issued_at_ms: i64,
}

pub(super) fn refuse(why: &str) -> AppError {
    AppError::InvalidDpopProof(format!("The DPoP proof is not valid: {why}."))
}

/// Checks `request`'s proof: form, signature, method, URL (under one of `origins`, or the
/// request's own where none are given), age and, with an access token, `ath`.
pub(crate) fn verify(
    request: &ProofRequest,
    origins: &[String],
    access_token: Option<&str>,
    now_ms: i64,
) -> Result<VerifiedProof, AppError> {
    let proof = request.proof.trim();
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("it is not a compact JWT"));
    };
    if proof.len() > 4096 {
        return Err(refuse("it is not a compact JWT"));
    }
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("its header is not a JSON object with alg and jwk"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(refuse("typ must be dpop+jwt"));
    }
    if header.alg != ALGORITHM {
        return Err(refuse("alg must be ES256"));
    }
    let jwk = header.jwk;
    if jwk.d.is_some() {
        return Err(refuse("its jwk holds a private key"));
    }
    let (Some(x), Some(y)) = (jwk.x.as_deref(), jwk.y.as_deref()) else {
        return Err(refuse("its jwk is not a P-256 key"));
    };
    let point = (jwk.kty == "EC" && jwk.crv.as_deref() == Some("P-256"))
        .then(|| uncompressed_point(x, y))
        .flatten()
        .ok_or_else(|| refuse("its jwk is not a P-256 key"))?;
    // ring's P-256 (assembly where the CPU has it), not jsonwebtoken's pure-Rust backend: the
    // signature is most of a DPoP call's cost (see the README's Performance section).
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| refuse("its signature does not verify"))?;
    let signed = &proof[..header_b64.len() + 1 + claims_b64.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| refuse("its signature does not verify"))?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refuse("its claims are not a JSON object with jti, htm, htu and iat"))?;
    // No control characters: PostgreSQL cannot store a NUL, and a batch of checks (see
    // `replays`) should not fail for one proof's sake.
    if claims.jti.is_empty() || claims.jti.len() > 128 || claims.jti.chars().any(char::is_control) {
        return Err(refuse("jti must be 1 to 128 printable characters"));
    }
    if claims.htm != request.method {
        return Err(refuse("htm is not this request's method"));
    }
    let named = origin::normalize(&claims.htu).ok_or_else(|| refuse("htu is not this request's URL"))?;
    let matches = match origins {
        [] => origin::normalize(&request.htu).is_some_and(|own| own == named),
        origins => named.strip_suffix(request.path.as_str()).is_some_and(|origin| origins.iter().any(|o| o == origin)),
    };
    if !matches {
        return Err(refuse("htu is not this request's URL"));
    }
    let now = now_ms.div_euclid(1000);
    if claims.iat < now - MAX_AGE_SECS || claims.iat > now + FUTURE_SECS {
        return Err(refuse("iat is too old or in the future"));
    }
    if let Some(token) = access_token {
        if claims.ath.as_deref() != Some(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())).as_str()) {
            return Err(refuse("ath is not the hash of the access token"));
        }
    }
    let jkt = thumbprint(x, y);
    Ok(VerifiedProof {
        replay_id: format!("{jkt}:{}", claims.jti),
        jkt,
        remember_until: (claims.iat + MAX_AGE_SECS + FUTURE_SECS + 1) * 1000,
        issued_at_ms: claims.iat * 1000,
    })
}

/// The key as SEC 1 encodes it (`04 || x || y`), if both coordinates are 32 bytes. Whether the
/// point is on the curve is checked by the verification.
fn uncompressed_point(x: &str, y: &str) -> Option<[u8; 65]> {
    let (x, y) = (URL_SAFE_NO_PAD.decode(x).ok()?, URL_SAFE_NO_PAD.decode(y).ok()?);
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut point = [4; 65];
    point[1..33].copy_from_slice(&x);
    point[33..].copy_from_slice(&y);
    Some(point)
}

/// RFC 7638: SHA-256 of the key's required members, in this order, without whitespace.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbprint_is_the_sha_256_of_the_canonical_members() {
        // RFC 7638 §3: crv, kty, x, y in that order, no whitespace. (The integration tests and the
        // Python example compute it on their own and must agree with the server's `cnf.jkt`.)
        let canonical = r#"{"crv":"P-256","kty":"EC","x":"a","y":"b"}"#;
        assert_eq!(thumbprint("a", "b"), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())));
        assert_ne!(thumbprint("a", "b"), thumbprint("a", "c"));
    }
}
