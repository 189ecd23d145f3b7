//! contacthub's application layer: the typed commands and queries every front-end calls — the
//! gRPC API, the adapters' HTTP endpoints and folders, the scan inbox, the CLI through them,
//! later the web desk — so that a front-end only translates its requests and this crate's
//! [`Error`] into its own (a tonic `Status`, an HTTP code). No tonic, no axum here.
//!
//! Layout:
//! - this file: [`App`] (the log, the read model, the projector's signals, the content store,
//!   the clock), [`Error`], [`Faults`] (parts that report a problem, for health);
//! - [`commands`]: what front-ends ask, as plain Rust in the domain's types;
//! - [`write`]: [`App::append_and_wait`], the one way anything is written;
//! - [`desk`]: timelines, contacts, watches and walk-in visits;
//! - [`citizens`]: citizen records (create, correct, search, merge, unmerge) and households;
//! - [`requests`]: requests (demandes) from first contact to written answer, worklists;
//! - [`courrier`]: the mail room (register with scans, route, steps, answers, lists, report,
//!   receipts, unmatched scans);
//! - [`accueil`]: the organisation of the accueil (opening hours, closed days);
//! - [`appointments`]: free slots, booking (the projector decides a race), cancelling;
//! - [`answers`]: written answers sent to citizens (compose, preview, outbox, print queue,
//!   outcomes and bounces);
//! - [`space`]: the citizens' space: FranceConnect sign-in, accounts linked to records or
//!   proposed to the agents, a person's own requests, answers and documents;
//! - [`catalogue`]: the catalogue of validated answers (publish, withdraw, search);
//! - [`dashboard`]: the figures of a commune over months, for élus and services;
//! - [`status`]: log and projector positions, dead letters, phone report;
//! - [`guard`]: need-to-know between services: what each caller reads of a contact, a
//!   request, a letter, a document;
//! - [`audit`]: the read trail: every read of a person's data by an agent, hash-chained;
//! - [`auth`]: which agent may see which commune (tokens checked here, carried by the
//!   front-ends); [`oidc`]: agents signing in with their commune's identity provider (OpenID
//!   Connect on the desk, JWT access tokens on gRPC); [`content`]: the content-addressed document store; [`hotfolder`]: the
//!   scanner drop folder, a front-end of its own; [`notify`]: notices sent at once (one-time
//!   codes); [`throttle`]: failed sign-ins and requests
//!   per source address, shared by every front-end that checks a credential; [`source`]: the
//!   client's address behind a trusted reverse proxy.
//!
//! Invariants: nothing here writes the read model: every write is an event appended to the
//! log, and a write returns once the projector made it visible. Every call names its tenant
//! and reads only keys of that tenant.

pub mod accueil;
pub mod answers;
pub mod appointments;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod citizens;
pub mod commands;
pub mod connectors;
pub mod content;
pub mod courrier;
pub mod dashboard;
pub mod desk;
pub mod erasure;
pub mod export;
pub mod followup;
pub mod guard;
pub mod hotfolder;
pub mod notices;
pub mod notify;
pub mod oidc;
pub mod permanence;
pub mod requests;
pub mod retention;
pub mod source;
pub mod space;
pub mod status;
pub mod telephony;
pub mod throttle;
pub mod write;

