//! The types generated from the KEX schema (`vorgang_model::kex`): they cover every schema file
//! and read every valid fixture's `vorgang` without losing a known, non-null member.
#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};

use serde_json::Value;
use vorgang_model::{kex, parse_import_request, schema};

/// Removes `null` object members everywhere (the typed value reads them as `None`).
fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nulls),
        _ => {}
    }
}

/// The member a warning's pointer names, e.g. `/antragsteller1/personendaten/spitzname`: its
/// parent's pointer and its name. A last segment `#n` (a name that is not an identifier) is the
/// parent's n-th member.
fn member_at(value: &Value, pointer: &str) -> (String, String) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let key = match last.strip_prefix('#') {
        Some(position) => {
            let object = value.pointer(parent).unwrap().as_object().unwrap();
            object
                .keys()
                .nth(position.parse().unwrap())
                .unwrap_or_else(|| panic!("nothing at {pointer}"))
                .clone()
        }
        None => last.replace("~1", "/").replace("~0", "~"),
    };
    (parent.to_owned(), key)
}

/// Removes the member `key` of the object at `parent`.
fn remove_at(value: &mut Value, (parent, key): &(String, String)) {
    let object = value.pointer_mut(parent).unwrap();
    assert!(
        object.as_object_mut().unwrap().shift_remove(key).is_some(),
        "nothing at {parent}/{key}"
    );
}

/// Equality where numbers compare by value (`10000` equals `10000.0`: a `number` member is an
/// `f64` in the typed value).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn valid_fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".json") && !name.ends_with(".expect.json")
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_valid_fixture_reads_typed_without_losing_a_known_member() {
    let fixtures = valid_fixtures();
    assert!(fixtures.len() >= 20, "{}", fixtures.len());
    let mut pruned_unknown = 0;
    for path in &fixtures {
        let name = path.display();
        let mut body = std::fs::read(path).unwrap();
        // Some fixtures start with a UTF-8 byte-order mark.
        if body.starts_with(b"\xEF\xBB\xBF") {
            body.drain(..3);
        }
        let request = parse_import_request(&body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let typed = request
            .vorgang_typed()
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let mut expected = Value::Object(request.vorgang.clone());
        // Resolve every pointer first: removing a member shifts the positions after it.
        let unknown: Vec<(String, String)> = request
            .warnings
            .iter()
            .filter_map(|warning| warning.strip_prefix("WARN unknown-field /vorgang/"))
            .map(|pointer| member_at(&expected, &format!("/{pointer}")))
            .collect();
        for member in &unknown {
            remove_at(&mut expected, member);
            pruned_unknown += 1;
        }
        prune_nulls(&mut expected);
        let got = serde_json::to_value(&typed).unwrap();
        assert!(
            same(&got, &expected),
            "{name}:\n typed {got:#}\n expected {expected:#}"
        );
        // And the typed value reads back to itself.
        let again: kex::Vorgang = serde_json::from_value(got).unwrap();
        assert_eq!(again, typed, "{name}");
    }
    assert!(pruned_unknown >= 5, "{pruned_unknown}");
}

#[test]
fn a_type_is_generated_for_every_schema_file() {
    let embedded: Vec<&str> = schema::SCHEMA_FILES.iter().map(|(name, _)| *name).collect();
    let mut embedded_sorted = embedded.clone();
    embedded_sorted.sort_unstable();
    assert_eq!(kex::KEX_TYPES, embedded_sorted.as_slice());
    let (structs, enums) = kex::KEX_TYPE_COUNTS;
    assert_eq!(structs + enums, schema::SCHEMA_FILES.len());
    assert_eq!((structs, enums), (61, 17));
}

#[test]
fn the_seed_example_reads_typed() {
    let body = include_str!("../../../examples/seed-request.json");
    let request = parse_import_request(body.as_bytes()).unwrap();
    let vorgang = request.vorgang_typed().unwrap();
    let antragsteller = vorgang.antragsteller1.as_ref().unwrap();
    let personendaten = antragsteller.personendaten.as_ref().unwrap();
    assert_eq!(personendaten.vorname.as_deref(), Some("Max"));
    let wohnsituation = antragsteller.wohnsituation.as_ref().unwrap();
    assert_eq!(wohnsituation.wohnart, Some(kex::Wohnart::ZurMiete));
    assert_eq!(wohnsituation.anzahl_personen_im_haushalt, Some(1));
    let finanzbedarf = vorgang.finanzbedarf.as_ref().unwrap();
    assert_eq!(
        finanzbedarf.finanzierungszweck,
        Some(kex::Finanzierungszweck::FreieVerwendung)
    );
    assert!(vorgang.antragsteller2.is_none());
}

#[test]
fn inherited_properties_are_copied_into_the_child() {
    // `gehoertZuAntragsteller` comes from Haushaltsposition via AbloesbareVerbindlichkeit.
    let typed: kex::SonstigeVerbindlichkeit = serde_json::from_value(serde_json::json!({
        "gehoertZuAntragsteller": "ANTRAGSTELLER_1",
        "iban": "DE98600100700160451700",
        "unbekannt": 1
    }))
    .unwrap();
    assert!(typed.gehoert_zu_antragsteller.is_some());
    assert_eq!(typed.iban.as_deref(), Some("DE98600100700160451700"));
    let back = serde_json::to_value(&typed).unwrap();
    assert!(
        back.get("unbekannt").is_none(),
        "unknown members are ignored"
    );
    assert_eq!(
        serde_json::to_value(kex::Vorgang::default()).unwrap(),
        serde_json::json!({})
    );
}

#[test]
fn an_integer_above_i64_max_passes_validation_but_not_the_typed_read() {
    let body = br#"{
      "vorgang": {"antragsteller1": {
        "personendaten": {"vorname": "Max", "nachname": "Muster"},
        "wohnsituation": {"anzahlPkw": 18446744073709551615}}},
      "tippgeber": {"externeMitarbeiternummer": "1", "vorname": "Erika", "nachname": "Muster"}
    }"#;
    let request = parse_import_request(body).unwrap();
    assert!(request.vorgang_typed().is_err());
}
