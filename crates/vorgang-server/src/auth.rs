//! Wiring of the `auth` crate: our token endpoint, the bearer-token check selected by `auth.mode`,
//! client and key management. (The HTTP side, the bearer-token extractor, is in the routes:
//! `routes::caller`.)

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auth::SystemClock;
use auth::{
    ClientRegistry, KeyRing, KeyRingConfig, NewClient, TokenIssuer, TokenSettings, TokenValidator,
};
use secrecy::{ExposeSecret as _, SecretString};
use vorgang_store::Store;

use crate::settings::{AuthMode, Settings, decode_kek};

/// Token issuing and validation, client management.
pub struct AuthService {
    /// Partner clients.
    pub registry: ClientRegistry,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
    /// Issues access tokens.
    pub issuer: TokenIssuer,
    /// Validates our own access tokens.
    pub validator: TokenValidator,
    /// Checks bearer tokens of `POST /vorgang` per `auth.mode` (builtin, jwks, introspection).
    pub authorizer: auth::Authorizer,
    /// The token endpoint.
    pub endpoint: auth::TokenEndpoint,
}

/// The token check of `POST /vorgang` selected by `auth.mode`.
fn authorizer(
    settings: &Settings,
    validator: &TokenValidator,
    registry: &ClientRegistry,
) -> anyhow::Result<auth::Authorizer> {
    let external = || {
        let mut external =
            auth::ExternalSettings::new(settings.auth.issuer.clone(), settings.audience.clone());
        external.leeway = Duration::from_secs(settings.token_leeway_s);
        external
    };
    Ok(match settings.auth.mode {
        AuthMode::Builtin => auth::Authorizer::Builtin {
            validator: validator.clone(),
            registry: registry.clone(),
        },
        AuthMode::Jwks => {
            let url = settings
                .auth
                .jwks_url
                .as_ref()
                .context("auth.jwks_url is required in jwks mode")?;
            tracing::info!("bearer tokens are validated with an external issuer's JWKS");
            auth::Authorizer::Jwks(
                auth::JwksValidator::new(url.as_str(), external(), Arc::new(SystemClock))
                    .context("configuring the JWKS validator")?,
            )
        }
        AuthMode::Introspection => {
            let (Some(url), Some(client_id), Some(secret)) = (
                settings.auth.introspection_url.as_ref(),
                settings.auth.client_id.as_ref(),
                settings.auth.client_secret.as_ref(),
            ) else {
                anyhow::bail!(
                    "introspection mode needs auth.introspection_url, auth.client_id and auth.client_secret"
                );
            };
            tracing::info!("bearer tokens are validated by RFC 7662 introspection");
            auth::Authorizer::Introspection(
                auth::IntrospectionValidator::new(
                    url.as_str(),
                    client_id.clone(),
                    secret.clone(),
                    external(),
                    Arc::new(SystemClock),
                )
                .context("configuring the introspection validator")?,
            )
        }
    })
}

/// What `clients add` says about a refused field: the option and the rule, never the value
/// (contact data is personal data, and the terminal may be recorded).
fn registration_problem(field: &str) -> String {
    match field {
        "name" => "invalid --name: give the contact person's name (1 to 256 characters, no control characters)".to_owned(),
        "email" => "invalid --email: not an e-mail address (like name@example.org)".to_owned(),
        "telefonnummer" => "invalid --telefonnummer: not a phone number (3 to 20 digits, an optional leading +, spaces and - / . ( ) as separators)".to_owned(),
        "organisation" => "invalid --organisation: give the partner organisation (1 to 256 characters, no control characters)".to_owned(),
        "scope" => "invalid --scope: a scope is printable ASCII without spaces, \" or \\ (RFC 6749 §3.3)".to_owned(),
        other => format!("invalid {other}"),
    }
}

/// Credentials of a newly registered (or rotated) client, shown once.
pub struct DemoClient {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
}

impl DemoClient {
    /// `{"client_id","client_secret"}`, the one line `clients add` prints.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
        })
    }
}

