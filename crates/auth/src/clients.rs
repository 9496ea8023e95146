//! Partner clients: registration, listing, revocation, secret rotation and authentication.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use validator::{Validate, ValidationError};

use crate::IMPORT_SCOPE;
use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::ports::{ClientRecord, ClientStore};
use crate::revocation::{DEFAULT_MAX_STALENESS, RevocationCache};
use crate::secret::{SecretHasher, generate_client_id, generate_client_secret};

/// Longest accepted client id or secret: longer ones cannot be ours and are rejected before
/// any hashing.
pub const MAX_CREDENTIAL_LEN: usize = 256;

/// Longest accepted contact field (name, e-mail, phone, organisation), in characters.
pub const MAX_FIELD_LEN: usize = 256;

/// What is needed to register a partner client (`clients add`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NewClient {
    /// Contact person.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// Contact phone.
    pub telefonnummer: String,
    /// Partner organisation.
    pub organisation: String,
    /// Scopes the client may request; empty means the default, [`IMPORT_SCOPE`].
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for NewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Contact fields are personal data.
        f.debug_struct("NewClient")
            .field("organisation", &self.organisation)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The outcome of checking client credentials, for logging and throttling. Only
/// [`Authenticated`](Self::Authenticated) means success; the caller must answer the three
/// failures alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Id and secret match an active client.
    Authenticated(ClientRecord),
    /// No client has this id.
    UnknownClient,
    /// The client exists but is revoked (whether the secret matched is not told).
    Revoked,
    /// The client exists, the secret is wrong.
    WrongSecret,
}

/// Whether `token` is a valid OAuth scope token (RFC 6749 §3.3: printable ASCII except space,
/// `"` and `\`).
#[must_use]
pub fn is_valid_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Registers and authenticates partner clients over a [`ClientStore`].
#[derive(Clone)]
pub struct ClientRegistry {
    store: Arc<dyn ClientStore>,
    clock: Arc<dyn Clock>,
    hasher: SecretHasher,
    revocations: Arc<RevocationCache>,
}

impl std::fmt::Debug for ClientRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistry")
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}

impl ClientRegistry {
    /// A registry hashing with [`SecretHasher::owasp`].
    #[must_use]
    pub fn new(store: Arc<dyn ClientStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_hasher(store, clock, SecretHasher::owasp())
    }

    /// A registry with another hasher (tests: [`SecretHasher::with_cost`]).
    #[must_use]
    pub fn with_hasher(
        store: Arc<dyn ClientStore>,
        clock: Arc<dyn Clock>,
        hasher: SecretHasher,
    ) -> Self {
        let revocations = Arc::new(RevocationCache::new(
            store.clone(),
            clock.clone(),
            DEFAULT_MAX_STALENESS,
        ));
        Self {
            store,
            clock,
            hasher,
            revocations,
        }
    }

    /// The same registry with a revocation cache whose checks use a view at most
    /// `max_staleness` old (default [`DEFAULT_MAX_STALENESS`]; zero: read the database on every
    /// check). Every process on one database should use the same bound: a revocation waits out
    /// its own process's bound before it returns.
    #[must_use]
    pub fn with_revocation_staleness(mut self, max_staleness: Duration) -> Self {
        self.revocations = Arc::new(RevocationCache::new(
            self.store.clone(),
            self.clock.clone(),
            max_staleness,
        ));
        self
    }

    /// The revocation cache behind [`is_active`](Self::is_active) and
    /// [`is_token_active`](Self::is_token_active) (e.g. to start its background refresher).
    #[must_use]
    pub fn revocations(&self) -> &Arc<RevocationCache> {
        &self.revocations
    }

