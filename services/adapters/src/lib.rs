//! contacthub's channel adapters: each turns one channel's real wire format into contact
//! events and publishes them through the event log.
//!
//! Layout:
//! - pure parsers, one module per channel, each implementing [`Adapter`]: [`phone`] (Asterisk
//!   CDR CSV), [`sms`] (form-encoded SMS gateway webhooks), [`web_form`] (JSON posted by the
//!   online-procedure portal), [`publik`] (the form data a Publik / w.c.s. portal posts, with
//!   its signed URLs), [`open311`] (street reports in GeoReport v2), [`demarches`] (a
//!   dossier of démarches-simplifiées as its GraphQL API gives it), [`email`] (RFC 5322 /
//!   MIME messages);
//! - [`config`]: per-commune settings (credentials, mailboxes, form categories, accueil
//!   extensions), loaded from `adapters.toml`;
//! - IO at the edges: [`ingest`] publishes parsed contacts (attachments to the content store,
//!   duplicates skipped, the rest appended to the log) and keeps what cannot be parsed in the
//!   [`quarantine`]; [`http`] serves the webhooks and upload endpoints; [`inbox`] watches the
//!   CDR drop folder and the communes' Maildirs; [`imap`] reads their mailboxes on IMAP
//!   servers (IDLE, UIDs remembered); [`telephony`] follows each commune's switch
//!   live over its Manager Interface ([`ami`], pure: its wire format and the calls its events
//!   tell) to show who calls on the agent's desk; [`demarches_sync`] fetches dossiers from
//!   démarches-simplifiées on its webhook and polls for changes; [`metrics`] counts outcomes;
//! - the way out: [`outbound`] delivers the written answers of the outbox (SMTP relay, SMS
//!   gateway — Twilio-shaped or [`ovh`] —, portal) and records each outcome; bounces come back through [`http`] (the
//!   gateway's status callback) and [`email`] (delivery status notifications).
//!
//! Invariants: parsers never panic and never do IO; every input either becomes events or is
//! quarantined with its raw bytes and a reason (or is counted as ignored when it is not a
//! contact, e.g. a call between two internal extensions); an event id derives only from the
//! tenant, the adapter and the source's own id, so the same input read twice is one event.

pub mod ami;
pub mod config;
pub mod demarches;
pub mod demarches_sync;
pub mod email;
pub mod http;
pub mod imap;
pub mod inbox;
pub mod ingest;
pub mod metrics;
pub mod open311;
pub mod outbound;
pub mod ovh;
pub mod phone;
pub mod publik;
pub mod quarantine;
pub mod sms;
pub mod telephony;
pub mod web_form;

use contacthub_core::pb;

/// Errors of the adapters' IO edges (parsing problems are [`Rejected`] items, not errors).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid adapters configuration: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("could not write to the event log: {0}")]
    Log(String),
    #[error("read model: {0}")]
    Store(String),
    /// A system the hub reads from (a mail server, a démarches platform) failed or could not
    /// be reached: tried again later.
    #[error("{system} unavailable: {detail}")]
    Unavailable {
        system: &'static str,
        detail: String,
    },
    /// A system the hub reads from refused its credentials (a token expired, a password
    /// changed): a fault of the configuration.
    #[error("{system} refused the hub's credentials: {detail}")]
    Refused {
        system: &'static str,
        detail: String,
    },
}

impl From<async_imap::error::Error> for Error {
    fn from(e: async_imap::error::Error) -> Self {
        Error::Unavailable {
            system: "IMAP",
            detail: e.to_string(),
        }
    }
}

/// Raw input handed to an adapter, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub bytes: &'a [u8],
    /// File name, URL path or Maildir entry: for quarantine records and messages.
    pub origin: &'a str,
    /// The commune the input arrived for (URL path, Maildir), when the source says so.
    pub tenant: Option<&'a str>,
    /// When contacthub received it (µs since the epoch): `recorded_at`, and `occurred_at`
    /// when the format carries no time of its own.
    pub received_us: i64,
}

/// A document attached to a contact, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// File name as the sender gave it.
    pub name: String,
    /// Declared media type ("" when unknown).
    pub media_type: String,
    pub source: BlobSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    Bytes(Vec<u8>),
    /// To be fetched by the publishing edge (web-form attachments given by URL).
    Url(String),
    /// To be fetched likewise, from a link signed anew at each reading of its source (a
    /// storage service's expiring URL): the file is known by the checksum its source gives.
    Signed {
        url: String,
        checksum: String,
    },
}

/// A parsed contact: a valid event ready for the log (without `attachments`, filled once the
/// blobs are stored), its documents, and the raw record it came from (for the quarantine,
/// should storing a document fail).
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub event: pb::Event,
    pub blobs: Vec<Blob>,
    pub locator: String,
    pub raw: Vec<u8>,
}

/// Input that cannot become an event: kept in the quarantine with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Where in the input, e.g. "line 12" (empty when the whole input is rejected).
    pub locator: String,
    /// What the caller is told.
    pub reason: String,
    /// More than the caller may be told (e.g. why a URL could not be fetched, which would
    /// map the hub's network for an attacker): kept in the quarantine only.
    pub detail: Option<String>,
    /// The commune it belongs to, when that could be told.
    pub tenant: Option<String>,
    pub raw: Vec<u8>,
}

