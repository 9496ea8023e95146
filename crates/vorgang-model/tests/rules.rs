//! One test per validation rule, through the public API, with the exact details: in English, the
//! service's texts from before it spoke German (`Accept-Language: en`), and a German set.
#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use chrono::NaiveDate;
use i18n::{Invalid, Lang, Malformed};
use serde_json::{Value, json};
use vorgang_model::{
    Anrede, CustomEntry, CustomValue, MAX_BODY_BYTES, PartnerDaten, RequestError, Violation,
    parse_import_request, parse_import_request_at, render_partner_line,
};

const SEED: &str = include_str!("fixtures/valid/seed.json");

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 15).unwrap()
}

fn seed() -> Value {
    serde_json::from_str(SEED).unwrap()
}

/// `seed()` changed by `edit`.
fn with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut body = seed();
    edit(&mut body);
    serde_json::to_vec(&body).unwrap()
}

/// The violations of `body` as (pointer, English detail).
fn violations(body: &[u8]) -> Vec<(String, String)> {
    violations_in(body, Lang::En)
}

/// The violations of `body` as (pointer, detail in `lang`).
fn violations_in(body: &[u8], lang: Lang) -> Vec<(String, String)> {
    match parse_import_request_at(body, today()) {
        Err(RequestError::Invalid(v)) => v
            .into_iter()
            .map(|v| (v.pointer, v.detail.text(lang).into_owned()))
            .collect(),
        other => panic!("expected 422, got {other:?}"),
    }
}

/// The only violation of `body`.
fn only(body: &[u8]) -> (String, String) {
    let mut v = violations(body);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// The English detail of a malformed `body`.
fn malformed(body: &[u8]) -> String {
    match parse_import_request_at(body, today()) {
        Err(RequestError::Malformed(detail)) => detail.text(Lang::En).into_owned(),
        other => panic!("expected 400, got {other:?}"),
    }
}

fn pair(pointer: &str, detail: &str) -> (String, String) {
    (pointer.to_owned(), detail.to_owned())
}

/// The member at `pointer`; the last segment is created (as `null`) if absent.
fn ptr<'a>(body: &'a mut Value, pointer: &str) -> &'a mut Value {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let parent = body
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match parent {
        Value::Array(items) => &mut items[last.parse::<usize>().unwrap()],
        Value::Object(map) => map.entry(last).or_insert(Value::Null),
        _ => panic!("{pointer}: parent is no container"),
    }
}

const PD: &str = "/vorgang/antragsteller1/personendaten";
const WS: &str = "/vorgang/antragsteller1/wohnsituation";
const FW: &str = "/vorgang/finanzbedarf/finanzierungswunsch";

