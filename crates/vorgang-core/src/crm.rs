//! The built-in CRM id issuer.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::ports::{CrmError, CrmIds};
use crate::record::ImportRecord;

/// Issues `DKR-` + 8 characters derived from the import id: the same import always gets the same
/// kennung, so a resumed import does not get a second one.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinCrm;

const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

impl BuiltinCrm {
    /// The kennung of import `id`: `DKR-` and 8 characters of the SHA-256 of the id, in an
    /// alphabet without look-alikes (no `I`, `O`, `0`, `1`).
    #[must_use]
    pub fn kennung(id: uuid::Uuid) -> String {
        let digest = Sha256::digest(id.as_bytes());
        let mut bits: u64 = 0;
        for byte in &digest[..5] {
            bits = (bits << 8) | u64::from(*byte);
        }
        let mut kennung = String::with_capacity(12);
        kennung.push_str("DKR-");
        kennung.extend(
            (0..8).rev().map(|i| {
                char::from(ALPHABET[usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0)])
            }),
        );
        kennung
    }
}

#[async_trait]
impl CrmIds for BuiltinCrm {
    async fn crm_kennung(&self, import: &ImportRecord) -> Result<String, CrmError> {
        Ok(Self::kennung(import.id))
    }

    /// Computed from the id, in memory: the importer stores it with Europace's outcome.
    fn kennung_in_process(&self, import: &ImportRecord) -> Option<String> {
        Some(Self::kennung(import.id))
    }
}
