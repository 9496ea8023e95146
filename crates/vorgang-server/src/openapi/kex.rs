//! The KEX components of the document, rendered from the model's resolved schema
//! ([`vorgang_model::schema::kex()`]): the same properties and rules the validator checks, so the
//! document cannot restate a rule differently.
//!
//! Every KEX object type and enum `X` becomes the component `#/components/schemas/X`:
//!
//! - a property referring to another type becomes a `$ref` to its component, an inherited type
//!   (`extends`) becomes `allOf` with the parent's `$ref` first and its own properties after;
//! - each [`Rule`] becomes the JSON Schema keywords that say it, where there are any, and a
//!   sentence in `description` (ranges, signs, IBAN and e-mail form, past dates, comment limits);
//! - the members only the service sets ([`Rule::ServiceOwned`]) become `null`-only and
//!   `readOnly`, the required members of `vorgang` ([`REQUIRED_IN_VORGANG`]) `required`, not
//!   `null`, not blank;
//! - every other member also accepts `null` (the service treats it as absent), written the
//!   OpenAPI 3.1 way: `"type": ["string", "null"]`, or `anyOf` with `{"type": "null"}` for a
//!   `$ref`. Unknown members are allowed everywhere (`additionalProperties` is not restricted):
//!   the service accepts them and names each one in `messages` as a warning.

use serde_json::{Map, Value, json};
use vorgang_model::schema::{
    KexSchema, Node, ObjectType, Property, REQUIRED_IN_VORGANG, Rule, SCHEMA_LICENSE,
};
use vorgang_model::{
    EMAIL_PATTERN, IBAN_PATTERN, MAX_EMAIL_LEN, MAX_KOMMENTAR_CHARS, MAX_KOMMENTARE,
};

const SCHEMAS: &str = "#/components/schemas/";

/// `{"$ref": "#/components/schemas/{name}"}`.
pub(super) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

/// `schema`, or `null`: the form of every optional member (`null` counts as absent).
pub(super) fn or_null(schema: Value) -> Value {
    match schema {
        Value::Object(mut map) if !map.contains_key("$ref") && map.contains_key("type") => {
            if let Some(Value::String(kind)) = map.get("type").cloned() {
                map.insert("type".into(), json!([kind, "null"]));
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
            Value::Object(map)
        }
        other => json!({ "anyOf": [other, { "type": "null" }] }),
    }
}

/// A required string: present, not `null`, not blank.
pub(super) fn required_string(description: &str) -> Value {
    let description = format!("{description} Required; must not be empty or blank.");
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": "\\S",
        "description": description.trim_start(),
    })
}

/// The keywords of an e-mail address ([`Rule::Email`]), added to `node`.
pub(super) fn email_keywords(node: &mut Map<String, Value>) {
    node.insert("format".into(), json!("email"));
    node.insert("maxLength".into(), json!(MAX_EMAIL_LEN));
    node.insert("pattern".into(), json!(EMAIL_PATTERN));
}

/// Every KEX object type and enum as `(component name, schema)`.
#[must_use]
pub fn components(kex: &KexSchema) -> Map<String, Value> {
    let mut out = Map::new();
    for ty in kex.objects() {
        out.insert(ty.name().to_owned(), object(kex, ty));
    }
    for enumeration in kex.enums() {
        // Inline enums (none in the KEX files) are rendered where they are used.
        if kex.enum_named(enumeration.name()).is_some() {
            out.insert(
                enumeration.name().to_owned(),
                json!({ "type": "string", "enum": enumeration.values() }),
            );
        }
    }
    out.sort_keys();
    out
}

/// What `node` accepts, without the `null` of optional members.
fn node(kex: &KexSchema, node: &Node) -> Value {
    match node {
        Node::Any => json!({}),
        Node::Object(id) => kex
            .object(*id)
            .map_or_else(|| json!({}), |ty| schema_ref(ty.name())),
        Node::Enum(id) => match kex.enumeration(*id) {
            Some(en) if kex.enum_named(en.name()).is_some() => schema_ref(en.name()),
            Some(en) => json!({ "type": "string", "enum": en.values() }),
            None => json!({}),
        },
        Node::Array(item) => json!({ "type": "array", "items": self::node(kex, item) }),
        Node::String => json!({ "type": "string" }),
        Node::Date => json!({ "type": "string", "format": "date" }),
        Node::Integer => json!({ "type": "integer" }),
        Node::Number => json!({ "type": "number" }),
        Node::Boolean => json!({ "type": "boolean" }),
    }
}

