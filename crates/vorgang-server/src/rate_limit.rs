//! The per-client rate limit of `POST /vorgang` (`limits.imports_per_minute`, docs/reference/settings.md, docs/reference/http-api.md).
//!
//! **Algorithm.** A GCRA, i.e. a token bucket, from the `governor` crate, one bucket per
//! authenticated client id: the bucket holds `imports_per_minute` requests (the burst) and
//! refills one request every `60 s / imports_per_minute`. A client that has been quiet for a
//! minute may send its whole minute's quota at once; a client sending steadily gets exactly
//! `imports_per_minute` per minute. There is no fixed window whose edge would allow twice the
//! quota in a short time.
//!
//! **Headers** (IETF draft `RateLimit-*`, on every answer of `POST /vorgang` to an authenticated
//! client while the limit is on):
//!
//! - `RateLimit-Limit`: the quota, `imports_per_minute` (also the bucket's size);
//! - `RateLimit-Remaining`: how many more requests this client may send right now without a 429;
//! - `RateLimit-Reset`: seconds after which, at the latest, the full quota is available again
//!   (the bucket is full); `0` when it is full already.
//!
//! A 429 carries `Retry-After`: the seconds until the next request is let through (at least 1).
//!
//! **Scope.** Per replica: each replica keeps its own buckets in memory, so behind a load balancer
//! with `n` replicas a client may get up to `n` times the quota. The limit protects each replica
//! and Europace from one client's flood; it is not an accounting quota.
//!
//! **Memory.** Keyed by the authenticated client id only (never by anything a request may
//! invent, e.g. an address or an unauthenticated header), so there are at most as many buckets
//! as registered clients. Buckets that are full again (the client was idle for at least a
//! minute) carry no information and are dropped at most once a minute
//! (`retain_recent` + `shrink_to_fit`), from the request path, so no background task is needed.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// How often idle buckets are dropped.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Header names of the IETF draft.
pub const LIMIT_HEADER: &str = "ratelimit-limit";
/// See [`LIMIT_HEADER`].
pub const REMAINING_HEADER: &str = "ratelimit-remaining";
/// See [`LIMIT_HEADER`].
pub const RESET_HEADER: &str = "ratelimit-reset";

/// The `RateLimit-*` values of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    /// `RateLimit-Limit`: requests per minute.
    pub limit: u32,
    /// `RateLimit-Remaining`: requests the client may still send now.
    pub remaining: u32,
    /// `RateLimit-Reset`: seconds until the full quota is available again (at the latest).
    pub reset_s: u64,
}

impl RateLimitState {
    /// The three headers, as (name, value).
    #[must_use]
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (LIMIT_HEADER, self.limit.to_string()),
            (REMAINING_HEADER, self.remaining.to_string()),
            (RESET_HEADER, self.reset_s.to_string()),
        ]
    }
}

/// A request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// The headers of the 429 (`remaining` 0).
    pub state: RateLimitState,
    /// `Retry-After`: whole seconds until the next request is let through, at least 1.
    pub retry_after_s: u64,
}

/// The outcome of [`ImportRateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The limit is off (`0`): no headers.
    Off,
    /// Let through; these are its headers.
    Allowed(RateLimitState),
    /// Over the limit: 429.
    Limited(Limited),
}

type Keyed<C> = RateLimiter<String, DashMapStateStore<String>, C, StateInformationMiddleware>;

/// The per-client limiter of `POST /vorgang`. Generic over the clock for tests; the service uses
/// the monotonic system clock.
pub struct ImportRateLimiter<C: Clock = DefaultClock> {
    /// `None` when the limit is off.
    limiter: Option<Keyed<C>>,
    clock: C,
    /// The quota per minute (0 = off).
    per_minute: u32,
    /// When idle buckets were last dropped (by the clock of `Instant`, for housekeeping only).
    last_housekeeping: Mutex<Instant>,
}

