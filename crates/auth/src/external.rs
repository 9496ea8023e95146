//! Validating access tokens of an external authorization server (`auth.mode` `jwks` or
//! `introspection`), and [`Authorizer`], the one entry point of a protected resource for all
//! three modes.
//!
//! - [`JwksValidator`]: JWTs verified with the public keys of a remote JWKS URL, cached;
//!   an unknown `kid` makes it fetch again (at most once per 5 s), and the cache is renewed
//!   after 10 minutes. Only asymmetric algorithms (`EdDSA`, `ES256`, `ES384`, `RS*`, `PS*`),
//!   each bound to the key type it belongs to; `oct` keys in the JWKS are ignored.
//! - [`IntrospectionValidator`]: RFC 7662 token introspection on every request (no cache, so a
//!   revocation at the authorization server applies at once).
//!
//! External clients are not in our client registry: there is no local revocation check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::IMPORT_SCOPE;
use crate::clients::ClientRegistry;
use crate::clock::Clock;
use crate::token::{
    ACCESS_TOKEN_TYP, AccessClaims, InvalidReason, MAX_TOKEN_LEN, TokenError, TokenValidator,
    check_times, reason_of,
};

/// Largest JWKS or introspection answer read (bytes).
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

    fn http_client(&self) -> Result<reqwest::Client, ExternalError> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|_| ExternalError::HttpClient)
    }
}

/// Reads a response body up to [`MAX_RESPONSE_LEN`].
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

/// A key of the remote JWKS with the one algorithm it may verify.
#[derive(Clone)]
struct RemoteKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The key of one JWK, if it is an asymmetric signing key we support.
fn remote_key(jwk: &Value) -> Option<(String, RemoteKey)> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = field("kid")?.to_owned();
    if field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let declared = field("alg");
    let (algorithm, key) = match field("kty")? {
        "OKP" if field("crv") == Some("Ed25519") => (
            Algorithm::EdDSA,
            DecodingKey::from_ed_components(field("x")?).ok()?,
        ),
        "EC" => {
            let algorithm = match field("crv")? {
                "P-256" => Algorithm::ES256,
                "P-384" => Algorithm::ES384,
                _ => return None,
            };
            let key = DecodingKey::from_ec_components(field("x")?, field("y")?).ok()?;
            (algorithm, key)
        }
        "RSA" => {
            let algorithm = match declared.unwrap_or("RS256") {
                "RS256" => Algorithm::RS256,
                "RS384" => Algorithm::RS384,
                "RS512" => Algorithm::RS512,
                "PS256" => Algorithm::PS256,
                "PS384" => Algorithm::PS384,
                "PS512" => Algorithm::PS512,
                _ => return None,
            };
            let key = DecodingKey::from_rsa_components(field("n")?, field("e")?).ok()?;
            (algorithm, key)
        }
        // `oct` (symmetric) and anything unknown: never.
        _ => return None,
    };
    if declared.is_some_and(|alg| alg != algorithm_name(algorithm)) {
        return None;
    }
    Some((kid, RemoteKey { algorithm, key }))
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        _ => "",
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    typ: Option<Value>,
    kid: Option<Value>,
    crit: Option<Value>,
}

/// Checks the unverified header; returns `alg` and `kid`.
fn check_header(token: &str, accept_plain_jwt: bool) -> Result<(String, String), TokenError> {
    let invalid = TokenError::Invalid;
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(invalid(InvalidReason::Malformed));
    }
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| invalid(InvalidReason::Malformed))?;
    let header: RawHeader =
        serde_json::from_slice(&bytes).map_err(|_| invalid(InvalidReason::Malformed))?;
    let alg = header
        .alg
        .as_ref()
        .and_then(Value::as_str)
        .filter(|alg| !alg.starts_with("HS") && !alg.eq_ignore_ascii_case("none"))
        .ok_or(invalid(InvalidReason::Algorithm))?
        .to_owned();
    let typ_ok = match header.typ.as_ref() {
        None => accept_plain_jwt,
        Some(Value::String(typ)) => {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
                || typ.eq_ignore_ascii_case("application/at+jwt")
                || (accept_plain_jwt && typ.eq_ignore_ascii_case("JWT"))
        }
        Some(_) => false,
    };
    if !typ_ok {
        return Err(invalid(InvalidReason::Type));
    }
    if header.crit.is_some() {
        return Err(invalid(InvalidReason::CriticalHeader));
    }
    match header.kid {
        Some(Value::String(kid)) if !kid.is_empty() => Ok((alg, kid)),
        _ => Err(invalid(InvalidReason::UnknownKey)),
    }
}

