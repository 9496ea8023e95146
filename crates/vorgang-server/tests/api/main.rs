//! API tests: the real server over HTTP, a fresh database and a real sandbox per test.

mod helpers;
mod health;
mod import;
mod token;
