//! Europace Partnermanagement (API v2): finding, creating and updating Tippgeber.

use std::collections::HashSet;
use std::time::Instant;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION};
use serde::Deserialize;
use url::Url;
use vorgang_core::model::Tippgeber;
use vorgang_core::{
    EuropaceError, PartnerDirectory, PartnerRecord, TippgeberAttribute, TippgeberUpdate, TraceId,
    anrede_wire,
};

use crate::config::{EuropaceConfig, RetryPolicy, append_path};
use crate::http::{self, BodyError, TRACE_HEADER, TRACEPARENT_HEADER};
use crate::observe::{CallOutcome, CallTarget, Observer};
use crate::token::{AccessToken, TokenCache};

/// [`PartnerDirectory`] over the Europace Partnermanagement API.
///
/// - Lookup: `GET {partner_url}/v2/partners?externePartnerId=…`, then
///   `GET {partner_url}/v2/partner/{id}` for every hit to learn its `parent.partnerId`. A hit we
///   may not read (403/404) is reported without parent: it is not under our parents.
/// - Creation: `POST {partner_url}/v2/partner/{parent}/untergeordnete` with a `PERSON`; 201
///   (created) and 205 (the `externePartnerId` existed) both give the partnerId, taken from the
///   body or else from the last segment of `Location`. If the answer names a `parent` other than
///   the requested one (Europace matched the `externePartnerId` to a partner elsewhere), it is a
///   [`EuropaceError::Protocol`]: that partner must not be used as a Tippgeber under this parent.
/// - Update: `PATCH {partner_url}/v2/partner/{id}` (`application/json`) with only the changed
///   attributes, in Partnermanagement's names (Europace changes only the attributes sent); any
///   2xx is success (the partner in the answer is not read). Needs `partner:plakette:schreiben`.
///
/// Every call carries the Bearer token of the partner scope, `X-TraceId` and `traceparent`. All
/// three operations are safe to repeat (a `PATCH` of the same attributes leaves the same
/// partner), so [`EuropaceError::Unavailable`] (5xx, 429, connection errors, timeouts) is
/// retried with jittered backoff honouring `Retry-After`, up to [`RetryPolicy::max_attempts`]; a
/// 401 drops the token and sends once more with a fresh one; any other 4xx is
/// [`EuropaceError::Rejected`]. [`EuropaceError::InDoubt`] is never returned.
#[derive(Debug, Clone)]
pub struct PartnerApi {
    http: crate::http::PerThreadClient,
    root: Url,
    tokens: TokenCache,
    retry: RetryPolicy,
    observer: Observer,
}

/// A successful (2xx) answer, not yet reported to the observer: the caller reports it once it
/// has read the body ([`PartnerApi::settle`]), so an unreadable one counts as `protocol`.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
    target: CallTarget,
    started: Instant,
}

/// Outcome of one request.
enum Once {
    Success(Answer),
    Unauthorized,
    Failed(EuropaceError),
}

impl PartnerApi {
    /// An adapter sending through `http` (configured by [`crate::EuropaceClient::new`]) with tokens
    /// from `tokens`. `config.partner_url` must be an `http`/`https` URL.
    pub(crate) fn new(
        http: crate::http::PerThreadClient,
        config: &EuropaceConfig,
        tokens: TokenCache,
    ) -> Self {
        Self {
            http,
            root: config.partner_url.clone(),
            tokens,
            retry: config.retry,
            observer: Observer(config.observer.clone()),
        }
    }

    /// Reports the exchange that brought `answer` as `result` says, and passes `result` on.
    fn settle<T>(
        &self,
        answer: &Answer,
        result: Result<T, EuropaceError>,
    ) -> Result<T, EuropaceError> {
        self.observer.result(answer.target, answer.started, result)
    }

