//! OAuth2 client-credentials tokens of the Europace authorization API, cached per scope set.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope,
    StandardRevocableToken, TokenUrl,
};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;
use vorgang_core::{EuropaceError, TraceId};

use crate::config::{EuropaceConfig, Impersonation, RetryPolicy};
use crate::http::{self, BodyError, TRACE_HEADER, TRACEPARENT_HEADER};
use crate::observe::{CallTarget, Observer};

/// The `oauth2` crate's client for our flow: its `BasicClient` with a token endpoint set, and
/// with [`TokenAnswer`] as the token response, which reads `expires_in` as Europace's gateways
/// have sent it (a number or a numeric string) and lets us tell which member is missing.
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Longest time a token is refreshed before it expires.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed when the token endpoint does not send `expires_in`.
const LIFETIME_WITHOUT_EXPIRES_IN: Duration = Duration::from_secs(60);

/// A Europace access token. `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    authorization: HeaderValue,
}

impl AccessToken {
    fn new(secret: &str) -> Option<Self> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {secret}")).ok()?;
        authorization.set_sensitive(true);
        Some(Self {
            secret: SecretString::from(secret),
            authorization,
        })
    }

    /// The raw token, e.g. to call a Europace API this crate does not cover. Do not log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The `Authorization: Bearer …` header value, marked sensitive.
    pub(crate) fn authorization(&self) -> HeaderValue {
        self.authorization.clone()
    }

    fn same_as(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// The cached token of one scope set, shared by every request that needs that scope.
///
/// The client-credentials exchange itself (the form, the token answer, RFC 6749 error answers)
/// is the `oauth2` crate's; it sends through our reqwest client (timeouts, TLS, connection
/// pool shared with the other Europace calls). What it does not do stays here: caching, single
/// flight, retries, `Retry-After`, the trace header and the status of a refusal.
///
/// - The token is requested at `auth_url` with HTTP Basic (client id and secret), the form
///   `grant_type=client_credentials&scope=…` (plus `subject` and `actor` when impersonating) and
///   the caller's `X-TraceId`.
/// - It is reused until shortly before `expires_in` runs out: the refresh margin is 10 % of the
///   lifetime, at most 60 s.
/// - Single flight: while one refresh is running, other callers wait for it instead of sending
///   their own request, and share its result, success or failure.
/// - A `token_type` other than `Bearer` (compared case-insensitively) is a
///   [`EuropaceError::Protocol`].
/// - 5xx, 429 and transport errors are retried with jittered exponential backoff honouring
///   `Retry-After` (capped at [`RetryPolicy::max_delay`]), up to [`RetryPolicy::max_attempts`];
///   then [`EuropaceError::Unavailable`]. Any other 4xx is [`EuropaceError::Rejected`] at once.
/// - After an API answered 401, [`TokenCache::invalidate`] drops the token so the next call
///   fetches a new one.
///
/// Neither the secret nor a token is ever logged. Clones share the cache.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    oauth: OAuthClient,
    auth_url: Url,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    impersonation: Option<Impersonation>,
    retry: RetryPolicy,
    observer: Observer,
    state: Mutex<State>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    token: Option<Cached>,
    /// Number of finished refreshes; lets a waiter see that a refresh ran while it waited.
    refreshes: u64,
    /// Error of the last refresh, if it failed.
    last_error: Option<EuropaceError>,
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

impl TokenCache {
    /// A cache for tokens with `scope`, requested with the endpoint, credentials, impersonation
    /// and retry policy of `config`, sent through `http` (which carries the timeouts).
    #[must_use]
    pub fn new(http: reqwest::Client, config: &EuropaceConfig, scope: impl Into<String>) -> Self {
        let oauth = oauth2::Client::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                config.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::BasicAuth)
            .set_token_uri(TokenUrl::from_url(config.auth_url.clone()));
        Self {
            inner: Arc::new(Inner {
                http,
                oauth,
                auth_url: config.auth_url.clone(),
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                scope: scope.into(),
                impersonation: config.impersonation.clone(),
                retry: config.retry,
                observer: Observer(config.observer.clone()),
                state: Mutex::new(State::default()),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The scopes this cache requests.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.inner.scope
    }

    /// A valid token: the cached one, or a fresh one (one request at a time, see the type's
    /// documentation). `trace` is sent as `X-TraceId` if a request is needed.
    ///
    /// # Errors
    ///
    /// [`EuropaceError::Rejected`] (the token endpoint refused us with a 4xx other than 429),
    /// [`EuropaceError::Unavailable`] (unreachable or 5xx/429 after all retries) or
    /// [`EuropaceError::Protocol`] (an answer without a usable bearer token).
    pub async fn token(&self, trace: &TraceId) -> Result<AccessToken, EuropaceError> {
        let seen = {
            let state = self.state();
            if let Some(token) = state.valid_token() {
                return Ok(token);
            }
            state.refreshes
        };
        let _flight = self.inner.refresh.lock().await;
        {
            let state = self.state();
            if let Some(token) = state.valid_token() {
                return Ok(token);
            }
            if state.refreshes != seen
                && let Some(error) = &state.last_error
            {
                // The refresh we waited for failed: share its outcome instead of hammering the
                // token endpoint once per waiting caller.
                return Err(error.clone());
            }
        }
        let result = self.fetch(trace).await;
        let mut state = self.state();
        state.refreshes = state.refreshes.wrapping_add(1);
        match result {
            Ok(cached) => {
                let token = cached.token.clone();
                state.token = Some(cached);
                state.last_error = None;
                Ok(token)
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Forgets `token` if it is still the cached one (after an API answered 401 with it), so the
    /// next [`TokenCache::token`] fetches a new one. A token that was already replaced is ignored,
    /// so many callers failing with the same stale token cause a single refresh.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut state = self.state();
        if state
            .token
            .as_ref()
            .is_some_and(|cached| cached.token.same_as(token))
        {
            state.token = None;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests a token, retrying what may be retried.
    async fn fetch(&self, trace: &TraceId) -> Result<Cached, EuropaceError> {
        let policy = &self.inner.retry;
        let attempts = http::max_attempts(policy);
        let mut attempt = 1;
        loop {
            match self.request_once(trace).await {
                Ok(cached) => return Ok(cached),
                Err(EuropaceError::Unavailable {
                    reason,
                    retry_after,
                }) if attempt < attempts => {
                    let wait = http::backoff(policy, attempt, retry_after);
                    tracing::warn!(
                        trace = %trace,
                        scope = %self.inner.scope,
                        attempt,
                        reason = %reason,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "Europace token request failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => {
                    tracing::warn!(
                        trace = %trace,
                        scope = %self.inner.scope,
                        attempt,
                        error = %error,
                        "Europace token request failed"
                    );
                    return Err(error);
                }
            }
        }
    }

    /// One token request through `oauth2`: it builds the form (`grant_type=client_credentials`,
    /// `scope`, and `subject`/`actor` when impersonating) and reads the answer; [`Self::send`]
    /// carries it.
    async fn request_once(&self, trace: &TraceId) -> Result<Cached, EuropaceError> {
        let started = std::time::Instant::now();
        let result = self.exchange(trace).await;
        self.inner
            .observer
            .result(CallTarget::Token, started, result)
    }

    async fn exchange(&self, trace: &TraceId) -> Result<Cached, EuropaceError> {
        let inner = &self.inner;
        let started = Instant::now();
        let mut request = inner.oauth.exchange_client_credentials().add_scopes(
            inner
                .scope
                .split_whitespace()
                .map(|s| Scope::new(s.to_owned())),
        );
        if let Some(impersonation) = &inner.impersonation {
            request = request
                .add_extra_param("subject", impersonation.subject.as_str())
                .add_extra_param("actor", impersonation.actor.as_str());
        }
        // The HTTP function owns what it uses (no borrow of this call lives in its futures: the
        // futures of the ports must be `Send` for every lifetime, which a borrowing closure's
        // future cannot prove).
        let answered: Arc<Mutex<Option<Answered>>> = Arc::new(Mutex::new(None));
        let send = {
            let inner = Arc::clone(&self.inner);
            let trace = trace.clone();
            let answered = Arc::clone(&answered);
            move |request: oauth2::HttpRequest| {
                send(
                    Arc::clone(&inner),
                    request,
                    trace.clone(),
                    Arc::clone(&answered),
                )
            }
        };
        let result = request.request_async(&send).await;
        let answered = *answered.lock().unwrap_or_else(PoisonError::into_inner);

        let answer = match (result, answered) {
            (Err(RequestTokenError::Request(SendError::Unavailable(reason))), _) => {
                return Err(EuropaceError::Unavailable {
                    reason,
                    retry_after: None,
                });
            }
            (Err(RequestTokenError::Request(SendError::TooLarge)), _) => {
                return Err(protocol("token answer too large"));
            }
            (result, Some(answered)) if answered.status != StatusCode::OK => {
                let status = answered.status;
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    return Err(EuropaceError::Unavailable {
                        reason: format!("token endpoint answered {}", status.as_u16()),
                        retry_after: answered.retry_after,
                    });
                }
                if let Err(RequestTokenError::ServerResponse(error)) = &result {
                    // The RFC 6749 code only (`invalid_client`, …): the description is free
                    // text of Europace's and is not logged.
                    tracing::warn!(
                        trace = %trace,
                        status = status.as_u16(),
                        error = %error.error(),
                        "Europace refused the token request"
                    );
                }
                return Err(EuropaceError::rejected(status.as_u16()));
            }
            (Ok(answer), _) => answer,
            // 200 without a token answer: not JSON, not an object, a member of the wrong type.
            (Err(_), _) => return Err(protocol("token answer is not a JSON token response")),
        };
        let (token, lifetime) = usable(&answer)?;
        tracing::debug!(
            trace = %trace,
            scope = %inner.scope,
            expires_in_s = lifetime.as_secs(),
            "Europace token fetched"
        );
        Ok(Cached {
            token,
            refresh_at: started + lifetime.saturating_sub(refresh_margin(lifetime)),
        })
    }
}

/// The HTTP function `oauth2` calls (see [`TokenCache::request_once`]): sends its request through our reqwest client with the
/// trace header, reads the answer (at most [`http::MAX_BODY_BYTES`]) and notes its status
/// and `Retry-After` in `answered`, which `oauth2`'s result does not carry.
///
/// HTTP Basic is set here, as RFC 7617 has it (`base64(id ":" secret)`): `oauth2` would
/// form-encode id and secret first (RFC 6749 §2.3.1), which changes any secret with a
/// reserved character, and Europace documents plain HTTP Basic.
async fn send(
    inner: Arc<Inner>,
    request: oauth2::HttpRequest,
    trace: TraceId,
    answered: Arc<Mutex<Option<Answered>>>,
) -> Result<oauth2::HttpResponse, SendError> {
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    headers.remove(AUTHORIZATION);
    let response = inner
        .http
        .request(parts.method, inner.auth_url.clone())
        .headers(headers)
        .basic_auth(&inner.client_id, Some(inner.client_secret.expose_secret()))
        .header(TRACE_HEADER, http::trace_header(&trace))
        .header(TRACEPARENT_HEADER, http::traceparent(&trace))
        .body(body)
        .send()
        .await
        .map_err(|error| {
            SendError::Unavailable(format!("token request failed: {}", http::describe(&error)))
        })?;
    let status = response.status();
    let retry_after = http::retry_after(response.headers());
    let mut answer = ::http::Response::builder().status(status);
    if let Some(content_type) = response.headers().get(reqwest::header::CONTENT_TYPE) {
        answer = answer.header(reqwest::header::CONTENT_TYPE, content_type.clone());
    }
    *answered.lock().unwrap_or_else(PoisonError::into_inner) = Some(Answered {
        status,
        retry_after,
    });
    let body = http::read_body(response)
        .await
        .map_err(|error| match error {
            BodyError::Transport(error) => {
                SendError::Unavailable(format!("token answer lost: {}", http::describe(&error)))
            }
            BodyError::TooLarge => SendError::TooLarge,
        })?;
    answer
        .body(body)
        .map_err(|_| SendError::Unavailable("token answer unreadable".to_owned()))
}

/// What [`send`] saw of the answer.
#[derive(Debug, Clone, Copy)]
struct Answered {
    status: StatusCode,
    retry_after: Option<Duration>,
}

/// Why [`send`] has no answer for `oauth2`. Fixed phrases: never a URL or a body.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The request failed or the answer was lost; may be retried.
    #[error("{0}")]
    Unavailable(String),
    /// The answer exceeds [`http::MAX_BODY_BYTES`].
    #[error("token answer too large")]
    TooLarge,
}

impl State {
    fn valid_token(&self) -> Option<AccessToken> {
        self.token
            .as_ref()
            .filter(|cached| Instant::now() < cached.refresh_at)
            .map(|cached| cached.token.clone())
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("auth_url", &self.inner.auth_url.as_str())
            .field("client_id", &self.inner.client_id)
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

/// How long before expiry a token is replaced: 10 % of its lifetime, at most 60 s.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

fn protocol(reason: &str) -> EuropaceError {
    EuropaceError::Protocol {
        reason: reason.to_owned(),
    }
}

/// A token answer (RFC 6749 §5.1) as `oauth2` reads it for us. Every member may be missing or
/// odd here, so that [`usable`] can say which one is (`oauth2`'s own type would only fail to
/// parse). `Debug` never shows the token.
#[derive(Debug, Deserialize, Serialize)]
struct TokenAnswer {
    /// Empty when missing.
    #[serde(default = "no_token")]
    access_token: oauth2::AccessToken,
    /// Compared case-insensitively (RFC 6749 §7.1); `Extension("")` when missing.
    #[serde(default = "no_token_type", deserialize_with = "token_type_any_case")]
    token_type: BasicTokenType,
    /// A number of seconds, or a numeric string; checked by [`usable`].
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn no_token() -> oauth2::AccessToken {
    oauth2::AccessToken::new(String::new())
}

fn no_token_type() -> BasicTokenType {
    BasicTokenType::Extension(String::new())
}

fn token_type_any_case<'de, D>(deserializer: D) -> Result<BasicTokenType, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    Ok(match text.to_ascii_lowercase().as_str() {
        "bearer" => BasicTokenType::Bearer,
        "mac" => BasicTokenType::Mac,
        _ => BasicTokenType::Extension(text),
    })
}

impl oauth2::TokenResponse for TokenAnswer {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.as_ref().and_then(lifetime)
    }

    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        None
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

/// The token and its lifetime from an answer body (as [`TokenCache`] gets it through
/// `oauth2`). Error reasons are fixed phrases: the body is never quoted.
#[cfg(test)]
fn parse_token(body: &[u8]) -> Result<(AccessToken, Duration), EuropaceError> {
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|_| protocol("token answer is not a JSON object"))?;
    usable(&answer)
}

/// The token and its lifetime, if the answer carries a usable bearer token.
fn usable(answer: &TokenAnswer) -> Result<(AccessToken, Duration), EuropaceError> {
    match &answer.token_type {
        BasicTokenType::Bearer => {}
        BasicTokenType::Extension(text) if text.is_empty() => {
            return Err(protocol("token answer without token_type"));
        }
        _ => return Err(protocol("token_type is not Bearer")),
    }
    let secret = answer.access_token.secret();
    if secret.is_empty() {
        return Err(protocol("token answer without access_token"));
    }
    let token = AccessToken::new(secret)
        .ok_or_else(|| protocol("access_token cannot be sent in a header"))?;
    let lifetime = match &answer.expires_in {
        None | Some(serde_json::Value::Null) => LIFETIME_WITHOUT_EXPIRES_IN,
        Some(value) => lifetime(value).ok_or_else(|| protocol("expires_in is not a number"))?,
    };
    Ok((token, lifetime))
}

fn lifetime(value: &serde_json::Value) -> Option<Duration> {
    match value {
        serde_json::Value::Number(number) => {
            number.as_u64().map(Duration::from_secs).or_else(|| {
                number
                    .as_f64()
                    .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            })
        }
        serde_json::Value::String(text) => text.trim().parse().ok().map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_ten_percent_capped_at_a_minute() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            MAX_REFRESH_MARGIN
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(100)),
            Duration::from_secs(10)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn parses_a_token_answer() -> Result<(), EuropaceError> {
        let (token, lifetime) =
            parse_token(br#"{"access_token":"abc","token_type":"BEARER","expires_in":3600}"#)?;
        assert_eq!(token.expose_secret(), "abc");
        assert_eq!(lifetime, Duration::from_secs(3600));
        let (_, lifetime) =
            parse_token(br#"{"access_token":"abc","token_type":"bearer","expires_in":"60"}"#)?;
        assert_eq!(lifetime, Duration::from_secs(60));
        let (_, lifetime) = parse_token(br#"{"access_token":"abc","token_type":"Bearer"}"#)?;
        assert_eq!(lifetime, LIFETIME_WITHOUT_EXPIRES_IN);
        Ok(())
    }

    #[test]
    fn rejects_unusable_token_answers() {
        for body in [
            &b"not json"[..],
            br#"{"access_token":"abc","token_type":"mac","expires_in":60}"#,
            br#"{"access_token":"","token_type":"Bearer","expires_in":60}"#,
            br#"{"token_type":"Bearer","expires_in":60}"#,
            br#"{"access_token":"abc","expires_in":60}"#,
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":-5}"#,
            br#"{"access_token":"a\nb","token_type":"Bearer","expires_in":60}"#,
        ] {
            assert!(matches!(
                parse_token(body),
                Err(EuropaceError::Protocol { .. })
            ));
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = AccessToken::new("top-secret");
        assert!(token.is_some_and(|token| !format!("{token:?}").contains("top-secret")));
    }
}
