//! Validating access tokens of an external authorization server (`auth.mode` `jwks` or
//! `introspection`).
//!
//! - [`JwksValidator`] ([`jwks`]): JWTs verified with the public keys of a remote JWKS URL,
//!   cached; an unknown `kid` makes it fetch again (at most once per 5 s), and the cache is
//!   renewed after 10 minutes. Only asymmetric algorithms (`EdDSA`, `ES256`, `ES384`, `RS*`,
//!   `PS*`), each bound to the key type it belongs to; `oct` keys in the JWKS are ignored.
//! - [`IntrospectionValidator`] ([`introspection`]): RFC 7662 token introspection on every
//!   request (no cache, so a revocation at the authorization server applies at once).
//!
//! Both answer the same [`AccessClaims`](crate::AccessClaims) as our own
//! [`TokenValidator`](crate::TokenValidator); [`Authorizer`](crate::Authorizer) picks one by mode.
//! External clients are not in our client registry: there is no local revocation check.

use std::time::Duration;

use serde::Deserialize;

pub mod introspection;
pub mod jwks;

pub use introspection::IntrospectionValidator;
pub use jwks::JwksValidator;

/// Largest JWKS or introspection answer read (bytes): the remote server is trusted to sign
/// tokens, not to be unable to exhaust our memory.
const MAX_RESPONSE_LEN: usize = 1024 * 1024;

/// Errors setting up an external validator.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// The HTTP client could not be built (TLS initialisation).
    #[error("HTTP client could not be built")]
    HttpClient,
}

/// What tokens of the external authorization server must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSettings {
    /// Expected `iss` (`auth.issuer`): required for JWKS; for introspection checked when the
    /// answer carries an `iss`.
    pub issuer: Option<String>,
    /// Expected `aud` (`audience`, default `drkleinrk-api`).
    pub audience: String,
    /// Clock-skew tolerance (`token_leeway_s`).
    pub leeway: Duration,
    /// Also accept JWTs typed `JWT` or untyped (many servers do not use RFC 9068 `at+jwt`).
    /// Default `false`.
    pub accept_plain_jwt: bool,
    /// Connect timeout of the HTTP calls (default 2 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout of the HTTP calls (default 5 s).
    pub request_timeout: Duration,
}

impl ExternalSettings {
    /// Settings with the given issuer and audience, leeway 30 s, `at+jwt` required.
    #[must_use]
    pub fn new(issuer: Option<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer,
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            accept_plain_jwt: false,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// The HTTP client of a validator: both timeouts set, so a hanging authorization server
    /// costs a request at most `request_timeout`, never a worker forever.
    fn http_client(&self) -> Result<reqwest::Client, ExternalError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|_| ExternalError::HttpClient)
    }
}

/// Reads a response body up to [`MAX_RESPONSE_LEN`]; `None` if it is longer or breaks off.
async fn read_limited(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_RESPONSE_LEN {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// Scopes as a space-separated string (`scope`) or a list (`scp`, as some servers send).
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    /// The scopes space-separated, as in our own tokens.
    fn joined(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::List(list) => list.join(" "),
        }
    }
}
