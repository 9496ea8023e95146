//! The signing keys of our token issuer: Ed25519 key pairs shared by all replicas through a
//! [`SigningKeyStore`], private keys encrypted at rest when a key-encryption key is configured.
//!
//! One key signs (the newest one not retired); after [`KeyRing::rotate`] the older keys only
//! verify, for as long as tokens they signed can still be valid (`token_ttl + leeway`, plus the
//! [`KeyRingConfig::reload_interval`] during which another replica may not yet know about the
//! rotation). The published JWKS lists every key that still verifies.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret as _, SecretBox};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::error::{AuthError, Result};
use crate::ports::{SigningKeyRecord, SigningKeyStore};

/// The JWS algorithm of our keys, as stored in [`SigningKeyRecord::algorithm`].
pub const KEY_ALGORITHM: &str = "EdDSA";

const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// Lifetimes the key ring needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRingConfig {
    /// Lifetime of the access tokens (`token_ttl_s`, default 900 s).
    pub token_ttl: Duration,
    /// Clock-skew tolerance of validators (`token_leeway_s`, default 30 s).
    pub leeway: Duration,
    /// How often at most a token with an unknown `kid` makes the ring reload from the store
    /// (default 5 s): a stream of forged `kid`s costs at most one query per interval.
    pub refresh_min_interval: Duration,
    /// How old the loaded keys may get before the ring reloads them before signing (default
    /// 60 s), so that a replica picks up a rotation made elsewhere.
    pub reload_interval: Duration,
}

impl Default for KeyRingConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(900),
            leeway: Duration::from_secs(30),
            refresh_min_interval: Duration::from_secs(5),
            reload_interval: Duration::from_secs(60),
        }
    }
}

impl KeyRingConfig {
    /// The defaults with the token lifetime and leeway of `settings` (pass the same settings
    /// to the issuer and validator).
    #[must_use]
    pub fn from_token_settings(settings: &crate::TokenSettings) -> Self {
        Self {
            token_ttl: settings.ttl,
            leeway: settings.leeway,
            ..Self::default()
        }
    }

    /// How long a retired key keeps verifying after `retired_at`:
    /// `token_ttl + leeway + reload_interval`.
    #[must_use]
    pub fn retired_key_grace(&self) -> Duration {
        self.token_ttl
            .saturating_add(self.leeway)
            .saturating_add(self.reload_interval)
    }
}

/// The key currently signing.
struct SigningKey {
    kid: String,
    encoding_key: EncodingKey,
}

/// A key that verifies, with its public JWK parameter.
#[derive(Clone)]
struct VerifyingKey {
    kid: String,
    x: String,
    decoding_key: DecodingKey,
    retired_at: Option<DateTime<Utc>>,
}

struct KeyState {
    loaded_at: DateTime<Utc>,
    signing: Arc<SigningKey>,
    verifying: Vec<VerifyingKey>,
}

/// The signing key (its id and a `jsonwebtoken` key) handed to the token issuer.
#[derive(Clone)]
pub struct ActiveSigningKey {
    key: Arc<SigningKey>,
}

impl std::fmt::Debug for ActiveSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveSigningKey")
            .field("kid", &self.key.kid)
            .finish_non_exhaustive()
    }
}

impl ActiveSigningKey {
    /// The key id, the JWT `kid`.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// The private key for [`jsonwebtoken::encode`] with [`jsonwebtoken::Algorithm::EdDSA`].
    #[must_use]
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.key.encoding_key
    }
}

