//! OAuth2 authorization server pieces of the Vorgang Import Service, independent of any web
//! framework:
//!
//! - [`clock`]: [`Clock`], the time port (tests move a [`ManualClock`](memory::ManualClock));
//! - [`ports`]: the storage ports [`ClientStore`] and [`SigningKeyStore`] and their
//!   [`StoreError`], implemented by `vorgang-store`;
//! - [`secret`]: client ids, client secrets, Argon2id hashing;
//! - [`clients`]: [`ClientRegistry`] (register, list, revoke, rotate, authenticate);
//! - [`keys`]: [`KeyRing`], Ed25519 signing keys shared through the database, encrypted at rest,
//!   rotation and JWKS;
//! - [`token`]: [`TokenIssuer`] and [`TokenValidator`] for RFC 9068 `at+jwt` access tokens, and
//!   the RFC 6750 answers of a protected resource ([`TokenError`]);
//! - [`token_endpoint`]: [`TokenEndpoint`], `POST /oauth2/token` (client credentials);
//! - [`throttle`]: brute-force throttling of client authentication;
//! - [`external`]: tokens of an external authorization server (`auth.mode` `jwks` or
//!   `introspection`);
//! - [`revocation`]: [`RevocationCache`], revoked clients and tokens answered from memory and
//!   kept current on every replica;
//! - [`authorizer`]: [`Authorizer`], the check of `POST /vorgang` for every mode;
//! - [`memory`]: in-memory stores and a settable clock for tests and embedding.
//!
//! Modules, each using only those before it: `ports`, `clock`, `error` (→ ports), `secret`
//! (→ error), `throttle` (→ clock), `clients` (→ clock, error, ports, secret), `keys` (→ clock,
//! error, ports), `token` (→ clients, clock, error, keys), `token_endpoint` (→ clients, error,
//! throttle, token), `external` (→ clock, token), `authorizer` (→ clients, external, token),
//! `memory` (→ clock, ports), `fuzzing` (→ token_endpoint).
//!
//! ```
//! use std::sync::Arc;
//! use auth::memory::{ManualClock, MemoryClientStore, MemorySigningKeyStore};
//! use auth::{
//!     ClientRegistry, KeyRing, KeyRingConfig, NewClient, SecretHasher, Throttle, ThrottleConfig,
//!     TokenEndpoint, TokenIssuer, TokenRequest, TokenSettings, TokenValidator,
//! };
//! use secrecy::ExposeSecret;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::default());
//! // Production: ClientRegistry::new (OWASP Argon2id parameters).
//! let registry = ClientRegistry::with_hasher(
//!     Arc::new(MemoryClientStore::default()),
//!     clock.clone(),
//!     SecretHasher::with_cost(64, 1, 1)?,
//! );
//! let settings = TokenSettings::new("http://127.0.0.1:8080");
//! let keys = Arc::new(
//!     KeyRing::load_or_create(
//!         Arc::new(MemorySigningKeyStore::default()),
//!         None, // no key_encryption_key: log a warning
//!         clock.clone(),
//!         KeyRingConfig::from_token_settings(&settings),
//!     )
//!     .await?,
//! );
//! let endpoint = TokenEndpoint::new(
//!     registry.clone(),
//!     TokenIssuer::new(keys.clone(), clock.clone(), settings.clone()),
//!     Throttle::new(ThrottleConfig::default(), clock.clone()),
//! );
//! let validator = TokenValidator::new(keys.clone(), clock.clone(), settings);
//!
//! let new = NewClient {
//!     name: "Erika Mustermann".into(),
//!     email: "erika@example.com".into(),
//!     telefonnummer: "+49 30 123456".into(),
//!     organisation: "Vergleichsportal GmbH".into(),
//!     scopes: vec![],
//! };
//! let (client, secret) = registry.register(new).await?;
//! let answer = endpoint
//!     .handle(TokenRequest {
//!         authorization: None,
//!         form: vec![
//!             ("grant_type".into(), "client_credentials".into()),
//!             ("client_id".into(), client.client_id.clone()),
//!             ("client_secret".into(), secret.expose_secret().to_owned()),
//!         ],
//!         remote_ip: None,
//!     })
//!     .await
//!     .map_err(|e| e.to_string())?;
//!
//! let header = format!("Bearer {}", answer.access_token);
//! let claims = validator.authorize_import(Some(&header), &registry).await?;
//! assert_eq!(claims.client_id, client.client_id);
//! assert_eq!(keys.jwks()["keys"][0]["crv"], "Ed25519");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod authorizer;
pub mod clients;
pub mod clock;
pub mod error;
pub mod external;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod memory;
pub mod ports;
pub mod revocation;
pub mod secret;
pub mod throttle;
pub mod token;
pub mod token_endpoint;

pub use authorizer::Authorizer;
pub use clients::{AuthOutcome, ClientRegistry, NewClient};
pub use clock::{Clock, SystemClock};
pub use error::{AuthError, Result};
pub use external::{ExternalSettings, IntrospectionValidator, JwksValidator};
pub use keys::{ActiveSigningKey, KeyRing, KeyRingConfig};
pub use ports::{
    ClientRecord, ClientStore, Revocations, RevokedToken, SigningKeyRecord, SigningKeyStore,
    StoreError,
};
pub use revocation::RevocationCache;
pub use secret::{
    SecretHasher, generate_client_id, generate_client_secret, hash_secret, verify_secret,
};
pub use throttle::{Reservation, Throttle, ThrottleConfig, ThrottleKey};
pub use token::{
    AccessClaims, InvalidReason, IssuedToken, TokenError, TokenIssuer, TokenSettings,
    TokenValidator,
};
pub use token_endpoint::{
    IntrospectedClaims, Introspection, OAuthError, TokenEndpoint, TokenRequest, TokenResponse,
    parse_form,
};

/// The scope that `POST /vorgang` requires, and the default scope of new clients.
pub const IMPORT_SCOPE: &str = "drkleinrk-api/vorgang:import";

/// The scope a client needs to call `POST /oauth2/introspect` (RFC 7662).
pub const INTROSPECT_SCOPE: &str = "drkleinrk-api/token:introspect";

/// The realm of our `WWW-Authenticate` challenges.
pub const REALM: &str = "vorgang";
