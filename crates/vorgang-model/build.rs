//! Generates `$OUT_DIR/kex.rs`: one Rust type per KEX schema file in `schema/kex/` (a struct per
//! object schema, an enum per string enum), so the schema files stay the single source.
//!
//! A schema file this generator cannot read or does not understand fails the build with a
//! message naming the file and the property.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

type Error = Box<dyn std::error::Error>;

/// Rust keywords that cannot be used as plain identifiers.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else", "enum",
    "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "priv", "pub", "ref", "return", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    "abstract", "become", "do", "final", "macro", "override",
];

/// Keywords that cannot even be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate"];

fn main() -> Result<(), Error> {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("schema/kex");
    println!("cargo:rerun-if-changed=schema/kex");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("{}: file name is not UTF-8", path.display()))?
                .to_owned();
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
            files.insert(name, value);
        }
    }

    let code = generate(&files)?;
    let out = Path::new(&std::env::var("OUT_DIR")?).join("kex.rs");
    std::fs::write(&out, code).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}

/// The Rust type name of a schema file (`Vorgang.json` → `Vorgang`).
fn stem(file: &str) -> Result<&str, Error> {
    let name = file
        .strip_suffix(".json")
        .ok_or_else(|| format!("{file}: not a .json file"))?;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid || NOT_RAW.contains(&name) {
        return Err(format!("{file}: the file name is not usable as a Rust type name").into());
    }
    Ok(name)
}

fn generate(files: &BTreeMap<String, Value>) -> Result<String, Error> {
    let mut code = String::new();
    let (mut structs, mut enums) = (0, 0);
    writeln!(
        code,
        "/// Every schema file a type was generated from (`Vorgang.json` → [`Vorgang`]), sorted."
    )?;
    writeln!(code, "pub const KEX_TYPES: &[&str] = &[")?;
    for file in files.keys() {
        writeln!(code, "    {file:?},")?;
    }
    writeln!(code, "];\n")?;

    for (file, schema) in files {
        let name = stem(file)?;
        let kind = schema.get("type").and_then(Value::as_str);
        if let Some(values) = schema.get("enum") {
            if kind != Some("string") {
                return Err(format!("{file}: an enum must be of type string").into());
            }
            write_enum(&mut code, file, name, values)?;
            enums += 1;
        } else if kind == Some("object") {
            let mut props = Vec::new();
            collect_props(files, file, &mut props, 0)?;
            write_struct(&mut code, files, file, name, &props)?;
            structs += 1;
        } else {
            return Err(format!("{file}: neither an object schema nor a string enum").into());
        }
    }
    writeln!(
        code,
        "/// How many structs ({structs}) and enums ({enums}) were generated."
    )?;
    writeln!(
        code,
        "pub const KEX_TYPE_COUNTS: (usize, usize) = ({structs}, {enums});"
    )?;
    Ok(code)
}

/// All properties of an object schema, inherited (`extends`) ones first, as `(name, schema)`.
/// A property the child declares again replaces the inherited one.
fn collect_props<'a>(
    files: &'a BTreeMap<String, Value>,
    file: &str,
    props: &mut Vec<(&'a str, &'a Value)>,
    depth: usize,
) -> Result<(), Error> {
    if depth > 32 {
        return Err(format!("{file}: extends cycle").into());
    }
    let schema = files
        .get(file)
        .ok_or_else(|| format!("{file}: referenced but missing"))?;
    if let Some(extends) = schema.get("extends") {
        let parent = extends
            .get("$ref")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{file}: extends without $ref"))?;
        collect_props(files, parent, props, depth + 1)?;
    }
    if let Some(own) = schema.get("properties") {
        let own: &Map<String, Value> = own
            .as_object()
            .ok_or_else(|| format!("{file}: properties is not an object"))?;
        for (name, prop) in own {
            props.retain(|(n, _)| n != name);
            props.push((name, prop));
        }
    }
    Ok(())
}

