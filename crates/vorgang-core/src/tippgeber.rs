//! Keeping a Tippgeber current in Europace Partnermanagement: what was last sent for it, and
//! what a new request changes (docs/reference/import-states.md, step 2).
//!
//! Partners send the Tippgeber with every import; Partnermanagement keeps the partner it was
//! created as. When the data changes (a new phone number, a new surname), the changed attributes
//! are sent with a `PATCH` before the import. To know what changed, the service remembers per
//! Tippgeber partner what it last sent, as one **fingerprint per attribute**, never the values:
//! the diff only needs to know *whether* an attribute differs, and the new value comes with the
//! request. So the database holds no readable name, phone number or e-mail address of a
//! Tippgeber once its imports have finished (docs/privacy.md).
//!
//! A fingerprint is SHA-256 over the environment, the `externePartnerId`, the Europace partnerId,
//! the attribute's name and its value as sent. The partnerId is part of it so that a mapping
//! replaced by another partnerId (a partner recreated at Europace) never passes for "already
//! sent" to the new partner. A fingerprint is not anonymous: whoever guesses a value can confirm
//! it, so it is still treated as personal data (pseudonymous).

use std::fmt;

use sha2::{Digest, Sha256};
use vorgang_model::{Anrede, Environment, Tippgeber};

/// The message an import carries when the Tippgeber's changed data could not be sent to
/// Partnermanagement: the import went on with the partner as it was (docs/reference/import-states.md).
pub const TIPPGEBER_NOT_UPDATED: &str = "WARN tippgeber-not-updated";

/// One attribute of a Tippgeber that the service keeps current in Partnermanagement, by its name
/// in our API (the adapter maps it to Europace's: `telefon` is `telefonnummer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TippgeberAttribute {
    /// `anrede` (`HERR`, `FRAU`).
    Anrede,
    /// `vorname`.
    Vorname,
    /// `nachname`.
    Nachname,
    /// `telefon` (Europace: `telefonnummer`).
    Telefon,
    /// `email`.
    Email,
}

impl TippgeberAttribute {
    /// Every attribute, in the order above.
    pub const ALL: [Self; 5] = [
        Self::Anrede,
        Self::Vorname,
        Self::Nachname,
        Self::Telefon,
        Self::Email,
    ];

    /// Its name in our API: `anrede`, `vorname`, `nachname`, `telefon`, `email`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Anrede => "anrede",
            Self::Vorname => "vorname",
            Self::Nachname => "nachname",
            Self::Telefon => "telefon",
            Self::Email => "email",
        }
    }

    /// The attribute named `name` (as [`Self::as_str`] spells it).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Europace's spelling of an [`Anrede`]; the value an `anrede` fingerprint is made of.
#[must_use]
pub const fn anrede_wire(anrede: Anrede) -> &'static str {
    match anrede {
        Anrede::Herr => "HERR",
        Anrede::Frau => "FRAU",
    }
}

/// What was last sent to Partnermanagement for one Tippgeber partner: a fingerprint per
/// attribute (none for an attribute never sent). Kept with its [`TippgeberMapping`].
///
/// The empty value (the [`Default`]) means "nothing known to be sent": a mapping stored by a
/// build before Tippgeber updates, or a partner found at Europace rather than created by us.
/// Every attribute a request carries then counts as changed, so the first import brings the
/// partner up to date.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SentTippgeber {
    fingerprints: [Option<String>; 5],
}

impl SentTippgeber {
    /// The fingerprint stored for `attribute`, if it was ever sent.
    #[must_use]
    pub fn fingerprint(&self, attribute: TippgeberAttribute) -> Option<&str> {
        self.fingerprints[attribute.index()].as_deref()
    }

    /// Sets the fingerprint of `attribute` (for a store decoding what it wrote).
    pub fn set_fingerprint(&mut self, attribute: TippgeberAttribute, fingerprint: String) {
        self.fingerprints[attribute.index()] = Some(fingerprint);
    }

