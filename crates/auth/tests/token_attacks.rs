//! Every attack on token validation we know of, each as a test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use auth::{InvalidReason, TokenError};
use aws_lc_rs::signature::Ed25519KeyPair;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use support::*;

fn invalid(reason: InvalidReason) -> Result<auth::AccessClaims, TokenError> {
    Err(TokenError::Invalid(reason))
}

/// `authorize_import` with this `Authorization` header value.
async fn authorize(f: &Fixture, auth: &str) -> Result<auth::AccessClaims, TokenError> {
    f.validator.authorize_import(Some(auth), &f.registry).await
}

async fn validate(f: &Fixture, token: &str) -> Result<auth::AccessClaims, TokenError> {
    f.validator.validate(token).await
}

fn hs256(header_kid: &str, claims: &Value, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(header_kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn issued_token_has_rfc9068_shape_and_validates() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid, Some(f.kid()));

    let claims = validate(&f, &token).await.unwrap();
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.sub, client.client_id);
    assert_eq!(claims.client_id, client.client_id);
    assert_eq!(claims.scope, IMPORT);
    assert_eq!(claims.iat, T0);
    assert_eq!(claims.exp, T0 + 900);
    assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());

    let auth = bearer(&token);
    let authorized = authorize(&f, &auth).await.unwrap();
    assert_eq!(authorized, claims);
}

#[tokio::test]
async fn forged_token_with_our_key_and_valid_claims_is_accepted() {
    // Control for the forging helpers: with nothing wrong, the token passes.
    let f = Fixture::new().await;
    let token = f.sign_with_our_key(&f.header(), &f.claims("drk_x"));
    assert!(validate(&f, &token).await.is_ok());
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let f = Fixture::new().await;
    let claims = f.claims("drk_x");
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid() });
        let unsigned = format!("{}.", signing_input(&header, &claims));
        assert_eq!(
            validate(&f, &unsigned).await,
            invalid(InvalidReason::Algorithm)
        );
        // With our real signature attached, still rejected.
        let signed = f.sign_with_our_key(&header, &claims);
        assert_eq!(
            validate(&f, &signed).await,
            invalid(InvalidReason::Algorithm)
        );
    }
    let no_alg = f.sign_with_our_key(&json!({ "typ": "at+jwt", "kid": f.kid() }), &claims);
    assert_eq!(
        validate(&f, &no_alg).await,
        invalid(InvalidReason::Algorithm)
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let f = Fixture::new().await;
    let claims = f.claims("drk_x");
    let jwks = f.keys.jwks();
    let jwk = &jwks["keys"][0];
    let x = jwk["x"].as_str().unwrap();
    let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, x).unwrap();
    // SubjectPublicKeyInfo DER of an Ed25519 key: fixed 12-byte prefix + raw key.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(&raw);
    let candidates: Vec<Vec<u8>> = vec![
        raw.clone(),
        x.as_bytes().to_vec(),
        spki,
        serde_json::to_vec(jwk).unwrap(),
        serde_json::to_vec(&jwks).unwrap(),
    ];
    for secret in candidates {
        let token = hs256(&f.kid(), &claims, &secret);
        assert_eq!(
            validate(&f, &token).await,
            invalid(InvalidReason::Algorithm)
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_a_client_secret_is_rejected() {
    let f = Fixture::new().await;
    let (client, secret) = f.register(&[]).await;
    let claims = f.claims(&client.client_id);
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(f.kid());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
        )
        .unwrap();
        assert_eq!(
            validate(&f, &token).await,
            invalid(InvalidReason::Algorithm)
        );
        let auth = bearer(&token);
        let answer = authorize(&f, &auth).await;
        assert_eq!(answer.unwrap_err().status(), 401);
    }
}