/// Adds the keywords and the sentence that say `rule` to the schema of its property.
fn add_rule(rule: Rule, node: &mut Map<String, Value>) {
    let sentence = match rule {
        Rule::None | Rule::ServiceOwned => return,
        Rule::Positive => {
            node.insert("exclusiveMinimum".into(), json!(0));
            "Greater than 0.".to_owned()
        }
        Rule::NonNegative => {
            node.insert("minimum".into(), json!(0));
            "Must not be negative.".to_owned()
        }
        Rule::IntRange(min, max) => {
            node.insert("minimum".into(), json!(min));
            node.insert("maximum".into(), json!(max));
            format!("{min} to {max}.")
        }
        Rule::IntMin(min) => {
            node.insert("minimum".into(), json!(min));
            format!("At least {min}.")
        }
        Rule::Iban => {
            node.insert("pattern".into(), json!(IBAN_PATTERN));
            "IBAN in electronic format (capital letters and digits, no spaces); the mod-97 check \
             digits and the length and format of its country are checked."
                .to_owned()
        }
        Rule::Email => {
            email_keywords(node);
            "E-mail address.".to_owned()
        }
        Rule::Past => "Must lie in the past.".to_owned(),
        Rule::Comments => {
            node.insert("maxItems".into(), json!(MAX_KOMMENTARE));
            if let Some(Value::Object(items)) = node.get_mut("items") {
                items.insert("maxLength".into(), json!(MAX_KOMMENTAR_CHARS));
            }
            format!(
                "Comments for the Finanzierungsberater (KreditSmart Ereignislasche), followed \
                 by the top-level `kommentare`. At most {MAX_KOMMENTARE} comments in total \
                 (both lists together), each at most {MAX_KOMMENTAR_CHARS} characters."
            )
        }
    };
    let text = match node.get("description").and_then(Value::as_str) {
        Some(existing) => format!("{existing} {sentence}"),
        None => sentence,
    };
    node.insert("description".into(), Value::String(text));
}

/// A member only the service sets: absent or `null`.
fn service_owned(kex: &KexSchema, property: &Property) -> Value {
    let kex_type = match &property.node {
        Node::Object(id) => kex.object(*id).map_or("object", ObjectType::name),
        _ => "string",
    };
    let what = match property.name.as_str() {
        "kundenbetreuer" => "the Dr. Klein Kundenbetreuer",
        "tippgeber" => {
            "the partnerId of the top-level `tippgeber`, found or created in Europace \
             Partnermanagement"
        }
        "bearbeiter" => "the Bearbeiter at Europace",
        "eigeneVorgangsnummer" => "our drkleinrkVorgangsnummer",
        _ => "a value of its own",
    };
    json!({
        "type": "null",
        "readOnly": true,
        "description": format!(
            "Set by the service alone (KEX type: {kex_type}): {what}. Leave it out; any value \
             other than null is refused with 422, because it would reroute the case."
        ),
    })
}

/// The schema of an optional property: what it accepts, its rule, or `null`.
fn optional(kex: &KexSchema, property: &Property) -> Value {
    let mut schema = node(kex, &property.node);
    if let Value::Object(map) = &mut schema {
        add_rule(property.rule, map);
    }
    or_null(schema)
}