/// Our signing keys, loaded from a [`SigningKeyStore`] and kept in memory.
///
/// Use one ring per process, shared behind an `Arc`: it is `Send + Sync` and all methods take
/// `&self`.
pub struct KeyRing {
    store: Arc<dyn SigningKeyStore>,
    kek: Option<SecretBox<[u8; 32]>>,
    clock: Arc<dyn Clock>,
    config: KeyRingConfig,
    state: RwLock<Arc<KeyState>>,
    last_unknown_kid_refresh: Mutex<Option<DateTime<Utc>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.current();
        f.debug_struct("KeyRing")
            .field("signing_kid", &state.signing.kid)
            .field(
                "verifying_kids",
                &state.verifying.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .field("encrypted_at_rest", &self.kek.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Loads the keys from `store`, creating and storing the first one if there is none.
    ///
    /// `kek` is the 32-byte key-encryption key (`key_encryption_key`): new private keys are
    /// stored AES-256-GCM encrypted with it; without it they are stored in plain (the caller
    /// should log a warning). Keys stored in plain stay readable when a `kek` is configured
    /// later (a warning is logged; `keys rotate` replaces them).
    ///
    /// # Errors
    /// [`AuthError::Store`] if the store fails; [`AuthError::KeyUnusable`] if the signing key is
    /// encrypted and `kek` is missing or wrong, or the stored key is damaged;
    /// [`AuthError::Crypto`] if key generation fails.
    pub async fn load_or_create(
        store: Arc<dyn SigningKeyStore>,
        kek: Option<[u8; 32]>,
        clock: Arc<dyn Clock>,
        config: KeyRingConfig,
    ) -> Result<Self> {
        let kek = kek.map(|k| SecretBox::new(Box::new(k)));
        let state = match load_state(store.as_ref(), kek.as_ref(), clock.as_ref(), &config).await? {
            Some(state) => state,
            None => {
                let record = new_key_record(kek.as_ref(), clock.now())?;
                store.insert_key(&record).await?;
                tracing::info!(kid = %record.kid, "created the first signing key");
                load_state(store.as_ref(), kek.as_ref(), clock.as_ref(), &config)
                    .await?
                    .ok_or(AuthError::KeyUnusable {
                        kid: record.kid,
                        reason: "the stored key was not found again",
                    })?
            }
        };
        Ok(Self {
            store,
            kek,
            clock,
            config,
            state: RwLock::new(Arc::new(state)),
            last_unknown_kid_refresh: Mutex::new(None),
        })
    }

    /// The configuration given at load.
    #[must_use]
    pub fn config(&self) -> &KeyRingConfig {
        &self.config
    }

    /// Whether private keys are encrypted at rest (a key-encryption key is configured).
    #[must_use]
    pub fn encrypts_at_rest(&self) -> bool {
        self.kek.is_some()
    }

    fn current(&self) -> Arc<KeyState> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, state: KeyState) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
    }

    /// Creates a new signing key, stores it and retires every other key, which keep verifying
    /// for [`KeyRingConfig::retired_key_grace`]. Returns the new `kid`. Other replicas switch to
    /// the new key within [`KeyRingConfig::reload_interval`].
    ///
    /// # Errors
    /// [`AuthError::Store`] or [`AuthError::Crypto`]; on an error after the new key was stored
    /// the ring keeps its previous state and [`refresh`](Self::refresh) picks it up later.
    pub async fn rotate(&self) -> Result<String> {
        let now = self.clock.now();
        let record = new_key_record(self.kek.as_ref(), now)?;
        self.store.insert_key(&record).await?;
        self.store.retire_other_keys(&record.kid, now).await?;
        tracing::info!(kid = %record.kid, "rotated the signing key");
        self.refresh().await?;
        Ok(record.kid)
    }

    /// Reloads the keys from the store (keys created or retired by another replica or the CLI).
    ///
    /// # Errors
    /// As [`load_or_create`](Self::load_or_create); the ring keeps its previous keys then.
    pub async fn refresh(&self) -> Result<()> {
        let loaded = load_state(
            self.store.as_ref(),
            self.kek.as_ref(),
            self.clock.as_ref(),
            &self.config,
        )
        .await?;
        match loaded {
            Some(state) => {
                self.replace(state);
                Ok(())
            }
            None => Err(AuthError::KeyUnusable {
                kid: self.current().signing.kid.clone(),
                reason: "the store holds no active signing key any more",
            }),
        }
    }

