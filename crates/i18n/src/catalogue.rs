//! The message catalogue: every human-readable text of an HTTP answer, in German and English, in
//! one place.
//!
//! A message is a value of one of the enums below: its variant is the message id, its fields the
//! parameters (limits, allowed values, names of our contract: never a submitted value). Each
//! enum's `texts` is one `match` with one arm per message that writes both languages side by
//! side, so a message cannot exist in one language only (the compiler checks the arms, the
//! completeness test that no text is empty or left in English).
//!
//! The enums, by where the text appears:
//!
//! - [`Invalid`]: `errors[].detail` of a `422 validation-failed` (one violation);
//! - [`Malformed`] (with [`JsonError`] and [`Position`]): the `detail` of a
//!   `400 malformed-request` (a body that is not one well-formed JSON object);
//! - [`Title`]: the `title` of each problem type;
//! - [`Detail`]: every other problem `detail` (and the `detail` of the `202` answer);
//! - [`OAuth`]: `error_description` of the OAuth endpoints (`/oauth2/*`).
//!
//! The English texts are the service's texts from before it spoke German, unchanged: clients
//! and tests that read them keep working with `Accept-Language: en`.

use std::borrow::Cow;

use crate::Lang;

/// A message in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Texts {
    /// German.
    pub de: Cow<'static, str>,
    /// English.
    pub en: Cow<'static, str>,
}

impl Texts {
    /// A message without parameters.
    const fn fixed(de: &'static str, en: &'static str) -> Self {
        Self {
            de: Cow::Borrowed(de),
            en: Cow::Borrowed(en),
        }
    }

    /// A message with parameters, formatted in both languages.
    fn formatted(de: String, en: String) -> Self {
        Self {
            de: Cow::Owned(de),
            en: Cow::Owned(en),
        }
    }

    /// The text in `lang`.
    #[must_use]
    pub fn get(self, lang: Lang) -> Cow<'static, str> {
        match lang {
            Lang::De => self.de,
            Lang::En => self.en,
        }
    }
}

/// Every message type of the catalogue: a message knows its text in both languages.
pub trait Message {
    /// The text in both languages (the catalogue's entry).
    fn texts(&self) -> Texts;

    /// The text in `lang`.
    fn text(&self, lang: Lang) -> Cow<'static, str> {
        self.texts().get(lang)
    }
}

/// `text` as an inherent method too, so callers need not import [`Message`].
macro_rules! inherent_text {
    ($($ty:ty),* $(,)?) => {$(
        impl $ty {
            /// The text of this message in `lang`.
            #[must_use]
            pub fn text(&self, lang: Lang) -> Cow<'static, str> {
                Message::text(self, lang)
            }
        }
    )*};
}

inherent_text!(Invalid, Malformed, JsonError, Title, Detail, OAuth);

/// Where in the body a parse error is: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Position {
    /// ` at line L column C` / ` in Zeile L, Spalte C`, as it follows a message.
    fn texts(self) -> (String, String) {
        let Self { line, column } = self;
        (
            format!("in Zeile {line}, Spalte {column}"),
            format!("at line {line} column {column}"),
        )
    }
}

/// One violation of a validation rule: `errors[].detail` of a 422. Says what is wrong with the
/// field at the violation's pointer, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum Invalid {
    /// The field is missing or `null`.
    Required,
    /// The string is empty or only whitespace.
    Empty,
    /// Not a string.
    NotString,
    /// Not an object.
    NotObject,
    /// Not an array.
    NotArray,
    /// Not a date `YYYY-MM-DD` that exists.
    NotDate,
    /// Not one of a few allowed values.
    NotOneOf {
        /// The allowed values, joined with `, ` (e.g. `HERR, FRAU`).
        values: String,
    },
    /// Not a country code of the KEX schema.
    NotCountry,
    /// Not one of the many values of a KEX enum.
    NotOneOfMany {
        /// How many values the enum has.
        count: usize,
        /// The enum's name in the KEX schema, e.g. `Beschaeftigungsart`.
        name: String,
    },
    /// Not a JSON integer.
    NotInteger,
    /// Not a number.
    NotNumber,
    /// Not `true` or `false`.
    NotBoolean,
    /// A text longer than allowed.
    TooLong {
        /// The most characters allowed.
        max_chars: usize,
    },
    /// Not an IBAN in electronic format.
    IbanFormat,
    /// The IBAN's check digits are wrong.
    IbanChecksum,
    /// The IBAN has not the length and format of its country.
    IbanCountry,
    /// The IBAN's country code is unknown.
    IbanUnknownCountry,
    /// Not a plausible e-mail address.
    NotEmail,
    /// A negative amount.
    Negative,
    /// Not greater than 0.
    NotPositive,
    /// An integer outside its range.
    OutOfRange {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// An integer below its minimum.
    BelowMinimum {
        /// Smallest allowed.
        min: i64,
    },
    /// A date that is not in the past.
    NotInPast,
    /// A member only the service sets.
    ServiceOwned,
    /// A member name containing U+0000.
    NulInName,
    /// A string containing U+0000.
    NulInString,
    /// More comments than allowed, both lists together.
    TooManyComments {
        /// The most comments allowed.
        max: usize,
    },
    /// A member given under its name and its alias.
    GivenTwice {
        /// The member's name.
        name: &'static str,
        /// Its alias.
        alias: &'static str,
    },
    /// More list entries than allowed.
    TooManyEntries {
        /// The most entries allowed.
        max: usize,
    },
    /// A `partner.custom` key that an earlier entry has.
    KeyNotUnique,
    /// An integer beyond a signed 64-bit integer.
    IntegerTooLarge,
    /// Neither boolean, integer nor string.
    NotScalar,
}

