//! Prometheus metrics on `prometheus-client`, without labels that could carry personal data.
//!
//! `/metrics` answers in the Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), which
//! `prometheus-client` encodes ([`prometheus_text`]) and every Prometheus-compatible scraper reads.
//!
//! Every label value comes from a closed set fixed in the code: a label made of request text
//! (any token is a valid HTTP method, any path can be asked for) would let each request add a
//! series that is kept, and rendered, for the life of the process. The label types below hold
//! only `&'static str` and numbers, so no request text can become one.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use europace_client::{CallObserver, CallOutcome, CallTarget};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vorgang_core::{ImportStatus, Resolver};

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the request duration buckets: from a health probe (milliseconds) to
/// an import that waits for Europace's request timeout (10 s by default) and its retries.
pub const HTTP_DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `error` codes of the token endpoint's refusals (RFC 6749 §5.2 and RFC 8628's
/// `slow_down`); anything else is counted as `other`.
pub const TOKEN_ERRORS: [&str; 9] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "slow_down",
    "temporarily_unavailable",
    "server_error",
];

/// The states counted by the gauge `vorgang_imports_open` at every scrape: those an import can
/// stand in before it is finished (`COMPLETED`, `FAILED`). Each costs one count over its own
/// imports, which stay few: finished imports are never read.
/// `QUEUED` is the re-delivery queue's depth.
pub const OPEN_STATES: [ImportStatus; 6] = [
    ImportStatus::Queued,
    ImportStatus::Accepted,
    ImportStatus::PartnerReady,
    ImportStatus::Sending,
    ImportStatus::Imported,
    ImportStatus::InDoubt,
];

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

/// Labels of the HTTP metrics, in exposition order.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// Label of the import outcomes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImportLabels {
    status: &'static str,
}

/// Labels of the Europace call durations: both from closed sets of `europace-client`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EuropaceLabels {
    target: &'static str,
    outcome: &'static str,
}

/// Label of the background deliveries and webhook attempts: from closed sets (an import state,
/// [`WebhookOutcome`]).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// A counter family with one series per outcome of a closed set, each created at zero, so a
/// scrape shows every outcome before it first happens.
fn outcome_counters(
    outcomes: impl IntoIterator<Item = &'static str>,
) -> Family<OutcomeLabels, Counter> {
    let family = Family::<OutcomeLabels, Counter>::default();
    for outcome in outcomes {
        drop(family.get_or_create(&OutcomeLabels { outcome }));
    }
    family
}

/// Label of the token endpoint's refusals.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    error: &'static str,
}

/// A histogram with [`HTTP_DURATION_BUCKETS`] (the family's constructor).
fn http_duration_histogram() -> Histogram {
    Histogram::new(HTTP_DURATION_BUCKETS)
}

