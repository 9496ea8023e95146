//! `POST /vorgang` and `GET /vorgang/{id}`.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt as _;
use serde::Serialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Required, Schema};
use uuid::Uuid;
use vorgang_core::{FailureKind, ImportError, ImportRecord, ImportStatus, NewImport};
use vorgang_model::{Environment, MAX_BODY_BYTES, RequestError, parse_import_request};

use crate::problem::{ImportProblem, Problem};
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
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                "Bad query",
                "unknown query parameter; only environment is allowed",
            ));
        }
        if environment.is_some() {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                "Bad query",
                "environment given more than once",
            ));
        }
        environment = Some(value.parse::<Environment>().map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                "Bad query",
                "environment must be TEST or PRODUCTION",
            )
        })?);
    }
    Ok(environment.unwrap_or_default())
}

/// JSON, or JSON labelled as a form (as in the published example).
fn check_content_type(request: &HttpRequest) -> Result<(), Problem> {
    let unsupported = || {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the JSON body as application/json (application/x-www-form-urlencoded is accepted too)",
        )
        .with_header(header::HeaderName::from_static("accept-post"), "application/json")
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
            "Bad Idempotency-Key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
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
        "Payload too large",
        format!("the body must not exceed {MAX_BODY_BYTES} bytes"),
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
        let chunk =
            chunk.map_err(|_| Problem::malformed("the body could not be read completely"))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Maps a stored import to its HTTP answer.
#[must_use]
pub fn answer(record: &ImportRecord) -> HttpResponse {
    use actix_web::ResponseError as _;
    match record.status {
        ImportStatus::Completed | ImportStatus::Imported => HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/vorgang/{}", record.id)))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ImportCreated {
                drkleinrk_vorgangsnummer: record.id,
                europace_vorgangsnummer: record.europace_vorgangsnummer.clone(),
                crm_kennung: record.crm_kennung.clone(),
                messages: record.messages.clone(),
            }),
        ImportStatus::Failed => {
            let kind = record.failure.as_ref().map(|f| f.kind);
            let problem = if kind == Some(FailureKind::Unavailable) {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "europace-unavailable",
                    "Europace unavailable",
                    "Europace could not be reached or was overloaded; nothing was created. Retry later, with the same Idempotency-Key.",
                )
                .with_header(header::RETRY_AFTER, RETRY_AFTER_S)
            } else {
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "europace-rejected",
                    "Europace rejected the import",
                    "Europace refused our request; nothing was created. Our operators have been alerted.",
                )
            };
            problem
                .for_import(record.id, ImportStatus::Failed)
                .error_response()
        }
        ImportStatus::InDoubt => in_doubt(record.id).error_response(),
        ImportStatus::Accepted | ImportStatus::PartnerReady | ImportStatus::Sending => {
            stored_unfinished(record)
        }
    }
}

/// The 202 answer for an import that is stored but not finished when the request ends.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportPending {
    /// Our Vorgangsnummer (UUID).
    pub drkleinrk_vorgangsnummer: Uuid,
    /// The state it was last stored in, e.g. `ACCEPTED`.
    pub import_status: ImportStatus,
    /// What happens next.
    pub detail: &'static str,
}

/// An import that is stored but not finished: our database failed mid-way, or another replica
/// took the import over and has not finished it within the wait. It WILL be finished in the
/// background (resume), so the answer must not invite a resend: a partner without an
/// `Idempotency-Key` who retries a 5xx would create a second case. Hence `202 Accepted` (HTTP's
/// "accepted for processing, not completed"), naming the import and its state.
fn stored_unfinished(record: &ImportRecord) -> HttpResponse {
    HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/vorgang/{}", record.id)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ImportPending {
            drkleinrk_vorgangsnummer: record.id,
            import_status: record.status,
            detail: "the import is stored and will be finished in the background; do not send it again; GET its Location for the outcome",
        })
}

