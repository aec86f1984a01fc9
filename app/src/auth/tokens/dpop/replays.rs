//! DPoP proofs already used (RFC 9449 §11.1): each is accepted once, on every instance.

use super::proof::{VerifiedProof, FUTURE_SECS, MAX_AGE_SECS};
use crate::auth::store::db::Db;
use crate::error::AppError;
use std::collections::HashSet;
use std::hash::BuildHasher as _;
use std::sync::Mutex;

/// Proofs seen, until they are too old to be accepted anyway.
pub(crate) enum Replays {
    /// SQLite: one instance, so memory will do. (Boxed: sixteen shards are large, and the
    /// service holds one of the two.)
    Memory(Box<MemoryReplays>),
    /// PostgreSQL: every instance checks the same table.
    Shared(Db),
}

impl Replays {
    /// Records the proof; `false` if it was seen before (a replay).
    pub async fn first_use(&self, proof: &VerifiedProof, now_ms: i64) -> Result<bool, AppError> {
        match self {
            Self::Memory(seen) => Ok(seen.first_use(&proof.replay_id, now_ms)),
            Self::Shared(db) => {
                let inserted = sqlx::query(
                    "INSERT INTO dpop_proofs (id, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE dpop_proofs.expires_at <= $3",
                )
                .bind(&proof.replay_id)
                .bind(proof.remember_until)
                .bind(now_ms)
                .execute(db)
                .await?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    }
}

/// How long a proof must be remembered after it is first seen: its `iat` may be up to
/// [`FUTURE_SECS`] ahead and it is accepted until [`MAX_AGE_SECS`] after.
const REMEMBER_MS: i64 = (MAX_AGE_SECS + FUTURE_SECS + 1) * 1000;
const SHARDS: usize = 16;

/// The proofs of the last one or two [`REMEMBER_MS`], in shards chosen by a keyed hash of the
/// proof's id, each with two generations: a proof goes into the current one, and a generation
/// older than `REMEMBER_MS` is dropped whole. Each insert touches one shard, does constant work
/// and takes no lock that the other shards' callers wait for; memory is at most twice the
/// proofs of one lifetime (the request rate times about two minutes), whatever the rate.
pub(crate) struct MemoryReplays {
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<Generations>; SHARDS],
}

#[derive(Default)]
struct Generations {
    current: HashSet<String>,
    previous: HashSet<String>,
    /// When `current` began (ms).
    started_at: i64,
}

impl Default for MemoryReplays {
    fn default() -> Self {
        Self { hasher: Default::default(), shards: std::array::from_fn(|_| Mutex::default()) }
    }
}

impl MemoryReplays {
    fn first_use(&self, id: &str, now_ms: i64) -> bool {
        let shard = self.hasher.hash_one(id) as usize % SHARDS;
        let mut seen = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if now_ms - seen.started_at >= REMEMBER_MS {
            // Everything in `previous` went in over REMEMBER_MS ago: no longer needed. Two
            // lifetimes without a proof here: `current` is old enough to go too.
            let stale = std::mem::take(&mut seen.current);
            seen.previous = if now_ms - seen.started_at >= 2 * REMEMBER_MS { HashSet::new() } else { stale };
            seen.started_at = now_ms;
        }
        !seen.previous.contains(id) && seen.current.insert(id.to_owned())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|g| g.current.len() + g.previous.len()).unwrap_or(0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_caught_for_a_whole_lifetime_and_memory_follows_the_rate() {
        let seen = MemoryReplays::default();
        let t0 = 1_000_000_000;
        assert!(seen.first_use("a", t0));
        assert!(!seen.first_use("a", t0), "a replay");
        // Until its last accepted moment, across a generation change of its shard.
        for later in [1, REMEMBER_MS / 2, REMEMBER_MS, REMEMBER_MS + 1, 2 * REMEMBER_MS - 1] {
            assert!(seen.first_use(&format!("other-{later}"), t0 + later));
            assert!(!seen.first_use("a", t0 + later), "still a replay {later} ms on");
        }
        // 1,000 proofs a second for ten lifetimes: no more than two lifetimes' worth are kept.
        let seen = MemoryReplays::default();
        let per_ms = 1;
        for ms in 0..10 * REMEMBER_MS {
            for i in 0..per_ms {
                assert!(seen.first_use(&format!("{ms}-{i}"), t0 + ms));
            }
        }
        let kept = seen.len() as i64;
        assert!(kept <= 2 * REMEMBER_MS * per_ms + SHARDS as i64, "{kept} proofs kept");
        assert!(kept >= REMEMBER_MS * per_ms, "{kept}: at least one lifetime's");
    }

    #[test]
    fn a_proof_being_recorded_holds_up_no_other_shard() {
        // One shard busy (its lock held, as by a caller in the middle of an insert): proofs that
        // belong to the other shards are recorded meanwhile, not queued behind it.
        let seen = std::sync::Arc::new(MemoryReplays::default());
        let busy = seen.hasher.hash_one("busy") as usize % SHARDS;
        let held = seen.shards[busy].lock().unwrap();
        let others: Vec<String> = (0..64)
            .map(|i| format!("proof-{i}"))
            .filter(|id| seen.hasher.hash_one(id) as usize % SHARDS != busy)
            .collect();
        assert!(others.len() > 32, "most proofs go elsewhere: {} of 64", others.len());
        let (done, finished) = std::sync::mpsc::channel();
        let writer = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let recorded = others.iter().all(|id| seen.first_use(id, 1_000_000_000));
                let _ = done.send(recorded);
            })
        };
        let recorded = finished.recv_timeout(std::time::Duration::from_secs(10));
        drop(held);
        writer.join().unwrap();
        assert_eq!(recorded, Ok(true), "blocked behind another shard's lock");
    }
}
