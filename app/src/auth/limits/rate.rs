//! Per-address rate limits for signup, login, refresh, the sessions list, password
//! confirmations and hand-offs (GCRA: a burst of a minute's allowance, then an even pace), kept in
//! memory on SQLite and in the database on PostgreSQL, where every instance shares them. An IPv6
//! client counts against its /64, and against its /56 and /48 with 4× and 16× the allowance: a
//! host with a routed /48 has 65,536 /64s but only one /48.

use super::network::network;
use crate::auth::caller::ClientInfo;
use crate::auth::settings::RateLimits;
use crate::auth::store::db::Db;
use crate::auth::AuthService;
use crate::error::AppError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Signup,
    Login,
    Refresh,
    ListSessions,
    /// Checking a logged-in user's password again (change password, delete account).
    ConfirmPassword,
    /// Storing or redeeming a hand-off between two pages (see `handoff`).
    HandOff,
    /// Asking for a password-reset link: counted per hour, not per minute.
    PasswordReset,
    /// Asking for a verification link again ("Send again"): as a reset request, in its own bucket.
    ResendVerification,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::Refresh => "refresh",
            Self::ListSessions => "list_sessions",
            Self::ConfirmPassword => "confirm_password",
            Self::HandOff => "hand_off",
            Self::PasswordReset => "password_reset",
            Self::ResendVerification => "resend_verification",
        }
    }
}

pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<Buckets>,
}

/// The action, and whom it is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BucketKey {
    action: Action,
    subject: Subject,
}

/// A bucket one request is charged to, and at what pace it refills.
pub(super) struct Charge {
    key: BucketKey,
    pace: Pace,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    /// An address or a prefix, of the length given.
    Network(IpAddr, u8),
    /// An account, by its id.
    Account(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Network(net, prefix) => write!(f, "{net}/{prefix}"),
            Self::Account(id) => write!(f, "user:{id}"),
        }
    }
}

struct Buckets {
    /// Keyed by the network (an address, or an IPv6 prefix of the length in the key).
    by_client: HashMap<BucketKey, Bucket>,
    /// Forgotten buckets are swept when the map reaches this size, so memory follows the number
    /// of clients seen in the last minute, not since start.
    sweep_at: usize,
}

struct Bucket {
    /// GCRA's "theoretical arrival time": when the bucket would be empty again.
    tat: Instant,
    /// A flood is logged once a minute per client, not once per request.
    logged_at: Option<Instant>,
}

