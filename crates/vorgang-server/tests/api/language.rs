//! Issue 12, point 3: the texts of error answers are German by default and English when
//! `Accept-Language` prefers it; `Content-Language` says which; `type`, `error`, the pointers,
//! the codes of `messages` and Europace's messages never change with the language. (The 408 of
//! a slow body is checked in `slow_clients`, which waits for it anyway.)

use crate::support::SendJson as _;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, seed, spawn_app, spawn_app_with};

/// One request of the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Validation,
    Malformed,
    BadQuery,
    BadIdempotencyKey,
    NoToken,
    NoScope,
    UnknownImport,
    UnknownPath,
    MethodNotAllowed,
    TooLarge,
    UnsupportedMediaType,
    KeyReused,
    EuropaceRejected,
    EuropaceUnavailable,
    TokenInvalidClient,
    TokenUnsupportedGrant,
    TokenGrantTypeMissing,
    IntrospectWithoutScope,
    RevokeWithoutToken,
}

const CASES: [Case; 19] = [
    Case::Validation,
    Case::Malformed,
    Case::BadQuery,
    Case::BadIdempotencyKey,
    Case::NoToken,
    Case::NoScope,
    Case::UnknownImport,
    Case::UnknownPath,
    Case::MethodNotAllowed,
    Case::TooLarge,
    Case::UnsupportedMediaType,
    Case::KeyReused,
    Case::EuropaceRejected,
    Case::EuropaceUnavailable,
    Case::TokenInvalidClient,
    Case::TokenUnsupportedGrant,
    Case::TokenGrantTypeMissing,
    Case::IntrospectWithoutScope,
    Case::RevokeWithoutToken,
];

/// An answer: status, `Content-Language`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    language: Option<String>,
    body: Value,
}

/// An app with what the sample needs: a token with the import scope, one of a client without it.
struct Fixture {
    app: TestApp,
    token: String,
    other_id: String,
    other_secret: String,
    other_token: String,
}

const EUROPACE_SAYS: &str = "Die Postleitzahl des Antragstellers ist ungültig.";

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let token = app.token().await;
    let (other_id, other_secret) = app.register_client(&[auth::INTROSPECT_SCOPE]).await;
    let other_token = app.token_for(&other_id, &other_secret).await;
    Fixture {
        app,
        token,
        other_id,
        other_secret,
        other_token,
    }
}

/// The seed with three violations: `anrede` not an enum value, `vorname` missing, a fractional
/// `laufzeitInMonaten`.
fn invalid_body() -> Value {
    let mut body = seed();
    body["tippgeber"]["anrede"] = json!("Herr");
    body["tippgeber"].as_object_mut().unwrap().remove("vorname");
    body["vorgang"]["finanzbedarf"]["finanzierungswunsch"]["laufzeitInMonaten"] = json!(24.5);
    body
}

