//! The storage contract, written once and run against both backends.
//!
//! Every case in [`cases`] gets a fresh store: SQLite in a new file of its own temporary
//! directory, PostgreSQL in a new database created for the test (see
//! `vorgang_store::testing`; server from `VORGANG_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). The macro at the bottom generates
//! `sqlite::<case>` and `postgres::<case>` for each.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;
use vorgang_core::model::Environment;
use vorgang_core::{
    Failure, FailureKind, ImportChange, ImportCursor, ImportQuery, ImportRecord, ImportStatus,
    InsertOutcome, StoreError, TippgeberMapping, TippgeberUpdate,
};
use vorgang_store::Store;
use vorgang_store::testing::{
    PostgresTestDatabase, fresh_postgres_database, postgres_admin_url, request,
};

/// A point in time with nanoseconds, so truncation anywhere would show.
fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, nanos).unwrap()
}

/// An `ACCEPTED` import of `client_id` with an `Idempotency-Key` if given.
fn import(client_id: &str, key: Option<&str>, created_at: DateTime<Utc>) -> ImportRecord {
    ImportRecord {
        id: Uuid::new_v4(),
        client_id: client_id.to_owned(),
        environment: Environment::Test,
        status: ImportStatus::Accepted,
        idempotency_key: key.map(str::to_owned),
        fingerprint: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        // Key order not alphabetical, a float, an escape and non-ASCII: all must survive.
        request: Some(request(serde_json::json!({
            "antragsteller1": {"personendaten": {"vorname": "Jörg", "nachname": "Mü\"ller"}},
            "finanzbedarf": {"kreditbetrag": 10000.5, "laufzeitInMonaten": 24},
            "aaa": [1, null, true, "x"]
        }))),
        tippgeber_externe_partner_id: format!("{client_id}-42"),
        tippgeber_partner_id: None,
        europace_vorgangsnummer: None,
        crm_kennung: None,
        messages: vec!["WARN unknown-field /vorgang/foo".to_owned()],
        failure: None,
        attempts: 1,
        created_at,
        updated_at: created_at,
        notify: false,
        next_attempt_at: None,
    }
}

fn inserted(outcome: &InsertOutcome) -> bool {
    matches!(outcome, InsertOutcome::Inserted)
}

/// An import of client `c` accepted at `at(0, 0)`, in `status` since `updated_at`.
fn with(status: ImportStatus, updated_at: DateTime<Utc>) -> ImportRecord {
    let mut record = import("c", None, at(0, 0));
    record.status = status;
    record.updated_at = updated_at;
    record
}

/// The query for all imports (one page large enough for every case).
fn all() -> ImportQuery {
    ImportQuery {
        limit: 1000,
        ..ImportQuery::all()
    }
}

/// The query for all imports in `status`.
fn status(status: ImportStatus) -> ImportQuery {
    ImportQuery {
        status: Some(status),
        ..all()
    }
}

/// Stores `next` over `last` as the importer does.
async fn step(store: &Store, last: &ImportRecord, next: &ImportRecord) -> bool {
    store
        .as_import_store()
        .transition(last.id, last.status, &ImportChange::between(last, next))
        .await
        .unwrap()
}

/// The contract cases, each given a fresh, empty store.
mod cases {
    use std::sync::Arc;

    use auth::{ClientRecord, SigningKeyRecord};

    use super::*;

    pub async fn insert_then_get_returns_the_same_record(store: &Store) {
        let imports = store.as_import_store();
        let mut record = import("client-a", Some("key-1"), Utc::now());
        record.environment = Environment::Production;
        record.tippgeber_partner_id = Some("TG123".to_owned());
        // Europace's messages travel inside the failure (issue 12): both backends keep them.
        record.failure = Some(Failure {
            europace_messages: vec!["Ungültige PLZ".to_owned(), "{\"code\":\"X\"}".to_owned()]
                .into(),
            ..Failure::new(FailureKind::InDoubt, "timeout after sending")
        });
        record.attempts = u32::MAX;
        assert!(inserted(&imports.insert(&record).await.unwrap()));

        let stored = imports.get(record.id).await.unwrap().unwrap();
        assert_eq!(stored, record);
        // Byte for byte, including the key order of the request.
        assert_eq!(
            serde_json::to_string(&stored.request).unwrap(),
            serde_json::to_string(&record.request).unwrap()
        );
        assert_eq!(imports.get(Uuid::new_v4()).await.unwrap(), None);
    }

    pub async fn optional_fields_round_trip_empty(store: &Store) {
        let imports = store.as_import_store();
        let mut record = import("client-a", None, at(0, 0));
        record.request = None;
        record.messages = Vec::new();
        record.attempts = 0;
        assert!(inserted(&imports.insert(&record).await.unwrap()));
        assert_eq!(imports.get(record.id).await.unwrap(), Some(record));
    }

    pub async fn duplicate_id_is_a_conflict(store: &Store) {
        let imports = store.as_import_store();
        let record = import("client-a", None, at(0, 1));
        imports.insert(&record).await.unwrap();
        let mut again = import("client-b", Some("k"), at(1, 1));
        again.id = record.id;
        let err = imports.insert(&again).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(imports.get(record.id).await.unwrap(), Some(record));
    }

