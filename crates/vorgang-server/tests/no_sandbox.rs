//! The binary built without the default feature `embedded-sandbox`:
//! `cargo test -p vorgang-server --no-default-features --test no_sandbox` (`.ci/run` does).
//! With the feature (the default build) this file is empty.
#![cfg(not(feature = "embedded-sandbox"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

mod support;

use std::process::Output;

/// The binary with `args` in a fresh directory, no inherited `VORGANG_*` variable.
fn run(dir: &tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    support::binary(args)
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn without_europace_base_url_the_service_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&dir, &["serve"], &[("VORGANG_LISTEN", "127.0.0.1:0")]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("europace.base_url: required, this build has no embedded sandbox"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("vorgang.db").exists(),
        "refused before touching the database"
    );

    // `config check` names the same problem, on stderr (nothing on stdout: docs/reference/cli.md,
    // operations.md §1).
    let output = run(&dir, &["config", "check"], &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(text(&output.stderr).contains("europace.base_url: required"));
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[test]
fn there_is_no_sandbox_command() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&dir, &["sandbox", "--listen", "127.0.0.1:0"], &[]);
    // clap: an unknown subcommand is a usage error.
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).contains("unrecognized subcommand"));
    let help = run(&dir, &["--help"], &[]);
    assert!(help.status.success());
    assert!(!text(&help.stdout).contains("sandbox"), "{help:?}");
}
