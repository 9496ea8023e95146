//! The OpenAPI 3.1 document of the API (`GET /openapi.json`) and its documentation page
//! (`GET /docs`).
//!
//! Paths, parameters, answers, headers and security schemes are declared with utoipa
//! ([`ApiDoc`]); the answer types carry `ToSchema` (`ImportCreated`, `ImportView`, `Problem`).
//! The schema of the `POST /vorgang` body is generated at run time instead:
//!
//! - `ImportRequest`, `Tippgeber`, `PartnerDaten` and `CustomEntry` describe our wrapper
//!   (DESIGN §6: required fields, limits, aliases, `null` = absent);
//! - every KEX schema file embedded in `vorgang-model` ([`SCHEMA_FILES`]), `X.json`, becomes the
//!   component `#/components/schemas/X` ([`kex_components`]): `$ref: "X.json"` becomes
//!   `#/components/schemas/X`, `extends` becomes `allOf`, `javaType`, `customDateTimePatter`,
//!   `id` and `$schema` are dropped, and the rules the service checks beyond the KEX types
//!   (ranges, amounts not negative, IBAN and e-mail syntax, the fields only the service sets)
//!   are added where they apply.
//!
//! Every optional member also accepts `null` (the service treats it as absent), written the
//! OpenAPI 3.1 way: `"type": ["string", "null"]`, or `anyOf` with `{"type": "null"}` for a `$ref`.
//! Unknown members are allowed everywhere (`additionalProperties` is not restricted): the
//! service accepts them and names each one in `messages` as a warning.
//!
//! The document is built once per process ([`document`]) and served as is.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _};
use auth::IMPORT_SCOPE;
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityScheme,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use vorgang_model::schema::{ROOT_SCHEMA_FILE, SCHEMA_FILES, SCHEMA_LICENSE};
use vorgang_model::{MAX_BODY_BYTES, MAX_CUSTOM_ENTRIES, MAX_KOMMENTAR_CHARS, MAX_KOMMENTARE};

use crate::problem::Problem;
use crate::routes::vorgang::{ImportCreated, ImportPending, ImportView, MAX_IDEMPOTENCY_KEY_LEN};

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// Path of the documentation page.
pub const DOCS_PATH: &str = "/docs";

/// Name of the request body schema of `POST /vorgang`.
pub const IMPORT_REQUEST_SCHEMA: &str = "ImportRequest";

/// Names of the components we define ourselves; none of them may be the name of a KEX file.
pub const OWN_SCHEMA_NAMES: &[&str] = &[
    IMPORT_REQUEST_SCHEMA,
    "Tippgeber",
    "PartnerDaten",
    "CustomEntry",
    "ImportCreated",
    "ImportPending",
    "ImportView",
    "ImportStatus",
    "Environment",
    "Problem",
    "ImportProblem",
    "Violation",
    "TokenRequest",
    "GrantType",
    "TokenResponse",
    "OAuthError",
    "OAuthErrorCode",
    "Jwks",
    "Jwk",
    "Health",
];

const SCHEMAS: &str = "#/components/schemas/";

/// The published example request (`examples/seed-request.json`).
const SEED_REQUEST: &str = include_str!("../../../examples/seed-request.json");

// ---------------------------------------------------------------------------------------------
// Documentation-only types: shapes produced by code outside this crate (auth, vorgang-core,
// vorgang-model) that cannot carry `ToSchema` here. The API tests validate real answers against
// them, so they cannot drift unnoticed.
// ---------------------------------------------------------------------------------------------

/// State of an import.
#[derive(ToSchema)]
#[schema(as = ImportStatus)]
pub enum ImportStatusSchema {
    /// Validated and stored; the Tippgeber is not yet known at Europace.
    #[schema(rename = "ACCEPTED")]
    Accepted,
    /// The Tippgeber exists at Europace; the KEX import has not been sent yet.
    #[schema(rename = "PARTNER_READY")]
    PartnerReady,
    /// The KEX import is being sent.
    #[schema(rename = "SENDING")]
    Sending,
    /// Europace created the case; the CRM id is still missing.
    #[schema(rename = "IMPORTED")]
    Imported,
    /// Done: the Europace case and the CRM id exist.
    #[schema(rename = "COMPLETED")]
    Completed,
    /// Nothing was created at Europace.
    #[schema(rename = "FAILED")]
    Failed,
    /// The import was sent but Europace's answer was lost: the case may exist; our operators
    /// resolve it.
    #[schema(rename = "IN_DOUBT")]
    InDoubt,
}

/// Europace environment: `TEST` (test mode, the default) or `PRODUCTION` (real business).
#[derive(ToSchema)]
#[schema(as = Environment)]
pub enum EnvironmentSchema {
    /// Europace's test mode: the case is not real business.
    #[schema(rename = "TEST")]
    Test,
    /// Real business.
    #[schema(rename = "PRODUCTION")]
    Production,
}

