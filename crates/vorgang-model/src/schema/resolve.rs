//! The one interpreter of the KEX schema files: resolves them into a [`KexSchema`] of object
//! types (with their inherited properties), enums and the rules the service checks beyond the
//! types.
//!
//! This file is compiled twice: as `vorgang_model::schema`'s resolver, and into the build script
//! (`build.rs` includes it with `#[path]`), which resolves the same files at build time, fails the
//! build if they do not resolve cleanly and generates the optional `kex` types from the result.
//! So the validator, the OpenAPI document of the server and the generated types read one
//! resolution, not three. It therefore uses nothing but `std` and `serde_json`.
//!
//! Understood: `$ref` to another file, `extends` (inheritance: the parent's properties come
//! first), `type`, `enum`, `format: date`, `items`. Anything else is recorded as a problem and
//! accepted as [`Node::Any`], never a panic: a schema update must not take the service down, and
//! the tests (and the build) prove that the embedded files have no problem.

use std::collections::HashMap;

use serde_json::Value;

/// The schema file that describes a whole Vorgang.
pub const ROOT_SCHEMA_FILE: &str = "Vorgang.json";

/// An object type of a [`KexSchema`] (look it up with [`KexSchema::object`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(usize);

/// An enum of a [`KexSchema`] (look it up with [`KexSchema::enumeration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnumId(usize);

/// What a property (or an array's item) accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Anything (only where the schema could not be resolved; the tests prove there is none).
    Any,
    /// An object of this type.
    Object(ObjectId),
    /// An array of items of the inner kind.
    Array(Box<Node>),
    /// Any string.
    String,
    /// A string `YYYY-MM-DD` naming a date that exists (`format: date`).
    Date,
    /// A string out of this enum.
    Enum(EnumId),
    /// A JSON integer (`24.0` is not one).
    Integer,
    /// A JSON number (integer or not).
    Number,
    /// `true` or `false`.
    Boolean,
}

/// A rule the service checks beyond the schema's type, attached to a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No further rule.
    None,
    /// IBAN in electronic format with valid check digits and the length and BBAN format of its
    /// country (`crate::IBAN_PATTERN` is its form).
    Iban,
    /// E-mail syntax (`crate::EMAIL_PATTERN`, at most `crate::MAX_EMAIL_LEN` bytes).
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
    /// Set by the service alone: a partner must not send it (it would reroute the case).
    ServiceOwned,
    /// Comments: at most `crate::MAX_KOMMENTARE` in total with the top-level `kommentare`,
    /// each at most `crate::MAX_KOMMENTAR_CHARS` characters.
    Comments,
}

/// One property of an object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The member name, e.g. `laufzeitInMonaten`.
    pub name: String,
    /// What it accepts.
    pub node: Node,
    /// The further rule on its value.
    pub rule: Rule,
    /// Inherited through `extends` (declared by an ancestor, not by this type's file).
    pub inherited: bool,
}

/// An object type: one object schema file, with its own and its inherited properties.
#[derive(Debug, Clone, Default)]
pub struct ObjectType {
    name: String,
    parent: Option<ObjectId>,
    properties: Vec<Property>,
    by_name: HashMap<String, usize>,
}

impl ObjectType {
    /// The schema file's name without `.json`, e.g. `Antragsteller`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type it `extends`, if any.
    #[must_use]
    pub fn parent(&self) -> Option<ObjectId> {
        self.parent
    }

    /// Every property, the inherited ones first (in the parent's order), then the file's own in
    /// the file's order.
    #[must_use]
    pub fn properties(&self) -> &[Property] {
        &self.properties
    }

    /// The properties the type's own file declares, in the file's order.
    pub fn own_properties(&self) -> impl Iterator<Item = &Property> {
        self.properties.iter().filter(|p| !p.inherited)
    }

    /// The property `name`, own or inherited.
    #[must_use]
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.by_name
            .get(name)
            .and_then(|index| self.properties.get(*index))
    }

    fn push(&mut self, property: Property) {
        match self.by_name.get(&property.name) {
            // A property declared again replaces the inherited one (none of the KEX files does).
            Some(index) => {
                if let Some(slot) = self.properties.get_mut(*index) {
                    *slot = property;
                }
            }
            None => {
                self.by_name
                    .insert(property.name.clone(), self.properties.len());
                self.properties.push(property);
            }
        }
    }
}

/// A string enum.
#[derive(Debug, Clone)]
pub struct EnumType {
    name: String,
    values: Vec<String>,
    sorted: Vec<String>,
}

impl EnumType {
    fn new(name: String, values: Vec<String>) -> Self {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        Self {
            name,
            values,
            sorted,
        }
    }

    /// The schema file's name without `.json`, e.g. `Wohnart`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values in the schema's order.
    #[must_use]
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `value` is one of the values.
    #[must_use]
    pub fn contains(&self, value: &str) -> bool {
        self.sorted
            .binary_search_by(|probe| probe.as_str().cmp(value))
            .is_ok()
    }
}

/// The KEX schema resolved: every object schema file is an [`ObjectType`], every string enum
/// file an [`EnumType`].
#[derive(Debug, Default)]
pub struct KexSchema {
    objects: Vec<ObjectType>,
    enums: Vec<EnumType>,
    root: Option<ObjectId>,
    object_by_file: HashMap<String, ObjectId>,
    enum_by_file: HashMap<String, EnumId>,
    problems: Vec<String>,
}

/// Keywords the resolver understands on a schema file's top level.
const FILE_KEYWORDS: &[&str] = &[
    "$schema",
    "id",
    "type",
    "javaType",
    "properties",
    "extends",
    "enum",
];
/// Keywords the resolver understands inside a property or `items` schema.
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
    ("Vorgang", "kommentare", Rule::Comments),
];

