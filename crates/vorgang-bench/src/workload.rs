//! The request bodies: the published example, with the Tippgeber varied over a small fixed set.
//!
//! Why vary it: the service stores the Europace partnerId of a Tippgeber and reuses it for the next
//! lead of the same Tippgeber (docs/reference/import-states.md §2), while the relay looks it up on
//! every request. With a handful of Tippgeber, as a partner organisation has, the service does the
//! lookup once per Tippgeber (in the warm-up) and the relay every time; a single fixed Tippgeber
//! would hide nothing more, and a new one per request would measure partner creation instead of
//! imports. No `Idempotency-Key` is sent, as in issue 10's measurement: every request is a new
//! import.

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::Value;

/// How many different Tippgeber the requests name.
pub const TIPPGEBER_COUNT: usize = 16;

/// The published example request (`examples/seed-request.json`).
const SEED: &str = include_str!("../../../examples/seed-request.json");

/// The `externeMitarbeiternummer` of Tippgeber `index`: the example's number with the last
/// three digits replaced.
pub fn mitarbeiternummer(index: usize) -> String {
    format!("078181726-{:03}", 100 + index)
}

/// The bodies sent, one per Tippgeber, serialised once: the load generator only clones
/// reference-counted bytes.
///
/// # Errors
/// The embedded example does not parse or has no `tippgeber` object (a broken checkout).
pub fn bodies() -> anyhow::Result<Vec<Bytes>> {
    let seed: Value = serde_json::from_str(SEED).context("examples/seed-request.json")?;
    (0..TIPPGEBER_COUNT)
        .map(|index| {
            let mut body = seed.clone();
            let tippgeber = body
                .get_mut("tippgeber")
                .and_then(Value::as_object_mut)
                .context("examples/seed-request.json has no tippgeber object")?;
            tippgeber.insert(
                "externeMitarbeiternummer".into(),
                Value::String(mitarbeiternummer(index)),
            );
            Ok(Bytes::from(serde_json::to_vec(&body)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_differ_only_in_the_tippgeber_number() {
        let bodies = bodies().unwrap();
        assert_eq!(bodies.len(), TIPPGEBER_COUNT);
        let seed: Value = serde_json::from_str(SEED).unwrap();
        let mut numbers = std::collections::BTreeSet::new();
        for body in &bodies {
            let mut parsed: Value = serde_json::from_slice(body).unwrap();
            let number = parsed["tippgeber"]["externeMitarbeiternummer"]
                .as_str()
                .unwrap()
                .to_owned();
            numbers.insert(number);
            parsed["tippgeber"]["externeMitarbeiternummer"] =
                seed["tippgeber"]["externeMitarbeiternummer"].clone();
            assert_eq!(parsed, seed);
        }
        assert_eq!(numbers.len(), TIPPGEBER_COUNT);
    }
}
