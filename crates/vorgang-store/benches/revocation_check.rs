//! The revocation check of one authorized request, before and after the revocation cache
//! (issue 10, docs/performance.md "Revocation"), on SQLite and (when reachable) PostgreSQL:
//!
//! - `read_client_row`: what every bearer check did before: read the client's row;
//! - `cache_zero_staleness`: the cache with a zero bound, i.e. the generation read on every
//!   check (the cheapest possible database-backed check);
//! - `cache`: the cache as the server runs it (200 ms bound, background refresher);
//! - `jwt_validate`: the signature and claims check of a token not seen before (the validator's
//!   cache of verified tokens off), for scale.
//!
//! `cargo bench -p vorgang-store --bench revocation_check`. Each iteration blocks on a Tokio
//! runtime, as a request handler awaits; the same overhead is in every case.
#![allow(clippy::expect_used, missing_docs)] // a bench: a panic is a failed set-up

use std::sync::Arc;
use std::time::Duration;

use auth::{
    ClientRegistry, KeyRing, KeyRingConfig, NewClient, SecretHasher, SystemClock, TokenIssuer,
    TokenSettings,
};
use criterion::{Criterion, criterion_group, criterion_main};
use vorgang_store::Store;

struct Setup {
    store: Store,
    registry: ClientRegistry,
    zero: ClientRegistry,
    client_id: String,
    jti: String,
    token: String,
    validator: auth::TokenValidator,
}

async fn setup(url: &str) -> Setup {
    let store = Store::connect(url).await.expect("store");
    let clock = Arc::new(SystemClock);
    let hasher = SecretHasher::with_cost(64, 1, 1).expect("hasher");
    let registry =
        ClientRegistry::with_hasher(store.as_client_store(), clock.clone(), hasher.clone());
    let zero = ClientRegistry::with_hasher(store.as_client_store(), clock.clone(), hasher)
        .with_revocation_staleness(Duration::ZERO);
    let (client, _) = registry
        .register(NewClient {
            name: "Bench".into(),
            email: "bench@example.org".into(),
            telefonnummer: "030 1234".into(),
            organisation: "Bench GmbH".into(),
            scopes: vec![],
        })
        .await
        .expect("register");
    // Some revoked clients and tokens, as in a service that has run for a while.
    for n in 0..20 {
        let (other, _) = registry
            .register(NewClient {
                name: "Other".into(),
                email: "other@example.org".into(),
                telefonnummer: "030 1234".into(),
                organisation: format!("Other {n}"),
                scopes: vec![],
            })
            .await
            .expect("register");
        store
            .as_client_store()
            .revoke_client(&other.client_id, chrono::Utc::now())
            .await
            .expect("revoke");
    }
    let keys = Arc::new(
        KeyRing::load_or_create(
            store.as_signing_key_store(),
            None,
            clock.clone(),
            KeyRingConfig::default(),
        )
        .await
        .expect("keys"),
    );
    let settings = TokenSettings::new("http://bench");
    let issuer = TokenIssuer::new(keys.clone(), clock.clone(), settings.clone());
    let issued = issuer
        .issue(&client.client_id, &[auth::IMPORT_SCOPE.to_owned()])
        .await
        .expect("issue");
    registry.revocations().spawn_refresher();
    Setup {
        store,
        registry,
        zero,
        client_id: client.client_id,
        jti: issued.jti,
        token: issued.access_token,
        // Without the cache of verified tokens: the full signature check, for scale.
        validator: auth::TokenValidator::with_cache_capacity(keys, clock, settings, 0),
    }
}

fn bench_backend(c: &mut Criterion, runtime: &tokio::runtime::Runtime, name: &str, url: &str) {
    let s = runtime.block_on(setup(url));
    let clients = s.store.as_client_store();
    let mut group = c.benchmark_group(format!("revocation_check/{name}"));
    group.bench_function("read_client_row", |b| {
        b.iter(|| {
            runtime
                .block_on(clients.get_client(&s.client_id))
                .expect("read")
                .expect("client")
        });
    });
    group.bench_function("cache_zero_staleness", |b| {
        b.iter(|| {
            assert!(
                runtime
                    .block_on(s.zero.is_token_active(&s.client_id, &s.jti))
                    .expect("check")
            );
        });
    });
    group.bench_function("cache", |b| {
        b.iter(|| {
            assert!(
                runtime
                    .block_on(s.registry.is_token_active(&s.client_id, &s.jti))
                    .expect("check")
            );
        });
    });
    group.bench_function("jwt_validate", |b| {
        b.iter(|| {
            runtime
                .block_on(s.validator.validate(&s.token))
                .expect("valid")
        });
    });
    group.finish();
}

fn revocation_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    bench_backend(c, &runtime, "sqlite", &url);

    let admin = vorgang_store::testing::postgres_admin_url();
    match runtime.block_on(vorgang_store::testing::fresh_postgres_database(&admin)) {
        Ok(database) => {
            bench_backend(c, &runtime, "postgres", database.url());
            runtime
                .block_on(database.drop_database())
                .expect("drop the bench database");
        }
        Err(error) => eprintln!("PostgreSQL not reachable, skipped: {error}"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = revocation_check
}
criterion_main!(benches);
