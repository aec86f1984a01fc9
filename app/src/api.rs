//! The shapes that cross the wire, shared by the REST API, the server functions and the pages.
//! JSON fields are camelCase; timestamps are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub created_at: String,
}

/// What signup, login and refresh answer with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub user: User,
    /// Send with every protected call as `Authorization: <tokenType> …`.
    pub access_token: String,
    /// Exchange at `/api/auth/refresh` for a new pair; it works exactly once.
    pub refresh_token: String,
    /// `DPoP` for a session bound to the client's key (the login sent a DPoP proof: send a proof
    /// with every call), else `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    /// 3–32 of `a-z A-Z 0-9 _ . -`; surrounding whitespace is trimmed. Case-insensitive unique.
    #[cfg_attr(feature = "ssr", schema(pattern = r"^\s*[A-Za-z0-9_.\-]{3,32}\s*$"))]
    pub username: String,
    /// 8–128 characters (Unicode code points), used whole.
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 128))]
    pub password: String,
}

/// `POST /api/auth/signup`: the login's fields, and an email address if the user wants one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signup {
    #[cfg_attr(feature = "ssr", schema(pattern = r"^\s*[A-Za-z0-9_.\-]{3,32}\s*$"))]
    pub username: String,
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 128))]
    pub password: String,
    /// Optional: without one the password cannot be reset. A link to verify it is mailed there.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 254))]
    pub email: Option<String>,
}

/// The account, as its owner sees it (`GET /api/account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub username: String,
    pub created_at: String,
    pub email: Option<String>,
    /// A link mailed to `email` was opened. Only a verified address gets reset links and notices.
    pub email_verified: bool,
    /// The address the account is changing to: it becomes `email` once the link mailed there is
    /// opened (until then the verified `email` stays).
    pub pending_email: Option<String>,
    /// A login asks for a one-time code after the password.
    #[serde(default)]
    pub one_time_codes: bool,
    /// Recovery codes not used yet (0 without one-time codes).
    #[serde(default)]
    pub recovery_codes_left: u32,
}

/// `POST /api/auth/password-reset`: a username or an email address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[cfg_attr(feature = "ssr", schema(max_length = 254))]
    pub login: String,
}

/// `POST /api/auth/password-reset/confirm`: the token from the mailed link and the new password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordResetConfirm {
    pub token: String,
    /// The signup rules.
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
    /// For an account with one-time codes: a code from the authenticator app, or a recovery code.
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(max_length = 64))]
    pub code: Option<String>,
}

/// `POST /api/account/email`: the password again, and the new address.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailChange {
    pub password: String,
    #[cfg_attr(feature = "ssr", schema(max_length = 254))]
    pub email: String,
}

/// `POST /api/account/email/verify`: the token from the mailed link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailVerification {
    pub token: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// What became of a refresh token whose renewal got no answer (the request or its answer was
/// lost): asked without spending it, so that a client never presents a spent token by mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefreshState {
    /// Not spent: the renewal never reached the server; refreshing with it is safe.
    Unspent,
    /// Spent a moment ago by this very client: presenting it again returns the same new pair
    /// (the grace window).
    Replayable,
    /// Spent, and its answer cannot be had again: presenting it would be reuse.
    Spent,
}

/// `POST /api/auth/refresh/state`'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshStateResponse {
    /// `unspent`: refresh with it; `replayable`: refreshing with it again returns the pair that
    /// was lost; `spent`: it was spent and its answer is gone, so the session has ended.
    pub state: RefreshState,
}

/// `POST /api/account/password`: the current password proves it is the user; the new one must
/// meet the signup rules.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// The signup rules: 8–128 characters, not one of the 10,000 most common passwords.
    #[cfg_attr(feature = "ssr", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// `DELETE /api/account`: the password, once more.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountDeletion {
    pub password: String,
}

/// `DELETE /api/account/totp`, `POST /api/account/totp` and `…/recovery-codes`: the password,
/// once more.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordConfirmation {
    pub password: String,
}

/// What a right password gets, instead of tokens, for an account with one-time codes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MfaChallenge {
    /// Always `true`: no tokens yet.
    pub mfa_required: bool,
    /// Send with the code to `POST /api/auth/login/mfa`: single use, valid 5 minutes, from this
    /// client only (the same DPoP key, if the login had one, and the same `User-Agent`).
    pub challenge: String,
    /// What the code may be: `totp` (6 digits from the authenticator app), `recovery_code`.
    pub methods: Vec<String>,
}

/// `POST /api/auth/login`'s answer: tokens, or the second step's challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum LoginResponse {
    SecondFactor(MfaChallenge),
    Tokens(TokenResponse),
}

/// The login server function's answer: as [`LoginResponse`], externally tagged (the browser
/// reads this shape with far less code than an untagged enum's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginStep {
    Tokens(TokenResponse),
    /// The second step's challenge.
    SecondFactor(Sensitive),
}

