//! The HTTP endpoints of the sandbox.

use std::collections::HashMap;
use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::fault::{Call, FaultRequest};
use crate::state::{ALL_SCOPES, CreateOutcome, TokenRejection};
use crate::{Environment, RecordedCall, Sandbox};

/// Name of the partner resource, used to build `href` and `Location` links.
const PARTNER_RESOURCE: &str = "europace_sandbox_partner";
/// Largest JSON body accepted by the partner and KEX endpoints.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

const SCOPE_PARTNER_READ: &str = "partner:plakette:lesen";
const SCOPE_PARTNER_CREATE: &str = "partner:plakette:anlegen";
const SCOPE_PARTNER_WRITE: &str = "partner:plakette:schreiben";
const SCOPE_KEX: &str = "privatkredit:vorgang:schreiben";

pub(crate) fn configure(sandbox: &Sandbox, cfg: &mut web::ServiceConfig) {
    let data = web::Data::new(sandbox.clone());
    let payload = web::PayloadConfig::new(MAX_BODY_BYTES);
    cfg.service(
        web::resource("/auth/token")
            .app_data(data.clone())
            .route(web::post().to(token)),
    )
    .service(
        web::resource("/v2/partners")
            .app_data(data.clone())
            .route(web::get().to(lookup_partners)),
    )
    .service(
        web::resource("/v2/partner/{partnerId}")
            .name(PARTNER_RESOURCE)
            .app_data(data.clone())
            .app_data(payload.clone())
            .route(web::get().to(get_partner))
            .route(web::patch().to(update_partner)),
    )
    .service(
        web::resource("/v2/partner/{partnerId}/untergeordnete")
            .app_data(data.clone())
            .app_data(payload.clone())
            .route(web::post().to(create_partner)),
    )
    .service(
        web::resource("/vorgang")
            .app_data(data.clone())
            .app_data(payload.clone())
            .route(web::post().to(import_vorgang)),
    )
    .service(
        web::resource("/_sandbox/vorgaenge")
            .app_data(data.clone())
            .route(web::get().to(list_vorgaenge)),
    )
    .service(
        web::resource("/_sandbox/partners")
            .app_data(data.clone())
            .route(web::get().to(list_partners)),
    )
    .service(
        web::resource("/_sandbox/faults")
            .app_data(data.clone())
            .route(web::post().to(add_fault))
            .route(web::get().to(list_faults))
            .route(web::delete().to(clear_faults)),
    )
    .service(
        web::resource("/_sandbox/reset")
            .app_data(data.clone())
            .route(web::post().to(reset)),
    )
    .service(
        web::resource("/_sandbox/stats")
            .app_data(data.clone())
            .route(web::get().to(stats)),
    )
    .service(
        web::resource("/_sandbox/calls")
            .app_data(data)
            .route(web::get().to(calls)),
    );
}

// ---- shared helpers ----------------------------------------------------------------------------

/// Counts the call, records its correlation headers, applies a queued fault (before or after
/// `handle`) and logs the outcome.
async fn with_faults(
    sandbox: &Sandbox,
    call: Call,
    req: &HttpRequest,
    trace_id: &str,
    handle: impl FnOnce() -> HttpResponse,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = RecordedCall {
        call: call_name(call),
        trace_id: header("X-TraceId"),
        traceparent: header("traceparent"),
    };
    let fault = {
        let mut state = sandbox.lock();
        state.record_call(recorded);
        state.begin(call)
    };
    if let Some(fault) = fault.as_ref().filter(|f| !f.after_receive) {
        tokio::time::sleep(fault.delay()).await;
        if let Some(response) = fault.response(call, trace_id) {
            return response;
        }
    }
    let response = handle();
    if let Some(fault) = fault.as_ref().filter(|f| f.after_receive) {
        tokio::time::sleep(fault.delay()).await;
        if let Some(response) = fault.response(call, trace_id) {
            return response;
        }
    }
    tracing::debug!(
        target: "europace_sandbox",
        ?call,
        status = response.status().as_u16(),
        trace_id,
        "sandbox answered"
    );
    response
}

/// The name of a call in `/_sandbox/stats` and `/_sandbox/calls`.
const fn call_name(call: Call) -> &'static str {
    match call {
        Call::Auth => "auth",
        Call::PartnerLookup => "partner_lookup",
        Call::PartnerCreate => "partner_create",
        Call::PartnerUpdate => "partner_update",
        Call::Kex => "kex",
    }
}

