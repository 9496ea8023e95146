//! The partner's request: parsed strictly, validated completely.

use chrono::NaiveDate;
use i18n::{Invalid, Lang, Malformed};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::pointer::{Seg, Violation};
use crate::schema::{self, REQUIRED_IN_VORGANG};
use crate::strict_json;
use crate::validate::{Ctx, MAX_KOMMENTARE, is_valid_email};

/// Deepest accepted nesting of objects and arrays in a body; the top-level object counts as 1.
pub const MAX_NESTING_DEPTH: usize = strict_json::MAX_DEPTH;

/// Most `partner.custom` entries.
pub const MAX_CUSTOM_ENTRIES: usize = 100;

/// Largest accepted request body: 256 KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Top-level members a request must have (not `null`).
pub const REQUIRED_MEMBERS: [&str; 2] = ["vorgang", "tippgeber"];

/// Members of `tippgeber` that must be strings, not blank.
pub const TIPPGEBER_REQUIRED: [&str; 3] = ["externeMitarbeiternummer", "vorname", "nachname"];

/// `partner` members accepted under a second name, as `(name, alias)`: the aliases are the
/// spellings of the published partner table. Giving both (neither `null`) is a violation.
pub const PARTNER_ALIASES: [(&str, &str); 2] = [
    ("vertriebsschluessel", "vertriebsschlüssel"),
    ("kundennummer", "kundenummer"),
];

/// Why a request body was refused. Both carry message ids of the catalogue ([`i18n`]), which
/// the server renders in the language of the answer; `Display` is English (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, not an object, duplicate keys, too deep, invalid UTF-8 (HTTP 400).
    #[error("malformed request: {}", .0.text(Lang::En))]
    Malformed(Malformed),
    /// Well-formed but invalid: every violation found (HTTP 422).
    #[error("{} validation error(s)", .0.len())]
    Invalid(Vec<Violation>),
}

/// `tippgeber.anrede`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Anrede {
    /// Mr.
    Herr,
    /// Ms.
    Frau,
}

impl Anrede {
    /// Every salutation, in the order of the contract.
    pub const ALL: [Self; 2] = [Self::Herr, Self::Frau];

    /// The wire name: `HERR` or `FRAU`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Herr => "HERR",
            Self::Frau => "FRAU",
        }
    }
}

/// The person at the partner who gave the tip.
///
/// The one Tippgeber type of the workspace: validated here, stored with the import and handed to
/// `PartnerDirectory::create_tippgeber`, whose adapter maps it to Europace's wire names (e.g.
/// `telefon` is sent as `telefonnummer`). Its serde form uses the names of the partner API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomEntry {
    /// Non-empty, unique key.
    pub key: String,
    /// The value.
    pub value: CustomValue,
}

/// The partner's own data; KEX has no field for it, so it is stored and rendered as a comment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerDaten {
    /// The partner's sales key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertriebsschluessel: Option<String>,
    /// The customer's number at the partner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kundennummer: Option<String>,
    /// Custom key/values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomEntry>,
}

/// A parsed and validated `POST /vorgang` body.
///
/// This typed value travels the whole journey of an import: the core keeps it in the import
/// record until the import finishes, builds the Tippgeber call and the KEX body from it, and
/// only the store serialises it (its serde form, `warnings` included, is what `vorgang-store`
/// writes). Deserialising does not validate: only [`parse_import_request`] makes one from
/// untrusted input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The KEX Vorgang exactly as the partner sent it, to be forwarded unchanged: the same
    /// members in the same order with the same values, unknown members included.
    ///
    /// Members whose value is `null` are kept as sent too. Validation treats them as absent
    /// (as Europace does), so a `null` never fails a rule; removing them would change the
    /// shape of what the partner sent. The service-owned members (`kundenbetreuer`,
    /// `tippgeber`, `bearbeiter`, `eigeneVorgangsnummer`) can only be absent or `null` here;
    /// the importer sets them by inserting, which replaces such a `null`.
    pub vorgang: serde_json::Map<String, serde_json::Value>,
    /// The Tippgeber.
    pub tippgeber: Tippgeber,
    /// The top-level comments (`vorgang.kommentare`, if sent, stays inside [`Self::vorgang`]).
    #[serde(default)]
    pub kommentare: Vec<String>,
    /// Partner data, aliases mapped to the canonical names; empty when `partner` was absent.
    #[serde(default)]
    pub partner: PartnerDaten,
    /// Our warnings, e.g. `WARN unknown-field /vorgang/foo`, sorted by pointer. Unknown
    /// fields outside `vorgang` are only named here; they are not part of the typed fields.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Parses and validates a request body, taking today's date (UTC) from the system clock for
