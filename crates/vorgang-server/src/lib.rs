//! The Vorgang Import Service: HTTP API, CLI and the wiring of the adapters.
//!
//! The binary `vorgang-server` is a thin layer over this library; the API tests build the same
//! [`startup::Application`] on a random port.
//!
//! Modules, each using only those before it (no circles): `request_id`, `language`, `metrics`,
//! `settings`, `telemetry`, `cli` (none of ours); `problem` (→ language, request_id);
//! `request_context` (→ language, metrics, problem, request_id); `body_deadline` (→ language,
//! problem); `auth` (→ settings); `state`
//! (→ auth, metrics); `routes` (→ body_deadline, metrics, problem, request_context, state; inside it `caller`,
//! `docs`, `health`, `token`, then `vorgang` → caller); `openapi` (→ routes, problem; inside it
//! `kex`, then `request` → kex); `startup` (→ auth, metrics, openapi, routes, settings, state);
//! `commands` (→ auth, cli, settings, startup).

// `Problem` (the problem+json error) is large, but it only exists on the error path of a request
// that is answered right after: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod body_deadline;
pub mod cli;
pub mod commands;
pub mod language;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod rate_limit;
pub mod request_context;
pub mod request_id;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;
