//! Fuzz harness of the access token validator ([`auth::TokenValidator`]) against a real key
//! ring held in the in-memory stores of `auth::memory`.
//!
//! Compiled twice: into the `vorgang-fuzz` crate for the `token_string` and `token_structured`
//! targets, and by `crates/vorgang-server/tests/fuzz_seeds.rs` (`#[path]`), which replays the
//! committed seeds on stable Rust. So this file may use only crates both have: `auth`,
//! `aws_lc_rs`, `base64`, `chrono`, `serde_json`, `tokio`.
//!
//! Everything is deterministic: the keys come from fixed seeds and the clock stands at
//! [`NOW`], so committed seed tokens stay valid and a crash reproduces anywhere.
//!
//! The key ring holds three keys: the signing key, a retired key that still verifies (within
//! its grace period) and a key retired so long ago that it is no longer loaded. A fourth key is
//! not in the ring at all. Two clients exist: one active, one revoked.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use auth::memory::{ManualClock, MemoryClientStore, MemorySigningKeyStore};
use auth::token::MAX_TOKEN_LEN;
use auth::{
    AccessClaims, ClientRecord, ClientRegistry, ClientStore as _, IMPORT_SCOPE, KeyRing,
    KeyRingConfig, SecretHasher, SigningKeyRecord, SigningKeyStore as _, TokenError, TokenIssuer,
    TokenSettings, TokenValidator,
};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// `iss` of the harness's tokens.
pub const ISSUER: &str = "https://api.drkleinservice.de";
/// `aud` of the harness's tokens (the default audience).
pub const AUDIENCE: &str = "drkleinrk-api";
/// The clock of the harness: 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;
/// The client that exists and is active.
pub const ACTIVE_CLIENT: &str = "drk_fuzzactive00000000000000000000";
/// The client that exists and is revoked.
pub const REVOKED_CLIENT: &str = "drk_fuzzrevoked0000000000000000000";

/// Token lifetime and leeway of the harness (the defaults).
const TTL: i64 = 900;
const LEEWAY: i64 = 30;

/// Which key signs a structured input, chosen by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// `S`: the ring's signing key.
    Active,
    /// `R`: a retired key that still verifies.
    Retired,
    /// `E`: a key retired beyond its grace period (not loaded by the ring).
    Expired,
    /// `F`: a key the ring never knew.
    Foreign,
    /// `N`: no signature (empty third part).
    Unsigned,
    /// `X`: the signing key's signature with one bit flipped.
    Corrupted,
    /// `T`: two parts only (no signature part).
    TwoParts,
    /// `D`: a valid signature followed by a fourth part.
    FourParts,
}

impl Signer {
    const ALL: [Self; 8] = [
        Self::Active,
        Self::Retired,
        Self::Expired,
        Self::Foreign,
        Self::Unsigned,
        Self::Corrupted,
        Self::TwoParts,
        Self::FourParts,
    ];

    /// The signer of a mode byte: the letters above, any other byte by its value.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            b'S' => Self::Active,
            b'R' => Self::Retired,
            b'E' => Self::Expired,
            b'F' => Self::Foreign,
            b'N' => Self::Unsigned,
            b'X' => Self::Corrupted,
            b'T' => Self::TwoParts,
            b'D' => Self::FourParts,
            other => Self::ALL[usize::from(other) % Self::ALL.len()],
        }
    }

    /// The mode byte of this signer.
    pub fn byte(self) -> u8 {
        match self {
            Self::Active => b'S',
            Self::Retired => b'R',
            Self::Expired => b'E',
            Self::Foreign => b'F',
            Self::Unsigned => b'N',
            Self::Corrupted => b'X',
            Self::TwoParts => b'T',
            Self::FourParts => b'D',
        }
    }
}

/// One Ed25519 key of the harness.
pub struct Key {
    /// The key pair.
    pub pair: Ed25519KeyPair,
    /// Its `kid` as the key ring computes it.
    pub kid: String,
}

