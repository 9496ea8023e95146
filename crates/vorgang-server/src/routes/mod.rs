//! Routing, the answers to unknown paths and to methods a path does not serve, and the middleware
//! every answer passes: the request span and id ([`crate::request_context`]), the request log and
//! metrics, and `X-Content-Type-Options`.
//!
//! Every route is registered through one table ([`endpoints`] reads the same table), so the
//! `405 Allow` header, the metric and log label `route` and the tests that check every route
//! cannot drift from what is actually served.

pub mod caller;
pub mod docs;
pub mod health;
pub mod token;
pub mod vorgang;

use std::sync::LazyLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, Handler, HttpResponse, Responder, ResponseError as _, Route, web};
use i18n::{Detail, Title};

use crate::metrics::{UNMATCHED_ROUTE, method_label};
use crate::problem::Problem;
use crate::state::AppState;

/// One path pattern of the API and the methods it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The actix path pattern, e.g. `/vorgang/{id}`; also the `route` label of metrics and logs.
    pub pattern: &'static str,
    /// The methods served, in the order of the `Allow` header; `HEAD` wherever `GET` is.
    pub methods: Vec<Method>,
}

impl Endpoint {
    /// The value of the `Allow` header of a `405` on this path, e.g. `GET, HEAD`.
    #[must_use]
    pub fn allow(&self) -> String {
        self.methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The routing table while it is built: every pattern with its endpoint and its actix routes.
#[derive(Default)]
struct Table {
    entries: Vec<(Endpoint, Vec<Route>)>,
}

impl Table {
    /// Serves `method` on `pattern` with `handler`. `GET` brings `HEAD` with it: the same handler
    /// answers, and actix-http sends only the head (with the `Content-Length` of the body it
    /// drops), so `HEAD` answers exactly like `GET` without a body.
    fn add<F, Args>(&mut self, pattern: &'static str, method: Method, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let index = match self.entries.iter().position(|(e, _)| e.pattern == pattern) {
            Some(index) => index,
            None => {
                self.entries.push((
                    Endpoint {
                        pattern,
                        methods: Vec::new(),
                    },
                    Vec::new(),
                ));
                self.entries.len() - 1
            }
        };
        let (endpoint, routes) = &mut self.entries[index];
        if method == Method::GET {
            endpoint.methods.extend([Method::GET, Method::HEAD]);
            routes.push(web::route().method(Method::GET).to(handler.clone()));
            routes.push(web::route().method(Method::HEAD).to(handler));
        } else {
            endpoint.methods.push(method.clone());
            routes.push(web::route().method(method).to(handler));
        }
        self
    }
}

/// Every route of the service. Add new ones here: [`configure`] serves exactly this table.
fn table() -> Table {
    let mut table = Table::default();
    table
        .add("/oauth2/token", Method::POST, token::issue)
        .add("/oauth2/introspect", Method::POST, token::introspect)
        .add("/oauth2/revoke", Method::POST, token::revoke)
        .add("/.well-known/jwks.json", Method::GET, token::jwks)
        .add(
            "/.well-known/oauth-authorization-server",
            Method::GET,
            token::metadata,
        )
        .add("/vorgang", Method::POST, vorgang::create)
        .add("/vorgang", Method::GET, vorgang::list)
        .add("/vorgang/{id}", Method::GET, vorgang::get)
        .add("/health/live", Method::GET, health::live)
        .add("/health/ready", Method::GET, health::ready)
        .add("/metrics", Method::GET, metrics)
        .add("/openapi.json", Method::GET, docs::openapi_json)
        // The documentation page and Swagger UI's files next to it (one path segment, so
        // `/docsx` or `/docs/a/b` stay unknown paths).
        .add("/docs", Method::GET, docs::docs)
        .add("/docs/", Method::GET, docs::docs)
        .add("/docs/{file}", Method::GET, docs::docs);
    table
}

/// Every path pattern the service serves, with its methods, in registration order.
#[must_use]
pub fn endpoints() -> Vec<Endpoint> {
    table().entries.into_iter().map(|(e, _)| e).collect()
}

/// The patterns of [`endpoints`]: the only values the `route` label takes besides
/// [`UNMATCHED_ROUTE`].
static PATTERNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| endpoints().into_iter().map(|e| e.pattern).collect());

/// Registers every route of the service, with `404` for unknown paths and `405` (with `Allow`)
/// for a known path asked with a method it does not serve.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The last `wrap` runs first: the request span is entered before anything else runs, the
    // request id is current for everything inside (problem bodies name it), and `log_request`
    // sees the answer (or error) as it leaves.
    let mut scope = web::scope("")
        .wrap(from_fn(crate::body_deadline::enforce))
        .wrap(from_fn(security_headers))
        .wrap(from_fn(log_request))
        .wrap(from_fn(crate::request_context::attach))
        .wrap(crate::request_context::logger())
        .default_service(web::to(not_found));
    for (endpoint, routes) in table().entries {
        let allow = endpoint.allow();
        let resource = routes
            .into_iter()
            .fold(web::resource(endpoint.pattern), |resource, route| {
                resource.route(route)
            })
            .default_service(web::to(move || {
                let allow = allow.clone();
                async move { method_not_allowed(&allow) }
            }));
        scope = scope.service(resource);
    }
    cfg.service(scope);
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain; version=0.0.4")),
    security(()))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // The gauges of imports per open state are counted now, from the database.
    state
        .metrics
        .count_open_imports(state.importer.resolver())
        .await;
    state.metrics.count_outbox(state.webhooks.as_ref()).await;
    match state.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .body(text),
        Err(_) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            Title::InternalError,
            Detail::MetricsFailed,
        )
        .error_response(),
    }
}

