//! The SQLite writer: one connection on its own thread, committing the writes of concurrent
//! imports together (group commit).
//!
//! SQLite allows one writer at a time, and with `synchronous = FULL` every commit waits for an
//! fsync of the WAL. One transaction per write caps the store at one write per fsync, however
//! many imports wait. Here every write is a job sent to one thread, which takes all the jobs
//! that queued up while it was busy, runs them in one transaction (each inside its own
//! `SAVEPOINT`, so a failing job rolls back only its own changes) and commits them with one
//! fsync. A job's caller is answered only after the commit: "written" means durable, as before.
//! The more imports arrive at once, the more share a commit; a lone write costs what it did.
//!
//! The connection is a plain `rusqlite` one on a dedicated thread, not sqlx's: sqlx runs each
//! SQLite connection on a worker thread and hands every statement to it and every result back,
//! two thread wake-ups per statement (issue 10's profile: most of the CPU went there). Here a
//! batch costs one wake-up of this thread and one reply per job. sqlx and rusqlite link the same
//! SQLite library (libsqlite3-sys, bundled), so this connection and sqlx's readers share the
//! file's locks and WAL index as any two connections of one process do.
//!
//! The queue is bounded: when the writer falls behind, callers wait to enqueue (backpressure)
//! instead of piling up memory.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};
use vorgang_core::StoreError;

use crate::BUSY_TIMEOUT;

/// Most jobs in one transaction: bounds how long one commit holds the jobs of the last ones.
const MAX_BATCH: usize = 512;

/// Jobs waiting for the writer at most; beyond, [`Writer::write`] waits for room.
const QUEUE_CAPACITY: usize = 2048;

/// Where the writer's connection goes.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// A database file (WAL, already created and migrated).
    File(PathBuf),
    /// A shared in-memory database of SQLite's `memdb` VFS, by name (`/…`).
    Memory(String),
}

/// A handle to the writer thread. Cheap to clone; all clones feed the same thread.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Message>,
    /// Transactions committed (tests check that concurrent writes share them).
    #[cfg(test)]
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

enum Message {
    /// A write, run in the next batch.
    Write(Box<dyn Job>),
    /// A WAL checkpoint, run between batches (not inside a transaction).
    Checkpoint(oneshot::Sender<Result<(), StoreError>>),
    /// Stop after the jobs queued before this; checkpoint; answer when the connection is closed.
    Close(oneshot::Sender<()>),
}

/// A write and its caller.
trait Job: Send {
    /// Runs the write inside the batch's transaction (and its own savepoint); whether it
    /// succeeded (a failed one is rolled back to its savepoint).
    fn run(&mut self, connection: &Connection) -> bool;

    /// Answers the caller: the write's own error, else the batch's outcome.
    fn finish(self: Box<Self>, batch: Result<(), &StoreError>);
}

struct Pending<T, F> {
    /// The operation, a fixed phrase: names it in an error of its batch.
    context: &'static str,
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(connection);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, batch: Result<(), &StoreError>) {
        let result = match (self.result, batch) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(error)) => Err(copy(self.context, error)),
            (None, Ok(())) => Err(StoreError::Unavailable(
                "write: not run by the database writer".to_owned(),
            )),
        };
        // The caller may have given up waiting (its request was dropped): nothing to answer.
        let _ = self.reply.send(result);
    }
}

/// The error of a failed batch for one of its jobs, named by the job's `context`.
/// (`StoreError` is not `Clone`: its variants carry only a message.)
fn copy(context: &str, error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(message) => {
            StoreError::Unavailable(format!("{context}: {message}"))
        }
        StoreError::Corrupt(message) => StoreError::Corrupt(format!("{context}: {message}")),
        StoreError::Conflict(message) => StoreError::Conflict(format!("{context}: {message}")),
    }
}

fn stopped(context: &str) -> StoreError {
    StoreError::Unavailable(format!("{context}: the database writer is closed"))
}

