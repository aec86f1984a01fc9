//! Every write of this process goes through one [`Writer`].
//!
//! SQLite has one writer at a time; its busy handler makes the others sleep and retry, which turns
//! contention into 100 ms stalls. Queueing the writes of this process here instead keeps them short
//! ([`Writer::begin`], [`Writer::execute`]). PostgreSQL's row locks do this properly: no queue there.
//!
//! Refreshes are the bulk of the writes, and each must be durable before it is answered (a client
//! that got a token holds nothing else). One commit (one fsync) per refresh caps them at the disk's
//! fsync rate, so they are committed in groups ([`Writer::execute_grouped`]): one task applies
//! every statement waiting, in one transaction, and answers each when the group is durable. A
//! group grows with the load: alone, a statement waits for nobody. Each statement is a round trip
//! to the database (on SQLite, to sqlx's thread for the connection: two context switches), so the
//! commonest job, a refresh's rotation, is one of a kind that merges into a few statements for
//! the whole group ([`Merge`], [`Writer::merged`]). The writer knows only the trait.

use super::db::{Db, Statement};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex, MutexGuard};

/// Jobs of one kind that a group commits as a few statements for all of them, not one each.
pub(crate) trait Merge: Send + Sync + 'static {
    /// The statements that apply every job of `batch`.
    fn statements(batch: &[&Self]) -> Vec<Statement>;
    /// What tells this job apart from the others of its group.
    fn key(&self) -> &str;
    /// The key of the job a row returned by those statements belongs to.
    fn key_of(row: &sqlx::any::AnyRow) -> Result<String, sqlx::Error>;
}

/// Builds the statements of one job (one transaction's worth: all or none of them apply); called
/// again if its group fails and it is retried alone.
type Build = Box<dyn Fn() -> Vec<Statement> + Send + Sync>;
/// The rows each statement returned (`RETURNING …`; none without).
pub(crate) type Returned = Vec<Vec<sqlx::any::AnyRow>>;

/// The most statements one group commits.
const MAX_GROUP: usize = 256;

/// A place at the head of the SQLite write queue, held until the write is done; `None` on PostgreSQL.
type WriteTurn<'a> = Option<MutexGuard<'a, ()>>;

pub(crate) struct Writer<M: Merge> {
    shared: Arc<Shared>,
    group: mpsc::Sender<Job<M>>,
}

struct Shared {
    db: Db,
    sqlite_queue: Option<Mutex<()>>,
}

struct Job<M> {
    work: Work<M>,
    done: oneshot::Sender<Result<Returned, sqlx::Error>>,
}

enum Work<M> {
    Statements(Build),
    /// Merged with the group's other jobs of its kind (see [`Merge`]).
    Merged(M),
}

/// A write transaction together with its place in the write queue: committing, rolling back or
/// dropping it gives up both. While one is open, the same task must not start another write.
pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: WriteTurn<'a>,
}

impl<M: Merge> Writer<M> {
    /// Starts the group-commit task; it ends when the writer is dropped.
    pub(crate) fn new(db: Db, sqlite: bool) -> Self {
        let shared = Arc::new(Shared { db, sqlite_queue: sqlite.then(|| Mutex::new(())) });
        let (group, jobs) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(commit_groups(shared.clone(), jobs));
        Self { shared, group }
    }

