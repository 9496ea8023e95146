//! In-memory brute-force throttling of client authentication, keyed by client id and by IP.
//!
//! An attempt **reserves** its place before any hashing ([`Throttle::reserve`]): a key whose
//! failures plus attempts still in flight have reached [`ThrottleConfig::max_failures`] within
//! [`ThrottleConfig::window`] (counted from the first failure) is refused at once. The
//! reservation is then settled: a success frees it (and forgets the client's failures), a failure
//! turns it into a counted failure. Counting only *after* hashing, as a plain failure counter
//! would, lets an attacker fire many attempts in parallel that all pass the check before the first
//! one has failed: 60 parallel wrong secrets were 60 Argon2 hashes and 60 × 401. With
//! reservations at most `max_failures` hashes per key and window happen, however many arrive at
//! once; the rest are refused without costing anything.
//!
//! Per process: with several replicas an attacker gets the allowance once per replica, which
//! 256-bit secrets make harmless; the throttle exists to keep the Argon2 work (CPU and memory)
//! bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::Clock;

/// Limits of a [`Throttle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures within the window after which a key is refused (default 5).
    pub max_failures: u32,
    /// The window, counted from a key's first failure (default 60 s).
    pub window: Duration,
    /// How many keys are tracked at most (default 100 000); beyond, expired entries are
    /// dropped first, then the oldest.
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(60),
            max_tracked: 100_000,
        }
    }
}

/// What a throttle counts failures for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// A client id.
    Client(String),
    /// A remote address; IPv6 addresses count per /64 network, IPv4-mapped ones as IPv4.
    Ip(IpAddr),
}

impl ThrottleKey {
    /// The key of a client id.
    #[must_use]
    pub fn client(client_id: &str) -> Self {
        Self::Client(client_id.to_owned())
    }

    /// The key of a remote address, normalised (IPv6 → its /64, IPv4-mapped → IPv4).
    #[must_use]
    pub fn ip(ip: IpAddr) -> Self {
        let normalised = match ip {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::V6(segments.into())
                }
            },
        };
        Self::Ip(normalised)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Start of the current window (first failure, or first reservation of a fresh entry).
    window_start: DateTime<Utc>,
    /// Failures counted in the current window.
    failures: u32,
    /// Reservations not yet settled: attempts being checked right now.
    in_flight: u32,
}

/// Counts failed authentications per key; see the [module documentation](self).
pub struct Throttle {
    config: ThrottleConfig,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<ThrottleKey, Entry>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("config", &self.config)
            .field("tracked", &self.lock().len())
            .finish_non_exhaustive()
    }
}

/// How a [`Reservation`] ends for one of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// Free the place; count nothing.
    Release,
    /// Count a failure.
    Fail,
    /// Free the place and forget the key's failures.
    Reset,
}

