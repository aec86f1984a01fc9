//! The settings, split by owner: the auth core's ([`AuthSettings`], in `app`) and the HTTP server's
//! ([`HttpSettings`], here). Each is one table of [`Setting`]s that reads, checks, documents and
//! prints every variable; `server check-config` prints both, and README.md's Configuration table
//! is [`markdown_table`] (a test keeps them the same).

use app::auth::settings::{
    items, number, read_table, secs, show_list, show_secs, show_table, AuthSettings, Setting, SettingError, Unset,
    AUTH_SETTINGS,
};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub auth: AuthSettings,
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
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        Ok(Self { auth: AuthSettings::from_lookup(&lookup)?, http: HttpSettings::from_lookup(&lookup)? })
    }

    /// Every setting by its variable, as in effect; secrets redacted.
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let mut all = self.auth.effective();
        all.extend(self.http.effective());
        all
    }
}

impl HttpSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        read_table(HTTP_SETTINGS, lookup, Self::blank())
    }

    pub fn effective(&self) -> Vec<(&'static str, String)> {
        show_table(HTTP_SETTINGS, self)
    }

    /// Where reading starts; every field is then set by its entry in [`HTTP_SETTINGS`].
    fn blank() -> Self {
        let zero = Duration::ZERO;
        let limits = HttpLimits {
            header_read_timeout: zero,
            body_read_timeout: zero,
            max_header_bytes: 0,
            max_connections: 0,
            max_connections_per_address: 0,
            response_write_timeout: zero,
            shutdown_timeout: zero,
        };
        Self { limits, cors_origins: Vec::new(), hsts_max_age: None }
    }
}

/// Every variable of the HTTP server, in the order read, printed by `check-config` and listed in
/// the README (after the auth core's).
pub static HTTP_SETTINGS: &[Setting<HttpSettings>] = &[
    Setting {
        var: "CORS_ORIGINS",
        default: Unset::Means("none"),
        doc: "Comma-separated origins allowed to call the REST API from a browser",
        read: |v, s| cors_origins(v).map(|origins| s.cors_origins = origins),
        show: |s| show_list(&s.cors_origins),
    },
    Setting {
        var: "HEADER_READ_TIMEOUT",
        default: Unset::Is("10"),
        doc: "A client must send its request head within this time (idle keep-alive connections too), else the \
              connection is closed",
        read: |v, s| secs(v, 1).map(|d| s.limits.header_read_timeout = d),
        show: |s| show_secs(s.limits.header_read_timeout),
    },
    Setting {
        var: "BODY_READ_TIMEOUT",
        default: Unset::Is("10"),
        doc: "A client must send its request body within this time, else it gets 408",
        read: |v, s| secs(v, 1).map(|d| s.limits.body_read_timeout = d),
        show: |s| show_secs(s.limits.body_read_timeout),
    },
    Setting {
        var: "MAX_HEADER_BYTES",
        default: Unset::Is("16384"),
        doc: "Larger request heads get 431; bodies are limited to 16 KiB (413)",
        read: |v, s| number(v, 8 * 1024, 1024 * 1024).map(|n| s.limits.max_header_bytes = n as usize),
        show: |s| s.limits.max_header_bytes.to_string(),
    },
    Setting {
        var: "MAX_CONNECTIONS",
        default: Unset::Is("1024"),
        doc: "Open connections at once; more wait in the listen backlog",
        read: |v, s| number(v, 1, 1_000_000).map(|n| s.limits.max_connections = n as usize),
        show: |s| s.limits.max_connections.to_string(),
    },
    Setting {
        var: "MAX_CONNECTIONS_PER_ADDRESS",
        default: Unset::Is("64"),
        doc: "Open connections from one address (IPv6: one /64, and 4× that per /56, 16× per /48); one more gets \
              `503` with `Retry-After: 1` after its request head is read, then the connection closes (as \
              nginx's `limit_conn`), not a reset. Trusted proxies are exempt",
        read: |v, s| number(v, 1, 1_000_000).map(|n| s.limits.max_connections_per_address = n as usize),
        show: |s| s.limits.max_connections_per_address.to_string(),
    },
    Setting {
        var: "RESPONSE_WRITE_TIMEOUT",
        default: Unset::Is("30"),
        doc: "A client that reads nothing of its response for this long loses the connection",
        read: |v, s| secs(v, 1).map(|d| s.limits.response_write_timeout = d),
        show: |s| show_secs(s.limits.response_write_timeout),
    },
    Setting {
        var: "SHUTDOWN_TIMEOUT",
        default: Unset::Is("30"),
        doc: "On SIGTERM or SIGINT, how long requests in flight may take to finish",
        read: |v, s| secs(v, 1).map(|d| s.limits.shutdown_timeout = d),
        show: |s| show_secs(s.limits.shutdown_timeout),
    },
    Setting {
        var: "HSTS_MAX_AGE",
        default: Unset::Means("unset"),
        doc: "Set when served over HTTPS: adds `Strict-Transport-Security: max-age=…; includeSubDomains`",
        read: |v, s| {
            s.hsts_max_age = if v.is_empty() { None } else { Some(secs(v, 0)?) };
            Ok(())
        },
        show: |s| s.hsts_max_age.map_or_else(|| "(off)".into(), show_secs),
    },
];

