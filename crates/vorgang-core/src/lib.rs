//! The Vorgang import use case and its ports.
//!
//! [`Importer`] drives one import through the states of [`ImportStatus`], storing each state
//! before the next step, talking to Europace only through the port traits in [`ports`]. Adapters
//! live in other crates (`europace-client`, `vorgang-store`); in-memory ones for tests and
//! embedding live in [`memory`].

mod crm;
mod importer;
pub mod memory;
pub mod ports;
pub mod record;

pub use crm::BuiltinCrm;
pub use importer::{
    ImportError, Importer, ImporterConfig, NewImport, Ports, Resolution, StoredRequest,
    StoredTippgeber, fingerprint,
};
pub use ports::{
    Clock, CrmError, CrmIds, EuropaceError, IdGenerator, ImportStore, InsertOutcome, KexImported,
    KexImporter, NewTippgeber, PartnerDirectory, PartnerRecord, RandomIds, StoreError, SystemClock,
    TraceId,
};
pub use record::{Failure, FailureKind, ImportRecord, ImportStatus};
pub use vorgang_model as model;
