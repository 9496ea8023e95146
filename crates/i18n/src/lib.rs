//! The languages of the service's answers: German by default (the language of the partner
//! documentation), English on request (docs/reference/http-api.md §1 "Language").
//!
//! - [`Lang`] and [`Lang::negotiate`]: the language of an answer, from the request's
//!   `Accept-Language` (RFC 9110 §12.5.4 quality values);
//! - [`catalogue`]: the one message catalogue, every human-readable text of an answer in both
//!   languages (problem `title`, `detail`, `errors[].detail`, OAuth `error_description`).
//!
//! Only texts for people are translated. What programs read never changes with the language:
//! problem `type`s, OAuth `error` codes, JSON pointers, the code at the start of each `messages`
//! entry (`WARN unknown-field …`), and Europace's own messages, passed through as Europace sent
//! them.
//!
//! The crate has no dependencies and loads nothing at run time: every text is compiled in, so no
//! missing or malformed resource file can fail a request in production. It sits below every crate
//! that builds an answer (`vorgang-model` for violations and malformed bodies, `auth` for OAuth
//! errors and bearer-token problems, `vorgang-server` for the rest), which store message ids with
//! their parameters; the server renders them in the request's language.
//!
//! ```
//! use i18n::{Invalid, Lang};
//!
//! let violation = Invalid::OutOfRange { min: 1, max: 120 };
//! assert_eq!(violation.text(Lang::De), "muss zwischen 1 und 120 liegen");
//! assert_eq!(violation.text(Lang::En), "must be between 1 and 120");
//! assert_eq!(Lang::negotiate(["en-US,en;q=0.9,de;q=0.8"]), Lang::En);
//! ```
//!
//! Modules: `lang`, then `catalogue` (→ lang).

pub mod catalogue;
mod lang;

