//! Any string as a bearer token (and as a whole `Authorization` value) against a real key ring.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vorgang_fuzz::token::token_string(data);
});
