//! `POST /vorgang`, `GET /vorgang` (the caller's imports, a page at a time) and
//! `GET /vorgang/{id}`.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt as _;
use i18n::{Detail, Malformed, Title};
use serde::Serialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Required, Schema};
use uuid::Uuid;
use vorgang_core::{
    FailureKind, ImportCursor, ImportError, ImportQuery, ImportRecord, ImportStatus, NewImport,
};
use vorgang_model::{Environment, MAX_BODY_BYTES, RequestError, parse_import_request};

use crate::problem::{ImportProblem, Problem};
use crate::rate_limit::{Decision, Limited, RateLimitState};
use crate::routes::caller::Caller;
use crate::state::AppState;

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The header (value `true`) of an answer given back for an earlier request with the same
/// `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The body of `POST /vorgang` in the OpenAPI document: the component `ImportRequest`.
///
/// Documentation only. A partner's body is not a Rust type (what is inside `vorgang` is forwarded
/// as sent, unknown members included), so its schema is not derived: the `openapi` module renders
/// the component from `vorgang-model`'s rules, which the validator checks.
pub struct ImportRequestBody;

impl utoipa::PartialSchema for ImportRequestBody {
    fn schema() -> RefOr<Schema> {
        // Replaced by the rendered component when the document is assembled.
        Ref::from_schema_name(<Self as utoipa::ToSchema>::name()).into()
    }
}

impl utoipa::ToSchema for ImportRequestBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ImportRequest")
    }
}

/// The `Idempotency-Key` header of `POST /vorgang` in the OpenAPI document (documentation only;
/// `create` reads it). Declared by hand: utoipa documents an optional header
/// parameter as nullable, and a header cannot be null.
pub struct IdempotencyKeyHeader;

impl IntoParams for IdempotencyKeyHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_IDEMPOTENCY_KEY_LEN))
            .pattern(Some("^[!-~]+$"));
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "1 to 255 visible ASCII characters, unique per request you mean. The same \
                     key with the same body and environment gets the first answer back (201, \
                     422, 502, 504 replayed; after 503 a new attempt under the same \
                     drkleinrkVorgangsnummer); with another body 422; while the first request \
                     runs 409.",
                ))
                .schema(Some(schema))
                .example(Some(serde_json::json!(
                    "0b3c2f1e-7d7a-4c5e-9f51-3c1f0e6a9b42"
                )))
                .build(),
            ParameterBuilder::new()
                .name("Prefer")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "`respond-async` (RFC 7240): if Europace cannot take the import now (5xx, \
                     429, unreachable; nothing was created), answer 202 with `importStatus` \
                     `QUEUED` instead of 503; the service delivers it in the background and \
                     reports the outcome to your webhook. An import that completes at once is \
                     answered 201 as usual.",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .example(Some(serde_json::json!("respond-async")))
                .build(),
        ]
    }
}

/// The published example request (`examples/seed-request.json`), the example of the request
/// body in the OpenAPI document.
const SEED_REQUEST: &str = include_str!("../../../../examples/seed-request.json");

/// [`SEED_REQUEST`] as JSON (`null` if it were not JSON; a test proves it is).
fn seed_request() -> serde_json::Value {
    serde_json::from_str(SEED_REQUEST).unwrap_or_default()
}

/// Seconds a partner should wait before retrying after a 503.
const RETRY_AFTER_S: &str = "30";

/// The 201 answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportCreated {
    /// Our Vorgangsnummer (UUID).
    pub drkleinrk_vorgangsnummer: Uuid,
    /// Europace's Vorgangsnummer.
    pub europace_vorgangsnummer: Option<String>,
    /// CRM id of the Finanzierungsberater case.
    pub crm_kennung: Option<String>,
    /// Europace's messages, then ours.
    pub messages: Vec<String>,
}

/// The `GET /vorgang/{id}` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportView {
    /// Our Vorgangsnummer.
    pub drkleinrk_vorgangsnummer: Uuid,
    /// Current state.
    pub status: ImportStatus,
    /// Europace environment.
    pub environment: Environment,
    /// Europace's Vorgangsnummer, once imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub europace_vorgangsnummer: Option<String>,
    /// CRM id, once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm_kennung: Option<String>,
    /// Messages.
    pub messages: Vec<String>,
    /// When accepted (RFC 3339).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&ImportRecord> for ImportView {
    fn from(record: &ImportRecord) -> Self {
        Self {
            drkleinrk_vorgangsnummer: record.id,
            status: record.status,
            environment: record.environment,
            europace_vorgangsnummer: record.europace_vorgangsnummer.clone(),
            crm_kennung: record.crm_kennung.clone(),
            messages: record.messages.clone(),
            created_at: record.created_at,
        }
    }
}

