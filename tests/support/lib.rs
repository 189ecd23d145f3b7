//! Test support: a real hub (log + sled read model + projector + gRPC on 127.0.0.1:0) on
//! either backend, event builders, and [`on_every_backend!`], which runs one test body against
//! the embedded log and against a Kafka-API broker.
//!
//! Kafka tests use the broker named by `CONTACTHUB_TEST_KAFKA` (host:port), each on topics of
//! its own. Without it they are skipped with a message, unless `CONTACTHUB_TEST_REQUIRE_KAFKA`
//! is set (as CI does), in which case they fail.

pub mod ami;
pub mod canary;
pub mod crash;
pub mod dovecot;
pub mod ds;
pub mod gateway;
pub mod oidc;
pub mod pki;
pub mod s3;
pub mod smtp;

pub use contacthub_app::auth::{token_hash, Access, Scope, System};
use contacthub_core::event::contact;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use contacthub_log::{embedded::EmbeddedLog, kafka, Appended, EventLog, Record};
use contacthub_projector::{ProjectorHandle, Store};
use contacthub_proto::v1::courrier_service_client::CourrierServiceClient;
use contacthub_proto::v1::{
    desk_service_client::DeskServiceClient, ops_service_client::OpsServiceClient,
};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

pub use contacthub_app::write::record as to_record;

/// Where the log of a test lives.
#[derive(Debug, Clone)]
pub enum Backend {
    Embedded,
    Kafka { brokers: String },
}

impl Backend {
    /// The Kafka backend, if a test broker is configured.
    pub fn kafka() -> Option<Backend> {
        match std::env::var("CONTACTHUB_TEST_KAFKA") {
            Ok(b) if !b.is_empty() => Some(Backend::Kafka { brokers: b }),
            _ if std::env::var_os("CONTACTHUB_TEST_REQUIRE_KAFKA").is_some() => {
                panic!("CONTACTHUB_TEST_REQUIRE_KAFKA is set but CONTACTHUB_TEST_KAFKA names no broker")
            }
            _ => None,
        }
    }
}

/// Runs each named `async fn(Backend)` once per backend, as tests `NAME::embedded` and `NAME::kafka`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name($crate::Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kafka() {
                match $crate::Backend::kafka() {
                    Some(b) => super::$name(b).await,
                    None => eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)"),
                }
            }
        }
    )*};
}

/// A unique name for test topics.
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    format!("{prefix}-{:016x}", rand::thread_rng().gen::<u64>())
}

/// Kafka settings of a fresh pair of topics.
pub async fn fresh_kafka(brokers: &str, partitions: u32) -> kafka::KafkaConfig {
    let mut cfg = kafka::KafkaConfig::new(brokers);
    cfg.topic = unique("test-events");
    cfg.dead_letter_topic = format!("{}-dead", cfg.topic);
    cfg.keys_topic = format!("{}-keys", cfg.topic);
    cfg.append_timeout = Duration::from_secs(120);
    kafka::create_topics(&cfg, partitions, 1)
        .await
        .expect("creating test topics");
    cfg
}

/// Opens a log for a test: embedded in `dir/log`, or fresh Kafka topics.
pub async fn open_log(
    backend: &Backend,
    dir: &Path,
) -> (Arc<dyn EventLog>, Option<kafka::KafkaConfig>) {
    match backend {
        Backend::Embedded => (
            Arc::new(EmbeddedLog::open(dir.join("log"), 4).unwrap()),
            None,
        ),
        Backend::Kafka { brokers } => {
            let cfg = fresh_kafka(brokers, 4).await;
            let log = kafka::KafkaLog::connect(cfg.clone())
                .await
                .expect("connecting to kafka");
            (Arc::new(log), Some(cfg))
        }
    }
}

/// A running hub for one test: the same [`contacthub::server::Server`] `serve` runs.
pub struct TestHub {
    pub addr: SocketAddr,
    /// `http://` address of the web desk.
    pub web: String,
    /// `http://` address of the citizens' space.
    pub portal: String,
    pub channel: Channel,
    pub log: Arc<dyn EventLog>,
    pub store: Store,
    pub projector: ProjectorHandle,
    pub kafka: Option<kafka::KafkaConfig>,
    pub dir: tempfile::TempDir,
    server: contacthub::server::Server,
    /// Next offset after everything this hub appended, per partition.
    placed: std::sync::Mutex<Vec<u64>>,
    clock: Arc<std::sync::atomic::AtomicI64>,
    pub hub: contacthub_app::App,
    /// The hub's keyring (on Kafka, the keys topic), for replays of its log.
    pub keys: contacthub_log::keyring::SharedKeyring,
}

