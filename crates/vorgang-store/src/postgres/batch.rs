//! PostgreSQL's import writes, batched: the inserts and state changes of concurrent imports in
//! one statement.
//!
//! With `synchronous_commit = on` PostgreSQL already shares one WAL flush among the commits
//! that wait for it at the same time; what it does not share is the work per statement: a
//! round trip, a backend wake-up, executor start-up, a commit. Under issue 10's load that work,
//! not the disk, was the limit (hundreds of µs of CPU per statement on two cores). So the
//! writes queue here, and one task takes whatever queued up and runs it as one statement
//! ([`WRITE_MANY`]: an `INSERT … SELECT FROM unnest(…)` of the new imports and their bodies and
//! an `UPDATE … FROM unnest(…)` of the state changes, as data-modifying CTEs): one round trip,
//! one implicit transaction, one commit. A caller is answered after the commit.
//!
//! The statement keeps the semantics of the single ones: an insert whose idempotency key is
//! taken (also by another insert of the same batch) inserts nothing; a state change is a
//! compare-and-set on the import's status, so of two changes of one import at most one wins.
//! If the database refuses the statement (a duplicate id, a trigger refusing a write), nothing
//! of the batch was stored; every write of it is then run again alone, so that only the
//! failing one gets the error. If the outcome is unknown (the connection failed), every write
//! of the batch gets that error, as a single write would have: none is run twice.
//!
//! Up to [`IN_FLIGHT`] batches run at once, each on its own connection of the pool: while
//! they run, new writes queue, so the batches grow with the load.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;
use vorgang_core::StoreError;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::codec::{BodyParam, ChangeParams, ImportParams};
use crate::error::map_sqlx;

/// Most writes in one batch.
const MAX_BATCH: usize = 256;

/// Most bytes of values in one batch (about twenty imports of the published example with their
/// bodies, or their state changes).
///
/// Large batches need `TCP_NODELAY`, which sqlx 0.9.0 does not set (upstream issue 4335; the
/// workspace patches `sqlx-core` until a release carries the fix, vendor/README.md): without it,
/// a message written in more than one piece (over TLS: above one 16 KiB record) waits for
/// PostgreSQL's delayed acknowledgement, up to 40 ms. Measured on loopback with TLS, batches of
/// up to 64 KiB: p99 105 ms without the patch, 26 to 32 ms with it (docs/performance.md).
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Batches running at once (each holds a pooled connection while it runs).
const IN_FLIGHT: usize = 2;

/// Writes waiting at most; beyond, [`Batcher::insert`] and [`Batcher::transition`] wait.
const QUEUE_CAPACITY: usize = 2048;

/// One batch, one statement (so one round trip and one implicit transaction): the new imports
/// with their bodies (`$1`…`$16`, one array per column) and the state changes that keep or
/// drop the body (`$17`…`$28`), as data-modifying CTEs over `unnest`. Returns one row per
/// import inserted (`ord` NULL; an import whose idempotency key was taken, also by an earlier
/// row of the same statement, is not) and one per change that won its compare-and-set (`ord`
/// its position in the batch, with `imports.request`: a body a build before migration 0002
/// left there, else NULL).
///
/// The compare-and-set is written so that only the primary key can find an import (see the
/// single statements), and the `= ANY($18)` conditions repeat the joins' so that imports and
/// bodies are looked up by key whatever the planner estimates for the `unnest`. Bodies of
/// finishing imports are deleted; `imports.request` is not named (the trigger of migration
/// 0002 stays quiet).
const WRITE_MANY: &str = "WITH vi AS (SELECT * FROM unnest($1::uuid[], $2::text[], \
     $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
     $10::text[], $11::text[], $12::text[], $13::int8[], $14::text[], $15::text[], $16::text[]) \
     AS v(id, client_id, environment, status, idempotency_key, fingerprint, \
     tippgeber_externe_partner_id, tippgeber_partner_id, europace_vorgangsnummer, crm_kennung, \
     messages, failure, attempts, created_at, updated_at, body)), \
     i AS (INSERT INTO imports (id, client_id, environment, status, idempotency_key, \
     fingerprint, request, tippgeber_externe_partner_id, tippgeber_partner_id, \
     europace_vorgangsnummer, crm_kennung, messages, failure, attempts, created_at, updated_at) \
     SELECT id, client_id, environment, status, idempotency_key, fingerprint, NULL, \
     tippgeber_externe_partner_id, tippgeber_partner_id, europace_vorgangsnummer, crm_kennung, \
     CAST(messages AS json), CAST(failure AS json), attempts, created_at, updated_at FROM vi \
     ON CONFLICT (client_id, idempotency_key) DO NOTHING RETURNING id), \
     b AS (INSERT INTO import_requests (import_id, body) \
     SELECT vi.id, CAST(vi.body AS json) FROM vi JOIN i ON i.id = vi.id \
     WHERE vi.body IS NOT NULL), \
     vt AS (SELECT * FROM unnest($17::int4[], $18::uuid[], $19::text[], $20::text[], \
     $21::text[], $22::text[], $23::text[], $24::text[], $25::int8[], $26::text[], $27::text[], \
     $28::bool[]) AS v(ord, id, status, tippgeber_partner_id, europace_vorgangsnummer, \
     crm_kennung, messages, failure, attempts, updated_at, from_status, drop_body)), \
     u AS (UPDATE imports x SET status = vt.status, \
     tippgeber_partner_id = vt.tippgeber_partner_id, \
     europace_vorgangsnummer = vt.europace_vorgangsnummer, crm_kennung = vt.crm_kennung, \
     messages = CAST(vt.messages AS json), failure = CAST(vt.failure AS json), \
     attempts = vt.attempts, updated_at = vt.updated_at \
     FROM vt WHERE x.id = vt.id AND x.id = ANY($18) AND (x.status = vt.from_status) IS TRUE \
     RETURNING vt.ord, vt.id, vt.drop_body, x.request::text AS legacy), \
     d AS (DELETE FROM import_requests r USING u \
     WHERE r.import_id = u.id AND r.import_id = ANY($18) AND u.drop_body) \
     SELECT NULL::int4 AS ord, id, NULL::text AS legacy FROM i \
     UNION ALL SELECT ord, id, legacy FROM u";

