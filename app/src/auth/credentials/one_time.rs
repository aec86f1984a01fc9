//! One-time codes: TOTP (RFC 6238 with what every authenticator app reads: HMAC-SHA1, 6 digits,
//! 30-second steps, a 160-bit secret) and the recovery codes that stand in for a lost
//! authenticator. Pure: storing them, and who may use them, is `accounts::second_factor`'s.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// A code is accepted one step either side of now (clocks drift; people type slowly).
const SKEW_STEPS: i64 = 1;
pub(crate) const RECOVERY_CODES: usize = 10;
/// Twelve base32 characters: 60 random bits each.
const RECOVERY_LEN: usize = 12;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// How long a setup waits for its first code; then it is begun again (and purged).
pub(crate) const SETUP_TTL_MS: i64 = 15 * 60_000;

/// A TOTP secret. No `Debug`: it must never reach a log.
pub(crate) struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub(crate) fn generate() -> Self {
        let mut bytes = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// As the app was given it; `None` if it is not one of ours.
    #[cfg(test)]
    fn from_base32(text: &str) -> Option<Self> {
        base32_decode(text).and_then(Self::from_bytes)
    }

    /// The 20 bytes, as opened from their stored form (`tokens::keys`); `None` if not ours.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() == 20).then_some(Self(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, upper case, as authenticator apps take it.
    pub(crate) fn base32(&self) -> String {
        base32_encode(&self.0).to_ascii_uppercase()
    }

    /// For typing by hand: groups of four.
    pub(crate) fn grouped(&self) -> String {
        let text = self.base32();
        text.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }

    fn totp(&self) -> TOTP {
        // The checked constructor only refuses secrets under 128 bits; ours are 160.
        TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECS, self.0.clone())
    }

    /// The step (`unix time / 30`) whose code `code` is, among now's and one either side; the
    /// nearest to now first. Compared in constant time by the library.
    pub(crate) fn matching_step(&self, code: &str, now_secs: u64) -> Option<i64> {
        let totp = self.totp();
        let now = (now_secs / STEP_SECS) as i64;
        [0, -1, 1]
            .into_iter()
            .take(1 + 2 * SKEW_STEPS as usize)
            .map(|d| now + d)
            .filter(|step| *step >= 0)
            .find(|step| totp.check(code, *step as u64 * STEP_SECS))
    }

    #[cfg(test)]
    fn code_at(&self, time_secs: u64) -> String {
        self.totp().generate(time_secs)
    }

    /// The `otpauth://` URI authenticator apps scan (Key Uri Format).
    pub(crate) fn uri(&self, issuer: &str, account: &str) -> String {
        let (issuer, account) = (percent(issuer), percent(account));
        format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            self.base32()
        )
    }
}

/// The URI as a QR code, an SVG drawn here (no image service sees the secret).
pub(crate) fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(qrcode::render::svg::Color("#000"))
            .light_color(qrcode::render::svg::Color("#fff"))
            .build(),
        // A URI of a few hundred bytes always fits; without a picture the secret is still shown.
        Err(_) => String::new(),
    }
}

/// What a person typed in the field "Code".
pub(crate) enum Entered {
    /// Six digits.
    Totp(String),
    /// A recovery code, normalised (lower case, without spaces or dashes).
    Recovery(String),
}

/// The longest code field the API takes (a code with spaces is 7, a recovery code 14).
pub(crate) const MAX_TYPED: usize = 64;

/// A code field over [`MAX_TYPED`] characters: refused before anything is looked up.
pub(crate) fn check_length(raw: &str) -> Result<(), crate::error::AppError> {
    match raw.chars().count() > MAX_TYPED {
        true => Err(crate::error::AppError::invalid_field("code", "A code is at most 64 characters.")),
        false => Ok(()),
    }
}

/// Reads a code as typed: spaces and dashes are ignored, case too. `None`: it is neither kind.
pub(crate) fn parse_entered(raw: &str) -> Option<Entered> {
    let text: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if text.len() == DIGITS && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Entered::Totp(text));
    }
    let text = text.to_ascii_lowercase();
    (text.len() == RECOVERY_LEN && text.bytes().all(|b| BASE32.contains(&b))).then_some(Entered::Recovery(text))
}

/// Ten new recovery codes, as shown (`abcd-efgh-ijkl`).
pub(crate) fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_LEN];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let text: Vec<u8> = bytes.iter().map(|b| BASE32[usize::from(b & 31)]).collect();
            text.chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
        })
        .collect()
}

/// The stored form of a recovery code (normalised as `parse_entered` does) of `user_id`.
pub(crate) fn recovery_hash(user_id: &str, code: &str) -> String {
    let normal: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_lowercase();
    let digest = Sha256::digest(format!("{user_id}:{normal}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|b| *b != b'=') {
        let value = BASE32.iter().position(|x| *x == c.to_ascii_lowercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc_6238_and_one_step_either_side() {
        // RFC 6238 appendix B's SHA-1 secret is 20 bytes of "12345678901234567890"; its 8-digit
        // code at 59 s is 94287082, so the 6-digit one is 287082.
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        assert_eq!(secret.code_at(59), "287082");
        assert_eq!(secret.matching_step("287082", 59), Some(1));
        assert_eq!(secret.matching_step("287082", 89), Some(1), "a step late");
        assert_eq!(secret.matching_step("287082", 29), Some(1), "a step early");
        assert_eq!(secret.matching_step("287082", 120), None, "two steps late");
        assert_eq!(secret.matching_step("000000", 59), None);
        let back = TotpSecret::from_base32(&secret.base32()).unwrap();
        assert_eq!(back.0, secret.0);
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(secret.grouped().split(' ').count(), 8);
        assert!(TotpSecret::from_base32("GEZDGNBV").is_none(), "too short to be ours");
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }

    #[test]
    fn the_uri_is_the_key_uri_format() {
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        let uri = secret.uri("Baton", "alice smith");
        assert_eq!(
            uri,
            "otpauth://totp/Baton:alice%20smith?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Baton&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri);
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{}", &svg[..60.min(svg.len())]);
    }

    #[test]
    fn entered_codes_are_read_as_typed() {
        assert!(matches!(parse_entered(" 123 456 "), Some(Entered::Totp(c)) if c == "123456"));
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<std::collections::HashSet<_>>().len(), 10);
        let typed = codes[0].to_uppercase().replace('-', " ");
        let Some(Entered::Recovery(normal)) = parse_entered(&typed) else { panic!("{typed}") };
        assert_eq!(recovery_hash("u", &normal), recovery_hash("u", &codes[0]));
        assert_ne!(recovery_hash("u", &codes[0]), recovery_hash("v", &codes[0]), "per account");
        for bad in ["", "12345", "1234567", "abcd-efgh-ijk", "abcd-efgh-ijk1", "abcd-efgh-ijklm"] {
            assert!(parse_entered(bad).is_none(), "{bad}");
        }
    }
}
