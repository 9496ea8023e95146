//! Shared helpers of the tests that run the built binary (or another program) as a child
//! process, and [`SendJson`] for every HTTP test: `mod support;` in the test files at the top
//! level, `#[path = "../support/mod.rs"]` in `api/main.rs` (whose `helpers` use it).
#![allow(dead_code)] // each test file uses a part
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The `vorgang-server` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vorgang-server");

/// A port free at the moment of the call (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes every `VORGANG_*` variable the test process inherited from `command`, so a setting
/// of the developer's shell never leaks into the binary under test.
pub fn without_vorgang_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VORGANG_") {
            command.env_remove(name);
        }
    }
    command
}

/// [`BIN`] with `args`, no inherited `VORGANG_*` variable, `RUST_LOG=warn` and no stdin.
pub fn binary(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    without_vorgang_env(&mut command)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// Starts `command` with stdout discarded and stderr written to the file `log`.
pub fn spawn_logged(command: &mut Command, log: &std::path::Path) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// A child process, killed and reaped when dropped (also when an assertion fails).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Extension of reqwest's request builder: send, and read the answer as JSON.
pub trait SendJson {
    /// Sends the request and parses the answer; a failure of either is a failed test.
    async fn send_json<T: serde::de::DeserializeOwned>(self) -> T;
}

impl SendJson for reqwest::RequestBuilder {
    async fn send_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// A log sink the test reads back: everything written to it since it was made (the service's
/// subscriber writes its JSON lines here in the tests that capture logs).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far, as text (asserts it is UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