pub struct Limited {
    pub retry_after: Duration,
    pub first_in_a_while: bool,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self { limits, buckets: Mutex::new(Buckets { by_client: HashMap::new(), sweep_at: 4096 }) }
    }

    /// The buckets `action` from `ip` is charged to, narrowest first; none when the limit is off.
    fn buckets_for(&self, action: Action, ip: Option<&str>) -> Vec<Charge> {
        let minute = Duration::from_secs(60);
        let (allowance, period) = match action {
            Action::Signup => (self.limits.signup, minute),
            // A confirmation costs what a login costs: the login's allowance, in a bucket of its own.
            Action::Login | Action::ConfirmPassword => (self.limits.login, minute),
            // A hand-off happens at most once per page the user opens: fewer than refreshes.
            Action::Refresh | Action::HandOff => (self.limits.refresh, minute),
            Action::ListSessions => (self.limits.sessions, minute),
            Action::PasswordReset | Action::ResendVerification => (self.limits.reset, 60 * minute),
        };
        if allowance == 0 {
            return Vec::new();
        }
        let ip = ip.and_then(|ip| ip.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical());
        // (prefix length, allowance multiple): IPv4 counts by address, IPv6 by three prefixes,
        // the narrowest first. Each becomes its bucket's key and pace, once.
        let networks: &[(u8, u32)] = match ip {
            Some(IpAddr::V6(_)) => &[(64, 1), (56, 4), (48, 16)],
            _ => &[(32, 1)],
        };
        networks
            .iter()
            .map(|&(prefix, multiple)| {
                let key = BucketKey { action, subject: Subject::Network(network(ip, prefix), prefix) };
                Charge { key, pace: pace(allowance.saturating_mul(multiple), period) }
            })
            .collect()
    }

    /// The bucket of `user_id`'s password confirmations; none when that limit is off.
    pub(super) fn account_bucket(&self, user_id: &str) -> Vec<Charge> {
        match self.limits.password_confirmations {
            0 => Vec::new(),
            per_minute => {
                let key = BucketKey { action: Action::ConfirmPassword, subject: Subject::Account(user_id.to_owned()) };
                vec![Charge { key, pace: pace(per_minute, Duration::from_secs(60)) }]
            }
        }
    }

    /// [`Self::check_buckets`] for `action` from `ip`: the unit tests' shorthand.
    #[cfg(test)]
    fn check(&self, action: Action, ip: Option<&str>) -> Result<(), Limited> {
        self.check_buckets(self.buckets_for(action, ip))
    }

    /// In memory, for this process alone.
    fn check_buckets(&self, limits: Vec<Charge>) -> Result<(), Limited> {
        if limits.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.lock();
        // Every network must have room before any is charged: a refusal costs nothing.
        let mut refused: Option<Duration> = None;
        for Charge { key, pace } in &limits {
            let tat = buckets.by_client.get(key).map_or(now, |b| b.tat.max(now));
            if tat > now + pace.burst {
                refused = refused.max(Some(tat - (now + pace.burst)));
            }
        }
        if let Some(retry_after) = refused {
            drop(buckets);
            return Err(self.refused(limits[0].key.clone(), retry_after));
        }
        for Charge { key, pace } in limits {
            let bucket = buckets.by_client.entry(key).or_insert(Bucket { tat: now, logged_at: None });
            bucket.tat = bucket.tat.max(now) + pace.interval;
        }
        Ok(())
    }

    /// In the database, shared by every instance: one statement that charges every bucket only
    /// if all have room. A conflicting row is re-checked against its latest value, so two
    /// instances racing for a bucket's last slot cannot both have it.
    async fn check_shared(&self, db: &Db, limits: Vec<Charge>) -> Result<(), SharedCheck> {
        if limits.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = limits.iter().map(|c| format!("{}:{}", c.key.action.name(), c.key.subject)).collect();
        let (mut values, mut steps, mut bursts) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..limits.len() {
            let p = 1 + 3 * i;
            values.push(format!("(${p}, ${}::bigint, ${}::bigint)", p + 1, p + 2));
            steps.push(format!("WHEN ${p} THEN ${}::bigint", p + 1));
            bursts.push(format!("WHEN ${p} THEN ${}::bigint", p + 2));
        }
        // The database's clock, read when each part runs: a check that waited for another's row
        // lock reads a time no earlier than that one's, whichever instance sent them (the callers'
        // clocks would disagree by a few milliseconds, enough to refuse a request with room).
        let now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";
        let sql = format!(
            "WITH req(bucket, step, burst) AS (VALUES {values}), \
             cur AS (SELECT req.bucket, req.step, req.burst, GREATEST(COALESCE(b.tat, {now}), {now}) AS tat \
                     FROM req LEFT JOIN rate_limit_buckets b ON b.bucket = req.bucket), \
             verdict AS (SELECT bool_and(tat <= {now} + burst) AS ok, MAX(tat - {now} - burst) AS wait FROM cur), \
             charged AS (INSERT INTO rate_limit_buckets (bucket, tat) \
                     SELECT bucket, {now} + step FROM cur WHERE (SELECT ok FROM verdict) \
                     ON CONFLICT (bucket) DO UPDATE \
                     SET tat = GREATEST(rate_limit_buckets.tat, {now}) + CASE rate_limit_buckets.bucket {steps} END \
                     WHERE GREATEST(rate_limit_buckets.tat, {now}) <= {now} + CASE rate_limit_buckets.bucket {bursts} END \
                     RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM charged), (SELECT wait FROM verdict)",
            values = values.join(", "),
            steps = steps.join(" "),
            bursts = bursts.join(" "),
        );
        let mut query = sqlx::query_as::<_, (i64, Option<i64>)>(&sql);
        for (name, Charge { pace, .. }) in names.iter().zip(&limits) {
            query = query.bind(name.clone()).bind(pace.interval.as_millis() as i64).bind(pace.burst.as_millis() as i64);
        }
        let (charged, wait) = query.fetch_one(db).await.map_err(SharedCheck::Db)?;
        if charged == limits.len() as i64 {
            return Ok(());
        }
        // A lost race has no wait of its own to tell: a second is the least a 429 asks.
        let retry_after = Duration::from_millis(wait.unwrap_or(0).max(1) as u64);
        Err(SharedCheck::Limited(self.refused(limits[0].key.clone(), retry_after)))
    }

    /// A refusal, noted on the narrowest bucket so that a flood is logged once a minute.
    fn refused(&self, narrowest: BucketKey, retry_after: Duration) -> Limited {
        let now = Instant::now();
        let mut buckets = self.lock();
        let bucket = buckets.by_client.entry(narrowest).or_insert(Bucket { tat: now, logged_at: None });
        let first_in_a_while = bucket.logged_at.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60));
        if first_in_a_while {
            bucket.logged_at = Some(now);
        }
        Limited { retry_after, first_in_a_while }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.by_client.len() >= buckets.sweep_at {
            let now = Instant::now();
            let recent = |b: &Bucket| {
                b.tat > now || b.logged_at.is_some_and(|at| now.duration_since(at) < Duration::from_secs(60))
            };
            buckets.by_client.retain(|_, b| recent(b));
            buckets.sweep_at = (buckets.by_client.len() * 2).max(4096);
        }
        buckets
    }
}