/// Parses the query string: only `environment` (once) is allowed.
fn environment_of(request: &HttpRequest) -> Result<Environment, Problem> {
    let mut environment = None;
    for (name, value) in url::form_urlencoded::parse(request.query_string().as_bytes()) {
        if name != "environment" {
            return Err(bad_query(Detail::UnknownImportParameter));
        }
        if environment.is_some() {
            return Err(bad_query(Detail::ParameterRepeated {
                name: "environment",
            }));
        }
        environment = Some(
            value
                .parse::<Environment>()
                .map_err(|_| bad_query(Detail::BadEnvironment))?,
        );
    }
    Ok(environment.unwrap_or_default())
}

/// JSON, or JSON labelled as a form (as in the published example).
fn check_content_type(request: &HttpRequest) -> Result<(), Problem> {
    let unsupported = || {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            Title::UnsupportedMediaType,
            Detail::UnsupportedMediaType,
        )
        .with_header(
            header::HeaderName::from_static("accept-post"),
            "application/json",
        )
    };
    let value = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/x-www-form-urlencoded" => Ok(()),
        _ => Err(unsupported()),
    }
}

fn idempotency_key_of(request: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(value) = request.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let bad = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad-idempotency-key",
            Title::BadIdempotencyKey,
            Detail::BadIdempotencyKey {
                max_len: MAX_IDEMPOTENCY_KEY_LEN,
            },
        )
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        Title::PayloadTooLarge,
        Detail::TooLarge {
            max_bytes: MAX_BODY_BYTES,
        },
    )
}

/// Reads the body up to the limit, refusing larger ones before reading them when announced.
async fn read_body(request: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, Problem> {
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > MAX_BODY_BYTES
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Problem::malformed(Malformed::Incomplete))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `builder` with what every answer naming a stored import carries: its `Location` and
/// `Cache-Control: no-store` (the answer is about one request's import, never to be cached).
fn located(mut builder: HttpResponseBuilder, record: &ImportRecord) -> HttpResponseBuilder {
    builder
        .insert_header((header::LOCATION, format!("/vorgang/{}", record.id)))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// Maps a stored import to its HTTP answer.
#[must_use]
pub fn answer(record: &ImportRecord) -> HttpResponse {
    use actix_web::ResponseError as _;
    match record.status {
        ImportStatus::Completed | ImportStatus::Imported => {
            located(HttpResponse::Created(), record).json(ImportCreated {
                drkleinrk_vorgangsnummer: record.id,
                europace_vorgangsnummer: record.europace_vorgangsnummer.clone(),
                crm_kennung: record.crm_kennung.clone(),
                messages: record.messages.clone(),
            })
        }
        ImportStatus::Failed => {
            let kind = record.failure.as_ref().map(|f| f.kind);
            let problem = if kind == Some(FailureKind::Unavailable) {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "europace-unavailable",
                    Title::EuropaceUnavailable,
                    Detail::EuropaceUnavailable,
                )
                .with_header(header::RETRY_AFTER, RETRY_AFTER_S)
            } else {
                // Europace's reasons, as it sent them (stored with the import, so a replay
                // carries them too); an empty list when it gave none.
                let messages = record
                    .failure
                    .as_ref()
                    .map(|f| f.europace_messages.as_slice())
                    .unwrap_or_default();
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "europace-rejected",
                    Title::EuropaceRejected,
                    Detail::EuropaceRejected,
                )
                .with_europace_messages(messages)
            };
            problem
                .for_import(record.id, ImportStatus::Failed)
                .error_response()
        }
        ImportStatus::InDoubt => in_doubt(record.id).error_response(),
        ImportStatus::Queued => queued(record),
        ImportStatus::Accepted | ImportStatus::PartnerReady | ImportStatus::Sending => {
            stored_unfinished(record)
        }
    }
}

/// The 202 answer for an import kept `QUEUED` (`Prefer: respond-async`, Europace unavailable).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportQueued {
    /// Our Vorgangsnummer (UUID).
    pub drkleinrk_vorgangsnummer: Uuid,
    /// Always `QUEUED`.
    pub import_status: QueuedStatus,
}

