//! The embedded KEX Vorgang JSON schema (Europace, draft-04, MIT) and the model resolved from it.
//!
//! The files in `schema/kex/` of this crate are the single source: they are embedded here with
//! `include_str!` and interpreted once per process (`$ref` to other files, `extends` as
//! inheritance, `type`, `enum`, `format: date`, `items`).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::Value;

/// Every schema file as `(file name, contents)`, e.g. `("Vorgang.json", "{…}")`.
///
/// The entry point is `Vorgang.json`. A test checks that this list and the directory
/// `schema/kex/` agree exactly.
pub static SCHEMA_FILES: &[(&str, &str)] = &[
    (
        "AbloesbareVerbindlichkeit.json",
        include_str!("../schema/kex/AbloesbareVerbindlichkeit.json"),
    ),
    (
        "Angestellter.json",
        include_str!("../schema/kex/Angestellter.json"),
    ),
    ("Anrede.json", include_str!("../schema/kex/Anrede.json")),
    (
        "Anschrift.json",
        include_str!("../schema/kex/Anschrift.json"),
    ),
    (
        "Antragsteller.json",
        include_str!("../schema/kex/Antragsteller.json"),
    ),
    (
        "Antragstellerzugehoerigkeit.json",
        include_str!("../schema/kex/Antragstellerzugehoerigkeit.json"),
    ),
    ("Arbeiter.json", include_str!("../schema/kex/Arbeiter.json")),
    (
        "Arbeitsloser.json",
        include_str!("../schema/kex/Arbeitsloser.json"),
    ),
    (
        "Aufenthaltstitel.json",
        include_str!("../schema/kex/Aufenthaltstitel.json"),
    ),
    ("Ausgaben.json", include_str!("../schema/kex/Ausgaben.json")),
    (
        "BankUndSparguthaben.json",
        include_str!("../schema/kex/BankUndSparguthaben.json"),
    ),
    (
        "Bausparvertrag.json",
        include_str!("../schema/kex/Bausparvertrag.json"),
    ),
    (
        "BeamtenBeschaeftigungsverhaeltnis.json",
        include_str!("../schema/kex/BeamtenBeschaeftigungsverhaeltnis.json"),
    ),
    ("Beamter.json", include_str!("../schema/kex/Beamter.json")),
    (
        "Befristung.json",
        include_str!("../schema/kex/Befristung.json"),
    ),
    (
        "Benachrichtigung.json",
        include_str!("../schema/kex/Benachrichtigung.json"),
    ),
    (
        "Beschaeftigung.json",
        include_str!("../schema/kex/Beschaeftigung.json"),
    ),
    (
        "Beschaeftigungsart.json",
        include_str!("../schema/kex/Beschaeftigungsart.json"),
    ),
    (
        "Beschaeftigungsverhaeltnis.json",
        include_str!("../schema/kex/Beschaeftigungsverhaeltnis.json"),
    ),
    ("Branche.json", include_str!("../schema/kex/Branche.json")),
    ("Country.json", include_str!("../schema/kex/Country.json")),
    ("Darlehen.json", include_str!("../schema/kex/Darlehen.json")),
    (
        "Depotvermoegen.json",
        include_str!("../schema/kex/Depotvermoegen.json"),
    ),
    (
        "Dispositionskredit.json",
        include_str!("../schema/kex/Dispositionskredit.json"),
    ),
    (
        "Ehegattenunterhalt.json",
        include_str!("../schema/kex/Ehegattenunterhalt.json"),
    ),
    (
        "EinkunftAusKapitalvermoegen.json",
        include_str!("../schema/kex/EinkunftAusKapitalvermoegen.json"),
    ),
    (
        "EinkunftAusNebentaetigkeit.json",
        include_str!("../schema/kex/EinkunftAusNebentaetigkeit.json"),
    ),
    (
        "Einnahmen.json",
        include_str!("../schema/kex/Einnahmen.json"),
    ),
    (
        "Fahrzeuganbieter.json",
        include_str!("../schema/kex/Fahrzeuganbieter.json"),
    ),
    (
        "Fahrzeugkauf.json",
        include_str!("../schema/kex/Fahrzeugkauf.json"),
    ),
    (
        "Familienstand.json",
        include_str!("../schema/kex/Familienstand.json"),
    ),
    (
        "Finanzbedarf.json",
        include_str!("../schema/kex/Finanzbedarf.json"),
    ),
    (
        "Finanzierungswunsch.json",
        include_str!("../schema/kex/Finanzierungswunsch.json"),
    ),
    (
        "Finanzierungszweck.json",
        include_str!("../schema/kex/Finanzierungszweck.json"),
    ),
    ("Firma.json", include_str!("../schema/kex/Firma.json")),
    (
        "Freiberufler.json",
        include_str!("../schema/kex/Freiberufler.json"),
    ),
    (
        "Geschaeftskredit.json",
        include_str!("../schema/kex/Geschaeftskredit.json"),
    ),
    ("Hausfrau.json", include_str!("../schema/kex/Hausfrau.json")),
    ("Haushalt.json", include_str!("../schema/kex/Haushalt.json")),
    (
        "Haushaltsposition.json",
        include_str!("../schema/kex/Haushaltsposition.json"),
    ),
    ("Herkunft.json", include_str!("../schema/kex/Herkunft.json")),
    (
        "Immobilie.json",
        include_str!("../schema/kex/Immobilie.json"),
    ),
    (
        "Immobilienart.json",
        include_str!("../schema/kex/Immobilienart.json"),
    ),
    ("Kind.json", include_str!("../schema/kex/Kind.json")),
    (
        "Kindergeldzuordnung.json",
        include_str!("../schema/kex/Kindergeldzuordnung.json"),
    ),
    (
        "Kontokorrentkredit.json",
        include_str!("../schema/kex/Kontokorrentkredit.json"),
    ),
    (
        "Kontoverbindung.json",
        include_str!("../schema/kex/Kontoverbindung.json"),
    ),
    (
        "Kreditkarte.json",
        include_str!("../schema/kex/Kreditkarte.json"),
    ),
    ("Leasing.json", include_str!("../schema/kex/Leasing.json")),
    (
        "Lebensversicherung.json",
        include_str!("../schema/kex/Lebensversicherung.json"),
    ),
    (
        "Mietausgabe.json",
        include_str!("../schema/kex/Mietausgabe.json"),
    ),
    (
        "Nutzungsart.json",
        include_str!("../schema/kex/Nutzungsart.json"),
    ),
    ("Partner.json", include_str!("../schema/kex/Partner.json")),
    (
        "Personendaten.json",
        include_str!("../schema/kex/Personendaten.json"),
    ),
    (
        "PrivateKrankenversicherung.json",
        include_str!("../schema/kex/PrivateKrankenversicherung.json"),
    ),
    (
        "Ratenkredit.json",
        include_str!("../schema/kex/Ratenkredit.json"),
    ),
    (
        "Ratenschutz.json",
        include_str!("../schema/kex/Ratenschutz.json"),
    ),
    (
        "RatenschutzAbsicherung.json",
        include_str!("../schema/kex/RatenschutzAbsicherung.json"),
    ),
    (
        "RatenschutzOld.json",
        include_str!("../schema/kex/RatenschutzOld.json"),
    ),
    (
        "Ratenzahlungstermin.json",
        include_str!("../schema/kex/Ratenzahlungstermin.json"),
    ),
    (
        "Rentenversicherung.json",
        include_str!("../schema/kex/Rentenversicherung.json"),
    ),
    ("Rentner.json", include_str!("../schema/kex/Rentner.json")),
    (
        "Selbststaendiger.json",
        include_str!("../schema/kex/Selbststaendiger.json"),
    ),
    (
        "SonstigeAusgabe.json",
        include_str!("../schema/kex/SonstigeAusgabe.json"),
    ),
    (
        "SonstigeEinnahme.json",
        include_str!("../schema/kex/SonstigeEinnahme.json"),
    ),
    (
        "SonstigeVerbindlichkeit.json",
        include_str!("../schema/kex/SonstigeVerbindlichkeit.json"),
    ),
    (
        "SonstigerVermoegenswert.json",
        include_str!("../schema/kex/SonstigerVermoegenswert.json"),
    ),
    ("Titel.json", include_str!("../schema/kex/Titel.json")),
    (
        "UnbefristeteZusatzrente.json",
        include_str!("../schema/kex/UnbefristeteZusatzrente.json"),
    ),
    (
        "Unterhaltsverpflichtung.json",
        include_str!("../schema/kex/Unterhaltsverpflichtung.json"),
    ),
    (
        "Verbindlichkeiten.json",
        include_str!("../schema/kex/Verbindlichkeiten.json"),
    ),
    (
        "Vermoegen.json",
        include_str!("../schema/kex/Vermoegen.json"),
    ),
    (
        "VersichertesRisiko.json",
        include_str!("../schema/kex/VersichertesRisiko.json"),
    ),
    ("Vorgang.json", include_str!("../schema/kex/Vorgang.json")),
    (
        "VorherigesBeschaeftigungsverhaeltnis.json",
        include_str!("../schema/kex/VorherigesBeschaeftigungsverhaeltnis.json"),
    ),
    (
        "Wohnanschrift.json",
        include_str!("../schema/kex/Wohnanschrift.json"),
    ),
    ("Wohnart.json", include_str!("../schema/kex/Wohnart.json")),
    (
        "Wohnsituation.json",
        include_str!("../schema/kex/Wohnsituation.json"),
    ),
];