impl Throttle {
    /// A throttle with no failures recorded.
    #[must_use]
    pub fn new(config: ThrottleConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThrottleKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn window(&self) -> TimeDelta {
        TimeDelta::from_std(self.config.window).unwrap_or(TimeDelta::MAX)
    }

    fn window_end(&self, entry: &Entry) -> DateTime<Utc> {
        entry
            .window_start
            .checked_add_signed(self.window())
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Failures that still count at `now` (none once the window has passed).
    fn live_failures(&self, entry: &Entry, now: DateTime<Utc>) -> u32 {
        if self.window_end(entry) <= now {
            0
        } else {
            entry.failures
        }
    }

    /// `Some(seconds)` if `entry` refuses another attempt at `now`: until its window ends when
    /// the failures alone reached the limit, else 1 s (the places are taken by attempts in
    /// flight, which take tens of milliseconds).
    fn refusal(&self, entry: &Entry, now: DateTime<Utc>) -> Option<u64> {
        let failures = self.live_failures(entry, now);
        if failures.saturating_add(entry.in_flight) < self.config.max_failures {
            return None;
        }
        if failures < self.config.max_failures {
            return Some(1);
        }
        let millis = self
            .window_end(entry)
            .signed_duration_since(now)
            .num_milliseconds();
        let seconds = u64::try_from(millis).unwrap_or(0).div_ceil(1000);
        Some(seconds.max(1))
    }

    /// `Some(seconds)` to wait (at least 1) if `key` is refused now, `None` if it may try.
    /// Attempts in flight count like failures (see [`reserve`](Self::reserve)).
    #[must_use]
    pub fn check(&self, key: &ThrottleKey) -> Option<u64> {
        let now = self.clock.now();
        let entries = self.lock();
        self.refusal(entries.get(key)?, now)
    }

    /// Refusal of the first refused key among `keys`: the longest wait of them.
    #[must_use]
    pub fn check_all<'a>(&self, keys: impl IntoIterator<Item = &'a ThrottleKey>) -> Option<u64> {
        keys.into_iter().filter_map(|key| self.check(key)).max()
    }

    /// Reserves one attempt for every key in `keys` at once, before the attempt does any work.
    ///
    /// Refused (`Err(seconds to wait)`, the longest of the refused keys) if for any key the
    /// failures in its window plus the attempts in flight have reached
    /// [`ThrottleConfig::max_failures`]; then nothing is reserved. The check and the reservation
    /// happen under one lock, so parallel attempts cannot all slip through: at most
    /// `max_failures` attempts per key are in flight or failed per window.
    ///
    /// Settle the [`Reservation`] with [`succeeded`](Reservation::succeeded),
    /// [`failed`](Reservation::failed) or [`release`](Reservation::release); dropping it unsettled
    /// (e.g. the request was cancelled mid-check, while its hash may still run) counts as failed.
    ///
    /// # Errors
    /// The seconds to wait (at least 1), for `Retry-After`.
    pub fn reserve(&self, keys: &[ThrottleKey]) -> Result<Reservation<'_>, u64> {
        let now = self.clock.now();
        let mut entries = self.lock();
        if let Some(wait) = keys
            .iter()
            .filter_map(|key| entries.get(key).and_then(|e| self.refusal(e, now)))
            .max()
        {
            return Err(wait);
        }
        for key in keys {
            if let Some(entry) = entries.get_mut(key) {
                if self.window_end(entry) <= now {
                    entry.window_start = now;
                    entry.failures = 0;
                }
                entry.in_flight = entry.in_flight.saturating_add(1);
            } else {
                self.insert(
                    &mut entries,
                    key,
                    Entry {
                        window_start: now,
                        failures: 0,
                        in_flight: 1,
                    },
                    now,
                );
            }
        }
        Ok(Reservation {
            throttle: self,
            keys: keys.to_vec(),
            settled: false,
        })
    }

    /// Counts a failed attempt for `key` that had no reservation.
    pub fn record_failure(&self, key: &ThrottleKey) {
        let now = self.clock.now();
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            Self::count_failure(self, entry, now);
            return;
        }
        self.insert(
            &mut entries,
            key,
            Entry {
                window_start: now,
                failures: 1,
                in_flight: 0,
            },
            now,
        );
    }

    fn count_failure(&self, entry: &mut Entry, now: DateTime<Utc>) {
        if self.window_end(entry) <= now {
            entry.window_start = now;
            entry.failures = 1;
        } else {
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    /// Inserts a new entry, making room first: expired idle entries go, then the oldest idle
    /// one (an entry with attempts in flight is kept while there is another choice, so that
    /// its reservations stay counted).
    fn insert(
        &self,
        entries: &mut HashMap<ThrottleKey, Entry>,
        key: &ThrottleKey,
        entry: Entry,
        now: DateTime<Utc>,
    ) {
        if self.config.max_tracked == 0 {
            return;
        }
        if entries.len() >= self.config.max_tracked {
            entries.retain(|_, e| e.in_flight > 0 || self.window_end(e) > now);
        }
        if entries.len() >= self.config.max_tracked {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| (e.in_flight > 0, e.window_start))
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key.clone(), entry);
    }

    /// Ends the reservation of one key.
    fn settle(&self, key: &ThrottleKey, how: Settle) {
        let now = self.clock.now();
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            // Evicted meanwhile: nothing left to count against.
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        match how {
            Settle::Release => {}
            Settle::Fail => self.count_failure(entry, now),
            Settle::Reset => entry.failures = 0,
        }
        if entry.in_flight == 0 && self.live_failures(entry, now) == 0 {
            entries.remove(key);
        }
    }

    /// Forgets the failures of `key` (after a successful authentication of that client).
    /// Attempts in flight stay reserved.
    pub fn reset(&self, key: &ThrottleKey) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            if entry.in_flight == 0 {
                entries.remove(key);
            } else {
                entry.failures = 0;
            }
        }
    }

    /// How many keys are tracked (for metrics and tests).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// One attempt's places in a [`Throttle`], taken by [`Throttle::reserve`]. Settle it once it is
