//! What a client may cost: per-address `rate` limits, the per-account login `backoff`, password
//! `confirmations`, and the `network` a client counts by (behind trusted proxies, by prefix).

pub(crate) mod backoff;
pub(crate) mod confirmations;
pub mod network;
pub(crate) mod rate;

use std::time::Duration;

/// `Retry-After`: whole seconds, rounded up.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