use contacthub_core::limits::quote;
use contacthub_core::tenant::{Tenant, Tenants};
use contacthub_log::EventLog;
use contacthub_projector::{ProjectorHandle, Store};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What went wrong, in terms every front-end can translate (gRPC code, HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is wrong; the message names what (INVALID_ARGUMENT, 400).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist in this commune (NOT_FOUND, 404).
    #[error("{0}")]
    NotFound(String),
    /// The id or key was already used for something else (ALREADY_EXISTS, 409).
    #[error("{0}")]
    Conflict(String),
    /// No or unknown credentials (UNAUTHENTICATED, 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The agent may not do this (PERMISSION_DENIED, 403).
    #[error("{0}")]
    Forbidden(String),
    /// Try again later: the log or the read model cannot be used now (UNAVAILABLE, 503).
    #[error("{0}")]
    Unavailable(String),
    /// Recorded on the log but not yet visible after the visibility timeout
    /// (DEADLINE_EXCEEDED, 504): it will appear shortly.
    #[error("{0}")]
    NotYetVisible(String),
    /// Recorded on the log but not visible while the projector cannot write the read model
    /// (UNAVAILABLE, 503): it will appear once it can.
    #[error("{0}")]
    RecordedNotVisible(String),
    /// A fault of the hub; details in its log (INTERNAL, 500).
    #[error("{0}")]
    Internal(String),
    /// This source tried too often lately: again after the duration (RESOURCE_EXHAUSTED,
    /// 429 with Retry-After).
    #[error("trop d'essais depuis cette adresse : réessayez dans {} s", .0.as_secs())]
    Throttled(Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the write this error answers is nevertheless on the log.
    pub fn recorded(&self) -> bool {
        matches!(self, Error::NotYetVisible(_) | Error::RecordedNotVisible(_))
    }
}

impl From<contacthub_projector::Error> for Error {
    /// The read model failing: unavailable while it is being reopened after an error (retry
    /// later), internal otherwise (details in the log, not to the caller).
    fn from(e: contacthub_projector::Error) -> Self {
        match e {
            contacthub_projector::Error::Closed { .. }
            | contacthub_projector::Error::Busy { .. } => {
                tracing::warn!(error = %e, "read model unavailable");
                Error::Unavailable(format!("the read model is unavailable right now: {e}"))
            }
            contacthub_projector::Error::PageToken(t) => {
                Error::Invalid(format!("jeton de page {:?} invalide", quote(&t)))
            }
            e => {
                tracing::error!(error = %e, "request failed");
                Error::Internal("internal error reading the read model (see the server log)".into())
            }
        }
    }
}

/// The time source: microseconds since the epoch (a fixed clock in tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_micros())
}

/// The application layer's door: every command and query of the hub, each taking the
/// caller's [`auth::Scope`] (or, for what the hub does on its own, an [`auth::System`] actor).
/// Its parts are private: a front-end reaches the log, the read model and the documents only
/// through the methods here. Cheap to clone.
#[derive(Clone)]
pub struct App {
    log: Arc<dyn EventLog>,
    store: Store,
    projector: ProjectorHandle,
    tenants: Arc<Tenants>,
    /// How long a write waits to become visible before failing.
    visibility_timeout: Duration,
    /// Which agent may see which commune.
    access: Arc<auth::Access>,
    /// Where scans and documents are stored.
    content: content::ContentStore,
    /// Largest scan accepted, in bytes.
    max_scan_bytes: u64,
    /// The scanner drop folder, if any (its `unmatched/` lists scans matching no letter).
    scan_inbox: Option<std::path::PathBuf>,
    clock: Clock,
    /// Parts of the process that stopped working; health is NOT_SERVING while any is listed.
    faults: Faults,
    /// WatchTimeline streams open now.
    open_watches: Arc<AtomicUsize>,
    /// How the connectors fare since the start.
    connectors: Arc<connectors::Connectors>,
    /// Failed sign-ins per source address (desk, adapters).
    throttle: Arc<throttle::Throttle>,
    /// Follow-up codes guessed on the citizens' space, per source address.
    follow_ups: Arc<throttle::Throttle>,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    proxies: Arc<source::Proxies>,
    /// Raw input held outside the log (the quarantine, unmatched scans): for retention.
    held: Arc<Vec<Arc<dyn retention::Held>>>,
    /// This hub's name in its cluster, when it shares its read trail through the log.
    trail_hub: Option<String>,
    /// Who read whose data.
    trail: Arc<audit::Trail>,
    /// The data subjects' keys: every event is sealed with one before it is appended.
    keys: contacthub_log::keyring::SharedKeyring,
    /// One counter at a time picks the next ticket on this hub (two hubs: the fold keeps
    /// the first call).
    line: Arc<tokio::sync::Mutex<()>>,
    /// Calls ringing at agents' extensions, for their desks (`telephony`).
    rings: tokio::sync::broadcast::Sender<Arc<telephony::Ring>>,
    /// The communes' FranceConnect clients (their citizens' space), by commune.
    franceconnect: Arc<BTreeMap<String, Arc<oidc::Provider>>>,
    /// What sends notices (one-time codes), once the sender installed it.
    notifier: Arc<std::sync::RwLock<Option<Arc<dyn notify::Notify>>>>,
    /// One-time codes sent to the citizens' space's people, waiting to be typed.
    codes: Arc<space::Codes>,
}

