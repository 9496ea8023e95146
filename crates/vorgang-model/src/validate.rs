//! Validation of a parsed body: the KEX schema walk, the field rules and the helpers to report
//! violations by JSON pointer.

use chrono::NaiveDate;
use i18n::{Invalid, Lang};
use iban::{ParseBaseIbanError, ParseIbanError};
use serde_json::{Map, Value};

use crate::pointer::{Seg, Violation, cmp_pointers, pointer_of};
use crate::schema::{EnumType, KexSchema, Node, ObjectType, Rule};

/// Enums with at most this many values name them all in a violation.
const MAX_VALUES_NAMED: usize = 20;

/// Most comments per import: top-level `kommentare` and `vorgang.kommentare` together.
pub const MAX_KOMMENTARE: usize = 50;

/// Longest comment, in characters (Unicode scalar values, not bytes).
pub const MAX_KOMMENTAR_CHARS: usize = 4000;

/// Longest accepted e-mail address, in bytes.
pub const MAX_EMAIL_LEN: usize = 254;

/// The e-mail syntax the validator accepts, as a JSON Schema (ECMA-262) pattern, for
/// documents that describe the rule: one `@`, no whitespace, a domain with a dot between
/// non-empty labels. (The local part's limit of 64 bytes and the ban on control characters are
/// checked too but left out of the pattern.)
pub const EMAIL_PATTERN: &str = "^[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+$";

/// The form of an IBAN in electronic format, as a JSON Schema (ECMA-262) pattern: country code,
/// check digits, 11 to 30 capital letters or digits. The check digits themselves are verified
/// too, which no pattern can say.
pub const IBAN_PATTERN: &str = "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$";

