//! Our authorization server over HTTP: `POST /oauth2/token` (RFC 6749 §4.4),
//! `POST /oauth2/introspect` (RFC 7662), `POST /oauth2/revoke` (RFC 7009),
//! `GET /.well-known/jwks.json` and `GET /.well-known/oauth-authorization-server` (RFC 8414).
//!
//! The three `POST` endpoints share everything about the HTTP request (one `Authorization`
//! header, a form of at most 4 KiB, no content coding), the client authentication and its
//! throttle (in [`auth::TokenEndpoint`]), `Cache-Control: no-store` on every answer and the
//! RFC 6749 §5.2 JSON error format, its `error_description` in the request's language (with
//! `Content-Language`; the `error` code is the same in every language).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use auth::{OAuthError, TokenRequest};
use futures::StreamExt as _;
use i18n::OAuth;
use utoipa::ToSchema;

use crate::state::AppState;

/// Largest accepted token request body.
const MAX_FORM_BYTES: usize = 4 * 1024;

// ---------------------------------------------------------------------------------------------
// Documentation-only types: the shapes of the answers the `auth` crate produces (and of the form
// it reads), which carry no `ToSchema` there. The API tests validate real answers against them,
// so they cannot drift unnoticed.
// ---------------------------------------------------------------------------------------------

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
    /// 403 (introspection only): the authenticated client lacks the scope
    /// `drkleinrk-api/token:introspect`.
    #[schema(rename = "insufficient_scope")]
    InsufficientScope,
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
    /// A human-readable explanation, never quoting a submitted value: German unless
    /// `Accept-Language` prefers English (see `Content-Language`).
    pub error_description: Option<String>,
}

/// The refusals introspection and revocation share (both authenticate their caller as the token
/// endpoint does and read a small form): their OpenAPI `responses`, written once.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // never built: only its OpenAPI description is used
enum CallerRefusals {
    #[response(
        status = 400,
        description = "`invalid_request`: `token` missing, a parameter repeated, not a form."
    )]
    BadRequest(OAuthErrorSchema),
    #[response(
        status = 401,
        description = "`invalid_client`: the caller's authentication failed.",
        headers(("WWW-Authenticate" = String, description = "`Basic realm=\"vorgang\"`"))
    )]
    Unauthorized(OAuthErrorSchema),
    #[response(
        status = 413,
        description = "`invalid_request`: the form is larger than 4 KiB."
    )]
    TooLarge(OAuthErrorSchema),
    #[response(
        status = 429,
        description = "`slow_down`: too many failed authentication attempts.",
        headers(("Retry-After" = u64, description = "Seconds to wait."))
    )]
    SlowDown(OAuthErrorSchema),
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

