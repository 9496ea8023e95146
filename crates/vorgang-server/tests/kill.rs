//! The real binary as separate processes: a `kill -9` in the middle of imports loses nothing and
//! sends nothing twice; `SIGTERM` lets an in-flight import finish and exits 0.
//!
//! Each test starts `vorgang-server sandbox` and `vorgang-server` (SQLite in a temporary
//! directory) as child processes and drives them over HTTP and through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::{BIN, SendJson as _, free_port, spawn_logged, without_vorgang_env};

/// Outbound timeouts of the server under test. A restarted server resumes imports unchanged for
/// `2 * (connect + request)` (see `startup::stale_after`).
const CONNECT_TIMEOUT_MS: u64 = 300;
const REQUEST_TIMEOUT_MS: u64 = 3_000;
const STALE_AFTER: Duration = Duration::from_millis(2 * (CONNECT_TIMEOUT_MS + REQUEST_TIMEOUT_MS));

/// The key-encryption key of the deployment: a separate sandbox counts as real Europace
/// (`europace.base_url` is set), where the start is refused without one.
const KEY_ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Upper bound of every polling loop.
const PATIENCE: Duration = Duration::from_secs(30);

fn seed() -> Value {
    serde_json::from_str(include_str!("../../../examples/seed-request.json")).unwrap()
}

/// A seed request whose Tippgeber has another `externeMitarbeiternummer` (so it is looked up).
fn seed_with_tippgeber(nummer: &str) -> Value {
    let mut body = seed();
    body["tippgeber"]["externeMitarbeiternummer"] = json!(nummer);
    body
}

