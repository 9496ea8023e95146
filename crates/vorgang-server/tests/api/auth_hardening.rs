//! Hardening of authentication (issue 8): the token throttle reserves before hashing, two
//! `Authorization` headers are refused, and every answer of the token endpoint is RFC 6749 JSON,
//! also for a too-large or malformed request. The real server over HTTP; where the wire matters
//! (duplicate headers, a chunked body) over raw TCP, so that no client library tidies it up.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde_json::Value;

use crate::helpers::{TestApp, problem, raw_exchange, seed, spawn_app, split_answer};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An answer read off a raw connection.
struct RawResponse {
    status: u16,
    /// Header names lower-cased, in order, repeated ones kept.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({} {:?}): {}",
                self.status,
                self.header("content-type"),
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Writes `head` (request line and header lines, each ending in CRLF, without the empty line)
/// plus `Host` and `Connection: close`, then `body`, on a new connection to the app; reads the
/// whole answer.
async fn raw(app: &TestApp, head: &str, body: &[u8]) -> RawResponse {
    let authority = app.address.trim_start_matches("http://");
    let mut request = format!("{head}Host: {authority}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    parse_raw(&raw_exchange(&app.address, &request).await)
}

fn parse_raw(answer: &[u8]) -> RawResponse {
    let (status, headers, body) = split_answer(answer);
    let mut body = body.to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

/// An RFC 6749 §5.2 error answer: the status, JSON `{"error": error, "error_description": …}`,
/// `Cache-Control: no-store`, `Content-Language` (`de` unless the request asked for English).
fn assert_raw_oauth_error(response: &RawResponse, status: u16, error: &str) {
    assert!(
        matches!(response.header("content-language"), Some("de" | "en")),
        "{:?}",
        response.headers
    );
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        response.headers
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let body = response.json();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

async fn assert_oauth_error(response: reqwest::Response, status: u16, error: &str) -> HeaderMap {
    let headers = response.headers().clone();
    let raw = RawResponse {
        status: response.status().as_u16(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect(),
        body: response.bytes().await.unwrap().to_vec(),
    };
    assert_raw_oauth_error(&raw, status, error);
    headers
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is loopback on Linux),
/// so that the server sees another remote address.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn token_attempt(
    http: &reqwest::Client,
    app: &TestApp,
    client_id: &str,
    secret: &str,
) -> reqwest::Response {
    http.post(format!("{}/oauth2/token", app.address))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn sandbox_imports(app: &TestApp) -> usize {
    app.sandbox_get("/_sandbox/vorgaenge")
        .await
        .as_array()
        .unwrap()
        .len()
}

// ---------------------------------------------------------------------------------------------
// Item 3: the throttle reserves before hashing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sixty_parallel_wrong_secrets_get_at_most_five_401_and_the_rest_429() {
    // Regression: all 60 passed the throttle before the first had failed: 60 Argon2 hashes,
    // 60 × 401, 0 × 429.
    let app = spawn_app().await;
    let attempts = (0..60).map(|_| token_attempt(&app.http, &app, &app.client_id, "wrong-secret"));
    let answers = futures::future::join_all(attempts).await;
    let (mut unauthorized, mut throttled) = (0, 0);
    for response in answers {
        match response.status().as_u16() {
            401 => {
                unauthorized += 1;
                assert_oauth_error(response, 401, "invalid_client").await;
            }
            429 => {
                throttled += 1;
                let headers = assert_oauth_error(response, 429, "slow_down").await;
                let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    // Each 401 is one Argon2 verification; a 429 costs none.
    assert!(
        (1..=5).contains(&unauthorized),
        "{unauthorized} × 401, {throttled} × 429"
    );
    assert_eq!(unauthorized + throttled, 60);

    // The window is full: the right secret waits as well.
    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(response, 429, "slow_down").await;
}

#[tokio::test]
async fn a_right_secret_resets_the_clients_failures() {
    // From four addresses, so that only the client's counter is in play.
    let app = spawn_app().await;
    // Four failures and a success, twice: without the reset the second failure of the second
    // round would be the sixth: 429.
    for (failing, succeeding) in [("127.0.0.2", "127.0.0.3"), ("127.0.0.4", "127.0.0.5")] {
        let failing = client_from(failing);
        for _ in 0..4 {
            let response = token_attempt(&failing, &app, &app.client_id, "wrong").await;
            assert_oauth_error(response, 401, "invalid_client").await;
        }
        let succeeding = client_from(succeeding);
        let response = token_attempt(&succeeding, &app, &app.client_id, &app.client_secret).await;
        assert_eq!(response.status(), 200);
    }
}

// ---------------------------------------------------------------------------------------------
// Item 10: two Authorization headers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_authorization_headers_at_the_vorgang_endpoints_are_400() {
    let app = spawn_app().await;
    let token = app.token().await;
    let body = serde_json::to_vec(&seed()).unwrap();
    // The same valid token twice, and a valid one next to garbage: neither is guessed at.
    for second in [format!("Bearer {token}"), "Bearer garbage".to_owned()] {
        let head = format!(
            "POST /vorgang HTTP/1.1\r\nAuthorization: Bearer {token}\r\nAuthorization: {second}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        let response = raw(&app, &head, &body).await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        let problem = response.json();
        assert_eq!(
            problem["type"],
            "https://api.drkleinservice.de/problems/duplicate-authorization"
        );
        assert_eq!(problem["status"], 400);
        assert!(!problem.to_string().contains(&token));

        let head = format!(
            "GET /vorgang/{} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nAuthorization: {second}\r\n",
            uuid::Uuid::new_v4()
        );
        let response = raw(&app, &head, b"").await;
        assert_eq!(response.status, 400);
        assert_eq!(
            response.json()["type"],
            "https://api.drkleinservice.de/problems/duplicate-authorization"
        );
    }
    assert_eq!(sandbox_imports(&app).await, 0, "nothing was imported");

    // reqwest appends a repeated header: the request really carries two, and gets the same 400.
    let request = app
        .http
        .post(format!("{}/vorgang", app.address))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .build()
        .unwrap();
    assert_eq!(request.headers().get_all(AUTHORIZATION).iter().count(), 2);
    let response = app.http.execute(request).await.unwrap();
    let problem = problem(response, 400).await;
    assert_eq!(
        problem["type"],
        "https://api.drkleinservice.de/problems/duplicate-authorization"
    );

    // Control: one header imports.
    let response = app.post_vorgang(&token, &seed()).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn two_authorization_headers_at_the_token_endpoint_are_invalid_request() {
    let app = spawn_app().await;
    let right = basic(&app.client_id, &app.client_secret);
    let form = b"grant_type=client_credentials";
    for second in [
        right.clone(),
        basic(&app.client_id, "wrong"),
        basic("drk_other", "x"),
    ] {
        let head = format!(
            "POST /oauth2/token HTTP/1.1\r\nAuthorization: {right}\r\nAuthorization: {second}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        );
        let response = raw(&app, &head, form).await;
        assert_raw_oauth_error(&response, 400, "invalid_request");
        assert!(!String::from_utf8_lossy(&response.body).contains(&app.client_secret));
    }
    // Control: one header gets a token.
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nAuthorization: {right}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        form.len()
    );
    let response = raw(&app, &head, form).await;
    assert_eq!(response.status, 200);
    assert!(response.json()["access_token"].is_string());
}

// ---------------------------------------------------------------------------------------------
// Item 11: too large or malformed token requests answer RFC 6749 JSON
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_oversized_token_request_is_413_json_with_no_store() {
    let app = spawn_app().await;
    // 300 KB announced by Content-Length (regression: 413 text/plain from actix's body limit).
    let padding = "x".repeat(300 * 1024);
    let response = app
        .token_response(&[("grant_type", "client_credentials"), ("padding", &padding)])
        .await;
    assert_oauth_error(response, 413, "invalid_request").await;

    // The limit is 4 KiB: one byte over is too large, exactly 4 KiB is read.
    let prefix = "grant_type=client_credentials&padding=";
    for (size, status, error) in [(4 * 1024 + 1, 413, "invalid_request"), (4 * 1024, 200, "")] {
        let body = format!("{prefix}{}", "x".repeat(size - prefix.len()));
        let response = app
            .http
            .post(format!("{}/oauth2/token", app.address))
            .basic_auth(&app.client_id, Some(&app.client_secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        if status == 200 {
            assert_eq!(response.status(), 200, "{size} bytes");
        } else {
            assert_oauth_error(response, status, error).await;
        }
    }
}

#[tokio::test]
async fn a_streamed_oversized_token_request_is_413_json() {
    // No Content-Length: the body arrives in chunks and is refused once it passes 4 KiB (with
    // the last data chunk, so that nothing unread is left when the server closes).
    let app = spawn_app().await;
    let mut body = Vec::new();
    body.extend_from_slice(b"1d\r\ngrant_type=client_credentials\r\n");
    for _ in 0..4 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'x'; 0x400]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
        basic(&app.client_id, &app.client_secret)
    );
    let response = raw(&app, &head, &body).await;
    assert_raw_oauth_error(&response, 413, "invalid_request");

    // Control: a small chunked form is read and answered.
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
        basic(&app.client_id, &app.client_secret)
    );
    let response = raw(
        &app,
        &head,
        b"1d\r\ngrant_type=client_credentials\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn malformed_token_requests_are_rfc6749_json() {
    let app = spawn_app().await;
    let credentials = basic(&app.client_id, &app.client_secret);
    let form_type = "Content-Type: application/x-www-form-urlencoded\r\n";
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "JSON instead of a form",
            "Content-Type: application/json\r\n".to_owned(),
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (
            "no content type",
            String::new(),
            b"grant_type=client_credentials".to_vec(),
        ),
        (
            "a bad percent escape",
            form_type.to_owned(),
            b"grant_type=client_credentials&scope=%ZZ".to_vec(),
        ),
        (
            "an escape decoding to invalid UTF-8",
            form_type.to_owned(),
            b"grant_type=client_credentials&scope=%FF".to_vec(),
        ),
        (
            "raw bytes that are not UTF-8",
            form_type.to_owned(),
            b"grant_type=client_credentials&scope=\xff\xfe".to_vec(),
        ),
        (
            "a compressed body",
            format!("{form_type}Content-Encoding: gzip\r\n"),
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec(),
        ),
    ];
    for (case, headers, body) in cases {
        let head = format!(
            "POST /oauth2/token HTTP/1.1\r\nAuthorization: {credentials}\r\n{headers}Content-Length: {}\r\n",
            body.len()
        );
        let response = raw(&app, &head, &body).await;
        assert_eq!(response.status, 400, "{case}");
        assert_raw_oauth_error(&response, 400, "invalid_request");
    }
}