/// Introspection request (RFC 7662 §2.1), `application/x-www-form-urlencoded`. The caller
/// authenticates as a client (HTTP Basic, or `client_id` and `client_secret` in the form) that
/// holds the scope `drkleinrk-api/token:introspect`.
#[derive(ToSchema)]
#[schema(as = IntrospectionRequest)]
pub struct IntrospectionRequestSchema {
    /// The access token to check.
    pub token: String,
    /// Accepted and ignored: we issue access tokens only.
    #[schema(example = "access_token")]
    pub token_type_hint: Option<String>,
    /// The caller's client id, when not sent with HTTP Basic.
    pub client_id: Option<String>,
    /// The caller's client secret, when not sent with HTTP Basic.
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// Introspection answer (RFC 7662 §2.2). An inactive token (garbage, expired, signed by a key
/// that is not ours, revoked, of a revoked client) is only `{"active":false}`.
#[derive(ToSchema)]
#[schema(as = IntrospectionResponse)]
pub struct IntrospectionResponseSchema {
    /// Whether the token is currently valid.
    pub active: bool,
    /// Granted scopes, space-separated (active tokens only, like every member below).
    #[schema(example = "drkleinrk-api/vorgang:import")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Subject: the client id.
    pub sub: Option<String>,
    /// Audience.
    #[schema(example = "drkleinrk-api")]
    pub aud: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// Issued at, Unix seconds.
    pub iat: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: Option<String>,
}

/// Revocation request (RFC 7009 §2.1), `application/x-www-form-urlencoded`. The caller
/// authenticates as a client and revokes one of its own tokens.
#[derive(ToSchema)]
#[schema(as = RevocationRequest)]
pub struct RevocationRequestSchema {
    /// The access token to revoke.
    pub token: String,
    /// Accepted and ignored: we issue access tokens only.
    #[schema(example = "access_token")]
    pub token_type_hint: Option<String>,
    /// The client id, when not sent with HTTP Basic.
    pub client_id: Option<String>,
    /// The client secret, when not sent with HTTP Basic.
    #[schema(format = Password)]
    pub client_secret: Option<String>,
}

/// Authorization server metadata (RFC 8414).
#[derive(ToSchema)]
#[schema(as = AuthorizationServerMetadata)]
pub struct MetadataSchema {
    /// The `iss` of our tokens.
    pub issuer: String,
    /// `POST /oauth2/token`.
    pub token_endpoint: String,
    /// `GET /.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `POST /oauth2/introspect`.
    pub introspection_endpoint: String,
    /// `POST /oauth2/revoke`.
    pub revocation_endpoint: String,
    /// `["client_credentials"]`.
    pub grant_types_supported: Vec<String>,
    /// `[]`: no authorization endpoint.
    pub response_types_supported: Vec<String>,
    /// `["client_secret_basic","client_secret_post"]`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// As at the token endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// As at the token endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The scopes we grant.
    pub scopes_supported: Vec<String>,
}

fn oauth_error(error: &OAuthError) -> HttpResponse {
    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(error.status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    );
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if let Some(value) = &error.www_authenticate {
        response.insert_header((header::WWW_AUTHENTICATE, value.as_str()));
    }
    if let Some(seconds) = error.retry_after {
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    let lang = crate::language::current();
    let mut response = response.json(error.body(lang));
    crate::language::mark(response.headers_mut(), lang);
    response
}

fn invalid_request(description: OAuth) -> OAuthError {
    OAuthError::invalid_request(description)
}

/// The single `Authorization` header value, if any. Two or more: `invalid_request`, since which
/// one authenticates would be a guess (the first? the last? a proxy's?) and a request that says
/// two things about who it is must not be answered as either. Not visible ASCII: malformed
/// credentials, as RFC 7617 allows nothing else.
fn authorization_of(request: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let mut values = request.headers().get_all(header::AUTHORIZATION);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_request(OAuth::DuplicateAuthorization));
    }
    first
        .to_str()
        .map(|v| Some(v.to_owned()))
        .map_err(|_| OAuthError::invalid_client(OAuth::MalformedBasic))
}

/// The form body, read up to [`MAX_FORM_BYTES`]: refused by its announced `Content-Length`
/// before any of it is read, or as soon as a body without one (chunked) grows past the limit.
/// Every refusal is an RFC 6749 error (never actix's plain-text answers).
async fn read_form(
    request: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Vec<u8>, OAuthError> {
    let too_large = || OAuthError::request_too_large(MAX_FORM_BYTES);
    if let Some(length) = request.headers().get(header::CONTENT_LENGTH) {
        match length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(length) if length > MAX_FORM_BYTES as u64 => return Err(too_large()),
            Some(_) => {}
            None => return Err(invalid_request(OAuth::BadContentLength)),
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| invalid_request(OAuth::BodyIncomplete))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Checks everything about the HTTP request that is not OAuth yet: one `Authorization` header,
/// the form content type, no content coding, the size and the form encoding.
async fn token_request(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<TokenRequest, OAuthError> {
    let authorization = authorization_of(request)?;
    let form_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(invalid_request(OAuth::NotAForm));
    }
    // We decode no content coding: a compressed form would be read as garbage (and a small
    // compressed body could expand to a large one).
    let coded = request
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .any(|v| {
            !v.to_str()
                .is_ok_and(|v| v.trim().eq_ignore_ascii_case("identity"))
        });
    if coded {
        return Err(invalid_request(OAuth::ContentEncoding));
    }
    let body = read_form(request, payload).await?;
    let form = auth::parse_form(&body)?;
    Ok(TokenRequest {
        authorization,
        form,
        remote_ip: request.peer_addr().map(|a| a.ip()),
    })
}

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
// Every answer, success or error, is JSON with `Cache-Control: no-store` (RFC 6749 §5.1, §5.2).
// Each one is counted: issued, or refused by its `error` code.
pub async fn issue(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let result = match token_request(&request, payload).await {
        Ok(token_request) => state.auth.endpoint.handle(token_request).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(token) => {
            state.metrics.observe_token_issued();
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(token)
        }
        Err(error) => {
            state.metrics.observe_token_refused(error.error);
            oauth_error(&error)
        }
    }
}

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
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    // A replica that issues no tokens must still publish a key rotated in by another replica or
    // `keys rotate` (at most one reload per reload interval).
    state.auth.keys.reload_if_due().await;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.auth.keys.jwks())
}