impl Message for Invalid {
    fn texts(&self) -> Texts {
        match self {
            Self::Required => Texts::fixed("ist erforderlich", "required"),
            Self::Empty => Texts::fixed("darf nicht leer sein", "must not be empty"),
            Self::NotString => Texts::fixed("muss eine Zeichenkette sein", "must be a string"),
            Self::NotObject => Texts::fixed("muss ein Objekt sein", "must be an object"),
            Self::NotArray => Texts::fixed("muss ein Array sein", "must be an array"),
            Self::NotDate => Texts::fixed(
                "ist kein gültiges Datum (JJJJ-MM-TT)",
                "must be a date YYYY-MM-DD that exists",
            ),
            Self::NotOneOf { values } => Texts::formatted(
                format!("muss einer dieser Werte sein: {values}"),
                format!("must be one of: {values}"),
            ),
            Self::NotCountry => Texts::fixed(
                "muss ein Ländercode des KEX-Schemas sein: ISO 3166-1 alpha-2 in \
                 Großbuchstaben (z. B. DE) oder SONSTIGE",
                "must be a country code of the KEX schema: ISO 3166-1 alpha-2 in capitals \
                 (e.g. DE) or SONSTIGE",
            ),
            Self::NotOneOfMany { count, name } => Texts::formatted(
                format!("muss einer der {count} Werte von {name} im KEX-Schema sein"),
                format!("must be one of the {count} values of {name} in the KEX schema"),
            ),
            Self::NotInteger => Texts::fixed("muss eine ganze Zahl sein", "must be an integer"),
            Self::NotNumber => Texts::fixed("muss eine Zahl sein", "must be a number"),
            Self::NotBoolean => Texts::fixed("muss ein boolescher Wert sein", "must be a boolean"),
            Self::TooLong { max_chars } => Texts::formatted(
                format!("darf höchstens {max_chars} Zeichen lang sein"),
                format!("must be at most {max_chars} characters"),
            ),
            Self::IbanFormat => Texts::fixed(
                "muss eine IBAN im elektronischen Format sein (Großbuchstaben und Ziffern, \
                 ohne Leerzeichen)",
                "must be an IBAN in electronic format (uppercase letters and digits, no spaces)",
            ),
            Self::IbanChecksum => Texts::fixed(
                "die Prüfziffern der IBAN stimmen nicht",
                "IBAN checksum is wrong",
            ),
            Self::IbanCountry => Texts::fixed(
                "die IBAN hat nicht die Länge und das Format ihres Landes",
                "IBAN does not have the length and format of its country",
            ),
            Self::IbanUnknownCountry => Texts::fixed(
                "der Ländercode der IBAN ist unbekannt",
                "IBAN country code is unknown",
            ),
            Self::NotEmail => Texts::fixed(
                "muss eine gültige E-Mail-Adresse sein",
                "must be a valid e-mail address",
            ),
            Self::Negative => Texts::fixed("darf nicht negativ sein", "must not be negative"),
            Self::NotPositive => Texts::fixed("muss größer als 0 sein", "must be greater than 0"),
            Self::OutOfRange { min, max } => Texts::formatted(
                format!("muss zwischen {min} und {max} liegen"),
                format!("must be between {min} and {max}"),
            ),
            Self::BelowMinimum { min } => Texts::formatted(
                format!("muss mindestens {min} sein"),
                format!("must be at least {min}"),
            ),
            Self::NotInPast => Texts::fixed(
                "muss ein Datum in der Vergangenheit sein",
                "must be a date in the past",
            ),
            Self::ServiceOwned => Texts::fixed(
                "wird vom Service gesetzt und darf nicht gesendet werden",
                "is set by the service and must not be sent",
            ),
            Self::NulInName => Texts::fixed(
                "der Feldname darf das Zeichen U+0000 nicht enthalten",
                "member name must not contain the character U+0000",
            ),
            Self::NulInString => Texts::fixed(
                "darf das Zeichen U+0000 nicht enthalten",
                "must not contain the character U+0000",
            ),
            Self::TooManyComments { max } => Texts::formatted(
                format!("höchstens {max} Kommentare insgesamt (kommentare und vorgang.kommentare)"),
                format!("at most {max} comments in total (kommentare and vorgang.kommentare)"),
            ),
            Self::GivenTwice { name, alias } => Texts::formatted(
                format!("sowohl als {name} als auch als {alias} angegeben"),
                format!("given both as {name} and {alias}"),
            ),
            Self::TooManyEntries { max } => Texts::formatted(
                format!("darf höchstens {max} Einträge haben"),
                format!("must have at most {max} entries"),
            ),
            Self::KeyNotUnique => Texts::fixed(
                "muss eindeutig sein: ein früherer Eintrag hat denselben key",
                "must be unique: an earlier entry has the same key",
            ),
            Self::IntegerTooLarge => Texts::fixed(
                "muss eine ganze Zahl sein, die in 64 Bit passt (mit Vorzeichen)",
                "must be an integer that fits in 64 bits (signed)",
            ),
            Self::NotScalar => Texts::fixed(
                "muss ein boolescher Wert, eine ganze Zahl oder eine Zeichenkette sein",
                "must be a boolean, an integer or a string",
            ),
        }
    }
}

