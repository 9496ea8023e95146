//! [`RevocationCache`]: whether a token's client and the token itself are still good, answered
//! from memory on every request and kept current on every replica.
//!
//! # Why a cache, and why it is safe
//!
//! A bearer check used to read the client's row on every request: a database round trip (on
//! SQLite a hop to sqlx's worker thread) for an answer that changes a handful of times a year.
//! Revocations are rare; requests are not. So each process keeps what is revoked in memory and
//! asks the database only "has anything been revoked since?": one tiny read of a counter, the
//! *revocation generation*, which the database increases (by trigger, so every build and every
//! process does it) in the same transaction as each revocation.
//!
//! The contract (docs/reference/http-api.md) is that a revocation applies to the next request on every replica.
//! A replica cannot be told reliably (a notification can be lost, a replica can be paused), so
//! the guarantee is made of two bounds instead:
//!
//! 1. **A replica never answers from a view older than [`max_staleness`](RevocationCache::max_staleness).**
//!    Every check compares the start of the last successful refresh with now (two monotonic clock
//!    readings, no I/O); if it is older than the bound, the check refreshes first (one refresh at
//!    a time; callers that need the same one wait for it). A background task
//!    ([`spawn_refresher`](RevocationCache::spawn_refresher)) refreshes three times per bound, so
//!    under normal operation no request waits.
//! 2. **A revocation returns only after that bound has passed since its commit**
//!    ([`propagation_delay`](RevocationCache::propagation_delay), the bound plus a margin). Any
//!    check that starts after the revocation returned either refreshes itself or uses a refresh
//!    that started after the commit: both see it.
//!
//! The remaining window (docs/security.md): a request checked *while* the revocation is being
//! made (between its commit and its return, at most `max_staleness`) may still pass. Requests
//! already authorized before that run to their end, as they always did.
//!
//! Unknown clients are not cached as absent: a token naming a client this process has not seen
//! yet (just registered elsewhere) is checked in the database once, and the client remembered
//! if it is active. Only we can sign tokens, so nobody can make us read for made-up clients.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::ports::{ClientStore, RevokedToken, StoreError};

/// Default of [`RevocationCache::max_staleness`]: the oldest view of the revocations a check may
/// use. Also what each revocation waits (plus [`PROPAGATION_MARGIN`]) before it returns.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_millis(200);

/// Added to the staleness bound before a revocation returns: covers the time between reading the
/// monotonic clock and the refresh's first query, and scheduling jitter.
pub const PROPAGATION_MARGIN: Duration = Duration::from_millis(50);

/// How often the background refresher also purges records of revoked tokens that expired.
const PURGE_EVERY: Duration = Duration::from_secs(300);

/// How long after its `exp` a revoked token's record is kept and checked: longer than any sane
/// clock-skew leeway (`token_leeway_s`, default 30 s), during which a validator still accepts
/// the token.
pub const REVOKED_TOKEN_GRACE_S: i64 = 3600;

/// What is revoked, as of the refresh that started at `refreshed_at`.
#[derive(Debug, Default)]
struct Snapshot {
    /// The generation this snapshot was read at; `None` before the first refresh.
    generation: Option<i64>,
    clients: HashSet<String>,
    tokens: HashSet<String>,
}

/// The per-process view of every revocation (revoked clients, revoked token ids), refreshed when
/// the database's revocation generation changes. See the [module documentation](self) for the
/// guarantee and its limits.
pub struct RevocationCache {
    store: Arc<dyn ClientStore>,
    clock: Arc<dyn Clock>,
    max_staleness: Duration,
    /// Origin of [`refreshed_at`](Self::refreshed_at).
    epoch: Instant,
    /// Nanoseconds after `epoch` at which the last successful refresh started, plus one (0 =
    /// never refreshed). An atomic, so the fresh case of a check takes no lock.
    refreshed_at: AtomicU64,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Clients seen active; a revoked one is in the snapshot, which is checked first.
    known_active: RwLock<HashSet<String>>,
    /// One refresh at a time.
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RevocationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationCache")
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

/// Why [`RevocationCache::check`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The client is revoked or does not exist.
    Client,
    /// This token was revoked (RFC 7009).
    Token,
}

