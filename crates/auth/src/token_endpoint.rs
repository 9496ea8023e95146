//! `POST /oauth2/token`: the client credentials grant (RFC 6749 §4.4) with `client_secret_basic`
//! and `client_secret_post` (§2.3.1), errors as §5.2, brute-force throttling.
//!
//! Framework-agnostic: the server parses the urlencoded body into [`TokenRequest::form`] (all
//! pairs, duplicates kept), passes the raw `Authorization` header and the peer address, and maps
//! [`TokenResponse`] / [`OAuthError`] to HTTP, adding [`NO_STORE_HEADERS`] to both.

use std::net::IpAddr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use i18n::{Lang, OAuth};
use serde::Serialize;

use crate::clients::{AuthOutcome, ClientRegistry, MAX_CREDENTIAL_LEN, is_valid_scope_token};
use crate::error::AuthError;
use crate::ports::{ClientRecord, RevokedToken};
use crate::throttle::{Throttle, ThrottleKey};
use crate::token::{TokenIssuer, TokenValidator};
use crate::{INTROSPECT_SCOPE, REALM};

/// The only grant type supported.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// Headers for every answer of the token endpoint (RFC 6749 §5.1).
pub const NO_STORE_HEADERS: [(&str, &str); 2] =
    [("Cache-Control", "no-store"), ("Pragma", "no-cache")];

/// Seconds a client is asked to wait when the client store is unavailable.
const UNAVAILABLE_RETRY_AFTER: u64 = 5;

const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One request to the token endpoint.
#[derive(Clone, Default)]
pub struct TokenRequest {
    /// The raw `Authorization` header value, if any.
    pub authorization: Option<String>,
    /// The `application/x-www-form-urlencoded` body, decoded, in order, duplicates preserved.
    pub form: Vec<(String, String)>,
    /// The peer address (after trusted-proxy handling), for throttling.
    pub remote_ip: Option<IpAddr>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials: names only.
        f.debug_struct("TokenRequest")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "form",
                &self
                    .form
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("remote_ip", &self.remote_ip)
            .finish()
    }
}

/// The successful answer (RFC 6749 §5.1), serialised as the JSON body.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token (a credential: never log it).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// An error answer (RFC 6749 §5.2). The description never contains a submitted value.
///
/// `description` is a message id of the catalogue ([`i18n::OAuth`]): the server renders it in the
/// request's language ([`body`](Self::body)); `error` is the same in every language. `Display`
/// is English, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {}", .description.text(Lang::En))]
pub struct OAuthError {
    /// The error code: `invalid_request`, `invalid_client`, `unsupported_grant_type`,
    /// `invalid_scope`, `slow_down`, `temporarily_unavailable` or `server_error`.
    pub error: &'static str,
    /// `error_description`, as a message id.
    pub description: OAuth,
    /// HTTP status: 400, 401 (`invalid_client`), 413 (`invalid_request` for a body over the
    /// limit), 429 (`slow_down`), 500 or 503.
    pub status: u16,
    /// `WWW-Authenticate` header value (with 401).
    pub www_authenticate: Option<String>,
    /// `Retry-After` header value in seconds (with 429 and 503).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    error_description: &'a str,
}

