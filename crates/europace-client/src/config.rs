//! Settings of the Europace adapters (`europace.*` in the service's settings).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::observe::CallObserver;

/// Default scope of the KEX token.
pub const DEFAULT_KEX_SCOPE: &str = "privatkredit:vorgang:schreiben";
/// Default scope of the Partnermanagement token: reading (lookup), creating and updating
/// (`PATCH` of a Tippgeber's changed data) partners.
pub const DEFAULT_PARTNER_SCOPE: &str =
    "partner:plakette:lesen partner:plakette:anlegen partner:plakette:schreiben";
/// Default connect timeout (`europace.connect_timeout_ms`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);
/// Default timeout of one whole request, answer body included (`europace.request_timeout_ms`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Where and how to reach Europace.
///
/// Build it with [`EuropaceConfig::from_base_url`] and override fields as needed. `Debug` masks the
/// client secret.
#[derive(Debug, Clone)]
pub struct EuropaceConfig {
    /// The token endpoint, e.g. `https://api.europace.de/auth/token`.
    pub auth_url: Url,
    /// The Partnermanagement host root, e.g. `https://api.europace.de`; `/v2/partners…` is appended.
    pub partner_url: Url,
    /// The KEX Vorgang Import endpoint, e.g.
    /// `https://kex-vorgang-import.ratenkredit.api.europace.de/vorgang`.
    pub kex_url: Url,
    /// Our client id at Europace.
    pub client_id: String,
    /// Our client secret at Europace. Never logged.
    pub client_secret: SecretString,
    /// Scopes (space separated) of the token used for the KEX import.
    pub kex_scope: String,
    /// Scopes (space separated) of the token used for Partnermanagement.
    pub partner_scope: String,
    /// Optional impersonation: the token is requested on behalf of `subject`, acting as `actor`.
    /// Europace then also requires its impersonation scope in both scope settings.
    pub impersonation: Option<Impersonation>,
    /// Timeout for establishing a connection (DNS, TCP, TLS). Keep it below `request_timeout`:
    /// a failure within this phase is known to have sent nothing.
    pub connect_timeout: Duration,
    /// Timeout of one whole request, from sending until the answer body is read.
    pub request_timeout: Duration,
    /// Retries of the token request and of the Partnermanagement calls (never of the KEX import).
    pub retry: RetryPolicy,
    /// Told about every HTTP exchange with Europace (e.g. for a latency histogram); none by
    /// default.
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl EuropaceConfig {
    /// Settings for a Europace (or sandbox) whose endpoints all live under `base`:
    /// `{base}/auth/token`, `{base}` as Partnermanagement root and `{base}/vorgang`, with the
    /// default scopes, timeouts and retry policy, no impersonation and no observer.
    #[must_use]
    pub fn from_base_url(
        base: &Url,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self {
            auth_url: append_path(base, "/auth/token"),
            partner_url: append_path(base, ""),
            kex_url: append_path(base, "/vorgang"),
            client_id: client_id.into(),
            client_secret,
            kex_scope: DEFAULT_KEX_SCOPE.to_owned(),
            partner_scope: DEFAULT_PARTNER_SCOPE.to_owned(),
            impersonation: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
            observer: None,
        }
    }
}

/// Impersonation at the Europace token endpoint (form fields `subject` and `actor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    /// partnerId on whose behalf the client acts; must be subordinate to `actor`.
    pub subject: String,
    /// partnerId that approved the client to act for it.
    pub actor: String,
}

/// Jittered exponential backoff for the calls that are safe to repeat.
///
/// The n-th retry waits about `base_delay * 2^(n-1)` (half of it fixed, half random), at most
/// `max_delay`. A `Retry-After` from Europace replaces the computed delay, also capped at
/// `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (`1` disables retries; `0` counts as `1`).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_delay: Duration,
    /// Upper bound of every delay, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 100 ms base delay, at most 2 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// `base` with `suffix` appended to its path (no double slash, no trailing slash, query and
/// fragment dropped).
pub(crate) fn append_path(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}{suffix}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Result<Url, url::ParseError> {
        Url::parse(s)
    }

    #[test]
    fn derives_urls_from_host_root() -> Result<(), url::ParseError> {
        let config = EuropaceConfig::from_base_url(
            &base("http://127.0.0.1:8081")?,
            "id",
            SecretString::from("s"),
        );
        assert_eq!(config.auth_url.as_str(), "http://127.0.0.1:8081/auth/token");
        assert_eq!(config.partner_url.as_str(), "http://127.0.0.1:8081/");
        assert_eq!(config.kex_url.as_str(), "http://127.0.0.1:8081/vorgang");
        assert_eq!(config.kex_scope, DEFAULT_KEX_SCOPE);
        assert_eq!(config.partner_scope, DEFAULT_PARTNER_SCOPE);
        assert_eq!(config.retry, RetryPolicy::default());
        Ok(())
    }

    #[test]
    fn derives_urls_from_base_with_path() -> Result<(), url::ParseError> {
        let config = EuropaceConfig::from_base_url(
            &base("https://example.org/europace/")?,
            "id",
            SecretString::from("s"),
        );
        assert_eq!(
            config.auth_url.as_str(),
            "https://example.org/europace/auth/token"
        );
        assert_eq!(config.partner_url.as_str(), "https://example.org/europace");
        assert_eq!(
            config.kex_url.as_str(),
            "https://example.org/europace/vorgang"
        );
        Ok(())
    }

    #[test]
    fn debug_masks_the_secret() -> Result<(), url::ParseError> {
        let config = EuropaceConfig::from_base_url(
            &base("http://localhost")?,
            "id",
            SecretString::from("very-secret"),
        );
        assert!(!format!("{config:?}").contains("very-secret"));
        Ok(())
    }
}