/// The licence of the schema files (MIT, Copyright (c) 2017 Europace AG).
pub const SCHEMA_LICENSE: &str = include_str!("../schema/kex/LICENSE");

/// The schema file that describes a whole Vorgang.
pub const ROOT_SCHEMA_FILE: &str = "Vorgang.json";

/// The contents of one embedded schema file, by file name (e.g. `"Vorgang.json"`).
#[must_use]
pub fn schema_file(name: &str) -> Option<&'static str> {
    SCHEMA_FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}

// ---------------------------------------------------------------------------------------------
// The resolved model
// ---------------------------------------------------------------------------------------------

/// What a schema node accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// Anything (only where the schema could not be resolved; a test proves there is none).
    Any,
    /// An object of the type with this index in [`Model::types`].
    Object(usize),
    /// An array of items of the inner kind.
    Array(Box<Node>),
    /// Any string.
    String,
    /// A string `YYYY-MM-DD` naming a date that exists.
    Date,
    /// A string out of the enum with this index in [`Model::enums`].
    Enum(usize),
    /// A JSON integer.
    Integer,
    /// A JSON number (integer or not).
    Number,
    /// `true` or `false`.
    Boolean,
}

/// A rule beyond the schema's type, attached to a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// No further rule.
    None,
    /// IBAN in electronic format with valid check digits and the length and BBAN format of its
    /// country.
    Iban,
    /// E-mail syntax.
    Email,
    /// A number that must not be negative (amounts: names containing `betrag`, `rateMonatlich`).
    NonNegative,
    /// A number that must be greater than 0.
    Positive,
    /// An integer within the inclusive range.
    IntRange(i64, i64),
    /// An integer at least this.
    IntMin(i64),
    /// A date strictly before today.
    Past,
    /// Set by the service only: a partner must not send it.
    ServiceOwned,
}