#[tokio::test]
async fn other_asymmetric_algorithms_are_rejected_even_with_our_signature() {
    let f = Fixture::new().await;
    let claims = f.claims("drk_x");
    for alg in [
        "RS256", "RS512", "PS256", "ES256", "ES384", "eddsa", "EdDSA ", "Ed25519",
    ] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid() });
        let token = f.sign_with_our_key(&header, &claims);
        assert_eq!(
            validate(&f, &token).await,
            invalid(InvalidReason::Algorithm),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn tampered_payload_is_rejected() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&["other-scope"]).await;
    let token = f.token_for(&client.client_id, &["other-scope"]).await;
    let parts: Vec<&str> = token.split('.').collect();

    let mut claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["scope"] = json!(IMPORT);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(
        validate(&f, &tampered).await,
        invalid(InvalidReason::Signature)
    );

    claims["scope"] = json!("other-scope");
    claims["exp"] = json!(T0 + 86_400 * 365);
    let extended = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert_eq!(
        validate(&f, &extended).await,
        invalid(InvalidReason::Signature)
    );
}

#[tokio::test]
async fn tampered_signature_is_rejected() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .unwrap();
    bytes[10] ^= 0x01;
    let flipped = format!("{input}.{}", b64(&bytes));
    assert_eq!(
        validate(&f, &flipped).await,
        invalid(InvalidReason::Signature)
    );

    let truncated = format!("{input}.{}", b64(&bytes[..32]));
    assert!(matches!(
        validate(&f, &truncated).await,
        Err(TokenError::Invalid(_))
    ));
    let stripped = format!("{input}.");
    assert!(matches!(
        validate(&f, &stripped).await,
        Err(TokenError::Invalid(_))
    ));
}

#[tokio::test]
async fn attackers_own_ed25519_key_under_our_kid_is_rejected() {
    let f = Fixture::new().await;
    let attacker = Ed25519KeyPair::generate().unwrap();
    let x = b64(aws_lc_rs::signature::KeyPair::public_key(&attacker).as_ref());
    // Embedded jwk and jku must be ignored.
    let header = json!({
        "alg": "EdDSA", "typ": "at+jwt", "kid": f.kid(),
        "jwk": { "kty": "OKP", "crv": "Ed25519", "x": x },
        "jku": "https://attacker.example/jwks.json",
    });
    let token = sign_ed25519(&attacker, &header, &f.claims("drk_x"));
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::Signature)
    );

    // And under a kid of its own.
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "attacker-kid", "jwk": { "kty": "OKP", "crv": "Ed25519", "x": x } });
    let token = sign_ed25519(&attacker, &header, &f.claims("drk_x"));
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::UnknownKey)
    );
}

#[tokio::test]
async fn unknown_or_missing_kid_is_rejected_and_refreshes_at_most_every_5_seconds() {
    let f = Fixture::new().await;
    let claims = f.claims("drk_x");
    let loads = f.key_store.loads();

    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "no-such-kid" });
    let token = f.sign_with_our_key(&header, &claims);
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::UnknownKey)
    );
    assert_eq!(
        f.key_store.loads(),
        loads + 1,
        "one refresh for an unknown kid"
    );
    for _ in 0..10 {
        assert_eq!(
            validate(&f, &token).await,
            invalid(InvalidReason::UnknownKey)
        );
    }
    assert_eq!(f.key_store.loads(), loads + 1, "rate-limited");
    f.clock.advance(Duration::from_secs(5));
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::UnknownKey)
    );
    assert_eq!(f.key_store.loads(), loads + 2);

    for header in [
        json!({ "alg": "EdDSA", "typ": "at+jwt" }),
        json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "" }),
        json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": 1 }),
    ] {
        let token = f.sign_with_our_key(&header, &claims);
        assert_eq!(
            validate(&f, &token).await,
            invalid(InvalidReason::UnknownKey)
        );
    }
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let f = Fixture::new().await;
    for iss in [
        json!("http://evil.example"),
        json!("http://127.0.0.1:8080/"),
        json!([ISSUER, "x"]),
    ] {
        let mut claims = f.claims("drk_x");
        claims["iss"] = iss;
        let token = f.sign_with_our_key(&f.header(), &claims);
        assert!(matches!(
            validate(&f, &token).await,
            Err(TokenError::Invalid(_))
        ));
    }
    let mut claims = f.claims("drk_x");
    claims["iss"] = json!("http://evil.example");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Issuer));
    claims.as_object_mut().unwrap().remove("iss");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Claims));
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let f = Fixture::new().await;
    for aud in [
        json!("other-api"),
        json!("DRKLEINRK-API"),
        json!("drkleinrk-api "),
    ] {
        let mut claims = f.claims("drk_x");
        claims["aud"] = aud;
        let token = f.sign_with_our_key(&f.header(), &claims);
        assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Audience));
    }
    // Our tokens carry a single audience string; arrays are not ours.
    for aud in [
        json!(["other-api"]),
        json!([AUDIENCE, "other-api"]),
        json!(42),
    ] {
        let mut claims = f.claims("drk_x");
        claims["aud"] = aud;
        let token = f.sign_with_our_key(&f.header(), &claims);
        assert!(matches!(
            validate(&f, &token).await,
            Err(TokenError::Invalid(_))
        ));
    }
    let mut claims = f.claims("drk_x");
    claims.as_object_mut().unwrap().remove("aud");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Claims));
}

