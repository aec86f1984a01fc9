//! The auth core's typed settings from environment variables (a `.env` file is loaded by the
//! server first). Each variable is one [`Setting`] in [`AUTH_SETTINGS`], which reads and checks it,
//! documents it and prints it for `check-config`, so these cannot drift apart. The HTTP server's
//! settings, in the server crate, are a table of the same kind; README.md's table is made from
//! both (a server test compares them). A bad value stops the server naming the variable.

use super::limits::network::{IpNet, TrustedProxies, LOOPBACK};
use super::tokens::access::MAX_LEEWAY_SECS;
use std::path::{Path, PathBuf};
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
            jwt_leeway: zero,
            jwt_issuer: String::new(),
            jwt_audience: String::new(),
            argon2: Argon2Settings { memory_kib: 0, iterations: 0, parallelism: 0 },
            max_concurrent_hashes: 0,
            rate_limits: RateLimits { signup: 0, login: 0, refresh: 0, sessions: 0, password_confirmations: 0 },
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

/// Every variable of the auth core, in the order read (an entry may use fields read above it),
/// printed by `check-config` and listed in the README.
pub static AUTH_SETTINGS: &[Setting<AuthSettings>] = &[
    Setting {
        var: "BATON_DATA_DIR",
        default: Unset::Is("data"),
        doc: "The SQLite database (by default); created with mode 0700, its files 0600. The keys are in the \
              database; key files of an older version found here are imported at start and renamed `*.imported`",
        read: |v, s| {
            s.data_dir = PathBuf::from(v);
            Ok(())
        },
        show: |s| s.data_dir.display().to_string(),
    },
    Setting {
        var: "DATABASE_URL",
        default: Unset::Means("`sqlite://data/baton.db`"),
        doc: "`sqlite:…` (WAL mode, created on first run) or `postgres://…`; unset, `baton.db` in `BATON_DATA_DIR`",
        read: |v, s| database_url(v, &s.data_dir).map(|url| s.database_url = url),
        show: |s| s.database_url.redacted(),
    },
    Setting {
        var: "ACCESS_TOKEN_TTL",
        default: Unset::Is("300"),
        doc: "Access-token lifetime",
        read: |v, s| secs(v, 1).map(|d| s.access_token_ttl = d),
        show: |s| show_secs(s.access_token_ttl),
    },
    Setting {
        var: "REFRESH_IDLE_TTL",
        default: Unset::Days(7),
        doc: "A session unused this long ends; not shorter than `ACCESS_TOKEN_TTL`",
        read: |v, s| secs(v, 1).map(|d| s.refresh_idle_ttl = d),
        show: |s| show_secs(s.refresh_idle_ttl),
    },
    Setting {
        var: "REFRESH_ABSOLUTE_TTL",
        default: Unset::Days(30),
        doc: "A session ends this long after login, however active",
        read: |v, s| secs(v, 1).map(|d| s.refresh_absolute_ttl = d),
        show: |s| show_secs(s.refresh_absolute_ttl),
    },
    Setting {
        var: "REFRESH_REUSE_GRACE",
        default: Unset::Is("10"),
        doc: "How long the predecessor of the current refresh token still gets the same answer, and only from \
              the client that spent it (same address or IPv6 /64, same User-Agent): one client whose answer was \
              lost, or two of its requests racing; `0` disables, at most `60`",
        read: |v, s| secs(v, 0).map(|d| s.refresh_reuse_grace = d),
        show: |s| show_secs(s.refresh_reuse_grace),
    },
    Setting {
        var: "REFRESH_ROTATION",
        default: Unset::Is("on"),
        doc: "`off` for clients written for APIs that never rotate (they keep the first refresh token): a \
              refresh then returns the same refresh token and slides the session's idle timer. See the Security \
              section for what that costs",
        read: |v, s| on_off(v).map(|on| s.refresh_rotation = on),
        show: |s| show_on_off(s.refresh_rotation),
    },
    Setting {
        var: "DPOP_REQUIRED",
        default: Unset::Is("off"),
        doc: "`on`: only sessions bound to a DPoP key (see \"DPoP\" under REST API); a login, refresh or \
              protected call without a proof is refused",
        read: |v, s| on_off(v).map(|on| s.dpop_required = on),
        show: |s| show_on_off(s.dpop_required),
    },
    Setting {
        var: "JWT_LEEWAY",
        default: Unset::Is("2"),
        doc: "Clock skew tolerated when checking an access token's `exp` and `iat`, at most 5: Baton only \
              verifies its own tokens, so an expired token stops working within this many seconds",
        read: |v, s| secs(v, 0).map(|d| s.jwt_leeway = d),
        show: |s| show_secs(s.jwt_leeway),
    },
    Setting {
        var: "JWT_ISSUER",
        default: Unset::Is("baton"),
        doc: "`iss` of access tokens, checked",
        read: |v, s| {
            s.jwt_issuer = v.to_owned();
            Ok(())
        },
        show: |s| s.jwt_issuer.clone(),
    },
    Setting {
        var: "JWT_AUDIENCE",
        default: Unset::Is("baton"),
        doc: "`aud` of access tokens, checked",
        read: |v, s| {
            s.jwt_audience = v.to_owned();
            Ok(())
        },
        show: |s| s.jwt_audience.clone(),
    },
    // The three Argon2id costs default to OWASP's minimum: 19 MiB, t=2, p=1.
    Setting {
        var: "ARGON2_MEMORY_KIB",
        default: Unset::Is("19456"),
        doc: "Argon2id cost: memory, in KiB (OWASP minimum). When a cost changes, older hashes are upgraded at \
              the next login",
        read: |v, s| number(v, 8 * 1024, 4 * 1024 * 1024).map(|n| s.argon2.memory_kib = n),
        show: |s| s.argon2.memory_kib.to_string(),
    },
    Setting {
        var: "ARGON2_ITERATIONS",
        default: Unset::Is("2"),
        doc: "Argon2id cost: passes over the memory (OWASP minimum)",
        read: |v, s| number(v, 1, 100).map(|n| s.argon2.iterations = n),
        show: |s| s.argon2.iterations.to_string(),
    },
    Setting {
        var: "ARGON2_PARALLELISM",
        default: Unset::Is("1"),
        doc: "Argon2id cost: lanes (OWASP minimum)",
        read: |v, s| number(v, 1, 64).map(|n| s.argon2.parallelism = n),
        show: |s| s.argon2.parallelism.to_string(),
    },
    Setting {
        var: "ARGON2_MAX_CONCURRENT",
        default: Unset::Means("the cores"),
        doc: "Password hashes running at once, at a lower OS priority than requests (nice 19); more wait up to \
              5 s, then get 503",
        // Every core: hashing runs at a lower OS priority, so a login flood takes only the CPU that
        // requests leave idle (see `password`).
        read: |v, s| {
            let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
            s.max_concurrent_hashes = if v.is_empty() { cores() } else { number(v, 1, 1024)? as usize };
            Ok(())
        },
        show: |s| s.max_concurrent_hashes.to_string(),
    },
    Setting {
        var: "RATE_LIMIT_SIGNUP",
        default: Unset::Is("10"),
        doc: "Signups per minute from one client address, all at once or spread out (IPv6: per /64, and 4× that \
              per /56, 16× per /48); `0` switches the limit off",
        read: |v, s| number(v, 0, 1_000_000).map(|n| s.rate_limits.signup = n),
        show: |s| s.rate_limits.signup.to_string(),
    },
    Setting {
        var: "RATE_LIMIT_LOGIN",
        default: Unset::Is("30"),
        doc: "Logins per minute from one client address, counted as `RATE_LIMIT_SIGNUP`. Password confirmations \
              (change password, delete account) count per address at this rate too, in a bucket of their own",
        read: |v, s| number(v, 0, 1_000_000).map(|n| s.rate_limits.login = n),
        show: |s| s.rate_limits.login.to_string(),
    },
    Setting {
        var: "RATE_LIMIT_REFRESH",
        default: Unset::Is("120"),
        doc: "Refreshes per minute from one client address, counted as `RATE_LIMIT_SIGNUP`",
        read: |v, s| number(v, 0, 1_000_000).map(|n| s.rate_limits.refresh = n),
        show: |s| s.rate_limits.refresh.to_string(),
    },
    Setting {
        var: "RATE_LIMIT_SESSIONS",
        default: Unset::Is("60"),
        doc: "Reads of the sessions list per minute from one client address, counted as `RATE_LIMIT_SIGNUP`",
        read: |v, s| number(v, 0, 1_000_000).map(|n| s.rate_limits.sessions = n),
        show: |s| s.rate_limits.sessions.to_string(),
    },
    Setting {
        var: "RATE_LIMIT_PASSWORD_CONFIRM",
        default: Unset::Is("10"),
        doc: "Password confirmations per minute per account, wherever they come from, and never more than one of \
              an account's at a time; `0` switches the per-account limit off",
        read: |v, s| number(v, 0, 1_000_000).map(|n| s.rate_limits.password_confirmations = n),
        show: |s| s.rate_limits.password_confirmations.to_string(),
    },
    Setting {
        var: "LOGIN_FREE_ATTEMPTS",
        default: Unset::Is("5"),
        doc: "Consecutive failed logins of one username checked without a wait",
        read: |v, s| number(v, 1, 99).map(|n| s.login_backoff.free_attempts = n),
        show: |s| s.login_backoff.free_attempts.to_string(),
    },
    Setting {
        var: "LOGIN_BACKOFF_MAX",
        default: Unset::Is("900"),
        doc: "The wait after each further failure doubles from 1 s up to this",
        read: |v, s| secs(v, 1).map(|d| s.login_backoff.max_delay = d),
        show: |s| show_secs(s.login_backoff.max_delay),
    },
    Setting {
        var: "LOGIN_LOCK_AFTER",
        default: Unset::Is("100"),
        doc: "After this many consecutive failures (at most 100) the username is locked for \
              `LOGIN_LOCK_DURATION`, and again after each further failure",
        read: |v, s| number(v, 2, 100).map(|n| s.login_backoff.lock_after = n),
        show: |s| s.login_backoff.lock_after.to_string(),
    },
    Setting {
        var: "LOGIN_LOCK_DURATION",
        default: Unset::Is("86400"),
        doc: "How long a username locked by `LOGIN_LOCK_AFTER` stays locked",
        read: |v, s| secs(v, 1).map(|d| s.login_backoff.lock_duration = d),
        show: |s| show_secs(s.login_backoff.lock_duration),
    },
    // Before `TRUSTED_PROXIES`, whose default depends on it.
    Setting {
        var: "TRUSTED_PROXY_HOPS",
        default: Unset::Is("0"),
        doc: "At most this many proxies in a row (`0`: no limit but 16). Set alone, as before \
              `TRUSTED_PROXIES` existed, it trusts a proxy on loopback only (`127.0.0.0/8`, `::1`), and \
              `check-config` and the start-up log warn: any client on a LAN, VPC or pod network could otherwise \
              write its own `X-Forwarded-For`",
        read: |v, s| number(v, 0, 16).map(|n| s.trusted_proxies.max_hops = n as usize),
        show: |s| s.trusted_proxies.max_hops.to_string(),
    },
    Setting {
        var: "TRUSTED_PROXIES",
        default: Unset::Means("none"),
        doc: "Addresses and CIDR blocks of the reverse proxies in front of Baton (`10.0.0.0/8, 2001:db8::1`). A \
              request from one of them is from the first `X-Forwarded-For` entry, read from the right, that is \
              not a trusted proxy (entries may carry a port). Unset: the header is ignored",
        read: |v, s| proxy_nets(v, s.trusted_proxies.max_hops).map(|nets| s.trusted_proxies.nets = nets),
        show: |s| show_list(&s.trusted_proxies.nets),
    },
    Setting {
        var: "PUBLIC_URL",
        default: Unset::Means("unset"),
        doc: "The origin people reach Baton at (`https://baton.example.com`); a comma-separated list for a site \
              with more than one name, the first the one put in links. DPoP proofs must name one of them, \
              whatever `Host` the client sends. Unset, the request's `Host` is used: fine on loopback for \
              development; start-up and `check-config` warn when Baton listens elsewhere",
        read: |v, s| public_urls(v).map(|urls| s.public_urls = urls),
        show: |s| show_list(&s.public_urls),
    },
    Setting {
        var: "DB_TIMEOUT",
        default: Unset::Is("10"),
        doc: "The longest one database call may wait (for a connection, for a lock, for PostgreSQL to answer a \
              statement); then the request gets 503 `server_busy`. At most `300`",
        read: |v, s| secs(v, 1).map(|d| s.db_timeout = d),
        show: |s| show_secs(s.db_timeout),
    },
    Setting {
        var: "SESSION_RETENTION",
        default: Unset::Days(7),
        doc: "An ended session (revoked, expired, idle) is deleted this long after it ended; `0`: at the next \
              purge",
        read: |v, s| secs(v, 0).map(|d| s.retention.sessions = d),
        show: |s| show_secs(s.retention.sessions),
    },
    Setting {
        var: "SECURITY_EVENT_RETENTION",
        default: Unset::Days(90),
        doc: "Security events are deleted at this age",
        read: |v, s| secs(v, 0).map(|d| s.retention.security_events = d),
        show: |s| show_secs(s.retention.security_events),
    },
    Setting {
        var: "PURGE_INTERVAL",
        default: Unset::Is("300"),
        doc: "How often the background purge runs (also at start). It deletes in batches of 500 rows, each a \
              short transaction, and also forgets failed-login counts untouched for 30 days, empty rate-limit \
              buckets and signing keys retired for longer than a token lives",
        read: |v, s| secs(v, 1).map(|d| s.retention.interval = d),
        show: |s| show_secs(s.retention.interval),
    },
    Setting {
        var: "KEY_ENCRYPTION_KEY",
        default: Unset::Means("unset"),
        doc: "32 bytes, base64 (`openssl rand -base64 32`): private keys are stored in the database sealed with \
              it (XChaCha20-Poly1305). With it, a key stored in the clear is refused, at start and at every key \
              poll (whoever can write to the database could add a signing key of their own): after setting it \
              for the first time, run `server seal-keys` once. Unset: stored in the clear, as private as the \
              database. A sealed key without it, or with another, stops the server at start naming the key",
        read: |v, s| kek(v).map(|key| s.keys.encryption_key = key),
        show: |s| show_set(s.keys.encryption_key.is_some()),
    },
    Setting {
        var: "KEY_ENCRYPTION_KEY_PREVIOUS",
        default: Unset::Means("unset"),
        doc: "While rotating the key-encryption key: the old one, still accepted for reading. Set \
              `KEY_ENCRYPTION_KEY` to the new key and this to the old one on every instance, run \
              `server rotate-kek`, then drop this",
        read: |v, s| kek(v).map(|key| s.keys.previous_encryption_key = key),
        show: |s| show_set(s.keys.previous_encryption_key.is_some()),
    },
    Setting {
        var: "SIGNING_KEY_PUBLISH_DELAY",
        default: Unset::Is("120"),
        doc: "A key added by `rotate-signing-key` is in the JWKS at once and signs this long after; the JWKS \
              says `Cache-Control: max-age=` this minus `KEY_POLL_INTERVAL`",
        read: |v, s| secs(v, 1).map(|d| s.keys.publish_delay = d),
        show: |s| show_secs(s.keys.publish_delay),
    },
    Setting {
        var: "KEY_POLL_INTERVAL",
        default: Unset::Is("5"),
        doc: "How often each instance reads the keys from the database; shorter than `SIGNING_KEY_PUBLISH_DELAY`",
        read: |v, s| secs(v, 1).map(|d| s.keys.poll_interval = d),
        show: |s| show_secs(s.keys.poll_interval),
    },
];

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

