//! reqwest adapters of the Europace ports of `vorgang-core`.
//!
//! - [`TokenCache`]: OAuth2 client-credentials tokens of the Europace authorization API, one
//!   cache per scope set, refreshed shortly before expiry, one refresh at a time.
//! - [`PartnerApi`]: [`PartnerDirectory`] over Europace Partnermanagement (Tippgeber lookup,
//!   creation and update), retried with jittered backoff because every call is safe to repeat.
//! - [`KexApi`]: [`KexImporter`] over the KEX Vorgang Import API, never repeated once the import
//!   may have reached Europace.
//!
//! Every call carries `X-TraceId` and a W3C `traceparent` (the trace of its
//! [`TraceId`](vorgang_core::TraceId), a new span id per call), explicit connect and request timeouts, and
//! no error or log line contains a secret, a token, a response body or personal data. An
//! optional [`CallObserver`] sees every exchange's target, outcome and duration.
//!
//! Modules, each using only those before it: `config`, `http` (→ config), `token` (→ config,
//! http), `partner` and `kex` (→ config, http, token).
//!
//! ```no_run
//! use europace_client::{EuropaceClient, EuropaceConfig};
//! use secrecy::SecretString;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let base = url::Url::parse("http://127.0.0.1:8081")?;
//! let config = EuropaceConfig::from_base_url(&base, "our-client", SecretString::from("secret"));
//! let client = EuropaceClient::new(config)?;
//! let partners = client.partner_directory(); // Arc<dyn PartnerDirectory>
//! let kex = client.kex_importer(); // Arc<dyn KexImporter>
//! # let _ = (partners, kex);
//! # Ok(())
//! # }
//! ```

mod config;
mod http;
mod kex;
mod observe;
mod partner;
mod token;

use std::sync::Arc;
use std::time::Duration;

use url::Url;
use vorgang_core::{KexImporter, PartnerDirectory};

pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEX_SCOPE, DEFAULT_PARTNER_SCOPE, DEFAULT_REQUEST_TIMEOUT,
    EuropaceConfig, Impersonation, RetryPolicy,
};
pub use kex::KexApi;
pub use observe::{CallObserver, CallOutcome, CallTarget};
pub use partner::PartnerApi;
pub use token::{AccessToken, TokenCache};

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why [`EuropaceClient::new`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A URL setting is not an absolute `http` or `https` URL with a path.
    #[error("europace.{setting} must be an http or https URL")]
    InvalidUrl {
        /// The setting, e.g. `kex_url`.
        setting: &'static str,
    },
    /// A timeout setting is zero.
    #[error("europace.{setting} must be greater than zero")]
    ZeroTimeout {
        /// The setting, e.g. `request_timeout_ms`.
        setting: &'static str,
    },
    /// The HTTP client could not be created (e.g. the TLS backend failed to initialise).
    #[error("HTTP client could not be built: {0}")]
    Http(#[source] reqwest::Error),
}

/// The Europace adapters sharing one HTTP client (connection pool, timeouts) and two token
/// caches, one per scope set (one if both scopes are equal). Cheap to clone; clones share
/// everything.
#[derive(Debug, Clone)]
pub struct EuropaceClient {
    config: Arc<EuropaceConfig>,
    partner: PartnerApi,
    kex: KexApi,
}

impl EuropaceClient {
    /// Builds the HTTP client (rustls, HTTP/2 where offered, no redirects, no proxy,
    /// `connect_timeout` and `request_timeout` on every request, idle connections kept 20 s)
    /// and the adapters. Needs no running runtime; the adapters must be used on Tokio.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when a URL is not `http`/`https`, a timeout is zero or the HTTP client
    /// cannot be built. An empty client id is only warned about (a sandbox accepts any).
    pub fn new(config: EuropaceConfig) -> Result<Self, BuildError> {
        check_url(&config.auth_url, "auth_url")?;
        check_url(&config.partner_url, "partner_url")?;
        check_url(&config.kex_url, "kex_url")?;
        check_timeout(config.connect_timeout, "connect_timeout_ms")?;
        check_timeout(config.request_timeout, "request_timeout_ms")?;
        if config.client_id.trim().is_empty() {
            tracing::warn!(
                "europace.client_id is empty: Europace will refuse our token requests (a sandbox accepts them)"
            );
        }
        if config.connect_timeout >= config.request_timeout {
            tracing::warn!(
                "europace.connect_timeout_ms is not below europace.request_timeout_ms: a slow \
                 connect then ends as a request timeout, which the KEX import must treat as in doubt"
            );
        }
        let connect_timeout = config.connect_timeout;
        let request_timeout = config.request_timeout;
        let build = move || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .timeout(request_timeout)
                // Idle connections are dropped well before typical server and load-balancer idle
                // timeouts, so a POST rarely meets a connection the peer is just closing (which
                // would make a KEX import in doubt).
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent(concat!("europace-client/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        let http = build().map_err(BuildError::Http)?;
        // The partner and KEX calls of an import: a pool per worker thread (http::PerThreadClient).
        let per_thread = http::PerThreadClient::new(build).map_err(BuildError::Http)?;
        let kex_tokens = TokenCache::new(http.clone(), &config, config.kex_scope.clone());
        let partner_tokens = if config.partner_scope == config.kex_scope {
            kex_tokens.clone()
        } else {
            TokenCache::new(http.clone(), &config, config.partner_scope.clone())
        };
        Ok(Self {
            partner: PartnerApi::new(per_thread.clone(), &config, partner_tokens),
            kex: KexApi::new(per_thread, &config, kex_tokens),
            config: Arc::new(config),
        })
    }

    /// The settings this client was built from (`Debug` masks the secret).
    #[must_use]
    pub fn config(&self) -> &EuropaceConfig {
        &self.config
    }

    /// The Partnermanagement adapter as the core's port.
    #[must_use]
    pub fn partner_directory(&self) -> Arc<dyn PartnerDirectory> {
        Arc::new(self.partner.clone())
    }

    /// The KEX import adapter as the core's port.
    #[must_use]
    pub fn kex_importer(&self) -> Arc<dyn KexImporter> {
        Arc::new(self.kex.clone())
    }

    /// The Partnermanagement adapter.
    #[must_use]
    pub fn partner_api(&self) -> &PartnerApi {
        &self.partner
    }

    /// The KEX import adapter.
    #[must_use]
    pub fn kex_api(&self) -> &KexApi {
        &self.kex
    }
}

fn check_url(url: &Url, setting: &'static str) -> Result<(), BuildError> {
    let http = matches!(url.scheme(), "http" | "https");
    if http && !url.cannot_be_a_base() && url.has_host() {
        Ok(())
    } else {
        Err(BuildError::InvalidUrl { setting })
    }
}

fn check_timeout(timeout: Duration, setting: &'static str) -> Result<(), BuildError> {
    if timeout.is_zero() {
        Err(BuildError::ZeroTimeout { setting })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn config() -> Result<EuropaceConfig, url::ParseError> {
        Ok(EuropaceConfig::from_base_url(
            &Url::parse("http://127.0.0.1:9")?,
            "id",
            SecretString::from("hunter2-xyz"),
        ))
    }

    #[test]
    fn builds_from_valid_settings() -> Result<(), Box<dyn std::error::Error>> {
        let client = EuropaceClient::new(config()?)?;
        assert_eq!(client.config().client_id, "id");
        assert!(!format!("{client:?}").contains("hunter2"));
        Ok(())
    }

    #[test]
    fn refuses_bad_settings() -> Result<(), url::ParseError> {
        let mut bad = config()?;
        bad.kex_url = Url::parse("ftp://example.org/vorgang")?;
        assert!(matches!(
            EuropaceClient::new(bad),
            Err(BuildError::InvalidUrl { setting: "kex_url" })
        ));
        let mut bad = config()?;
        bad.auth_url = Url::parse("mailto:x@example.org")?;
        assert!(matches!(
            EuropaceClient::new(bad),
            Err(BuildError::InvalidUrl {
                setting: "auth_url"
            })
        ));
        let mut bad = config()?;
        bad.request_timeout = Duration::ZERO;
        assert!(matches!(
            EuropaceClient::new(bad),
            Err(BuildError::ZeroTimeout { .. })
        ));
        Ok(())
    }
}
