//! Throttling, in two layers:
//! - per client address, a rate limit for each of signup, login, refresh and the sessions list
//!   (GCRA: a burst of a minute's allowance, then an even pace), kept in memory on SQLite and in
//!   the database on PostgreSQL, where every instance shares it. An IPv6 client
//!   counts against its /64, and against its /56 and /48 with 4× and 16× the allowance: a host
//!   with a routed /48 has 65,536 /64s but only one /48;
//! - per account, a wait that doubles with every consecutive failed login after the first few,
//!   and a lock after `lock_after` failures. Kept in the database, so a restart forgives nothing
//!   and every instance sees the same count;
//! - password confirmations (change password, delete account) also count per account, at most
//!   one at a time: a right password clears the backoff, so without this an account holder could
//!   loop them and keep the hashing threads busy for everyone else.

use super::config::{LoginBackoff, RateLimits};
use super::db::now_ms;
use super::events::Event;
use super::{AuthService, ClientInfo};
use crate::error::AppError;
use super::network::network;
use std::collections::{HashMap, HashSet};
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
        }
    }
}

pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<Buckets>,
}

/// The action, and whom it is counted against.
type BucketKey = (Action, Subject);

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
    fn buckets_for(&self, action: Action, ip: Option<&str>) -> Vec<(BucketKey, Pace)> {
        let per_minute = match action {
            Action::Signup => self.limits.signup,
            // A confirmation costs what a login costs: the login's allowance, in a bucket of its own.
            Action::Login | Action::ConfirmPassword => self.limits.login,
            // A hand-off happens at most once per page the user opens: fewer than refreshes.
            Action::Refresh | Action::HandOff => self.limits.refresh,
            Action::ListSessions => self.limits.sessions,
        };
        if per_minute == 0 {
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
                ((action, Subject::Network(network(ip, prefix), prefix)), pace(per_minute.saturating_mul(multiple)))
            })
            .collect()
    }

    /// The bucket of `user_id`'s password confirmations; none when that limit is off.
    fn account_bucket(&self, user_id: &str) -> Vec<(BucketKey, Pace)> {
        match self.limits.password_confirmations {
            0 => Vec::new(),
            per_minute => vec![((Action::ConfirmPassword, Subject::Account(user_id.to_owned())), pace(per_minute))],
        }
    }

    /// [`Self::check_buckets`] for `action` from `ip`: the unit tests' shorthand.
    #[cfg(test)]
    fn check(&self, action: Action, ip: Option<&str>) -> Result<(), Limited> {
        self.check_buckets(self.buckets_for(action, ip))
    }

    /// In memory, for this process alone.
    fn check_buckets(&self, limits: Vec<(BucketKey, Pace)>) -> Result<(), Limited> {
        if limits.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.lock();
        // Every network must have room before any is charged: a refusal costs nothing.
        let mut refused: Option<Duration> = None;
        for (key, pace) in &limits {
            let tat = buckets.by_client.get(key).map_or(now, |b| b.tat.max(now));
            if tat > now + pace.burst {
                refused = refused.max(Some(tat - (now + pace.burst)));
            }
        }
        if let Some(retry_after) = refused {
            drop(buckets);
            return Err(self.refused(limits[0].0.clone(), retry_after));
        }
        for (key, pace) in limits {
            let bucket = buckets.by_client.entry(key).or_insert(Bucket { tat: now, logged_at: None });
            bucket.tat = bucket.tat.max(now) + pace.interval;
        }
        Ok(())
    }

    /// In the database, shared by every instance: one statement that charges every bucket only
    /// if all have room. A conflicting row is re-checked against its latest value, so two
    /// instances racing for a bucket's last slot cannot both have it.
    async fn check_shared(&self, db: &super::Db, limits: Vec<(BucketKey, Pace)>) -> Result<(), SharedCheck> {
        if limits.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = limits.iter().map(|((action, subject), _)| format!("{}:{subject}", action.name())).collect();
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
        for (name, (_, pace)) in names.iter().zip(&limits) {
            query = query.bind(name.clone()).bind(pace.interval.as_millis() as i64).bind(pace.burst.as_millis() as i64);
        }
        let (charged, wait) = query.fetch_one(db).await.map_err(SharedCheck::Db)?;
        if charged == limits.len() as i64 {
            return Ok(());
        }
        // A lost race has no wait of its own to tell: a second is the least a 429 asks.
        let retry_after = Duration::from_millis(wait.unwrap_or(0).max(1) as u64);
        Err(SharedCheck::Limited(self.refused(limits[0].0.clone(), retry_after)))
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
            let recent = |b: &Bucket| b.tat > now || b.logged_at.is_some_and(|at| now.duration_since(at) < Duration::from_secs(60));
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

/// GCRA's emission interval and burst tolerance for `per_minute` requests a minute.
struct Pace {
    interval: Duration,
    burst: Duration,
}

fn pace(per_minute: u32) -> Pace {
    let interval = Duration::from_secs(60) / per_minute;
    Pace { interval, burst: interval * (per_minute - 1) }
}

impl LoginBackoff {
    /// How long the next attempt must wait after `failures` consecutive failed ones.
    pub fn wait_after(&self, failures: u32) -> Duration {
        if failures >= self.lock_after {
            self.lock_duration
        } else if failures < self.free_attempts {
            Duration::ZERO
        } else {
            Duration::from_secs(1 << (failures - self.free_attempts).min(30)).min(self.max_delay)
        }
    }
}

/// The accounts whose password is being checked again right now.
pub(super) type InFlight = std::sync::Arc<Mutex<HashSet<String>>>;

/// An account's one place among [`InFlight`], given back when dropped.
pub(super) struct Confirming {
    set: InFlight,
    user_id: String,
}

impl Confirming {
    fn claim(set: &InFlight, user_id: &str) -> Option<Self> {
        let fresh = set.lock().unwrap_or_else(|p| p.into_inner()).insert(user_id.to_owned());
        fresh.then(|| Self { set: set.clone(), user_id: user_id.to_owned() })
    }
}

impl Drop for Confirming {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.user_id);
    }
}

fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl AuthService {
    /// The per-address limit for `action`: shared by all instances on PostgreSQL.
    pub(super) async fn limit_rate(&self, action: Action, client: &ClientInfo) -> Result<(), AppError> {
        let limits = self.inner.rate_limiter.buckets_for(action, client.ip.as_deref());
        self.enforce(action, limits, client).await
    }

    /// A password confirmation of `user_id` from `client`: limited per address (as logins are)
    /// and per account, and at most one of the account's at a time (on this instance). The
    /// returned guard holds that place until dropped.
    pub(super) async fn limit_confirmation(&self, user_id: &str, client: &ClientInfo) -> Result<Confirming, AppError> {
        self.limit_rate(Action::ConfirmPassword, client).await?;
        let limits = self.inner.rate_limiter.account_bucket(user_id);
        self.enforce(Action::ConfirmPassword, limits, client).await?;
        Confirming::claim(&self.inner.confirming, user_id).ok_or(AppError::TooManyRequests { retry_after: 1 })
    }

    async fn enforce(&self, action: Action, limits: Vec<(BucketKey, Pace)>, client: &ClientInfo) -> Result<(), AppError> {
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
        let retry_after = retry_after_secs(limited.retry_after).max(1);
        if limited.first_in_a_while {
            tracing::warn!(target: "security", event = "rate_limited", action = action.name(), ip = client.ip.as_deref(), retry_after);
        }
        Err(AppError::TooManyRequests { retry_after })
    }

    /// Counts a login attempt against `username_key` before its password is checked (so that
    /// concurrent guesses cannot all get in before the first failure is written), or refuses it
    /// while the account waits out its backoff or lock. A success clears the count again.
    /// Returns the count before this attempt.
    #[tracing::instrument(skip_all)]
    pub(super) async fn claim_login_attempt(&self, username_key: &str, client: &ClientInfo) -> Result<u32, AppError> {
        let policy = self.config().login_backoff;
        // Each round either claims or sees the claim that beat it; a handful of rounds is plenty.
        for _ in 0..16 {
            let mut tx = self.begin_write().await?;
            let now = now_ms();
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT failures, blocked_until FROM login_attempts WHERE username_key = $1")
                    .bind(username_key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let failures = match row {
                Some((failures, blocked_until)) if blocked_until > now => {
                    tx.rollback().await?;
                    let retry_after = retry_after_secs(Duration::from_millis((blocked_until - now) as u64));
                    tracing::warn!(target: "security", event = "login_throttled", failures, ip = client.ip.as_deref(), retry_after);
                    metrics::counter!("baton_security_events_total", "event" => "login_throttled").increment(1);
                    return Err(AppError::TooManyRequests { retry_after });
                }
                Some((failures, _)) => failures,
                None => 0,
            };
            let counted = u32::try_from(failures + 1).unwrap_or(u32::MAX);
            // No wait due is no block at all: `now` would block a concurrent attempt whose clock
            // was read a millisecond earlier (seen on PostgreSQL as a 429 for a right password).
            let blocked_until = match policy.wait_after(counted) {
                wait if wait.is_zero() => 0,
                wait => now.saturating_add(wait.as_millis() as i64),
            };
            let claimed = if row.is_some() {
                sqlx::query(
                    "UPDATE login_attempts SET failures = $2, blocked_until = $3, updated_at = $4 \
                     WHERE username_key = $1 AND failures = $5",
                )
                .bind(username_key)
                .bind(failures + 1)
                .bind(blocked_until)
                .bind(now)
                .bind(failures)
                .execute(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "INSERT INTO login_attempts (username_key, failures, blocked_until, updated_at) \
                     VALUES ($1, 1, $2, $3) ON CONFLICT (username_key) DO NOTHING",
                )
                .bind(username_key)
                .bind(blocked_until)
                .bind(now)
                .execute(&mut *tx)
                .await
            }?
            .rows_affected()
                == 1;
            tx.commit().await?;
            if claimed {
                if counted == policy.lock_after {
                    let user_id = self.user_id_by_key(username_key).await;
                    self.record(Event::AccountLocked, user_id.as_deref(), None, client).await;
                }
                return Ok(counted - 1);
            }
        }
        Err(AppError::Busy { retry_after: 1 })
    }

    pub(super) async fn clear_login_attempts(&self, username_key: &str) -> Result<(), AppError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM login_attempts WHERE username_key = $1")
            .bind(username_key)
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
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
        })
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
        let in_56 = (0..50u32).filter(|i| limiter.check(Action::Login, Some(&format!("2001:db8:2:{i:x}::1"))).is_ok()).count();
        assert_eq!(in_56, 8);
        assert!(limiter.check(Action::Login, Some("2001:db8:3::1")).is_ok(), "another /48 is untouched");
    }

    #[test]
    fn backoff_doubles_is_capped_and_locks_by_the_hundredth_failure() {
        let policy = LoginBackoff {
            free_attempts: 5,
            max_delay: Duration::from_secs(900),
            lock_after: 100,
            lock_duration: Duration::from_secs(86_400),
        };
        let waits: Vec<u64> = (0..=12).map(|n| policy.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(policy.wait_after(15), Duration::from_secs(900));
        assert_eq!(policy.wait_after(99), Duration::from_secs(900));
        assert_eq!(policy.wait_after(100), Duration::from_secs(86_400));
        assert_eq!(policy.wait_after(u32::MAX), Duration::from_secs(86_400));
    }
}
