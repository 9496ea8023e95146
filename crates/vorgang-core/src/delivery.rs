//! Re-delivery of `QUEUED` imports: when and for how long.

use std::time::Duration;

use rand::Rng as _;

/// How `QUEUED` imports are re-delivered (settings `delivery.*`), and how webhook events are
/// retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The first wait (`delivery.retry_initial_ms`).
    pub retry_initial: Duration,
    /// The longest wait (`delivery.retry_max_ms`).
    pub retry_max: Duration,
    /// A queued import older than this is `FAILED` (`delivery.max_age_s`).
    pub max_age: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            retry_initial: Duration::from_millis(1000),
            retry_max: Duration::from_millis(300_000),
            max_age: Duration::from_secs(86_400),
        }
    }
}

impl DeliveryPolicy {
    /// The wait before attempt `attempt + 1` after `attempt` failed attempts (1 = the first):
    /// `retry_initial · 2^(attempt−1)`, at most `retry_max`, jittered to between half and all of
    /// it (never below `retry_initial`), and at least Europace's `Retry-After` (itself capped
    /// at `retry_max`).
    #[must_use]
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let initial = self.retry_initial;
        let max = self.retry_max.max(initial);
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = initial.saturating_mul(1 << exponent).min(max);
        let floor = (ceiling / 2).max(initial).min(ceiling);
        let jittered = if ceiling > floor {
            let span = u64::try_from((ceiling - floor).as_millis()).unwrap_or(u64::MAX);
            floor + Duration::from_millis(rand::rng().random_range(0..=span))
        } else {
            ceiling
        };
        match retry_after {
            Some(wait) => jittered.max(wait.min(max)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_the_bounds_and_honours_retry_after() {
        let policy = DeliveryPolicy {
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            max_age: Duration::from_secs(60),
        };
        for _ in 0..100 {
            assert_eq!(policy.backoff(1, None), Duration::from_millis(100));
            let second = policy.backoff(2, None);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&second));
            let fourth = policy.backoff(4, None);
            assert!((Duration::from_millis(400)..=Duration::from_millis(800)).contains(&fourth));
            let late = policy.backoff(40, None);
            assert!((Duration::from_millis(500)..=Duration::from_millis(1000)).contains(&late));
            assert_eq!(
                policy.backoff(1, Some(Duration::from_millis(700))),
                Duration::from_millis(700)
            );
            assert_eq!(
                policy.backoff(1, Some(Duration::from_secs(3600))),
                Duration::from_millis(1000)
            );
        }
    }
}
