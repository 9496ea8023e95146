//! The Europace KEX Vorgang Import API.

use std::time::Instant;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use url::Url;
use vorgang_core::model::Environment;
use vorgang_core::{EuropaceError, KexBody, KexImported, KexImporter, TraceId};

use crate::config::EuropaceConfig;
use crate::http::{self, BodyError, TRACE_HEADER, TRACEPARENT_HEADER};
use crate::observe::{CallOutcome, CallTarget, Observer};
use crate::token::TokenCache;

/// [`KexImporter`] over the KEX Vorgang Import API: `POST {kex_url}` (with
/// `?environment=PRODUCTION` for real business, without parameter for test mode), the body as
/// given, Bearer token of the KEX scope, `X-TraceId` and `traceparent`.
///
/// The import is **never** repeated once it may have reached Europace:
///
/// | what happened | result |
/// | --- | --- |
/// | 2xx with `vorgangsnummer` | [`KexImported`] |
/// | 2xx whose body cannot be read because the connection broke | [`EuropaceError::InDoubt`] |
/// | 2xx that is not JSON or names no `vorgangsnummer` | [`EuropaceError::Protocol`] (the case probably exists) |
/// | 401 | the token is dropped, a fresh one fetched and the import sent exactly once more |
/// | other 4xx | [`EuropaceError::Rejected`] with Europace's messages from the answer body (see below) |
/// | a second 401 | [`EuropaceError::Rejected`] without messages (they would be about our token) |
/// | 5xx, 429 | [`EuropaceError::Unavailable`] with `Retry-After` |
/// | no connection could be made (connect error or connect timeout) | [`EuropaceError::Unavailable`]: nothing was sent |
/// | timeout, reset or any other error once connected | [`EuropaceError::InDoubt`] |
/// | any other status (1xx, 3xx) | [`EuropaceError::InDoubt`] |
/// | no token (before anything is sent) | [`EuropaceError::Rejected`] or [`EuropaceError::Unavailable`] |
///
/// Europace's reasons for a refusal reach the partner (the 502 answer's `europaceMessages`), so
/// they are read from the refusal's body: a JSON object's `messages` (an array, as in the 201
/// answer; entries that are not strings are kept as compact JSON) or else its `message` (one
/// string, the shape of Europace's Partner API errors). Any other body (not JSON, no such
/// member, unreadable) gives no messages and is still `Rejected`. The messages may quote
/// submitted personal data: they are never logged, the log names only their number.
#[derive(Debug, Clone)]
pub struct KexApi {
    http: crate::http::PerThreadClient,
    url: Url,
    tokens: TokenCache,
    observer: Observer,
}

impl KexApi {
    /// An adapter sending through `http` (configured by [`crate::EuropaceClient::new`]) with tokens
    /// from `tokens`.
    pub(crate) fn new(
        http: crate::http::PerThreadClient,
        config: &EuropaceConfig,
        tokens: TokenCache,
    ) -> Self {
        Self {
            http,
            url: config.kex_url.clone(),
            tokens,
            observer: Observer(config.observer.clone()),
        }
    }

    /// The token cache this adapter uses (KEX scope).
    #[must_use]
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    fn url(&self, environment: Environment) -> Url {
        let mut url = self.url.clone();
        if environment == Environment::Production {
            url.query_pairs_mut()
                .append_pair("environment", Environment::Production.as_str());
        }
        url
    }
}