impl TestHub {
    pub async fn start(backend: &Backend) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let (log, kafka) = open_log(backend, dir.path()).await;
        Self::start_on(log, kafka, dir).await
    }

    pub async fn start_on(
        log: Arc<dyn EventLog>,
        kafka: Option<kafka::KafkaConfig>,
        dir: tempfile::TempDir,
    ) -> TestHub {
        Self::start_full(
            log,
            kafka,
            dir,
            |_| Access::Open,
            true,
            |_| Tenants::builtin(),
        )
        .await
    }

    /// A hub of agents `access` whose communes are `tenants(portal)`, `portal` the address
    /// its citizens' space will have (a FranceConnect callback names it).
    pub async fn start_with_communes(
        backend: &Backend,
        access: Access,
        tenants: impl FnOnce(&str) -> Tenants,
    ) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let (log, kafka) = open_log(backend, dir.path()).await;
        Self::start_full(log, kafka, dir, |_| access, true, tenants).await
    }

    /// A hub whose API checks agents against `access`.
    pub async fn start_with_access(backend: &Backend, access: Access) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let (log, kafka) = open_log(backend, dir.path()).await;
        Self::start_full(log, kafka, dir, |_| access, true, |_| Tenants::builtin()).await
    }

    /// A hub whose agents are `access(desk)`, `desk` the address its web desk will have (an
    /// identity provider's redirect URL names it).
    pub async fn start_with_desk_access(
        backend: &Backend,
        access: impl FnOnce(&str) -> Access,
    ) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let (log, kafka) = open_log(backend, dir.path()).await;
        Self::start_full(log, kafka, dir, access, true, |_| Tenants::builtin()).await
    }

    /// [`TestHub::start_with_access`] without the read trail (to measure what it costs).
    pub async fn start_without_read_trail(backend: &Backend, access: Access) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let (log, kafka) = open_log(backend, dir.path()).await;
        Self::start_full(log, kafka, dir, |_| access, false, |_| Tenants::builtin()).await
    }

    /// A hub with agents over an existing log and data folder.
    pub async fn start_with_access_on(
        log: Arc<dyn EventLog>,
        kafka: Option<kafka::KafkaConfig>,
        dir: tempfile::TempDir,
        access: Access,
    ) -> TestHub {
        Self::start_full(log, kafka, dir, |_| access, true, |_| Tenants::builtin()).await
    }

    async fn start_full(
        log: Arc<dyn EventLog>,
        kafka: Option<kafka::KafkaConfig>,
        dir: tempfile::TempDir,
        access: impl FnOnce(&str) -> Access,
        read_trail: bool,
        tenants: impl FnOnce(&str) -> Tenants,
    ) -> TestHub {
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let web_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web = format!("http://{}", web_listener.local_addr().unwrap());
        let access = access(&web);
        let portal_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let portal = format!("http://{}", portal_listener.local_addr().unwrap());
        let tenants = Arc::new(tenants(&portal));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let keys = hub_keyring(kafka.as_ref(), dir.path()).await;
        let server = contacthub::server::Server::start(
            contacthub::server::ServerConfig {
                data: dir.path().to_path_buf(),
                tenants,
                access,
                visibility_timeout: Duration::from_secs(30),
                max_scan_bytes: MAX_SCAN_BYTES,
                scan_inbox: dir.path().join("scan-inbox"),
                poll: Duration::from_millis(100),
                clock: {
                    let clock = clock.clone();
                    Arc::new(
                        move || match clock.load(std::sync::atomic::Ordering::SeqCst) {
                            0 => chrono::Utc::now().timestamp_micros(),
                            t => t,
                        },
                    )
                },
                read_trail,
                keys: keys.clone(),
                tls: None,
                proxies: Default::default(),
                // On Kafka, each test hub shares its read trail under a name of its own.
                trail_hub: kafka.as_ref().map(|_| unique("hub")),
                content: contacthub_app::content::ContentStore::open(dir.path().join("content"))
                    .unwrap(),
            },
            log.clone(),
            listener,
        )
        .await
        .expect("starting the test hub");
        let mut server = server;
        server.start_web(web_listener);
        server.start_portal(portal_listener, None);
        let addr = server.grpc_addr;
        let hub = server.app.clone();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connecting to the test hub");
        TestHub {
            addr,
            web,
            portal,
            channel,
            log,
            store: server.store.clone(),
            projector: server.projector.clone(),
            kafka,
            dir,
            server,
            placed: std::sync::Mutex::new(Vec::new()),
            clock,
            hub,
            keys,
        }
    }

    /// Starts the channel adapters on this hub, as `serve` does: HTTP endpoints on a free
    /// port (returned as a base URL), the CDR drop folder `DATA/cdr-inbox`, the Maildirs of
    /// `adapters_toml`, and the quarantine `DATA/quarantine`.
    pub async fn start_adapters(&mut self, adapters_toml: &str) -> String {
        self.adapters(adapters_toml, true).await
    }

    /// Starts the adapters again over the same data folder, as a restarted hub would (the
    /// sender not again): the endpoints' new URL.
    pub async fn restart_adapters(&mut self, adapters_toml: &str) -> String {
        self.adapters(adapters_toml, false).await
    }

    async fn adapters(&mut self, adapters_toml: &str, sender: bool) -> String {
        let cfg = contacthub_adapters::config::AdaptersConfig::from_toml(
            adapters_toml,
            self.hub.tenants(),
        )
        .expect("valid adapters configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        if sender {
            self.server
                .start_sender(&cfg)
                .expect("valid SMTP relays and SMS gateways");
        }
        self.server.start_adapters(
            cfg,
            self.dir.path().to_path_buf(),
            listener,
            ADAPTER_MAX_BODY,
            Duration::from_millis(100),
        );
        url
    }

    /// The health of connector `name` in `tenant`, as `GetStatus` gives it to ops.
    pub async fn connector(&self, name: &str, tenant: &str) -> pb::ConnectorStatus {
        let status = self
            .ops()
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        status
            .connectors
            .iter()
            .find(|c| c.connector == name && c.tenant == tenant)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} for {tenant} in {:?}", status.connectors))
    }

    /// Fixes the API's clock at `us` (0: the system clock again).
    /// The hub acting in `tenant` on its own, as the demo loader does: what a test uses to set
    /// the scene or check what it left, through the application layer.
    pub fn scope(&self, tenant: &str) -> Scope {
        Scope::system(System::Demo, tenant)
    }

    pub fn set_clock(&self, us: i64) {
        self.clock.store(us, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn courrier(&self) -> CourrierServiceClient<Channel> {
        CourrierServiceClient::new(self.channel.clone())
    }

    pub fn desk(&self) -> DeskServiceClient<Channel> {
        DeskServiceClient::new(self.channel.clone())
    }

    pub fn ops(&self) -> OpsServiceClient<Channel> {
        OpsServiceClient::new(self.channel.clone())
    }

    /// Appends events to the log (not waiting for projection).
    pub async fn publish(&self, events: &[pb::Event]) -> Vec<Appended> {
        let placed = self
            .log
            .append(events.iter().map(to_record).collect())
            .await
            .expect("append");
        self.note(&placed);
        placed
    }

    /// Remembers appended positions, so `settle` waits for them.
    pub fn note(&self, placed: &[Appended]) {
        let mut p = self.placed.lock().unwrap();
        for a in placed {
            let i = a.partition as usize;
            if p.len() <= i {
                p.resize(i + 1, 0);
            }
            p[i] = p[i].max(a.offset + 1);
        }
    }

    /// Appends raw bytes under a key, as a foreign producer would.
    pub async fn publish_raw(&self, key: &[u8], value: Vec<u8>) -> Appended {
        let r = Record {
            key: key.to_vec(),
            value,
            headers: vec![],
            timestamp_ms: 0,
        };
        let placed = self.log.append(vec![r]).await.expect("append");
        self.note(&placed);
        placed[0]
    }

    /// Waits until the projector applied everything in the log now: the log's end offsets and
    /// everything this hub appended (some brokers report end offsets short of the last batch).
    pub async fn settle(&self) {
        let mut ends = self.log.end_offsets().await.unwrap();
        for (e, p) in ends.iter_mut().zip(self.placed.lock().unwrap().iter()) {
            *e = (*e).max(*p);
        }
        let mut rx = self.projector.positions.clone();
        tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|p| p.iter().zip(&ends).all(|(p, e)| p >= e)),
        )
        .await
        .expect("projection did not catch up within 60 s")
        .unwrap();
    }

    /// Stops every part; panics if one of them failed.
    pub async fn stop(self) -> tempfile::TempDir {
        self.server
            .stop()
            .await
            .expect("a part of the test hub failed");
        self.dir
    }

    /// Runs the command line `bin` against this hub's gRPC API as the agent of `token`, in
    /// its data folder: whether it succeeded, and its output then its errors.
    pub fn cli_as(&self, bin: &Path, token: &str, args: &[&str]) -> (bool, String) {
        let server = format!("http://{}", self.addr);
        cli_as(bin, &server, token, self.dir.path(), args)
    }

    /// Stops the hub, replays its log from offset 0 into a new read model (in batches of
    /// `batch`) with its keyring, and returns the live digest, the replayed read model, and
    /// how many records it replayed.
    pub async fn stop_and_replay(self, batch: usize) -> (String, Store, u64) {
        let live = self.store.digest().unwrap();
        let (log, keys) = (self.log.clone(), self.keys.clone());
        let dir = self.stop().await;
        let replayed = Store::open(dir.path().join("replayed")).unwrap();
        let (p, _) = contacthub_projector::Projector::new(
            replayed.clone(),
            log,
            Arc::new(Tenants::builtin()),
            keys,
        )
        .unwrap();
        let n = p.with_batch_size(batch).catch_up().await.unwrap();
        (live, replayed, n)
    }

    /// Registers Marie Durand (GIV-000900, 06 12 34 56 78) at Givors, the tests' person, and
    /// waits until she is visible.
    /// A record of `tenant` for Alice `name`, who chose SMS at `phone` (consent given at the
    /// accueil now): its id.
    pub async fn sms_person(&self, tenant: &str, name: &str, phone: &str) -> String {
        self.hub
            .create_citizen(
                &self.scope(tenant),
                &contacthub_app::commands::CreateCitizen {
                    identity: Some(pb::Identity {
                        usage_name: name.into(),
                        first_names: "Alice".into(),
                        phones: vec![phone.into()],
                        preferred_channel: pb::ContactChannel::Sms as i32,
                        consent: Some(pb::Consent {
                            given_at: Some(contacthub_proto::ts::from_micros(self.hub.now())),
                            source: "accueil".into(),
                        }),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                },
            )
            .await
            .expect("a record")
            .citizen_id
    }

    pub async fn register_marie(&self) {
        self.publish(&[register(
            GIVORS,
            "GIV-000900",
            "Marie Durand",
            "06 12 34 56 78",
            at(2026, 1, 5, 9, 0),
        )])
        .await;
        self.settle().await;
    }

    /// Opens a request of Marie Durand (already registered) for the voirie, as the hub's own
    /// agents would, and returns its reference and follow-up code (GetRequest on an open hub).
    pub async fn voirie_request_with_code(&self) -> (String, String) {
        let opened = self
            .hub
            .open_request(
                &self.scope(GIVORS),
                &contacthub_app::commands::OpenRequest {
                    subject: "Trottoir défoncé".into(),
                    category: pb::Category::ServicesTechniques,
                    service: "voirie".into(),
                    citizen_id: "GIV-000900".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let code = contacthub_proto::v1::request_service_client::RequestServiceClient::new(
            self.channel.clone(),
        )
        .get_request(pb::GetRequestRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .follow_up_code;
        (opened.reference, code)
    }

    /// A request of Marie Durand for the CCAS (a confidential service), opened by the agent
    /// presenting `ccas_token` over gRPC.
    pub async fn ccas_request(&self, ccas_token: &str) -> pb::Request {
        contacthub_proto::v1::request_service_client::RequestServiceClient::new(
            self.channel.clone(),
        )
        .open_request(as_agent(
            ccas_token,
            pb::OpenRequestRequest {
                tenant: GIVORS.into(),
                subject: "Aide alimentaire".into(),
                category: pb::Category::Ccas as i32,
                service: "ccas".into(),
                citizen_id: "GIV-000900".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("the CCAS opens a request")
        .into_inner()
    }

    /// The latest hundred lines of a citizen's timeline, as the read model holds them.
    pub fn timeline_of(&self, tenant: &str, citizen: &str) -> Vec<pb::TimelineEntry> {
        self.store
            .timeline(
                tenant,
                citizen,
                &contacthub_projector::store::TimelineQuery {
                    page_size: 100,
                    ..Default::default()
                },
            )
            .unwrap()
            .entries
    }
}

/// An HTTP client that does not follow redirections (a test reads each step of a browser's
/// trip).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where a redirection goes.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of cookie `name` the response sets (not a clearing).
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// The CSRF token of the first form of a desk page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with its CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_string()
}

/// The text of `docs/NAME`, for the tests that run what it shows.
pub fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("the doc exists")
}

/// Runs the `contacthub` command line (`bin`) with `args` against the hub at `server`, as the
/// agent of `token`, in `dir`: whether it succeeded, and its output then its errors.
pub fn cli_as(bin: &Path, server: &str, token: &str, dir: &Path, args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(bin)
        .args(args)
        .env("CONTACTHUB_SERVER", server)
        .env("CONTACTHUB_TOKEN", token)
        .env_remove("CONTACTHUB_TENANT")
        .current_dir(dir)
        .output()
        .expect("running contacthub");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// The first line of `doc` that starts with `prefix` (trimmed), `GIV-000001` replaced by `id`.
pub fn doc_line(doc: &str, prefix: &str, id: &str) -> String {
    doc.lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("the doc has a line starting with {prefix:?}"))
        .replace("GIV-000001", id)
}

/// Waits until `done` says so, polling every 100 ms for at most 30 s.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Largest request the test hubs' adapter endpoints accept.
pub const ADAPTER_MAX_BODY: usize = 4 * 1024 * 1024;

/// Largest scan the test hubs accept.
pub const MAX_SCAN_BYTES: u64 = 1024 * 1024;

pub const GIVORS: &str = "69091";
pub const GRIGNY: &str = "69096";

/// Microseconds for a UTC date and time.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, 0))
        .expect("valid date")
        .and_utc()
        .timestamp_micros()
}

/// A phone call from `phone` (written as given).
pub fn call(tenant: &str, id: &str, phone: &str, when: i64) -> pb::Event {
    let payload = Payload::PhoneCall(pb::PhoneCall {
        disposition: pb::phone_call::Disposition::Answered as i32,
        duration_seconds: 125,
        billed_seconds: 120,
        ..Default::default()
    });
    contact(
        tenant,
        "test-phone",
        id,
        when,
        when,
        payload,
        party_phone(phone),
    )
}

/// A letter from someone known by phone and name.
pub fn letter(tenant: &str, id: &str, phone: &str, when: i64) -> pb::Event {
    let payload = Payload::Courrier(pb::Courrier {
        kind: pb::courrier::Kind::Letter as i32,
        chrono: format!("GIV-2026-{id}"),
        addressed_to_service: "urbanisme".into(),
        ..Default::default()
    });
    let mut party = party_phone(phone);
    party.name = "Marie Durand".into();
    let mut e = contact(
        tenant,
        "test-courrier",
        id,
        when,
        when + 3_600_000_000,
        payload,
        party,
    );
    e.category = pb::Category::Urbanisme as i32;
    e.personal.as_mut().unwrap().subject = "Permis de construire".into();
    e
}

/// A web form with e-mail and phone.
pub fn web_form(tenant: &str, id: &str, phone: &str, email: &str, when: i64) -> pb::Event {
    let payload = Payload::WebForm(pb::WebForm {
        form_slug: "acte-naissance".into(),
        submission_id: id.into(),
        signed_in: false,
        thread_id: String::new(),
    });
    let mut party = party_phone(phone);
    party.email = email.into();
    let mut e = contact(tenant, "test-form", id, when, when, payload, party);
    e.category = pb::Category::EtatCivil as i32;
    e
}

/// The registration of a citizen record `id` (name and phone), as an agent or an import makes
/// it: contacts may name a citizen id only once it exists.
pub fn register(tenant: &str, id: &str, name: &str, phone: &str, when: i64) -> pb::Event {
    let mut party = party_phone(phone);
    party.name = name.into();
    let mut e = contact(
        tenant,
        "test-register",
        id,
        when,
        when,
        Payload::CitizenRegistered(pb::CitizenRegistered {
            citizen_id: id.into(),
        }),
        party,
    );
    e.direction = pb::Direction::Internal as i32;
    e
}

/// A gRPC request carrying an agent's bearer token.
pub fn as_agent<T>(token: &str, m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .expect("a token fit for a header"),
    );
    r
}

/// An agent's browser on the web desk, signed in: its session cookie.
pub struct WebAgent {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
}

impl WebAgent {
    /// Signs in on the desk at `base` with `token` (redirections are not followed).
    pub async fn sign_in(base: &str, token: &str) -> WebAgent {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let r = http
            .post(format!("{base}/connexion"))
            .form(&[("token", token), ("suite", "/")])
            .send()
            .await
            .expect("the desk answers");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .expect("a cookie")
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        WebAgent {
            http,
            base: base.into(),
            cookie,
        }
    }

    /// A page of the desk: its status and body.
    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("the desk answers");
        (r.status(), r.text().await.unwrap_or_default())
    }
}

pub fn party_phone(phone: &str) -> pb::Party {
    pb::Party {
        phone: phone.into(),
        ..Default::default()
    }
}

pub fn by_phone(p: &str) -> Option<pb::CitizenRef> {
    Some(pb::CitizenRef {
        by: Some(pb::citizen_ref::By::Phone(p.into())),
    })
}

pub fn by_email(m: &str) -> Option<pb::CitizenRef> {
    Some(pb::CitizenRef {
        by: Some(pb::citizen_ref::By::Email(m.into())),
    })
}

pub fn by_id(id: &str) -> Option<pb::CitizenRef> {
    Some(pb::CitizenRef {
        by: Some(pb::citizen_ref::By::CitizenId(id.into())),
    })
}

/// Path of the `contacthub` command built for tests (a macro: only tests see the path).
#[macro_export]
macro_rules! contacthub_bin {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_contacthub-under-test"))
    };
}

/// A `contacthub serve` child on free ports over `data`, with `extra` arguments.
pub struct ServeChild {
    pub child: std::process::Child,
    /// `http://` address of the gRPC API.
    pub grpc: String,
    /// `http://` address of the adapter endpoints.
    pub adapters: String,
    /// `http://` address of the web desk.
    pub web: String,
    /// `http://` address of the citizens' space.
    pub portal: String,
    /// `http://` address of the metrics endpoint (`…/metrics`).
    pub metrics: String,
    /// The `contacthub` binary it runs, for [`ServeChild::cli`].
    pub bin: std::path::PathBuf,
}

impl ServeChild {
    /// Runs a `contacthub` CLI command against this server: whether it succeeded, and its
    /// standard output followed by its standard error.
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let o = std::process::Command::new(&self.bin)
            .args(args)
            .args(["--server", &self.grpc])
            .output()
            .expect("running the contacthub CLI");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    }
}