/// Scopes as a space-separated string (`scope`) or a list (`scp`, as some servers send).
#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn joined(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::List(list) => list.join(" "),
        }
    }
}

#[derive(Deserialize)]
struct ExternalClaims {
    iss: Option<String>,
    sub: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    scope: Option<ScopeClaim>,
    scp: Option<ScopeClaim>,
    iat: Option<i64>,
    exp: i64,
    nbf: Option<i64>,
    jti: Option<String>,
}

/// Validates JWTs of an external authorization server with its published JWKS.
pub struct JwksValidator {
    http: reqwest::Client,
    jwks_url: String,
    settings: ExternalSettings,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<HashMap<String, RemoteKey>>>,
    fetched_at: Mutex<Option<DateTime<Utc>>>,
    last_attempt: Mutex<Option<DateTime<Utc>>>,
    ever_fetched: AtomicBool,
    refresh_min_interval: Duration,
    max_age: Duration,
}

impl std::fmt::Debug for JwksValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksValidator")
            .field("jwks_url", &self.jwks_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwksValidator {
    /// A validator fetching keys from `jwks_url` (on first use, not here).
    ///
    /// # Errors
    /// [`ExternalError::HttpClient`].
    pub fn new(
        jwks_url: impl Into<String>,
        settings: ExternalSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ExternalError> {
        Ok(Self {
            http: settings.http_client()?,
            jwks_url: jwks_url.into(),
            settings,
            clock,
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetched_at: Mutex::new(None),
            last_attempt: Mutex::new(None),
            ever_fetched: AtomicBool::new(false),
            refresh_min_interval: Duration::from_secs(5),
            max_age: Duration::from_secs(600),
        })
    }

    /// Fetches the JWKS now and replaces the cached keys. Returns how many usable keys it has.
    /// A failed fetch keeps the previous keys.
    ///
    /// # Errors
    /// [`TokenError::Unavailable`] if the JWKS cannot be fetched or parsed.
    pub async fn refresh(&self) -> Result<usize, TokenError> {
        *self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(self.clock.now());
        let response = self
            .http
            .get(&self.jwks_url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(error = %error.without_url(), "fetching the JWKS failed");
                TokenError::Unavailable
            })?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "the JWKS URL answered an error");
            return Err(TokenError::Unavailable);
        }
        let body = read_limited(response)
            .await
            .ok_or(TokenError::Unavailable)?;
        let jwks: Value = serde_json::from_slice(&body).map_err(|_| {
            tracing::warn!("the JWKS is not JSON");
            TokenError::Unavailable
        })?;
        let keys: HashMap<String, RemoteKey> = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(TokenError::Unavailable)?
            .iter()
            .filter_map(remote_key)
            .collect();
        let count = keys.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        *self
            .fetched_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(self.clock.now());
        self.ever_fetched.store(true, Ordering::SeqCst);
        tracing::debug!(count, "fetched the JWKS");
        Ok(count)
    }

    fn cached(&self, kid: &str) -> Option<RemoteKey> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    fn elapsed_since(&self, at: Option<DateTime<Utc>>, interval: Duration) -> bool {
        at.is_none_or(|at| {
            self.clock
                .now()
                .signed_duration_since(at)
                .to_std()
                .map_or(true, |since| since >= interval)
        })
    }

    async fn key_for(&self, kid: &str) -> Result<RemoteKey, TokenError> {
        let stale = self.elapsed_since(
            *self
                .fetched_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            self.max_age,
        );
        if stale
            && let Err(error) = self.refresh_rate_limited().await
            && !self.ever_fetched.load(Ordering::SeqCst)
        {
            return Err(error);
        }
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        match self.refresh_rate_limited().await {
            Err(error) if !self.ever_fetched.load(Ordering::SeqCst) => return Err(error),
            _ => {}
        }
        self.cached(kid)
            .ok_or(TokenError::Invalid(InvalidReason::UnknownKey))
    }

    /// Refreshes unless another refresh was attempted within the minimum interval.
    async fn refresh_rate_limited(&self) -> Result<(), TokenError> {
        let due = {
            let mut last = self
                .last_attempt
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = self.elapsed_since(*last, self.refresh_min_interval);
            if due {
                *last = Some(self.clock.now());
            }
            due
        };
        if due {
            self.refresh().await.map(|_| ())
        } else if self.ever_fetched.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(TokenError::Unavailable)
        }
    }

    /// Validates a token: header (asymmetric `alg` matching the key, `typ`, no `crit`, known
    /// `kid`), signature, `iss`, `aud`, `exp`/`nbf`/`iat` with the leeway. The result carries the
    /// configured audience as `aud`, `client_id` from `client_id`, `azp` or `sub`, and `scope`
    /// from `scope` or `scp`.
    ///
    /// # Errors
    /// [`TokenError::Invalid`], [`TokenError::Expired`], or [`TokenError::Unavailable`] when the
    /// JWKS could never be fetched.
    pub async fn validate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let invalid = TokenError::Invalid;
        let (alg, kid) = check_header(token, self.settings.accept_plain_jwt)?;
        let key = self.key_for(&kid).await?;
        if alg != algorithm_name(key.algorithm) {
            return Err(invalid(InvalidReason::Algorithm));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.algorithms = vec![key.algorithm];
        validation.set_audience(&[&self.settings.audience]);
        let mut required = vec!["exp", "aud"];
        if let Some(issuer) = &self.settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<ExternalClaims>(token, &key.key, &validation)
            .map_err(|error| invalid(reason_of(error.kind())))?
            .claims;
        check_times(
            Some(claims.exp),
            claims.iat,
            claims.nbf,
            self.clock.now(),
            self.settings.leeway,
        )?;
        let client_id = claims
            .client_id
            .or(claims.azp)
            .or_else(|| claims.sub.clone())
            .ok_or(invalid(InvalidReason::Claims))?;
        Ok(AccessClaims {
            iss: claims.iss.unwrap_or_default(),
            aud: self.settings.audience.clone(),
            sub: claims.sub.unwrap_or_else(|| client_id.clone()),
            client_id,
            scope: claims
                .scope
                .or(claims.scp)
                .map(ScopeClaim::joined)
                .unwrap_or_default(),
            iat: claims.iat.unwrap_or_default(),
            exp: claims.exp,
            nbf: claims.nbf,
            jti: claims.jti.unwrap_or_default(),
        })
    }
}