#[test]
fn the_published_example_is_accepted_and_typed() {
    let request = parse_import_request(SEED.as_bytes()).unwrap();
    assert_eq!(Value::Object(request.vorgang.clone()), seed()["vorgang"]);
    assert_eq!(request.tippgeber.externe_mitarbeiternummer, "078181726-121");
    assert_eq!(request.tippgeber.vorname, "Max");
    assert_eq!(request.tippgeber.nachname, "Mustermann");
    assert_eq!(request.tippgeber.anrede, Some(Anrede::Herr));
    assert_eq!(request.tippgeber.telefon.as_deref(), Some("0612-298-xxxx"));
    assert_eq!(
        request.tippgeber.email.as_deref(),
        Some("max.mustermann@partner.de")
    );
    assert_eq!(request.kommentare, ["Max Mustermann hat 3 Kreditkarten."]);
    assert_eq!(
        request.partner,
        PartnerDaten {
            vertriebsschluessel: Some("KOOPERATION_MIT_DRKLEIN-RK".into()),
            kundennummer: Some("143251ab".into()),
            custom: vec![
                CustomEntry {
                    key: "telefonTermin".into(),
                    value: CustomValue::String("2021-01-10 13:00:00".into()),
                },
                CustomEntry {
                    key: "filialId".into(),
                    value: CustomValue::String("123123".into()),
                },
            ],
        }
    );
    assert!(request.warnings.is_empty());
    // 200.01 stays 200.01.
    let text = serde_json::to_string(&request.vorgang).unwrap();
    assert!(text.contains(r#""betragMonatlich":200.01"#), "{text}");
}

#[test]
fn required_top_level_members() {
    let body = with(|b| {
        b.as_object_mut().unwrap().remove("vorgang");
        b["tippgeber"] = Value::Null;
    });
    assert_eq!(
        violations(&body),
        [pair("/tippgeber", "required"), pair("/vorgang", "required")]
    );
    assert_eq!(
        only(&with(|b| b["vorgang"] = json!([]))),
        pair("/vorgang", "must be an object")
    );
    assert_eq!(
        only(&with(|b| b["tippgeber"] = json!("x"))),
        pair("/tippgeber", "must be an object")
    );
}

#[test]
fn tippgeber_rules() {
    let body = with(|b| {
        b["tippgeber"] = json!({
            "externeMitarbeiternummer": " ",
            "nachname": 7,
            "anrede": "DIVERS",
            "telefon": 123,
            "email": "kein-at-zeichen.de"
        });
    });
    assert_eq!(
        violations(&body),
        [
            pair("/tippgeber/anrede", "must be one of: HERR, FRAU"),
            pair("/tippgeber/email", "must be a valid e-mail address"),
            pair("/tippgeber/externeMitarbeiternummer", "must not be empty"),
            pair("/tippgeber/nachname", "must be a string"),
            pair("/tippgeber/telefon", "must be a string"),
            pair("/tippgeber/vorname", "required"),
        ]
    );
    let request = parse_import_request_at(
        &with(|b| {
            b["tippgeber"]["anrede"] = json!("FRAU");
            b["tippgeber"]["email"] = Value::Null;
        }),
        today(),
    )
    .unwrap();
    assert_eq!(request.tippgeber.anrede, Some(Anrede::Frau));
    assert_eq!(request.tippgeber.email, None);
}

#[test]
fn required_antragsteller1_names() {
    assert_eq!(
        violations(&with(|b| {
            *ptr(b, &format!("{PD}/vorname")) = json!("  ");
            ptr(b, PD).as_object_mut().unwrap().remove("nachname");
        })),
        [
            pair(&format!("{PD}/nachname"), "required"),
            pair(&format!("{PD}/vorname"), "must not be empty"),
        ]
    );
    assert_eq!(
        only(&with(|b| {
            ptr(b, "/vorgang/antragsteller1")
                .as_object_mut()
                .unwrap()
                .remove("personendaten");
        })),
        pair(PD, "required")
    );
    assert_eq!(
        only(&with(|b| b["vorgang"]["antragsteller1"] = Value::Null)),
        pair("/vorgang/antragsteller1", "required")
    );
    // A wrong type is reported once, by the schema walk.
    assert_eq!(
        only(&with(|b| *ptr(b, &format!("{PD}/vorname")) = json!(1))),
        pair(&format!("{PD}/vorname"), "must be a string")
    );
}

#[test]
fn schema_types() {
    let body = with(|b| {
        b["vorgang"]["leadquelle"] = json!(1);
        *ptr(b, &format!("{WS}/gemeinsamerHaushalt")) = json!("ja");
        *ptr(b, &format!("{FW}/laufzeitInMonaten")) = json!(24.0);
        *ptr(b, &format!("{FW}/kreditbetrag")) = json!("10000");
        *ptr(b, "/vorgang/haushalt/ausgaben/mietausgaben") = json!({});
        *ptr(b, "/vorgang/haushalt/kontoverbindung") = json!([]);
    });
    assert_eq!(
        violations(&body),
        [
            pair(&format!("{WS}/gemeinsamerHaushalt"), "must be a boolean"),
            pair(&format!("{FW}/kreditbetrag"), "must be a number"),
            pair(&format!("{FW}/laufzeitInMonaten"), "must be an integer"),
            pair(
                "/vorgang/haushalt/ausgaben/mietausgaben",
                "must be an array"
            ),
            pair("/vorgang/haushalt/kontoverbindung", "must be an object"),
            pair("/vorgang/leadquelle", "must be a string"),
        ]
    );
    // 24 is fine, 24.0 and 1e1 are not integers.
    assert!(
        parse_import_request_at(
            &with(|b| *ptr(b, &format!("{FW}/laufzeitInMonaten")) = json!(24)),
            today()
        )
        .is_ok()
    );
    let text = SEED.replace(
        r#""anzahlPersonenImHaushalt": 1"#,
        r#""anzahlPersonenImHaushalt": 1e0"#,
    );
    assert_eq!(
        only(text.as_bytes()),
        pair(
            &format!("{WS}/anzahlPersonenImHaushalt"),
            "must be an integer"
        )
    );
    // Array items: null is not an object.
    assert_eq!(
        only(&with(|b| {
            ptr(b, "/vorgang/haushalt/ausgaben/mietausgaben")
                .as_array_mut()
                .unwrap()
                .insert(0, Value::Null);
        })),
        pair(
            "/vorgang/haushalt/ausgaben/mietausgaben/0",
            "must be an object"
        )
    );
}

#[test]
fn enums_including_inherited_and_nested_ones() {
    let body = with(|b| {
        *ptr(b, &format!("{WS}/wohnart")) = json!("ZELT");
        *ptr(b, &format!("{WS}/anschrift/land")) = json!("XX");
        *ptr(
            b,
            "/vorgang/haushalt/kontoverbindung/gehoertZuAntragsteller",
        ) = json!("X");
        *ptr(b, &format!("{PD}/titel")) = json!(["DOKTOR", "DR"]);
        b["vorgang"]["haushalt"]["verbindlichkeiten"] =
            json!({"sonstigeVerbindlichkeiten": [{"gehoertZuAntragsteller": 1}]});
    });
    assert_eq!(
        violations(&body),
        [
            pair(
                &format!("{PD}/titel/1"),
                "must be one of: DOKTOR, PROFESSOR"
            ),
            pair(
                &format!("{WS}/anschrift/land"),
                "must be a country code of the KEX schema: ISO 3166-1 alpha-2 in capitals (e.g. DE) or SONSTIGE"
            ),
            pair(
                &format!("{WS}/wohnart"),
                "must be one of: ZUR_MIETE, ZUR_UNTERMIETE, IM_EIGENEN_HAUS, BEI_DEN_ELTERN"
            ),
            pair(
                "/vorgang/haushalt/kontoverbindung/gehoertZuAntragsteller",
                "must be one of: ANTRAGSTELLER_1, ANTRAGSTELLER_2, BEIDE"
            ),
            pair(
                "/vorgang/haushalt/verbindlichkeiten/sonstigeVerbindlichkeiten/0/gehoertZuAntragsteller",
                "must be a string"
            ),
        ]
    );
}

#[test]
fn dates_and_geburtsdatum_in_the_past() {
    let at = |date: &str| {
        with(|b| {
            *ptr(b, PD) = json!({"vorname": "A", "nachname": "B", "geburtsdatum": date});
        })
    };
    assert!(parse_import_request_at(&at("2024-06-14"), today()).is_ok());
    assert_eq!(
        only(&at("2024-06-15")),
        pair(&format!("{PD}/geburtsdatum"), "must be a date in the past")
    );
    assert_eq!(
        only(&at("2031-01-01")),
        pair(&format!("{PD}/geburtsdatum"), "must be a date in the past")
    );
    assert_eq!(
        only(&at("1990-02-29")),
        pair(
            &format!("{PD}/geburtsdatum"),
            "must be a date YYYY-MM-DD that exists"
        )
    );
    // Other dates may lie in the future, but must exist.
    assert!(
        parse_import_request_at(
            &with(|b| *ptr(b, &format!("{WS}/anschrift/wohnhaftSeit")) = json!("2099-12-31")),
            today()
        )
        .is_ok()
    );
    assert_eq!(
        only(&with(|b| *ptr(
            b,
            &format!("{WS}/anschrift/wohnhaftSeit")
        ) = json!("2016-1-1"))),
        pair(
            &format!("{WS}/anschrift/wohnhaftSeit"),
            "must be a date YYYY-MM-DD that exists"
        )
    );
}

#[test]
fn iban_and_email() {
    let iban = "/vorgang/haushalt/kontoverbindung/iban";
    assert_eq!(
        only(&with(|b| *ptr(b, iban) = json!("DE98600100700160451701"))),
        pair(iban, "IBAN checksum is wrong")
    );
    let format = "must be an IBAN in electronic format (uppercase letters and digits, no spaces)";
    assert_eq!(
        only(&with(
            |b| *ptr(b, iban) = json!("DE98 6001 0070 0160 4517 00")
        )),
        pair(iban, format)
    );
    assert_eq!(
        only(&with(|b| *ptr(b, iban) = json!("de98600100700160451700"))),
        pair(iban, format)
    );
    // Check digits valid, length not: German IBANs have 22 characters (iban_validate's registry).
    assert_eq!(
        only(&with(|b| *ptr(b, iban) = json!("DE5137040044053201300"))),
        pair(
            iban,
            "IBAN does not have the length and format of its country"
        )
    );
    assert_eq!(
        only(&with(|b| *ptr(b, iban) = json!("XX0812345678901"))),
        pair(iban, "IBAN country code is unknown")
    );
    for good in [
        "DE89370400440532013000",
        "AT611904300234573201",
        "CH9300762011623852957",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "GB29NWBK60161331926819",
    ] {
        assert!(
            parse_import_request_at(&with(|b| *ptr(b, iban) = json!(good)), today()).is_ok(),
            "{good}"
        );
    }
    // Every property named iban, inherited ones included.
    assert_eq!(
        only(&with(|b| {
            b["vorgang"]["haushalt"]["verbindlichkeiten"] =
                json!({"kreditkarten": [{"iban": "GB82WEST12345698765431"}]});
        })),
        pair(
            "/vorgang/haushalt/verbindlichkeiten/kreditkarten/0/iban",
            "IBAN checksum is wrong"
        )
    );
    assert_eq!(
        only(&with(
            |b| *ptr(b, PD) = json!({"vorname": "A", "nachname": "B", "email": "a@b"})
        )),
        pair(&format!("{PD}/email"), "must be a valid e-mail address")
    );
}

#[test]
fn ranges_and_signs() {
    let body = with(|b| {
        *ptr(b, &format!("{FW}/kreditbetrag")) = json!(0);
        *ptr(b, &format!("{FW}/laufzeitInMonaten")) = json!(121);
        *ptr(b, &format!("{FW}/rateMonatlich")) = json!(-1);
        *ptr(b, &format!("{WS}/anzahlPersonenImHaushalt")) = json!(0);
        *ptr(
            b,
            "/vorgang/haushalt/ausgaben/mietausgaben/0/betragMonatlich",
        ) = json!(-0.01);
    });
    let mut v = violations(&body);
    v.sort();
    assert_eq!(
        v,
        [
            pair(
                &format!("{WS}/anzahlPersonenImHaushalt"),
                "must be at least 1"
            ),
            pair(&format!("{FW}/kreditbetrag"), "must be greater than 0"),
            pair(
                &format!("{FW}/laufzeitInMonaten"),
                "must be between 1 and 120"
            ),
            pair(&format!("{FW}/rateMonatlich"), "must not be negative"),
            pair(
                "/vorgang/haushalt/ausgaben/mietausgaben/0/betragMonatlich",
                "must not be negative"
            ),
        ]
    );
    assert_eq!(
        only(&with(|b| *ptr(b, &format!("{FW}/kreditbetrag")) = json!(-5))),
        pair(&format!("{FW}/kreditbetrag"), "must be greater than 0")
    );
    // Incomes, percentages and asset values may be negative.
    assert!(
        parse_import_request_at(
            &with(|b| {
                *ptr(b, &format!("{FW}/provisionswunschInProzent")) = json!(-1);
                b["vorgang"]["antragsteller1"]["beschaeftigung"] =
                    json!({"hausfrau": {"sonstigesEinkommenMonatlich": -10}});
                b["vorgang"]["haushalt"]["immobilien"] = json!([{"wert": -1}]);
            }),
            today()
        )
        .is_ok()
    );
}

#[test]
fn service_owned_fields() {
    let body = with(|b| {
        b["vorgang"]["kundenbetreuer"] = json!({"partnerId": "X"});
        b["vorgang"]["tippgeber"] = json!({"partnerId": "Y"});
        b["vorgang"]["bearbeiter"] = json!("wrong type too");
        b["vorgang"]["eigeneVorgangsnummer"] = json!("1");
    });
    let detail = "is set by the service and must not be sent";
    assert_eq!(
        violations(&body),
        [
            pair("/vorgang/bearbeiter", detail),
            pair("/vorgang/eigeneVorgangsnummer", detail),
            pair("/vorgang/kundenbetreuer", detail),
            pair("/vorgang/tippgeber", detail),
        ]
    );
}

#[test]
fn comment_limits_count_characters_and_both_lists() {
    let ok = with(|b| {
        b["kommentare"] = json!(["ä".repeat(4000)]);
        b["vorgang"]["kommentare"] = json!(vec!["x"; 49]);
    });
    assert!(parse_import_request_at(&ok, today()).is_ok());
    assert_eq!(
        only(&with(|b| b["kommentare"] = json!(["ä".repeat(4001)]))),
        pair("/kommentare/0", "must be at most 4000 characters")
    );
    assert_eq!(
        only(&with(|b| {
            b["kommentare"] = json!(vec!["x"; 25]);
            b["vorgang"]["kommentare"] = json!(vec!["y"; 26]);
        })),
        pair(
            "/kommentare",
            "at most 50 comments in total (kommentare and vorgang.kommentare)"
        )
    );
    assert_eq!(
        only(&with(|b| {
            b["kommentare"] = Value::Null;
            b["vorgang"]["kommentare"] = json!(vec!["y"; 51]);
        })),
        pair(
            "/vorgang/kommentare",
            "at most 50 comments in total (kommentare and vorgang.kommentare)"
        )
    );
    assert_eq!(
        violations(&with(|b| {
            b["kommentare"] = json!([1]);
            b["vorgang"]["kommentare"] = json!([null, "x".repeat(4001)]);
        })),
        [
            pair("/kommentare/0", "must be a string"),
            pair("/vorgang/kommentare/0", "must be a string"),
            pair("/vorgang/kommentare/1", "must be at most 4000 characters"),
        ]
    );
    // vorgang.kommentare stays inside the vorgang; kommentare holds the top-level ones.
    let request = parse_import_request_at(&ok, today()).unwrap();
    assert_eq!(request.kommentare.len(), 1);
    assert_eq!(request.vorgang["kommentare"].as_array().unwrap().len(), 49);
}

#[test]
fn partner_aliases() {
    let request = parse_import_request_at(
        &with(|b| {
            b["partner"] =
                json!({"vertriebsschlüssel": "VS", "kundenummer": "K", "kundennummer": null});
        }),
        today(),
    )
    .unwrap();
    assert_eq!(request.partner.vertriebsschluessel.as_deref(), Some("VS"));
    assert_eq!(request.partner.kundennummer.as_deref(), Some("K"));
    assert!(request.warnings.is_empty());
    assert_eq!(
        violations(&with(|b| {
            b["partner"]["vertriebsschlüssel"] = json!("VS");
            b["partner"]["kundenummer"] = json!("K");
        })),
        [
            pair(
                "/partner/kundenummer",
                "given both as kundennummer and kundenummer"
            ),
            pair(
                "/partner/vertriebsschlüssel",
                "given both as vertriebsschluessel and vertriebsschlüssel"
            ),
        ]
    );
    assert_eq!(
        only(&with(|b| b["partner"] = json!("x"))),
        pair("/partner", "must be an object")
    );
}

#[test]
fn partner_custom_entries() {
    let request = parse_import_request_at(
        &with(|b| {
            b["partner"]["custom"] = json!([
                {"key": "b", "value": true},
                {"key": "i", "value": -7},
                {"key": "s", "value": "2021-01-10"}
            ]);
        }),
        today(),
    )
    .unwrap();
    let values: Vec<CustomValue> = request
        .partner
        .custom
        .into_iter()
        .map(|e| e.value)
        .collect();
    assert_eq!(
        values,
        [
            CustomValue::Boolean(true),
            CustomValue::Integer(-7),
            CustomValue::String("2021-01-10".into())
        ]
    );
    let body = with(|b| {
        b["partner"]["custom"] = json!([
            {"key": "a", "value": null},
            {"key": "a", "value": 1},
            {"value": 1},
            {"key": "", "value": 1.5},
            {"key": 3, "value": {}},
            {"key": "big", "value": 9_223_372_036_854_775_808_u64},
            {"key": "f", "value": 2.0},
            "x"
        ]);
    });
    let typed = "must be a boolean, an integer or a string";
    assert_eq!(
        violations(&body),
        [
            pair("/partner/custom/0/value", "required"),
            pair(
                "/partner/custom/1/key",
                "must be unique: an earlier entry has the same key"
            ),
            pair("/partner/custom/2/key", "required"),
            pair("/partner/custom/3/key", "must not be empty"),
            pair("/partner/custom/3/value", typed),
            pair("/partner/custom/4/key", "must be a string"),
            pair("/partner/custom/4/value", typed),
            pair(
                "/partner/custom/5/value",
                "must be an integer that fits in 64 bits (signed)"
            ),
            pair("/partner/custom/6/value", typed),
            pair("/partner/custom/7", "must be an object"),
        ]
    );
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"key": i.to_string(), "value": i}))
        .collect();
    assert_eq!(
        only(&with(|b| b["partner"]["custom"] = json!(too_many))),
        pair("/partner/custom", "must have at most 100 entries")
    );
    assert_eq!(
        only(&with(|b| b["partner"]["custom"] = json!({}))),
        pair("/partner/custom", "must be an array")
    );
}