/// Why a body is not one well-formed JSON object: the `detail` of a 400 `malformed-request`.
/// Names a position or one of our pointers, never the text sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum Malformed {
    /// Larger than the largest body accepted.
    TooLarge {
        /// The limit in bytes.
        max_bytes: usize,
    },
    /// Not UTF-8.
    NotUtf8 {
        /// The offset of the first byte that is not.
        byte: usize,
    },
    /// More after the JSON value.
    TrailingData {
        /// Where.
        at: Position,
    },
    /// A JSON value, but not an object.
    #[default]
    NotAnObject,
    /// A key twice in the top-level object.
    DuplicateKeyAtTop {
        /// Where.
        at: Position,
    },
    /// A key twice in an inner object.
    DuplicateKey {
        /// The JSON pointer of the object (its nameable member names or positions).
        object: String,
        /// Where.
        at: Position,
    },
    /// Objects and arrays nested deeper than allowed.
    TooDeep {
        /// The deepest nesting allowed.
        max_depth: usize,
        /// Where.
        at: Position,
    },
    /// A number that is no finite float.
    NumberOutOfRange {
        /// Where.
        at: Position,
    },
    /// Not JSON.
    InvalidJson {
        /// What is wrong.
        kind: JsonError,
        /// Where.
        at: Position,
    },
    /// The body broke off while it was read.
    Incomplete,
}

impl Message for Malformed {
    fn texts(&self) -> Texts {
        match self {
            Self::TooLarge { max_bytes } => Texts::formatted(
                format!("Request-Body größer als {max_bytes} Bytes"),
                format!("body larger than {max_bytes} bytes"),
            ),
            Self::NotUtf8 { byte } => Texts::formatted(
                format!("der Request-Body ist kein gültiges UTF-8 (bei Byte {byte})"),
                format!("body is not valid UTF-8 (at byte {byte})"),
            ),
            Self::TrailingData { at } => {
                let (de, en) = at.texts();
                Texts::formatted(
                    format!("weitere Daten nach dem JSON-Wert {de}"),
                    format!("trailing data after the JSON value {en}"),
                )
            }
            Self::NotAnObject => Texts::fixed(
                "der Request-Body muss ein JSON-Objekt sein",
                "the body must be a JSON object",
            ),
            Self::DuplicateKeyAtTop { at } => {
                let (de, en) = at.texts();
                Texts::formatted(
                    format!("doppelter Schlüssel im Objekt der obersten Ebene {de}"),
                    format!("duplicate key in the top-level object {en}"),
                )
            }
            Self::DuplicateKey { object, at } => {
                let (de, en) = at.texts();
                Texts::formatted(
                    format!("doppelter Schlüssel im Objekt {object} {de}"),
                    format!("duplicate key in the object at {object} {en}"),
                )
            }
            Self::TooDeep { max_depth, at } => {
                let (de, en) = at.texts();
                Texts::formatted(
                    format!("Objekte und Arrays tiefer als {max_depth} Ebenen verschachtelt {de}"),
                    format!("objects and arrays nested deeper than {max_depth} levels {en}"),
                )
            }
            Self::NumberOutOfRange { at } => {
                let (de, en) = at.texts();
                Texts::formatted(
                    format!("Zahl außerhalb des Wertebereichs {de}"),
                    format!("number out of range {en}"),
                )
            }
            Self::InvalidJson { kind, at } => {
                let (de, en) = at.texts();
                let kind = kind.texts();
                Texts::formatted(
                    format!("ungültiges JSON: {} {de}", kind.de),
                    format!("invalid JSON: {} {en}", kind.en),
                )
            }
            Self::Incomplete => Texts::fixed(
                "der Request-Body konnte nicht vollständig gelesen werden",
                "the body could not be read completely",
            ),
        }
    }
}

