//! Request and response types of the Vorgang Import API.
//!
//! This crate has no I/O. It parses a partner's request body strictly (see [`parse_import_request`]),
//! validates it and reports every violation as a JSON pointer, never echoing a submitted value.

mod environment;
mod partner_line;
mod request;

pub use environment::{Environment, ParseEnvironmentError};
pub use partner_line::render_partner_line;
pub use request::{
    Anrede, CustomEntry, CustomValue, ImportRequest, PartnerDaten, RequestError, Tippgeber,
    Violation, parse_import_request, MAX_BODY_BYTES,
};