impl OAuthError {
    fn new(error: &'static str, status: u16, description: OAuth) -> Self {
        Self {
            error,
            description,
            status,
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// `invalid_request`, 400.
    #[must_use]
    pub fn invalid_request(description: OAuth) -> Self {
        Self::new("invalid_request", 400, description)
    }

    /// `invalid_request` with status 413: the body is larger than `limit` bytes. RFC 6749 has
    /// no code of its own for it; the status tells HTTP clients, the code OAuth clients.
    #[must_use]
    pub fn request_too_large(limit: usize) -> Self {
        Self::new(
            "invalid_request",
            413,
            OAuth::RequestTooLarge { max_bytes: limit },
        )
    }

    /// `invalid_client`, 401 with `WWW-Authenticate: Basic realm="vorgang"`.
    #[must_use]
    pub fn invalid_client(description: OAuth) -> Self {
        Self {
            www_authenticate: Some(format!("Basic realm=\"{REALM}\"")),
            ..Self::new("invalid_client", 401, description)
        }
    }

    /// `unsupported_grant_type`, 400.
    #[must_use]
    pub fn unsupported_grant_type() -> Self {
        Self::new("unsupported_grant_type", 400, OAuth::UnsupportedGrantType)
    }

    /// `invalid_scope`, 400.
    #[must_use]
    pub fn invalid_scope(description: OAuth) -> Self {
        Self::new("invalid_scope", 400, description)
    }

    /// `insufficient_scope`, 403: the authenticated client lacks `scope` (RFC 6750 §3.1's code,
    /// used by the introspection endpoint for its callers).
    #[must_use]
    pub fn insufficient_scope(scope: &'static str) -> Self {
        Self::new("insufficient_scope", 403, OAuth::LacksScope { scope })
    }

    /// `slow_down`, 429 with `Retry-After`.
    #[must_use]
    pub fn slow_down(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new("slow_down", 429, OAuth::SlowDown)
        }
    }

    /// `temporarily_unavailable`, 503 with `Retry-After`.
    #[must_use]
    pub fn temporarily_unavailable() -> Self {
        Self {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER),
            ..Self::new(
                "temporarily_unavailable",
                503,
                OAuth::TemporarilyUnavailable,
            )
        }
    }

    /// `server_error`, 500.
    #[must_use]
    pub fn server_error() -> Self {
        Self::new("server_error", 500, OAuth::ServerError)
    }

    /// The JSON body in `lang`: `{"error":…,"error_description":…}` (only the description is
    /// translated).
    #[must_use]
    pub fn body(&self, lang: Lang) -> serde_json::Value {
        serde_json::to_value(OAuthErrorBody {
            error: self.error,
            error_description: &self.description.text(lang),
        })
        .unwrap_or_else(|_| serde_json::json!({ "error": self.error }))
    }

    fn from_auth_error(error: &AuthError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(%error, "token endpoint: store unavailable");
            Self::temporarily_unavailable()
        } else {
            tracing::error!(%error, "token endpoint failed");
            Self::server_error()
        }
    }
}

/// The token endpoint, and its siblings that authenticate clients the same way: token
/// introspection (RFC 7662, [`introspect`](Self::introspect)) and revocation (RFC 7009,
/// [`revoke`](Self::revoke)).
#[derive(Debug)]
pub struct TokenEndpoint {
    registry: ClientRegistry,
    issuer: TokenIssuer,
    validator: TokenValidator,
    throttle: Throttle,
}

/// The answer of the introspection endpoint (RFC 7662 §2.2), serialised as the JSON body:
/// `{"active":false}` for any token that is not currently valid, else its claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    /// Whether the token is currently valid (signature, issuer, audience, lifetime, client
    /// active, token not revoked).
    pub active: bool,
    /// The claims of an active token; absent for an inactive one (nothing is told about it).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub claims: Option<IntrospectedClaims>,
}

/// The members of an active token's introspection answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntrospectedClaims {
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Subject (the client id).
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Token id.
    pub jti: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
}

impl Introspection {
    /// `{"active":false}`.
    #[must_use]
    pub fn inactive() -> Self {
        Self {
            active: false,
            claims: None,
        }
    }
}

/// The parameters of a request after the checks that need no database.
pub(crate) struct Parsed {
    pub(crate) client_id: String,
    secret: String,
    pub(crate) scope: Option<Vec<String>>,
}

impl TokenEndpoint {
    /// An endpoint authenticating with `registry`, issuing with `issuer`, throttling with
    /// `throttle`.
    #[must_use]
    pub fn new(registry: ClientRegistry, issuer: TokenIssuer, throttle: Throttle) -> Self {
        let validator = issuer.validator();
        Self {
            registry,
            issuer,
            validator,
            throttle,
        }
    }

