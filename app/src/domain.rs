//! Input rules, parsed once at the boundary. The browser runs the same functions for inline
//! validation, so a form never disagrees with the server (the common-password list is server-only:
//! it would add 80 KB to the WASM bundle).

use crate::error::AppError;

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

/// A username as typed (case kept for display); [`Username::key`] is what uniqueness compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return Err(AppError::invalid_field(
                "username",
                format!("Username must be {USERNAME_MIN} to {USERNAME_MAX} characters long."),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !name.chars().all(allowed) {
            return Err(AppError::invalid_field(
                "username",
                "Username may only contain letters a-z, digits, '_', '.' and '-'.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased: "Alice" and "alice" are the same account.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A password that meets the length rules. No composition rules (NIST SP 800-63B), never truncated.
/// Deliberately not `Debug`/`Display`: it must not end up in a log line by accident.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let len = raw.chars().count();
        if len < PASSWORD_MIN {
            return Err(AppError::invalid_field(
                "password",
                format!("Password must be at least {PASSWORD_MIN} characters long."),
            ));
        }
        if len > PASSWORD_MAX {
            return Err(AppError::invalid_field(
                "password",
                format!("Password must be at most {PASSWORD_MAX} characters long."),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// For new passwords only: also refuses the 10,000 most common ones.
    #[cfg(feature = "ssr")]
    pub fn parse_new(raw: &str) -> Result<Self, AppError> {
        let password = Self::parse(raw)?;
        if common_passwords::contains(raw) {
            return Err(AppError::invalid_field(
                "password",
                "This password is one of the 10,000 most common passwords, which attackers try first. Choose another.",
            ));
        }
        Ok(password)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

pub const EMAIL_MAX: usize = 254;

/// An email address as typed (trimmed); [`Email::key`] is what a reset request matches. The rule
/// is deliberately loose (one `@`, something on both sides, a dot in the domain, no spaces or
/// control characters): only a mail that arrives proves an address, and that is what
/// verification is for. The server also has the mail library parse it before storing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let email = raw.trim();
        let invalid = || AppError::invalid_field("email", "Enter an email address like name@example.com.");
        if email.chars().count() > EMAIL_MAX {
            return Err(AppError::invalid_field(
                "email",
                format!("An email address has at most {EMAIL_MAX} characters."),
            ));
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let clean = |part: &str| {
            !part.is_empty() && !part.contains('@') && part.chars().all(|c| !c.is_whitespace() && !c.is_control())
        };
        let dotted = domain.split('.').count() >= 2 && domain.split('.').all(|label| !label.is_empty());
        if !clean(local) || !clean(domain) || !dotted || local.chars().count() > 64 {
            return Err(invalid());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lower-cased whole: what a reset request by address compares.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Both fields checked, every failure reported, so a form can mark all bad fields at once.
pub fn parse_credentials(username: &str, password: &str) -> Result<(Username, Password), AppError> {
    merge(Username::parse(username), Password::parse(password))
}

#[cfg(feature = "ssr")]
pub fn parse_new_credentials(username: &str, password: &str) -> Result<(Username, Password), AppError> {
    merge(Username::parse(username), Password::parse_new(password))
}

fn merge(
    username: Result<Username, AppError>,
    password: Result<Password, AppError>,
) -> Result<(Username, Password), AppError> {
    match (username, password) {
        (Ok(u), Ok(p)) => Ok((u, p)),
        (u, p) => {
            let fields: Vec<_> = [u.err(), p.err()]
                .into_iter()
                .flatten()
                .flat_map(|e| match e {
                    AppError::InvalidInput { fields, .. } => fields,
                    _ => Vec::new(),
                })
                .collect();
            let message = fields.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join(" ");
            Err(AppError::InvalidInput { message, fields })
        }
    }
}

#[cfg(feature = "ssr")]
mod common_passwords {
    use std::collections::HashSet;
    use std::sync::LazyLock;

    // The 10,000 most frequent entries of Royce Williams's list as shipped by Django (BSD licence).
    static LIST: LazyLock<HashSet<&'static str>> =
        LazyLock::new(|| include_str!("../data/common-passwords.txt").lines().collect());

    pub fn contains(password: &str) -> bool {
        LIST.contains(password.to_lowercase().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("Alice_1.x-y").unwrap().key(), "alice_1.x-y");
        assert_eq!(Username::parse("  bob  ").unwrap().as_str(), "bob");
        for bad in ["ab", "", &"a".repeat(33), "al ice", "alice!", "ålice", "al\u{0}ice"] {
            let err = Username::parse(bad).unwrap_err();
            assert!(err.field_message("username").is_some(), "{bad:?}");
        }
        assert!(Username::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(Email::parse("  Alice@Example.COM ").unwrap().as_str(), "Alice@Example.COM");
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().key(), "alice@example.com");
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "al ice@example.com",
            "a@b@example.com",
            "alice@localhost",
            "alice@example..com",
            "alice@exam\nple.com",
            &format!("{}@example.com", "a".repeat(65)),
        ] {
            assert!(Email::parse(bad).unwrap_err().field_message("email").is_some(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@{}.com", "a".repeat(64), "b".repeat(185))).is_ok());
    }

    #[test]
    fn passwords_count_characters_not_bytes_and_are_never_truncated() {
        assert!(Password::parse("ünïcødé").is_err()); // 7 characters, 11 bytes
        assert!(Password::parse("ünïcødé!").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        let long = "é".repeat(100);
        assert_eq!(Password::parse(&long).unwrap().expose(), long);
    }

    #[test]
    fn both_fields_are_reported_together() {
        let err = parse_credentials("a", "short").unwrap_err();
        assert!(err.field_message("username").is_some());
        assert!(err.field_message("password").is_some());
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn common_passwords_are_refused_with_a_reason() {
        for common in ["password", "12345678", "PassWord1", "iloveyou"] {
            assert!(Password::parse(common).is_ok(), "{common} meets the length rule");
            let err = Password::parse_new(common).unwrap_err();
            assert!(err.field_message("password").unwrap().contains("common"), "{common}");
        }
        assert!(Password::parse_new("a perfectly uncommon passphrase").is_ok());
    }
}
