//! The auth core's typed settings from environment variables (a `.env` file is loaded by the
//! server first). Each variable is one [`Setting`] in [`AUTH_SETTINGS`], which reads and checks it,
//! documents it and prints it for `check-config`, so these cannot drift apart. The HTTP server's
//! settings, in the server crate, are a table of the same kind; README.md's table is made from
//! both (a server test compares them). A bad value stops the server naming the variable.
//!
//! - `auth_table`: the entries. `values`: reading and printing one variable's text.

mod auth_table;
mod values;

pub use auth_table::AUTH_SETTINGS;
pub use values::{items, number, on_off, secs, show_list, show_secs};

use super::limits::network::{IpNet, TrustedProxies, LOOPBACK};
use super::tokens::access::MAX_LEEWAY_SECS;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {reason}")]
pub struct SettingError {
    pub var: &'static str,
    pub reason: String,
}

/// One environment variable: how it is read and checked, what it means unset, its README row,
/// and how `check-config` prints it.
pub struct Setting<T> {
    pub var: &'static str,
    pub default: Unset,
    /// The README's words for it: one line, no `|`.
    pub doc: &'static str,
    /// Parses and checks the variable's text into its field: the text as set (trimmed), else the
    /// default's ("" for [`Unset::Means`]). It may use fields read by entries above it. An error
    /// is the reason alone: [`read_table`] names the variable.
    pub read: fn(&str, &mut T) -> Result<(), String>,
    /// The value in effect, for `check-config`; a secret never in full.
    pub show: fn(&T) -> String,
}