/// What an [`App`] is made of, given once by the process that starts the hub.
pub struct Parts {
    pub log: Arc<dyn EventLog>,
    pub store: Store,
    pub projector: ProjectorHandle,
    pub tenants: Arc<Tenants>,
    pub visibility_timeout: Duration,
    pub access: auth::Access,
    pub content: content::ContentStore,
    pub max_scan_bytes: u64,
    pub scan_inbox: Option<std::path::PathBuf>,
    pub clock: Clock,
    /// The read trail (`audit::Trail::open` of the data folder).
    pub trail: audit::Trail,
    /// The keyring the projector opens events with.
    pub keys: contacthub_log::keyring::SharedKeyring,
    /// The reverse proxies whose `X-Forwarded-For` is believed (`--trusted-proxies`).
    pub proxies: source::Proxies,
    /// Raw input held outside the log by the hub's edges (the adapters' quarantine); the
    /// scan inbox's unmatched scans are added here.
    pub held: Vec<Arc<dyn retention::Held>>,
    /// This hub's name in its cluster, when it shares its read trail through the log (on
    /// Kafka; `None` on one machine).
    pub trail_hub: Option<String>,
    /// The communes' FranceConnect clients ([`space::providers`]).
    pub franceconnect: BTreeMap<String, Arc<oidc::Provider>>,
}

impl App {
    pub fn new(p: Parts) -> App {
        // The phone-number metadata loads on first use (half a second): before the first
        // call rings, not while it does.
        let _ = std::thread::Builder::new()
            .name("phone-metadata".into())
            .spawn(|| contacthub_core::identity::display_phone("04 72 49 18 18"));
        let mut held = p.held;
        if let Some(dir) = &p.scan_inbox {
            held.push(Arc::new(hotfolder::Unmatched::new(dir, p.tenants.clone())));
        }
        App {
            log: p.log,
            store: p.store,
            projector: p.projector,
            tenants: p.tenants,
            visibility_timeout: p.visibility_timeout,
            access: Arc::new(p.access),
            content: p.content,
            max_scan_bytes: p.max_scan_bytes,
            scan_inbox: p.scan_inbox,
            clock: p.clock,
            faults: Faults::default(),
            open_watches: Arc::default(),
            connectors: Arc::default(),
            throttle: Arc::default(),
            follow_ups: Arc::default(),
            proxies: Arc::new(p.proxies),
            held: Arc::new(held),
            trail_hub: p.trail_hub,
            trail: Arc::new(p.trail),
            keys: p.keys,
            line: Arc::default(),
            rings: tokio::sync::broadcast::channel(telephony::RINGS).0,
            franceconnect: Arc::new(p.franceconnect),
            notifier: Arc::default(),
            codes: Arc::default(),
        }
    }

    /// The client of a call from `peer` with these `X-Forwarded-For` values: the peer, or
    /// the address a trusted reverse proxy forwards ([`source::Proxies::client`]).
    pub fn client<'a>(
        &self,
        peer: std::net::IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> std::net::IpAddr {
        self.proxies.client(peer, forwarded_for)
    }