/// the rule that `geburtsdatum` lies in the past.
///
/// Parsing is strict: the body must be UTF-8 (a leading byte-order mark is ignored) holding
/// exactly one JSON object, without duplicate keys, nested at most [`MAX_NESTING_DEPTH`]
/// levels deep, without lone surrogate escapes. Then every rule of docs/reference/validation.md
/// is checked and every violation reported, including the character U+0000 in any string value or
/// member name anywhere in the body (Europace cannot use it, PostgreSQL cannot store it).
///
/// Pointers and warnings name a submitted member only if its name is an identifier (1 to 64
/// ASCII letters, digits or `_`, or a name of the contract such as `vertriebsschlüssel`);
/// any other member is named by its 0-based position in its object, as `#position`
/// (e.g. `/vorgang/#3`), so no submitted text is echoed.
///
/// The caller should refuse bodies over [`MAX_BODY_BYTES`] before (HTTP 413); a larger body
/// passed here anyway is refused as [`RequestError::Malformed`] without being parsed.
///
/// # Errors
/// [`RequestError::Malformed`] for bodies that are not a single well-formed JSON object,
/// [`RequestError::Invalid`] with every violation for well-formed but invalid ones.
pub fn parse_import_request(body: &[u8]) -> Result<ImportRequest, RequestError> {
    parse_import_request_at(body, chrono::Utc::now().date_naive())
}

/// [`parse_import_request`] with an explicit "today", for deterministic tests: a `geburtsdatum`
/// must lie strictly before `today`.
///
/// # Errors
/// As [`parse_import_request`].
pub fn parse_import_request_at(
    body: &[u8],
    today: NaiveDate,
) -> Result<ImportRequest, RequestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RequestError::Malformed(Malformed::TooLarge {
            max_bytes: MAX_BODY_BYTES,
        }));
    }
    let mut root = strict_json::parse_object(body).map_err(RequestError::Malformed)?;
    let (tippgeber, kommentare, partner, warnings) = {
        let mut ctx = Ctx::new(today);
        let checked = check_root(&mut ctx, &root);
        ctx.check_no_nul(&root);
        let violations = ctx.sorted_violations();
        if !violations.is_empty() {
            return Err(RequestError::Invalid(violations));
        }
        let Some(tippgeber) = checked.tippgeber else {
            return Err(internal("tippgeber"));
        };
        (
            tippgeber,
            checked.kommentare,
            checked.partner,
            ctx.sorted_warnings(),
        )
    };
    let Some(Value::Object(vorgang)) = root.remove("vorgang") else {
        return Err(internal("vorgang"));
    };
    Ok(ImportRequest {
        vorgang,
        tippgeber,
        kommentare,
        partner,
        warnings,
    })
}

/// Cannot happen: validation passed, so `what` is there. Reported as a violation, not a panic.
fn internal(what: &'static str) -> RequestError {
    RequestError::Invalid(vec![Violation {
        pointer: format!("/{what}"),
        detail: Invalid::Required,
    }])
}

/// The typed parts found while validating (complete only if there was no violation).
struct Checked {
    tippgeber: Option<Tippgeber>,
    kommentare: Vec<String>,
    partner: PartnerDaten,
}