impl Writer {
    /// Opens the writer's connection to `target` and starts its thread.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the database cannot be opened or configured.
    pub(super) fn start(target: &Target, synchronous: &'static str) -> Result<Self, StoreError> {
        const CONTEXT: &str = "open SQLite writer";
        let map = |err: rusqlite::Error| map_rusqlite(CONTEXT, &err);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let connection = match target {
            Target::File(path) => Connection::open_with_flags(path, flags).map_err(map)?,
            Target::Memory(name) => {
                Connection::open_with_flags_and_vfs(Path::new(name), flags, c"memdb")
                    .map_err(map)?
            }
        };
        connection.busy_timeout(BUSY_TIMEOUT).map_err(map)?;
        // Every statement the writer runs stays prepared (about 15 of them).
        connection.set_prepared_statement_cache_capacity(32);
        // The same settings as every other connection of the store (see `SqliteStore`).
        connection
            .execute_batch(&format!(
                "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; \
                 PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;"
            ))
            .map_err(map)?;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        #[cfg(test)]
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = Counter {
            #[cfg(test)]
            commits: commits.clone(),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || run(&connection, receiver, &counter))
            .map_err(|err| {
                StoreError::Unavailable(format!("{CONTEXT}: thread not started ({:?})", err.kind()))
            })?;
        Ok(Self {
            queue,
            #[cfg(test)]
            commits,
        })
    }