/// The one state of a queued answer (its own type, so the document's `oneOf` of the 202 bodies
/// tells them apart: an unfinished import is never `QUEUED`).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub enum QueuedStatus {
    /// Kept for re-delivery.
    #[serde(rename = "QUEUED")]
    Queued,
}

/// The two bodies of a 202 answer to `POST /vorgang`, for the OpenAPI document (`oneOf`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ImportAccepted {
    /// Queued (`Prefer: respond-async`).
    Queued(ImportQueued),
    /// Stored but unfinished.
    Pending(ImportPending),
}

/// The header naming the preference honoured (RFC 7240 §3).
const PREFERENCE_APPLIED: &str = "preference-applied";

/// 202 for a queued import: stored, delivered in the background, the outcome by webhook and at
/// `Location`.
fn queued(record: &ImportRecord) -> HttpResponse {
    let mut response = located(HttpResponse::Accepted(), record)
        .insert_header((PREFERENCE_APPLIED, "respond-async"))
        .json(ImportQueued {
            drkleinrk_vorgangsnummer: record.id,
            import_status: QueuedStatus::Queued,
        });
    // Like every 202 of this endpoint (the document promises it for the status).
    crate::language::mark(response.headers_mut(), crate::language::current());
    response
}

/// Whether the request prefers `respond-async` (RFC 7240: `Prefer` headers, comma-separated
/// preferences, each `token[=value]` with `;` parameters; tokens compared case-insensitively).
fn prefers_async(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::HeaderName::from_static("prefer"))
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            let name = preference.split([';', '=']).next().unwrap_or_default();
            name.trim().eq_ignore_ascii_case("respond-async")
        })
}

/// The 202 answer for an import that is stored but not finished when the request ends.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportPending {
    /// Our Vorgangsnummer (UUID).
    pub drkleinrk_vorgangsnummer: Uuid,
    /// The state it was last stored in, e.g. `ACCEPTED`.
    pub import_status: ImportStatus,
    /// What happens next, in the answer's language (see `Content-Language`).
    pub detail: String,
}

/// An import that is stored but not finished: our database failed mid-way, or another replica
/// took the import over and has not finished it within the wait. It WILL be finished in the
/// background (resume), so the answer must not invite a resend: a partner without an
/// `Idempotency-Key` who retries a 5xx would create a second case. Hence `202 Accepted` (HTTP's
/// "accepted for processing, not completed"), naming the import and its state.
fn stored_unfinished(record: &ImportRecord) -> HttpResponse {
    let lang = crate::language::current();
    let mut response = located(HttpResponse::Accepted(), record).json(ImportPending {
        drkleinrk_vorgangsnummer: record.id,
        import_status: record.status,
        detail: Detail::ImportPending.text(lang).into_owned(),
    });
    crate::language::mark(response.headers_mut(), lang);
    response
}

fn in_doubt(id: Uuid) -> Problem {
    Problem::new(
        StatusCode::GATEWAY_TIMEOUT,
        "import-in-doubt",
        Title::ImportInDoubt,
        Detail::ImportInDoubt,
    )
    .for_import(id, ImportStatus::InDoubt)
}

/// 409: the import of this `Idempotency-Key` is still running; `status` is where it stands.
fn in_progress(id: Uuid, status: ImportStatus) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "import-in-progress",
        Title::ImportInProgress,
        Detail::ImportInProgress,
    )
    .with_header(header::RETRY_AFTER, "1")
    .for_import(id, status)
}

