//! Reads the KEX schema files in `schema/kex/` (the single source of every rule on `vorgang`) and
//!
//! 1. writes `$OUT_DIR/schema_files.rs`: `SCHEMA_FILES`, every `*.json` file of the directory
//!    embedded with `include_str!`, so the list is never maintained by hand;
//! 2. resolves them with the crate's own resolver (`src/schema/resolve.rs`, included below), and
//!    fails the build, naming file and property, if anything does not resolve cleanly;
//! 3. with the feature `kex-types`, writes `$OUT_DIR/kex.rs` from that resolution: a struct per
//!    object type, an enum per string enum (see `src/kex.rs`).

use std::fmt::Write as _;
use std::path::Path;

// The library's resolver, compiled into the build script too: one interpreter of the schema.
#[path = "src/schema/resolve.rs"]
#[allow(
    dead_code,
    reason = "the build script uses only part of the library's resolver"
)]
mod resolve;

use resolve::{KexSchema, Node};

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

fn main() {
    // Printed with Display, so the list of problems reads as lines, not as an escaped string.
    if let Err(error) = run() {
        eprintln!("{error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("schema/kex");
    let out_dir = std::env::var("OUT_DIR")?;
    println!("cargo:rerun-if-changed=schema/kex");
    println!("cargo:rerun-if-changed=src/schema/resolve.rs");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
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
            files.push((name, text));
        }
    }
    files.sort();

    let list = schema_files(&files)?;
    let out = Path::new(&out_dir).join("schema_files.rs");
    std::fs::write(&out, list).map_err(|e| format!("{}: {e}", out.display()))?;

    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    let schema = KexSchema::load(&borrowed);
    if !schema.problems().is_empty() {
        return Err(format!(
            "the KEX schema in schema/kex/ does not resolve cleanly:\n  {}",
            schema.problems().join("\n  ")
        )
        .into());
    }

    if std::env::var_os("CARGO_FEATURE_KEX_TYPES").is_some() {
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        let code = generate(&schema, &names)?;
        let out = Path::new(&out_dir).join("kex.rs");
        std::fs::write(&out, code).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

/// `SCHEMA_FILES`: every file, sorted by name, embedded with `include_str!`.
fn schema_files(files: &[(String, String)]) -> Result<String, Error> {
    let mut code = String::new();
    writeln!(
        code,
        "/// Every schema file as `(file name, contents)`, e.g. `(\"Vorgang.json\", \"{{…}}\")`, sorted"
    )?;
    writeln!(
        code,
        "/// by name: every `*.json` file in `schema/kex/` (listed by the build script)."
    )?;
    writeln!(code, "///")?;
    writeln!(code, "/// The entry point is [`ROOT_SCHEMA_FILE`].")?;
    writeln!(code, "pub static SCHEMA_FILES: &[(&str, &str)] = &[")?;
    for (name, _) in files {
        if name.contains(['"', '\\']) {
            return Err(format!("{name}: unusable file name").into());
        }
        writeln!(
            code,
            "    ({name:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/schema/kex/{name}\"))),"
        )?;
    }
    writeln!(code, "];")?;
    Ok(code)
}

/// Checks that a type name (`Vorgang`) is usable as a Rust type name.
fn type_name(name: &str) -> Result<&str, Error> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid || NOT_RAW.contains(&name) {
        return Err(format!("{name}: the name is not usable as a Rust type name").into());
    }
    Ok(name)
}

fn generate(schema: &KexSchema, files: &[&str]) -> Result<String, Error> {
    let mut code = String::new();
    let (mut structs, mut enums) = (0, 0);
    writeln!(
        code,
        "/// Every schema file a type was generated from (`Vorgang.json` → [`Vorgang`]), sorted."
    )?;
    writeln!(code, "pub const KEX_TYPES: &[&str] = &[")?;
    for file in files {
        writeln!(code, "    {file:?},")?;
    }
    writeln!(code, "];\n")?;

    for file in files {
        let name = file
            .strip_suffix(".json")
            .ok_or_else(|| format!("{file}: not a .json file"))?;
        if let Some(object) = schema.object_named(name) {
            write_struct(&mut code, schema, file, type_name(name)?, object)?;
            structs += 1;
        } else if let Some(enumeration) = schema.enum_named(name) {
            write_enum(&mut code, file, type_name(name)?, enumeration.values())?;
            enums += 1;
        } else {
            return Err(format!("{file}: neither an object type nor a string enum").into());
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

/// The Rust type and a short description of what a property accepts.
fn rust_type(schema: &KexSchema, at: &str, node: &Node) -> Result<(String, String), Error> {
    let ty = |t: &str, d: &str| Ok((t.to_owned(), d.to_owned()));
    match node {
        Node::Object(id) => {
            let name = schema
                .object(*id)
                .ok_or_else(|| format!("{at}: unknown object type"))?
                .name();
            let name = type_name(name)?;
            Ok((name.to_owned(), format!("object [`{name}`]")))
        }
        Node::Enum(id) => {
            let name = schema
                .enumeration(*id)
                .ok_or_else(|| format!("{at}: unknown enum"))?
                .name();
            let name = type_name(name)
                .map_err(|_| format!("{at}: inline enums are not supported by the generator"))?;
            Ok((name.to_owned(), format!("enum [`{name}`]")))
        }
        Node::String => ty("::std::string::String", "string"),
        Node::Date => ty("::std::string::String", "string, format date `YYYY-MM-DD`"),
        Node::Integer => ty("i64", "integer"),
        Node::Number => ty("f64", "number"),
        Node::Boolean => ty("bool", "boolean"),
        Node::Array(item) => {
            let (item, what) = rust_type(schema, &format!("{at}[]"), item)?;
            Ok((
                format!("::std::vec::Vec<{item}>"),
                format!("array of {what}"),
            ))
        }
        Node::Any => Err(format!("{at}: unresolved schema").into()),
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
    schema: &KexSchema,
    file: &str,
    name: &str,
    object: &resolve::ObjectType,
) -> Result<(), Error> {
    writeln!(code, "/// KEX schema type `{name}` ({file}).")?;
    writeln!(
        code,
        "#[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]"
    )?;
    writeln!(code, "pub struct {name} {{")?;
    let mut fields = Vec::new();
    for property in object.properties() {
        let prop = property.name.as_str();
        let at = format!("{file} {prop}");
        let field = snake_case(&at, prop)?;
        if fields.contains(&field) {
            return Err(format!("{at}: two properties map to the field {field}").into());
        }
        let (ty, what) = rust_type(schema, &at, &property.node)?;
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

fn write_enum(code: &mut String, file: &str, name: &str, values: &[String]) -> Result<(), Error> {
    writeln!(code, "/// KEX schema type `{name}` ({file}).")?;
    writeln!(
        code,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]"
    )?;
    writeln!(code, "pub enum {name} {{")?;
    let mut variants = Vec::new();
    for value in values {
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