#[test]
fn nulls_are_absent_and_kept_in_the_vorgang() {
    let body = with(|b| {
        b["kommentare"] = Value::Null;
        b["partner"] = Value::Null;
        b["tippgeber"]["email"] = Value::Null;
        b["vorgang"]["haushalt"] = Value::Null;
        b["vorgang"]["kundenbetreuer"] = Value::Null;
        *ptr(b, &format!("{FW}/laufzeitInMonaten")) = Value::Null;
    });
    let request = parse_import_request_at(&body, today()).unwrap();
    assert!(request.kommentare.is_empty());
    assert_eq!(request.partner, PartnerDaten::default());
    assert_eq!(request.vorgang["haushalt"], Value::Null);
    assert_eq!(request.vorgang["kundenbetreuer"], Value::Null);
    assert_eq!(
        request.vorgang["finanzbedarf"]["finanzierungswunsch"]["laufzeitInMonaten"],
        Value::Null
    );
}

#[test]
fn unknown_fields_are_warnings_and_kept() {
    let body = with(|b| {
        b["extra"] = json!(1);
        b["vorgang"]["a/b"] = json!({"tief": [1]});
        b["vorgang"]["haushalt"]["ausgaben"]["mietausgaben"][0]["x~y"] = json!(null);
        b["tippgeber"]["rolle"] = json!("x");
        b["partner"]["custom"][0]["typ"] = json!("x");
        b["partner"]["neu"] = json!("x");
    });
    let request = parse_import_request_at(&body, today()).unwrap();
    assert_eq!(
        request.warnings,
        [
            "WARN unknown-field /extra",
            "WARN unknown-field /partner/custom/0/typ",
            "WARN unknown-field /partner/neu",
            "WARN unknown-field /tippgeber/rolle",
            // Names that are not identifiers appear as their position
            // (docs/reference/http-api.md §1).
            "WARN unknown-field /vorgang/#4",
            "WARN unknown-field /vorgang/haushalt/ausgaben/mietausgaben/0/#2",
        ]
    );
    assert_eq!(request.vorgang["a/b"], json!({"tief": [1]}));
}

