//! The command line (docs/reference/cli.md), driving the real binary against a fresh SQLite
//! database.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::SystemClock;
use serde_json::Value;
use vorgang_store::Store;

use support::{BIN, KillOnDrop as Running, SendJson as _, binary, free_port, spawn_logged};

/// A temporary directory with a database URL for it.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An env whose directory holds `v.toml` with `toml` (pass `--config v.toml`).
    fn with_config(toml: &str) -> Self {
        let env = Self::new();
        std::fs::write(env.dir.path().join("v.toml"), toml).unwrap();
        env
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}/v.db?mode=rwc", self.dir.path().display())
    }

    /// The binary with `args`, no inherited `VORGANG_*` variable, the database of this env and
    /// the working directory in it (so a default `vorgang.db` would land there, too).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = binary(args);
        command
            .current_dir(self.dir.path())
            .env("VORGANG_DATABASE_URL", self.database_url());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    async fn store(&self) -> Store {
        Store::connect(&self.database_url()).await.unwrap()
    }

    /// `clients add` with valid contact data; returns `(client_id, client_secret)`.
    fn add_client(&self, extra: &[&str]) -> (String, String) {
        let mut args = vec![
            "clients",
            "add",
            "--name",
            "Erika Mustermann",
            "--email",
            "erika@partner.example",
            "--telefonnummer",
            "+49 30 1234",
            "--organisation",
            "Vergleichsportal GmbH",
        ];
        args.extend_from_slice(extra);
        let output = self.run(&args);
        assert_success(&output);
        let lines = json_lines(&output);
        assert_eq!(lines.len(), 1, "exactly one line: {lines:?}");
        let line = &lines[0];
        let object = line.as_object().unwrap();
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            ["client_id", "client_secret"]
        );
        (
            line["client_id"].as_str().unwrap().to_owned(),
            line["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
}

/// Asserts exit 1 with nothing on stdout; returns stderr (the problems, one a line).
fn refused_silently(output: &Output) -> String {
    assert_exit_1(output);
    assert_eq!(stdout(output), "", "nothing on stdout");
    stderr(output)
}

fn assert_exit_1(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Every stdout line parsed as JSON (a line that is not JSON fails the test).
fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"))
        })
        .collect()
}

fn registry_of(store: &Store) -> auth::ClientRegistry {
    auth::ClientRegistry::new(store.as_client_store(), Arc::new(SystemClock))
}