/// A child process, killed (SIGKILL) and reaped when dropped: no test path leaves one behind.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `command` with stdout discarded and stderr written to `log`.
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Self {
        let child = spawn_logged(command, &log);
        Self { name, child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: `Child::kill` sends SIGKILL on Unix.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- last lines of {} ({}) ---\n{tail}",
            self.name,
            self.log.display()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One deployment: a sandbox process, a SQLite file, a listen port and the CLI's environment.
struct Deployment {
    dir: tempfile::TempDir,
    sandbox: Proc,
    sandbox_url: String,
    port: u16,
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    starts: usize,
}

impl Deployment {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox_port = free_port();
        let log = dir.path().join("sandbox.log");
        let sandbox = Proc::spawn(
            "sandbox",
            Command::new(BIN)
                .args(["sandbox", "--listen", &format!("127.0.0.1:{sandbox_port}")])
                .stdin(Stdio::null()),
            log,
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut deployment = Self {
            sandbox_url: format!("http://127.0.0.1:{sandbox_port}"),
            dir,
            sandbox,
            port: free_port(),
            http,
            client_id: String::new(),
            client_secret: String::new(),
            starts: 0,
        };
        let url = format!("{}/_sandbox/stats", deployment.sandbox_url);
        deployment.wait_for(&url).await;
        let created = deployment
            .cli(&[
                "clients",
                "add",
                "--name",
                "Erika Partner",
                "--email",
                "erika@partner.example",
                "--telefonnummer",
                "030 1234",
                "--organisation",
                "Vergleichsportal GmbH",
            ])
            .await;
        assert_eq!(created.len(), 1, "clients add prints exactly one JSON line");
        deployment.client_id = created[0]["client_id"].as_str().unwrap().to_owned();
        deployment.client_secret = created[0]["client_secret"].as_str().unwrap().to_owned();
        deployment
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        without_vorgang_env(&mut command)
            .env("VORGANG_LISTEN", format!("127.0.0.1:{}", self.port))
            .env(
                "VORGANG_DATABASE_URL",
                format!("sqlite://{}/v.db?mode=rwc", self.dir.path().display()),
            )
            .env("VORGANG_EUROPACE__BASE_URL", &self.sandbox_url)
            .env("VORGANG_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY)
            .env("VORGANG_EUROPACE__CLIENT_ID", "x")
            .env("VORGANG_EUROPACE__CLIENT_SECRET", "y")
            .env(
                "VORGANG_EUROPACE__CONNECT_TIMEOUT_MS",
                CONNECT_TIMEOUT_MS.to_string(),
            )
            .env(
                "VORGANG_EUROPACE__REQUEST_TIMEOUT_MS",
                REQUEST_TIMEOUT_MS.to_string(),
            )
            // A queued import waits 1.5 to 3 s between deliveries.
            .env("VORGANG_DELIVERY__RETRY_INITIAL_MS", "1500")
            .env("VORGANG_DELIVERY__RETRY_MAX_MS", "3000")
            .stdin(Stdio::null());
        command
    }

    /// Runs a CLI command to completion; asserts exit 0 and returns its stdout JSON lines.
    async fn cli(&self, args: &[&str]) -> Vec<Value> {
        let mut command = self.command();
        command.args(args);
        let output: Output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "vorgang-server {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Starts the server and waits until `/health/ready` answers 200.
    async fn serve(&mut self) -> Proc {
        self.starts += 1;
        let log = self.dir.path().join(format!("server-{}.log", self.starts));
        let mut server = Proc::spawn("server", &mut self.command(), log);
        let url = format!("{}/health/ready", self.address());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = server.exited() {
                panic!(
                    "the server exited early with {status}\n{}",
                    server.log_tail()
                );
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status() == 200
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "server not ready\n{}",
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for(&self, url: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self
            .http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "{url} never answered\n{}",
                self.sandbox.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn token(&self) -> String {
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.address()))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Sends an import in the background; the task ends with the status and body, or the
    /// transport error (the server died).
    fn post(
        &self,
        token: &str,
        body: &Value,
        key: &str,
    ) -> tokio::task::JoinHandle<Result<(u16, Value), reqwest::Error>> {
        let request = self
            .http
            .post(format!("{}/vorgang", self.address()))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body);
        tokio::spawn(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.json().await?))
        })
    }

    async fn sandbox_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sandbox_url))
            .send_json()
            .await
    }

    async fn fault(&self, fault: Value) {
        let response = self
            .http
            .post(format!("{}/_sandbox/faults", self.sandbox_url))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "fault not accepted: {fault}"
        );
    }

    /// `eigeneVorgangsnummer` → Europace Vorgangsnummern the sandbox answered for it.
    async fn sandbox_cases(&self) -> HashMap<String, Vec<String>> {
        let mut cases: HashMap<String, Vec<String>> = HashMap::new();
        for vorgang in self
            .sandbox_get("/_sandbox/vorgaenge")
            .await
            .as_array()
            .unwrap()
        {
            cases
                .entry(
                    vorgang["body"]["eigeneVorgangsnummer"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
                .or_default()
                .push(vorgang["vorgangsnummer"].as_str().unwrap().to_owned());
        }
        cases
    }

    /// `imports list` as `drkleinrkVorgangsnummer` → status.
    async fn imports(&self) -> HashMap<String, String> {
        self.cli(&["imports", "list"])
            .await
            .into_iter()
            .map(|line| {
                (
                    line["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned(),
                    line["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn get_vorgang(&self, token: &str, id: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/vorgang/{id}", self.address()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn stored_request_kept(&self, id: &str) -> bool {
        let url = format!("sqlite://{}/v.db?mode=rwc", self.dir.path().display());
        let store = vorgang_store::Store::connect(&url).await.unwrap();
        let record = store
            .as_import_store()
            .get(uuid::Uuid::parse_str(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        record.request.is_some()
    }
}

fn count(imports: &HashMap<String, String>, status: &str) -> usize {
    imports.values().filter(|s| *s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_imports_loses_nothing_and_sends_nothing_twice() {
    let mut deployment = Deployment::start().await;
    let mut server = deployment.serve().await;
    let token = deployment.token().await;

    // A: imported before the crash; its Tippgeber is known from now on.
    let (status, a) = deployment
        .post(&token, &seed(), "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 201, "{a}");
    let a_id = a["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned();
    let lookups_before: u64 = deployment.sandbox_get("/_sandbox/stats").await["partner_lookup"]
        .as_u64()
        .unwrap();

    // B1, B2 (known Tippgeber): go straight to the KEX import, which Europace records and then
    // keeps answering: the crash finds them SENDING. C1, C2 (new Tippgeber): their partner lookup
    // hangs: the crash finds them ACCEPTED.
    deployment
        .fault(json!({"target": "kex", "delay_ms": 20_000, "after_receive": true, "times": 2}))
        .await;
    deployment
        .fault(json!({"target": "partner_lookup", "delay_ms": 20_000, "times": 2}))
        .await;
    let in_flight = [
        ("b1", seed()),
        ("b2", seed()),
        ("c1", seed_with_tippgeber("C-1")),
        ("c2", seed_with_tippgeber("C-2")),
    ];
    let tasks: Vec<_> = in_flight
        .iter()
        .map(|(key, body)| deployment.post(&token, body, key))
        .collect();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let cases = deployment.sandbox_cases().await.len();
        let lookups = deployment.sandbox_get("/_sandbox/stats").await["partner_lookup"]
            .as_u64()
            .unwrap();
        if cases == 3 && lookups >= lookups_before + 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "imports never got in flight\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.kill_9();
    let killed_at = Instant::now();
    for task in tasks {
        assert!(
            task.await.unwrap().is_err(),
            "no answer can come from a killed server"
        );
    }
    let crashed = deployment.imports().await;
    assert_eq!(
        crashed.len(),
        5,
        "every accepted import is stored: {crashed:?}"
    );
    assert_eq!(crashed[&a_id], "COMPLETED");
    assert_eq!(
        count(&crashed, "SENDING"),
        2,
        "B1, B2 were being sent: {crashed:?}"
    );
    assert_eq!(
        count(&crashed, "ACCEPTED"),
        2,
        "C1, C2 were looking up: {crashed:?}"
    );
    let sending: Vec<String> = crashed
        .iter()
        .filter(|(_, s)| *s == "SENDING")
        .map(|(id, _)| id.clone())
        .collect();

    // A restarted server resumes only imports unchanged for STALE_AFTER (another replica may be
    // working on fresher ones): start it once they are stale, so its first pass takes them.
    tokio::time::sleep(
        (STALE_AFTER + Duration::from_millis(500)).saturating_sub(killed_at.elapsed()),
    )
    .await;
    let server = deployment.serve().await;
    let deadline = Instant::now() + PATIENCE;
    let resumed = loop {
        let imports = deployment.imports().await;
        if ["ACCEPTED", "PARTNER_READY", "SENDING", "IMPORTED"]
            .iter()
            .all(|s| count(&imports, s) == 0)
        {
            break imports;
        }
        assert!(
            Instant::now() < deadline,
            "not resumed: {imports:?}\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(resumed.len(), 5);
    for (id, status) in &resumed {
        let expected = if sending.contains(id) {
            "IN_DOUBT"
        } else {
            "COMPLETED"
        };
        assert_eq!(status, expected, "import {id}: {resumed:?}");
    }

    // Nothing was sent twice: every import reached Europace exactly once (the IN_DOUBT ones
    // before the crash, the resumed ones after the restart).
    let cases = deployment.sandbox_cases().await;
    for id in resumed.keys() {
        let sent = cases.get(id).map_or(0, Vec::len);
        assert_eq!(sent, 1, "import {id} reached Europace {sent} times");
    }
    assert_eq!(cases.len(), 5);

    // The partners retrying with their keys get the stored answers; nothing is re-sent.
    let token = deployment.token().await;
    for (key, body) in &in_flight {
        let (status, answer) = deployment.post(&token, body, key).await.unwrap().unwrap();
        let id = answer["drkleinrkVorgangsnummer"].as_str().unwrap();
        if sending.iter().any(|s| s == id) {
            assert_eq!(
                (status, &answer["importStatus"]),
                (504, &json!("IN_DOUBT")),
                "{answer}"
            );
            assert!(
                deployment.stored_request_kept(id).await,
                "kept while IN_DOUBT"
            );
        } else {
            assert_eq!(status, 201, "{answer}");
            assert_eq!(answer["europaceVorgangsnummer"], cases[id][0].as_str());
        }
    }
    assert_eq!(
        deployment.sandbox_cases().await,
        cases,
        "replays send nothing"
    );

    // The operator resolves each IN_DOUBT import with what Europace shows for its number.
    let in_doubt = deployment
        .cli(&["imports", "list", "--status", "IN_DOUBT"])
        .await;
    assert_eq!(in_doubt.len(), 2);
    for line in &in_doubt {
        let id = line["drkleinrkVorgangsnummer"].as_str().unwrap();
        let resolved = match cases.get(id) {
            Some(numbers) => {
                deployment
                    .cli(&[
                        "imports",
                        "resolve",
                        id,
                        "--europace-vorgangsnummer",
                        &numbers[0],
                    ])
                    .await
            }
            None => {
                deployment
                    .cli(&["imports", "resolve", id, "--failed"])
                    .await
            }
        };
        assert_eq!(resolved[0]["status"], "COMPLETED", "{resolved:?}");
        assert_eq!(resolved[0]["europaceVorgangsnummer"], cases[id][0].as_str());
        assert!(
            resolved[0]["crmKennung"]
                .as_str()
                .unwrap()
                .starts_with("DKR-")
        );
        let view = deployment.get_vorgang(&token, id).await;
        assert_eq!(view["status"], "COMPLETED");
        assert_eq!(view["europaceVorgangsnummer"], cases[id][0].as_str());
        assert!(
            !deployment.stored_request_kept(id).await,
            "dropped once COMPLETED"
        );
    }
    assert!(
        deployment
            .cli(&["imports", "list", "--status", "IN_DOUBT"])
            .await
            .is_empty()
    );
    assert_eq!(
        deployment.sandbox_cases().await,
        cases,
        "resolving sends nothing"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_import_finish_and_exits_0() {
    let mut deployment = Deployment::start().await;
    let mut server = deployment.serve().await;
    let token = deployment.token().await;
    deployment
        .fault(json!({"target": "kex", "delay_ms": 1500}))
        .await;
    let in_flight = deployment.post(&token, &seed(), "graceful");
    let deadline = Instant::now() + PATIENCE;
    while deployment.sandbox_get("/_sandbox/stats").await["kex"] != 1 {
        assert!(
            Instant::now() < deadline,
            "import never reached KEX\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());

    let (status, body) = in_flight.await.unwrap().unwrap();
    assert_eq!(status, 201, "the in-flight import finishes: {body}");
    let deadline = Instant::now() + PATIENCE;
    let exit = loop {
        if let Some(exit) = server.exited() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit status {exit}\n{}", server.log_tail());

    let imports = deployment.imports().await;
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap();
    assert_eq!(imports[id], "COMPLETED");
    assert_eq!(deployment.sandbox_cases().await[id].len(), 1);
}

/// Issue 13: an import queued (`Prefer: respond-async`, Europace unavailable) survives a
/// `kill -9` of the server before its re-delivery: the restarted server delivers it once, and the
/// partner's webhook gets one `vorgang.completed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_queued_then_restart_delivers_once() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let mut deployment = Deployment::start().await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&receiver)
        .await;
    let url = format!("{}/hook", receiver.uri());
    let set = deployment
        .cli(&["clients", "set-webhook", &deployment.client_id, &url])
        .await;
    assert!(
        set[0]["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let mut server = deployment.serve().await;
    let token = deployment.token().await;

    deployment
        .fault(json!({"target": "kex", "status": 503}))
        .await;
    let response = deployment
        .http
        .post(format!("{}/vorgang", deployment.address()))
        .bearer_auth(&token)
        .header("Prefer", "respond-async")
        .json(&seed())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned();
    server.kill_9();
    assert_eq!(deployment.imports().await[&id], "QUEUED");
    assert!(deployment.stored_request_kept(&id).await);
    assert!(!deployment.sandbox_cases().await.contains_key(&id));

    let server = deployment.serve().await;
    let deadline = Instant::now() + PATIENCE;
    while receiver.received_requests().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no webhook call\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = receiver.received_requests().await.unwrap();
    let event: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(event["type"], "vorgang.completed");
    assert_eq!(event["data"]["drkleinrkVorgangsnummer"], id.as_str());
    assert_eq!(deployment.imports().await[&id], "COMPLETED");
    // A little longer: nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(deployment.sandbox_cases().await[&id].len(), 1, "one case");
    receiver.verify().await;
    drop(server);
}

/// Issue 8 (HIGH 1): a flood of stalled connections cannot exhaust the file descriptors. The
/// server runs with a tiny open-file limit (128) and gets 160 connections that send headers and
/// one byte of a 4000-byte body. Without a connection cap, `accept` fails with "Too many open
/// files" (and so would the database and every probe); with it, the surplus waits in the listen
/// backlog, the accepted ones get 408 after the 10 s body deadline, and the service answers
/// again as soon as the flood is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_stalled_connections_never_exhausts_the_file_descriptors() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("server.log");
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -n 128 && exec "$0""#, BIN])
        .current_dir(dir.path());
    without_vorgang_env(&mut command)
        .env("VORGANG_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "VORGANG_DATABASE_URL",
            format!("sqlite://{}/vorgang.db?mode=rwc", dir.path().display()),
        )
        .stdin(Stdio::null());
    let mut server = Proc::spawn("server", &mut command, log);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let live = format!("http://127.0.0.1:{port}/health/live");
    let deadline = Instant::now() + PATIENCE;
    while !http
        .get(&live)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "{}", server.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\ng"
    );
    let mut flood = Vec::new();
    for _ in 0..160 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        flood.push(stream);
    }
    // The first accepted ones hit the body deadline after 10 s: 408, then closed.
    let mut first = flood.remove(0);
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), first.read_to_end(&mut answer))
        .await
        .expect("the first stalled connection was not closed")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(server.exited().is_none(), "{}", server.log_tail());

    // The flood ends; the service answers again at once.
    drop(flood);
    let recovered = Instant::now() + Duration::from_secs(10);
    while !http
        .get(&live)
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            Instant::now() < recovered,
            "not live after the flood\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !log.contains("Too many open files") && !log.contains("accepting connection"),
        "descriptors ran out:\n{}",
        server.log_tail()
    );
    assert!(log.contains("connection cap"), "{}", server.log_tail());
}
