//! `spawn_app()`: the real server on a random port with a fresh database and its own sandbox.

use crate::support::SendJson as _;
use std::net::TcpListener;
use std::time::Duration;

use europace_sandbox::{Sandbox, SandboxConfig, SandboxServer};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use vorgang_server::auth::AuthService;
use vorgang_server::settings::Settings;
use vorgang_server::startup::Application;
use vorgang_store::Store;

/// The published example request.
pub fn seed() -> Value {
    serde_json::from_str(include_str!("../../../../examples/seed-request.json")).unwrap()
}

/// Which database a test app uses.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub sandbox: Sandbox,
    pub sandbox_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub http: reqwest::Client,
    pub settings: Settings,
    server: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _sandbox_server: SandboxServer,
    _dir: tempfile::TempDir,
    _postgres: Option<vorgang_store::testing::PostgresTestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Db::Sqlite, |_| {}).await
}

/// `TEST_LOG=1 cargo test …`: the service's JSON logs (level from `RUST_LOG`, default `info`)
/// through the test harness's writer, so each test's lines show with its result (zero2prod
/// style). Without `TEST_LOG` no subscriber is installed and tests stay quiet.
pub fn init_test_log() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            vorgang_server::telemetry::init_with_writer(tracing_subscriber::fmt::TestWriter::new);
        }
    });
}

pub async fn spawn_app_with(db: Db, configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_log();
    let sandbox = Sandbox::new(SandboxConfig::default());
    let sandbox_server = sandbox
        .serve(TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut postgres = None;
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}/vorgang.db?mode=rwc", dir.path().display()),
        Db::Postgres => {
            let database = vorgang_store::testing::fresh_postgres_database(&postgres_admin_url())
                .await
                .unwrap();
            let url = database.url().to_owned();
            postgres = Some(database);
            url
        }
    };
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: SecretString::from(database_url),
        ..Settings::default()
    };
    // A separate sandbox counts as real Europace (base_url set): a key-encryption key is
    // required, as in production. A fresh one per app.
    settings.key_encryption_key = Some(test_kek());
    settings.europace.base_url = Some(url::Url::parse(&sandbox_server.base_url()).unwrap());
    settings.europace.client_id = Some("dkr".into());
    settings.europace.client_secret = Some(SecretString::from("dkr-secret"));
    settings.europace.connect_timeout_ms = 500;
    settings.europace.request_timeout_ms = 1_500;
    configure(&mut settings);

    let store = Store::connect(settings.database_url.expose_secret())
        .await
        .unwrap();
    let auth = AuthService::build(&settings, &store, String::new())
        .await
        .unwrap();
    let client = auth
        .register_client(
            "Erika Partner".into(),
            "erika@partner.example".into(),
            "030 1234".into(),
            "Vergleichsportal GmbH".into(),
            Vec::new(),
        )
        .await
        .unwrap();
    store.close().await;

    let application = Application::build(settings.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    let server = application.handle();
    let running = tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        server,
        running: Some(running),
        sandbox,
        sandbox_url: sandbox_server.base_url(),
        client_id: client.client_id,
        client_secret: client.client_secret.expose_secret().to_owned(),
        http: http_client(None),
        settings,
        _sandbox_server: sandbox_server,
        _dir: dir,
        _postgres: postgres,
    }
}