#[tokio::test]
async fn clients_add_prints_one_json_line_and_stores_only_the_hash() {
    let env = Env::new();
    let (client_id, secret) = env.add_client(&[]);
    assert!(client_id.starts_with("drk_"));
    assert!(secret.len() >= 43);

    let store = env.store().await;
    let registry = registry_of(&store);
    let record = registry.get(&client_id).await.unwrap().unwrap();
    assert!(
        record
            .secret_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(!record.secret_hash.contains(&secret));
    assert_eq!(record.scopes, [auth::IMPORT_SCOPE]);
    assert!(
        registry
            .authenticate(&client_id, &secret)
            .await
            .unwrap()
            .is_some()
    );
    store.close().await;

    // Scopes given on the command line.
    let (reader, _) = env.add_client(&["--scope", "drkleinrk-api/vorgang:read"]);
    let store = env.store().await;
    let record = registry_of(&store).get(&reader).await.unwrap().unwrap();
    assert_eq!(record.scopes, ["drkleinrk-api/vorgang:read"]);
    store.close().await;

    // Invalid contact data: exit 1, nothing on stdout.
    let output = env.run(&[
        "clients",
        "add",
        "--name",
        " ",
        "--email",
        "e@example.org",
        "--telefonnummer",
        "1",
        "--organisation",
        "O",
    ]);
    assert_exit_1(&output);
    assert!(stdout(&output).is_empty());
}

#[tokio::test]
async fn clients_list_prints_one_line_per_client_without_secrets() {
    let env = Env::new();
    let (first, first_secret) = env.add_client(&[]);
    let (second, second_secret) = env.add_client(&[]);
    let output = env.run(&["clients", "list"]);
    assert_success(&output);
    let lines = json_lines(&output);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    let text = stdout(&output);
    for forbidden in [
        first_secret.as_str(),
        second_secret.as_str(),
        "argon2",
        "secret",
        "hash",
    ] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
    assert_eq!(lines[0]["revoked"], false);
    assert_eq!(lines[0]["organisation"], "Vergleichsportal GmbH");
    assert_eq!(lines[0]["webhook_url"], serde_json::Value::Null);

    // A webhook URL is listed; its secret never is.
    let url = "https://partner.example/hooks/vorgang";
    let output = env.run(&["clients", "set-webhook", &second, url]);
    assert_success(&output);
    let webhook_secret = json_lines(&output)[0]["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = env.run(&["clients", "list"]);
    assert_success(&output);
    let lines = json_lines(&output);
    assert_eq!(lines[0]["webhook_url"], serde_json::Value::Null);
    assert_eq!(lines[1]["webhook_url"], url);
    let text = stdout(&output);
    assert!(
        !text.contains(&webhook_secret) && !text.contains("whsec_"),
        "{text}"
    );
}

#[tokio::test]
async fn clients_revoke_and_rotate() {
    let env = Env::new();
    let (id, old_secret) = env.add_client(&[]);

    // Rotate: a new secret, printed like `clients add`; the old one stops working.
    let output = env.run(&["clients", "rotate", &id]);
    assert_success(&output);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["client_id"], id.as_str());
    let new_secret = lines[0]["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let store = env.store().await;
    let registry = registry_of(&store);
    assert!(
        registry
            .authenticate(&id, &old_secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        registry
            .authenticate(&id, &new_secret)
            .await
            .unwrap()
            .is_some()
    );

    // Revoke: the client is inactive (its tokens stop working at once).
    let output = env.run(&["clients", "revoke", &id]);
    assert_success(&output);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["client_id"], id.as_str());
    assert!(!registry.is_active(&id).await.unwrap());
    assert!(
        registry
            .authenticate(&id, &new_secret)
            .await
            .unwrap()
            .is_none()
    );
    let output = env.run(&["clients", "list"]);
    assert_eq!(json_lines(&output)[0]["revoked"], true);

    // A revoked client gets no new secret: exit 1, nothing on stdout, nothing changed.
    let hash_before = registry.get(&id).await.unwrap().unwrap().secret_hash;
    let output = env.run(&["clients", "rotate", &id]);
    assert_exit_1(&output);
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains(&format!("client {id} is revoked")),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        registry.get(&id).await.unwrap().unwrap().secret_hash,
        hash_before
    );
    store.close().await;

    // Unknown ids: exit 1, nothing on stdout.
    for command in ["revoke", "rotate"] {
        let output = env.run(&["clients", command, "drk_doesnotexist"]);
        assert_exit_1(&output);
        assert!(stdout(&output).is_empty(), "{command}");
    }
}

#[tokio::test]
async fn keys_rotate_prints_the_new_kid_and_keeps_the_old_key() {
    let env = Env::new();
    let output = env.run(&["keys", "rotate"]);
    assert_success(&output);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let kid = lines[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.len(), 16);

    let store = env.store().await;
    let keys = store
        .as_signing_key_store()
        .list_keys(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "the first key and the rotated one");
    assert_eq!(keys[0].kid, kid, "the newest key signs");
    assert!(keys[0].retired_at.is_none());
    assert!(keys[1].retired_at.is_some(), "the old key only verifies");
    store.close().await;
}

#[tokio::test]
async fn keys_are_encrypted_at_rest_with_a_key_encryption_key() {
    let env = Env::new();
    let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let output = env
        .command(&["keys", "rotate"])
        .env("VORGANG_KEY_ENCRYPTION_KEY", &kek)
        .output()
        .unwrap();
    assert_success(&output);
    assert!(!stdout(&output).contains(&kek) && !stderr(&output).contains(&kek));
    let store = env.store().await;
    let keys = store
        .as_signing_key_store()
        .list_keys(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .await
        .unwrap();
    store.close().await;
    assert!(keys.iter().all(|k| k.encrypted));

    // Without the key (or with another one) the keys cannot be used: exit 1.
    let output = env.run(&["keys", "rotate"]);
    assert_exit_1(&output);
    let other = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [8u8; 32]);
    let output = env
        .command(&["keys", "rotate"])
        .env("VORGANG_KEY_ENCRYPTION_KEY", &other)
        .output()
        .unwrap();
    assert_exit_1(&output);
}

#[test]
fn config_check_prints_masked_settings() {
    let env = Env::new();
    let output = env.run(&["config", "check"]);
    assert_success(&output);
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["listen"], "127.0.0.1:8080");
    assert_eq!(lines[0]["audience"], "drkleinrk-api");
    assert_eq!(lines[0]["auth"]["mode"], "builtin");
    assert_eq!(lines[0]["token_ttl_s"], 900);
    assert_eq!(lines[0]["token_leeway_s"], 30);

    // Secrets are masked.
    let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let output = env
        .command(&["config", "check"])
        .env("VORGANG_KEY_ENCRYPTION_KEY", &kek)
        .env("VORGANG_EUROPACE__BASE_URL", "https://europace.example")
        .env("VORGANG_EUROPACE__CLIENT_ID", "dkr")
        .env("VORGANG_EUROPACE__CLIENT_SECRET", "europace-geheim")
        .env(
            "VORGANG_DATABASE_URL",
            "postgres://vorgang:db-geheim@db.example/vorgang",
        )
        .output()
        .unwrap();
    assert_success(&output);
    let text = format!("{}{}", stdout(&output), stderr(&output));
    for secret in [kek.as_str(), "europace-geheim", "db-geheim"] {
        assert!(!text.contains(secret), "{secret} printed");
    }
    let line = &json_lines(&output)[0];
    assert_eq!(line["key_encryption_key"], "********");
    assert_eq!(line["europace"]["client_secret"], "********");
}