/// What is wrong with a body that is not JSON ([`Malformed::InvalidJson`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum JsonError {
    /// A `\u` escape that is no Unicode scalar value (e.g. a lone surrogate).
    InvalidUnicode,
    /// An escape sequence JSON does not have.
    InvalidEscape,
    /// A control character in a string, not escaped.
    ControlCharacter,
    /// A number out of range.
    NumberOutOfRange,
    /// Nested too deeply for the parser.
    NestedTooDeeply,
    /// An object key that is not a string.
    KeyNotString,
    /// The body ended inside a value.
    UnexpectedEnd,
    /// Any other syntax error.
    #[default]
    Syntax,
    /// Data the parser refused.
    InvalidData,
    /// The body could not be read.
    Unreadable,
}

impl Message for JsonError {
    fn texts(&self) -> Texts {
        match self {
            Self::InvalidUnicode => Texts::fixed(
                "Zeichenkette ist kein gültiges Unicode (ungültiges oder einzelnes \
                 Surrogat-Escape)",
                "string is not valid Unicode (invalid or lone surrogate escape)",
            ),
            Self::InvalidEscape => Texts::fixed(
                "ungültige Escape-Sequenz in einer Zeichenkette",
                "invalid escape sequence in a string",
            ),
            Self::ControlCharacter => Texts::fixed(
                "nicht maskiertes Steuerzeichen in einer Zeichenkette",
                "unescaped control character in a string",
            ),
            Self::NumberOutOfRange => {
                Texts::fixed("Zahl außerhalb des Wertebereichs", "number out of range")
            }
            Self::NestedTooDeeply => Texts::fixed(
                "Objekte und Arrays zu tief verschachtelt",
                "objects and arrays nested too deeply",
            ),
            Self::KeyNotString => Texts::fixed(
                "Objektschlüssel muss eine Zeichenkette sein",
                "object key must be a string",
            ),
            Self::UnexpectedEnd => {
                Texts::fixed("unerwartetes Ende der Eingabe", "unexpected end of input")
            }
            Self::Syntax => Texts::fixed("Syntaxfehler", "syntax error"),
            Self::InvalidData => Texts::fixed("ungültige Daten", "invalid data"),
            Self::Unreadable => Texts::fixed(
                "der Request-Body konnte nicht gelesen werden",
                "could not read the body",
            ),
        }
    }
}

/// The `title` of a problem type: fixed per type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum Title {
    /// `malformed-request`.
    MalformedRequest,
    /// `validation-failed`.
    ValidationFailed,
    /// `service-unavailable`.
    ServiceUnavailable,
    /// `not-found`.
    NotFound,
    /// `internal-error`.
    InternalError,
    /// `method-not-allowed`.
    MethodNotAllowed,
    /// `request-timeout`.
    RequestTimeout,
    /// `bad-query`.
    BadQuery,
    /// `unsupported-media-type`.
    UnsupportedMediaType,
    /// `bad-idempotency-key`.
    BadIdempotencyKey,
    /// `payload-too-large`.
    PayloadTooLarge,
    /// `europace-unavailable`.
    EuropaceUnavailable,
    /// `europace-rejected`.
    EuropaceRejected,
    /// `import-in-doubt`.
    ImportInDoubt,
    /// `import-in-progress`.
    ImportInProgress,
    /// `rate-limited`.
    RateLimited,
    /// `idempotency-key-reused`.
    IdempotencyKeyReused,
    /// `duplicate-authorization`.
    DuplicateAuthorization,
    /// `insufficient-scope`.
    Forbidden,
    /// `unauthorized`.
    Unauthorized,
    /// `request-refused`.
    RequestRefused,
}

impl Message for Title {
    fn texts(&self) -> Texts {
        match self {
            Self::MalformedRequest => Texts::fixed("Ungültige Anfrage", "Malformed request"),
            Self::ValidationFailed => {
                Texts::fixed("Validierung fehlgeschlagen", "Validation failed")
            }
            Self::ServiceUnavailable => {
                Texts::fixed("Dienst nicht verfügbar", "Service unavailable")
            }
            Self::NotFound => Texts::fixed("Nicht gefunden", "Not found"),
            Self::InternalError => Texts::fixed("Interner Fehler", "Internal error"),
            Self::MethodNotAllowed => Texts::fixed("Methode nicht erlaubt", "Method not allowed"),
            Self::RequestTimeout => {
                Texts::fixed("Zeitüberschreitung der Anfrage", "Request timeout")
            }
            Self::BadQuery => Texts::fixed("Ungültige Query-Parameter", "Bad query"),
            Self::UnsupportedMediaType => {
                Texts::fixed("Nicht unterstützter Medientyp", "Unsupported media type")
            }
            Self::BadIdempotencyKey => {
                Texts::fixed("Ungültiger Idempotency-Key", "Bad Idempotency-Key")
            }
            Self::PayloadTooLarge => Texts::fixed("Request-Body zu groß", "Payload too large"),
            Self::EuropaceUnavailable => {
                Texts::fixed("Europace nicht erreichbar", "Europace unavailable")
            }
            Self::EuropaceRejected => Texts::fixed(
                "Europace hat den Import abgelehnt",
                "Europace rejected the import",
            ),
            Self::ImportInDoubt => {
                Texts::fixed("Ergebnis des Imports unbekannt", "Import outcome unknown")
            }
            Self::ImportInProgress => Texts::fixed("Import läuft noch", "Import in progress"),
            Self::RateLimited => Texts::fixed("Zu viele Anfragen", "Too many requests"),
            Self::IdempotencyKeyReused => Texts::fixed(
                "Idempotency-Key bereits verwendet",
                "Idempotency-Key reused",
            ),
            Self::DuplicateAuthorization => Texts::fixed(
                "Mehrere Authorization-Header",
                "Duplicate Authorization header",
            ),
            Self::Forbidden => Texts::fixed("Keine Berechtigung", "Forbidden"),
            Self::Unauthorized => Texts::fixed("Nicht authentifiziert", "Unauthorized"),
            Self::RequestRefused => Texts::fixed("Anfrage abgelehnt", "Request refused"),
        }
    }
}

