//! Fault injection: what `POST /_sandbox/faults` queues and how a fault turns into an answer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The kind of a Europace call, as counted in `/_sandbox/stats` and named in `/_sandbox/calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// `POST /auth/token`.
    Auth,
    /// `GET /v2/partners` and `GET /v2/partner/{id}`.
    PartnerLookup,
    /// `POST /v2/partner/{parentId}/untergeordnete`.
    PartnerCreate,
    /// `PATCH /v2/partner/{id}`.
    PartnerUpdate,
    /// `POST /vorgang`.
    Kex,
}

/// The `target` of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultTarget {
    Auth,
    /// Partner lookup, creation and update.
    Partner,
    PartnerLookup,
    PartnerCreate,
    PartnerUpdate,
    Kex,
}

impl FaultTarget {
    pub(crate) fn applies_to(self, call: Call) -> bool {
        matches!(
            (self, call),
            (Self::Auth, Call::Auth)
                | (Self::Partner | Self::PartnerLookup, Call::PartnerLookup)
                | (Self::Partner | Self::PartnerCreate, Call::PartnerCreate)
                | (Self::Partner | Self::PartnerUpdate, Call::PartnerUpdate)
                | (Self::Kex, Call::Kex)
        )
    }
}

/// The body of `POST /_sandbox/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRequest {
    target: FaultTarget,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    delay_ms: Option<u64>,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default)]
    after_receive: Option<bool>,
    #[serde(default)]
    retry_after_s: Option<u64>,
    /// The JSON answer instead of the sandbox's own error body (e.g. Europace's `messages` of
    /// a refused KEX import). `null` counts as absent.
    #[serde(default)]
    body: Option<serde_json::Value>,
}

/// Longest delay a fault may ask for (10 minutes).
const MAX_DELAY_MS: u64 = 600_000;

impl FaultRequest {
    /// Checks the values and turns the request into a queue entry.
    pub(crate) fn validate(self) -> Result<QueuedFault, String> {
        if let Some(status) = self.status
            && status != 0
            && !(200..=599).contains(&status)
        {
            return Err("status must be 0 (drop the connection) or 200..=599".into());
        }
        let times = self.times.unwrap_or(1);
        if times == 0 {
            return Err("times must be at least 1".into());
        }
        let delay_ms = self.delay_ms.unwrap_or(0);
        if delay_ms > MAX_DELAY_MS {
            return Err(format!("delay_ms must be at most {MAX_DELAY_MS}"));
        }
        if self.body.is_some() && matches!(self.status, None | Some(0)) {
            return Err("body needs a status other than 0 (it replaces an error answer)".into());
        }
        Ok(QueuedFault {
            target: self.target,
            status: self.status,
            delay_ms,
            remaining: times,
            after_receive: self.after_receive.unwrap_or(false),
            retry_after_s: self.retry_after_s,
            body: self.body,
        })
    }
}

/// A queued fault; `remaining` calls are still to be hit.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueuedFault {
    pub(crate) target: FaultTarget,
    /// `None`: the normal answer, only delayed. `Some(0)`: drop the connection.
    pub(crate) status: Option<u16>,
    pub(crate) delay_ms: u64,
    #[serde(rename = "times")]
    pub(crate) remaining: u32,
    pub(crate) after_receive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after_s: Option<u64>,
    /// The JSON answer, when the fault names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<serde_json::Value>,
}