    /// Registers a client with a fresh id and secret. The secret is returned this once; only
    /// its Argon2id hash is stored.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] naming the field if a contact field is empty (after
    /// trimming), longer than [`MAX_FIELD_LEN`] or contains control characters, the e-mail is no
    /// e-mail address, the phone number is not plausible, or a scope is not a valid scope
    /// token; [`AuthError::Store`], [`AuthError::Hashing`].
    pub async fn register(&self, new: NewClient) -> Result<(ClientRecord, SecretString)> {
        let Contact {
            name,
            email,
            telefonnummer,
            organisation,
        } = Contact::of(&new)?;
        let mut scopes: Vec<String> = Vec::new();
        for scope in new.scopes.iter().flat_map(|s| s.split(' ')) {
            if scope.is_empty() {
                continue;
            }
            if !is_valid_scope_token(scope) {
                return Err(AuthError::InvalidInput("scope"));
            }
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.is_empty() {
            scopes.push(IMPORT_SCOPE.to_owned());
        }
        let secret = generate_client_secret();
        let record = ClientRecord {
            client_id: generate_client_id(),
            secret_hash: self.hasher.hash_async(secret.expose_secret()).await?,
            name,
            email,
            telefonnummer,
            organisation,
            scopes,
            revoked_at: None,
            created_at: self.clock.now(),
        };
        self.store.insert_client(&record).await?;
        tracing::info!(client_id = %record.client_id, "registered a client");
        Ok((record, secret))
    }

    /// All clients, oldest first, revoked ones included. Records carry the secret hash, never
    /// the secret; do not print the hash either.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn list(&self) -> Result<Vec<ClientRecord>> {
        Ok(self.store.list_clients().await?)
    }

    /// The client with this id, revoked or not.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        if client_id.len() > MAX_CREDENTIAL_LEN {
            return Ok(None);
        }
        Ok(self.store.get_client(client_id).await?)
    }

    /// Revokes a client: it cannot get tokens any more and its tokens stop working. `false` if
    /// there is no such client; revoking twice is fine and keeps the first time.
    ///
    /// Returns only once every process on the database refuses the client's tokens: validators
    /// check [`is_active`](Self::is_active) against a [`RevocationCache`] at most
    /// `max_staleness` old, and this waits out that bound after the commit (see
    /// [`RevocationCache::revoked`]).
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn revoke(&self, client_id: &str) -> Result<bool> {
        let revoked = self
            .store
            .revoke_client(client_id, self.clock.now())
            .await?;
        if revoked {
            tracing::info!(%client_id, "revoked a client");
            self.revocations.revoked().await;
        }
        Ok(revoked)
    }

    /// Gives a client a new secret and returns it (once); the old secret stops working, tokens
    /// already issued stay valid until they expire. `None` if there is no such client. A
    /// revoked client stays revoked.
    ///
    /// # Errors
    /// [`AuthError::Store`], [`AuthError::Hashing`].
    pub async fn rotate(&self, client_id: &str) -> Result<Option<SecretString>> {
        if self.get(client_id).await?.is_none() {
            return Ok(None);
        }
        let secret = generate_client_secret();
        let hash = self.hasher.hash_async(secret.expose_secret()).await?;
        if self.store.set_client_secret_hash(client_id, &hash).await? {
            tracing::info!(%client_id, "rotated a client secret");
            Ok(Some(secret))
        } else {
            Ok(None)
        }
    }

    /// The active client with these credentials; `None` for an unknown or revoked client or a
    /// wrong secret. Every case costs one store lookup and one Argon2id verification.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Option<ClientRecord>> {
        Ok(match self.check_credentials(client_id, secret).await? {
            AuthOutcome::Authenticated(client) => Some(client),
            _ => None,
        })
    }

    /// Like [`authenticate`](Self::authenticate), telling why it failed (for logs and
    /// throttling; never for the answer). Every case does the same work; over-long ids or
    /// secrets (more than [`MAX_CREDENTIAL_LEN`] bytes) are rejected before any.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn check_credentials(&self, client_id: &str, secret: &str) -> Result<AuthOutcome> {
        if client_id.len() > MAX_CREDENTIAL_LEN || secret.len() > MAX_CREDENTIAL_LEN {
            return Ok(AuthOutcome::UnknownClient);
        }
        let client = self.store.get_client(client_id).await?;
        let matches = self
            .hasher
            .verify_async(secret, client.as_ref().map(|c| c.secret_hash.as_str()))
            .await;
        Ok(match client {
            None => AuthOutcome::UnknownClient,
            Some(client) if client.revoked_at.is_some() => AuthOutcome::Revoked,
            Some(_) if !matches => AuthOutcome::WrongSecret,
            Some(client) => AuthOutcome::Authenticated(client),
        })
    }

    /// Whether the client exists and is not revoked, from the [`RevocationCache`]: no database
    /// read unless the view is older than its bound or the client was not seen yet. A
    /// revocation anywhere applies to every check that starts after [`revoke`](Self::revoke)
    /// returned.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn is_active(&self, client_id: &str) -> Result<bool> {
        if client_id.len() > MAX_CREDENTIAL_LEN {
            return Ok(false);
        }
        Ok(self.revocations.client_is_active(client_id).await?)
    }

    /// Whether a token of `client_id` with this `jti` may be used: the client is active
    /// ([`is_active`](Self::is_active)) and the token was not revoked (RFC 7009).
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn is_token_active(&self, client_id: &str, jti: &str) -> Result<bool> {
        if client_id.len() > MAX_CREDENTIAL_LEN {
            return Ok(false);
        }
        Ok(self.revocations.check(client_id, jti).await?.is_ok())
    }
}

