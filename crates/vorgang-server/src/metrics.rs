//! Prometheus metrics in text format, without labels that could carry personal data.
//!
//! Every label value comes from a closed set fixed in the code: a label made of request text
//! (any token is a valid HTTP method, any path can be asked for) would let each request add a
//! series that is kept, and rendered, for the life of the process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::Method;

/// (method label, route label, status): all `'static` or bounded, see [`method_label`].
type HttpKey = (&'static str, &'static str, u16);

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `method` label: the method itself if it is one of the nine of RFC 9110 and RFC 5789,
/// else `OTHER`.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

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

    /// Counts one HTTP request by method label ([`method_label`]), route pattern (never the raw
    /// path; [`UNMATCHED_ROUTE`] when none matched) and status. The labels are `'static` so that
    /// no request text can become one.
    pub fn observe_http(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let mut http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = http.entry((method, route, status)).or_default();
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

    #[test]
    fn method_labels_are_the_known_methods_or_other() {
        for known in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
        ] {
            assert_eq!(
                method_label(&Method::from_bytes(known.as_bytes()).unwrap()),
                known
            );
        }
        for invented in ["FOO", "get", "PROPFIND", "X-GET"] {
            assert_eq!(
                method_label(&Method::from_bytes(invented.as_bytes()).unwrap()),
                "OTHER"
            );
        }
    }
}