fn check_root<'a>(ctx: &mut Ctx<'a>, root: &'a Map<String, Value>) -> Checked {
    let mut checked = Checked {
        tippgeber: None,
        kommentare: Vec::new(),
        partner: PartnerDaten::default(),
    };
    let mut comment_count = 0_usize;
    for (position, (key, value)) in root.iter().enumerate() {
        ctx.path.push(Seg::Member(key, position));
        match key.as_str() {
            _ if value.is_null() && is_known_top_level(key) => {}
            "vorgang" => comment_count += check_vorgang(ctx, value),
            "tippgeber" => checked.tippgeber = check_tippgeber(ctx, value),
            "kommentare" => {
                checked.kommentare = check_kommentare(ctx, value);
                comment_count += value.as_array().map_or(0, Vec::len);
            }
            "partner" => checked.partner = check_partner(ctx, value),
            _ => ctx.unknown_field(),
        }
        ctx.path.pop();
    }
    for required in REQUIRED_MEMBERS {
        if root.get(required).is_none_or(Value::is_null) {
            ctx.violation_at(required, Invalid::Required);
        }
    }
    if comment_count > MAX_KOMMENTARE {
        // Reported at the top-level list if there is one, else at vorgang.kommentare.
        if !root.get("kommentare").is_some_and(Value::is_array) {
            ctx.path.push(Seg::Key("vorgang"));
        }
        ctx.violation_at(
            "kommentare",
            Invalid::TooManyComments {
                max: MAX_KOMMENTARE,
            },
        );
        ctx.path.clear();
    }
    checked
}

fn is_known_top_level(key: &str) -> bool {
    matches!(key, "vorgang" | "tippgeber" | "kommentare" | "partner")
}

/// Checks `vorgang` (not null); returns the number of `vorgang.kommentare`.
fn check_vorgang<'a>(ctx: &mut Ctx<'a>, value: &'a Value) -> usize {
    let Some(vorgang) = value.as_object() else {
        ctx.violation(Invalid::NotObject);
        return 0;
    };
    let kex = schema::kex();
    if let Some(root) = kex.root() {
        ctx.check_object(kex, root, vorgang);
    }
    for path in REQUIRED_IN_VORGANG {
        check_required(ctx, vorgang, path);
    }
    // vorgang.kommentare counts towards the limit on all comments.
    vorgang
        .get("kommentare")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// Checks that the member at `path` (from `map`) is there: each member on the way present and
/// not `null`, the last one, if a string, not blank. A member of the wrong type is left alone:
/// the schema walk reported it.
fn check_required<'a>(ctx: &mut Ctx<'a>, map: &'a Map<String, Value>, path: &[&'static str]) {
    let Some((&first, rest)) = path.split_first() else {
        return;
    };
    match map.get(first) {
        None | Some(Value::Null) => ctx.violation_at(first, Invalid::Required),
        Some(Value::Object(inner)) if !rest.is_empty() => {
            ctx.path.push(Seg::Key(first));
            check_required(ctx, inner, rest);
            ctx.path.pop();
        }
        Some(Value::String(s)) if rest.is_empty() && s.trim().is_empty() => {
            ctx.violation_at(first, Invalid::Empty);
        }
        Some(_) => {}
    }
}

/// Checks the top-level `kommentare` (not null).
fn check_kommentare(ctx: &mut Ctx<'_>, value: &Value) -> Vec<String> {
    let Some(items) = value.as_array() else {
        ctx.violation(Invalid::NotArray);
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(text) => out.push(text.to_owned()),
            None => {
                ctx.path.push(Seg::Index(index));
                ctx.violation(Invalid::NotString);
                ctx.path.pop();
            }
        }
    }
    ctx.check_comment_lengths(items);
    out
}