    /// The throttle (e.g. for metrics).
    #[must_use]
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Handles one request: request checks, throttle, client authentication, scope, issue.
    ///
    /// The attempt is reserved in the throttle (per IP and per client id) before the client
    /// store is asked and the secret hashed, and settled after: so parallel wrong attempts cannot
    /// all pass the throttle before the first has failed (see [`crate::throttle`]).
    ///
    /// # Errors
    /// An [`OAuthError`] to send as it is.
    pub async fn handle(&self, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let parsed = parse(&req)?;
        let client = self
            .authenticate(&parsed.client_id, &parsed.secret, req.remote_ip)
            .await?;

        let scopes = match parsed.scope {
            None => client.scopes.clone(),
            Some(requested) => {
                if let Some(_missing) = requested.iter().find(|s| !client.scopes.contains(s)) {
                    return Err(OAuthError::invalid_scope(OAuth::ScopeNotGranted));
                }
                requested
            }
        };
        let issued = self
            .issuer
            .issue(&client.client_id, &scopes)
            .await
            .map_err(|e| OAuthError::from_auth_error(&e))?;
        tracing::info!(client_id = %client.client_id, jti = %issued.jti, "issued an access token");
        Ok(TokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: issued.scope,
        })
    }

    /// `POST /oauth2/introspect` (RFC 7662): the caller authenticates like at the token
    /// endpoint (same throttle) and must hold [`INTROSPECT_SCOPE`]; the form's `token` is then
    /// checked like a bearer token of a protected resource (signature, issuer, audience,
    /// lifetime, client active, token not revoked). Anything not currently valid, whatever the
    /// reason, is `{"active":false}`.
    ///
    /// # Errors
    /// An [`OAuthError`] to send as it is: the request errors of the token endpoint,
    /// `invalid_request` without `token`, `insufficient_scope` (403) for a caller without the
    /// scope, `temporarily_unavailable` when the revocation check cannot reach the store.
    pub async fn introspect(&self, req: TokenRequest) -> Result<Introspection, OAuthError> {
        let parsed = parse_token_management(&req)?;
        let caller = self
            .authenticate(&parsed.client_id, &parsed.secret, req.remote_ip)
            .await?;
        if !caller.scopes.iter().any(|s| s == INTROSPECT_SCOPE) {
            tracing::info!(client_id = %caller.client_id, "introspection without its scope");
            return Err(OAuthError::insufficient_scope(INTROSPECT_SCOPE));
        }
        let Ok(claims) = self.validator.validate(&parsed.token).await else {
            return Ok(Introspection::inactive());
        };
        match self
            .registry
            .is_token_active(&claims.client_id, &claims.jti)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Ok(Introspection::inactive()),
            Err(error) => return Err(OAuthError::from_auth_error(&error)),
        }
        Ok(Introspection {
            active: true,
            claims: Some(IntrospectedClaims {
                scope: claims.scope,
                client_id: claims.client_id,
                sub: claims.sub,
                aud: claims.aud,
                iss: claims.iss,
                exp: claims.exp,
                iat: claims.iat,
                jti: claims.jti,
                token_type: "Bearer",
            }),
        })
    }

    /// `POST /oauth2/revoke` (RFC 7009): the caller authenticates like at the token endpoint
    /// and revokes one of its own tokens. Success whatever the token (garbage, expired, another
    /// client's: nothing happens, and the caller is not told); a token of the caller that is
    /// still valid is recorded as revoked, and this returns once every replica refuses it (see
    /// [`RevocationCache::revoked`](crate::revocation::RevocationCache::revoked)).
    ///
    /// # Errors
    /// An [`OAuthError`] to send as it is: the request errors of the token endpoint,
    /// `invalid_request` without `token`, `temporarily_unavailable` when the store fails.
    pub async fn revoke(&self, req: TokenRequest) -> Result<(), OAuthError> {
        let parsed = parse_token_management(&req)?;
        let caller = self
            .authenticate(&parsed.client_id, &parsed.secret, req.remote_ip)
            .await?;
        let claims = match self.validator.validate(&parsed.token).await {
            Ok(claims) => claims,
            Err(reason) => {
                tracing::info!(client_id = %caller.client_id, %reason, "revocation of an invalid token: nothing to do");
                return Ok(());
            }
        };
        if claims.client_id != caller.client_id {
            // RFC 7009 §2.1: only the client the token was issued to may revoke it. Answered
            // like success, so the answer tells nothing about another client's token.
            tracing::warn!(client_id = %caller.client_id, "revocation of another client's token refused");
            return Ok(());
        }
        let record = RevokedToken {
            jti: claims.jti.clone(),
            client_id: claims.client_id,
            expires_at: claims.exp,
            revoked_at: self.issuer_now(),
        };
        self.registry
            .revocations()
            .revoke_token(&record)
            .await
            .map_err(|error| OAuthError::from_auth_error(&AuthError::Store(error)))?;
        tracing::info!(client_id = %caller.client_id, jti = %claims.jti, "revoked an access token");
        Ok(())
    }

    fn issuer_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.issuer.now()
    }

    /// Client authentication of every endpoint here: the attempt is reserved in the throttle
    /// (per IP and per client id) before the client store is asked and the secret hashed, and
    /// settled after.
    async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
        remote_ip: Option<IpAddr>,
    ) -> Result<ClientRecord, OAuthError> {
        let client_key = ThrottleKey::client(client_id);
        let keys: Vec<ThrottleKey> = remote_ip
            .map(ThrottleKey::ip)
            .into_iter()
            .chain(std::iter::once(client_key))
            .collect();
        let reservation = self
            .throttle
            .reserve(&keys)
            .map_err(OAuthError::slow_down)?;

        let outcome = match self.registry.check_credentials(client_id, secret).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The store failed before any secret was checked: not the caller's failure.
                reservation.release();
                return Err(OAuthError::from_auth_error(&error));
            }
        };
        let client = match outcome {
            AuthOutcome::Authenticated(client) => {
                reservation.succeeded();
                client
            }
            AuthOutcome::UnknownClient => {
                // Unknown ids are counted per IP only, so the map holds real clients only.
                reservation.failed_per_ip_only();
                tracing::info!("token endpoint: unknown client");
                return Err(OAuthError::invalid_client(OAuth::AuthenticationFailed));
            }
            failure => {
                reservation.failed();
                tracing::info!(
                    %client_id,
                    outcome = ?failure,
                    "token endpoint: client authentication failed"
                );
                return Err(OAuthError::invalid_client(OAuth::AuthenticationFailed));
            }
        };
        Ok(client)
    }
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order, duplicates
/// kept (for [`TokenRequest::form`]). Strict, unlike browsers' lossy decoding: a body that is not
/// UTF-8, or a value with a bad `%` escape or one decoding to invalid UTF-8, is refused instead
/// of silently becoming U+FFFD, which could turn two different secrets into the same string.
///
/// # Errors
/// `invalid_request` (400), naming no submitted value.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let malformed = || OAuthError::invalid_request(OAuth::MalformedForm);
    let body = std::str::from_utf8(body).map_err(|_| malformed())?;
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((
                form_urldecode(name).ok_or_else(malformed)?,
                form_urldecode(value).ok_or_else(malformed)?,
            ))
        })
        .collect()
}

