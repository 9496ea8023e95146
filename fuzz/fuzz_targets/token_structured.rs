//! Token header and payload JSON, base64url-encoded and signed by the harness: the checks behind
//! the base64 and signature layers, with must-refuse and must-accept oracles.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vorgang_fuzz::token::token_structured(data);
});