#[tokio::test]
async fn wrong_or_missing_typ_is_rejected() {
    let f = Fixture::new().await;
    let claims = f.claims("drk_x");
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt2"),
        json!(""),
        json!(null),
        json!(["at+jwt"]),
    ] {
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": f.kid() });
        let token = f.sign_with_our_key(&header, &claims);
        assert_eq!(
            validate(&f, &token).await,
            invalid(InvalidReason::Type),
            "{typ}"
        );
    }
    let header = json!({ "alg": "EdDSA", "kid": f.kid() });
    let token = f.sign_with_our_key(&header, &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Type));

    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        let header = json!({ "alg": "EdDSA", "typ": typ, "kid": f.kid() });
        let token = f.sign_with_our_key(&header, &claims);
        assert!(validate(&f, &token).await.is_ok(), "{typ}");
    }
}

#[tokio::test]
async fn crit_header_is_rejected() {
    let f = Fixture::new().await;
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": f.kid(), "crit": ["exp"] });
    let token = f.sign_with_our_key(&header, &f.claims("drk_x"));
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::CriticalHeader)
    );
}

#[tokio::test]
async fn expiry_is_checked_with_the_leeway() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    // exp = T0 + 900; leeway 30 s: valid until T0 + 929 inclusive.
    f.advance(900);
    assert!(validate(&f, &token).await.is_ok(), "at exp, within leeway");
    f.advance(29);
    assert!(validate(&f, &token).await.is_ok(), "exp + 29 s");
    f.advance(1);
    assert_eq!(validate(&f, &token).await, Err(TokenError::Expired));
    f.advance(86_400);
    let auth = bearer(&token);
    let error = authorize(&f, &auth).await.unwrap_err();
    assert_eq!(error, TokenError::Expired);
    assert_eq!(error.status(), 401);
    assert_eq!(
        error.www_authenticate().as_deref(),
        Some("Bearer realm=\"vorgang\", error=\"invalid_token\"")
    );

    let mut claims = f.claims("drk_x");
    claims.as_object_mut().unwrap().remove("exp");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Claims));
    claims["exp"] = json!("tomorrow");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Claims));
}

