//! Harnesses of the cargo-fuzz targets of the Vorgang Import Service (see `fuzz/README.md`).
//!
//! Each module is also compiled by `crates/vorgang-server/tests/fuzz_seeds.rs`, which replays
//! the committed seeds through the same functions on stable Rust: keep the modules free of
//! fuzzing-only crates.

pub mod request;
pub mod token;
pub mod token_endpoint;