impl Fixture {
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .http
            .request(method, format!("{}{path}", self.app.address))
    }

    fn import(&self, body: Vec<u8>) -> RequestBuilder {
        self.request(Method::POST, "/vorgang")
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json")
            .body(body)
    }

    async fn send(&self, case: Case, accept_language: Option<&str>) -> Answer {
        let json = |value: &Value| serde_json::to_vec(value).unwrap();
        let form = |path: &str| {
            self.request(Method::POST, path)
                .header("Content-Type", "application/x-www-form-urlencoded")
        };
        let request = match case {
            Case::Validation => self.import(json(&invalid_body())),
            Case::Malformed => self.import(br#"{"vorgang": {}, "vorgang": {}}"#.to_vec()),
            Case::BadQuery => self
                .request(Method::POST, "/vorgang?environment=prod")
                .bearer_auth(&self.token)
                .header("Content-Type", "application/json")
                .body(json(&seed())),
            Case::BadIdempotencyKey => self
                .import(json(&seed()))
                .header("Idempotency-Key", "x".repeat(256)),
            Case::NoToken => self
                .request(Method::POST, "/vorgang")
                .header("Content-Type", "application/json")
                .body(json(&seed())),
            Case::NoScope => self
                .request(Method::POST, "/vorgang")
                .bearer_auth(&self.other_token)
                .header("Content-Type", "application/json")
                .body(json(&seed())),
            Case::UnknownImport => self
                .request(Method::GET, "/vorgang/6e8627d4-1512-11eb-adc1-0242ac120002")
                .bearer_auth(&self.token),
            Case::UnknownPath => self.request(Method::GET, "/vorgaenge"),
            Case::MethodNotAllowed => self.request(Method::PUT, "/vorgang"),
            Case::TooLarge => self.import(vec![b' '; 256 * 1024 + 1]),
            Case::UnsupportedMediaType => self
                .request(Method::POST, "/vorgang")
                .bearer_auth(&self.token)
                .header("Content-Type", "text/plain")
                .body(json(&seed())),
            Case::KeyReused => {
                let first = self
                    .import(json(&seed()))
                    .header("Idempotency-Key", "language-key")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(first.status(), 201);
                let mut other = seed();
                other["kommentare"] = json!(["ein anderer Body"]);
                self.import(json(&other))
                    .header("Idempotency-Key", "language-key")
            }
            Case::EuropaceRejected => {
                self.app
                    .sandbox_fault(json!({
                        "target": "kex", "status": 400,
                        "body": {"messages": [EUROPACE_SAYS]},
                    }))
                    .await;
                self.import(json(&seed()))
            }
            Case::EuropaceUnavailable => {
                self.app
                    .sandbox_fault(json!({"target": "kex", "status": 503}))
                    .await;
                self.import(json(&seed()))
            }
            Case::TokenInvalidClient => form("/oauth2/token")
                .basic_auth(&self.app.client_id, Some("not-the-secret"))
                .body("grant_type=client_credentials"),
            Case::TokenUnsupportedGrant => form("/oauth2/token")
                .basic_auth(&self.app.client_id, Some(&self.app.client_secret))
                .body("grant_type=password"),
            Case::TokenGrantTypeMissing => form("/oauth2/token")
                .basic_auth(&self.app.client_id, Some(&self.app.client_secret))
                .body("scope=drkleinrk-api%2Fvorgang%3Aimport"),
            Case::IntrospectWithoutScope => form("/oauth2/introspect")
                .basic_auth(&self.app.client_id, Some(&self.app.client_secret))
                .body(format!("token={}", self.token)),
            Case::RevokeWithoutToken => form("/oauth2/revoke")
                .basic_auth(&self.other_id, Some(&self.other_secret))
                .body("token_type_hint=access_token"),
        };
        let request = match accept_language {
            Some(value) => request.header("Accept-Language", value),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let language = response
            .headers()
            .get("content-language")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            language,
            body,
        }
    }
}

/// What each case answers: status, `type` slug or OAuth `error`, and the texts
/// (title, detail) in German and English. An OAuth answer has no title: its description is the
/// "detail".
struct Expected {
    status: u16,
    code: &'static str,
    de: (&'static str, &'static str),
    en: (&'static str, &'static str),
}

