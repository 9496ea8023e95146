//! Webhooks: the partners' secrets and URLs, and the background delivery of the event outbox,
//! signed as Standard Webhooks (<https://www.standardwebhooks.com/>).
//!
//! A secret is `whsec_` + base64 of 32 random bytes; the bytes are the HMAC key. They are stored
//! encrypted with `key_encryption_key` (as the token signing keys are, [`auth::keys::seal`]), so
//! they can be recovered for signing but not read from a copy of the database.
//!
//! Every attempt POSTs the stored body with `webhook-id` (the same on every attempt),
//! `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature:
//! v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. A 2xx answer delivers the event;
//! anything else (another status, a timeout, no connection) is tried again with backoff until
//! [`GIVE_UP_AFTER`] has passed since the event. No redirects are followed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use secrecy::SecretBox;
use url::Url;
use vorgang_core::{DeliveryPolicy, PendingEvent, WebhookStore, WebhookTarget};

use crate::metrics::{Metrics, WebhookOutcome as Outcome};

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new secret (Standard Webhooks: 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// How long an event is retried after it happened.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Events claimed per pass.
const BATCH: u32 = 32;

/// Errors of setting up a webhook. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not acceptable.
    #[error("webhook URL: {0}")]
    Url(&'static str),
    /// The secret could not be made or sealed.
    #[error("webhook secret: {0}")]
    Crypto(&'static str),
}

/// Checks a webhook URL: `https://`, or `http://` for a loopback host (`localhost`, `127.0.0.0/8`,
/// `::1`) or when `allow_http`; no credentials in it.
///
/// # Errors
/// [`WebhookError::Url`] naming what is wrong (never the URL).
pub fn check_url(url: &str, allow_http: bool) -> Result<Url, WebhookError> {
    let parsed = Url::parse(url).map_err(|_| WebhookError::Url("not a valid absolute URL"))?;
    let host = parsed.host_str().ok_or(WebhookError::Url("no host"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(WebhookError::Url("must not contain credentials"));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http || is_loopback(host) => Ok(parsed),
        "http" => Err(WebhookError::Url(
            "http:// only for loopback hosts (or with webhooks.allow_http); use https://",
        )),
        _ => Err(WebhookError::Url("must be an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A new secret: the text shown once (`whsec_…`) and the key bytes.
///
/// # Errors
/// [`WebhookError::Crypto`] if the system's random source fails.
pub fn new_secret() -> Result<(String, Vec<u8>), WebhookError> {
    let mut key = vec![0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| WebhookError::Crypto("random bytes"))?;
    Ok((format!("{SECRET_PREFIX}{}", STANDARD.encode(&key)), key))
}

/// The associated data binding a sealed secret to its client.
fn seal_context(client_id: &str) -> String {
    format!("webhook-secret:{client_id}")
}

/// The stored form of a client's webhook: the key sealed with `kek`, or in plain without one
/// (the embedded sandbox only, as for signing keys).
///
/// # Errors
/// [`WebhookError::Crypto`] if the encryption cannot be set up.
pub fn target(
    client_id: &str,
    url: &Url,
    key: &[u8],
    kek: Option<&[u8; 32]>,
) -> Result<WebhookTarget, WebhookError> {
    let (sealed_secret, encrypted) = match kek {
        Some(kek) => (
            auth::keys::seal(
                &SecretBox::new(Box::new(*kek)),
                &seal_context(client_id),
                key,
            )
            .map_err(|_| WebhookError::Crypto("encryption"))?,
            true,
        ),
        None => (key.to_vec(), false),
    };
    Ok(WebhookTarget {
        url: url.as_str().to_owned(),
        sealed_secret,
        encrypted,
    })
}

/// The key bytes of a stored webhook.
fn key_of(client_id: &str, target: &WebhookTarget, kek: Option<&[u8; 32]>) -> Option<Vec<u8>> {
    match (target.encrypted, kek) {
        (false, _) => Some(target.sealed_secret.clone()),
        (true, Some(kek)) => auth::keys::open(
            &SecretBox::new(Box::new(*kek)),
            &seal_context(client_id),
            &target.sealed_secret,
        )
        .ok(),
        (true, None) => None,
    }
}

/// The `webhook-signature` value: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
#[must_use]
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let signed = format!("{id}.{timestamp}.{body}");
    let tag = hmac::sign(&key, signed.as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// Delivers the outbox. Cheap to clone.
#[derive(Clone)]
pub struct Sender {
    store: Arc<dyn WebhookStore>,
    http: reqwest::Client,
    kek: Option<[u8; 32]>,
    policy: DeliveryPolicy,
    timeout: Duration,
    metrics: Metrics,
}

impl Sender {
    /// A sender over `store`, calling with `timeout` (connect and answer), retrying with the
    /// backoff of `policy`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(
        store: Arc<dyn WebhookStore>,
        kek: Option<[u8; 32]>,
        policy: DeliveryPolicy,
        timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("drklein-vorgang-webhooks/1")
            .build()?;
        Ok(Self {
            store,
            http,
            kek,
            policy,
            timeout,
            metrics,
        })
    }

    /// Claims the due events and makes one attempt at each. Returns how many were claimed.
    ///
    /// # Errors
    /// The store could not be read (nothing was claimed).
    pub async fn deliver_due(&self) -> Result<usize, vorgang_core::StoreError> {
        let now = Utc::now();
        // Leased for longer than one attempt can take: no other replica sends it meanwhile.
        let lease = self.timeout.saturating_mul(2) + Duration::from_secs(5);
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let events = self.store.claim_events(now, lease_until, BATCH).await?;
        let claimed = events.len();
        let attempts = events.into_iter().map(|event| self.attempt(event));
        for outcome in futures::future::join_all(attempts).await {
            self.metrics.observe_webhook(outcome.as_str());
        }
        Ok(claimed)
    }

    /// One attempt at `event`, and what is stored after it.
    async fn attempt(&self, event: PendingEvent) -> Outcome {
        let outcome = match self.send(&event).await {
            Ok(outcome) => outcome,
            Err(reason) => {
                let age = (Utc::now() - event.created_at).to_std().unwrap_or_default();
                if age >= GIVE_UP_AFTER {
                    tracing::error!(webhook_id = %event.id, attempts = event.attempts, reason, "webhook event not delivered for 24 h; given up");
                    Outcome::Expired
                } else {
                    tracing::warn!(webhook_id = %event.id, attempts = event.attempts, reason, "webhook not delivered; trying again");
                    Outcome::Retried
                }
            }
        };
        let stored = match outcome {
            Outcome::Retried => {
                let wait = self.policy.backoff(event.attempts, None);
                let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                self.store.retry_event(&event.id, at).await
            }
            Outcome::Delivered | Outcome::Expired | Outcome::Dropped => {
                self.store.remove_event(&event.id).await
            }
        };
        if let Err(error) = stored {
            // The lease runs out and the event is tried again: at least once.
            tracing::warn!(webhook_id = %event.id, error = %error, "could not store a webhook attempt's outcome");
        }
        outcome
    }

    /// Sends `event` once: `Ok` when done with it (delivered or dropped), `Err(reason)` when it
    /// should be tried again.
    async fn send(&self, event: &PendingEvent) -> Result<Outcome, &'static str> {
        let target = match self.store.webhook(&event.client_id).await {
            Ok(Some(target)) => target,
            Ok(None) => {
                tracing::info!(webhook_id = %event.id, "client has no webhook any more; event dropped");
                return Ok(Outcome::Dropped);
            }
            Err(_) => return Err("database unavailable"),
        };
        let Some(key) = key_of(&event.client_id, &target, self.kek.as_ref()) else {
            tracing::error!(webhook_id = %event.id, "webhook secret cannot be decrypted (key_encryption_key changed?); event dropped");
            return Ok(Outcome::Dropped);
        };
        let timestamp = Utc::now().timestamp();
        let signature = signature(&key, &event.id, timestamp, &event.payload);
        let answer = self
            .http
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(event.payload.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                tracing::info!(webhook_id = %event.id, attempts = event.attempts, "webhook delivered");
                Ok(Outcome::Delivered)
            }
            Ok(_) => Err("receiver answered a non-2xx status"),
            Err(error) if error.is_timeout() => Err("timeout"),
            Err(_) => Err("no connection"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(check_url("https://partner.example/hook", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook", false).is_ok());
        assert!(check_url("http://localhost/hook", false).is_ok());
        assert!(check_url("http://[::1]:80/hook", false).is_ok());
        assert!(check_url("http://partner.example/hook", false).is_err());
        assert!(check_url("http://partner.example/hook", true).is_ok());
        assert!(check_url("ftp://partner.example/hook", true).is_err());
        assert!(check_url("https://user:pw@partner.example/hook", false).is_err());
        assert!(check_url("not a url", false).is_err());
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let (text, key) = new_secret().unwrap();
        assert_eq!(key.len(), SECRET_BYTES);
        let decoded = STANDARD
            .decode(text.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(decoded, key);
        assert_ne!(new_secret().unwrap().1, key);
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_client() {
        let url = Url::parse("https://partner.example/hook").unwrap();
        let kek = [7u8; 32];
        let sealed = target("c1", &url, b"secret-key", Some(&kek)).unwrap();
        assert!(sealed.encrypted);
        assert_ne!(sealed.sealed_secret, b"secret-key");
        assert_eq!(key_of("c1", &sealed, Some(&kek)).unwrap(), b"secret-key");
        assert!(key_of("c2", &sealed, Some(&kek)).is_none());
        assert!(key_of("c1", &sealed, Some(&[8u8; 32])).is_none());
        assert!(key_of("c1", &sealed, None).is_none());
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
