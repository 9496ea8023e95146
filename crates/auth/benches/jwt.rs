//! The JWT check of every `POST /vorgang`: `cargo bench -p auth`.
//!
//! `TokenValidator::validate`: header, EdDSA signature, `iss`/`aud`/claims, lifetime and times,
//! on a token our issuer signed, once with the cache of verified tokens switched off (every call
//! verifies the signature) and once as served (the same token again: a SHA-256 and a look-up).
//! The revocation check (`ClientRegistry::is_token_active`) is not part of it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use auth::memory::{ManualClock, MemorySigningKeyStore};
use auth::{KeyRing, KeyRingConfig, TokenIssuer, TokenSettings, TokenValidator};
use criterion::{Criterion, criterion_group, criterion_main};

fn jwt_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = Arc::new(ManualClock::at_timestamp(1_800_000_000));
    let keys = Arc::new(
        runtime
            .block_on(KeyRing::load_or_create(
                Arc::new(MemorySigningKeyStore::default()),
                None,
                clock.clone(),
                KeyRingConfig::default(),
            ))
            .unwrap(),
    );
    let settings = TokenSettings::new("http://127.0.0.1:8080");
    let issuer = TokenIssuer::new(keys.clone(), clock.clone(), settings.clone());
    let validator =
        TokenValidator::with_cache_capacity(keys.clone(), clock.clone(), settings.clone(), 0);
    let cached = TokenValidator::new(keys, clock, settings);
    let token = runtime
        .block_on(issuer.issue("bench-client", &["drkleinrk-api/vorgang:import".to_owned()]))
        .unwrap()
        .access_token;
    assert!(runtime.block_on(validator.validate(&token)).is_ok());

    assert!(runtime.block_on(cached.validate(&token)).is_ok());

    c.bench_function("TokenValidator::validate (EdDSA)", |b| {
        b.iter(|| runtime.block_on(validator.validate(black_box(&token))));
    });
    c.bench_function("TokenValidator::validate (cached)", |b| {
        b.iter(|| runtime.block_on(cached.validate(black_box(&token))));
    });
}

criterion_group!(benches, jwt_check);
criterion_main!(benches);