/// Import a Vorgang
///
/// Creates the Tippgeber in Europace Partnermanagement (or reuses it, sending its changed data
/// first), imports the Vorgang into KreditSmart through Europace's KEX Vorgang Import API and
/// answers with our `drkleinrkVorgangsnummer`, Europace's Vorgangsnummer and the CRM id.
///
/// The body is JSON (at most 256 KiB, nesting at most 32 levels), sent as `application/json`.
/// `null` counts as absent. Unknown members are accepted; each is named in `messages` as
/// `WARN unknown-field <pointer>`. `WARN tippgeber-not-updated` in `messages`: the Tippgeber's
/// changed data could not be sent to Europace; the import went through, the next one of that
/// Tippgeber sends it again.
///
/// **Compatibility:** `Content-Type: application/x-www-form-urlencoded` is accepted too, but
/// only as a label on the same JSON text (the published example sends it so). A real form body
/// (`a=1&b=2`) is not JSON and answers 400. New clients send `application/json`.
///
/// With `Idempotency-Key`, a retried request gets the first answer back for at least 24 hours.
///
/// **Rate limit:** each client may send `limits.imports_per_minute` requests per minute (600
/// unless configured otherwise; a token bucket holding one minute's quota, per replica). Every
/// answer to an authenticated request carries `RateLimit-Limit` (the quota), `RateLimit-Remaining`
/// (requests you may still send now) and `RateLimit-Reset` (seconds until the full quota is
/// back, at the latest); beyond the quota the answer is 429 with `Retry-After`. Every request
/// counts, whatever its answer, except a 429.
#[utoipa::path(
    post,
    path = "/vorgang", operation_id = "importVorgang",
    tag = "Vorgang",
    params(
        ("environment" = Option<Environment>, Query,
            description = "`TEST` (default: Europace's test mode) or `PRODUCTION` (real business). No other query parameter is allowed."),
        IdempotencyKeyHeader,
    ),
    // Only `application/json` is declared, although the JSON text is accepted under the form
    // label too (see the description). Declaring the form label with this schema told every
    // schema-driven client (schemathesis, openapi-generator, Swagger UI's "try it out") to
    // encode the object as a real form (`vorgang%5B...%5D=...`), which is not JSON and answers
    // 400. The OpenAPI 3.1 alternative, a string schema with `contentMediaType:
    // application/json` and `contentSchema` under the form label, is legal, but it does not make
    // clients do the right thing: schemathesis 4 generates arbitrary JSON text for it (it does
    // not generate from `contentSchema`), which the service rightly refuses, and code generators
    // turn it into an opaque string parameter. Declaring only the media type new clients should
    // use, and naming the label in the description, is both honest and safe.
    request_body(
        description = "The Vorgang (KEX), the Tippgeber, comments and the partner's data, as JSON. \
            (`application/x-www-form-urlencoded` is accepted as a label on the same JSON text, for \
            compatibility with the published example; it is not a form.)",
        content(
            (ImportRequestBody = "application/json", example = seed_request),
        )
    ),
    responses(
        (status = 201, description = "Imported.", body = ImportCreated,
            headers(
                ("Location" = String, description = "`/vorgang/{drkleinrkVorgangsnummer}` (relative)"),
                ("Cache-Control" = String, description = "`no-store`"),
                ("RateLimit-Limit" = u32, description = "Your quota: requests per minute (on every answer to an authenticated request while the limit is on)."),
                ("RateLimit-Remaining" = u32, description = "Requests you may still send now."),
                ("RateLimit-Reset" = u64, description = "Seconds until your full quota is available again, at the latest."),
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key` (so are replayed 502 and 504 answers); absent when this request was processed."),
            ),
            example = json!({"drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "europaceVorgangsnummer": "AB1234", "crmKennung": "DKR-AB1267", "messages": ["WARN unknown-field /vorgang/antragsteller1/foo"]})),
        (status = 202, description = "Accepted, not finished. Either (with `Prefer: respond-async`, body `ImportQueued`, header `Preference-Applied: respond-async`) Europace could not take the import now (5xx, 429, unreachable; nothing was created): it is `QUEUED` and delivered in the background until `COMPLETED`, `FAILED` or `IN_DOUBT`, reported to your webhook (`vorgang.completed`, `vorgang.failed`, `vorgang.in_doubt`) and at `Location`. Or (body `ImportPending`) it was stored but not finished when the request ended (our database failed mid-way, or another replica is finishing it): it WILL be finished in the background. In both cases: do not send it again; `GET` the `Location` for the outcome.", body = ImportAccepted,
            headers(
                ("Location" = String, description = "`/vorgang/{drkleinrkVorgangsnummer}` (relative)"),
                ("Cache-Control" = String, description = "`no-store`"),
                ("Preference-Applied" = String, description = "`respond-async` when the import was queued."),
            ),
            example = json!({"drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "importStatus": "ACCEPTED", "detail": "the import is stored and will be finished in the background; do not send it again; GET its Location for the outcome"})),
        (status = 400, description = "Not JSON, not an object, duplicate keys, nesting deeper than 32, invalid UTF-8; a bad query (`environment`), a bad `Idempotency-Key`; more than one `Authorization` header (`duplicate-authorization`).",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/malformed-request", "title": "Malformed request", "status": 400, "detail": "duplicate key in the object at /tippgeber at line 12 column 5"})),
        (status = 401, description = "No, an invalid or an expired access token, or a revoked client.",
            body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"vorgang\"` without a token; `Bearer realm=\"vorgang\", error=\"invalid_token\"` for a bad one.")),
            example = json!({"type": "https://api.drkleinservice.de/problems/unauthorized", "title": "Unauthorized", "status": 401, "detail": "A bearer access token is required."})),
        (status = 403, description = "The token lacks the scope `drkleinrk-api/vorgang:import`.",
            body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"vorgang\", error=\"insufficient_scope\", scope=\"drkleinrk-api/vorgang:import\"`")),
            example = json!({"type": "https://api.drkleinservice.de/problems/insufficient-scope", "title": "Forbidden", "status": 403, "detail": "The access token lacks the required scope."})),
        (status = 409, description = "An import with this `Idempotency-Key` is still being processed: retry shortly.",
            body = ImportProblem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait (1).")),
            example = json!({"type": "https://api.drkleinservice.de/problems/import-in-progress", "title": "Import in progress", "status": 409, "detail": "an import with this Idempotency-Key is still being processed; retry shortly", "drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "importStatus": "PARTNER_READY"})),
        (status = 413, description = "The body is larger than 256 KiB.",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/payload-too-large", "title": "Payload too large", "status": 413, "detail": "the body must not exceed 262144 bytes"})),
        (status = 415, description = "Content type missing or neither `application/json` nor `application/x-www-form-urlencoded`.",
            body = Problem, content_type = "application/problem+json",
            headers(("Accept-Post" = String, description = "`application/json`")),
            example = json!({"type": "https://api.drkleinservice.de/problems/unsupported-media-type", "title": "Unsupported media type", "status": 415, "detail": "send the JSON body as application/json (application/x-www-form-urlencoded is accepted too)"})),
        (status = 422, description = "Validation failed: `errors` lists every violation. Or (without `errors`, type `idempotency-key-reused`) the `Idempotency-Key` was already used with another body or environment.",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/validation-failed", "title": "Validation failed", "status": 422, "detail": "2 field(s) violate the rules; see errors", "errors": [{"pointer": "/tippgeber/anrede", "detail": "must be one of: HERR, FRAU"}, {"pointer": "/vorgang/finanzbedarf/finanzierungswunsch/laufzeitInMonaten", "detail": "must be between 1 and 120"}]})),
        (status = 429, description = "Over your rate limit (`limits.imports_per_minute` requests per minute): nothing was read or stored. Retry after `Retry-After` seconds.",
            body = Problem, content_type = "application/problem+json",
            headers(
                ("Retry-After" = u64, description = "Seconds until the next request is let through (at least 1)."),
                ("RateLimit-Limit" = u32, description = "Your quota: requests per minute."),
                ("RateLimit-Remaining" = u32, description = "`0`."),
                ("RateLimit-Reset" = u64, description = "Seconds until your full quota is available again, at the latest."),
            ),
            example = json!({"type": "https://api.drkleinservice.de/problems/rate-limited", "title": "Too many requests", "status": 429, "detail": "this client may send 600 imports per minute; retry after Retry-After seconds"})),
        (status = 502, description = "Europace refused the import: nothing was created (`importStatus` `FAILED`). `europaceMessages` lists Europace's reasons exactly as Europace sent them (empty when it gave none); they are also the first entries of the import's `messages`. Our operators are alerted; a retry with the same `Idempotency-Key` replays this answer, messages included.",
            body = ImportProblem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/europace-rejected", "title": "Europace rejected the import", "status": 502, "detail": "Europace refused our request; nothing was created. Europace's reasons are in europaceMessages. Our operators have been alerted.", "drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "importStatus": "FAILED", "europaceMessages": ["Die Postleitzahl des Antragstellers ist ungültig."]})),
        (status = 503, description = "Europace unreachable or overloaded (`europace-unavailable`, `importStatus` `FAILED`: nothing was created), or our database unavailable (`service-unavailable`, nothing stored). Retry after `Retry-After` seconds, with the same `Idempotency-Key`.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait.")),
            example = json!({"type": "https://api.drkleinservice.de/problems/europace-unavailable", "title": "Europace unavailable", "status": 503, "detail": "Europace could not be reached or was overloaded; nothing was created. Retry later, with the same Idempotency-Key.", "drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "importStatus": "FAILED"})),
        (status = 504, description = "Europace's answer was lost after the import was sent: the case may exist (`importStatus` `IN_DOUBT`). Do not send it again; our operators resolve it, see `GET /vorgang/{drkleinrkVorgangsnummer}`.",
            body = ImportProblem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/import-in-doubt", "title": "Import outcome unknown", "status": 504, "detail": "Europace's answer was lost after the import was sent; the case may exist. Do not resend: our operators resolve it, see GET /vorgang/{id}.", "drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "importStatus": "IN_DOUBT"})),
    ),
    security(("oauth2" = ["drkleinrk-api/vorgang:import"]), ("bearerAuth" = []))
)]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    use actix_web::ResponseError as _;
    // The rate limit counts every request of an authenticated client, before anything of it is
    // read: a client flooding us with bodies that fail parsing or validation costs us (reading,
    // parsing, storing nothing) as much as valid ones, and is limited the same. Unauthenticated
    // requests never reach here (the `Caller` extractor answered 401/403), so only registered
    // clients ever get a bucket.
    let limit = match state.import_limiter.check(&caller.client_id) {
        Decision::Off => None,
        Decision::Allowed(limit) => Some(limit),
        Decision::Limited(limited) => {
            return with_rate_limit(rate_limited(limited).error_response(), Some(limited.state));
        }
    };
    let response = match accept(state, caller, request, payload).await {
        Ok(response) => response,
        Err(problem) => problem.error_response(),
    };
    with_rate_limit(response, limit)
}

/// The `RateLimit-*` headers on an answer of `POST /vorgang` (none when the limit is off).
fn with_rate_limit(mut response: HttpResponse, limit: Option<RateLimitState>) -> HttpResponse {
    if let Some(limit) = limit {
        for (name, value) in limit.headers() {
            if let Ok(value) = header::HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(header::HeaderName::from_static(name), value);
            }
        }
    }
    response
}

/// The 429 answer of a client over its rate limit.
fn rate_limited(limited: Limited) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        Title::RateLimited,
        Detail::RateLimited {
            per_minute: limited.state.limit,
        },
    )
    .with_header(header::RETRY_AFTER, limited.retry_after_s.to_string())
}

/// `POST /vorgang` once the caller is authenticated and within its rate limit.
async fn accept(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let environment = environment_of(&request)?;
    check_content_type(&request)?;
    let idempotency_key = idempotency_key_of(&request)?;
    let body = read_body(&request, payload).await?;
    let parsed = parse_import_request(&body).map_err(|error| match error {
        RequestError::Malformed(detail) => Problem::malformed(detail),
        RequestError::Invalid(violations) => Problem::validation(&violations),
    })?;
    let outcome = state
        .importer
        .submit(NewImport {
            client_id: &caller.client_id,
            environment,
            idempotency_key: idempotency_key.as_deref(),
            raw_body: &body,
            request: parsed,
            trace: crate::request_context::trace_of(&request),
            respond_async: prefers_async(&request),
        })
        .await;
    // `submit` already waited (bounded) for the outcome of an import another writer took over.
    match outcome {
        Ok(submitted) => {
            let record = submitted.record;
            state.metrics.observe_import(record.status.as_str());
            let mut response = answer(&record);
            if submitted.replayed {
                response.headers_mut().insert(
                    header::HeaderName::from_static(IDEMPOTENT_REPLAYED),
                    header::HeaderValue::from_static("true"),
                );
            }
            Ok(response)
        }
        Err(ImportError::IdempotencyKeyReused) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            Title::IdempotencyKeyReused,
            Detail::IdempotencyKeyReused,
        )),
        Err(ImportError::InProgress { id, status }) => Err(in_progress(id, status)),
        // The core logged the store error. A SENDING import may have reached Europace: the
        // resume makes it IN_DOUBT, so answer that now; every other state has its usual answer.
        Err(ImportError::Unfinished { record, .. }) => match record.status {
            ImportStatus::Sending => Err(in_doubt(record.id)),
            _ => Ok(answer(&record)),
        },
        Err(ImportError::Store(error)) => {
            tracing::error!(error = %error, "could not store an import");
            Err(Problem::unavailable(Detail::NothingStored))
        }
        Err(error @ (ImportError::NotFound | ImportError::WrongState(_))) => {
            tracing::error!(error = %error, "unexpected import state");
            Err(Problem::unavailable(Detail::ImportNotProcessed))
        }
    }
}

