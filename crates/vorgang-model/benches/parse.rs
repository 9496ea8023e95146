//! Parse + validate of the published example: `cargo bench -p vorgang-model`.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const SEED: &[u8] = include_bytes!("../../../examples/seed-request.json");

fn parse_and_validate(c: &mut Criterion) {
    c.bench_function("parse_import_request(seed)", |b| {
        b.iter(|| vorgang_model::parse_import_request(black_box(SEED)));
    });
    c.bench_function("serde_json::from_slice(seed) (baseline)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(SEED)));
    });
}

criterion_group!(benches, parse_and_validate);
criterion_main!(benches);
