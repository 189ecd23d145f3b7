//! Fuzz target: the web-form JSON parser never panics, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    contacthub_fuzz::parse_all(&contacthub_fuzz::channels().web_form, data);
});
