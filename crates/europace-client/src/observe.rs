//! A hook that sees every HTTP exchange with Europace: which API, how it ended, how long it took.
//!
//! The adapters call [`CallObserver::observe`] once per exchange (per attempt: a retried lookup
//! is two observations), so a metrics backend can keep a latency histogram per target and outcome
//! without this crate knowing about metrics. The observer sees no URL, body, token or trace id:
//! only the closed sets below and a duration, so nothing personal can reach a label.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vorgang_core::EuropaceError;

/// Which Europace API an exchange went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// `POST {auth_url}`: a token request.
    Token,
    /// `GET /v2/partners?externePartnerId=…` and the `GET /v2/partner/{id}` of each hit.
    PartnerLookup,
    /// `POST /v2/partner/{parent}/untergeordnete`: creating a Tippgeber.
    PartnerCreate,
    /// `PATCH /v2/partner/{id}`: updating a Tippgeber's changed data
    /// (docs/reference/import-states.md, step 2).
    PartnerUpdate,
    /// `POST {kex_url}`: the KEX Vorgang import.
    Kex,
}

impl CallTarget {
    /// Every target, in the order above.
    pub const ALL: [Self; 5] = [
        Self::Token,
        Self::PartnerLookup,
        Self::PartnerCreate,
        Self::PartnerUpdate,
        Self::Kex,
    ];

    /// The label value: `token`, `partner_lookup`, `partner_create`, `partner_update`, `kex`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::PartnerLookup => "partner_lookup",
            Self::PartnerCreate => "partner_create",
            Self::PartnerUpdate => "partner_update",
            Self::Kex => "kex",
        }
    }
}

/// How an exchange ended, in the terms of [`EuropaceError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// A usable success answer.
    Ok,
    /// A 4xx other than 429 (a 401 that makes the adapter refresh its token included).
    Rejected,
    /// No connection, a timeout where nothing can have been created, 5xx or 429.
    Unavailable,
    /// The KEX import was sent but its answer was lost.
    InDoubt,
    /// A success answer that could not be read.
    Protocol,
}

impl CallOutcome {
    /// Every outcome, in the order above.
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Rejected,
        Self::Unavailable,
        Self::InDoubt,
        Self::Protocol,
    ];

    /// The label value: `ok`, `rejected`, `unavailable`, `in_doubt`, `protocol`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::InDoubt => "in_doubt",
            Self::Protocol => "protocol",
        }
    }

    /// The outcome an error stands for.
    #[must_use]
    pub const fn of_error(error: &EuropaceError) -> Self {
        match error {
            EuropaceError::Rejected { .. } => Self::Rejected,
            EuropaceError::Unavailable { .. } => Self::Unavailable,
            EuropaceError::InDoubt { .. } => Self::InDoubt,
            EuropaceError::Protocol { .. } => Self::Protocol,
        }
    }

    /// The outcome of a result.
    #[must_use]
    pub const fn of<T>(result: &Result<T, EuropaceError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(error) => Self::of_error(error),
        }
    }
}

/// Receives one observation per HTTP exchange with Europace; set it as
/// [`EuropaceConfig::observer`](crate::EuropaceConfig::observer).
///
/// Called on the request's task right after the exchange: keep it cheap and never block (a
/// histogram update).
pub trait CallObserver: Send + Sync + fmt::Debug {
    /// One exchange with `target` ended as `outcome` after `duration` (from sending the request
    /// until its answer was read, or the failure).
    fn observe(&self, target: CallTarget, outcome: CallOutcome, duration: Duration);
}

/// The optional observer as the adapters hold it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observer(pub(crate) Option<Arc<dyn CallObserver>>);

impl Observer {
    /// Reports an exchange with `target` that began at `started`.
    pub(crate) fn observe(&self, target: CallTarget, outcome: CallOutcome, started: Instant) {
        if let Some(observer) = &self.0 {
            observer.observe(target, outcome, started.elapsed());
        }
    }

    /// Reports `result` of an exchange with `target` that began at `started`, and passes it on.
    pub(crate) fn result<T>(
        &self,
        target: CallTarget,
        started: Instant,
        result: Result<T, EuropaceError>,
    ) -> Result<T, EuropaceError> {
        self.observe(target, CallOutcome::of(&result), started);
        result
    }
}