impl AuthService {
    /// Loads (or creates) the signing keys and builds the token pieces.
    ///
    /// # Errors
    /// Database or key problems (e.g. a wrong `key_encryption_key`).
    pub async fn build(settings: &Settings, store: &Store, issuer: String) -> anyhow::Result<Self> {
        let clock = Arc::new(SystemClock);
        let kek = settings.key_encryption_key.as_ref().and_then(decode_kek);
        if kek.is_none() {
            tracing::warn!(
                "key_encryption_key is not set: token signing keys are stored UNENCRYPTED in the database (allowed with the embedded sandbox only)"
            );
        }
        let token_ttl = Duration::from_secs(settings.token_ttl_s);
        let leeway = Duration::from_secs(settings.token_leeway_s);
        let keys = Arc::new(
            KeyRing::load_or_create(
                store.as_signing_key_store(),
                kek,
                clock.clone(),
                KeyRingConfig {
                    token_ttl,
                    leeway,
                    ..KeyRingConfig::default()
                },
            )
            .await
            .context("loading the token signing keys")?,
        );
        let token_settings = TokenSettings {
            issuer,
            audience: settings.audience.clone(),
            ttl: token_ttl,
            leeway,
        };
        let registry = ClientRegistry::new(store.as_client_store(), clock.clone());
        let issuer = TokenIssuer::new(keys.clone(), clock.clone(), token_settings.clone());
        let validator = TokenValidator::new(keys.clone(), clock.clone(), token_settings);
        let throttle = auth::Throttle::new(auth::ThrottleConfig::default(), clock.clone());
        let endpoint = auth::TokenEndpoint::new(registry.clone(), issuer.clone(), throttle);
        let authorizer = authorizer(settings, &validator, &registry)?;
        Ok(Self {
            registry,
            keys,
            issuer,
            validator,
            authorizer,
            endpoint,
        })
    }

    /// Registers a client.
    ///
    /// # Errors
    /// Invalid input or database problems.
    pub async fn register_client(
        &self,
        name: String,
        email: String,
        telefonnummer: String,
        organisation: String,
        scopes: Vec<String>,
    ) -> anyhow::Result<DemoClient> {
        let (record, secret) = self
            .registry
            .register(NewClient {
                name,
                email,
                telefonnummer,
                organisation,
                scopes,
            })
            .await
            .map_err(|error| match error {
                auth::AuthError::InvalidInput(field) => {
                    anyhow::anyhow!("{}", registration_problem(field))
                }
                other => other.into(),
            })?;
        tracing::info!(client = %record.client_id, "client registered");
        Ok(DemoClient {
            client_id: record.client_id,
            client_secret: secret,
        })
    }

    /// Registers the demo client when no client exists yet.
    ///
    /// # Errors
    /// Database problems.
    pub async fn demo_client_if_none(&self) -> anyhow::Result<Option<DemoClient>> {
        if !self.registry.list().await?.is_empty() {
            return Ok(None);
        }
        self.register_client(
            "Demo Partner".into(),
            "demo@example.org".into(),
            "000".into(),
            "Demo (embedded sandbox)".into(),
            Vec::new(),
        )
        .await
        .map(Some)
    }

    /// Clients as JSON lines (never a secret).
    ///
    /// # Errors
    /// Database problems.
    pub async fn list_clients(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(self
            .registry
            .list()
            .await?
            .into_iter()
            .map(|c| {
                serde_json::json!({
                    "client_id": c.client_id,
                    "name": c.name,
                    "email": c.email,
                    "telefonnummer": c.telefonnummer,
                    "organisation": c.organisation,
                    "scopes": c.scopes,
                    "revoked": c.revoked_at.is_some(),
                    "revokedAt": c.revoked_at,
                    "createdAt": c.created_at,
                })
            })
            .collect())
    }

    /// Revokes a client. `false` if unknown.
    ///
    /// # Errors
    /// Database problems.
    pub async fn revoke_client(&self, client_id: &str) -> anyhow::Result<bool> {
        Ok(self.registry.revoke(client_id).await?)
    }

    /// A new secret for a client; `None` if unknown.
    ///
    /// # Errors
    /// Database problems.
    pub async fn rotate_client(&self, client_id: &str) -> anyhow::Result<Option<DemoClient>> {
        Ok(self
            .registry
            .rotate(client_id)
            .await?
            .map(|secret| DemoClient {
                client_id: client_id.to_owned(),
                client_secret: secret,
            }))
    }

    /// A new signing key; returns its kid.
    ///
    /// # Errors
    /// Database or crypto problems.
    pub async fn rotate_keys(&self) -> anyhow::Result<String> {
        Ok(self.keys.rotate().await?)
    }
}