/// RFC 7662 introspection answer (the members we use).
#[derive(Deserialize)]
struct Introspection {
    active: bool,
    scope: Option<ScopeClaim>,
    client_id: Option<String>,
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<Value>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

/// Validates tokens by RFC 7662 introspection at an external authorization server.
pub struct IntrospectionValidator {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: SecretString,
    settings: ExternalSettings,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidator {
    /// A validator asking `url`, authenticated with HTTP Basic as `client_id`.
    ///
    /// # Errors
    /// [`ExternalError::HttpClient`].
    pub fn new(
        url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        settings: ExternalSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ExternalError> {
        Ok(Self {
            http: settings.http_client()?,
            url: url.into(),
            client_id: client_id.into(),
            client_secret,
            settings,
            clock,
        })
    }

    /// Introspects `token`: it must be `active`; `iss` (if configured and present), `aud` (if
    /// present), `exp`/`nbf`/`iat` (if present) are checked as well.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] ([`InvalidReason::Inactive`] when not active),
    /// [`TokenError::Expired`], or [`TokenError::Unavailable`] when the server cannot be asked.
    pub async fn validate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let invalid = TokenError::Invalid;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(invalid(InvalidReason::Malformed));
        }
        let response = self
            .http
            .post(&self.url)
            .basic_auth(
                form_urlencode(&self.client_id),
                Some(form_urlencode(self.client_secret.expose_secret())),
            )
            .header("Accept", "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(error = %error.without_url(), "token introspection failed");
                TokenError::Unavailable
            })?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "the introspection endpoint answered an error");
            return Err(TokenError::Unavailable);
        }
        let body = read_limited(response)
            .await
            .ok_or(TokenError::Unavailable)?;
        let answer: Introspection = serde_json::from_slice(&body).map_err(|_| {
            tracing::warn!("the introspection answer is not valid");
            TokenError::Unavailable
        })?;
        if !answer.active {
            return Err(invalid(InvalidReason::Inactive));
        }
        if let (Some(expected), Some(iss)) = (&self.settings.issuer, &answer.iss)
            && expected != iss
        {
            return Err(invalid(InvalidReason::Issuer));
        }
        if let Some(aud) = &answer.aud {
            let audience = self.settings.audience.as_str();
            let matches = match aud {
                Value::String(aud) => aud == audience,
                Value::Array(list) => list.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            };
            if !matches {
                return Err(invalid(InvalidReason::Audience));
            }
        }
        check_times(
            answer.exp,
            answer.iat,
            answer.nbf,
            self.clock.now(),
            self.settings.leeway,
        )?;
        let client_id = answer
            .client_id
            .or_else(|| answer.sub.clone())
            .ok_or(invalid(InvalidReason::Claims))?;
        Ok(AccessClaims {
            iss: answer.iss.unwrap_or_default(),
            aud: self.settings.audience.clone(),
            sub: answer.sub.unwrap_or_else(|| client_id.clone()),
            client_id,
            scope: answer.scope.map(ScopeClaim::joined).unwrap_or_default(),
            iat: answer.iat.unwrap_or_default(),
            exp: answer.exp.unwrap_or_default(),
            nbf: answer.nbf,
            jti: answer.jti.unwrap_or_default(),
        })
    }
}

