//! Issue 12, point 4: `limits.imports_per_minute` per client on `POST /vorgang`, 429 with
//! `Retry-After` beyond it, `RateLimit-*` on every answer to an authenticated client.

use serde_json::Value;

use crate::helpers::{Db, TestApp, problem, seed, spawn_app, spawn_app_with};

/// `RateLimit-Limit`, `-Remaining`, `-Reset` of an answer (`None` for each one missing).
fn rate_headers(response: &reqwest::Response) -> [Option<u64>; 3] {
    ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"].map(|name| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    })
}

async fn app_with_quota(per_minute: u32) -> TestApp {
    spawn_app_with(Db::Sqlite, move |settings| {
        settings.limits.imports_per_minute = per_minute;
    })
    .await
}

#[tokio::test]
async fn a_client_over_its_quota_gets_429_with_retry_after_and_another_client_is_unaffected() {
    let app = app_with_quota(3).await;
    let token = app.token().await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = app.post_vorgang(&token, &seed()).await;
        assert_eq!(response.status(), 201);
        let [limit, left, reset] = rate_headers(&response);
        assert_eq!(limit, Some(3));
        let reset = reset.unwrap();
        assert!((1..=60).contains(&reset), "reset {reset}");
        remaining.push(left.unwrap());
    }
    assert_eq!(remaining, [2, 1, 0], "decreasing with every request");

    // The fourth: 429 before anything of it is read (an unparsable body makes no difference).
    for body in [serde_json::to_vec(&seed()).unwrap(), b"{".to_vec()] {
        let response = app
            .post_vorgang_raw("", Some(&token), Some("application/json"), body, None)
            .await;
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (1..=20).contains(&retry_after),
            "one request refills every 20 s: {retry_after}"
        );
        let [limit, left, reset] = rate_headers(&response);
        assert_eq!((limit, left), (Some(3), Some(0)));
        assert!(reset.unwrap() >= retry_after);
        let body = problem(response, 429).await;
        assert_eq!(
            body["type"],
            "https://api.drkleinservice.de/problems/rate-limited"
        );
    }
    assert_eq!(
        app.sandbox_imports().await.len(),
        3,
        "nothing of a 429 reaches Europace"
    );
    let listed: Value = app.list_json(&token, "").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        3,
        "nothing stored"
    );

    // Another client has its own quota.
    let (other_id, other_secret) = app.register_client(&[]).await;
    let other = app.token_for(&other_id, &other_secret).await;
    let response = app.post_vorgang(&other, &seed()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(rate_headers(&response)[..2], [Some(3), Some(2)]);
}

#[tokio::test]
async fn refused_bodies_count_and_every_answer_carries_the_headers() {
    let app = app_with_quota(4).await;
    let token = app.token().await;
    let mut invalid = seed();
    invalid["tippgeber"]["anrede"] = serde_json::json!("DIVERS");
    let cases: [(&str, Option<&str>, Vec<u8>, u16); 4] = [
        ("", Some("application/json"), b"{".to_vec(), 400),
        ("", Some("text/plain"), b"{}".to_vec(), 415),
        (
            "",
            Some("application/json"),
            serde_json::to_vec(&invalid).unwrap(),
            422,
        ),
        (
            "?environment=X",
            Some("application/json"),
            b"{}".to_vec(),
            400,
        ),
    ];
    for (index, (query, content_type, body, status)) in cases.into_iter().enumerate() {
        let response = app
            .post_vorgang_raw(query, Some(&token), content_type, body, None)
            .await;
        assert_eq!(response.status(), status);
        let left = rate_headers(&response)[1];
        assert_eq!(left, Some(3 - u64::try_from(index).unwrap()), "{status}");
    }
    // The quota is spent on refused bodies: a valid one is now refused too.
    let response = app.post_vorgang(&token, &seed()).await;
    assert_eq!(response.status(), 429);
    assert!(app.sandbox_imports().await.is_empty());

    // Unauthenticated requests count for no one and carry no headers (there is no client).
    let response = app
        .post_vorgang_raw(
            "",
            None,
            Some("application/json"),
            serde_json::to_vec(&seed()).unwrap(),
            None,
        )
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(rate_headers(&response), [None, None, None]);
}

#[tokio::test]
async fn the_default_quota_is_600_per_minute_and_replays_count_too() {
    let app = spawn_app().await;
    assert_eq!(app.settings.limits.imports_per_minute, 600);
    let token = app.token().await;
    let body = serde_json::to_vec(&seed()).unwrap();
    let response = app.post_bytes(&token, &body, Some("replayed-key")).await;
    assert_eq!(response.status(), 201);
    // The first request of a fresh client: the whole default quota less this one. (A second
    // request here could find one refilled already: 600 per minute is one every 100 ms.)
    assert_eq!(rate_headers(&response)[..2], [Some(600), Some(599)]);
    // Reads are not limited.
    let response = app
        .http
        .get(format!("{}/vorgang", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(rate_headers(&response), [None, None, None]);

    // Replays count: with 2 per minute (one refilled every 30 s, far longer than this test
    // takes), the replay of an answered request takes the second unit and a third is refused.
    let app = app_with_quota(2).await;
    let token = app.token().await;
    let mut remaining = Vec::new();
    for _ in 0..2 {
        let response = app.post_bytes(&token, &body, Some("replayed-key")).await;
        assert_eq!(response.status(), 201);
        remaining.push(rate_headers(&response)[1]);
    }
    assert_eq!(remaining, [Some(1), Some(0)]);
    let response = app.post_bytes(&token, &body, Some("replayed-key")).await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn zero_turns_the_limit_off_without_headers() {
    let app = app_with_quota(0).await;
    let token = app.token().await;
    for _ in 0..5 {
        let response = app.post_vorgang(&token, &seed()).await;
        assert_eq!(response.status(), 201);
        assert_eq!(rate_headers(&response), [None, None, None]);
    }
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            b"{".to_vec(),
            None,
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(rate_headers(&response), [None, None, None]);
}