/// The `detail` of a problem (other than a violation's), and of the `202` answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum Detail {
    /// 400 `malformed-request`: why the body is not one JSON object.
    Malformed(Malformed),
    /// 422 `validation-failed`: how many violations `errors` lists.
    ValidationFailed {
        /// The number of violations.
        count: usize,
    },
    /// 503 from `/health/ready`.
    NotReady,
    /// 503: the service's state is missing (cannot happen once it runs).
    ServiceNotReady,
    /// 503: the database failed before the import was stored.
    NothingStored,
    /// 503: the import ended in a state it cannot be in.
    ImportNotProcessed,
    /// 503: the database failed while reading.
    DatabaseUnavailable,
    /// 404: no such import (or other resource) of this client.
    NoSuchResource,
    /// 404: no such path.
    NoSuchEndpoint,
    /// 500 from `/metrics`.
    MetricsFailed,
    /// 405: the methods the path serves.
    MethodNotAllowed {
        /// The `Allow` header's value, e.g. `GET, HEAD`.
        allow: String,
    },
    /// 408: the body did not arrive in time.
    BodyTimeout {
        /// The deadline in seconds.
        seconds: u64,
    },
    /// An error actix-web answered itself (its own text may quote the request).
    NotProcessed {
        /// The status code.
        status: u16,
        /// Its reason phrase, e.g. `Bad Request`.
        reason: &'static str,
    },
    /// 400 `bad-query` at `POST /vorgang`: a parameter other than `environment`.
    UnknownImportParameter,
    /// 400 `bad-query`: a parameter given twice.
    ParameterRepeated {
        /// The parameter (one of ours).
        name: &'static str,
    },
    /// 400 `bad-query`: `environment` neither `TEST` nor `PRODUCTION`.
    BadEnvironment,
    /// 415.
    UnsupportedMediaType,
    /// 400 `bad-idempotency-key`.
    BadIdempotencyKey {
        /// The longest key accepted.
        max_len: usize,
    },
    /// 413.
    TooLarge {
        /// The limit in bytes.
        max_bytes: usize,
    },
    /// 503 `europace-unavailable`.
    EuropaceUnavailable,
    /// 502 `europace-rejected`.
    EuropaceRejected,
    /// 504 `import-in-doubt`.
    ImportInDoubt,
    /// 409 `import-in-progress`.
    ImportInProgress,
    /// The `detail` of the 202 answer: stored, finished in the background.
    ImportPending,
    /// 429 `rate-limited`.
    RateLimited {
        /// The client's quota per minute.
        per_minute: u32,
    },
    /// 422 `idempotency-key-reused`.
    IdempotencyKeyReused,
    /// 400 `bad-query` at `GET /vorgang`: an unknown parameter.
    UnknownListParameter,
    /// 400 `bad-query`: `status` not a state.
    BadStatus {
        /// The states, joined with `, `.
        values: String,
    },
    /// 400 `bad-query`: `since` not RFC 3339.
    BadSince,
    /// 400 `bad-query`: `limit` out of range.
    BadLimit {
        /// The largest page.
        max: u32,
    },
    /// 400 `bad-query`: a `cursor` we did not issue.
    BadCursor,
    /// 400 `duplicate-authorization`.
    DuplicateAuthorization,
    /// 401: no bearer token.
    TokenMissing,
    /// 401: the token is invalid.
    TokenInvalid,
    /// 401: the token expired.
    TokenExpired,
    /// 401: the token's client was revoked.
    ClientRevoked,
    /// 403: the token lacks the scope.
    ScopeMissing,
    /// 503: the authorization check could not be made.
    AuthorizationUnavailable,
}

impl From<Malformed> for Detail {
    fn from(malformed: Malformed) -> Self {
        Self::Malformed(malformed)
    }
}

