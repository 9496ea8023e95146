//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz) and for the seed replay test of
//! the workspace. Not part of the supported API: hidden from the documentation, and it may
//! change with the fuzz targets.
//!
//! The token endpoint's parsers are private (the server only calls
//! [`TokenEndpoint::handle`](crate::TokenEndpoint::handle)); these functions run exactly that
//! code, without the client store, Argon2 or the throttle, so that a fuzzer can reach them
//! with millions of inputs per minute. The token validator needs no such door: its public API
//! ([`TokenValidator`](crate::TokenValidator)) is what the fuzz targets call.

use crate::token_endpoint::{OAuthError, TokenRequest};

/// What the request checks of the token endpoint found in an acceptable request: the client id
/// and the requested scopes (deduplicated, `None` when no scope was asked for). The secret is
/// left out on purpose: nothing here needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTokenRequest {
    /// The client id, from HTTP Basic or the form.
    pub client_id: String,
    /// The requested scopes, in order, without duplicates.
    pub scope: Option<Vec<String>>,
}

/// Runs the checks [`TokenEndpoint::handle`](crate::TokenEndpoint::handle) makes before it
/// touches the client store: grant type, repeated parameters, one authentication method, the
/// HTTP Basic decoding, credential lengths and the scope syntax.
///
/// # Errors
/// The [`OAuthError`] the endpoint would answer with.
pub fn check_token_request(req: &TokenRequest) -> Result<CheckedTokenRequest, OAuthError> {
    crate::token_endpoint::parse(req).map(|parsed| CheckedTokenRequest {
        client_id: parsed.client_id,
        scope: parsed.scope,
    })
}

/// Decodes an `Authorization: Basic …` header value into client id and secret as the token
/// endpoint does: base64 (padding optional), then each part form-urldecoded (RFC 6749
/// §2.3.1).
///
/// # Errors
/// `invalid_client` (401) for another scheme or malformed credentials.
pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    crate::token_endpoint::parse_basic(header)
}