#[test]
fn config_check_names_each_bad_setting_without_its_value() {
    let env = Env::new();
    let output = env
        .command(&["config", "check"])
        .env("VORGANG_RETENTION_DAYS", "1")
        .env("VORGANG_KEY_ENCRYPTION_KEY", "short")
        .output()
        .unwrap();
    // Nothing on stdout; one line per bad setting on stderr.
    let text = refused_silently(&output);
    let problems: Vec<&str> = text.lines().collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|l| l.starts_with("retention_days")));
    assert!(problems.iter().any(|l| l.starts_with("key_encryption_key")));
    assert!(!text.contains("short"), "the secret is not printed: {text}");

    // A value that cannot even be parsed: one line naming the setting and the variable.
    let output = env
        .command(&["config", "check"])
        .env("VORGANG_TOKEN_TTL_S", "soon")
        .output()
        .unwrap();
    assert!(
        refused_silently(&output).starts_with("token_ttl_s (from VORGANG_TOKEN_TTL_S): wrong type"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("soon"));
}

/// Runs `serve` with `setup` and waits (up to 20 s) for it to exit: a server that starts anyway
/// is killed and fails the test.
fn serve_refused(env: &Env, setup: impl Fn(&mut Command) -> &mut Command) -> Output {
    let port = free_port();
    let mut command = env.command(&["serve"]);
    setup(&mut command)
        .env("VORGANG_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started despite bad settings");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Exited: the little it wrote is still in the pipes.
    child.wait_with_output().unwrap()
}

/// `config check` and `serve` both refuse the settings `setup` makes: exit 1, nothing on stdout,
/// stderr exactly the expected problem lines (checked by prefix), no database touched. Returns
/// the problem lines.
fn assert_refused(
    env: &Env,
    setup: impl Fn(&mut Command) -> &mut Command,
    expected: &[&str],
) -> Vec<String> {
    let output = setup(&mut env.command(&["config", "check"]))
        .output()
        .unwrap();
    let problems: Vec<String> = refused_silently(&output)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, prefix) in problems.iter().zip(expected) {
        assert!(
            problem.starts_with(prefix),
            "{problem:?} should start with {prefix:?}"
        );
    }

    let output = serve_refused(env, setup);
    // No demo client: nothing started.
    let served: Vec<String> = refused_silently(&output)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(served, problems, "serve refuses with the same lines");
    assert!(!env.dir.path().join("v.db").exists(), "no database created");
    problems
}

#[test]
fn a_typo_in_a_file_key_is_refused() {
    let env = Env::with_config("[europace]\nbase_ulr = \"https://europace.example\"\n");
    let problems = assert_refused(
        &env,
        |c| c.args(["--config", "v.toml"]),
        &["v.toml: unknown setting `europace.base_ulr` (did you mean `europace.base_url`?)"],
    );
    assert_eq!(problems.len(), 1);
}

