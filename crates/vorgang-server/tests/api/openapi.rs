//! `GET /openapi.json` and `GET /docs` of the real server: the document is OpenAPI 3.1 with every
//! path and answer of the contract, its request schema accepts the published example and every
//! valid fixture and refuses invalid ones, and the real answers match the documented schemas.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{TestApp, header, seed, spawn_app};

impl TestApp {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    async fn document(&self) -> Value {
        let response = self.get("/openapi.json").await;
        assert_eq!(response.status(), 200);
        assert!(
            header(&response, "content-type").starts_with("application/json"),
            "{}",
            header(&response, "content-type")
        );
        response.json().await.unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Schemas of the document as JSON Schema validators
// ---------------------------------------------------------------------------------------------

/// A validator for `schema`, resolving `#/components/schemas/…` in `document`.
fn validator(document: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": document["components"],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("not a valid JSON schema: {e}"))
}

/// The request schema of `POST /vorgang`.
fn request_validator(document: &Value) -> jsonschema::Validator {
    let schema = &document["paths"]["/vorgang"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(
        schema,
        &json!({"$ref": "#/components/schemas/ImportRequest"})
    );
    validator(document, schema)
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The documented schema of an answer; panics if the document does not name it.
fn response_schema(
    document: &Value,
    path: &str,
    method: &str,
    status: u16,
    content_type: &str,
) -> Value {
    let response = &document["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} documents no {status}"
    );
    let schema = &response["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status} documents no {content_type} body: {response}"
    );
    schema.clone()
}

/// Asserts that a real answer has the documented status, content type and body schema.
async fn assert_documented(
    document: &Value,
    path: &str,
    method: &str,
    response: reqwest::Response,
) -> Value {
    let status = response.status().as_u16();
    let content_type = header(&response, "content-type");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let documented = &document["paths"][path][method]["responses"][status.to_string()];
    for name in documented["headers"]
        .as_object()
        .into_iter()
        .flat_map(|h| h.keys())
    {
        if [
            "Location",
            "WWW-Authenticate",
            "Retry-After",
            "Accept-Post",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Content-Language",
        ]
        .contains(&name.as_str())
        {
            assert!(
                response.headers().contains_key(name.as_str()),
                "{method} {path} {status}: documented header {name} missing"
            );
        }
    }
    let body: Value = response.json().await.unwrap();
    let schema = response_schema(document, path, method, status, &essence);
    let found = errors(&validator(document, &schema), &body);
    assert!(
        found.is_empty(),
        "{method} {path} {status}: the real body does not match the documented schema: {found:?}\n{body}"
    );
    body
}

fn fixtures_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vorgang-model/tests/fixtures")
        .join(kind)
}

/// `(name, body)` of every fixture of `kind` (`valid`, `invalid`) with its expectation.
fn fixtures(kind: &str) -> Vec<(String, Vec<u8>, Value)> {
    let Ok(entries) = std::fs::read_dir(fixtures_dir(kind)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        if stem.ends_with(".expect") {
            continue;
        }
        let expect_path = path.with_file_name(format!("{stem}.expect.json"));
        let expect: Value = serde_json::from_slice(&std::fs::read(&expect_path).unwrap()).unwrap();
        out.push((stem.to_owned(), std::fs::read(&path).unwrap(), expect));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A body as JSON, as the service reads it (a leading byte-order mark is ignored).
fn as_json(body: &[u8]) -> Option<Value> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).ok()
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        out.insert(target.clone());
                    }
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openapi_json_is_openapi_3_1_with_every_path_and_answer() {
    let app = spawn_app().await;
    let document = app.document().await;
    assert_eq!(
        &document,
        vorgang_server::openapi::document(),
        "served as built"
    );
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."));
    assert!(document["info"]["title"].is_string());
    assert!(document["info"]["version"].is_string());

    let expected: &[(&str, &str, &[u16])] = &[
        ("/oauth2/token", "post", &[200, 400, 401, 429]),
        ("/.well-known/jwks.json", "get", &[200]),
        (
            "/vorgang",
            "post",
            &[201, 400, 401, 403, 409, 413, 415, 422, 429, 502, 503, 504],
        ),
        ("/vorgang", "get", &[200, 400, 401, 403, 503]),
        (
            "/vorgang/{drkleinrkVorgangsnummer}",
            "get",
            &[200, 401, 403, 404],
        ),
        ("/health/live", "get", &[200]),
        ("/health/ready", "get", &[200, 503]),
        ("/metrics", "get", &[200]),
        ("/openapi.json", "get", &[200]),
        ("/docs", "get", &[200]),
    ];
    for (path, method, statuses) in expected {
        let operation = &document["paths"][*path][*method];
        assert!(operation.is_object(), "{method} {path} missing");
        for status in *statuses {
            assert!(
                operation["responses"][status.to_string()].is_object(),
                "{method} {path}: no {status}"
            );
        }
    }

    // POST /vorgang in detail.
    let post = &document["paths"]["/vorgang"]["post"];
    let responses = &post["responses"];
    for (status, name) in [
        (201, "Location"),
        (401, "WWW-Authenticate"),
        (403, "WWW-Authenticate"),
        (503, "Retry-After"),
        (429, "Retry-After"),
        (429, "RateLimit-Limit"),
        (429, "RateLimit-Remaining"),
        (429, "RateLimit-Reset"),
        (201, "RateLimit-Limit"),
        (201, "RateLimit-Remaining"),
        (201, "RateLimit-Reset"),
    ] {
        assert!(
            responses[status.to_string()]["headers"][name].is_object(),
            "{status} lacks {name}"
        );
    }
    assert_eq!(
        responses["201"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/ImportCreated"})
    );
    // Every answer with translated text documents its language.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let translated =
                    status.starts_with('4') || status.starts_with('5') || status == "202";
                if translated && response.get("content").is_some() {
                    assert_eq!(
                        response["headers"]["Content-Language"]["schema"],
                        json!({"type": "string", "enum": ["de", "en"]}),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(
        document["info"]["description"]
            .as_str()
            .unwrap()
            .contains("German unless `Accept-Language` prefers")
    );
    for status in [400, 401, 403, 409, 413, 415, 422, 429, 502, 503, 504] {
        let content = responses[status.to_string()]["content"]
            .as_object()
            .unwrap();
        assert_eq!(
            content.keys().collect::<Vec<_>>(),
            ["application/problem+json"],
            "{status}"
        );
    }
    for status in [409, 502, 504] {
        assert_eq!(
            responses[status.to_string()]["content"]["application/problem+json"]["schema"],
            json!({"$ref": "#/components/schemas/ImportProblem"}),
            "{status}"
        );
    }
    let schemas = &document["components"]["schemas"];
    let problem = &schemas["Problem"]["properties"];
    for member in [
        "type",
        "title",
        "status",
        "detail",
        "errors",
        "drkleinrkVorgangsnummer",
        "importStatus",
        "europaceMessages",
    ] {
        assert!(problem[member].is_object(), "Problem.{member}");
    }
    assert_eq!(
        problem["errors"]["items"],
        json!({"$ref": "#/components/schemas/Violation"})
    );
    assert!(schemas["Violation"]["properties"]["pointer"].is_object());
    assert!(schemas["Violation"]["properties"]["detail"].is_object());

    let params = post["parameters"].as_array().unwrap();
    let environment = params.iter().find(|p| p["name"] == "environment").unwrap();
    assert_eq!(environment["in"], "query");
    assert_eq!(
        environment["schema"],
        json!({"$ref": "#/components/schemas/Environment"})
    );
    assert_eq!(
        schemas["Environment"]["enum"],
        json!(["TEST", "PRODUCTION"])
    );
    let key = params
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["in"], "header");
    assert_eq!(key["required"], json!(false));
    assert_eq!(key["schema"]["maxLength"], json!(255));

    // Only JSON is declared: a schema under the form label made schema-driven clients send a
    // real form, which is not JSON (400). The label is accepted and said so in prose.
    let content = post["requestBody"]["content"].as_object().unwrap();
    assert_eq!(
        content.keys().collect::<Vec<_>>(),
        ["application/json"],
        "{content:?}"
    );
    assert_eq!(content["application/json"]["example"], seed());
    for description in [&post["description"], &post["requestBody"]["description"]] {
        let description = description.as_str().unwrap();
        assert!(
            description.contains("application/x-www-form-urlencoded")
                && description.contains("JSON text"),
            "the form label is not explained: {description}"
        );
    }

    // Security: OAuth2 client credentials and bearer JWT.
    let schemes = &document["components"]["securitySchemes"];
    let flow = &schemes["oauth2"]["flows"]["clientCredentials"];
    assert_eq!(flow["tokenUrl"], "/oauth2/token");
    assert!(flow["scopes"]["drkleinrk-api/vorgang:import"].is_string());
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    assert_eq!(
        post["security"],
        json!([{"oauth2": ["drkleinrk-api/vorgang:import"]}, {"bearerAuth": []}])
    );

    // Every problem type in an example is one of ours.
    let mut text = String::new();
    for operation in ["/vorgang", "/vorgang/{drkleinrkVorgangsnummer}"] {
        text.push_str(&document["paths"][operation].to_string());
    }
    for (index, _) in text.match_indices("\"type\":\"http") {
        assert!(
            text[index + 8..].starts_with(vorgang_server::problem::TYPE_BASE),
            "foreign problem type near {}",
            &text[index..(index + 80).min(text.len())]
        );
    }
}

#[tokio::test]
async fn every_kex_schema_file_is_a_component_and_every_ref_resolves() {
    let document = vorgang_server::openapi::document();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut kex = 0;
    for (file, _) in vorgang_model::schema::SCHEMA_FILES {
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        kex += 1;
        assert!(schemas.contains_key(name), "KEX {file} is no component");
    }
    assert!(kex > 70, "only {kex} KEX files");
    for own in vorgang_server::openapi::own_schema_names() {
        assert!(
            vorgang_model::schema::schema_file(&format!("{own}.json")).is_none(),
            "{own} collides with a KEX file"
        );
    }
    // The KEX `Partner` is Europace's, ours is `PartnerDaten`.
    assert!(schemas["Partner"]["properties"]["partnerId"].is_object());
    assert!(schemas["PartnerDaten"]["properties"]["vertriebsschluessel"].is_object());

    let text = serde_json::to_string(&document["components"]).unwrap();
    for dropped in [
        "javaType",
        "customDateTimePatter",
        "\"$schema\"",
        "\"extends\"",
        ".json\"",
    ] {
        assert!(!text.contains(dropped), "{dropped} left in the components");
    }
    let mut targets = BTreeSet::new();
    refs(document, &mut targets);
    for target in &targets {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("foreign $ref {target}"));
        assert!(schemas.contains_key(name), "dangling $ref {target}");
    }

    // The ranges and the members only the service sets (docs/reference/validation.md §2).
    let wunsch = &schemas["Finanzierungswunsch"]["properties"];
    assert_eq!(wunsch["kreditbetrag"]["exclusiveMinimum"], json!(0));
    assert_eq!(wunsch["laufzeitInMonaten"]["minimum"], json!(1));
    assert_eq!(wunsch["laufzeitInMonaten"]["maximum"], json!(120));
    assert_eq!(
        schemas["Wohnsituation"]["properties"]["anzahlPersonenImHaushalt"]["minimum"],
        json!(1)
    );
    for owned in [
        "kundenbetreuer",
        "tippgeber",
        "bearbeiter",
        "eigeneVorgangsnummer",
    ] {
        assert_eq!(
            schemas["Vorgang"]["properties"][owned]["readOnly"],
            json!(true),
            "{owned}"
        );
    }
    assert_eq!(
        schemas["Tippgeber"]["properties"]["anrede"]["enum"],
        json!(["HERR", "FRAU", null])
    );
    assert_eq!(
        schemas["PartnerDaten"]["properties"]["custom"]["maxItems"],
        json!(100)
    );
    assert_eq!(
        schemas[vorgang_server::openapi::IMPORT_REQUEST_SCHEMA]["required"],
        json!(["vorgang", "tippgeber"])
    );
}

#[test]
fn the_seed_and_every_valid_fixture_satisfy_the_request_schema() {
    let document = vorgang_server::openapi::document();
    let validator = request_validator(document);
    let found = errors(&validator, &seed());
    assert!(found.is_empty(), "the published example: {found:?}");

    let valid = fixtures("valid");
    for (name, body, expect) in &valid {
        assert_eq!(expect["status"], 201, "{name}");
        let instance = as_json(body).unwrap_or_else(|| panic!("{name} is not JSON"));
        let found = errors(&validator, &instance);
        assert!(found.is_empty(), "valid fixture {name}: {found:?}");
    }
    if fixtures_dir("valid").exists() {
        assert!(valid.len() >= 10, "only {} valid fixtures", valid.len());
    }
}

/// The published example with the member at `pointer` set to `value`, or removed (`None`).
fn seed_with(pointer: &str, value: Option<Value>) -> Value {
    let mut body = seed();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match (body.pointer_mut(parent), value) {
        (Some(Value::Object(map)), Some(value)) => drop(map.insert(key.to_owned(), value)),
        (Some(Value::Object(map)), None) => drop(map.remove(key)),
        (Some(Value::Array(items)), Some(value)) => items[key.parse::<usize>().unwrap()] = value,
        _ => panic!("{pointer} not in the example"),
    }
    body
}

#[test]
fn invalid_requests_fail_the_request_schema() {
    let validator = request_validator(vorgang_server::openapi::document());
    let wunsch = "/vorgang/finanzbedarf/finanzierungswunsch";
    let miete = "/vorgang/haushalt/ausgaben/mietausgaben/0";
    let anschrift = "/vorgang/antragsteller1/wohnsituation/anschrift";
    let custom: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("k{i}"), "value": i}))
        .collect();
    let cases: Vec<(String, Option<Value>)> = vec![
        ("/tippgeber".into(), None),
        ("/tippgeber".into(), Some(Value::Null)),
        ("/vorgang".into(), None),
        ("/tippgeber/vorname".into(), None),
        ("/tippgeber/nachname".into(), Some(json!("  "))),
        ("/tippgeber/anrede".into(), Some(json!("DIVERS"))),
        ("/tippgeber/email".into(), Some(json!("max.mustermann"))),
        (format!("{wunsch}/laufzeitInMonaten"), Some(json!(0))),
        (format!("{wunsch}/laufzeitInMonaten"), Some(json!(121))),
        (format!("{wunsch}/laufzeitInMonaten"), Some(json!("24"))),
        (format!("{wunsch}/kreditbetrag"), Some(json!(0))),
        (
            "/vorgang/finanzbedarf/finanzierungszweck".into(),
            Some(json!("URLAUB")),
        ),
        (
            "/vorgang/antragsteller1/wohnsituation/anzahlPersonenImHaushalt".into(),
            Some(json!(0)),
        ),
        (format!("{miete}/betragMonatlich"), Some(json!(-1))),
        // An enum inherited through `extends` (Haushaltsposition).
        (
            format!("{miete}/gehoertZuAntragsteller"),
            Some(json!("ANTRAGSTELLER_3")),
        ),
        (
            format!("{anschrift}/wohnhaftSeit"),
            Some(json!("2021-02-30")),
        ),
        (
            format!("{anschrift}/wohnhaftSeit"),
            Some(json!("01.01.2016")),
        ),
        (
            "/vorgang/haushalt/kontoverbindung/iban".into(),
            Some(json!("DE98 6001 0070 0160 4517 00")),
        ),
        ("/vorgang/antragsteller1".into(), None),
        (
            "/vorgang/antragsteller1/personendaten/vorname".into(),
            Some(json!("")),
        ),
        (
            "/vorgang/kundenbetreuer".into(),
            Some(json!({"partnerId": "ABC12"})),
        ),
        ("/vorgang/eigeneVorgangsnummer".into(), Some(json!("X"))),
        ("/kommentare".into(), Some(json!(vec!["k"; 51]))),
        ("/kommentare".into(), Some(json!(["ä".repeat(4001)]))),
        ("/kommentare".into(), Some(json!([null]))),
        ("/partner/custom".into(), Some(Value::Array(custom))),
        ("/partner/custom/0/value".into(), Some(json!(1.5))),
        ("/partner/custom/0/value".into(), Some(Value::Null)),
        ("/partner/custom/0/value".into(), Some(json!({"a": 1}))),
        ("/partner/custom/0/value".into(), Some(json!(u64::MAX))),
        ("/partner/custom/0/key".into(), Some(json!(" "))),
        // Both the name and its alias.
        ("/partner/vertriebsschlüssel".into(), Some(json!("VS"))),
        ("/partner".into(), Some(json!("x"))),
    ];
    for (pointer, value) in cases {
        let body = seed_with(&pointer, value.clone());
        assert!(
            !validator.is_valid(&body),
            "{pointer} = {value:?}: accepted by the schema"
        );
    }
    // The alias alone, or with the canonical name null, is fine.
    let mut body = seed_with("/partner/vertriebsschluessel", Some(Value::Null));
    body["partner"]["vertriebsschlüssel"] = json!("VS");
    assert!(validator.is_valid(&body));
    // So are 4000 characters, nulls and unknown members.
    assert!(validator.is_valid(&seed_with("/kommentare", Some(json!(["ä".repeat(4000)])))));
    assert!(validator.is_valid(&seed_with("/vorgang/antragsteller2", Some(Value::Null))));
    assert!(validator.is_valid(&seed_with("/vorgang/neuesFeld", Some(json!({"a": [1]})))));
}

/// Rules of docs/reference/validation.md §2 that JSON Schema cannot express: the service refuses
/// these fixtures with 422, the schema only describes the rule (in `description`).
const BEYOND_JSON_SCHEMA: &[(&str, &str)] = &[
    ("geburtsdatum-future", "a date in the past depends on today"),
    ("iban-checksum", "mod-97 check digits"),
    ("iban-inherited-verbindlichkeit", "mod-97 check digits"),
    (
        "iban-length-of-country",
        "the length and BBAN format of each country (IBAN registry)",
    ),
    ("kommentare-total-too-many", "the limit spans two lists"),
    (
        "partner-custom-key-duplicate",
        "unique keys inside objects of an array",
    ),
    (
        "partner-custom-value-whole-float",
        "JSON Schema counts 24.0 as an integer",
    ),
    (
        "type-integer-got-float",
        "JSON Schema counts 24.0 as an integer",
    ),
];

#[test]
fn invalid_fixtures_fail_the_request_schema_except_rules_beyond_json_schema() {
    let validator = request_validator(vorgang_server::openapi::document());
    let mut accepted = Vec::new();
    let mut checked = 0;
    for (name, body, expect) in fixtures("invalid") {
        if expect["status"] != 422 {
            continue;
        }
        let Some(instance) = as_json(&body) else {
            continue;
        };
        checked += 1;
        if validator.is_valid(&instance) {
            accepted.push(name);
        }
    }
    if !fixtures_dir("invalid").exists() {
        return; // no fixtures in this checkout
    }
    assert!(
        checked >= 50,
        "only {checked} invalid fixtures expecting 422"
    );
    eprintln!("{checked} invalid fixtures checked; accepted by the schema: {accepted:?}");
    let expected: Vec<&str> = BEYOND_JSON_SCHEMA.iter().map(|(name, _)| *name).collect();
    let unexpected: Vec<&String> = accepted
        .iter()
        .filter(|n| !expected.contains(&n.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "the request schema accepts invalid fixtures: {unexpected:?} (of {checked})"
    );
    let stale: Vec<&&str> = expected
        .iter()
        .filter(|name| {
            fixtures_dir("invalid")
                .join(format!("{name}.json"))
                .exists()
        })
        .filter(|name| !accepted.iter().any(|a| a == *name))
        .collect();
    assert!(
        stale.is_empty(),
        "the schema now refuses {stale:?}: remove them from BEYOND_JSON_SCHEMA"
    );
}

#[tokio::test]
async fn real_answers_match_the_documented_schemas() {
    let app = spawn_app().await;
    let document = app.document().await;
    let doc = &document;

    // Token endpoint: 200, 401, 400.
    let response = app
        .token_response(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    assert_documented(doc, "/oauth2/token", "post", response).await;
    let response = app.token_with_secret("wrong").await;
    assert_eq!(response.status(), 401);
    assert_documented(doc, "/oauth2/token", "post", response).await;
    let response = app.token_response(&[("grant_type", "password")]).await;
    assert_eq!(response.status(), 400);
    assert_documented(doc, "/oauth2/token", "post", response).await;
    let response = app.get("/.well-known/jwks.json").await;
    assert_documented(doc, "/.well-known/jwks.json", "get", response).await;

    let token = app.token().await;
    let seed_body = serde_json::to_vec(&seed()).unwrap();

    // 201 and GET.
    let response = app.post_vorgang(&token, &seed()).await;
    assert_eq!(response.status(), 201);
    let created = assert_documented(doc, "/vorgang", "post", response).await;
    let id = created["drkleinrkVorgangsnummer"].as_str().unwrap();
    let response = app
        .http
        .get(format!("{}/vorgang/{id}", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_documented(doc, "/vorgang/{drkleinrkVorgangsnummer}", "get", response).await;
    let response = app
        .http
        .get(format!("{}/vorgang/{}", app.address, uuid::Uuid::new_v4()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_documented(doc, "/vorgang/{drkleinrkVorgangsnummer}", "get", response).await;

    // 202 of a queued import (`Prefer: respond-async`, Europace unavailable).
    app.sandbox_fault(json!({"target": "kex", "status": 503}))
        .await;
    let response = app
        .http
        .post(format!("{}/vorgang", app.address))
        .bearer_auth(&token)
        .header("Prefer", "respond-async")
        .header("Content-Type", "application/json")
        .body(seed_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let queued = assert_documented(doc, "/vorgang", "post", response).await;
    assert_eq!(queued["importStatus"], "QUEUED");

    // The form label is accepted for the same JSON body.
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/x-www-form-urlencoded"),
            seed_body.clone(),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_documented(doc, "/vorgang", "post", response).await;

    // Errors.
    let response = app
        .post_vorgang_raw("", None, Some("application/json"), seed_body.clone(), None)
        .await;
    assert_eq!(response.status(), 401);
    assert_documented(doc, "/vorgang", "post", response).await;
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("text/plain"),
            seed_body.clone(),
            None,
        )
        .await;
    assert_eq!(response.status(), 415);
    assert_documented(doc, "/vorgang", "post", response).await;
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            b"{\"a\":".to_vec(),
            None,
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_documented(doc, "/vorgang", "post", response).await;
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            vec![b' '; 256 * 1024 + 1],
            None,
        )
        .await;
    assert_eq!(response.status(), 413);
    assert_documented(doc, "/vorgang", "post", response).await;
    let mut invalid = seed();
    invalid["tippgeber"]["anrede"] = json!("DIVERS");
    invalid["vorgang"]["finanzbedarf"]["finanzierungswunsch"]["laufzeitInMonaten"] = json!(0);
    let response = app
        .post_vorgang_raw(
            "",
            Some(&token),
            Some("application/json"),
            serde_json::to_vec(&invalid).unwrap(),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem = assert_documented(doc, "/vorgang", "post", response).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);

    // Europace failures: 502, 503, 504, each with the import it concerns.
    for (fault, status) in [
        (json!({"target": "kex", "status": 400, "times": 1}), 502),
        (json!({"target": "kex", "status": 503, "times": 1}), 503),
        (
            json!({"target": "kex", "status": 0, "times": 1, "after_receive": true}),
            504,
        ),
    ] {
        app.sandbox_fault(fault).await;
        let response = app.post_vorgang(&token, &seed()).await;
        assert_eq!(response.status(), status);
        let problem = assert_documented(doc, "/vorgang", "post", response).await;
        assert!(problem["drkleinrkVorgangsnummer"].is_string(), "{status}");
        assert!(problem["importStatus"].is_string(), "{status}");
        // Only a refusal carries Europace's messages (here the sandbox's own error text).
        assert_eq!(
            problem["europaceMessages"].is_array(),
            status == 502,
            "{status}"
        );
    }
    // Europace's messages as a fault sends them.
    app.sandbox_fault(json!({"target": "kex", "status": 422,
        "body": {"messages": ["Die PLZ ist ungültig.", "Bitte Geburtsdatum angeben."]}}))
        .await;
    let response = app.post_vorgang(&token, &seed()).await;
    assert_eq!(response.status(), 502);
    let problem = assert_documented(doc, "/vorgang", "post", response).await;
    assert_eq!(
        problem["europaceMessages"],
        json!(["Die PLZ ist ungültig.", "Bitte Geburtsdatum angeben."])
    );

    // The list of imports: a page with a next cursor, and a bad query.
    let list = |query: &'static str| {
        app.http
            .get(format!("{}/vorgang{query}", app.address))
            .bearer_auth(&token)
            .send()
    };
    let response = list("?limit=2").await.unwrap();
    assert_eq!(response.status(), 200);
    let page = assert_documented(doc, "/vorgang", "get", response).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next"].is_string());
    let response = list("?limit=1000").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_documented(doc, "/vorgang", "get", response).await;
    let response = list("?status=FAILED&limit=500").await.unwrap();
    let page = assert_documented(doc, "/vorgang", "get", response).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "502, 503, 502");
    assert_eq!(page["next"], Value::Null);

    // Operations.
    for path in ["/health/live", "/health/ready"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200);
        assert_documented(doc, path, "get", response).await;
    }
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/plain"));
}

#[tokio::test]
async fn the_429_of_the_rate_limit_matches_the_document() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Db::Sqlite, |settings| {
        settings.limits.imports_per_minute = 1;
    })
    .await;
    let document = app.document().await;
    let token = app.token().await;
    let response = app.post_vorgang(&token, &seed()).await;
    assert_eq!(response.status(), 201);
    assert_documented(&document, "/vorgang", "post", response).await;
    let response = app.post_vorgang(&token, &seed()).await;
    assert_eq!(response.status(), 429);
    let problem = assert_documented(&document, "/vorgang", "post", response).await;
    assert_eq!(problem["status"], 429);
}

#[tokio::test]
async fn docs_page_renders_openapi_json_without_any_cdn() {
    let app = spawn_app().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let csp = header(&response, "content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("\"/openapi.json\""), "{page}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "external URL in {page}"
    );