/// Where the validation is and what it found.
pub(crate) struct Ctx<'a> {
    /// Path of the value being checked.
    pub(crate) path: Vec<Seg<'a>>,
    /// Violations found so far.
    pub(crate) violations: Vec<Violation>,
    /// Pointers of unknown fields found so far.
    pub(crate) unknown: Vec<String>,
    /// The date geburtsdatum must lie before.
    pub(crate) today: NaiveDate,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(today: NaiveDate) -> Self {
        Self {
            path: Vec::with_capacity(16),
            violations: Vec::new(),
            unknown: Vec::new(),
            today,
        }
    }

    /// A violation at the current path.
    pub(crate) fn violation(&mut self, detail: Invalid) {
        self.violations.push(Violation {
            pointer: pointer_of(&self.path),
            detail,
        });
    }

    /// A violation at member `key` of the current path.
    pub(crate) fn violation_at(&mut self, key: &'a str, detail: Invalid) {
        self.path.push(Seg::Key(key));
        self.violation(detail);
        self.path.pop();
    }

    /// The current path names an unknown field.
    pub(crate) fn unknown_field(&mut self) {
        self.unknown.push(pointer_of(&self.path));
    }

    /// Sorted violations (by pointer, then by the English text of the detail, as before the
    /// service spoke German; duplicates removed). The order is the same in every language.
    pub(crate) fn sorted_violations(&mut self) -> Vec<Violation> {
        let mut violations = std::mem::take(&mut self.violations);
        violations.sort_by(|a, b| {
            cmp_pointers(&a.pointer, &b.pointer)
                .then_with(|| a.detail.text(Lang::En).cmp(&b.detail.text(Lang::En)))
        });
        violations.dedup();
        violations
    }

    /// Sorted unknown-field warnings, `WARN unknown-field /pointer`.
    pub(crate) fn sorted_warnings(&mut self) -> Vec<String> {
        let mut unknown = std::mem::take(&mut self.unknown);
        unknown.sort_by(|a, b| cmp_pointers(a, b));
        unknown.dedup();
        unknown
            .into_iter()
            .map(|p| format!("WARN unknown-field {p}"))
            .collect()
    }

    /// Reports every member name and string value in `map` (recursively) that contains the
    /// character U+0000, at its pointer relative to the current path.
    ///
    /// Europace cannot use such text, and PostgreSQL cannot store it (`text` refuses NUL with
    /// SQLSTATE 22021) while SQLite can: refusing it here gives the same 422 on every backend,
    /// before anything is stored or sent. The walk is bounded by the parser's nesting limit.
    pub(crate) fn check_no_nul(&mut self, map: &'a Map<String, Value>) {
        for (position, (key, value)) in map.iter().enumerate() {
            self.path.push(Seg::Member(key, position));
            if key.contains('\0') {
                self.violation(Invalid::NulInName);
            }
            self.check_no_nul_in_value(value);
            self.path.pop();
        }
    }

    fn check_no_nul_in_value(&mut self, value: &'a Value) {
        match value {
            Value::String(text) if text.contains('\0') => self.violation(Invalid::NulInString),
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(index));
                    self.check_no_nul_in_value(item);
                    self.path.pop();
                }
            }
            Value::Object(map) => self.check_no_nul(map),
            _ => {}
        }
    }

    /// Walks an object of type `ty`: every known member is checked against its schema, every
    /// unknown one is named as a warning. `null` members count as absent.
    pub(crate) fn check_object(
        &mut self,
        schema: &KexSchema,
        ty: &ObjectType,
        map: &'a Map<String, Value>,
    ) {
        for (position, (key, value)) in map.iter().enumerate() {
            self.path.push(Seg::Member(key, position));
            match ty.property(key) {
                None => self.unknown_field(),
                Some(_) if value.is_null() => {}
                Some(prop) if prop.rule == Rule::ServiceOwned => {
                    self.violation(Invalid::ServiceOwned);
                }
                Some(prop) => {
                    if self.check_node(schema, &prop.node, value) {
                        self.check_rule(prop.rule, value);
                    }
                }
            }
            self.path.pop();
        }
    }

    /// Checks `value` against `node`; `false` (with a violation) if its type is wrong.
    fn check_node(&mut self, schema: &KexSchema, node: &Node, value: &'a Value) -> bool {
        let outcome: Result<(), Invalid> = match node {
            Node::Any => Ok(()),
            Node::Object(id) => match value.as_object() {
                Some(map) => {
                    if let Some(ty) = schema.object(*id) {
                        self.check_object(schema, ty, map);
                    }
                    Ok(())
                }
                None => Err(Invalid::NotObject),
            },
            Node::Array(item) => match value.as_array() {
                Some(items) => {
                    for (index, element) in items.iter().enumerate() {
                        self.path.push(Seg::Index(index));
                        self.check_node(schema, item, element);
                        self.path.pop();
                    }
                    Ok(())
                }
                None => Err(Invalid::NotArray),
            },
            Node::String => value.as_str().map(drop).ok_or(Invalid::NotString),
            Node::Date => match value.as_str() {
                None => Err(Invalid::NotString),
                Some(text) if parse_date(text).is_none() => Err(Invalid::NotDate),
                Some(_) => Ok(()),
            },
            Node::Enum(id) => match (value.as_str(), schema.enumeration(*id)) {
                (None, _) => Err(Invalid::NotString),
                (Some(text), Some(en)) if !en.contains(text) => Err(not_in_enum(en)),
                (Some(_), _) => Ok(()),
            },
            Node::Integer if value.is_i64() || value.is_u64() => Ok(()),
            Node::Integer => Err(Invalid::NotInteger),
            Node::Number if value.is_number() => Ok(()),
            Node::Number => Err(Invalid::NotNumber),
            Node::Boolean if value.is_boolean() => Ok(()),
            Node::Boolean => Err(Invalid::NotBoolean),
        };
        match outcome {
            Ok(()) => true,
            Err(detail) => {
                self.violation(detail);
                false
            }
        }
    }

    /// Reports every comment of `items` (the list at the current path) longer than
    /// [`MAX_KOMMENTAR_CHARS`]; items that are not strings were reported by the type check.
    pub(crate) fn check_comment_lengths(&mut self, items: &[Value]) {
        for (index, item) in items.iter().enumerate() {
            if let Some(text) = item.as_str()
                && text.chars().count() > MAX_KOMMENTAR_CHARS
            {
                self.path.push(Seg::Index(index));
                self.violation(Invalid::TooLong {
                    max_chars: MAX_KOMMENTAR_CHARS,
                });
                self.path.pop();
            }
        }
    }

    /// Applies `rule` to a value whose type is already right.
    fn check_rule(&mut self, rule: Rule, value: &Value) {
        match rule {
            Rule::None | Rule::ServiceOwned => {}
            // The total across both comment lists is checked where both are known.
            Rule::Comments => {
                if let Some(items) = value.as_array() {
                    self.check_comment_lengths(items);
                }
            }
            Rule::Iban => {
                if let Some(text) = value.as_str() {
                    match check_iban(text) {
                        Ok(()) => {}
                        Err(IbanError::Format) => self.violation(Invalid::IbanFormat),
                        Err(IbanError::Checksum) => self.violation(Invalid::IbanChecksum),
                        Err(IbanError::Country) => self.violation(Invalid::IbanCountry),
                        Err(IbanError::UnknownCountry) => {
                            self.violation(Invalid::IbanUnknownCountry);
                        }
                    }
                }
            }
            Rule::Email => {
                if value.as_str().is_some_and(|text| !is_valid_email(text)) {
                    self.violation(Invalid::NotEmail);
                }
            }
            Rule::NonNegative => {
                if value.as_f64().is_some_and(|n| n < 0.0) {
                    self.violation(Invalid::Negative);
                }
            }
            Rule::Positive => {
                if value.as_f64().is_some_and(|n| n <= 0.0) {
                    self.violation(Invalid::NotPositive);
                }
            }
            Rule::IntRange(min, max) => {
                if !value.as_i64().is_some_and(|n| (min..=max).contains(&n)) {
                    self.violation(Invalid::OutOfRange { min, max });
                }
            }
            Rule::IntMin(min) => {
                // A u64 beyond i64 is certainly at least `min`.
                if value.as_i64().is_some_and(|n| n < min) {
                    self.violation(Invalid::BelowMinimum { min });
                }
            }
            Rule::Past => {
                if let Some(date) = value.as_str().and_then(parse_date)
                    && date >= self.today
                {
                    self.violation(Invalid::NotInPast);
                }
            }
        }
    }
}

