//! DPoP proofs already used (RFC 9449 §11.1): each is accepted once, on every instance.

use super::proof::{VerifiedProof, FUTURE_SECS, MAX_AGE_SECS};
use crate::auth::store::db::{now_ms, Db};
use crate::error::AppError;
use std::collections::HashSet;
use std::hash::BuildHasher as _;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Proofs seen, until they are too old to be accepted anyway.
pub(crate) enum Replays {
    /// SQLite: one instance, so memory will do. (Boxed: sixteen shards are large, and the
    /// service holds one of the two.)
    Memory(Box<MemoryReplays>),
    /// PostgreSQL: every instance checks the same table.
    Shared(SharedReplays),
}

impl Replays {
    /// Records the proof; `false` if it was seen before (a replay).
    pub async fn first_use(&self, proof: &VerifiedProof, now_ms: i64) -> Result<bool, AppError> {
        match self {
            Self::Memory(seen) => seen.first_use(&proof.replay_id, proof.issued_at_ms, now_ms),
            Self::Shared(shared) => shared.first_use(proof, now_ms).await,
        }
    }
}

/// The most proofs one statement records.
const MAX_BATCH: usize = 256;

/// The `dpop_proofs` table, written by one task per instance: the checks that arrive while a
/// statement runs go together in the next (one round trip and one commit for all of them, as the
/// writer groups refreshes), so a DPoP call costs the database a row, not a transaction. A batch
/// the database refuses is retried one proof at a time, so one bad proof fails only itself.
pub(crate) struct SharedReplays {
    checks: mpsc::Sender<Check>,
}

struct Check {
    id: String,
    remember_until: i64,
    /// When the proof was checked (ms): its row is still needed if it expires after this.
    checked_at: i64,
    first_use: oneshot::Sender<Result<bool, AppError>>,
}

/// A check that waited this long for its batch is answered 503: the proof's row may have been
/// overwritten as expired by then (`checked_at` bounds that) and the client will not wait.
const MAX_WAIT_MS: i64 = 4_000;

impl SharedReplays {
    /// Starts the task; it ends with the last handle.
    pub(crate) fn start(db: Db) -> Self {
        let (checks, mut queued) = mpsc::channel::<Check>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queued.recv_many(&mut batch, MAX_BATCH).await > 0 {
                record(&db, std::mem::take(&mut batch)).await;
            }
        });
        Self { checks }
    }

    async fn first_use(&self, proof: &VerifiedProof, now_ms: i64) -> Result<bool, AppError> {
        let (first_use, answer) = oneshot::channel();
        let check =
            Check { id: proof.replay_id.clone(), remember_until: proof.remember_until, checked_at: now_ms, first_use };
        self.checks.send(check).await.map_err(|_| AppError::Busy { retry_after: 1 })?;
        answer.await.map_err(|_| AppError::Busy { retry_after: 1 })?
    }
}

