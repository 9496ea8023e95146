//! Runs the fixture corpus in `tests/fixtures/` (format: `tests/fixtures/README.md`) through
//! [`parse_import_request`].
#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};

use i18n::Lang;
use serde_json::Value;
use vorgang_model::{MAX_BODY_BYTES, RequestError, parse_import_request};

/// Text planted in fixtures next to what they break: it must never show up in an error.
const SENTINELS: &[&str] = &["GEHEIM", "Mustermann", "DE98", "max.mustermann"];

struct Fixture {
    name: String,
    body: Vec<u8>,
    expect: Value,
}

fn corpus(kind: &str) -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let mut fixtures = Vec::new();
    for path in &paths {
        let file = path.file_name().unwrap().to_str().unwrap();
        if let Some(name) = file.strip_suffix(".expect.json") {
            assert!(
                dir.join(format!("{name}.json")).exists(),
                "{kind}/{file}: sidecar without a body"
            );
            continue;
        }
        let name = file
            .strip_suffix(".json")
            .unwrap_or_else(|| panic!("{kind}/{file}: neither NAME.json nor NAME.expect.json"));
        let sidecar = dir.join(format!("{name}.expect.json"));
        let expect: Value = serde_json::from_slice(
            &std::fs::read(&sidecar).unwrap_or_else(|_| panic!("{kind}/{name}: no sidecar")),
        )
        .unwrap();
        fixtures.push(Fixture {
            name: format!("{kind}/{name}"),
            body: std::fs::read(path).unwrap(),
            expect,
        });
    }
    fixtures
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The text of the submitted value at `pointer`, if it is long enough to be recognisable.
fn submitted_text(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) if s.trim().chars().count() >= 3 => Some(s.clone()),
        Value::Number(n) if n.to_string().len() >= 3 => Some(n.to_string()),
        _ => None,
    }
}

#[test]
fn valid_fixtures_are_accepted_unchanged() {
    let fixtures = corpus("valid");
    assert!(fixtures.len() >= 20, "{}", fixtures.len());
    for f in &fixtures {
        assert_eq!(f.expect["status"], 201, "{}", f.name);
        let request = match parse_import_request(&f.body) {
            Ok(r) => r,
            Err(e) => panic!("{}: {e:?}", f.name),
        };
        assert_eq!(
            request.warnings,
            strings(&f.expect["warnings"]),
            "{}",
            f.name
        );
        let text = std::str::from_utf8(&f.body).unwrap();
        let sent: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).unwrap();
        assert_eq!(
            Value::Object(request.vorgang.clone()),
            sent["vorgang"],
            "{}: vorgang changed",
            f.name
        );
        assert_eq!(
            serde_json::to_string(&request.vorgang).unwrap(),
            serde_json::to_string(&sent["vorgang"]).unwrap(),
            "{}: vorgang changed (order or spelling)",
            f.name
        );
    }
}

#[test]
fn invalid_fixtures_are_refused_as_expected() {
    let fixtures = corpus("invalid");
    let count = |status: u64| {
        fixtures
            .iter()
            .filter(|f| f.expect["status"] == status)
            .count()
    };
    assert!(count(400) >= 6, "{}", count(400));
    assert!(count(413) >= 1);
    assert!(count(422) >= 40, "{}", count(422));
    for f in &fixtures {
        let status = f.expect["status"].as_u64().unwrap();
        let result = parse_import_request(&f.body);
        match status {
            413 => {
                assert!(f.body.len() > MAX_BODY_BYTES, "{}", f.name);
                assert!(
                    matches!(result, Err(RequestError::Malformed(_))),
                    "{}",
                    f.name
                );
            }
            400 => {
                assert!(f.body.len() <= MAX_BODY_BYTES, "{}", f.name);
                let Err(RequestError::Malformed(malformed)) = result else {
                    panic!("{}: expected 400, got {result:?}", f.name);
                };
                for lang in Lang::ALL {
                    let detail = malformed.text(lang);
                    for sentinel in SENTINELS {
                        assert!(!detail.contains(sentinel), "{}: {detail}", f.name);
                    }
                }
            }
            422 => {
                let Err(RequestError::Invalid(violations)) = result else {
                    panic!("{}: expected 422, got {result:?}", f.name);
                };
                let pointers: Vec<String> = violations.iter().map(|v| v.pointer.clone()).collect();
                assert_eq!(
                    pointers,
                    strings(&f.expect["pointers"]),
                    "{}: {violations:#?}",
                    f.name
                );
                let body: Value = serde_json::from_slice(&f.body).unwrap();
                for v in &violations {
                    for lang in Lang::ALL {
                        let detail = v.detail.text(lang);
                        assert!(!detail.is_empty(), "{}", f.name);
                        for sentinel in SENTINELS {
                            assert!(!detail.contains(sentinel), "{}: {v:?}", f.name);
                        }
                        if let Some(text) = submitted_text(&body, &v.pointer) {
                            assert!(
                                !detail.contains(&text),
                                "{}: {v:?} echoes the value",
                                f.name
                            );
                        }
                    }
                }
            }
            other => panic!("{}: unknown status {other}", f.name),
        }
    }
}
