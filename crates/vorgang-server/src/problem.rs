//! RFC 9457 problem details: every error answer of the API except the token endpoint's, each
//! naming the request it answers (`requestId`, see [`crate::request_id`]).
//!
//! A problem is built from message ids of the catalogue ([`i18n::Title`], [`i18n::Detail`], a
//! violation's [`i18n::Invalid`]) and rendered at once in the language of the request being
//! answered ([`crate::language::current`]); its answer says which in `Content-Language`. The
//! machine-readable members (`type`, `status`, the pointers, `europaceMessages`) are the same in
//! every language.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use i18n::{Detail, Lang, Malformed, Title};
use serde::Serialize;
use utoipa::openapi::schema::{AllOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use vorgang_core::ImportStatus;
use vorgang_model::Violation;

/// One entry of `errors` in a 422 answer: a violation rendered in the answer's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Violation)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/tippgeber/vorname`.
    #[schema(example = "/vorgang/antragsteller1/personendaten/vorname")]
    pub pointer: String,
    /// What is wrong, without quoting the value, e.g. `ist erforderlich` (`required` with
    /// `Accept-Language: en`), `muss einer dieser Werte sein: HERR, FRAU`.
    #[schema(example = "ist erforderlich")]
    pub detail: String,
}

impl FieldError {
    /// `violation` in `lang`.
    #[must_use]
    pub fn new(violation: &Violation, lang: Lang) -> Self {
        Self {
            pointer: violation.pointer.clone(),
            detail: violation.detail.text(lang).into_owned(),
        }
    }
}

/// Base of our problem `type` URIs; each is documented in docs/partner-guide.md.
pub const TYPE_BASE: &str = "https://api.drkleinservice.de/problems/";

/// A problem+json answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short, fixed summary of the type, in the answer's language (German unless
    /// `Accept-Language` prefers English; see `Content-Language`).
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation of this occurrence, never quoting submitted values, in the answer's language.
    pub detail: String,
    /// Every validation failure (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Our Vorgangsnummer, when an import exists (502/503/504).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drkleinrk_vorgangsnummer: Option<String>,
    /// The state of that import: `FAILED` (502/503), `IN_DOUBT` (504) or, while it is still
    /// running (409), `ACCEPTED`, `PARTNER_READY` or `SENDING`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_status: Option<ImportStatus>,
    /// Europace's own messages when it refused the import (502 `europace-rejected`), exactly as
    /// Europace sent them (empty when it sent none). They may quote what you submitted; they
    /// are never logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub europace_messages: Option<Vec<String>>,
    /// The id of the request this answers, as in its `X-Request-Id` answer header: quote it when
    /// asking us about this answer. Filled in when the problem becomes an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, example = "3f0c9c5e-5a43-4d0e-9f7e-6c1b2a9d4e10")]
    pub request_id: Option<String>,
    #[serde(skip)]
    headers: Vec<(header::HeaderName, String)>,
    /// The language `title`, `detail` and `errors` are written in (`Content-Language`).
    #[serde(skip)]
    lang: Lang,
}

impl Problem {
    /// A problem of `slug` (the last part of its type URI), its texts in the language of the
    /// request being answered.
    #[must_use]
    pub fn new(status: StatusCode, slug: &str, title: Title, detail: impl Into<Detail>) -> Self {
        Self::new_in(crate::language::current(), status, slug, title, detail)
    }

    /// [`new`](Self::new) in `lang`.
    #[must_use]
    pub fn new_in(
        lang: Lang,
        status: StatusCode,
        slug: &str,
        title: Title,
        detail: impl Into<Detail>,
    ) -> Self {
        Self {
            type_uri: format!("{TYPE_BASE}{slug}"),
            title: title.text(lang).into_owned(),
            status: status.as_u16(),
            detail: detail.into().text(lang).into_owned(),
            errors: Vec::new(),
            drkleinrk_vorgangsnummer: None,
            import_status: None,
            europace_messages: None,
            request_id: None,
            headers: Vec::new(),
            lang,
        }
    }

    /// The language of the texts.
    #[must_use]
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds the import it concerns and its state.
    #[must_use]
    pub fn for_import(mut self, id: uuid::Uuid, status: ImportStatus) -> Self {
        self.drkleinrk_vorgangsnummer = Some(id.to_string());
        self.import_status = Some(status);
        self
    }

    /// Adds Europace's messages about the refused import (`europaceMessages`).
    #[must_use]
    pub fn with_europace_messages(mut self, messages: &[String]) -> Self {
        self.europace_messages = Some(messages.to_vec());
        self
    }

