//! `GET /health/live` and `GET /health/ready`.

use actix_web::{HttpResponse, ResponseError as _, web};
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::state::AppState;

/// Health answer.
///
/// Documentation only: the handlers below write this shape with `json!`; the API tests check the
/// real answers against it.
#[derive(ToSchema)]
#[schema(as = Health, description = "Health answer.")]
pub struct HealthSchema {
    /// `UP` or `DOWN`.
    #[schema(example = "UP")]
    pub status: String,
    /// `UP` or `DOWN` (readiness only).
    #[schema(example = "UP")]
    pub database: Option<String>,
}

/// Liveness: the process answers
#[utoipa::path(get, path = "/health/live", operation_id = "healthLive", tag = "Operations",
    responses((status = 200, description = "Up.", body = HealthSchema, example = json!({"status": "UP"}))),
    security(()))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "UP"}))
}

/// Readiness: a write to the database commits
#[utoipa::path(get, path = "/health/ready", operation_id = "healthReady", tag = "Operations",
    responses(
        (status = 200, description = "Ready.", body = HealthSchema, example = json!({"status": "UP", "database": "UP"})),
        (status = 503, description = "Not ready: the database does not answer or does not take writes (full disk, read-only).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait.")),
            example = json!({"type": "https://api.drkleinservice.de/problems/service-unavailable", "title": "Service unavailable", "status": 503, "detail": "not ready: the database does not take writes"})),
    ),
    security(()))]
// `Importer::ready`: the store upserts a heartbeat row. A database that still answers reads but refuses
// writes (full disk, read-only, a write lock held elsewhere) makes the replica unready: it could
// not store a single import. The answer is then `503` problem+json with `Retry-After`, like every
// other error answer.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.importer.ready().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "UP", "database": "UP"})),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            Problem::unavailable(i18n::Detail::NotReady).error_response()
        }
    }
}