/// The state of one of your imports
///
/// Only the calling client's own imports are visible; any other id answers 404.
#[utoipa::path(
    get,
    path = "/vorgang/{drkleinrkVorgangsnummer}", operation_id = "getVorgang",
    tag = "Vorgang",
    params(("drkleinrkVorgangsnummer" = uuid::Uuid, Path, description = "Our Vorgangsnummer from the 201 answer.")),
    responses(
        (status = 200, description = "The import.", body = ImportView,
            headers(("Cache-Control" = String, description = "`no-store`")),
            example = json!({"drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "status": "COMPLETED", "environment": "TEST", "europaceVorgangsnummer": "AB1234", "crmKennung": "DKR-AB1267", "messages": [], "createdAt": "2026-11-25T10:15:00Z"})),
        (status = 400, description = "More than one `Authorization` header (`duplicate-authorization`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, an invalid or an expired access token.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 challenge."))),
        (status = 403, description = "The token lacks the scope.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 challenge."))),
        (status = 404, description = "No such import of this client.", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/not-found", "title": "Not found", "status": 404, "detail": "no such resource for this client"})),
        (status = 503, description = "Our database is unavailable.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("oauth2" = ["drkleinrk-api/vorgang:import"]), ("bearerAuth" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(Problem::not_found());
    };
    // The core answers another client's import as not found.
    match state.importer.get_for_client(&caller.client_id, id).await {
        Ok(record) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ImportView::from(&record))),
        Err(ImportError::NotFound) => Err(Problem::not_found()),
        Err(error) => {
            tracing::error!(error = %error, "could not read an import");
            Err(Problem::unavailable(Detail::DatabaseUnavailable))
        }
    }
}