#[test]
fn a_variable_with_one_underscore_is_refused() {
    let env = Env::new();
    assert_refused(
        &env,
        |c| c.env("VORGANG_EUROPACE_BASE_URL", "https://europace.example"),
        &[
            "VORGANG_EUROPACE_BASE_URL: unknown variable, it names no setting (did you mean VORGANG_EUROPACE__BASE_URL?)",
        ],
    );
}

#[test]
fn an_unknown_section_is_refused() {
    let env =
        Env::with_config("retention_days = 7\n[europa]\nbase_url = \"https://europace.example\"\n");
    assert_refused(
        &env,
        |c| c.args(["--config", "v.toml"]),
        &["v.toml: unknown section [europa] (did you mean [europace]?)"],
    );
}

#[test]
fn a_broken_toml_file_is_refused_with_file_line_and_column() {
    let env =
        Env::with_config("retention_days = 7\n[europace]\nclient_secret = \"geheim-unterminated\n");
    let problems = assert_refused(&env, |c| c.args(["--config", "v.toml"]), &["v.toml:3:"]);
    let (position, message) = problems[0]["v.toml:".len()..].split_once(": ").unwrap();
    let (line, column) = position.split_once(':').unwrap();
    assert_eq!(line, "3");
    assert!(column.parse::<u32>().unwrap() >= 1, "{problems:?}");
    assert!(!message.is_empty());
    assert!(
        !problems[0].contains("geheim"),
        "the line is not quoted: {problems:?}"
    );
}

#[test]
fn several_bad_values_are_one_line_each_and_refused() {
    let env = Env::with_config("retention_days = \"lange\"\n[auth]\nmode = \"zqxmode\"\n");
    let problems = assert_refused(
        &env,
        |c| {
            c.args(["--config", "v.toml"])
                .env("VORGANG_TOKEN_TTL_S", "0")
                .env("VORGANG_KEY_ENCRYPTION_KEY", "zqx-short-secret")
                .env("VORGANG_EUROPACE__REQUEST_TIMEOUT_MS", "soon")
        },
        &[
            "auth.mode (from v.toml): unknown value, expected one of builtin, jwks, introspection",
            "europace.request_timeout_ms (from VORGANG_EUROPACE__REQUEST_TIMEOUT_MS): wrong type",
            "retention_days (from v.toml): wrong type",
            "token_ttl_s: must be between 1 and 86400",
            "key_encryption_key: must be base64 of exactly 32 bytes",
        ],
    );
    let all = problems.join("\n");
    for value in ["lange", "zqx", "soon"] {
        assert!(!all.contains(value), "{value} printed: {all}");
    }
}

#[test]
fn config_check_prints_one_json_document_for_jq() {
    let env = Env::new();
    let output = env
        .command(&["config", "check"])
        .env("VORGANG_EUROPACE__CLIENT_SECRET", "zqx-secret")
        .output()
        .unwrap();
    assert_success(&output);
    // The whole of stdout is one JSON document (what `| jq .` needs), nothing else.
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document.is_object());
    assert_eq!(document["europace"]["client_secret"], "********");
    assert!(!stdout(&output).contains("zqx"));
    assert_eq!(stderr(&output), "", "no log lines either");
}

#[test]
fn a_missing_config_file_is_exit_1() {
    let env = Env::new();
    for args in [
        &["--config", "missing.toml", "config", "check"][..],
        &["--config", "missing.toml", "clients", "list"][..],
    ] {
        let output = env.run(args);
        assert_exit_1(&output);
    }
    let output = env
        .command(&["clients", "list"])
        .env("VORGANG_CONFIG", "missing.toml")
        .output()
        .unwrap();
    assert_exit_1(&output);

    // An existing file is read.
    std::fs::write(env.dir.path().join("v.toml"), "retention_days = 7\n").unwrap();
    let output = env.run(&["--config", "v.toml", "config", "check"]);
    assert_success(&output);
    assert_eq!(json_lines(&output)[0]["retention_days"], 7);
}