    /// The attributes with a fingerprint and their fingerprints, in [`TippgeberAttribute::ALL`]
    /// order (for a store encoding it).
    pub fn iter(&self) -> impl Iterator<Item = (TippgeberAttribute, &str)> {
        TippgeberAttribute::ALL
            .into_iter()
            .filter_map(|a| self.fingerprint(a).map(|fingerprint| (a, fingerprint)))
    }

    /// Whether nothing is known to have been sent.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fingerprints.iter().all(Option::is_none)
    }
}

/// Names the attributes only: fingerprints are personal data too (pseudonymous).
impl fmt::Debug for SentTippgeber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|(attribute, _)| attribute.as_str()))
            .finish()
    }
}

/// A Tippgeber's Europace partner as the service knows it: the partnerId of
/// `{client_id}-{externeMitarbeiternummer}` under the environment's Tippgeber parent, and what
/// was last sent to that partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TippgeberMapping {
    /// Europace partnerId.
    pub partner_id: String,
    /// What was last sent (created with, or updated to).
    pub sent: SentTippgeber,
}

impl TippgeberMapping {
    /// A mapping of `partner_id` with nothing known to be sent (a partner found at Europace).
    #[must_use]
    pub fn found(partner_id: impl Into<String>) -> Self {
        Self {
            partner_id: partner_id.into(),
            sent: SentTippgeber::default(),
        }
    }

    /// A mapping of `partner_id` just created (or found by its creation, Europace's 205, which
    /// updates it) with every attribute of `tippgeber` that the partner sent.
    #[must_use]
    pub fn created(
        environment: Environment,
        externe_partner_id: &str,
        partner_id: impl Into<String>,
        tippgeber: &Tippgeber,
    ) -> Self {
        let mut mapping = Self::found(partner_id);
        mapping.record_sent(
            environment,
            externe_partner_id,
            &TippgeberUpdate::all_of(tippgeber),
        );
        mapping
    }

    /// The fingerprint of `value` sent as `attribute` to this mapping's partner.
    fn fingerprint(
        &self,
        environment: Environment,
        externe_partner_id: &str,
        attribute: TippgeberAttribute,
        value: &str,
    ) -> String {
        let mut hasher = Sha256::new();
        for part in [
            "drkleinrk-tippgeber-v1",
            environment.as_str(),
            externe_partner_id,
            &self.partner_id,
            attribute.as_str(),
            value,
        ] {
            // Length-prefixed: no two different sequences of parts hash the same input.
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hex(&hasher.finalize())
    }

    /// Remembers that the attributes of `update` were sent to this partner.
    pub fn record_sent(
        &mut self,
        environment: Environment,
        externe_partner_id: &str,
        update: &TippgeberUpdate,
    ) {
        for attribute in TippgeberAttribute::ALL {
            if let Some(value) = update.value(attribute) {
                let fingerprint =
                    self.fingerprint(environment, externe_partner_id, attribute, value);
                self.sent.set_fingerprint(attribute, fingerprint);
            }
        }
    }
}

/// The attributes of a Tippgeber to send to its partner with a `PATCH`: the new values of those
/// that changed since they were last sent, nothing else.
///
/// An attribute the partner leaves out of a request is not a change: Partnermanagement keeps
/// what it has (a `PATCH` with an empty string would delete it, and a partner that sends the
/// phone number only sometimes must not erase it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TippgeberUpdate {
    /// New `anrede`.
    pub anrede: Option<Anrede>,
    /// New `vorname`.
    pub vorname: Option<String>,
    /// New `nachname`.
    pub nachname: Option<String>,
    /// New `telefon` (Europace: `telefonnummer`).
    pub telefon: Option<String>,
    /// New `email`.
    pub email: Option<String>,
}