    /// Runs `work` in the writer's next transaction and answers once that committed (or
    /// failed). `work` runs on the writer thread: it must only run statements.
    ///
    /// # Errors
    /// `work`'s own error; the batch's error if the transaction could not be begun or
    /// committed; [`StoreError::Unavailable`] after [`Self::close`].
    pub(super) async fn write<T, F>(&self, context: &'static str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            context,
            work: Some(work),
            result: None,
            reply,
        });
        self.queue
            .send(Message::Write(job))
            .await
            .map_err(|_| stopped(context))?;
        answer.await.map_err(|_| stopped(context))?
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` between two batches.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the checkpoint failed or could not complete (readers of
    /// old WAL frames), or the writer is closed.
    pub(super) async fn checkpoint(&self) -> Result<(), StoreError> {
        const CONTEXT: &str = "checkpoint WAL";
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Message::Checkpoint(reply))
            .await
            .map_err(|_| stopped(CONTEXT))?;
        answer.await.map_err(|_| stopped(CONTEXT))?
    }

    /// Runs what is queued, checkpoints the WAL, closes the connection and stops the thread;
    /// later writes fail with [`StoreError::Unavailable`]. Returns when the connection is closed
    /// (at once if it already is).
    pub(super) async fn close(&self) {
        let (reply, closed) = oneshot::channel();
        if self.queue.send(Message::Close(reply)).await.is_ok() {
            let _ = closed.await;
        }
    }

    /// Whether the writer is closed.
    pub(super) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// What the writer thread counts (only under test).
struct Counter {
    #[cfg(test)]
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Counter {
    #[allow(clippy::unused_self)] // counts only under test
    fn committed(&self) {
        #[cfg(test)]
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The writer thread: batches until the queue closes or a `Close` arrives.
fn run(connection: &Connection, mut queue: mpsc::Receiver<Message>, counter: &Counter) {
    let mut closing = None;
    let mut next = queue.blocking_recv();
    while let Some(message) = next.take() {
        match message {
            Message::Write(job) => next = batch(connection, job, &mut queue, counter),
            Message::Checkpoint(reply) => {
                let _ = reply.send(checkpoint(connection));
            }
            Message::Close(reply) => {
                closing = Some(reply);
                break;
            }
        }
        if next.is_none() {
            next = queue.blocking_recv();
        }
    }
    // Nothing is accepted any more; whatever raced the close is refused.
    queue.close();
    while let Ok(message) = queue.try_recv() {
        match message {
            Message::Write(job) => job.finish(Err(&StoreError::Unavailable(
                "the database writer is closed".to_owned(),
            ))),
            Message::Checkpoint(reply) => {
                let _ = reply.send(Err(stopped("checkpoint WAL")));
            }
            Message::Close(reply) => {
                let _ = reply.send(());
            }
        }
    }
    if let Err(error) = checkpoint(connection) {
        tracing::warn!(error = %error, "WAL checkpoint at close failed");
    }
    if let Some(reply) = closing {
        let _ = reply.send(());
    }
}

/// One transaction: begins it, runs `first` and every write that arrives while the
/// transaction is open (each in its own savepoint), until the queue is empty (twice: the thread
/// yields once in between, so that callers about to enqueue can), [`MAX_BATCH`] writes ran or
/// another message comes; commits and answers every caller. Returns that other message, if
/// any.
///
/// Running the writes as they arrive, rather than collecting them first, lets the batch grow
/// while the thread works: the more imports arrive at once, the more share one commit.
fn batch(
    connection: &Connection,
    first: Box<dyn Job>,
    queue: &mut mpsc::Receiver<Message>,
    counter: &Counter,
) -> Option<Message> {
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    // IMMEDIATE takes the write lock at once (waiting up to the busy timeout for another
    // process or sqlx's connection), so no write fails halfway with SQLITE_BUSY.
    if let Err(error) = statement(connection, "BEGIN IMMEDIATE", "begin write") {
        first.finish(Err(&error));
        return None;
    }
    let mut job = first;
    let mut yielded = false;
    let mut left = None;
    let outcome = loop {
        let ran =
            statement(connection, "SAVEPOINT job", "begin write").map(|()| job.run(connection));
        jobs.push(job);
        let ended = match ran {
            Ok(true) => statement(connection, "RELEASE job", "write"),
            Ok(false) => statement(connection, "ROLLBACK TO job", "write")
                .and_then(|()| statement(connection, "RELEASE job", "write")),
            Err(error) => Err(error),
        };
        // Some errors (I/O, disk full) make SQLite roll the whole transaction back: every
        // write of the batch is lost, including those that succeeded.
        if connection.is_autocommit() {
            break Err(ended.err().unwrap_or_else(|| {
                StoreError::Unavailable("write: the database rolled the transaction back".into())
            }));
        }
        if let Err(error) = ended {
            rollback(connection);
            break Err(error);
        }
        if jobs.len() >= MAX_BATCH {
            break commit(connection);
        }
        let arrived = match queue.try_recv() {
            Ok(message) => Some(message),
            Err(_) if !yielded => {
                yielded = true;
                std::thread::yield_now();
                queue.try_recv().ok()
            }
            Err(_) => None,
        };
        match arrived {
            Some(Message::Write(next)) => job = next,
            other => {
                left = other;
                break commit(connection);
            }
        }
    };
    if outcome.is_ok() {
        counter.committed();
    }
    for job in jobs {
        job.finish(outcome.as_ref().copied());
    }
    left
}

/// Commits the batch's transaction (rolled back if the commit fails).
fn commit(connection: &Connection) -> Result<(), StoreError> {
    let committed = statement(connection, "COMMIT", "commit write");
    if committed.is_err() {
        rollback(connection);
    }
    committed
}

/// Rolls back the batch's transaction if it is still open.
fn rollback(connection: &Connection) {
    if !connection.is_autocommit()
        && let Err(error) = statement(connection, "ROLLBACK", "roll back write")
    {
        tracing::error!(error = %error, "could not roll back a failed batch of writes");
    }
}

/// Runs one fixed statement (prepared once, cached).
fn statement(connection: &Connection, sql: &str, context: &'static str) -> Result<(), StoreError> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(|_| ())
        .map_err(|err| map_rusqlite(context, &err))
}

/// Copies every page of the WAL into the database file, then truncates the WAL to zero bytes.
fn checkpoint(connection: &Connection) -> Result<(), StoreError> {
    const CONTEXT: &str = "checkpoint WAL";
    // (busy, frames in the WAL, frames checkpointed); busy = 1: readers kept it from
    // completing. An in-memory or non-WAL database answers (0, -1, -1).
    let busy: i64 = connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(|err| map_rusqlite(CONTEXT, &err))?;
    if busy != 0 {
        return Err(StoreError::Unavailable(format!(
            "{CONTEXT}: readers kept the checkpoint from completing; retried at the next scrub"
        )));
    }
    Ok(())
}

/// Maps a rusqlite error of the operation `context` (a fixed phrase) like `map_sqlx` maps
/// sqlx's: the SQLite result code, never SQLite's message (it may quote a value).
pub(super) fn map_rusqlite(context: &'static str, err: &rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                StoreError::Conflict(format!("{context}: unique constraint violated"))
            }
            code => StoreError::Unavailable(format!("{context}: database error (code {code})")),
        },
        rusqlite::Error::FromSqlConversionFailure(index, ..)
        | rusqlite::Error::IntegralValueOutOfRange(index, _)
        | rusqlite::Error::InvalidColumnType(index, ..) => {
            StoreError::Corrupt(format!("{context}: cannot decode column {index}"))
        }
        rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::InvalidColumnIndex(_)
        | rusqlite::Error::InvalidColumnName(_) => {
            StoreError::Corrupt(format!("{context}: cannot decode a row"))
        }
        _ => StoreError::Unavailable(format!("{context}: database error")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::Ordering;

    use super::*;

    /// A writer on a fresh shared in-memory database with table `t`, and a second connection
    /// to look at it.
    fn writer() -> (Writer, Connection) {
        static DATABASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "/writer-test-{}-{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI;
        let observer = Connection::open_with_flags_and_vfs(&name, flags, c"memdb").unwrap();
        observer
            .execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                 CREATE TABLE t (id INTEGER PRIMARY KEY, \
                     parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
            )
            .unwrap();
        (
            Writer::start(&Target::Memory(name), "FULL").unwrap(),
            observer,
        )
    }

    fn insert(id: i64, parent: Option<i64>) -> impl FnOnce(&Connection) -> Result<(), StoreError> {
        move |connection: &Connection| {
            connection
                .execute(
                    "INSERT INTO t (id, parent) VALUES (?1, ?2)",
                    params![id, parent],
                )
                .map(|_| ())
                .map_err(|err| map_rusqlite("insert t", &err))
        }
    }

    fn ids(observer: &Connection) -> Vec<i64> {
        let mut statement = observer.prepare("SELECT id FROM t ORDER BY id").unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    use rusqlite::params;

    /// Holds the writer thread inside a write (the first of a batch) until released: what
    /// queues meanwhile joins its transaction.
    async fn hold(
        writer: &Writer,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), StoreError>>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = oneshot::channel::<()>();
        let holder = writer.clone();
        let task = tokio::spawn(async move {
            holder
                .write("hold", move |_| {
                    let _ = entered.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        inside.await.unwrap();
        (release, task)
    }

    /// Waits until the writer's queue holds `n` messages.
    async fn queued(writer: &Writer, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while writer.queue.max_capacity() - writer.queue.capacity() < n {
            assert!(std::time::Instant::now() < deadline, "never queued");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// One write of a test.
    type Write = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

    /// Queues `writes` in this order while the writer is held, releases it, and returns the
    /// results in the same order, the holding write's first.
    async fn batch_of(writer: &Writer, writes: Vec<Write>) -> Vec<Result<(), StoreError>> {
        let (release, holder) = hold(writer).await;
        let mut tasks = Vec::new();
        for (n, write) in writes.into_iter().enumerate() {
            let writer_clone = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer_clone.write("insert t", write).await
            }));
            queued(writer, n + 1).await;
        }
        release.send(()).unwrap();
        let mut results = vec![holder.await.unwrap()];
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    #[tokio::test]
    async fn writes_queued_together_share_one_commit_and_a_failing_one_changes_only_itself() {
        let (writer, observer) = writer();
        let before = writer.commits.load(Ordering::SeqCst);
        // The third writes two rows, the second of which violates the primary key: it fails
        // as a whole (its first row is rolled back with it), the others are stored.
        let results = batch_of(
            &writer,
            vec![
                Box::new(insert(1, None)),
                Box::new(insert(2, None)),
                Box::new(|connection: &Connection| {
                    insert(5, None)(connection)?;
                    insert(1, None)(connection)
                }),
                Box::new(insert(3, None)),
            ],
        )
        .await;
        assert!(results[0].is_ok() && results[1].is_ok() && results[2].is_ok());
        assert!(results[4].is_ok());
        assert!(
            matches!(&results[3], Err(StoreError::Conflict(message)) if message.contains("insert t")),
            "{:?}",
            results[3]
        );
        assert_eq!(ids(&observer), [1, 2, 3]);
        // The holding write and the four that arrived while it ran: one transaction.
        assert_eq!(writer.commits.load(Ordering::SeqCst) - before, 1);
        writer.close().await;
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_its_batch_and_the_next_batch_works() {
        let (writer, observer) = writer();
        // The second breaks a deferred foreign key: every statement succeeds, COMMIT fails.
        let results = batch_of(
            &writer,
            vec![
                Box::new(insert(10, None)),
                Box::new(insert(11, Some(99))),
                Box::new(insert(12, None)),
            ],
        )
        .await;
        for result in &results {
            assert!(
                matches!(result, Err(StoreError::Unavailable(message)) if message.contains("commit write")),
                "{result:?}"
            );
        }
        assert!(ids(&observer).is_empty(), "nothing of the batch is stored");
        writer.write("insert t", insert(13, None)).await.unwrap();
        assert_eq!(ids(&observer), [13]);
        writer.close().await;
    }

    #[tokio::test]
    async fn a_closed_writer_refuses_writes() {
        let (writer, _observer) = writer();
        writer.write("insert t", insert(1, None)).await.unwrap();
        writer.close().await;
        assert!(writer.is_closed());
        let refused = writer.write("insert t", insert(2, None)).await;
        assert!(
            matches!(&refused, Err(StoreError::Unavailable(message)) if message.contains("closed")),
            "{refused:?}"
        );
        writer.close().await;
    }
}
