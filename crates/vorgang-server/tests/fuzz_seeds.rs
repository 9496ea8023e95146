//! Replays the committed seed corpus of the cargo-fuzz targets (`fuzz/seeds/<target>/`) through
//! the very harness functions the targets call, on stable Rust: `cargo test --workspace` keeps
//! the corpus and the harnesses' oracles exercised without nightly or libFuzzer.
//!
//! The harness sources live in `fuzz/src/` (the fuzz crate is outside the workspace) and are
//! compiled into this test with `#[path]`.

#[path = "../../../fuzz/src/request.rs"]
#[allow(dead_code)]
mod request;
#[path = "../../../fuzz/src/token.rs"]
#[allow(dead_code)]
mod token;
#[path = "../../../fuzz/src/token_endpoint.rs"]
#[allow(dead_code)]
mod token_endpoint;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

/// Runs every seed of `target` through `harness`; fails naming each seed that panicked.
/// Returns how many seeds the harness reported as accepted, and how many there were.
fn replay(target: &str, harness: impl Fn(&[u8]) -> bool) -> (usize, usize) {
    let dir = seed_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{target}: only {} seeds", files.len());
    let mut failed = Vec::new();
    let mut accepted = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        match catch_unwind(AssertUnwindSafe(|| harness(&bytes))) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(_) => failed.push(file.display().to_string()),
        }
    }
    assert!(failed.is_empty(), "{target}: seeds that panic: {failed:#?}");
    (accepted, files.len())
}

#[test]
fn parse_request_seeds_pass_the_harness() {
    let (accepted, total) = replay("parse_request", |data| {
        request::parse_request(data);
        vorgang_model::parse_import_request_at(data, request::today()).is_ok()
    });
    // Both ways through the validator are seeded.
    assert!(accepted >= 5, "{accepted} of {total} accepted");
    assert!(total - accepted >= 5, "{accepted} of {total} accepted");
}

#[test]
fn token_string_seeds_pass_the_harness() {
    let (accepted, total) = replay("token_string", token::token_string);
    // The committed real tokens still verify: the harness keys and clock are what they were
    // when the seeds were made, so the fuzzer starts past the signature check.
    assert!(accepted >= 3, "{accepted} of {total} valid");
    assert!(total - accepted >= 10, "{accepted} of {total} valid");
}

#[test]
fn token_structured_seeds_pass_the_harness() {
    let (accepted, total) = replay("token_structured", token::token_structured);
    assert!(accepted >= 3, "{accepted} of {total} authorized");
    assert!(total - accepted >= 20, "{accepted} of {total} authorized");
}

#[test]
fn token_endpoint_seeds_pass_the_harness() {
    let (accepted, total) = replay("token_endpoint", token_endpoint::token_request);
    assert!(accepted >= 4, "{accepted} of {total} accepted");
    assert!(total - accepted >= 8, "{accepted} of {total} accepted");
}

/// The structured harness's oracles hold both ways: it refuses what it must, and a seed that
/// breaks a rule is refused (if `must_refuse` were wrong, this names the seed).
#[test]
fn structured_seeds_are_refused_or_accepted_as_named() {
    for (name, bytes) in token::structured_seeds() {
        let authorized = token::token_structured(&bytes);
        if name.starts_with("ttl-") {
            // `exp - iat` above the token lifetime: accepted until issue 8, item 7 is fixed;
            // the harness asserts nothing about it either way.
            continue;
        }
        let expected = name.starts_with("valid");
        assert_eq!(authorized, expected, "seed {name}");
    }
}

/// Writes the generated seeds of the token targets (run after changing the harness keys or
/// the seed lists): `cargo test -p vorgang-server --test fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn regenerate_token_seeds() {
    for (target, seeds) in [
        ("token_string", token::string_seeds()),
        ("token_structured", token::structured_seeds()),
        ("token_endpoint", token_endpoint::seeds()),
    ] {
        let dir = seed_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
