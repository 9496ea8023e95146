//! API tests: the real server over HTTP, a fresh database and a real sandbox per test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed assertion

mod auth_attacks;
mod auth_hardening;
mod concurrency;
mod corpus;
mod delivery;
mod external_idp;
mod faults;
mod health;
mod helpers;
mod import;
mod language;
mod list;
mod metrics;
mod oauth;
mod openapi;
mod privacy;
mod rate_limit;
mod request_id;
mod resume;
mod routes;
mod slow_clients;
mod store_faults;
#[path = "../support/mod.rs"]
mod support;
mod tippgeber_update;
mod token;