#[test]
fn imports_list_takes_a_status_in_any_case_and_lists_them_in_help() {
    let env = Env::new();
    // An unknown status is a usage error (clap's exit 2) naming the accepted ones.
    let output = env.run(&["imports", "list", "--status", "BOGUS"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
    assert!(stderr(&output).contains("IN_DOUBT"), "{}", stderr(&output));
    for status in ["IN_DOUBT", "in_doubt", "In_Doubt", "completed", "queued"] {
        let output = env.run(&["imports", "list", "--status", status]);
        assert_success(&output);
        assert!(stdout(&output).is_empty(), "no imports yet");
    }
    let output = env.run(&["imports", "list"]);
    assert_success(&output);

    let help = stdout(&env.run(&["imports", "list", "--help"]));
    assert!(
        help.contains(
            "[possible values: ACCEPTED, PARTNER_READY, SENDING, IMPORTED, COMPLETED, FAILED, IN_DOUBT, QUEUED]"
        ),
        "{help}"
    );
    assert!(
        help.contains("--since") && help.contains("--limit"),
        "{help}"
    );
}

/// Stores `count` imports of client `c`, one a minute from 2025-01-01T00:00:00Z on, every third
/// one `IN_DOUBT`, the others `COMPLETED`; returns their ids, oldest first.
async fn store_imports(env: &Env, count: u32) -> Vec<uuid::Uuid> {
    use chrono::TimeZone as _;
    let store = env.store().await;
    let imports = store.as_import_store();
    let start = chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let mut record = vorgang_core::ImportRecord::accepted(
            uuid::Uuid::new_v4(),
            "c",
            vorgang_core::model::Environment::Test,
            None,
            "f".to_owned(),
            vorgang_store::testing::request(serde_json::json!({})),
            start + chrono::Duration::minutes(i64::from(n)),
        );
        record.status = if n % 3 == 0 {
            vorgang_core::ImportStatus::InDoubt
        } else {
            vorgang_core::ImportStatus::Completed
        };
        imports.insert(&record).await.unwrap();
        ids.push(record.id);
    }
    store.close().await;
    ids
}

fn listed_ids(output: &Output) -> Vec<String> {
    json_lines(output)
        .iter()
        .map(|line| line["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn imports_list_since_and_limit_page_through_oldest_first() {
    let env = Env::new();
    // More than one page (500) of the command, so the paging is exercised.
    let ids: Vec<String> = store_imports(&env, 1_203)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();

    let output = env.run(&["imports", "list"]);
    assert_success(&output);
    assert_eq!(listed_ids(&output), ids, "all, oldest first, each once");
    let first = &json_lines(&output)[0];
    assert_eq!(first["status"], "IN_DOUBT");
    assert_eq!(first["client_id"], "c");
    assert_eq!(first["createdAt"], "2025-01-01T00:00:00Z");

    let output = env.run(&["imports", "list", "--limit", "2"]);
    assert_success(&output);
    assert_eq!(listed_ids(&output), ids[..2]);
    let output = env.run(&["imports", "list", "--limit", "501"]);
    assert_eq!(listed_ids(&output), ids[..501], "a limit past one page");

    // `--since` is inclusive; any RFC 3339 offset.
    let output = env.run(&["imports", "list", "--since", "2025-01-01T20:00:00Z"]);
    assert_success(&output);
    assert_eq!(listed_ids(&output), ids[1200..]);
    let output = env.run(&[
        "imports",
        "list",
        "--since",
        "2025-01-01T21:00:00+01:00",
        "--limit",
        "1",
    ]);
    assert_eq!(listed_ids(&output), ids[1200..1201]);

    let output = env.run(&["imports", "list", "--status", "in_doubt", "--limit", "3"]);
    assert_eq!(
        listed_ids(&output),
        [ids[0].clone(), ids[3].clone(), ids[6].clone()]
    );

    // Bad values are usage errors.
    for bad in [
        &["--limit", "0"][..],
        &["--limit", "x"],
        &["--since", "yesterday"],
        &["--since", "2025-01-01"],
    ] {
        let mut args = vec!["imports", "list"];
        args.extend_from_slice(bad);
        let output = env.run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty());
    }
}

/// An HTTP client with a 2-s timeout.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// Polls `GET url` until it answers 2xx (within 20 s) and returns that answer; fails the test
/// with the process's `log` if `running` exits first.
async fn wait_until_up(running: &mut Running, url: &str, log: &Path) -> reqwest::Response {
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return response;
        }
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "exited before {url} answered: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sandbox_serves_the_fake_europace() {
    let env = Env::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = env.dir.path().join("sandbox.log");
    let mut running = Running(spawn_logged(
        &mut env.command(&["sandbox", "--listen", &listen]),
        &log,
    ));
    let partners: Value = wait_until_up(
        &mut running,
        &format!("http://{listen}/_sandbox/partners"),
        &log,
    )
    .await
    .json()
    .await
    .unwrap();
    let ids: Vec<&str> = partners
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["partnerId"].as_str())
        .collect();
    for id in ["KBT01", "TGP01", "TGT01"] {
        assert!(ids.contains(&id), "{id} in {partners}");
    }
    let imports: Value = http()
        .get(format!("http://{listen}/_sandbox/vorgaenge"))
        .send_json()
        .await;
    assert_eq!(imports, serde_json::json!([]));
    drop(running);
    assert!(
        !Path::new(&env.dir.path().join("v.db")).exists(),
        "the sandbox needs no database"
    );
}