/// One validation failure: where (a JSON pointer into the request body) and what is wrong.
/// Never contains the submitted value.
#[derive(ToSchema)]
#[schema(as = Violation)]
pub struct ViolationSchema {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/tippgeber/vorname`.
    #[schema(example = "/vorgang/antragsteller1/personendaten/vorname")]
    pub pointer: String,
    /// What is wrong, e.g. `required`, `must be one of: FRAU, HERR`.
    #[schema(example = "required")]
    pub detail: String,
}

/// Grant type of the token request.
#[derive(ToSchema)]
pub enum GrantType {
    /// The only supported grant (RFC 6749 §4.4).
    #[schema(rename = "client_credentials")]
    ClientCredentials,
}

/// Token request (RFC 6749 §4.4.2), `application/x-www-form-urlencoded`. The client
/// authenticates with HTTP Basic (preferred) or with `client_id` and `client_secret` in the
/// form, not both.
#[derive(ToSchema)]
#[schema(as = TokenRequest)]
pub struct TokenRequestSchema {
    /// Always `client_credentials`.
    pub grant_type: GrantType,
    /// Space-separated scopes, a subset of the client's; absent: all of the client's scopes.
    #[schema(example = "drkleinrk-api/vorgang:import")]
    pub scope: Option<String>,
    /// The client id, when not sent with HTTP Basic.
    pub client_id: Option<String>,
    /// The client secret, when not sent with HTTP Basic.
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// Successful token answer (RFC 6749 §5.1). Sent with `Cache-Control: no-store`.
#[derive(ToSchema)]
#[schema(as = TokenResponse)]
pub struct TokenResponseSchema {
    /// The access token: a signed JWT (RFC 9068, `typ: at+jwt`) with the claims
    /// `iss aud sub client_id scope iat exp jti`. A credential: never log it.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Lifetime in seconds (default 900).
    #[schema(example = 900, minimum = 1)]
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    #[schema(example = "drkleinrk-api/vorgang:import")]
    pub scope: String,
}

/// Error code of a token answer (RFC 6749 §5.2).
#[derive(ToSchema)]
#[schema(as = OAuthErrorCode)]
pub enum OAuthErrorCode {
    /// 400: a parameter is missing, repeated or malformed, or the body is not a form.
    #[schema(rename = "invalid_request")]
    InvalidRequest,
    /// 401: unknown client, wrong secret, revoked client or malformed credentials.
    #[schema(rename = "invalid_client")]
    InvalidClient,
    /// 400: `grant_type` is not `client_credentials`.
    #[schema(rename = "unsupported_grant_type")]
    UnsupportedGrantType,
    /// 400: a requested scope is malformed or not granted to this client.
    #[schema(rename = "invalid_scope")]
    InvalidScope,
    /// 429: too many failed attempts; wait `Retry-After` seconds.
    #[schema(rename = "slow_down")]
    SlowDown,
    /// 503: the authorization server is temporarily unavailable.
    #[schema(rename = "temporarily_unavailable")]
    TemporarilyUnavailable,
    /// 500: the token could not be issued.
    #[schema(rename = "server_error")]
    ServerError,
}

/// Error answer of the token endpoint (RFC 6749 §5.2): `application/json`, not problem+json.
#[derive(ToSchema)]
#[schema(as = OAuthError)]
pub struct OAuthErrorSchema {
    /// The error code.
    pub error: OAuthErrorCode,
    /// A human-readable explanation; never quotes a submitted value.
    pub error_description: Option<String>,
}

/// One public key (RFC 7517): Ed25519 (`OKP`), `alg: EdDSA`.
#[derive(ToSchema)]
#[schema(as = Jwk)]
pub struct JwkSchema {
    /// Key type.
    #[schema(example = "OKP")]
    pub kty: String,
    /// Curve.
    #[schema(example = "Ed25519")]
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id, the `kid` in a token's header.
    pub kid: String,
    /// Algorithm.
    #[schema(example = "EdDSA")]
    pub alg: String,
    /// Always `sig`.
    #[schema(rename = "use", example = "sig")]
    pub use_: String,
}

/// The public keys that verify our access tokens (RFC 7517 JWK set). The current signing key
/// comes first; a key rotated out stays listed until the tokens it signed have expired.
#[derive(ToSchema)]
#[schema(as = Jwks)]
pub struct JwksSchema {
    /// The keys.
    pub keys: Vec<JwkSchema>,
}

/// Health answer.
#[derive(ToSchema)]
#[schema(as = Health)]
pub struct HealthSchema {
    /// `UP` or `DOWN`.
    #[schema(example = "UP")]
    pub status: String,
    /// `UP` or `DOWN` (readiness only).
    #[schema(example = "UP")]
    pub database: Option<String>,
}

/// A problem concerning one import (409, 502, 503 after Europace failed, 504): a [`Problem`]
/// with `drkleinrkVorgangsnummer` and `importStatus`.
pub struct ImportProblem;

impl PartialSchema for ImportProblem {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::AllOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("Problem"))
            .item(
                ObjectBuilder::new()
                    .property(
                        "drkleinrkVorgangsnummer",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                    )
                    .property(
                        "importStatus",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some([
                                "ACCEPTED",
                                "PARTNER_READY",
                                "SENDING",
                                "FAILED",
                                "IN_DOUBT",
                            ])),
                    )
                    .required("drkleinrkVorgangsnummer")
                    .required("importStatus"),
            )
            .description(Some(
                "A problem concerning one import: `drkleinrkVorgangsnummer` names it and \
                 `importStatus` tells whether something may exist at Europace \
                 (`FAILED`: nothing was created; `IN_DOUBT`: the case may exist; \
                 `ACCEPTED`, `PARTNER_READY`, `SENDING`: still being processed, in that state).",
            ))
            .into()
    }
}

impl ToSchema for ImportProblem {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ImportProblem")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Problem::name().into_owned(), Problem::schema()));
        <Problem as ToSchema>::schemas(schemas);
    }
}

// ---------------------------------------------------------------------------------------------
// Paths. The functions only carry the documentation; the handlers live in `routes`.
// ---------------------------------------------------------------------------------------------

/// Get an access token (OAuth2 client credentials)
///
/// Authenticate with HTTP Basic (`client_id:client_secret`, preferred) or with `client_id` and
/// `client_secret` in the form. The access token is a signed JWT; send it as
/// `Authorization: Bearer …`. Repeated failed attempts are throttled (429 `slow_down`).
#[utoipa::path(
    post,
    path = "/oauth2/token", operation_id = "issueToken",
    tag = "Token",
    request_body(
        content = TokenRequestSchema,
        content_type = "application/x-www-form-urlencoded",
        description = "The token request form."
    ),
    responses(
        (status = 200, description = "The access token.", body = TokenResponseSchema,
            headers(("Cache-Control" = String, description = "`no-store`")),
            example = json!({"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjEyMyIsInR5cCI6ImF0K2p3dCJ9.eyJ…", "token_type": "Bearer", "expires_in": 900, "scope": "drkleinrk-api/vorgang:import"})),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type` or `invalid_scope`.", body = OAuthErrorSchema,
            example = json!({"error": "unsupported_grant_type", "error_description": "only grant_type=client_credentials is supported"})),
        (status = 401, description = "`invalid_client`: unknown client, wrong secret, revoked client or malformed credentials.", body = OAuthErrorSchema,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"vorgang\"`")),
            example = json!({"error": "invalid_client", "error_description": "client authentication failed"})),
        (status = 413, description = "`invalid_request`: the form is larger than 4 KiB.", body = OAuthErrorSchema,
            headers(("Cache-Control" = String, description = "`no-store`")),
            example = json!({"error": "invalid_request", "error_description": "the request is too large"})),
        (status = 429, description = "`slow_down`: too many failed attempts for this client or address, counting attempts still being checked (at most 5 at once).", body = OAuthErrorSchema,
            headers(("Retry-After" = u64, description = "Seconds to wait.")),
            example = json!({"error": "slow_down", "error_description": "too many failed authentication attempts; retry later"})),
        (status = 500, description = "`server_error`.", body = OAuthErrorSchema),
        (status = 503, description = "`temporarily_unavailable`.", body = OAuthErrorSchema,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    security((), ("clientBasic" = []))
)]
#[expect(dead_code, reason = "documentation only")]
fn token() {}