fn in_doubt(id: Uuid) -> Problem {
    Problem::new(
        StatusCode::GATEWAY_TIMEOUT,
        "import-in-doubt",
        "Import outcome unknown",
        "Europace's answer was lost after the import was sent; the case may exist. Do not resend: our operators resolve it, see GET /vorgang/{id}.",
    )
    .for_import(id, ImportStatus::InDoubt)
}

/// 409: the import of this `Idempotency-Key` is still running; `status` is where it stands.
fn in_progress(id: Uuid, status: ImportStatus) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "import-in-progress",
        "Import in progress",
        "an import with this Idempotency-Key is still being processed; retry shortly",
    )
    .with_header(header::RETRY_AFTER, "1")
    .for_import(id, status)
}

/// Import a Vorgang
///
/// Creates the Tippgeber in Europace Partnermanagement (or reuses it), imports the Vorgang into
/// KreditSmart through Europace's KEX Vorgang Import API and answers with our
/// `drkleinrkVorgangsnummer`, Europace's Vorgangsnummer and the CRM id.
///
/// The body is JSON (at most 256 KiB, nesting at most 32 levels), sent as `application/json`.
/// `null` counts as absent. Unknown members are accepted; each is named in `messages` as
/// `WARN unknown-field <pointer>`.
///
/// **Compatibility:** `Content-Type: application/x-www-form-urlencoded` is accepted too, but
/// only as a label on the same JSON text (the published example sends it so). A real form body
/// (`a=1&b=2`) is not JSON and answers 400. New clients send `application/json`.
///
/// With `Idempotency-Key`, a retried request gets the first answer back for at least 24 hours.
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
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key` (so are replayed 502 and 504 answers); absent when this request was processed."),
            ),
            example = json!({"drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "europaceVorgangsnummer": "AB1234", "crmKennung": "DKR-AB1267", "messages": ["WARN unknown-field /vorgang/antragsteller1/foo"]})),
        (status = 202, description = "Stored, but not finished when the request ended (our database failed mid-way, or another replica is finishing it): it WILL be finished in the background. Do not send it again; `GET` the `Location` for the outcome.", body = ImportPending,
            headers(
                ("Location" = String, description = "`/vorgang/{drkleinrkVorgangsnummer}` (relative)"),
                ("Cache-Control" = String, description = "`no-store`"),
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
        (status = 502, description = "Europace refused our request (e.g. our credentials): nothing was created (`importStatus` `FAILED`). Our operators are alerted; a retry with the same `Idempotency-Key` replays this answer.",
            body = ImportProblem, content_type = "application/problem+json",
            example = json!({"type": "https://api.drkleinservice.de/problems/europace-rejected", "title": "Europace rejected the import", "status": 502, "detail": "Europace refused our request; nothing was created. Our operators have been alerted.", "drkleinrkVorgangsnummer": "6e8627d4-1512-11eb-adc1-0242ac120002", "importStatus": "FAILED"})),
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
) -> Result<HttpResponse, Problem> {
    let environment = environment_of(&request)?;
    check_content_type(&request)?;
    let idempotency_key = idempotency_key_of(&request)?;
    let body = read_body(&request, payload).await?;
    let parsed = parse_import_request(&body).map_err(|error| match error {
        RequestError::Malformed(detail) => Problem::malformed(detail),
        RequestError::Invalid(violations) => Problem::validation(violations),
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
            "Idempotency-Key reused",
            "this Idempotency-Key was already used with a different body or environment",
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
            Err(Problem::unavailable(
                "our database is unavailable; nothing was stored, retry later",
            ))
        }
        Err(error @ (ImportError::NotFound | ImportError::WrongState(_))) => {
            tracing::error!(error = %error, "unexpected import state");
            Err(Problem::unavailable(
                "the import could not be processed; retry later",
            ))
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
            Err(Problem::unavailable(
                "our database is unavailable, retry later",
            ))
        }
    }
}
