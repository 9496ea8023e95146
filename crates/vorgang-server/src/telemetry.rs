//! Logging: JSON lines on stderr, no personal data.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log target of actix-server's accept loop.
const ACCEPT_TARGET: &str = "actix_server::accept";

/// How often an accept error may be logged at most.
pub const ACCEPT_ERROR_INTERVAL: Duration = Duration::from_secs(10);

/// Installs the global subscriber: JSON to stderr, level from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls do nothing).
///
/// Accept errors of the listener (e.g. "Too many open files" under a connection flood) are
/// logged at most once per [`ACCEPT_ERROR_INTERVAL`]: actix-server retries `accept` every half
/// second, and a flood must not turn into a flood of log lines as well.
pub fn init() {
    init_with_writer(std::io::stderr);
}

/// [`init`] writing to `writer` instead of stderr: the same JSON lines, filter and accept-error
/// gate. Tests pass `tracing_subscriber::fmt::TestWriter` so that `TEST_LOG=1` shows the
/// service's logs through the test harness (captured per test, printed for a failed one or
/// with `--nocapture`).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let gate = Gate::new(ACCEPT_ERROR_INTERVAL);
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_current_span(false)
        .with_writer(writer)
        .finish()
        .with(filter_fn(move |metadata| {
            !metadata.target().starts_with(ACCEPT_TARGET) || gate.allow(Instant::now())
        }))
        .try_init();
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
