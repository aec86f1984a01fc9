//! The settings, split by owner: the auth core's ([`Config`], in `app`) and the HTTP server's
//! ([`HttpSettings`], here). Both come from the environment, read with the same helpers, and
//! `server check-config` prints both.

use app::auth::config::{number, secs, Config, ConfigError};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub auth: Config,
    pub http: HttpSettings,
}

/// What belongs to serving HTTP: connection limits, CORS, HSTS.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub limits: HttpLimits,
    /// Origins allowed to call the REST API from a browser; empty means no CORS at all.
    pub cors_origins: Vec<String>,
    /// `Strict-Transport-Security: max-age=…`, only when Baton is served over HTTPS.
    pub hsts_max_age: Option<Duration>,
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
    /// Open connections from one address (IPv6: one /64); trusted proxies are exempt.
    pub max_connections_per_address: usize,
    /// A response that the client does not read for this long is abandoned and its connection
    /// closed, so slow readers cannot hold connections.
    pub response_write_timeout: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self { auth: Config::from_lookup(&lookup)?, http: HttpSettings::from_lookup(&lookup)? })
    }

    /// Every setting by its variable, as in effect; secrets redacted.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let mut all = self.auth.effective();
        all.extend(self.http.effective());
        all
    }
}

impl HttpSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let settings = Self {
            limits: HttpLimits {
                header_read_timeout: secs(&get, "HEADER_READ_TIMEOUT", 10, 1)?,
                body_read_timeout: secs(&get, "BODY_READ_TIMEOUT", 10, 1)?,
                max_header_bytes: number(&get, "MAX_HEADER_BYTES", 16 * 1024, 8 * 1024, 1024 * 1024)? as usize,
                max_connections: number(&get, "MAX_CONNECTIONS", 1024, 1, 1_000_000)? as usize,
                max_connections_per_address: number(&get, "MAX_CONNECTIONS_PER_ADDRESS", 64, 1, 1_000_000)? as usize,
                response_write_timeout: secs(&get, "RESPONSE_WRITE_TIMEOUT", 30, 1)?,
                shutdown_timeout: secs(&get, "SHUTDOWN_TIMEOUT", 30, 1)?,
            },
            cors_origins: get("CORS_ORIGINS")
                .map(|v| v.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            hsts_max_age: match get("HSTS_MAX_AGE") {
                Some(_) => Some(secs(&get, "HSTS_MAX_AGE", 0, 0)?),
                None => None,
            },
        };
        for origin in &settings.cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                return Err(ConfigError {
                    var: "CORS_ORIGINS",
                    reason: format!("{origin:?} is not an origin like https://app.example.com"),
                });
            }
        }
        Ok(settings)
    }

    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let secs = |d: Duration| d.as_secs().to_string();
        let limits = &self.limits;
        vec![
            ("CORS_ORIGINS", if self.cors_origins.is_empty() { "(none)".into() } else { self.cors_origins.join(",") }),
            ("HEADER_READ_TIMEOUT", secs(limits.header_read_timeout)),
            ("BODY_READ_TIMEOUT", secs(limits.body_read_timeout)),
            ("MAX_HEADER_BYTES", limits.max_header_bytes.to_string()),
            ("MAX_CONNECTIONS", limits.max_connections.to_string()),
            ("MAX_CONNECTIONS_PER_ADDRESS", limits.max_connections_per_address.to_string()),
            ("RESPONSE_WRITE_TIMEOUT", secs(limits.response_write_timeout)),
            ("SHUTDOWN_TIMEOUT", secs(limits.shutdown_timeout)),
            ("HSTS_MAX_AGE", self.hsts_max_age.map_or_else(|| "(off)".into(), secs)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn http(vars: &[(&str, &str)]) -> Result<HttpSettings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HttpSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_overrides_and_bad_values() {
        let d = http(&[]).unwrap();
        assert!(d.cors_origins.is_empty());
        assert_eq!(d.hsts_max_age, None);
        assert_eq!(d.limits.max_connections_per_address, 64);
        let c = http(&[("CORS_ORIGINS", "https://a.example, http://localhost:8100")]).unwrap();
        assert_eq!(c.cors_origins, ["https://a.example", "http://localhost:8100"]);
        for (var, value) in [("CORS_ORIGINS", "example.com"), ("MAX_HEADER_BYTES", "100"), ("HSTS_MAX_AGE", "a year")] {
            let err = http(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
        }
    }
}
