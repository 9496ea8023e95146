//! [`JwksValidator`]: JWTs of an external authorization server, verified with the public keys
//! it publishes at its JWKS URL.
//!
//! The security rules, each pinned by a test (`tests/external.rs` and the server's
//! `external_idp` tests):
//!
//! - Only asymmetric keys are taken from the JWKS (`OKP` Ed25519, `EC` P-256/P-384, `RSA`);
//!   `oct` keys are skipped, so a published shared secret can never verify a token (the
//!   HS256-with-the-public-key confusion).
//! - Every key is bound to one algorithm, fixed by its type (and its `alg`, which must agree):
//!   the token's header cannot choose another one.
//! - The header must be typed `at+jwt` (RFC 9068; `JWT` or untyped only with
//!   `accept_plain_jwt`), carry no `crit` and name a `kid`.
//! - Keys are fetched on first use, not at start; an unknown `kid` fetches again at most once
//!   per 5 s (the issuer may have rotated), and the cache is renewed after 10 minutes. A failed
//!   fetch keeps the keys already known.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::{ExternalError, ExternalSettings, ScopeClaim, read_limited};
use crate::clock::Clock;
use crate::token::{
    ACCESS_TOKEN_TYP, AccessClaims, InvalidReason, MAX_TOKEN_LEN, TokenError, check_times,
    reason_of,
};

/// A key of the remote JWKS with the one algorithm it may verify.
#[derive(Clone)]
struct RemoteKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// A JWK Set as published: `{"keys": [...]}`.
///
/// The entries stay raw JSON here and are parsed one by one into a [`Jwk`]: a single entry
/// that does not parse (a key type or member this crate does not know) must not discard the
/// usable keys next to it, which parsing the whole document as a `JwkSet` would do.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

/// The usable keys of a JWKS, by `kid`.
fn usable_keys(document: JwksDocument) -> HashMap<String, RemoteKey> {
    document.keys.into_iter().filter_map(remote_key).collect()
}

/// The key of one JWK entry, if it is an asymmetric signing key we support.
fn remote_key(entry: Value) -> Option<(String, RemoteKey)> {
    let jwk: Jwk = serde_json::from_value(entry).ok()?;
    let kid = jwk.common.key_id.clone()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|key_use| *key_use != PublicKeyUse::Signature)
    {
        return None;
    }
    let declared = jwk.common.key_algorithm;
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        // An RSA key may serve any RSA algorithm; `alg` (default RS256) fixes which one.
        AlgorithmParameters::RSA(_) => match declared.unwrap_or(KeyAlgorithm::RS256) {
            KeyAlgorithm::RS256 => Algorithm::RS256,
            KeyAlgorithm::RS384 => Algorithm::RS384,
            KeyAlgorithm::RS512 => Algorithm::RS512,
            KeyAlgorithm::PS256 => Algorithm::PS256,
            KeyAlgorithm::PS384 => Algorithm::PS384,
            KeyAlgorithm::PS512 => Algorithm::PS512,
            _ => return None,
        },
        // `oct` (symmetric) and anything unknown: never.
        _ => return None,
    };
    if declared.is_some_and(|alg| alg != KeyAlgorithm::from(algorithm)) {
        return None;
    }
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some((kid, RemoteKey { algorithm, key }))
}

/// The JOSE name of an algorithm we accept (`""` for the others, which match no header).
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

/// The JOSE header as sent, every member optional and of any JSON type, so each defect gets
/// its own [`InvalidReason`] (jsonwebtoken's `Header` would fail on them all alike).
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

/// The claims of an external JWT that we read (the rest is ignored).
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
        let document: JwksDocument = serde_json::from_slice(&body).map_err(|_| {
            tracing::warn!("the JWKS is not a JSON object with a keys array");
            TokenError::Unavailable
        })?;
        let keys = usable_keys(document);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn algorithm_of(entry: Value) -> Option<Algorithm> {
        remote_key(entry).map(|(_, key)| key.algorithm)
    }

    #[test]
    fn symmetric_and_mismatched_jwks_entries_are_ignored() {
        assert!(remote_key(json!({"kty":"oct","kid":"h","k":"c2VjcmV0"})).is_none());
        assert!(remote_key(json!({"kty":"oct","kid":"h","k":"c2VjcmV0","alg":"HS256"})).is_none());
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(
            algorithm_of(json!({"kty":"OKP","crv":"Ed25519","kid":"e","x":x})),
            Some(Algorithm::EdDSA)
        );
        assert!(
            remote_key(json!({"kty":"OKP","crv":"Ed25519","kid":"e","x":x,"alg":"RS256"}))
                .is_none()
        );
        assert!(
            remote_key(json!({"kty":"OKP","crv":"Ed25519","kid":"e","x":x,"use":"enc"})).is_none()
        );
        assert!(
            remote_key(json!({"kty":"OKP","crv":"Ed25519","x":x})).is_none(),
            "no kid"
        );
        // An EC entry claiming the Ed25519 curve is no EC key we support.
        assert!(remote_key(json!({"kty":"EC","crv":"Ed25519","kid":"c","x":x,"y":x})).is_none());
    }

    #[test]
    fn the_key_type_fixes_the_algorithm() {
        let coordinate = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let ec = |crv: &str, alg: Option<&str>| {
            let mut entry = json!({"kty":"EC","crv":crv,"kid":"c","x":coordinate,"y":coordinate});
            if let Some(alg) = alg {
                entry["alg"] = json!(alg);
            }
            algorithm_of(entry)
        };
        assert_eq!(ec("P-256", None), Some(Algorithm::ES256));
        assert_eq!(ec("P-384", Some("ES384")), Some(Algorithm::ES384));
        assert_eq!(
            ec("P-256", Some("ES384")),
            None,
            "alg disagrees with the curve"
        );
        assert_eq!(ec("P-521", None), None, "ES512 is not supported");

        let rsa = |alg: Option<&str>| {
            let mut entry = json!({"kty":"RSA","kid":"r","n":"sXch","e":"AQAB"});
            if let Some(alg) = alg {
                entry["alg"] = json!(alg);
            }
            algorithm_of(entry)
        };
        assert_eq!(rsa(None), Some(Algorithm::RS256));
        assert_eq!(rsa(Some("PS384")), Some(Algorithm::PS384));
        assert_eq!(rsa(Some("HS256")), None);
        assert_eq!(rsa(Some("RSA-OAEP")), None, "an encryption algorithm");
    }

    #[test]
    fn one_unreadable_entry_does_not_discard_the_others() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let document: JwksDocument = serde_json::from_value(json!({"keys": [
            {"kty":"OKP","crv":"Ed25519","kid":"odd","x":x,"use":5},
            {"kty":"OKP","crv":"X25519","kid":"dh","x":x},
            "not a key",
            {"kty":"OKP","crv":"Ed25519","kid":"good","x":x},
        ]}))
        .unwrap();
        let keys = usable_keys(document);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
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
}