impl RevocationCache {
    /// A cache over `store` whose checks use a view at most `max_staleness` old.
    /// `Duration::ZERO` refreshes on every check (a database read per request, as without a
    /// cache).
    #[must_use]
    pub fn new(
        store: Arc<dyn ClientStore>,
        clock: Arc<dyn Clock>,
        max_staleness: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            max_staleness,
            epoch: Instant::now(),
            refreshed_at: AtomicU64::new(0),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            known_active: RwLock::new(HashSet::new()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The oldest view a check may use.
    #[must_use]
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// How long a revocation waits after its commit before it returns, so that every replica's
    /// next check sees it: [`max_staleness`](Self::max_staleness) plus [`PROPAGATION_MARGIN`]
    /// (nothing when the bound is zero).
    #[must_use]
    pub fn propagation_delay(&self) -> Duration {
        if self.max_staleness.is_zero() {
            Duration::ZERO
        } else {
            self.max_staleness + PROPAGATION_MARGIN
        }
    }

    /// Whether the token `jti` of `client_id` is still good: the client exists and is not
    /// revoked, and the token is not revoked.
    ///
    /// # Errors
    /// The store failed while a refresh (or the first look-up of a client) was needed.
    pub async fn check(
        &self,
        client_id: &str,
        jti: &str,
    ) -> Result<Result<(), Revoked>, StoreError> {
        self.ensure_fresh(Instant::now()).await?;
        let snapshot = self.snapshot();
        if snapshot.clients.contains(client_id) {
            return Ok(Err(Revoked::Client));
        }
        if snapshot.tokens.contains(jti) {
            return Ok(Err(Revoked::Token));
        }
        if self.is_known_active(client_id) {
            return Ok(Ok(()));
        }
        self.look_up(client_id)
            .await
            .map(|active| if active { Ok(()) } else { Err(Revoked::Client) })
    }

    /// Whether the client exists and is not revoked (see [`check`](Self::check)).
    ///
    /// # Errors
    /// As [`check`](Self::check).
    pub async fn client_is_active(&self, client_id: &str) -> Result<bool, StoreError> {
        self.ensure_fresh(Instant::now()).await?;
        if self.snapshot().clients.contains(client_id) {
            return Ok(false);
        }
        if self.is_known_active(client_id) {
            return Ok(true);
        }
        self.look_up(client_id).await
    }

    /// Records a revoked token, refreshes this process's view and waits out
    /// [`propagation_delay`](Self::propagation_delay): when it returns, every replica refuses the
    /// token.
    ///
    /// # Errors
    /// The store failed; the token may or may not be revoked (revoking again is harmless).
    pub async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError> {
        self.store.revoke_token(token).await?;
        self.revoked().await;
        Ok(())
    }

    /// Call after a revocation committed (client or token): refreshes this process's view at
    /// once, then waits out [`propagation_delay`](Self::propagation_delay) so the other
    /// processes' views are current too.
    pub async fn revoked(&self) {
        let committed = Instant::now();
        {
            let _flight = self.refresh.lock().await;
            if let Err(error) = self.refresh_now().await {
                // This process's next check refreshes again (or fails): nothing is lost.
                tracing::warn!(%error, "refreshing the revocations after a revocation failed");
            }
        }
        let delay = self.propagation_delay();
        let waited = committed.elapsed();
        if delay > waited {
            tokio::time::sleep(delay - waited).await;
        }
    }

    /// Refreshes now if the revocation generation changed (or was never read).
    ///
    /// # Errors
    /// The store failed.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _flight = self.refresh.lock().await;
        self.refresh_now().await
    }

    /// Keeps the view current in the background: a refresh every third of
    /// [`max_staleness`](Self::max_staleness), so checks rarely wait for one, and every
    /// five minutes a purge of the records of expired revoked tokens. The task ends when the
    /// cache is dropped. Needs a Tokio runtime; with a zero bound there is nothing to keep
    /// current and no task is started.
    pub fn spawn_refresher(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.max_staleness.is_zero() {
            return None;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let period = (self.max_staleness / 3).max(Duration::from_millis(1));
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_purge = Instant::now();
            loop {
                ticks.tick().await;
                let Some(cache) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = cache.refresh().await {
                    tracing::warn!(%error, "refreshing the revocations failed");
                }
                if last_purge.elapsed() >= PURGE_EVERY {
                    last_purge = Instant::now();
                    let before = cache.clock.now().timestamp() - REVOKED_TOKEN_GRACE_S;
                    match cache.store.purge_revoked_tokens(before).await {
                        Ok(0) => {}
                        Ok(purged) => {
                            tracing::info!(purged, "purged records of expired revoked tokens");
                        }
                        Err(error) => tracing::warn!(%error, "purging revoked tokens failed"),
                    }
                }
            }
        }))
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn is_known_active(&self, client_id: &str) -> bool {
        self.known_active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(client_id)
    }