impl TippgeberUpdate {
    /// The attributes of `tippgeber` whose value differs from what was last sent to `mapping`'s
    /// partner (all it carries, if nothing is known to be sent).
    #[must_use]
    pub fn between(
        environment: Environment,
        externe_partner_id: &str,
        mapping: &TippgeberMapping,
        tippgeber: &Tippgeber,
    ) -> Self {
        let mut update = Self::all_of(tippgeber);
        for attribute in TippgeberAttribute::ALL {
            let unchanged = update.value(attribute).is_some_and(|value| {
                mapping.sent.fingerprint(attribute)
                    == Some(
                        mapping
                            .fingerprint(environment, externe_partner_id, attribute, value)
                            .as_str(),
                    )
            });
            if unchanged {
                update.clear(attribute);
            }
        }
        update
    }

    /// Every attribute the partner sent in `tippgeber` (what a creation sends).
    #[must_use]
    pub fn all_of(tippgeber: &Tippgeber) -> Self {
        Self {
            anrede: tippgeber.anrede,
            vorname: Some(tippgeber.vorname.clone()),
            nachname: Some(tippgeber.nachname.clone()),
            telefon: tippgeber.telefon.clone(),
            email: tippgeber.email.clone(),
        }
    }

    /// Leaves `attribute` out of the update.
    fn clear(&mut self, attribute: TippgeberAttribute) {
        match attribute {
            TippgeberAttribute::Anrede => self.anrede = None,
            TippgeberAttribute::Vorname => self.vorname = None,
            TippgeberAttribute::Nachname => self.nachname = None,
            TippgeberAttribute::Telefon => self.telefon = None,
            TippgeberAttribute::Email => self.email = None,
        }
    }

    /// The new value of `attribute`, as sent (`anrede` in Europace's spelling); `None` when it
    /// is not part of the update.
    #[must_use]
    pub fn value(&self, attribute: TippgeberAttribute) -> Option<&str> {
        match attribute {
            TippgeberAttribute::Anrede => self.anrede.map(anrede_wire),
            TippgeberAttribute::Vorname => self.vorname.as_deref(),
            TippgeberAttribute::Nachname => self.nachname.as_deref(),
            TippgeberAttribute::Telefon => self.telefon.as_deref(),
            TippgeberAttribute::Email => self.email.as_deref(),
        }
    }

    /// The attributes of the update, in [`TippgeberAttribute::ALL`] order.
    pub fn attributes(&self) -> impl Iterator<Item = TippgeberAttribute> + '_ {
        TippgeberAttribute::ALL
            .into_iter()
            .filter(|&a| self.value(a).is_some())
    }

    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.attributes().next().is_none()
    }
}

