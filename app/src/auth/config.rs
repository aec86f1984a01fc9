//! The auth core's typed configuration from environment variables (a `.env` file is loaded by the
//! server first); the HTTP server's own settings are in the server crate, read with the same
//! helpers. Every variable is listed in README.md; a bad value stops the server naming it.

use super::access_token::MAX_LEEWAY_SECS;
use super::network::{IpNet, TrustedProxies, LOOPBACK};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    /// OWASP's minimum for Argon2id: 19 MiB, t=2, p=1.
    fn default() -> Self {
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
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

/// Per-account throttling of password guesses (see `throttle`).
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
pub struct Config {
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
    /// `DPOP_REQUIRED`: only DPoP-bound sessions (see `dpop`); off, bearer sessions work too.
    pub dpop_required: bool,
    /// Clock skew tolerated when verifying access tokens (`exp`, `iat`), at most
    /// [`MAX_LEEWAY_SECS`](super::access_token::MAX_LEEWAY_SECS).
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

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let data_dir = PathBuf::from(get("BATON_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = match get("DATABASE_URL") {
            Some(url) if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                DatabaseUrl(url)
            }
            Some(_) => {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    reason: "must start with sqlite: or postgres://".into(),
                })
            }
            None => DatabaseUrl(format!("sqlite://{}/baton.db", data_dir.display())),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = Self {
            database_url,
            data_dir,
            access_token_ttl: secs(&get, "ACCESS_TOKEN_TTL", 300, 1)?,
            refresh_idle_ttl: secs(&get, "REFRESH_IDLE_TTL", 7 * 86_400, 1)?,
            refresh_absolute_ttl: secs(&get, "REFRESH_ABSOLUTE_TTL", 30 * 86_400, 1)?,
            refresh_reuse_grace: secs(&get, "REFRESH_REUSE_GRACE", 10, 0)?,
            refresh_rotation: on_off(&get, "REFRESH_ROTATION", true)?,
            dpop_required: on_off(&get, "DPOP_REQUIRED", false)?,
            jwt_leeway: secs(&get, "JWT_LEEWAY", 2, 0)?,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "baton".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "baton".into()),
            argon2: Argon2Settings {
                memory_kib: number(&get, "ARGON2_MEMORY_KIB", 19 * 1024, 8 * 1024, 4 * 1024 * 1024)?,
                iterations: number(&get, "ARGON2_ITERATIONS", 2, 1, 100)?,
                parallelism: number(&get, "ARGON2_PARALLELISM", 1, 1, 64)?,
            },
            // Every core: hashing runs at a lower OS priority, so a login flood takes only the
            // CPU that requests leave idle (see `password`).
            max_concurrent_hashes: number(&get, "ARGON2_MAX_CONCURRENT", cores as u32, 1, 1024)?
                as usize,
            rate_limits: RateLimits {
                signup: number(&get, "RATE_LIMIT_SIGNUP", 10, 0, 1_000_000)?,
                login: number(&get, "RATE_LIMIT_LOGIN", 30, 0, 1_000_000)?,
                refresh: number(&get, "RATE_LIMIT_REFRESH", 120, 0, 1_000_000)?,
                sessions: number(&get, "RATE_LIMIT_SESSIONS", 60, 0, 1_000_000)?,
                password_confirmations: number(&get, "RATE_LIMIT_PASSWORD_CONFIRM", 10, 0, 1_000_000)?,
            },
            login_backoff: LoginBackoff {
                free_attempts: number(&get, "LOGIN_FREE_ATTEMPTS", 5, 1, 99)?,
                max_delay: secs(&get, "LOGIN_BACKOFF_MAX", 15 * 60, 1)?,
                lock_after: number(&get, "LOGIN_LOCK_AFTER", 100, 2, 100)?,
                lock_duration: secs(&get, "LOGIN_LOCK_DURATION", 86_400, 1)?,
            },
            trusted_proxies: trusted_proxies(&get)?,
            public_urls: public_urls(&get)?,
            db_timeout: secs(&get, "DB_TIMEOUT", 10, 1)?,
            retention: Retention {
                sessions: secs(&get, "SESSION_RETENTION", 7 * 86_400, 0)?,
                security_events: secs(&get, "SECURITY_EVENT_RETENTION", 90 * 86_400, 0)?,
                interval: secs(&get, "PURGE_INTERVAL", 300, 1)?,
            },
            keys: KeySettings {
                encryption_key: kek(&get, "KEY_ENCRYPTION_KEY")?,
                previous_encryption_key: kek(&get, "KEY_ENCRYPTION_KEY_PREVIOUS")?,
                publish_delay: secs(&get, "SIGNING_KEY_PUBLISH_DELAY", 120, 1)?,
                poll_interval: secs(&get, "KEY_POLL_INTERVAL", 5, 1)?,
            },
        };
        // Settings that are each valid alone but not together, checked in this order.
        let limits = [
            (
                "LOGIN_FREE_ATTEMPTS",
                config.login_backoff.free_attempts >= config.login_backoff.lock_after,
                "must be less than LOGIN_LOCK_AFTER".to_owned(),
            ),
            // Longer only lets a thief with an old token ride the chain longer.
            ("REFRESH_REUSE_GRACE", config.refresh_reuse_grace > Duration::from_secs(60), "must be at most 60 seconds".into()),
            (
                "REFRESH_IDLE_TTL",
                config.refresh_idle_ttl < config.access_token_ttl,
                "must not be shorter than ACCESS_TOKEN_TTL: a session would end while its access token still works".into(),
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
                "must be shorter than SIGNING_KEY_PUBLISH_DELAY: every instance must read a new key before it signs".into(),
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
            return Err(ConfigError { var, reason });
        }
        Ok(config)
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Every setting by its variable, as in effect (defaults included); the database password
    /// redacted. For `server check-config`.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let secs = |d: Duration| d.as_secs().to_string();
        let list = |items: Vec<String>| if items.is_empty() { "(none)".to_owned() } else { items.join(",") };
        vec![
            ("DATABASE_URL", self.database_url.redacted()),
            ("BATON_DATA_DIR", self.data_dir.display().to_string()),
            ("ACCESS_TOKEN_TTL", secs(self.access_token_ttl)),
            ("REFRESH_IDLE_TTL", secs(self.refresh_idle_ttl)),
            ("REFRESH_ABSOLUTE_TTL", secs(self.refresh_absolute_ttl)),
            ("REFRESH_REUSE_GRACE", secs(self.refresh_reuse_grace)),
            ("REFRESH_ROTATION", if self.refresh_rotation { "on" } else { "off" }.into()),
            ("DPOP_REQUIRED", if self.dpop_required { "on" } else { "off" }.into()),
            ("JWT_LEEWAY", secs(self.jwt_leeway)),
            ("JWT_ISSUER", self.jwt_issuer.clone()),
            ("JWT_AUDIENCE", self.jwt_audience.clone()),
            ("ARGON2_MEMORY_KIB", self.argon2.memory_kib.to_string()),
            ("ARGON2_ITERATIONS", self.argon2.iterations.to_string()),
            ("ARGON2_PARALLELISM", self.argon2.parallelism.to_string()),
            ("ARGON2_MAX_CONCURRENT", self.max_concurrent_hashes.to_string()),
            ("RATE_LIMIT_SIGNUP", self.rate_limits.signup.to_string()),
            ("RATE_LIMIT_LOGIN", self.rate_limits.login.to_string()),
            ("RATE_LIMIT_REFRESH", self.rate_limits.refresh.to_string()),
            ("RATE_LIMIT_SESSIONS", self.rate_limits.sessions.to_string()),
            ("RATE_LIMIT_PASSWORD_CONFIRM", self.rate_limits.password_confirmations.to_string()),
            ("LOGIN_FREE_ATTEMPTS", self.login_backoff.free_attempts.to_string()),
            ("LOGIN_BACKOFF_MAX", secs(self.login_backoff.max_delay)),
            ("LOGIN_LOCK_AFTER", self.login_backoff.lock_after.to_string()),
            ("LOGIN_LOCK_DURATION", secs(self.login_backoff.lock_duration)),
            ("TRUSTED_PROXIES", list(self.trusted_proxies.nets.iter().map(ToString::to_string).collect())),
            ("TRUSTED_PROXY_HOPS", self.trusted_proxies.max_hops.to_string()),
            ("PUBLIC_URL", list(self.public_urls.clone())),
            ("DB_TIMEOUT", secs(self.db_timeout)),
            ("SESSION_RETENTION", secs(self.retention.sessions)),
            ("SECURITY_EVENT_RETENTION", secs(self.retention.security_events)),
            ("PURGE_INTERVAL", secs(self.retention.interval)),
            ("KEY_ENCRYPTION_KEY", if self.keys.encryption_key.is_some() { "(set)" } else { "(none)" }.into()),
            ("KEY_ENCRYPTION_KEY_PREVIOUS", if self.keys.previous_encryption_key.is_some() { "(set)" } else { "(none)" }.into()),
            ("SIGNING_KEY_PUBLISH_DELAY", secs(self.keys.publish_delay)),
            ("KEY_POLL_INTERVAL", secs(self.keys.poll_interval)),
        ]
    }
}