/// The master key of every test hub (tests only: a real one comes from a file outside the
/// data folder).
pub fn test_master_key() -> contacthub_log::keyring::MasterKey {
    contacthub_log::keyring::MasterKey::parse(&test_master_key_hex()).unwrap()
}

/// [`test_master_key`] as `$CONTACTHUB_MASTER_KEY` gives it to a `contacthub` process.
pub fn test_master_key_hex() -> String {
    "5e".repeat(32)
}

/// The keyring of the hub whose data folder is `data` (the test master key).
pub fn keyring(data: &Path) -> contacthub_log::keyring::SharedKeyring {
    Arc::new(
        contacthub_log::keyring::FileKeyring::open(&data.join("keyring"), test_master_key())
            .expect("opening the test keyring"),
    )
}

/// The keyring a test hub uses: the keys topic of its cluster on Kafka, else its data folder's.
pub async fn hub_keyring(
    kafka: Option<&kafka::KafkaConfig>,
    data: &Path,
) -> contacthub_log::keyring::SharedKeyring {
    match kafka {
        Some(cfg) => Arc::new(
            contacthub_log::kafka_keyring::KafkaKeyring::open(cfg, test_master_key(), "test")
                .await
                .expect("opening the test keyring on kafka"),
        ),
        None => keyring(data),
    }
}

