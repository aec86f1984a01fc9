//! The tokens of links Baton mails (verify an address, reset a password): 256 bits from the OS's
//! CSPRNG, `blk_` + base64url. Only their SHA-256 is stored, so a copy of the database opens no
//! link; a token is found by its hash and the stored hash compared again in constant time. Each
//! works once (`link_tokens.used_at`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// Marks Baton link tokens for secret scanners and people.
const PREFIX: &str = "blk_";

/// What a link is for: the `purpose` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A new token and the hash to store for it.
pub(crate) fn issue() -> (String, String) {
    issue_prefixed(PREFIX)
}

/// The stored form of a presented token; `None` for what cannot be one (no query needed).
pub(crate) fn presented(token: &str) -> Option<String> {
    presented_prefixed(token, PREFIX)
}

/// As [`issue`], for another single-use secret of the same make (a login's second-step challenge).
pub(crate) fn issue_prefixed(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    (token, hash)
}

/// As [`presented`], for [`issue_prefixed`]'s tokens.
pub(crate) fn presented_prefixed(token: &str, prefix: &str) -> Option<String> {
    let body = token.trim().strip_prefix(prefix)?;
    (body.len() == 43 && URL_SAFE_NO_PAD.decode(body).is_ok_and(|b| b.len() == 32)).then(|| hash(token.trim()))
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal, in time that depends on the length only.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, hash_a) = issue();
        let (b, _) = issue();
        assert_ne!(a, b);
        assert!(a.starts_with("blk_") && a.len() == 47, "{a}");
        assert_eq!(presented(&a).as_deref(), Some(hash_a.as_str()));
        assert_eq!(presented(&format!(" {a}\n")).as_deref(), Some(hash_a.as_str()), "as pasted");
        assert!(!hash_a.contains(&a[4..]));
        for bad in
            ["", "blk_", "brt_abc", &a[..46], &format!("{a}A"), "blk_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"]
        {
            assert_eq!(presented(bad), None, "{bad:?}");
        }
        assert!(same(&hash_a, &hash_a.clone()));
        assert!(!same(&hash_a, &hash_a.replace(&hash_a[..1], "z")));
        assert!(!same("ab", "abc"));
    }
}
