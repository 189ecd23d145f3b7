//! Fuzz target: decoding and validating log records never panics, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(e) = contacthub_core::event::decode(data) {
        let _ = contacthub_core::event::validate(&e, &contacthub_core::tenant::Tenants::builtin());
    }
});