/// Member names a partner might send that must never be echoed, each with a planted text.
fn planted_names() -> Vec<String> {
    vec![
        "Erika Mustermann".to_owned(),
        "erika.mustermann@example.org".to_owned(),
        format!("GEHEIM{}", "x".repeat(59)), // 65 characters
        "Straße".to_owned(),
        "GEHEIM~0/1".to_owned(),
        "GEHEIM/".to_owned(),
        "~GEHEIM".to_owned(),
        "GEHEIM-1".to_owned(),
        "#GEHEIM".to_owned(),
    ]
}

#[test]
fn unknown_member_names_are_named_only_if_identifiers() {
    let names = planted_names();
    let identifier = format!("A{}", "b_9".repeat(21)); // 64 characters: still named
    let body = with(|b| {
        for name in &names {
            b["vorgang"]["antragsteller1"][name.as_str()] = json!(1);
            b["tippgeber"][name.as_str()] = json!(1);
            b["partner"][name.as_str()] = json!(1);
            b["partner"]["custom"][0][name.as_str()] = json!(1);
            b[name.as_str()] = json!(1);
        }
        b["vorgang"]["antragsteller1"][identifier.as_str()] = json!(1);
    });
    let request = parse_import_request_at(&body, today()).unwrap();
    let text = request.warnings.join("\n");
    for name in &names {
        assert!(!text.contains(name.as_str()), "{name} echoed: {text}");
    }
    for planted in ["GEHEIM", "Erika", "Mustermann", "example.org", "Straße"] {
        assert!(!text.contains(planted), "{planted} echoed: {text}");
    }
    // antragsteller1 has 2 members before the planted ones; tippgeber 6, partner 3, custom/0 2,
    // the top level 4.
    let mut expected: Vec<String> = Vec::new();
    for (prefix, first) in [
        ("", 4),
        ("/partner", 3),
        ("/partner/custom/0", 2),
        ("/tippgeber", 6),
        ("/vorgang/antragsteller1", 2),
    ] {
        for n in 0..names.len() {
            expected.push(format!("WARN unknown-field {prefix}/#{}", first + n));
        }
        if prefix == "/vorgang/antragsteller1" {
            expected.push(format!("WARN unknown-field {prefix}/{identifier}"));
        }
    }
    let mut sorted = request.warnings.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    // Every rendered pointer is a valid RFC 6901 pointer: a `#n` segment needs no escape.
    for warning in &request.warnings {
        let pointer = warning.strip_prefix("WARN unknown-field ").unwrap();
        assert!(pointer.starts_with('/'), "{pointer}");
        assert!(!pointer.contains('~'), "{pointer}");
    }
}