/// The caller's `X-TraceId` when it is a short printable token, else a generated one.
fn trace_id(req: &HttpRequest) -> String {
    req.headers()
        .get("X-TraceId")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("sandbox-{}", random_hex(8)), str::to_owned)
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let byte: u8 = rand::random();
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A Europace error answer: `{"message", "traceId"}`.
fn error(status: StatusCode, message: &str, trace_id: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "message": message, "traceId": trace_id }))
}

/// The JSON object a partner write sends, after the checks Europace makes first: the bearer
/// token and its `scope` (`401`/`403`), the content type (`415`), the body (`400`). `Err` is the
/// refusal to send.
fn authorized_object(
    sandbox: &Sandbox,
    req: &HttpRequest,
    scope: &str,
    trace_id: &str,
    body: &[u8],
) -> Result<Map<String, Value>, Box<HttpResponse>> {
    if let Some(response) = refuse_unauthorized(sandbox, req, scope, trace_id)
        .or_else(|| refuse_not_json(req, trace_id))
    {
        return Err(Box::new(response));
    }
    bad_request(parse_object(body), trace_id)
}

/// A `400` with the message of a refused body.
fn bad_request<T>(parsed: Result<T, String>, trace_id: &str) -> Result<T, Box<HttpResponse>> {
    parsed.map_err(|message| Box::new(error(StatusCode::BAD_REQUEST, &message, trace_id)))
}

/// `415` unless the body is declared `application/json`; `Some` is the refusal to send.
fn refuse_not_json(req: &HttpRequest, trace_id: &str) -> Option<HttpResponse> {
    (!is_json(req)).then(|| {
        error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type muss application/json sein",
            trace_id,
        )
    })
}

/// Checks `Authorization: Bearer …` against the issued tokens and the needed scope; `Some` is
/// the refusal to send.
fn refuse_unauthorized(
    sandbox: &Sandbox,
    req: &HttpRequest,
    scope: &str,
    trace_id: &str,
) -> Option<HttpResponse> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = presented else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: Bearer token fehlt",
            trace_id,
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"europace\""),
        );
        return Some(response);
    };
    let required = sandbox.config().check_scopes.then_some(scope);
    match sandbox.lock().check_token(token, required) {
        Ok(()) => None,
        Err(TokenRejection::Invalid) => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: Token unbekannt oder abgelaufen",
                trace_id,
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            Some(response)
        }
        Err(TokenRejection::MissingScope) => {
            let mut response = error(
                StatusCode::FORBIDDEN,
                &format!("Forbidden: Scope {scope} fehlt"),
                trace_id,
            );
            if let Ok(value) = HeaderValue::from_str(&format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            )) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            Some(response)
        }
    }
}

/// Whether the request is labelled `application/json` (parameters such as `charset` allowed).
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("application/json")
                || (essence.len() > 5
                    && essence.is_char_boundary(essence.len() - 5)
                    && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
        })
}

/// Parses a JSON object body; the error message never echoes the body.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("Der Request-Body muss ein JSON-Objekt sein".into()),
        Err(e) => Err(format!(
            "Der Request-Body ist kein gültiges JSON (Zeile {}, Spalte {})",
            e.line(),
            e.column()
        )),
    }
}

fn query(req: &HttpRequest) -> Option<HashMap<String, String>> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .map(web::Query::into_inner)
}

/// Absolute link to a partner, e.g. `http://127.0.0.1:8080/v2/partner/ABC12`.
fn partner_url(req: &HttpRequest, partner_id: &str) -> String {
    req.url_for(PARTNER_RESOURCE, [partner_id]).map_or_else(
        |_| {
            let info = req.connection_info();
            format!(
                "{}://{}/v2/partner/{partner_id}",
                info.scheme(),
                info.host()
            )
        },
        |url| url.to_string(),
    )
}

fn partner_id_of(partner: &Map<String, Value>) -> &str {
    partner
        .get("partnerId")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

// ---- Authorization API -------------------------------------------------------------------------

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::UNAUTHORIZED {
        builder.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"europace\""));
    }
    builder.json(json!({ "error": error, "error_description": description }))
}

