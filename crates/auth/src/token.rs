//! RFC 9068 access tokens: issuing (EdDSA-signed `at+jwt`) and validating them.
//!
//! Validation pins everything an attacker could choose: the algorithm (only `EdDSA`; `none`,
//! HMAC, RSA and ECDSA are rejected before any key is looked at), the type (`at+jwt`), the key
//! (a `kid` of our key ring; embedded `jwk`/`jku` are ignored, `crit` is rejected), the issuer
//! and the audience; times are checked against the injected clock with a fixed leeway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::clients::ClientRegistry;
use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::keys::KeyRing;
use crate::{IMPORT_SCOPE, REALM};

/// The JWT `typ` of our access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Longest token the validator looks at (bytes); longer ones are rejected unparsed.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// How many verified tokens a [`TokenValidator`] remembers (see [`TokenValidator::validate`]):
/// far more than the tokens in use at once (a client fetches one every `token_ttl_s`, 900 s by
/// default), about 1 KiB each.
pub const VERIFIED_TOKEN_CACHE_CAPACITY: usize = 4096;

/// Issuer, audience and lifetimes of our tokens (settings `issuer`, `audience`, `token_ttl_s`,
/// `token_leeway_s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss` of our tokens, e.g. `http://127.0.0.1:8080`.
    pub issuer: String,
    /// `aud` of our tokens, default `drkleinrk-api`.
    pub audience: String,
    /// Token lifetime, default 900 s.
    pub ttl: Duration,
    /// Clock-skew tolerance for `exp`, `nbf` and `iat`, default 30 s.
    pub leeway: Duration,
}

impl TokenSettings {
    /// Settings with the default audience (`drkleinrk-api`), TTL (900 s) and leeway (30 s).
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: "drkleinrk-api".to_owned(),
            ttl: Duration::from_secs(900),
            leeway: Duration::from_secs(30),
        }
    }
}

/// The claims of our access tokens (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the client id (client credentials grant).
    pub sub: String,
    /// The client id.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Not before (Unix seconds); we do not set it, others may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id (UUID v4).
    pub jti: String,
}

impl AccessClaims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether `scope` was granted.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// These claims, if they grant `scope`.
    ///
    /// # Errors
    /// [`TokenError::InsufficientScope`] naming `scope` if they do not.
    pub fn require_scope(self, scope: &str) -> Result<Self, TokenError> {
        if self.has_scope(scope) {
            Ok(self)
        } else {
            Err(TokenError::InsufficientScope {
                required: scope.to_owned(),
            })
        }
    }
}

/// A freshly issued access token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The signed JWT. A credential: never log it.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Its `jti`, fine to log.
    pub jti: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("jti", &self.jti)
            .finish()
    }
}

