//! The load generator: N connections, one closed request loop each, latencies into an HDR
//! histogram.
//!
//! Each loop owns one HTTP/1.1 keep-alive connection (hyper's connection API: exactly N
//! connections, as `wrk -c N`), sends the next body as soon as the previous answer is read (no
//! think time, no pacing), and times each request from just before it is written to the end of
//! the answer body. The load runs without a break from the start of the warm-up to the end of the
//! measured window; only requests *completing* inside the window count. A request still open when
//! the window closes is abandoned and counts neither way.
//!
//! Closed-loop caveat (coordinated omission): a stalled server also stalls the loops, so the
//! percentiles describe the requests that were sent, not a fixed arrival rate. Comparing targets
//! at the same connection count is what this benchmark is for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Highest latency the histogram holds (larger values are clamped): one minute, in µs.
const MAX_LATENCY_US: u64 = 60_000_000;

/// How long a loop waits before it tries again to connect after a failed attempt, so a target
/// that is down does not turn the loop into a busy spin.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The target's address.
    pub addr: SocketAddr,
    /// Request path, e.g. `/vorgang`.
    pub path: String,
    /// `Authorization` header value, if the target needs one.
    pub authorization: Option<HeaderValue>,
    /// Bodies sent in turn.
    pub bodies: Arc<[Bytes]>,
    /// Connections (= request loops).
    pub connections: usize,
    /// Load before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// A request not answered within this is an error (`timeout`).
    pub timeout: Duration,
}

/// What one load run measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Latencies of the 201 answers completed in the window, in µs.
    pub histogram: Histogram<u64>,
    /// 201 answers completed in the window.
    pub imports: u64,
    /// Everything else completed (or failed) in the window: status code, `timeout` or
    /// `connection`.
    pub errors: BTreeMap<String, u64>,
    /// Length of the window.
    pub window: Duration,
}

/// A fresh histogram for latencies in µs: 1 µs to one minute, 3 significant digits.
///
/// # Errors
/// Never for these constant bounds; typed for the histogram's own API.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("creating the latency histogram")
}

/// Runs the load: `spec.connections` loops from now for warm-up plus window.
///
/// # Errors
/// A loop task panicked, or the histogram could not be created.
pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!spec.bodies.is_empty(), "no request bodies");
    let spec = Arc::new(spec);
    let measure_from = Instant::now() + spec.warmup;
    let until = measure_from + spec.duration;
    let loops: Vec<_> = (0..spec.connections)
        .map(|index| {
            let spec = spec.clone();
            tokio::spawn(async move { request_loop(&spec, index, measure_from, until).await })
        })
        .collect();
    let mut result = LoadResult {
        histogram: histogram()?,
        imports: 0,
        errors: BTreeMap::new(),
        window: spec.duration,
    };
    for handle in loops {
        let stats = handle.await.context("a request loop failed")??;
        result
            .histogram
            .add(&stats.histogram)
            .context("merging latency histograms")?;
        result.imports += stats.imports;
        for (kind, count) in stats.errors {
            *result.errors.entry(kind).or_default() += count;
        }
    }
    Ok(result)
}

/// One loop's counts.
struct LoopStats {
    histogram: Histogram<u64>,
    imports: u64,
    errors: BTreeMap<String, u64>,
}

/// How one request ended.
enum Outcome {
    /// The answer was read completely.
    Answered(StatusCode),
    /// The connection failed while sending or reading.
    ConnectionFailed,
    /// No complete answer within the timeout.
    TimedOut,
    /// Still open when the window closed: not counted.
    Abandoned,
}

