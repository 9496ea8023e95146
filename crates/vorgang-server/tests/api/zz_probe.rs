use std::time::{Duration, Instant};
use serde_json::{Value, json};
use crate::helpers::{Db, seed, spawn_app_with};

#[tokio::test]
async fn probe_slow_partner_step_resumed_concurrently() {
    vorgang_server::telemetry::init();
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.europace.connect_timeout_ms = 300;
        s.europace.request_timeout_ms = 800;
    })
    .await;
    let token = app.token().await;
    app.sandbox_fault(json!({"target": "partner_lookup", "delay_ms": 1000, "times": 2})).await;
    app.sandbox_fault(json!({"target": "partner_create", "delay_ms": 700, "times": 1})).await;
    app.sandbox_fault(json!({"target": "kex", "delay_ms": 600, "times": 1})).await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let started = Instant::now();
    let (response, _) = tokio::join!(
        app.post_bytes(&token, &body, None),
        async {
            tokio::time::sleep(Duration::from_millis(2300)).await;
            app.spawn_replica().await;
        }
    );
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    eprintln!("after {:?}: {status} {answer}", started.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!("sandbox imports: {}", app.sandbox_imports().await.len());
    eprintln!("stats: {}", app.sandbox_stats().await);
    let store = app.store().await;
    for r in store.as_import_store().list(None).await.unwrap() { eprintln!("{} {}", r.id, r.status); }
}
