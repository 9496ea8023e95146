//! What every request carries from its arrival to its answer: its id, its log span and its W3C
//! trace (docs/reference/http-api.md).
//!
//! - [`logger`] is `tracing-actix-web`'s middleware with our own root span ([`RequestSpan`]):
//!   every log line of the request, the core's included, is written inside a span holding
//!   `method`, `route` (the matched pattern, recorded by the request log), `request_id`,
//!   `trace_id`, and once known `client_id` and `drkleinrkVorgangsnummer`. Unlike the crate's
//!   default span it records no client address, user agent, path or query string: those can
//!   carry personal data or credentials.
//! - [`attach`] answers every request with `X-Request-Id`, makes the id the one every
//!   [`Problem`] names (`requestId`) and the request's language ([`crate::language`]) the one
//!   every problem is written in, and turns an error answer that actix-web itself produced
//!   (a text body from an extractor, say) into problem+json, so no answer escapes the format.
//!
//! The W3C trace of the request (its `traceparent`, else a new one) is kept in the request's
//! extensions ([`trace_of`]) for the import handler, which hands it to the core.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use i18n::{Detail, Lang, Title};
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use vorgang_core::TraceContext;

use crate::language;
use crate::metrics::method_label;
use crate::problem::Problem;
use crate::request_id::{self, RequestId};

/// The root span of every request; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = RequestId::of(request.headers());
        let trace = incoming_trace(request.headers()).unwrap_or_else(TraceContext::new_root);
        let span = tracing::info_span!(
            "request",
            method = method_label(request.method()),
            route = tracing::field::Empty,
            request_id = %id,
            trace_id = %trace.trace_id(),
            client_id = tracing::field::Empty,
            drkleinrkVorgangsnummer = tracing::field::Empty,
        );
        let mut extensions = request.extensions_mut();
        extensions.insert(id);
        extensions.insert(trace);
        span
    }

    /// Nothing: the request log line (status, duration) is written by the request log inside
    /// this span, and errors are logged where they are understood, never by their `Debug`.
    fn on_request_end<B: MessageBody>(_: Span, _: &Result<ServiceResponse<B>, Error>) {}
}

/// The tracing middleware with [`RequestSpan`] as root span.
#[must_use]
pub fn logger() -> TracingLogger<RequestSpan> {
    TracingLogger::new()
}

/// The W3C trace of a request: its `traceparent` if it sent exactly one that parses, else `None`
/// (the caller starts a new trace).
#[must_use]
pub fn incoming_trace(headers: &HeaderMap) -> Option<TraceContext> {
    let mut values = headers.get_all("traceparent");
    match (values.next(), values.next()) {
        (Some(value), None) => TraceContext::parse(value.to_str().ok()?),
        _ => None,
    }
}

/// The W3C trace [`RequestSpan`] chose for `request`, if it ran.
#[must_use]
pub fn trace_of(request: &HttpRequest) -> Option<TraceContext> {
    request.extensions().get::<TraceContext>().copied()
}

/// The middleware of the request id and the language: see the module documentation. Runs
/// inside [`logger`], which chose the id (taken here from the request's headers when it did not
/// run).
///
/// # Errors
/// Whatever the wrapped service returns, answered with the id.
pub async fn attach(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Answer>, Error> {
    let known = request.extensions().get::<RequestId>().cloned();
    let id = known.unwrap_or_else(|| {
        let id = RequestId::of(request.headers());
        request.extensions_mut().insert(id.clone());
        id
    });
    let lang = language::of(request.headers());
    match id
        .clone()
        .scope(language::scope(lang, next.call(request)))
        .await
    {
        Ok(response) => Ok(finish(response, &id, lang)),
        // The HTTP server turns the error into an answer after every middleware: wrapped, that
        // answer is made with the id and the language current and carries them.
        Err(error) => Err(WithRequestId { error, id, lang }.into()),
    }
}

/// Whether `headers` declare a JSON body (`application/json`, `application/problem+json`, …).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim().to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
}