#[test]
fn violations_below_an_unnameable_member_name_its_position() {
    // A duplicate key inside an unknown member whose name is personal data: the 400 detail
    // names the object by position.
    let body = br#"{"vorgang": {"Erika Mustermann": {"a": 1, "a": 2}}}"#;
    let detail = malformed(body);
    assert!(
        detail.starts_with("duplicate key in the object at /vorgang/#0 "),
        "{detail}"
    );
    assert!(!detail.contains("Erika"));
}

#[test]
fn nul_is_refused_in_every_string_and_member_name() {
    let body = with(|b| {
        b["vorgang"]["antragsteller1"]["personendaten"]["vorname"] = json!("Ma\u{0}x");
        b["vorgang"]["leadquelle"] = json!("\u{0}");
        // Unknown members inside vorgang are forwarded: checked as well, at any depth.
        b["vorgang"]["neu"] = json!({"tief": [1, "x\u{0}"]});
        b["tippgeber"]["nachname"] = json!("Muster\u{0}mann");
        b["kommentare"] = json!(["ok", "Max\u{0} Mustermann"]);
        b["partner"]["kundennummer"] = json!("1\u{0}");
        b["partner"]["custom"][0]["value"] = json!("2021\u{0}");
        b["partner"]["custom"][1]["key"] = json!("filial\u{0}Id");
        b["extra"] = json!("\u{0}");
        // In a member name: the member is named by its position.
        b["vorgang"]["haushalt"]["GEHEIM\u{0}"] = json!(1);
    });
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.contains("\\u0000"),
        "the body carries NUL as the escape \\u0000"
    );
    let string = "must not contain the character U+0000";
    let name = "member name must not contain the character U+0000";
    assert_eq!(
        violations(&body),
        [
            pair("/extra", string),
            pair("/kommentare/1", string),
            pair("/partner/custom/0/value", string),
            pair("/partner/custom/1/key", string),
            pair("/partner/kundennummer", string),
            pair("/tippgeber/nachname", string),
            pair("/vorgang/antragsteller1/personendaten/vorname", string),
            pair("/vorgang/haushalt/#2", name),
            pair("/vorgang/leadquelle", string),
            pair("/vorgang/neu/tief/1", string),
        ]
    );
    // A raw NUL byte cannot occur: JSON requires control characters in strings to be escaped.
    assert!(malformed(b"{\"vorgang\": \"a\x00b\"}").contains("control character"));
}

