//! In-memory brute-force throttling of client authentication, keyed by client id and by IP.
//!
//! After [`ThrottleConfig::max_failures`] failed attempts within [`ThrottleConfig::window`]
//! (counted from the first failure), further attempts for that key are refused until the window
//! has passed, before any hashing, so throttled attempts cost nothing. Per process: with several
//! replicas an attacker gets the allowance once per replica, which 256-bit secrets make
//! harmless; the throttle exists to keep the Argon2 work (CPU and memory) bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use vorgang_core::Clock;

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
    window_start: DateTime<Utc>,
    failures: u32,
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

    /// `Some(seconds)` to wait (at least 1) if `key` is refused now, `None` if it may try.
    #[must_use]
    pub fn check(&self, key: &ThrottleKey) -> Option<u64> {
        let now = self.clock.now();
        let entries = self.lock();
        let entry = entries.get(key)?;
        let end = self.window_end(entry);
        if entry.failures < self.config.max_failures || end <= now {
            return None;
        }
        let millis = end.signed_duration_since(now).num_milliseconds();
        let seconds = u64::try_from(millis).unwrap_or(0).div_ceil(1000);
        Some(seconds.max(1))
    }

    /// Refusal of the first refused key among `keys`: the longest wait of them.
    #[must_use]
    pub fn check_all<'a>(&self, keys: impl IntoIterator<Item = &'a ThrottleKey>) -> Option<u64> {
        keys.into_iter().filter_map(|key| self.check(key)).max()
    }

    /// Counts a failed attempt for `key`.
    pub fn record_failure(&self, key: &ThrottleKey) {
        let now = self.clock.now();
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key) {
            if self.window_end(entry) <= now {
                *entry = Entry {
                    window_start: now,
                    failures: 1,
                };
            } else {
                entry.failures = entry.failures.saturating_add(1);
            }
            return;
        }
        if entries.len() >= self.config.max_tracked {
            entries.retain(|_, entry| self.window_end(entry) > now);
        }
        if entries.len() >= self.config.max_tracked
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, entry)| entry.window_start)
                .map(|(key, _)| key.clone())
        {
            entries.remove(&oldest);
        }
        if self.config.max_tracked > 0 {
            entries.insert(
                key.clone(),
                Entry {
                    window_start: now,
                    failures: 1,
                },
            );
        }
    }

    /// Forgets the failures of `key` (after a successful authentication of that client).
    pub fn reset(&self, key: &ThrottleKey) {
        self.lock().remove(key);
    }

    /// How many keys are tracked (for metrics and tests).
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.lock().len()
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
