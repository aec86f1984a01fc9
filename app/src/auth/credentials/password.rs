//! Argon2id hashing off the async executor, with bounded concurrency.
//!
//! Each hash takes ~20 MiB and tens of milliseconds of one core. Running it on the executor would
//! stall every other request; running unboundedly would let a login flood exhaust memory. So
//! hashes run on threads of their own, at most `max_concurrent` at once, and a caller that cannot
//! get a turn within a few seconds gets a 503 instead of queueing forever. Those threads run at a
//! lower OS priority (nice 19, the lowest) than the executor: a login flood may use every core left
//! idle, yet a protected call or a refresh never waits behind a hash for its CPU.
//!
//! Waiting callers stand in two lanes, each first come first served: logins of a known user from
//! where they logged in before ([`Lane::Known`]) go first, so a flood of guesses and signups from
//! many addresses cannot lock people out who have been in before; but while both lanes wait, the
//! turns alternate, so a stream of known logins cannot starve the other lane either (measured:
//! strict priority left some logins of a 32-connection burst waiting 4 s, eight times the rest).

use crate::auth::settings::Argon2Settings;
use crate::domain::Password;
use crate::error::AppError;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

const QUEUE_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    turns: Arc<Turns>,
    threads: Arc<HashThreads>,
    /// Verified against when the user does not exist, so that answer takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

/// What checking a password against a stored hash found.
pub struct PasswordCheck {
    pub ok: bool,
    /// The stored hash used other parameters than the configured ones.
    pub needs_rehash: bool,
}

impl PasswordHasher {
    pub async fn new(settings: Argon2Settings, max_concurrent: usize) -> Result<Self, AppError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(AppError::internal)?;
        let mut hasher = Self {
            params,
            turns: Arc::new(Turns { max: max_concurrent.max(1), state: Mutex::default() }),
            threads: Arc::new(HashThreads::start(max_concurrent.max(1))),
            dummy_hash: Arc::from(""),
        };
        let random = uuid::Uuid::new_v4().to_string();
        hasher.dummy_hash = hasher.hash(&Password::parse(&random)?, Lane::Other).await?.into();
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: &Password, lane: Lane) -> Result<String, AppError> {
        let password = password.clone();
        let params = self.params.clone();
        self.run_blocking(lane, move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Self::argon2(params)
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(AppError::internal)
        })
        .await
    }

    /// `stored` is `None` for an unknown user: the dummy hash is verified instead, and fails.
    #[tracing::instrument(skip_all)]
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
        lane: Lane,
    ) -> Result<PasswordCheck, AppError> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.clone();
        let params = self.params.clone();
        self.run_blocking(lane, move || {
            let parsed = PasswordHash::new(&stored).map_err(AppError::internal)?;
            let ok = Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok();
            let current = Params::try_from(&parsed).ok();
            let needs_rehash = parsed.algorithm != argon2::ARGON2ID_IDENT
                || current.is_none_or(|p| {
                    p.m_cost() != params.m_cost() || p.t_cost() != params.t_cost() || p.p_cost() != params.p_cost()
                });
            Ok(PasswordCheck { ok: ok && known, needs_rehash })
        })
        .await
    }

    async fn run_blocking<T: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let turn = Turns::take(&self.turns, lane).await.ok_or(AppError::Busy { retry_after: 2 })?;
        let (done, result) = oneshot::channel();
        self.threads.run(Box::new(move || {
            // Held until the hash is done, even if the request that asked was cancelled meanwhile,
            // and given back before the answer: whoever reads it may count turns.
            let result = work();
            drop(turn);
            let _ = done.send(result);
        }))?;
        result.await.map_err(AppError::internal)?
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One thread per hashing turn, at nice 19. They end when the hasher is dropped.
struct HashThreads {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

impl HashThreads {
    fn start(count: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                lower_priority();
                // A turn is taken before a job is sent, so a job never waits here for long.
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = next else { return };
                    job();
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a hashing thread");
            }
        }
        Self { jobs: Mutex::new(jobs) }
    }

    fn run(&self, job: Job) -> Result<(), AppError> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).map_err(AppError::internal)
    }
}

/// Nice 19 for the calling thread (Linux sets it per thread): when both want a core, a request
/// thread gets about 70 times a hash's share, and preempts it sooner (measured: the secret's p99
/// during a login flood 5.2 ms against 6.0 at nice 10, the same as a bare hello's in that flood).
/// Not `SCHED_IDLE` (5.0 ms): it would let any busy process on the host, a database beside
/// Baton say, stop logins altogether, where nice 19 still leaves them a share.
// The one call outside Rust's safety: libc has no safe wrapper for a thread's priority.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority with this thread's own id changes only this thread's nice value.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
}

/// Which line a hash waits in when all hashing turns are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A login of an account with a recent session from this address and no failure since.
    Known,
    /// Everything else: unknown users, new addresses, signups.
    Other,
}

/// At most `max` hashes at once; a finished one hands its turn to the longest-waiting caller of
/// the known lane, else of the other lane, but never to the known lane twice in a row while the
/// other lane waits.
struct Turns {
    max: usize,
    state: Mutex<TurnState>,
}

#[derive(Default)]
struct TurnState {
    running: usize,
    known: VecDeque<oneshot::Sender<()>>,
    other: VecDeque<oneshot::Sender<()>>,
    /// The last turn handed over went to the known lane: the other lane's turn, if it waits.
    known_went_last: bool,
}

/// A running hash's turn, handed on when dropped.
struct Turn(Arc<Turns>);

