//! Issue 8 (HIGH 1): a request body that has not fully arrived 10 s after its headers gets 408
//! and its connection is closed, on every endpoint, with or without a token
//! (docs/reference/http-api.md §1). Raw TCP: an HTTP client library would not send a body this
//! badly.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::spawn_app;

/// What the server did with a stalled request: its answer and when the connection closed.
struct Outcome {
    status_line: String,
    head: String,
    body: String,
    closed_after: Duration,
}

impl Outcome {
    /// The value of the answer header `name` (lower case), if any.
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Sends `head` (request line and headers, without the blank line) and then `body` as separate
/// writes `pause` apart, then reads until the server closes the connection (at most 30 s).
async fn stalled(address: &str, head: String, body: &[&[u8]], pause: Duration) -> Outcome {
    let address = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let chunks: Vec<Vec<u8>> = body.iter().map(|c| c.to_vec()).collect();
    let drip = tokio::spawn(async move {
        for chunk in chunks {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
        // Keep the write half open: the body stays incomplete.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer)).await;
    drip.abort();
    assert!(read.is_ok(), "the connection was not closed within 30 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Outcome {
        status_line: head.lines().next().unwrap_or("").to_owned(),
        head: head.to_owned(),
        body: body.to_owned(),
        closed_after: started.elapsed(),
    }
}

fn assert_timed_out(outcome: &Outcome, what: &str) {
    assert_eq!(
        outcome.status_line, "HTTP/1.1 408 Request Timeout",
        "{what}: {}",
        outcome.body
    );
    assert!(
        outcome.closed_after >= Duration::from_secs(10)
            && outcome.closed_after < Duration::from_secs(15),
        "{what}: closed after {:?}",
        outcome.closed_after
    );
}

#[tokio::test]
async fn stalled_and_dripping_bodies_get_408_and_the_connection_is_closed() {
    let app = spawn_app().await;
    let token = app.token().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let one_second = Duration::from_secs(1);
    let drip: Vec<&[u8]> = vec![b"{"; 30];

    let (token_endpoint, vorgang, vorgang_drip, token_chunked, health_chunked) = tokio::join!(
        // No token needed: the token endpoint, Content-Length announced, one byte sent.
        stalled(
            &app.address,
            format!(
                "POST /oauth2/token HTTP/1.1\r\nHost: {host}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000"
            ),
            &[b"g"],
            one_second,
        ),
        // With a token: POST /vorgang, one byte of 4000.
        stalled(
            &app.address,
            format!(
                "POST /vorgang HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 4000"
            ),
            &[b"{"],
            one_second,
        ),
        // One byte per second: each arrives in time, the whole body never does. (In English.)
        stalled(
            &app.address,
            format!(
                "POST /vorgang HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
                 Accept-Language: en\r\nContent-Type: application/json\r\nContent-Length: 4000"
            ),
            &drip,
            one_second,
        ),
        // Chunked and stalled: actix-web would drain it forever once the reader is gone.
        // (In English.)
        stalled(
            &app.address,
            format!(
                "POST /oauth2/token HTTP/1.1\r\nHost: {host}\r\nAccept-Language: en;q=0.9\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked"
            ),
            &[b"5\r\ngr"],
            one_second,
        ),
        // An endpoint that never reads a body answers at once and closes.
        stalled(
            &app.address,
            format!("GET /health/live HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked"),
            &[b"5\r\nab"],
            one_second,
        ),
    );

    assert_timed_out(&token_endpoint, "token endpoint");
    // The token endpoint answers errors as RFC 6749 JSON, not problem+json.
    assert!(
        token_endpoint.body.contains(r#""error":"invalid_request""#),
        "{}",
        token_endpoint.body
    );
    assert_timed_out(&vorgang, "POST /vorgang");
    assert!(vorgang.body.contains("request-timeout"), "{}", vorgang.body);
    // The 408 names its request like every problem (a new id: the request sent none).
    let problem: serde_json::Value = serde_json::from_str(&vorgang.body).unwrap();
    assert!(
        uuid::Uuid::parse_str(problem["requestId"].as_str().unwrap_or_default()).is_ok(),
        "{}",
        vorgang.body
    );
    assert_timed_out(&vorgang_drip, "POST /vorgang, one byte per second");
    assert_timed_out(&token_chunked, "chunked token request");

    // German by default, English on request; the codes the same in both.
    assert_eq!(token_endpoint.header("content-language"), Some("de"));
    assert_eq!(
        token_endpoint.json()["error_description"],
        "der Request-Body ist nicht innerhalb von 10 s nach den Headern angekommen"
    );
    assert_eq!(token_chunked.header("content-language"), Some("en"));
    assert_eq!(
        token_chunked.json()["error_description"],
        "the request body did not arrive within 10 s of the headers"
    );
    assert_eq!(
        token_chunked.json()["error"],
        token_endpoint.json()["error"]
    );
    assert_eq!(vorgang.header("content-language"), Some("de"));
    assert_eq!(problem["title"], "Zeitüberschreitung der Anfrage");
    assert_eq!(
        problem["detail"],
        "der Request-Body ist nicht innerhalb von 10 s nach den Headern angekommen"
    );
    assert_eq!(vorgang_drip.header("content-language"), Some("en"));
    let english = vorgang_drip.json();
    assert_eq!(english["title"], "Request timeout");
    assert_eq!(
        english["detail"],
        "the request body did not arrive within 10 s of the headers"
    );
    assert_eq!(english["type"], problem["type"]);
    assert_eq!(health_chunked.status_line, "HTTP/1.1 200 OK");
    assert!(
        health_chunked.closed_after < Duration::from_secs(5),
        "closed after {:?}",
        health_chunked.closed_after
    );

    // Nothing was imported from the partial bodies.
    assert!(app.sandbox_imports().await.is_empty());
}
