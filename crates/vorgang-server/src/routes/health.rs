//! `GET /health/live` and `GET /health/ready`.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Live: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "UP"}))
}

/// Ready: the database answers.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.importer.store().ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "UP", "database": "UP"})),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"status": "DOWN", "database": "DOWN"}))
        }
    }
}