fn expected(case: Case) -> Expected {
    let e = |status, code, de, en| Expected {
        status,
        code,
        de,
        en,
    };
    match case {
        Case::Validation => e(
            422,
            "validation-failed",
            (
                "Validierung fehlgeschlagen",
                "3 Feld(er) verletzen die Regeln; siehe errors",
            ),
            (
                "Validation failed",
                "3 field(s) violate the rules; see errors",
            ),
        ),
        Case::Malformed => e(
            400,
            "malformed-request",
            (
                "Ungültige Anfrage",
                "doppelter Schlüssel im Objekt der obersten Ebene in Zeile 1, Spalte 25",
            ),
            (
                "Malformed request",
                "duplicate key in the top-level object at line 1 column 25",
            ),
        ),
        Case::BadQuery => e(
            400,
            "bad-query",
            (
                "Ungültige Query-Parameter",
                "environment muss TEST oder PRODUCTION sein",
            ),
            ("Bad query", "environment must be TEST or PRODUCTION"),
        ),
        Case::BadIdempotencyKey => e(
            400,
            "bad-idempotency-key",
            (
                "Ungültiger Idempotency-Key",
                "der Idempotency-Key muss aus 1 bis 255 sichtbaren ASCII-Zeichen bestehen",
            ),
            (
                "Bad Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ),
        ),
        Case::NoToken => e(
            401,
            "unauthorized",
            (
                "Nicht authentifiziert",
                "Ein Bearer-Access-Token ist erforderlich.",
            ),
            ("Unauthorized", "A bearer access token is required."),
        ),
        Case::NoScope => e(
            403,
            "insufficient-scope",
            (
                "Keine Berechtigung",
                "Dem Access-Token fehlt der erforderliche Scope.",
            ),
            ("Forbidden", "The access token lacks the required scope."),
        ),
        Case::UnknownImport => e(
            404,
            "not-found",
            ("Nicht gefunden", "keine solche Ressource für diesen Client"),
            ("Not found", "no such resource for this client"),
        ),
        Case::UnknownPath => e(
            404,
            "not-found",
            ("Nicht gefunden", "kein solcher Endpunkt"),
            ("Not found", "no such endpoint"),
        ),
        Case::MethodNotAllowed => e(
            405,
            "method-not-allowed",
            (
                "Methode nicht erlaubt",
                "dieser Pfad bedient nur POST, GET, HEAD",
            ),
            (
                "Method not allowed",
                "this path serves only POST, GET, HEAD",
            ),
        ),
        Case::TooLarge => e(
            413,
            "payload-too-large",
            (
                "Request-Body zu groß",
                "der Request-Body darf höchstens 262144 Bytes groß sein",
            ),
            ("Payload too large", "the body must not exceed 262144 bytes"),
        ),
        Case::UnsupportedMediaType => e(
            415,
            "unsupported-media-type",
            (
                "Nicht unterstützter Medientyp",
                "senden Sie den JSON-Body als application/json \
                 (application/x-www-form-urlencoded wird ebenfalls akzeptiert)",
            ),
            (
                "Unsupported media type",
                "send the JSON body as application/json \
                 (application/x-www-form-urlencoded is accepted too)",
            ),
        ),
        Case::KeyReused => e(
            422,
            "idempotency-key-reused",
            (
                "Idempotency-Key bereits verwendet",
                "dieser Idempotency-Key wurde bereits mit einem anderen Request-Body oder einer \
                 anderen Umgebung (environment) verwendet",
            ),
            (
                "Idempotency-Key reused",
                "this Idempotency-Key was already used with a different body or environment",
            ),
        ),
        Case::EuropaceRejected => e(
            502,
            "europace-rejected",
            (
                "Europace hat den Import abgelehnt",
                "Europace hat unsere Anfrage abgelehnt; es wurde nichts angelegt. Die Gründe von \
                 Europace stehen in europaceMessages. Unser Betrieb wurde benachrichtigt.",
            ),
            (
                "Europace rejected the import",
                "Europace refused our request; nothing was created. Europace's reasons are in \
                 europaceMessages. Our operators have been alerted.",
            ),
        ),
        Case::EuropaceUnavailable => e(
            503,
            "europace-unavailable",
            (
                "Europace nicht erreichbar",
                "Europace war nicht erreichbar oder überlastet; es wurde nichts angelegt. Bitte \
                 später erneut versuchen, mit demselben Idempotency-Key.",
            ),
            (
                "Europace unavailable",
                "Europace could not be reached or was overloaded; nothing was created. Retry \
                 later, with the same Idempotency-Key.",
            ),
        ),
        Case::TokenInvalidClient => e(
            401,
            "invalid_client",
            ("", "Client-Authentifizierung fehlgeschlagen"),
            ("", "client authentication failed"),
        ),
        Case::TokenUnsupportedGrant => e(
            400,
            "unsupported_grant_type",
            ("", "nur grant_type=client_credentials wird unterstützt"),
            ("", "only grant_type=client_credentials is supported"),
        ),
        Case::TokenGrantTypeMissing => e(
            400,
            "invalid_request",
            ("", "grant_type fehlt"),
            ("", "grant_type is missing"),
        ),
        Case::IntrospectWithoutScope => e(
            403,
            "insufficient_scope",
            (
                "",
                "dem Client fehlt der Scope drkleinrk-api/token:introspect",
            ),
            (
                "",
                "the client lacks the scope drkleinrk-api/token:introspect",
            ),
        ),
        Case::RevokeWithoutToken => e(
            400,
            "invalid_request",
            ("", "token fehlt"),
            ("", "token is missing"),
        ),
    }
}

/// Whether the case answers in the OAuth format (`error`, `error_description`).
fn is_oauth(case: Case) -> bool {
    expected(case).code.contains('_')
}

/// Checks one answer against what `case` expects in `lang` (`"de"` or `"en"`).
fn check(case: Case, answer: &Answer, lang: &str) {
    let expected = expected(case);
    let (title, detail) = if lang == "de" {
        expected.de
    } else {
        expected.en
    };
    assert_eq!(answer.status, expected.status, "{case:?}: {}", answer.body);
    assert_eq!(answer.language.as_deref(), Some(lang), "{case:?}");
    if is_oauth(case) {
        assert_eq!(answer.body["error"], expected.code, "{case:?}");
        assert_eq!(answer.body["error_description"], detail, "{case:?}");
    } else {
        assert_eq!(
            answer.body["type"],
            format!("https://api.drkleinservice.de/problems/{}", expected.code),
            "{case:?}"
        );
        assert_eq!(answer.body["title"], title, "{case:?}");
        assert_eq!(answer.body["detail"], detail, "{case:?}");
    }
}

/// The answer without its translated texts and its request id: what must be the same in every
/// language.
fn machine_readable(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        for member in ["title", "detail", "error_description", "requestId"] {
            object.remove(member);
        }
        if let Some(Value::Array(errors)) = object.get_mut("errors") {
            for error in errors {
                if let Some(error) = error.as_object_mut() {
                    error.remove("detail");
                }
            }
        }
    }
    body
}