/// RFC 6749 §2.3.1: credentials are form-urlencoded before HTTP Basic.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How `POST /vorgang` checks its bearer token, by `auth.mode`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per process
pub enum Authorizer {
    /// `builtin`: our own tokens, plus the per-request revocation check in our registry.
    Builtin {
        /// Validator of our tokens.
        validator: TokenValidator,
        /// Our clients, for the revocation check.
        registry: ClientRegistry,
    },
    /// `jwks`: tokens of an external server, verified with its JWKS.
    Jwks(JwksValidator),
    /// `introspection`: tokens of an external server, introspected on every request.
    Introspection(IntrospectionValidator),
}

impl Authorizer {
    /// Checks the `Authorization` header value: a bearer token, valid in the configured mode,
    /// of an active client (builtin mode), with `required_scope`.
    ///
    /// # Errors
    /// [`TokenError`]; its `status()` and `www_authenticate()` make the answer.
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        required_scope: &str,
    ) -> Result<AccessClaims, TokenError> {
        let claims = match self {
            Self::Builtin {
                validator,
                registry,
            } => {
                return validator
                    .authorize(authorization, registry, required_scope)
                    .await;
            }
            Self::Jwks(validator) => {
                validator
                    .validate(crate::token::bearer_token(authorization)?)
                    .await?
            }
            Self::Introspection(validator) => {
                validator
                    .validate(crate::token::bearer_token(authorization)?)
                    .await?
            }
        };
        if !claims.has_scope(required_scope) {
            return Err(TokenError::InsufficientScope {
                required: required_scope.to_owned(),
            });
        }
        Ok(claims)
    }

    /// [`authorize`](Self::authorize) with [`IMPORT_SCOPE`].
    ///
    /// # Errors
    /// As [`authorize`](Self::authorize).
    pub async fn authorize_import(
        &self,
        authorization: Option<&str>,
    ) -> Result<AccessClaims, TokenError> {
        self.authorize(authorization, IMPORT_SCOPE).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn symmetric_and_mismatched_jwks_entries_are_ignored() {
        assert!(remote_key(&json!({"kty":"oct","kid":"h","k":"c2VjcmV0"})).is_none());
        assert!(remote_key(&json!({"kty":"oct","kid":"h","k":"c2VjcmV0","alg":"HS256"})).is_none());
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(remote_key(&json!({"kty":"OKP","crv":"Ed25519","kid":"e","x":x})).is_some());
        assert!(
            remote_key(&json!({"kty":"OKP","crv":"Ed25519","kid":"e","x":x,"alg":"RS256"}))
                .is_none()
        );
        assert!(
            remote_key(&json!({"kty":"OKP","crv":"Ed25519","kid":"e","x":x,"use":"enc"})).is_none()
        );
        assert!(
            remote_key(&json!({"kty":"OKP","crv":"Ed25519","x":x})).is_none(),
            "no kid"
        );
    }

    #[test]
    fn header_rules() {
        let token =
            |header: Value| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(header.to_string()));
        let check = |header: Value, plain: bool| check_header(&token(header), plain);
        assert!(check(json!({"alg":"ES256","typ":"at+jwt","kid":"k"}), false).is_ok());
        assert_eq!(
            check(json!({"alg":"HS256","typ":"at+jwt","kid":"k"}), true),
            Err(TokenError::Invalid(InvalidReason::Algorithm))
        );
        assert_eq!(
            check(json!({"alg":"none","typ":"at+jwt","kid":"k"}), true),
            Err(TokenError::Invalid(InvalidReason::Algorithm))
        );
        assert_eq!(
            check(json!({"alg":"RS256","typ":"JWT","kid":"k"}), false),
            Err(TokenError::Invalid(InvalidReason::Type))
        );
        assert!(check(json!({"alg":"RS256","typ":"JWT","kid":"k"}), true).is_ok());
        assert!(check(json!({"alg":"RS256","kid":"k"}), true).is_ok());
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        assert_eq!(form_urlencode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
        assert_eq!(form_urlencode("drk_0a-Z.~"), "drk_0a-Z.~");
    }
}
