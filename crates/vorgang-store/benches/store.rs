//! The two writes of an import, per backend: `cargo bench -p vorgang-store`.
//!
//! - insert: an import of the published example stored as `SENDING` with its request body
//!   (what `POST /vorgang` writes before the KEX POST when the Tippgeber is known);
//! - transition: `SENDING` → `COMPLETED`, the body dropped (the write of Europace's outcome).
//!
//! Each one at a time (latency: one commit, one fsync each), and 32 at once (32 concurrent
//! callers, as the end-to-end benchmark's connections: SQLite's writer commits what queued up
//! together, PostgreSQL shares WAL flushes). SQLite on a file in the system's temporary
//! directory (it must be a real disk for the fsync to count); PostgreSQL on a fresh database at
//! `VORGANG_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), skipped with
//! a note when unreachable. Production settings (`synchronous = FULL`; PostgreSQL's
//! `synchronous_commit` as the server has it).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::future::join_all;
use uuid::Uuid;
use vorgang_core::model::Environment;
use vorgang_core::{BodyChange, ImportChange, ImportRecord, ImportStatus, ImportStore};
use vorgang_store::Store;
use vorgang_store::testing::{fresh_postgres_database, postgres_admin_url};

const SEED: &[u8] = include_bytes!("../../../examples/seed-request.json");

/// Concurrent callers of the "at once" variants.
const CONCURRENT: usize = 32;

fn sending() -> ImportRecord {
    let request = vorgang_model::parse_import_request(SEED).unwrap();
    let mut record = ImportRecord::accepted(
        Uuid::now_v7(),
        "bench-client",
        Environment::Test,
        None,
        "f".repeat(64),
        request,
        Utc::now(),
    );
    record.status = ImportStatus::Sending;
    record.tippgeber_partner_id = Some("TG001".into());
    record
}

fn completed(sending: &ImportRecord) -> ImportRecord {
    let mut done = sending.clone();
    done.status = ImportStatus::Completed;
    done.request = None;
    done.europace_vorgangsnummer = Some("AB1234".into());
    done.crm_kennung = Some("DKR-ABCDEFGH".into());
    done.updated_at = Utc::now();
    done
}

/// Inserts `n` imports, `CONCURRENT` at a time; returns them.
async fn insert_many(store: &Arc<dyn ImportStore>, n: u64) -> Vec<ImportRecord> {
    let records: Vec<ImportRecord> = (0..n).map(|_| sending()).collect();
    for chunk in records.chunks(CONCURRENT) {
        join_all(chunk.iter().map(|r| store.insert(r))).await;
    }
    records
}

async fn complete(store: &Arc<dyn ImportStore>, record: &ImportRecord) {
    let done = completed(record);
    let change = ImportChange::of(&done, BodyChange::Drop);
    assert!(
        store
            .transition(record.id, ImportStatus::Sending, &change)
            .await
            .unwrap()
    );
}

fn backend(c: &mut Criterion, runtime: &tokio::runtime::Runtime, name: &str, store: &Store) {
    let imports = store.as_import_store();
    let mut group = c.benchmark_group(format!("store/{name}"));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    group.bench_function("insert", |b| {
        b.iter_custom(|iters| {
            let records: Vec<ImportRecord> = (0..iters).map(|_| sending()).collect();
            runtime.block_on(async {
                let started = Instant::now();
                for record in &records {
                    imports.insert(record).await.unwrap();
                }
                started.elapsed()
            })
        });
    });
    group.bench_function("transition", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let records = insert_many(&imports, iters).await;
                let started = Instant::now();
                for record in &records {
                    complete(&imports, record).await;
                }
                started.elapsed()
            })
        });
    });

    group.throughput(Throughput::Elements(CONCURRENT as u64));
    group.bench_function(
        BenchmarkId::new("insert", format!("{CONCURRENT} at once")),
        |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let records: Vec<ImportRecord> =
                            (0..CONCURRENT).map(|_| sending()).collect();
                        let started = Instant::now();
                        join_all(records.iter().map(|r| imports.insert(r))).await;
                        total += started.elapsed();
                    }
                    total
                })
            });
        },
    );
    group.bench_function(
        BenchmarkId::new("transition", format!("{CONCURRENT} at once")),
        |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let records = insert_many(&imports, CONCURRENT as u64).await;
                        let started = Instant::now();
                        join_all(records.iter().map(|r| complete(&imports, r))).await;
                        total += started.elapsed();
                    }
                    total
                })
            });
        },
    );
    group.finish();
}

fn store_writes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let sqlite = runtime.block_on(Store::connect(&url)).unwrap();
    backend(c, &runtime, "sqlite", &sqlite);
    runtime.block_on(sqlite.close());

    match runtime.block_on(fresh_postgres_database(&postgres_admin_url())) {
        Ok(database) => {
            let postgres = runtime.block_on(Store::connect(database.url())).unwrap();
            backend(c, &runtime, "postgres", &postgres);
            runtime.block_on(postgres.close());
            runtime.block_on(database.drop_database()).unwrap();
        }
        Err(error) => eprintln!("store/postgres skipped: {error}"),
    }
}

criterion_group!(benches, store_writes);
criterion_main!(benches);
