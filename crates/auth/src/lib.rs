//! OAuth2 authorization server pieces of the Vorgang Import Service.

pub mod ports;

pub use ports::{ClientRecord, ClientStore, SigningKeyRecord, SigningKeyStore};