/// Form parameters we read; duplicates of others are ignored like the parameters themselves.
const KNOWN_PARAMETERS: [&str; 4] = ["grant_type", "scope", "client_id", "client_secret"];

/// Checks everything that needs no database and no hashing.
pub(crate) fn parse(req: &TokenRequest) -> Result<Parsed, OAuthError> {
    let [grant_type, scope, form_id, form_secret] = known_parameters(&req.form, KNOWN_PARAMETERS)?;

    match grant_type {
        None => return Err(OAuthError::invalid_request(OAuth::GrantTypeMissing)),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => return Err(OAuthError::unsupported_grant_type()),
    }
    let (client_id, secret) = client_credentials(req, form_id, form_secret)?;

    let scope = match scope {
        None => None,
        Some(scope) => {
            let mut scopes: Vec<String> = Vec::new();
            for token in scope.split(' ').filter(|s| !s.is_empty()) {
                if !is_valid_scope_token(token) {
                    return Err(OAuthError::invalid_scope(OAuth::ScopeMalformed));
                }
                if !scopes.iter().any(|s| s == token) {
                    scopes.push(token.to_owned());
                }
            }
            // Only spaces: as if omitted.
            (!scopes.is_empty()).then_some(scopes)
        }
    };

    Ok(Parsed {
        client_id,
        secret,
        scope,
    })
}