    /// Reloads the keys from the store if the loaded ones are older than
    /// [`KeyRingConfig::reload_interval`] (a failed reload is logged and the known keys kept).
    /// Called before signing and before publishing the JWKS, so that a replica that issues no
    /// tokens still publishes a key rotated in elsewhere.
    pub async fn reload_if_due(&self) {
        let reload_due = self
            .clock
            .now()
            .signed_duration_since(self.current().loaded_at)
            .to_std()
            .is_ok_and(|age| age >= self.config.reload_interval);
        if reload_due && let Err(error) = self.refresh().await {
            tracing::warn!(%error, "reloading the signing keys failed; keeping the known keys");
        }
    }

    /// The key to sign with, reloading first if due ([`reload_if_due`](Self::reload_if_due)).
    pub async fn signing_key(&self) -> ActiveSigningKey {
        self.reload_if_due().await;
        ActiveSigningKey {
            key: self.current().signing.clone(),
        }
    }

    /// The `kid` of the current signing key (without reloading).
    #[must_use]
    pub fn signing_kid(&self) -> String {
        self.current().signing.kid.clone()
    }

    /// The verification key for `kid` if it is known and still verifies at this time.
    #[must_use]
    pub fn verifying_key(&self, kid: &str) -> Option<DecodingKey> {
        let now = self.clock.now();
        let state = self.current();
        state
            .verifying
            .iter()
            .find(|k| k.kid == kid && self.still_verifies(k, now))
            .map(|k| k.decoding_key.clone())
    }

    /// Whether the key `kid` is known and still verifies at this time: what
    /// [`verifying_key`](Self::verifying_key) checks, without copying the key.
    #[must_use]
    pub fn verifies(&self, kid: &str) -> bool {
        let now = self.clock.now();
        self.current()
            .verifying
            .iter()
            .any(|k| k.kid == kid && self.still_verifies(k, now))
    }

    /// Like [`verifying_key`](Self::verifying_key), but an unknown `kid` makes the ring reload
    /// from the store once (at most once per [`KeyRingConfig::refresh_min_interval`] for all
    /// callers together) and look again: replicas share keys.
    pub async fn find_verifying_key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.verifying_key(kid) {
            return Some(key);
        }
        if self.claim_unknown_kid_refresh() {
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "reloading the signing keys for an unknown kid failed");
                return None;
            }
            return self.verifying_key(kid);
        }
        None
    }

    /// Whether a refresh for an unknown kid may run now; records the attempt if so.
    fn claim_unknown_kid_refresh(&self) -> bool {
        let now = self.clock.now();
        let mut last = self
            .last_unknown_kid_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let allowed = last.is_none_or(|at| {
            now.signed_duration_since(at)
                .to_std()
                .is_ok_and(|since| since >= self.config.refresh_min_interval)
                || at > now
        });
        if allowed {
            *last = Some(now);
        }
        allowed
    }

    fn still_verifies(&self, key: &VerifyingKey, now: DateTime<Utc>) -> bool {
        match key.retired_at {
            None => true,
            Some(retired_at) => retired_at
                .checked_add_signed(grace(&self.config))
                .is_none_or(|until| until > now),
        }
    }

    /// The public keys that verify now, as a JWK Set (RFC 7517), the signing key first:
    /// `{"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}]}`.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        let now = self.clock.now();
        let state = self.current();
        let mut keys: Vec<&VerifyingKey> = state
            .verifying
            .iter()
            .filter(|k| self.still_verifies(k, now))
            .collect();
        keys.sort_by_key(|k| k.kid != state.signing.kid);
        let keys: Vec<serde_json::Value> = keys
            .into_iter()
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": k.x,
                    "kid": k.kid,
                    "alg": KEY_ALGORITHM,
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

fn grace(config: &KeyRingConfig) -> TimeDelta {
    TimeDelta::from_std(config.retired_key_grace()).unwrap_or(TimeDelta::MAX)
}