/// A required string member: present, a string, non-empty after trimming.
fn required_string<'a>(
    ctx: &mut Ctx<'a>,
    map: &'a Map<String, Value>,
    key: &'a str,
) -> Option<String> {
    match map.get(key) {
        None | Some(Value::Null) => {
            ctx.violation_at(key, Invalid::Required);
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            ctx.violation_at(key, Invalid::Empty);
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            ctx.violation_at(key, Invalid::NotString);
            None
        }
    }
}

/// An optional string member (`null` = absent).
fn optional_string<'a>(
    ctx: &mut Ctx<'a>,
    map: &'a Map<String, Value>,
    key: &'a str,
) -> Option<String> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            ctx.violation_at(key, Invalid::NotString);
            None
        }
    }
}

/// Names the members of `map` not in `known` as unknown fields.
fn unknown_members<'a>(ctx: &mut Ctx<'a>, map: &'a Map<String, Value>, known: &[&str]) {
    for (position, key) in map.keys().enumerate() {
        if !known.contains(&key.as_str()) {
            ctx.path.push(Seg::Member(key, position));
            ctx.unknown_field();
            ctx.path.pop();
        }
    }
}

const TIPPGEBER_FIELDS: &[&str] = &[
    TIPPGEBER_REQUIRED[0],
    TIPPGEBER_REQUIRED[1],
    TIPPGEBER_REQUIRED[2],
    "anrede",
    "telefon",
    "email",
];

/// Checks `tippgeber` (not null).
fn check_tippgeber<'a>(ctx: &mut Ctx<'a>, value: &'a Value) -> Option<Tippgeber> {
    let Some(map) = value.as_object() else {
        ctx.violation(Invalid::NotObject);
        return None;
    };
    let [externe_mitarbeiternummer, vorname, nachname] =
        TIPPGEBER_REQUIRED.map(|key| required_string(ctx, map, key));
    let anrede = match map.get("anrede") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let found = Anrede::ALL
                .into_iter()
                .find(|a| value.as_str() == Some(a.as_str()));
            if found.is_none() {
                let names: Vec<&str> = Anrede::ALL.iter().map(|a| a.as_str()).collect();
                ctx.violation_at(
                    "anrede",
                    Invalid::NotOneOf {
                        values: names.join(", "),
                    },
                );
            }
            found
        }
    };
    let telefon = optional_string(ctx, map, "telefon");
    let email = optional_string(ctx, map, "email");
    if email.as_deref().is_some_and(|e| !is_valid_email(e)) {
        ctx.violation_at("email", Invalid::NotEmail);
    }
    unknown_members(ctx, map, TIPPGEBER_FIELDS);
    Some(Tippgeber {
        externe_mitarbeiternummer: externe_mitarbeiternummer?,
        vorname: vorname?,
        nachname: nachname?,
        anrede,
        telefon,
        email,
    })
}

const PARTNER_FIELDS: &[&str] = &[
    PARTNER_ALIASES[0].0,
    PARTNER_ALIASES[0].1,
    PARTNER_ALIASES[1].0,
    PARTNER_ALIASES[1].1,
    "custom",
];

/// A member with a canonical name and an alias; giving both is a violation (at the alias).
fn aliased_string<'a>(
    ctx: &mut Ctx<'a>,
    map: &'a Map<String, Value>,
    name: &'static str,
    alias: &'static str,
) -> Option<String> {
    let has = |key: &str| map.get(key).is_some_and(|v| !v.is_null());
    if has(name) && has(alias) {
        ctx.violation_at(alias, Invalid::GivenTwice { name, alias });
        return None;
    }
    let key = if has(alias) { alias } else { name };
    optional_string(ctx, map, key)
}