/// What an adapter made of one record of its input.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Contact(Box<Contact>),
    /// Not a contact with a citizen (e.g. a call between two extensions): counted, not kept.
    Ignored {
        locator: String,
        why: String,
    },
    Rejected(Rejected),
    /// A report that a message the hub sent did not reach its recipient (an SMTP delivery
    /// status notification): the message's id, and why, in words for the agent.
    Bounce {
        tenant: String,
        message_id: String,
        reason: String,
    },
}

impl Item {
    pub(crate) fn reject(
        locator: impl Into<String>,
        reason: impl Into<String>,
        tenant: Option<&str>,
        raw: &[u8],
    ) -> Item {
        Item::Rejected(Rejected {
            locator: locator.into(),
            reason: reason.into(),
            detail: None,
            tenant: tenant.map(str::to_string),
            raw: raw.to_vec(),
        })
    }
}

/// The item for a parsed event: a contact if it passes the event contract, else rejected
/// with the contract's reason. Every adapter ends with this, so contacts are always valid.
/// Text longer than the limit is kept whole as a document (`texte-complet.txt`) and clipped
/// in the event; the event gets the fingerprint of what was received.
pub(crate) fn checked(
    tenants: &contacthub_core::tenant::Tenants,
    mut event: pb::Event,
    mut blobs: Vec<Blob>,
    locator: &str,
    raw: &[u8],
) -> Item {
    use contacthub_core::limits;
    if let Some(p) = event.personal.as_mut() {
        if p.text.len() > limits::TEXT_CHARS && p.text.chars().count() > limits::TEXT_CHARS {
            let whole = std::mem::take(&mut p.text);
            p.text = clip(&whole, limits::TEXT_CHARS - 100)
                + "\n[…texte tronqué : le texte complet est joint (texte-complet.txt)]";
            blobs.push(Blob {
                name: "texte-complet.txt".into(),
                media_type: "text/plain; charset=utf-8".into(),
                source: BlobSource::Bytes(whole.into_bytes()),
            });
        }
    }
    if blobs.len() > limits::ATTACHMENTS {
        return Item::reject(
            locator,
            format!(
                "{} documents; the limit is {}",
                blobs.len(),
                limits::ATTACHMENTS
            ),
            Some(&event.tenant),
            raw,
        );
    }
    for b in &blobs {
        if let Err(reason) = limits::check_chars("document name", &b.name, limits::FILE_NAME_CHARS)
        {
            return Item::reject(locator, reason, Some(&event.tenant), raw);
        }
    }
    let described: Vec<Vec<u8>> = blobs.iter().map(blob_fingerprint).collect();
    let parts: Vec<&[u8]> = described.iter().map(Vec::as_slice).collect();
    event.fingerprint = contacthub_core::event::content_fingerprint(&event, &parts);
    match contacthub_core::event::validate(&event, tenants) {
        Ok(_) => Item::Contact(Box::new(Contact {
            event,
            blobs,
            locator: locator.to_string(),
            raw: raw.to_vec(),
        })),
        Err(invalid) => Item::reject(
            locator,
            format!("invalid event: {}", invalid.0),
            Some(&event.tenant),
            raw,
        ),
    }
}

/// What identifies a document as received: name, type and content (or URL, or the checksum
/// of a file behind a link made anew at each fetch).
fn blob_fingerprint(b: &Blob) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b.name.as_bytes());
    h.update([0]);
    h.update(b.media_type.as_bytes());
    h.update([0]);
    match &b.source {
        BlobSource::Bytes(bytes) => h.update(bytes),
        BlobSource::Url(u) => h.update(u.as_bytes()),
        BlobSource::Signed { checksum, .. } => {
            h.update(b"checksum:");
            h.update(checksum.as_bytes());
        }
    }
    h.finalize().to_vec()
}

/// One channel: turns its wire format into contact events. Implementations are pure (no IO),
/// so they are tested and fuzzed on bytes; [`ingest::Ingest`] publishes what they return.
pub trait Adapter: Send + Sync {
    /// Short stable name: the `source` of its events (part of their ids), the metrics label
    /// and the quarantine folder. Never change it: ids of re-read inputs would change.
    fn name(&self) -> &'static str;
    /// Parses one input into items (one per record: a CDR file has many, a message one).
    fn parse(&self, input: &Input<'_>) -> Vec<Item>;
}

/// The channels, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Channels {
    pub phone: phone::PhoneCdr,
    pub sms: sms::SmsWebhook,
    pub web_form: web_form::WebForm,
    pub publik: publik::Publik,
    pub open311: open311::Open311,
    pub demarches: demarches::Demarches,
    pub ovh_incoming: ovh::OvhIncoming,
    pub email: email::Email,
}