    // The page's own scripts and styles, served by this service.
    for (asset, kind) in [
        ("/docs/swagger-ui-bundle.js", "javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        assert!(page.contains(asset), "{asset} not referenced");
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(header(&response, "content-type").contains(kind), "{asset}");
        assert!(response.bytes().await.unwrap().len() > 1000, "{asset}");
    }
    assert_eq!(app.get("/docs/").await.status(), 200);
    for missing in [
        "/docs/nope.js",
        "/docs/..%2Fopenapi.json",
        "/docs/sub/swagger-ui.css",
        "/docsx",
    ] {
        assert_eq!(app.get(missing).await.status(), 404, "{missing}");
    }
}

#[tokio::test]
async fn introspection_revocation_and_metadata_answers_match_their_documentation() {
    let app = spawn_app().await;
    let document = app.document().await;
    let doc = &document;
    for (path, method) in [
        ("/oauth2/introspect", "post"),
        ("/oauth2/revoke", "post"),
        ("/.well-known/oauth-authorization-server", "get"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"]["200"].is_object(),
            "{method} {path} is documented"
        );
    }
    let (id, secret) = app.register_client(&[auth::INTROSPECT_SCOPE]).await;
    let token = app.token().await;
    let introspect = |caller: (String, String), token: String| {
        app.http
            .post(format!("{}/oauth2/introspect", app.address))
            .basic_auth(caller.0, Some(caller.1))
            .form(&[("token", token)])
            .send()
    };
    // Active, inactive, 403 and 401.
    let response = introspect((id.clone(), secret.clone()), token.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = assert_documented(doc, "/oauth2/introspect", "post", response).await;
    assert_eq!(body["active"], true);
    let response = introspect((id.clone(), secret), "garbage".to_owned())
        .await
        .unwrap();
    let body = assert_documented(doc, "/oauth2/introspect", "post", response).await;
    assert_eq!(body, json!({"active": false}));
    let response = introspect((app.client_id.clone(), app.client_secret.clone()), token)
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_documented(doc, "/oauth2/introspect", "post", response).await;
    let response = introspect((id, "wrong".to_owned()), "x".to_owned())
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_documented(doc, "/oauth2/introspect", "post", response).await;
    // Revocation errors (its 200 has no body).
    let response = app
        .oauth_form(
            "/oauth2/revoke",
            Some((&app.client_id, &app.client_secret)),
            &[("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_documented(doc, "/oauth2/revoke", "post", response).await;
    // Metadata.
    let response = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(response.status(), 200);
    assert_documented(
        doc,
        "/.well-known/oauth-authorization-server",
        "get",
        response,
    )
    .await;
}