async fn not_found() -> HttpResponse {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        Title::NotFound,
        Detail::NoSuchEndpoint,
    )
    .error_response()
}

/// `405` for a known path: names the served methods, never the method asked for (any token is a
/// valid method name, so it is submitted text like any other).
fn method_not_allowed(allow: &str) -> HttpResponse {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        Title::MethodNotAllowed,
        Detail::MethodNotAllowed {
            allow: allow.to_owned(),
        },
    )
    .with_header(header::ALLOW, allow)
    .error_response()
}

/// Marks every answer `X-Content-Type-Options: nosniff` (docs/reference/http-api.md §1), so no
/// browser guesses a script or a page from a body we meant as data.
async fn security_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match next.call(request).await {
        Ok(mut response) => {
            response.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            Ok(response)
        }
        // An error an inner layer returns instead of an answer becomes its answer only in the
        // HTTP server, outside every middleware: wrapped, it is marked there too. (The request
        // cannot be kept to build the answer here: actix routing needs it unshared.)
        Err(error) => Err(Nosniff(error).into()),
    }
}

/// An error whose answer carries `X-Content-Type-Options: nosniff`.
#[derive(Debug)]
struct Nosniff(actix_web::Error);

impl std::fmt::Display for Nosniff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl actix_web::ResponseError for Nosniff {
    fn status_code(&self) -> StatusCode {
        self.0.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.0.error_response();
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}

/// The `route` label of a request: its matched pattern, taken from our own table so the label can
/// only be one of a fixed set, else [`UNMATCHED_ROUTE`].
fn route_label(request: &ServiceRequest) -> &'static str {
    request
        .match_pattern()
        .and_then(|pattern| PATTERNS.iter().copied().find(|p| *p == pattern))
        .unwrap_or(UNMATCHED_ROUTE)
}

/// Logs method, route pattern, status and duration of each request: never the query string,
/// headers, client address or body (they may carry personal data or credentials). Method and
/// route come from closed sets ([`method_label`], [`route_label`]): any token is a valid method
/// and any path can be asked for, and neither may grow the metrics or carry submitted text into a
/// log line.
async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_label(&request);
    // The request span (crate::request_context) names the route too; only here is it known
    // from the closed set.
    tracing::Span::current().record("route", route);
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let result = next.call(request).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    }
    .as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .observe_http(method, route, status, elapsed.as_secs_f64());
    }
    tracing::info!(
        method,
        route,
        status,
        duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    result
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::test::{TestRequest, call_service, init_service, try_call_service};
    use actix_web::{App, error::ErrorBadRequest};

    use super::*;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn the_request_log_names_only_known_methods_and_route_patterns() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        // The test runtime is single-threaded: the service runs on this thread.
        let _guard = tracing::subscriber::set_default(subscriber);

        let app = init_service(App::new().configure(configure)).await;
        for (method, path, status) in [
            ("ZQXINVENTED", "/health/live", 405),
            (
                "ZQXINVENTED",
                "/zqx.erika.mustermann@example.de?iban=DE12",
                404,
            ),
            ("GET", "/health/live?zqx=1", 200),
            ("PUT", "/vorgang", 405),
        ] {
            let request = TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(path)
                .to_request();
            let response = call_service(&app, request).await;
            assert_eq!(response.status().as_u16(), status, "{method} {path}");
        }

        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .filter(|line: &serde_json::Value| line["fields"]["message"] == "request")
            .collect();
        let fields: Vec<(String, String, u64)> = lines
            .iter()
            .map(|line| {
                let f = &line["fields"];
                (
                    f["method"].as_str().unwrap().to_owned(),
                    f["route"].as_str().unwrap().to_owned(),
                    f["status"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("OTHER".to_owned(), "/health/live".to_owned(), 405),
                ("OTHER".to_owned(), "unmatched".to_owned(), 404),
                ("GET".to_owned(), "/health/live".to_owned(), 200),
                ("PUT".to_owned(), "/vorgang".to_owned(), 405),
            ]
        );
        assert!(
            !log.to_ascii_lowercase().contains("zqx"),
            "submitted text in the log: {log}"
        );
    }

    #[actix_web::test]
    async fn an_error_instead_of_an_answer_is_marked_nosniff_too() {
        let app = init_service(
            App::new().service(
                web::scope("")
                    .wrap(from_fn(
                        |_: ServiceRequest, _: Next<actix_web::body::BoxBody>| async {
                            Err::<ServiceResponse, _>(ErrorBadRequest("inner layer failed"))
                        },
                    ))
                    .wrap(from_fn(security_headers))
                    .default_service(web::to(not_found)),
            ),
        )
        .await;
        let Err(error) = try_call_service(&app, TestRequest::default().to_request()).await else {
            panic!("the inner layer's error is passed on");
        };
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response
                .headers()
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .unwrap(),
            "nosniff"
        );
    }

    #[test]
    fn every_get_route_serves_head_and_allow_lists_the_methods() {
        for endpoint in endpoints() {
            assert_eq!(
                endpoint.methods.contains(&Method::GET),
                endpoint.methods.contains(&Method::HEAD),
                "{}",
                endpoint.pattern
            );
        }
        let health = endpoints()
            .into_iter()
            .find(|e| e.pattern == "/health/live")
            .unwrap();
        assert_eq!(health.allow(), "GET, HEAD");
    }
}
