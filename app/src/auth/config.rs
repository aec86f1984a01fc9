//! Typed configuration from environment variables (a `.env` file is loaded by the server first).
//! Every variable is listed in README.md; a bad value stops the server with a message naming it.

use super::access_token::MAX_LEEWAY_SECS;
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

/// Requests per minute from one client address (IPv6: one /64); 0 switches the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub signup: u32,
    pub login: u32,
    pub refresh: u32,
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

/// What a connection may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A client must send its whole request head within this time, also on an idle keep-alive
    /// connection, or the connection is closed.
    pub header_read_timeout: Duration,
    /// A client must send its whole body within this time, or gets a 408.
    pub body_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`. Not logged: it may carry a password.
    pub database_url: String,
    /// Holds the SQLite database by default and the signing keys.
    pub data_dir: PathBuf,
    pub access_token_ttl: Duration,
    pub refresh_idle_ttl: Duration,
    pub refresh_absolute_ttl: Duration,
    /// How long the predecessor of the current refresh token may still be presented (by a client
    /// that refreshed twice at once) and get the same answer. Zero disables it.
    pub refresh_reuse_grace: Duration,
    /// Clock skew tolerated when verifying access tokens (`exp`, `iat`), at most
    /// [`MAX_LEEWAY_SECS`](super::access_token::MAX_LEEWAY_SECS).
    pub jwt_leeway: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub argon2: Argon2Settings,
    /// How many password hashes may run at once; more wait in line (bounded) or get a 503.
    pub max_concurrent_hashes: usize,
    /// Origins allowed to call the REST API from a browser; empty means no CORS at all.
    pub cors_origins: Vec<String>,
    pub rate_limits: RateLimits,
    pub login_backoff: LoginBackoff,
    pub http: HttpLimits,
    /// How many reverse proxies in front of Baton append to `X-Forwarded-For`. 0 (the default)
    /// ignores the header: a client could write anything there.
    pub trusted_proxy_hops: u32,
    /// `Strict-Transport-Security: max-age=…`, only when Baton is served over HTTPS.
    pub hsts_max_age: Option<Duration>,
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
            Some(url) if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
            Some(_) => {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    reason: "must start with sqlite: or postgres://".into(),
                })
            }
            None => format!("sqlite://{}/baton.db", data_dir.display()),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let config = Self {
            database_url,
            data_dir,
            access_token_ttl: secs(&get, "ACCESS_TOKEN_TTL", 300, 1)?,
            refresh_idle_ttl: secs(&get, "REFRESH_IDLE_TTL", 7 * 86_400, 1)?,
            refresh_absolute_ttl: secs(&get, "REFRESH_ABSOLUTE_TTL", 30 * 86_400, 1)?,
            refresh_reuse_grace: secs(&get, "REFRESH_REUSE_GRACE", 10, 0)?,
            jwt_leeway: secs(&get, "JWT_LEEWAY", 2, 0)?,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "baton".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "baton".into()),
            argon2: Argon2Settings {
                memory_kib: number(&get, "ARGON2_MEMORY_KIB", 19 * 1024, 8 * 1024, 4 * 1024 * 1024)?,
                iterations: number(&get, "ARGON2_ITERATIONS", 2, 1, 100)?,
                parallelism: number(&get, "ARGON2_PARALLELISM", 1, 1, 64)?,
            },
            // Half the cores: a login flood must leave room for every other request.
            max_concurrent_hashes: number(&get, "ARGON2_MAX_CONCURRENT", (cores / 2).max(1) as u32, 1, 1024)?
                as usize,
            cors_origins: get("CORS_ORIGINS")
                .map(|v| v.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            rate_limits: RateLimits {
                signup: number(&get, "RATE_LIMIT_SIGNUP", 10, 0, 1_000_000)?,
                login: number(&get, "RATE_LIMIT_LOGIN", 30, 0, 1_000_000)?,
                refresh: number(&get, "RATE_LIMIT_REFRESH", 120, 0, 1_000_000)?,
            },
            login_backoff: LoginBackoff {
                free_attempts: number(&get, "LOGIN_FREE_ATTEMPTS", 5, 1, 99)?,
                max_delay: secs(&get, "LOGIN_BACKOFF_MAX", 15 * 60, 1)?,
                lock_after: number(&get, "LOGIN_LOCK_AFTER", 100, 2, 100)?,
                lock_duration: secs(&get, "LOGIN_LOCK_DURATION", 86_400, 1)?,
            },
            http: HttpLimits {
                header_read_timeout: secs(&get, "HEADER_READ_TIMEOUT", 10, 1)?,
                body_read_timeout: secs(&get, "BODY_READ_TIMEOUT", 10, 1)?,
                max_header_bytes: number(&get, "MAX_HEADER_BYTES", 16 * 1024, 8 * 1024, 1024 * 1024)? as usize,
                max_connections: number(&get, "MAX_CONNECTIONS", 1024, 1, 1_000_000)? as usize,
                shutdown_timeout: secs(&get, "SHUTDOWN_TIMEOUT", 30, 1)?,
            },
            trusted_proxy_hops: number(&get, "TRUSTED_PROXY_HOPS", 0, 0, 10)?,
            hsts_max_age: match get("HSTS_MAX_AGE") {
                Some(_) => Some(secs(&get, "HSTS_MAX_AGE", 0, 0)?),
                None => None,
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
            (
                "REFRESH_IDLE_TTL",
                config.refresh_idle_ttl > config.refresh_absolute_ttl,
                "must not exceed REFRESH_ABSOLUTE_TTL".into(),
            ),
        ];
        if let Some((var, _, reason)) = limits.into_iter().find(|(_, broken, _)| *broken) {
            return Err(ConfigError { var, reason });
        }
        for origin in &config.cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                return Err(ConfigError {
                    var: "CORS_ORIGINS",
                    reason: format!("{origin:?} is not an origin like https://app.example.com"),
                });
            }
        }
        Ok(config)
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

fn number(
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

fn secs(
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
        assert_eq!(c.database_url, "sqlite://data/baton.db");
        assert_eq!(c.access_token_ttl, Duration::from_secs(300));
        assert_eq!(c.refresh_idle_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.refresh_absolute_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(c.argon2, Argon2Settings::default());
        assert!(c.cors_origins.is_empty());
        assert_eq!(c.login_backoff.lock_after, 100);
        assert_eq!(c.hsts_max_age, None);
        assert_eq!(c.trusted_proxy_hops, 0);
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
            ("CORS_ORIGINS", "example.com"),
            ("REFRESH_IDLE_TTL", "99999999"),
            ("LOGIN_LOCK_AFTER", "101"),
            ("LOGIN_FREE_ATTEMPTS", "100"),
            ("MAX_HEADER_BYTES", "100"),
            ("TRUSTED_PROXY_HOPS", "-1"),
            ("HSTS_MAX_AGE", "a year"),
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
            ("CORS_ORIGINS", "https://a.example, http://localhost:8100"),
        ])
        .unwrap();
        assert_eq!(c.database_url, "sqlite:///tmp/b/baton.db");
        assert_eq!(c.refresh_reuse_grace, Duration::ZERO);
        assert_eq!(c.cors_origins, ["https://a.example", "http://localhost:8100"]);
    }
}
