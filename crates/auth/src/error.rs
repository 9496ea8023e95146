//! The error type of the management and issuing side of this crate.

use crate::ports::StoreError;

/// Errors of [`ClientRegistry`](crate::ClientRegistry), [`KeyRing`](crate::KeyRing),
/// [`TokenIssuer`](crate::TokenIssuer) and the secret functions.
///
/// Messages never contain a secret, a token or personal data: only field names, key ids and the
/// kind of failure.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The client or key store failed (database unreachable, corrupt row, conflict).
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    /// A value given to register a client was not acceptable; names the field, never the value.
    #[error("invalid {0}")]
    InvalidInput(&'static str),
    /// Argon2 could not hash a secret (invalid parameters or an internal error).
    #[error("secret hashing failed")]
    Hashing,
    /// A cryptographic operation (key generation, random numbers, encryption) failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// A stored signing key could not be decrypted or parsed: wrong or missing
    /// `key_encryption_key`, or a damaged row.
    #[error("signing key {kid} cannot be used: {reason}")]
    KeyUnusable {
        /// Key id of the key (public information).
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A token could not be signed.
    #[error("token signing failed")]
    Signing,
}

impl AuthError {
    /// Whether the failure is temporary (database unavailable): callers answer 503 rather than 500.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Store(StoreError::Unavailable(_)))
    }
}

/// Result alias of this crate.
pub type Result<T, E = AuthError> = std::result::Result<T, E>;