/// The tests' HTTP client; with `accept_language`, every request sends it as `Accept-Language`.
pub fn http_client(accept_language: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = accept_language {
        headers.insert(
            reqwest::header::ACCEPT_LANGUAGE,
            reqwest::header::HeaderValue::from_str(value).unwrap(),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A random key-encryption key: base64 of 32 random bytes, as `openssl rand -base64 32` makes.
pub fn test_kek() -> SecretString {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn postgres_admin_url() -> String {
    std::env::var("VORGANG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestApp {
    /// From now on every request of this app's client sends `Accept-Language: {value}`: the
    /// tests that check the English texts say `app.speak("en")` (German is the default).
    pub fn speak(&mut self, value: &str) {
        self.http = http_client(Some(value));
    }

    /// Stops the server gracefully and waits until it has closed its database connections.
    pub async fn stop(&mut self) {
        self.server.stop(true).await;
        if let Some(running) = self.running.take() {
            running.await.unwrap().unwrap();
        }
    }

    /// The temporary directory holding the SQLite database (`vorgang.db`) of a SQLite app.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn token_response(&self, form: &[(&str, &str)]) -> reqwest::Response {
        let own = Some((self.client_id.as_str(), self.client_secret.as_str()));
        self.oauth_form("/oauth2/token", own, form).await
    }

    /// A `client_credentials` token request of this app's client with `secret` (a wrong one,
    /// in the tests that use it).
    pub async fn token_with_secret(&self, secret: &str) -> reqwest::Response {
        let client = Some((self.client_id.as_str(), secret));
        self.oauth_form(
            "/oauth2/token",
            client,
            &[("grant_type", "client_credentials")],
        )
        .await
    }

    /// `POST {path}` (an OAuth endpoint: token, introspection, revocation) with this form,
    /// authenticated by HTTP Basic as `basic` (client id and secret) when given.
    pub async fn oauth_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.address));
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.form(form).send().await.unwrap()
    }

    pub async fn token(&self) -> String {
        let response = self
            .token_response(&[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn post_vorgang_raw(
        &self,
        query: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/vorgang{query}", self.address))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    pub async fn post_vorgang(&self, token: &str, body: &Value) -> reqwest::Response {
        self.post_vorgang_raw(
            "",
            Some(token),
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
            None,
        )
        .await
    }

    /// `GET /vorgang{query}` (e.g. `?status=FAILED`, or `""`) with `token`, read as JSON.
    pub async fn list_json(&self, token: &str, query: &str) -> Value {
        self.http
            .get(format!("{}/vorgang{query}", self.address))
            .bearer_auth(token)
            .send_json()
            .await
    }

    pub async fn get_vorgang(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/vorgang/{id}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET {path}` of this app without credentials, its answer read as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(format!("{}{path}", self.address))
            .send_json()
            .await
    }

    /// The text of `GET /metrics`.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn sandbox_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sandbox_url))
            .send_json()
            .await
    }

    pub async fn sandbox_fault(&self, fault: Value) {
        let response = self
            .http
            .post(format!("{}/_sandbox/faults", self.sandbox_url))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "fault not accepted");
    }

    /// Drops every fault still queued at the sandbox: Europace answers normally again.
    pub async fn clear_sandbox_faults(&self) {
        let response = self
            .http
            .delete(format!("{}/_sandbox/faults", self.sandbox_url))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "faults not cleared");
    }
}

/// Asserts an RFC 6749 §5.2 error answer with `Cache-Control: no-store`; returns the headers.
pub async fn assert_oauth_error(
    response: reqwest::Response,
    status: u16,
    error: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(response.status().as_u16(), status);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "RFC 6749 errors are plain JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    headers
}

/// Access-token claims as our issuer writes them, for the app's client, issued at `iat` and
/// expiring at `exp`.
pub fn claims_for(app: &TestApp, iat: i64, exp: i64) -> Value {
    serde_json::json!({
        "iss": app.address,
        "aud": "drkleinrk-api",
        "sub": app.client_id,
        "client_id": app.client_id,
        "scope": auth::IMPORT_SCOPE,
        "iat": iat,
        "exp": exp,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// A header of `response` as text; empty when absent or not text.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Writes `request` on a new TCP connection to `address` (`http://host:port`) and reads the
/// whole answer, until the server closes the connection (within 20 s).
pub async fn raw_exchange(address: &str, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection")
        .unwrap();
    answer
}

/// A raw HTTP/1.1 answer split into its status, its header lines (names lower-cased, in order,
/// repeated ones kept) and exactly the bytes after the head.
pub fn split_answer(answer: &[u8]) -> (u16, Vec<(String, String)>, &[u8]) {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(answer)));
    let head = std::str::from_utf8(&answer[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    (status, headers, &answer[end + 4..])
}

/// Asserts a problem+json answer (with its `Content-Language`, `de` or `en`) and returns its
/// body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let language = response
        .headers()
        .get("content-language")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        matches!(language.as_deref(), Some("de" | "en")),
        "Content-Language {language:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    assert!(body["title"].is_string());
    body
}

/// Fault-suite helpers: raw posts with a key, the sandbox's view, the stored record.
impl TestApp {
    /// `POST /vorgang` with a JSON body given as bytes and an optional `Idempotency-Key`.
    pub async fn post_bytes(
        &self,
        token: &str,
        body: &[u8],
        key: Option<&str>,
    ) -> reqwest::Response {
        self.post_vorgang_raw(
            "",
            Some(token),
            Some("application/json"),
            body.to_vec(),
            key,
        )
        .await
    }

    /// The KEX imports the sandbox received.
    pub async fn sandbox_imports(&self) -> Vec<Value> {
        self.sandbox_get("/_sandbox/vorgaenge")
            .await
            .as_array()
            .cloned()
            .expect("/_sandbox/vorgaenge is an array")
    }

    /// How many KEX imports the sandbox recorded for our `eigeneVorgangsnummer` `id`.
    pub async fn sandbox_imports_of(&self, id: &str) -> usize {
        self.sandbox_imports()
            .await
            .iter()
            .filter(|v| v["body"]["eigeneVorgangsnummer"] == id)
            .count()
    }

    /// `/_sandbox/stats`: requests received per target.
    pub async fn sandbox_stats(&self) -> Value {
        self.sandbox_get("/_sandbox/stats").await
    }

    /// A second connection to the app's database (closed on drop of the pool's last clone).
    pub async fn store(&self) -> Store {
        Store::connect(self.settings.database_url.expose_secret())
            .await
            .unwrap()
    }

    /// The management side of the app's database, as the CLI uses it (`clients …`, `keys …`).
    pub async fn auth_service(&self) -> AuthService {
        AuthService::build(&self.settings, &self.store().await, self.address.clone())
            .await
            .unwrap()
    }

    /// Registers another client with these scopes (empty: the default); returns id and secret.
    pub async fn register_client(&self, scopes: &[&str]) -> (String, String) {
        let client = self
            .auth_service()
            .await
            .register_client(
                "Other Partner".into(),
                "other@partner.example".into(),
                "030 9999".into(),
                "Other GmbH".into(),
                scopes.iter().map(|s| (*s).to_owned()).collect(),
            )
            .await
            .unwrap();
        (
            client.client_id,
            client.client_secret.expose_secret().to_owned(),
        )
    }

    /// A token for these credentials (asserts 200).
    pub async fn token_for(&self, client_id: &str, client_secret: &str) -> String {
        let response = self
            .oauth_form(
                "/oauth2/token",
                Some((client_id, client_secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The import as stored, read directly from the database.
    pub async fn stored(&self, id: &str) -> vorgang_core::ImportRecord {
        let store = self.store().await;
        let record = store
            .as_import_store()
            .get(uuid::Uuid::parse_str(id).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("import {id} is not stored"));
        store.close().await;
        record
    }

    /// The `status` of `GET /vorgang/{id}`.
    pub async fn status_of(&self, token: &str, id: &str) -> String {
        let response = self.get_vorgang(token, id).await;
        assert_eq!(response.status(), 200, "GET /vorgang/{id}");
        let view: Value = response.json().await.unwrap();
        view["status"].as_str().unwrap().to_owned()
    }
}

/// Generates one `#[tokio::test]` per case and backend: `sqlite::case` and `postgres::case`
/// call `case(Db::Sqlite)` and `case(Db::Postgres)` of the enclosing module.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(crate::helpers::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(crate::helpers::Db::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use both_backends;

impl TestApp {
    /// Starts a second server on the same database and sandbox (a replica, or the same service
    /// restarted); its background work runs its first pass at once. Returns its base URL.
    pub async fn spawn_replica(&self) -> String {
        let application = Application::build(self.settings.clone()).await.unwrap();
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        address
    }
}

impl TestApp {
    /// Runs the `vorgang-server` binary's CLI on this app's database (and with its
    /// key-encryption key), no inherited `VORGANG_*` variable; its output, whatever the exit.
    pub async fn cli_output(&self, args: &[&str]) -> std::process::Output {
        let mut command = std::process::Command::new(crate::support::BIN);
        crate::support::without_vorgang_env(&mut command)
            .env(
                "VORGANG_DATABASE_URL",
                self.settings.database_url.expose_secret(),
            )
            .args(args);
        if let Some(kek) = &self.settings.key_encryption_key {
            command.env("VORGANG_KEY_ENCRYPTION_KEY", kek.expose_secret());
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Runs the CLI on the app's database; exit code, stdout, stderr.
    pub async fn run_cli(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.cli_output(args).await;
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// Runs the `vorgang-server` binary's CLI on this app's database (e.g. `imports resolve`);
    /// asserts exit 0 and returns its stdout JSON lines.
    pub async fn cli(&self, args: &[&str]) -> Vec<Value> {
        let output = self.cli_output(args).await;
        assert!(
            output.status.success(),
            "vorgang-server {args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}
