//! The null relay: the ceiling the service is measured against.
//!
//! An actix-web `POST /vorgang` that makes the Europace calls the service makes for a lead, and
//! nothing else: no authentication, no validation, no storage, no logging. Per request:
//!
//! 1. `GET /v2/partners?externePartnerId=relay-{externeMitarbeiternummer}` (Partnermanagement
//!    lookup, every time: the relay remembers nothing);
//! 2. only if nothing was found: `POST /v2/partner/TGT01/untergeordnete` (create the Tippgeber
//!    under the test parent, as the service does for a new Tippgeber);
//! 3. `POST /vorgang` (KEX import, test mode) with the Vorgang plus `kundenbetreuer`,
//!    `tippgeber`, `eigeneVorgangsnummer` and the comments;
//! 4. answers 201 `{drkleinrkVorgangsnummer, europaceVorgangsnummer, crmKennung, messages}`.
//!
//! One `reqwest::Client` (connection pool, the service's timeouts) and two Europace tokens (the
//! partner and the KEX scope, as the service requests them), fetched at start and fetched again
//! only after a 401. Unlike the service it does not read the partner found by the lookup to check
//! its parent (`GET /v2/partner/{id}`): a lookup hit is taken as it is, which keeps the ceiling
//! high.

use std::net::TcpListener;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The service's default scope for KEX imports.
const KEX_SCOPE: &str = "privatkredit:vorgang:schreiben";
/// The service's default scopes for Partnermanagement.
const PARTNER_SCOPE: &str =
    "partner:plakette:lesen partner:plakette:anlegen partner:plakette:schreiben";
/// The sandbox's Kundenbetreuer (the service's default `europace.kundenbetreuer_partner_id`).
const KUNDENBETREUER: &str = "KBT01";
/// The sandbox's Tippgeber parent for test mode (`europace.test_tippgeber_parent_id`).
const TEST_PARENT: &str = "TGT01";

/// The relay's state: one HTTP client, the Europace base URL and the cached tokens.
#[derive(Debug)]
pub struct Relay {
    http: reqwest::Client,
    base: String,
    /// `{base}/v2/partners`, to which the query is appended.
    lookup_url: url::Url,
    partner_token: RwLock<String>,
    kex_token: RwLock<String>,
}

/// Which cached token a call uses.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Partner,
    Kex,
}

