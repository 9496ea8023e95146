//! Helpers shared by the adapters: headers, `Retry-After`, backoff, bounded body reads.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use vorgang_core::TraceId;

use crate::config::RetryPolicy;

/// A `reqwest::Client` per thread, all built alike: each thread (an actix worker with its own
/// single-threaded runtime) keeps its own connection pool.
///
/// One client shared by all workers pools connections across them, and hyper drives each
/// connection from a task on the runtime that opened it: a worker sending on a connection the
/// other worker opened wakes that worker's thread to write the request and is woken by it for
/// the answer, two cross-thread wake-ups per call (issue 10's profile: futex wake-ups 13 % of
/// the service's CPU). Per thread, a call stays on its worker.
#[derive(Clone)]
pub(crate) struct PerThreadClient {
    shared: Arc<Shared>,
}

struct Shared {
    /// The client of the thread that built this, and the fallback when a thread cannot have
    /// its own (building failed, or the thread is ending).
    first: reqwest::Client,
    build: Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>,
}

thread_local! {
    /// This thread's clients, one per live [`PerThreadClient`] (by the address of its
    /// `Shared`, which the `Weak` keeps from being reused).
    static CLIENTS: RefCell<Vec<(Weak<Shared>, reqwest::Client)>> = const { RefCell::new(Vec::new()) };
}

impl PerThreadClient {
    /// Clients made by `build`, which is called once now and once per thread that sends.
    pub(crate) fn new(
        build: impl Fn() -> reqwest::Result<reqwest::Client> + Send + Sync + 'static,
    ) -> reqwest::Result<Self> {
        let first = build()?;
        Ok(Self {
            shared: Arc::new(Shared {
                first,
                build: Box::new(build),
            }),
        })
    }

    /// This thread's client (a cheap handle).
    pub(crate) fn get(&self) -> reqwest::Client {
        let key = Arc::as_ptr(&self.shared);
        CLIENTS
            .try_with(|clients| {
                let mut clients = clients.borrow_mut();
                if let Some((_, client)) = clients.iter().find(|(shared, _)| shared.as_ptr() == key)
                {
                    return client.clone();
                }
                // A client of a dropped `PerThreadClient` is of no use any more.
                clients.retain(|(shared, _)| shared.strong_count() > 0);
                let client = (self.shared.build)().unwrap_or_else(|_| self.shared.first.clone());
                clients.push((Arc::downgrade(&self.shared), client.clone()));
                client
            })
            .unwrap_or_else(|_| self.shared.first.clone())
    }
}

impl std::fmt::Debug for PerThreadClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerThreadClient").finish_non_exhaustive()
    }
}

/// Name of the correlation header Europace reads.
pub(crate) const TRACE_HEADER: &str = "X-TraceId";

/// Name of the W3C Trace Context header.
pub(crate) const TRACEPARENT_HEADER: &str = "traceparent";

/// Largest answer body we read from Europace; more is treated as unreadable.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The trace id as a header value. Characters a header cannot carry are replaced by `_`, so this
/// never fails (our trace ids are plain ASCII anyway).
pub(crate) fn trace_header(trace: &TraceId) -> HeaderValue {
    let cleaned: String = trace
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    HeaderValue::from_str(&cleaned).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The `traceparent` of one outbound call in the trace of `trace`: the same trace-id, a new
/// random span id (never all zero), so each call is its own span under the caller's trace.
pub(crate) fn traceparent(trace: &TraceId) -> HeaderValue {
    let mut span_id: [u8; 8] = rand::random();
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    HeaderValue::from_str(&trace.context().traceparent(span_id))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `Retry-After` as delay-seconds or HTTP-date; `None` when absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Attempts in total allowed by `policy` (at least one).
pub(crate) fn max_attempts(policy: &RetryPolicy) -> u32 {
    policy.max_attempts.max(1)
}

/// How long to wait before retry number `retry` (1 = the first retry).
///
/// `Retry-After` wins when given; both are capped at `policy.max_delay`. The computed delay is
/// "equal jitter": half fixed, half random, so concurrent callers spread out.
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(policy.max_delay);
    }
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let exponential = policy
        .base_delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay);
    let half = exponential / 2;
    let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if half_nanos == 0 {
        0
    } else {
        rand::rng().random_range(0..=half_nanos)
    };
    half + Duration::from_nanos(jitter)
}

/// Why an answer body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The connection failed while reading (reset, timeout, incomplete body).
    Transport(reqwest::Error),
    /// The body exceeds [`MAX_BODY_BYTES`].
    TooLarge,
}

/// Reads the whole answer body, at most [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A short, fixed description of a transport error for logs: never the URL (it may carry an
/// `externePartnerId`), never a body.
pub(crate) fn describe(error: &reqwest::Error) -> &'static str {
    if error.is_connect() {
        if error.is_timeout() {
            "connect timeout"
        } else {
            "connect failed"
        }
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_builder() {
        "request could not be built"
    } else if error.is_body() || error.is_decode() {
        "body transfer failed"
    } else {
        "connection error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        }
    }

    #[test]
    fn a_client_per_thread_built_once_per_thread() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let built = Arc::new(AtomicUsize::new(0));
        let counter = built.clone();
        let clients = PerThreadClient::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            reqwest::Client::builder().build()
        })
        .unwrap();
        assert_eq!(built.load(Ordering::SeqCst), 1, "the fallback");
        let _ = clients.get();
        let _ = clients.get();
        assert_eq!(built.load(Ordering::SeqCst), 2, "one for this thread");
        let other = clients.clone();
        std::thread::spawn(move || {
            let _ = other.get();
            let _ = other.get();
        })
        .join()
        .unwrap();
        assert_eq!(built.load(Ordering::SeqCst), 3, "one for the other thread");
        let _ = clients.clone().get();
        assert_eq!(built.load(Ordering::SeqCst), 3, "clones share");

        // A dropped one's client is forgotten when this thread builds its next.
        drop(clients);
        let again = PerThreadClient::new(|| reqwest::Client::builder().build()).unwrap();
        let _ = again.get();
        CLIENTS.with(|clients| {
            let clients = clients.borrow();
            assert_eq!(clients.len(), 1);
            assert!(clients.iter().all(|(shared, _)| shared.strong_count() > 0));
        });
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(&policy(), 1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff(&policy(), 3, None);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let tenth = backoff(&policy(), 10, None);
            assert!(tenth >= Duration::from_millis(250) && tenth <= Duration::from_millis(500));
            assert!(backoff(&policy(), 40, None) <= Duration::from_millis(500));
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        assert_eq!(
            backoff(&policy(), 1, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            backoff(&policy(), 1, Some(Duration::from_secs(3600))),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn parses_retry_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn trace_header_is_always_valid() {
        let trace = |id: &str| TraceId::new(id, vorgang_core::TraceContext::new_root());
        assert_eq!(trace_header(&trace("drkleinrk-1")), "drkleinrk-1");
        assert_eq!(trace_header(&trace("a b\nc")), "a_b_c");
    }

    #[test]
    fn each_traceparent_continues_the_trace_with_a_new_span() {
        let context = vorgang_core::TraceContext::parse(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
        let trace = TraceId::new(
            "t",
            context.unwrap_or_else(vorgang_core::TraceContext::new_root),
        );
        let first = traceparent(&trace);
        let second = traceparent(&trace);
        for value in [&first, &second] {
            let text = value.to_str().unwrap_or_default();
            assert!(
                text.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && text.ends_with("-01"),
                "{text}"
            );
            assert_ne!(&text[36..52], "b7ad6b7169203331", "a span of our own");
        }
        assert_ne!(first, second);
    }
}