impl Key {
    fn from_seed(seed: u8) -> Self {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32])
            .unwrap_or_else(|e| panic!("fixed Ed25519 seed rejected: {e}"));
        let kid = auth::keys::kid_for_public_key(pair.public_key().as_ref());
        Self { pair, kid }
    }

    fn record(&self, created: i64, retired: Option<i64>) -> SigningKeyRecord {
        let pkcs8 = self
            .pair
            .to_pkcs8()
            .unwrap_or_else(|e| panic!("PKCS#8 export failed: {e}"));
        SigningKeyRecord {
            kid: self.kid.clone(),
            algorithm: "EdDSA".to_owned(),
            private_key: pkcs8.as_ref().to_vec(),
            encrypted: false,
            public_key: self.pair.public_key().as_ref().to_vec(),
            created_at: at(created),
            retired_at: retired.map(at),
        }
    }

    /// `header.payload.signature` with both parts base64url-encoded as given.
    pub fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        let input = signing_input(header, payload);
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn verifies(&self, token: &str) -> bool {
        let Some((input, signature)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, self.pair.public_key().as_ref())
            .verify(input.as_bytes(), &signature)
            .is_ok()
    }
}

fn at(timestamp: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(timestamp, 0).unwrap_or_default()
}

fn signing_input(header: &[u8], payload: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// The validator, its key ring and clients, and the keys to forge with.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    /// The validator under test.
    pub validator: TokenValidator,
    /// The issuer of real tokens (same ring, clock and settings).
    pub issuer: TokenIssuer,
    /// The clients, for the revocation check.
    pub registry: ClientRegistry,
    /// The ring's signing key.
    pub active: Key,
    /// Retired, still verifying.
    pub retired: Key,
    /// Retired beyond its grace period.
    pub expired: Key,
    /// Never in the ring.
    pub foreign: Key,
}