/// What the relay reads of a request: the Vorgang, the Tippgeber and the comments.
#[derive(Debug, Deserialize)]
struct Lead {
    vorgang: Map<String, Value>,
    tippgeber: Tippgeber,
    #[serde(default)]
    kommentare: Vec<String>,
    #[serde(default)]
    partner: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tippgeber {
    externe_mitarbeiternummer: String,
    vorname: String,
    nachname: String,
    anrede: Option<String>,
    telefon: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Found {
    #[serde(default)]
    partners: Vec<PartnerId>,
}

#[derive(Debug, Deserialize)]
struct PartnerId {
    #[serde(rename = "partnerId")]
    partner_id: String,
}

#[derive(Debug, Deserialize)]
struct Imported {
    vorgangsnummer: String,
    #[serde(default)]
    messages: Vec<Value>,
}

impl Relay {
    /// A relay to the Europace at `base`, with both tokens fetched.
    ///
    /// # Errors
    /// The token endpoint cannot be reached or refuses.
    pub async fn connect(base: &url::Url) -> anyhow::Result<Self> {
        // The service's outbound settings: connect 2 s, total 10 s, pooled keep-alive.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        let base = base.as_str().trim_end_matches('/').to_owned();
        let partner_token = fetch_token(&http, &base, PARTNER_SCOPE).await?;
        let kex_token = fetch_token(&http, &base, KEX_SCOPE).await?;
        let lookup_url = url::Url::parse(&format!("{base}/v2/partners"))?;
        Ok(Self {
            http,
            base,
            lookup_url,
            partner_token: RwLock::new(partner_token),
            kex_token: RwLock::new(kex_token),
        })
    }

    fn token(&self, scope: Scope) -> &RwLock<String> {
        match scope {
            Scope::Partner => &self.partner_token,
            Scope::Kex => &self.kex_token,
        }
    }

    /// Sends the request `build` makes with the cached token; after a 401 once more with a fresh
    /// token.
    async fn send(
        &self,
        scope: Scope,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let cached = self
            .token(scope)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let response = build().bearer_auth(&cached).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let fresh = fetch_token(
            &self.http,
            &self.base,
            match scope {
                Scope::Partner => PARTNER_SCOPE,
                Scope::Kex => KEX_SCOPE,
            },
        )
        .await?;
        *self
            .token(scope)
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(build().bearer_auth(&fresh).send().await?)
    }

    /// The Tippgeber's partnerId: looked up, created if not found.
    async fn tippgeber_partner_id(&self, tippgeber: &Tippgeber) -> anyhow::Result<String> {
        let externe_partner_id = format!("relay-{}", tippgeber.externe_mitarbeiternummer);
        let mut lookup_url = self.lookup_url.clone();
        lookup_url
            .query_pairs_mut()
            .append_pair("externePartnerId", &externe_partner_id);
        let found: Found = expect(
            self.send(Scope::Partner, || self.http.get(lookup_url.clone()))
                .await?,
            &[StatusCode::OK],
        )
        .await?;
        if let Some(hit) = found.partners.into_iter().next() {
            return Ok(hit.partner_id);
        }
        let mut person = Map::new();
        person.insert("typ".into(), "PERSON".into());
        person.insert("vorname".into(), tippgeber.vorname.clone().into());
        person.insert("nachname".into(), tippgeber.nachname.clone().into());
        for (key, value) in [
            ("anrede", &tippgeber.anrede),
            ("email", &tippgeber.email),
            ("telefonnummer", &tippgeber.telefon),
        ] {
            if let Some(value) = value {
                person.insert(key.into(), value.clone().into());
            }
        }
        person.insert("externePartnerId".into(), externe_partner_id.into());
        let create_url = format!("{}/v2/partner/{TEST_PARENT}/untergeordnete", self.base);
        let created: PartnerId = expect(
            self.send(Scope::Partner, || self.http.post(&create_url).json(&person))
                .await?,
            &[StatusCode::CREATED, StatusCode::RESET_CONTENT],
        )
        .await?;
        Ok(created.partner_id)
    }

    /// Relays one lead; the JSON of the 201 answer.
    ///
    /// # Errors
    /// Europace failed or answered something unexpected.
    async fn import(&self, lead: Lead) -> anyhow::Result<Value> {
        let partner_id = self.tippgeber_partner_id(&lead.tippgeber).await?;
        let id = Uuid::new_v4();
        let body = kex_body(lead, id, &partner_id);
        let kex_url = format!("{}/vorgang", self.base);
        let imported: Imported = expect(
            self.send(Scope::Kex, || self.http.post(&kex_url).json(&body))
                .await?,
            &[StatusCode::CREATED, StatusCode::OK],
        )
        .await?;
        Ok(json!({
            "drkleinrkVorgangsnummer": id,
            "europaceVorgangsnummer": imported.vorgangsnummer,
            "crmKennung": format!("DKR-{}", &id.simple().to_string()[..8].to_uppercase()),
            "messages": imported.messages,
        }))
    }
}

/// The KEX body: the Vorgang as sent plus what only the service sets, and the comments.
fn kex_body(lead: Lead, id: Uuid, tippgeber_partner_id: &str) -> Value {
    let mut body = lead.vorgang;
    body.insert(
        "kundenbetreuer".into(),
        json!({ "partnerId": KUNDENBETREUER }),
    );
    body.insert(
        "tippgeber".into(),
        json!({ "partnerId": tippgeber_partner_id }),
    );
    body.insert("eigeneVorgangsnummer".into(), id.to_string().into());
    let mut kommentare = lead.kommentare;
    kommentare.extend(lead.partner.as_ref().and_then(partner_line));
    if !kommentare.is_empty() {
        body.insert("kommentare".into(), json!(kommentare));
    }
    Value::Object(body)
}

/// The partner data as one comment line, as the service renders it (KEX has no field for it),
/// so the KEX body has the service's size.
fn partner_line(partner: &Value) -> Option<String> {
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut parts = Vec::new();
    for (key, label) in [
        ("vertriebsschluessel", "Vertriebsschlüssel"),
        ("kundennummer", "Kundennummer"),
    ] {
        if let Some(value) = partner.get(key) {
            parts.push(format!("{label}: {}", text(value)));
        }
    }
    for entry in partner
        .get("custom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(key), Some(value)) =
            (entry.get("key").and_then(Value::as_str), entry.get("value"))
        {
            parts.push(format!("{key}: {}", text(value)));
        }
    }
    (!parts.is_empty()).then(|| format!("Partnerdaten: {}", parts.join("; ")))
}

/// The answer's JSON if its status is one of `ok`.
async fn expect<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    ok: &[StatusCode],
) -> anyhow::Result<T> {
    let status = response.status();
    anyhow::ensure!(ok.contains(&status), "Europace answered {status}");
    Ok(response.json().await?)
}

/// A client-credentials token for `scope` from the sandbox.
async fn fetch_token(http: &reqwest::Client, base: &str, scope: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
    }
    let response = http
        .post(format!("{base}/auth/token"))
        .basic_auth("relay", Some("relay"))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .context("requesting a Europace token")?;
    let token: Token = expect(response, &[StatusCode::OK])
        .await
        .context("Europace token")?;
    Ok(token.access_token)
}

