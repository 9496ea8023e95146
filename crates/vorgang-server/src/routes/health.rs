//! `GET /health/live` and `GET /health/ready`.

use actix_web::{HttpResponse, ResponseError as _, web};

use crate::problem::Problem;
use crate::state::AppState;

/// Live: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "UP"}))
}

/// Ready: a write to the database commits (`Importer::ready`: the store upserts a heartbeat row).
///
/// A database that still answers reads but refuses writes (full disk, read-only, a write lock
/// held elsewhere) makes the replica unready: it could not store a single import. The answer is
/// then `503` problem+json with `Retry-After`, like every other error answer.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.importer.ready().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "UP", "database": "UP"})),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            Problem::unavailable("not ready: the database does not take writes").error_response()
        }
    }
}