/// What an unset (or empty) variable means.
#[derive(Debug, Clone, Copy)]
pub enum Unset {
    /// The same as this text: the read fn parses it, the README shows it as code.
    Is(&'static str),
    /// The same as this many days, in seconds.
    Days(u32),
    /// No value: the read fn gets "" and computes one or leaves its feature off; the README shows
    /// these words.
    Means(&'static str),
}

impl Unset {
    /// The text a read fn gets when the variable is unset.
    pub fn text(self) -> String {
        match self {
            Self::Is(text) => text.to_owned(),
            Self::Days(days) => (days * 86_400).to_string(),
            Self::Means(_) => String::new(),
        }
    }

    /// The README's Default column.
    pub fn readme(self) -> String {
        match self {
            Self::Is(text) => format!("`{text}`"),
            Self::Days(days) => format!("`{}` ({days} days)", days * 86_400),
            Self::Means(words) => words.to_owned(),
        }
    }
}

/// Reads every entry of `table`, in order, into `blank`. A variable's text is trimmed; empty
/// counts as unset.
pub fn read_table<T>(
    table: &[Setting<T>],
    lookup: impl Fn(&str) -> Option<String>,
    mut blank: T,
) -> Result<T, SettingError> {
    for setting in table {
        let set = lookup(setting.var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let text = set.unwrap_or_else(|| setting.default.text());
        (setting.read)(&text, &mut blank).map_err(|reason| SettingError { var: setting.var, reason })?;
    }
    Ok(blank)
}

/// Every entry of `table` by its variable, as `settings` has it.
pub fn show_table<T>(table: &[Setting<T>], settings: &T) -> Vec<(&'static str, String)> {
    table.iter().map(|setting| (setting.var, (setting.show)(settings))).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Requests per minute from one client address (IPv6: one /64, with 4× as much per /56 and 16×
/// per /48); 0 switches the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub signup: u32,
    pub login: u32,
    pub refresh: u32,
    /// `GET /api/auth/sessions`: the list tells when each session was last used.
    pub sessions: u32,
    /// Per account, not per address: checks of a logged-in user's password (change password,
    /// delete account). Per address they share the login's allowance, in a bucket of their own.
    pub password_confirmations: u32,
    /// Per hour, not per minute: password-reset requests.
    pub reset: u32,
}

/// Per-account throttling of password guesses (see `limits::backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginBackoff {
    /// Consecutive failures allowed without any wait.
    pub free_attempts: u32,
    /// The longest wait the doubling backoff reaches.
    pub max_delay: Duration,
    /// After this many consecutive failures the account is locked; at most 100 (NIST SP 800-63B).
    pub lock_after: u32,
    pub lock_duration: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `sqlite://…` or `postgres://…`. It may carry a password: `Debug` shows it redacted.
    pub database_url: DatabaseUrl,
    /// Holds the SQLite database by default and the signing keys.
    pub data_dir: PathBuf,
    pub access_token_ttl: Duration,
    pub refresh_idle_ttl: Duration,
    pub refresh_absolute_ttl: Duration,
    /// How long the predecessor of the current refresh token may still be presented (by a client
    /// that refreshed twice at once) and get the same answer. Zero disables it.
    pub refresh_reuse_grace: Duration,
    /// `REFRESH_ROTATION`: on (the default), every refresh spends its token and issues a new
    /// one; off, for clients written for APIs that never rotate, the refresh token stays the same
    /// for the whole session and reuse cannot be detected.
    pub refresh_rotation: bool,
    /// `DPOP_REQUIRED`: only DPoP-bound sessions (see `tokens::dpop`); off, bearer sessions work too.
    pub dpop_required: bool,
    /// `DPOP_REPLAY_CAPACITY`: proofs the in-memory replay check holds (see `dpop::replays`).
    pub dpop_replay_capacity: usize,
    /// `CACHE_CAPACITY`: entries each in-memory cache holds (see `sessions::cache`).
    pub cache_capacity: usize,
    /// Clock skew tolerated when verifying access tokens (`exp`, `iat`), at most
    /// [`MAX_LEEWAY_SECS`].
    pub jwt_leeway: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub argon2: Argon2Settings,
    /// How many password hashes may run at once; more wait in line (bounded) or get a 503.
    pub max_concurrent_hashes: usize,
    pub rate_limits: RateLimits,
    pub login_backoff: LoginBackoff,
    /// Whose `X-Forwarded-For` counts. Empty (the default) ignores the header: a client could
    /// write anything there.
    pub trusted_proxies: TrustedProxies,
    /// `PUBLIC_URL`: the origins people reach Baton at (`https://baton.example.com`), the first
    /// the one put in links. DPoP proofs must name one of them; empty, the request's own `Host`.
    pub public_urls: Vec<String>,
    /// The longest a database call may take (statement, lock wait, SQLite busy wait, taking a
    /// connection from the pool) before the request gets a 503.
    pub db_timeout: Duration,
    pub retention: Retention,
    pub keys: KeySettings,
    pub mail: MailSettings,
}

/// Mail (see `mail`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_URL`; `None` writes each mail as a file under `BATON_DATA_DIR/outbox/`.
    pub smtp_url: Option<SmtpUrl>,
    /// `MAIL_FROM`: a mailbox (`Baton <baton@example.com>`).
    pub from: String,
    /// `RESET_TOKEN_TTL`.
    pub reset_token_ttl: Duration,
}

/// `SMTP_URL`: it may carry a password; `Debug` and [`SmtpUrl::redacted`] hide it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(pub(super) String);

impl SmtpUrl {
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `smtp://` without `tls=required`/`opportunistic` to a host other than loopback: mail (and
    /// the relay's password) crosses the network in the clear.
    fn unencrypted_remote(&self) -> bool {
        let Some(rest) = self.0.strip_prefix("smtp://") else { return false };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.split('/').next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host_port.split(':').next().unwrap_or_default(),
        };
        let encrypted = query.split('&').any(|p| p == "tls=required" || p == "tls=opportunistic");
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        !encrypted && !loopback
    }
}

impl From<String> for SmtpUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The shared keys (see `keys`).
#[derive(Debug, Clone)]
pub struct KeySettings {
    /// `KEY_ENCRYPTION_KEY`: seals private keys in the database; `None` stores them in the clear.
    pub encryption_key: Option<KeyEncryptionKey>,
    /// `KEY_ENCRYPTION_KEY_PREVIOUS`: while `server rotate-kek` re-seals, keys sealed under the
    /// old key-encryption key are still read.
    pub previous_encryption_key: Option<KeyEncryptionKey>,
    /// `SIGNING_KEY_PUBLISH_DELAY`: a rotated-in key is published this long before it signs.
    pub publish_delay: Duration,
    /// `KEY_POLL_INTERVAL`: how often an instance reads the keys; shorter than the publish delay.
    pub poll_interval: Duration,
}

/// 32 bytes, given base64-encoded. `Debug` never shows them.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(super) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    fn parse(text: &str) -> Option<Self> {
        use base64::Engine as _;
        let engines = [base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::URL_SAFE_NO_PAD];
        engines.iter().find_map(|e| e.decode(text).ok()).and_then(|bytes| bytes.try_into().ok()).map(Self)
    }
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

/// How long what is no longer needed is kept (see `retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// An ended session (revoked, expired or idle) is deleted this long after it ended.
    pub sessions: Duration,
    /// Security events are deleted at this age.
    pub security_events: Duration,
    /// How often the background purge runs.
    pub interval: Duration,
}

