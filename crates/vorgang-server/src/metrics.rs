//! Prometheus metrics in text format, without labels that could carry personal data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

/// (method, route pattern, status).
type HttpKey = (String, String, u16);

/// Counters of the service. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    http: Arc<Mutex<BTreeMap<HttpKey, HttpStats>>>,
    imports: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct HttpStats {
    count: u64,
    seconds: f64,
}

impl Metrics {
    /// Empty counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one HTTP request by method, route pattern (never the raw path) and status.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = http
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        stats.count += 1;
        stats.seconds += seconds;
    }

    /// Counts one import answer by the import's status.
    pub fn observe_import(&self, status: &'static str) {
        *self
            .imports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests by method, route and status.\n# TYPE http_requests_total counter\n");
        let http = self
            .http
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((method, route, status), stats) in &http {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                stats.count
            );
        }
        out.push_str("# HELP http_request_duration_seconds_sum Total time spent answering, by method, route and status.\n# TYPE http_request_duration_seconds_sum counter\n");
        for ((method, route, status), stats) in &http {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {:.6}",
                stats.seconds
            );
        }
        out.push_str("# HELP vorgang_imports_total Answered imports by resulting import status.\n# TYPE vorgang_imports_total counter\n");
        for (status, count) in self
            .imports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "vorgang_imports_total{{status=\"{status}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let metrics = Metrics::new();
        metrics.observe_http("POST", "/vorgang", 201, 0.5);
        metrics.observe_http("POST", "/vorgang", 201, 0.25);
        metrics.observe_import("COMPLETED");
        let text = metrics.render();
        assert!(
            text.contains(
                "http_requests_total{method=\"POST\",route=\"/vorgang\",status=\"201\"} 2"
            )
        );
        assert!(text.contains("http_request_duration_seconds_sum{method=\"POST\",route=\"/vorgang\",status=\"201\"} 0.750000"));
        assert!(text.contains("vorgang_imports_total{status=\"COMPLETED\"} 1"));
    }
}