#[async_trait]
impl KexImporter for KexApi {
    async fn import(
        &self,
        environment: Environment,
        body: &KexBody,
        trace: &TraceId,
    ) -> Result<KexImported, EuropaceError> {
        let url = self.url(environment);
        // Serialised once by the use case; a cheap shared handle for each send (at most two:
        // once more after a 401).
        let payload = bytes::Bytes::copy_from_slice(body.as_bytes());
        let mut resent = false;
        loop {
            let token = self
                .tokens
                .token(trace)
                .await
                .map_err(nothing_sent_token_error)?;
            let started = Instant::now();
            let sent = self
                .http
                .get()
                .post(url.clone())
                .header(AUTHORIZATION, token.authorization())
                .header(TRACE_HEADER, http::trace_header(trace))
                .header(TRACEPARENT_HEADER, http::traceparent(trace))
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(payload.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    let outcome = transport_error(&error);
                    self.observer.observe(
                        CallTarget::Kex,
                        CallOutcome::of_error(&outcome),
                        started,
                    );
                    tracing::warn!(
                        trace = %trace,
                        environment = %environment,
                        kind = http::describe(&error),
                        error = %outcome,
                        "KEX import failed"
                    );
                    return Err(outcome);
                }
            };
            let status = response.status();
            if status.is_success() {
                let result = read_imported(response).await;
                self.observer
                    .observe(CallTarget::Kex, CallOutcome::of(&result), started);
                match &result {
                    // Debug: the import's own info line (`import state stored`, to `COMPLETED`)
                    // records the outcome; one more line per import cost measurable CPU at load
                    // (issue 10).
                    Ok(imported) => tracing::debug!(
                        trace = %trace,
                        environment = %environment,
                        status = status.as_u16(),
                        vorgangsnummer = %imported.vorgangsnummer,
                        "KEX import done"
                    ),
                    Err(error) => tracing::error!(
                        trace = %trace,
                        environment = %environment,
                        status = status.as_u16(),
                        error = %error,
                        "KEX import answered success but the answer is unusable"
                    ),
                }
                return result;
            }
            if status == StatusCode::UNAUTHORIZED && !resent {
                self.observer
                    .observe(CallTarget::Kex, CallOutcome::Rejected, started);
                tracing::info!(
                    trace = %trace,
                    "KEX import answered 401, refreshing the token and sending once more"
                );
                self.tokens.invalidate(&token);
                resent = true;
                continue;
            }
            let outcome = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                EuropaceError::Unavailable {
                    reason: format!("KEX import answered {}", status.as_u16()),
                    retry_after: http::retry_after(response.headers()),
                }
            } else if status == StatusCode::UNAUTHORIZED {
                EuropaceError::rejected(status.as_u16())
            } else if status.is_client_error() {
                EuropaceError::Rejected {
                    status: status.as_u16(),
                    messages: read_refusal_messages(response).await.into(),
                }
            } else {
                EuropaceError::InDoubt {
                    reason: format!("KEX import answered unexpected status {}", status.as_u16()),
                }
            };
            self.observer
                .observe(CallTarget::Kex, CallOutcome::of_error(&outcome), started);
            tracing::warn!(
                trace = %trace,
                environment = %environment,
                status = status.as_u16(),
                error = %outcome,
                "KEX import failed"
            );
            return Err(outcome);
        }
    }
}

/// A token error happens before the import is sent: nothing was created, so it is never
/// `InDoubt`, and an unreadable token answer counts as Europace being unavailable.
fn nothing_sent_token_error(error: EuropaceError) -> EuropaceError {
    match error {
        EuropaceError::Rejected { .. } | EuropaceError::Unavailable { .. } => error,
        EuropaceError::Protocol { reason } | EuropaceError::InDoubt { reason } => {
            EuropaceError::Unavailable {
                reason: format!("no Europace token ({reason}); nothing was sent"),
                retry_after: None,
            }
        }
    }
}

/// Only a failure to connect proves that nothing was sent; anything else may have reached
/// Europace.
fn transport_error(error: &reqwest::Error) -> EuropaceError {
    if error.is_connect() {
        EuropaceError::Unavailable {
            reason: format!("KEX import: {}; nothing was sent", http::describe(error)),
            retry_after: None,
        }
    } else if error.is_builder() {
        EuropaceError::Unavailable {
            reason: "KEX request could not be built; nothing was sent".to_owned(),
            retry_after: None,
        }
    } else if error.is_timeout() {
        EuropaceError::InDoubt {
            reason: "KEX import timed out after sending".to_owned(),
        }
    } else {
        EuropaceError::InDoubt {
            reason: "KEX import connection lost after sending".to_owned(),
        }
    }
}

async fn read_imported(response: reqwest::Response) -> Result<KexImported, EuropaceError> {
    let body = http::read_body(response)
        .await
        .map_err(|error| match error {
            BodyError::Transport(error) => EuropaceError::InDoubt {
                reason: format!(
                    "KEX import answer lost while reading: {}",
                    http::describe(&error)
                ),
            },
            BodyError::TooLarge => protocol("KEX import answer too large"),
        })?;
    parse_imported(&body)
}

