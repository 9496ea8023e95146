//! A request body must arrive within [`BODY_DEADLINE`] of its headers, on every endpoint.
//!
//! actix-web times out a request's *headers* (`client_request_timeout`) but not its body: a
//! client that announces `Content-Length: 4000` and then sends one byte, or one byte per second,
//! holds its connection (and a file descriptor) for as long as it likes. A thousand such clients
//! exhaust the descriptors and the service stops answering anyone, without a token.
//!
//! [`enforce`] is a middleware that hands the handler a body stream with a deadline. When the
//! deadline passes before the body is complete, the stream ends with an error, the handler's
//! answer (whatever it made of the error) is replaced by `408 Request Timeout` problem+json, and
//! the connection is closed. A handler that never reads the body answers at once; actix-web then
//! closes the connection because the body was left unread.
//!
//! One subtlety: actix-web *drains* an unread chunked body whose reader was dropped before the
//! answer is sent, keeping the connection open until the last chunk arrives: forever, for a
//! stalled client. So the reader is kept alive by the answer's body ([`HeldBody`]) until the
//! answer has been sent; actix-web then sees an unfinished, still-owned body and closes.

use std::cell::RefCell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ResponseHead, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage as _, HttpResponse, ResponseError as _};
use futures::Stream;
use i18n::{Detail, OAuth, Title};

use crate::problem::Problem;

/// How long after its headers a request body may take to arrive completely
/// (docs/reference/http-api.md §1).
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The request's body with a deadline: yields the body's chunks until the deadline, then one
/// error and the end. `expired` tells the middleware afterwards.
struct DeadlineBody {
    inner: Rc<RefCell<Payload>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    finished: bool,
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        // Data that has arrived is delivered first, even at the deadline.
        let polled = Pin::new(&mut *self.inner.borrow_mut()).poll_next(cx);
        match polled {
            Poll::Ready(None) => {
                self.finished = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
            Poll::Pending => {}
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.finished = true;
                self.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request body not complete within the deadline",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The middleware: see the module documentation.
///
/// # Errors
/// Whatever the wrapped service returns.
pub async fn enforce(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<HeldBody>, actix_web::Error> {
    let expired = Arc::new(AtomicBool::new(false));
    let payload = Rc::new(RefCell::new(request.take_payload()));
    let body = DeadlineBody {
        inner: payload.clone(),
        deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
        expired: expired.clone(),
        finished: false,
    };
    request.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    let response = next.call(request).await?;
    let hold = |_: &mut ResponseHead, body: BoxBody| HeldBody {
        body,
        _payload: payload,
    };
    if !expired.load(Ordering::Relaxed) {
        return Ok(response.map_into_boxed_body().map_body(hold));
    }
    tracing::info!("request body not complete within the deadline; answered 408");
    let (request, _) = response.into_parts();
    let seconds = BODY_DEADLINE.as_secs();
    // The OAuth endpoints answer errors as RFC 6749 §5.2 JSON, everything else as problem+json;
    // either in the request's language.
    let mut timeout = if request.path().starts_with("/oauth2/") {
        let lang = crate::language::current();
        let description = OAuth::BodyTimeout { seconds }.text(lang);
        let mut timeout = HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(
                serde_json::json!({"error": "invalid_request", "error_description": description}),
            );
        crate::language::mark(timeout.headers_mut(), lang);
        timeout
    } else {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            Title::RequestTimeout,
            Detail::BodyTimeout { seconds },
        )
        .error_response()
    };
    timeout
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(request, timeout).map_body(hold))
}

/// An answer's body that keeps the request's body reader alive until the answer is sent (see
/// the module documentation).
pub struct HeldBody {
    body: BoxBody,
    _payload: Rc<RefCell<Payload>>,
}

impl MessageBody for HeldBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
