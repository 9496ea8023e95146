//! Strict JSON parsing: duplicate keys, nesting depth, invalid UTF-8, lone surrogates, trailing
//! data and a non-object top level are refused with our own messages, which never quote input.

use std::fmt;

use i18n::{JsonError, Malformed, Position};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Number, Value};

use crate::pointer::{Seg, pointer_of};

/// Deepest accepted nesting of objects and arrays; the top-level object counts as 1.
pub(crate) const MAX_DEPTH: usize = 32;

/// A segment of the path to a failure, collected innermost first while the error unwinds.
enum OwnedSeg {
    /// A member: its name and its 0-based position in its object.
    Key(String, usize),
    Index(usize),
}

/// Why our visitor stopped the parse (serde_json's error then only carries the position).
enum Failure {
    /// A key appeared twice in one object; the path of that object, innermost segment first.
    DuplicateKey(Vec<OwnedSeg>),
    /// Objects and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A number that serde_json delivered as a non-finite float (cannot happen; handled anyway).
    BadNumber,
}

#[derive(Default)]
struct State {
    depth: usize,
    failure: Option<Failure>,
}

impl State {
    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.failure = Some(Failure::TooDeep);
            return Err(E::custom("too deep"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Records that the failure happened inside `seg` of the current container.
    fn note_parent(&mut self, seg: OwnedSeg) {
        if let Some(Failure::DuplicateKey(path)) = &mut self.failure {
            path.push(seg);
        }
    }
}

struct ValueSeed<'s> {
    state: &'s mut State,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if let Some(n) = Number::from_f64(v) {
            Ok(Value::Number(n))
        } else {
            self.state.failure = Some(Failure::BadNumber);
            Err(E::custom("bad number"))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.state.enter()?;
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0).min(256));
        loop {
            let index = items.len();
            match access.next_element_seed(ValueSeed {
                state: &mut *self.state,
            }) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => {
                    self.state.note_parent(OwnedSeg::Index(index));
                    return Err(e);
                }
            }
        }
        self.state.leave();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.state.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                self.state.failure = Some(Failure::DuplicateKey(Vec::new()));
                return Err(de::Error::custom("duplicate key"));
            }
            // Duplicates are refused, so the members so far are exactly the ones before this.
            let position = map.len();
            match access.next_value_seed(ValueSeed {
                state: &mut *self.state,
            }) {
                Ok(value) => {
                    map.insert(key, value);
                }
                Err(e) => {
                    self.state.note_parent(OwnedSeg::Key(key, position));
                    return Err(e);
                }
            }
        }
        self.state.leave();
        Ok(Value::Object(map))
    }
}

/// Parses `body` as exactly one JSON object, strictly. `Err` is the 400 detail.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Malformed> {
    let text = std::str::from_utf8(body).map_err(|e| Malformed::NotUtf8 {
        byte: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut state = State::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = match (ValueSeed { state: &mut state }).deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(e) => return Err(describe(state.failure.take(), &e)),
    };
    if let Err(e) = deserializer.end() {
        return Err(Malformed::TrailingData { at: position(&e) });
    }
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Malformed::NotAnObject),
    }
}

/// Where serde_json stopped.
fn position(e: &serde_json::Error) -> Position {
    Position {
        line: e.line(),
        column: e.column(),
    }
}

/// Our own description of a parse error. serde_json's message may quote input, so it is only
/// inspected to pick one of our fixed messages, never forwarded.
fn describe(failure: Option<Failure>, e: &serde_json::Error) -> Malformed {
    let at = position(e);
    match failure {
        Some(Failure::DuplicateKey(mut path)) => {
            path.reverse();
            let segs: Vec<Seg<'_>> = path
                .iter()
                .map(|s| match s {
                    OwnedSeg::Key(k, position) => Seg::Member(k, *position),
                    OwnedSeg::Index(i) => Seg::Index(*i),
                })
                .collect();
            if segs.is_empty() {
                Malformed::DuplicateKeyAtTop { at }
            } else {
                Malformed::DuplicateKey {
                    object: pointer_of(&segs),
                    at,
                }
            }
        }
        Some(Failure::TooDeep) => Malformed::TooDeep {
            max_depth: MAX_DEPTH,
            at,
        },
        Some(Failure::BadNumber) => Malformed::NumberOutOfRange { at },
        None => {
            let message = e.to_string();
            let kind = if message.contains("surrogate")
                || message.contains("invalid unicode code point")
                || message.contains("hex escape")
            {
                JsonError::InvalidUnicode
            } else if message.starts_with("invalid escape") {
                JsonError::InvalidEscape
            } else if message.starts_with("control character") {
                JsonError::ControlCharacter
            } else if message.starts_with("number out of range") {
                JsonError::NumberOutOfRange
            } else if message.starts_with("recursion limit") {
                JsonError::NestedTooDeeply
            } else if message.starts_with("key must be a string") {
                JsonError::KeyNotString
            } else {
                match e.classify() {
                    Category::Eof => JsonError::UnexpectedEnd,
                    Category::Syntax => JsonError::Syntax,
                    Category::Data => JsonError::InvalidData,
                    Category::Io => JsonError::Unreadable,
                }
            };
            Malformed::InvalidJson { kind, at }
        }
    }
}

#[cfg(test)]
mod tests {
    use i18n::Lang;

    use super::*;

    /// The English text of the error (the text the service answered before it spoke German).
    fn err(body: &str) -> String {
        parse_object(body.as_bytes())
            .unwrap_err()
            .text(Lang::En)
            .into_owned()
    }

