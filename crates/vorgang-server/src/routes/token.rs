//! `POST /oauth2/token` (RFC 6749 §4.4) and `GET /.well-known/jwks.json`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use auth::{OAuthError, TokenRequest};
use futures::StreamExt as _;

use crate::state::AppState;

/// Largest accepted token request body.
const MAX_FORM_BYTES: usize = 4 * 1024;

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
    response.json(serde_json::json!({
        "error": error.error,
        "error_description": error.description,
    }))
}

fn invalid_request(description: &str) -> OAuthError {
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
        return Err(invalid_request(
            "more than one Authorization header; send exactly one",
        ));
    }
    first
        .to_str()
        .map(|v| Some(v.to_owned()))
        .map_err(|_| OAuthError::invalid_client("malformed HTTP Basic credentials"))
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
            None => return Err(invalid_request("the Content-Length header is malformed")),
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| invalid_request("the request body could not be read completely"))?;
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
        return Err(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
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
        return Err(invalid_request(
            "Content-Encoding is not supported; send the form uncompressed",
        ));
    }
    let body = read_form(request, payload).await?;
    let form = auth::parse_form(&body)?;
    Ok(TokenRequest {
        authorization,
        form,
        remote_ip: request.peer_addr().map(|a| a.ip()),
    })
}

/// `POST /oauth2/token`. Every answer, success or error, is JSON with `Cache-Control: no-store`
/// (RFC 6749 §5.1, §5.2). Each one is counted: issued, or refused by its `error` code.
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

/// `GET /.well-known/jwks.json`: the public keys that verify our tokens.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    // A replica that issues no tokens must still publish a key rotated in by another replica or
    // `keys rotate` (at most one reload per reload interval).
    state.auth.keys.reload_if_due().await;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.auth.keys.jwks())
}
