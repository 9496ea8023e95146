//! Logging: JSON lines on stderr, no personal data.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber: JSON to stderr, level from `RUST_LOG` (default `info`).
/// Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_current_span(false)
        .with_writer(std::io::stderr)
        .try_init();
}