impl AuthSettings {
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let config = read_table(AUTH_SETTINGS, lookup, Self::blank())?;
        // Settings that are each valid alone but not together, checked in this order.
        let limits = [
            (
                "LOGIN_FREE_ATTEMPTS",
                config.login_backoff.free_attempts >= config.login_backoff.lock_after,
                "must be less than LOGIN_LOCK_AFTER".to_owned(),
            ),
            // Longer only lets a thief with an old token ride the chain longer.
            (
                "REFRESH_REUSE_GRACE",
                config.refresh_reuse_grace > Duration::from_secs(60),
                "must be at most 60 seconds".into(),
            ),
            (
                "REFRESH_IDLE_TTL",
                config.refresh_idle_ttl < config.access_token_ttl,
                "must not be shorter than ACCESS_TOKEN_TTL: a session would end while its access token still \
                 works"
                    .into(),
            ),
            (
                "JWT_LEEWAY",
                config.jwt_leeway > Duration::from_secs(MAX_LEEWAY_SECS),
                format!("must be at most {MAX_LEEWAY_SECS} seconds: Baton verifies only its own tokens"),
            ),
            ("DB_TIMEOUT", config.db_timeout > Duration::from_secs(300), "must be at most 300 seconds".into()),
            (
                "KEY_POLL_INTERVAL",
                config.keys.poll_interval >= config.keys.publish_delay,
                "must be shorter than SIGNING_KEY_PUBLISH_DELAY: every instance must read a new key before it \
                 signs"
                    .into(),
            ),
            (
                "REFRESH_IDLE_TTL",
                config.refresh_idle_ttl > config.refresh_absolute_ttl,
                "must not exceed REFRESH_ABSOLUTE_TTL".into(),
            ),
            (
                "KEY_ENCRYPTION_KEY_PREVIOUS",
                config.keys.previous_encryption_key.is_some() && config.keys.encryption_key.is_none(),
                "needs KEY_ENCRYPTION_KEY (the new key) beside it".into(),
            ),
        ];
        if let Some((var, _, reason)) = limits.into_iter().find(|(_, broken, _)| *broken) {
            return Err(SettingError { var, reason });
        }
        Ok(config)
    }

    /// Where reading starts; every field is then set by its entry in [`AUTH_SETTINGS`]. Not
    /// `Default`: these zeros are no defaults (a `lock_after` of 0 would lock every account).
    fn blank() -> Self {
        let zero = Duration::ZERO;
        Self {
            database_url: DatabaseUrl(String::new()),
            data_dir: PathBuf::new(),
            access_token_ttl: zero,
            refresh_idle_ttl: zero,
            refresh_absolute_ttl: zero,
            refresh_reuse_grace: zero,
            refresh_rotation: false,
            dpop_required: false,
            dpop_replay_capacity: 0,
            cache_capacity: 0,
            jwt_leeway: zero,
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            argon2: Argon2Settings { memory_kib: 0, iterations: 0, parallelism: 0 },
            max_concurrent_hashes: 0,
            rate_limits: RateLimits {
                signup: 0,
                login: 0,
                refresh: 0,
                sessions: 0,
                password_confirmations: 0,
                reset: 0,
            },
            login_backoff: LoginBackoff { free_attempts: 0, max_delay: zero, lock_after: 0, lock_duration: zero },
            trusted_proxies: TrustedProxies::default(),
            public_urls: Vec::new(),
            db_timeout: zero,
            retention: Retention { sessions: zero, security_events: zero, interval: zero },
            keys: KeySettings {
                encryption_key: None,
                previous_encryption_key: None,
                publish_delay: zero,
                poll_interval: zero,
            },
            mail: MailSettings { smtp_url: None, from: String::new(), reset_token_ttl: zero },
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Every setting by its variable, as in effect (defaults included); the database password
    /// redacted. For `server check-config`.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        show_table(AUTH_SETTINGS, self)
    }

    /// What an operator should hear about at start and from `check-config`: settings that are
    /// valid but weaker than they look. `public` says Baton listens on a non-loopback address.
    pub fn warnings(&self, public: bool) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.public_urls.is_empty() && public {
            warnings.push(
                "PUBLIC_URL is unset: DPoP proofs are checked against the Host each client sends, so a proof made \
                 for another server that trusts Baton's keys could be replayed here; set PUBLIC_URL to the origin \
                 people reach Baton at"
                    .into(),
            );
        }
        if self.mail.smtp_url.as_ref().is_some_and(SmtpUrl::unencrypted_remote) {
            warnings.push(
                "SMTP_URL names a relay off this host without TLS: mail, with its links, and the relay's password \
                 cross the network in the clear; use smtps:// or ?tls=required"
                    .into(),
            );
        }
        if self.trusted_proxies.max_hops > 0 && self.trusted_proxies.nets == loopback() {
            warnings.push(
                "TRUSTED_PROXY_HOPS is set without TRUSTED_PROXIES: only proxies on loopback are trusted; list \
                 yours in TRUSTED_PROXIES"
                    .into(),
            );
        }
        warnings
    }
}