/// One property of an object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prop {
    /// What the property accepts.
    pub(crate) node: Node,
    /// Further rule on its value.
    pub(crate) rule: Rule,
}

/// An object type: its own and its inherited (`extends`) properties.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectType {
    /// The schema file's name without `.json`, e.g. `Antragsteller`.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the schema tests"))]
    pub(crate) name: String,
    /// Properties by name.
    pub(crate) props: HashMap<String, Prop>,
}

/// A string enum.
#[derive(Debug, Clone)]
pub(crate) struct EnumType {
    /// The schema file's name without `.json` (or the property path for inline enums).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the schema tests"))]
    pub(crate) name: String,
    /// The values in schema order.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the schema tests"))]
    pub(crate) values: Vec<String>,
    /// The values sorted, for lookup.
    sorted: Vec<String>,
    /// The violation detail, e.g. `must be one of: FRAU, HERR`.
    pub(crate) detail: String,
}

impl EnumType {
    fn new(name: String, values: Vec<String>) -> Self {
        let detail = if values.len() <= 20 {
            format!("must be one of: {}", values.join(", "))
        } else if name == "Country" {
            "must be a country code of the KEX schema: ISO 3166-1 alpha-2 in capitals \
             (e.g. DE) or SONSTIGE"
                .to_owned()
        } else {
            format!(
                "must be one of the {} values of {name} in the KEX schema",
                values.len()
            )
        };
        let mut sorted = values.clone();
        sorted.sort_unstable();
        Self {
            name,
            values,
            sorted,
            detail,
        }
    }