#[test]
fn every_violation_is_reported_sorted() {
    let body = with(|b| {
        b["tippgeber"]["vorname"] = json!("");
        b["vorgang"]["haushalt"]["ausgaben"]["mietausgaben"] = json!(
            (0..12)
                .map(|_| json!({"betragMonatlich": -1}))
                .collect::<Vec<_>>()
        );
        *ptr(b, &format!("{FW}/laufzeitInMonaten")) = json!(0);
    });
    let pointers: Vec<String> = violations(&body).into_iter().map(|(p, _)| p).collect();
    let mut expected = vec![
        "/tippgeber/vorname".to_owned(),
        format!("{FW}/laufzeitInMonaten"),
    ];
    expected.extend(
        (0..12).map(|i| format!("/vorgang/haushalt/ausgaben/mietausgaben/{i}/betragMonatlich")),
    );
    assert_eq!(pointers, expected);
}

#[test]
fn malformed_bodies() {
    assert_eq!(
        malformed(&vec![b' '; MAX_BODY_BYTES + 1]),
        "body larger than 262144 bytes"
    );
    assert!(malformed(b"{\"a\":1,\"a\":2}").starts_with("duplicate key in the top-level object"));
    assert_eq!(malformed(b"[1]"), "the body must be a JSON object");
    assert!(malformed(b"{}x").starts_with("trailing data"));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(SEED.as_bytes());
    assert!(parse_import_request_at(&bom, today()).is_ok());
}