/// Records `batch` in one statement and answers each check: `true` for the proofs inserted (or
/// whose old row had expired), `false` for those already there and for repeats within the batch.
async fn record(db: &Db, batch: Vec<Check>) {
    let now = now_ms();
    let mut first = std::collections::HashSet::with_capacity(batch.len());
    let mut unique = Vec::with_capacity(batch.len());
    for check in batch {
        if check.first_use.is_closed() {
            continue; // its request is gone
        } else if now - check.checked_at > MAX_WAIT_MS {
            let _ = check.first_use.send(Err(AppError::Busy { retry_after: 1 }));
        } else if !first.insert(check.id.clone()) {
            let _ = check.first_use.send(Ok(false));
        } else {
            unique.push(check);
        }
    }
    let Some(oldest) = unique.iter().map(|c| c.checked_at).min() else { return };
    let values = (0..unique.len()).map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO dpop_proofs (id, expires_at) VALUES {values} \
         ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE dpop_proofs.expires_at <= $1 RETURNING id"
    );
    // As of the earliest check: a row it still needs is not taken for expired. (Each batch size
    // is its own statement text: not kept prepared, or they would crowd out the others.)
    let mut query = sqlx::query_scalar::<_, String>(&sql).bind(oldest).persistent(false);
    for check in &unique {
        query = query.bind(check.id.clone()).bind(check.remember_until);
    }
    match query.fetch_all(db).await {
        Ok(inserted) => {
            let inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
            for check in unique {
                let _ = check.first_use.send(Ok(inserted.contains(&check.id)));
            }
        }
        // The database refused a value (one proof's): each alone, so only that one fails.
        Err(sqlx::Error::Database(_)) if unique.len() > 1 => {
            for check in unique {
                let one = Box::pin(record(db, vec![check]));
                one.await;
            }
        }
        // Unreachable, slow, or refusing this one: the same answer for everybody, at once.
        Err(e) => {
            let error = AppError::from(e);
            for check in unique {
                let _ = check.first_use.send(Err(error.clone()));
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
/// and takes no lock that the other shards' callers wait for.
///
/// Memory is bounded by `DPOP_REPLAY_CAPACITY`, not by the request rate: a proof is kept as a
/// 64-bit hash under a per-process random key (an attacker cannot aim a collision at another's
/// proof), and a shard whose current generation is full starts the next one early, forgetting
/// the oldest. It then accepts only proofs made after every one it forgot (a replay has its
/// original's `iat`): past the capacity the window for a proof's age narrows, and no replay is
/// ever let through.
pub(crate) struct MemoryReplays {
    hasher: std::collections::hash_map::RandomState,
    /// Proofs one generation of one shard holds.
    per_generation: usize,
    shards: [Mutex<Generations>; SHARDS],
}

struct Generations {
    current: HashSet<u64, Prehashed>,
    previous: HashSet<u64, Prehashed>,
    /// When `current` began (ms).
    started_at: i64,
    /// The latest `iat` (ms) in each generation, and of every proof forgotten: a proof made
    /// later than the last cannot be one of them.
    current_latest: i64,
    previous_latest: i64,
    forgotten_latest: i64,
    /// When a full generation was last dropped early (ms).
    rolled_early_at: i64,
}

impl Default for Generations {
    fn default() -> Self {
        Self {
            current: HashSet::default(),
            previous: HashSet::default(),
            started_at: i64::MIN / 2,
            current_latest: i64::MIN,
            previous_latest: i64::MIN,
            forgotten_latest: i64::MIN,
            rolled_early_at: i64::MIN / 2,
        }
    }
}

/// The set's keys are keyed hashes already: hashing them again would only cost time.
#[derive(Default, Clone, Copy)]
struct Prehashed;

impl std::hash::BuildHasher for Prehashed {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The shard of a proof's hash: from its high bits, since the set places its keys by the low ones.
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

impl MemoryReplays {
    /// Room for about `capacity` proofs in all.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            hasher: Default::default(),
            per_generation: (capacity / SHARDS / 2).max(1),
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }

    /// `false` for a replay. An error for a proof no later than one a full shard had to forget.
    fn first_use(&self, id: &str, issued_at_ms: i64, now_ms: i64) -> Result<bool, AppError> {
        let hash = self.hasher.hash_one(id);
        let mut seen = self.shards[shard_of(hash)].lock().unwrap_or_else(|p| p.into_inner());
        let age = now_ms - seen.started_at;
        if age < REMEMBER_MS && seen.current.len() >= self.per_generation {
            seen.rolled_early_at = now_ms;
        }
        if age >= REMEMBER_MS || seen.current.len() >= self.per_generation {
            seen.forgotten_latest = seen.forgotten_latest.max(seen.previous_latest);
            seen.previous = std::mem::take(&mut seen.current);
            seen.previous_latest = std::mem::replace(&mut seen.current_latest, i64::MIN);
            if age >= 2 * REMEMBER_MS {
                // Nothing went in for a lifetime: both generations are old enough to go.
                seen.forgotten_latest = seen.forgotten_latest.max(seen.previous_latest);
                seen.previous = HashSet::default();
                seen.previous_latest = i64::MIN;
            }
            seen.started_at = now_ms;
        }
        // Only binds after an early start: what a generation of a lifetime ago held is too old
        // to be accepted anyway.
        if issued_at_ms <= seen.forgotten_latest {
            metrics::counter!("baton_dpop_proofs_too_old_for_capacity_total").increment(1);
            return Err(super::proof::refuse("iat is too old for this server's load (see DPOP_REPLAY_CAPACITY)"));
        }
        // While a shard is over its capacity, a proof dated ahead of now is refused: forgotten,
        // it would raise that bound for everybody else's proofs of the next seconds.
        if now_ms - seen.rolled_early_at < REMEMBER_MS && issued_at_ms > now_ms {
            return Err(super::proof::refuse("iat is in the future, and this server is at its load's limit"));
        }
        if seen.previous.contains(&hash) || !seen.current.insert(hash) {
            return Ok(false);
        }
        seen.current_latest = seen.current_latest.max(issued_at_ms);
        Ok(true)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|g| g.current.len() + g.previous.len()).unwrap_or(0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof made just now, at `now`: new (`true`) or a replay (`false`).
    fn fresh(seen: &MemoryReplays, id: &str, now: i64) -> bool {
        seen.first_use(id, now, now).unwrap()
    }

    #[test]
    fn replays_are_caught_for_a_whole_lifetime_and_memory_follows_the_rate() {
        let seen = MemoryReplays::new(100_000_000);
        let t0 = 1_000_000_000;
        assert!(fresh(&seen, "a", t0));
        assert!(!fresh(&seen, "a", t0), "a replay");
        // Until its last accepted moment, across a generation change of its shard.
        for later in [1, REMEMBER_MS / 2, REMEMBER_MS, REMEMBER_MS + 1, 2 * REMEMBER_MS - 1] {
            assert!(fresh(&seen, &format!("other-{later}"), t0 + later));
            assert!(!seen.first_use("a", t0, t0 + later).unwrap(), "still a replay {later} ms on");
        }
        // 1,000 proofs a second for ten lifetimes: no more than two lifetimes' worth are kept.
        let seen = MemoryReplays::new(100_000_000);
        let per_ms = 1;
        for ms in 0..10 * REMEMBER_MS {
            for i in 0..per_ms {
                assert!(fresh(&seen, &format!("{ms}-{i}"), t0 + ms));
            }
        }
        let kept = seen.len() as i64;
        assert!(kept <= 2 * REMEMBER_MS * per_ms + SHARDS as i64, "{kept} proofs kept");
        assert!(kept >= REMEMBER_MS * per_ms, "{kept}: at least one lifetime's");
    }

    #[test]
    fn past_its_capacity_memory_stays_bounded_and_no_replay_gets_through() {
        // Room for 3,200 proofs; 100 a millisecond for ten seconds is a million.
        let seen = MemoryReplays::new(3_200);
        let t0 = 1_000_000_000;
        let mut refused_as_old = 0;
        for ms in 0..10_000 {
            let now = t0 + ms;
            for i in 0..100 {
                assert!(fresh(&seen, &format!("{ms}-{i}"), now), "a new proof made now is accepted");
            }
            // Every 100 ms: a replay of a proof from 50 ms ago, and a new proof made 2 s ago.
            if ms % 100 == 50 && ms > 2_000 {
                let replayed = seen.first_use(&format!("{}-7", ms - 50), now - 50, now);
                assert!(!matches!(replayed, Ok(true)), "a replay was let through at {ms} ms");
                if seen.first_use(&format!("late-{ms}"), now - 2_000, now).is_err() {
                    refused_as_old += 1;
                }
            }
            assert!(seen.len() <= 3_200 + SHARDS, "{} kept", seen.len());
        }
        assert!(refused_as_old > 0, "past its capacity, the window for a proof's age narrows");
        // Back to a quiet rate a lifetime later: the whole minute is accepted again.
        let later = t0 + 10_000 + 2 * REMEMBER_MS;
        assert!(seen.first_use("after", later - 59_000, later).unwrap());
    }

    #[test]
    fn a_proof_being_recorded_holds_up_no_other_shard() {
        // One shard busy (its lock held, as by a caller in the middle of an insert): proofs that
        // belong to the other shards are recorded meanwhile, not queued behind it.
        let seen = std::sync::Arc::new(MemoryReplays::new(1_000_000));
        let shard = |id: &str| shard_of(seen.hasher.hash_one(id));
        let busy = shard("busy");
        let held = seen.shards[busy].lock().unwrap();
        let others: Vec<String> = (0..64).map(|i| format!("proof-{i}")).filter(|id| shard(id) != busy).collect();
        assert!(others.len() > 32, "most proofs go elsewhere: {} of 64", others.len());
        let (done, finished) = std::sync::mpsc::channel();
        let writer = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let recorded = others.iter().all(|id| fresh(&seen, id, 1_000_000_000));
                let _ = done.send(recorded);
            })
        };
        let recorded = finished.recv_timeout(std::time::Duration::from_secs(10));
        drop(held);
        writer.join().unwrap();
        assert_eq!(recorded, Ok(true), "blocked behind another shard's lock");
    }
}
