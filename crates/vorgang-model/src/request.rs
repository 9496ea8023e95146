//! The partner's request: parsed strictly, validated completely.

use serde::Serialize;

/// Largest accepted request body: 256 KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// One validation failure: where, and what is wrong — never the submitted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer (RFC 6901) into the request body, e.g. `/tippgeber/vorname`.
    pub pointer: String,
    /// What is wrong, without quoting the value.
    pub detail: String,
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, not an object, duplicate keys, too deep, invalid UTF-8 (HTTP 400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Well-formed but invalid: every violation found (HTTP 422).
    #[error("{} validation error(s)", .0.len())]
    Invalid(Vec<Violation>),
}

/// `tippgeber.anrede`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Anrede {
    /// Mr.
    Herr,
    /// Ms.
    Frau,
}

/// The person at the partner who gave the tip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tippgeber {
    /// Employee number at the partner; unique within the partner's organisation.
    pub externe_mitarbeiternummer: String,
    /// First name.
    pub vorname: String,
    /// Last name.
    pub nachname: String,
    /// Salutation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anrede: Option<Anrede>,
    /// Phone number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telefon: Option<String>,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A `partner.custom` value: boolean, integer or string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CustomValue {
    /// `true`/`false`.
    Boolean(bool),
    /// A JSON integer.
    Integer(i64),
    /// A string (dates travel as strings).
    String(String),
}

/// One `partner.custom` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomEntry {
    /// Non-empty, unique key.
    pub key: String,
    /// The value.
    pub value: CustomValue,
}

/// The partner's own data; KEX has no field for it, so it is stored and rendered as a comment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerDaten {
    /// The partner's sales key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertriebsschluessel: Option<String>,
    /// The customer's number at the partner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kundennummer: Option<String>,
    /// Custom key/values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomEntry>,
}

/// A parsed and validated `POST /vorgang` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRequest {
    /// The KEX Vorgang exactly as the partner sent it (forwarded unchanged).
    pub vorgang: serde_json::Map<String, serde_json::Value>,
    /// The Tippgeber.
    pub tippgeber: Tippgeber,
    /// Top-level comments.
    pub kommentare: Vec<String>,
    /// Partner data.
    pub partner: PartnerDaten,
    /// Our warnings, e.g. `WARN unknown-field /vorgang/foo`.
    pub warnings: Vec<String>,
}

/// Parses and validates a request body.
///
/// # Errors
/// [`RequestError::Malformed`] for bodies that are not a single well-formed JSON object,
/// [`RequestError::Invalid`] with every violation for well-formed but invalid ones.
pub fn parse_import_request(body: &[u8]) -> Result<ImportRequest, RequestError> {
    let _ = body;
    Err(RequestError::Malformed("not yet implemented".into()))
}