    fn nested(depth: usize) -> String {
        // `depth` objects in total, the top level included.
        let mut s = String::new();
        for _ in 1..depth {
            s.push_str("{\"a\":");
        }
        s.push_str("{}");
        for _ in 1..depth {
            s.push('}');
        }
        s
    }

    #[test]
    fn accepts_an_object_and_keeps_order_and_numbers() {
        let map =
            parse_object(br#"{"b":1,"a":-2,"c":200.01,"d":[true,null,"x"],"e":24.0}"#).unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "a", "c", "d", "e"]);
        assert!(map["b"].is_u64());
        assert!(map["a"].is_i64());
        assert!(map["c"].is_f64());
        assert!(
            map["e"].is_f64(),
            "24.0 stays a float so integer fields can refuse it"
        );
        assert_eq!(
            serde_json::to_string(&Value::Object(map)).unwrap(),
            r#"{"b":1,"a":-2,"c":200.01,"d":[true,null,"x"],"e":24.0}"#
        );
    }

    #[test]
    fn decimal_200_01_round_trips_exactly() {
        let map = parse_object(br#"{"betrag":200.01}"#).unwrap();
        assert_eq!(map["betrag"].as_f64(), Some(200.01));
        assert_eq!(map["betrag"].to_string(), "200.01");
    }

    #[test]
    fn ignores_a_byte_order_mark() {
        let mut body = "\u{feff}".as_bytes().to_vec();
        body.extend_from_slice(b"{\"a\":1}");
        assert!(parse_object(&body).is_ok());
    }

    #[test]
    fn refuses_duplicate_keys_naming_the_object() {
        assert!(err(r#"{"a":1,"a":2}"#).starts_with("duplicate key in the top-level object"));
        let e = err(r#"{"x":{"y":[0,{"a":1,"z/~":{"k":"geheim","k":"geheim"}}]}}"#);
        assert!(
            e.starts_with("duplicate key in the object at /x/y/1/#1 at line 1"),
            "{e}"
        );
        assert!(!e.contains("geheim"));
        // A member name that is not an identifier is named by its position, never quoted.
        let e = err(r#"{"erika@example.org":{"k":1,"k":2}}"#);
        assert!(
            e.starts_with("duplicate key in the object at /#0 at line 1"),
            "{e}"
        );
        assert!(!e.contains("erika"));
    }

    #[test]
    fn depth_32_passes_and_33_fails() {
        assert!(parse_object(nested(32).as_bytes()).is_ok());
        assert!(err(&nested(33)).starts_with("objects and arrays nested deeper than 32"));
        // Arrays count as well.
        let arrays = format!("{{\"a\":{}{}}}", "[".repeat(31), "]".repeat(31));
        assert!(parse_object(arrays.as_bytes()).is_ok());
        let arrays = format!("{{\"a\":{}{}}}", "[".repeat(32), "]".repeat(32));
        assert!(err(&arrays).starts_with("objects and arrays nested deeper than 32"));
        // Far beyond serde_json's own limit of 128: still our message.
        assert!(err(&nested(500)).starts_with("objects and arrays nested deeper than 32"));
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        assert_eq!(err("[]"), "the body must be a JSON object");
        assert_eq!(err("\"geheim\""), "the body must be a JSON object");
        assert_eq!(err("null"), "the body must be a JSON object");
        assert!(err("").starts_with("invalid JSON: unexpected end of input"));
        assert!(err("{} geheim").starts_with("trailing data after the JSON value"));
        assert!(err("{}{}").starts_with("trailing data"));
        assert!(!err("{\"a\": geheim}").contains("geheim"));
        assert!(!err("{\"a\": \"geheim").contains("geheim"));
    }

    #[test]
    fn refuses_invalid_unicode() {
        assert_eq!(
            parse_object(b"{\"a\":\"\xff\"}").unwrap_err(),
            Malformed::NotUtf8 { byte: 6 }
        );
        assert_eq!(
            Malformed::NotUtf8 { byte: 6 }.text(Lang::En),
            "body is not valid UTF-8 (at byte 6)"
        );
        for body in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\ud800x"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"\ud800":1}"#,
        ] {
            let e = err(body);
            assert!(
                e.starts_with("invalid JSON: string is not valid Unicode"),
                "{body}: {e}"
            );
        }
        // A correct pair is fine.
        let map = parse_object(br#"{"a":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(map["a"], "\u{1F600}");
    }

    #[test]
    fn messages_never_quote_input() {
        for body in [
            "{\"a\": tru}",
            "{\"a\": 1e999}",
            "{\"a\": \"x\u{1}\"}",
            "{\"a\": \"\\q\"}",
            "{geheim: 1}",
            "{\"a\" 1}",
        ] {
            let e = err(body);
            assert!(e.starts_with("invalid JSON: "), "{body}: {e}");
            assert!(!e.contains("geheim") && !e.contains("tru") && !e.contains('\u{1}'));
            let de = parse_object(body.as_bytes()).unwrap_err().text(Lang::De);
            assert!(de.starts_with("ungültiges JSON: "), "{body}: {de}");
            assert!(!de.contains("geheim") && !de.contains("tru") && !de.contains('\u{1}'));
        }
        assert!(err("{\"a\": 1e999}").contains("number out of range"));
        assert!(err("{\"a\": \"x\u{1}\"}").contains("control character"));
    }
}