    /// Begins a write transaction. On SQLite it first waits for the writes queued before it, then
    /// takes the write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// before it writes fails at once with "database is locked" when another connection (another
    /// process, say) committed in between, whatever the busy timeout.
    pub(crate) async fn begin(&self) -> Result<WriteTx<'_>, sqlx::Error> {
        self.shared.begin(true).await
    }

    /// Runs one writing statement in its own transaction, queued like [`Self::begin`].
    pub(crate) async fn execute<'q>(&self, query: Query<'q, sqlx::Any, AnyArguments<'q>>) -> Result<u64, sqlx::Error> {
        let _turn = self.shared.turn().await;
        Ok(query.execute(&self.shared.db).await?.rows_affected())
    }

    /// Runs the statements `build` makes in a transaction shared with the others waiting; the
    /// rows each returned, once the whole group is committed.
    pub(crate) async fn execute_grouped(
        &self,
        build: impl Fn() -> Vec<Statement> + Send + Sync + 'static,
    ) -> Result<Returned, sqlx::Error> {
        self.send(Work::Statements(Box::new(build))).await
    }

    /// A job merged with the others of its kind in the group, committed like
    /// [`Self::execute_grouped`]: the rows it owns (as one statement's rows), or none.
    pub(crate) async fn merged(&self, job: M) -> Result<Returned, sqlx::Error> {
        self.send(Work::Merged(job)).await
    }

    async fn send(&self, work: Work<M>) -> Result<Returned, sqlx::Error> {
        let (done, answer) = oneshot::channel();
        self.group.send(Job { work, done }).await.map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

impl Shared {
    async fn turn(&self) -> WriteTurn<'_> {
        match &self.sqlite_queue {
            Some(queue) => Some(queue.lock().await),
            None => None,
        }
    }

    /// `detach` for a request's transaction: sqlx 0.8's BEGIN is not cancel-safe on PostgreSQL
    /// (transact-rs/sqlx#4393), and a future dropped during its round trip (a request whose client
    /// hung up) leaves the pooled connection inside a transaction that nobody ends. In a task of
    /// its own it finishes; if nobody waits any more, the transaction is dropped there and rolls
    /// back. The group-commit task is never cancelled, and saves the hop.
    async fn begin(&self, detach: bool) -> Result<WriteTx<'_>, sqlx::Error> {
        let turn = self.turn().await;
        let (db, immediate) = (self.db.clone(), turn.is_some());
        let begin = async move {
            match immediate {
                true => db.begin_with("BEGIN IMMEDIATE").await,
                false => db.begin().await,
            }
        };
        let tx = if detach { detached(begin).await? } else { begin.await? };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Applies `jobs` in one transaction: what each one's statements returned, or the first error.
    /// Merged jobs go last: concurrent with the rest of the group, any order is one the clients
    /// could have seen.
    async fn apply<M: Merge>(&self, jobs: &[Job<M>]) -> Result<Vec<Returned>, sqlx::Error> {
        let mut tx = self.begin(false).await?;
        let mut returned = Vec::with_capacity(jobs.len());
        let mut merged = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let mut rows = Returned::new();
            match &job.work {
                Work::Statements(build) => {
                    for statement in build() {
                        rows.push(statement.fetch_all(&mut *tx).await?);
                    }
                }
                Work::Merged(job) => {
                    merged.push((i, job));
                    rows.push(Vec::new());
                }
            }
            returned.push(rows);
        }
        if !merged.is_empty() {
            let batch: Vec<&M> = merged.iter().map(|(_, job)| *job).collect();
            let owner: std::collections::HashMap<&str, usize> = merged.iter().map(|(i, job)| (job.key(), *i)).collect();
            for statement in M::statements(&batch) {
                for row in statement.fetch_all(&mut *tx).await? {
                    if let Some(&i) = owner.get(M::key_of(&row)?.as_str()) {
                        returned[i][0].push(row);
                    }
                }
            }
        }
        tx.tx.commit().await?;
        Ok(returned)
    }
}

async fn commit_groups<M: Merge>(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job<M>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        metrics::histogram!("baton_db_commit_group_size").record(group.len() as f64);
        match shared.apply(&group).await {
            Ok(returned) => {
                for (job, rows) in group.drain(..).zip(returned) {
                    let _ = job.done.send(Ok(rows));
                }
            }
            // One statement failed (a constraint, a deadlock with another instance): the others
            // are not to blame. Each is retried alone and gets its own answer.
            Err(sqlx::Error::Database(_)) if group.len() > 1 => {
                for job in group.drain(..) {
                    let result = shared.apply(std::slice::from_ref(&job)).await.map(|mut returned| returned.remove(0));
                    let _ = job.done.send(result);
                }
            }
            // The database is unreachable or busy: the same for all of them.
            Err(first) => {
                let reason = first.to_string();
                let mut drained = group.drain(..);
                if let Some(job) = drained.next() {
                    let _ = job.done.send(Err(first));
                }
                for job in drained {
                    let _ = job.done.send(Err(sqlx::Error::Io(std::io::Error::other(reason.clone()))));
                }
            }
        }
    }
}

impl WriteTx<'_> {
    /// Detached like BEGIN: a COMMIT cut off by a hang-up would be followed by a ROLLBACK of a
    /// transaction that no longer exists.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        let tx = self.tx;
        detached(tx.commit()).await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Runs `work` to its end even if the caller stops waiting; a task that panicked is a failure
/// like a lost connection (a 503).
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, sqlx::Error> {
    tokio::spawn(work).await.unwrap_or(Err(sqlx::Error::WorkerCrashed))
}
