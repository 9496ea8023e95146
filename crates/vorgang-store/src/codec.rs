//! Conversions between the domain records and their stored columns, shared by both backends.
//!
//! Both backends select their columns with the same names and as the same Rust types (text, i64,
//! bytes, bool), so one row struct per table decodes either.

use auth::{ClientRecord, SigningKeyRecord};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vorgang_core::model::{
    Environment, ImportRequest, PartnerDaten, Tippgeber, render_partner_line,
};
use vorgang_core::{
    BodyChange, Failure, ImportChange, ImportRecord, ImportStatus, PendingEvent, SentTippgeber,
    StoreError, TippgeberAttribute, TippgeberMapping, WebhookEvent, WebhookTarget,
};

use crate::error::corrupt;

/// Stored form of a timestamp: RFC 3339, UTC (`Z`), exactly nine fractional digits.
///
/// Fixed width (for years 0000 to 9999), so comparing the text compares the instants, and
/// parsing it back gives the same `DateTime<Utc>` to the nanosecond.
pub(crate) fn encode_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Reads a timestamp stored by [`encode_time`].
pub(crate) fn decode_time(
    context: &'static str,
    column: &'static str,
    text: &str,
) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| corrupt(context, column))
}

fn decode_optional_time(
    context: &'static str,
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|text| decode_time(context, column, text))
        .transpose()
}

fn encode_json<T: serde::Serialize + ?Sized>(
    context: &'static str,
    column: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|_| StoreError::Corrupt(format!("{context}: cannot encode {column}")))
}

fn decode_json<T: serde::de::DeserializeOwned>(
    context: &'static str,
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt(context, column))
}

/// Parses a stored environment name.
pub(crate) fn decode_environment(
    context: &'static str,
    text: &str,
) -> Result<Environment, StoreError> {
    text.parse().map_err(|_| corrupt(context, "environment"))
}

/// The stored request body, current format: `{"format": 2, "request": <ImportRequest>}`.
///
/// The marker tells it from the format before (see [`decode_request`]), and keeps a build of
/// that time from misreading it: that build needs a top-level `vorgang` and fails such an
/// import ("stored request is missing or unreadable", nothing sent) instead of sending a body
/// without the comments it expects in its own format.
#[derive(Serialize)]
struct BodyOut<'a> {
    format: u32,
    request: &'a ImportRequest,
}

/// [`BodyOut`]'s `format`.
const BODY_FORMAT: u32 = 2;

/// Either stored format, read in one pass: format 2 has `format` and `request`; format 1
/// (`StoredRequest` of the builds before issue 9) has the other four members.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BodyIn {
    format: Option<u32>,
    request: Option<ImportRequest>,
    vorgang: Option<serde_json::Map<String, serde_json::Value>>,
    tippgeber: Option<Tippgeber>,
    /// Format 1: every comment as sent to Europace (`vorgang.kommentare`, the top-level ones,
    /// the partner line).
    kommentare: Option<Vec<String>>,
    partner: Option<serde_json::Value>,
}

/// Encodes a request body for `import_requests.body`.
pub(crate) fn encode_request(
    context: &'static str,
    request: &ImportRequest,
) -> Result<String, StoreError> {
    encode_json(
        context,
        "request",
        &BodyOut {
            format: BODY_FORMAT,
            request,
        },
    )
}

/// Decodes a stored request body of either format.
///
/// Format 1 stored the comments merged as sent to Europace; the top-level `kommentare` are what
/// remains after removing the leading `vorgang.kommentare` strings and the trailing partner line
/// (both can be computed from the other members), so the KEX body built from the decoded
/// request is the one the previous build would have sent. It had no `warnings` (they are in the
/// import's `messages` since it was accepted), so those decode empty. A format-1 body that does
/// not have this shape was not written by that build: corrupt.
pub(crate) fn decode_request(
    context: &'static str,
    text: &str,
) -> Result<ImportRequest, StoreError> {
    let body: BodyIn = decode_json(context, "request", text)?;
    match body {
        BodyIn {
            format: Some(BODY_FORMAT),
            request: Some(request),
            ..
        } => Ok(request),
        BodyIn {
            format: None,
            request: None,
            vorgang: Some(vorgang),
            tippgeber: Some(tippgeber),
            kommentare: Some(merged),
            partner,
        } => from_format_1(vorgang, tippgeber, &merged, partner)
            .ok_or_else(|| corrupt(context, "request")),
        _ => Err(corrupt(context, "request")),
    }
}