pub use catalogue::{
    Detail, Invalid, JsonError, Malformed, Message, OAuth, Position, Texts, Title,
};
pub use lang::Lang;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strum::IntoEnumIterator;

    use super::*;

    /// Every message of every catalogue enum, with the enum's name, as `(id, texts)`. Walked with
    /// `EnumIter`, which yields every variant (parameters at their defaults): a message added to
    /// an enum is part of this list without anyone listing it.
    fn every_message() -> Vec<(String, Texts)> {
        fn all<M: Message + std::fmt::Debug>(
            messages: impl Iterator<Item = M>,
        ) -> Vec<(String, Texts)> {
            messages
                .map(|m| (format!("{}::{m:?}", std::any::type_name::<M>()), m.texts()))
                .collect()
        }
        let mut every = Vec::new();
        every.extend(all(Invalid::iter()));
        every.extend(all(Malformed::iter()));
        every.extend(all(JsonError::iter()));
        every.extend(all(Title::iter()));
        every.extend(all(Detail::iter()));
        every.extend(all(OAuth::iter()));
        // `Detail::Malformed` wraps every malformed-body message: walk them inside it too.
        every.extend(all(Malformed::iter().map(Detail::Malformed)));
        // And every JSON error inside the message that carries it.
        every.extend(all(JsonError::iter().map(|kind| Malformed::InvalidJson {
            kind,
            at: Position::default(),
        })));
        every
    }

    #[test]
    fn every_message_is_written_in_both_languages_and_the_german_is_not_the_english() {
        let every = every_message();
        assert!(every.len() > 130, "{} messages", every.len());
        let mut failures = Vec::new();
        for (id, texts) in &every {
            if texts.de.trim().is_empty() {
                failures.push(format!("{id}: German text empty"));
            }
            if texts.en.trim().is_empty() {
                failures.push(format!("{id}: English text empty"));
            }
            if texts.de == texts.en {
                failures.push(format!("{id}: the German text is the English one"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        eprintln!("{} messages, each in German and English", every.len());
    }

    #[test]
    fn no_two_messages_of_one_enum_read_alike() {
        // A text shared by two ids of the same enum would be ambiguous for a reader; across
        // enums (a problem detail and an OAuth description) it is fine.
        let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
        for (id, texts) in every_message() {
            let kind = id.split("::").take(3).collect::<Vec<_>>().join("::");
            if id.contains("Detail::Malformed(") || id.contains("InvalidJson") {
                continue;
            }
            for text in [texts.de.into_owned(), texts.en.into_owned()] {
                if let Some(other) = seen.insert((kind.clone(), text.clone()), id.clone()) {
                    panic!("{id} and {other} both read {text:?}");
                }
            }
        }
    }

    #[test]
    fn parameters_are_filled_in_both_languages() {
        let at = Position {
            line: 12,
            column: 5,
        };
        let cases: Vec<(Texts, &str, &str)> = vec![
            (
                Invalid::NotOneOf {
                    values: "HERR, FRAU".into(),
                }
                .texts(),
                "muss einer dieser Werte sein: HERR, FRAU",
                "must be one of: HERR, FRAU",
            ),
            (
                Invalid::NotOneOfMany {
                    count: 42,
                    name: "Beruf".into(),
                }
                .texts(),
                "muss einer der 42 Werte von Beruf im KEX-Schema sein",
                "must be one of the 42 values of Beruf in the KEX schema",
            ),
            (
                Invalid::TooLong { max_chars: 4000 }.texts(),
                "darf höchstens 4000 Zeichen lang sein",
                "must be at most 4000 characters",
            ),
            (
                Invalid::GivenTwice {
                    name: "kundennummer",
                    alias: "kundenummer",
                }
                .texts(),
                "sowohl als kundennummer als auch als kundenummer angegeben",
                "given both as kundennummer and kundenummer",
            ),
            (
                Malformed::DuplicateKey {
                    object: "/tippgeber".into(),
                    at,
                }
                .texts(),
                "doppelter Schlüssel im Objekt /tippgeber in Zeile 12, Spalte 5",
                "duplicate key in the object at /tippgeber at line 12 column 5",
            ),
            (
                Malformed::InvalidJson {
                    kind: JsonError::UnexpectedEnd,
                    at,
                }
                .texts(),
                "ungültiges JSON: unerwartetes Ende der Eingabe in Zeile 12, Spalte 5",
                "invalid JSON: unexpected end of input at line 12 column 5",
            ),
            (
                Detail::ValidationFailed { count: 3 }.texts(),
                "3 Feld(er) verletzen die Regeln; siehe errors",
                "3 field(s) violate the rules; see errors",
            ),
            (
                Detail::NotProcessed {
                    status: 400,
                    reason: "Bad Request",
                }
                .texts(),
                "die Anfrage konnte nicht verarbeitet werden (HTTP 400)",
                "the request could not be processed (Bad Request)",
            ),
            (
                OAuth::ParameterRepeated { name: "scope" }.texts(),
                "der Parameter scope ist mehrfach angegeben",
                "parameter scope is repeated",
            ),
        ];
        for (texts, de, en) in cases {
            assert_eq!(texts.de, de);
            assert_eq!(texts.en, en);
        }
    }

    /// Every `"title"`, `"detail"` and `"error_description"` quoted in the JSON examples of the
    /// partner guides is a text of the catalogue in the guide's language: the guides cannot
    /// drift from what the service answers.
    #[test]
    fn the_partner_guides_quote_the_catalogue() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        // The parameters the guides' examples use.
        let at = Position {
            line: 12,
            column: 5,
        };
        let with_parameters: Vec<Texts> = vec![
            Malformed::DuplicateKey {
                object: "/tippgeber".into(),
                at,
            }
            .texts(),
            Detail::ValidationFailed { count: 4 }.texts(),
            Detail::TooLarge { max_bytes: 262_144 }.texts(),
            Detail::RateLimited { per_minute: 600 }.texts(),
            Invalid::OutOfRange { min: 1, max: 120 }.texts(),
            Invalid::NotOneOf {
                values: "HERR, FRAU".into(),
            }
            .texts(),
        ];
        for (file, lang) in [
            ("partner-guide.md", Lang::De),
            ("partner-guide.en.md", Lang::En),
        ] {
            let text = std::fs::read_to_string(docs.join(file)).unwrap();
            let known: Vec<String> = every_message()
                .into_iter()
                .map(|(_, texts)| texts)
                .chain(with_parameters.iter().cloned())
                .map(|texts| texts.get(lang).into_owned())
                .collect();
            let mut quoted = 0;
            for key in [
                "\"title\": \"",
                "\"detail\": \"",
                "\"error_description\": \"",
            ] {
                for (start, _) in text.match_indices(key) {
                    let rest = &text[start + key.len()..];
                    let value = &rest[..rest.find('"').unwrap()];
                    assert!(
                        known.iter().any(|k| k == value),
                        "{file}: {value:?} is no {lang:?} text of the catalogue"
                    );
                    quoted += 1;
                }
            }
            assert!(quoted >= 30, "{file}: only {quoted} texts quoted");
        }
    }

    #[test]
    fn text_picks_the_language() {
        assert_eq!(Invalid::Required.text(Lang::De), "ist erforderlich");
        assert_eq!(Invalid::Required.text(Lang::En), "required");
        assert_eq!(
            Title::ValidationFailed.text(Lang::De),
            "Validierung fehlgeschlagen"
        );
        assert_eq!(
            Detail::TokenMissing.text(Lang::De),
            "Ein Bearer-Access-Token ist erforderlich."
        );
        assert_eq!(
            Detail::from(Malformed::NotAnObject).text(Lang::En),
            "the body must be a JSON object"
        );
    }
}
