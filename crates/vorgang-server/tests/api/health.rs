use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;

use crate::helpers::{Db, TestApp, both_backends, problem, spawn_app, spawn_app_with};

both_backends!(ready_is_503_while_writes_fail_and_up_again_after);

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app().await;
    for path in ["/health/live", "/health/ready"] {
        let response = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(
            "http_requests_total{method=\"GET\",route=\"/health/live\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn unknown_paths_are_problem_json_404() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    crate::helpers::problem(response, 404).await;
}

async fn ready(app: &TestApp) -> reqwest::Response {
    app.http
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap()
}

/// Issue 8, item 12: readiness reflects failing writes (full disk, read-only database), not
/// only an unreachable database.
async fn ready_is_503_while_writes_fail_and_up_again_after(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    assert_eq!(ready(&app).await.status(), 200);

    let block = vorgang_store::testing::block_writes(app.settings.database_url.expose_secret())
        .await
        .unwrap();
    // Reads still work: a token is checked against the clients table on every request, so a
    // 404 for an unknown import proves the database answers (the old readiness said UP here).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app
            .get_vorgang(&token, &uuid::Uuid::new_v4().to_string())
            .await
            .status();
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "reads keep failing: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = ready(&app).await;
    assert_eq!(response.status(), 503, "not ready while writes fail");
    assert_eq!(response.headers()["retry-after"], "5");
    let body = problem(response, 503).await;
    assert_eq!(
        body["type"],
        "https://api.drkleinservice.de/problems/service-unavailable"
    );

    block.release().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = ready(&app).await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
