//! Shared fixtures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use europace_client::{AccessToken, EuropaceClient, EuropaceConfig, RetryPolicy};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;
use vorgang_core::{EuropaceError, TraceContext, TraceId};
use wiremock::matchers::{method, path};
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

pub const CLIENT_ID: &str = "drkleinrk-client";
pub const SECRET: &str = "s3cr3t:with/special&chars";
pub const KEX_SCOPE: &str = "privatkredit:vorgang:schreiben";
pub const PARTNER_SCOPE: &str =
    "partner:plakette:lesen partner:plakette:anlegen partner:plakette:schreiben";
pub const TRACE: &str = "drkleinrk-00000000-0000-0000-0000-000000000001";
/// The W3C trace-id of [`trace`], as an incoming `traceparent` would have set it.
pub const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

pub fn trace() -> TraceId {
    let context = TraceContext::parse(&format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .expect("a valid traceparent");
    TraceId::new(TRACE, context)
}

/// Settings pointing at `server`, with quick retries and generous timeouts (tests that need a
/// timeout set their own).
pub fn config(server: &MockServer) -> EuropaceConfig {
    let base = Url::parse(&server.uri()).expect("mock server URI");
    let mut config = EuropaceConfig::from_base_url(&base, CLIENT_ID, SecretString::from(SECRET));
    config.connect_timeout = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(3);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
    };
    config
}

pub fn client(config: EuropaceConfig) -> EuropaceClient {
    EuropaceClient::new(config).expect("valid configuration")
}

/// A URL on which nothing listens: bind a port, then free it.
pub async fn closed_port_url(path: &str) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    Url::parse(&format!("http://127.0.0.1:{port}{path}")).expect("url")
}

/// Matches an `application/x-www-form-urlencoded` body with exactly these fields.
pub struct FormIs(pub Vec<(&'static str, &'static str)>);

impl Match for FormIs {
    fn matches(&self, request: &Request) -> bool {
        let mut actual: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut expected: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        actual.sort();
        expected.sort();
        actual == expected
    }
}

/// Matches a token request for `scope`.
pub struct ScopeIs(pub &'static str);

impl Match for ScopeIs {
    fn matches(&self, request: &Request) -> bool {
        url::form_urlencoded::parse(&request.body).any(|(k, v)| k == "scope" && v == self.0)
    }
}

pub fn token_answer(token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "whatever"
    }))
}

/// The token endpoint for `scope`, answering `token`, called exactly `times` times.
pub async fn mount_token(
    server: &MockServer,
    scope: &'static str,
    token: &str,
    expires_in: u64,
    times: u64,
) {
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(ScopeIs(scope))
        .respond_with(token_answer(token, expires_in))
        .expect(times)
        .named(format!("token {scope}"))
        .mount(server)
        .await;
}

/// The token endpoint (any scope) answering `answer`, called exactly `times` times.
pub async fn mount_token_answer(server: &MockServer, answer: ResponseTemplate, times: u64) {
    mount(server, "POST", "/auth/token", answer, times).await;
}

/// `verb path` answering `answer`, called exactly `times` times.
pub async fn mount(
    server: &MockServer,
    verb: &str,
    at: &str,
    answer: ResponseTemplate,
    times: u64,
) {
    mount_with(
        Mock::given(method(verb)).and(path(at)),
        server,
        answer,
        times,
    )
    .await;
}

/// The requests `mock` matches, answered with `answer`, exactly `times` of them.
pub async fn mount_with(
    mock: MockBuilder,
    server: &MockServer,
    answer: ResponseTemplate,
    times: u64,
) {
    mock.respond_with(answer).expect(times).mount(server).await;
}

/// `verb path` answering `answer` to the first call only (a failure before a retry); later calls
/// fall through to the mocks mounted after it.
pub async fn mount_first(server: &MockServer, verb: &str, at: &str, answer: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(answer)
        .up_to_n_times(1)
        .expect(1)
        .mount(server)
        .await;
}

/// One KEX-scope token from a fresh client against `server`.
pub async fn kex_token(server: &MockServer) -> Result<AccessToken, EuropaceError> {
    client(config(server))
        .kex_api()
        .tokens()
        .token(&trace())
        .await
}

/// A raw HTTP/1.1 peer: reads each request completely, then writes `answer` (possibly a broken
/// one, possibly nothing) and closes the connection. Counts the requests it received.
pub struct RawPeer {
    pub url: Url,
    pub requests: Arc<AtomicUsize>,
}

impl RawPeer {
    pub async fn start(answer: &'static [u8], path: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    if read_request(&mut socket).await {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = socket.write_all(answer).await;
                        let _ = socket.flush().await;
                    }
                });
            }
        });
        Self {
            url: Url::parse(&format!("http://127.0.0.1:{port}{path}")).expect("url"),
            requests,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `Content-Length` body). `false` if the peer went away first.
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return true;
            }
        }
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
        }
    }
}