impl Harness {
    /// The harness of this process (built on first use: key ring loads, clients inserted).
    pub fn get() -> &'static Self {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Self::new)
    }

    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
        let clock = Arc::new(ManualClock::at_timestamp(NOW));
        let settings = TokenSettings::new(ISSUER);
        // The oracles below reason with these numbers.
        assert_eq!(settings.ttl, Duration::from_secs(TTL.unsigned_abs()));
        assert_eq!(settings.leeway, Duration::from_secs(LEEWAY.unsigned_abs()));
        assert_eq!(settings.audience, AUDIENCE);
        let (active, retired, expired, foreign) = (
            Key::from_seed(0x11),
            Key::from_seed(0x22),
            Key::from_seed(0x33),
            Key::from_seed(0x44),
        );
        let key_store = Arc::new(MemorySigningKeyStore::default());
        let client_store = Arc::new(MemoryClientStore::default());
        let keys = runtime.block_on(async {
            for record in [
                active.record(NOW - 1_000, None),
                retired.record(NOW - 5_000, Some(NOW - 100)),
                expired.record(NOW - 100_000, Some(NOW - 50_000)),
            ] {
                key_store
                    .insert_key(&record)
                    .await
                    .unwrap_or_else(|e| panic!("insert key: {e}"));
            }
            for (client_id, revoked_at) in [(ACTIVE_CLIENT, None), (REVOKED_CLIENT, Some(NOW - 60))]
            {
                let record = ClientRecord {
                    client_id: client_id.to_owned(),
                    secret_hash: String::new(),
                    name: String::new(),
                    email: String::new(),
                    telefonnummer: String::new(),
                    organisation: "Fuzz GmbH".to_owned(),
                    scopes: vec![IMPORT_SCOPE.to_owned()],
                    revoked_at: revoked_at.map(at),
                    created_at: at(NOW - 10_000),
                };
                client_store
                    .insert_client(&record)
                    .await
                    .unwrap_or_else(|e| panic!("insert client: {e}"));
            }
            KeyRing::load_or_create(
                key_store,
                None,
                clock.clone(),
                KeyRingConfig::from_token_settings(&settings),
            )
            .await
            .unwrap_or_else(|e| panic!("key ring: {e}"))
        });
        let keys = Arc::new(keys);
        assert_eq!(
            keys.signing_kid(),
            active.kid,
            "the ring signs with the wrong key"
        );
        let hasher = SecretHasher::with_cost(64, 1, 1).unwrap_or_else(|e| panic!("hasher: {e}"));
        Self {
            runtime,
            validator: TokenValidator::new(keys.clone(), clock.clone(), settings.clone()),
            issuer: TokenIssuer::new(keys, clock.clone(), settings),
            registry: ClientRegistry::with_hasher(client_store, clock, hasher),
            active,
            retired,
            expired,
            foreign,
        }
    }

    /// Runs a future of the harness to completion.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A real token issued by the ring for `client_id` with `scopes`.
    pub fn issue(&self, client_id: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.block_on(self.issuer.issue(client_id, &scopes))
            .unwrap_or_else(|e| panic!("issue: {e}"))
            .access_token
    }

    /// The token a structured input describes (see [`token_structured`]).
    pub fn forge(&self, signer: Signer, header: &[u8], payload: &[u8]) -> String {
        match signer {
            Signer::Active => self.active.sign(header, payload),
            Signer::Retired => self.retired.sign(header, payload),
            Signer::Expired => self.expired.sign(header, payload),
            Signer::Foreign => self.foreign.sign(header, payload),
            Signer::Unsigned => format!("{}.", signing_input(header, payload)),
            Signer::TwoParts => signing_input(header, payload),
            Signer::FourParts => format!("{}.e30", self.active.sign(header, payload)),
            Signer::Corrupted => {
                let input = signing_input(header, payload);
                let mut signature = self.active.pair.sign(input.as_bytes()).as_ref().to_vec();
                let bit = payload.len() % (signature.len() * 8);
                if let Some(byte) = signature.get_mut(bit / 8) {
                    *byte ^= 1 << (bit % 8);
                }
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
            }
        }
    }

    /// What must hold whenever the validator accepts `token` with `claims`, checked
    /// independently of it: a genuine signature of a key that still verifies, our issuer and
    /// audience, `sub` = `client_id`, and the times.
    fn check_accepted(&self, token: &str, claims: &AccessClaims) {
        assert!(
            self.active.verifies(token) || self.retired.verifies(token),
            "accepted a token not signed by a verifying key of the ring"
        );
        let header = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Map<String, Value>>(&h).ok())
            .unwrap_or_else(|| panic!("accepted a token without a JSON header"));
        assert_eq!(
            header.get("alg"),
            Some(&Value::from("EdDSA")),
            "accepted alg"
        );
        assert_eq!(claims.iss, ISSUER, "accepted another issuer");
        assert_eq!(claims.aud, AUDIENCE, "accepted another audience");
        assert_eq!(claims.sub, claims.client_id, "accepted sub != client_id");
        assert!(
            i128::from(claims.exp) + i128::from(LEEWAY) > i128::from(NOW),
            "accepted an expired token"
        );
        for not_before in [Some(claims.iat), claims.nbf].into_iter().flatten() {
            assert!(
                i128::from(not_before) <= i128::from(NOW) + i128::from(LEEWAY),
                "accepted a token from the future"
            );
        }
    }

    /// [`TokenValidator::authorize_import`] of one `Authorization` value; panics if an
    /// acceptance breaks [`Self::check_accepted`], names another client or lacks the scope.
    /// Returns whether the token itself was valid (also when only the client or the scope was
    /// refused) and whether the request was authorized.
    ///
    /// `validate` runs again only when `authorize_import` refused for the client or the scope,
    /// to check the claims it passed: one signature check per input keeps the fuzzer fast.
    fn authorize(&self, header: &str) -> (bool, bool) {
        let authorized = self.block_on(
            self.validator
                .authorize_import(Some(header), &self.registry),
        );
        let token = || {
            auth::token::bearer_token(Some(header))
                .unwrap_or_else(|e| panic!("passed a header without a bearer token: {e}"))
        };
        let valid = match &authorized {
            Ok(claims) => {
                self.check_accepted(token(), claims);
                assert_eq!(claims.client_id, ACTIVE_CLIENT, "accepted a revoked client");
                assert!(claims.has_scope(IMPORT_SCOPE), "accepted without the scope");
                true
            }
            Err(TokenError::Revoked | TokenError::InsufficientScope { .. }) => {
                let claims = self
                    .block_on(self.validator.validate(token()))
                    .unwrap_or_else(|e| panic!("authorize_import passed the token, validate: {e}"));
                self.check_accepted(token(), &claims);
                true
            }
            Err(_) => false,
        };
        (valid, authorized.is_ok())
    }
}

