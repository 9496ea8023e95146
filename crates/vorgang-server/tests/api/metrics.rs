//! `GET /metrics` read by a real exposition-format parser (`prometheus-parse`), after known
//! requests: the types, the histogram's buckets, the labels of a known request, the token and
//! import counters and the process metrics.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_parse::{LineInfo, SampleType, Scrape, Value};

use crate::helpers::{seed, spawn_app};

/// The value of the sample `name` whose labels are exactly `labels`.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find_map(|s| {
        let same = s.metric == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
        match (&s.value, same) {
            (Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v), true) => Some(*v),
            _ => None,
        }
    })
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_histograms_counters_and_process_gauges() {
    let app = spawn_app().await;
    for _ in 0..3 {
        let response = app
            .http
            .get(format!("{}/health/live", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // One token issued, two refused (a wrong secret, a missing grant type), one import.
    let token = app.token().await;
    let wrong = app.token_with_secret("zqx-wrong-secret").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.token_response(&[]).await.status(), 400);
    assert_eq!(app.post_vorgang(&token, &seed()).await.status(), 201);

    let response = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let text = response.text().await.unwrap();
    assert!(!text.contains("zqx"), "request text in /metrics:\n{text}");

    // The declared types, line by line as the parser reads them.
    let types: HashMap<String, SampleType> = text
        .lines()
        .filter_map(|line| match LineInfo::parse(line) {
            LineInfo::Type {
                metric_alias,
                metric_name,
                sample_type,
            } => Some((metric_alias.unwrap_or(metric_name), sample_type)),
            _ => None,
        })
        .collect();
    for (name, expected) in [
        ("http_request_duration_seconds", SampleType::Histogram),
        ("http_requests_total", SampleType::Counter),
        ("vorgang_imports_total", SampleType::Counter),
        ("vorgang_tokens_issued_total", SampleType::Counter),
        ("vorgang_token_refusals_total", SampleType::Counter),
        ("process_cpu_seconds_total", SampleType::Counter),
        ("process_resident_memory_bytes", SampleType::Gauge),
        ("process_virtual_memory_bytes", SampleType::Gauge),
        ("process_open_fds", SampleType::Gauge),
        ("process_max_fds", SampleType::Gauge),
        ("process_start_time_seconds", SampleType::Gauge),
    ] {
        assert_eq!(types.get(name), Some(&expected), "{name} in\n{text}");
    }

    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();

    // The known request's histogram: cumulative buckets, `+Inf` = `_count` = the counter = 3.
    let live = [
        ("method", "GET"),
        ("route", "/health/live"),
        ("status", "200"),
    ];
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "http_request_duration_seconds"
                && live.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no histogram of GET /health/live in\n{text}"));
    assert_eq!(histogram.labels.len(), 3, "{:?}", histogram.labels);
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {histogram:?}");
    };
    assert_eq!(buckets.len(), 13, "12 bounds and +Inf: {buckets:?}");
    for pair in buckets.windows(2) {
        assert!(pair[0].less_than < pair[1].less_than, "{buckets:?}");
        assert!(pair[0].count <= pair[1].count, "cumulative: {buckets:?}");
    }
    let last = buckets.last().unwrap();
    assert!(last.less_than.is_infinite(), "{buckets:?}");
    let count = sample(&scrape, "http_request_duration_seconds_count", &live).unwrap();
    assert_eq!(last.count, count);
    assert_eq!(count, 3.0);
    assert_eq!(sample(&scrape, "http_requests_total", &live), Some(3.0));
    let sum = sample(&scrape, "http_request_duration_seconds_sum", &live).unwrap();
    assert!(sum > 0.0 && sum < 30.0, "{sum}");

    // Tokens and imports.
    assert_eq!(
        sample(&scrape, "vorgang_tokens_issued_total", &[]),
        Some(1.0)
    );
    for (error, count) in [
        ("invalid_client", 1.0),
        ("invalid_request", 1.0),
        ("slow_down", 0.0),
    ] {
        assert_eq!(
            sample(&scrape, "vorgang_token_refusals_total", &[("error", error)]),
            Some(count),
            "{error}"
        );
    }
    assert_eq!(
        sample(&scrape, "vorgang_imports_total", &[("status", "COMPLETED")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &scrape,
            "http_requests_total",
            &[("method", "POST"), ("route", "/vorgang"), ("status", "201")]
        ),
        Some(1.0)
    );

    // The process (this test binary runs the server in-process).
    let rss = sample(&scrape, "process_resident_memory_bytes", &[]).unwrap();
    assert!((1e6..64e9).contains(&rss), "rss {rss}");
    let virtual_memory = sample(&scrape, "process_virtual_memory_bytes", &[]).unwrap();
    assert!(
        virtual_memory >= rss,
        "virtual {virtual_memory} < rss {rss}"
    );
    let cpu = sample(&scrape, "process_cpu_seconds_total", &[]).unwrap();
    assert!(cpu > 0.0 && cpu < 1e6, "cpu {cpu}");
    let open = sample(&scrape, "process_open_fds", &[]).unwrap();
    let max = sample(&scrape, "process_max_fds", &[]).unwrap();
    assert!(open >= 3.0 && open <= max, "open {open}, max {max}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = sample(&scrape, "process_start_time_seconds", &[]).unwrap();
    assert!(
        started <= now + 1.0 && started > now - 24.0 * 3600.0,
        "start {started}, now {now}"
    );
}

/// `/metrics` parsed.
async fn scrape(app: &crate::helpers::TestApp) -> (String, Scrape) {
    let text = app.metrics_text().await;
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, scrape)
}

/// The `_count` of the Europace call histogram for `target` and `outcome` (0 when absent).
fn calls(scrape: &Scrape, target: &str, outcome: &str) -> f64 {
    sample(
        scrape,
        "vorgang_europace_call_duration_seconds_count",
        &[("target", target), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

/// Issue 11 (4): every exchange with Europace is timed by target and outcome, and the imports in
/// each unfinished state are counted in the database at every scrape.
#[tokio::test]
async fn europace_calls_are_timed_and_open_imports_counted() {
    let app = spawn_app().await;
    let token = app.token().await;

    let (text, before) = scrape(&app).await;
    for status in [
        "QUEUED",
        "ACCEPTED",
        "PARTNER_READY",
        "SENDING",
        "IMPORTED",
        "IN_DOUBT",
    ] {
        assert_eq!(
            sample(&before, "vorgang_imports_open", &[("status", status)]),
            Some(0.0),
            "{status} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE vorgang_imports_open gauge"), "{text}");

    // One import completes; one is refused by Europace (503, retried by no one: the KEX import
    // is never repeated); one loses its answer after sending (IN_DOUBT).
    assert_eq!(app.post_vorgang(&token, &seed()).await.status(), 201);
    app.sandbox_fault(serde_json::json!({"target": "kex", "status": 503}))
        .await;
    assert_eq!(app.post_vorgang(&token, &seed()).await.status(), 503);
    app.sandbox_fault(serde_json::json!({"target": "kex", "status": 0, "after_receive": true}))
        .await;
    assert_eq!(app.post_vorgang(&token, &seed()).await.status(), 504);

    let (text, after) = scrape(&app).await;
    assert!(
        text.contains("# TYPE vorgang_europace_call_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(
        calls(&after, "token", "ok"),
        2.0,
        "partner and KEX scopes:\n{text}"
    );
    assert!(calls(&after, "partner_lookup", "ok") >= 1.0, "{text}");
    assert_eq!(
        calls(&after, "partner_create", "ok"),
        1.0,
        "one Tippgeber:\n{text}"
    );
    assert_eq!(calls(&after, "kex", "ok"), 1.0, "{text}");
    assert_eq!(calls(&after, "kex", "unavailable"), 1.0, "{text}");
    assert_eq!(calls(&after, "kex", "in_doubt"), 1.0, "{text}");
    // Every label value comes from the closed sets.
    for series in after.samples.iter().filter(|s| {
        s.metric
            .starts_with("vorgang_europace_call_duration_seconds")
    }) {
        let target = series.labels.get("target").unwrap_or_default();
        let outcome = series.labels.get("outcome").unwrap_or_default();
        assert!(
            [
                "token",
                "partner_lookup",
                "partner_create",
                "partner_update",
                "kex"
            ]
            .contains(&target),
            "{target}"
        );
        assert!(
            ["ok", "rejected", "unavailable", "in_doubt", "protocol"].contains(&outcome),
            "{outcome}"
        );
    }
    assert_eq!(
        sample(&after, "vorgang_imports_open", &[("status", "IN_DOUBT")]),
        Some(1.0),
        "{text}"
    );
    for status in ["ACCEPTED", "PARTNER_READY", "SENDING", "IMPORTED"] {
        assert_eq!(
            sample(&after, "vorgang_imports_open", &[("status", status)]),
            Some(0.0),
            "{status}"
        );
    }
    // Finished states are not counted: those could be millions.
    assert_eq!(
        sample(&after, "vorgang_imports_open", &[("status", "COMPLETED")]),
        None
    );
}