/// The public keys that verify our access tokens
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json", operation_id = "getJwks",
    tag = "Token",
    responses(
        (status = 200, description = "JWK set.", body = JwksSchema,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    ),
    security(())
)]
#[expect(dead_code, reason = "documentation only")]
fn jwks() {}

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
        ("environment" = Option<EnvironmentSchema>, Query,
            description = "`TEST` (default: Europace's test mode) or `PRODUCTION` (real business). No other query parameter is allowed."),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 visible ASCII characters, unique per request you mean. The same key with the same body and environment gets the first answer back (201, 422, 502, 504 replayed; after 503 a new attempt under the same drkleinrkVorgangsnummer); with another body 422; while the first request runs 409."),
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
            (ImportRequestSchema = "application/json"),
        )
    ),
    responses(
        (status = 201, description = "Imported.", body = ImportCreated,
            headers(
                ("Location" = String, description = "`/vorgang/{drkleinrkVorgangsnummer}` (relative)"),
                ("Cache-Control" = String, description = "`no-store`"),
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
#[expect(dead_code, reason = "documentation only")]
fn create_vorgang() {}

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
#[expect(dead_code, reason = "documentation only")]
fn get_vorgang() {}

/// Liveness: the process answers
#[utoipa::path(get, path = "/health/live", operation_id = "healthLive", tag = "Operations",
    responses((status = 200, description = "Up.", body = HealthSchema, example = json!({"status": "UP"}))),
    security(()))]
#[expect(dead_code, reason = "documentation only")]
fn health_live() {}

/// Readiness: a write to the database commits
#[utoipa::path(get, path = "/health/ready", operation_id = "healthReady", tag = "Operations",
    responses(
        (status = 200, description = "Ready.", body = HealthSchema, example = json!({"status": "UP", "database": "UP"})),
        (status = 503, description = "Not ready: the database does not answer or does not take writes (full disk, read-only).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait.")),
            example = json!({"type": "https://api.drkleinservice.de/problems/service-unavailable", "title": "Service unavailable", "status": 503, "detail": "not ready: the database does not take writes"})),
    ),
    security(()))]
