//! Our own request components, around the KEX `Vorgang`: `ImportRequest` (the body of
//! `POST /vorgang`), `Tippgeber`, `PartnerDaten` and `CustomEntry`, rendered from the model's
//! rules for them (required members, salutations, aliases, limits, the e-mail form). Only the
//! prose is written here.

use serde_json::{Map, Value, json};
use utoipa::ToSchema as _;
use vorgang_model::schema::KexSchema;
use vorgang_model::{
    Anrede, MAX_BODY_BYTES, MAX_CUSTOM_ENTRIES, MAX_KOMMENTAR_CHARS, MAX_KOMMENTARE,
    MAX_NESTING_DEPTH, PARTNER_ALIASES, REQUIRED_MEMBERS, TIPPGEBER_REQUIRED,
};

use super::kex::{email_keywords, or_null, required_string, schema_ref};
use crate::routes::vorgang::ImportRequestBody;

/// Name of the request body schema of `POST /vorgang` (the name of
/// [`ImportRequestBody`], which the handler's annotation names).
pub const IMPORT_REQUEST_SCHEMA: &str = "ImportRequest";

/// `ImportRequest`, `Tippgeber`, `PartnerDaten` and `CustomEntry`.
#[must_use]
pub fn components(kex: &KexSchema) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(ImportRequestBody::name().into_owned(), import_request(kex));
    out.insert("Tippgeber".into(), tippgeber());
    out.insert("PartnerDaten".into(), partner_daten());
    out.insert("CustomEntry".into(), custom_entry());
    out
}

fn import_request(kex: &KexSchema) -> Value {
    let vorgang = kex.root().map_or("Vorgang", |root| root.name());
    json!({
        "type": "object",
        "description": format!(
            "The body of `POST /vorgang`: a JSON object of at most {MAX_BODY_BYTES} bytes \
             (256 KiB), nested at most {MAX_NESTING_DEPTH} levels deep (this object counts as \
             1), without duplicate keys. `null` counts as absent. Unknown members are accepted \
             and named in `messages` as warnings."
        ),
        "required": REQUIRED_MEMBERS,
        "properties": {
            "vorgang": schema_ref(vorgang),
            "tippgeber": schema_ref("Tippgeber"),
            "kommentare": {
                "type": ["array", "null"],
                "description": format!(
                    "Free-text comments, shown to the Finanzierungsberater in the KreditSmart \
                     Ereignislasche after `vorgang.kommentare`. At most {MAX_KOMMENTARE} in \
                     total (with `vorgang.kommentare`), each at most {MAX_KOMMENTAR_CHARS} \
                     characters."
                ),
                "maxItems": MAX_KOMMENTARE,
                "items": { "type": "string", "maxLength": MAX_KOMMENTAR_CHARS },
            },
            "partner": or_null(schema_ref("PartnerDaten")),
        },
    })
}

fn tippgeber() -> Value {
    let mut properties = Map::new();
    for name in TIPPGEBER_REQUIRED {
        let description = match name {
            "externeMitarbeiternummer" => {
                "The Tippgeber's employee number at the partner, unique within your organisation."
            }
            "vorname" => "First name.",
            "nachname" => "Last name.",
            _ => "",
        };
        properties.insert(name.into(), required_string(description));
    }
    let mut anrede: Vec<Value> = Anrede::ALL.iter().map(|a| json!(a.as_str())).collect();
    anrede.push(Value::Null);
    properties.insert(
        "anrede".into(),
        json!({ "type": ["string", "null"], "enum": anrede, "description": "Salutation." }),
    );
    properties.insert(
        "telefon".into(),
        json!({ "type": ["string", "null"], "description": "Phone number." }),
    );
    let mut email = Map::new();
    email.insert("type".into(), json!(["string", "null"]));
    email_keywords(&mut email);
    email.insert("description".into(), json!("E-mail address."));
    properties.insert("email".into(), Value::Object(email));
    json!({
        "type": "object",
        "description": "The person at the partner who gave the tip. Found or created as a \
                        partner in Europace Partnermanagement, keyed by \
                        `externeMitarbeiternummer` within your organisation, and set as \
                        `vorgang.tippgeber` of the import.",
        "required": TIPPGEBER_REQUIRED,
        "properties": properties,
    })
}

fn partner_daten() -> Value {
    let mut properties = Map::new();
    let mut conflicts = Vec::new();
    for (name, alias) in PARTNER_ALIASES {
        let description = match name {
            "vertriebsschluessel" => "The partner's sales key (Vertriebsschlüssel).",
            "kundennummer" => "The customer's number at the partner.",
            _ => "",
        };
        properties.insert(
            name.into(),
            json!({ "type": ["string", "null"], "description": description }),
        );
        properties.insert(
            alias.into(),
            json!({
                "type": ["string", "null"],
                "deprecated": true,
                "description": format!("Alias of `{name}`."),
            }),
        );
        // Not both, unless one of them is null.
        conflicts.push(json!({
            "not": {
                "required": [name, alias],
                "properties": {
                    name: { "not": { "type": "null" } },
                    alias: { "not": { "type": "null" } },
                },
            },
        }));
    }
    properties.insert(
        "custom".into(),
        json!({
            "type": ["array", "null"],
            "description": format!(
                "Custom key/values not covered by this interface, at most \
                 {MAX_CUSTOM_ENTRIES} entries; keys unique."
            ),
            "maxItems": MAX_CUSTOM_ENTRIES,
            "items": schema_ref("CustomEntry"),
        }),
    );
    let aliases: Vec<String> = PARTNER_ALIASES
        .iter()
        .map(|(name, alias)| format!("`{alias}` (for `{name}`)"))
        .collect();
    json!({
        "type": "object",
        "description": format!(
            "The partner's own data. KEX has no field for it: it is stored with the import and \
             shown to the Finanzierungsberater as one extra comment line. The spellings of the \
             published table, {}, are accepted as aliases; a field given under both names \
             (neither null) is refused with 422.",
            aliases.join(" and ")
        ),
        "properties": properties,
        "allOf": conflicts,
    })
}

fn custom_entry() -> Value {
    json!({
        "type": "object",
        "description": "One custom key/value.",
        "required": ["key", "value"],
        "properties": {
            "key": required_string("The key; unique within `custom`."),
            "value": {
                "type": ["boolean", "integer", "string"],
                "minimum": i64::MIN,
                "maximum": i64::MAX,
                "description": "A boolean, a 64-bit integer (no fraction, not even `.0`) \
                                or a string; dates travel as strings. Required, not null.",
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_has_the_name_the_handler_refers_to() {
        assert_eq!(ImportRequestBody::name(), IMPORT_REQUEST_SCHEMA);
    }
}