/// Names the attributes only, never their values (personal data of the partner's employee):
/// an update can be logged as `{"telefon"}`.
impl fmt::Debug for TippgeberUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.attributes().map(TippgeberAttribute::as_str))
            .finish()
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: Environment = Environment::Test;
    const EXTERNE: &str = "client-a-42";

    fn tippgeber() -> Tippgeber {
        Tippgeber {
            externe_mitarbeiternummer: "42".into(),
            vorname: "Erika".into(),
            nachname: "Musterfrau".into(),
            anrede: Some(Anrede::Frau),
            telefon: Some("030 1".into()),
            email: None,
        }
    }

    fn attributes(update: &TippgeberUpdate) -> Vec<&'static str> {
        update
            .attributes()
            .map(TippgeberAttribute::as_str)
            .collect()
    }

    #[test]
    fn nothing_known_sent_means_every_attribute_sent_changes() {
        let update =
            TippgeberUpdate::between(ENV, EXTERNE, &TippgeberMapping::found("TG1"), &tippgeber());
        assert_eq!(
            attributes(&update),
            ["anrede", "vorname", "nachname", "telefon"]
        );
        assert_eq!(update.value(TippgeberAttribute::Anrede), Some("FRAU"));
        assert_eq!(update.email, None, "not sent: no change");
    }

    #[test]
    fn after_creation_only_a_changed_attribute_is_an_update() {
        let mut mapping = TippgeberMapping::created(ENV, EXTERNE, "TG1", &tippgeber());
        assert!(TippgeberUpdate::between(ENV, EXTERNE, &mapping, &tippgeber()).is_empty());

        let changed = Tippgeber {
            telefon: Some("030 2".into()),
            email: Some("e@example.org".into()),
            ..tippgeber()
        };
        let update = TippgeberUpdate::between(ENV, EXTERNE, &mapping, &changed);
        assert_eq!(attributes(&update), ["telefon", "email"]);
        assert_eq!(update.telefon.as_deref(), Some("030 2"));

        // Left out is not a change; once recorded, the new values are what was sent.
        mapping.record_sent(ENV, EXTERNE, &update);
        assert!(TippgeberUpdate::between(ENV, EXTERNE, &mapping, &changed).is_empty());
        let without_phone = Tippgeber {
            telefon: None,
            ..changed.clone()
        };
        assert!(TippgeberUpdate::between(ENV, EXTERNE, &mapping, &without_phone).is_empty());
        let back = TippgeberUpdate::between(ENV, EXTERNE, &mapping, &tippgeber());
        assert_eq!(attributes(&back), ["telefon"], "back to the old number");
        let herr = Tippgeber {
            anrede: Some(Anrede::Herr),
            ..changed
        };
        assert_eq!(
            attributes(&TippgeberUpdate::between(ENV, EXTERNE, &mapping, &herr)),
            ["anrede"]
        );
    }

    #[test]
    fn fingerprints_are_per_partner_environment_and_tippgeber() {
        let mapping = TippgeberMapping::created(ENV, EXTERNE, "TG1", &tippgeber());
        // The same fingerprints under another partnerId (a recreated partner), environment or
        // externePartnerId do not count as sent.
        let moved = TippgeberMapping {
            partner_id: "TG2".into(),
            ..mapping.clone()
        };
        assert_eq!(
            TippgeberUpdate::between(ENV, EXTERNE, &moved, &tippgeber()),
            TippgeberUpdate::between(ENV, EXTERNE, &TippgeberMapping::found("TG2"), &tippgeber())
        );
        assert!(
            !TippgeberUpdate::between(Environment::Production, EXTERNE, &mapping, &tippgeber())
                .is_empty()
        );
        assert!(!TippgeberUpdate::between(ENV, "client-b-42", &mapping, &tippgeber()).is_empty());
        // Another attribute with the same value is another fingerprint.
        let same = Tippgeber {
            vorname: "X".into(),
            nachname: "X".into(),
            ..tippgeber()
        };
        let sent = TippgeberMapping::created(ENV, EXTERNE, "TG1", &same).sent;
        assert_ne!(
            sent.fingerprint(TippgeberAttribute::Vorname),
            sent.fingerprint(TippgeberAttribute::Nachname)
        );
        assert_eq!(
            sent.fingerprint(TippgeberAttribute::Vorname).map(str::len),
            Some(64)
        );
    }

    #[test]
    fn debug_names_attributes_never_values() {
        let mapping = TippgeberMapping::created(ENV, EXTERNE, "TG1", &tippgeber());
        let update =
            TippgeberUpdate::between(ENV, EXTERNE, &TippgeberMapping::found("TG1"), &tippgeber());
        for shown in [format!("{mapping:?}"), format!("{update:?}")] {
            assert!(shown.contains("telefon"), "{shown}");
            for value in ["Erika", "Musterfrau", "030 1", "FRAU"] {
                assert!(!shown.contains(value), "{shown}");
            }
        }
        assert_eq!(
            format!("{:?}", TippgeberUpdate::default()),
            "{}",
            "an empty update"
        );
    }

    #[test]
    fn attribute_names_round_trip() {
        for attribute in TippgeberAttribute::ALL {
            assert_eq!(
                TippgeberAttribute::parse(attribute.as_str()),
                Some(attribute)
            );
        }
        assert_eq!(TippgeberAttribute::parse("telefonnummer"), None);
    }
}