/// Checks whether an access token is currently valid (RFC 7662)
///
/// For services of Dr. Klein that accept our tokens: authenticate as a client holding the scope
/// `drkleinrk-api/token:introspect` (HTTP Basic or form, as at the token endpoint) and send the
/// token in the form. The answer is `{"active":false}` for anything not currently valid
/// (garbage, expired, another issuer's, revoked, of a revoked client), else the token's claims.
#[utoipa::path(
    post,
    path = "/oauth2/introspect", operation_id = "introspectToken",
    tag = "Token",
    request_body(
        content = IntrospectionRequestSchema,
        content_type = "application/x-www-form-urlencoded",
        description = "The introspection request form."
    ),
    responses(
        (status = 200, description = "Whether the token is active, and its claims if it is.", body = IntrospectionResponseSchema,
            headers(("Cache-Control" = String, description = "`no-store`")),
            example = json!({"active": true, "scope": "drkleinrk-api/vorgang:import", "client_id": "drk_0123456789abcdef0123456789abcdef", "sub": "drk_0123456789abcdef0123456789abcdef", "aud": "drkleinrk-api", "iss": "https://import.drklein-rk.de", "exp": 1_767_225_600, "iat": 1_767_224_700, "jti": "5f0c6b1e-7d0a-4a53-9a3e-3f7b1c2d4e5f", "token_type": "Bearer"})),
        CallerRefusals,
        (status = 403, description = "`insufficient_scope`: the caller lacks `drkleinrk-api/token:introspect`.", body = OAuthErrorSchema,
            example = json!({"error": "insufficient_scope", "error_description": "the client lacks the scope drkleinrk-api/token:introspect"})),
        (status = 503, description = "`temporarily_unavailable`.", body = OAuthErrorSchema,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    // As at the token endpoint: HTTP Basic, or client_id and client_secret in the form
    // (client_secret_post, which OpenAPI cannot state as a security scheme).
    security((), ("clientBasic" = []))
)]
pub async fn introspect(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let result = match token_request(&request, payload).await {
        Ok(token_request) => state.auth.endpoint.introspect(token_request).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(answer) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(answer),
        Err(error) => oauth_error(&error),
    }
}

/// Revokes one of your access tokens (RFC 7009)
///
/// Authenticate as at the token endpoint and send one of your own tokens. The answer is `200`
/// whatever the token was (unknown, expired, not yours: nothing happens). When it arrives, the
/// token is refused everywhere: `401` at `/vorgang`, `{"active":false}` at introspection.
#[utoipa::path(
    post,
    path = "/oauth2/revoke", operation_id = "revokeToken",
    tag = "Token",
    request_body(
        content = RevocationRequestSchema,
        content_type = "application/x-www-form-urlencoded",
        description = "The revocation request form."
    ),
    responses(
        (status = 200, description = "Done (also for a token that was not valid or not yours). Empty body.",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        CallerRefusals,
        (status = 503, description = "`temporarily_unavailable`: nothing may have been revoked; retry.", body = OAuthErrorSchema,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
    // As at the token endpoint: HTTP Basic, or client_id and client_secret in the form
    // (client_secret_post, which OpenAPI cannot state as a security scheme).
    security((), ("clientBasic" = []))
)]
pub async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let result = match token_request(&request, payload).await {
        Ok(token_request) => state.auth.endpoint.revoke(token_request).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .finish(),
        Err(error) => oauth_error(&error),
    }
}

/// Authorization server metadata (RFC 8414)
///
/// Where our token, introspection and revocation endpoints and our keys are, and what they
/// support: for OAuth client libraries that configure themselves.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server", operation_id = "getAuthorizationServerMetadata",
    tag = "Token",
    responses(
        (status = 200, description = "The metadata.", body = MetadataSchema,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    ),
    security(())
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.auth.issuer.settings().issuer.as_str();
    let base = issuer.trim_end_matches('/');
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(serde_json::json!({
            "issuer": issuer,
            "token_endpoint": format!("{base}/oauth2/token"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "introspection_endpoint": format!("{base}/oauth2/introspect"),
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "scopes_supported": [auth::IMPORT_SCOPE, auth::INTROSPECT_SCOPE],
        }))
}