    /// The token cache this adapter uses (partner scope).
    #[must_use]
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// `{root}/v2/{segments…}`, every segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = append_path(&self.root, "/v2");
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends the request `build` makes, with token and trace, retrying what may be retried.
    /// Every failed exchange is reported to the observer as `target`; the successful one is
    /// reported by the caller ([`Self::settle`]).
    async fn call(
        &self,
        target: CallTarget,
        operation: &'static str,
        trace: &TraceId,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, EuropaceError> {
        let attempts = http::max_attempts(&self.retry);
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            let token = self.tokens.token(trace).await?;
            match self
                .send_once(target, operation, &token, trace, &build)
                .await
            {
                Once::Success(answer) => return Ok(answer),
                Once::Unauthorized if !refreshed => {
                    tracing::info!(
                        trace = %trace,
                        operation,
                        "Europace answered 401, refreshing the token and sending once more"
                    );
                    self.tokens.invalidate(&token);
                    refreshed = true;
                }
                Once::Unauthorized => {
                    tracing::warn!(trace = %trace, operation, "Europace answered 401 again");
                    return Err(EuropaceError::rejected(StatusCode::UNAUTHORIZED.as_u16()));
                }
                Once::Failed(EuropaceError::Unavailable {
                    reason,
                    retry_after,
                }) if attempt < attempts => {
                    let wait = http::backoff(&self.retry, attempt, retry_after);
                    tracing::warn!(
                        trace = %trace,
                        operation,
                        attempt,
                        reason = %reason,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "Europace call failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Once::Failed(error) => {
                    tracing::warn!(trace = %trace, operation, attempt, error = %error, "Europace call failed");
                    return Err(error);
                }
            }
        }
    }

    /// One exchange; a failed one is reported to the observer here.
    async fn send_once(
        &self,
        target: CallTarget,
        operation: &'static str,
        token: &AccessToken,
        trace: &TraceId,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Once {
        let started = Instant::now();
        let once = self
            .exchange(target, operation, token, trace, build, started)
            .await;
        match &once {
            Once::Success(_) => {}
            Once::Unauthorized => self
                .observer
                .observe(target, CallOutcome::Rejected, started),
            Once::Failed(error) => {
                self.observer
                    .observe(target, CallOutcome::of_error(error), started);
            }
        }
        once
    }

    async fn exchange(
        &self,
        target: CallTarget,
        operation: &'static str,
        token: &AccessToken,
        trace: &TraceId,
        build: &impl Fn() -> reqwest::RequestBuilder,
        started: Instant,
    ) -> Once {
        let sent = build()
            .header(AUTHORIZATION, token.authorization())
            .header(TRACE_HEADER, http::trace_header(trace))
            .header(TRACEPARENT_HEADER, http::traceparent(trace))
            .header(ACCEPT, "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Once::Failed(EuropaceError::Unavailable {
                    reason: format!("{operation} failed: {}", http::describe(&error)),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            return match http::read_body(response).await {
                Ok(body) => Once::Success(Answer {
                    status,
                    location,
                    body,
                    target,
                    started,
                }),
                Err(BodyError::Transport(error)) => Once::Failed(EuropaceError::Unavailable {
                    reason: format!("{operation} answer lost: {}", http::describe(&error)),
                    retry_after: None,
                }),
                Err(BodyError::TooLarge) => Once::Failed(protocol(operation, "answer too large")),
            };
        }
        if status == StatusCode::UNAUTHORIZED {
            return Once::Unauthorized;
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Once::Failed(EuropaceError::Unavailable {
                reason: format!("{operation} answered {}", status.as_u16()),
                retry_after: http::retry_after(response.headers()),
            });
        }
        Once::Failed(EuropaceError::rejected(status.as_u16()))
    }

    /// The parent of partner `partner_id`; `Ok(None)` when Europace names none or does not let us
    /// see the partner (then it is not under any of our parents).
    async fn parent_of(
        &self,
        partner_id: &str,
        trace: &TraceId,
    ) -> Result<Option<String>, EuropaceError> {
        let url = self.url(&["partner", partner_id]);
        match self
            .call(CallTarget::PartnerLookup, "partner details", trace, || {
                self.http.get().get(url.clone())
            })
            .await
        {
            Ok(answer) => {
                let details: Result<PartnerDetails, _> = serde_json::from_slice(&answer.body)
                    .map_err(|_| protocol("partner details", "answer unreadable"));
                let details = self.settle(&answer, details)?;
                Ok(details.parent.and_then(|parent| parent.partner_id))
            }
            Err(EuropaceError::Rejected {
                status: 403 | 404, ..
            }) => {
                tracing::info!(
                    trace = %trace,
                    partner_id,
                    "partner found by externePartnerId is not visible to us; ignoring its parent"
                );
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl PartnerDirectory for PartnerApi {
    async fn find_by_externe_partner_id(
        &self,
        externe_partner_id: &str,
        trace: &TraceId,
    ) -> Result<Vec<PartnerRecord>, EuropaceError> {
        let mut url = self.url(&["partners"]);
        url.query_pairs_mut()
            .append_pair("externePartnerId", externe_partner_id);
        let answer = self
            .call(CallTarget::PartnerLookup, "partner lookup", trace, || {
                self.http.get().get(url.clone())
            })
            .await?;
        let found = serde_json::from_slice::<FoundPartners>(&answer.body)
            .map_err(|_| protocol("partner lookup", "answer unreadable"));
        let found = self.settle(&answer, found)?;
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        for hit in found.partners {
            if hit.partner_id.is_empty() || !seen.insert(hit.partner_id.clone()) {
                continue;
            }
            let parent_partner_id = self.parent_of(&hit.partner_id, trace).await?;
            records.push(PartnerRecord {
                partner_id: hit.partner_id,
                parent_partner_id,
            });
        }
        tracing::debug!(trace = %trace, hits = records.len(), "partner lookup done");
        Ok(records)
    }

    async fn create_tippgeber(
        &self,
        parent_partner_id: &str,
        externe_partner_id: &str,
        tippgeber: &Tippgeber,
        trace: &TraceId,
    ) -> Result<String, EuropaceError> {
        let url = self.url(&["partner", parent_partner_id, "untergeordnete"]);
        let body = create_body(externe_partner_id, tippgeber);
        let answer = self
            .call(CallTarget::PartnerCreate, "partner create", trace, || {
                self.http.get().post(url.clone()).json(&body)
            })
            .await?;
        let result = Self::created_partner_id(&answer, &url, parent_partner_id, trace);
        let partner_id = self.settle(&answer, result)?;
        tracing::info!(
            trace = %trace,
            partner_id = %partner_id,
            parent = parent_partner_id,
            status = answer.status.as_u16(),
            existed = answer.status == StatusCode::RESET_CONTENT,
            "Tippgeber partner created or found"
        );
        Ok(partner_id)
    }

    async fn update_tippgeber(
        &self,
        partner_id: &str,
        update: &TippgeberUpdate,
        trace: &TraceId,
    ) -> Result<(), EuropaceError> {
        let url = self.url(&["partner", partner_id]);
        let body = update_body(update);
        let answer = self
            .call(CallTarget::PartnerUpdate, "partner update", trace, || {
                self.http.get().patch(url.clone()).json(&body)
            })
            .await?;
        self.settle(&answer, Ok(()))?;
        // `update`'s Debug names the attributes, never their values.
        tracing::debug!(
            trace = %trace,
            partner_id,
            attributes = ?update,
            status = answer.status.as_u16(),
            "Tippgeber partner updated"
        );
        Ok(())
    }
}

impl PartnerApi {
    /// The partnerId of a creation answer: from its body, else from `Location`; a partner under
    /// another parent than `parent_partner_id` is a [`EuropaceError::Protocol`].
    fn created_partner_id(
        answer: &Answer,
        url: &Url,
        parent_partner_id: &str,
        trace: &TraceId,
    ) -> Result<String, EuropaceError> {
        let created: CreatedPartner = serde_json::from_slice(&answer.body).unwrap_or_default();
        if let Some(actual_parent) = created.parent.and_then(|parent| parent.partner_id)
            && actual_parent != parent_partner_id
        {
            // Europace matched the externePartnerId to a partner elsewhere in the hierarchy
            // (e.g. the Tippgeber created under the other environment's parent). Returning it
            // would attach the case to a Tippgeber outside this parent.
            tracing::error!(
                trace = %trace,
                partner_id = ?created.partner_id,
                requested_parent = parent_partner_id,
                actual_parent = %actual_parent,
                status = answer.status.as_u16(),
                "Europace answered the partner creation with a partner under another parent"
            );
            return Err(protocol(
                "partner create",
                "answered partner sits under another parent",
            ));
        }
        created
            .partner_id
            .filter(|id| !id.is_empty())
            .or_else(|| {
                answer
                    .location
                    .as_deref()
                    .and_then(|location| partner_id_from_location(url, location))
            })
            .ok_or_else(|| protocol("partner create", "answer names no partnerId"))
    }
}

fn protocol(operation: &str, what: &str) -> EuropaceError {
    EuropaceError::Protocol {
        reason: format!("{operation}: {what}"),
    }
}

/// Partnermanagement's name of a Tippgeber attribute.
const fn wire_name(attribute: TippgeberAttribute) -> &'static str {
    match attribute {
        TippgeberAttribute::Anrede => "anrede",
        TippgeberAttribute::Vorname => "vorname",
        TippgeberAttribute::Nachname => "nachname",
        TippgeberAttribute::Telefon => "telefonnummer",
        TippgeberAttribute::Email => "email",
    }
}

/// The JSON of a partner update: exactly the attributes of `update`, in Partnermanagement's names
/// (`telefon` is sent as `telefonnummer`). Nothing else: Europace overwrites only what is sent.
fn update_body(update: &TippgeberUpdate) -> serde_json::Value {
    serde_json::Value::Object(
        TippgeberAttribute::ALL
            .into_iter()
            .filter_map(|attribute| {
                update.value(attribute).map(|value| {
                    (
                        wire_name(attribute).to_owned(),
                        serde_json::Value::String(value.to_owned()),
                    )
                })
            })
            .collect(),
    )
}

/// The JSON of a new PERSON partner, in Partnermanagement's names (`telefon` is sent as
/// `telefonnummer`); absent fields are left out. The `externeMitarbeiternummer` is not sent: it
/// is part of `externe_partner_id`.
fn create_body(externe_partner_id: &str, tippgeber: &Tippgeber) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            body.insert(key.to_owned(), serde_json::Value::String(value.to_owned()));
        }
    };
    put("typ", Some("PERSON"));
    put("anrede", tippgeber.anrede.map(anrede_wire));
    put("vorname", Some(&tippgeber.vorname));
    put("nachname", Some(&tippgeber.nachname));
    put("email", tippgeber.email.as_deref());
    put("telefonnummer", tippgeber.telefon.as_deref());
    put("externePartnerId", Some(externe_partner_id));
    serde_json::Value::Object(body)
}

/// The last non-empty path segment of `location`, resolved against the request URL.
fn partner_id_from_location(request: &Url, location: &str) -> Option<String> {
    let url = request.join(location).ok()?;
    url.path_segments()?
        .rfind(|segment| !segment.is_empty())
        .map(str::to_owned)
}

#[derive(Deserialize)]
struct FoundPartners {
    #[serde(default)]
    partners: Vec<FoundPartner>,
}

#[derive(Deserialize)]
struct FoundPartner {
    #[serde(rename = "partnerId")]
    partner_id: String,
}

#[derive(Deserialize)]
struct PartnerId {
    #[serde(rename = "partnerId")]
    partner_id: Option<String>,
}

/// The parts of a create answer we read (absent or unreadable body: all `None`).
#[derive(Deserialize, Default)]
struct CreatedPartner {
    #[serde(rename = "partnerId")]
    partner_id: Option<String>,
    parent: Option<PartnerId>,
}

#[derive(Deserialize)]
struct PartnerDetails {
    parent: Option<PartnerId>,
}

#[cfg(test)]
mod tests {
    use vorgang_core::model::Anrede;

    use super::*;

    #[test]
    fn location_fallback() -> Result<(), url::ParseError> {
        let request = Url::parse("http://host/v2/partner/TGP01/untergeordnete")?;
        assert_eq!(
            partner_id_from_location(&request, "/v2/partner/ABC12").as_deref(),
            Some("ABC12")
        );
        assert_eq!(
            partner_id_from_location(&request, "https://api.europace.de/v2/partner/XYZ98/")
                .as_deref(),
            Some("XYZ98")
        );
        Ok(())
    }

    fn tippgeber() -> Tippgeber {
        Tippgeber {
            externe_mitarbeiternummer: "1".into(),
            vorname: "V".into(),
            nachname: "N".into(),
            anrede: None,
            telefon: None,
            email: Some("e@example.org".into()),
        }
    }

    #[test]
    fn create_body_omits_absent_fields() {
        let body = create_body("c-1", &tippgeber());
        assert_eq!(
            body,
            serde_json::json!({"typ":"PERSON","vorname":"V","nachname":"N",
                "email":"e@example.org","externePartnerId":"c-1"})
        );
    }

    #[test]
    fn create_body_uses_europaces_names() {
        let body = create_body(
            "c-1",
            &Tippgeber {
                anrede: Some(Anrede::Herr),
                telefon: Some("+49 30 1".into()),
                ..tippgeber()
            },
        );
        assert_eq!(body["anrede"], "HERR");
        assert_eq!(body["telefonnummer"], "+49 30 1");
        assert!(body.get("telefon").is_none());
        assert!(body.get("externeMitarbeiternummer").is_none());
        let frau = create_body(
            "c-1",
            &Tippgeber {
                anrede: Some(Anrede::Frau),
                ..tippgeber()
            },
        );
        assert_eq!(frau["anrede"], "FRAU");
    }

    #[test]
    fn update_body_has_exactly_the_changed_attributes_in_europaces_names() {
        let phone = TippgeberUpdate {
            telefon: Some("030 2".into()),
            ..TippgeberUpdate::default()
        };
        assert_eq!(
            update_body(&phone),
            serde_json::json!({"telefonnummer": "030 2"})
        );
        let all = TippgeberUpdate::all_of(&Tippgeber {
            anrede: Some(Anrede::Frau),
            telefon: Some("030 2".into()),
            ..tippgeber()
        });
        assert_eq!(
            update_body(&all),
            serde_json::json!({"anrede": "FRAU", "vorname": "V", "nachname": "N",
                "telefonnummer": "030 2", "email": "e@example.org"})
        );
    }
}
