//! Every mail Baton sends, in words: the links (verify an address, reset a password) and the
//! notices that tell a person what happened to their account: what, when, from which kind of
//! client and address, and what to do. Notices go only to a verified address (an unverified one
//! may be a stranger's typo). Those of a change the user made (password, address, deletion,
//! reset) are queued in its transaction; those of what happened to them (a new sign-in, a reused
//! refresh token) in the background, so that they never delay or fail the request.

use super::caller::ClientInfo;
use super::events::agent_family;
use super::mail::Letter;
use super::store::db::now_ms;
use super::AuthService;
use crate::api::rfc3339;
use std::net::IpAddr;

/// Something that happened to an account that its owner should hear about.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// A login from a client family, or an address prefix, this account has not used before.
    NewSignIn,
    /// A spent refresh token came back: its session was ended in case it was copied.
    RefreshReused,
    PasswordChanged,
    PasswordReset,
    /// To the verified address: someone with the password asked to change it to `new` (shown
    /// half-hidden), which happens once a link sent there is opened.
    EmailChangeRequested {
        new: String,
    },
    /// To the old address: the account's address is now `new`.
    EmailChanged {
        new: String,
    },
    AccountDeleted,
    OneTimeCodesOn,
    OneTimeCodesOff,
    RecoveryCodesRenewed,
    /// Wrong one-time codes in a row after a right password (or in a reset from its mail).
    WrongCodes,
}

/// Who did it, as a notice tells it.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    family: &'static str,
    ip: Option<String>,
    at: i64,
}

impl Origin {
    pub(crate) fn of(client: &ClientInfo) -> Self {
        Self { family: client.user_agent.as_deref().map_or("other", agent_family), ip: client.ip.clone(), at: now_ms() }
    }

    fn describe(&self) -> String {
        let client = match self.family {
            "other" => "an unrecognised client".to_owned(),
            family => family.to_owned(),
        };
        match &self.ip {
            Some(ip) => format!("When: {}\nFrom: {client}, address {ip}", when(self.at)),
            None => format!("When: {}\nFrom: {client}", when(self.at)),
        }
    }
}

/// "2026-12-07 09:44 UTC".
fn when(ms: i64) -> String {
    let stamp = rfc3339(ms);
    format!("{} {} UTC", &stamp[..10], &stamp[11..16])
}

/// `alice@example.com` as `al…@example.com`: enough for the owner to recognise, little for others.
fn half_hidden(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{}…@{domain}", local.chars().take(2).collect::<String>()),
        None => "…".into(),
    }
}