/// `DATABASE_URL`; unset, `baton.db` in the data directory.
fn database_url(text: &str, data_dir: &Path) -> Result<DatabaseUrl, String> {
    let schemes = ["sqlite:", "postgres://", "postgresql://"];
    match text {
        "" => Ok(DatabaseUrl(format!("sqlite://{}/baton.db", data_dir.display()))),
        url if schemes.iter().any(|scheme| url.starts_with(scheme)) => Ok(DatabaseUrl(url.to_owned())),
        _ => Err("must start with sqlite: or postgres://".into()),
    }
}

/// `TRUSTED_PROXIES`: addresses and CIDR blocks. Unset beside a hop count, as before the list
/// existed, it trusts loopback only: trusting the private ranges let any client on a LAN, VPC or
/// pod network write its own `X-Forwarded-For`.
fn proxy_nets(list: &str, max_hops: usize) -> Result<Vec<IpNet>, String> {
    if list.is_empty() && max_hops > 0 {
        return Ok(loopback());
    }
    items(list).map(str::parse::<IpNet>).collect()
}

fn loopback() -> Vec<IpNet> {
    LOOPBACK.iter().map(|n| n.parse().expect("valid block")).collect()
}

/// `PUBLIC_URL`: origins, each kept as `scheme://host[:port]` (lowercase, no default port).
fn public_urls(list: &str) -> Result<Vec<String>, String> {
    items(list)
        .map(|url| {
            super::origin::origin(url).ok_or_else(|| {
                let url = redact_url(url);
                format!("{url:?} is not an origin like https://baton.example.com (no path, query or user)")
            })
        })
        .collect()
}

/// A key-encryption key: 32 bytes, base64; "" is none.
fn kek(text: &str) -> Result<Option<KeyEncryptionKey>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    KeyEncryptionKey::parse(text)
        .map(Some)
        .ok_or_else(|| "must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)".into())
}

/// The items of a comma-separated list, trimmed; empty ones are skipped.
pub fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty())
}

pub fn on_off(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

/// A whole number from `min` to `max`.
pub fn number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a whole number from {min} to {max}")),
    }
}

/// Seconds, as [`number`] (at most ten years).
pub fn secs(text: &str, min: u32) -> Result<Duration, String> {
    // Ten years is plenty and keeps every millisecond sum far from overflowing.
    number(text, min, 10 * 365 * 86_400).map(|n| Duration::from_secs(n.into()))
}

pub fn show_secs(duration: Duration) -> String {
    duration.as_secs().to_string()
}

fn show_on_off(on: bool) -> String {
    if on { "on" } else { "off" }.into()
}

/// A secret is only said to be there.
fn show_set(set: bool) -> String {
    if set { "(set)" } else { "(none)" }.into()
}

/// A list as `check-config` prints it: comma-separated, or `(none)`.
pub fn show_list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
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