fn protocol(reason: &str) -> EuropaceError {
    EuropaceError::Protocol {
        reason: reason.to_owned(),
    }
}

/// `{vorgangsnummer, messages?}`; messages that are not strings are kept as compact JSON.
fn parse_imported(body: &[u8]) -> Result<KexImported, EuropaceError> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| protocol("KEX import answer is not JSON"))?;
    let object = answer
        .as_object()
        .ok_or_else(|| protocol("KEX import answer is not a JSON object"))?;
    let vorgangsnummer = match object.get("vorgangsnummer") {
        Some(serde_json::Value::String(number)) if !number.trim().is_empty() => number.clone(),
        Some(serde_json::Value::Number(number)) => number.to_string(),
        _ => return Err(protocol("KEX import answer without vorgangsnummer")),
    };
    Ok(KexImported {
        vorgangsnummer,
        messages: messages_of(object),
    })
}

/// The `messages` of an answer object: an array (each entry a message), or one value.
fn messages_of(object: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    match object.get("messages") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items.iter().map(render_message).collect(),
        Some(other) => vec![render_message(other)],
    }
}

/// Europace's messages in the body of a refusal (4xx): `messages` as in a 201 answer, else a
/// single `message` string; nothing for any other body, or one that cannot be read (the
/// refusal stands either way: nothing was created).
async fn read_refusal_messages(response: reqwest::Response) -> Vec<String> {
    match http::read_body(response).await {
        Ok(body) => refusal_messages(&body),
        Err(_) => Vec::new(),
    }
}

fn refusal_messages(body: &[u8]) -> Vec<String> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) else {
        return Vec::new();
    };
    let messages = messages_of(&object);
    if !messages.is_empty() {
        return messages;
    }
    match object.get("message") {
        Some(serde_json::Value::String(message)) => vec![message.clone()],
        _ => Vec::new(),
    }
}

fn render_message(message: &serde_json::Value) -> String {
    match message {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers() -> Result<(), EuropaceError> {
        let imported =
            parse_imported(br#"{"vorgangsnummer":"AB1234","messages":["a",{"code":"X"}]}"#)?;
        assert_eq!(imported.vorgangsnummer, "AB1234");
        assert_eq!(
            imported.messages,
            vec!["a".to_owned(), r#"{"code":"X"}"#.to_owned()]
        );
        let imported = parse_imported(br#"{"vorgangsnummer":"AB1234"}"#)?;
        assert!(imported.messages.is_empty());
        Ok(())
    }

    #[test]
    fn rejects_answers_without_number() {
        for body in [
            &b""[..],
            b"[]",
            br#"{"messages":[]}"#,
            br#"{"vorgangsnummer":""}"#,
            br#"{"vorgangsnummer":null}"#,
        ] {
            assert!(matches!(
                parse_imported(body),
                Err(EuropaceError::Protocol { .. })
            ));
        }
    }

    #[test]
    fn token_errors_never_become_in_doubt() {
        let error = nothing_sent_token_error(EuropaceError::Protocol { reason: "x".into() });
        assert!(matches!(error, EuropaceError::Unavailable { .. }));
        let error = nothing_sent_token_error(EuropaceError::rejected(401));
        assert_eq!(error, EuropaceError::rejected(401));
    }

    #[test]
    fn refusal_messages_come_from_messages_or_message() {
        assert_eq!(
            refusal_messages(br#"{"messages":["a",{"code":"X"}],"message":"m"}"#),
            ["a", r#"{"code":"X"}"#]
        );
        assert_eq!(refusal_messages(br#"{"messages":"one"}"#), ["one"]);
        assert_eq!(
            refusal_messages(br#"{"message":"Enum: abc","traceId":"t"}"#),
            ["Enum: abc"]
        );
        assert_eq!(refusal_messages(br#"{"messages":[],"message":"m"}"#), ["m"]);
        for body in [
            &b""[..],
            b"Bad Request",
            b"[\"a\"]",
            br#"{"message":7}"#,
            b"{}",
        ] {
            assert!(refusal_messages(body).is_empty(), "{body:?}");
        }
    }
}