    /// The client's row, for a client not seen yet.
    async fn look_up(&self, client_id: &str) -> Result<bool, StoreError> {
        let active = self
            .store
            .get_client(client_id)
            .await?
            .is_some_and(|c| c.revoked_at.is_none());
        if active {
            self.known_active
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(client_id.to_owned());
        }
        Ok(active)
    }

    /// Nanoseconds (plus one) after `epoch` of `instant`.
    fn stamp(&self, instant: Instant) -> u64 {
        u64::try_from(instant.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Whether a refresh started at or after `since` has completed.
    fn refreshed_since(&self, since: Option<Instant>) -> bool {
        let refreshed = self.refreshed_at.load(Ordering::Acquire);
        if refreshed == 0 {
            return false;
        }
        match since {
            // `since` lies before the epoch: any refresh counts.
            None => true,
            Some(since) => refreshed >= self.stamp(since),
        }
    }

    /// Makes sure the view used by a check made at `checked_at` is at most `max_staleness` old.
    async fn ensure_fresh(&self, checked_at: Instant) -> Result<(), StoreError> {
        let since = checked_at.checked_sub(self.max_staleness);
        if !self.max_staleness.is_zero() && self.refreshed_since(since) {
            return Ok(());
        }
        let _flight = self.refresh.lock().await;
        // Someone else may have refreshed while this check waited: a refresh that started after
        // `since` is as good as one of our own.
        if !self.max_staleness.is_zero() && self.refreshed_since(since) {
            return Ok(());
        }
        self.refresh_now().await
    }

    /// Reads the generation and, if it changed, everything revoked. The caller holds `refresh`.
    async fn refresh_now(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        // The generation first: a revocation committed after this read but before the lists are
        // read only makes the snapshot newer than its generation (the next refresh reads the
        // lists again); the other order could pair an old list with a new generation and miss a
        // revocation until the next one.
        let generation = self.store.revocation_generation().await?;
        let current = self.snapshot();
        if current.generation != Some(generation) {
            let live_after = self.clock.now().timestamp() - REVOKED_TOKEN_GRACE_S;
            let revocations = self.store.revocations(live_after).await?;
            let snapshot = Snapshot {
                generation: Some(generation),
                clients: revocations.clients.into_iter().collect(),
                tokens: revocations.tokens.into_iter().collect(),
            };
            tracing::debug!(
                generation,
                revoked_clients = snapshot.clients.len(),
                revoked_tokens = snapshot.tokens.len(),
                "revocations refreshed"
            );
            *self
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        }
        self.refreshed_at
            .fetch_max(self.stamp(started), Ordering::AcqRel);
        Ok(())
    }
}