/// The parameters of an introspection or revocation request after the checks that need no
/// database.
struct ManagementRequest {
    client_id: String,
    secret: String,
    token: String,
}

/// Form parameters of introspection and revocation (`token_type_hint` is read and ignored: we
/// issue one kind of token).
const MANAGEMENT_PARAMETERS: [&str; 4] = ["token", "token_type_hint", "client_id", "client_secret"];

/// Checks an introspection or revocation request: no parameter repeated, a `token`, client
/// credentials as at the token endpoint.
fn parse_token_management(req: &TokenRequest) -> Result<ManagementRequest, OAuthError> {
    let [token, _hint, form_id, form_secret] = known_parameters(&req.form, MANAGEMENT_PARAMETERS)?;
    let (client_id, secret) = client_credentials(req, form_id, form_secret)?;
    let Some(token) = token else {
        return Err(OAuthError::invalid_request(OAuth::TokenMissing));
    };
    Ok(ManagementRequest {
        client_id,
        secret,
        token: token.to_owned(),
    })
}

/// The values of the `names` parameters (RFC 6749 §3.2: a parameter without a value counts as
/// omitted; none may repeat). Other parameters are ignored.
fn known_parameters<'a, const N: usize>(
    form: &'a [(String, String)],
    names: [&'static str; N],
) -> Result<[Option<&'a str>; N], OAuthError> {
    let mut params: [Option<&str>; N] = [None; N];
    for (name, value) in form {
        if value.is_empty() {
            continue;
        }
        if let Some(index) = names.iter().position(|known| known == name) {
            if params[index].is_some() {
                return Err(OAuthError::invalid_request(OAuth::ParameterRepeated {
                    name: names[index],
                }));
            }
            params[index] = Some(value);
        }
    }
    Ok(params)
}

/// The client id and secret: from HTTP Basic, or from the form (`client_secret_post`), never
/// both.
fn client_credentials(
    req: &TokenRequest,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<(String, String), OAuthError> {
    let authorization = req
        .authorization
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    let (client_id, secret) = match authorization {
        Some(header) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(OAuth::TwoAuthenticationMethods));
            }
            let (id, secret) = parse_basic(header)?;
            if form_id.is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::invalid_request(OAuth::ClientIdMismatch));
            }
            (id, secret)
        }
        None => match (form_id, form_secret) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(OAuth::SecretWithoutId));
            }
            (Some(_), None) | (None, None) => {
                return Err(OAuthError::invalid_client(OAuth::AuthenticationRequired));
            }
        },
    };
    if client_id.len() > MAX_CREDENTIAL_LEN || secret.len() > MAX_CREDENTIAL_LEN {
        return Err(OAuthError::invalid_client(OAuth::AuthenticationFailed));
    }
    Ok((client_id, secret))
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
pub(crate) fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client(OAuth::MalformedBasic);
    let (scheme, encoded) = header.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(OAuthError::invalid_client(OAuth::UnsupportedScheme));
    }
    let decoded = BASE64_LENIENT
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_urldecode(id).ok_or_else(malformed)?;
    let secret = form_urldecode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte;