fn from_format_1(
    vorgang: serde_json::Map<String, serde_json::Value>,
    tippgeber: Tippgeber,
    merged: &[String],
    partner: Option<serde_json::Value>,
) -> Option<ImportRequest> {
    let partner: PartnerDaten = match partner {
        None | Some(serde_json::Value::Null) => PartnerDaten::default(),
        Some(value) => serde_json::from_value(value).ok()?,
    };
    let leading: Vec<&str> = match vorgang.get("kommentare") {
        Some(serde_json::Value::Array(items)) => {
            items.iter().filter_map(serde_json::Value::as_str).collect()
        }
        _ => Vec::new(),
    };
    let rest = merged.get(leading.len()..)?;
    if merged
        .iter()
        .zip(&leading)
        .any(|(stored, sent)| stored != sent)
    {
        return None;
    }
    let rest = match render_partner_line(&partner) {
        Some(line) => rest.strip_suffix(std::slice::from_ref(&line))?,
        None => rest,
    };
    let kommentare = rest.to_vec();
    Some(ImportRequest {
        vorgang,
        tippgeber,
        kommentare,
        partner,
        warnings: Vec::new(),
    })
}

/// An [`ImportRecord`] as bound to SQL parameters.
pub(crate) struct ImportParams {
    pub id: Uuid,
    pub client_id: String,
    pub environment: &'static str,
    pub status: &'static str,
    pub idempotency_key: Option<String>,
    pub fingerprint: String,
    pub request: Option<String>,
    pub tippgeber_externe_partner_id: String,
    pub tippgeber_partner_id: Option<String>,
    pub europace_vorgangsnummer: Option<String>,
    pub crm_kennung: Option<String>,
    pub messages: String,
    pub failure: Option<String>,
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl ImportParams {
    /// Encodes a record for `context` (a fixed phrase naming the operation).
    pub(crate) fn new(context: &'static str, record: &ImportRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: record.id,
            client_id: record.client_id.clone(),
            environment: record.environment.as_str(),
            status: record.status.as_str(),
            idempotency_key: record.idempotency_key.clone(),
            fingerprint: record.fingerprint.clone(),
            request: record
                .request
                .as_ref()
                .map(|request| encode_request(context, request))
                .transpose()?,
            tippgeber_externe_partner_id: record.tippgeber_externe_partner_id.clone(),
            tippgeber_partner_id: record.tippgeber_partner_id.clone(),
            europace_vorgangsnummer: record.europace_vorgangsnummer.clone(),
            crm_kennung: record.crm_kennung.clone(),
            messages: encode_json(context, "messages", &record.messages)?,
            failure: record
                .failure
                .as_ref()
                .map(|failure| encode_json(context, "failure", failure))
                .transpose()?,
            attempts: i64::from(record.attempts),
            created_at: encode_time(record.created_at),
            updated_at: encode_time(record.updated_at),
        })
    }
}

/// What a transition does with the request body, encoded.
pub(crate) enum BodyParam {
    /// Leave it (but move one a build before migration 0002 left in `imports.request`).
    Keep,
    /// Delete it.
    Drop,
    /// Write this body.
    Store(String),
}

/// An [`ImportChange`] as bound to SQL parameters (owned: SQLite's writer thread takes it).
pub(crate) struct ChangeParams {
    pub status: &'static str,
    pub tippgeber_partner_id: Option<String>,
    pub europace_vorgangsnummer: Option<String>,
    pub crm_kennung: Option<String>,
    pub messages: String,
    pub failure: Option<String>,
    pub attempts: i64,
    pub updated_at: String,
    pub body: BodyParam,
    /// The delivery bookkeeping to write (`notify`, `next_attempt_at`), if it changes.
    pub delivery: Option<(bool, Option<String>)>,
    /// The webhook event to write with the change.
    pub event: Option<EventParams>,
}

impl ChangeParams {
    /// Whether the change writes more than the common columns (delivery bookkeeping, an event):
    /// the backends run it as a transaction of its own, off their batched path.
    pub(crate) const fn is_rare(&self) -> bool {
        self.delivery.is_some() || self.event.is_some() || matches!(self.body, BodyParam::Store(_))
    }
}

/// A [`WebhookEvent`] as bound to SQL parameters (`INSERT_EVENT`).
pub(crate) struct EventParams {
    pub id: String,
    pub import_id: Uuid,
    pub client_id: String,
    pub event_type: &'static str,
    pub payload: String,
    pub created_at: String,
}

impl EventParams {
    fn new(event: &WebhookEvent) -> Self {
        Self {
            id: event.id.clone(),
            import_id: event.import_id,
            client_id: event.client_id.clone(),
            event_type: event.event_type.as_str(),
            payload: event.payload.clone(),
            created_at: encode_time(event.created_at),
        }
    }
}