    pub async fn transition_is_compare_and_set(store: &Store) {
        let imports = store.as_import_store();
        let record = import("client-a", Some("key-1"), at(0, 123_456_789));
        imports.insert(&record).await.unwrap();

        let mut next = record.clone();
        next.status = ImportStatus::Completed;
        next.request = None;
        next.tippgeber_partner_id = Some("TG1".to_owned());
        next.europace_vorgangsnummer = Some("AB1234".to_owned());
        next.crm_kennung = Some("DKR-X1".to_owned());
        next.messages.push("Vorgang angelegt".to_owned());
        next.failure = None;
        next.attempts = 2;
        next.updated_at = at(5, 987_654_321);
        assert!(step(store, &record, &next).await);
        assert_eq!(imports.get(record.id).await.unwrap().as_ref(), Some(&next));

        // Another writer moved on: the stale expectation changes nothing.
        let mut stale = record.clone();
        stale.status = ImportStatus::Failed;
        stale.failure = Some(Failure::new(FailureKind::Unavailable, "503"));
        assert!(!step(store, &record, &stale).await);
        assert_eq!(imports.get(record.id).await.unwrap().as_ref(), Some(&next));

        // Unknown import.
        let ghost = import("client-a", None, at(0, 0));
        let mut ghost_next = ghost.clone();
        ghost_next.status = ImportStatus::PartnerReady;
        assert!(!step(store, &ghost, &ghost_next).await);
        assert_eq!(imports.get(ghost.id).await.unwrap(), None);
    }

    pub async fn transition_keeps_drops_or_stores_the_body(store: &Store) {
        let imports = store.as_import_store();
        let record = import("client-a", None, at(0, 0));
        imports.insert(&record).await.unwrap();

        // Keep: the body is read back as it was stored, every other column as changed.
        let mut ready = record.clone();
        ready.status = ImportStatus::PartnerReady;
        ready.tippgeber_partner_id = Some("TG1".to_owned());
        ready.updated_at = at(1, 0);
        assert!(step(store, &record, &ready).await);
        assert_eq!(imports.get(record.id).await.unwrap().as_ref(), Some(&ready));

        // Drop: finished, no body.
        let mut failed = ready.clone();
        failed.status = ImportStatus::Failed;
        failed.request = None;
        failed.failure = Some(Failure::new(FailureKind::Unavailable, "503"));
        failed.updated_at = at(2, 0);
        assert!(step(store, &ready, &failed).await);
        assert_eq!(
            imports.get(record.id).await.unwrap().as_ref(),
            Some(&failed)
        );

        // Store: a retry brings a (here: another) request back.
        let mut retry = failed.clone();
        retry.status = ImportStatus::Accepted;
        retry.failure = None;
        retry.attempts = 2;
        retry.request = Some(request(serde_json::json!({"zweiter": "Versuch"})));
        retry.updated_at = at(3, 0);
        assert!(step(store, &failed, &retry).await);
        assert_eq!(imports.get(record.id).await.unwrap().as_ref(), Some(&retry));

        // Keep while finishing (the port allows it): the body stays until dropped or purged.
        let mut kept = retry.clone();
        kept.status = ImportStatus::Completed;
        kept.updated_at = at(4, 0);
        assert!(step(store, &retry, &kept).await);
        assert_eq!(imports.get(record.id).await.unwrap().as_ref(), Some(&kept));
    }

