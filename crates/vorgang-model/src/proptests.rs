//! Property tests: Vorgänge generated from the resolved schema model pass validation and come
//! back unchanged (lossless), decimals like 200.01 included.

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

use crate::parse_import_request_at;
use crate::schema::{self, KexSchema, Node, ObjectType, Rule};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 6, 15).unwrap()
}

/// A valid IBAN: `DE`, computed check digits, an 18-digit BBAN.
fn iban() -> impl Strategy<Value = String> {
    "[0-9]{18}".prop_map(|bban| {
        let digits = format!("{bban}131400"); // "DE00": D=13, E=14
        let rem = digits
            .bytes()
            .fold(0_u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
        format!("DE{:02}{bban}", 98 - rem)
    })
}

/// A decimal with at most two places, e.g. 200.01, as JSON would carry it.
fn cents(max: i64, allow_negative: bool) -> impl Strategy<Value = Value> {
    let min = if allow_negative { -max } else { 0 };
    (min..=max).prop_map(|c| {
        if c % 100 == 0 {
            Value::from(c / 100)
        } else {
            Number::from_f64(c as f64 / 100.0).map_or(Value::Null, Value::Number)
        }
    })
}

fn number(rule: Rule) -> BoxedStrategy<Value> {
    let finite = any::<f64>().prop_filter("finite", |f| f.is_finite());
    match rule {
        Rule::Positive => prop_oneof![
            cents(100_000_000, false).prop_filter("positive", |v| v.as_f64() > Some(0.0)),
            (1_u64..=u64::MAX).prop_map(Value::from),
        ]
        .boxed(),
        Rule::NonNegative => prop_oneof![
            cents(100_000_000, false),
            any::<u64>().prop_map(Value::from),
            finite
                .prop_map(f64::abs)
                .prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ]
        .boxed(),
        _ => prop_oneof![
            cents(100_000_000, true),
            any::<i64>().prop_map(Value::from),
            finite.prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ]
        .boxed(),
    }
}

fn date(rule: Rule) -> BoxedStrategy<Value> {
    let years = if rule == Rule::Past {
        1900..2030
    } else {
        1900..2100
    };
    (years, 1_u32..=12, 1_u32..=28)
        .prop_map(|(y, m, d)| Value::String(format!("{y:04}-{m:02}-{d:02}")))
        .boxed()
}

fn node(kex: &'static KexSchema, node: &Node, rule: Rule) -> BoxedStrategy<Value> {
    match node {
        Node::Any => Just(Value::Null).boxed(),
        Node::Object(id) => object(kex, kex.object(*id).unwrap()),
        Node::Array(item) => proptest::collection::vec(self::node(kex, item, Rule::None), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        Node::String => match rule {
            Rule::Iban => iban().prop_map(Value::String).boxed(),
            Rule::Email => "[a-z0-9.+]{1,10}@[a-z]{1,10}\\.[a-z]{2,3}"
                .prop_map(Value::String)
                .boxed(),
            // U+0000 is refused anywhere in a request (see `check_no_nul`).
            _ => any::<String>()
                .prop_map(|s| Value::String(s.replace('\0', "")))
                .boxed(),
        },
        Node::Date => date(rule),
        Node::Enum(id) => {
            let values = kex.enumeration(*id).unwrap().values().to_vec();
            proptest::sample::select(values)
                .prop_map(Value::String)
                .boxed()
        }
        Node::Integer => match rule {
            Rule::IntRange(min, max) => (min..=max).prop_map(Value::from).boxed(),
            Rule::IntMin(min) => (min..=i64::MAX).prop_map(Value::from).boxed(),
            Rule::NonNegative => any::<u64>().prop_map(Value::from).boxed(),
            _ => prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from)
            ]
            .boxed(),
        },
        Node::Number => number(rule),
        Node::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
    }
}

/// An object of the type: each property present with probability 1/2 (service-owned ones
/// never), in shuffled order; sometimes a property is sent as `null`.
fn object(kex: &'static KexSchema, ty: &'static ObjectType) -> BoxedStrategy<Value> {
    let members: Vec<BoxedStrategy<Option<(String, Value)>>> = ty
        .properties()
        .iter()
        .filter(|prop| prop.rule != Rule::ServiceOwned)
        .map(|prop| {
            let name = prop.name.clone();
            let value = prop_oneof![
                9 => node(kex, &prop.node, prop.rule),
                1 => Just(Value::Null),
            ];
            proptest::option::of(value.prop_map(move |v| (name.clone(), v))).boxed()
        })
        .collect();
    members
        .prop_shuffle()
        .prop_map(|members| Value::Object(members.into_iter().flatten().collect()))
        .boxed()
}

fn non_blank() -> impl Strategy<Value = String> {
    "[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß' -]{0,20}"
}

/// A valid Vorgang: generated from the schema, with the required names set.
fn vorgang() -> impl Strategy<Value = Map<String, Value>> {
    let kex = schema::kex();
    let root = kex.root().expect("schema has a root");
    (object(kex, root), non_blank(), non_blank()).prop_map(|(vorgang, vorname, nachname)| {
        let mut vorgang = match vorgang {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let antragsteller = vorgang.entry("antragsteller1").or_insert_with(|| json!({}));
        if !antragsteller.is_object() {
            *antragsteller = json!({});
        }
        let personendaten = antragsteller
            .as_object_mut()
            .unwrap()
            .entry("personendaten")
            .or_insert_with(|| json!({}));
        if !personendaten.is_object() {
            *personendaten = json!({});
        }
        let personendaten = personendaten.as_object_mut().unwrap();
        personendaten.insert("vorname".into(), Value::String(vorname));
        personendaten.insert("nachname".into(), Value::String(nachname));
        vorgang
    })
}

fn body(vorgang: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "vorgang": vorgang,
        "tippgeber": {"externeMitarbeiternummer": "1", "vorname": "Erika", "nachname": "Muster"}
    }))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_vorgaenge_are_accepted_unchanged(vorgang in vorgang()) {
        let request = parse_import_request_at(&body(&vorgang), today());
        let request = match request {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        };
        prop_assert!(request.warnings.is_empty(), "{:?}", request.warnings);
        prop_assert_eq!(&request.vorgang, &vorgang);
        // Lossless down to the text: same keys in the same order, same number spellings.
        prop_assert_eq!(
            serde_json::to_string(&request.vorgang).unwrap(),
            serde_json::to_string(&vorgang).unwrap()
        );
    }

    #[test]
    fn decimal_amounts_keep_their_text(c in 0_i64..1_000_000_000) {
        let text = format!("{}.{:02}", c / 100, c % 100);
        let vorgang = format!(
            r#"{{"antragsteller1":{{"personendaten":{{"vorname":"A","nachname":"B"}}}},"haushalt":{{"ausgaben":{{"mietausgaben":[{{"betragMonatlich":{text}}}]}}}}}}"#
        );
        let body = format!(
            r#"{{"vorgang":{vorgang},"tippgeber":{{"externeMitarbeiternummer":"1","vorname":"A","nachname":"B"}}}}"#
        );
        let request = parse_import_request_at(body.as_bytes(), today()).unwrap();
        let out = serde_json::to_string(&request.vorgang).unwrap();
        let expected = if text.ends_with(".00") {
            // 12.00 parses as the float 12.0 and is written back as 12.0: the same value.
            vorgang.replace(&text, &format!("{}.0", c / 100))
        } else if text.ends_with('0') {
            vorgang.replace(&text, text.trim_end_matches('0'))
        } else {
            vorgang.clone()
        };
        prop_assert_eq!(out, expected);
    }
}
