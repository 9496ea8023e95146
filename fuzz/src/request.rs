//! Fuzz harness of the request parser and validator (`POST /vorgang` bodies).
//!
//! Compiled twice: into the `vorgang-fuzz` crate for the `parse_request` target, and by
//! `crates/vorgang-server/tests/fuzz_seeds.rs` (`#[path]`), which replays the committed seeds on
//! stable Rust. So this file may use only crates both have: `vorgang_model`, `i18n`,
//! `serde_json`, `chrono`.

use chrono::NaiveDate;
use i18n::Lang;
use serde_json::Value;
use vorgang_model::{RequestError, parse_import_request_at, render_partner_line};

/// Marker planted in seed values (as in the fixture corpus): a value containing it must never
/// come back in an error detail or a pointer.
pub const SECRET_MARKER: &str = "GEHEIM";

/// The fixed "today" of the harness (a `geburtsdatum` must lie before it), so that a crash
/// reproduces on any day.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default()
}

/// One input: a raw request body, as `POST /vorgang` passes it to the model.
///
/// Besides "no panic" it checks what the contract promises for every body:
/// - a `422` lists at least one violation, each pointer is a JSON pointer, and no detail or
///   pointer repeats a submitted value carrying [`SECRET_MARKER`];
/// - an accepted body's `vorgang` is forwarded unchanged (the same members and values);
/// - the typed view and the partner line can be built without panicking.
pub fn parse_request(data: &[u8]) {
    match parse_import_request_at(data, today()) {
        Ok(request) => {
            // Forwarded unchanged: the `vorgang` we keep is the one that was sent.
            let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
            if let Ok(Value::Object(mut sent)) = serde_json::from_slice::<Value>(body) {
                let sent = sent.remove("vorgang");
                assert_eq!(
                    sent.as_ref(),
                    Some(&Value::Object(request.vorgang.clone())),
                    "the accepted vorgang differs from the one sent"
                );
            }
            // May fail for integers above i64::MAX (documented); must not panic.
            let _typed = request.vorgang_typed();
            let _line = render_partner_line(&request.partner);
            for warning in &request.warnings {
                assert!(
                    warning.starts_with("WARN "),
                    "warning without WARN: {warning}"
                );
            }
        }
        Err(RequestError::Invalid(violations)) => {
            assert!(!violations.is_empty(), "422 without a violation");
            let secrets = secret_values(data);
            for violation in &violations {
                assert!(
                    violation.pointer.is_empty() || violation.pointer.starts_with('/'),
                    "not a JSON pointer: {}",
                    violation.pointer
                );
                for lang in Lang::ALL {
                    assert!(
                        !violation.detail.text(lang).contains(SECRET_MARKER),
                        "a detail repeats a submitted value"
                    );
                }
                for secret in &secrets {
                    assert!(
                        !violation.pointer.contains(secret.as_str()),
                        "a pointer repeats a submitted value"
                    );
                }
            }
        }
        Err(RequestError::Malformed(malformed)) => {
            // Our own fixed texts; only a duplicate key's pointer names keys of the body.
            for lang in Lang::ALL {
                let message = malformed.text(lang);
                assert!(
                    !message.contains(SECRET_MARKER)
                        || matches!(malformed, i18n::Malformed::DuplicateKey { .. }),
                    "a malformed-body message repeats the body"
                );
            }
        }
    }
}

/// String values of the body that carry [`SECRET_MARKER`] and that no pointer could contain
/// for another reason (a pointer names keys).
fn secret_values(data: &[u8]) -> Vec<String> {
    fn walk(value: &Value, values: &mut Vec<String>, keys: &mut Vec<String>) {
        match value {
            Value::String(s) if s.contains(SECRET_MARKER) => values.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, values, keys)),
            Value::Object(map) => {
                for (key, v) in map {
                    keys.push(key.clone());
                    walk(v, values, keys);
                }
            }
            _ => {}
        }
    }
    let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let (mut values, mut keys) = (Vec::new(), Vec::new());
    walk(&root, &mut values, &mut keys);
    // A pointer is "/"-separated keys (escaped as RFC 6901 says) and indexes: a value without
    // "/" and "~" can only show up inside one escaped key.
    let escaped: Vec<String> = keys
        .iter()
        .map(|k| k.replace('~', "~0").replace('/', "~1"))
        .collect();
    values.retain(|v| !v.contains(['/', '~']) && !escaped.iter().any(|k| k.contains(v.as_str())));
    values
}