/// The key id of a public key: base64url of the first 12 bytes of its SHA-256 (16 characters).
#[must_use]
pub fn kid_for_public_key(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

/// Generates a key pair and the record to store, encrypting the private key with `kek`.
fn new_key_record(
    kek: Option<&SecretBox<[u8; 32]>>,
    now: DateTime<Utc>,
) -> Result<SigningKeyRecord> {
    let pair = Ed25519KeyPair::generate().map_err(|_| AuthError::Crypto("key generation"))?;
    let pkcs8 = pair
        .to_pkcs8()
        .map_err(|_| AuthError::Crypto("key serialisation"))?;
    let public_key = pair.public_key().as_ref().to_vec();
    let kid = kid_for_public_key(&public_key);
    let (private_key, encrypted) = match kek {
        Some(kek) => (encrypt(kek, &kid, pkcs8.as_ref())?, true),
        None => (pkcs8.as_ref().to_vec(), false),
    };
    Ok(SigningKeyRecord {
        kid,
        algorithm: KEY_ALGORITHM.to_owned(),
        private_key,
        encrypted,
        public_key,
        created_at: now,
        retired_at: None,
    })
}

/// Encrypts another secret at rest the way private signing keys are (AES-256-GCM with the
/// key-encryption key, a random nonce, `context` as associated data, e.g. the owner's id): for
/// secrets that must be recoverable, such as webhook signing secrets.
///
/// # Errors
/// [`AuthError::Crypto`] if the key or the random nonce cannot be set up.
pub fn seal(kek: &SecretBox<[u8; 32]>, context: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
    encrypt(kek, context, plaintext)
}

/// Decrypts what [`seal`] encrypted with the same key and `context`.
///
/// # Errors
/// [`AuthError::KeyUnusable`] when the key or the context is wrong or the data is damaged.
pub fn open(kek: &SecretBox<[u8; 32]>, context: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    decrypt(kek, context, sealed)
}

fn aead_key(kek: &SecretBox<[u8; 32]>) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, kek.expose_secret())
        .map(LessSafeKey::new)
        .map_err(|_| AuthError::Crypto("key-encryption key setup"))
}

/// AES-256-GCM: a random 96-bit nonce, then ciphertext and tag; the kid is associated data.
fn encrypt(kek: &SecretBox<[u8; 32]>, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = aead_key(kek)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| AuthError::Crypto("random nonce"))?;
    let mut in_out = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(kid.as_bytes()),
        &mut in_out,
    )
    .map_err(|_| AuthError::Crypto("encryption"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + in_out.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&in_out);
    in_out.fill(0);
    Ok(out)
}

fn decrypt(kek: &SecretBox<[u8; 32]>, kid: &str, blob: &[u8]) -> Result<Vec<u8>> {
    let unusable = |reason| AuthError::KeyUnusable {
        kid: kid.to_owned(),
        reason,
    };
    if blob.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(unusable("encrypted private key is truncated"));
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unusable("bad nonce"))?;
    let key = aead_key(kek)?;
    let mut in_out = sealed.to_vec();
    let plain_len = key
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
        .map_err(|_| unusable("decryption failed: wrong key_encryption_key or damaged key"))?
        .len();
    in_out.truncate(plain_len);
    Ok(in_out)
}

/// The private key (PKCS#8) of `record`, decrypted, checked against its public key.
fn signing_key_from_record(
    record: &SigningKeyRecord,
    kek: Option<&SecretBox<[u8; 32]>>,
) -> Result<SigningKey> {
    let unusable = |reason| AuthError::KeyUnusable {
        kid: record.kid.clone(),
        reason,
    };
    if record.algorithm != KEY_ALGORITHM {
        return Err(unusable("unsupported algorithm"));
    }
    let mut pkcs8 = match (record.encrypted, kek) {
        (true, Some(kek)) => decrypt(kek, &record.kid, &record.private_key)?,
        (true, None) => {
            return Err(unusable(
                "the private key is encrypted but no key_encryption_key is configured",
            ));
        }
        (false, kek) => {
            if kek.is_some() {
                tracing::warn!(
                    kid = %record.kid,
                    "signing key is stored unencrypted although a key_encryption_key is configured; run `keys rotate`"
                );
            }
            record.private_key.clone()
        }
    };
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8);
    let matches = pair
        .as_ref()
        .is_ok_and(|pair| pair.public_key().as_ref() == record.public_key.as_slice());
    let key = EncodingKey::from_ed_der(&pkcs8);
    pkcs8.fill(0);
    match (pair, matches) {
        (Err(_), _) => Err(unusable(
            "the private key is not a valid Ed25519 PKCS#8 key",
        )),
        (Ok(_), false) => Err(unusable(
            "the private key does not match the stored public key",
        )),
        (Ok(_), true) => Ok(SigningKey {
            kid: record.kid.clone(),
            encoding_key: key,
        }),
    }
}