pub(crate) fn loopback() -> Vec<IpNet> {
    LOOPBACK.iter().map(|n| n.parse().expect("valid block")).collect()
}

/// `DATABASE_URL`: used as a `&str`; `Debug` and [`DatabaseUrl::redacted`] hide its secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// See [`redact_url`].
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// `postgres://baton:***@db/baton?sslmode=require&sslpassword=***`: the userinfo's password and
/// every query parameter whose name says it is a secret (`password`, `sslpassword`, `token`,
/// `secret`, `…key`, …), each occurrence, replaced.
pub fn redact_url(url: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let mut shown = match (head.find("://"), head.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => match head[scheme_end + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &head[..scheme_end + 3], &head[at..]),
            None => head.to_owned(),
        },
        _ => head.to_owned(),
    };
    if let Some(query) = query {
        let secret = |name: &str| {
            let name = name.to_ascii_lowercase();
            ["pass", "pwd", "secret", "token", "key", "auth", "credential"].iter().any(|s| name.contains(s))
        };
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if secret(name) => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        shown = format!("{shown}?{}", params.join("&"));
    }
    shown
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<AuthSettings, SettingError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AuthSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(&*c.database_url, "sqlite://data/baton.db");
        assert_eq!(c.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.refresh_idle_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.refresh_absolute_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(c.argon2, Argon2Settings { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 });
        assert_eq!(c.login_backoff.lock_after, 100);
        assert!(c.trusted_proxies.is_empty());
        assert!(c.refresh_rotation);
        assert_eq!(c.db_timeout, Duration::from_secs(10));
    }

    /// Catches an entry that reads into one field and shows another.
    #[test]
    fn each_default_reads_back_as_itself() {
        let c = config(&[]).unwrap();
        for setting in AUTH_SETTINGS.iter().filter(|s| !matches!(s.default, Unset::Means(_))) {
            assert_eq!((setting.show)(&c), setting.default.text(), "{}", setting.var);
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("ACCESS_TOKEN_TTL", "five"),
            ("ACCESS_TOKEN_TTL", "0"),
            ("REFRESH_REUSE_GRACE", "-1"),
            ("ARGON2_MEMORY_KIB", "12"),
            ("ARGON2_PARALLELISM", "0"),
            ("DATABASE_URL", "mysql://x"),
            ("REFRESH_IDLE_TTL", "99999999"),
            ("LOGIN_LOCK_AFTER", "101"),
            ("LOGIN_FREE_ATTEMPTS", "100"),
            ("TRUSTED_PROXY_HOPS", "-1"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal"),
            ("DB_TIMEOUT", "0"),
            ("REFRESH_ROTATION", "sometimes"),
            ("DPOP_REQUIRED", "maybe"),
            ("KEY_ENCRYPTION_KEY", "c2hvcnQ="),
            ("KEY_ENCRYPTION_KEY_PREVIOUS", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
            ("KEY_POLL_INTERVAL", "120"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn overrides() {
        let c = config(&[("BATON_DATA_DIR", "/tmp/b"), ("REFRESH_REUSE_GRACE", "0")]).unwrap();
        assert_eq!(&*c.database_url, "sqlite:///tmp/b/baton.db");
        assert_eq!(c.refresh_reuse_grace, Duration::ZERO);
    }

    #[test]
    fn the_key_encryption_key_never_shows() {
        let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let c = config(&[("KEY_ENCRYPTION_KEY", kek)]).unwrap();
        assert_eq!(c.keys.encryption_key.as_ref().unwrap().expose()[31], 31);
        for shown in [format!("{c:?}"), format!("{:?}", c.effective())] {
            assert!(!shown.contains(kek) && !shown.contains("[0, 1, 2"), "{shown}");
        }
    }

    #[test]
    fn the_database_password_never_shows() {
        let url = "postgres://baton:s3cret@db:5432/baton?sslmode=require&password=other";
        let c = config(&[("DATABASE_URL", url)]).unwrap();
        let debug = format!("{c:?}");
        let effective = format!("{:?}", c.effective());
        for shown in [&debug, &effective] {
            assert!(!shown.contains("s3cret") && !shown.contains("other"), "{shown}");
            assert!(shown.contains("postgres://baton:***@db:5432/baton?sslmode=require&password=***"), "{shown}");
        }
    }

    #[test]
    fn trusted_proxies_from_a_list_or_a_hop_count() {
        let c = config(&[("TRUSTED_PROXIES", "10.1.0.0/16, 2001:db8::1")]).unwrap();
        assert_eq!(c.trusted_proxies.nets.len(), 2);
        assert_eq!(c.trusted_proxies.max_hops, 0);
        assert!(c.warnings(true).iter().all(|w| !w.contains("TRUSTED_PROXY_HOPS")));
        let legacy = config(&[("TRUSTED_PROXY_HOPS", "1")]).unwrap();
        assert_eq!(legacy.trusted_proxies.max_hops, 1);
        assert!(legacy.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(legacy.trusted_proxies.contains("::1".parse().unwrap()));
        for lan in ["192.168.1.1", "10.1.2.3", "172.16.0.9", "fd00::1", "203.0.113.1"] {
            assert!(!legacy.trusted_proxies.contains(lan.parse().unwrap()), "{lan} is a client, not a proxy");
        }
        let warnings = legacy.warnings(false);
        assert!(warnings.iter().any(|w| w.contains("TRUSTED_PROXY_HOPS is set without TRUSTED_PROXIES")));
    }

    #[test]
    fn mail_settings() {
        let origin = ("PUBLIC_URL", "https://baton.example.com");
        let unset = config(&[]).unwrap();
        assert!(unset.mail.smtp_url.is_none());
        assert_eq!(unset.mail.from, "Baton <baton@localhost>");
        assert_eq!(unset.mail.reset_token_ttl, Duration::from_secs(1800));
        assert_eq!(unset.rate_limits.reset, 5);
        // Links need an origin: SMTP without PUBLIC_URL is refused, naming the variable.
        let no_origin = config(&[("SMTP_URL", "smtp://127.0.0.1:2525")]).unwrap_err();
        assert_eq!(no_origin.var, "SMTP_URL");
        assert!(no_origin.reason.contains("PUBLIC_URL"), "{}", no_origin.reason);
        for bad in ["http://mail.example.com", "smtp://", "smtp://h:notaport", "mail.example.com:25"] {
            assert_eq!(config(&[origin, ("SMTP_URL", bad)]).unwrap_err().var, "SMTP_URL", "{bad}");
        }
        assert_eq!(config(&[("MAIL_FROM", "not a mailbox")]).unwrap_err().var, "MAIL_FROM");
        // The relay's password is never shown, and the warning is only for a remote relay in the clear.
        let secret = "smtps://baton:hunter2@mail.example.com:465";
        let c = config(&[origin, ("SMTP_URL", secret)]).unwrap();
        let shown = format!("{:?} {:?}", c.mail, c.effective());
        assert!(!shown.contains("hunter2") && shown.contains("mail.example.com"), "{shown}");
        assert!(c.warnings(true).is_empty());
        for (url, warned) in [
            ("smtp://127.0.0.1:25", false),
            ("smtp://localhost:25", false),
            ("smtp://[::1]:25", false),
            ("smtp://u:p@mail.example.com:587?tls=required", false),
            ("smtp://mail.example.com:25", true),
            ("smtp://u:p@10.0.0.5:25", true),
        ] {
            let c = config(&[origin, ("SMTP_URL", url)]).unwrap();
            assert_eq!(c.warnings(true).iter().any(|w| w.contains("SMTP_URL")), warned, "{url}");
        }
    }

    #[test]
    fn public_urls_are_origins() {
        let c = config(&[("PUBLIC_URL", "HTTPS://Baton.Example.com:443/, http://localhost:3000")]).unwrap();
        assert_eq!(c.public_urls, ["https://baton.example.com", "http://localhost:3000"]);
        assert!(c.warnings(true).is_empty());
        for bad in
            ["baton.example.com", "https://baton.example.com/app", "https://a@b.example", "ftp://x", "https://x?y=1"]
        {
            assert_eq!(config(&[("PUBLIC_URL", bad)]).unwrap_err().var, "PUBLIC_URL", "{bad}");
        }
        let unset = config(&[]).unwrap();
        assert!(unset.warnings(false).is_empty(), "on loopback, the Host is fine");
        assert!(unset.warnings(true)[0].contains("PUBLIC_URL is unset"));
    }

    #[test]
    fn every_secret_in_a_url_is_redacted() {
        let url = "postgres://baton:p%40ss@db/baton?sslmode=require&password=one&application_name=x\
                   &sslpassword=two&password=three&PassWord=four";
        let shown = redact_url(url);
        assert_eq!(
            shown,
            "postgres://baton:***@db/baton?sslmode=require&password=***&application_name=x&sslpassword=***\
             &password=***&PassWord=***"
        );
        let query_at = "postgres://db/baton?options=a@b";
        assert_eq!(redact_url(query_at), query_at, "an @ in the query is no userinfo");
        assert_eq!(redact_url("sqlite://data/baton.db"), "sqlite://data/baton.db");
    }
}
