//! [`Authorizer`]: the one check a protected resource (`POST /vorgang`) makes, whichever
//! `auth.mode` is configured.
//!
//! The modes differ in who vouches for a token: our own [`TokenValidator`] plus the revocation
//! check in our [`ClientRegistry`] (`builtin`), the keys of an external server ([`JwksValidator`],
//! `jwks`), or the external server itself on every request ([`IntrospectionValidator`],
//! `introspection`). The scope check is the same for all of them.

use crate::IMPORT_SCOPE;
use crate::clients::ClientRegistry;
use crate::external::{IntrospectionValidator, JwksValidator};
use crate::token::{AccessClaims, TokenError, TokenValidator, bearer_token};

/// How `POST /vorgang` checks its bearer token, by `auth.mode`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per process
pub enum Authorizer {
    /// `builtin`: our own tokens, plus the per-request revocation check in our registry.
    Builtin {
        /// Validator of our tokens.
        validator: TokenValidator,
        /// Our clients, for the revocation check.
        registry: ClientRegistry,
    },
    /// `jwks`: tokens of an external server, verified with its JWKS.
    Jwks(JwksValidator),
    /// `introspection`: tokens of an external server, introspected on every request.
    Introspection(IntrospectionValidator),
}

impl Authorizer {
    /// Checks the `Authorization` header value: a bearer token, valid in the configured mode,
    /// of an active client (builtin mode), with `required_scope`.
    ///
    /// # Errors
    /// [`TokenError`]; its `status()` and `www_authenticate()` make the answer.
    pub async fn authorize(
        &self,
        authorization: Option<&str>,
        required_scope: &str,
    ) -> Result<AccessClaims, TokenError> {
        let claims = match self {
            Self::Builtin {
                validator,
                registry,
            } => {
                return validator
                    .authorize(authorization, registry, required_scope)
                    .await;
            }
            Self::Jwks(validator) => validator.validate(bearer_token(authorization)?).await?,
            Self::Introspection(validator) => {
                validator.validate(bearer_token(authorization)?).await?
            }
        };
        claims.require_scope(required_scope)
    }

    /// [`authorize`](Self::authorize) with [`IMPORT_SCOPE`].
    ///
    /// # Errors
    /// As [`authorize`](Self::authorize).
    pub async fn authorize_import(
        &self,
        authorization: Option<&str>,
    ) -> Result<AccessClaims, TokenError> {
        self.authorize(authorization, IMPORT_SCOPE).await
    }
}
