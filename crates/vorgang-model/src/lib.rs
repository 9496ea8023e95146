//! Request and response types of the Vorgang Import API.
//!
//! This crate has no I/O. It parses a partner's request body strictly (see [`parse_import_request`]),
//! validates it and reports every violation as a JSON pointer, never echoing a submitted value.
//!
//! The `vorgang` part is checked against Europace's KEX Vorgang JSON schema, embedded in
//! [`schema::SCHEMA_FILES`] and interpreted at run time (resolved once per process).
//!
//! ```
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
//! assert_eq!(violations[0].detail, "must be an integer");
//! ```

mod environment;
pub mod kex;
mod request;
pub mod schema;
mod strict_json;
mod validate;

pub use environment::{Environment, ParseEnvironmentError};
pub use request::{
    Anrede, CustomEntry, CustomValue, ImportRequest, MAX_BODY_BYTES, MAX_CUSTOM_ENTRIES,
    MAX_KOMMENTAR_CHARS, MAX_KOMMENTARE, MAX_NESTING_DEPTH, PartnerDaten, RequestError, Tippgeber,
    Violation, parse_import_request, parse_import_request_at, render_partner_line,
};

#[cfg(test)]
mod proptests;