    /// Whether `value` is one of the enum's values.
    pub(crate) fn contains(&self, value: &str) -> bool {
        self.sorted
            .binary_search_by(|probe| probe.as_str().cmp(value))
            .is_ok()
    }
}

/// The KEX schema resolved into a walkable model.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// All object types; every object schema file has one.
    pub(crate) types: Vec<ObjectType>,
    /// All enums.
    pub(crate) enums: Vec<EnumType>,
    /// Index of the `Vorgang` type in [`Self::types`].
    pub(crate) root: Option<usize>,
    /// Object types by file name (`Vorgang.json`).
    pub(crate) type_by_file: HashMap<String, usize>,
    /// Enums by file name (`Anrede.json`).
    pub(crate) enum_by_file: HashMap<String, usize>,
    /// What could not be resolved; empty for the embedded files (a test proves it).
    pub(crate) problems: Vec<String>,
}

/// The model of the embedded schema, built on first use.
pub(crate) static MODEL: LazyLock<Model> = LazyLock::new(|| Model::load(SCHEMA_FILES));

/// Keywords the loader understands on a schema file's top level.
const FILE_KEYWORDS: &[&str] = &[
    "$schema",
    "id",
    "type",
    "javaType",
    "properties",
    "extends",
    "enum",
];
/// Keywords the loader understands inside a property or `items` schema.
const NODE_KEYWORDS: &[&str] = &[
    "type",
    "javaType",
    "$ref",
    "items",
    "format",
    "customDateTimePatter",
    "enum",
];

/// Rules bound to one property of one type (not to a property name in general).
const TYPE_RULES: &[(&str, &str, Rule)] = &[
    ("Finanzierungswunsch", "kreditbetrag", Rule::Positive),
    (
        "Finanzierungswunsch",
        "laufzeitInMonaten",
        Rule::IntRange(1, 120),
    ),
    ("Wohnsituation", "anzahlPersonenImHaushalt", Rule::IntMin(1)),
    ("Vorgang", "kundenbetreuer", Rule::ServiceOwned),
    ("Vorgang", "tippgeber", Rule::ServiceOwned),
    ("Vorgang", "bearbeiter", Rule::ServiceOwned),
    ("Vorgang", "eigeneVorgangsnummer", Rule::ServiceOwned),
];

fn stem(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

/// The rule of property `name` of type `type_name` accepting `node`.
fn rule_for(type_name: &str, name: &str, node: &Node) -> Rule {
    if let Some((_, _, rule)) = TYPE_RULES
        .iter()
        .find(|(t, p, _)| *t == type_name && *p == name)
    {
        return *rule;
    }
    match node {
        Node::String if name == "iban" => Rule::Iban,
        Node::String if name == "email" => Rule::Email,
        Node::Date if name == "geburtsdatum" => Rule::Past,
        Node::Number | Node::Integer
            if name == "rateMonatlich" || name.to_ascii_lowercase().contains("betrag") =>
        {
            Rule::NonNegative
        }
        _ => Rule::None,
    }
}

struct Loader<'f> {
    files: HashMap<&'f str, Value>,
    model: Model,
    /// Object types whose properties are being resolved (to detect `extends` cycles).
    in_progress: Vec<usize>,
}

