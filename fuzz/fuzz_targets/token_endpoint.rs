//! `POST /oauth2/token` request parsing, raw bytes: `Authorization` line, newline, form body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vorgang_fuzz::token_endpoint::token_request(data);
});