async fn request_loop(
    spec: &LoadSpec,
    index: usize,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<LoopStats> {
    let mut stats = LoopStats {
        histogram: histogram()?,
        imports: 0,
        errors: BTreeMap::new(),
    };
    let in_window = |at: Instant| at >= measure_from && at < until;
    let host = HeaderValue::from_str(&spec.addr.to_string()).context("Host header")?;
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    // Loops start at different bodies so every Tippgeber is in flight at once.
    let mut next_body = index;
    while Instant::now() < until {
        let mut connection = match sender.take() {
            Some(existing) => existing,
            None => match connect(spec.addr).await {
                Ok(fresh) => fresh,
                Err(_) => {
                    if in_window(Instant::now()) {
                        count(&mut stats.errors, "connection");
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        // A connection the server closed after its last answer is replaced, not counted.
        if connection.ready().await.is_err() {
            continue;
        }
        let body = spec.bodies[next_body % spec.bodies.len()].clone();
        next_body = next_body.wrapping_add(1);
        let mut request = Request::post(spec.path.as_str())
            .header(HOST, host.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(authorization) = &spec.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let request = request
            .body(Full::new(body))
            .context("building a request")?;

        let started = Instant::now();
        let timeout_at = started + spec.timeout;
        let outcome = match tokio::time::timeout_at(
            timeout_at.min(until),
            exchange(&mut connection, request),
        )
        .await
        {
            Ok(Ok(status)) => Outcome::Answered(status),
            Ok(Err(_)) => Outcome::ConnectionFailed,
            Err(_) if timeout_at <= until => Outcome::TimedOut,
            Err(_) => Outcome::Abandoned,
        };
        let finished = Instant::now();
        match outcome {
            Outcome::Answered(status) => {
                if in_window(finished) {
                    if status == StatusCode::CREATED {
                        let micros = u64::try_from((finished - started).as_micros())
                            .unwrap_or(MAX_LATENCY_US);
                        stats.histogram.saturating_record(micros.max(1));
                        stats.imports += 1;
                    } else {
                        count(&mut stats.errors, status.as_str());
                    }
                }
                sender = Some(connection);
            }
            Outcome::ConnectionFailed => {
                if in_window(finished) {
                    count(&mut stats.errors, "connection");
                }
            }
            Outcome::TimedOut => {
                if in_window(finished) {
                    count(&mut stats.errors, "timeout");
                }
            }
            Outcome::Abandoned => {}
        }
    }
    Ok(stats)
}

fn count(errors: &mut BTreeMap<String, u64>, kind: &str) {
    *errors.entry(kind.to_owned()).or_default() += 1;
}

/// Opens one HTTP/1.1 connection; its driver runs as a task until the sender is dropped.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; nothing to report then.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<StatusCode, hyper::Error> {
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, HttpServer, web};

    /// A target answering 201, except 503 for bodies naming `"fail"`: the counts must split
    /// by status, only 201s enter the histogram, and the connection count is what was asked.
    #[actix_web::test]
    async fn counts_imports_and_errors_apart() {
        let connections_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections_seen.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HttpServer::new(|| {
            App::new().route(
                "/vorgang",
                web::post().to(|body: web::Bytes| async move {
                    if body.as_ref() == b"fail" {
                        HttpResponse::ServiceUnavailable().finish()
                    } else {
                        HttpResponse::Created().body("{}")
                    }
                }),
            )
        })
        .workers(1)
        .on_connect(move |_, _| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        let running = actix_web::rt::spawn(server);

        let result = run(LoadSpec {
            addr,
            path: "/vorgang".into(),
            authorization: Some(HeaderValue::from_static("Bearer x")),
            bodies: vec![Bytes::from_static(b"ok"), Bytes::from_static(b"fail")].into(),
            connections: 3,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
            timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();

        handle.stop(true).await;
        running.await.unwrap().unwrap();
        assert!(result.imports > 0, "{result:?}");
        assert_eq!(result.histogram.len(), result.imports);
        assert_eq!(result.errors.keys().collect::<Vec<_>>(), ["503"]);
        // Bodies alternate per loop: successes and failures within one per loop of each other.
        let failures = result.errors["503"];
        assert!(result.imports.abs_diff(failures) <= 3, "{result:?}");
        assert_eq!(
            connections_seen.load(std::sync::atomic::Ordering::SeqCst),
            3
        );
        assert_eq!(result.window, Duration::from_millis(300));
    }
}
