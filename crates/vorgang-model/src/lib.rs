//! Request and response types of the Vorgang Import API.
//!
//! This crate has no I/O. It parses a partner's request body strictly (see [`parse_import_request`]),
//! validates it and reports every violation as a JSON pointer, never echoing a submitted value.
//!
//! The `vorgang` part is checked against Europace's KEX Vorgang JSON schema, embedded in
//! [`schema::SCHEMA_FILES`] and interpreted at run time (resolved once per process).

mod environment;
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
