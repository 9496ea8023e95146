//! Request and response types of the Vorgang Import API.
//!
//! This crate has no I/O. It parses a partner's request body strictly (see [`parse_import_request`]),
//! validates it and reports every violation as a JSON pointer, never echoing a submitted value.
//! What is wrong is a message id of the catalogue ([`i18n::Invalid`], [`i18n::Malformed`]) with its
//! parameters, not a text: the server renders it in the language of the answer.
//!
//! The `vorgang` part is checked against Europace's KEX Vorgang JSON schema, embedded in
//! [`schema::SCHEMA_FILES`] and resolved once per process into [`schema::kex()`]: per type its
//! properties and the rules on them. That resolution is public so that documents describing the
//! API (the server's OpenAPI document) are rendered from the rules the validator checks instead
//! of restating them; so are the rules outside `vorgang` ([`REQUIRED_MEMBERS`],
//! [`TIPPGEBER_REQUIRED`], [`PARTNER_ALIASES`], [`Anrede::ALL`], [`EMAIL_PATTERN`],
//! [`IBAN_PATTERN`] and the limits).
//!
//! Modules, each using only those before it: `pointer` (JSON pointers, [`Violation`]),
//! `environment`, `schema` (the resolved KEX schema), `strict_json` (→ pointer), `validate`
//! (→ pointer, schema), `request` (→ all of them), `kex` (generated, optional; → request).
//!
//! Features: `kex-types` adds the module `kex`: typed structs and enums for every KEX schema type,
//! generated at build time. Production code does not use them: the service forwards what the
//! partner sent inside `vorgang` unchanged, as the validated map (a typed round trip would drop
//! unknown members and respell numbers), and every rule is checked on the resolved schema. They
//! stay available for tooling and tests that want to read a Vorgang typed. `openapi` derives
//! `utoipa::ToSchema` on [`Environment`] for the server's OpenAPI document.
//!
//! ```
//! use i18n::{Invalid, Lang};
//! use vorgang_model::{RequestError, parse_import_request};
//!
//! let body = br#"{
//!   "vorgang": {"antragsteller1": {"personendaten": {"vorname": "Max", "nachname": "Muster"}},
//!               "finanzbedarf": {"finanzierungswunsch": {"laufzeitInMonaten": 24.0}}},
//!   "tippgeber": {"externeMitarbeiternummer": "1", "vorname": "Erika", "nachname": "Muster"}
//! }"#;
//! let Err(RequestError::Invalid(violations)) = parse_import_request(body) else {
//!     panic!("24.0 is not an integer");
//! };
//! assert_eq!(violations[0].pointer, "/vorgang/finanzbedarf/finanzierungswunsch/laufzeitInMonaten");
//! assert_eq!(violations[0].detail, Invalid::NotInteger);
//! assert_eq!(violations[0].detail.text(Lang::De), "muss eine ganze Zahl sein");
//! assert_eq!(violations[0].detail.text(Lang::En), "must be an integer");
//! ```

mod environment;
#[cfg(feature = "kex-types")]
pub mod kex;
mod pointer;
mod request;
pub mod schema;
mod strict_json;
mod validate;

pub use environment::{Environment, ParseEnvironmentError};
pub use pointer::Violation;
pub use request::{
    Anrede, CustomEntry, CustomValue, ImportRequest, MAX_BODY_BYTES, MAX_CUSTOM_ENTRIES,
    MAX_NESTING_DEPTH, PARTNER_ALIASES, PartnerDaten, REQUIRED_MEMBERS, RequestError,
    TIPPGEBER_REQUIRED, Tippgeber, parse_import_request, parse_import_request_at,
    render_partner_line,
};
pub use validate::{
    EMAIL_PATTERN, IBAN_PATTERN, MAX_EMAIL_LEN, MAX_KOMMENTAR_CHARS, MAX_KOMMENTARE,
};

#[cfg(test)]
mod proptests;