    /// An HMAC-SHA-256 of `parts` (separated by `\0`) under a key derived from the hub's
    /// fingerprint key with `label`: the same on every hub of a log, nothing to store.
    pub(crate) fn keyed_hash(&self, label: &[u8], parts: &[&str]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        type H = Hmac<sha2::Sha256>;
        let mut derive =
            <H as Mac>::new_from_slice(&self.keys.fingerprint_key()).expect("any key length");
        derive.update(label);
        let key = derive.finalize().into_bytes();
        let mut mac = <H as Mac>::new_from_slice(&key).expect("any key length");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(b"\0");
            }
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Records in the read trail that `scope` read `what` of `citizen` (`object`: its id).
    pub(crate) fn read_by(
        &self,
        scope: &auth::Scope,
        citizen: &str,
        what: audit::Reading,
        object: &str,
    ) -> Result<()> {
        self.trail
            .record(scope, (self.clock)(), citizen, what, object)
    }

    /// The same hub telling time by `clock` (the demo loader dates its agents' follow-up).
    pub fn with_clock(&self, clock: Clock) -> App {
        App {
            clock,
            ..self.clone()
        }
    }

    /// The communes served and their configuration (no personal data).
    pub fn tenants(&self) -> &Arc<Tenants> {
        &self.tenants
    }

    /// Who may call: what front-ends turn a credential into a [`auth::Scope`] with.
    pub fn access(&self) -> &auth::Access {
        &self.access
    }

    /// Now, in microseconds since the epoch, on the hub's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Failed sign-ins per source address, shared by every front-end.
    pub fn throttle(&self) -> &throttle::Throttle {
        &self.throttle
    }

    /// Parts of the process that stopped working (health).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Largest scan accepted, in bytes.
    pub fn max_scan_bytes(&self) -> u64 {
        self.max_scan_bytes
    }

    /// WatchTimeline streams open now.
    pub fn open_watches(&self) -> usize {
        self.open_watches.load(Ordering::SeqCst)
    }

    /// Wakes on every event the projector applies (the sender waits on it for new answers).
    pub fn applied(&self) -> tokio::sync::broadcast::Receiver<Arc<contacthub_projector::Applied>> {
        self.projector.subscribe()
    }

    /// The commune of `scope`, checked to be the commune a request names: every command and
    /// query about citizens, contacts and requests enters here (élus read dashboards only).
    pub(crate) fn enter(&self, scope: &auth::Scope, tenant: &str) -> Result<&Tenant> {
        let commune = self.tenant(tenant)?;
        self.admits(scope, tenant)?;
        if scope.is_elu() {
            return Err(Error::Forbidden(
                "un élu consulte les tableaux de bord seulement (aucune donnée personnelle)".into(),
            ));
        }
        if scope.is_dpo() {
            return Err(Error::Forbidden(
                "le délégué à la protection des données consulte le journal des consultations seulement".into(),
            ));
        }
        if scope.is_borne() {
            return Err(Error::Forbidden(
                "une borne de l'accueil prend des tickets et montre la file d'attente seulement"
                    .into(),
            ));
        }
        Ok(commune)
    }

    /// Whether this hub takes `scope` in `tenant`: its commune, and an open hub's visitor
    /// only on a hub without an agents file.
    fn admits(&self, scope: &auth::Scope, tenant: &str) -> Result<()> {
        if scope.commune() != tenant {
            return Err(Error::Forbidden(format!(
                "cet appelant agit dans la commune {}, pas {}",
                quote(scope.commune()),
                quote(tenant)
            )));
        }
        if scope.is_open_visitor() && !self.access.is_open() {
            return Err(Error::Unauthenticated(
                "ce hub a un fichier d'agents : connectez-vous".into(),
            ));
        }
        Ok(())
    }

    /// The commune of `scope` for its figures (dashboards, reports: aggregates, élus too).
    pub(crate) fn enter_figures(&self, scope: &auth::Scope, tenant: &str) -> Result<&Tenant> {
        let commune = self.tenant(tenant)?;
        self.admits(scope, tenant)?;
        if scope.is_borne() {
            return Err(Error::Forbidden(
                "une borne de l'accueil prend des tickets et montre la file d'attente seulement"
                    .into(),
            ));
        }
        Ok(commune)
    }