#[tokio::test]
async fn a_lifetime_beyond_the_ttl_is_rejected_even_when_signed_with_our_key() {
    // Someone holding a copy of the signing key mints a token valid for a year.
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let now = f.clock.timestamp();
    let mut claims = f.claims(&client.client_id);
    claims["exp"] = json!(now + 365 * 86_400);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Lifetime));
    let auth = bearer(&token);
    let error = authorize(&f, &auth).await.unwrap_err();
    assert_eq!(error.status(), 401);
    assert_eq!(error.error_code(), Some("invalid_token"));

    // One second over the TTL (900 s) is too long; exactly the TTL, as we issue, is fine.
    claims["exp"] = json!(now + 901);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Lifetime));
    claims["exp"] = json!(now + 900);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert!(validate(&f, &token).await.is_ok(), "exp - iat == ttl");

    // An old `iat` cannot hide a long lifetime behind a near `exp` either.
    claims["iat"] = json!(now - 86_400);
    claims["exp"] = json!(now + 60);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Lifetime));
}

#[tokio::test]
async fn nbf_and_iat_in_the_future_are_rejected_beyond_the_leeway() {
    let f = Fixture::new().await;
    let now = f.clock.timestamp();

    let mut claims = f.claims("drk_x");
    claims["nbf"] = json!(now + 31);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::NotYetValid)
    );

    claims["nbf"] = json!(now + 30);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert!(validate(&f, &token).await.is_ok(), "nbf within leeway");

    let mut claims = f.claims("drk_x");
    claims["iat"] = json!(now + 600);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::NotYetValid)
    );

    claims["iat"] = json!(now + 20);
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert!(
        validate(&f, &token).await.is_ok(),
        "iat within leeway (clock skew)"
    );

    claims.as_object_mut().unwrap().remove("iat");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Claims));
}

#[tokio::test]
async fn sub_must_equal_client_id() {
    let f = Fixture::new().await;
    let mut claims = f.claims("drk_a");
    claims["client_id"] = json!("drk_b");
    let token = f.sign_with_our_key(&f.header(), &claims);
    assert_eq!(validate(&f, &token).await, invalid(InvalidReason::Claims));
}

#[tokio::test]
async fn token_of_a_retired_key_verifies_for_its_lifetime_only() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let old_kid = f.kid();
    f.advance(600);
    let old_token = f.token_for(&client.client_id, &[IMPORT]).await; // exp = T0 + 1500
    let forged_later = {
        let (_, pair) = f.signing_pair();
        pair
    };

    let new_kid = f.keys.rotate().await.unwrap();
    assert_ne!(new_kid, old_kid);
    let new_token = f.token_for(&client.client_id, &[IMPORT]).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token).unwrap().kid,
        Some(new_kid)
    );

    // Old token stays valid until it expires.
    f.advance(800);
    assert!(validate(&f, &old_token).await.is_ok());
    assert!(validate(&f, &new_token).await.is_ok());
    f.advance(130); // T0 + 1530 = exp + 30
    assert_eq!(validate(&f, &old_token).await, Err(TokenError::Expired));

    // Once the grace (ttl + leeway + reload interval) has passed, the old key verifies
    // nothing at all, not even a fresh token it signs.
    f.advance(60);
    let mut claims = f.claims(&client.client_id);
    claims["exp"] = json!(f.clock.timestamp() + 900);
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": old_kid });
    let token = sign_ed25519(&forged_later, &header, &claims);
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::UnknownKey)
    );
    assert_eq!(f.keys.jwks()["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn token_of_a_revoked_client_is_rejected_at_once() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    let auth = bearer(&token);
    assert!(authorize(&f, &auth).await.is_ok());

    assert!(f.registry.revoke(&client.client_id).await.unwrap());
    let error = authorize(&f, &auth).await.unwrap_err();
    assert_eq!(error, TokenError::Revoked);
    assert_eq!(error.status(), 401);
    assert_eq!(error.error_code(), Some("invalid_token"));

    // A token for a client id that never existed: same answer.
    let ghost = f.token_for("drk_ghost", &[IMPORT]).await;
    let auth = bearer(&ghost);
    assert_eq!(authorize(&f, &auth).await, Err(TokenError::Revoked));
}

#[tokio::test]
async fn missing_scope_is_insufficient_scope() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&["reports:read"]).await;
    let token = f.token_for(&client.client_id, &["reports:read"]).await;
    let auth = bearer(&token);
    let error = authorize(&f, &auth).await.unwrap_err();
    assert_eq!(
        error,
        TokenError::InsufficientScope {
            required: IMPORT.to_owned()
        }
    );
    assert_eq!(error.status(), 403);
    assert_eq!(
        error.www_authenticate().as_deref(),
        Some(
            "Bearer realm=\"vorgang\", error=\"insufficient_scope\", scope=\"drkleinrk-api/vorgang:import\""
        )
    );

    // A scope that merely contains the required one as a substring does not count.
    let mut claims = f.claims(&client.client_id);
    claims["scope"] = json!("drkleinrk-api/vorgang:import-all xdrkleinrk-api/vorgang:import");
    let token = f.sign_with_our_key(&f.header(), &claims);
    let auth = bearer(&token);
    assert!(matches!(
        authorize(&f, &auth).await,
        Err(TokenError::InsufficientScope { .. })
    ));
}

