//! Measures what the privacy and readiness measures of issue 8 cost: the heartbeat write of
//! `ImportStore::ping` and the WAL checkpoint of `ImportStore::scrub` (SQLite), on a temporary
//! SQLite file and a fresh PostgreSQL test database.
//!
//! ```text
//! cargo run -p vorgang-store --example privacy_costs
//! ```
//!
//! Prints wall-clock times; the numbers depend on the disk's fsync latency and the machine's
//! load, so compare them on one machine. Not a test: nothing is asserted about speed.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;
use vorgang_core::model::Environment;
use vorgang_core::{ImportChange, ImportRecord, ImportStatus};
use vorgang_store::Store;
use vorgang_store::testing::{fresh_postgres_database, postgres_admin_url};

/// An import carrying the published example request as its body.
fn record() -> ImportRecord {
    let body = vorgang_core::model::parse_import_request(
        include_str!("../../../examples/seed-request.json").as_bytes(),
    )
    .unwrap();
    let now = Utc::now();
    ImportRecord {
        id: Uuid::new_v4(),
        client_id: "c".into(),
        environment: Environment::Test,
        status: ImportStatus::Accepted,
        idempotency_key: None,
        fingerprint: "f".into(),
        request: Some(body),
        tippgeber_externe_partner_id: "c-1".into(),
        tippgeber_partner_id: None,
        europace_vorgangsnummer: None,
        crm_kennung: None,
        messages: Vec::new(),
        failure: None,
        attempts: 1,
        created_at: now,
        updated_at: now,
        notify: false,
        next_attempt_at: None,
    }
}

/// Median and 95th percentile of `n` timings.
fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let n = times.len();
    println!(
        "{label}: n={n} median={:?} p95={:?}",
        times[n / 2],
        times[n * 95 / 100]
    );
}

/// `n` imports through their states as the importer stores them: insert, then four
/// transitions, the last one (COMPLETED) dropping the body.
async fn imports(store: &Store, n: usize) {
    let imports = store.as_import_store();
    for _ in 0..n {
        let mut record = record();
        imports.insert(&record).await.unwrap();
        for to in [
            ImportStatus::PartnerReady,
            ImportStatus::Sending,
            ImportStatus::Imported,
            ImportStatus::Completed,
        ] {
            let mut next = record.clone();
            next.status = to;
            if to.is_finished() {
                next.request = None;
            }
            let change = ImportChange::between(&record, &next);
            assert!(
                imports
                    .transition(record.id, record.status, &change)
                    .await
                    .unwrap()
            );
            record = next;
        }
    }
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let wal = dir.path().join("v.db-wal");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let imports_port = store.as_import_store();

    let mut pings = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        imports_port.ping().await.unwrap();
        pings.push(started.elapsed());
    }
    report("sqlite ping (heartbeat upsert)", pings);

    imports_port.scrub().await.unwrap();
    let mut empty = Vec::new();
    let mut one_frame = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        imports_port.scrub().await.unwrap();
        empty.push(started.elapsed());
        imports_port.ping().await.unwrap();
        let started = Instant::now();
        imports_port.scrub().await.unwrap();
        one_frame.push(started.elapsed());
    }
    report("sqlite scrub, WAL empty", empty);
    report("sqlite scrub after one heartbeat", one_frame);

    for n in [1_usize, 10, 100, 1000] {
        imports_port.scrub().await.unwrap();
        let started = Instant::now();
        imports(&store, n).await;
        let writing = started.elapsed();
        let wal_before = len(&wal);
        let started = Instant::now();
        imports_port.scrub().await.unwrap();
        println!(
            "sqlite: {n} imports written in {writing:?}; WAL {wal_before} bytes; scrub {:?}; \
             WAL after {} bytes; database {} bytes",
            started.elapsed(),
            len(&wal),
            len(&path)
        );
    }
    store.close().await;

    let database = fresh_postgres_database(&postgres_admin_url())
        .await
        .unwrap();
    let store = Store::connect(database.url()).await.unwrap();
    let mut pings = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        store.as_import_store().ping().await.unwrap();
        pings.push(started.elapsed());
    }
    report("postgres ping (heartbeat upsert)", pings);
    store.close().await;
    database.drop_database().await.unwrap();
}
