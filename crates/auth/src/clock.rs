//! The time port of the authorization server.
//!
//! Token lifetimes, key rotation and throttling all read the time through [`Clock`], so tests can
//! move it (see [`ManualClock`](crate::memory::ManualClock)) instead of sleeping. The trait is
//! this crate's own, not the import use case's: `auth` stands alone and knows nothing of imports.
//! A binary that embeds both passes a clock to each (the server uses the system clock for both).

use chrono::{DateTime, Utc};

/// The current time. Infallible.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// [`Clock`] reading the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
