//! [`IntrospectionValidator`]: RFC 7662 token introspection at an external authorization
//! server, asked on every request (no cache: a revocation there applies at once).

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::{ExternalError, ExternalSettings, ScopeClaim, read_limited};
use crate::clock::Clock;
use crate::token::{AccessClaims, InvalidReason, MAX_TOKEN_LEN, TokenError, check_times};

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

/// RFC 6749 §2.3.1: client credentials are `application/x-www-form-urlencoded` before they go
/// into HTTP Basic, so a `:` in the id or any character in the secret survives the trip.
fn form_urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        assert_eq!(form_urlencode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
        assert_eq!(form_urlencode("drk_0a-Z.*"), "drk_0a-Z.*");
        // Whatever the bytes, the receiver's form decoding gives the value back.
        let odd = "~%&=+ ü\u{1F600}:";
        let decoded: String =
            form_urlencoded::parse(format!("v={}", form_urlencode(odd)).as_bytes())
                .map(|(_, value)| value.into_owned())
                .collect();
        assert_eq!(decoded, odd);
    }
}
