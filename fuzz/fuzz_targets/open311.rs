//! Fuzz target: the Open311 GeoReport report parser never panics, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    contacthub_fuzz::parse_all(&contacthub_fuzz::channels().open311, data);
});