/// Signs access tokens with the key ring's current key.
#[derive(Clone)]
pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    settings: TokenSettings,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `keys`.
    #[must_use]
    pub fn new(keys: Arc<KeyRing>, clock: Arc<dyn Clock>, settings: TokenSettings) -> Self {
        Self {
            keys,
            clock,
            settings,
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The current time of this issuer's clock.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A validator of the tokens this issuer signs (same keys, clock and settings).
    #[must_use]
    pub fn validator(&self) -> TokenValidator {
        TokenValidator::new(self.keys.clone(), self.clock.clone(), self.settings.clone())
    }

    /// Issues a token for `client_id` with the given scopes (already checked by the caller):
    /// header `{"alg":"EdDSA","typ":"at+jwt","kid":…}`, claims
    /// `iss aud sub client_id scope iat exp jti`, `exp = iat + ttl`.
    ///
    /// # Errors
    /// [`AuthError::Signing`] if signing fails.
    pub async fn issue(&self, client_id: &str, scopes: &[String]) -> Result<IssuedToken> {
        let key = self.keys.signing_key().await;
        let now = self.clock.now();
        let ttl = TimeDelta::from_std(self.settings.ttl).map_err(|_| AuthError::Signing)?;
        let expires_at = now.checked_add_signed(ttl).ok_or(AuthError::Signing)?;
        let scope = scopes.join(" ");
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: client_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.clone(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(key.kid().to_owned());
        let access_token = jsonwebtoken::encode(&header, &claims, key.encoding_key())
            .map_err(|_| AuthError::Signing)?;
        Ok(IssuedToken {
            access_token,
            expires_in: self.settings.ttl.as_secs(),
            scope,
            jti: claims.jti,
            expires_at,
        })
    }
}

/// Why a token was not accepted (for logs and tests; the answer is the same `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidReason {
    /// Not a compact JWS, not base64url/JSON, or too long.
    Malformed,
    /// `alg` other than `EdDSA` (including `none`).
    Algorithm,
    /// `typ` missing or other than `at+jwt` / `application/at+jwt`.
    Type,
    /// `crit` header present (no extension is understood).
    CriticalHeader,
    /// `kid` missing or not one of our verifying keys.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// Wrong `iss`.
    Issuer,
    /// Wrong `aud`.
    Audience,
    /// A required claim missing or of the wrong type, or `sub` differing from `client_id`.
    Claims,
    /// `nbf` or `iat` in the future beyond the leeway.
    NotYetValid,
    /// `exp - iat` longer than the configured token lifetime: we never issue such a token, so
    /// it was made with a stolen key (or by a misconfigured issuer).
    Lifetime,
    /// An introspection endpoint answered `"active": false`.
    Inactive,
}

impl InvalidReason {
    /// A short name, e.g. `signature`, for logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::Type => "type",
            Self::CriticalHeader => "critical_header",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Claims => "claims",
            Self::NotYetValid => "not_yet_valid",
            Self::Lifetime => "lifetime",
            Self::Inactive => "inactive",
        }
    }
}

impl std::fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request to a protected resource is not authorized (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No bearer token in the request.
    #[error("no bearer token")]
    Missing,
    /// The token is not one of ours or was tampered with.
    #[error("invalid token: {0}")]
    Invalid(InvalidReason),
    /// The token expired (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// The token's client is revoked (or no longer exists).
    #[error("client revoked")]
    Revoked,
    /// The token is valid but lacks the scope.
    #[error("insufficient scope")]
    InsufficientScope {
        /// The scope needed.
        required: String,
    },
    /// The revocation check could not reach the store: answer 503, not 401.
    #[error("client store unavailable")]
    Unavailable,
}

impl TokenError {
    /// HTTP status: 401, 403 for [`InsufficientScope`](Self::InsufficientScope), 503 for
    /// [`Unavailable`](Self::Unavailable).
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::Invalid(_) | Self::Expired | Self::Revoked => 401,
            Self::InsufficientScope { .. } => 403,
            Self::Unavailable => 503,
        }
    }

    /// The RFC 6750 error code: `invalid_token`, `insufficient_scope`, or none.
    #[must_use]
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(_) | Self::Expired | Self::Revoked => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::Missing | Self::Unavailable => None,
        }
    }

    /// The `WWW-Authenticate` header value: `Bearer realm="vorgang"` without a token,
    /// `Bearer realm="vorgang", error="invalid_token"` for a bad one, and
    /// `Bearer realm="vorgang", error="insufficient_scope", scope="…"` (403). `None` for
    /// [`Unavailable`](Self::Unavailable).
    #[must_use]
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::Missing => Some(format!("Bearer realm=\"{REALM}\"")),
            Self::Invalid(_) | Self::Expired | Self::Revoked => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""))
            }
            Self::InsufficientScope { required } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{required}\""
            )),
            Self::Unavailable => None,
        }
    }

    /// The problem+json `detail`, a message id of the catalogue (rendered by the server in the
    /// request's language), echoing nothing of the request.
    #[must_use]
    pub fn detail(&self) -> i18n::Detail {
        match self {
            Self::Missing => i18n::Detail::TokenMissing,
            Self::Invalid(_) => i18n::Detail::TokenInvalid,
            Self::Expired => i18n::Detail::TokenExpired,
            Self::Revoked => i18n::Detail::ClientRevoked,
            Self::InsufficientScope { .. } => i18n::Detail::ScopeMissing,
            Self::Unavailable => i18n::Detail::AuthorizationUnavailable,
        }
    }
}

