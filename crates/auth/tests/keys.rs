//! Signing keys: creation, sharing between replicas, encryption at rest, rotation, JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use auth::keys::kid_for_public_key;
use auth::memory::{ManualClock, MemorySigningKeyStore};
use auth::{AuthError, KeyRing, KeyRingConfig, TokenError};
use aws_lc_rs::signature::Ed25519KeyPair;
use jsonwebtoken::jwk::Jwk;
use support::*;

const KEK: [u8; 32] = [0x42; 32];

#[tokio::test]
async fn first_load_creates_one_key_and_replicas_share_it() {
    let f = Fixture::new().await;
    assert_eq!(f.key_store.all().len(), 1);
    let replica = f.replica(None).await;
    assert_eq!(f.key_store.all().len(), 1, "the second ring reuses the key");
    assert_eq!(replica.kid(), f.kid());

    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    assert!(replica.validator.validate(&token).await.is_ok());
}

#[tokio::test]
async fn private_key_is_encrypted_at_rest_with_the_kek() {
    let f = Fixture::with_kek(Some(KEK)).await;
    let record = f.key_store.all().remove(0);
    assert!(record.encrypted);
    assert!(Ed25519KeyPair::from_pkcs8(&record.private_key).is_err());
    assert_eq!(record.kid, kid_for_public_key(&record.public_key));

    // Round trip: another ring with the same KEK signs tokens the first one accepts.
    let replica = f.replica(Some(KEK)).await;
    let (client, _) = f.register(&[]).await;
    let token = replica.token_for(&client.client_id, &[IMPORT]).await;
    assert!(f.validator.validate(&token).await.is_ok());

    // Rotation keeps encrypting.
    f.keys.rotate().await.unwrap();
    assert!(f.key_store.all().iter().all(|r| r.encrypted));
    assert!(f.keys.encrypts_at_rest());
}

#[tokio::test]
async fn wrong_or_missing_kek_fails_to_load() {
    let f = Fixture::with_kek(Some(KEK)).await;
    let clock = Arc::new(ManualClock::at_timestamp(T0));
    let mut wrong = KEK;
    wrong[31] ^= 1;
    let error = KeyRing::load_or_create(
        f.key_store.clone(),
        Some(wrong),
        clock.clone(),
        KeyRingConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, AuthError::KeyUnusable { ref kid, .. } if *kid == f.kid()));
    let message = error.to_string();
    assert!(message.contains("key_encryption_key"), "{message}");

    let error = KeyRing::load_or_create(f.key_store.clone(), None, clock, KeyRingConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::KeyUnusable { .. }));
    assert_eq!(f.key_store.all().len(), 1, "no key was created instead");
}

#[tokio::test]
async fn unencrypted_key_stays_usable_when_a_kek_is_configured_later() {
    let f = Fixture::new().await;
    assert!(!f.key_store.all()[0].encrypted);
    let upgraded = f.replica(Some(KEK)).await;
    assert_eq!(upgraded.kid(), f.kid());
    upgraded.keys.rotate().await.unwrap();
    let records = f.key_store.all();
    assert!(!records[0].encrypted);
    assert!(records[1].encrypted);
}

#[tokio::test]
async fn jwks_publishes_verifying_keys_in_rfc_format() {
    let f = Fixture::new().await;
    let jwks = f.keys.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    assert_eq!(
        key.keys().collect::<Vec<_>>(),
        ["kty", "crv", "x", "kid", "alg", "use"]
    );
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], f.kid().as_str());
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key["x"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(x, f.key_store.all()[0].public_key);
    assert!(!jwks.to_string().contains("\"d\""), "no private part");

    // Another service can verify our tokens with nothing but the JWKS.
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let jwk: Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
    assert_eq!(decoded.claims["client_id"], client.client_id.as_str());
}

#[tokio::test]
async fn rotation_retires_the_old_key_which_leaves_the_jwks_after_its_grace() {
    let f = Fixture::new().await;
    let old = f.kid();
    let new = f.keys.rotate().await.unwrap();
    assert_eq!(f.kid(), new);
    let jwks = f.keys.jwks();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new.as_str(), old.as_str()], "signing key first");
    let records = f.key_store.all();
    assert!(
        records
            .iter()
            .find(|r| r.kid == old)
            .unwrap()
            .retired_at
            .is_some()
    );
    assert!(
        records
            .iter()
            .find(|r| r.kid == new)
            .unwrap()
            .retired_at
            .is_none()
    );

    // Grace: ttl 900 + leeway 30 + reload interval 60.
    assert_eq!(
        KeyRingConfig::default().retired_key_grace(),
        Duration::from_secs(990)
    );
    f.advance(989);
    assert_eq!(f.keys.jwks()["keys"].as_array().unwrap().len(), 2);
    f.advance(1);
    assert_eq!(f.keys.jwks()["keys"].as_array().unwrap().len(), 1);
    // A fresh load does not return it either.
    f.keys.refresh().await.unwrap();
    assert_eq!(f.keys.jwks()["keys"][0]["kid"], new.as_str());
}

#[tokio::test]
async fn a_replica_learns_a_rotation_by_unknown_kid_and_by_reload_interval() {
    let a = Fixture::new().await;
    let b = a.replica(None).await;
    let (client, _) = a.register(&[]).await;
    let old = a.kid();

    let new = a.keys.rotate().await.unwrap();
    let token = a.token_for(&client.client_id, &[IMPORT]).await;
    // B does not know the new kid yet: one refresh and it validates.
    assert!(b.validator.validate(&token).await.is_ok());

    // B also signs with the new key after its reload interval has passed.
    let c = a.replica(None).await;
    let new2 = a.keys.rotate().await.unwrap();
    assert_eq!(c.kid(), new, "c loaded before the second rotation");
    let t = c.token_for(&client.client_id, &[IMPORT]).await;
    assert_eq!(
        jsonwebtoken::decode_header(&t).unwrap().kid,
        Some(new.clone())
    );
    c.advance(60);
    let t = c.token_for(&client.client_id, &[IMPORT]).await;
    assert_eq!(jsonwebtoken::decode_header(&t).unwrap().kid, Some(new2));
    assert_ne!(old, new);
}

#[tokio::test]
async fn store_outage_keeps_the_loaded_keys() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    f.key_store.set_unavailable(true);
    assert!(f.keys.refresh().await.unwrap_err().is_unavailable());
    f.advance(120); // reload due, fails, keeps signing
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    assert!(f.validator.validate(&token).await.is_ok());
    let unknown = f.sign_with_our_key(
        &serde_json::json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "nope" }),
        &f.claims("drk_x"),
    );
    assert!(matches!(
        f.validator.validate(&unknown).await,
        Err(TokenError::Invalid(_))
    ));
}

#[tokio::test]
async fn load_or_create_fails_when_the_store_is_down() {
    let store = Arc::new(MemorySigningKeyStore::default());
    store.set_unavailable(true);
    let error = KeyRing::load_or_create(
        store,
        None,
        Arc::new(ManualClock::default()),
        KeyRingConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn the_jwks_of_a_replica_that_issues_no_tokens_picks_up_a_rotation() {
    let a = Fixture::new().await;
    let b = a.replica(None).await;
    let old = a.kid();
    let new = a.keys.rotate().await.unwrap();
    let kids = |f: &Fixture| -> Vec<String> {
        f.keys.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    b.keys.reload_if_due().await;
    assert_eq!(kids(&b), vec![old.clone()], "not due yet");
    // B signs nothing and sees no token of the new key; its reload interval passes.
    b.advance(60);
    b.keys.reload_if_due().await;
    assert_eq!(kids(&b), [new, old]);
}