impl Config {
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

/// `TRUSTED_PROXIES` (addresses and CIDR blocks, comma-separated) and `TRUSTED_PROXY_HOPS`. The
/// hop count alone, as before `TRUSTED_PROXIES` existed, trusts loopback only: trusting the
/// private ranges let any client on a LAN, VPC or pod network write its own `X-Forwarded-For`.
fn trusted_proxies(get: &impl Fn(&str) -> Option<String>) -> Result<TrustedProxies, ConfigError> {
    let max_hops = number(get, "TRUSTED_PROXY_HOPS", 0, 0, 16)? as usize;
    let nets = match get("TRUSTED_PROXIES") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.parse::<IpNet>().map_err(|reason| ConfigError { var: "TRUSTED_PROXIES", reason }))
            .collect::<Result<_, _>>()?,
        None if max_hops > 0 => loopback(),
        None => Vec::new(),
    };
    Ok(TrustedProxies { nets, max_hops })
}

fn loopback() -> Vec<IpNet> {
    LOOPBACK.iter().map(|n| n.parse().expect("valid block")).collect()
}

/// `PUBLIC_URL`: origins, comma-separated, each kept as `scheme://host[:port]` (lowercase, no
/// default port).
fn public_urls(get: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = get("PUBLIC_URL") else { return Ok(Vec::new()) };
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            super::dpop::origin(u).ok_or_else(|| ConfigError {
                var: "PUBLIC_URL",
                reason: format!("{:?} is not an origin like https://baton.example.com (no path, query or user)", redact_url(u)),
            })
        })
        .collect()
}