/// `serve`'s listening flags, every port a free one on loopback.
pub const FREE_PORTS: [&str; 10] = [
    "--listen",
    "127.0.0.1:0",
    "--adapters-listen",
    "127.0.0.1:0",
    "--web-listen",
    "127.0.0.1:0",
    "--portal-listen",
    "127.0.0.1:0",
    "--metrics-listen",
    "127.0.0.1:0",
];

/// Starts `contacthub serve` as a child process and reads where it listens.
pub fn spawn_serve(bin: &Path, data: &Path, extra: &[&std::ffi::OsStr]) -> ServeChild {
    // CONTACTHUB_TEST_CHILD_LOGS=1 shows the child's logs (debugging a test).
    let logs = if std::env::var_os("CONTACTHUB_TEST_CHILD_LOGS").is_some() {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    };
    spawn_serve_with_logs(bin, data, extra, logs)
}

/// [`spawn_serve`] with the child's standard error (its logs) sent to `logs`.
pub fn spawn_serve_with_logs(
    bin: &Path,
    data: &Path,
    extra: &[&std::ffi::OsStr],
    logs: std::process::Stdio,
) -> ServeChild {
    spawn_serve_in(bin, data, extra, &[], logs)
}

/// [`spawn_serve_with_logs`] with environment variables `env` set for the child.
pub fn spawn_serve_in(
    bin: &Path,
    data: &Path,
    extra: &[&std::ffi::OsStr],
    env: &[(&str, String)],
    logs: std::process::Stdio,
) -> ServeChild {
    try_spawn_serve_in(bin, data, extra, env, logs).unwrap_or_else(|e| panic!("{e}"))
}

