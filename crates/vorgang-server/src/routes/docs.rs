//! `GET /openapi.json` and `GET /docs`: the API's OpenAPI document and the page that renders it
//! (Swagger UI, shipped inside `utoipa-swagger-ui` with its `vendored` feature, so the build
//! downloads nothing but crates and the page loads nothing from elsewhere).
//!
//! The document is built by the `openapi` module from these routes' own annotations. It reaches
//! the handler as application data ([`OpenApiDocument`], registered by the wiring in `startup`)
//! rather than by a call into `openapi`, which would make the routes and the document depend on
//! each other in a circle.

use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};

use crate::problem::Problem;

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The serialised OpenAPI document that `GET /openapi.json` serves (application data).
#[derive(Debug, Clone, Copy)]
pub struct OpenApiDocument(pub &'static str);

/// This OpenAPI 3.1 document
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", tag = "Operations",
    responses((status = 200, description = "The document.", body = Object, content_type = "application/json")),
    security(()))]
pub async fn openapi_json(document: web::Data<OpenApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(document.0)
}

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

/// The documentation page (Swagger UI, served by this service: no CDN)
#[utoipa::path(get, path = "/docs", operation_id = "getDocs", tag = "Operations",
    responses((status = 200, description = "HTML page rendering /openapi.json.", body = String, content_type = "text/html")),
    security(()))]
// Also serves the files of Swagger UI below it (`/docs/swagger-ui.css`, …): registered as
// `/docs`, `/docs/` and `/docs/{file}` (one path segment).
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