/// The object that requires the members at `paths` (each relative to it): each one present and
/// not `null`, the last of a path a string that is not blank.
fn requirement(paths: &[&[&'static str]]) -> Value {
    let mut firsts: Vec<&str> = Vec::new();
    for path in paths {
        if let Some(first) = path.first()
            && !firsts.contains(first)
        {
            firsts.push(first);
        }
    }
    let mut properties = Map::new();
    for first in &firsts {
        let rests: Vec<&[&str]> = paths
            .iter()
            .filter(|p| p.first() == Some(first))
            .map(|p| p.get(1..).unwrap_or_default())
            .collect();
        let schema = if rests.iter().any(|rest| rest.is_empty()) {
            required_string("")
        } else {
            requirement(&rests)
        };
        properties.insert((*first).to_owned(), schema);
    }
    json!({ "type": "object", "required": firsts, "properties": properties })
}

/// A member of `vorgang` that [`REQUIRED_IN_VORGANG`] requires (with members inside it).
fn required_member(kex: &KexSchema, property: &Property) -> Value {
    let rests: Vec<&[&'static str]> = REQUIRED_IN_VORGANG
        .iter()
        .filter(|p| p.first() == Some(&property.name.as_str()))
        .map(|p| p.get(1..).unwrap_or_default())
        .collect();
    if rests.iter().any(|rest| rest.is_empty()) {
        return required_string("");
    }
    let inside: Vec<String> = rests.iter().map(|rest| rest.join(".")).collect();
    json!({
        "description": format!(
            "Required, with {} present and not blank.",
            inside.join(" and ")
        ),
        "allOf": [node(kex, &property.node), requirement(&rests)],
    })
}

/// One object type as an OpenAPI 3.1 schema object.
fn object(kex: &KexSchema, ty: &ObjectType) -> Value {
    let is_root = kex.root().is_some_and(|root| root.name() == ty.name());
    let mut properties = Map::new();
    for property in ty.own_properties() {
        let required = is_root
            && REQUIRED_IN_VORGANG
                .iter()
                .any(|p| p.first() == Some(&property.name.as_str()));
        let schema = if property.rule == Rule::ServiceOwned {
            service_owned(kex, property)
        } else if required {
            required_member(kex, property)
        } else {
            optional(kex, property)
        };
        properties.insert(property.name.clone(), schema);
    }
    let mut own = Map::new();
    own.insert("type".into(), json!("object"));
    own.insert("properties".into(), Value::Object(properties));
    let mut description = None;
    if is_root {
        let mut required: Vec<&str> = Vec::new();
        for path in REQUIRED_IN_VORGANG {
            if let Some(first) = path.first()
                && !required.contains(first)
            {
                required.push(first);
            }
        }
        own.insert("required".into(), json!(required));
        description = Some(format!(
            "The Vorgang in Europace's KEX format (KEX Vorgang Import API), forwarded to \
             Europace unchanged: no member lost, renamed or reformatted. Unknown members are \
             accepted and forwarded too; each is named in `messages` as a warning. Generated \
             from the KEX Vorgang JSON schema: {}",
            SCHEMA_LICENSE
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
        ));
    }
    let parent = ty.parent().and_then(|id| kex.object(id));
    let mut out = match parent {
        Some(parent) => {
            let mut out = Map::new();
            out.insert(
                "allOf".into(),
                json!([schema_ref(parent.name()), Value::Object(own)]),
            );
            out
        }
        None => own,
    };
    if let Some(description) = description {
        out.insert("description".into(), Value::String(description));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use vorgang_model::schema;

    use super::*;

    #[test]
    fn nullable_forms() {
        assert_eq!(
            or_null(json!({"type": "string"})),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(
            or_null(json!({"type": "string", "enum": ["A"]})),
            json!({"type": ["string", "null"], "enum": ["A", null]})
        );
        assert_eq!(
            or_null(schema_ref("Anschrift")),
            json!({"anyOf": [{"$ref": "#/components/schemas/Anschrift"}, {"type": "null"}]})
        );
    }

    #[test]
    fn every_kex_file_becomes_a_component_rendered_from_the_model() {
        let kex = schema::kex();
        let components = components(kex);
        assert_eq!(components.len(), schema::SCHEMA_FILES.len());
        let text = serde_json::to_string(&components).unwrap_or_default();
        for dropped in [
            "javaType",
            "customDateTimePatter",
            "$schema",
            "extends",
            ".json\"",
        ] {
            assert!(!text.contains(dropped), "{dropped} left in the components");
        }
        // `extends` became `allOf` with the parent first.
        assert_eq!(
            components["Mietausgabe"]["allOf"][0],
            schema_ref("Haushaltsposition")
        );
        // Every rule of the model is said where it applies, and nowhere else.
        for ty in kex.objects() {
            let component = &components[ty.name()];
            let own = component
                .pointer("/allOf/1/properties")
                .unwrap_or(&component["properties"]);
            for property in ty.own_properties() {
                let schema = &own[property.name.as_str()];
                let keyword = |k: &str| {
                    schema
                        .get(k)
                        .or_else(|| schema.pointer(&format!("/allOf/1/{k}")))
                };
                match property.rule {
                    Rule::ServiceOwned => assert_eq!(schema["readOnly"], json!(true)),
                    Rule::Positive => assert_eq!(keyword("exclusiveMinimum"), Some(&json!(0))),
                    Rule::NonNegative => assert_eq!(keyword("minimum"), Some(&json!(0))),
                    Rule::IntRange(min, max) => {
                        assert_eq!(keyword("minimum"), Some(&json!(min)));
                        assert_eq!(keyword("maximum"), Some(&json!(max)));
                    }
                    Rule::IntMin(min) => assert_eq!(keyword("minimum"), Some(&json!(min))),
                    Rule::Iban => assert_eq!(keyword("pattern"), Some(&json!(IBAN_PATTERN))),
                    Rule::Email => assert_eq!(keyword("pattern"), Some(&json!(EMAIL_PATTERN))),
                    Rule::Comments => {
                        assert_eq!(keyword("maxItems"), Some(&json!(MAX_KOMMENTARE)));
                    }
                    Rule::Past | Rule::None => {
                        for k in ["minimum", "exclusiveMinimum", "maximum", "pattern"] {
                            assert!(keyword(k).is_none(), "{}.{} {k}", ty.name(), property.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn required_members_of_vorgang_are_required_and_not_blank() {
        let components = components(schema::kex());
        let vorgang = &components["Vorgang"];
        assert_eq!(vorgang["required"], json!(["antragsteller1"]));
        let antragsteller = &vorgang["properties"]["antragsteller1"];
        assert_eq!(antragsteller["allOf"][0], schema_ref("Antragsteller"));
        let personendaten = &antragsteller["allOf"][1]["properties"]["personendaten"];
        assert_eq!(
            antragsteller["allOf"][1]["required"],
            json!(["personendaten"])
        );
        assert_eq!(personendaten["required"], json!(["vorname", "nachname"]));
        assert_eq!(
            personendaten["properties"]["vorname"]["minLength"],
            json!(1)
        );
    }
}
