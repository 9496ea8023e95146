//! Storage ports of the authorization server, implemented by `vorgang-store`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Errors of a [`ClientStore`] or [`SigningKeyStore`] adapter. Never contains personal data, a
/// secret or a key: only the operation and the kind of failure.
///
/// The adapter maps its database errors to these three meanings, which is all the callers act on:
/// [`AuthError::is_unavailable`](crate::AuthError::is_unavailable) turns `Unavailable` into 503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error; the operation may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (a bug or a manual edit); retrying will not help.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A uniqueness rule was violated (an existing `client_id` or `kid`).
    #[error("conflict: {0}")]
    Conflict(String),
}

/// A registered partner client. `Debug` shows neither contact data nor the secret hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// Public client id (random, URL-safe).
    pub client_id: String,
    /// Argon2id PHC string of the client secret. Never the secret itself.
    pub secret_hash: String,
    /// Name of the contact person (personal data: never logged).
    pub name: String,
    /// E-mail of the contact person (personal data: never logged).
    pub email: String,
    /// Phone of the contact person (personal data: never logged).
    pub telefonnummer: String,
    /// The partner organisation.
    pub organisation: String,
    /// Scopes this client may request.
    pub scopes: Vec<String>,
    /// When revoked, if revoked: its tokens stop working at once.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When registered.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("client_id", &self.client_id)
            .field("organisation", &self.organisation)
            .field("scopes", &self.scopes)
            .field("revoked_at", &self.revoked_at)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Persistence of partner clients.
///
/// Error contract: [`StoreError::Unavailable`] when the database cannot be reached (callers answer
/// 503 or fail the CLI command), [`StoreError::Conflict`] when inserting an existing `client_id`.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Stores a new client.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// The client with this id, revoked or not.
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// All clients, oldest first.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Marks the client revoked at `at`. Returns `false` if there is no such client.
    async fn revoke_client(&self, client_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Replaces the secret hash. Returns `false` if there is no such client.
    async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError>;

    /// The revocation generation: a counter that every revocation (a client revoked, a token
    /// revoked) increases in the same transaction, whichever process or replica made it. Reading
    /// it is the cheap "has anything been revoked since?" check of the
    /// [`RevocationCache`](crate::revocation::RevocationCache).
    async fn revocation_generation(&self) -> Result<i64, StoreError>;

    /// Everything revoked: the ids of revoked clients and the `jti`s of revoked tokens that
    /// expire at or after `live_after` (Unix seconds; older ones are refused for their `exp`
    /// anyway).
    async fn revocations(&self, live_after: i64) -> Result<Revocations, StoreError>;

    /// Records a revoked token (increasing the generation). Revoking a `jti` twice is fine and
    /// keeps the first record.
    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError>;

    /// Deletes the records of revoked tokens that expired before `before` (Unix seconds): such
    /// a token is refused for its `exp`, its record is no longer needed. How many were deleted.
    async fn purge_revoked_tokens(&self, before: i64) -> Result<u64, StoreError>;
}

/// What [`ClientStore::revocations`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Ids of revoked clients.
    pub clients: Vec<String>,
    /// `jti`s of revoked tokens not yet expired.
    pub tokens: Vec<String>,
}

/// A token revoked through `POST /oauth2/revoke` (RFC 7009).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    /// Its `jti`.
    pub jti: String,
    /// The client it was issued to (the one that revoked it).
    pub client_id: String,
    /// Its `exp` (Unix seconds): the record is useless, and purged, after it.
    pub expires_at: i64,
    /// When it was revoked.
    pub revoked_at: DateTime<Utc>,
}

/// One signing key pair of our token issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id, the JWT `kid`.
    pub kid: String,
    /// JWS algorithm, e.g. `EdDSA`.
    pub algorithm: String,
    /// The private key (PKCS#8 DER), encrypted when a key-encryption key is configured.
    pub private_key: Vec<u8>,
    /// Whether `private_key` is encrypted.
    pub encrypted: bool,
    /// The public key (raw bytes as the algorithm defines them).
    pub public_key: Vec<u8>,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing (a newer key took over); it still verifies until its tokens expired.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Persistence of signing keys, shared by all replicas.
///
/// Error contract: [`StoreError::Unavailable`] when the database cannot be reached,
/// [`StoreError::Conflict`] when inserting an existing `kid`.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Stores a new key.
    async fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// All keys not retired before `retired_after` (i.e. the active one and those still
    /// verifying), newest first.
    async fn list_keys(
        &self,
        retired_after: DateTime<Utc>,
    ) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Marks every key other than `kid` that is not yet retired as retired at `at`.
    async fn retire_other_keys(&self, kid: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}