fn stem(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

/// The rule of property `name` of type `type_name` accepting `node`: the type-bound rules first,
/// then the rules by property name.
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

impl KexSchema {
    /// Resolves the given schema files, `(file name, contents)`. Never panics: whatever cannot
    /// be resolved is recorded in [`Self::problems`] and accepted as [`Node::Any`].
    #[must_use]
    pub fn load(files: &[(&str, &str)]) -> Self {
        let mut loader = Loader {
            files: HashMap::new(),
            schema: Self::default(),
            in_progress: Vec::new(),
        };
        for (name, text) in files {
            match serde_json::from_str::<Value>(text) {
                Ok(value) if value.is_object() => {
                    loader.files.insert(name, value);
                }
                Ok(_) => loader.problem(format!("{name}: not a JSON object")),
                Err(e) => loader.problem(format!("{name}: not JSON ({e})")),
            }
        }
        let mut names: Vec<&str> = loader.files.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            loader.load_file(name);
        }
        let mut schema = loader.schema;
        schema.root = schema.object_by_file.get(ROOT_SCHEMA_FILE).copied();
        if schema.root.is_none() {
            schema.problems.push(format!("{ROOT_SCHEMA_FILE}: missing"));
        }
        for (type_name, prop, _) in TYPE_RULES {
            if schema
                .object_named(type_name)
                .and_then(|t| t.property(prop))
                .is_none()
            {
                schema
                    .problems
                    .push(format!("rule target {type_name}.{prop} not in the schema"));
            }
        }
        schema
    }

    /// The `Vorgang` type, the root of a Vorgang.
    #[must_use]
    pub fn root(&self) -> Option<&ObjectType> {
        self.root.and_then(|id| self.object(id))
    }

    /// Every object type, in resolution order.
    #[must_use]
    pub fn objects(&self) -> &[ObjectType] {
        &self.objects
    }

    /// Every enum, in resolution order.
    #[must_use]
    pub fn enums(&self) -> &[EnumType] {
        &self.enums
    }

    /// The object type `id`.
    #[must_use]
    pub fn object(&self, id: ObjectId) -> Option<&ObjectType> {
        self.objects.get(id.0)
    }

    /// The enum `id`.
    #[must_use]
    pub fn enumeration(&self, id: EnumId) -> Option<&EnumType> {
        self.enums.get(id.0)
    }

    /// The object type of file `{name}.json`, e.g. `Antragsteller`.
    #[must_use]
    pub fn object_named(&self, name: &str) -> Option<&ObjectType> {
        self.object_by_file
            .get(&format!("{name}.json"))
            .and_then(|id| self.object(*id))
    }

    /// The enum of file `{name}.json`, e.g. `Wohnart`.
    #[must_use]
    pub fn enum_named(&self, name: &str) -> Option<&EnumType> {
        self.enum_by_file
            .get(&format!("{name}.json"))
            .and_then(|id| self.enumeration(*id))
    }

    /// What could not be resolved; empty for the embedded files.
    #[must_use]
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

struct Loader<'f> {
    files: HashMap<&'f str, Value>,
    schema: KexSchema,
    /// Object types whose properties are being resolved (to detect `extends` cycles).
    in_progress: Vec<ObjectId>,
}

impl Loader<'_> {
    fn problem(&mut self, text: String) {
        self.schema.problems.push(text);
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

    fn enum_type(&mut self, file: &str) -> Option<EnumId> {
        if let Some(id) = self.schema.enum_by_file.get(file) {
            return Some(*id);
        }
        let schema = self.files.get(file)?.clone();
        self.check_keywords(file, &schema, FILE_KEYWORDS);
        let id = self.inline_enum(file, stem(file), &schema)?;
        self.schema.enum_by_file.insert(file.to_owned(), id);
        Some(id)
    }

    fn inline_enum(&mut self, at: &str, name: &str, schema: &Value) -> Option<EnumId> {
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
        let id = EnumId(self.schema.enums.len());
        self.schema
            .enums
            .push(EnumType::new(name.to_owned(), strings));
        Some(id)
    }

    fn object_type(&mut self, file: &str) -> Option<ObjectId> {
        if let Some(id) = self.schema.object_by_file.get(file) {
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
        let id = ObjectId(self.schema.objects.len());
        self.schema.objects.push(ObjectType {
            name: name.clone(),
            ..ObjectType::default()
        });
        self.schema.object_by_file.insert(file.to_owned(), id);
        self.in_progress.push(id);

        let mut resolved = ObjectType {
            name: name.clone(),
            ..ObjectType::default()
        };
        if let Some(extends) = schema.get("extends") {
            self.check_keywords(&format!("{file} extends"), extends, &["$ref"]);
            match extends.get("$ref").and_then(Value::as_str) {
                Some(parent_file) => match self.object_type(parent_file) {
                    Some(parent) if self.in_progress.contains(&parent) => {
                        self.problem(format!("{file}: extends cycle through {parent_file}"));
                    }
                    Some(parent) => {
                        resolved.parent = Some(parent);
                        if let Some(parent) = self.schema.object(parent) {
                            for property in &parent.properties {
                                resolved.push(Property {
                                    inherited: true,
                                    ..property.clone()
                                });
                            }
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
                resolved.push(Property {
                    name: prop.clone(),
                    node,
                    rule,
                    inherited: false,
                });
            }
        } else if schema.get("properties").is_some() {
            self.problem(format!("{file}: properties is not an object"));
        }
        self.in_progress.retain(|t| *t != id);
        if let Some(slot) = self.schema.objects.get_mut(id.0) {
            *slot = resolved;
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
