//! The Vorgang import use case and its ports.
//!
//! [`Importer`] drives one import through the states of [`ImportStatus`], storing each state
//! before the next step, talking to Europace only through the port traits in [`ports`]. It is
//! the only door the HTTP layer uses: accepting, reading a client's own imports, readiness.
//! [`Resolver`] is the operator's door (decide `IN_DOUBT` imports, list, purge) and needs no
//! Europace adapter. Adapters live in other crates (`europace-client`, `vorgang-store`);
//! in-memory ones for tests and embedding live in [`memory`].
//!
//! A request travels typed: the validated [`model::ImportRequest`] is kept in the
//! [`ImportRecord`] until the import finishes, the Tippgeber call and the KEX body
//! ([`kex_body`]) are built from it, and only the store adapter serialises it.
//!
//! Modules, each using only those before it: `record`, `kex`, `query` (→ record), `change`
//! (→ record), `tippgeber`, [`ports`] (→ change, query, record, tippgeber), `error` (→ ports,
//! record), `crm` (→ ports, record), `resolver` (→ change, error, ports, query, record),
//! `importer` (→ error, kex, ports, query, record, resolver, tippgeber), [`memory`] (→ change,
//! ports, query, record, tippgeber).

mod change;
mod crm;
mod delivery;
mod error;
mod importer;
mod kex;
pub mod memory;
pub mod ports;
mod query;
pub mod record;
mod resolver;
mod tippgeber;
mod trace;
mod webhook;

pub use change::{BodyChange, DeliveryChange, ImportChange};
pub use crm::BuiltinCrm;
pub use delivery::DeliveryPolicy;
pub use error::ImportError;
pub use importer::{
    Importer, ImporterConfig, NewImport, Ports, Submitted, TAKEOVER_WAIT, fingerprint,
};
pub use kex::{KexBody, kex_body, kex_kommentare};
pub use ports::{
    Clock, CrmError, CrmIds, EuropaceError, IdGenerator, ImportStore, InsertOutcome, KexImported,
    KexImporter, PartnerDirectory, PartnerRecord, RandomIds, StoreError, SystemClock, TraceId,
    WebhookStore,
};
pub use query::{ImportCursor, ImportPage, ImportQuery, ParseCursorError};
pub use record::{EuropaceMessages, Failure, FailureKind, ImportRecord, ImportStatus};
pub use resolver::{Resolution, Resolver};
pub use tippgeber::{
    SentTippgeber, TIPPGEBER_NOT_UPDATED, TippgeberAttribute, TippgeberMapping, TippgeberUpdate,
    anrede_wire,
};
pub use trace::TraceContext;
pub use vorgang_model as model;
pub use webhook::{EventType, PendingEvent, WebhookEvent, WebhookTarget};
