//! The import use case.
#![allow(missing_docs)]
pub struct Importer;
pub struct ImporterConfig;
pub enum ImportOutcome {}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct ImportError;
