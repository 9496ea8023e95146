//! The KEX import body, built from the typed request when the import is sent.

use serde::ser::{Serialize, SerializeMap, Serializer};
use uuid::Uuid;
use vorgang_model::{ImportRequest, render_partner_line};

/// Every comment sent to Europace, in this order: `vorgang.kommentare` as the partner sent them,
/// then the top-level `kommentare`, then the partner line (see [`render_partner_line`]).
///
/// KEX has one comment list and no field for the partner's own data, so the three sources meet
/// here. Non-string entries of `vorgang.kommentare` are left out (validation refuses them; a
/// `null` list or entry means absent).
#[must_use]
pub fn kex_kommentare(request: &ImportRequest) -> Vec<String> {
    let mut kommentare: Vec<String> = match request.vorgang.get("kommentare") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    kommentare.extend(request.kommentare.iter().cloned());
    kommentare.extend(render_partner_line(&request.partner));
    kommentare
}

/// The KEX import body of import `id` as a JSON value: the partner's Vorgang unchanged (members,
/// order, values), plus the fields only the service sets: `kundenbetreuer.partnerId`,
/// `tippgeber.partnerId`, `eigeneVorgangsnummer` (our id) and `kommentare` ([`kex_kommentare`]).
///
/// A service-owned member the partner sent as `null` (the only value validation lets through)
/// is replaced in place; the others are appended. The map operations and their order are part
/// of the output (with `preserve_order`, `remove` moves the last member into the gap), so change
/// them only together with the body the API tests expect at the sandbox, and with
/// [`KexBody::build`], which writes the same text without building this value.
#[must_use]
pub fn kex_body(
    request: &ImportRequest,
    id: Uuid,
    kundenbetreuer_partner_id: &str,
    tippgeber_partner_id: &str,
) -> serde_json::Value {
    let mut body = request.vorgang.clone();
    // Only the service sets these; validation refuses them unless they are `null`, which
    // means absent: never forward such a placeholder.
    if body
        .get("bearbeiter")
        .is_some_and(serde_json::Value::is_null)
    {
        body.remove("bearbeiter");
    }
    body.insert(
        "kundenbetreuer".into(),
        serde_json::json!({ "partnerId": kundenbetreuer_partner_id }),
    );
    body.insert(
        "tippgeber".into(),
        serde_json::json!({ "partnerId": tippgeber_partner_id }),
    );
    body.insert(
        "eigeneVorgangsnummer".into(),
        serde_json::Value::String(id.to_string()),
    );
    let kommentare = kex_kommentare(request);
    if kommentare.is_empty() {
        body.remove("kommentare");
    } else {
        body.insert("kommentare".into(), serde_json::json!(kommentare));
    }
    serde_json::Value::Object(body)
}

/// The KEX import body as the JSON text sent to Europace: [`kex_body`], serialised once.
///
/// [`KexBody::build`] writes the text straight from the request: the Vorgang's members are
/// borrowed, not copied into a new map, and nothing is serialised twice (the adapter sends these
/// bytes as they are, also when it sends once more after a 401).
///
/// `Debug` shows the length only: the body holds personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct KexBody(Vec<u8>);

impl KexBody {
    /// The body of import `id` (see [`kex_body`] for what it contains): byte for byte what
    /// `serde_json::to_vec(&kex_body(…))` writes, member order included.
    ///
    /// # Errors
    /// Only if serde_json fails to write a value it holds, which it does not for text, numbers,
    /// booleans, arrays and objects; kept as an error rather than a panic on the request path.
    pub fn build(
        request: &ImportRequest,
        id: Uuid,
        kundenbetreuer_partner_id: &str,
        tippgeber_partner_id: &str,
    ) -> Result<Self, serde_json::Error> {
        let mut id_text = Uuid::encode_buffer();
        let id_text: &str = id.hyphenated().encode_lower(&mut id_text);
        let kommentare = kex_kommentare(request);
        let mut members: Vec<(&str, Member<'_>)> = request
            .vorgang
            .iter()
            .map(|(key, value)| (key.as_str(), Member::Sent(value)))
            .collect();
        // The operations of `kex_body`, in its order, on a list that behaves like its map:
        // replacing keeps a member's position, removing moves the last member into the gap.
        if matches!(
            find(&members, "bearbeiter").map(|i| &members[i].1),
            Some(Member::Sent(serde_json::Value::Null))
        ) {
            remove(&mut members, "bearbeiter");
        }
        set(
            &mut members,
            "kundenbetreuer",
            Member::PartnerId(kundenbetreuer_partner_id),
        );
        set(
            &mut members,
            "tippgeber",
            Member::PartnerId(tippgeber_partner_id),
        );
        set(&mut members, "eigeneVorgangsnummer", Member::Text(id_text));
        if kommentare.is_empty() {
            remove(&mut members, "kommentare");
        } else {
            set(&mut members, "kommentare", Member::Texts(&kommentare));
        }
        // The published example gives about 2 KiB.
        let mut bytes = Vec::with_capacity(4096);
        serde_json::to_writer(&mut bytes, &Members(&members))?;
        Ok(Self(bytes))
    }

    /// A body from a JSON value as it is, e.g. for an adapter's tests: the use case builds
    /// its bodies with [`Self::build`].
    ///
    /// # Errors
    /// As [`Self::build`].
    pub fn from_value(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(value).map(Self)
    }

    /// The JSON text.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text, owned.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl std::fmt::Debug for KexBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KexBody({} bytes)", self.0.len())
    }
}

/// One member of the body: as the partner sent it, or set by the service.
enum Member<'a> {
    Sent(&'a serde_json::Value),
    /// `{"partnerId": …}`
    PartnerId(&'a str),
    Text(&'a str),
    Texts(&'a [String]),
}

impl Serialize for Member<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Sent(value) => value.serialize(serializer),
            Self::PartnerId(id) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("partnerId", id)?;
                map.end()
            }
            Self::Text(text) => serializer.serialize_str(text),
            Self::Texts(texts) => texts.serialize(serializer),
        }
    }
}

/// The members as one JSON object, in list order.
struct Members<'m, 'a>(&'m [(&'a str, Member<'a>)]);

impl Serialize for Members<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

fn find(members: &[(&str, Member<'_>)], key: &str) -> Option<usize> {
    members.iter().position(|(k, _)| *k == key)
}

/// `Map::insert` with `preserve_order`: in place if present, else appended.
fn set<'a>(members: &mut Vec<(&'a str, Member<'a>)>, key: &'a str, value: Member<'a>) {
    match find(members, key) {
        Some(index) => members[index].1 = value,
        None => members.push((key, value)),
    }
}

/// `Map::remove` with `preserve_order` (a swap-remove): the last member takes the gap.
fn remove(members: &mut Vec<(&str, Member<'_>)>, key: &str) {
    if let Some(index) = find(members, key) {
        members.swap_remove(index);
    }
}
