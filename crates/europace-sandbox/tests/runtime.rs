//! Serving on different runtimes, stopping, and mounting the routes in a host application.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::test as actix_test;
use actix_web::{App, HttpResponse, web};
use europace_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

#[allow(clippy::unwrap_used)] // test helper
async fn token_via(base: &str) -> String {
    use common::{FormExt as _, SendJson as _};
    let body: Value = common::client()
        .post(format!("{base}/auth/token"))
        .basic_auth("client", Some("secret"))
        .form_body(&[("grant_type", "client_credentials")])
        .send_json()
        .await;
    body["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn serves_from_an_actix_runtime() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let server = sandbox
        .serve(TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let base = server.base_url();
    let token = token_via(&base).await;
    let response = common::client()
        .post(format!("{base}/vorgang"))
        .bearer_auth(&token)
        .json(&common::vorgang("Max"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(sandbox.vorgaenge().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_from_a_multi_thread_tokio_runtime() {
    let s = common::start();
    let token = s.token().await;
    assert_eq!(s.lookup(&token, "x").await.status(), 200);
    s.server.stop().await;
}

#[test]
fn serve_outside_a_runtime_is_an_error_not_a_panic() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let err = sandbox
        .serve(TcpListener::bind("127.0.0.1:0").unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

#[tokio::test]
async fn stop_closes_the_listener() {
    let s = common::start();
    assert_eq!(
        s.http
            .get(s.url("/_sandbox/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let base = s.base.clone();
    tokio::time::timeout(Duration::from_secs(3), s.server.stop())
        .await
        .expect("stop finishes promptly");
    let fresh = common::client();
    assert!(
        fresh
            .get(format!("{base}/_sandbox/stats"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn many_instances_are_independent() {
    let running: Vec<_> = (0..8).map(|_| common::start()).collect();
    for (i, s) in running.iter().enumerate() {
        let token = s.token().await;
        for _ in 0..i {
            assert_eq!(
                s.import(&token, None, &common::vorgang("Max"))
                    .await
                    .status(),
                201
            );
        }
    }
    for (i, s) in running.into_iter().enumerate() {
        assert_eq!(s.sandbox.vorgaenge().len(), i);
        s.server.stop().await;
    }
}

#[tokio::test]
async fn unspecified_address_is_reported_as_loopback() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let server = sandbox
        .serve(TcpListener::bind("0.0.0.0:0").unwrap())
        .unwrap();
    let base = server.base_url();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let stats = common::client()
        .get(format!("{base}/_sandbox/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn clones_share_state() {
    let s = common::start();
    let clone = s.sandbox.clone();
    let token = s.token().await;
    assert_eq!(
        s.import(&token, None, &common::vorgang("Max"))
            .await
            .status(),
        201
    );
    assert_eq!(clone.vorgaenge().len(), 1);
    s.server.stop().await;
}

#[actix_web::test]
async fn configure_mounts_under_a_scope_next_to_host_routes() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let app = actix_test::init_service(
        App::new()
            .service(web::scope("/europace").configure(|cfg| sandbox.configure(cfg)))
            .route(
                "/vorgang",
                web::post().to(|| async { HttpResponse::Accepted().body("host") }),
            ),
    )
    .await;

    // The host's own route is not shadowed.
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::post().uri("/vorgang").to_request(),
    )
    .await;
    assert_eq!(response.status(), 202);

    let request = actix_test::TestRequest::post()
        .uri("/europace/auth/token")
        .insert_header(("Authorization", "Basic Y2xpZW50OnNlY3JldA=="))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload("grant_type=client_credentials")
        .to_request();
    let body: Value = actix_test::call_and_read_body_json(&app, request).await;
    let token = body["access_token"].as_str().unwrap().to_owned();

    let request = actix_test::TestRequest::post()
        .uri("/europace/v2/partner/TGT01/untergeordnete")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .set_json(json!({"externePartnerId": "client-1", "vorname": "A", "nachname": "B"}))
        .to_request();
    let response = actix_test::call_service(&app, request).await;
    assert_eq!(response.status(), 201);
    let location = response
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let created: Value = actix_test::read_body_json(response).await;
    let id = created["partnerId"].as_str().unwrap();
    assert!(
        location.ends_with(&format!("/europace/v2/partner/{id}")),
        "{location}"
    );

    let request = actix_test::TestRequest::get()
        .uri("/europace/v2/partners?externePartnerId=client-1")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_request();
    let found: Value = actix_test::call_and_read_body_json(&app, request).await;
    assert_eq!(found["partners"][0]["href"], location);
    assert_eq!(sandbox.partners().len(), 4);
}
