//! In-memory implementations of the storage ports and a settable clock, for tests and for
//! embedding the authorization server without a database (state is lost on restart).
//!
//! ```
//! use std::sync::Arc;
//! use auth::memory::{ManualClock, MemoryClientStore, MemorySigningKeyStore};
//!
//! let clients = Arc::new(MemoryClientStore::default());
//! let keys = Arc::new(MemorySigningKeyStore::default());
//! let clock = Arc::new(ManualClock::at_timestamp(1_800_000_000));
//! clock.advance(std::time::Duration::from_secs(60));
//! assert_eq!(clock.timestamp(), 1_800_000_060);
//! # let _ = (clients, keys);
//! ```

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::ports::{
    ClientRecord, ClientStore, Revocations, RevokedToken, SigningKeyRecord, SigningKeyStore,
    StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A [`Clock`] that stands still until told otherwise.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl Default for ManualClock {
    /// A clock standing at the current system time.
    fn default() -> Self {
        Self::new(Utc::now())
    }
}

impl ManualClock {
    /// A clock standing at `now`.
    #[must_use]
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// A clock standing at a Unix timestamp (seconds); the epoch for an out-of-range value.
    #[must_use]
    pub fn at_timestamp(seconds: i64) -> Self {
        Self::new(DateTime::from_timestamp(seconds, 0).unwrap_or_default())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let delta = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        let mut now = lock(&self.now);
        *now = now.checked_add_signed(delta).unwrap_or(*now);
    }

    /// Moves the clock backward.
    pub fn rewind(&self, by: Duration) {
        let delta = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        let mut now = lock(&self.now);
        *now = now.checked_sub_signed(delta).unwrap_or(*now);
    }

    /// Sets the clock.
    pub fn set(&self, now: DateTime<Utc>) {
        *lock(&self.now) = now;
    }

    /// The current reading as a Unix timestamp in seconds.
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        lock(&self.now).timestamp()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}

/// [`ClientStore`] in memory. [`set_unavailable`](Self::set_unavailable) makes every call fail
/// with [`StoreError::Unavailable`], to test outages.
#[derive(Debug, Default)]
pub struct MemoryClientStore {
    clients: Mutex<Vec<ClientRecord>>,
    revoked_tokens: Mutex<Vec<RevokedToken>>,
    generation: AtomicI64,
    unavailable: AtomicBool,
    lookups: AtomicUsize,
}

impl MemoryClientStore {
    /// How many times [`ClientStore::get_client`] was called (for tests).
    #[must_use]
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Makes every following call fail (`true`) or work again (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("memory store switched off".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl ClientStore for MemoryClientStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.check()?;
        let mut clients = lock(&self.clients);
        if clients.iter().any(|c| c.client_id == client.client_id) {
            return Err(StoreError::Conflict("client_id exists".into()));
        }
        clients.push(client.clone());
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(lock(&self.clients)
            .iter()
            .find(|c| c.client_id == client_id)
            .cloned())
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.check()?;
        let mut clients = lock(&self.clients).clone();
        clients.sort_by_key(|c| c.created_at);
        Ok(clients)
    }

    async fn revoke_client(&self, client_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.check()?;
        let mut clients = lock(&self.clients);
        match clients.iter_mut().find(|c| c.client_id == client_id) {
            Some(client) => {
                if client.revoked_at.is_none() {
                    client.revoked_at = Some(at);
                    self.generation.fetch_add(1, Ordering::SeqCst);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, StoreError> {
        self.check()?;
        let mut clients = lock(&self.clients);
        match clients.iter_mut().find(|c| c.client_id == client_id) {
            Some(client) => {
                secret_hash.clone_into(&mut client.secret_hash);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn revocation_generation(&self) -> Result<i64, StoreError> {
        self.check()?;
        Ok(self.generation.load(Ordering::SeqCst))
    }

    async fn revocations(&self, live_after: i64) -> Result<Revocations, StoreError> {
        self.check()?;
        Ok(Revocations {
            clients: lock(&self.clients)
                .iter()
                .filter(|c| c.revoked_at.is_some())
                .map(|c| c.client_id.clone())
                .collect(),
            tokens: lock(&self.revoked_tokens)
                .iter()
                .filter(|t| t.expires_at >= live_after)
                .map(|t| t.jti.clone())
                .collect(),
        })
    }

    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError> {
        self.check()?;
        let mut tokens = lock(&self.revoked_tokens);
        if !tokens.iter().any(|t| t.jti == token.jti) {
            tokens.push(token.clone());
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    async fn purge_revoked_tokens(&self, before: i64) -> Result<u64, StoreError> {
        self.check()?;
        let mut tokens = lock(&self.revoked_tokens);
        let count = tokens.len();
        tokens.retain(|t| t.expires_at >= before);
        Ok(u64::try_from(count - tokens.len()).unwrap_or(u64::MAX))
    }
}

/// [`SigningKeyStore`] in memory, shareable between several key rings (like replicas sharing a
/// database). [`set_unavailable`](Self::set_unavailable) makes every call fail.
#[derive(Debug, Default)]
pub struct MemorySigningKeyStore {
    keys: Mutex<Vec<SigningKeyRecord>>,
    unavailable: AtomicBool,
    loads: AtomicUsize,
}

impl MemorySigningKeyStore {
    /// How many times [`SigningKeyStore::list_keys`] was called (for tests).
    #[must_use]
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// Makes every following call fail (`true`) or work again (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Every stored key, retired or not, in insertion order (for tests).
    #[must_use]
    pub fn all(&self) -> Vec<SigningKeyRecord> {
        lock(&self.keys).clone()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("memory store switched off".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SigningKeyStore for MemorySigningKeyStore {
    async fn insert_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.check()?;
        let mut keys = lock(&self.keys);
        if keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Conflict("kid exists".into()));
        }
        keys.push(key.clone());
        Ok(())
    }

    async fn list_keys(
        &self,
        retired_after: DateTime<Utc>,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let mut keys: Vec<SigningKeyRecord> = lock(&self.keys)
            .iter()
            .filter(|k| k.retired_at.is_none_or(|at| at > retired_after))
            .cloned()
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }

    async fn retire_other_keys(&self, kid: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.check()?;
        for key in lock(&self.keys).iter_mut() {
            if key.kid != kid && key.retired_at.is_none() {
                key.retired_at = Some(at);
            }
        }
        Ok(())
    }
}