impl Model {
    /// Resolves the given schema files. Never panics: whatever cannot be resolved is recorded in
    /// [`Self::problems`] and accepted as [`Node::Any`].
    pub(crate) fn load(files: &[(&str, &str)]) -> Self {
        let mut loader = Loader {
            files: HashMap::new(),
            model: Self::default(),
            in_progress: Vec::new(),
        };
        for (name, text) in files {
            match serde_json::from_str::<Value>(text) {
                Ok(value) if value.is_object() => {
                    loader.files.insert(name, value);
                }
                Ok(_) => loader
                    .model
                    .problems
                    .push(format!("{name}: not a JSON object")),
                Err(e) => loader
                    .model
                    .problems
                    .push(format!("{name}: not JSON ({e})")),
            }
        }
        let mut names: Vec<&str> = loader.files.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            loader.load_file(name);
        }
        loader.model.root = loader.model.type_by_file.get(ROOT_SCHEMA_FILE).copied();
        if loader.model.root.is_none() {
            loader
                .model
                .problems
                .push(format!("{ROOT_SCHEMA_FILE}: missing"));
        }
        for (type_name, prop, _) in TYPE_RULES {
            let found = loader
                .model
                .type_by_file
                .get(&format!("{type_name}.json"))
                .and_then(|id| loader.model.types.get(*id))
                .is_some_and(|t| t.props.contains_key(*prop));
            if !found {
                loader
                    .model
                    .problems
                    .push(format!("rule target {type_name}.{prop} not in the schema"));
            }
        }
        loader.model
    }

    /// The object type with index `id`.
    pub(crate) fn object(&self, id: usize) -> Option<&ObjectType> {
        self.types.get(id)
    }

    /// The enum with index `id`.
    pub(crate) fn enumeration(&self, id: usize) -> Option<&EnumType> {
        self.enums.get(id)
    }
}

