//! `POST /vorgang` bodies, raw bytes: strict JSON parsing and the complete validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vorgang_fuzz::request::parse_request(data);
});