/// A variable read outside these settings (by Leptos, the logger or `main`): in the README's table
/// too, but not printed by `check-config`.
pub struct ReadElsewhere {
    pub var: &'static str,
    pub default: Unset,
    pub doc: &'static str,
}

pub static READ_ELSEWHERE: &[ReadElsewhere] = &[
    ReadElsewhere { var: "LEPTOS_SITE_ADDR", default: Unset::Is("127.0.0.1:3000"), doc: "Address to listen on" },
    ReadElsewhere {
        var: "RUST_LOG",
        default: Unset::Is("info,sqlx=warn"),
        doc: "Log filter; security events have the target `security`",
    },
    ReadElsewhere {
        var: "METRICS_ADDR",
        default: Unset::Means("unset (off)"),
        doc: "Serve Prometheus metrics at `http://<addr>/metrics`, on this address only (say `127.0.0.1:9100`; \
              never the public one). See \"Metrics\" below",
    },
    ReadElsewhere {
        var: "LOG_FORMAT",
        default: Unset::Is("text"),
        doc: "`json`: one JSON object per line for log shippers, the event's fields at the top level (a security \
              event's `event`, `user_id`, `session_id`, `ip`, `detail`)",
    },
];

/// README.md's Configuration table: one row per variable, the auth core's, the HTTP server's, then
/// those read elsewhere.
pub fn markdown_table() -> String {
    let auth = AUTH_SETTINGS.iter().map(|s| (s.var, s.default, s.doc));
    let http = HTTP_SETTINGS.iter().map(|s| (s.var, s.default, s.doc));
    let elsewhere = READ_ELSEWHERE.iter().map(|s| (s.var, s.default, s.doc));
    let rows: String = auth
        .chain(http)
        .chain(elsewhere)
        .map(|(var, default, doc)| format!("| `{var}` | {} | {doc} |\n", default.readme()))
        .collect();
    format!("| Variable | Default | Meaning |\n| --- | --- | --- |\n{rows}")
}

/// Origins like `https://app.example.com`: a scheme, no trailing slash.
fn cors_origins(list: &str) -> Result<Vec<String>, String> {
    let origin = |text: &str| {
        let scheme = text.starts_with("http://") || text.starts_with("https://");
        if scheme && !text.ends_with('/') {
            Ok(text.to_owned())
        } else {
            Err(format!("{text:?} is not an origin like https://app.example.com"))
        }
    };
    items(list).map(origin).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn http(vars: &[(&str, &str)]) -> Result<HttpSettings, SettingError> {
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

    /// Catches an entry that reads into one field and shows another.
    #[test]
    fn each_default_reads_back_as_itself() {
        let d = http(&[]).unwrap();
        for setting in HTTP_SETTINGS.iter().filter(|s| !matches!(s.default, Unset::Means(_))) {
            assert_eq!((setting.show)(&d), setting.default.text(), "{}", setting.var);
        }
    }

    #[test]
    fn the_readme_has_the_table_the_code_makes() {
        let table = markdown_table();
        assert!(
            include_str!("../../README.md").contains(&table),
            "README.md's Configuration table is not the one the code documents; put this in its place:\n\n{table}"
        );
    }

    /// `check-config` prints every documented variable but those read elsewhere, and nothing else.
    #[test]
    fn check_config_prints_exactly_the_documented_variables() {
        let table = markdown_table();
        let documented: Vec<&str> = table.lines().skip(2).filter_map(|row| row.split('`').nth(1)).collect();
        let settings = Settings::from_lookup(|_| None).unwrap();
        let printed: Vec<&str> = settings.effective().into_iter().map(|(var, _)| var).collect();
        let elsewhere: Vec<&str> = READ_ELSEWHERE.iter().map(|r| r.var).collect();
        assert_eq!(documented, [printed, elsewhere].concat());
        let mut unique = documented.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), documented.len(), "a variable is listed twice");
    }

    /// A `|` or a line break in a doc would break the table.
    #[test]
    fn each_variable_is_one_row_of_three_cells() {
        for row in markdown_table().lines() {
            assert_eq!(row.matches('|').count(), 4, "{row}");
        }
    }
}