/// Largest `limit` of `GET /vorgang`.
pub const MAX_LIST_LIMIT: u32 = 500;

/// Longest `cursor` accepted; ours are 80 characters.
const MAX_CURSOR_LEN: usize = 200;

/// The `GET /vorgang` answer: one page of the caller's imports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportList {
    /// The imports of this page, oldest first, each as `GET /vorgang/{drkleinrkVorgangsnummer}`
    /// shows it.
    pub items: Vec<ImportView>,
    /// The `cursor` of the next page (opaque); `null` on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
}

/// The text a cursor travels as: base64url (no padding) of the core's [`ImportCursor`] text.
/// Opaque to partners: only what we issued parses back.
fn encode_cursor(cursor: &ImportCursor) -> String {
    URL_SAFE_NO_PAD.encode(cursor.to_string())
}

fn decode_cursor(text: &str) -> Option<ImportCursor> {
    if text.len() > MAX_CURSOR_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
}

/// `since` as RFC 3339. A `+` of an offset that was not percent-encoded arrives as a space (form
/// decoding): read back as `+`, since no RFC 3339 time has a space there.
fn parse_since(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&text.replace(' ', "+")))
        .ok()
        .map(|time| time.with_timezone(&chrono::Utc))
}

fn bad_query(detail: Detail) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "bad-query",
        Title::BadQuery,
        detail,
    )
}