impl Loader<'_> {
    fn problem(&mut self, text: String) {
        self.model.problems.push(text);
    }

    fn check_keywords(&mut self, at: &str, schema: &Value, allowed: &[&str]) {
        if let Some(map) = schema.as_object() {
            for key in map.keys() {
                if !allowed.contains(&key.as_str()) {
                    self.problem(format!("{at}: unknown keyword {key}"));
                }
            }
        }
    }

    fn load_file(&mut self, file: &str) {
        let Some(schema) = self.files.get(file) else {
            return;
        };
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => {
                self.object_type(file);
            }
            Some("string") if schema.get("enum").is_some() => {
                self.enum_type(file);
            }
            _ => self.problem(format!("{file}: neither an object type nor a string enum")),
        }
    }

    fn enum_type(&mut self, file: &str) -> Option<usize> {
        if let Some(id) = self.model.enum_by_file.get(file) {
            return Some(*id);
        }
        let schema = self.files.get(file)?.clone();
        self.check_keywords(file, &schema, FILE_KEYWORDS);
        let id = self.inline_enum(file, stem(file), &schema)?;
        self.model.enum_by_file.insert(file.to_owned(), id);
        Some(id)
    }

    fn inline_enum(&mut self, at: &str, name: &str, schema: &Value) -> Option<usize> {
        let Some(values) = schema.get("enum").and_then(Value::as_array) else {
            self.problem(format!("{at}: enum is not an array"));
            return None;
        };
        let mut strings = Vec::with_capacity(values.len());
        for value in values {
            match value.as_str() {
                Some(s) => strings.push(s.to_owned()),
                None => self.problem(format!("{at}: enum value is not a string")),
            }
        }
        let id = self.model.enums.len();
        self.model
            .enums
            .push(EnumType::new(name.to_owned(), strings));
        Some(id)
    }

    fn object_type(&mut self, file: &str) -> Option<usize> {
        if let Some(id) = self.model.type_by_file.get(file) {
            return Some(*id);
        }
        let Some(schema) = self.files.get(file).cloned() else {
            self.problem(format!("{file}: referenced but missing"));
            return None;
        };
        self.check_keywords(file, &schema, FILE_KEYWORDS);
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            self.problem(format!("{file}: referenced as an object but is not one"));
            return None;
        }
        let name = stem(file).to_owned();
        let id = self.model.types.len();
        self.model.types.push(ObjectType {
            name: name.clone(),
            props: HashMap::new(),
        });
        self.model.type_by_file.insert(file.to_owned(), id);
        self.in_progress.push(id);

        let mut props = HashMap::new();
        if let Some(extends) = schema.get("extends") {
            self.check_keywords(&format!("{file} extends"), extends, &["$ref"]);
            match extends.get("$ref").and_then(Value::as_str) {
                Some(parent_file) => match self.object_type(parent_file) {
                    Some(parent) if self.in_progress.contains(&parent) => {
                        self.problem(format!("{file}: extends cycle through {parent_file}"));
                    }
                    Some(parent) => {
                        if let Some(parent) = self.model.types.get(parent) {
                            props.extend(parent.props.clone());
                        }
                    }
                    None => self.problem(format!("{file}: cannot extend {parent_file}")),
                },
                None => self.problem(format!("{file}: extends without $ref")),
            }
        }
        if let Some(own) = schema.get("properties").and_then(Value::as_object) {
            for (prop, prop_schema) in own {
                let at = format!("{file} {prop}");
                let node = self.node(&at, prop_schema);
                let rule = rule_for(&name, prop, &node);
                props.insert(prop.clone(), Prop { node, rule });
            }
        } else if schema.get("properties").is_some() {
            self.problem(format!("{file}: properties is not an object"));
        }
        self.in_progress.retain(|t| *t != id);
        if let Some(ty) = self.model.types.get_mut(id) {
            ty.props = props;
        }
        Some(id)
    }

    fn node(&mut self, at: &str, schema: &Value) -> Node {
        if !schema.is_object() {
            self.problem(format!("{at}: schema is not an object"));
            return Node::Any;
        }
        self.check_keywords(at, schema, NODE_KEYWORDS);
        let declared = schema.get("type").and_then(Value::as_str);
        if let Some(reference) = schema.get("$ref") {
            let Some(file) = reference.as_str() else {
                self.problem(format!("{at}: $ref is not a string"));
                return Node::Any;
            };
            let Some(target) = self.files.get(file) else {
                self.problem(format!("{at}: $ref {file} missing"));
                return Node::Any;
            };
            let target_type = target
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let target_is_enum = target.get("enum").is_some();
            if declared.is_some() && declared != target_type.as_deref() {
                self.problem(format!("{at}: type differs from {file}"));
            }
            return match target_type.as_deref() {
                Some("object") => self.object_type(file).map_or(Node::Any, Node::Object),
                Some("string") if target_is_enum => {
                    self.enum_type(file).map_or(Node::Any, Node::Enum)
                }
                _ => {
                    self.problem(format!(
                        "{at}: $ref {file} is neither an object nor an enum"
                    ));
                    Node::Any
                }
            };
        }
        match declared {
            Some("array") => match schema.get("items") {
                Some(items) => Node::Array(Box::new(self.node(&format!("{at}[]"), items))),
                None => Node::Array(Box::new(Node::Any)),
            },
            Some("string") => {
                if schema.get("enum").is_some() {
                    return self
                        .inline_enum(at, at, schema)
                        .map_or(Node::Any, Node::Enum);
                }
                match schema.get("format").and_then(Value::as_str) {
                    None => Node::String,
                    Some("date") => Node::Date,
                    Some(other) => {
                        self.problem(format!("{at}: unknown format {other}"));
                        Node::String
                    }
                }
            }
            Some("integer") => Node::Integer,
            Some("number") => Node::Number,
            Some("boolean") => Node::Boolean,
            other => {
                self.problem(format!("{at}: unsupported type {other:?}"));
                Node::Any
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn schema_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/kex")
    }

    #[test]
    fn embedded_list_matches_the_schema_directory_exactly() {
        let mut on_disk = BTreeSet::new();
        for entry in std::fs::read_dir(schema_dir()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") {
                on_disk.insert(name);
            }
        }
        let embedded: BTreeSet<String> =
            SCHEMA_FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(embedded.len(), SCHEMA_FILES.len(), "a file is listed twice");
        let missing: Vec<_> = on_disk.difference(&embedded).collect();
        let extra: Vec<_> = embedded.difference(&on_disk).collect();
        assert!(missing.is_empty(), "not in SCHEMA_FILES: {missing:?}");
        assert!(extra.is_empty(), "listed but not on disk: {extra:?}");
        for (name, text) in SCHEMA_FILES {
            let disk = std::fs::read_to_string(schema_dir().join(name)).unwrap();
            assert_eq!(*text, disk, "{name}: embedded text differs");
        }
        assert!(SCHEMA_LICENSE.starts_with("MIT License"));
        assert!(SCHEMA_LICENSE.contains("Europace AG"));
        assert!(schema_file("Vorgang.json").is_some());
        assert!(schema_file("Nope.json").is_none());
    }

    #[test]
    fn embedded_schema_resolves_without_problems() {
        let model = &*MODEL;
        assert!(model.problems.is_empty(), "{:#?}", model.problems);
        assert!(model.root.is_some());
        assert_eq!(
            model.types.len() + model.enums.len(),
            SCHEMA_FILES.len(),
            "every file is an object type or an enum"
        );
    }

    /// How a raw property schema should look once resolved, computed from the files alone.
    fn expected(raw: &HashMap<String, Value>, schema: &Value) -> String {
        if let Some(file) = schema.get("$ref").and_then(Value::as_str) {
            let target = &raw[file];
            return match target["type"].as_str() {
                Some("object") => format!("object {}", stem(file)),
                _ => format!("enum {}", stem(file)),
            };
        }
        match schema["type"].as_str().unwrap() {
            "array" => format!("array of {}", expected(raw, &schema["items"])),
            "string" if schema.get("format").is_some() => {
                schema["format"].as_str().unwrap().to_owned()
            }
            other => other.to_owned(),
        }
    }

    fn describe(model: &Model, node: &Node) -> String {
        match node {
            Node::Any => "any".into(),
            Node::Object(id) => format!("object {}", model.types[*id].name),
            Node::Array(item) => format!("array of {}", describe(model, item)),
            Node::String => "string".into(),
            Node::Date => "date".into(),
            Node::Enum(id) => format!("enum {}", model.enums[*id].name),
            Node::Integer => "integer".into(),
            Node::Number => "number".into(),
            Node::Boolean => "boolean".into(),
        }
    }

    /// All properties of a raw object schema, inherited ones included, as the files say.
    fn raw_props(raw: &HashMap<String, Value>, file: &str) -> Vec<(String, String)> {
        let schema = &raw[file];
        let mut props = match schema.get("extends") {
            Some(ext) => raw_props(raw, ext["$ref"].as_str().unwrap()),
            None => Vec::new(),
        };
        if let Some(own) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in own {
                props.retain(|(n, _)| n != name);
                props.push((name.clone(), expected(raw, prop)));
            }
        }
        props
    }

    /// Walks every schema file on disk and checks that the validator's model knows every
    /// property (with its kind, inherited ones included) and every enum value.
    #[test]
    fn validator_knows_every_property_and_enum_value_of_every_schema_file() {
        let model = &*MODEL;
        let mut raw = HashMap::new();
        for entry in std::fs::read_dir(schema_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                let value: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                raw.insert(name, value);
            }
        }
        let mut failures = Vec::new();
        let (mut properties, mut enum_values) = (0, 0);
        for (file, schema) in &raw {
            if let Some(values) = schema.get("enum").and_then(Value::as_array) {
                let Some(en) = model.enum_by_file.get(file).map(|id| &model.enums[*id]) else {
                    failures.push(format!("{file}: enum unknown to the validator"));
                    continue;
                };
                for value in values {
                    let value = value.as_str().unwrap();
                    enum_values += 1;
                    if !en.contains(value) || !en.values.iter().any(|v| v == value) {
                        failures.push(format!("{file}: enum value {value} unknown"));
                    }
                }
                if en.values.len() != values.len() {
                    failures.push(format!("{file}: enum has other values"));
                }
                continue;
            }
            let Some(ty) = model.type_by_file.get(file).map(|id| &model.types[*id]) else {
                failures.push(format!("{file}: object type unknown to the validator"));
                continue;
            };
            let props = raw_props(&raw, file);
            for (name, kind) in &props {
                properties += 1;
                match ty.props.get(name) {
                    None => failures.push(format!("{file}: property {name} unknown")),
                    Some(prop) => {
                        let got = describe(model, &prop.node);
                        if &got != kind {
                            failures.push(format!("{file}: {name} is {got}, schema says {kind}"));
                        }
                    }
                }
            }
            if ty.props.len() != props.len() {
                failures.push(format!("{file}: the validator knows other properties"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(properties > 300, "{properties}");
        assert!(enum_values > 250, "{enum_values}");
    }

    #[test]
    fn rules_are_bound_to_the_intended_fields() {
        let model = &*MODEL;
        let mut by_rule: std::collections::BTreeMap<String, BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for ty in &model.types {
            for (name, prop) in &ty.props {
                if prop.rule != Rule::None {
                    by_rule
                        .entry(format!("{:?}", prop.rule))
                        .or_default()
                        .insert(name.clone());
                }
            }
        }
        let names = |rule: &str| -> Vec<String> {
            by_rule
                .get(rule)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(names("Iban"), ["iban"]);
        assert_eq!(names("Email"), ["email"]);
        assert_eq!(names("Past"), ["geburtsdatum"]);
        assert_eq!(names("Positive"), ["kreditbetrag"]);
        assert_eq!(names("IntRange(1, 120)"), ["laufzeitInMonaten"]);
        assert_eq!(names("IntMin(1)"), ["anzahlPersonenImHaushalt"]);
        assert_eq!(
            names("ServiceOwned"),
            [
                "bearbeiter",
                "eigeneVorgangsnummer",
                "kundenbetreuer",
                "tippgeber"
            ]
        );
        assert_eq!(
            names("NonNegative"),
            [
                "angesparterBetrag",
                "beanspruchterBetrag",
                "betrag",
                "betragMonatlich",
                "rateMonatlich",
                "urspruenglicherKreditbetrag"
            ]
        );
        // Incomes, percentages and asset values carry no sign rule.
        let finanzierungswunsch = &model.types[model.type_by_file["Finanzierungswunsch.json"]];
        assert_eq!(
            finanzierungswunsch.props["provisionswunschInProzent"].rule,
            Rule::None
        );
        let immobilie = &model.types[model.type_by_file["Immobilie.json"]];
        assert_eq!(immobilie.props["wert"].rule, Rule::None);
        // Inherited from Haushaltsposition through AbloesbareVerbindlichkeit.
        let sonstige = &model.types[model.type_by_file["SonstigeVerbindlichkeit.json"]];
        assert!(sonstige.props.contains_key("gehoertZuAntragsteller"));
        assert_eq!(sonstige.props["iban"].rule, Rule::Iban);
    }

    #[test]
    fn broken_schemas_are_reported_not_panicked_on() {
        let files: &[(&str, &str)] = &[
            (
                "Vorgang.json",
                r#"{"type":"object","properties":{
                "a":{"$ref":"Missing.json"},
                "b":{"type":"string","format":"time"},
                "c":{"type":"object"},
                "d":{"type":"string","minLength":1},
                "e":{"$ref":"E.json"},
                "f":{"type":"array"},
                "g":"x"}}"#,
            ),
            ("E.json", r#"{"type":"object","extends":{"$ref":"F.json"}}"#),
            ("F.json", r#"{"type":"object","extends":{"$ref":"E.json"}}"#),
            ("Bad.json", "not json"),
            ("Num.json", "[1]"),
            ("Odd.json", r#"{"type":"number"}"#),
            ("En.json", r#"{"type":"string","enum":[1,"A"]}"#),
        ];
        let model = Model::load(files);
        assert!(model.problems.len() >= 9, "{:#?}", model.problems);
        let root = &model.types[model.root.unwrap()];
        assert_eq!(root.props["a"].node, Node::Any);
        assert_eq!(root.props["f"].node, Node::Array(Box::new(Node::Any)));
        let empty = Model::load(&[]);
        assert!(empty.root.is_none());
        assert!(!empty.problems.is_empty());
    }
}