impl ChangeParams {
    /// Encodes a change for `context` (a fixed phrase naming the operation).
    pub(crate) fn new(
        context: &'static str,
        change: &ImportChange<'_>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            status: change.status.as_str(),
            tippgeber_partner_id: change.tippgeber_partner_id.map(str::to_owned),
            europace_vorgangsnummer: change.europace_vorgangsnummer.map(str::to_owned),
            crm_kennung: change.crm_kennung.map(str::to_owned),
            messages: encode_json(context, "messages", change.messages)?,
            failure: change
                .failure
                .map(|failure| encode_json(context, "failure", failure))
                .transpose()?,
            attempts: i64::from(change.attempts),
            updated_at: encode_time(change.updated_at),
            body: match change.body {
                BodyChange::Keep => BodyParam::Keep,
                BodyChange::Drop => BodyParam::Drop,
                BodyChange::Store(request) => BodyParam::Store(encode_request(context, request)?),
            },
            delivery: change
                .delivery
                .map(|delivery| (delivery.notify, delivery.next_attempt_at.map(encode_time))),
            event: change.event.map(EventParams::new),
        })
    }
}

/// One row of `imports`, every column as text or integer.
#[derive(sqlx::FromRow)]
pub(crate) struct ImportRow {
    id: String,
    client_id: String,
    environment: String,
    status: String,
    idempotency_key: Option<String>,
    fingerprint: String,
    request: Option<String>,
    tippgeber_externe_partner_id: String,
    tippgeber_partner_id: Option<String>,
    europace_vorgangsnummer: Option<String>,
    crm_kennung: Option<String>,
    messages: String,
    failure: Option<String>,
    attempts: i64,
    created_at: String,
    updated_at: String,
    notify: bool,
    next_attempt_at: Option<String>,
}

impl ImportRow {
    /// Decodes the row into the record it stores.
    pub(crate) fn into_record(self) -> Result<ImportRecord, StoreError> {
        const CONTEXT: &str = "read import";
        Ok(ImportRecord {
            id: Uuid::parse_str(&self.id).map_err(|_| corrupt(CONTEXT, "id"))?,
            client_id: self.client_id,
            environment: decode_environment(CONTEXT, &self.environment)?,
            status: self
                .status
                .parse::<ImportStatus>()
                .map_err(|_| corrupt(CONTEXT, "status"))?,
            idempotency_key: self.idempotency_key,
            fingerprint: self.fingerprint,
            request: self
                .request
                .as_deref()
                .map(|text| decode_request(CONTEXT, text))
                .transpose()?,
            tippgeber_externe_partner_id: self.tippgeber_externe_partner_id,
            tippgeber_partner_id: self.tippgeber_partner_id,
            europace_vorgangsnummer: self.europace_vorgangsnummer,
            crm_kennung: self.crm_kennung,
            messages: decode_json(CONTEXT, "messages", &self.messages)?,
            failure: self
                .failure
                .as_deref()
                .map(|text| decode_json::<Failure>(CONTEXT, "failure", text))
                .transpose()?,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt(CONTEXT, "attempts"))?,
            created_at: decode_time(CONTEXT, "created_at", &self.created_at)?,
            updated_at: decode_time(CONTEXT, "updated_at", &self.updated_at)?,
            notify: self.notify,
            next_attempt_at: decode_optional_time(
                CONTEXT,
                "next_attempt_at",
                self.next_attempt_at.as_deref(),
            )?,
        })
    }
}

/// One row of `webhook_outbox` as claimed.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: String,
    client_id: String,
    payload: String,
    created_at: String,
    attempts: i64,
}

impl EventRow {
    /// Decodes the row into the event it stores.
    pub(crate) fn into_event(self) -> Result<PendingEvent, StoreError> {
        const CONTEXT: &str = "read webhook event";
        Ok(PendingEvent {
            id: self.id,
            client_id: self.client_id,
            payload: self.payload,
            created_at: decode_time(CONTEXT, "created_at", &self.created_at)?,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt(CONTEXT, "attempts"))?,
        })
    }
}

/// The webhook columns of one row of `clients`.
#[derive(sqlx::FromRow)]
pub(crate) struct WebhookRow {
    webhook_url: Option<String>,
    webhook_secret: Option<Vec<u8>>,
    webhook_secret_encrypted: Option<bool>,
}

impl WebhookRow {
    /// The client's webhook, if it has one.
    pub(crate) fn into_target(self) -> Result<Option<WebhookTarget>, StoreError> {
        const CONTEXT: &str = "read webhook";
        match (self.webhook_url, self.webhook_secret) {
            (None, _) => Ok(None),
            (Some(url), Some(sealed_secret)) => Ok(Some(WebhookTarget {
                url,
                sealed_secret,
                encrypted: self.webhook_secret_encrypted.unwrap_or(false),
            })),
            (Some(_), None) => Err(corrupt(CONTEXT, "webhook_secret")),
        }
    }
}

