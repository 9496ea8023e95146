//! `POST /oauth2/token` (RFC 6749 §4.4) and `GET /.well-known/jwks.json`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use auth::{OAuthError, TokenRequest};

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

fn invalid_request(description: &str) -> HttpResponse {
    oauth_error(&OAuthError::invalid_request(description))
}

/// `POST /oauth2/token`.
pub async fn issue(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
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
        return invalid_request("the body must be application/x-www-form-urlencoded");
    }
    if body.len() > MAX_FORM_BYTES {
        return invalid_request("the request is too large");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let remote_ip = request.peer_addr().map(|a| a.ip());
    match state
        .auth
        .endpoint
        .handle(TokenRequest {
            authorization,
            form,
            remote_ip,
        })
        .await
    {
        Ok(token) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(token),
        Err(error) => oauth_error(&error),
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