/// The violation of a value not in the enum `en`: its values if there are a few
/// (`must be one of: FRAU, HERR`), else what they are.
fn not_in_enum(en: &EnumType) -> Invalid {
    let values = en.values();
    if values.len() <= MAX_VALUES_NAMED {
        Invalid::NotOneOf {
            values: values.join(", "),
        }
    } else if en.name() == "Country" {
        Invalid::NotCountry
    } else {
        Invalid::NotOneOfMany {
            count: values.len(),
            name: en.name().to_owned(),
        }
    }
}

/// A string `YYYY-MM-DD` naming a date that exists.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)
}

/// Why an IBAN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IbanError {
    /// Not in electronic format: 2 uppercase letters, 2 digits, then up to 30 uppercase letters
    /// or digits, nothing else (no spaces, no lowercase).
    Format,
    /// The mod-97 check digits do not hold (ISO 7064; `00` and `01` never do).
    Checksum,
    /// The country is known, but the length or the BBAN pattern is not its own, e.g. a German
    /// IBAN of 21 characters.
    Country,
    /// No country of the IBAN registry has this code.
    UnknownCountry,
}

/// Checks an IBAN in electronic format (ISO 13616): check digits, and the length and BBAN
/// format of its country, by the IBAN registry that `iban_validate` carries.
///
/// `iban_validate` also accepts the print format (groups of four separated by spaces) and
/// lowercase letters in the BBAN. The API takes the electronic format only (what Europace
/// stores; a partner sending `de89 3704…` has a formatting bug we should name), so anything
/// but `A-Z` and `0-9` is refused before the crate is asked. So is a length no country has
/// (ISO 13616: 15 to 34 characters): the crate checks the check digits before the length, and
/// `DE98` deserves "not an IBAN", not "wrong checksum".
pub(crate) fn check_iban(text: &str) -> Result<(), IbanError> {
    if !(15..=34).contains(&text.len())
        || !text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(IbanError::Format);
    }
    match text.parse::<iban::Iban>() {
        Ok(_) => Ok(()),
        Err(ParseIbanError::InvalidBaseIban {
            source: ParseBaseIbanError::InvalidFormat,
        }) => Err(IbanError::Format),
        Err(ParseIbanError::InvalidBaseIban {
            source: ParseBaseIbanError::InvalidChecksum,
        }) => Err(IbanError::Checksum),
        Err(ParseIbanError::InvalidBban(_)) => Err(IbanError::Country),
        Err(ParseIbanError::UnknownCountry(_)) => Err(IbanError::UnknownCountry),
    }
}

