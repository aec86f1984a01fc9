//! [`AUTH_SETTINGS`]: the auth core's variables, one entry each, and the readers only they use.

use super::values::{items, number, on_off, secs, show_list, show_on_off, show_secs, show_set};
use super::{loopback, redact_url, AuthSettings, DatabaseUrl, KeyEncryptionKey, Setting, SmtpUrl, Unset};
use crate::auth::limits::network::IpNet;
use std::path::{Path, PathBuf};

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
        var: "DPOP_REPLAY_CAPACITY",
        default: Unset::Is("1000000"),
        doc: "DPoP proofs remembered in memory against replay on SQLite (about 20 bytes each; PostgreSQL keeps \
              them in the database). Enough for 7,500 proofs a second; past it, proofs older than what had to \
              be forgotten are refused, never a replay accepted",
        read: |v, s| number(v, 100_000, 100_000_000).map(|n| s.dpop_replay_capacity = n as usize),
        show: |s| s.dpop_replay_capacity.to_string(),
    },
    Setting {
        var: "CACHE_CAPACITY",
        default: Unset::Is("50000"),
        doc: "Entries each in-memory cache holds (access tokens verified, sessions seen alive in the last \
              second, users): what a protected call saves a signature check and a database read with",
        read: |v, s| number(v, 100, 10_000_000).map(|n| s.cache_capacity = n as usize),
        show: |s| s.cache_capacity.to_string(),
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
        var: "RATE_LIMIT_RESET",
        default: Unset::Is("5"),
        doc: "Password-reset requests per hour from one client address (IPv6 counted as `RATE_LIMIT_SIGNUP`); past \
              it a 429. Per account, at most 3 reset mails and 5 verification mails go out an hour whatever this \
              says (past that the answer is the same and no mail goes out); `0` switches the per-address limit off",
        read: |v, s| number(v, 0, 1_000_000).map(|n| s.rate_limits.reset = n),
        show: |s| s.rate_limits.reset.to_string(),
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
    // After `PUBLIC_URL`: mail needs its origin for links.
    Setting {
        var: "SMTP_URL",
        default: Unset::Means("mails are written as `.eml` files under `BATON_DATA_DIR/outbox/`"),
        doc: "The mail relay, in lettre's URL form: `smtp://host:25` unencrypted (a relay on the same host), \
              `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465` (TLS). Needs \
              `PUBLIC_URL` (the origin put in links). Mail waits in a queue in the database and is retried with \
              backoff for up to 3 days; `check-config` warns about an unencrypted relay not on loopback",
        read: |v, s| smtp_url(v, &s.public_urls).map(|url| s.mail.smtp_url = url),
        show: |s| s.mail.smtp_url.as_ref().map_or_else(|| "(outbox files)".into(), SmtpUrl::redacted),
    },
    Setting {
        var: "MAIL_FROM",
        default: Unset::Is("Baton <baton@localhost>"),
        doc: "The sender of Baton's mails, a mailbox like `Baton <no-reply@example.com>`",
        read: |v, s| mail_from(v).map(|from| s.mail.from = from),
        show: |s| s.mail.from.clone(),
    },
    Setting {
        var: "RESET_TOKEN_TTL",
        default: Unset::Is("1800"),
        doc: "How long a password-reset link works (once); a newer link or any password change voids it sooner",
        read: |v, s| secs(v, 1).map(|d| s.mail.reset_token_ttl = d),
        show: |s| show_secs(s.mail.reset_token_ttl),
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
        doc: "How often the background purge runs (also at start). It deletes in batches (of 200 sessions, of \
              500 other rows), each a short transaction, and also forgets failed-login counts untouched for 30 \
              days, empty rate-limit buckets and signing keys retired for longer than a token lives",
        read: |v, s| secs(v, 1).map(|d| s.retention.interval = d),
        show: |s| show_secs(s.retention.interval),
    },
    Setting {
        var: "KEY_ENCRYPTION_KEY",
        default: Unset::Means("unset"),
        doc: "32 bytes, base64 (`openssl rand -base64 32`): private keys and one-time-code secrets are stored in \
              the database sealed with it (XChaCha20-Poly1305). With it, a key stored in the clear is refused, at \
              start and at every key poll (whoever can write to the database could add a signing key of their \
              own), and a one-time-code secret in the clear at start: after setting it for the first time, run \
              `server seal-keys` once. Unset: stored in the clear, as private as the database. A sealed key \
              without it, or with another, stops the server at start naming the key",
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

/// `PUBLIC_URL`: origins, each kept as `scheme://host[:port]` (lowercase, no default port).
fn public_urls(list: &str) -> Result<Vec<String>, String> {
    items(list)
        .map(|url| {
            crate::auth::origin::origin(url).ok_or_else(|| {
                let url = redact_url(url);
                format!("{url:?} is not an origin like https://baton.example.com (no path, query or user)")
            })
        })
        .collect()
}

/// `SMTP_URL`: as lettre reads it (checked here, so `check-config` finds a bad one); "" is none.
fn smtp_url(text: &str, public_urls: &[String]) -> Result<Option<SmtpUrl>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let shown = redact_url(text);
    if !(text.starts_with("smtp://") || text.starts_with("smtps://")) {
        return Err(format!("{shown:?} must start with smtp:// or smtps://"));
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(text).map_err(|e| format!("{shown:?}: {e}"))?;
    if public_urls.is_empty() {
        return Err("needs PUBLIC_URL, the origin put in the links Baton mails".into());
    }
    Ok(Some(SmtpUrl(text.to_owned())))
}

/// `MAIL_FROM`: one mailbox.
fn mail_from(text: &str) -> Result<String, String> {
    match text.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(text.to_owned()),
        Err(e) => Err(format!("{text:?} is not a mailbox like `Baton <no-reply@example.com>`: {e}")),
    }
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