/// The contact fields of a new client, trimmed, with their rules (`validator`): each 1 to
/// [`MAX_FIELD_LEN`] characters without control characters; `email` an e-mail address (the
/// WHATWG syntax of `<input type=email>`, internationalised domains allowed), `telefonnummer`
/// a plausible phone number ([`plausible_telefonnummer`]).
#[derive(Validate)]
struct Contact {
    #[validate(length(min = 1, max = 256), non_control_character)]
    name: String,
    #[validate(length(min = 1, max = 256), email)]
    email: String,
    #[validate(
        length(min = 1, max = 256),
        custom(function = "plausible_telefonnummer")
    )]
    telefonnummer: String,
    #[validate(length(min = 1, max = 256), non_control_character)]
    organisation: String,
}

// The derive cannot take the constant; keep them equal.
const _: () = assert!(MAX_FIELD_LEN == 256);

/// Digits, at least [`MIN_PHONE_DIGITS`] and at most [`MAX_PHONE_DIGITS`], optionally after one
/// leading `+`, separated by spaces and `-`, `/`, `.`, `(`, `)` as people write them
/// (`+49 30 123456`, `030/123 456-7`, `(030) 12 34 56`). Letters, a second `+` or anything else
/// is not a phone number.
fn plausible_telefonnummer(value: &str) -> std::result::Result<(), ValidationError> {
    let rest = value.strip_prefix('+').unwrap_or(value);
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    let separators_only = rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '/' | '.' | '(' | ')'));
    if separators_only && (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits) {
        Ok(())
    } else {
        Err(ValidationError::new("telefonnummer"))
    }
}

/// Fewest digits of a phone number (an internal extension).
pub const MIN_PHONE_DIGITS: usize = 3;

/// Most digits of a phone number (E.164 allows 15; extensions add a few).
pub const MAX_PHONE_DIGITS: usize = 20;

impl Contact {
    /// The trimmed fields of `new`, checked: the first field that breaks a rule, in the order
    /// name, email, telefonnummer, organisation, is named (never its value).
    fn of(new: &NewClient) -> Result<Self> {
        let contact = Self {
            name: new.name.trim().to_owned(),
            email: new.email.trim().to_owned(),
            telefonnummer: new.telefonnummer.trim().to_owned(),
            organisation: new.organisation.trim().to_owned(),
        };
        if let Err(errors) = contact.validate() {
            let invalid = errors.field_errors();
            let field = ["name", "email", "telefonnummer", "organisation"]
                .into_iter()
                .find(|field| invalid.contains_key(*field))
                .unwrap_or("contact");
            return Err(AuthError::InvalidInput(field));
        }
        Ok(contact)
    }
}
