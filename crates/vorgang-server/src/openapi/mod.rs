//! The OpenAPI 3.1 document of the API, served at `GET /openapi.json` (by
//! [`crate::routes::docs`], which the wiring in `startup` hands [`document_json`]).
//!
//! It is assembled here from what the code says elsewhere, so it cannot drift from it:
//!
//! - the operations: `#[utoipa::path]` on the real handlers in [`crate::routes`] (paths,
//!   parameters, answers, headers, examples);
//! - the answer types: `ToSchema` on the real types (`ImportCreated`, `ImportView`,
//!   `ImportPending`, [`Problem`] and its `Violation` ([`FieldError`]); `ImportStatus` and
//!   `Environment` through the `openapi` features of `vorgang-core` and `vorgang-model`), and
//!   documentation-only shapes for
//!   what the `auth` crate and the health handlers write (`routes::token`, `routes::health`;
//!   the API tests check real answers against them);
//! - the request body: [`request`] (our wrapper) and [`kex`] (every KEX type), both rendered from
//!   `vorgang-model`'s resolved schema and rules, which the validator checks.
//!
//! The document is built once per process ([`document`]) and served as is.
//!
//! Modules: `kex` (→ vorgang-model only), `request` (→ kex, `routes::vorgang`), this one (→ both,
//! `routes`, `problem`).

pub mod kex;
pub mod request;

use std::sync::LazyLock;

use auth::IMPORT_SCOPE;
use serde_json::{Value, json};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use vorgang_core::ImportStatus;
use vorgang_model::Environment;

pub use request::IMPORT_REQUEST_SCHEMA;

use crate::problem::{FieldError, ImportProblem, Problem};
use crate::routes;
use crate::routes::health::HealthSchema;
use crate::routes::token::{
    IntrospectionRequestSchema, IntrospectionResponseSchema, JwksSchema, MetadataSchema,
    OAuthErrorSchema, RevocationRequestSchema, TokenRequestSchema, TokenResponseSchema,
};
use crate::routes::vorgang::{
    ImportAccepted, ImportCreated, ImportList, ImportPending, ImportQueued, ImportView,
    QueuedStatus,
};

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
                    Scopes::from_iter([
                        (IMPORT_SCOPE, "import Vorgänge and read their state"),
                        (
                            auth::INTROSPECT_SCOPE,
                            "introspect access tokens (other Dr. Klein services)",
                        ),
                    ]),
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
            **Language.** The texts of error answers (`title`, `detail`, `errors[].detail`, the \
            token endpoint's `error_description`) are German unless `Accept-Language` prefers \
            English (`en`, RFC 9110 quality values); `Content-Language` (`de` or `en`) says which. \
            The examples in this document show the English texts. What programs read (`type`, \
            `error`, pointers, the codes in `messages`, `europaceMessages`) never changes with \
            the language.\n\n\
            The schema of `vorgang` is generated from Europace's KEX Vorgang JSON schema \
            (MIT licence, Copyright (c) 2017 Europace AG).",
        contact(name = "Dr. Klein Ratenkredit Support", email = "info@drklein-rk.de"),
    ),
    servers((url = "/", description = "This service")),
    paths(
        routes::token::issue,
        routes::token::jwks,
        routes::token::introspect,
        routes::token::revoke,
        routes::token::metadata,
        routes::vorgang::create,
        routes::vorgang::list,
        routes::vorgang::get,
        routes::health::live,
        routes::health::ready,
        routes::metrics,
        routes::docs::openapi_json,
        routes::docs::docs
    ),
    components(schemas(
        ImportCreated,
        ImportPending,
        ImportQueued,
        QueuedStatus,
        ImportAccepted,
        ImportView,
        ImportList,
        Problem,
        ImportProblem,
        FieldError,
        ImportStatus,
        Environment,
        TokenRequestSchema,
        TokenResponseSchema,
        OAuthErrorSchema,
        JwksSchema,
        IntrospectionRequestSchema,
        IntrospectionResponseSchema,
        RevocationRequestSchema,
        MetadataSchema,
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

/// The components utoipa collects from the handlers and types (all but the request body's).
fn annotated() -> Value {
    match serde_json::to_value(ApiDoc::openapi()) {
        Ok(document) => document,
        Err(error) => {
            tracing::error!(error = %error, "could not serialise the OpenAPI document");
            json!({})
        }
    }
}

/// The names of the components that are ours, not KEX types: none of them may be the name of a
/// KEX file (it would hide that type).
#[must_use]
pub fn own_schema_names() -> Vec<String> {
    let mut names: Vec<String> = annotated()["components"]["schemas"]
        .as_object()
        .map(|schemas| schemas.keys().cloned().collect())
        .unwrap_or_default();
    names.extend(
        request::components(vorgang_model::schema::kex())
            .keys()
            .cloned(),
    );
    names.sort();
    names
}

/// Documents `Content-Language` on every answer whose body carries translated text: each error
/// answer with a body (problem+json or an OAuth error) and the `202` of `POST /vorgang`.
fn document_content_language(document: &mut Value) {
    let header = json!({
        "description": "The language of `title`, `detail` and `errors[].detail` (of \
            `error_description` at the token endpoint): `de` unless `Accept-Language` prefers \
            `en`.",
        "schema": {"type": "string", "enum": ["de", "en"]},
    });
    let Some(Value::Object(paths)) = document.get_mut("paths") else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(Value::Object(responses)) = operation.get_mut("responses") else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let translated = status.starts_with('4') || status.starts_with('5') || status == "202";
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            if translated && response.contains_key("content") {
                let headers = response.entry("headers").or_insert_with(|| json!({}));
                if let Some(headers) = headers.as_object_mut() {
                    headers.insert("Content-Language".to_owned(), header.clone());
                }
            }
        }
    }
}

/// Builds the whole document: the annotated part, `Content-Language` on the answers with
/// translated text, then the request components.
fn build() -> Value {
    let mut document = annotated();
    document_content_language(&mut document);
    let kex = vorgang_model::schema::kex();
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        schemas.extend(request::components(kex));
        for (name, schema) in kex::components(kex) {
            if schemas.contains_key(&name) {
                tracing::error!(component = %name, "a KEX schema file has the name of one of our components; left out of the OpenAPI document");
                continue;
            }
            schemas.insert(name, schema);
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

/// [`document`] serialised, as `GET /openapi.json` serves it.
#[must_use]
pub fn document_json() -> &'static str {
    &DOCUMENT_JSON
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_is_ours_or_a_kex_file_and_none_is_both() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let own = own_schema_names();
        for name in schemas.keys() {
            let is_kex = vorgang_model::schema::schema_file(&format!("{name}.json")).is_some();
            assert!(
                own.contains(name) != is_kex,
                "{name}: ours {}, KEX file {is_kex}",
                own.contains(name)
            );
        }
        for name in &own {
            assert!(schemas.contains_key(name), "{name} missing");
        }
    }

    #[test]
    fn the_request_body_refers_to_our_request_component() {
        let body =
            &document()["paths"]["/vorgang"]["post"]["requestBody"]["content"]["application/json"];
        assert_eq!(
            body["schema"],
            kex::schema_ref(IMPORT_REQUEST_SCHEMA),
            "the ref in the path attribute of routes::vorgang::create"
        );
        assert!(
            body["example"]["vorgang"].is_object(),
            "the published example"
        );
    }
}