/// `None` for a bad escape or invalid UTF-8.
///
/// `form_urlencoded::parse` would do the same leniently: it passes a bad escape through as
/// text and turns invalid UTF-8 into U+FFFD. So the escapes are checked first, and the
/// decoding ([`percent_encoding`], the crate under `form_urlencoded`) is strict about UTF-8.
fn form_urldecode(input: &str) -> Option<String> {
    let escapes_well_formed = input.split('%').skip(1).all(|after| {
        after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_well_formed {
        return None;
    }
    let spaced = input.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn urldecoding() {
        assert_eq!(form_urldecode("a+b%20c%2B%3a").as_deref(), Some("a b c+:"));
        assert_eq!(form_urldecode("%C3%A4").as_deref(), Some("ä"));
        assert_eq!(form_urldecode("%"), None);
        assert_eq!(form_urldecode("%4"), None);
        assert_eq!(form_urldecode("%zz"), None);
        assert_eq!(form_urldecode("%FF"), None);
        assert_eq!(form_urldecode("%%41"), None);
        assert_eq!(form_urldecode("100%"), None);
        assert_eq!(form_urldecode("%41%42%e2%82%ac").as_deref(), Some("AB€"));
        assert_eq!(form_urldecode("").as_deref(), Some(""));
    }

    #[test]
    fn form_bodies_are_decoded_strictly() {
        assert_eq!(
            parse_form(b"grant_type=client_credentials&scope=a+b%2Fc&&flag&x=").unwrap(),
            form(&[
                ("grant_type", "client_credentials"),
                ("scope", "a b/c"),
                ("flag", ""),
                ("x", ""),
            ])
        );
        assert_eq!(parse_form(b"").unwrap(), Vec::new());
        assert_eq!(parse_form(b"a=%C3%A4").unwrap(), form(&[("a", "ä")]));
        for bad in [
            &b"a=%"[..],
            b"a=%zz",
            b"a=%FF",
            b"%FF=1",
            b"a=\xff",
            b"a=\xc3",
        ] {
            let error = parse_form(bad).unwrap_err();
            assert_eq!((error.error, error.status), ("invalid_request", 400));
        }
        let error = OAuthError::request_too_large(4096);
        assert_eq!((error.error, error.status), ("invalid_request", 413));
    }

    #[test]
    fn basic_parsing() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aid:se%2Bcr+et:x"));
        assert_eq!(
            parse_basic(&header).unwrap(),
            ("my:id".to_owned(), "se+cr et:x".to_owned())
        );
        let unpadded = format!("basic {}", STANDARD.encode("id:s").trim_end_matches('='));
        assert_eq!(parse_basic(&unpadded).unwrap().0, "id");
        assert_eq!(
            parse_basic("Basic !!!").unwrap_err().error,
            "invalid_client"
        );
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon")))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            parse_basic("Bearer abc").unwrap_err().error,
            "invalid_client"
        );
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let req = TokenRequest {
            form: form(&[
                ("grant_type", "client_credentials"),
                ("scope", ""),
                ("scope", ""),
                ("client_id", "id"),
                ("client_secret", "s"),
                ("unknown", "1"),
                ("unknown", "2"),
            ]),
            ..TokenRequest::default()
        };
        let parsed = parse(&req).unwrap();
        assert_eq!(parsed.scope, None);
        assert_eq!(parsed.client_id, "id");
    }

    #[test]
    fn error_bodies_and_debug_hide_values() {
        let error = OAuthError::slow_down(7);
        assert_eq!(error.body(Lang::En)["error"], "slow_down");
        assert_eq!(error.body(Lang::De)["error"], "slow_down");
        assert_eq!(
            error.body(Lang::En)["error_description"],
            "too many failed authentication attempts; retry later"
        );
        assert_eq!(
            error.body(Lang::De)["error_description"],
            "zu viele fehlgeschlagene Anmeldeversuche; bitte später erneut versuchen"
        );
        assert_eq!(error.retry_after, Some(7));
        let req = TokenRequest {
            authorization: Some("Basic c2VjcmV0".into()),
            form: form(&[("client_secret", "hunter2")]),
            remote_ip: None,
        };
        let debug = format!("{req:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("c2VjcmV0"),
            "{debug}"
        );
    }
}