/// The stored form of what was last sent to a Tippgeber's partner (`sent_fingerprints`): a JSON
/// object from attribute name to fingerprint, `NULL` when nothing is known to be sent.
pub(crate) fn encode_sent(sent: &SentTippgeber) -> Result<Option<String>, StoreError> {
    if sent.is_empty() {
        return Ok(None);
    }
    let object: serde_json::Map<String, serde_json::Value> = sent
        .iter()
        .map(|(attribute, fingerprint)| {
            (
                attribute.as_str().to_owned(),
                serde_json::Value::String(fingerprint.to_owned()),
            )
        })
        .collect();
    encode_json("save tippgeber partner", "sent_fingerprints", &object).map(Some)
}

/// One row of `tippgeber_partners`.
#[derive(sqlx::FromRow)]
pub(crate) struct TippgeberRow {
    partner_id: String,
    sent_fingerprints: Option<String>,
}

impl TippgeberRow {
    /// Decodes the row into the mapping it stores. An attribute this build does not know (one a
    /// later build keeps current) is skipped: that build's rows stay readable during a rollout.
    pub(crate) fn into_mapping(self) -> Result<TippgeberMapping, StoreError> {
        const CONTEXT: &str = "read tippgeber partner";
        let mut sent = SentTippgeber::default();
        if let Some(text) = &self.sent_fingerprints {
            let object: std::collections::BTreeMap<String, String> =
                decode_json(CONTEXT, "sent_fingerprints", text)?;
            for (name, fingerprint) in object {
                if let Some(attribute) = TippgeberAttribute::parse(&name) {
                    sent.set_fingerprint(attribute, fingerprint);
                }
            }
        }
        Ok(TippgeberMapping {
            partner_id: self.partner_id,
            sent,
        })
    }
}

/// A [`ClientRecord`] as bound to SQL parameters.
pub(crate) struct ClientParams {
    pub scopes: String,
    pub revoked_at: Option<String>,
    pub created_at: String,
}

impl ClientParams {
    /// Encodes the columns of a client that are not stored as they are.
    pub(crate) fn new(client: &ClientRecord) -> Result<Self, StoreError> {
        Ok(Self {
            scopes: encode_json("insert client", "scopes", &client.scopes)?,
            revoked_at: client.revoked_at.map(encode_time),
            created_at: encode_time(client.created_at),
        })
    }
}

/// One row of `clients`.
#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    client_id: String,
    secret_hash: String,
    name: String,
    email: String,
    telefonnummer: String,
    organisation: String,
    scopes: String,
    revoked_at: Option<String>,
    created_at: String,
}

impl ClientRow {
    /// Decodes the row into the client it stores.
    pub(crate) fn into_record(self) -> Result<ClientRecord, StoreError> {
        const CONTEXT: &str = "read client";
        Ok(ClientRecord {
            client_id: self.client_id,
            secret_hash: self.secret_hash,
            name: self.name,
            email: self.email,
            telefonnummer: self.telefonnummer,
            organisation: self.organisation,
            scopes: decode_json(CONTEXT, "scopes", &self.scopes)?,
            revoked_at: decode_optional_time(CONTEXT, "revoked_at", self.revoked_at.as_deref())?,
            created_at: decode_time(CONTEXT, "created_at", &self.created_at)?,
        })
    }
}

/// One row of `signing_keys`.
#[derive(sqlx::FromRow)]
pub(crate) struct SigningKeyRow {
    kid: String,
    algorithm: String,
    private_key: Vec<u8>,
    encrypted: bool,
    public_key: Vec<u8>,
    created_at: String,
    retired_at: Option<String>,
}

impl SigningKeyRow {
    /// Decodes the row into the key it stores.
    pub(crate) fn into_record(self) -> Result<SigningKeyRecord, StoreError> {
        const CONTEXT: &str = "read signing key";
        Ok(SigningKeyRecord {
            kid: self.kid,
            algorithm: self.algorithm,
            private_key: self.private_key,
            encrypted: self.encrypted,
            public_key: self.public_key,
            created_at: decode_time(CONTEXT, "created_at", &self.created_at)?,
            retired_at: decode_optional_time(CONTEXT, "retired_at", self.retired_at.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_round_trip_to_the_nanosecond_and_sort_as_text() {
        let early = Utc.timestamp_opt(1_700_000_000, 5).unwrap();
        let late = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let (early_text, late_text) = (encode_time(early), encode_time(late));
        assert_eq!(early_text, "2023-11-14T22:13:20.000000005Z");
        assert_eq!(early_text.len(), late_text.len());
        assert!(early_text < late_text);
        assert_eq!(decode_time("t", "c", &early_text).unwrap(), early);
        assert_eq!(decode_time("t", "c", &late_text).unwrap(), late);
    }

    #[test]
    fn corrupt_values_are_not_echoed() {
        let err = decode_time("read import", "created_at", "Max Mustermann").unwrap_err();
        assert!(!err.to_string().contains("Mustermann"));
    }
}