impl Message for Detail {
    fn texts(&self) -> Texts {
        match self {
            Self::Malformed(malformed) => malformed.texts(),
            Self::ValidationFailed { count } => Texts::formatted(
                format!("{count} Feld(er) verletzen die Regeln; siehe errors"),
                format!("{count} field(s) violate the rules; see errors"),
            ),
            Self::NotReady => Texts::fixed(
                "nicht bereit: die Datenbank nimmt keine Schreibzugriffe an",
                "not ready: the database does not take writes",
            ),
            Self::ServiceNotReady => Texts::fixed("Dienst nicht bereit", "service not ready"),
            Self::NothingStored => Texts::fixed(
                "unsere Datenbank ist nicht verfügbar; es wurde nichts gespeichert, bitte \
                 später erneut versuchen",
                "our database is unavailable; nothing was stored, retry later",
            ),
            Self::ImportNotProcessed => Texts::fixed(
                "der Import konnte nicht verarbeitet werden; bitte später erneut versuchen",
                "the import could not be processed; retry later",
            ),
            Self::DatabaseUnavailable => Texts::fixed(
                "unsere Datenbank ist nicht verfügbar, bitte später erneut versuchen",
                "our database is unavailable, retry later",
            ),
            Self::NoSuchResource => Texts::fixed(
                "keine solche Ressource für diesen Client",
                "no such resource for this client",
            ),
            Self::NoSuchEndpoint => Texts::fixed("kein solcher Endpunkt", "no such endpoint"),
            Self::MetricsFailed => Texts::fixed(
                "die Metriken konnten nicht erzeugt werden",
                "the metrics could not be rendered",
            ),
            Self::MethodNotAllowed { allow } => Texts::formatted(
                format!("dieser Pfad bedient nur {allow}"),
                format!("this path serves only {allow}"),
            ),
            Self::BodyTimeout { seconds } => Texts::formatted(
                format!(
                    "der Request-Body ist nicht innerhalb von {seconds} s nach den Headern \
                     angekommen"
                ),
                format!("the request body did not arrive within {seconds} s of the headers"),
            ),
            Self::NotProcessed { status, reason } => Texts::formatted(
                format!("die Anfrage konnte nicht verarbeitet werden (HTTP {status})"),
                format!("the request could not be processed ({reason})"),
            ),
            Self::UnknownImportParameter => Texts::fixed(
                "unbekannter Query-Parameter; erlaubt ist nur environment",
                "unknown query parameter; only environment is allowed",
            ),
            Self::ParameterRepeated { name } => Texts::formatted(
                format!("{name} mehr als einmal angegeben"),
                format!("{name} given more than once"),
            ),
            Self::BadEnvironment => Texts::fixed(
                "environment muss TEST oder PRODUCTION sein",
                "environment must be TEST or PRODUCTION",
            ),
            Self::UnsupportedMediaType => Texts::fixed(
                "senden Sie den JSON-Body als application/json \
                 (application/x-www-form-urlencoded wird ebenfalls akzeptiert)",
                "send the JSON body as application/json \
                 (application/x-www-form-urlencoded is accepted too)",
            ),
            Self::BadIdempotencyKey { max_len } => Texts::formatted(
                format!(
                    "der Idempotency-Key muss aus 1 bis {max_len} sichtbaren ASCII-Zeichen bestehen"
                ),
                format!("Idempotency-Key must be 1 to {max_len} visible ASCII characters"),
            ),
            Self::TooLarge { max_bytes } => Texts::formatted(
                format!("der Request-Body darf höchstens {max_bytes} Bytes groß sein"),
                format!("the body must not exceed {max_bytes} bytes"),
            ),
            Self::EuropaceUnavailable => Texts::fixed(
                "Europace war nicht erreichbar oder überlastet; es wurde nichts angelegt. Bitte \
                 später erneut versuchen, mit demselben Idempotency-Key.",
                "Europace could not be reached or was overloaded; nothing was created. Retry \
                 later, with the same Idempotency-Key.",
            ),
            Self::EuropaceRejected => Texts::fixed(
                "Europace hat unsere Anfrage abgelehnt; es wurde nichts angelegt. Die Gründe von \
                 Europace stehen in europaceMessages. Unser Betrieb wurde benachrichtigt.",
                "Europace refused our request; nothing was created. Europace's reasons are in \
                 europaceMessages. Our operators have been alerted.",
            ),
            Self::ImportInDoubt => Texts::fixed(
                "Die Antwort von Europace ging nach dem Senden des Imports verloren; der Vorgang \
                 existiert möglicherweise. Bitte nicht erneut senden: unser Betrieb klärt den \
                 Fall, siehe GET /vorgang/{id}.",
                "Europace's answer was lost after the import was sent; the case may exist. Do \
                 not resend: our operators resolve it, see GET /vorgang/{id}.",
            ),
            Self::ImportInProgress => Texts::fixed(
                "ein Import mit diesem Idempotency-Key wird noch verarbeitet; bitte in Kürze \
                 erneut versuchen",
                "an import with this Idempotency-Key is still being processed; retry shortly",
            ),
            Self::ImportPending => Texts::fixed(
                "der Import ist gespeichert und wird im Hintergrund abgeschlossen; bitte nicht \
                 erneut senden; das Ergebnis liefert ein GET auf seine Location",
                "the import is stored and will be finished in the background; do not send it \
                 again; GET its Location for the outcome",
            ),
            Self::RateLimited { per_minute } => Texts::formatted(
                format!(
                    "dieser Client darf {per_minute} Importe pro Minute senden; bitte nach \
                     Retry-After Sekunden erneut versuchen"
                ),
                format!(
                    "this client may send {per_minute} imports per minute; retry after \
                     Retry-After seconds"
                ),
            ),
            Self::IdempotencyKeyReused => Texts::fixed(
                "dieser Idempotency-Key wurde bereits mit einem anderen Request-Body oder einer \
                 anderen Umgebung (environment) verwendet",
                "this Idempotency-Key was already used with a different body or environment",
            ),
            Self::UnknownListParameter => Texts::fixed(
                "unbekannter Query-Parameter; erlaubt sind status, since, limit und cursor",
                "unknown query parameter; allowed are status, since, limit and cursor",
            ),
            Self::BadStatus { values } => Texts::formatted(
                format!("status muss einer dieser Werte sein: {values}"),
                format!("status must be one of {values}"),
            ),
            Self::BadSince => Texts::fixed(
                "since muss ein Zeitpunkt nach RFC 3339 sein, z. B. 2026-01-31T00:00:00Z",
                "since must be an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z",
            ),
            Self::BadLimit { max } => Texts::formatted(
                format!("limit muss eine ganze Zahl von 1 bis {max} sein"),
                format!("limit must be a whole number from 1 to {max}"),
            ),
            Self::BadCursor => Texts::fixed(
                "cursor stammt nicht von diesem Service; übergeben Sie das next einer Seite \
                 unverändert",
                "cursor is not one this service issued; pass the next of a page as it came",
            ),
            Self::DuplicateAuthorization => Texts::fixed(
                "die Anfrage enthält mehr als einen Authorization-Header; senden Sie genau einen",
                "the request carries more than one Authorization header; send exactly one",
            ),
            Self::TokenMissing => Texts::fixed(
                "Ein Bearer-Access-Token ist erforderlich.",
                "A bearer access token is required.",
            ),
            Self::TokenInvalid => Texts::fixed(
                "Das Access-Token ist ungültig.",
                "The access token is invalid.",
            ),
            Self::TokenExpired => Texts::fixed(
                "Das Access-Token ist abgelaufen.",
                "The access token expired.",
            ),
            Self::ClientRevoked => Texts::fixed(
                "Der Client dieses Access-Tokens wurde gesperrt.",
                "The client of this access token was revoked.",
            ),
            Self::ScopeMissing => Texts::fixed(
                "Dem Access-Token fehlt der erforderliche Scope.",
                "The access token lacks the required scope.",
            ),
            Self::AuthorizationUnavailable => Texts::fixed(
                "Die Autorisierung ist vorübergehend nicht verfügbar.",
                "Authorization is temporarily unavailable.",
            ),
        }
    }
}

