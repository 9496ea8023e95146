//! HTTP semantics every route shares (docs/reference/http-api.md §1), over real HTTP and raw TCP:
//! `405` with `Allow` for a method a known path does not serve, `HEAD` like `GET` without a body,
//! `404` for unknown paths, `X-Content-Type-Options: nosniff` on every answer, and metric labels
//! from closed sets whatever method or path is asked for.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use vorgang_server::routes::endpoints;

use crate::helpers::{TestApp, header, raw_exchange, seed, spawn_app, split_answer};

/// Every route: its pattern, a concrete path to ask, and the methods it serves (in `Allow`
/// order). `{id}` in the path is replaced by a real import of the test client. A route added to
/// the server without a line here fails
/// `every_route_serves_its_methods_and_answers_405_with_allow_to_the_others`.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("/oauth2/token", "/oauth2/token", &["POST"]),
    ("/oauth2/introspect", "/oauth2/introspect", &["POST"]),
    ("/oauth2/revoke", "/oauth2/revoke", &["POST"]),
    (
        "/.well-known/jwks.json",
        "/.well-known/jwks.json",
        &["GET", "HEAD"],
    ),
    (
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server",
        &["GET", "HEAD"],
    ),
    ("/vorgang", "/vorgang", &["POST", "GET", "HEAD"]),
    ("/vorgang/{id}", "/vorgang/{id}", &["GET", "HEAD"]),
    ("/health/live", "/health/live", &["GET", "HEAD"]),
    ("/health/ready", "/health/ready", &["GET", "HEAD"]),
    ("/metrics", "/metrics", &["GET", "HEAD"]),
    ("/openapi.json", "/openapi.json", &["GET", "HEAD"]),
    ("/docs", "/docs", &["GET", "HEAD"]),
    ("/docs/", "/docs/", &["GET", "HEAD"]),
    ("/docs/{file}", "/docs/swagger-ui.css", &["GET", "HEAD"]),
];

/// Served patterns that are not API operations, so not in /openapi.json.
const UNDOCUMENTED: &[&str] = &["/docs/", "/docs/{file}"];

/// Every method of RFC 9110 and RFC 5789 except CONNECT (its target is an authority, not a
/// path), and two invented ones.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "BREW",
];

/// One request over a fresh TCP connection (`Connection: close`), read to the end: the status,
/// the header lines (lower-case names) and exactly the bytes after the head.
async fn raw(address: &str, request: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let answer = raw_exchange(address, request.as_bytes()).await;
    let (status, headers, body) = split_answer(&answer);
    (status, headers.into_iter().collect(), body.to_vec())
}