/// Target `token_string`: the input (UTF-8) as a token for
/// [`TokenValidator::validate`], after `Bearer ` and as the whole `Authorization` value for
/// [`TokenValidator::authorize_import`].
///
/// Checks every acceptance independently ([`Harness`] docs: signature of a verifying key,
/// issuer, audience, times, active client, scope). Returns whether `validate` accepted.
pub fn token_string(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let harness = Harness::get();
    let validated = harness.block_on(harness.validator.validate(text));
    if let Ok(claims) = &validated {
        harness.check_accepted(text, claims);
    }
    let (valid, _) = harness.authorize(&format!("Bearer {text}"));
    if validated.is_ok() {
        assert!(
            valid,
            "validate accepted, authorize_import refused the token itself"
        );
    }
    // The input as the header value itself: scheme parsing, and tokens that carry a scheme.
    harness.authorize(text);
    validated.is_ok()
}

/// Target `token_structured`: the input is `MODE HEADER-JSON "\n" PAYLOAD-JSON`; the harness
/// base64url-encodes both parts and signs them as MODE says ([`Signer`]), so that mutations
/// reach the checks behind the base64 and signature layers.
///
/// Beyond the checks of [`token_string`], it states which tokens must be refused (a bad
/// signature or key, `alg` other than `EdDSA`, wrong `typ`, `crit`, wrong `iss`/`aud`, missing
/// or mistyped claims, expired, not yet valid, revoked client, missing scope) and which must be
/// accepted (a canonical, correct token signed by a verifying key). Returns whether
/// `authorize_import` accepted.
pub fn token_structured(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let signer = Signer::from_byte(mode);
    let harness = Harness::get();
    let token = harness.forge(signer, header, payload);
    let (valid, authorized) = harness.authorize(&format!("Bearer {token}"));

    if let Some(rule) = must_refuse(harness, signer, &token, header, payload) {
        assert!(
            !valid && !authorized,
            "accepted a token that breaks: {rule}"
        );
    } else if let Some(rule) = must_refuse_import(payload) {
        assert!(!authorized, "authorized a token that breaks: {rule}");
    }
    if must_accept(harness, signer, &token, header, payload) {
        assert!(valid && authorized, "refused a correct token");
    }
    authorized
}

/// The first rule of the validator the token breaks, if any (`None`: it may be valid).
fn must_refuse(
    harness: &Harness,
    signer: Signer,
    token: &str,
    header: &[u8],
    payload: &[u8],
) -> Option<&'static str> {
    let kid = match signer {
        Signer::Active => &harness.active.kid,
        Signer::Retired => &harness.retired.kid,
        Signer::Expired => return Some("key retired beyond its grace"),
        Signer::Foreign => return Some("unknown key"),
        Signer::Unsigned => return Some("no signature"),
        Signer::Corrupted => return Some("bad signature"),
        Signer::TwoParts | Signer::FourParts => return Some("not three parts"),
    };
    if token.len() > MAX_TOKEN_LEN {
        return Some("too long");
    }
    let Some(header) = json_object(header) else {
        return Some("header not a JSON object");
    };
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Some("alg");
    }
    let typ_ok = header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        });
    if !typ_ok {
        return Some("typ");
    }
    if header.get("crit").is_some_and(|crit| !crit.is_null()) {
        return Some("crit");
    }
    if header.get("kid").and_then(Value::as_str) != Some(kid.as_str()) {
        return Some("kid of another key");
    }
    let Some(claims) = json_object(payload) else {
        return Some("payload not a JSON object");
    };
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
        return Some("iss");
    }
    if claims.get("aud").and_then(Value::as_str) != Some(AUDIENCE) {
        return Some("aud");
    }
    for name in ["sub", "client_id", "scope", "jti"] {
        if !claims.get(name).is_some_and(Value::is_string) {
            return Some("string claim missing or mistyped");
        }
    }
    if claims.get("sub") != claims.get("client_id") {
        return Some("sub != client_id");
    }
    let (Some(exp), Some(iat)) = (
        claims.get("exp").and_then(Value::as_i64),
        claims.get("iat").and_then(Value::as_i64),
    ) else {
        return Some("exp or iat missing or not an integer");
    };
    let nbf = match claims.get("nbf") {
        None | Some(Value::Null) => None,
        Some(nbf) => match nbf.as_i64() {
            Some(nbf) => Some(nbf),
            None => return Some("nbf not an integer"),
        },
    };
    let (now, leeway) = (i128::from(NOW), i128::from(LEEWAY));
    if i128::from(exp) + leeway <= now {
        return Some("expired");
    }
    if [Some(iat), nbf]
        .into_iter()
        .flatten()
        .any(|t| i128::from(t) > now + leeway)
    {
        return Some("not yet valid");
    }
    None
}