/// Checks `partner` (not null).
fn check_partner<'a>(ctx: &mut Ctx<'a>, value: &'a Value) -> PartnerDaten {
    let Some(map) = value.as_object() else {
        ctx.violation(Invalid::NotObject);
        return PartnerDaten::default();
    };
    let [vertriebsschluessel, kundennummer] =
        PARTNER_ALIASES.map(|(name, alias)| aliased_string(ctx, map, name, alias));
    let custom = match map.get("custom") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => {
            ctx.path.push(Seg::Key("custom"));
            let custom = check_custom(ctx, value);
            ctx.path.pop();
            custom
        }
    };
    unknown_members(ctx, map, PARTNER_FIELDS);
    PartnerDaten {
        vertriebsschluessel,
        kundennummer,
        custom,
    }
}

/// Checks `partner.custom` (not null); the path is at `/partner/custom`.
fn check_custom<'a>(ctx: &mut Ctx<'a>, value: &'a Value) -> Vec<CustomEntry> {
    let Some(items) = value.as_array() else {
        ctx.violation(Invalid::NotArray);
        return Vec::new();
    };
    if items.len() > MAX_CUSTOM_ENTRIES {
        ctx.violation(Invalid::TooManyEntries {
            max: MAX_CUSTOM_ENTRIES,
        });
    }
    let mut out: Vec<CustomEntry> = Vec::with_capacity(items.len());
    let mut keys: Vec<&str> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        ctx.path.push(Seg::Index(index));
        if let Some(entry) = item.as_object() {
            let key = match entry.get("key") {
                Some(Value::String(k)) if keys.contains(&k.as_str()) => {
                    ctx.violation_at("key", Invalid::KeyNotUnique);
                    None
                }
                _ => required_string(ctx, entry, "key"),
            };
            if let Some(Value::String(k)) = entry.get("key") {
                keys.push(k);
            }
            let value = match entry.get("value") {
                None | Some(Value::Null) => {
                    ctx.violation_at("value", Invalid::Required);
                    None
                }
                Some(Value::Bool(b)) => Some(CustomValue::Boolean(*b)),
                Some(Value::String(s)) => Some(CustomValue::String(s.clone())),
                Some(Value::Number(n)) => {
                    if let Some(i) = n.as_i64() {
                        Some(CustomValue::Integer(i))
                    } else if n.is_u64() {
                        ctx.violation_at("value", Invalid::IntegerTooLarge);
                        None
                    } else {
                        ctx.violation_at("value", Invalid::NotScalar);
                        None
                    }
                }
                Some(_) => {
                    ctx.violation_at("value", Invalid::NotScalar);
                    None
                }
            };
            unknown_members(ctx, entry, &["key", "value"]);
            if let (Some(key), Some(value)) = (key, value) {
                out.push(CustomEntry { key, value });
            }
        } else {
            ctx.violation(Invalid::NotObject);
        }
        ctx.path.pop();
    }
    out
}

/// One readable comment line with the partner's data for the Finanzierungsberater, e.g.
/// `Partnerdaten: Vertriebsschlüssel: X; Kundennummer: Y; telefonTermin: 2021-01-10 13:00:00`.
///
/// Empty strings are left out; line breaks and other control characters inside values become
/// spaces so the result stays one line. `None` when there is nothing to show.
#[must_use]
pub fn render_partner_line(partner: &PartnerDaten) -> Option<String> {
    fn clean(text: &str) -> String {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    }
    let mut parts: Vec<String> = Vec::new();
    let mut push = |label: &str, value: &str| {
        let value = clean(value);
        if !value.is_empty() {
            parts.push(format!("{}: {value}", clean(label)));
        }
    };
    if let Some(v) = &partner.vertriebsschluessel {
        push("Vertriebsschlüssel", v);
    }
    if let Some(v) = &partner.kundennummer {
        push("Kundennummer", v);
    }
    for entry in &partner.custom {
        let value = match &entry.value {
            CustomValue::Boolean(b) => b.to_string(),
            CustomValue::Integer(i) => i.to_string(),
            CustomValue::String(s) => s.clone(),
        };
        push(&entry.key, &value);
    }
    if parts.is_empty() {
        None
    } else {
        Some(format!("Partnerdaten: {}", parts.join("; ")))
    }
}