/// A sane e-mail syntax check: one `@`, a non-empty local part, a domain with a dot between
/// non-empty labels, no whitespace or control characters, at most 254 bytes.
pub(crate) fn is_valid_email(email: &str) -> bool {
    if email.is_empty()
        || email.len() > MAX_EMAIL_LEN
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_iso_and_exist() {
        assert_eq!(
            parse_date("2016-01-01"),
            NaiveDate::from_ymd_opt(2016, 1, 1)
        );
        assert!(parse_date("2024-02-29").is_some());
        for bad in [
            "2023-02-29",
            "2016-02-30",
            "2016-13-01",
            "2016-00-10",
            "2016-01-00",
            "2016-1-01",
            "01.01.2016",
            "2016-01-01T00:00:00",
            "+016-01-01",
            "2016/01/01",
            "",
            "20160101",
            "2016-01-0١",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn iban_mod_97() {
        for good in [
            "DE98600100700160451700",
            "DE89370400440532013000",
            "GB82WEST12345698765432",
            "NL91ABNA0417164300",
            "AT611904300234573201",
            "MT84MALT011000012345MTLCAST001S",
            "NO9386011117947",
        ] {
            assert_eq!(check_iban(good), Ok(()), "{good}");
        }
        assert_eq!(
            check_iban("DE98600100700160451701"),
            Err(IbanError::Checksum)
        );
        assert_eq!(
            check_iban("DE99600100700160451700"),
            Err(IbanError::Checksum)
        );
        assert_eq!(
            check_iban("DE98 6001 0070 0160 4517 00"),
            Err(IbanError::Format)
        );
        assert_eq!(check_iban("de98600100700160451700"), Err(IbanError::Format));
        assert_eq!(check_iban("gb82west12345698765432"), Err(IbanError::Format));
        assert_eq!(check_iban("DE98"), Err(IbanError::Format));
        assert_eq!(check_iban(""), Err(IbanError::Format));
        assert_eq!(check_iban("DEXX600100700160451700"), Err(IbanError::Format));
        assert_eq!(
            check_iban("DE98600100700160451700ÄÄ"),
            Err(IbanError::Format)
        );
        assert_eq!(check_iban(&"DE98".repeat(9)), Err(IbanError::Format));
    }

    #[test]
    fn iban_length_and_format_per_country() {
        for good in [
            "DE89370400440532013000",
            "AT611904300234573201",
            "CH9300762011623852957",
            "NL91ABNA0417164300",
            "FR1420041010050500013M02606",
            "GB29NWBK60161331926819",
        ] {
            assert_eq!(check_iban(good), Ok(()), "{good}");
        }
        // Valid check digits, but German IBANs have 22 characters.
        assert_eq!(check_iban("DE5137040044053201300"), Err(IbanError::Country));
        // Valid check digits, but the Dutch BBAN starts with a four-letter bank code.
        assert_eq!(check_iban("NL5312340417164300"), Err(IbanError::Country));
        // Valid check digits, no such country.
        assert_eq!(
            check_iban("XX0812345678901"),
            Err(IbanError::UnknownCountry)
        );
        // `01` is never a check digit, though mod 97 holds (as for `98`, the real ones).
        assert_eq!(
            check_iban("DE01600100700160451700"),
            Err(IbanError::Checksum)
        );
    }

    #[test]
    fn email_syntax() {
        for good in [
            "max.mustermann@partner.de",
            "a@b.co",
            "x+tag@sub.example.org",
            "ä@ö.de",
        ] {
            assert!(is_valid_email(good), "{good}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        for bad in [
            "",
            "max",
            "max@",
            "@partner.de",
            "max@partner",
            "max@@partner.de",
            "a@b@c.de",
            "max @partner.de",
            "max@partner.de ",
            "max@.de",
            "max@partner.",
            "max@partner..de",
            "max\n@partner.de",
            long.as_str(),
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
