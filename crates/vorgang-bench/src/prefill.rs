//! `--rows N`: N finished imports stored before the service starts, so the benchmark shows
//! whether the cost of an import stays flat in the size of the table.
//!
//! # Keep in step with the schema
//!
//! **This is the one place that writes the store's tables behind `vorgang_store`'s back.** When
//! the schema changes (`crates/vorgang-store/migrations`), adapt [`SQLITE_BATCH`] and
//! [`POSTGRES_BATCH`]; the tests below fail until the rows read back through
//! [`vorgang_store::Store`].
//!
//! Why not through the store: `ImportStore::insert` commits (and fsyncs) once per import, about
//! a millisecond each on SQLite, so a million would take far longer than the benchmark itself.
//! Instead the database generates the rows itself, in batches of [`BATCH`] per transaction:
//! about half a minute for a million rows on either backend.
//!
//! What a row looks like: a `COMPLETED` test-mode import of the benchmark's client, created
//! within the last 29 days (inside the default retention of 30, so the service's purge at start
//! leaves them), with a random UUID, a fingerprint, a Tippgeber from a set of 1,000, Europace's
//! and the CRM's ids, no messages, no request body (finished imports keep none), and every second
//! one with an `Idempotency-Key`.

use std::str::FromStr as _;

use anyhow::Context as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _};

/// Rows per transaction.
pub const BATCH: u64 = 50_000;

/// Seconds the stored imports are spread over, ending a day before now.
const SPREAD_S: i64 = 28 * 86_400;

/// One batch for SQLite. Parameters: `?1` first row number, `?2` end (exclusive), `?3` client
/// id, `?4` Unix time of row 0, `?5` spread in seconds, `?6` total rows.
pub const SQLITE_BATCH: &str = "\
INSERT INTO imports (id, client_id, environment, status, idempotency_key, fingerprint, request, \
    tippgeber_externe_partner_id, tippgeber_partner_id, europace_vorgangsnummer, crm_kennung, \
    messages, failure, attempts, created_at, updated_at) \
WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2), \
    r(i, h, t) AS MATERIALIZED (SELECT i, lower(hex(randomblob(16))), ?4 + i * ?5 / ?6 FROM n) \
SELECT \
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' \
        || substr('89ab', 1 + i % 4, 1) || substr(h, 18, 3) || '-' || substr(h, 21, 12), \
    ?3, 'TEST', 'COMPLETED', \
    CASE WHEN i % 2 = 0 THEN 'prefill-' || i END, \
    lower(hex(randomblob(32))), \
    NULL, \
    ?3 || '-prefill-' || (i % 1000), \
    'PF' || char(65 + i % 26) || printf('%02d', i % 100), \
    char(65 + i % 26) || char(65 + i / 26 % 26) || printf('%04d', i % 10000), \
    'DKR-' || printf('%08X', i), \
    '[]', NULL, 1, \
    strftime('%Y-%m-%dT%H:%M:%S', t, 'unixepoch') || printf('.%09dZ', i * 7919 % 1000000000), \
    strftime('%Y-%m-%dT%H:%M:%S', t + 2, 'unixepoch') || printf('.%09dZ', i * 7919 % 1000000000) \
FROM r";

/// One batch for PostgreSQL, same parameters as [`SQLITE_BATCH`].
pub const POSTGRES_BATCH: &str = "\
INSERT INTO imports (id, client_id, environment, status, idempotency_key, fingerprint, request, \
    tippgeber_externe_partner_id, tippgeber_partner_id, europace_vorgangsnummer, crm_kennung, \
    messages, failure, attempts, created_at, updated_at) \
SELECT \
    gen_random_uuid(), $3, 'TEST', 'COMPLETED', \
    CASE WHEN i % 2 = 0 THEN 'prefill-' || i END, \
    md5(random()::text) || md5(random()::text), \
    NULL, \
    $3 || '-prefill-' || (i % 1000), \
    'PF' || chr(65 + (i % 26)::int) || lpad((i % 100)::text, 2, '0'), \
    chr(65 + (i % 26)::int) || chr(65 + (i / 26 % 26)::int) || lpad((i % 10000)::text, 4, '0'), \
    'DKR-' || upper(lpad(to_hex(i), 8, '0')), \
    '[]'::json, NULL, 1, \
    to_char(to_timestamp(t) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') \
        || '.' || lpad((i * 7919 % 1000000000)::text, 9, '0') || 'Z', \
    to_char(to_timestamp(t + 2) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') \
        || '.' || lpad((i * 7919 % 1000000000)::text, 9, '0') || 'Z' \
FROM (SELECT i, ($4::bigint + i * $5::bigint / $6::bigint)::double precision AS t \
      FROM generate_series($1::bigint, $2::bigint - 1) AS i) AS n";