/// known how the attempt ended; dropped unsettled, it counts as failed.
#[must_use = "an unsettled reservation counts as a failure when dropped"]
pub struct Reservation<'a> {
    throttle: &'a Throttle,
    keys: Vec<ThrottleKey>,
    settled: bool,
}

impl std::fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("keys", &self.keys.len())
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl Reservation<'_> {
    fn finish(mut self, how: impl Fn(&ThrottleKey) -> Settle) {
        self.settled = true;
        for key in &self.keys {
            self.throttle.settle(key, how(key));
        }
    }

    /// The attempt authenticated: frees the places and forgets the failures of the client key.
    /// An IP key keeps its failures: one client's success says nothing about the other
    /// attempts from that address.
    pub fn succeeded(self) {
        self.finish(|key| match key {
            ThrottleKey::Client(_) => Settle::Reset,
            ThrottleKey::Ip(_) => Settle::Release,
        });
    }

    /// The attempt failed: counts a failure for every key.
    pub fn failed(self) {
        self.finish(|_| Settle::Fail);
    }

    /// The attempt failed, but counts only for the IP keys; client keys are freed without a
    /// failure. For unknown client ids, so that attacker-chosen ids do not fill the map.
    pub fn failed_per_ip_only(self) {
        self.finish(|key| match key {
            ThrottleKey::Client(_) => Settle::Release,
            ThrottleKey::Ip(_) => Settle::Fail,
        });
    }

    /// The attempt ended before any secret was checked (e.g. the client store was unavailable):
    /// frees the places, counts nothing.
    pub fn release(self) {
        self.finish(|_| Settle::Release);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            // Cancelled mid-attempt (the client went away): its hash may run on regardless, so
            // it counts, or dropping connections would be a way around the limit.
            for key in &self.keys {
                self.throttle.settle(key, Settle::Fail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::ManualClock;

    fn throttle(max_tracked: usize) -> (Arc<ManualClock>, Throttle) {
        let clock = Arc::new(ManualClock::at_timestamp(1_800_000_000));
        let config = ThrottleConfig {
            max_tracked,
            ..ThrottleConfig::default()
        };
        (clock.clone(), Throttle::new(config, clock))
    }

    #[test]
    fn refuses_after_max_failures_until_window_passes() {
        let (clock, throttle) = throttle(10);
        let key = ThrottleKey::client("drk_x");
        for _ in 0..4 {
            throttle.record_failure(&key);
            assert_eq!(throttle.check(&key), None);
        }
        clock.advance(Duration::from_secs(10));
        throttle.record_failure(&key);
        assert_eq!(throttle.check(&key), Some(50));
        clock.advance(Duration::from_millis(49_500));
        assert_eq!(throttle.check(&key), Some(1));
        clock.advance(Duration::from_millis(500));
        assert_eq!(throttle.check(&key), None);
        // A new window starts.
        throttle.record_failure(&key);
        assert_eq!(throttle.check(&key), None);
    }

    #[test]
    fn reset_forgets_and_keys_are_independent() {
        let (_clock, throttle) = throttle(10);
        let a = ThrottleKey::client("a");
        let b = ThrottleKey::ip("10.0.0.1".parse().unwrap());
        for _ in 0..5 {
            throttle.record_failure(&a);
        }
        assert!(throttle.check(&a).is_some());
        assert_eq!(throttle.check(&b), None);
        assert_eq!(throttle.check_all([&b, &a]), Some(60));
        throttle.reset(&a);
        assert_eq!(throttle.check(&a), None);
    }

    #[test]
    fn reservations_count_like_failures_until_settled() {
        let (_clock, throttle) = throttle(10);
        let client = ThrottleKey::client("drk_x");
        let ip = ThrottleKey::ip("192.0.2.1".parse().unwrap());
        let keys = [ip.clone(), client.clone()];
        // Five attempts in flight at once take every place: the sixth is refused before any
        // of them has failed, with a short wait.
        let held: Vec<_> = (0..5).map(|_| throttle.reserve(&keys).unwrap()).collect();
        assert_eq!(throttle.reserve(&keys).unwrap_err(), 1);
        assert_eq!(throttle.check(&client), Some(1));
        // All five fail: now the window decides.
        for reservation in held {
            reservation.failed();
        }
        assert_eq!(throttle.reserve(&keys).unwrap_err(), 60);
        assert_eq!(
            throttle.reserve(std::slice::from_ref(&client)).unwrap_err(),
            60
        );
    }

    #[test]
    fn success_frees_the_place_and_resets_the_client_but_not_the_ip() {
        let (_clock, throttle) = throttle(10);
        let client = ThrottleKey::client("drk_x");
        let ip = ThrottleKey::ip("192.0.2.1".parse().unwrap());
        let keys = [ip.clone(), client.clone()];
        for _ in 0..4 {
            throttle.reserve(&keys).unwrap().failed();
        }
        throttle.reserve(&keys).unwrap().succeeded();
        assert_eq!(throttle.check(&client), None);
        assert_eq!(
            throttle.tracked(),
            1,
            "the client entry is gone, the IP's stays"
        );
        // The IP has 4 failures: one more place.
        throttle
            .reserve(std::slice::from_ref(&ip))
            .unwrap()
            .failed();
        assert_eq!(throttle.check(&ip), Some(60));
    }

    #[test]
    fn release_counts_nothing_and_a_dropped_reservation_counts_as_failed() {
        let (_clock, throttle) = throttle(10);
        let client = ThrottleKey::client("drk_x");
        let ip = ThrottleKey::ip("192.0.2.1".parse().unwrap());
        let keys = [ip.clone(), client.clone()];
        for _ in 0..10 {
            throttle.reserve(&keys).unwrap().release();
        }
        assert_eq!(throttle.tracked(), 0);
        for _ in 0..3 {
            throttle.reserve(&keys).unwrap().failed_per_ip_only();
        }
        assert_eq!(throttle.check(&client), None);
        assert_eq!(throttle.tracked(), 1, "unknown client ids are not kept");
        for _ in 0..2 {
            drop(throttle.reserve(std::slice::from_ref(&client)).unwrap());
        }
        for _ in 0..3 {
            throttle
                .reserve(std::slice::from_ref(&client))
                .unwrap()
                .failed();
        }
        assert_eq!(throttle.check(&client), Some(60), "2 dropped + 3 failed");
        assert_eq!(throttle.check(&ip), None, "3 failures");
    }

    #[test]
    fn a_window_passing_while_in_flight_starts_a_new_one() {
        let (clock, throttle) = throttle(10);
        let client = ThrottleKey::client("drk_x");
        for _ in 0..4 {
            throttle.record_failure(&client);
        }
        let slow = throttle.reserve(std::slice::from_ref(&client)).unwrap();
        assert_eq!(throttle.check(&client), Some(1));
        clock.advance(Duration::from_secs(61));
        // The old failures have expired; the one in flight still holds a place.
        let others: Vec<_> = (0..4)
            .map(|_| throttle.reserve(std::slice::from_ref(&client)).unwrap())
            .collect();
        assert_eq!(throttle.check(&client), Some(1));
        slow.failed();
        for other in others {
            other.failed();
        }
        assert_eq!(throttle.check(&client), Some(60));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        assert_eq!(
            ThrottleKey::ip("2001:db8:1:2:aaaa::1".parse().unwrap()),
            ThrottleKey::ip("2001:db8:1:2:bbbb::2".parse().unwrap())
        );
        assert_ne!(
            ThrottleKey::ip("2001:db8:1:2::1".parse().unwrap()),
            ThrottleKey::ip("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(
            ThrottleKey::ip("::ffff:192.0.2.1".parse().unwrap()),
            ThrottleKey::ip("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn tracked_keys_are_bounded() {
        let (clock, throttle) = throttle(3);
        for i in 0..3 {
            throttle.record_failure(&ThrottleKey::client(&i.to_string()));
            clock.advance(Duration::from_secs(1));
        }
        throttle.record_failure(&ThrottleKey::client("new"));
        assert_eq!(throttle.tracked(), 3);
        // The oldest went.
        for _ in 0..4 {
            throttle.record_failure(&ThrottleKey::client("0"));
        }
        assert_eq!(throttle.tracked(), 3);
        clock.advance(Duration::from_secs(120));
        throttle.record_failure(&ThrottleKey::client("later"));
        assert_eq!(throttle.tracked(), 1);
    }
}
