//! OAuth2 client-credentials tokens of the Europace authorization API, cached per scope set.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;
use vorgang_core::{EuropaceError, TraceId};

use crate::config::{EuropaceConfig, Impersonation, RetryPolicy};
use crate::http::{self, BodyError, TRACE_HEADER, TRACEPARENT_HEADER};
use crate::observe::{CallTarget, Observer};

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
        Self {
            inner: Arc::new(Inner {
                http,
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

    /// The form of the token request.
    fn form(&self) -> String {
        let inner = &self.inner;
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if !inner.scope.is_empty() {
            form.append_pair("scope", &inner.scope);
        }
        if let Some(impersonation) = &inner.impersonation {
            form.append_pair("subject", &impersonation.subject);
            form.append_pair("actor", &impersonation.actor);
        }
        form.finish()
    }

    /// One token request, reported to the observer.
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
        let response = inner
            .http
            .post(inner.auth_url.clone())
            .basic_auth(&inner.client_id, Some(inner.client_secret.expose_secret()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(TRACE_HEADER, http::trace_header(trace))
            .header(TRACEPARENT_HEADER, http::traceparent(trace))
            .body(self.form())
            .send()
            .await
            .map_err(|error| EuropaceError::Unavailable {
                reason: format!("token request failed: {}", http::describe(&error)),
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            let body = http::read_body(response)
                .await
                .map_err(|error| match error {
                    BodyError::Transport(error) => EuropaceError::Unavailable {
                        reason: format!("token answer lost: {}", http::describe(&error)),
                        retry_after: None,
                    },
                    BodyError::TooLarge => protocol("token answer too large"),
                })?;
            let (token, lifetime) = parse_token(&body)?;
            tracing::debug!(
                trace = %trace,
                scope = %inner.scope,
                expires_in_s = lifetime.as_secs(),
                "Europace token fetched"
            );
            return Ok(Cached {
                token,
                refresh_at: started + lifetime.saturating_sub(refresh_margin(lifetime)),
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(EuropaceError::Unavailable {
                reason: format!("token endpoint answered {}", status.as_u16()),
                retry_after: http::retry_after(response.headers()),
            });
        }
        Err(EuropaceError::Rejected {
            status: status.as_u16(),
        })
    }
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

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
}

/// The token and its lifetime from a successful answer. Error reasons are fixed phrases: the body
/// is never quoted.
fn parse_token(body: &[u8]) -> Result<(AccessToken, Duration), EuropaceError> {
    let answer: TokenAnswer =
        serde_json::from_slice(body).map_err(|_| protocol("token answer is not a JSON object"))?;
    let token_type = answer
        .token_type
        .ok_or_else(|| protocol("token answer without token_type"))?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(protocol("token_type is not Bearer"));
    }
    let secret = answer
        .access_token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| protocol("token answer without access_token"))?;
    let token = AccessToken::new(&secret)
        .ok_or_else(|| protocol("access_token cannot be sent in a header"))?;
    let lifetime = match answer.expires_in {
        None | Some(serde_json::Value::Null) => LIFETIME_WITHOUT_EXPIRES_IN,
        Some(value) => lifetime(&value).ok_or_else(|| protocol("expires_in is not a number"))?,
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
