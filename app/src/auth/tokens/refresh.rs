//! The refresh token's format. A token names its session and its place in the session's chain,
//! the *generation*, and is authenticated by the rotation key:
//!
//! `brt_` + base64url(2 ‖ session id (16 bytes) ‖ generation (8 bytes, big-endian) ‖ HMAC-SHA256)
//!
//! so the database stores no token at all: the session row holds the current generation, and a
//! token of an older generation is a spent one. Without the rotation key nobody can make a token,
//! a copy of the database included. Tokens issued before generations (`brt_` + 32 random bytes,
//! found by their SHA-256 in `refresh_tokens`) are still read, so an upgrade logs nobody out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Marks Baton refresh tokens, so secret scanners and people can tell them apart.
const PREFIX: &str = "brt_";
const VERSION: u8 = 2;
const BODY: usize = 1 + 16 + 8;
const LEN: usize = BODY + 32;

/// What a presented token says, before the database is asked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presented {
    /// A token of the current format, its MAC verified.
    Chain { session_id: String, generation: i64 },
    /// Looks like a token from before generations: the SHA-256 that `refresh_tokens` knows it by.
    Legacy { hash: String },
}

/// Makes the token of `session_id`'s `generation`. `None` if the id is not a UUID (ids are).
pub(crate) fn issue(key: &[u8; 32], session_id: &str, generation: i64) -> Option<String> {
    let sid = uuid::Uuid::try_parse(session_id).ok()?;
    let mut bytes = Vec::with_capacity(LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(sid.as_bytes());
    bytes.extend_from_slice(&generation.to_be_bytes());
    let tag = mac(key, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag);
    Some(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Reads a presented token; `None` for anything Baton did not issue under one of `keys`.
pub(crate) fn parse(keys: &[[u8; 32]], token: &str) -> Option<Presented> {
    let body = token.trim().strip_prefix(PREFIX)?;
    if body.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    if bytes.len() == 32 {
        return Some(Presented::Legacy { hash: sha256_hex(token.trim()) });
    }
    if bytes.len() != LEN || bytes[0] != VERSION {
        return None;
    }
    let (body, tag) = bytes.split_at(BODY);
    // Constant time: a timing difference must not tell how much of a forged tag was right.
    keys.iter().find(|key| mac(key, body).verify_slice(tag).is_ok())?;
    let session_id = uuid::Uuid::from_slice(&body[1..17]).ok()?.to_string();
    let generation = i64::from_be_bytes(body[17..25].try_into().ok()?);
    Some(Presented::Chain { session_id, generation })
}

fn mac(key: &[u8; 32], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"baton refresh token v2\0");
    mac.update(body);
    mac
}

/// SHA-256, hex: how `refresh_tokens` stored tokens of the first format.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The user agent a generation was issued to is kept as its SHA-256: compared, never shown.
pub(crate) fn agent_hash(user_agent: &str) -> String {
    sha256_hex(user_agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const SID: &str = "0b7a3c5e-1f2d-4e6f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn tokens_name_their_session_and_generation() {
        let token = issue(&KEY, SID, 41).unwrap();
        assert!(token.starts_with("brt_") && token.len() < 100, "{token}");
        assert_eq!(parse(&[KEY], &token), Some(Presented::Chain { session_id: SID.into(), generation: 41 }));
        assert_ne!(issue(&KEY, SID, 42), Some(token.clone()));
        assert!(parse(&[[8; 32], KEY], &token).is_some(), "any of the keys verifies: imported ones too");
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let token = issue(&KEY, SID, 1).unwrap();
        assert_eq!(parse(&[[8; 32]], &token), None, "another key");
        let mut bytes = URL_SAFE_NO_PAD.decode(&token[4..]).unwrap();
        bytes[24] ^= 1; // generation 1 → 0, the tag unchanged
        assert_eq!(parse(&[KEY], &format!("brt_{}", URL_SAFE_NO_PAD.encode(&bytes))), None);
        for bad in ["", "brt_", "brt_!!", "xyz_abc", &"brt_".repeat(40)] {
            assert_eq!(parse(&[KEY], bad), None, "{bad}");
        }
        let legacy = format!("brt_{}", URL_SAFE_NO_PAD.encode([3u8; 32]));
        assert!(matches!(parse(&[KEY], &legacy), Some(Presented::Legacy { .. })));
    }
}
