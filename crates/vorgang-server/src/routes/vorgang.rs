//! `POST /vorgang` and `GET /vorgang/{id}`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt as _;
use serde::Serialize;
use uuid::Uuid;
use vorgang_core::{FailureKind, ImportError, ImportRecord, ImportStatus, NewImport};
use vorgang_model::{Environment, MAX_BODY_BYTES, RequestError, parse_import_request};

use crate::auth::Caller;
use crate::problem::Problem;
use crate::state::AppState;

/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

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
    #[schema(value_type = crate::openapi::ImportStatusSchema)]
    pub status: ImportStatus,
    /// Europace environment.
    #[schema(value_type = crate::openapi::EnvironmentSchema)]
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
    #[schema(value_type = crate::openapi::ImportStatusSchema)]
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

/// `POST /vorgang`.
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
        })
        .await;
    // `submit` already waited (bounded) for the outcome of an import another writer took over.
    match outcome {
        Ok(record) => {
            state.metrics.observe_import(record.status.as_str());
            Ok(answer(&record))
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

/// `GET /vorgang/{id}`: the calling client's own import.
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