/// [`spawn_serve_in`], saying why when `serve` does not come up (it exited, or printed
/// something else than its addresses) instead of panicking.
pub fn try_spawn_serve_in(
    bin: &Path,
    data: &Path,
    extra: &[&std::ffi::OsStr],
    env: &[(&str, String)],
    logs: std::process::Stdio,
) -> Result<ServeChild, String> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("serve")
        .args(FREE_PORTS)
        .arg("--data")
        .arg(data)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(logs)
        .spawn()
        .map_err(|e| format!("starting contacthub serve: {e}"))?;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut addr = |prefix: &str| -> Result<String, String> {
        let mut line = String::new();
        out.read_line(&mut line)
            .map_err(|e| format!("reading the server's address: {e}"))?;
        if !line.starts_with(prefix) {
            return Err(format!("unexpected first lines of serve: {line:?}"));
        }
        let at = line.trim().rsplit(' ').next().unwrap_or_default();
        // `https://` when the hub serves TLS; an address without a scheme is plain.
        let (scheme, at) = match at.strip_prefix("https://") {
            Some(rest) => ("https", rest),
            None => ("http", at.trim_start_matches("http://")),
        };
        Ok(format!("{scheme}://{}", at.trim_end_matches('/')))
    };
    let listening = (|| {
        Ok::<_, String>((
            addr("contacthub listening on")?,
            addr("adapter endpoints listening on")?,
            addr("web desk listening on")?,
            addr("citizens' space listening on")?,
            addr("metrics listening on")?,
        ))
    })();
    match listening {
        Ok((grpc, adapters, web, portal, metrics)) => Ok(ServeChild {
            child,
            grpc,
            adapters,
            web,
            portal,
            metrics,
            bin: bin.to_path_buf(),
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// `pdftotext` (Debian's poppler-utils), when installed (scripts/test-all installs it).
pub fn pdftotext() -> Option<std::path::PathBuf> {
    let found = std::process::Command::new("pdftotext")
        .arg("-v")
        .output()
        .is_ok();
    if !found && std::env::var_os("CONTACTHUB_TEST_REQUIRE_PDFTOTEXT").is_some() {
        panic!("CONTACTHUB_TEST_REQUIRE_PDFTOTEXT is set but pdftotext is not installed");
    }
    found.then(|| "pdftotext".into())
}

/// The text of a PDF as `pdftotext` reads it (`None` without pdftotext).
pub fn pdf_text(pdf: &[u8]) -> Option<String> {
    let tool = pdftotext()?;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("document.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new(tool)
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Appends the first `events` events of the demo `cfg` to `log` in batches of 5,000, as a
/// producer would; returns how many.
pub async fn append_demo(
    log: &dyn EventLog,
    cfg: &contacthub_core::demo::DemoConfig,
    events: usize,
) -> usize {
    append_demo_sealed(log, cfg, events, None).await
}

/// [`append_demo`], each event sealed with its subject's key of `keys` first when given (as
/// the hub's writers do).
pub async fn append_demo_sealed(
    log: &dyn EventLog,
    cfg: &contacthub_core::demo::DemoConfig,
    events: usize,
    keys: Option<&dyn contacthub_log::keyring::Keyring>,
) -> usize {
    use contacthub_core::seal;
    let mut written = 0usize;
    let mut batch = Vec::with_capacity(5000);
    let flush = |mut events: Vec<pb::Event>| async move {
        if let Some(keys) = keys {
            let ids: Vec<String> = events.iter().map(seal::subject).collect();
            let found = keys.keys_for(&ids).await.unwrap();
            for ((e, id), key) in events.iter_mut().zip(&ids).zip(found) {
                let mut nonce = [0u8; seal::NONCE_LEN];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
                seal::seal(e, id, &key.unwrap(), nonce);
            }
        }
        log.append(events.iter().map(to_record).collect())
            .await
            .unwrap();
        events.len()
    };
    for e in contacthub_core::demo::events(cfg, &Tenants::builtin()).take(events) {
        batch.push(e);
        if batch.len() == 5000 {
            written += flush(std::mem::take(&mut batch)).await;
        }
    }
    written += flush(batch).await;
    written
}

/// The process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    peak_rss_kib("self").map_or(0.0, |kib| kib / 1024.0)
}

/// The peak resident memory of process `pid` (`self` for this one) so far, in KiB: its
/// `VmHWM`; `None` once it has ended.
pub fn peak_rss_kib(pid: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
}

/// What agents type at the desk to find one of `people` (first names, surname): a full name
/// in either order, a surname's first four letters, a surname with one letter changed; `n`
/// searches, the same ones for the same `people` (seeded).
pub fn search_queries(people: &[(String, String)], n: usize) -> Vec<String> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..n)
        .map(|i| {
            let (first, last) = &people[rng.gen_range(0..people.len())];
            match i % 4 {
                0 => format!("{last} {first}"),
                1 => format!("{first} {last}"),
                2 => last.chars().take(4).collect(),
                _ => {
                    // One letter changed.
                    let mut c: Vec<char> = last.to_lowercase().chars().collect();
                    let at = c.len() / 2;
                    c[at] = if c[at] == 'e' { 'a' } else { 'e' };
                    c.into_iter().collect()
                }
            }
        })
        .collect()
}

/// Bytes of the files under `p`.
pub fn size_of(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => size_of(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes the indexes tansu 0.6's SQLite engine lacks in its database `db` (made when absent;
/// tests/fixtures/tansu/indexes.sql says why), with Python's `sqlite3` (python3 is there for
/// moto). Without them a broker holding some 20,000 records stops answering in time.
fn indexes(db: &Path) -> Result<(), String> {
    let sql = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tansu/indexes.sql");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(open(sys.argv[2]).read()); c.close()",
        ])
        .arg(db)
        .arg(sql)
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "indexing tansu's database {}: {}",
            db.display(),
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("indexing tansu's database needs python3: {e}")),
    }
}