#[test]
fn a_violation_is_a_pointer_and_a_message_id_rendered_in_either_language() {
    let v = Violation {
        pointer: "/a".into(),
        detail: Invalid::Required,
    };
    assert_eq!(v.detail.text(Lang::De), "ist erforderlich");
    assert_eq!(v.detail.text(Lang::En), "required");
    let Err(RequestError::Malformed(detail)) = parse_import_request_at(b"[1]", today()) else {
        panic!("an array is malformed");
    };
    assert_eq!(detail, Malformed::NotAnObject);
    assert_eq!(
        detail.text(Lang::De),
        "der Request-Body muss ein JSON-Objekt sein"
    );
}

#[test]
fn violations_in_german_name_the_same_pointers_in_the_same_order() {
    let body = with(|b| {
        *ptr(b, "/tippgeber/anrede") = json!("Herr");
        *ptr(b, "/tippgeber/vorname") = json!("  ");
        b["tippgeber"].as_object_mut().unwrap().remove("nachname");
        *ptr(b, &format!("{FW}/laufzeitInMonaten")) = json!(24.5);
        *ptr(b, &format!("{FW}/kreditbetrag")) = json!(0);
        *ptr(b, &format!("{PD}/geburtsdatum")) = json!("01.01.1980");
        *ptr(b, &format!("{WS}/anzahlPersonenImHaushalt")) = json!(0);
        *ptr(b, "/vorgang/haushalt/kontoverbindung/iban") = json!("DE98600100700160451701");
        *ptr(b, "/tippgeber/email") = json!("max.mustermann");
    });
    let english = violations_in(&body, Lang::En);
    let german = violations_in(&body, Lang::De);
    assert_eq!(
        german,
        [
            pair(
                "/tippgeber/anrede",
                "muss einer dieser Werte sein: HERR, FRAU"
            ),
            pair("/tippgeber/email", "muss eine gültige E-Mail-Adresse sein"),
            pair("/tippgeber/nachname", "ist erforderlich"),
            pair("/tippgeber/vorname", "darf nicht leer sein"),
            pair(
                &format!("{PD}/geburtsdatum"),
                "ist kein gültiges Datum (JJJJ-MM-TT)"
            ),
            pair(
                &format!("{WS}/anzahlPersonenImHaushalt"),
                "muss mindestens 1 sein"
            ),
            pair(&format!("{FW}/kreditbetrag"), "muss größer als 0 sein"),
            pair(
                &format!("{FW}/laufzeitInMonaten"),
                "muss eine ganze Zahl sein"
            ),
            pair(
                "/vorgang/haushalt/kontoverbindung/iban",
                "die Prüfziffern der IBAN stimmen nicht"
            ),
        ]
    );
    let pointers = |v: &[(String, String)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(pointers(&english), pointers(&german));
    assert_eq!(english[0].1, "must be one of: HERR, FRAU");
    assert_eq!(english[6].1, "must be greater than 0");
}

#[test]
fn partner_line() {
    let request = parse_import_request(SEED.as_bytes()).unwrap();
    assert_eq!(
        render_partner_line(&request.partner).as_deref(),
        Some(
            "Partnerdaten: Vertriebsschlüssel: KOOPERATION_MIT_DRKLEIN-RK; Kundennummer: 143251ab; \
             telefonTermin: 2021-01-10 13:00:00; filialId: 123123"
        )
    );
    assert_eq!(render_partner_line(&PartnerDaten::default()), None);
    let partner = PartnerDaten {
        vertriebsschluessel: Some("  ".into()),
        kundennummer: None,
        custom: vec![
            CustomEntry {
                key: "mehr\nzeilig".into(),
                value: CustomValue::String("a\r\nb".into()),
            },
            CustomEntry {
                key: "ok".into(),
                value: CustomValue::Boolean(false),
            },
            CustomEntry {
                key: "n".into(),
                value: CustomValue::Integer(-3),
            },
            CustomEntry {
                key: "leer".into(),
                value: CustomValue::String(String::new()),
            },
        ],
    };
    assert_eq!(
        render_partner_line(&partner).as_deref(),
        Some("Partnerdaten: mehr zeilig: a  b; ok: false; n: -3")
    );
}

/// Timing of the published example; run with
/// `cargo test -p vorgang-model --release --test rules -- --ignored --nocapture`.
#[test]
#[ignore = "timing, meaningful in release builds only"]
fn seed_timing() {
    let body = SEED.as_bytes();
    parse_import_request_at(body, today()).unwrap(); // builds the schema model
    let rounds = 20_000_u32;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(parse_import_request_at(std::hint::black_box(body), today()).unwrap());
    }
    let per = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(serde_json::from_slice::<Value>(std::hint::black_box(body)).unwrap());
    }
    let baseline = start.elapsed() / rounds;
    println!(
        "seed example: parse + validate {per:?} per request; plain serde_json::from_slice {baseline:?}"
    );
}