/// The token of an `Authorization: Bearer …` header value (scheme case-insensitive, RFC 6750
/// §2.1). [`TokenError::Missing`] if there is no header or another scheme;
/// [`InvalidReason::Malformed`] for `Bearer` with an empty or malformed token.
///
/// # Errors
/// As described.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, TokenError> {
    let Some(value) = authorization else {
        return Err(TokenError::Missing);
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(TokenError::Missing);
    }
    let token = rest.trim_start_matches(' ');
    // RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(TokenError::Invalid(InvalidReason::Malformed));
    }
    Ok(token)
}

/// The parts of the JOSE header we check before any verification.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<serde_json::Value>,
    typ: Option<serde_json::Value>,
    kid: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
}

/// Validates our access tokens.
#[derive(Clone)]
pub struct TokenValidator {
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    settings: TokenSettings,
    validation: Validation,
    /// Tokens whose signature and claims were verified, shared by the clones of this validator.
    verified: Arc<VerifiedTokens>,
}

/// A token whose signature and time-independent claims were verified.
#[derive(Debug)]
struct VerifiedToken {
    /// The key that verified the signature: the token stops verifying with it.
    kid: String,
    claims: AccessClaims,
}

/// The verification results of recent tokens, keyed by the SHA-256 of the token (the token
/// itself, a credential, is not kept). Bounded: when full, expired entries are dropped, and if
/// that frees nothing, everything (the next request of each token verifies it again).
///
/// Only what cannot change for the same bytes is remembered: the header and signature checks,
/// `iss`, `aud`, the claims' shape and the lifetime. What can change is checked on every use,
/// cached or not: the times (`exp`, `nbf`, `iat`, against the clock), whether the key still
/// verifies (a retired key's grace ends), and, in [`TokenValidator::authorize`], revocation of
/// the client and the token and the scope.
#[derive(Debug)]
struct VerifiedTokens {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], Arc<VerifiedToken>>>,
    hits: AtomicU64,
}

