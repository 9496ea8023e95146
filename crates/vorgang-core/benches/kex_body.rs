//! Building the KEX import body of the published example: `cargo bench -p vorgang-core`.
//!
//! `KexBody::build` (what the importer sends: the text written straight from the request)
//! against the earlier way, `kex_body` (a copy of the Vorgang as a JSON value) serialised.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;
use vorgang_core::{KexBody, kex_body};

const SEED: &[u8] = include_bytes!("../../../examples/seed-request.json");

fn kex_body_build(c: &mut Criterion) {
    let request = vorgang_model::parse_import_request(SEED).unwrap();
    let id = Uuid::new_v4();
    c.bench_function("KexBody::build(seed)", |b| {
        b.iter(|| KexBody::build(black_box(&request), id, "KBT01", "TG001"));
    });
    c.bench_function(
        "serde_json::to_vec(kex_body(seed)) (before issue 10)",
        |b| {
            b.iter(|| serde_json::to_vec(&kex_body(black_box(&request), id, "KBT01", "TG001")));
        },
    );
}

criterion_group!(benches, kex_body_build);
criterion_main!(benches);
