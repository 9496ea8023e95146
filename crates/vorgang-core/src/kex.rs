//! The KEX import body, built from the typed request when the import is sent.

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

/// The KEX import body of import `id`: the partner's Vorgang unchanged (members, order, values),
/// plus the fields only the service sets: `kundenbetreuer.partnerId`, `tippgeber.partnerId`,
/// `eigeneVorgangsnummer` (our id) and `kommentare` ([`kex_kommentare`]).
///
/// A service-owned member the partner sent as `null` (the only value validation lets through)
/// is replaced in place; the others are appended. The map operations and their order are part
/// of the output (with `preserve_order`, `remove` moves the last member into the gap), so change
/// them only together with the body the API tests expect at the sandbox.
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
