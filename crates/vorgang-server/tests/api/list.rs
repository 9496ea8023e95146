//! Issue 12, point 1: `GET /vorgang` lists the caller's own imports, oldest first, a page at a
//! time (keyset cursor), filtered by `status` and `since`; a bad query is a precise 400.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, both_backends, problem, seed, spawn_app, spawn_app_with};

both_backends!(
    paging_through_120_imports_with_limit_50_lists_each_once_oldest_first,
    the_status_filter_lists_only_imports_in_that_state,
);

impl TestApp {
    /// `GET /vorgang` with these query pairs.
    async fn list(&self, token: &str, query: &[(&str, &str)]) -> reqwest::Response {
        let mut url = url::Url::parse(&format!("{}/vorgang", self.address)).unwrap();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.http.get(url).bearer_auth(token).send().await.unwrap()
    }

    /// `GET /vorgang`, asserting 200 and `Cache-Control: no-store`; returns the page.
    async fn list_page(&self, token: &str, query: &[(&str, &str)]) -> Value {
        let response = self.list(token, query).await;
        assert_eq!(response.status(), 200, "GET /vorgang {query:?}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    /// Posts the published example and returns the `drkleinrkVorgangsnummer` of the answer
    /// (201, or a problem naming the import), expecting `status`.
    async fn import(&self, token: &str, status: u16) -> String {
        let response = self.post_vorgang(token, &seed()).await;
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned()
    }
}

/// The ids of a page's items, in order.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned())
        .collect()
}

async fn paging_through_120_imports_with_limit_50_lists_each_once_oldest_first(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    let mut posted = Vec::new();
    for _ in 0..120 {
        posted.push(app.import(&token, 201).await);
    }

    let first = app.list_page(&token, &[("limit", "50")]).await;
    assert_eq!(ids(&first), posted[..50]);
    // Each item is what GET /vorgang/{id} shows.
    let item = &first["items"][0];
    let view: Value = app
        .get_vorgang(&token, &posted[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(item, &view);
    assert_eq!(item["status"], "COMPLETED");

    // An import accepted while paging appears after the others, shifting no page.
    let late = app.import(&token, 201).await;
    posted.push(late);

    let cursor = first["next"].as_str().unwrap();
    let second = app
        .list_page(&token, &[("limit", "50"), ("cursor", cursor)])
        .await;
    assert_eq!(ids(&second), posted[50..100]);
    let cursor = second["next"].as_str().unwrap();
    let third = app
        .list_page(&token, &[("limit", "50"), ("cursor", cursor)])
        .await;
    assert_eq!(ids(&third), posted[100..]);
    assert_eq!(third["next"], Value::Null, "the last page has no next");

    let all: Vec<String> = [&first, &second, &third]
        .into_iter()
        .flat_map(ids)
        .collect();
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 121);
    assert_eq!(distinct.len(), 121, "no import twice");
    assert_eq!(all, posted, "none missing, oldest first");
    let created: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap())
        .map(|item| item["createdAt"].as_str().unwrap())
        .collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        created.iter().map(|t| t.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // Without limit: 50 per page.
    assert_eq!(ids(&app.list_page(&token, &[]).await).len(), 50);
}

async fn the_status_filter_lists_only_imports_in_that_state(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let token = app.token().await;
    let completed_1 = app.import(&token, 201).await;
    app.sandbox_fault(json!({"target": "kex", "status": 400}))
        .await;
    let failed_1 = app.import(&token, 502).await;
    app.sandbox_fault(json!({"target": "kex", "status": 0, "after_receive": true}))
        .await;
    let in_doubt = app.import(&token, 504).await;
    let completed_2 = app.import(&token, 201).await;
    app.sandbox_fault(json!({"target": "kex", "status": 422}))
        .await;
    let failed_2 = app.import(&token, 502).await;

    let page = app.list_page(&token, &[("status", "FAILED")]).await;
    assert_eq!(ids(&page), [failed_1.clone(), failed_2.clone()]);
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["status"] == "FAILED")
    );
    assert_eq!(
        ids(&app.list_page(&token, &[("status", "COMPLETED")]).await),
        [completed_1.clone(), completed_2.clone()]
    );
    assert_eq!(
        ids(&app.list_page(&token, &[("status", "IN_DOUBT")]).await),
        std::slice::from_ref(&in_doubt)
    );
    assert!(
        ids(&app.list_page(&token, &[("status", "ACCEPTED")]).await).is_empty(),
        "none left ACCEPTED"
    );
    assert_eq!(
        ids(&app.list_page(&token, &[]).await),
        [
            completed_1,
            failed_1.clone(),
            in_doubt,
            completed_2,
            failed_2.clone()
        ]
    );