/// A token part as the validator reads it: a JSON object, where invalid UTF-8 counts only in
/// the members it reads. serde_json skips the strings of members a struct ignores without
/// checking their UTF-8, so `{"x":"\xBD"}` passes the validator as a part with an unknown
/// member; the lossy conversion lets the oracle see the same object (a member the validator
/// reads keeps a replacement character and so still breaks its rule).
fn json_object(part: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_str(&String::from_utf8_lossy(part)).ok()
}

/// What `authorize_import` checks beyond the token itself: the client and the scope.
fn must_refuse_import(payload: &[u8]) -> Option<&'static str> {
    let claims = json_object(payload)?;
    if claims.get("client_id").and_then(Value::as_str) != Some(ACTIVE_CLIENT) {
        return Some("revoked or unknown client");
    }
    let scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scope.split(' ').any(|s| s == IMPORT_SCOPE) {
        return Some("scope missing");
    }
    None
}

/// Whether the input is a correct token that must pass: signed by a verifying key with its
/// `kid`, header and payload in canonical JSON with exactly the members we issue, every claim
/// right, issued at most a token lifetime ago.
fn must_accept(
    harness: &Harness,
    signer: Signer,
    token: &str,
    header: &[u8],
    payload: &[u8],
) -> bool {
    let kid = match signer {
        Signer::Active => &harness.active.kid,
        Signer::Retired => &harness.retired.kid,
        _ => return false,
    };
    let canonical = |bytes: &[u8]| {
        serde_json::from_slice::<Map<String, Value>>(bytes)
            .ok()
            .filter(|map| serde_json::to_vec(map).ok().as_deref() == Some(bytes))
    };
    let (Some(h), Some(c)) = (canonical(header), canonical(payload)) else {
        return false;
    };
    let header_ok = h.len() == 3
        && h.get("alg") == Some(&Value::from("EdDSA"))
        && h.get("typ") == Some(&Value::from("at+jwt"))
        && h.get("kid").and_then(Value::as_str) == Some(kid.as_str());
    let known = [
        "iss",
        "aud",
        "sub",
        "client_id",
        "scope",
        "iat",
        "exp",
        "nbf",
        "jti",
    ];
    let str_of = |name: &str| c.get(name).and_then(Value::as_str);
    let int_of = |name: &str| c.get(name).and_then(Value::as_i64);
    let (Some(iat), Some(exp)) = (int_of("iat"), int_of("exp")) else {
        return false;
    };
    let nbf_ok = match c.get("nbf") {
        None => true,
        Some(nbf) => nbf.as_i64().is_some_and(|nbf| nbf <= NOW),
    };
    header_ok
        && token.len() <= MAX_TOKEN_LEN
        && c.keys().all(|k| known.contains(&k.as_str()))
        && str_of("iss") == Some(ISSUER)
        && str_of("aud") == Some(AUDIENCE)
        && str_of("sub") == Some(ACTIVE_CLIENT)
        && str_of("client_id") == Some(ACTIVE_CLIENT)
        && str_of("scope").is_some_and(|s| s.split(' ').any(|s| s == IMPORT_SCOPE))
        && str_of("jti").is_some()
        && (NOW - TTL..=NOW).contains(&iat)
        && exp > NOW
        && exp.checked_sub(iat).is_some_and(|life| life <= TTL)
        && nbf_ok
}