/// The problem+json answer in `lang` for an error actix-web answered with its own (text) body.
/// Its text is not repeated: it may quote what the client sent.
fn problem_for(status: StatusCode, lang: Lang) -> Problem {
    let (slug, title) = match status {
        StatusCode::BAD_REQUEST => ("malformed-request", Title::MalformedRequest),
        StatusCode::NOT_FOUND => ("not-found", Title::NotFound),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", Title::MethodNotAllowed),
        StatusCode::REQUEST_TIMEOUT => ("request-timeout", Title::RequestTimeout),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", Title::PayloadTooLarge),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported-media-type", Title::UnsupportedMediaType)
        }
        status if status.is_server_error() => ("internal-error", Title::InternalError),
        _ => ("request-refused", Title::RequestRefused),
    };
    Problem::new_in(
        lang,
        status,
        slug,
        title,
        Detail::NotProcessed {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("error"),
        },
    )
}

/// The id header, and a problem+json body in `lang` for an error answer that has none.
fn finish<B: MessageBody + 'static>(
    mut response: ServiceResponse<B>,
    id: &RequestId,
    lang: Lang,
) -> ServiceResponse<Answer> {
    let head = response.response();
    let replacement = (head.error().is_some() && !is_json(head.headers())).then(|| {
        id.clone()
            .sync_scope(|| problem_for(head.status(), lang).body())
    });
    let headers = response.headers_mut();
    if replacement.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        language::mark(headers, lang);
    }
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(request_id::HEADER, value);
    }
    response.map_body(|_, body| Answer {
        body: body.boxed(),
        replacement: replacement.map(BoxBody::new),
    })
}

/// An answer's body, or the problem+json body replacing it. The replaced body is kept alive
/// until the answer is sent all the same: it may hold the request's body reader (see
/// [`crate::body_deadline`]), whose early drop would make actix-web wait for an unread body.
pub struct Answer {
    body: BoxBody,
    replacement: Option<BoxBody>,
}

impl MessageBody for Answer {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.replacement.as_ref().unwrap_or(&self.body).size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        // Both fields are boxed bodies, which are `Unpin`: no pin projection needed.
        let this = self.get_mut();
        let body = this.replacement.as_mut().unwrap_or(&mut this.body);
        Pin::new(body).poll_next(cx)
    }
}

/// An error answered with the request's id current (so its problem body names it) and in the
/// `X-Request-Id` header, as problem+json if it was not JSON.
#[derive(Debug)]
struct WithRequestId {
    error: Error,
    id: RequestId,
    lang: Lang,
}

impl std::fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for WithRequestId {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let id = self.id.clone();
        let lang = self.lang;
        let mut response = id
            .clone()
            .sync_scope(|| language::sync_scope(lang, || self.error.error_response()));
        if !is_json(response.headers()) {
            let body = id
                .clone()
                .sync_scope(|| problem_for(response.status(), lang).body());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            language::mark(response.headers_mut(), lang);
            response = response.set_body(BoxBody::new(body));
        }
        if let Ok(value) = HeaderValue::from_str(id.as_str()) {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, read_body, try_call_service};
    use actix_web::{App, error::ErrorBadRequest, web};
    use serde_json::Value;

    use super::*;