/// A request line and headers for [`raw`].
fn request(method: &str, path: &str, token: Option<&str>) -> String {
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

/// The import the `{id}` paths name.
async fn an_import(app: &TestApp, token: &str) -> String {
    let response = app.post_vorgang(token, &seed()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_route_serves_its_methods_and_answers_405_with_allow_to_the_others() {
    // The table above is the registered routing table, pattern by pattern, method by method.
    let registered: BTreeMap<&str, Vec<String>> = endpoints()
        .into_iter()
        .map(|e| {
            (
                e.pattern,
                e.methods.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    let table: BTreeMap<&str, Vec<String>> = ROUTES
        .iter()
        .map(|(pattern, _, methods)| (*pattern, methods.iter().map(|m| (*m).to_owned()).collect()))
        .collect();
    for pattern in registered.keys() {
        assert!(
            table.contains_key(pattern),
            "route {pattern} is served but has no line in ROUTES: add it"
        );
    }
    assert_eq!(registered, table, "ROUTES differs from the routing table");

    // Every API operation of /openapi.json is served with that method, and every served method
    // (HEAD aside) of a documented path is documented.
    let document = vorgang_server::openapi::document();
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let pattern = path.replace("{drkleinrkVorgangsnummer}", "{id}");
        for method in operations.as_object().unwrap().keys() {
            documented.insert((pattern.clone(), method.to_ascii_uppercase()));
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|(pattern, _, _)| !UNDOCUMENTED.contains(pattern))
        .flat_map(|(pattern, _, methods)| {
            methods
                .iter()
                .filter(|m| **m != "HEAD")
                .map(|m| ((*pattern).to_owned(), (*m).to_owned()))
        })
        .collect();
    assert_eq!(documented, served, "/openapi.json and the routes differ");

    // Over HTTP: each served method is answered by its handler, every other one with 405.
    let app = spawn_app().await;
    let token = app.token().await;
    let id = an_import(&app, &token).await;
    for (pattern, path, methods) in ROUTES {
        let path = path.replace("{id}", &id);
        let allow = methods.join(", ");
        for method in METHODS {
            let response = app
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{path}", app.address),
                )
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert_eq!(
                header(&response, "x-content-type-options"),
                "nosniff",
                "{method} {path}"
            );
            let request_id = header(&response, "x-request-id");
            assert!(!request_id.is_empty(), "{method} {path}: X-Request-Id");
            if methods.contains(method) {
                assert!(
                    status != 405 && status != 404,
                    "{method} {path} ({pattern}) is served, got {status}"
                );
                continue;
            }
            assert_eq!(status, 405, "{method} {path} ({pattern})");
            assert_eq!(header(&response, "allow"), allow, "{method} {path}");
            if *method == "HEAD" {
                continue;
            }
            assert_eq!(
                header(&response, "content-type"),
                "application/problem+json",
                "{method} {path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body["type"],
                "https://api.drkleinservice.de/problems/method-not-allowed"
            );
            assert_eq!(body["requestId"], request_id.as_str(), "{method} {path}");
            assert_eq!(body["status"], 405);
            assert!(
                !body.to_string().contains(method),
                "the asked method is echoed: {body}"
            );
        }
    }
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_on_every_get_route() {
    let app = spawn_app().await;
    let token = app.token().await;
    let id = an_import(&app, &token).await;
    for (pattern, path, methods) in ROUTES {
        if !methods.contains(&"GET") {
            continue;
        }
        let path = path.replace("{id}", &id);
        for token in [Some(token.as_str()), None] {
            let (get_status, get_headers, get_body) =
                raw(&app.address, &request("GET", &path, token)).await;
            let (status, headers, body) = raw(&app.address, &request("HEAD", &path, token)).await;
            assert!(
                body.is_empty(),
                "HEAD {path} ({pattern}) sent a body of {} bytes",
                body.len()
            );
            assert_eq!(status, get_status, "HEAD {path}");
            for name in [
                "content-type",
                "cache-control",
                "www-authenticate",
                "x-content-type-options",
            ] {
                assert_eq!(
                    headers.get(name),
                    get_headers.get(name),
                    "HEAD {path}: {name}"
                );
            }
            // The length of the body GET sends; /metrics changes with every request.
            if *pattern != "/metrics" {
                assert_eq!(
                    headers.get("content-length"),
                    Some(&get_body.len().to_string()),
                    "HEAD {path}"
                );
            }
            assert!(!get_body.is_empty(), "GET {path}");
        }
    }
    // The GET routes that need a token answer HEAD without one like GET: 401.
    let (status, headers, body) = raw(
        &app.address,
        &request("HEAD", &format!("/vorgang/{id}"), None),
    )
    .await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    assert!(body.is_empty());
}

#[tokio::test]
async fn unknown_paths_answer_404_for_every_method() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/nope",
        "/vorgang/",
        "/vorgang/x/y",
        "/health",
        "/oauth2/token/x",
        "/docsx",
        "/docs/a/b",
        "/metrics.txt",
    ] {
        for method in ["GET", "POST", "PUT", "DELETE", "FOO"] {
            let response = app
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{path}", app.address),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{method} {path}");
            assert!(!response.headers().contains_key("allow"), "{method} {path}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert_eq!(
                header(&response, "content-type"),
                "application/problem+json"
            );
        }
    }
}

/// Answers of many kinds, each with `X-Content-Type-Options: nosniff`.
#[tokio::test]
async fn every_answer_carries_nosniff() {
    let app = spawn_app().await;
    let url = |path: &str| format!("{}{path}", app.address);
    let mut seen = BTreeSet::new();
    let mut check = |what: &str, response: &reqwest::Response| {
        assert_eq!(
            header(response, "x-content-type-options"),
            "nosniff",
            "{what}: {}",
            response.status()
        );
        seen.insert(response.status().as_u16());
    };

    // The token endpoint: success and its own (RFC 6749) errors, and a body over every limit.
    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    check("token", &response);
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    check(
        "token, wrong grant",
        &app.token_response(&[("grant_type", "password")]).await,
    );
    let response = app
        .http
        .post(url("/oauth2/token"))
        .basic_auth(&app.client_id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    check("token, wrong secret", &response);
    let response = app
        .http
        .post(url("/oauth2/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 300 * 1024])
        .send()
        .await
        .unwrap();
    check("token, 300 KB", &response);

    // POST /vorgang: every kind of answer the API gives without Europace failing, then with.
    let json = Some("application/json");
    let seed_body = serde_json::to_vec(&seed()).unwrap();
    let mut invalid = seed();
    invalid["tippgeber"]["anrede"] = json!("DIVERS");
    for (what, query, token, content_type, body) in [
        ("201", "", Some(token.as_str()), json, seed_body.clone()),
        ("401", "", None, json, seed_body.clone()),
        ("400", "", Some(&token), json, b"{".to_vec()),
        (
            "400 query",
            "?environment=X",
            Some(&token),
            json,
            seed_body.clone(),
        ),
        (
            "415",
            "",
            Some(&token),
            Some("text/plain"),
            seed_body.clone(),
        ),
        ("413", "", Some(&token), json, vec![b' '; 256 * 1024 + 1]),
        (
            "422",
            "",
            Some(&token),
            json,
            serde_json::to_vec(&invalid).unwrap(),
        ),
    ] {
        let response = app
            .post_vorgang_raw(query, token, content_type, body, None)
            .await;
        check(what, &response);
    }
    for fault in [
        json!({"target": "kex", "status": 400, "times": 1}),
        json!({"target": "kex", "status": 503, "times": 1}),
        json!({"target": "kex", "status": 0, "times": 1, "after_receive": true}),
    ] {
        app.sandbox_fault(fault).await;
        let response = app.post_vorgang(&token, &seed()).await;
        check("Europace failing", &response);
    }

    // Reads, operations, the documentation and its files, unknown paths and methods.
    let id = an_import(&app, &token).await;
    for (path, bearer) in [
        (format!("/vorgang/{id}"), true),
        (format!("/vorgang/{id}"), false),
        (format!("/vorgang/{}", uuid::Uuid::new_v4()), true),
        ("/vorgang/not-a-uuid".to_owned(), true),
        ("/.well-known/jwks.json".to_owned(), false),
        ("/health/live".to_owned(), false),
        ("/health/ready".to_owned(), false),
        ("/metrics".to_owned(), false),
        ("/openapi.json".to_owned(), false),
        ("/docs".to_owned(), false),
        ("/docs/swagger-ui-bundle.js".to_owned(), false),
        ("/docs/swagger-ui.css".to_owned(), false),
        ("/docs/nope.js".to_owned(), false),
        ("/nope".to_owned(), false),
    ] {
        let mut request = app.http.get(url(&path));
        if bearer {
            request = request.bearer_auth(&token);
        }
        check(&path, &request.send().await.unwrap());
    }
    check(
        "405",
        &app.http.delete(url("/vorgang")).send().await.unwrap(),
    );
    check(
        "HEAD",
        &app.http.head(url("/openapi.json")).send().await.unwrap(),
    );

    for status in [200, 201, 400, 401, 404, 405, 413, 415, 422, 502, 503, 504] {
        assert!(
            seen.contains(&status),
            "no {status} answer checked: {seen:?}"
        );
    }
}

/// Invented methods (any token is a valid method) on known and unknown paths, over raw TCP: the
/// metrics keep the same few series, and no invented text reaches them.
#[tokio::test]
async fn invented_methods_and_paths_add_no_metric_series() {
    let app = spawn_app().await;
    let invented = 300;
    for i in 0..invented {
        let method = format!("ZQXMETHOD{i:04}");
        let path = if i % 2 == 0 {
            "/health/live".to_owned()
        } else {
            format!("/zqxpath{i:04}")
        };
        let (status, headers, _) = raw(&app.address, &request(&method, &path, None)).await;
        assert_eq!(
            status,
            if i % 2 == 0 { 405 } else { 404 },
            "{method} {path}"
        );
        assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
    }
    // Known methods on an unknown path: their own label, route `unmatched`.
    for method in ["GET", "DELETE"] {
        let (status, _, _) = raw(&app.address, &request(method, "/zqxpath", None)).await;
        assert_eq!(status, 404);
    }

    let metrics = app.metrics_text().await;
    assert!(
        !metrics.contains("ZQX") && !metrics.to_ascii_lowercase().contains("zqx"),
        "invented text in /metrics:\n{metrics}"
    );
    let series: BTreeMap<String, u64> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("http_requests_total"))
        .map(|rest| {
            let (labels, count) = rest.rsplit_once(' ').unwrap();
            (labels.to_owned(), count.parse().unwrap())
        })
        .collect();
    let half = invented / 2;
    let expected = BTreeMap::from([
        (
            r#"{method="OTHER",route="/health/live",status="405"}"#.to_owned(),
            half,
        ),
        (
            r#"{method="OTHER",route="unmatched",status="404"}"#.to_owned(),
            half,
        ),
        (
            r#"{method="GET",route="unmatched",status="404"}"#.to_owned(),
            1,
        ),
        (
            r#"{method="DELETE",route="unmatched",status="404"}"#.to_owned(),
            1,
        ),
    ]);
    assert_eq!(series, expected, "{metrics}");
    // The duration histogram has the same four series (and no others): its `_count` per series
    // equals the counter.
    let durations: BTreeMap<String, u64> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("http_request_duration_seconds_count"))
        .map(|rest| {
            let (labels, count) = rest.rsplit_once(' ').unwrap();
            (labels.to_owned(), count.parse().unwrap())
        })
        .collect();
    assert_eq!(durations, expected, "{metrics}");
    // The whole exposition stays small: four series of a counter and a 12-bucket histogram,
    // the token and process metrics.
    assert!(metrics.len() < 12_000, "{} bytes", metrics.len());
}
