//! Contract tests of the Europace adapters against wiremock (and, where wiremock cannot break a
//! connection, a raw TCP peer). Every mock states how often it must be called, so an unexpected
//! retry or resend fails the test.

#![allow(clippy::expect_used)]

mod kex;
mod partner;
mod support;
mod token;
mod trace;
