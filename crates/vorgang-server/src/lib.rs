//! The Vorgang Import Service: HTTP API, CLI and the wiring of the adapters.
//!
//! The binary `vorgang-server` is a thin layer over this library; the API tests build the same
//! [`startup::Application`] on a random port.

// `Problem` (the problem+json error) is large, but it only exists on the error path of a request
// that is answered right after: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod body_deadline;
pub mod cli;
pub mod commands;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
