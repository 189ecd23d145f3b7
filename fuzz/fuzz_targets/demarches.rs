//! Fuzz target: a démarches-simplifiées dossier and its webhook, and an SMS received on an
//! OVHcloud account, are read without a panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    contacthub_fuzz::parse_all(&contacthub_fuzz::channels().demarches, data);
    contacthub_fuzz::parse_all(&contacthub_fuzz::channels().ovh_incoming, data);
    let _ = contacthub_adapters::demarches::parse_webhook(data);
    for status in [200, 401, 500] {
        let _ = contacthub_adapters::demarches::dossier_answer(status, data);
        let _ = contacthub_adapters::demarches::page_answer(status, data);
    }
});