impl VerifiedTokens {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Arc<VerifiedToken>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    fn remove(&self, digest: &[u8; 32]) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(digest);
    }

    /// Remembers a verified token; `expired` tells which entries may go when the cache is full.
    fn insert(
        &self,
        digest: [u8; 32],
        token: VerifiedToken,
        expired: impl Fn(&VerifiedToken) -> bool,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            entries.retain(|_, entry| !expired(entry));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(digest, Arc::new(token));
    }

    fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TokenValidator {
    /// A validator of tokens signed by `keys` with the issuer and audience of `settings`.
    #[must_use]
    pub fn new(keys: Arc<KeyRing>, clock: Arc<dyn Clock>, settings: TokenSettings) -> Self {
        Self::with_cache_capacity(keys, clock, settings, VERIFIED_TOKEN_CACHE_CAPACITY)
    }

    /// [`new`](Self::new) remembering at most `capacity` verified tokens (0: none, every
    /// validation verifies the signature).
    #[must_use]
    pub fn with_cache_capacity(
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        settings: TokenSettings,
        capacity: usize,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Times are checked below against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            keys,
            clock,
            settings,
            validation,
            verified: Arc::new(VerifiedTokens::new(capacity)),
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Validates a token: header (`alg` = `EdDSA`, `typ` = `at+jwt`, known `kid`, no `crit`),
    /// signature, `iss`, `aud`, required claims, `exp - iat` at most the configured TTL,
    /// `exp`/`nbf`/`iat` with the leeway. Does not check scope or revocation: see
    /// [`authorize`](Self::authorize).
    ///
    /// The signature of a token is verified once: its result is remembered under the token's
    /// SHA-256 (at most [`VERIFIED_TOKEN_CACHE_CAPACITY`] tokens), so the same token again costs
    /// a hash and a look-up instead of an EdDSA verification. The times and whether the key
    /// still verifies are checked on every call, so a remembered token expires, and stops
    /// verifying with its retired key, exactly when it would unremembered.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] with the reason, or [`TokenError::Expired`].
    pub async fn validate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid(InvalidReason::Malformed));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(verified) = self.verified.get(&digest) {
            if self.keys.verifies(&verified.kid) {
                let claims = &verified.claims;
                if let Err(error) = check_times(
                    Some(claims.exp),
                    Some(claims.iat),
                    claims.nbf,
                    self.clock.now(),
                    self.settings.leeway,
                ) {
                    if error == TokenError::Expired {
                        self.verified.remove(&digest);
                    }
                    return Err(error);
                }
                self.verified.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(claims.clone());
            }
            // The key no longer verifies (retired, its grace over): the full check answers,
            // and the entry is of no use any more.
            self.verified.remove(&digest);
        }
        let (kid, claims) = self.verify(token).await?;
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = self.clock.now().timestamp();
        self.verified.insert(
            digest,
            VerifiedToken {
                kid,
                claims: claims.clone(),
            },
            |entry| entry.claims.exp.saturating_add(leeway) <= now,
        );
        Ok(claims)
    }

    /// How many tokens are remembered as verified (see [`validate`](Self::validate)).
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        self.verified.len()
    }

    /// How many validations were answered from the remembered verifications so far.
    #[must_use]
    pub fn cache_hits(&self) -> u64 {
        self.verified.hits.load(Ordering::Relaxed)
    }

    /// The full check of [`validate`](Self::validate), returning the verifying key's `kid` too.
    async fn verify(&self, token: &str) -> Result<(String, AccessClaims), TokenError> {
        let invalid = TokenError::Invalid;
        if token.split('.').count() != 3 {
            return Err(invalid(InvalidReason::Malformed));
        }
        let kid = check_header(token)?;
        check_payload_text(token)?;
        let Some(key) = self.keys.find_verifying_key(&kid).await else {
            return Err(invalid(InvalidReason::UnknownKey));
        };
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|error| invalid(reason_of(error.kind())))?
            .claims;
        if claims.sub != claims.client_id {
            return Err(invalid(InvalidReason::Claims));
        }
        // Our issuer sets `exp = iat + ttl` exactly. A longer-lived token was not made by it:
        // whoever holds a copy of a signing key (a backup, a leaked database) could otherwise
        // mint tokens valid for a year. No leeway here: clock skew does not stretch a lifetime.
        let ttl = i64::try_from(self.settings.ttl.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_sub(claims.iat) > ttl {
            return Err(invalid(InvalidReason::Lifetime));
        }
        check_times(
            Some(claims.exp),
            Some(claims.iat),
            claims.nbf,
            self.clock.now(),
            self.settings.leeway,
        )?;
        Ok((kid, claims))
    }

    /// The whole check of a request to a protected resource: the bearer token of the
    /// `Authorization` header value, [`validate`](Self::validate), the client still active and
    /// the token not revoked ([`ClientRegistry::is_token_active`], from the revocation cache),
    /// then `required_scope`.
    ///
    /// # Errors
    /// [`TokenError::Missing`], [`TokenError::Invalid`], [`TokenError::Expired`],
    /// [`TokenError::Revoked`], [`TokenError::InsufficientScope`], or
    /// [`TokenError::Unavailable`] when the client store cannot be reached.
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        registry: &ClientRegistry,
        required_scope: &str,
    ) -> Result<AccessClaims, TokenError> {
        let token = bearer_token(authorization)?;
        let claims = self.validate(token).await?;
        match registry
            .is_token_active(&claims.client_id, &claims.jti)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::Revoked),
            Err(error) => {
                tracing::warn!(%error, "revocation check failed");
                return Err(TokenError::Unavailable);
            }
        }
        claims.require_scope(required_scope)
    }

    /// [`authorize`](Self::authorize) for `POST /vorgang`: scope [`IMPORT_SCOPE`].
    ///
    /// # Errors
    /// As [`authorize`](Self::authorize).
    pub async fn authorize_import(
        &self,
        authorization: Option<&str>,
        registry: &ClientRegistry,
    ) -> Result<AccessClaims, TokenError> {
        self.authorize(authorization, registry, IMPORT_SCOPE).await
    }
}

/// `exp` (if given) must not have passed and `iat`/`nbf` (if given) must not lie in the future,
/// each with `leeway`.
pub(crate) fn check_times(
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    now: DateTime<Utc>,
    leeway: Duration,
) -> Result<(), TokenError> {
    let now = now.timestamp();
    let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
    if exp.is_some_and(|exp| exp.saturating_add(leeway) <= now) {
        return Err(TokenError::Expired);
    }
    let not_before = nbf.unwrap_or(i64::MIN).max(iat.unwrap_or(i64::MIN));
    if not_before > now.saturating_add(leeway) {
        return Err(TokenError::Invalid(InvalidReason::NotYetValid));
    }
    Ok(())
}