/// Whether the request carries HTTP Basic credentials of the form `id:secret` with a non-empty id.
fn has_basic_credentials(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"))
        .and_then(|(_, encoded)| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .is_some_and(|credentials| {
            credentials
                .split_once(':')
                .is_some_and(|(id, _)| !id.is_empty())
        })
}

async fn token(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    form: Result<web::Form<HashMap<String, String>>, actix_web::Error>,
) -> HttpResponse {
    let trace_id = trace_id(&req);
    with_faults(&sandbox, Call::Auth, &req, &trace_id, || {
        if !has_basic_credentials(&req) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed: HTTP Basic credentials missing or malformed.",
            );
        }
        let Ok(web::Form(form)) = form else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid request: body must be application/x-www-form-urlencoded",
            );
        };
        match form.get("grant_type").map(String::as_str) {
            None | Some("") => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid request: Missing \"grant_type\" parameter",
                );
            }
            Some("client_credentials") => {}
            Some(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "Unsupported grant type: only client_credentials is supported",
                );
            }
        }
        let requested = form
            .get("scope")
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty());
        let ttl = sandbox.config().token_ttl;
        let access_token = sandbox.lock().issue_token(ttl, requested.as_deref());
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": ttl.as_secs(),
                "scope": requested.as_deref().unwrap_or(ALL_SCOPES),
            }))
    })
    .await
}

// ---- Partnermanagement -------------------------------------------------------------------------

async fn lookup_partners(sandbox: web::Data<Sandbox>, req: HttpRequest) -> HttpResponse {
    let trace_id = trace_id(&req);
    with_faults(&sandbox, Call::PartnerLookup, &req, &trace_id, || {
        if let Some(response) = refuse_unauthorized(&sandbox, &req, SCOPE_PARTNER_READ, &trace_id) {
            return response;
        }
        let Some(externe_partner_id) = query(&req)
            .and_then(|mut q| q.remove("externePartnerId"))
            .filter(|v| !v.is_empty())
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "Query-Parameter externePartnerId fehlt",
                &trace_id,
            );
        };
        let ids = sandbox
            .lock()
            .find_by_externe_partner_id(&externe_partner_id);
        let partners: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "partnerId": id, "href": partner_url(&req, id) }))
            .collect();
        HttpResponse::Ok().json(json!({ "total": partners.len(), "partners": partners }))
    })
    .await
}

async fn get_partner(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let trace_id = trace_id(&req);
    with_faults(&sandbox, Call::PartnerLookup, &req, &trace_id, || {
        if let Some(response) = refuse_unauthorized(&sandbox, &req, SCOPE_PARTNER_READ, &trace_id) {
            return response;
        }
        let partner = sandbox.lock().partner(&path).cloned();
        match partner {
            Some(partner) => HttpResponse::Ok().json(partner),
            None => error(StatusCode::NOT_FOUND, "Partner nicht gefunden", &trace_id),
        }
    })
    .await
}

/// Partner attributes kept as strings (empty strings are ignored, as Europace does).
const STRING_ATTRIBUTES: &[&str] = &[
    "vorname",
    "nachname",
    "name",
    "email",
    "externePartnerId",
    "titelFunktion",
    "anrede",
    "geburtsdatum",
    "telefonnummer",
    "mobilnummer",
    "faxnummer",
    "firmenname",
    "firmennameZusatz",
    "webseite",
    "aufsichtsbehoerde",
    "registrierungsnummer",
];
const BOOLEAN_ATTRIBUTES: &[&str] = &["gesperrt", "kreditsachbearbeiter"];
const OBJECT_ATTRIBUTES: &[&str] = &["anschrift", "bankverbindung"];