    /// A header of an answer (`""` when absent).
    fn header_of<B>(response: &impl HasHeaders<B>, name: &str) -> String {
        response
            .header_map()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// Answers of both kinds the tests read headers of.
    trait HasHeaders<B> {
        fn header_map(&self) -> &HeaderMap;
    }

    impl<B> HasHeaders<B> for ServiceResponse<B> {
        fn header_map(&self) -> &HeaderMap {
            self.headers()
        }
    }

    impl<B> HasHeaders<B> for HttpResponse<B> {
        fn header_map(&self) -> &HeaderMap {
            self.headers()
        }
    }

    fn body_json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// Errors actix-web answers with its own text bodies: the route table without its state
    /// (`web::Data` missing: 500) and a JSON extractor fed text that it quotes (400).
    #[actix_web::test]
    async fn an_error_actix_web_answers_itself_is_problem_json_with_the_id() {
        let app = init_service(App::new().configure(crate::routes::configure)).await;
        let request = TestRequest::get()
            .uri("/health/ready")
            .insert_header(("X-Request-Id", "id-actix"))
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(header_of(&response, "x-request-id"), "id-actix");
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(header_of(&response, "content-language"), "de");
        let body = body_json(&read_body(response).await);
        assert_eq!(body["requestId"], "id-actix");
        assert_eq!(body["status"], 500);
        assert_eq!(body["title"], "Interner Fehler");
        assert_eq!(
            body["detail"],
            "die Anfrage konnte nicht verarbeitet werden (HTTP 500)"
        );
        assert_eq!(
            body["type"],
            "https://api.drkleinservice.de/problems/internal-error"
        );

        let app = init_service(App::new().service(
            web::scope("").wrap(from_fn(attach)).wrap(logger()).route(
                "/json",
                web::post().to(|_: web::Json<Value>| async { HttpResponse::Ok().finish() }),
            ),
        ))
        .await;
        let request = TestRequest::post()
            .uri("/json")
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("Accept-Language", "en-GB"))
            .set_payload("{\"zqx-erika\": ")
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(header_of(&response, "content-language"), "en");
        let id = header_of(&response, "x-request-id");
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let bytes = read_body(response).await;
        assert!(
            !String::from_utf8_lossy(&bytes).contains("zqx"),
            "the submitted text is not repeated"
        );
        let body = body_json(&bytes);
        assert_eq!(body["requestId"], id.as_str());
        assert_eq!(
            body["type"],
            "https://api.drkleinservice.de/problems/malformed-request"
        );
        assert_eq!(
            body["detail"],
            "the request could not be processed (Bad Request)"
        );
    }

    /// An error an inner layer returns instead of an answer becomes its answer in the HTTP
    /// server, outside every middleware: it still names the id, in the header and the body.
    #[actix_web::test]
    async fn an_error_instead_of_an_answer_names_the_id() {
        let app = init_service(
            App::new().service(
                web::scope("")
                    .wrap(from_fn(
                        |_: ServiceRequest, _: Next<actix_web::body::BoxBody>| async {
                            Err::<ServiceResponse, _>(ErrorBadRequest("zqx inner layer failed"))
                        },
                    ))
                    .wrap(from_fn(attach))
                    .wrap(logger())
                    .default_service(web::to(HttpResponse::Ok)),
            ),
        )
        .await;
        let request = TestRequest::default()
            .insert_header(("X-Request-Id", "id-err"))
            .insert_header(("Accept-Language", "de;q=0.1, en"))
            .to_request();
        let Err(error) = try_call_service(&app, request).await else {
            panic!("the inner layer's error is passed on");
        };
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(header_of(&response, "x-request-id"), "id-err");
        assert_eq!(header_of(&response, "content-language"), "en");
        assert_eq!(
            header_of(&response, "content-type"),
            "application/problem+json"
        );
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("zqx"));
        assert_eq!(body_json(&bytes)["requestId"], "id-err");
    }

    #[test]
    fn a_traceparent_is_taken_only_when_it_is_one_valid_header() {
        let valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut headers = HeaderMap::new();
        assert_eq!(incoming_trace(&headers), None);
        headers.insert(
            header::HeaderName::from_static("traceparent"),
            HeaderValue::from_static(valid),
        );
        assert_eq!(incoming_trace(&headers), TraceContext::parse(valid));
        headers.append(
            header::HeaderName::from_static("traceparent"),
            HeaderValue::from_static(valid),
        );
        assert_eq!(incoming_trace(&headers), None, "two: restart the trace");
    }
}