/// A key-encryption key: 32 bytes, base64.
fn kek(get: &impl Fn(&str) -> Option<String>, var: &'static str) -> Result<Option<KeyEncryptionKey>, ConfigError> {
    get(var)
        .map(|text| {
            KeyEncryptionKey::parse(&text)
                .ok_or(ConfigError { var, reason: "must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)".into() })
        })
        .transpose()
}

pub fn on_off(get: &impl Fn(&str) -> Option<String>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("on" | "true" | "1") => Ok(true),
        Some("off" | "false" | "0") => Ok(false),
        Some(other) => Err(ConfigError { var, reason: format!("{other:?} is neither on nor off") }),
    }
}

/// A whole number from `min` to `max`, or `default` when unset; an error names the variable.
pub fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let Some(raw) = get(var) else { return Ok(default) };
    match raw.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError { var, reason: format!("{raw:?} is not a whole number from {min} to {max}") }),
    }
}

/// Seconds, as [`number`] (at most ten years).
pub fn secs(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u32,
    min: u32,
) -> Result<Duration, ConfigError> {
    // Ten years is plenty and keeps every millisecond sum far from overflowing.
    number(get, var, default, min, 10 * 365 * 86_400).map(|n| Duration::from_secs(n.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(&*c.database_url, "sqlite://data/baton.db");
        assert_eq!(c.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.refresh_idle_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.refresh_absolute_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(c.argon2, Argon2Settings::default());
        assert_eq!(c.login_backoff.lock_after, 100);
        assert!(c.trusted_proxies.is_empty());
        assert!(c.refresh_rotation);
        assert_eq!(c.db_timeout, Duration::from_secs(10));
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
        let c = config(&[
            ("BATON_DATA_DIR", "/tmp/b"),
            ("REFRESH_REUSE_GRACE", "0"),
        ])
        .unwrap();
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
        let c = config(&[("DATABASE_URL", "postgres://baton:s3cret@db:5432/baton?sslmode=require&password=other")]).unwrap();
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
        assert!(legacy.warnings(false).iter().any(|w| w.contains("TRUSTED_PROXY_HOPS is set without TRUSTED_PROXIES")));
    }

    #[test]
    fn public_urls_are_origins() {
        let c = config(&[("PUBLIC_URL", "HTTPS://Baton.Example.com:443/, http://localhost:3000")]).unwrap();
        assert_eq!(c.public_urls, ["https://baton.example.com", "http://localhost:3000"]);
        assert!(c.warnings(true).is_empty());
        for bad in ["baton.example.com", "https://baton.example.com/app", "https://a@b.example", "ftp://x", "https://x?y=1"] {
            assert_eq!(config(&[("PUBLIC_URL", bad)]).unwrap_err().var, "PUBLIC_URL", "{bad}");
        }
        let unset = config(&[]).unwrap();
        assert!(unset.warnings(false).is_empty(), "on loopback, the Host is fine");
        assert!(unset.warnings(true)[0].contains("PUBLIC_URL is unset"));
    }

    #[test]
    fn every_secret_in_a_url_is_redacted() {
        let url = "postgres://baton:p%40ss@db/baton?sslmode=require&password=one&application_name=x&sslpassword=two&password=three&PassWord=four";
        let shown = redact_url(url);
        assert_eq!(
            shown,
            "postgres://baton:***@db/baton?sslmode=require&password=***&application_name=x&sslpassword=***&password=***&PassWord=***"
        );
        assert_eq!(redact_url("postgres://db/baton?options=a@b"), "postgres://db/baton?options=a@b", "an @ in the query is no userinfo");
        assert_eq!(redact_url("sqlite://data/baton.db"), "sqlite://data/baton.db");
    }
}