/// The committed seeds of `token_string`, `(file name, bytes)`: real tokens of the ring and
/// mangled ones. Written by the ignored test `regenerate_token_seeds` in
/// `crates/vorgang-server/tests/fuzz_seeds.rs`.
pub fn string_seeds() -> Vec<(String, Vec<u8>)> {
    let h = Harness::get();
    let valid = h.issue(ACTIVE_CLIENT, &[IMPORT_SCOPE]);
    let header = |alg: &str, typ: &str, kid: &str| {
        format!(r#"{{"alg":"{alg}","typ":"{typ}","kid":"{kid}"}}"#).into_bytes()
    };
    let good_header = header("EdDSA", "at+jwt", &h.active.kid);
    let good_payload = claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW - 10, NOW + 890);
    let hs256 = {
        // The key-confusion attack: HS256 with our public key as the HMAC secret.
        let input = signing_input(&header("HS256", "at+jwt", &h.active.kid), &good_payload);
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            h.active.pair.public_key().as_ref(),
        );
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    };
    let mut flipped = valid.clone().into_bytes();
    if let Some(last) = flipped.last_mut() {
        *last = if *last == b'A' { b'B' } else { b'A' };
    }
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("valid", valid.clone().into_bytes()),
        ("valid-bearer", format!("Bearer {valid}").into_bytes()),
        (
            "valid-lowercase-scheme",
            format!("bearer  {valid}").into_bytes(),
        ),
        (
            "revoked-client",
            h.issue(REVOKED_CLIENT, &[IMPORT_SCOPE]).into_bytes(),
        ),
        (
            "other-scope",
            h.issue(ACTIVE_CLIENT, &["drkleinrk-api/other"])
                .into_bytes(),
        ),
        (
            "retired-key",
            h.retired
                .sign(&header("EdDSA", "at+jwt", &h.retired.kid), &good_payload)
                .into_bytes(),
        ),
        (
            "expired-key",
            h.expired
                .sign(&header("EdDSA", "at+jwt", &h.expired.kid), &good_payload)
                .into_bytes(),
        ),
        (
            "foreign-key-our-kid",
            h.foreign.sign(&good_header, &good_payload).into_bytes(),
        ),
        (
            "expired",
            h.active
                .sign(
                    &good_header,
                    &claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW - 2000, NOW - 1100),
                )
                .into_bytes(),
        ),
        (
            "alg-none",
            format!(
                "{}.",
                signing_input(&header("none", "at+jwt", &h.active.kid), &good_payload)
            )
            .into_bytes(),
        ),
        ("alg-hs256-public-key", hs256.into_bytes()),
        (
            "typ-jwt",
            h.active
                .sign(&header("EdDSA", "JWT", &h.active.kid), &good_payload)
                .into_bytes(),
        ),
        ("signature-flipped", flipped),
        (
            "truncated",
            valid.as_bytes()[..valid.len().saturating_sub(20)].to_vec(),
        ),
        ("four-parts", format!("{valid}.e30").into_bytes()),
        ("basic-scheme", b"Basic ZHJrOnNlY3JldA==".to_vec()),
        ("dots", b"..".to_vec()),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.to_owned(), bytes))
        .collect()
}

/// The payload we issue, canonical (the member order of [`AccessClaims`]).
fn claims(client_id: &str, scope: &str, iat: i64, exp: i64) -> Vec<u8> {
    format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"{client_id}","client_id":"{client_id}","scope":"{scope}","iat":{iat},"exp":{exp},"jti":"0b6e1c52-4f0c-4f1e-9a3e-5d2f6c7b8a90"}}"#
    )
    .into_bytes()
}