/// The metrics of the service. Cheap to clone: every clone records into the same registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    imports: Family<ImportLabels, Counter>,
    tokens_issued: Counter,
    token_refusals: Family<RefusalLabels, Counter>,
    europace_duration: Family<EuropaceLabels, Histogram, fn() -> Histogram>,
    open_imports: Family<ImportLabels, Gauge>,
    deliveries: Family<OutcomeLabels, Counter>,
    webhooks: Family<OutcomeLabels, Counter>,
    outbox: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric of the service and the process metrics.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                http_duration_histogram,
            );
        registry.register(
            "http_request_duration_seconds",
            "Time from the request's arrival to its answer, by method, route and status",
            http_duration.clone(),
        );
        let imports = Family::<ImportLabels, Counter>::default();
        registry.register(
            "vorgang_imports",
            "POST /vorgang answers by the import's resulting status, replays included",
            imports.clone(),
        );
        let tokens_issued = Counter::default();
        registry.register(
            "vorgang_tokens_issued",
            "Access tokens issued by POST /oauth2/token",
            tokens_issued.clone(),
        );
        let token_refusals = Family::<RefusalLabels, Counter>::default();
        // Every code from the start at 0, so a rate over them needs no series to appear first.
        for error in TOKEN_ERRORS {
            drop(token_refusals.get_or_create(&RefusalLabels { error }));
        }
        registry.register(
            "vorgang_token_refusals",
            "Refused POST /oauth2/token requests by RFC 6749 error code",
            token_refusals.clone(),
        );
        let europace_duration =
            Family::<EuropaceLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                http_duration_histogram,
            );
        registry.register(
            "vorgang_europace_call_duration_seconds",
            "Time of each HTTP exchange with Europace (every attempt), by target (token, \
             partner_lookup, partner_create, partner_update, kex) and outcome (ok, rejected, \
             unavailable, in_doubt, protocol)",
            europace_duration.clone(),
        );
        let open_imports = Family::<ImportLabels, Gauge>::default();
        registry.register(
            "vorgang_imports_open",
            "Imports now in each unfinished state, counted in the database at every scrape \
             (every replica reports the same figures: aggregate with max, not sum)",
            open_imports.clone(),
        );
        let deliveries = outcome_counters(ImportStatus::ALL.iter().map(|status| status.as_str()));
        registry.register(
            "vorgang_deliveries",
            "Background re-deliveries of queued imports, by the state each ended in (COMPLETED, \
             FAILED, IN_DOUBT, QUEUED again, …)",
            deliveries.clone(),
        );
        let webhooks = outcome_counters(WebhookOutcome::ALL.iter().map(|outcome| outcome.as_str()));
        registry.register(
            "vorgang_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retried, expired, dropped)",
            webhooks.clone(),
        );
        let outbox = Gauge::default();
        registry.register(
            "vorgang_webhook_outbox",
            "Webhook events waiting for delivery, counted in the database at every scrape \
             (aggregate with max, not sum)",
            outbox.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Self {
            registry: Arc::new(registry),
            http_requests,
            http_duration,
            imports,
            tokens_issued,
            token_refusals,
            europace_duration,
            open_imports,
            deliveries,
            webhooks,
            outbox,
        }
    }

    /// Sets `vorgang_webhook_outbox` to the events waiting in `store` (left as it was, with a
    /// warning, when the count fails).
    pub async fn count_outbox(&self, store: &dyn vorgang_core::WebhookStore) {
        match store.count_events().await {
            Ok(count) => {
                self.outbox.set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not count webhook events for /metrics");
            }
        }
    }

    /// Counts one background re-delivery by the state the import ended in.
    pub fn observe_delivery(&self, status: ImportStatus) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: status.as_str(),
            })
            .inc();
    }

    /// Counts one webhook attempt by its outcome ([`WebhookOutcome::as_str`]).
    pub fn observe_webhook(&self, outcome: &'static str) {
        self.webhooks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The observer the Europace adapters report every exchange to
    /// ([`europace_client::EuropaceConfig::observer`]).
    #[must_use]
    pub fn europace_observer(&self) -> Arc<dyn CallObserver> {
        Arc::new(EuropaceCalls(self.europace_duration.clone()))
    }

    /// Sets the gauge of every [`OPEN_STATES`] state to its count in the store. A state whose
    /// count fails is left out of the next rendering (no figure is better than a stale one; the
    /// failure is logged): `/metrics` itself keeps answering while the database is down.
    pub async fn count_open_imports(&self, resolver: &Resolver) {
        for status in OPEN_STATES {
            let labels = ImportLabels {
                status: status.as_str(),
            };
            match resolver.count_by_status(status).await {
                Ok(count) => {
                    self.open_imports
                        .get_or_create(&labels)
                        .set(i64::try_from(count).unwrap_or(i64::MAX));
                }
                Err(error) => {
                    self.open_imports.remove(&labels);
                    tracing::warn!(error = %error, status = status.as_str(), "could not count imports for /metrics");
                }
            }
        }
    }

    /// Counts one HTTP request by method label ([`method_label`]), route pattern (never the raw
    /// path; [`UNMATCHED_ROUTE`] when none matched) and status, and observes its duration.
    pub fn observe_http(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let labels = HttpLabels {
            method,
            route,
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration.get_or_create(&labels).observe(seconds);
    }

    /// Counts one import answer by the import's status.
    pub fn observe_import(&self, status: &'static str) {
        self.imports.get_or_create(&ImportLabels { status }).inc();
    }

    /// Counts one issued access token.
    pub fn observe_token_issued(&self) {
        self.tokens_issued.inc();
    }

    /// Counts one refused token request by its RFC 6749 `error` code (`other` when the code is
    /// not one of [`TOKEN_ERRORS`]).
    pub fn observe_token_refused(&self, error: &str) {
        let error = TOKEN_ERRORS
            .iter()
            .copied()
            .find(|known| *known == error)
            .unwrap_or("other");
        self.token_refusals
            .get_or_create(&RefusalLabels { error })
            .inc();
    }

    /// The Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]).
    ///
    /// # Errors
    /// When the encoder fails (it writes into a `String`, so only on a bug).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Records the Europace adapters' exchanges in `vorgang_europace_call_duration_seconds`.
#[derive(Debug)]
struct EuropaceCalls(Family<EuropaceLabels, Histogram, fn() -> Histogram>);

impl CallObserver for EuropaceCalls {
    fn observe(&self, target: CallTarget, outcome: CallOutcome, duration: Duration) {
        let labels = EuropaceLabels {
            target: target.as_str(),
            outcome: outcome.as_str(),
        };
        self.0
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }
}

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/self/stat`, 100 on every architecture
/// the service is built for (the kernel converts its internal tick rate to it).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc` tells about this process (Linux only).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: i64,
    virtual_bytes: i64,
    start_time_seconds: f64,
    open_fds: i64,
}

impl ProcessStats {
    /// Reads `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and `/proc/self/fd`; `None`
    /// where there is no `/proc` (not Linux).
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let system = std::fs::read_to_string("/proc/stat").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        Self::parse(&stat, &status, &system, open_fds)
    }

    /// The figures from the files' contents (see `proc(5)`).
    fn parse(stat: &str, status: &str, system: &str, open_fds: usize) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces and parentheses:
        // the fields proper start after the last `)`, with field 3 (state) at index 0.
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let field = |number: usize| -> Option<f64> { fields.get(number - 3)?.parse().ok() };
        let ticks = field(14)? + field(15)?;
        let start_ticks = field(22)?;
        let virtual_bytes = fields.get(23 - 3)?.parse::<i64>().ok()?;
        let resident_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse::<i64>()
            .ok()?;
        let boot_time = system
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        Some(Self {
            cpu_seconds: ticks / TICKS_PER_SECOND,
            resident_bytes: resident_kib.saturating_mul(1024),
            virtual_bytes,
            start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
            open_fds: i64::try_from(open_fds).unwrap_or(i64::MAX),
        })
    }
}