impl Channels {
    pub fn new(
        cfg: std::sync::Arc<config::AdaptersConfig>,
        tenants: std::sync::Arc<contacthub_core::tenant::Tenants>,
    ) -> Self {
        Channels {
            phone: phone::PhoneCdr::new(cfg.clone(), tenants.clone()),
            sms: sms::SmsWebhook::new(tenants.clone()),
            web_form: web_form::WebForm::new(cfg.clone(), tenants.clone()),
            publik: publik::Publik::new(cfg.clone(), tenants.clone()),
            open311: open311::Open311::new(tenants.clone()),
            demarches: demarches::Demarches::new(cfg.clone(), tenants.clone()),
            ovh_incoming: ovh::OvhIncoming::new(cfg.clone(), tenants.clone()),
            email: email::Email::new(cfg, tenants),
        }
    }
}

/// Where a document a sender gave comes from: its bytes in base64 (whitespace ignored), or an
/// http(s) URL to fetch — exactly one of them —, or what is wrong (« is not valid base64 … »,
/// to follow the document's name).
pub(crate) fn blob_source(base64: Option<&str>, url: Option<&str>) -> Result<BlobSource, String> {
    use base64::Engine;
    match (base64, url) {
        (Some(b), None) => {
            let cleaned: String = b.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map(BlobSource::Bytes)
                .map_err(|e| format!("is not valid base64: {e}"))
        }
        (None, Some(u)) if u.starts_with("https://") || u.starts_with("http://") => {
            Ok(BlobSource::Url(u.to_string()))
        }
        (None, Some(u)) => Err(format!("has url {:?}, not an http(s) URL", clip(u, 60))),
        _ => Err("needs exactly one of base64 and url".into()),
    }
}

/// Up to `max` characters of `s`, for messages.
pub(crate) fn clip(s: &str, max: usize) -> String {
    contacthub_core::limits::clip(s, max)
}

/// Replaces the small state file `path` whole (a new file renamed over the old one), its
/// folder made if missing: a connector's cursor or mark, read again at the next start.
pub(crate) fn write_state(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Where the adapters keep their state inside a data folder.
pub fn quarantine_dir(data: &std::path::Path) -> std::path::PathBuf {
    data.join("quarantine")
}

/// Runs every adapter inside `serve` until `shutdown`: the HTTP endpoints on `listener`, the
/// CDR drop folder (`[phone] inbox`, default DATA/cdr-inbox), the communes' Maildirs, their
/// switches (AMI), their IMAP mailboxes, the démarches that poll and the OVHcloud accounts
/// that receive SMS.
/// The sender of written answers ([`outbound::run`]) is started apart: one hub per log sends.
pub async fn run(
    app: contacthub_app::App,
    cfg: std::sync::Arc<config::AdaptersConfig>,
    data: std::path::PathBuf,
    listener: contacthub_tls::Listener,
    max_body_bytes: usize,
    poll: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let quarantine = quarantine::Quarantine::open(quarantine_dir(&data))?;
    let channels = Channels::new(cfg.clone(), app.tenants().clone());
    let max_document = max_body_bytes as u64;
    let ingest = ingest::Ingest::new(app, quarantine, cfg.clone(), max_document)?;
    let mut folders = vec![inbox::Watched::Cdr(
        cfg.phone
            .inbox
            .clone()
            .unwrap_or_else(|| data.join("cdr-inbox")),
    )];
    for c in &cfg.communes {
        if let Some(dir) = &c.maildir {
            folders.push(inbox::Watched::Maildir {
                tenant: c.code.clone(),
                dir: dir.clone(),
            });
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let watcher = tokio::spawn(inbox::run(
        ingest.clone(),
        channels.clone(),
        folders,
        poll,
        stopped(stop_rx.clone()),
    ));
    let switches = tokio::spawn(telephony::run(
        ingest.app.clone(),
        cfg.clone(),
        stop_rx.clone(),
    ));
    let polls = tokio::spawn(demarches_sync::run(
        ingest.clone(),
        channels.demarches.clone(),
        cfg.clone(),
        data.join("connectors"),
        stop_rx.clone(),
    ));
    let sms_accounts = tokio::spawn(ovh::run(
        ingest.clone(),
        channels.ovh_incoming.clone(),
        cfg.clone(),
        stop_rx.clone(),
    ));
    let mailboxes = tokio::spawn(imap::run(
        ingest.clone(),
        channels.email.clone(),
        cfg.clone(),
        data.join("connectors"),
        stop_rx.clone(),
    ));
    let rate = contacthub_app::throttle::Rate::new(ingest.cfg.requests_per_minute_per_source);
    let endpoints = std::sync::Arc::new(http::Endpoints {
        ingest,
        channels,
        rate,
        nonces: http::Nonces::open(data.join("connectors").join("publik-nonces")),
        http: demarches_sync::client(),
    });
    let served = http::serve(listener, endpoints, max_body_bytes, stopped(stop_rx)).await;
    let _ = watcher.await;
    let _ = switches.await;
    let _ = polls.await;
    let _ = mailboxes.await;
    let _ = sms_accounts.await;
    served.map_err(|e| Error::Io {
        path: "adapter endpoints".into(),
        source: e,
    })
}