/// The committed seeds of `token_structured`, `(file name, bytes)`: one correct token per
/// verifying key and one input per rule of the validator.
pub fn structured_seeds() -> Vec<(String, Vec<u8>)> {
    let h = Harness::get();
    let kid = h.active.kid.as_str();
    let header = |alg: &str, typ: &str, kid: &str| {
        format!(r#"{{"alg":"{alg}","typ":"{typ}","kid":"{kid}"}}"#)
    };
    let good = header("EdDSA", "at+jwt", kid);
    let payload = |c: Vec<u8>| String::from_utf8(c).unwrap_or_default();
    let good_claims = payload(claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW - 10, NOW + 890));
    let mut seeds: Vec<(String, Signer, String, String)> = vec![
        (
            "valid".into(),
            Signer::Active,
            good.clone(),
            good_claims.clone(),
        ),
        (
            "valid-retired-key".into(),
            Signer::Retired,
            header("EdDSA", "at+jwt", &h.retired.kid),
            good_claims.clone(),
        ),
        (
            "valid-typ-application".into(),
            Signer::Active,
            header("EdDSA", "application/AT+JWT", kid),
            good_claims.clone(),
        ),
        (
            "valid-nbf".into(),
            Signer::Active,
            good.clone(),
            good_claims.replace(r#""jti""#, &format!(r#""nbf":{},"jti""#, NOW - 10)),
        ),
        (
            "valid-jwk-ignored".into(),
            Signer::Active,
            format!(
                r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","jwk":{{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}}}"#
            ),
            good_claims.clone(),
        ),
        (
            "crit".into(),
            Signer::Active,
            format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","crit":["exp"]}}"#),
            good_claims.clone(),
        ),
        (
            "kid-missing".into(),
            Signer::Active,
            r#"{"alg":"EdDSA","typ":"at+jwt"}"#.into(),
            good_claims.clone(),
        ),
        (
            "kid-number".into(),
            Signer::Active,
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":7}"#.into(),
            good_claims.clone(),
        ),
        (
            "duplicate-alg".into(),
            Signer::Active,
            format!(r#"{{"alg":"HS256","alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#),
            good_claims.clone(),
        ),
        (
            "valid-escaped-names".into(),
            Signer::Active,
            format!(r#"{{"\u0061lg":"EdDSA","typ":"at\u002bjwt","kid":"{kid}"}}"#),
            good_claims.replace(r#""iss""#, r#""\u0069ss""#),
        ),
        (
            "aud-array".into(),
            Signer::Active,
            good.clone(),
            good_claims.replace(r#""aud":"drkleinrk-api""#, r#""aud":["drkleinrk-api"]"#),
        ),
        (
            "iss-other".into(),
            Signer::Active,
            good.clone(),
            good_claims.replace(ISSUER, "https://evil.example"),
        ),
        (
            "sub-differs".into(),
            Signer::Active,
            good.clone(),
            good_claims.replacen(ACTIVE_CLIENT, REVOKED_CLIENT, 1),
        ),
        (
            "revoked-client".into(),
            Signer::Active,
            good.clone(),
            good_claims.replace(ACTIVE_CLIENT, REVOKED_CLIENT),
        ),
        (
            "scope-other".into(),
            Signer::Active,
            good.clone(),
            good_claims.replace(IMPORT_SCOPE, "drkleinrk-api/other vorgang:import"),
        ),
        (
            "exp-float".into(),
            Signer::Active,
            good.clone(),
            good_claims.replace(
                &format!(r#""exp":{},"#, NOW + 890),
                &format!(r#""exp":{}.5,"#, NOW + 890),
            ),
        ),
        (
            "ttl-exp-max".into(),
            Signer::Active,
            good.clone(),
            payload(claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW, i64::MAX)),
        ),
        (
            "ttl-one-year".into(),
            Signer::Active,
            good.clone(),
            payload(claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW, NOW + 31_536_000)),
        ),
        (
            "expired".into(),
            Signer::Active,
            good.clone(),
            payload(claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW - 950, NOW - 31)),
        ),
        (
            "iat-future".into(),
            Signer::Active,
            good.clone(),
            payload(claims(ACTIVE_CLIENT, IMPORT_SCOPE, NOW + 31, NOW + 900)),
        ),
        (
            "claims-missing".into(),
            Signer::Active,
            good.clone(),
            format!(
                r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}}}"#,
                NOW + 100
            ),
        ),
        (
            "payload-not-json".into(),
            Signer::Active,
            good.clone(),
            "not json".into(),
        ),
    ];
    for (name, alg) in [
        ("none", "none"),
        ("hs256", "HS256"),
        ("rs256", "RS256"),
        ("es256", "ES256"),
        ("ps256", "PS256"),
        ("lowercase", "eddsa"),
        ("trailing-space", "EdDSA "),
    ] {
        seeds.push((
            format!("alg-{name}"),
            Signer::Active,
            header(alg, "at+jwt", kid),
            good_claims.clone(),
        ));
    }
    for (name, typ) in [
        ("jwt", "JWT"),
        ("trailing-space", "at+jwt "),
        ("swapped", "jwt+at"),
    ] {
        seeds.push((
            format!("typ-{name}"),
            Signer::Active,
            header("EdDSA", typ, kid),
            good_claims.clone(),
        ));
    }
    for signer in [
        Signer::Expired,
        Signer::Foreign,
        Signer::Unsigned,
        Signer::Corrupted,
        Signer::TwoParts,
        Signer::FourParts,
    ] {
        seeds.push((
            format!("signer-{}", char::from(signer.byte())),
            signer,
            good.clone(),
            good_claims.clone(),
        ));
    }
    seeds
        .into_iter()
        .map(|(name, signer, header, payload)| {
            let mut bytes = vec![signer.byte()];
            bytes.extend_from_slice(header.as_bytes());
            bytes.push(b'\n');
            bytes.extend_from_slice(payload.as_bytes());
            (name, bytes)
        })
        .collect()
}