    /// [`App::enter`] for the accueil's waiting line: an agent, or a device of the hall.
    pub(crate) fn enter_hall(&self, scope: &auth::Scope, tenant: &str) -> Result<&Tenant> {
        let commune = self.tenant(tenant)?;
        self.admits(scope, tenant)?;
        if scope.is_elu() || scope.is_dpo() {
            return Err(Error::Forbidden(
                "la file d'attente de l'accueil est aux agents et aux bornes de l'accueil".into(),
            ));
        }
        Ok(commune)
    }

    /// A back-office event of `source` (`citizens`, `requests`, `courrier`, `catalogue`…)
    /// written now by `agent`, its id derived from `source_id`.
    pub(crate) fn internal_event(
        &self,
        source: &str,
        tenant: &str,
        source_id: &str,
        agent: &str,
        payload: contacthub_core::pb::event::Payload,
    ) -> contacthub_core::pb::Event {
        use contacthub_core::pb;
        let now = (self.clock)();
        pb::Event {
            event_id: contacthub_core::event::event_id(tenant, source, source_id),
            tenant: tenant.into(),
            channel: pb::Channel::BackOffice as i32,
            occurred_at: Some(contacthub_proto::ts::from_micros(now)),
            recorded_at: Some(contacthub_proto::ts::from_micros(now)),
            schema_version: contacthub_core::event::SCHEMA_VERSION,
            direction: pb::Direction::Internal as i32,
            source: source.into(),
            source_id: source_id.into(),
            agent_id: agent.into(),
            payload: Some(payload),
            ..Default::default()
        }
    }

    /// The commune `code`, or an error naming what is wrong.
    pub fn tenant(&self, code: &str) -> Result<&Tenant> {
        if code.is_empty() {
            return Err(Error::Invalid("indiquez la commune (code INSEE)".into()));
        }
        self.tenants
            .get(code)
            .ok_or_else(|| Error::Invalid(format!("commune inconnue {:?}", quote(code))))
    }

    /// Why the hub cannot take or show writes now, if it cannot (for health).
    pub async fn problems(&self) -> Vec<String> {
        let mut problems = self.faults.list();
        if let Err(e) = self.log.health().await {
            problems.push(format!("event log: {e}"));
        }
        if let Some(reason) = self.projector.failing() {
            problems.push(format!("projector: {reason}"));
        }
        problems
    }
}

/// Parts of the process that report a problem (a background task that ended, a folder that
/// cannot be read), by name. Health is NOT_SERVING while any is listed.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<BTreeMap<String, String>>>);

impl Faults {
    pub fn set(&self, part: &str, reason: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(part.to_string(), reason.into());
    }

    /// Every listed problem, as "part: reason".
    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect()
    }
}

/// Counts one open watch while alive.
pub struct WatchGuard(Arc<AtomicUsize>);

impl WatchGuard {
    pub fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        WatchGuard(count.clone())
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The first `items` whose encoded sizes fit a page (3 MiB): every answer fits the 4 MiB a
/// gRPC client accepts by default, whatever the items hold.
pub(crate) fn within_page<T: prost::Message>(mut items: Vec<T>) -> Vec<T> {
    let mut bytes = 0;
    if let Some(cut) = items.iter().position(|i| {
        bytes += i.encoded_len() + 8;
        bytes > contacthub_projector::store::PAGE_BYTES
    }) {
        items.truncate(cut.max(1));
    }
    items
}

/// `value` if it holds at most `max` characters, else a refusal naming `what` in French
/// (« la note dépasse 1000 caractères »).
pub(crate) fn within_limit(what: &str, value: &str, max: usize) -> Result<()> {
    contacthub_core::limits::check_chars(what, value, max)
        .map_err(|_| Error::Invalid(format!("{what} dépasse {max} caractères")))
}

/// A timestamp given by a caller, in microseconds, or an error naming the field.
pub fn timestamp(t: &Option<contacthub_proto::Timestamp>, name: &str) -> Result<Option<i64>> {
    t.as_ref()
        .map(|t| {
            contacthub_proto::ts::to_micros(t)
                .ok_or_else(|| Error::Invalid(format!("{name} n'est pas une date valide")))
        })
        .transpose()
}