/// What an address prefix means for "a new place": the /24 of an IPv4 address, the /48 of IPv6.
pub(crate) fn address_prefix(ip: &str) -> Option<String> {
    match ip.parse::<IpAddr>().ok()?.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// Wrong codes in a row that make a [`Notice::WrongCodes`].
pub(crate) const WRONG_CODES_TOLD: i64 = 3;

const NOT_YOU_PASSWORD: &str =
    "If this was not you, someone knows your password: reset it now from the login page (\"Forgot your password?\"), \
     then log out everywhere.";

pub(crate) fn notice_letter(notice: &Notice, username: &str, origin: &Origin) -> Letter {
    let hello = format!("Hello {username},");
    let details = origin.describe();
    let (kind, subject, what, closing): (&'static str, &str, String, &str) = match notice {
        Notice::NewSignIn => (
            "new_sign_in",
            "New sign-in to your Baton account",
            "Your Baton account was just signed in to from a client or a place it has not been used from before.".into(),
            NOT_YOU_PASSWORD,
        ),
        Notice::RefreshReused => (
            "refresh_token_reused",
            "A session of your Baton account was ended for your safety",
            "A sign-in token of one of your sessions was used twice. That happens when a token was copied, so Baton \
             ended that session: the device it was on must log in again. The address below is where the token came \
             back from."
                .into(),
            "If you did not just get logged out yourself, someone may have copied data from one of your devices: \
             log out everywhere and change your password.",
        ),
        Notice::PasswordChanged => (
            "password_changed",
            "Your Baton password was changed",
            "The password of your Baton account was changed. Every other session was logged out.".into(),
            "If this was not you, reset your password now from the login page (\"Forgot your password?\").",
        ),
        Notice::PasswordReset => (
            "password_reset",
            "Your Baton password was reset",
            "The password of your Baton account was reset with a link sent to this address. Every session was logged \
             out; the device that reset it is logged in."
                .into(),
            "If this was not you, someone can read this mailbox: secure it, then reset your password again.",
        ),
        Notice::EmailChangeRequested { new } => (
            "email_change_requested",
            "A new email address was asked for your Baton account",
            format!(
                "Someone logged in to your Baton account, with its password, asked to change its email address to \
                 {}. It changes only once a link sent there is opened (within 24 hours); until then this address \
                 stays the account's.",
                half_hidden(new)
            ),
            "If this was not you, someone knows your password: reset it now from the login page (\"Forgot your \
             password?\"). That cancels the change and logs everyone out.",
        ),
        Notice::EmailChanged { new } => (
            "email_changed",
            "The email address of your Baton account was changed",
            format!(
                "The email address of your Baton account is now {}: password resets and notices go there.",
                half_hidden(new)
            ),
            "If this was not you, someone had your password and the new mailbox: log in if you still can, change \
             your password and log out everywhere.",
        ),
        Notice::AccountDeleted => (
            "account_deleted",
            "Your Baton account was deleted",
            "Your Baton account was deleted, with every session. Its username is free again.".into(),
            "If this was not you, someone knew your password; the account cannot be restored, but you can sign up again.",
        ),
        Notice::OneTimeCodesOn => (
            "one_time_codes_on",
            "One-time codes are on for your Baton account",
            "Logging in to your Baton account now asks for a code from an authenticator app after the password."
                .into(),
            "If this was not you, someone knows your password and can now keep you out: ask the people who run this \
             service to turn the codes off at once, then reset your password.",
        ),
        Notice::RecoveryCodesRenewed => (
            "recovery_codes_renewed",
            "New recovery codes for your Baton account",
            "New recovery codes were made for your Baton account; the old ones no longer work.".into(),
            NOT_YOU_PASSWORD,
        ),
        Notice::OneTimeCodesOff => (
            "one_time_codes_off",
            "One-time codes were turned off for your Baton account",
            "Logging in to your Baton account asks for the password alone again.".into(),
            NOT_YOU_PASSWORD,
        ),
        Notice::WrongCodes => (
            "wrong_codes",
            "Wrong one-time codes for your Baton account",
            format!(
                "Someone got past your Baton account's password (or opened a reset link from this mailbox), then \
                 entered {WRONG_CODES_TOLD} wrong one-time codes in a row. The codes kept them out."
            ),
            NOT_YOU_PASSWORD,
        ),
    };
    Letter {
        kind,
        subject: subject.into(),
        paragraphs: vec![hello, what, details],
        action: None,
        closing: vec![closing.into()],
    }
}

pub(crate) fn verify_letter(username: &str, link: String, hours: u64) -> Letter {
    Letter {
        kind: "verify_email",
        subject: "Confirm your email address for Baton".into(),
        paragraphs: vec![
            format!("Hello {username},"),
            format!(
                "Confirm that this address belongs to your Baton account, so that you can reset your password if you \
                 forget it. The link works once, for {hours} hours."
            ),
        ],
        action: Some(("Confirm my address".into(), link)),
        closing: vec!["If you did not add this address to a Baton account, ignore this mail: nothing changes.".into()],
    }
}

/// "30 minutes", or seconds for what is shorter than one.
fn lifetime(ttl: std::time::Duration) -> String {
    match ttl.as_secs() {
        s if (60..120).contains(&s) => "1 minute".into(),
        s if s >= 120 => format!("{} minutes", s / 60),
        1 => "1 second".into(),
        s => format!("{s} seconds"),
    }
}

pub(crate) fn reset_letter(username: &str, link: String, ttl: std::time::Duration, origin: &Origin) -> Letter {
    Letter {
        kind: "reset_link",
        subject: "Reset your Baton password".into(),
        paragraphs: vec![
            format!("Hello {username},"),
            format!(
                "Someone asked to reset the password of your Baton account. The link works once, for {}; a \
                 newer request or a password change voids it.",
                lifetime(ttl)
            ),
            origin.describe(),
        ],
        action: Some(("Choose a new password".into(), link)),
        closing: vec!["If this was not you, ignore this mail: your password stays as it is.".into()],
    }
}

#[derive(sqlx::FromRow)]
struct Addressee {
    username: String,
    email: Option<String>,
    email_verified_at: Option<i64>,
}

impl AuthService {
    /// Tells the owner of `user_id`, at the account's verified address (none: nothing), in the
    /// background.
    pub(crate) fn notify(&self, user_id: &str, notice: Notice, client: &ClientInfo) {
        let (auth, user_id, origin) = (self.clone(), user_id.to_owned(), Origin::of(client));
        tokio::spawn(async move {
            let found =
                sqlx::query_as::<_, Addressee>("SELECT username, email, email_verified_at FROM users WHERE id = $1")
                    .bind(&user_id)
                    .fetch_optional(auth.db())
                    .await;
            match found {
                Ok(Some(Addressee { username, email: Some(email), email_verified_at: Some(_) })) => {
                    auth.send_notice(&username, &email, &notice, &origin).await
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(target: "mail", error = %e, ?notice, "could not look up whom to notify"),
            }
        });
    }

    async fn send_notice(&self, username: &str, email: &str, notice: &Notice, origin: &Origin) {
        let letter = notice_letter(notice, username, origin);
        if let Err(e) = self.queue_mail(&letter, email).await {
            tracing::warn!(target: "mail", kind = letter.kind, error = %e, "could not queue a notice");
        }
    }

    /// The link to `path` with `token`, at `PUBLIC_URL` (else the address the server listens at).
    pub(crate) fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.link_origin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_hidden_addresses() {
        assert_eq!(address_prefix("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(address_prefix("::ffff:203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(address_prefix("2001:db8:aa:bb::1").as_deref(), Some("2001:db8:aa::/48"));
        assert_eq!(address_prefix("nonsense"), None);
        assert_eq!(half_hidden("alice@example.com"), "al…@example.com");
        assert_eq!(when(1_795_772_644_123), "2026-11-27 09:44 UTC");
        let secs = std::time::Duration::from_secs;
        let said: Vec<String> = [1, 3, 60, 90, 120, 1800].map(|s| lifetime(secs(s))).to_vec();
        assert_eq!(said, ["1 second", "3 seconds", "1 minute", "1 minute", "2 minutes", "30 minutes"]);
    }

    #[test]
    fn every_notice_says_what_when_from_where_and_what_to_do() {
        let origin = Origin { family: "Firefox", ip: Some("203.0.113.7".into()), at: 1_795_772_644_123 };
        let notices = [
            Notice::NewSignIn,
            Notice::RefreshReused,
            Notice::PasswordChanged,
            Notice::PasswordReset,
            Notice::EmailChangeRequested { new: "bob@example.com".into() },
            Notice::EmailChanged { new: "bob@example.com".into() },
            Notice::AccountDeleted,
            Notice::OneTimeCodesOn,
            Notice::OneTimeCodesOff,
            Notice::RecoveryCodesRenewed,
            Notice::WrongCodes,
        ];
        for notice in notices {
            let text = notice_letter(&notice, "alice", &origin).text();
            for part in ["Hello alice", "2026-11-27 09:44 UTC", "Firefox", "203.0.113.7", "If this was not you"] {
                assert!(
                    text.contains(part) || part == "If this was not you" && text.contains("If you did not"),
                    "{notice:?}: {part}\n{text}"
                );
            }
            assert!(!text.contains("bob@"), "the new address is half-hidden: {text}");
        }
    }
}
