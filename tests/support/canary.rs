//! Canaries: personal data a test sends through the hub, then looks for in every byte it may
//! have left (files, log records), plain and in the usual encodings.

use crate::{TestHub, GIVORS};
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_log::EventLog;
use std::path::Path;

pub const SURNAME: &str = "Canarixa";
pub const FIRST: &str = "Zéphirine";
pub const PHONE: &str = "06 31 41 59 26";
pub const PHONE_DIGITS: &str = "631415926";
pub const EMAIL: &str = "zephirine.canarixa@example.org";
pub const SUBJECT: &str = "Canarixa-objet-7d1f";
pub const NOTES: &str = "Canarixa-notes-e2a9";
pub const LETTER: &str = "Canarixa-lettre-55b0";
pub const BEHALF: &str = "Canarixa-conseil-0c3e";
pub const RESOLUTION: &str = "Canarixa-resolution-9a41";

/// Every canary above, and the lower-case surname (folded for search).
pub const ALL: [&str; 11] = [
    SURNAME,
    FIRST,
    "canarixa",
    PHONE,
    PHONE_DIGITS,
    EMAIL,
    SUBJECT,
    NOTES,
    LETTER,
    BEHALF,
    RESOLUTION,
];

/// What a canary looks like in the usual encodings: plain, Latin-1, UTF-16 (both orders),
/// quoted-printable (and RFC 2047's Q, spaces as `_`), JSON-escaped, folded for search
/// (lower case, no accents), base64 (at each of its three alignments). Encodings that give
/// the plain bytes again (an ASCII canary) are not listed twice.
fn encodings(canary: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let mut out = vec![("utf-8".to_string(), canary.as_bytes().to_vec())];
    let mut also = |how: &str, bytes: Vec<u8>| {
        if bytes != canary.as_bytes() {
            out.push((how.to_string(), bytes));
        }
    };
    if let Some(latin1) = canary
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
    {
        also("latin-1", latin1);
    }
    let qp = |space: &str| -> Vec<u8> {
        canary
            .bytes()
            .flat_map(|b| match b {
                b' ' => space.as_bytes().to_vec(),
                b'=' | b'_' | b'?' | 0x80.. => format!("={b:02X}").into_bytes(),
                _ => vec![b],
            })
            .collect()
    };
    also("quoted-printable", qp(" "));
    also("rfc2047-q", qp("_"));
    also(
        "json-escaped",
        canary
            .chars()
            .flat_map(|c| {
                if c.is_ascii() {
                    c.to_string().into_bytes()
                } else {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units)
                        .iter()
                        .flat_map(|u| format!("\\u{u:04x}").into_bytes())
                        .collect()
                }
            })
            .collect(),
    );
    also(
        "folded",
        contacthub_core::identity::fold_name(canary).into_bytes(),
    );
    let le: Vec<u8> = canary.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = canary.encode_utf16().flat_map(u16::to_be_bytes).collect();
    out.push(("utf-16le".into(), le));
    out.push(("utf-16be".into(), be));
    for shift in 0..3 {
        let padded = format!("{}{canary}", "x".repeat(shift));
        let b64 = base64::engine::general_purpose::STANDARD.encode(padded.as_bytes());
        // The characters that depend on the canary alone.
        let skip = (shift * 4).div_ceil(3) + 1;
        let stable = &b64[skip..b64.len().saturating_sub(4)];
        out.push((format!("base64+{shift}"), stable.as_bytes().to_vec()));
    }
    out
}

/// The canaries found in `haystack`, each with the encoding it was found in.
pub fn hits(haystack: &[u8], canaries: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for canary in canaries {
        for (how, needle) in encodings(canary) {
            if haystack
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
            {
                found.push(format!("{canary} ({how})"));
            }
        }
    }
    found
}

/// Every byte of the files under `dir`.
pub fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            } else if let Ok(b) = std::fs::read(e.path()) {
                all.extend(b);
            }
        }
    }
    all
}

/// Every record of `log` as stored, in partition order.
pub async fn log_records(log: &dyn EventLog) -> Vec<contacthub_log::StoredRecord> {
    let ends = log.end_offsets().await.unwrap();
    let from: Vec<(u32, u64)> = (0..ends.len() as u32).map(|p| (p, 0)).collect();
    let mut reader = log.reader(&from).await.unwrap();
    let total: u64 = ends.iter().sum();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let batch = reader
            .next_batch(1000, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        out.extend(batch);
    }
    out
}

/// Every record of `log` as stored (key, value, headers), and how many there are.
pub async fn log_bytes(log: &dyn EventLog) -> (Vec<u8>, u64) {
    let records = log_records(log).await;
    let mut bytes = Vec::new();
    for r in &records {
        bytes.extend_from_slice(&r.record.key);
        bytes.extend_from_slice(&r.record.value);
        for (k, v) in &r.record.headers {
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(v);
        }
    }
    (bytes, records.len() as u64)
}

/// A record of Givors for the canary person (names, phone, e-mail address); its id.
pub async fn person(hub: &TestHub, key: &str) -> String {
    hub.hub
        .create_citizen(
            &hub.scope(GIVORS),
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: SURNAME.into(),
                    first_names: FIRST.into(),
                    phones: vec![PHONE.into()],
                    emails: vec![EMAIL.into()],
                    ..Default::default()
                }),
                idempotency_key: key.into(),
            },
        )
        .await
        .unwrap()
        .citizen_id
}

/// A request of Givors opened for `citizen` (none when empty) on behalf of a council, with
/// the canary subject, then closed with the canary resolution; its reference.
pub async fn request_opened_and_closed(hub: &TestHub, citizen: &str, key: &str) -> String {
    let scope = hub.scope(GIVORS);
    let request = hub
        .hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: SUBJECT.into(),
                category: pb::Category::ServicesTechniques,
                service: "voirie".into(),
                citizen_id: citizen.into(),
                on_behalf_of: BEHALF.into(),
                idempotency_key: key.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    hub.hub
        .close_request(
            &scope,
            &commands::CloseRequest {
                reference: request.reference.clone(),
                reason: pb::CloseReason::Withdrawn,
                note: RESOLUTION.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    request.reference
}