impl Turns {
    /// A turn, or `None` after [`QUEUE_WAIT`] in line.
    async fn take(this: &Arc<Self>, lane: Lane) -> Option<Turn> {
        let mut handed = {
            let mut state = this.lock();
            if state.running < this.max {
                state.running += 1;
                metrics::histogram!("baton_hash_wait_seconds").record(0.0);
                return Some(Turn(this.clone()));
            }
            let (tx, rx) = oneshot::channel();
            match lane {
                Lane::Known => state.known.push_back(tx),
                Lane::Other => state.other.push_back(tx),
            }
            state.report_depth();
            rx
        };
        let started = std::time::Instant::now();
        let turn = match tokio::time::timeout(QUEUE_WAIT, &mut handed).await {
            Ok(Ok(())) => Some(Turn(this.clone())),
            _ => {
                // Closing refuses later hand-overs; one that arrived just now is ours to use.
                handed.close();
                handed.try_recv().ok().map(|()| Turn(this.clone()))
            }
        };
        metrics::histogram!("baton_hash_wait_seconds").record(started.elapsed().as_secs_f64());
        if turn.is_none() {
            // Given up: no longer waiting, though its closed sender stays queued until skipped.
            metrics::counter!("baton_hash_queue_timeouts_total").increment(1);
        }
        turn
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TurnState {
    /// The next waiter to hand a turn to, and whether it stood in the known lane.
    fn next_waiter(&mut self) -> Option<(oneshot::Sender<()>, bool)> {
        let others_turn = self.known_went_last && !self.other.is_empty();
        if !others_turn {
            if let Some(next) = self.known.pop_front() {
                return Some((next, true));
            }
        }
        self.other.pop_front().map(|next| (next, false))
    }

    /// `baton_hash_queue_depth`: callers waiting for a turn (and some that gave up, until skipped).
    fn report_depth(&self) {
        metrics::gauge!("baton_hash_queue_depth").set((self.known.len() + self.other.len()) as f64);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        while let Some((next, known)) = state.next_waiter() {
            // A waiter that gave up has closed its end: try the next one.
            if next.send(()).is_ok() {
                state.known_went_last = known;
                state.report_depth();
                return;
            }
        }
        state.report_depth();
        state.running -= 1;
        // Nobody waits: the next queue starts with the known lane again.
        state.known_went_last = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(memory_kib: u32) -> Argon2Settings {
        Argon2Settings { memory_kib, iterations: 1, parallelism: 1 }
    }

    #[tokio::test]
    async fn hashes_verify_and_report_parameter_changes() {
        let old = PasswordHasher::new(settings(8 * 1024), 2).await.unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let wrong = Password::parse("incorrect horse battery").unwrap();
        let hash = old.hash(&pw, Lane::Other).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        let v = old.verify(&pw, Some(&hash), Lane::Other).await.unwrap();
        assert!(v.ok && !v.needs_rehash);
        assert!(!old.verify(&wrong, Some(&hash), Lane::Known).await.unwrap().ok);
        assert!(!old.verify(&pw, None, Lane::Other).await.unwrap().ok, "unknown users never verify");

        let new = PasswordHasher::new(settings(9 * 1024), 2).await.unwrap();
        let v = new.verify(&pw, Some(&hash), Lane::Other).await.unwrap();
        assert!(v.ok && v.needs_rehash, "old parameters still verify and ask for a rehash");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn hashes_run_at_the_lowest_priority() {
        let threads = HashThreads::start(1);
        let (tx, rx) = std::sync::mpsc::channel();
        threads
            .run(Box::new(move || {
                // SAFETY: reads this thread's own nice value.
                #[allow(unsafe_code)]
                let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
                let _ = tx.send(nice);
            }))
            .unwrap();
        assert_eq!(rx.recv().unwrap(), 19);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn known_logins_jump_the_line() {
        let hasher = PasswordHasher::new(settings(8 * 1024), 1).await.unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let run = |lane: Lane, label: &'static str| {
            let (hasher, pw, order) = (hasher.clone(), pw.clone(), order.clone());
            tokio::spawn(async move {
                hasher.hash(&pw, lane).await.unwrap();
                order.lock().unwrap().push(label);
            })
        };
        let queued = |n: usize| {
            let turns = hasher.turns.clone();
            async move {
                while {
                    let state = turns.lock();
                    state.known.len() + state.other.len() < n
                } {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        // The only turn is taken; four others queue, then one known login.
        let held = Turns::take(&hasher.turns, Lane::Other).await.unwrap();
        let mut tasks: Vec<_> = (0..4).map(|_| run(Lane::Other, "other")).collect();
        queued(4).await;
        tasks.push(run(Lane::Known, "known"));
        queued(5).await;
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order[0], "known", "{order:?}");
        assert_eq!(hasher.turns.lock().running, 0, "every turn was given back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn known_logins_cannot_starve_the_other_lane() {
        // Four others wait, then four known logins arrive: the known lane goes first, but the
        // turns alternate while both wait, and each lane keeps its own order.
        let hasher = PasswordHasher::new(settings(8 * 1024), 1).await.unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = Turns::take(&hasher.turns, Lane::Other).await.unwrap();
        let mut tasks = Vec::new();
        for (lane, label) in [(Lane::Other, "o"), (Lane::Known, "k")] {
            for i in 0..4 {
                let (task_hasher, pw, order) = (hasher.clone(), pw.clone(), order.clone());
                let queued = tasks.len() + 1;
                tasks.push(tokio::spawn(async move {
                    task_hasher.hash(&pw, lane).await.unwrap();
                    order.lock().unwrap().push(format!("{label}{i}"));
                }));
                while {
                    let state = hasher.turns.lock();
                    state.known.len() + state.other.len() < queued
                } {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().join(" ");
        assert_eq!(order, "k0 o0 k1 o1 k2 o2 k3 o3");
    }
}