#[expect(dead_code, reason = "documentation only")]
fn health_ready() {}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain; version=0.0.4")),
    security(()))]
#[expect(dead_code, reason = "documentation only")]
fn metrics() {}

/// This OpenAPI 3.1 document
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", tag = "Operations",
    responses((status = 200, description = "The document.", body = Object, content_type = "application/json")),
    security(()))]
#[expect(dead_code, reason = "documentation only")]
fn openapi_document() {}

/// The documentation page (Swagger UI, served by this service: no CDN)
#[utoipa::path(get, path = "/docs", operation_id = "getDocs", tag = "Operations",
    responses((status = 200, description = "HTML page rendering /openapi.json.", body = String, content_type = "text/html")),
    security(()))]
#[expect(dead_code, reason = "documentation only")]
fn docs_page() {}

/// The request body of `POST /vorgang`: a reference to the generated [`IMPORT_REQUEST_SCHEMA`]
/// component. Its schema is built at run time from the KEX files (see the module docs).
pub struct ImportRequestSchema;

impl PartialSchema for ImportRequestSchema {
    fn schema() -> RefOr<Schema> {
        // Placeholder, replaced by the generated schema in `build`.
        ObjectBuilder::new().into()
    }
}

impl ToSchema for ImportRequestSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(IMPORT_REQUEST_SCHEMA)
    }
}

