//! Typed Rust structs and enums for every KEX schema type (feature `kex-types`), generated at
//! build time from the same resolution of `schema/kex/` that the validator walks
//! ([`crate::schema::kex()`]), so the schema stays the single source.
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
//! Why behind a feature: no production code path needs them. What is forwarded to Europace is
//! always the validated [`ImportRequest::vorgang`] map, unchanged, because these types ignore
//! members the schema does not know and would respell numbers (`10000` → `10000.0`), and every
//! rule is checked on the resolved schema, not on these types. So the service does not compile
//! ~80 structs it never uses; tooling and tests that want to read a Vorgang typed turn the
//! feature on (this crate's own tests do). Use [`ImportRequest::vorgang_typed`] to read it.
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

use crate::ImportRequest;

include!(concat!(env!("OUT_DIR"), "/kex.rs"));

impl ImportRequest {
    /// The validated [`Self::vorgang`] read into the generated types. The map itself stays what
    /// is forwarded: members the schema does not know are not part of the typed value, and
    /// `null` members read as `None`.
    ///
    /// A `vorgang` that passed validation always deserializes, with one exception: an
    /// `integer` member above `i64::MAX` passes the validator (any JSON integer does) but does
    /// not fit the generated `i64`.
    ///
    /// # Errors
    /// The deserialization error for such an out-of-range integer.
    pub fn vorgang_typed(&self) -> Result<Vorgang, serde_json::Error> {
        serde::Deserialize::deserialize(&self.vorgang)
    }
}