impl ImportRateLimiter<DefaultClock> {
    /// A limiter of `per_minute` requests per client and minute; `0` turns it off.
    #[must_use]
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ImportRateLimiter<C> {
    /// [`ImportRateLimiter::new`] on `clock`.
    #[must_use]
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|quota| {
            RateLimiter::dashmap_with_clock(Quota::per_minute(quota), clock.clone())
                .with_middleware::<StateInformationMiddleware>()
        });
        Self {
            limiter,
            clock,
            per_minute,
            last_housekeeping: Mutex::new(Instant::now()),
        }
    }

    /// Counts one request of `client_id` and says whether it may pass. A refused request is not
    /// counted (it takes nothing from the bucket).
    pub fn check(&self, client_id: &str) -> Decision {
        let Some(limiter) = &self.limiter else {
            return Decision::Off;
        };
        self.housekeeping();
        let key = client_id.to_owned();
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(self.per_minute);
                Decision::Allowed(self.state(remaining))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Decision::Limited(Limited {
                    state: self.state(0),
                    retry_after_s: ceil_seconds(wait).max(1),
                })
            }
        }
    }

    /// The headers for `remaining`: the bucket refills one request every `60 s / quota`, so it
    /// is full again after at most `(quota - remaining)` such intervals.
    fn state(&self, remaining: u32) -> RateLimitState {
        let missing = u128::from(self.per_minute.saturating_sub(remaining));
        let per_minute = u128::from(self.per_minute.max(1));
        // ceil(missing * 60 / quota), in whole seconds.
        let reset_s = (missing * 60).div_ceil(per_minute);
        RateLimitState {
            limit: self.per_minute,
            remaining,
            reset_s: u64::try_from(reset_s).unwrap_or(u64::MAX),
        }
    }

    /// Drops the buckets of clients idle for a minute or more, at most once a minute. A
    /// contended lock means another request is doing it right now.
    fn housekeeping(&self) {
        let Ok(mut last) = self.last_housekeeping.try_lock() else {
            return;
        };
        if last.elapsed() < HOUSEKEEPING_EVERY {
            return;
        }
        *last = Instant::now();
        drop(last);
        self.shrink();
    }

    /// Drops the buckets that are full again (their clients idle for a minute or more) and
    /// gives their memory back.
    pub fn shrink(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many clients have a bucket now.
    #[must_use]
    pub fn tracked_clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, RateLimiter::len)
    }
}

/// Whole seconds, rounded up.
fn ceil_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn allowed(decision: Decision) -> RateLimitState {
        match decision {
            Decision::Allowed(state) => state,
            other => panic!("not allowed: {other:?}"),
        }
    }

    #[test]
    fn a_quota_of_three_lets_three_through_then_refuses_until_one_refills() {
        let clock = FakeRelativeClock::default();
        let limiter = ImportRateLimiter::with_clock(3, clock.clone());
        let states: Vec<RateLimitState> = (0..3).map(|_| allowed(limiter.check("a"))).collect();
        assert_eq!(
            states,
            [
                RateLimitState {
                    limit: 3,
                    remaining: 2,
                    reset_s: 20
                },
                RateLimitState {
                    limit: 3,
                    remaining: 1,
                    reset_s: 40
                },
                RateLimitState {
                    limit: 3,
                    remaining: 0,
                    reset_s: 60
                },
            ]
        );
        let Decision::Limited(limited) = limiter.check("a") else {
            panic!("the fourth passes");
        };
        assert_eq!(limited.retry_after_s, 20, "one request refills every 20 s");
        assert_eq!(limited.state.remaining, 0);
        // Another client has its own bucket.
        assert_eq!(allowed(limiter.check("b")).remaining, 2);
        // A refused request takes nothing: after 20 s exactly one passes again.
        clock.advance(Duration::from_secs(20));
        assert_eq!(allowed(limiter.check("a")).remaining, 0);
        assert!(matches!(limiter.check("a"), Decision::Limited(_)));
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = ImportRateLimiter::new(0);
        for _ in 0..1000 {
            assert_eq!(limiter.check("a"), Decision::Off);
        }
        assert_eq!(limiter.tracked_clients(), 0);
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limiter = ImportRateLimiter::with_clock(60, clock.clone());
        for client in 0..100 {
            allowed(limiter.check(&format!("client-{client}")));
        }
        assert_eq!(limiter.tracked_clients(), 100);
        limiter.shrink();
        assert_eq!(
            limiter.tracked_clients(),
            100,
            "all active within the minute"
        );
        clock.advance(Duration::from_secs(61));
        allowed(limiter.check("client-0"));
        limiter.shrink();
        assert_eq!(limiter.tracked_clients(), 1, "only the client active now");
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_secs(2)), 2);
        assert_eq!(ceil_seconds(Duration::from_millis(2001)), 3);
    }
}
