//! The partner data rendered as one comment line for the Finanzierungsberater.

use crate::request::{CustomValue, PartnerDaten};

/// Renders `partner` as one readable comment line, e.g.
/// `Partnerdaten: Vertriebsschlüssel: X; Kundennummer: Y; filialId: 123`, or `None` when empty.
#[must_use]
pub fn render_partner_line(partner: &PartnerDaten) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(v) = &partner.vertriebsschluessel {
        parts.push(format!("Vertriebsschlüssel: {v}"));
    }
    if let Some(k) = &partner.kundennummer {
        parts.push(format!("Kundennummer: {k}"));
    }
    for entry in &partner.custom {
        let value = match &entry.value {
            CustomValue::Boolean(b) => b.to_string(),
            CustomValue::Integer(i) => i.to_string(),
            CustomValue::String(s) => s.clone(),
        };
        parts.push(format!("{}: {value}", entry.key));
    }
    (!parts.is_empty()).then(|| format!("Partnerdaten: {}", parts.join("; ")))
}
