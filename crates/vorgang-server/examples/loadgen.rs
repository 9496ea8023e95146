//! A small load generator: fetches a token, posts the published example N times and prints the
//! latency percentiles as one JSON line.
//!
//! ```sh
//! cargo run --release -p vorgang-server --example loadgen -- \
//!     --url http://127.0.0.1:8080 --client-id drk_… --client-secret … --requests 100 --concurrency 1
//! ```
//!
//! Meant for a service on this machine (loopback); the request count is bounded.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

const SEED: &[u8] = include_bytes!("../../../examples/seed-request.json");

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "LOADGEN_CLIENT_ID")]
    client_id: String,
    #[arg(long, env = "LOADGEN_CLIENT_SECRET")]
    client_secret: String,
    /// Number of imports to send (at most 10000).
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let requests = args.requests.clamp(1, 10_000);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let token: serde_json::Value = http
        .post(format!("{}/oauth2/token", args.url))
        .basic_auth(&args.client_id, Some(&args.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = Arc::new(token["access_token"].as_str().expect("a token").to_owned());
    let run = uuid::Uuid::new_v4();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for i in 0..requests {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (http, token, url) = (http.clone(), token.clone(), args.url.clone());
        tasks.push(tokio::spawn(async move {
            let begin = Instant::now();
            let status = http
                .post(format!("{url}/vorgang"))
                .bearer_auth(token.as_str())
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", format!("loadgen-{run}-{i}"))
                .body(SEED)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            drop(permit);
            (begin.elapsed(), status)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for task in tasks {
        let (latency, status) = task.await.unwrap();
        latencies.push(latency);
        *statuses.entry(status).or_default() += 1;
    }
    let total = started.elapsed();
    latencies.sort();
    println!(
        "{}",
        serde_json::json!({
            "requests": requests,
            "concurrency": args.concurrency,
            "statuses": statuses,
            "p50_ms": percentile(&latencies, 0.50),
            "p95_ms": percentile(&latencies, 0.95),
            "p99_ms": percentile(&latencies, 0.99),
            "max_ms": percentile(&latencies, 1.0),
            "throughput_per_s": requests as f64 / total.as_secs_f64(),
        })
    );
}