/// The Rust type and a short description of a property schema.
fn rust_type(
    files: &BTreeMap<String, Value>,
    at: &str,
    schema: &Value,
) -> Result<(String, String), Error> {
    if let Some(reference) = schema.get("$ref") {
        let file = reference
            .as_str()
            .ok_or_else(|| format!("{at}: $ref is not a string"))?;
        let target = files
            .get(file)
            .ok_or_else(|| format!("{at}: $ref {file} missing"))?;
        let name = stem(file)?;
        let what = if target.get("enum").is_some() {
            "enum"
        } else {
            "object"
        };
        return Ok((name.to_owned(), format!("{what} [`{name}`]")));
    }
    if schema.get("enum").is_some() {
        return Err(format!("{at}: inline enums are not supported by the generator").into());
    }
    let ty = |t: &str, d: &str| Ok((t.to_owned(), d.to_owned()));
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            None => ty("::std::string::String", "string"),
            Some("date") => ty("::std::string::String", "string, format date `YYYY-MM-DD`"),
            Some(other) => Err(format!("{at}: unknown format {other}").into()),
        },
        Some("integer") => ty("i64", "integer"),
        Some("number") => ty("f64", "number"),
        Some("boolean") => ty("bool", "boolean"),
        Some("array") => {
            let items = schema
                .get("items")
                .ok_or_else(|| format!("{at}: array without items"))?;
            let (item, what) = rust_type(files, &format!("{at}[]"), items)?;
            Ok((
                format!("::std::vec::Vec<{item}>"),
                format!("array of {what}"),
            ))
        }
        other => Err(format!("{at}: unsupported type {other:?}").into()),
    }
}

/// `gehoertZuAntragsteller` → `gehoert_zu_antragsteller` (raw identifier for keywords).
fn snake_case(at: &str, name: &str) -> Result<String, Error> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(format!("{at}: property name is not usable as a Rust field name").into());
    }
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    if NOT_RAW.contains(&out.as_str()) {
        out.push('_');
    } else if KEYWORDS.contains(&out.as_str()) {
        out.insert_str(0, "r#");
    }
    Ok(out)
}

/// `ZUR_MIETE` → `ZurMiete`.
fn upper_camel_case(at: &str, value: &str) -> Result<String, Error> {
    let mut out = String::new();
    for word in value.split(['_', '-', ' ']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
    if !out.chars().all(|c| c.is_ascii_alphanumeric()) || out.is_empty() {
        return Err(format!("{at}: enum value {value:?} is not usable as a Rust variant").into());
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    if NOT_RAW.contains(&out.as_str()) {
        out.push('_');
    }
    Ok(out)
}

fn write_struct(
    code: &mut String,
    files: &BTreeMap<String, Value>,
    file: &str,
    name: &str,
    props: &[(&str, &Value)],
) -> Result<(), Error> {
    writeln!(code, "/// KEX schema type `{name}` ({file}).")?;
    writeln!(
        code,
        "#[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]"
    )?;
    writeln!(code, "pub struct {name} {{")?;
    let mut fields = Vec::new();
    for (prop, schema) in props {
        let at = format!("{file} {prop}");
        let field = snake_case(&at, prop)?;
        if fields.contains(&field) {
            return Err(format!("{at}: two properties map to the field {field}").into());
        }
        let (ty, what) = rust_type(files, &at, schema)?;
        writeln!(code, "    /// `{prop}` ({what}).")?;
        writeln!(
            code,
            "    #[serde(rename = {prop:?}, default, skip_serializing_if = \"::std::option::Option::is_none\")]"
        )?;
        writeln!(code, "    pub {field}: ::std::option::Option<{ty}>,")?;
        fields.push(field);
    }
    writeln!(code, "}}\n")?;
    Ok(())
}

fn write_enum(code: &mut String, file: &str, name: &str, values: &Value) -> Result<(), Error> {
    let values = values
        .as_array()
        .ok_or_else(|| format!("{file}: enum is not an array"))?;
    writeln!(code, "/// KEX schema type `{name}` ({file}).")?;
    writeln!(
        code,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]"
    )?;
    writeln!(code, "pub enum {name} {{")?;
    let mut variants = Vec::new();
    for value in values {
        let value = value
            .as_str()
            .ok_or_else(|| format!("{file}: enum value {value} is not a string"))?;
        let variant = upper_camel_case(file, value)?;
        if variants.contains(&variant) {
            return Err(format!("{file}: two values map to the variant {variant}").into());
        }
        writeln!(code, "    /// `{value}`.")?;
        writeln!(code, "    #[serde(rename = {value:?})]")?;
        writeln!(code, "    {variant},")?;
        variants.push(variant);
    }
    writeln!(code, "}}\n")?;
    Ok(())
}
