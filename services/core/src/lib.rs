//! contacthub's pure domain: no sockets, no files, no clocks except where passed in.
//!
//! Layout:
//! - [`tenant`]: communes (tenants) by INSEE code, loaded from TOML.
//! - [`identity`]: identifier normalisation (French phones to E.164, e-mail, names).
//! - [`event`]: decoding, validation, deterministic ids, kinds of events.
//! - [`limits`]: the size limit of every field.
//! - [`keys`]: the read model's key layout (one ordered key space).
//! - [`fold`]: folding one event into the read model, over the [`fold::Kv`] trait.
//! - [`search`]: finding a citizen by name or address (the index the fold keeps).
//! - [`render`]: timelines as text for terminals and snapshot tests.
//! - [`courrier`]: chrono numbers, committed answer dates, the mail-room report.
//! - [`demo`]: a deterministic generated population with years of contacts.

pub mod account;
pub mod accueil;
pub mod appointment;
pub mod courrier;
pub mod dashboard;
pub mod demo;
pub mod event;
pub mod fold;
pub mod hours;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod outbound;
pub mod render;
pub mod seal;
pub mod search;
pub mod tenant;

pub use contacthub_proto::v1 as pb;

/// Errors of the domain layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event broke the contract; the reason is meant for a dead-letter record.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The communes configuration could not be read.
    #[error("invalid communes configuration: {0}")]
    Config(String),
    /// The store behind the read model failed.
    #[error("read-model store: {0}")]
    Store(String),
    /// A sealed event names a key the keyring does not know (yet): the projector catches the
    /// keyring up and folds the batch again.
    #[error("the keyring does not know key {0} (yet)")]
    KeyUnknown(String),
    /// A stored record could not be decoded. Its key is shown by family and commune only
    /// (`ih/69091/…`): keys can hold identifiers (a phone number, an e-mail address), and this
    /// error is logged at warn and error.
    #[error("corrupt read-model record at key {}: {source}", redact_key(key))]
    Corrupt {
        key: String,
        source: prost::DecodeError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A read-model key as logs may show it: its family and commune, the rest elided.
pub fn redact_key(key: &str) -> String {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(family), Some(tenant), Some(_)) => format!("{family}/{tenant}/…"),
        (Some(family), Some(tenant), None) => format!("{family}/{tenant}"),
        _ => "…".into(),
    }
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn a_key_in_a_log_names_no_one() {
        assert_eq!(
            super::redact_key("ih/69091/phone/+33612345678"),
            "ih/69091/…"
        );
        assert_eq!(super::redact_key("st/applied"), "st/applied");
        let e = super::Error::Corrupt {
            key: "id/69091/email/marie@example.fr".into(),
            // A real decode error: a truncated varint.
            source: <crate::pb::Citizen as prost::Message>::decode(&[0x08u8, 0x80][..])
                .unwrap_err(),
        };
        assert!(!e.to_string().contains("marie"), "{e}");
    }
}