/// The `error_description` of an OAuth error answer (RFC 6749 §5.2) at `/oauth2/token`,
/// `/oauth2/introspect` and `/oauth2/revoke`. The `error` code beside it is not part of the
/// catalogue: it is machine-readable and the same in every language.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum OAuth {
    /// 413: the form is larger than allowed.
    RequestTooLarge {
        /// The limit in bytes.
        max_bytes: usize,
    },
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `insufficient_scope`: the client lacks a scope.
    LacksScope {
        /// The scope (one of ours).
        scope: &'static str,
    },
    /// `slow_down`.
    SlowDown,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `server_error`.
    ServerError,
    /// `invalid_scope`: more than the client was granted.
    ScopeNotGranted,
    /// `invalid_client`.
    AuthenticationFailed,
    /// The form is not UTF-8 or has a bad `%` escape.
    MalformedForm,
    /// No `grant_type`.
    GrantTypeMissing,
    /// A malformed `scope`.
    ScopeMalformed,
    /// No `token` (introspection, revocation).
    TokenMissing,
    /// A parameter repeated.
    ParameterRepeated {
        /// The parameter (one of ours).
        name: &'static str,
    },
    /// HTTP Basic and `client_secret` both.
    TwoAuthenticationMethods,
    /// `client_id` in the form is not the Basic one.
    ClientIdMismatch,
    /// `client_secret` without `client_id`.
    SecretWithoutId,
    /// No client authentication.
    AuthenticationRequired,
    /// Basic credentials that do not decode.
    MalformedBasic,
    /// An `Authorization` scheme other than Basic.
    UnsupportedScheme,
    /// Two `Authorization` headers.
    DuplicateAuthorization,
    /// A `Content-Length` that is no number.
    BadContentLength,
    /// The body broke off while it was read.
    BodyIncomplete,
    /// Not `application/x-www-form-urlencoded`.
    NotAForm,
    /// A `Content-Encoding`.
    ContentEncoding,
    /// 408: the body did not arrive in time.
    BodyTimeout {
        /// The deadline in seconds.
        seconds: u64,
    },
}

