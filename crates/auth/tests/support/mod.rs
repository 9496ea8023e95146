//! Shared fixture of the integration tests: in-memory stores, a manual clock, a cheap hasher,
//! and helpers to forge tokens.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use auth::memory::{ManualClock, MemoryClientStore, MemorySigningKeyStore};
use auth::{
    ClientRecord, ClientRegistry, KeyRing, KeyRingConfig, NewClient, SecretHasher, Throttle,
    ThrottleConfig, TokenEndpoint, TokenIssuer, TokenRequest, TokenSettings, TokenValidator,
};
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const AUDIENCE: &str = "drkleinrk-api";
pub const IMPORT: &str = "drkleinrk-api/vorgang:import";
/// 2027-01-15T08:00:00Z
pub const T0: i64 = 1_800_000_000;

pub struct Fixture {
    pub clock: Arc<ManualClock>,
    pub client_store: Arc<MemoryClientStore>,
    pub key_store: Arc<MemorySigningKeyStore>,
    pub registry: ClientRegistry,
    pub keys: Arc<KeyRing>,
    pub settings: TokenSettings,
    pub issuer: TokenIssuer,
    pub validator: TokenValidator,
    pub endpoint: TokenEndpoint,
}

pub fn cheap_hasher() -> SecretHasher {
    SecretHasher::with_cost(64, 1, 1).unwrap()
}

pub fn settings() -> TokenSettings {
    TokenSettings::new(ISSUER)
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_kek(None).await
    }

    pub async fn with_kek(kek: Option<[u8; 32]>) -> Self {
        let clock = Arc::new(ManualClock::at_timestamp(T0));
        let client_store = Arc::new(MemoryClientStore::default());
        let key_store = Arc::new(MemorySigningKeyStore::default());
        let keys = Arc::new(
            KeyRing::load_or_create(
                key_store.clone(),
                kek,
                clock.clone(),
                KeyRingConfig::default(),
            )
            .await
            .unwrap(),
        );
        Self::assemble(clock, client_store, key_store, keys)
    }

    /// Another replica sharing this fixture's stores and clock.
    pub async fn replica(&self, kek: Option<[u8; 32]>) -> Self {
        let keys = Arc::new(
            KeyRing::load_or_create(
                self.key_store.clone(),
                kek,
                self.clock.clone(),
                KeyRingConfig::default(),
            )
            .await
            .unwrap(),
        );
        Self::assemble(
            self.clock.clone(),
            self.client_store.clone(),
            self.key_store.clone(),
            keys,
        )
    }

    fn assemble(
        clock: Arc<ManualClock>,
        client_store: Arc<MemoryClientStore>,
        key_store: Arc<MemorySigningKeyStore>,
        keys: Arc<KeyRing>,
    ) -> Self {
        let registry =
            ClientRegistry::with_hasher(client_store.clone(), clock.clone(), cheap_hasher());
        let settings = settings();
        let issuer = TokenIssuer::new(keys.clone(), clock.clone(), settings.clone());
        let validator = TokenValidator::new(keys.clone(), clock.clone(), settings.clone());
        let endpoint = TokenEndpoint::new(
            registry.clone(),
            issuer.clone(),
            Throttle::new(ThrottleConfig::default(), clock.clone()),
        );
        Self {
            clock,
            client_store,
            key_store,
            registry,
            keys,
            settings,
            issuer,
            validator,
            endpoint,
        }
    }

    pub async fn register(&self, scopes: &[&str]) -> (ClientRecord, SecretString) {
        self.registry
            .register(NewClient {
                name: "Erika Mustermann".into(),
                email: "erika@example.com".into(),
                telefonnummer: "+49 30 123456".into(),
                organisation: "Vergleichsportal GmbH".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            })
            .await
            .unwrap()
    }

    /// A token issued the normal way.
    pub async fn token_for(&self, client_id: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.issuer
            .issue(client_id, &scopes)
            .await
            .unwrap()
            .access_token
    }

    /// The private key of the current signing key, read from the (unencrypted) store.
    pub fn signing_pair(&self) -> (String, Ed25519KeyPair) {
        let kid = self.keys.signing_kid();
        let record = self
            .key_store
            .all()
            .into_iter()
            .find(|r| r.kid == kid)
            .unwrap();
        assert!(!record.encrypted, "forging needs an unencrypted fixture");
        (
            kid,
            Ed25519KeyPair::from_pkcs8(&record.private_key).unwrap(),
        )
    }

    pub fn kid(&self) -> String {
        self.keys.signing_kid()
    }

    /// Valid claims for `client_id` at the clock's time.
    pub fn claims(&self, client_id: &str) -> Value {
        let now = self.clock.timestamp();
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": client_id,
            "client_id": client_id,
            "scope": IMPORT,
            "iat": now,
            "exp": now + 900,
            "jti": "6f1c1d0e-9a55-4a40-8a0e-6b8e1f0f5f11",
        })
    }

    /// A valid header for our current key.
    pub fn header(&self) -> Value {
        json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": self.kid() })
    }

    /// Signs `header.claims` with our real signing key, whatever the header says.
    pub fn sign_with_our_key(&self, header: &Value, claims: &Value) -> String {
        let (_, pair) = self.signing_pair();
        sign_ed25519(&pair, header, claims)
    }

    pub async fn request(
        &self,
        req: TokenRequest,
    ) -> Result<auth::TokenResponse, auth::OAuthError> {
        self.endpoint.handle(req).await
    }

    pub fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    )
}

pub fn sign_ed25519(pair: &Ed25519KeyPair, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = pair.sign(input.as_bytes());
    format!("{input}.{}", b64(signature.as_ref()))
}

/// A compact JWS with the given signature bytes.
pub fn with_signature(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}", signing_input(header, claims), b64(signature))
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn basic(client_id: &str, secret: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

pub fn post_request(client_id: &str, secret: &SecretString) -> TokenRequest {
    TokenRequest {
        authorization: None,
        form: form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret.expose_secret()),
        ]),
        remote_ip: Some("192.0.2.10".parse().unwrap()),
    }
}

pub fn basic_request(client_id: &str, secret: &SecretString) -> TokenRequest {
    TokenRequest {
        authorization: Some(basic(client_id, secret.expose_secret())),
        form: form(&[("grant_type", "client_credentials")]),
        remote_ip: Some("192.0.2.10".parse().unwrap()),
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