impl QueuedFault {
    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms)
    }

    /// The answer replacing the normal one, or `None` when only a delay was asked for.
    pub(crate) fn response(&self, call: Call, trace_id: &str) -> Option<HttpResponse> {
        let status = self.status?;
        if status == 0 {
            tracing::info!(target: "europace_sandbox", ?call, "fault: dropping the connection");
            return Some(HttpResponse::Ok().body(DropConnection));
        }
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        tracing::info!(target: "europace_sandbox", ?call, status, "fault: answering an error");
        let mut builder = HttpResponse::build(code);
        if let Some(seconds) = self.retry_after_s {
            builder.insert_header(("Retry-After", seconds.to_string()));
        }
        if status == 401 {
            let challenge = match call {
                Call::Auth => "Basic realm=\"europace\"",
                _ => "Bearer error=\"invalid_token\"",
            };
            builder.insert_header(("WWW-Authenticate", challenge));
        }
        if let Some(body) = &self.body {
            return Some(builder.json(body));
        }
        let description = format!("sandbox fault: HTTP {status}");
        Some(match call {
            Call::Auth => {
                let error = match status {
                    401 => "invalid_client",
                    400..=499 => "invalid_request",
                    _ => "temporarily_unavailable",
                };
                builder.json(json!({ "error": error, "error_description": description }))
            }
            Call::PartnerLookup | Call::PartnerCreate | Call::PartnerUpdate | Call::Kex => {
                builder.json(json!({ "message": description, "traceId": trace_id }))
            }
        })
    }

    #[cfg(test)]
    pub(crate) fn for_test(target: FaultTarget, times: u32) -> Self {
        Self {
            target,
            status: Some(503),
            delay_ms: 0,
            remaining: times,
            after_receive: false,
            retry_after_s: None,
            body: None,
        }
    }
}

/// A response body that fails on its first poll.
///
/// actix-http encodes the response head into its write buffer and polls the body in the same
/// turn; a body error there makes the dispatcher return before the buffer is flushed, so the
/// connection is closed without a single byte of the answer: the client sees an incomplete
/// message, as when a connection drops.
#[derive(Debug)]
struct DropConnection;

impl MessageBody for DropConnection {
    type Error = io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "europace-sandbox fault: connection dropped on purpose",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<QueuedFault, String> {
        serde_json::from_str::<FaultRequest>(json)
            .map_err(|e| e.to_string())
            .and_then(FaultRequest::validate)
    }

    #[test]
    fn defaults() {
        let fault = parse(r#"{"target":"kex"}"#).unwrap();
        assert_eq!(fault.status, None);
        assert_eq!(fault.delay_ms, 0);
        assert_eq!(fault.remaining, 1);
        assert!(!fault.after_receive);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(r#"{"target":"nope"}"#).is_err());
        assert!(parse(r#"{"status":503}"#).is_err());
        assert!(parse(r#"{"target":"kex","status":99}"#).is_err());
        assert!(parse(r#"{"target":"kex","status":600}"#).is_err());
        assert!(parse(r#"{"target":"kex","times":0}"#).is_err());
        assert!(parse(r#"{"target":"kex","statuscode":503}"#).is_err());
        assert!(parse(r#"{"target":"kex","delay_ms":-1}"#).is_err());
        assert!(parse(r#"{"target":"kex","status":0}"#).is_ok());
        assert!(parse(r#"{"target":"kex","body":{"messages":[]}}"#).is_err());
        assert!(parse(r#"{"target":"kex","status":0,"body":{"messages":[]}}"#).is_err());
        assert!(parse(r#"{"target":"kex","status":400,"body":null}"#).is_ok());
        assert!(parse(r#"{"target":"partner_update","status":503,"times":3}"#).is_ok());
    }

    #[test]
    fn a_body_replaces_the_error_answer() {
        let fault =
            parse(r#"{"target":"kex","status":400,"body":{"messages":["PLZ fehlt"]}}"#).unwrap();
        assert_eq!(fault.body, Some(json!({"messages": ["PLZ fehlt"]})));
        let response = fault.response(Call::Kex, "t").unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn targets() {
        assert!(FaultTarget::Partner.applies_to(Call::PartnerLookup));
        assert!(FaultTarget::Partner.applies_to(Call::PartnerCreate));
        assert!(FaultTarget::Partner.applies_to(Call::PartnerUpdate));
        assert!(FaultTarget::PartnerUpdate.applies_to(Call::PartnerUpdate));
        assert!(!FaultTarget::PartnerUpdate.applies_to(Call::PartnerCreate));
        assert!(!FaultTarget::PartnerUpdate.applies_to(Call::PartnerLookup));
        assert!(!FaultTarget::PartnerCreate.applies_to(Call::PartnerUpdate));
        assert!(!FaultTarget::PartnerLookup.applies_to(Call::PartnerUpdate));
        assert!(!FaultTarget::Partner.applies_to(Call::Kex));
        assert!(!FaultTarget::PartnerLookup.applies_to(Call::PartnerCreate));
        assert!(!FaultTarget::PartnerCreate.applies_to(Call::PartnerLookup));
    }
}