/// The `typ` and the attributes to store from a create request; unknown attributes and the
/// read-only `partnerId`, `parent` and `avatar` are ignored. Messages name fields, never values.
fn partner_attributes(
    body: Map<String, Value>,
) -> Result<(Option<String>, Map<String, Value>), String> {
    let mut typ = None;
    let mut attributes = Map::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        if key == "typ" {
            match value.as_str() {
                Some("PERSON" | "ORGANISATION") => typ = value.as_str().map(str::to_owned),
                _ => return Err("'typ' muss PERSON oder ORGANISATION sein".into()),
            }
        } else if STRING_ATTRIBUTES.contains(&key.as_str()) {
            let Some(text) = value.as_str() else {
                return Err(format!("Attribut '{key}' muss ein String sein"));
            };
            if text.is_empty() {
                continue;
            }
            if key == "anrede" && !matches!(text, "HERR" | "FRAU") {
                return Err("Enum literal für 'anrede' muss FRAU oder HERR sein.".into());
            }
            if key == "geburtsdatum" && !is_iso_date(text) {
                return Err("'geburtsdatum' muss das Format YYYY-MM-DD haben".into());
            }
            attributes.insert(key, value);
        } else if BOOLEAN_ATTRIBUTES.contains(&key.as_str()) {
            if !value.is_boolean() {
                return Err(format!("Attribut '{key}' muss ein Boolean sein"));
            }
            attributes.insert(key, value);
        } else if OBJECT_ATTRIBUTES.contains(&key.as_str()) {
            if !value.is_object() {
                return Err(format!("Attribut '{key}' muss ein Objekt sein"));
            }
            attributes.insert(key, value);
        }
    }
    Ok((typ, attributes))
}

fn is_iso_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

async fn create_partner(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let trace_id = trace_id(&req);
    with_faults(&sandbox, Call::PartnerCreate, &req, &trace_id, || {
        let parsed = authorized_object(&sandbox, &req, SCOPE_PARTNER_CREATE, &trace_id, &body)
            .and_then(|body| bad_request(partner_attributes(body), &trace_id));
        let (typ, attributes) = match parsed {
            Ok(parsed) => parsed,
            Err(response) => return *response,
        };
        let outcome = sandbox
            .lock()
            .create_partner(&path, typ.as_deref(), attributes);
        let (status, partner) = match outcome {
            CreateOutcome::Created(partner) => (StatusCode::CREATED, partner),
            CreateOutcome::Existing(partner) => (StatusCode::RESET_CONTENT, partner),
            CreateOutcome::UnknownParent => {
                return error(
                    StatusCode::NOT_FOUND,
                    "Übergeordneter Partner nicht gefunden",
                    &trace_id,
                );
            }
        };
        let location = partner_url(&req, partner_id_of(&partner));
        HttpResponse::build(status)
            .insert_header((header::LOCATION, location))
            .json(partner)
    })
    .await
}

/// Partner attributes a `PATCH` may change (Partner API: "Attributes that can be changed via
/// PATCH"). `typ`, `partnerId`, `parent`, `gesperrt` and `avatar` are not among them.
const PATCHABLE_STRING_ATTRIBUTES: &[&str] = &[
    "anrede",
    "aufsichtsbehoerde",
    "email",
    "externePartnerId",
    "faxnummer",
    "firmenname",
    "firmennameZusatz",
    "geburtsdatum",
    "mobilnummer",
    "name",
    "vorname",
    "nachname",
    "registrierungsnummer",
    "telefonnummer",
    "titelFunktion",
    "webseite",
];
const PATCHABLE_BOOLEAN_ATTRIBUTES: &[&str] = &["kreditsachbearbeiter"];
const PATCHABLE_OBJECT_ATTRIBUTES: &[&str] = &["anschrift", "bankverbindung"];

/// The changes of a `PATCH` body, as Europace evaluates it: an attribute is set to the value
/// sent, an empty string deletes it (`None`), `anrede` needs a value (`HERR`/`FRAU`); unknown
/// and unchangeable attributes and `null`s are ignored. Messages name fields, never values.
fn patch_changes(body: Map<String, Value>) -> Result<Vec<(String, Option<Value>)>, String> {
    let mut changes = Vec::new();
    for (key, value) in body {
        if value.is_null() {
            continue;
        }
        if PATCHABLE_STRING_ATTRIBUTES.contains(&key.as_str()) {
            let Some(text) = value.as_str() else {
                return Err(format!("Attribut '{key}' muss ein String sein"));
            };
            if key == "anrede" && !matches!(text, "HERR" | "FRAU") {
                return Err("Enum literal für 'anrede' muss FRAU oder HERR sein.".into());
            }
            if text.is_empty() {
                changes.push((key, None));
                continue;
            }
            if key == "geburtsdatum" && !is_iso_date(text) {
                return Err("'geburtsdatum' muss das Format YYYY-MM-DD haben".into());
            }
            changes.push((key, Some(value)));
        } else if PATCHABLE_BOOLEAN_ATTRIBUTES.contains(&key.as_str()) {
            if !value.is_boolean() {
                return Err(format!("Attribut '{key}' muss ein Boolean sein"));
            }
            changes.push((key, Some(value)));
        } else if PATCHABLE_OBJECT_ATTRIBUTES.contains(&key.as_str()) {
            if !value.is_object() {
                return Err(format!("Attribut '{key}' muss ein Objekt sein"));
            }
            changes.push((key, Some(value)));
        }
    }
    Ok(changes)
}