impl Message for OAuth {
    fn texts(&self) -> Texts {
        match self {
            Self::RequestTooLarge { max_bytes } => Texts::formatted(
                format!("der Request-Body darf höchstens {max_bytes} Bytes groß sein"),
                format!("the request body must not exceed {max_bytes} bytes"),
            ),
            Self::UnsupportedGrantType => Texts::fixed(
                "nur grant_type=client_credentials wird unterstützt",
                "only grant_type=client_credentials is supported",
            ),
            Self::LacksScope { scope } => Texts::formatted(
                format!("dem Client fehlt der Scope {scope}"),
                format!("the client lacks the scope {scope}"),
            ),
            Self::SlowDown => Texts::fixed(
                "zu viele fehlgeschlagene Anmeldeversuche; bitte später erneut versuchen",
                "too many failed authentication attempts; retry later",
            ),
            Self::TemporarilyUnavailable => Texts::fixed(
                "der Autorisierungsserver ist vorübergehend nicht verfügbar",
                "the authorization server is temporarily unavailable",
            ),
            Self::ServerError => Texts::fixed(
                "das Token konnte nicht ausgestellt werden",
                "the token could not be issued",
            ),
            Self::ScopeNotGranted => Texts::fixed(
                "der angefragte Scope geht über die Scopes hinaus, die dem Client gewährt sind",
                "the requested scope exceeds the scopes granted to the client",
            ),
            Self::AuthenticationFailed => Texts::fixed(
                "Client-Authentifizierung fehlgeschlagen",
                "client authentication failed",
            ),
            Self::MalformedForm => Texts::fixed(
                "der Formular-Body ist fehlerhaft (kein UTF-8 oder eine ungültige \
                 Prozentkodierung)",
                "the form body is malformed (not UTF-8 or a bad percent-encoding)",
            ),
            Self::GrantTypeMissing => Texts::fixed("grant_type fehlt", "grant_type is missing"),
            Self::ScopeMalformed => Texts::fixed("scope ist fehlerhaft", "scope is malformed"),
            Self::TokenMissing => Texts::fixed("token fehlt", "token is missing"),
            Self::ParameterRepeated { name } => Texts::formatted(
                format!("der Parameter {name} ist mehrfach angegeben"),
                format!("parameter {name} is repeated"),
            ),
            Self::TwoAuthenticationMethods => Texts::fixed(
                "mehr als eine Methode der Client-Authentifizierung verwendet",
                "more than one client authentication method used",
            ),
            Self::ClientIdMismatch => Texts::fixed(
                "client_id weicht vom authentifizierten Client ab",
                "client_id differs from the authenticated client",
            ),
            Self::SecretWithoutId => Texts::fixed(
                "client_secret ohne client_id",
                "client_secret without client_id",
            ),
            Self::AuthenticationRequired => Texts::fixed(
                "Client-Authentifizierung erforderlich (HTTP Basic oder client_id und \
                 client_secret)",
                "client authentication required (HTTP Basic or client_id and client_secret)",
            ),
            Self::MalformedBasic => Texts::fixed(
                "fehlerhafte HTTP-Basic-Zugangsdaten",
                "malformed HTTP Basic credentials",
            ),
            Self::UnsupportedScheme => Texts::fixed(
                "nicht unterstütztes Authentifizierungsschema; verwenden Sie HTTP Basic",
                "unsupported authentication scheme; use HTTP Basic",
            ),
            Self::DuplicateAuthorization => Texts::fixed(
                "mehr als ein Authorization-Header; senden Sie genau einen",
                "more than one Authorization header; send exactly one",
            ),
            Self::BadContentLength => Texts::fixed(
                "der Content-Length-Header ist fehlerhaft",
                "the Content-Length header is malformed",
            ),
            Self::BodyIncomplete => Texts::fixed(
                "der Request-Body konnte nicht vollständig gelesen werden",
                "the request body could not be read completely",
            ),
            Self::NotAForm => Texts::fixed(
                "der Request-Body muss application/x-www-form-urlencoded sein",
                "the body must be application/x-www-form-urlencoded",
            ),
            Self::ContentEncoding => Texts::fixed(
                "Content-Encoding wird nicht unterstützt; senden Sie das Formular unkomprimiert",
                "Content-Encoding is not supported; send the form uncompressed",
            ),
            Self::BodyTimeout { seconds } => Texts::formatted(
                format!(
                    "der Request-Body ist nicht innerhalb von {seconds} s nach den Headern \
                     angekommen"
                ),
                format!("the request body did not arrive within {seconds} s of the headers"),
            ),
        }
    }
}
