//! Fuzz target: the e-mail (MIME) parser never panics, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    contacthub_fuzz::parse_all(&contacthub_fuzz::channels().email, data);
});
