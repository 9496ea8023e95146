//! Shared helpers of the sandbox integration tests.

#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::time::Duration;

use europace_sandbox::{Sandbox, SandboxConfig, SandboxServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A running sandbox with a client pointed at it.
pub struct Running {
    pub sandbox: Sandbox,
    pub server: SandboxServer,
    pub base: String,
    pub http: reqwest::Client,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

pub fn start() -> Running {
    start_with(SandboxConfig::default())
}

pub fn start_with(config: SandboxConfig) -> Running {
    let sandbox = Sandbox::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = sandbox.serve(listener).unwrap();
    let base = server.base_url();
    Running {
        sandbox,
        server,
        base,
        http: client(),
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token carrying all scopes.
    pub async fn token(&self) -> String {
        self.token_with(None).await
    }

    pub async fn token_with(&self, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(self.url("/auth/token"))
            .basic_auth("client", Some("secret"))
            .form_body(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn fault(&self, fault: Value) {
        let response = self
            .http
            .post(self.url("/_sandbox/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{fault}");
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/_sandbox/stats").await
    }

    /// `GET path` without credentials, its answer read as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        self.http.get(self.url(path)).send_json().await
    }

    pub async fn lookup(&self, token: &str, externe_partner_id: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!(
                "/v2/partners?{}",
                form(&[("externePartnerId", externe_partner_id)])
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn try_create(
        &self,
        token: &str,
        parent: &str,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.url(&format!("/v2/partner/{parent}/untergeordnete")))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
    }

    pub async fn create(&self, token: &str, parent: &str, body: &Value) -> reqwest::Response {
        self.try_create(token, parent, body).await.unwrap()
    }

    /// The partner that [`Running::create`] answers, read as JSON.
    pub async fn created(&self, token: &str, parent: &str, body: &Value) -> Value {
        self.create(token, parent, body).await.json().await.unwrap()
    }

    /// `PATCH /v2/partner/{id}` with a JSON body.
    pub async fn update(&self, token: &str, id: &str, body: &Value) -> reqwest::Response {
        self.http
            .patch(self.url(&format!("/v2/partner/{id}")))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn try_import(
        &self,
        token: &str,
        environment: Option<&str>,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        let path = match environment {
            Some(environment) => format!("/vorgang?{}", form(&[("environment", environment)])),
            None => "/vorgang".to_owned(),
        };
        self.http
            .post(self.url(&path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
    }

    pub async fn import(
        &self,
        token: &str,
        environment: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        self.try_import(token, environment, body).await.unwrap()
    }

    pub async fn recorded(&self) -> Vec<Value> {
        self.get_json("/_sandbox/vorgaenge").await
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs` (reqwest's `form` feature is off).
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Extension of reqwest's request builder: send, and read the answer as JSON.
pub trait SendJson {
    /// Sends the request and parses the answer; a failure of either is a failed test.
    async fn send_json<T: DeserializeOwned>(self) -> T;
}

impl SendJson for reqwest::RequestBuilder {
    async fn send_json<T: DeserializeOwned>(self) -> T {
        self.send().await.unwrap().json().await.unwrap()
    }
}

/// Extension of reqwest's request builder with a form body.
pub trait FormExt {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormExt for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(pairs))
    }
}

/// A minimal KEX Vorgang with the seed Kundenbetreuer.
pub fn vorgang(vorname: &str) -> Value {
    json!({
        "kundenbetreuer": {"partnerId": "KBT01"},
        "antragsteller1": {"personendaten": {"vorname": vorname, "nachname": "Muster"}},
        "kommentare": ["bitte zurückrufen"]
    })
}

/// A Tippgeber partner body.
pub fn tippgeber(externe_partner_id: &str) -> Value {
    json!({
        "typ": "PERSON",
        "anrede": "FRAU",
        "vorname": "Tina",
        "nachname": "Tipp",
        "email": "tina@example.org",
        "telefonnummer": "030 123456",
        "externePartnerId": externe_partner_id
    })
}
