//! The validator remembers verified tokens (issue 10, round 2): the EdDSA verification runs once
//! per token, and nothing that may change for the same token is taken from the cache.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use auth::memory::MemorySigningKeyStore;
use auth::{InvalidReason, KeyRing, KeyRingConfig, TokenError, TokenValidator};
use support::*;

#[tokio::test]
async fn a_token_is_verified_once_and_then_answered_from_the_cache() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let auth = bearer(&token);

    let first = f
        .validator
        .authorize_import(Some(&auth), &f.registry)
        .await
        .unwrap();
    assert_eq!(f.validator.cached_tokens(), 1);
    assert_eq!(f.validator.cache_hits(), 0);
    for _ in 0..3 {
        let again = f
            .validator
            .authorize_import(Some(&auth), &f.registry)
            .await
            .unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(f.validator.cache_hits(), 3);
    assert_eq!(f.validator.cached_tokens(), 1);

    // Clones share the cache (the server clones its validator per worker).
    let clone = f.validator.clone();
    clone.validate(&token).await.unwrap();
    assert_eq!(f.validator.cache_hits(), 4);
}

#[tokio::test]
async fn a_tampered_copy_of_a_cached_token_is_verified_and_refused() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    f.validator.validate(&token).await.unwrap();

    // The same header and payload with another signature: another cache key, so verified.
    let (head, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &signature[1..]);
    assert_eq!(
        f.validator.validate(&forged).await,
        Err(TokenError::Invalid(InvalidReason::Signature))
    );
    assert_eq!(f.validator.cache_hits(), 0);
    assert_eq!(f.validator.cached_tokens(), 1);
}

#[tokio::test]
async fn a_revoked_client_is_refused_at_the_next_request_despite_the_cache() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let auth = bearer(&token);
    f.validator
        .authorize_import(Some(&auth), &f.registry)
        .await
        .unwrap();
    assert_eq!(f.validator.cached_tokens(), 1);

    assert!(f.registry.revoke(&client.client_id).await.unwrap());
    assert_eq!(
        f.validator.authorize_import(Some(&auth), &f.registry).await,
        Err(TokenError::Revoked)
    );
    // The signature still verified from the cache: only the revocation refused it.
    assert_eq!(f.validator.cache_hits(), 1);
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_the_next_request_despite_the_cache() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let other = f.token_for(&client.client_id, &[IMPORT]).await;
    for t in [&token, &other] {
        f.validator
            .authorize_import(Some(&bearer(t)), &f.registry)
            .await
            .unwrap();
    }
    assert_eq!(f.validator.cached_tokens(), 2);

    // RFC 7009, through the token endpoint, as `POST /oauth2/revoke` does it.
    use secrecy::ExposeSecret as _;
    f.endpoint
        .revoke(auth::TokenRequest {
            authorization: None,
            form: vec![
                ("client_id".into(), client.client_id.clone()),
                ("client_secret".into(), secret.expose_secret().to_owned()),
                ("token".into(), token.clone()),
            ],
            remote_ip: None,
        })
        .await
        .unwrap();

    assert_eq!(
        f.validator
            .authorize_import(Some(&bearer(&token)), &f.registry)
            .await,
        Err(TokenError::Revoked)
    );
    // The client's other token is still good.
    f.validator
        .authorize_import(Some(&bearer(&other)), &f.registry)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cached_token_expires_at_its_exp_plus_the_leeway() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    f.validator.validate(&token).await.unwrap();
    let ttl = f.settings.ttl.as_secs();
    let leeway = f.settings.leeway.as_secs();

    // One second before the end of the leeway: still good, from the cache.
    f.advance(ttl + leeway - 1);
    f.validator.validate(&token).await.unwrap();
    assert_eq!(f.validator.cache_hits(), 1);

    // At the end of the leeway: expired, as without a cache, and forgotten.
    f.advance(1);
    assert_eq!(f.validator.validate(&token).await, Err(TokenError::Expired));
    assert_eq!(f.validator.cached_tokens(), 0);
    assert_eq!(f.validator.validate(&token).await, Err(TokenError::Expired));

    // A validator without a cache gives the same answer at the same time.
    let uncached =
        TokenValidator::with_cache_capacity(f.keys.clone(), f.clock.clone(), f.settings.clone(), 0);
    assert_eq!(uncached.validate(&token).await, Err(TokenError::Expired));
    assert_eq!(uncached.cached_tokens(), 0);
}

#[tokio::test]
async fn a_cached_token_stops_verifying_when_its_key_does() {
    // A ring whose retired keys verify shorter than the validator's tokens live (a token
    // lifetime shortened after the tokens were issued): the key's grace ends first.
    let f = Fixture::new().await;
    let store = Arc::new(MemorySigningKeyStore::default());
    let config = KeyRingConfig {
        token_ttl: Duration::from_secs(60),
        leeway: Duration::from_secs(0),
        reload_interval: Duration::from_secs(0),
        ..KeyRingConfig::default()
    };
    let keys = Arc::new(
        KeyRing::load_or_create(store, None, f.clock.clone(), config)
            .await
            .unwrap(),
    );
    let issuer = auth::TokenIssuer::new(keys.clone(), f.clock.clone(), f.settings.clone());
    let validator = issuer.validator();
    let token = issuer
        .issue("drk_someone", &[IMPORT.to_owned()])
        .await
        .unwrap()
        .access_token;
    validator.validate(&token).await.unwrap();

    keys.rotate().await.unwrap();
    f.advance(30);
    validator.validate(&token).await.unwrap();
    assert_eq!(validator.cache_hits(), 1);

    f.advance(31);
    assert_eq!(
        validator.validate(&token).await,
        Err(TokenError::Invalid(InvalidReason::UnknownKey))
    );
    assert_eq!(validator.cached_tokens(), 0);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let validator =
        TokenValidator::with_cache_capacity(f.keys.clone(), f.clock.clone(), f.settings.clone(), 3);
    let mut tokens = Vec::new();
    for _ in 0..10 {
        let token = f.token_for(&client.client_id, &[IMPORT]).await;
        validator.validate(&token).await.unwrap();
        assert!(validator.cached_tokens() <= 3);
        tokens.push(token);
    }
    // Every token still validates, cached or not.
    for token in &tokens {
        validator.validate(token).await.unwrap();
        assert!(validator.cached_tokens() <= 3);
    }

    // Expired entries make room first: three old tokens expire, a new one evicts only them.
    let fresh =
        TokenValidator::with_cache_capacity(f.keys.clone(), f.clock.clone(), f.settings.clone(), 3);
    for token in &tokens[..2] {
        fresh.validate(token).await.unwrap();
    }
    f.advance(f.settings.ttl.as_secs() + f.settings.leeway.as_secs());
    let late = f.token_for(&client.client_id, &[IMPORT]).await;
    fresh.validate(&late).await.unwrap();
    assert_eq!(fresh.cached_tokens(), 3);
    let later = f.token_for(&client.client_id, &[IMPORT]).await;
    fresh.validate(&later).await.unwrap();
    // The two expired ones were dropped, the live one kept.
    assert_eq!(fresh.cached_tokens(), 2);
    fresh.validate(&late).await.unwrap();
    assert_eq!(fresh.cache_hits(), 1);
}