/// `POST /vorgang`: 201 with the ids, 400 for a body it cannot read, 502 when Europace failed.
async fn post_vorgang(relay: web::Data<Relay>, body: web::Bytes) -> HttpResponse {
    let Ok(lead) = serde_json::from_slice::<Lead>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    match relay.import(lead).await {
        Ok(answer) => HttpResponse::Created().json(answer),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

/// Serves `relay` on `listener` with as many workers as the service uses (one per CPU). The
/// returned server runs once spawned or awaited; it ignores signals (the child stops it).
///
/// # Errors
/// The listener cannot be used.
pub fn serve(relay: Relay, listener: TcpListener) -> std::io::Result<Server> {
    let relay = web::Data::new(relay);
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(relay.clone())
            .route("/vorgang", web::post().to(post_vorgang))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use europace_sandbox::{Sandbox, SandboxConfig};

    /// The relay against the real sandbox: the first lead of a Tippgeber creates it under the
    /// test parent, the second finds it; both reach KEX with the service-set fields.
    #[actix_web::test]
    async fn relays_leads_with_the_calls_of_the_service() {
        let sandbox = Sandbox::new(SandboxConfig::default());
        let sandbox_server = sandbox
            .serve(TcpListener::bind("127.0.0.1:0").unwrap())
            .unwrap();
        let base = url::Url::parse(&sandbox_server.base_url()).unwrap();
        let relay = Relay::connect(&base).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}/vorgang", listener.local_addr().unwrap());
        let server = serve(relay, listener).unwrap();
        let handle = server.handle();
        let running = actix_web::rt::spawn(server);

        let bodies = crate::workload::bodies().unwrap();
        let http = reqwest::Client::new();
        let mut answers = Vec::new();
        for body in [&bodies[0], &bodies[0], &bodies[1]] {
            let response = http
                .post(&address)
                .header("Content-Type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            answers.push(response.json::<Value>().await.unwrap());
        }
        let garbage = http.post(&address).body("{").send().await.unwrap();
        assert_eq!(garbage.status(), 400);

        let vorgaenge = sandbox.vorgaenge();
        assert_eq!(vorgaenge.len(), 3);
        let created: Vec<Value> = sandbox
            .partners()
            .into_iter()
            .filter(|p| p["parent"]["partnerId"] == TEST_PARENT)
            .collect();
        assert_eq!(created.len(), 2, "one partner per Tippgeber: {created:?}");
        assert_eq!(
            created[0]["externePartnerId"],
            format!("relay-{}", crate::workload::mitarbeiternummer(0))
        );
        for (recorded, answer) in vorgaenge.iter().zip(&answers) {
            assert_eq!(recorded.vorgangsnummer, answer["europaceVorgangsnummer"]);
            assert_eq!(
                recorded.body["eigeneVorgangsnummer"],
                answer["drkleinrkVorgangsnummer"]
            );
            assert_eq!(recorded.body["kundenbetreuer"]["partnerId"], KUNDENBETREUER);
            assert_eq!(
                recorded.body["kommentare"],
                json!([
                    "Max Mustermann hat 3 Kreditkarten.",
                    "Partnerdaten: Vertriebsschlüssel: KOOPERATION_MIT_DRKLEIN-RK; \
                     Kundennummer: 143251ab; telefonTermin: 2021-01-10 13:00:00; filialId: 123123"
                ])
            );
            assert_eq!(
                recorded.body["antragsteller1"]["personendaten"]["vorname"],
                "Max"
            );
        }
        assert_eq!(
            vorgaenge[0].body["tippgeber"],
            vorgaenge[1].body["tippgeber"]
        );
        assert_ne!(
            vorgaenge[0].body["tippgeber"],
            vorgaenge[2].body["tippgeber"]
        );

        handle.stop(true).await;
        running.await.unwrap().unwrap();
        sandbox_server.stop().await;
    }
}