#[tokio::test]
async fn absent_or_non_bearer_credentials_are_missing() {
    let f = Fixture::new().await;
    for header in [None, Some("Basic ZHJrOnNlY3JldA=="), Some("")] {
        let error = f
            .validator
            .authorize_import(header, &f.registry)
            .await
            .unwrap_err();
        assert_eq!(error, TokenError::Missing);
        assert_eq!(error.status(), 401);
        assert_eq!(
            error.www_authenticate().as_deref(),
            Some("Bearer realm=\"vorgang\"")
        );
    }
}

#[tokio::test]
async fn garbage_tokens_are_malformed() {
    let f = Fixture::new().await;
    let long = "a".repeat(9000) + ".b.c";
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.b.c",
        "e30.e30.",
        long.as_str(),
    ] {
        assert!(
            matches!(validate(&f, token).await, Err(TokenError::Invalid(_))),
            "{token:.20}"
        );
    }
    // Duplicate member in the header.
    let header = format!(
        "{}.{}.x",
        b64(br#"{"alg":"none","alg":"EdDSA","typ":"at+jwt"}"#),
        b64(b"{}")
    );
    assert_eq!(
        validate(&f, &header).await,
        invalid(InvalidReason::Malformed)
    );
}

#[tokio::test]
async fn store_outage_during_revocation_check_is_unavailable_not_unauthorized() {
    let f = Fixture::new().await;
    let (client, _) = f.register(&[]).await;
    let token = f.token_for(&client.client_id, &[IMPORT]).await;
    f.client_store.set_unavailable(true);
    let auth = bearer(&token);
    let error = authorize(&f, &auth).await.unwrap_err();
    assert_eq!(error, TokenError::Unavailable);
    assert_eq!(error.status(), 503);
    assert_eq!(error.www_authenticate(), None);
}

#[tokio::test]
async fn a_payload_that_is_not_utf8_is_rejected_even_when_signed_with_our_key() {
    // Found by fuzzing: serde_json skips the value of an ignored claim without checking its
    // UTF-8, so these bytes in a member we do not read used to pass.
    let f = Fixture::new().await;
    let (_, pair) = f.signing_pair();
    let mut payload = serde_json::to_vec(&f.claims("drk_x")).unwrap();
    payload.pop(); // the closing brace
    payload.extend_from_slice(b",\"x\":\"\xBD\"}");
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&f.header()).unwrap()),
        b64(&payload)
    );
    let token = format!("{input}.{}", b64(pair.sign(input.as_bytes()).as_ref()));
    assert_eq!(
        validate(&f, &token).await,
        invalid(InvalidReason::Malformed)
    );

    // The same claims as valid UTF-8 pass: the refusal is caused by the bytes alone.
    let mut claims = f.claims("drk_x");
    claims["x"] = json!("\u{bd}");
    assert!(
        validate(&f, &f.sign_with_our_key(&f.header(), &claims))
            .await
            .is_ok()
    );
}