impl From<LoginResponse> for LoginStep {
    fn from(answer: LoginResponse) -> Self {
        match answer {
            LoginResponse::Tokens(tokens) => Self::Tokens(tokens),
            LoginResponse::SecondFactor(second) => Self::SecondFactor(Sensitive(second.challenge)),
        }
    }
}

/// `POST /api/auth/login/mfa`: the challenge from the login's answer and a code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MfaLogin {
    pub challenge: String,
    /// The authenticator app's 6 digits, or a recovery code (spaces and dashes ignored).
    #[cfg_attr(feature = "ssr", schema(max_length = 64))]
    pub code: String,
}

/// `POST /api/account/totp`'s answer: what the authenticator app needs. Nothing is asked for at
/// login until a first code confirms it (`POST /api/account/totp/confirm`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TotpSetup {
    /// Base32, in groups of four, for typing into the app.
    pub secret: String,
    /// `otpauth://totp/…`, what the QR code holds.
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

/// `POST /api/account/totp/confirm`: the app's current code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TotpConfirmation {
    #[cfg_attr(feature = "ssr", schema(max_length = 64))]
    pub code: String,
}

/// Ten recovery codes, shown this once: each works once, in place of a one-time code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// A password or token as a server function's argument: the `#[server]` macro derives `Debug`
/// for its arguments, and this prints `[redacted]` in the secret's place.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive(pub String);

impl From<String> for Sensitive {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

// Secrets by type: what holds a password or a token prints without it, so no `{:?}` in a log
// line or a panic message can leak one.
const REDACTED: &str = "[redacted]";

/// `Debug` for a wire type that shows `shown` fields and prints `[redacted]` for the `secret` ones.
macro_rules! debug_redacting {
    ($type:ident { shown: [$($shown:ident),*], secret: [$($secret:ident),*] }) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($secret), &REDACTED))*
                    .finish()
            }
        }
    };
}

debug_redacting!(TokenResponse { shown: [user, token_type, expires_in], secret: [access_token, refresh_token] });
debug_redacting!(Credentials { shown: [username], secret: [password] });
debug_redacting!(RefreshRequest { shown: [], secret: [refresh_token] });
debug_redacting!(PasswordChange { shown: [], secret: [current_password, new_password] });
debug_redacting!(AccountDeletion { shown: [], secret: [password] });
debug_redacting!(PasswordConfirmation { shown: [], secret: [password] });
debug_redacting!(MfaChallenge { shown: [mfa_required, methods], secret: [challenge] });
debug_redacting!(MfaLogin { shown: [], secret: [challenge, code] });
debug_redacting!(TotpSetup { shown: [], secret: [secret, otpauth_uri, qr_svg] });
debug_redacting!(TotpConfirmation { shown: [], secret: [code] });
debug_redacting!(RecoveryCodes { shown: [], secret: [recovery_codes] });
// Addresses are not secrets, but logs have no business keeping them either.
debug_redacting!(Signup { shown: [username], secret: [password, email] });
debug_redacting!(PasswordResetRequest { shown: [], secret: [login] });
debug_redacting!(PasswordResetConfirm { shown: [], secret: [token, new_password, code] });
debug_redacting!(EmailChange { shown: [], secret: [password, email] });
debug_redacting!(EmailVerification { shown: [], secret: [token] });

/// One logged-in device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// The session of the access token that asked.
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Secret {
    pub message: String,
}

/// Unix milliseconds as RFC 3339 (`2026-11-27T09:44:04.123Z`), without a date-time crate.
pub fn rfc3339(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(super::rfc3339(1_795_772_644_123), "2026-11-27T09:44:04.123Z");
    }

    #[test]
    fn debug_output_holds_no_secret() {
        use super::{AccountDeletion, Credentials, PasswordChange, RefreshRequest, TokenResponse, User};
        use crate::server_fns::{ChangePassword, DeleteAccount, Login, Refresh};
        let user = User { id: "u1".into(), username: "alice".into(), created_at: "2026-01-01T00:00:00Z".into() };
        let secret = || super::Sensitive("hunter2 secret".into());
        let printed = [
            format!("{:?}", PasswordChange { current_password: "hunter2 a".into(), new_password: "hunter2 b".into() }),
            format!("{:?}", AccountDeletion { password: "hunter2 hunter2".into() }),
            // The arguments of server functions, as `#[server]` derives their `Debug`.
            format!("{:?}", Login { username: "alice".into(), password: secret() }),
            format!("{:?}", Refresh { refresh_token: secret() }),
            format!("{:?}", ChangePassword { current_password: secret(), new_password: secret() }),
            format!("{:?}", DeleteAccount { password: secret() }),
            format!("{:?}", Credentials { username: "alice".into(), password: "hunter2 hunter2".into() }),
            format!("{:?}", RefreshRequest { refresh_token: "brt_secret".into() }),
            format!(
                "{:?}",
                TokenResponse {
                    user,
                    access_token: "eyJsecret".into(),
                    refresh_token: "brt_secret".into(),
                    token_type: "Bearer".into(),
                    expires_in: 300,
                }
            ),
        ];
        for text in printed {
            assert!(!text.contains("hunter2") && !text.contains("secret"), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
        }
    }
}