    pub async fn list_filters_and_pages_oldest_first(store: &Store) {
        let imports = store.as_import_store();
        assert!(imports.list(&all()).await.unwrap().is_empty());
        // Two imports at the same instant: the id orders them.
        let tie_time = at(10, 5);
        let (low, high) = (Uuid::from_u128(1), Uuid::from_u128(u128::MAX));
        let mut a_tie_high = import("a", None, tie_time);
        a_tie_high.id = high;
        let mut a_tie_low = import("a", None, tie_time);
        a_tie_low.id = low;
        let mut a_doubt = import("a", None, at(20, 0));
        a_doubt.status = ImportStatus::InDoubt;
        let a_late = import("a", None, at(30, 0));
        let mut b_doubt = import("b", None, at(15, 0));
        b_doubt.status = ImportStatus::InDoubt;
        for record in [&a_late, &b_doubt, &a_tie_high, &a_doubt, &a_tie_low] {
            imports.insert(record).await.unwrap();
        }
        let list = |query: ImportQuery| {
            let imports = imports.clone();
            async move { imports.list(&query).await.unwrap() }
        };

        let everything = vec![
            a_tie_low.clone(),
            a_tie_high.clone(),
            b_doubt.clone(),
            a_doubt.clone(),
            a_late.clone(),
        ];
        assert_eq!(list(all()).await, everything);
        let client_a = ImportQuery {
            client_id: Some("a".to_owned()),
            ..all()
        };
        assert_eq!(
            list(client_a.clone()).await,
            vec![
                a_tie_low.clone(),
                a_tie_high.clone(),
                a_doubt.clone(),
                a_late.clone()
            ]
        );
        let in_doubt = ImportQuery {
            status: Some(ImportStatus::InDoubt),
            ..all()
        };
        assert_eq!(
            list(in_doubt.clone()).await,
            vec![b_doubt.clone(), a_doubt.clone()]
        );
        assert_eq!(
            list(ImportQuery {
                client_id: Some("a".to_owned()),
                ..in_doubt.clone()
            })
            .await,
            vec![a_doubt.clone()]
        );
        assert!(
            list(ImportQuery {
                client_id: Some("nobody".to_owned()),
                ..all()
            })
            .await
            .is_empty()
        );
        // `since` includes the instant itself.
        assert_eq!(
            list(ImportQuery {
                since: Some(at(20, 0)),
                ..all()
            })
            .await,
            vec![a_doubt.clone(), a_late.clone()]
        );

        // Keyset paging, two at a time, across the tie: every import exactly once, in order.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = list(ImportQuery {
                after,
                limit: 2,
                ..all()
            })
            .await;
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            after = Some(ImportCursor::of(last));
            paged.extend(page);
        }
        assert_eq!(paged, everything);
        // After the lower of the tie: the higher one is next.
        assert_eq!(
            list(ImportQuery {
                after: Some(ImportCursor::of(&a_tie_low)),
                limit: 1,
                ..client_a.clone()
            })
            .await,
            vec![a_tie_high.clone()]
        );
        // All filters at once.
        assert_eq!(
            list(ImportQuery {
                client_id: Some("a".to_owned()),
                status: Some(ImportStatus::Accepted),
                since: Some(tie_time),
                after: Some(ImportCursor::of(&a_tie_high)),
                limit: 10,
            })
            .await,
            vec![a_late]
        );
    }

    pub async fn list_stale_returns_resumable_imports_changed_by_the_cutoff(store: &Store) {
        let imports = store.as_import_store();
        let cutoff = at(100, 0);
        let sending = with(ImportStatus::Sending, at(50, 0));
        let accepted = with(ImportStatus::Accepted, cutoff);
        let partner_ready = with(ImportStatus::PartnerReady, at(10, 0));
        let imported = with(ImportStatus::Imported, at(99, 999_999_999));
        let left_alone = [
            with(ImportStatus::Accepted, at(100, 1)),
            with(ImportStatus::Sending, at(200, 0)),
            with(ImportStatus::InDoubt, at(0, 0)),
            with(ImportStatus::Completed, at(0, 0)),
            with(ImportStatus::Failed, at(0, 0)),
        ];
        for record in left_alone
            .iter()
            .chain([&sending, &accepted, &partner_ready, &imported])
        {
            imports.insert(record).await.unwrap();
        }
        assert_eq!(
            imports.list_stale(cutoff).await.unwrap(),
            vec![partner_ready, sending, imported, accepted],
            "oldest change first, the cutoff itself included"
        );
        assert!(imports.list_stale(at(0, 0)).await.unwrap().is_empty());
    }

    pub async fn list_filters_by_status_oldest_first(store: &Store) {
        let imports = store.as_import_store();
        assert!(imports.list(&all()).await.unwrap().is_empty());
        let mut newest = import("c", None, at(30, 0));
        newest.status = ImportStatus::InDoubt;
        let oldest = import("c", None, at(10, 5));
        let middle = import("c", None, at(10, 6));
        let mut other = import("c", None, at(20, 0));
        other.status = ImportStatus::InDoubt;
        for record in [&newest, &oldest, &middle, &other] {
            imports.insert(record).await.unwrap();
        }

        let all = imports.list(&all()).await.unwrap();
        assert_eq!(
            all,
            vec![
                oldest.clone(),
                middle.clone(),
                other.clone(),
                newest.clone()
            ]
        );
        let in_doubt = imports.list(&status(ImportStatus::InDoubt)).await.unwrap();
        assert_eq!(in_doubt, vec![other, newest]);
        let accepted = imports.list(&status(ImportStatus::Accepted)).await.unwrap();
        assert_eq!(accepted, vec![oldest, middle]);
        assert!(
            imports
                .list(&status(ImportStatus::Sending))
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn same_idempotency_key_returns_the_first_import(store: &Store) {
        let imports = store.as_import_store();
        let first = import("client-a", Some("key-1"), at(0, 0));
        assert!(inserted(&imports.insert(&first).await.unwrap()));

        let mut second = import("client-a", Some("key-1"), at(1, 0));
        second.fingerprint = "another body".to_owned();
        assert_eq!(
            imports.insert(&second).await.unwrap(),
            InsertOutcome::IdempotencyKeyExists(Box::new(first.clone()))
        );
        assert_eq!(imports.get(second.id).await.unwrap(), None);
        assert_eq!(imports.list(&all()).await.unwrap(), vec![first]);
    }

    pub async fn idempotency_keys_are_per_client(store: &Store) {
        let imports = store.as_import_store();
        let a = import("client-a", Some("key-1"), at(0, 0));
        let b = import("client-b", Some("key-1"), at(1, 0));
        assert!(inserted(&imports.insert(&a).await.unwrap()));
        assert!(inserted(&imports.insert(&b).await.unwrap()));
        assert_eq!(imports.list(&all()).await.unwrap(), vec![a, b]);
    }

    pub async fn imports_without_key_never_conflict(store: &Store) {
        let imports = store.as_import_store();
        for n in 0..3 {
            let record = import("client-a", None, at(n, 0));
            assert!(inserted(&imports.insert(&record).await.unwrap()));
        }
        assert_eq!(imports.list(&all()).await.unwrap().len(), 3);
    }

    pub async fn concurrent_inserts_with_one_key_store_exactly_one(store: &Store) {
        let imports = store.as_import_store();
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let imports = Arc::clone(&imports);
                let record = import("client-a", Some("shared-key"), at(n, 0));
                tokio::spawn(async move {
                    let outcome = imports.insert(&record).await.unwrap();
                    (record, outcome)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut replays = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (record, InsertOutcome::Inserted) => winners.push(record),
                (_, InsertOutcome::IdempotencyKeyExists(existing)) => replays.push(*existing),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one insert wins");
        assert_eq!(replays.len(), 19);
        let winner = winners.remove(0);
        assert!(replays.iter().all(|existing| *existing == winner));
        assert_eq!(imports.list(&all()).await.unwrap(), vec![winner]);
    }

    pub async fn purge_deletes_only_finished_imports_before_cutoff(store: &Store) {
        let imports = store.as_import_store();
        let cutoff = at(100, 500);
        let old_completed = with(ImportStatus::Completed, at(0, 0));
        let old_failed = with(ImportStatus::Failed, at(100, 499));
        let keep = [
            with(ImportStatus::Completed, cutoff),
            with(ImportStatus::Failed, at(100, 501)),
            with(ImportStatus::InDoubt, at(0, 0)),
            with(ImportStatus::Accepted, at(0, 0)),
            with(ImportStatus::PartnerReady, at(0, 0)),
            with(ImportStatus::Sending, at(0, 0)),
            with(ImportStatus::Imported, at(0, 0)),
        ];
        for record in keep.iter().chain([&old_completed, &old_failed]) {
            imports.insert(record).await.unwrap();
        }

        assert_eq!(imports.purge_finished_before(cutoff).await.unwrap(), 2);
        assert_eq!(imports.get(old_completed.id).await.unwrap(), None);
        assert_eq!(imports.get(old_failed.id).await.unwrap(), None);
        for record in &keep {
            assert_eq!(imports.get(record.id).await.unwrap().as_ref(), Some(record));
        }
        assert_eq!(imports.purge_finished_before(cutoff).await.unwrap(), 0);
    }

    pub async fn tippgeber_partners_per_environment_with_what_was_sent(store: &Store) {
        let imports = store.as_import_store();
        let (test, prod) = (Environment::Test, Environment::Production);
        let tippgeber = request(serde_json::json!({})).tippgeber;
        let partner = |environment, externe, partner_id: &str| {
            TippgeberMapping::created(environment, externe, partner_id, &tippgeber)
        };
        assert_eq!(imports.tippgeber_partner(test, "c-42").await.unwrap(), None);

        // Nothing known to be sent (a partner found at Europace): stored as NULL, read empty.
        let found = TippgeberMapping::found("TG1");
        imports
            .save_tippgeber_partner(test, "c-42", &found)
            .await
            .unwrap();
        imports
            .save_tippgeber_partner(test, "c-42", &found)
            .await
            .unwrap();
        assert_eq!(
            imports.tippgeber_partner(test, "c-42").await.unwrap(),
            Some(found)
        );
        assert_eq!(imports.tippgeber_partner(prod, "c-42").await.unwrap(), None);
        assert_eq!(imports.tippgeber_partner(test, "c-43").await.unwrap(), None);

        // What was sent replaces what was known, per environment.
        let created = partner(test, "c-42", "TG1");
        assert!(!created.sent.is_empty());
        imports
            .save_tippgeber_partner(test, "c-42", &created)
            .await
            .unwrap();
        assert_eq!(
            imports.tippgeber_partner(test, "c-42").await.unwrap(),
            Some(created.clone())
        );
        let mut updated = created.clone();
        updated.record_sent(
            test,
            "c-42",
            &TippgeberUpdate {
                telefon: Some("030 999".to_owned()),
                ..TippgeberUpdate::default()
            },
        );
        assert_ne!(updated, created);
        imports
            .save_tippgeber_partner(test, "c-42", &updated)
            .await
            .unwrap();
        imports
            .save_tippgeber_partner(prod, "c-42", &partner(prod, "c-42", "PG9"))
            .await
            .unwrap();
        assert_eq!(
            imports.tippgeber_partner(test, "c-42").await.unwrap(),
            Some(updated)
        );
        assert_eq!(
            imports.tippgeber_partner(prod, "c-42").await.unwrap(),
            Some(partner(prod, "c-42", "PG9"))
        );
        // Another partnerId for the key replaces the mapping, fingerprints included.
        imports
            .save_tippgeber_partner(test, "c-42", &TippgeberMapping::found("TG2"))
            .await
            .unwrap();
        assert_eq!(
            imports.tippgeber_partner(test, "c-42").await.unwrap(),
            Some(TippgeberMapping::found("TG2"))
        );
    }

    fn client(client_id: &str, created_at: DateTime<Utc>) -> ClientRecord {
        ClientRecord {
            client_id: client_id.to_owned(),
            secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
            name: "Erika Mustermann".to_owned(),
            email: "erika@example.org".to_owned(),
            telefonnummer: "+49 30 123456".to_owned(),
            organisation: "Vergleichsportal GmbH".to_owned(),
            scopes: vec![
                "drkleinrk-api/vorgang:import".to_owned(),
                "other".to_owned(),
            ],
            revoked_at: None,
            created_at,
        }
    }

    pub async fn clients_round_trip_oldest_first(store: &Store) {
        let clients = store.as_client_store();
        assert!(clients.list_clients().await.unwrap().is_empty());
        let newer = client("client-b", at(20, 1));
        let older = client("client-a-later-name", at(10, 999_999_999));
        let mut no_scopes = client("client-c", at(15, 0));
        no_scopes.scopes = Vec::new();
        no_scopes.revoked_at = Some(at(16, 7));
        for record in [&newer, &older, &no_scopes] {
            clients.insert_client(record).await.unwrap();
        }
        assert_eq!(
            clients.get_client("client-b").await.unwrap().as_ref(),
            Some(&newer)
        );
        assert_eq!(
            clients.get_client("client-c").await.unwrap().as_ref(),
            Some(&no_scopes)
        );
        assert_eq!(clients.get_client("nobody").await.unwrap(), None);
        assert_eq!(
            clients.list_clients().await.unwrap(),
            vec![older, no_scopes, newer]
        );
    }

    pub async fn clients_revoke_and_rotate(store: &Store) {
        let clients = store.as_client_store();
        let record = client("client-a", at(0, 0));
        clients.insert_client(&record).await.unwrap();

        assert!(
            clients
                .set_client_secret_hash("client-a", "$argon2id$new")
                .await
                .unwrap()
        );
        assert!(
            !clients
                .set_client_secret_hash("nobody", "$argon2id$new")
                .await
                .unwrap()
        );
        let rotated = clients.get_client("client-a").await.unwrap().unwrap();
        assert_eq!(rotated.secret_hash, "$argon2id$new");
        assert_eq!(rotated.revoked_at, None);

        assert!(clients.revoke_client("client-a", at(5, 5)).await.unwrap());
        assert!(!clients.revoke_client("nobody", at(5, 5)).await.unwrap());
        let revoked = clients.get_client("client-a").await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(at(5, 5)));
        assert_eq!(
            revoked,
            ClientRecord {
                secret_hash: "$argon2id$new".to_owned(),
                revoked_at: Some(at(5, 5)),
                ..record
            }
        );
        // Revoking again keeps the first revocation time.
        assert!(clients.revoke_client("client-a", at(9, 0)).await.unwrap());
        let again = clients.get_client("client-a").await.unwrap().unwrap();
        assert_eq!(again.revoked_at, Some(at(5, 5)));
    }

    pub async fn revocations_increase_the_generation_and_expire(store: &Store) {
        let clients = store.as_client_store();
        clients
            .insert_client(&client("client-a", at(0, 0)))
            .await
            .unwrap();
        clients
            .insert_client(&client("client-b", at(0, 1)))
            .await
            .unwrap();
        let start = clients.revocation_generation().await.unwrap();
        assert_eq!(
            clients.revocations(0).await.unwrap(),
            auth::Revocations::default()
        );

        // A rotation is no revocation.
        clients
            .set_client_secret_hash("client-a", "$argon2id$new")
            .await
            .unwrap();
        assert_eq!(clients.revocation_generation().await.unwrap(), start);

        assert!(clients.revoke_client("client-a", at(5, 5)).await.unwrap());
        let after_client = clients.revocation_generation().await.unwrap();
        assert!(after_client > start);
        // Revoking again changes nothing, so the generation stays.
        assert!(clients.revoke_client("client-a", at(9, 0)).await.unwrap());
        assert_eq!(clients.revocation_generation().await.unwrap(), after_client);

        let token = |jti: &str, expires_at: i64| auth::RevokedToken {
            jti: jti.to_owned(),
            client_id: "client-b".to_owned(),
            expires_at,
            revoked_at: at(6, 0),
        };
        clients.revoke_token(&token("jti-1", 1_000)).await.unwrap();
        let after_token = clients.revocation_generation().await.unwrap();
        assert!(after_token > after_client);
        // The same jti again: kept once, no new generation.
        clients.revoke_token(&token("jti-1", 1_000)).await.unwrap();
        assert_eq!(clients.revocation_generation().await.unwrap(), after_token);
        clients.revoke_token(&token("jti-2", 2_000)).await.unwrap();

        let mut all = clients.revocations(0).await.unwrap();
        all.tokens.sort();
        assert_eq!(
            all,
            auth::Revocations {
                clients: vec!["client-a".to_owned()],
                tokens: vec!["jti-1".to_owned(), "jti-2".to_owned()],
            }
        );
        // Only tokens expiring at or after the bound are listed.
        assert_eq!(
            clients.revocations(1_001).await.unwrap().tokens,
            vec!["jti-2".to_owned()]
        );
        assert_eq!(clients.purge_revoked_tokens(1_000).await.unwrap(), 0);
        assert_eq!(clients.purge_revoked_tokens(1_001).await.unwrap(), 1);
        assert_eq!(
            clients.revocations(0).await.unwrap().tokens,
            vec!["jti-2".to_owned()]
        );
        // A purge is no revocation either.
        assert!(clients.revocation_generation().await.unwrap() > after_token);
        let before_purge = clients.revocation_generation().await.unwrap();
        assert_eq!(clients.purge_revoked_tokens(i64::MAX).await.unwrap(), 1);
        assert_eq!(clients.revocation_generation().await.unwrap(), before_purge);
    }

    pub async fn duplicate_client_is_a_conflict_without_personal_data(store: &Store) {
        let clients = store.as_client_store();
        let record = client("client-a", at(0, 0));
        clients.insert_client(&record).await.unwrap();
        let mut again = client("client-a", at(1, 0));
        again.email = "someone-else@example.org".to_owned();
        let err = clients.insert_client(&again).await.unwrap_err();
        assert!(matches!(err, auth::StoreError::Conflict(_)), "{err:?}");
        let text = format!("{err} {err:?}");
        for value in ["client-a", "example.org", "Mustermann", "123456"] {
            assert!(!text.contains(value), "{text}");
        }
        assert_eq!(clients.get_client("client-a").await.unwrap(), Some(record));
    }

    fn key(
        kid: &str,
        created_at: DateTime<Utc>,
        retired_at: Option<DateTime<Utc>>,
    ) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.to_owned(),
            algorithm: "EdDSA".to_owned(),
            private_key: vec![0, 1, 2, 255, 254, 0, 128],
            encrypted: kid.ends_with('e'),
            public_key: (0..=255).collect(),
            created_at,
            retired_at,
        }
    }

    pub async fn signing_keys_newest_first_and_retirement(store: &Store) {
        let keys = store.as_signing_key_store();
        assert!(keys.list_keys(at(0, 0)).await.unwrap().is_empty());
        let long_retired = key("k0", at(0, 0), Some(at(5, 0)));
        let k1 = key("k1e", at(10, 1), None);
        let k2 = key("k2", at(10, 2), None);
        let k3 = key("k3e", at(30, 0), None);
        for record in [&k2, &long_retired, &k3, &k1] {
            keys.insert_key(record).await.unwrap();
        }
        assert_eq!(
            keys.list_keys(at(0, 0)).await.unwrap(),
            vec![k3.clone(), k2.clone(), k1.clone(), long_retired.clone()]
        );
        // Retired before (or exactly at) `retired_after`: no longer listed.
        assert_eq!(
            keys.list_keys(at(5, 0)).await.unwrap(),
            vec![k3.clone(), k2.clone(), k1.clone()]
        );

        let retired = at(40, 40);
        keys.retire_other_keys("k3e", retired).await.unwrap();
        let retired_k1 = SigningKeyRecord {
            retired_at: Some(retired),
            ..k1
        };
        let retired_k2 = SigningKeyRecord {
            retired_at: Some(retired),
            ..k2
        };
        assert_eq!(
            keys.list_keys(at(40, 39)).await.unwrap(),
            vec![k3.clone(), retired_k2, retired_k1]
        );
        assert_eq!(keys.list_keys(retired).await.unwrap(), vec![k3.clone()]);
        // The already retired key kept its time.
        assert_eq!(
            keys.list_keys(at(4, 0)).await.unwrap().last(),
            Some(&long_retired)
        );
        // Retiring around the only active key changes nothing.
        keys.retire_other_keys("k3e", at(50, 0)).await.unwrap();
        assert_eq!(keys.list_keys(retired).await.unwrap(), vec![k3]);
    }

    pub async fn duplicate_kid_is_a_conflict(store: &Store) {
        let keys = store.as_signing_key_store();
        let record = key("k1", at(0, 0), None);
        keys.insert_key(&record).await.unwrap();
        let err = keys
            .insert_key(&key("k1", at(1, 0), None))
            .await
            .unwrap_err();
        assert!(matches!(err, auth::StoreError::Conflict(_)), "{err:?}");
        assert_eq!(keys.list_keys(at(0, 0)).await.unwrap(), vec![record]);
    }

    /// Moves `record` to `QUEUED`, due at `due`, as the importer queues it.
    async fn queue(store: &Store, record: &ImportRecord, due: DateTime<Utc>) -> ImportRecord {
        let mut queued = record.clone();
        queued.status = ImportStatus::Queued;
        queued.notify = true;
        queued.next_attempt_at = Some(due);
        queued.failure = Some(Failure::new(FailureKind::Unavailable, "status 503"));
        assert!(step(store, record, &queued).await);
        queued
    }

    pub async fn queued_imports_keep_their_bookkeeping_and_are_claimed_once_when_due(
        store: &Store,
    ) {
        let imports = store.as_import_store();
        let record = import("c", None, at(0, 0));
        imports.insert(&record).await.unwrap();
        let queued = queue(store, &record, at(10, 7)).await;
        assert_eq!(imports.get(record.id).await.unwrap().unwrap(), queued);
        assert_eq!(
            imports.count_by_status(ImportStatus::Queued).await.unwrap(),
            1
        );
        assert_eq!(
            imports.list(&status(ImportStatus::Queued)).await.unwrap(),
            vec![queued.clone()]
        );
        // Not stale for the resume, never purged: it waits for its delivery.
        assert!(imports.list_stale(at(1000, 0)).await.unwrap().is_empty());
        assert_eq!(imports.purge_finished_before(at(1000, 0)).await.unwrap(), 0);

        assert!(
            imports
                .claim_queued(at(10, 6), 10)
                .await
                .unwrap()
                .is_empty(),
            "not yet due"
        );
        let claimed = imports.claim_queued(at(10, 7), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let claimed = &claimed[0];
        assert_eq!(claimed.status, ImportStatus::Accepted);
        assert_eq!(claimed.updated_at, at(10, 7));
        assert_eq!(claimed.attempts, 2);
        assert_eq!(claimed.next_attempt_at, None);
        assert_eq!(claimed.failure, None);
        assert!(claimed.notify, "notify stays");
        assert_eq!(claimed.request, record.request, "the body stays");
        assert!(
            imports
                .claim_queued(at(99, 0), 10)
                .await
                .unwrap()
                .is_empty(),
            "claimed once"
        );

        // A change that sets nothing of the bookkeeping leaves it as stored.
        let mut sending = claimed.clone();
        sending.status = ImportStatus::Sending;
        assert!(step(store, claimed, &sending).await);
        assert!(imports.get(record.id).await.unwrap().unwrap().notify);
    }

    pub async fn concurrent_claims_take_each_queued_import_once(store: &Store) {
        let imports = store.as_import_store();
        let mut ids = Vec::new();
        for n in 0..30 {
            let record = import("c", None, at(n, 0));
            imports.insert(&record).await.unwrap();
            queue(store, &record, at(n, 1)).await;
            ids.push(record.id);
        }
        let claims: Vec<_> = (0..4)
            .map(|_| {
                let imports = imports.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = imports.claim_queued(at(100, 0), 3).await.unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|r| r.id));
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claim in claims {
            claimed.extend(claim.await.unwrap());
        }
        claimed.sort();
        ids.sort();
        assert_eq!(claimed, ids, "every queued import claimed exactly once");
    }

    pub async fn webhooks_are_set_read_and_removed(store: &Store) {
        let webhooks = store.as_webhook_store();
        let target = vorgang_core::WebhookTarget {
            url: "https://partner.example/hooks".to_owned(),
            sealed_secret: vec![0, 1, 2, 255],
            encrypted: true,
        };
        assert!(!webhooks.set_webhook("nobody", Some(&target)).await.unwrap());
        store
            .as_client_store()
            .insert_client(&client("c", at(0, 0)))
            .await
            .unwrap();
        assert_eq!(webhooks.webhook("c").await.unwrap(), None);
        assert!(webhooks.set_webhook("c", Some(&target)).await.unwrap());
        assert_eq!(webhooks.webhook("c").await.unwrap(), Some(target));
        assert!(webhooks.set_webhook("c", None).await.unwrap());
        assert_eq!(webhooks.webhook("c").await.unwrap(), None);
        assert_eq!(webhooks.webhook("nobody").await.unwrap(), None);
    }

    pub async fn events_are_written_with_their_change_and_leased_once(store: &Store) {
        let imports = store.as_import_store();
        let webhooks = store.as_webhook_store();
        let clients = store.as_client_store();
        clients
            .insert_client(&client("with-hook", at(0, 0)))
            .await
            .unwrap();
        clients
            .insert_client(&client("without", at(0, 0)))
            .await
            .unwrap();
        let target = vorgang_core::WebhookTarget {
            url: "https://partner.example/hooks".to_owned(),
            sealed_secret: vec![7; 32],
            encrypted: false,
        };
        assert!(
            webhooks
                .set_webhook("with-hook", Some(&target))
                .await
                .unwrap()
        );

        for (before, client_id) in [(0, "with-hook"), (1, "without")] {
            let record = import(client_id, None, at(0, 0));
            imports.insert(&record).await.unwrap();
            let mut done = record.clone();
            done.status = ImportStatus::Completed;
            done.request = None;
            done.europace_vorgangsnummer = Some("AB1234".to_owned());
            let event = vorgang_core::WebhookEvent::of(&done, at(5, 0)).unwrap();
            // A lost compare-and-set writes no event.
            let change = ImportChange::between(&record, &done).with_event(Some(&event));
            assert!(
                !imports
                    .transition(record.id, ImportStatus::Sending, &change)
                    .await
                    .unwrap()
            );
            assert_eq!(webhooks.count_events().await.unwrap(), before);
            assert!(
                imports
                    .transition(record.id, record.status, &change)
                    .await
                    .unwrap()
            );
            assert_eq!(imports.get(record.id).await.unwrap().unwrap().request, None);
        }
        // Only the client with a webhook has an event.
        assert_eq!(webhooks.count_events().await.unwrap(), 1);

        assert!(
            webhooks
                .claim_events(at(4, 0), at(4, 0), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let first = webhooks
            .claim_events(at(5, 0), at(65, 0), 10)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].client_id, "with-hook");
        assert_eq!(first[0].attempts, 1);
        assert_eq!(first[0].created_at, at(5, 0));
        let body: serde_json::Value = serde_json::from_str(&first[0].payload).unwrap();
        assert_eq!(body["type"], "vorgang.completed");
        assert_eq!(body["data"]["europaceVorgangsnummer"], "AB1234");
        assert!(!first[0].payload.contains("Jörg"), "no personal data");
        // Leased: no one else gets it before the lease ends, then the same id again.
        assert!(
            webhooks
                .claim_events(at(64, 0), at(124, 0), 10)
                .await
                .unwrap()
                .is_empty()
        );
        webhooks.retry_event(&first[0].id, at(70, 0)).await.unwrap();
        assert!(
            webhooks
                .claim_events(at(69, 0), at(129, 0), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = webhooks
            .claim_events(at(70, 0), at(130, 0), 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(again[0].attempts, 2);
        webhooks.remove_event(&first[0].id).await.unwrap();
        assert_eq!(webhooks.count_events().await.unwrap(), 0);
        assert!(
            webhooks
                .claim_events(at(999, 0), at(999, 0), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn count_by_status_counts_each_state(store: &Store) {
        let imports = store.as_import_store();
        for status in ImportStatus::ALL {
            assert_eq!(
                imports.count_by_status(status).await.unwrap(),
                0,
                "{status}"
            );
        }
        let states = [
            ImportStatus::InDoubt,
            ImportStatus::InDoubt,
            ImportStatus::Accepted,
            ImportStatus::Completed,
            ImportStatus::InDoubt,
        ];
        let mut stored = Vec::new();
        for (n, status) in states.into_iter().enumerate() {
            let mut record = import("c", None, at(i64::try_from(n).unwrap(), 0));
            record.status = status;
            imports.insert(&record).await.unwrap();
            stored.push(record);
        }
        let count = |status| {
            let imports = imports.clone();
            async move { imports.count_by_status(status).await.unwrap() }
        };
        assert_eq!(count(ImportStatus::InDoubt).await, 3);
        assert_eq!(count(ImportStatus::Accepted).await, 1);
        assert_eq!(count(ImportStatus::Completed).await, 1);
        assert_eq!(count(ImportStatus::Sending).await, 0);
        // A transition moves the import from one count to the other.
        let mut resolved = stored[0].clone();
        resolved.status = ImportStatus::Failed;
        assert!(step(store, &stored[0], &resolved).await);
        assert_eq!(count(ImportStatus::InDoubt).await, 2);
        assert_eq!(count(ImportStatus::Failed).await, 1);
    }

    pub async fn ping_answers(store: &Store) {
        store.as_import_store().ping().await.unwrap();
    }

    pub async fn closed_store_is_unavailable(store: &Store) {
        let imports = store.as_import_store();
        let record = import("client-a", None, at(1_000, 0));
        imports.insert(&record).await.unwrap();
        store.close().await;
        let err = imports.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        // The import writes (SQLite's writer thread, PostgreSQL's batching writer) too.
        let err = imports
            .insert(&import("client-a", None, at(2_000, 0)))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let mut done = record.clone();
        done.status = ImportStatus::Failed;
        done.request = None;
        let err = imports
            .transition(
                record.id,
                ImportStatus::Accepted,
                &ImportChange::between(&record, &done),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    }
}

/// A fresh SQLite file in a temporary directory.
struct SqliteFixture {
    store: Store,
    _dir: tempfile::TempDir,
}

impl SqliteFixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("vorgang.db").display()
        );
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        Self { store, _dir: dir }
    }

    async fn finish(self) {
        self.store.close().await;
    }
}

/// A fresh PostgreSQL database.
struct PostgresFixture {
    store: Store,
    database: PostgresTestDatabase,
}

impl PostgresFixture {
    async fn new() -> Self {
        let database = fresh_postgres_database(&postgres_admin_url())
            .await
            .expect("PostgreSQL test server (VORGANG_TEST_POSTGRES_URL) reachable");
        let store = Store::connect(database.url()).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        Self { store, database }
    }

    async fn finish(self) {
        self.store.close().await;
        self.database.drop_database().await.unwrap();
    }
}

macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fixture = super::SqliteFixture::new().await;
                    super::cases::$case(&fixture.store).await;
                    fixture.finish().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fixture = super::PostgresFixture::new().await;
                    super::cases::$case(&fixture.store).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}

contract_tests!(
    insert_then_get_returns_the_same_record,
    optional_fields_round_trip_empty,
    duplicate_id_is_a_conflict,
    transition_is_compare_and_set,
    transition_keeps_drops_or_stores_the_body,
    list_filters_by_status_oldest_first,
    list_filters_and_pages_oldest_first,
    list_stale_returns_resumable_imports_changed_by_the_cutoff,
    same_idempotency_key_returns_the_first_import,
    idempotency_keys_are_per_client,
    imports_without_key_never_conflict,
    concurrent_inserts_with_one_key_store_exactly_one,
    purge_deletes_only_finished_imports_before_cutoff,
    tippgeber_partners_per_environment_with_what_was_sent,
    clients_round_trip_oldest_first,
    clients_revoke_and_rotate,
    revocations_increase_the_generation_and_expire,
    duplicate_client_is_a_conflict_without_personal_data,
    signing_keys_newest_first_and_retirement,
    duplicate_kid_is_a_conflict,
    count_by_status_counts_each_state,
    queued_imports_keep_their_bookkeeping_and_are_claimed_once_when_due,
    concurrent_claims_take_each_queued_import_once,
    webhooks_are_set_read_and_removed,
    events_are_written_with_their_change_and_leased_once,
    ping_answers,
    closed_store_is_unavailable,
);
