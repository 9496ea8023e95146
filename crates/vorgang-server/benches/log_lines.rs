//! The log lines of one import at `info`: `cargo bench -p vorgang-server --bench log_lines`.
//!
//! What a `POST /vorgang` costs the logging, as served: the request's span with its four
//! fields, the three fields recorded into it later (`route`, `client_id`,
//! `drkleinrkVorgangsnummer`), the import's outcome line and the request line, written to a
//! sink. Once through the service's subscriber ([`vorgang_server::telemetry::subscriber`], our
//! `JsonLines`) and once through `tracing_subscriber::fmt().json()` configured as the service
//! was before issue 10's round 4; both write the same bytes (a unit test in
//! `telemetry::json_lines` compares them).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};

/// The span and lines of one import, as the service writes them.
fn one_import() {
    let span = tracing::info_span!(
        "request",
        method = "POST",
        route = tracing::field::Empty,
        request_id = %"0b9c3a4e-5d6f-4a7b-8c9d-0e1f2a3b4c5d",
        trace_id = %"0af7651916cd43dd8448eb211c80319c",
        client_id = tracing::field::Empty,
        drkleinrkVorgangsnummer = tracing::field::Empty,
    );
    let _entered = span.enter();
    span.record("route", "/vorgang");
    span.record(
        "client_id",
        tracing::field::display("drk_114dd671f20cf7841fae0d165ad292bf"),
    );
    let import = "01a23251-0db4-7457-b194-4d1a80f032e2";
    span.record("drkleinrkVorgangsnummer", tracing::field::display(import));
    tracing::debug!(import, "import accepted");
    tracing::info!(
        import,
        from = "SENDING",
        to = "COMPLETED",
        "import state stored"
    );
    tracing::info!(
        method = "POST",
        route = "/vorgang",
        status = 201_u64,
        duration_ms = 7_u64,
        "request"
    );
}

fn log_lines(c: &mut Criterion) {
    let ours = vorgang_server::telemetry::subscriber_with_level(std::io::sink, "info");
    tracing::subscriber::with_default(ours, || {
        c.bench_function("one import's log lines (JsonLines, as served)", |b| {
            b.iter(one_import);
        });
    });
    let stock = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(stock, || {
        c.bench_function(
            "one import's log lines (tracing_subscriber fmt().json(), before)",
            |b| {
                b.iter(one_import);
            },
        );
    });
}

criterion_group!(benches, log_lines);
criterion_main!(benches);
