//! Logging: JSON lines on stderr, no personal data.
//!
//! A line written while a request is answered carries the request's span as `span`: `name`
//! (`request`), `method`, `route`, `request_id`, `trace_id`, and once known `client_id` and
//! `drkleinrkVorgangsnummer` (see [`crate::request_context`]).

mod json_lines;

pub use json_lines::JsonLines;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::subscriber::Interest;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Log targets whose events a client or a flood can trigger at will, each logged at most once
/// per [`NOISY_TARGET_INTERVAL`]: actix-server's accept loop (e.g. "Too many open files",
/// retried every half second) and actix-http's connection handling (e.g. "stream error: request
/// parse error: invalid Header provided" at ERROR for every malformed request).
const NOISY_TARGETS: [&str; 2] = ["actix_server::accept", "actix_http::"];

/// How often an event of one of the noisy targets (actix-server's accept loop, actix-http's
/// connection handling) may be logged at most.
pub const NOISY_TARGET_INTERVAL: Duration = Duration::from_secs(10);

/// The level of the service (`serve`, `sandbox`) when `RUST_LOG` is not set.
pub const SERVICE_LEVEL: &str = "info";

/// The level of the operator's one-shot commands (`clients …`, `imports …`, `keys …`,
/// `config check`) when `RUST_LOG` is not set: only warnings and errors, so their stderr shows
/// what needs attention and nothing else.
pub const COMMAND_LEVEL: &str = "warn";

/// Installs the global subscriber: JSON to stderr, level from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls do nothing).
///
/// Events of the noisy targets (actix-server's accept loop, actix-http's connection handling)
/// are logged at most once per [`NOISY_TARGET_INTERVAL`] each: a flood of connections or of
/// malformed requests must not turn into a flood of log lines.
pub fn init() {
    init_with_writer(std::io::stderr);
}

/// [`init`] with `default_level` (e.g. [`COMMAND_LEVEL`]) where `RUST_LOG` is not set.
pub fn init_with_level(default_level: &str) {
    let _ = subscriber_with_level(std::io::stderr, default_level).try_init();
}

/// [`init`] writing to `writer` instead of stderr: the same JSON lines, filter and gates. Tests
/// pass `tracing_subscriber::fmt::TestWriter` so that `TEST_LOG=1` shows the service's logs
/// through the test harness (captured per test, printed for a failed one or with `--nocapture`).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = subscriber(writer).try_init();
}

/// The subscriber [`init`] installs, writing to `writer` (tests capture it).
pub fn subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_with_level(writer, SERVICE_LEVEL)
}

/// [`subscriber`] with `default_level` where `RUST_LOG` is not set.
pub fn subscriber_with_level<W>(
    writer: W,
    default_level: &str,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let gates = NOISY_TARGETS.map(|_| Gate::new(NOISY_TARGET_INTERVAL));
    let noisy = |target: &str| NOISY_TARGETS.iter().position(|t| target.starts_with(t));
    // JSON lines as `tracing_subscriber::fmt().json()` writes them with the current span and
    // without the span list, at a fraction of the cost (see `JsonLines`).
    tracing_subscriber::registry()
        .with(filter)
        .with(
            dynamic_filter_fn(move |metadata, _| {
                noisy(metadata.target()).is_none_or(|i| gates[i].allow(Instant::now()))
            })
            // Asked per event, not once per call site: tracing caches a filter's answer per
            // call site unless told it may change.
            .with_callsite_filter(move |metadata| {
                if noisy(metadata.target()).is_some() {
                    Interest::sometimes()
                } else {
                    Interest::always()
                }
            }),
        )
        .with(JsonLines::new(writer))
}

/// Lets one event through per interval.
#[derive(Debug)]
pub struct Gate {
    interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl Gate {
    /// A gate opening at most once per `interval`.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(None),
        }
    }

    /// Whether an event at `now` may pass.
    pub fn allow(&self, now: Instant) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match *last {
            Some(previous) if now.saturating_duration_since(previous) < self.interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    pub(super) struct Captured(pub(super) std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn noisy_targets_are_logged_once_per_interval_others_always() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                tracing::error!(target: "actix_server::accept", "Error accepting connection");
                tracing::error!(target: "actix_http::h1::dispatcher", "stream error");
                tracing::info!(target: "vorgang_server", "ours");
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.matches("Error accepting connection").count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("stream error").count(), 1, "{text}");
        assert_eq!(text.matches("ours").count(), 5, "{text}");
    }

    #[test]
    fn the_gate_opens_once_per_interval() {
        let gate = Gate::new(Duration::from_secs(10));
        let start = Instant::now();
        assert!(gate.allow(start));
        assert!(!gate.allow(start + Duration::from_millis(510)));
        assert!(!gate.allow(start + Duration::from_millis(9_999)));
        assert!(gate.allow(start + Duration::from_secs(10)));
        assert!(!gate.allow(start + Duration::from_secs(11)));
    }
}
