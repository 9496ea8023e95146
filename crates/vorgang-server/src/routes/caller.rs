//! The authenticated partner client of a request: the bearer-token extractor of the import
//! endpoints.
//!
//! It lives with the routes, not in [`crate::auth`], because it reads the handlers' shared state
//! ([`AppState`]), which itself holds the auth service: kept here, `auth` and `state` do not
//! depend on each other in a circle.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use i18n::{Detail, Title};

use crate::problem::Problem;
use crate::state::AppState;

/// Problem type slug of a request with more than one `Authorization` header (400).
pub const DUPLICATE_AUTHORIZATION: &str = "duplicate-authorization";

/// The authenticated partner client of a request (valid token, active client, import scope).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The client id.
    pub client_id: String,
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let mut values = request.headers().get_all(header::AUTHORIZATION);
        let authorization = values
            .next()
            .map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
        // Two Authorization headers: which one counts would be a guess, and a proxy or cache
        // may pick another than we do. Refused before any token is looked at.
        let duplicated = values.next().is_some();
        Box::pin(async move {
            if duplicated {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    DUPLICATE_AUTHORIZATION,
                    Title::DuplicateAuthorization,
                    Detail::DuplicateAuthorization,
                ));
            }
            let Some(state) = state else {
                return Err(Problem::unavailable(Detail::ServiceNotReady));
            };
            match state
                .auth
                .authorizer
                .authorize_import(authorization.as_deref())
                .await
            {
                Ok(claims) => {
                    // From here on every log line of the request names the client.
                    tracing::Span::current().record("client_id", claims.client_id.as_str());
                    Ok(Self {
                        client_id: claims.client_id,
                    })
                }
                Err(error) => {
                    let status =
                        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                    let slug = match status {
                        StatusCode::FORBIDDEN => "insufficient-scope",
                        StatusCode::SERVICE_UNAVAILABLE => "service-unavailable",
                        _ => "unauthorized",
                    };
                    let title = match status {
                        StatusCode::FORBIDDEN => Title::Forbidden,
                        StatusCode::SERVICE_UNAVAILABLE => Title::ServiceUnavailable,
                        _ => Title::Unauthorized,
                    };
                    let mut problem = Problem::new(status, slug, title, error.detail());
                    if let Some(value) = error.www_authenticate() {
                        problem = problem.with_header(header::WWW_AUTHENTICATE, value);
                    }
                    Err(problem)
                }
            }
        })
    }
}