/// Stores `rows` finished imports of `client_id` in the (migrated) database at `database_url`;
/// `progress` is called with the rows written so far after every batch.
///
/// # Errors
/// The database cannot be reached or refuses the rows (e.g. the schema changed: see the module
/// documentation).
pub async fn prefill(
    database_url: &str,
    client_id: &str,
    rows: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let rows_i64 = i64::try_from(rows).context("--rows is too large")?;
    let first_at = chrono::Utc::now().timestamp() - SPREAD_S - 86_400;
    let batches = (0..rows)
        .step_by(usize::try_from(BATCH)?)
        .map(move |start| {
            let end = (start + BATCH).min(rows);
            // Both below `rows`, which fits i64.
            (
                i64::try_from(start).unwrap_or(i64::MAX),
                i64::try_from(end).unwrap_or(i64::MAX),
            )
        });
    // The backends' loads differ only in the statement and the connection's type.
    macro_rules! load_batches {
        ($connection:ident, $sql:expr, $context:literal) => {
            for (start, end) in batches {
                sqlx::query($sql)
                    .bind(start)
                    .bind(end)
                    .bind(client_id)
                    .bind(first_at)
                    .bind(SPREAD_S)
                    .bind(rows_i64)
                    .execute(&mut $connection)
                    .await
                    .context($context)?;
                progress(u64::try_from(end).unwrap_or(rows));
            }
        };
    }
    if database_url.starts_with("sqlite:") {
        let mut connection = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(false)
            // Bulk load: a big page cache; durability comes from the checkpoint at the end.
            .synchronous(SqliteSynchronous::Normal)
            .pragma("cache_size", "-262144")
            .disable_statement_logging()
            .connect()
            .await
            .context("opening the SQLite file for the pre-fill")?;
        load_batches!(
            connection,
            SQLITE_BATCH,
            "pre-filling SQLite (has the schema changed? see prefill.rs)"
        );
        // The service starts with an empty WAL, as after a restart.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut connection)
            .await?;
        connection.close().await?;
    } else {
        let mut connection = PgConnectOptions::from_str(database_url)?
            .disable_statement_logging()
            .connect()
            .await
            .context("connecting PostgreSQL for the pre-fill")?;
        load_batches!(
            connection,
            POSTGRES_BATCH,
            "pre-filling PostgreSQL (has the schema changed? see prefill.rs)"
        );
        // A table that lived this long would have been vacuumed and analysed by autovacuum;
        // doing it now keeps autovacuum (and a checkpoint of the load's WAL) out of the
        // measurement.
        sqlx::query("VACUUM ANALYZE imports")
            .execute(&mut connection)
            .await?;
        // Needs superuser (the test server's `postgres`); without, the next checkpoint simply
        // comes when it comes.
        let _ = sqlx::query("CHECKPOINT").execute(&mut connection).await;
        connection.close().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vorgang_core::ImportStatus;
    use vorgang_store::Store;

    /// The pre-filled rows are imports the store reads back as such: if the schema changes,
    /// this fails until the SQL above is adapted.
    async fn rows_read_back_through_the_store(database_url: &str) {
        // Migrations first, as the benchmark does before pre-filling.
        let store = Store::connect(database_url).await.unwrap();
        let mut seen = Vec::new();
        prefill(database_url, "drk_bench", 1_234, |done| seen.push(done))
            .await
            .unwrap();
        assert_eq!(seen, [1_234]);

        let records = store
            .as_import_store()
            .list(&vorgang_core::ImportQuery {
                status: Some(ImportStatus::Completed),
                limit: 10_000,
                ..vorgang_core::ImportQuery::all()
            })
            .await
            .unwrap();
        assert_eq!(records.len(), 1_234);
        let now = chrono::Utc::now();
        let mut ids = std::collections::HashSet::new();
        for record in &records {
            assert!(ids.insert(record.id));
            assert_eq!(record.id.get_version_num(), 4);
            assert_eq!(record.client_id, "drk_bench");
            assert!(record.europace_vorgangsnummer.is_some());
            assert!(record.crm_kennung.is_some());
            assert!(record.created_at < now - chrono::Duration::days(1));
            assert!(record.created_at > now - chrono::Duration::days(30));
            assert!(record.updated_at > record.created_at);
        }
        let with_key = records
            .iter()
            .filter(|r| r.idempotency_key.is_some())
            .count();
        assert_eq!(with_key, 617);
        // A single import reads back by id too.
        let one = store.as_import_store().get(records[0].id).await.unwrap();
        assert_eq!(one.map(|r| r.id), Some(records[0].id));
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_rows_read_back_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        rows_read_back_through_the_store(&url).await;
    }

    #[tokio::test]
    async fn postgres_rows_read_back_through_the_store() {
        let database = vorgang_store::testing::fresh_postgres_database(
            &vorgang_store::testing::postgres_admin_url(),
        )
        .await
        .unwrap();
        rows_read_back_through_the_store(database.url()).await;
        database.drop_database().await.unwrap();
    }
}