/// The settings of a deployment against real Europace, without a key-encryption key.
fn real_europace(command: &mut Command) -> &mut Command {
    command
        .env("VORGANG_EUROPACE__BASE_URL", "https://europace.example")
        .env("VORGANG_EUROPACE__CLIENT_ID", "dkr")
        .env("VORGANG_EUROPACE__CLIENT_SECRET", "europace-geheim")
}

#[test]
fn real_europace_without_a_key_encryption_key_is_refused() {
    let env = Env::new();
    // `config check`: nothing on stdout, exactly one problem naming the key on stderr.
    let output = real_europace(&mut env.command(&["config", "check"]))
        .output()
        .unwrap();
    let text = refused_silently(&output);
    let problems: Vec<&str> = text.lines().collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("key_encryption_key: required when europace.base_url is set"),
        "{problems:?}"
    );

    // `serve`: refused before it touches the database or binds a port.
    let port = free_port();
    let output = real_europace(&mut env.command(&["serve"]))
        .env("VORGANG_LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_exit_1(&output);
    let errors = stderr(&output);
    assert_eq!(
        errors
            .lines()
            .filter(|l| l.starts_with("key_encryption_key:"))
            .count(),
        1,
        "{errors}"
    );
    assert!(
        stdout(&output).is_empty(),
        "no demo client: {}",
        stdout(&output)
    );
    assert!(!env.dir.path().join("v.db").exists(), "no database created");

    // With a key-encryption key the same settings are fine.
    let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [5u8; 32]);
    let output = real_europace(&mut env.command(&["config", "check"]))
        .env("VORGANG_KEY_ENCRYPTION_KEY", &kek)
        .output()
        .unwrap();
    assert_success(&output);
}

#[tokio::test]
async fn the_embedded_sandbox_runs_without_a_key_encryption_key_and_warns() {
    let env = Env::new();
    let port = free_port();
    let log = env.dir.path().join("serve.log");
    let mut running = Running(spawn_logged(
        env.command(&["serve"])
            .env("VORGANG_LISTEN", format!("127.0.0.1:{port}")),
        &log,
    ));
    wait_until_up(
        &mut running,
        &format!("http://127.0.0.1:{port}/health/live"),
        &log,
    )
    .await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("key_encryption_key is not set"),
        "the warning is logged before listening: {logged}"
    );
    drop(running);
}