    /// 400: the body is not a well-formed JSON object.
    #[must_use]
    pub fn malformed(detail: Malformed) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            Title::MalformedRequest,
            detail,
        )
    }

    /// 422 with every violation, rendered in the language of the request being answered.
    #[must_use]
    pub fn validation(violations: &[Violation]) -> Self {
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            Title::ValidationFailed,
            Detail::ValidationFailed {
                count: violations.len(),
            },
        );
        let lang = problem.lang;
        problem.errors = violations
            .iter()
            .map(|violation| FieldError::new(violation, lang))
            .collect();
        problem
    }

    /// 503: a dependency (database) is unavailable; nothing was stored.
    #[must_use]
    pub fn unavailable(detail: Detail) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            Title::ServiceUnavailable,
            detail,
        )
        .with_header(header::RETRY_AFTER, "5")
    }

    /// The JSON body of this problem, with `requestId` set to the request being answered
    /// ([`crate::request_id::current`]) unless it is set already.
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        let request_id = self
            .request_id
            .clone()
            .or_else(|| crate::request_id::current().map(|id| id.as_str().to_owned()));
        let problem = Self {
            request_id,
            ..self.clone()
        };
        serde_json::to_vec(&problem).unwrap_or_default()
    }

    /// 404.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            Title::NotFound,
            Detail::NoSuchResource,
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
        let mut response = response.body(self.body());
        crate::language::mark(response.headers_mut(), self.lang);
        response
    }
}

/// The OpenAPI schema of a problem concerning one import (409, 502, 504): a [`Problem`] with
/// `drkleinrkVorgangsnummer` and `importStatus` required. Documentation only: such answers are
/// built as [`Problem`]s with [`Problem::for_import`].
pub struct ImportProblem;

impl PartialSchema for ImportProblem {
    fn schema() -> RefOr<Schema> {
        AllOfBuilder::new()
            .item(Ref::from_schema_name(Problem::name()))
            .item(
                ObjectBuilder::new()
                    .property(
                        "drkleinrkVorgangsnummer",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                    )
                    .property(
                        "importStatus",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some([
                                "ACCEPTED",
                                "PARTNER_READY",
                                "SENDING",
                                "FAILED",
                                "IN_DOUBT",
                            ])),
                    )
                    .required("drkleinrkVorgangsnummer")
                    .required("importStatus"),
            )
            .description(Some(
                "A problem concerning one import: `drkleinrkVorgangsnummer` names it and \
                 `importStatus` tells whether something may exist at Europace \
                 (`FAILED`: nothing was created; `IN_DOUBT`: the case may exist; \
                 `ACCEPTED`, `PARTNER_READY`, `SENDING`: still being processed, in that state).",
            ))
            .into()
    }
}

impl ToSchema for ImportProblem {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ImportProblem")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Problem::name().into_owned(), Problem::schema()));
        <Problem as ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use i18n::Invalid;

    use super::*;

    fn violation(pointer: &str, detail: Invalid) -> Violation {
        Violation {
            pointer: pointer.to_owned(),
            detail,
        }
    }

    #[test]
    fn a_problem_is_written_in_the_current_language_and_says_so() {
        let violations = [
            violation("/tippgeber/vorname", Invalid::Required),
            violation(
                "/vorgang/finanzbedarf/finanzierungswunsch/laufzeitInMonaten",
                Invalid::OutOfRange { min: 1, max: 120 },
            ),
        ];
        let german = Problem::validation(&violations);
        let english = crate::language::sync_scope(Lang::En, || Problem::validation(&violations));
        assert_eq!(german.lang(), Lang::De, "German outside a request");
        assert_eq!(german.title, "Validierung fehlgeschlagen");
        assert_eq!(
            german.detail,
            "2 Feld(er) verletzen die Regeln; siehe errors"
        );
        assert_eq!(german.errors[1].detail, "muss zwischen 1 und 120 liegen");
        assert_eq!(english.title, "Validation failed");
        assert_eq!(english.errors[0].detail, "required");
        let pointers = |p: &Problem| {
            p.errors
                .iter()
                .map(|e| e.pointer.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(pointers(&german), pointers(&english));
        assert_eq!(german.type_uri, english.type_uri);

        let response = english.error_response();
        assert_eq!(
            response.headers().get(header::CONTENT_LANGUAGE).unwrap(),
            "en"
        );
        assert_eq!(
            response.headers().get(header::VARY).unwrap(),
            "Accept-Language"
        );
        let response = german.error_response();
        assert_eq!(
            response.headers().get(header::CONTENT_LANGUAGE).unwrap(),
            "de"
        );
    }
}
