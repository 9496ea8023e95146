//! Shared state of the HTTP handlers.

use std::sync::Arc;

use vorgang_core::Importer;

use crate::auth::AuthService;

/// What every handler may use. Built once by [`crate::startup::Application::build`].
pub struct AppState {
    /// The import use case.
    pub importer: Importer,
    /// Token issuing and validation.
    pub auth: Arc<AuthService>,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// The per-client rate limit of `POST /vorgang` (`limits.imports_per_minute`).
    pub import_limiter: crate::rate_limit::ImportRateLimiter,
    /// The webhook outbox (its depth is a gauge of `/metrics`).
    pub webhooks: Arc<dyn vorgang_core::WebhookStore>,
}