#[tokio::test]
async fn error_answers_are_german_by_default() {
    let f = fixture().await;
    for case in CASES {
        let answer = f.send(case, None).await;
        check(case, &answer, "de");
    }
    // The violations themselves, by pointer, in German.
    let answer = f.send(Case::Validation, None).await;
    assert_eq!(
        answer.body["errors"],
        json!([
            {"pointer": "/tippgeber/anrede", "detail": "muss einer dieser Werte sein: HERR, FRAU"},
            {"pointer": "/tippgeber/vorname", "detail": "ist erforderlich"},
            {"pointer": "/vorgang/finanzbedarf/finanzierungswunsch/laufzeitInMonaten",
             "detail": "muss eine ganze Zahl sein"},
        ])
    );
    // Languages we do not speak, and the wildcard, get German too.
    for header in [
        "fr",
        "*",
        "de, en;q=0.5",
        "en;q=0, *",
        "",
        "xx-Garbage;q=nope",
    ] {
        let answer = f.send(Case::NoToken, Some(header)).await;
        check(Case::NoToken, &answer, "de");
    }
}

#[tokio::test]
async fn error_answers_are_english_when_the_request_prefers_it() {
    let f = fixture().await;
    for case in CASES {
        let answer = f.send(case, Some("en")).await;
        check(case, &answer, "en");
    }
    let answer = f.send(Case::Validation, Some("en")).await;
    assert_eq!(
        answer.body["errors"],
        json!([
            {"pointer": "/tippgeber/anrede", "detail": "must be one of: HERR, FRAU"},
            {"pointer": "/tippgeber/vorname", "detail": "required"},
            {"pointer": "/vorgang/finanzbedarf/finanzierungswunsch/laufzeitInMonaten",
             "detail": "must be an integer"},
        ])
    );
    // Quality values decide (RFC 9110 §12.5.4).
    for header in [
        "en-US,en;q=0.9,de;q=0.8",
        "en-GB",
        "EN",
        "de;q=0.5, en",
        "fr, en;q=0.1",
        "de;q=0, *",
    ] {
        let answer = f.send(Case::NoToken, Some(header)).await;
        check(Case::NoToken, &answer, "en");
        let answer = f.send(Case::TokenGrantTypeMissing, Some(header)).await;
        check(Case::TokenGrantTypeMissing, &answer, "en");
    }
}