/// A queued write and its caller.
#[allow(clippy::large_enum_variant)] // moved once into the queue, never copied around
enum Write {
    Insert {
        params: Arc<ImportParams>,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    Transition {
        id: Uuid,
        from: &'static str,
        change: ChangeParams,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

impl Write {
    /// The bytes of values this write adds to a batch's statement (about).
    fn size(&self) -> usize {
        const FIXED: usize = 160;
        let text = |value: &Option<String>| value.as_ref().map_or(0, String::len);
        match self {
            Self::Insert { params, .. } => {
                FIXED
                    + params.client_id.len()
                    + params.fingerprint.len()
                    + params.tippgeber_externe_partner_id.len()
                    + params.messages.len()
                    + text(&params.idempotency_key)
                    + text(&params.tippgeber_partner_id)
                    + text(&params.europace_vorgangsnummer)
                    + text(&params.crm_kennung)
                    + text(&params.failure)
                    + text(&params.request)
            }
            Self::Transition { change, .. } => {
                FIXED
                    + change.messages.len()
                    + text(&change.tippgeber_partner_id)
                    + text(&change.europace_vorgangsnummer)
                    + text(&change.crm_kennung)
                    + text(&change.failure)
            }
        }
    }
}

/// How a batch ended.
enum Outcome {
    /// Committed: the ids inserted, the positions of the changes that won (with a legacy body
    /// to clear or move).
    Committed {
        inserted: Vec<Uuid>,
        changed: Vec<(i32, Option<String>)>,
    },
    /// The database refused the statement: nothing was stored.
    Refused,
    /// The statement's outcome is unknown (the connection failed): every write gets this
    /// error, as a single write would have.
    Failed(StoreError),
}

/// The handle of the batching task. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Write>,
    /// The writer's own connections (closed by [`Batcher::close`]).
    pool: PgPool,
}

impl Batcher {
    /// Starts the batching task on a thread of its own (with its own Tokio runtime, so it
    /// lives as long as the store's handles do, whichever runtime they are used from).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the thread or its runtime cannot be started.
    pub(super) fn start(options: &PgConnectOptions) -> Result<Self, StoreError> {
        const CONTEXT: &str = "start PostgreSQL writer";
        // Its own connections (opened when first needed), whose planner only ever chooses
        // index lookups: the batch's `unnest` rows are estimated, not known, and a plan made
        // while the tables were small (or without statistics) chose sequential scans of
        // `imports`, a scan per batch growing with the table (issue 10's profile). Every
        // statement of the writer finds its rows by key.
        let pool = PgPoolOptions::new()
            .max_connections(u32::try_from(IN_FLIGHT).unwrap_or(1))
            .acquire_timeout(super::ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= crate::PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options.clone().options([
                ("enable_seqscan", "off"),
                ("enable_hashjoin", "off"),
                ("enable_mergejoin", "off"),
            ]));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| {
                StoreError::Unavailable(format!("{CONTEXT}: runtime not built ({:?})", err.kind()))
            })?;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let served = pool.clone();
        std::thread::Builder::new()
            .name("postgres-writer".to_owned())
            .spawn(move || runtime.block_on(serve(served, receiver)))
            .map_err(|err| {
                StoreError::Unavailable(format!("{CONTEXT}: thread not started ({:?})", err.kind()))
            })?;
        Ok(Self { queue, pool })
    }

    /// Closes the writer's connections: later writes fail with [`StoreError::Unavailable`].
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts an import and its body in the next batch: `false` if its idempotency key is
    /// taken.
    pub(super) async fn insert(&self, params: Arc<ImportParams>) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Write::Insert { params, reply }, answer, "insert import")
            .await
    }

    /// A state change that keeps or drops the body, in the next batch.
    pub(super) async fn transition(
        &self,
        id: Uuid,
        from: &'static str,
        change: ChangeParams,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let write = Write::Transition {
            id,
            from,
            change,
            reply,
        };
        self.send(write, answer, "transition import").await
    }

    async fn send(
        &self,
        write: Write,
        answer: oneshot::Receiver<Result<bool, StoreError>>,
        context: &'static str,
    ) -> Result<bool, StoreError> {
        let stopped =
            || StoreError::Unavailable(format!("{context}: the database writer is stopped"));
        self.queue.send(write).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes what queued up, up to [`MAX_BATCH`], and runs it as a batch once one of the
/// [`IN_FLIGHT`] slots is free; ends when every handle is gone.
async fn serve(pool: PgPool, mut queue: mpsc::Receiver<Write>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried: Option<Write> = None;
    loop {
        let first = match carried.take() {
            Some(write) => write,
            None => match queue.recv().await {
                Some(write) => write,
                None => break,
            },
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        // Taken once a slot is free: what queued while all were busy joins this batch, as
        // long as the batch stays within `MAX_BATCH` writes and `MAX_BATCH_BYTES`.
        let mut bytes = first.size();
        let mut writes = vec![first];
        while writes.len() < MAX_BATCH {
            let Ok(write) = queue.try_recv() else {
                break;
            };
            if bytes + write.size() > MAX_BATCH_BYTES {
                carried = Some(write);
                break;
            }
            bytes += write.size();
            writes.push(write);
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            run(&pool, writes).await;
            drop(slot);
        });
    }
}

/// Runs one batch and answers its writes.
async fn run(pool: &PgPool, writes: Vec<Write>) {
    let (inserted, changed) = match execute(pool, &writes).await {
        Outcome::Committed { inserted, changed } => (inserted, changed),
        Outcome::Failed(error) => {
            for write in writes {
                let reply = match write {
                    Write::Insert { reply, .. } | Write::Transition { reply, .. } => reply,
                };
                let _ = reply.send(Err(copy(&error)));
            }
            return;
        }
        // Nothing was stored: each write again on its own, so only the failing one fails.
        Outcome::Refused => {
            for write in writes {
                let (outcome, reply) = match write {
                    Write::Insert { params, reply } => {
                        (super::insert_one(pool, &params).await, reply)
                    }
                    Write::Transition {
                        id,
                        from,
                        change,
                        reply,
                    } => (super::transition_one(pool, id, from, &change).await, reply),
                };
                let _ = reply.send(outcome);
            }
            return;
        }
    };
    let mut won = vec![false; writes.len()];
    for (position, legacy) in changed {
        let Some(index) = usize::try_from(position).ok().filter(|p| *p < writes.len()) else {
            continue;
        };
        won[index] = true;
        if let (Some(legacy), Write::Transition { id, change, .. }) = (legacy, &writes[index]) {
            // A body a build before migration 0002 left in `imports.request` (kept: moved to
            // `import_requests`; dropped: cleared). After the change, in a transaction of its
            // own: if that fails, the body stays where it is and is handled at the import's
            // next change (or by the operator's, for a finished one).
            let keep = matches!(change.body, BodyParam::Keep);
            if let Err(error) = super::move_legacy_body_alone(pool, *id, keep, legacy).await {
                tracing::error!(error = %error, "could not move a body left by a build before migration 0002");
            }
        }
    }
    for (index, write) in writes.into_iter().enumerate() {
        match write {
            Write::Insert { params, reply } => {
                let _ = reply.send(Ok(inserted.contains(&params.id)));
            }
            Write::Transition { reply, .. } => {
                let _ = reply.send(Ok(won[index]));
            }
        }
    }
}

/// A row of [`WRITE_MANY`]: the position of a change (`None` for an insert), the import's id,
/// a legacy body.
type ResultRow = (Option<i32>, Uuid, Option<String>);

/// The batch's statement.
async fn execute(pool: &PgPool, writes: &[Write]) -> Outcome {
    let inserts: Vec<&ImportParams> = writes
        .iter()
        .filter_map(|write| match write {
            Write::Insert { params, .. } => Some(params.as_ref()),
            Write::Transition { .. } => None,
        })
        .collect();
    let changes: Vec<(i32, Uuid, &'static str, &ChangeParams)> = writes
        .iter()
        .enumerate()
        .filter_map(|(position, write)| match write {
            Write::Transition {
                id, from, change, ..
            } => Some((i32::try_from(position).ok()?, *id, *from, change)),
            Write::Insert { .. } => None,
        })
        .collect();
    let insert_column = |f: fn(&ImportParams) -> Option<String>| -> Vec<Option<String>> {
        inserts.iter().map(|p| f(p)).collect()
    };
    let change_column = |f: fn(&ChangeParams) -> Option<String>| -> Vec<Option<String>> {
        changes.iter().map(|(_, _, _, c)| f(c)).collect()
    };
    let rows: Result<Vec<ResultRow>, sqlx::Error> = sqlx::query_as(WRITE_MANY)
        .bind(inserts.iter().map(|p| p.id).collect::<Vec<Uuid>>())
        .bind(insert_column(|p| Some(p.client_id.clone())))
        .bind(insert_column(|p| Some(p.environment.to_owned())))
        .bind(insert_column(|p| Some(p.status.to_owned())))
        .bind(insert_column(|p| p.idempotency_key.clone()))
        .bind(insert_column(|p| Some(p.fingerprint.clone())))
        .bind(insert_column(|p| {
            Some(p.tippgeber_externe_partner_id.clone())
        }))
        .bind(insert_column(|p| p.tippgeber_partner_id.clone()))
        .bind(insert_column(|p| p.europace_vorgangsnummer.clone()))
        .bind(insert_column(|p| p.crm_kennung.clone()))
        .bind(insert_column(|p| Some(p.messages.clone())))
        .bind(insert_column(|p| p.failure.clone()))
        .bind(inserts.iter().map(|p| p.attempts).collect::<Vec<i64>>())
        .bind(insert_column(|p| Some(p.created_at.clone())))
        .bind(insert_column(|p| Some(p.updated_at.clone())))
        .bind(insert_column(|p| p.request.clone()))
        .bind(changes.iter().map(|(p, ..)| *p).collect::<Vec<i32>>())
        .bind(changes.iter().map(|(_, id, ..)| *id).collect::<Vec<Uuid>>())
        .bind(change_column(|c| Some(c.status.to_owned())))
        .bind(change_column(|c| c.tippgeber_partner_id.clone()))
        .bind(change_column(|c| c.europace_vorgangsnummer.clone()))
        .bind(change_column(|c| c.crm_kennung.clone()))
        .bind(change_column(|c| Some(c.messages.clone())))
        .bind(change_column(|c| c.failure.clone()))
        .bind(
            changes
                .iter()
                .map(|(.., c)| c.attempts)
                .collect::<Vec<i64>>(),
        )
        .bind(change_column(|c| Some(c.updated_at.clone())))
        .bind(
            changes
                .iter()
                .map(|(_, _, from, _)| (*from).to_owned())
                .collect::<Vec<String>>(),
        )
        .bind(
            changes
                .iter()
                .map(|(.., c)| matches!(c.body, BodyParam::Drop))
                .collect::<Vec<bool>>(),
        )
        .fetch_all(pool)
        .await;
    match rows {
        Ok(rows) => {
            let mut inserted = Vec::new();
            let mut changed = Vec::new();
            for (position, id, legacy) in rows {
                match position {
                    None => inserted.push(id),
                    Some(position) => changed.push((position, legacy)),
                }
            }
            Outcome::Committed { inserted, changed }
        }
        // An error answer: the statement was rolled back.
        Err(error @ sqlx::Error::Database(_)) => {
            tracing::debug!(error = %map_sqlx("write imports", &error), "batched write refused; writing one by one");
            Outcome::Refused
        }
        Err(error) => Outcome::Failed(map_sqlx("write imports", &error)),
    }
}

/// The batch's error for one of its writes.
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
        StoreError::Conflict(message) => StoreError::Conflict(message.clone()),
    }
}
