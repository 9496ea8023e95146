//! Routing and the request-log middleware.

pub mod health;
pub mod token;
pub mod vorgang;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, ResponseError as _, web};

use crate::problem::Problem;
use crate::state::AppState;

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(crate::body_deadline::enforce))
            .wrap(from_fn(log_request))
            .route("/oauth2/token", web::post().to(token::issue))
            .route("/.well-known/jwks.json", web::get().to(token::jwks))
            .route("/vorgang", web::post().to(vorgang::create))
            .route("/vorgang/{id}", web::get().to(vorgang::get))
            .route("/health/live", web::get().to(health::live))
            .route("/health/ready", web::get().to(health::ready))
            .route("/metrics", web::get().to(metrics))
            .route("/openapi.json", web::get().to(crate::openapi::openapi_json))
            .route("/docs{tail:.*}", web::get().to(crate::openapi::docs))
            .default_service(web::to(not_found)),
    );
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn not_found() -> HttpResponse {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such endpoint",
    )
    .error_response()
}

/// Logs method, route pattern, status and duration of each request: never the query string,
/// headers, client address or body (they may carry personal data or credentials).
async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(request).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .observe_http(&method, &route, status, elapsed.as_secs_f64());
    }
    tracing::info!(
        method = %method,
        route = %route,
        status,
        duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    Ok(response)
}