/// A tansu broker of the test's own on `127.0.0.1:port`, storing in SQLite so it survives
/// SIGKILL and restarts, with the indexes it lacks ([`indexes`]). `None` when tansu is not
/// installed (a panic when `CONTACTHUB_TEST_REQUIRE_KAFKA` is set).
pub struct Tansu {
    child: std::process::Child,
    port: u16,
    db: std::path::PathBuf,
    advertised: Option<String>,
    extra: Vec<String>,
}

impl Tansu {
    /// Starts it; `advertised` (a `tcp://host:port` URL) is what clients are told to reconnect
    /// to (its own address when `None`); `extra` are more `tansu broker` arguments.
    pub fn start(db: &Path, port: u16, advertised: Option<&str>, extra: &[&str]) -> Option<Tansu> {
        use std::process::{Command, Stdio};
        if let Err(e) = indexes(db) {
            assert!(
                std::env::var_os("CONTACTHUB_TEST_REQUIRE_KAFKA").is_none(),
                "{e}"
            );
            eprintln!("skipped: {e}");
            return None;
        }
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
            ])
            .arg(advertised.unwrap_or(&url))
            .arg("--storage-engine")
            // tansu resolves the SQLite path against its working directory.
            .arg(format!(
                "sqlite://{}",
                db.file_name().unwrap().to_string_lossy()
            ))
            .args(extra)
            .current_dir(db.parent().unwrap())
            .stdout(Stdio::null())
            // Its log beside its database, kept across restarts, for a test that fails.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(db.with_extension("log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(_) if std::env::var_os("CONTACTHUB_TEST_REQUIRE_KAFKA").is_none() => return None,
            Err(e) => panic!("cannot start tansu (cargo install tansu --locked --version 0.6.0 --features dynostore,libsql): {e}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Tansu {
            child,
            port,
            db: db.to_path_buf(),
            advertised: advertised.map(str::to_string),
            extra: extra.iter().map(|a| a.to_string()).collect(),
        })
    }

    /// Its `host:port`, for `--kafka`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait for it to end.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, as an operator's rolling restart stops it, and wait for it to end (SIGKILL
    /// after 30 s).
    pub fn stop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.kill9();
    }

    /// Starts it again on the same port and storage, as it was started.
    pub fn restart(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        *self = Tansu::start(&self.db, self.port, self.advertised.as_deref(), &extra).unwrap();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