/// Checks `alg`, `typ` and `crit` of the unverified header and returns the `kid`.
/// The payload must be UTF-8 text (RFC 7519 §7.2: a JWT's claims set is a JSON object, and JSON
/// is Unicode text). serde_json skips the string value of a claim we ignore without checking its
/// UTF-8, so a signed payload with invalid bytes there would otherwise pass (found by fuzzing).
fn check_payload_text(token: &str) -> Result<(), TokenError> {
    let encoded = token.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Invalid(InvalidReason::Malformed))?;
    std::str::from_utf8(&bytes).map_err(|_| TokenError::Invalid(InvalidReason::Malformed))?;
    Ok(())
}

fn check_header(token: &str) -> Result<String, TokenError> {
    let invalid = TokenError::Invalid;
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| invalid(InvalidReason::Malformed))?;
    let header: RawHeader =
        serde_json::from_slice(&bytes).map_err(|_| invalid(InvalidReason::Malformed))?;
    if header.alg.as_ref().and_then(serde_json::Value::as_str) != Some("EdDSA") {
        return Err(invalid(InvalidReason::Algorithm));
    }
    let typ_ok = header
        .typ
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .is_some_and(|typ| {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
                || typ.eq_ignore_ascii_case("application/at+jwt")
        });
    if !typ_ok {
        return Err(invalid(InvalidReason::Type));
    }
    if header.crit.is_some() {
        return Err(invalid(InvalidReason::CriticalHeader));
    }
    match header.kid {
        Some(serde_json::Value::String(kid)) if !kid.is_empty() => Ok(kid),
        _ => Err(invalid(InvalidReason::UnknownKey)),
    }
}

pub(crate) fn reason_of(kind: &ErrorKind) -> InvalidReason {
    match kind {
        ErrorKind::InvalidSignature => InvalidReason::Signature,
        ErrorKind::InvalidIssuer => InvalidReason::Issuer,
        ErrorKind::InvalidAudience => InvalidReason::Audience,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => InvalidReason::Algorithm,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::InvalidSubject
        | ErrorKind::Json(_) => InvalidReason::Claims,
        ErrorKind::ImmatureSignature => InvalidReason::NotYetValid,
        _ => InvalidReason::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(None), Err(TokenError::Missing));
        assert_eq!(bearer_token(Some("Basic abc")), Err(TokenError::Missing));
        assert_eq!(bearer_token(Some("Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer_token(Some("bearer  a.b-_c")), Ok("a.b-_c"));
        assert_eq!(
            bearer_token(Some("Bearer")),
            Err(TokenError::Invalid(InvalidReason::Malformed))
        );
        assert_eq!(
            bearer_token(Some("Bearer a b")),
            Err(TokenError::Invalid(InvalidReason::Malformed))
        );
    }

    #[test]
    fn www_authenticate_values() {
        assert_eq!(
            TokenError::Missing.www_authenticate().as_deref(),
            Some("Bearer realm=\"vorgang\"")
        );
        assert_eq!(
            TokenError::Expired.www_authenticate().as_deref(),
            Some("Bearer realm=\"vorgang\", error=\"invalid_token\"")
        );
        let scope = TokenError::InsufficientScope {
            required: IMPORT_SCOPE.to_owned(),
        };
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.www_authenticate().as_deref(),
            Some(
                "Bearer realm=\"vorgang\", error=\"insufficient_scope\", scope=\"drkleinrk-api/vorgang:import\""
            )
        );
        assert_eq!(TokenError::Unavailable.status(), 503);
    }

    #[test]
    fn scopes_split_on_spaces() {
        let claims = AccessClaims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "c".into(),
            client_id: "c".into(),
            scope: "a b  drkleinrk-api/vorgang:import".into(),
            iat: 0,
            exp: 0,
            nbf: None,
            jti: "j".into(),
        };
        assert!(claims.has_scope(IMPORT_SCOPE));
        assert!(claims.has_scope("a"));
        assert!(!claims.has_scope("drkleinrk-api"));
        assert!(!claims.has_scope(""));
    }
}