/// The outcome of a shared check that did not let the request through.
enum SharedCheck {
    Limited(Limited),
    Db(sqlx::Error),
}

/// GCRA's emission interval and burst tolerance for `allowance` requests a `period`.
pub(super) struct Pace {
    interval: Duration,
    burst: Duration,
}

fn pace(allowance: u32, period: Duration) -> Pace {
    let interval = period / allowance;
    Pace { interval, burst: interval * (allowance - 1) }
}

impl AuthService {
    /// The per-address limit for `action`: shared by all instances on PostgreSQL.
    pub(crate) async fn limit_rate(&self, action: Action, client: &ClientInfo) -> Result<(), AppError> {
        let limits = self.inner.rate_limiter.buckets_for(action, client.ip.as_deref());
        self.enforce(action, limits, client).await
    }

    pub(super) async fn enforce(
        &self,
        action: Action,
        limits: Vec<Charge>,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        let outcome = match &self.inner.limits_db {
            None => self.inner.rate_limiter.check_buckets(limits),
            Some(db) => match self.inner.rate_limiter.check_shared(db, limits).await {
                Ok(()) => Ok(()),
                Err(SharedCheck::Limited(limited)) => Err(limited),
                Err(SharedCheck::Db(e)) => return Err(e.into()),
            },
        };
        let Err(limited) = outcome else {
            return Ok(());
        };
        metrics::counter!("baton_rate_limited_total", "action" => action.name()).increment(1);
        let retry_after = super::retry_after_secs(limited.retry_after).max(1);
        if limited.first_in_a_while {
            tracing::warn!(target: "security", event = "rate_limited", action = action.name(), ip = client.ip.as_deref(), retry_after);
        }
        Err(AppError::TooManyRequests { retry_after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32) -> RateLimiter {
        RateLimiter::new(RateLimits {
            signup: per_minute,
            login: per_minute,
            refresh: 0,
            sessions: per_minute,
            password_confirmations: per_minute,
            reset: per_minute,
        })
    }

    #[test]
    fn reset_requests_are_counted_per_hour() {
        let limiter = limiter(5);
        for _ in 0..5 {
            assert!(limiter.check(Action::PasswordReset, Some("10.0.0.1")).is_ok());
        }
        let limited = limiter.check(Action::PasswordReset, Some("10.0.0.1")).expect_err("6th refused");
        // The next one in 12 minutes (an hour's pace), not in 12 seconds (a minute's).
        assert!(limited.retry_after > Duration::from_secs(710) && limited.retry_after <= Duration::from_secs(720));
    }

    #[test]
    fn a_minute_of_allowance_at_once_then_refused_with_the_wait() {
        let limiter = limiter(6);
        for _ in 0..6 {
            assert!(limiter.check(Action::Login, Some("10.0.0.1")).is_ok());
        }
        let limited = limiter.check(Action::Login, Some("10.0.0.1")).expect_err("7th refused");
        assert!(limited.retry_after > Duration::from_secs(9) && limited.retry_after <= Duration::from_secs(10));
        assert!(limited.first_in_a_while);
        assert!(!limiter.check(Action::Login, Some("10.0.0.1")).err().unwrap().first_in_a_while);
        // Other actions, other addresses and switched-off limits are not affected.
        assert!(limiter.check(Action::Signup, Some("10.0.0.1")).is_ok());
        assert!(limiter.check(Action::Login, Some("10.0.0.2")).is_ok());
        assert!((0..1000).all(|_| limiter.check(Action::Refresh, Some("10.0.0.1")).is_ok()));
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let limiter = limiter(1);
        assert!(limiter.check(Action::Login, Some("2001:db8:1:2::1")).is_ok());
        assert!(limiter.check(Action::Login, Some("2001:db8:1:2:ffff::9")).is_err());
        assert!(limiter.check(Action::Login, Some("2001:db8:1:3::1")).is_ok());
        assert!(limiter.check(Action::Login, Some("::ffff:10.1.1.1")).is_ok());
        assert!(limiter.check(Action::Login, Some("10.1.1.1")).is_err(), "IPv4-mapped is the same client");
    }

    #[test]
    fn a_48_shares_sixteen_times_a_64s_allowance() {
        let limiter = limiter(2);
        // 2001:db8:1::/48 holds 65,536 /64s; spread over them, only 32 attempts get through.
        let allowed = (0..200u32)
            .filter(|i| limiter.check(Action::Login, Some(&format!("2001:db8:1:{:x}::1", i * 257))).is_ok())
            .count();
        assert_eq!(allowed, 32);
        // A /56 alone stops at 4× (8): a fresh /48, all from one /56.
        let in_56 =
            (0..50u32).filter(|i| limiter.check(Action::Login, Some(&format!("2001:db8:2:{i:x}::1"))).is_ok()).count();
        assert_eq!(in_56, 8);
        assert!(limiter.check(Action::Login, Some("2001:db8:3::1")).is_ok(), "another /48 is untouched");
    }
}