fn verifying_key_from_record(record: &SigningKeyRecord) -> Option<VerifyingKey> {
    if record.algorithm != KEY_ALGORITHM || record.public_key.len() != ED25519_PUBLIC_KEY_LEN {
        tracing::warn!(kid = %record.kid, "ignoring a stored signing key of another algorithm or size");
        return None;
    }
    let x = URL_SAFE_NO_PAD.encode(&record.public_key);
    let decoding_key = DecodingKey::from_ed_components(&x).ok()?;
    Some(VerifyingKey {
        kid: record.kid.clone(),
        x,
        decoding_key,
        retired_at: record.retired_at,
    })
}

/// Loads the keys that still verify; `None` when there is no active (unretired) key.
async fn load_state(
    store: &dyn SigningKeyStore,
    kek: Option<&SecretBox<[u8; 32]>>,
    clock: &dyn Clock,
    config: &KeyRingConfig,
) -> Result<Option<KeyState>> {
    let now = clock.now();
    let retired_after = now.checked_sub_signed(grace(config)).unwrap_or(now);
    let records = store.list_keys(retired_after).await?;
    // Newest unretired key; ties (two replicas creating the first key at once) broken by kid so
    // that every replica picks the same one.
    let Some(active) = records
        .iter()
        .filter(|r| r.retired_at.is_none() && r.algorithm == KEY_ALGORITHM)
        .max_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.kid.cmp(&b.kid))
        })
    else {
        return Ok(None);
    };
    let signing = signing_key_from_record(active, kek)?;
    let verifying = records
        .iter()
        .filter_map(verifying_key_from_record)
        .collect();
    Ok(Some(KeyState {
        loaded_at: now,
        signing: Arc::new(signing),
        verifying,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> SecretBox<[u8; 32]> {
        SecretBox::new(Box::new([byte; 32]))
    }

    #[test]
    fn encryption_round_trip_binds_the_kid() {
        let blob = encrypt(&kek(7), "kid-1", b"private").unwrap();
        assert_ne!(&blob[NONCE_LEN..NONCE_LEN + 7], b"private");
        assert_eq!(decrypt(&kek(7), "kid-1", &blob).unwrap(), b"private");
        assert!(decrypt(&kek(8), "kid-1", &blob).is_err());
        assert!(decrypt(&kek(7), "kid-2", &blob).is_err());
        assert!(decrypt(&kek(7), "kid-1", &blob[..10]).is_err());
        // A fresh nonce every time.
        assert_ne!(blob, encrypt(&kek(7), "kid-1", b"private").unwrap());
    }

    #[test]
    fn new_records_are_consistent() {
        let now = Utc::now();
        let record = new_key_record(None, now).unwrap();
        assert_eq!(record.kid, kid_for_public_key(&record.public_key));
        assert_eq!(record.kid.len(), 16);
        assert_eq!(record.public_key.len(), 32);
        assert!(!record.encrypted);
        assert!(signing_key_from_record(&record, None).is_ok());

        let encrypted = new_key_record(Some(&kek(1)), now).unwrap();
        assert!(encrypted.encrypted);
        assert!(signing_key_from_record(&encrypted, Some(&kek(1))).is_ok());
        assert!(signing_key_from_record(&encrypted, Some(&kek(2))).is_err());
        assert!(signing_key_from_record(&encrypted, None).is_err());

        let mut swapped = record.clone();
        swapped.public_key = encrypted.public_key.clone();
        assert!(matches!(
            signing_key_from_record(&swapped, None),
            Err(AuthError::KeyUnusable { .. })
        ));
    }
}