#[tokio::test]
async fn codes_pointers_and_europaces_messages_are_the_same_in_both_languages() {
    let f = fixture().await;
    for case in CASES {
        let german = f.send(case, Some("de-DE")).await;
        let english = f.send(case, Some("en")).await;
        assert_eq!(german.language.as_deref(), Some("de"), "{case:?}");
        assert_eq!(english.language.as_deref(), Some("en"), "{case:?}");
        assert_eq!(german.status, english.status, "{case:?}");
        let (german_fields, english_fields) = (
            machine_readable(&german.body),
            machine_readable(&english.body),
        );
        // Each 502/503 is a new import: its number differs, its state does not.
        let strip = |mut body: Value| {
            if let Some(object) = body.as_object_mut() {
                object.remove("drkleinrkVorgangsnummer");
            }
            body
        };
        assert_eq!(
            strip(german_fields),
            strip(english_fields),
            "{case:?}: only the texts may differ"
        );
        if is_oauth(case) {
            assert_ne!(
                german.body["error_description"], english.body["error_description"],
                "{case:?}"
            );
        } else {
            assert_ne!(german.body["detail"], english.body["detail"], "{case:?}");
        }
    }

    // Europace's own messages are passed through unchanged, in the 502 and in the import.
    let answer = f.send(Case::EuropaceRejected, Some("en")).await;
    assert_eq!(answer.body["europaceMessages"], json!([EUROPACE_SAYS]));
    let id = answer.body["drkleinrkVorgangsnummer"].as_str().unwrap();
    for header in ["de", "en"] {
        let view: Value = f
            .request(Method::GET, &format!("/vorgang/{id}"))
            .bearer_auth(&f.token)
            .header("Accept-Language", header)
            .send_json()
            .await;
        assert_eq!(view["messages"], json!([EUROPACE_SAYS]), "{header}");
    }

    // Our own messages start with a code that no language changes, and a 201 has no text to
    // translate.
    let mut body = seed();
    body["vorgang"]["zqxUnbekannt"] = json!(1);
    let mut messages = Vec::new();
    for header in ["de", "en"] {
        let response = f
            .import(serde_json::to_vec(&body).unwrap())
            .header("Accept-Language", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert!(response.headers().get("content-language").is_none());
        let answer: Value = response.json().await.unwrap();
        messages.push(answer["messages"].clone());
    }
    assert_eq!(
        messages[0],
        json!(["WARN unknown-field /vorgang/zqxUnbekannt"])
    );
    assert_eq!(messages[0], messages[1]);
}

/// The 429 of the rate limit, in both languages (its own app: a quota of one request a minute).
#[tokio::test]
async fn the_rate_limit_answer_speaks_both_languages() {
    let app = spawn_app_with(Db::Sqlite, |settings| {
        settings.limits.imports_per_minute = 1;
    })
    .await;
    let token = app.token().await;
    let send = |accept_language: &'static str| {
        app.http
            .post(format!("{}/vorgang", app.address))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .header("Accept-Language", accept_language)
            .body(serde_json::to_vec(&seed()).unwrap())
            .send()
    };
    assert_eq!(send("de").await.unwrap().status(), 201);
    let mut bodies = Vec::new();
    for (header, lang) in [("de", "de"), ("en-US", "en")] {
        let response = send(header).await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["content-language"], lang);
        assert!(response.headers().get("retry-after").is_some());
        bodies.push(response.json::<Value>().await.unwrap());
    }
    assert_eq!(bodies[0]["title"], "Zu viele Anfragen");
    assert_eq!(
        bodies[0]["detail"],
        "dieser Client darf 1 Importe pro Minute senden; bitte nach Retry-After Sekunden \
         erneut versuchen"
    );
    assert_eq!(bodies[1]["title"], "Too many requests");
    assert_eq!(
        bodies[1]["detail"],
        "this client may send 1 imports per minute; retry after Retry-After seconds"
    );
    assert_eq!(machine_readable(&bodies[0]), machine_readable(&bodies[1]));
}