/// Parses the query of `GET /vorgang`: `status`, `since`, `limit`, `cursor`, each at most once,
/// nothing else. A problem names the parameter, never the value sent.
fn list_query_of(request: &HttpRequest) -> Result<ImportQuery, Problem> {
    const NAMES: [&str; 4] = ["status", "since", "limit", "cursor"];
    let mut query = ImportQuery::all();
    let mut seen = [false; NAMES.len()];
    for (name, value) in url::form_urlencoded::parse(request.query_string().as_bytes()) {
        let Some(index) = NAMES.iter().position(|known| *known == name) else {
            return Err(bad_query(Detail::UnknownListParameter));
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(bad_query(Detail::ParameterRepeated { name: NAMES[index] }));
        }
        match NAMES[index] {
            "status" => {
                let status = value.parse().map_err(|_| {
                    let names: Vec<&str> = ImportStatus::ALL.iter().map(|s| s.as_str()).collect();
                    bad_query(Detail::BadStatus {
                        values: names.join(", "),
                    })
                })?;
                query.status = Some(status);
            }
            "since" => {
                query.since = Some(parse_since(&value).ok_or_else(|| bad_query(Detail::BadSince))?);
            }
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|limit| (1..=MAX_LIST_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        bad_query(Detail::BadLimit {
                            max: MAX_LIST_LIMIT,
                        })
                    })?;
            }
            _ => {
                query.after =
                    Some(decode_cursor(&value).ok_or_else(|| bad_query(Detail::BadCursor))?);
            }
        }
    }
    Ok(query)
}

