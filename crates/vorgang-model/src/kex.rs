//! Typed Rust structs and enums for every KEX schema type, generated at build time from the
//! schema files in `schema/kex/` (the same files [`crate::schema::SCHEMA_FILES`] embeds), so the
//! schema stays the single source.
//!
//! - Every object schema `X.json` becomes `pub struct X`; properties inherited through
//!   `extends` are copied into the child. Field names are snake case, each renamed to the
//!   schema's camel-case name for serde.
//! - Every field is an `Option`: absent and `null` both read as `None`, and `None` is not
//!   written back.
//! - Every string enum `X.json` becomes `pub enum X`, one variant per value (`ZUR_MIETE` →
//!   `ZurMiete`).
//! - Types: `string` → `String` (also `format: date`: the text `YYYY-MM-DD`, which the
//!   validator has already checked to be a date that exists), `integer` → `i64`, `number` →
//!   `f64`, `boolean` → `bool`, `array` → `Vec`, `$ref` → the referenced type.
//!
//! Members the schema does not know are ignored by these types, so serializing a typed value
//! does not reproduce the request: what is forwarded to Europace is always the validated
//! [`ImportRequest::vorgang`](crate::ImportRequest::vorgang) map, unchanged. Use
//! [`ImportRequest::vorgang_typed`](crate::ImportRequest::vorgang_typed) to read it typed.
//!
//! ```
//! use vorgang_model::kex;
//!
//! let vorgang: kex::Vorgang = serde_json::from_str(
//!     r#"{"antragsteller1": {"wohnsituation": {"wohnart": "ZUR_MIETE"}}}"#,
//! )?;
//! let wohnart = vorgang.antragsteller1.and_then(|a| a.wohnsituation).and_then(|w| w.wohnart);
//! assert_eq!(wohnart, Some(kex::Wohnart::ZurMiete));
//! # Ok::<(), serde_json::Error>(())
//! ```

include!(concat!(env!("OUT_DIR"), "/kex.rs"));