async fn update_partner(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let trace_id = trace_id(&req);
    with_faults(&sandbox, Call::PartnerUpdate, &req, &trace_id, || {
        let parsed = authorized_object(&sandbox, &req, SCOPE_PARTNER_WRITE, &trace_id, &body)
            .and_then(|body| bad_request(patch_changes(body), &trace_id));
        let changes = match parsed {
            Ok(changes) => changes,
            Err(response) => return *response,
        };
        let changed: Vec<String> = changes.iter().map(|(key, _)| key.clone()).collect();
        match sandbox.lock().update_partner(&path, changes) {
            Some(partner) => {
                // Attribute names only, never their values.
                tracing::info!(
                    target: "europace_sandbox",
                    partner_id = %path.as_str(),
                    attributes = ?changed,
                    "partner updated"
                );
                HttpResponse::Ok().json(partner)
            }
            None => error(StatusCode::NOT_FOUND, "Partner nicht gefunden", &trace_id),
        }
    })
    .await
}

// ---- KEX Vorgang Import ------------------------------------------------------------------------

/// Checks that `vorgang[field].partnerId`, when given, names a known partner.
fn check_partner_reference(
    sandbox: &Sandbox,
    body: &Map<String, Value>,
    field: &str,
) -> Result<(), String> {
    let Some(reference) = body.get(field).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(reference) = reference.as_object() else {
        return Err(format!("'{field}' muss ein Objekt sein"));
    };
    match reference.get("partnerId") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(id)) if sandbox.lock().partner(id).is_some() => Ok(()),
        Some(Value::String(_)) => Err(format!("{field}: Partner unbekannt ({field}.partnerId)")),
        Some(_) => Err(format!("'{field}.partnerId' muss ein String sein")),
    }
}

async fn import_vorgang(
    sandbox: web::Data<Sandbox>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let trace_id = trace_id(&req);
    with_faults(&sandbox, Call::Kex, &req, &trace_id, || {
        if let Some(response) = refuse_unauthorized(&sandbox, &req, SCOPE_KEX, &trace_id) {
            return response;
        }
        let environment = match query(&req)
            .as_ref()
            .map(|q| q.get("environment").map(String::as_str))
        {
            Some(None) => Environment::Test,
            Some(Some("TEST")) => Environment::Test,
            Some(Some("PRODUCTION")) => Environment::Production,
            Some(Some(_)) | None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Query-Parameter environment muss PRODUCTION oder TEST sein",
                    &trace_id,
                );
            }
        };
        if let Some(response) = refuse_not_json(&req, &trace_id) {
            return response;
        }
        let vorgang = match parse_object(&body) {
            Ok(vorgang) => vorgang,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message, &trace_id),
        };
        for field in ["kundenbetreuer", "tippgeber"] {
            if let Err(message) = check_partner_reference(&sandbox, &vorgang, field) {
                return error(StatusCode::BAD_REQUEST, &message, &trace_id);
            }
        }
        let has_antragsteller2 = vorgang.get("antragsteller2").is_some_and(Value::is_object);
        let vorgangsnummer = sandbox
            .lock()
            .record_vorgang(environment, Value::Object(vorgang));
        tracing::info!(
            target: "europace_sandbox",
            %environment,
            %vorgangsnummer,
            "KEX import recorded"
        );
        let mut answer = json!({
            "vorgangsnummer": vorgangsnummer,
            "messages": [],
            "antragsteller1": { "id": random_hex(12) },
        });
        if has_antragsteller2 && let Some(map) = answer.as_object_mut() {
            map.insert("antragsteller2".into(), json!({ "id": random_hex(12) }));
        }
        HttpResponse::Created().json(answer)
    })
    .await
}

// ---- test endpoints ----------------------------------------------------------------------------

async fn list_vorgaenge(sandbox: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(sandbox.vorgaenge())
}

async fn list_partners(sandbox: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(sandbox.partners())
}