/// Issue 11 (8): the operator's commands log only warnings and errors unless `RUST_LOG` asks for
/// more; `serve` keeps `info`.
#[tokio::test]
async fn commands_log_only_warnings_unless_rust_log_says_otherwise() {
    let env = Env::new();
    env.add_client(&[]);
    // `clients list` opens the database, which logs "database ready" at info.
    let quiet = env
        .command(&["clients", "list"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_success(&quiet);
    let logged = stderr(&quiet);
    assert!(
        !logged.contains("database ready"),
        "no info lines by default: {logged}"
    );
    for line in logged.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        assert!(
            line["level"] == "WARN" || line["level"] == "ERROR",
            "only warnings and errors: {line}"
        );
    }
    assert_eq!(json_lines(&quiet).len(), 1);

    let verbose = env
        .command(&["clients", "list"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_success(&verbose);
    assert!(
        stderr(&verbose).contains("database ready"),
        "{}",
        stderr(&verbose)
    );
    assert_eq!(stdout(&verbose), stdout(&quiet), "logs never go to stdout");

    // `serve` logs at info without RUST_LOG.
    let port = free_port();
    let log = env.dir.path().join("serve.log");
    let mut running = Running(spawn_logged(
        env.command(&["serve"])
            .env_remove("RUST_LOG")
            .env("VORGANG_LISTEN", format!("127.0.0.1:{port}")),
        &log,
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("vorgang-server listening")
    {
        assert!(running.0.try_wait().unwrap().is_none(), "serve exited");
        assert!(Instant::now() < deadline, "no info line from serve");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(running);
}

/// Issue 11 (2): a database that cannot be opened is named with the cause and the fix, through
/// every command that opens it (`serve`, `clients …`), never with a password.
#[test]
fn database_errors_name_the_cause_and_the_fix() {
    let env = Env::new();
    let missing = env.dir.path().join("missing.db");
    let sqlite = format!("sqlite://{}", missing.display());
    let admin = std::env::var("VORGANG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (_, rest) = admin.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split('/').next().unwrap();
    let cases = [
        (
            sqlite.clone(),
            vec![
                format!("the file {} does not exist", missing.display()),
                format!("{sqlite}?mode=rwc"),
            ],
        ),
        (
            format!("postgres://postgres@{host}/zz_no_such_database"),
            vec!["database \"zz_no_such_database\" does not exist".to_owned()],
        ),
        (
            format!("postgres://zz_no_such_role:zqx-geheim@{host}/test"),
            vec![
                "authentication failed for user \"zz_no_such_role\"".to_owned(),
                "zz_no_such_role:********@".to_owned(),
            ],
        ),
    ];
    for (url, expected) in cases {
        for args in [&["clients", "list"][..], &["imports", "list"]] {
            let output = env
                .command(args)
                .env("VORGANG_DATABASE_URL", &url)
                .output()
                .unwrap();
            assert_exit_1(&output);
            assert!(stdout(&output).is_empty());
            let text = stderr(&output);
            for part in &expected {
                assert!(text.contains(part.as_str()), "{part:?} in {text}");
            }
            assert!(!text.contains("zqx-geheim"), "password printed: {text}");
            assert!(!text.contains("database error (code"), "{text}");
        }
    }
    // `serve` refuses the same way, before listening.
    let output = serve_refused(&env, |c| c.env("VORGANG_DATABASE_URL", &sqlite));
    assert_exit_1(&output);
    assert!(
        stderr(&output).contains(&format!("{sqlite}?mode=rwc")),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists(), "nothing created without mode=rwc");
}

/// Issue 11 (8): the README's operator commands paste and run, one command per line: each
/// `vorgang-server …` line of its "Operating it" block runs (with `$CLIENT_ID` and `$IMPORT_ID`
/// set as the text says) and exits 0 with JSON lines on stdout.
#[tokio::test]
async fn the_readme_operator_commands_paste_and_run() {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("## Operating it")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|rest| rest.split("\n```").next())
        .expect("an sh block under \"## Operating it\"");
    // Lines joined at trailing backslashes, as the shell reads them; comments and blank lines
    // dropped; the `sandbox` line runs a server until stopped and is left out.
    let commands: Vec<String> = block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(commands.len() >= 8, "{commands:?}");
    let env = Env::new();
    let ids = store_imports(&env, 1).await;
    let import_id = ids[0].to_string();
    let binary_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        binary_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut client_id = String::new();
    for command in commands {
        assert!(
            command.starts_with("vorgang-server "),
            "one vorgang-server command per line: {command}"
        );
        assert!(
            !command.contains(" | "),
            "no pipe between commands: {command}"
        );
        if command.starts_with("vorgang-server sandbox") {
            continue;
        }
        let mut shell = Command::new("sh");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("VORGANG_") {
                shell.env_remove(name);
            }
        }
        let output = shell
            .arg("-c")
            .arg(&command)
            .current_dir(env.dir.path())
            .env("PATH", &path)
            .env("VORGANG_DATABASE_URL", env.database_url())
            .env("CLIENT_ID", &client_id)
            .env("IMPORT_ID", &import_id)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_success(&output);
        let lines = json_lines(&output);
        if command.starts_with("vorgang-server clients add") {
            client_id = lines[0]["client_id"].as_str().unwrap().to_owned();
        }
    }
    assert!(!client_id.is_empty(), "the block registers a client first");
}