    // Paging within a filter: the cursor continues in the filtered list.
    let first = app
        .list_page(&token, &[("status", "FAILED"), ("limit", "1")])
        .await;
    assert_eq!(ids(&first), [failed_1]);
    let second = app
        .list_page(
            &token,
            &[
                ("status", "FAILED"),
                ("limit", "1"),
                ("cursor", first["next"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(ids(&second), [failed_2]);
    assert_eq!(second["next"], Value::Null);
}

#[tokio::test]
async fn the_since_filter_lists_imports_accepted_at_or_after_the_time() {
    let app = spawn_app().await;
    let token = app.token().await;
    let mut posted = Vec::new();
    for _ in 0..3 {
        posted.push(app.import(&token, 201).await);
    }
    let second: Value = app
        .get_vorgang(&token, &posted[1])
        .await
        .json()
        .await
        .unwrap();
    let since = second["createdAt"].as_str().unwrap().to_owned();
    let page = app.list_page(&token, &[("since", &since)]).await;
    assert_eq!(ids(&page), posted[1..], "at or after {since}");

    // The same instant with an offset (`+` percent-encoded by the URL's query serializer).
    let time: chrono::DateTime<chrono::Utc> = since.parse().unwrap();
    let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let local = time.with_timezone(&offset).to_rfc3339();
    assert!(local.contains("+02:00"), "{local}");
    let page = app.list_page(&token, &[("since", &local)]).await;
    assert_eq!(ids(&page), posted[1..]);
    // Sent with a raw `+` (decoded as a space): still read as the offset.
    let response = app
        .http
        .get(format!("{}/vorgang?since={local}", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(ids(&response.json().await.unwrap()), posted[1..]);

    let future = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let page = app.list_page(&token, &[("since", &future)]).await;
    assert_eq!(page, json!({"items": [], "next": null}));
    let past = "2000-01-01T00:00:00Z";
    assert_eq!(
        ids(&app.list_page(&token, &[("since", past)]).await),
        posted
    );
}

#[tokio::test]
async fn another_clients_imports_are_never_listed() {
    let app = spawn_app().await;
    let token = app.token().await;
    let mine = app.import(&token, 201).await;
    let (other_id, other_secret) = app.register_client(&[]).await;
    let other = app.token_for(&other_id, &other_secret).await;
    let theirs = app.import(&other, 201).await;
    let mine_too = app.import(&token, 201).await;

    assert_eq!(
        ids(&app.list_page(&token, &[]).await),
        [mine.clone(), mine_too.clone()]
    );
    assert_eq!(
        ids(&app.list_page(&other, &[]).await),
        std::slice::from_ref(&theirs)
    );
    // Filters never widen it.
    assert_eq!(
        ids(&app
            .list_page(
                &other,
                &[("status", "COMPLETED"), ("since", "2000-01-01T00:00:00Z")]
            )
            .await),
        std::slice::from_ref(&theirs)
    );
    // My cursor in the other client's hands lists only its own imports after that position.
    let page = app.list_page(&token, &[("limit", "1")]).await;
    let cursor = page["next"].as_str().unwrap().to_owned();
    assert_eq!(ids(&page), [mine]);
    let foreign = app.list_page(&other, &[("cursor", &cursor)]).await;
    assert_eq!(ids(&foreign), [theirs], "not {mine_too}");

    // Without a token: 401, nothing listed.
    let response = app
        .http
        .get(format!("{}/vorgang", app.address))
        .send()
        .await
        .unwrap();
    let body = problem(response, 401).await;
    assert!(body.get("items").is_none());
}

#[tokio::test]
async fn a_bad_query_is_400_naming_the_parameter_never_the_value() {
    let mut app = spawn_app().await;
    // The English texts are checked (German is the default).
    app.speak("en");
    let token = app.token().await;
    app.import(&token, 201).await;
    let foreign_cursor = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("zqx.1.2")
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "501")], "limit"),
        (vec![("limit", "-1")], "limit"),
        (vec![("limit", "zqx")], "limit"),
        (vec![("limit", "")], "limit"),
        (
            vec![("limit", "50"), ("limit", "60")],
            "limit given more than once",
        ),
        (vec![("cursor", "zqx-not-a-cursor")], "cursor"),
        (vec![("cursor", &foreign_cursor)], "cursor"),
        (vec![("status", "zqxdone")], "status"),
        (vec![("status", "completed")], "status"),
        (vec![("since", "zqx-yesterday")], "since"),
        (vec![("since", "2026-01-31")], "since"),
        (vec![("zqxparam", "1")], "unknown query parameter"),
        (vec![("environment", "TEST")], "unknown query parameter"),
    ];
    for (query, named) in cases {
        let response = app.list(&token, &query).await;
        let body = problem(response, 400).await;
        assert_eq!(
            body["type"], "https://api.drkleinservice.de/problems/bad-query",
            "{query:?}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{query:?}: {detail}");
        let text = body.to_string();
        assert!(!text.contains("zqx"), "{query:?} echoed: {text}");
    }
}