async fn add_fault(sandbox: web::Data<Sandbox>, body: web::Bytes) -> HttpResponse {
    let fault = serde_json::from_slice::<FaultRequest>(&body)
        .map_err(|e| format!("invalid fault: {e}"))
        .and_then(|request| {
            request
                .validate()
                .map_err(|e| format!("invalid fault: {e}"))
        });
    match fault {
        Ok(fault) => {
            tracing::info!(
                target: "europace_sandbox",
                target_call = ?fault.target,
                status = ?fault.status,
                delay_ms = fault.delay_ms,
                times = fault.remaining,
                after_receive = fault.after_receive,
                "fault queued"
            );
            let answer = HttpResponse::Created().json(&fault);
            sandbox.lock().push_fault(fault);
            answer
        }
        Err(message) => HttpResponse::BadRequest().json(json!({ "message": message })),
    }
}

async fn list_faults(sandbox: web::Data<Sandbox>) -> HttpResponse {
    let faults = sandbox.lock().faults().to_vec();
    HttpResponse::Ok().json(faults)
}

async fn clear_faults(sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.lock().clear_faults();
    HttpResponse::NoContent().finish()
}

async fn reset(sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.lock().reset();
    tracing::info!(target: "europace_sandbox", "sandbox reset");
    HttpResponse::NoContent().finish()
}

async fn calls(sandbox: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(sandbox.calls())
}

async fn stats(sandbox: web::Data<Sandbox>) -> HttpResponse {
    let stats = sandbox.lock().stats();
    HttpResponse::Ok().json(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_attributes_are_sanitised() {
        let body = json!({
            "partnerId": "XXX00",
            "parent": {"partnerId": "KBT01"},
            "typ": "PERSON",
            "vorname": "Max",
            "nachname": "",
            "unbekannt": 1,
            "gesperrt": false,
            "anschrift": {"ort": "Berlin"}
        });
        let Value::Object(body) = body else {
            unreachable!()
        };
        let (typ, attributes) = partner_attributes(body).unwrap();
        assert_eq!(typ.as_deref(), Some("PERSON"));
        assert_eq!(
            Value::Object(attributes),
            json!({"vorname": "Max", "gesperrt": false, "anschrift": {"ort": "Berlin"}})
        );
    }

    #[test]
    fn partner_attribute_errors_do_not_echo_values() {
        for bad in [
            json!({"anrede": "Herr Dr. Geheim"}),
            json!({"typ": "ROBOT"}),
            json!({"vorname": 42}),
            json!({"geburtsdatum": "1.2.1980"}),
            json!({"gesperrt": "nein"}),
            json!({"anschrift": "Geheimweg 1"}),
        ] {
            let Value::Object(body) = bad else {
                unreachable!()
            };
            let message = partner_attributes(body).unwrap_err();
            assert!(!message.contains("Geheim"), "{message}");
        }
    }

    #[test]
    fn patch_changes_follow_europaces_rules() {
        let body = json!({
            "partnerId": "XXX00",
            "typ": "ORGANISATION",
            "parent": {"partnerId": "KBT01"},
            "gesperrt": true,
            "unbekannt": 1,
            "telefonnummer": "030 2",
            "email": "",
            "vorname": null,
            "kreditsachbearbeiter": false
        });
        let Value::Object(body) = body else {
            unreachable!()
        };
        let mut changes = patch_changes(body).unwrap();
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            changes,
            vec![
                ("email".to_owned(), None),
                ("kreditsachbearbeiter".to_owned(), Some(json!(false))),
                ("telefonnummer".to_owned(), Some(json!("030 2"))),
            ]
        );
        for bad in [
            json!({"anrede": ""}),
            json!({"anrede": "Herr Dr. Geheim"}),
            json!({"telefonnummer": 3012345}),
            json!({"geburtsdatum": "1.2.1980 Geheim"}),
            json!({"anschrift": "Geheimweg 1"}),
        ] {
            let Value::Object(body) = bad else {
                unreachable!()
            };
            let message = patch_changes(body).unwrap_err();
            assert!(
                !message.contains("Geheim") && !message.contains("3012345"),
                "{message}"
            );
        }
    }

    #[test]
    fn iso_dates() {
        assert!(is_iso_date("1980-12-11"));
        assert!(!is_iso_date("1980-1-11"));
        assert!(!is_iso_date("19801211xx"));
    }
}