/// Adds the security schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/oauth2/token",
                    Scopes::from_iter([(IMPORT_SCOPE, "import Vorgänge and read their state")]),
                ))],
                "OAuth2 client credentials: get a token at `POST /oauth2/token` with your \
                 client id and secret, send it as `Authorization: Bearer …`.",
            )),
        );
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /oauth2/token` (a signed JWT) with the scope \
                         `drkleinrk-api/vorgang:import`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "clientBasic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Client authentication at the token endpoint: `client_id:client_secret`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The utoipa part of the document: paths, answers and our own types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vorgang Import API",
        description = "Hand over consumer-credit leads to Dr. Klein Ratenkredit: `POST /vorgang` \
            imports a Vorgang (Europace KEX format) with its Tippgeber, comments and the partner's \
            data into Europace KreditSmart. Authenticate with OAuth2 client credentials \
            (`POST /oauth2/token`). Without `?environment=PRODUCTION` the import goes to \
            Europace's test mode. Every error answer except the token endpoint's is \
            `application/problem+json` (RFC 9457) and never quotes a submitted value.\n\n\
            The schema of `vorgang` is generated from Europace's KEX Vorgang JSON schema \
            (MIT licence, Copyright (c) 2017 Europace AG).",
        contact(name = "Dr. Klein Ratenkredit Support", email = "info@drklein-rk.de"),
    ),
    servers((url = "/", description = "This service")),
    paths(
        token,
        jwks,
        create_vorgang,
        get_vorgang,
        health_live,
        health_ready,
        metrics,
        openapi_document,
        docs_page
    ),
    components(schemas(
        ImportCreated,
        ImportPending,
        ImportView,
        Problem,
        ImportProblem,
        ViolationSchema,
        ImportStatusSchema,
        EnvironmentSchema,
        TokenRequestSchema,
        TokenResponseSchema,
        OAuthErrorSchema,
        JwksSchema,
        HealthSchema
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "Token", description = "OAuth2 client credentials and the keys that verify our tokens."),
        (name = "Vorgang", description = "Import a Vorgang and read its state."),
        (name = "Operations", description = "Health, metrics and this documentation."),
    )
)]
pub struct ApiDoc;

// ---------------------------------------------------------------------------------------------
// The generated request schema
// ---------------------------------------------------------------------------------------------

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

fn stem(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

/// `schema`, or `null`: the form of every optional member (`null` counts as absent).
fn or_null(schema: Value) -> Value {
    match schema {
        Value::Object(mut map) if !map.contains_key("$ref") && map.contains_key("type") => {
            if let Some(Value::String(kind)) = map.get("type").cloned() {
                map.insert("type".into(), json!([kind, "null"]));
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
            Value::Object(map)
        }
        other => json!({ "anyOf": [other, { "type": "null" }] }),
    }
}

/// A required string: present, not `null`, not blank.
fn required_string(description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": "\\S",
        "description": format!("{description} Required; must not be empty or blank."),
    })
}

const EMAIL_PATTERN: &str = "^[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+$";

/// An optional e-mail address.
fn email(description: &str) -> Value {
    json!({
        "type": ["string", "null"],
        "format": "email",
        "maxLength": 254,
        "pattern": EMAIL_PATTERN,
        "description": description,
    })
}

/// A KEX property or `items` schema converted, without the `null` of optional members.
fn convert_node(schema: &Value) -> Value {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return schema_ref(stem(target));
    }
    let mut out = Map::new();
    for keyword in ["type", "format", "enum", "description"] {
        if let Some(value) = schema.get(keyword) {
            out.insert(keyword.into(), value.clone());
        }
    }
    if let Some(items) = schema.get("items") {
        out.insert("items".into(), convert_node(items));
    }
    Value::Object(out)
}

/// Adds the rules the service checks beyond the KEX types (DESIGN §6), mirroring the rules of
/// `vorgang-model`'s schema walk: ranges bound to one property of one type, and rules by
/// property name (IBAN, e-mail, `geburtsdatum` in the past, amounts not negative).
fn add_rules(type_name: &str, property: &str, node: &mut Map<String, Value>) {
    fn describe(node: &mut Map<String, Value>, text: &str) {
        let text = match node.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{existing} {text}"),
            None => text.to_owned(),
        };
        node.insert("description".into(), Value::String(text));
    }
    let kind = node.get("type").and_then(Value::as_str).map(str::to_owned);
    let plain_string = kind.as_deref() == Some("string")
        && !node.contains_key("enum")
        && !node.contains_key("format");
    match (type_name, property) {
        ("Finanzierungswunsch", "kreditbetrag") => {
            describe(node, "Greater than 0.");
            node.insert("exclusiveMinimum".into(), json!(0));
        }
        ("Finanzierungswunsch", "laufzeitInMonaten") => {
            describe(node, "1 to 120 months.");
            node.insert("minimum".into(), json!(1));
            node.insert("maximum".into(), json!(120));
        }
        ("Wohnsituation", "anzahlPersonenImHaushalt") => {
            describe(node, "At least 1.");
            node.insert("minimum".into(), json!(1));
        }
        _ if plain_string && property == "iban" => {
            describe(
                node,
                "IBAN in electronic format (capital letters and digits, no spaces); \
                 the mod-97 check digits are checked.",
            );
            node.insert("pattern".into(), json!("^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"));
        }
        _ if plain_string && property == "email" => {
            describe(node, "E-mail address.");
            node.insert("format".into(), json!("email"));
            node.insert("maxLength".into(), json!(254));
            node.insert("pattern".into(), json!(EMAIL_PATTERN));
        }
        _ if property == "geburtsdatum" && node.get("format") == Some(&json!("date")) => {
            describe(node, "Must lie in the past.");
        }
        _ if matches!(kind.as_deref(), Some("number" | "integer"))
            && (property == "rateMonatlich"
                || property.to_ascii_lowercase().contains("betrag")) =>
        {
            describe(node, "Must not be negative.");
            node.insert("minimum".into(), json!(0));
        }
        _ => {}
    }
}

/// `vorgang` members only the service sets (DESIGN §6).
const SERVICE_OWNED: &[&str] = &[
    "kundenbetreuer",
    "tippgeber",
    "bearbeiter",
    "eigeneVorgangsnummer",
];

/// A member only the service sets: absent or `null`.
fn service_owned(property: &str, kex: &Value) -> Value {
    let kex_type = kex
        .get("$ref")
        .and_then(Value::as_str)
        .map_or_else(|| "string".to_owned(), |file| stem(file).to_owned());
    json!({
        "type": "null",
        "readOnly": true,
        "description": format!(
            "Set by the service alone (KEX type: {kex_type}): {}. Leave it out; any value \
             other than null is refused with 422, because it would reroute the case.",
            match property {
                "kundenbetreuer" => "the Dr. Klein Kundenbetreuer",
                "tippgeber" => "the partnerId of the top-level `tippgeber`, found or created in Europace Partnermanagement",
                "bearbeiter" => "the Bearbeiter at Europace",
                _ => "our drkleinrkVorgangsnummer",
            }
        ),
    })
}

/// The members of the KEX `Vorgang` that our API constrains further.
fn vorgang_property(property: &str, kex: &Value) -> Option<Value> {
    if SERVICE_OWNED.contains(&property) {
        return Some(service_owned(property, kex));
    }
    match property {
        "antragsteller1" => Some(json!({
            "description": "The first applicant. Required, with personendaten.vorname and \
                            personendaten.nachname.",
            "allOf": [
                convert_node(kex),
                {
                    "type": "object",
                    "required": ["personendaten"],
                    "properties": {
                        "personendaten": {
                            "type": "object",
                            "required": ["vorname", "nachname"],
                            "properties": {
                                "vorname": required_string("First name."),
                                "nachname": required_string("Last name."),
                            },
                        },
                    },
                },
            ],
        })),
        "kommentare" => Some(json!({
            "type": ["array", "null"],
            "description": format!(
                "Comments for the Finanzierungsberater (KreditSmart Ereignislasche), followed \
                 by the top-level `kommentare`. At most {MAX_KOMMENTARE} comments in total \
                 (both lists together), each at most {MAX_KOMMENTAR_CHARS} characters."
            ),
            "maxItems": MAX_KOMMENTARE,
            "items": { "type": "string", "maxLength": MAX_KOMMENTAR_CHARS },
        })),
        _ => None,
    }
}

/// One KEX schema file converted to an OpenAPI 3.1 schema object.
fn convert_file(name: &str, file: &Value) -> Value {
    let mut own = Map::new();
    if let Some(values) = file.get("enum") {
        own.insert("type".into(), json!("string"));
        own.insert("enum".into(), values.clone());
        if let Some(description) = file.get("description") {
            own.insert("description".into(), description.clone());
        }
        return Value::Object(own);
    }
    let is_root = name == stem(ROOT_SCHEMA_FILE);
    let mut properties = Map::new();
    if let Some(members) = file.get("properties").and_then(Value::as_object) {
        for (property, kex) in members {
            let schema = if is_root {
                vorgang_property(property, kex)
            } else {
                None
            };
            let schema = schema.unwrap_or_else(|| {
                let mut node = convert_node(kex);
                if let Value::Object(map) = &mut node {
                    add_rules(name, property, map);
                }
                or_null(node)
            });
            properties.insert(property.clone(), schema);
        }
    }
    own.insert("type".into(), json!("object"));
    own.insert("properties".into(), Value::Object(properties));
    let mut description = file
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if is_root {
        own.insert("required".into(), json!(["antragsteller1"]));
        description = Some(format!(
            "The Vorgang in Europace's KEX format (KEX Vorgang Import API), forwarded to \
             Europace unchanged: no member lost, renamed or reformatted. Unknown members are \
             accepted and forwarded too; each is named in `messages` as a warning. Generated \
             from the KEX Vorgang JSON schema: {}",
            SCHEMA_LICENSE
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
        ));
    }
    let parent = file
        .get("extends")
        .and_then(|extends| extends.get("$ref"))
        .and_then(Value::as_str);
    let mut out = match parent {
        Some(parent) => {
            let mut out = Map::new();
            out.insert(
                "allOf".into(),
                json!([schema_ref(stem(parent)), Value::Object(own)]),
            );
            out
        }
        None => own,
    };
    if let Some(description) = description {
        out.insert("description".into(), Value::String(description));
    }
    Value::Object(out)
}

/// Every embedded KEX schema file (`X.json`) converted to the OpenAPI 3.1 component `X`.
///
/// A file that is not JSON is left out (and logged); `vorgang-model`'s tests prove there is
/// none.
#[must_use]
pub fn kex_components() -> Map<String, Value> {
    let mut out = Map::new();
    for (file, text) in SCHEMA_FILES {
        let Some(name) = file.strip_suffix(".json") else {
            continue;
        };
        match serde_json::from_str::<Value>(text) {
            Ok(schema) => {
                out.insert(name.to_owned(), convert_file(name, &schema));
            }
            Err(error) => {
                tracing::error!(file = %file, error = %error, "KEX schema file is not JSON; left out of the OpenAPI document");
            }
        }
    }
    out
}

/// Our own request components: `ImportRequest` and what it names besides the KEX `Vorgang`.
fn request_components() -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        IMPORT_REQUEST_SCHEMA.into(),
        json!({
            "type": "object",
            "description": format!(
                "The body of `POST /vorgang`: a JSON object of at most {MAX_BODY_BYTES} bytes \
                 (256 KiB), nested at most 32 levels deep (this object counts as 1), without \
                 duplicate keys. `null` counts as absent. Unknown members are accepted and \
                 named in `messages` as warnings."
            ),
            "required": ["vorgang", "tippgeber"],
            "properties": {
                "vorgang": schema_ref(stem(ROOT_SCHEMA_FILE)),
                "tippgeber": schema_ref("Tippgeber"),
                "kommentare": {
                    "type": ["array", "null"],
                    "description": format!(
                        "Free-text comments, shown to the Finanzierungsberater in the KreditSmart \
                         Ereignislasche after `vorgang.kommentare`. At most {MAX_KOMMENTARE} in \
                         total (with `vorgang.kommentare`), each at most {MAX_KOMMENTAR_CHARS} \
                         characters."
                    ),
                    "maxItems": MAX_KOMMENTARE,
                    "items": { "type": "string", "maxLength": MAX_KOMMENTAR_CHARS },
                },
                "partner": or_null(schema_ref("PartnerDaten")),
            },
        }),
    );
    out.insert(
        "Tippgeber".into(),
        json!({
            "type": "object",
            "description": "The person at the partner who gave the tip. Found or created as a \
                            partner in Europace Partnermanagement, keyed by \
                            `externeMitarbeiternummer` within your organisation, and set as \
                            `vorgang.tippgeber` of the import.",
            "required": ["externeMitarbeiternummer", "vorname", "nachname"],
            "properties": {
                "externeMitarbeiternummer": required_string(
                    "The Tippgeber's employee number at the partner, unique within your organisation."
                ),
                "vorname": required_string("First name."),
                "nachname": required_string("Last name."),
                "anrede": {
                    "type": ["string", "null"],
                    "enum": ["HERR", "FRAU", null],
                    "description": "Salutation.",
                },
                "telefon": { "type": ["string", "null"], "description": "Phone number." },
                "email": email("E-mail address."),
            },
        }),
    );
    let alias_conflict = |name: &str, alias: &str| {
        json!({
            "not": {
                "required": [name, alias],
                "properties": {
                    name: { "not": { "type": "null" } },
                    alias: { "not": { "type": "null" } },
                },
            },
        })
    };
    out.insert(
        "PartnerDaten".into(),
        json!({
            "type": "object",
            "description": "The partner's own data. KEX has no field for it: it is stored with \
                            the import and shown to the Finanzierungsberater as one extra comment \
                            line. The spellings of the published table, `vertriebsschlüssel` and \
                            `kundenummer`, are accepted as aliases; a field given under both \
                            names (neither null) is refused with 422.",
            "properties": {
                "vertriebsschluessel": {
                    "type": ["string", "null"],
                    "description": "The partner's sales key (Vertriebsschlüssel).",
                },
                "vertriebsschlüssel": {
                    "type": ["string", "null"],
                    "deprecated": true,
                    "description": "Alias of `vertriebsschluessel`.",
                },
                "kundennummer": {
                    "type": ["string", "null"],
                    "description": "The customer's number at the partner.",
                },
                "kundenummer": {
                    "type": ["string", "null"],
                    "deprecated": true,
                    "description": "Alias of `kundennummer`.",
                },
                "custom": {
                    "type": ["array", "null"],
                    "description": format!(
                        "Custom key/values not covered by this interface, at most \
                         {MAX_CUSTOM_ENTRIES} entries; keys unique."
                    ),
                    "maxItems": MAX_CUSTOM_ENTRIES,
                    "items": schema_ref("CustomEntry"),
                },
            },
            "allOf": [
                alias_conflict("vertriebsschluessel", "vertriebsschlüssel"),
                alias_conflict("kundennummer", "kundenummer"),
            ],
        }),
    );
    out.insert(
        "CustomEntry".into(),
        json!({
            "type": "object",
            "description": "One custom key/value.",
            "required": ["key", "value"],
            "properties": {
                "key": required_string("The key; unique within `custom`."),
                "value": {
                    "type": ["boolean", "integer", "string"],
                    "minimum": i64::MIN,
                    "maximum": i64::MAX,
                    "description": "A boolean, a 64-bit integer (no fraction, not even `.0`) \
                                    or a string; dates travel as strings. Required, not null.",
                },
            },
        }),
    );
    out
}

/// Builds the whole document: the utoipa part, then the generated request components.
fn build() -> Value {
    let mut document = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(document) => document,
        Err(error) => {
            tracing::error!(error = %error, "could not serialise the OpenAPI document");
            json!({})
        }
    };
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        for (name, schema) in kex_components() {
            if OWN_SCHEMA_NAMES.contains(&name.as_str()) {
                tracing::error!(component = %name, "a KEX schema file has the name of one of our components; left out of the OpenAPI document");
                continue;
            }
            schemas.insert(name, schema);
        }
        schemas.extend(request_components());
    }
    // What the path macro cannot say: the published example as the request body example, and
    // the exact form of the `Idempotency-Key` header.
    if let Ok(seed) = serde_json::from_str::<Value>(SEED_REQUEST)
        && let Some(Value::Object(content)) =
            document.pointer_mut("/paths/~1vorgang/post/requestBody/content")
    {
        for media in content.values_mut() {
            if let Value::Object(media) = media {
                media.insert("example".into(), seed.clone());
            }
        }
    }
    if let Some(Value::Array(parameters)) = document.pointer_mut("/paths/~1vorgang/post/parameters")
    {
        for parameter in parameters {
            if parameter.get("name").and_then(Value::as_str) == Some("Idempotency-Key")
                && let Value::Object(parameter) = parameter
            {
                parameter.insert(
                    "schema".into(),
                    json!({
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_IDEMPOTENCY_KEY_LEN,
                        "pattern": "^[!-~]+$",
                    }),
                );
                parameter.insert(
                    "example".into(),
                    json!("0b3c2f1e-7d7a-4c5e-9f51-3c1f0e6a9b42"),
                );
            }
        }
    }
    document
}

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);
static DOCUMENT_JSON: LazyLock<String> =
    LazyLock::new(|| serde_json::to_string(&*DOCUMENT).unwrap_or_default());

/// The OpenAPI 3.1 document, built on first use.
#[must_use]
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(DOCUMENT_JSON.as_str())
}

// ---------------------------------------------------------------------------------------------
// The documentation page
// ---------------------------------------------------------------------------------------------

/// The page at `GET /docs`: Swagger UI (shipped inside `utoipa-swagger-ui`, served from
/// `/docs/…` by this service) rendering `/openapi.json`. Nothing is loaded from elsewhere.
const DOCS_PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Vorgang Import API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="alternate" type="application/json" href="/openapi.json" title="OpenAPI 3.1 document">
  <style>body { margin: 0; }</style>
</head>
<body>
  <noscript>
    <p>This page needs JavaScript. The API description is the OpenAPI 3.1 document
    <a href="/openapi.json">/openapi.json</a>.</p>
  </noscript>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        layout: "BaseLayout",
        presets: [SwaggerUIBundle.presets.apis]
      });
    };
  </script>
</body>
</html>
"##;

/// Only this service's own scripts and styles (and connections to it) on the docs page.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                        style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                        connect-src 'self'; frame-ancestors 'none'";

/// Swagger UI's configuration; only its own `swagger-initializer.js` reads it.
static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new([OPENAPI_PATH])));

/// `GET /docs` and the files of Swagger UI below it (`/docs/swagger-ui.css`, …); registered as
/// `/docs`, `/docs/` and `/docs/{file}` (one path segment).
pub async fn docs(request: HttpRequest) -> HttpResponse {
    let file = match request.match_info().get("file") {
        None | Some("index.html") => {
            return HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .body(DOCS_PAGE);
        }
        Some(file) => file,
    };
    if file.is_empty() || file.contains('/') {
        return Problem::not_found().error_response();
    }
    match utoipa_swagger_ui::serve(file, Arc::clone(&SWAGGER_CONFIG)) {
        Ok(Some(found)) => HttpResponse::Ok()
            .content_type(found.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
            .body(found.bytes.into_owned()),
        Ok(None) => Problem::not_found().error_response(),
        Err(error) => {
            tracing::error!(error = %error, "could not serve a Swagger UI file");
            Problem::not_found().error_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_forms() {
        assert_eq!(
            or_null(json!({"type": "string"})),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(
            or_null(json!({"type": "string", "enum": ["A"]})),
            json!({"type": ["string", "null"], "enum": ["A", null]})
        );
        assert_eq!(
            or_null(schema_ref("Anschrift")),
            json!({"anyOf": [{"$ref": "#/components/schemas/Anschrift"}, {"type": "null"}]})
        );
    }

    #[test]
    fn every_component_is_ours_or_a_kex_file() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for name in schemas.keys() {
            assert!(
                OWN_SCHEMA_NAMES.contains(&name.as_str())
                    || vorgang_model::schema::schema_file(&format!("{name}.json")).is_some(),
                "{name} is neither listed in OWN_SCHEMA_NAMES nor a KEX file"
            );
        }
        for name in OWN_SCHEMA_NAMES {
            assert!(schemas.contains_key(*name), "{name} missing");
        }
    }

    #[test]
    fn kex_files_become_components() {
        let components = kex_components();
        assert_eq!(
            components.len(),
            SCHEMA_FILES
                .iter()
                .filter(|(f, _)| f.ends_with(".json"))
                .count()
        );
        for name in OWN_SCHEMA_NAMES {
            assert!(!components.contains_key(*name), "{name} collides");
        }
        let text = serde_json::to_string(&components).unwrap_or_default();
        for dropped in [
            "javaType",
            "customDateTimePatter",
            "$schema",
            "extends",
            ".json\"",
        ] {
            assert!(!text.contains(dropped), "{dropped} left in the components");
        }
        // `extends` became `allOf` with the parent first.
        assert_eq!(
            components["Mietausgabe"]["allOf"][0],
            schema_ref("Haushaltsposition")
        );
        let wunsch = &components["Finanzierungswunsch"]["properties"];
        assert_eq!(wunsch["kreditbetrag"]["exclusiveMinimum"], json!(0));
        assert_eq!(wunsch["laufzeitInMonaten"]["minimum"], json!(1));
        assert_eq!(wunsch["laufzeitInMonaten"]["maximum"], json!(120));
        let vorgang = &components["Vorgang"]["properties"];
        for owned in SERVICE_OWNED {
            assert_eq!(vorgang[*owned]["readOnly"], json!(true), "{owned}");
        }
    }
}