/// The process metrics of the Prometheus client conventions (`process_*`), read at each scrape.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, ConstGauge<f64>); 3] = [
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                ConstGauge::new(stats.start_time_seconds),
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                ConstGauge::new(stats.resident_bytes as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                ConstGauge::new(stats.virtual_bytes as f64),
            ),
        ];
        for (name, help, gauge) in gauges {
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let open = ConstGauge::new(stats.open_fds);
        open.encode(encoder.encode_descriptor(
            "process_open_fds",
            "Number of open file descriptors",
            None,
            open.metric_type(),
        )?)?;
        // The soft limit: the one `open` fails at (raised to the hard limit at start).
        if let Ok((soft, _hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            let max = ConstGauge::new(i64::try_from(soft).unwrap_or(i64::MAX));
            max.encode(encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                max.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// What became of one delivery attempt (the `outcome` label of `vorgang_webhook_deliveries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The receiver answered 2xx: removed from the outbox.
    Delivered,
    /// Not delivered: tried again later.
    Retried,
    /// Not delivered for [`GIVE_UP_AFTER`](crate::webhooks::GIVE_UP_AFTER): given up.
    Expired,
    /// The client has no webhook (any more), or its secret cannot be read: dropped.
    Dropped,
}

impl WebhookOutcome {
    /// Every outcome.
    pub const ALL: [Self; 4] = [Self::Delivered, Self::Retried, Self::Expired, Self::Dropped];

    /// The label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Expired => "expired",
            Self::Dropped => "dropped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::new();
        metrics.observe_http("POST", "/vorgang", 201, 0.5);
        metrics.observe_http("POST", "/vorgang", 201, 0.02);
        metrics.observe_import("COMPLETED");
        metrics.observe_token_refused("invalid_client");
        metrics.observe_token_refused("zqx_invented");
        let text = metrics.render().unwrap();
        let labels = r#"method="POST",route="/vorgang",status="201""#;
        for line in [
            "# TYPE http_requests_total counter".to_owned(),
            format!("http_requests_total{{{labels}}} 2"),
            "# TYPE http_request_duration_seconds histogram".to_owned(),
            format!("http_request_duration_seconds_bucket{{{labels},le=\"0.025\"}} 1"),
            format!("http_request_duration_seconds_bucket{{{labels},le=\"0.5\"}} 2"),
            format!("http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2"),
            format!("http_request_duration_seconds_count{{{labels}}} 2"),
            "vorgang_imports_total{status=\"COMPLETED\"} 1".to_owned(),
            "vorgang_tokens_issued_total 0".to_owned(),
            "vorgang_token_refusals_total{error=\"invalid_client\"} 1".to_owned(),
            "vorgang_token_refusals_total{error=\"slow_down\"} 0".to_owned(),
            "vorgang_token_refusals_total{error=\"other\"} 1".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("zqx"), "{text}");
    }

    #[test]
    fn process_stats_are_parsed_from_proc_files() {
        // A command name with a space and a parenthesis, as `proc(5)` allows.
        let stat = "4242 (vorgang (x) s) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 \
                    9 0 123400 104857600 2048 18446744073709551615";
        let status = "Name:\tvorgang\nVmRSS:\t   8192 kB\nThreads:\t9\n";
        let system = "cpu  1 2 3\nbtime 1700000000\nprocesses 1\n";
        let stats = ProcessStats::parse(stat, status, system, 17).unwrap();
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 8192 * 1024,
                virtual_bytes: 104_857_600,
                start_time_seconds: 1_700_001_234.0,
                open_fds: 17,
            }
        );
        assert_eq!(ProcessStats::parse("garbage", status, system, 1), None);
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