/// Your imports
///
/// One page of the calling client's own imports, oldest first (by the time they were accepted),
/// each as `GET /vorgang/{drkleinrkVorgangsnummer}` shows it; other clients' imports are never
/// listed. To page, pass the answer's `next` as `cursor` with the same filters until `next` is
/// `null`: no import is skipped or listed twice, also while new imports arrive (they appear on
/// later pages). Finished imports are kept for the retention period (30 days by default).
#[utoipa::path(
    get,
    path = "/vorgang", operation_id = "listVorgaenge",
    tag = "Vorgang",
    params(
        ("status" = Option<ImportStatus>, Query, description = "Only imports in this state."),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query,
            description = "Only imports accepted at or after this time, RFC 3339 (e.g. `2026-01-31T00:00:00Z`; percent-encode a `+` offset as `%2B`)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500,
            description = "Imports per page, 1 to 500; default 50."),
        ("cursor" = Option<String>, Query,
            description = "Where the page starts: the `next` of the previous page, as it came (opaque)."),
    ),
    responses(
        (status = 200, description = "One page of your imports.", body = ImportList,
            headers(("Cache-Control" = String, description = "`no-store`")),
            example = json!({"items": [{"drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "status": "COMPLETED", "environment": "TEST", "europaceVorgangsnummer": "AB1234", "crmKennung": "DKR-AB1267", "messages": [], "createdAt": "2026-11-25T10:15:00Z"}], "next": "MTc5NTYwMTcwMC4wMDAwMDAwMDAuNmU4NjI3ZDQxNTEyMTFlYmFkYzEwMjQyYWMxMjAwMDI"})),
        (status = 400, description = "A bad query (`bad-query`; `detail` names the parameter, never the value): `status` not a state, `since` not RFC 3339, `limit` not 1 to 500, a `cursor` we did not issue, an unknown parameter or one given twice. Or more than one `Authorization` header (`duplicate-authorization`).",
            body = Problem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/bad-query", "title": "Bad query", "status": 400, "detail": "limit must be a whole number from 1 to 500"})),
        (status = 401, description = "No, an invalid or an expired access token.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 challenge."))),
        (status = 403, description = "The token lacks the scope.", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 challenge."))),
        (status = 503, description = "Our database is unavailable.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security(("oauth2" = ["drkleinrk-api/vorgang:import"]), ("bearerAuth" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let query = list_query_of(&request)?;
    // The core sets the client filter itself: only the caller's imports, whatever the query.
    match state
        .importer
        .list_for_client(&caller.client_id, query)
        .await
    {
        Ok(page) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ImportList {
                items: page.items.iter().map(ImportView::from).collect(),
                next: page.next.as_ref().map(encode_cursor),
            })),
        Err(error) => {
            tracing::error!(error = %error, "could not list imports");
            Err(Problem::unavailable(Detail::DatabaseUnavailable))
        }
    }
}

#[cfg(test)]
mod list_tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_do_not_parse() {
        let cursor = ImportCursor {
            created_at: chrono::DateTime::from_timestamp(1_764_065_700, 123).unwrap(),
            id: Uuid::from_u128(7),
        };
        let text = encode_cursor(&cursor);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_cursor(&text), Some(cursor));
        for bad in ["", "abc", "!!!!", &"A".repeat(MAX_CURSOR_LEN + 1)] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("1.2.zz")), None);
    }

    #[test]
    fn since_reads_rfc_3339_also_with_an_unencoded_plus() {
        let utc = parse_since("2026-01-31T10:00:00Z").unwrap();
        assert_eq!(parse_since("2026-01-31T11:00:00+01:00"), Some(utc));
        assert_eq!(parse_since("2026-01-31T11:00:00 01:00"), Some(utc));
        assert_eq!(parse_since("2026-01-31"), None);
        assert_eq!(parse_since("yesterday"), None);
    }
}
