//! Commands and settings. Every setting has a flag and an environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// contacthub: the omnichannel contact hub of the communes (GRC).
#[derive(Debug, Parser)]
#[command(name = "contacthub", version, about)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, env = "CONTACTHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Debug logs (may include personal data: never in production).
    #[arg(long, short, global = true, env = "CONTACTHUB_VERBOSE")]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the log, the projector and the gRPC API in one process.
    Serve(Box<ServeArgs>),
    /// Runs the projector alone (a read model kept up to date from the log).
    Project(ProjectArgs),
    /// Rebuilds a read model from offset 0 into an empty folder and prints its digest; runs
    /// while the hub serves (then switch to it: docs/operations.md).
    Replay(ReplayArgs),
    /// Prints the digest of a read model (equal digests, equal projections).
    Digest(DigestArgs),
    /// Prints a citizen's timeline from a running server.
    Timeline(TimelineArgs),
    /// Prints partitions, log end offsets, projector positions and lag of a running server.
    Status(ClientArgs),
    /// Lists events that could not be projected, with the reason.
    DeadLetters(DeadLettersArgs),
    /// Copies the embedded log of --data into the Kafka topic of --kafka (moving to Kafka).
    Migrate(MigrateArgs),
    /// Citizen records: search, show, create, correct, merge, unmerge; households.
    Citizen {
        #[command(subcommand)]
        command: CitizenCommand,
    },
    /// Requests (demandes): open, link, assign, answer, close, reopen, show, list.
    Request {
        #[command(subcommand)]
        command: RequestCommand,
    },
    /// Written answers sent to citizens on their preferred channel: preview, send, status.
    Answer {
        #[command(subcommand)]
        command: AnswerCommand,
    },
    /// The outbound channel's print queue: letters to print and post.
    Outbound {
        #[command(subcommand)]
        command: OutboundCommand,
    },
    /// Dashboard of a commune over months (aggregates only): requests, delays, letters, calls.
    Dashboard(DashboardArgs),
    /// Mail room: register, show, list, route, answer letters; receipts and reports.
    Courrier {
        #[command(subcommand)]
        command: CourrierCommand,
    },
    /// Sends CDR files or e-mails to a running server's adapter endpoints. Exits 0 when all
    /// was taken, 3 when some lines or files went to the quarantine (the rest was taken), 1
    /// when a file was refused or the hub could not be reached.
    Ingest {
        #[command(subcommand)]
        command: IngestCommand,
    },
    /// Input the adapters could not parse, kept with the reason.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Calls of a commune and how many bounced back to the central accueil.
    PhoneReport(CourrierTenantArgs),
    /// The accueil's waiting line (tickets, counters) and its report.
    Accueil {
        #[command(subcommand)]
        command: AccueilCommand,
    },
    /// Appointments: free slots, booking for a person, cancelling, a day's agenda.
    Appointment {
        #[command(subcommand)]
        command: AppointmentCommand,
    },
    /// Kafka topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// The read trail: who read whose data, for the data protection officer
    /// (`audit --tenant T --citizen ID` or `--agent ID`), and `audit verify` of its chain.
    Audit(AuditArgs),
    /// The records the commune's retention rules erase now: listed (--dry-run) or erased
    /// (--apply), for the data protection officer (serve applies them once a day).
    Retention(RetentionArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RetentionMode {
    /// List what would be erased, and why; erase nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Erase it.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    #[command(flatten)]
    pub mode: RetentionMode,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    #[command(flatten)]
    pub client: ClientArgs,
    /// Commune (INSEE code): the data protection officer's.
    #[arg(long, env = "CONTACTHUB_TENANT")]
    pub tenant: Option<String>,
    /// Only the reads of this citizen.
    #[arg(long)]
    pub citizen: Option<String>,
    /// Only the reads by this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// The latest N reads (200 by default).
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Checks that no line of the trail was changed, inserted or removed.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Data folder of the hub (its trail is DATA/audit/reads.jsonl).
    #[arg(long, env = "CONTACTHUB_DATA", default_value = "./data")]
    pub data: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
    /// Asterisk CDR files (Master.csv format).
    Phone(IngestArgs),
    /// E-mail messages (.eml, RFC 5322).
    Email(IngestArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files to send.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Commune (INSEE code); without it the server tells the commune from the content
    /// (needs the ops token when credentials are configured).
    #[arg(long, env = "CONTACTHUB_TENANT")]
    pub tenant: Option<String>,
    /// Adapter endpoints of a running contacthub.
    #[arg(
        long,
        env = "CONTACTHUB_ADAPTERS_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Bearer token of the commune, or the ops token.
    #[arg(long, env = "CONTACTHUB_ADAPTERS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Lists quarantined input, oldest first.
    List(QuarantineListArgs),
    /// Prints the raw bytes of one entry on standard output.
    Show(QuarantineShowArgs),
}

#[derive(Debug, Args)]
pub struct QuarantineListArgs {
    /// Data folder of the server (its quarantine is DATA/quarantine).
    #[arg(long, env = "CONTACTHUB_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Only this adapter (asterisk-cdr, sms, web-form, email).
    #[arg(long)]
    pub adapter: Option<String>,
    /// Only this commune.
    #[arg(long, env = "CONTACTHUB_TENANT")]
    pub tenant: Option<String>,
}

#[derive(Debug, Args)]
pub struct QuarantineShowArgs {
    #[arg(long, env = "CONTACTHUB_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Entry id, as listed.
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Creates the event topic (infinite retention) and the dead-letter topic.
    Init(TopicsInitArgs),
}

/// Where the event log lives.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Data folder (embedded log and read model).
    #[arg(long, env = "CONTACTHUB_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Kafka bootstrap servers (host:port,...). When set, no embedded log is opened.
    #[arg(long, env = "CONTACTHUB_KAFKA")]
    pub kafka: Option<String>,
    /// Kafka topic of the events.
    #[arg(long, env = "CONTACTHUB_TOPIC", default_value = "contacthub.events.v1")]
    pub topic: String,
    /// Kafka topic of the dead letters.
    #[arg(
        long,
        env = "CONTACTHUB_DEAD_LETTER_TOPIC",
        default_value = "contacthub.dead-letters.v1"
    )]
    pub dead_letter_topic: String,
    /// Kafka topic of the keyring (compacted; docs/operations.md, « Données personnelles »).
    #[arg(
        long,
        env = "CONTACTHUB_KEYS_TOPIC",
        default_value = "contacthub.keys.v1"
    )]
    pub keys_topic: String,
    /// Kafka producer compression (none, gzip, snappy, lz4, zstd).
    #[arg(long, env = "CONTACTHUB_KAFKA_COMPRESSION", default_value = "lz4")]
    pub kafka_compression: String,
    /// A Kafka client properties file (key=value) for a secured cluster: security.protocol,
    /// sasl.mechanisms, sasl.username, sasl.password, ssl.ca.location… (docs/operations.md).
    #[arg(long, env = "CONTACTHUB_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
    /// Partitions of a new embedded log (an existing log keeps its own).
    #[arg(long, env = "CONTACTHUB_PARTITIONS", default_value_t = 12)]
    pub partitions: u32,
    /// Communes configuration (TOML); the six communes of the syndicate when absent.
    #[arg(long, env = "CONTACTHUB_COMMUNES")]
    pub communes: Option<PathBuf>,
    /// The master key (64 hexadecimal digits) that wraps the keyring, in a file outside the
    /// data folder. Absent: `$CONTACTHUB_MASTER_KEY`, else `~/.config/contacthub/master.key`,
    /// made on first use (docs/operations.md, « Données personnelles »).
    #[arg(long, env = "CONTACTHUB_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

/// Where the documents (scans, attachments, answer letters) are kept.
#[derive(Debug, Clone, Args)]
pub struct ContentArgs {
    /// S3-compatible object storage every hub of a cluster shares (`s3://bucket` or
    /// `s3://bucket/prefix`); credentials and region from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_REGION. Absent: DATA/content on this machine's disk.
    #[arg(long, env = "CONTACTHUB_CONTENT_URL")]
    pub content_url: Option<String>,
    /// The object storage's address when it is not AWS (MinIO, Garage, Ceph, OVHcloud…),
    /// e.g. https://minio:9000 (plain HTTP: on loopback, or with --content-allow-http).
    #[arg(long, env = "CONTACTHUB_CONTENT_ENDPOINT", requires = "content_url")]
    pub content_endpoint: Option<String>,
    /// Plain HTTP to an endpoint that is not on this machine: documents travel in clear, so
    /// only inside a network nobody else reaches (said in a warning at start).
    #[arg(
        long,
        env = "CONTACTHUB_CONTENT_ALLOW_HTTP",
        requires = "content_endpoint"
    )]
    pub content_allow_http: bool,
    /// The authority (PEM) the object storage's certificate is checked against, when it is a
    /// private one.
    #[arg(long, env = "CONTACTHUB_CONTENT_CA", requires = "content_endpoint")]
    pub content_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub content: ContentArgs,
    /// Address of the gRPC API.
    #[arg(long, env = "CONTACTHUB_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Loads a generated population of the communes first (once: skipped when the log has events).
    #[arg(long, env = "CONTACTHUB_DEMO")]
    pub demo: bool,
    /// Seed of the demo population.
    #[arg(long, env = "CONTACTHUB_DEMO_SEED", default_value_t = 42)]
    pub demo_seed: u64,
    /// People per commune in the demo population.
    #[arg(long, env = "CONTACTHUB_DEMO_PEOPLE", default_value_t = 200)]
    pub demo_people: usize,
    /// Agents file (TOML: id, token_sha256, tenants, ops, services, role; `[oidc]` for the
    /// commune's identity provider). Without it the API is open to anyone who can reach it:
    /// keep it on 127.0.0.1 then.
    #[arg(long, env = "CONTACTHUB_AGENTS")]
    pub agents: Option<PathBuf>,
    /// Reverse proxies (addresses or networks, comma-separated) whose `X-Forwarded-For` says
    /// who the client is: what sign-in limits, request limits and the read trail see.
    #[arg(long, env = "CONTACTHUB_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// The identity provider's client secret (instead of `oidc.client_secret_file`).
    #[arg(long, env = "CONTACTHUB_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Scanner drop folder (default DATA/scan-inbox): scans named after a chrono number, or
    /// with a JSON sidecar naming one, attach to that letter.
    #[arg(long, env = "CONTACTHUB_SCAN_INBOX")]
    pub scan_inbox: Option<PathBuf>,
    /// Largest scan accepted, in megabytes.
    #[arg(long, env = "CONTACTHUB_MAX_SCAN_MB", default_value_t = 25)]
    pub max_scan_mb: u64,
    /// Seconds a write waits to become visible before the call fails.
    #[arg(long, env = "CONTACTHUB_VISIBILITY_TIMEOUT", default_value_t = 10)]
    pub visibility_timeout: u64,
    /// Adapters configuration (TOML: per-commune credentials, mailboxes, form categories,
    /// accueil extensions). Without it the adapter endpoints are open: keep them on 127.0.0.1.
    #[arg(long, env = "CONTACTHUB_ADAPTERS")]
    pub adapters: Option<PathBuf>,
    /// Address of the adapter endpoints (SMS webhooks, web forms, e-mail and CDR uploads).
    #[arg(
        long,
        env = "CONTACTHUB_ADAPTERS_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub adapters_listen: SocketAddr,
    /// Address of the web desk (the agents' pages).
    #[arg(long, env = "CONTACTHUB_WEB_LISTEN", default_value = "127.0.0.1:8088")]
    pub web_listen: SocketAddr,
    /// Address of the citizens' space (« Suivre une demande »).
    #[arg(
        long,
        env = "CONTACTHUB_PORTAL_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub portal_listen: SocketAddr,
    /// Whether this hub sends the written answers of the outbox (e-mail, SMS). With several
    /// hubs on one Kafka log, exactly one sends: the others say `off`.
    #[arg(long, env = "CONTACTHUB_OUTBOUND", value_enum, default_value_t = Outbound::Send)]
    pub outbound: Outbound,
    /// Address of the hub's Prometheus metrics (`GET /metrics`): projector lag per
    /// partition, apply rate, batch, append and GetTimeline latencies, answers sent.
    #[arg(
        long,
        env = "CONTACTHUB_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_listen: SocketAddr,
    /// Largest request (and attachment) the adapter endpoints accept, in megabytes.
    #[arg(long, env = "CONTACTHUB_ADAPTERS_MAX_BODY_MB", default_value_t = 25)]
    pub adapters_max_body_mb: u64,
    /// The certificate (PEM chain) every port presents: gRPC, adapter endpoints, desk and
    /// metrics speak TLS only when it is given (with --tls-key). Read again when the file
    /// changes, without a restart.
    #[arg(long, env = "CONTACTHUB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "CONTACTHUB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve the API without an agents file (or the adapter endpoints without credentials) on
    /// an address other machines can reach. Refused otherwise: everything would be open.
    #[arg(long, env = "CONTACTHUB_INSECURE_OPEN")]
    pub insecure_open: bool,
}

#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Stops once the log's end (as of start) is applied.
    #[arg(long, env = "CONTACTHUB_EXIT_WHEN_CAUGHT_UP")]
    pub exit_when_caught_up: bool,
    /// Events per sled batch.
    #[arg(long, env = "CONTACTHUB_BATCH_SIZE", default_value_t = 2000)]
    pub batch_size: usize,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Empty folder for the rebuilt read model.
    #[arg(long, env = "CONTACTHUB_REPLAY_INTO")]
    pub into: PathBuf,
    /// Memory for the changes held before they are written in key order, in megabytes
    /// (more: fewer, larger sorted writes).
    #[arg(long, env = "CONTACTHUB_REPLAY_MEMORY_MB", default_value_t = 256)]
    pub memory_mb: u64,
    /// sled's cache while replaying, in megabytes as sled counts them (pages' size on disk: in
    /// memory they take three to four times that); a replay writes in key order and needs less
    /// than a serving hub (256): less memory for a slightly slower replay.
    #[arg(long, env = "CONTACTHUB_REPLAY_CACHE_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub cache_mb: u64,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The embedded log's data folder (--data) and the target cluster (--kafka, required). Run it
    /// again after an interruption: it goes on after what the topic already holds.
    #[command(flatten)]
    pub log: LogArgs,
    /// The object storage the documents of DATA/content are copied to (--content-url).
    #[command(flatten)]
    pub content: ContentArgs,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Read-model folder (e.g. ./data/read-model). When a running hub holds it, its digest is
    /// asked of that hub (--server).
    #[arg(long, env = "CONTACTHUB_READ_MODEL")]
    pub read_model: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Address of a running contacthub.
    #[arg(
        long,
        env = "CONTACTHUB_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Bearer token of the agent (when the server has an agents file).
    #[arg(long, env = "CONTACTHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The authority (PEM) that signed a hub's certificate, for `https://` when it is not in
    /// the system's trust store (a private authority).
    #[arg(long, env = "CONTACTHUB_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Commune (INSEE code), e.g. 69091 for Givors.
    #[arg(long, env = "CONTACTHUB_TENANT")]
    pub tenant: String,
    /// Citizen id.
    #[arg(long, group = "who")]
    pub citizen: Option<String>,
    /// Phone number, written any usual way.
    #[arg(long, group = "who")]
    pub phone: Option<String>,
    /// E-mail address.
    #[arg(long, group = "who")]
    pub email: Option<String>,
    /// Entries to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Only these channels (phone, courrier, web-form, sms, email, desk, back-office).
    #[arg(long, value_delimiter = ',')]
    pub channel: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct TopicsInitArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "CONTACTHUB_KAFKA")]
    pub kafka: String,
    /// A Kafka client properties file for a secured cluster (as for serve).
    #[arg(long, env = "CONTACTHUB_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
    #[arg(long, env = "CONTACTHUB_TOPIC", default_value = "contacthub.events.v1")]
    pub topic: String,
    #[arg(
        long,
        env = "CONTACTHUB_DEAD_LETTER_TOPIC",
        default_value = "contacthub.dead-letters.v1"
    )]
    pub dead_letter_topic: String,
    /// Kafka topic of the keyring (compacted; docs/operations.md, « Données personnelles »).
    #[arg(
        long,
        env = "CONTACTHUB_KEYS_TOPIC",
        default_value = "contacthub.keys.v1"
    )]
    pub keys_topic: String,
    /// Partitions of the event topic.
    #[arg(long, env = "CONTACTHUB_PARTITIONS", default_value_t = 12)]
    pub partitions: u32,
    /// Replication factor (3 in production).
    #[arg(long, env = "CONTACTHUB_REPLICATION", default_value_t = 1)]
    pub replication: i32,
}

#[derive(Debug, Subcommand)]
pub enum CourrierCommand {
    /// Registers an incoming letter and prints its chrono number.
    Register(CourrierRegisterArgs),
    /// Shows a letter and its history.
    Show(CourrierRefArgs),
    /// Lists letters.
    List(CourrierListArgs),
    /// Routes (or reassigns) a letter to a service.
    Route(CourrierRouteArgs),
    /// Records a step of the internal circuit.
    Step(CourrierStepArgs),
    /// Marks a letter answered.
    Answer(CourrierAnswerArgs),
    /// Writes the acknowledgement of receipt (PDF).
    Receipt(CourrierReceiptArgs),
    /// Registered, routed, answered, time to answer, overdue letters.
    Report(CourrierTenantArgs),
    /// Scans from the drop folder that match no letter.
    Unmatched(CourrierUnmatchedArgs),
}

#[derive(Debug, Args)]
pub struct CourrierTenantArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Commune (INSEE code).
    #[arg(long, env = "CONTACTHUB_TENANT")]
    pub tenant: String,
}

#[derive(Debug, Args)]
pub struct CourrierRefArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Chrono number, e.g. GIV-2026-000123.
    pub chrono: String,
}

#[derive(Debug, Args)]
pub struct CourrierRegisterArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Sender's name as on the envelope.
    #[arg(long)]
    pub from_name: Option<String>,
    #[arg(long)]
    pub from_phone: Option<String>,
    #[arg(long)]
    pub from_email: Option<String>,
    /// Sender's postal address, one --from-address per line.
    #[arg(long)]
    pub from_address: Vec<String>,
    #[arg(long, default_value = "")]
    pub subject: String,
    /// état civil, scolaire, petite-enfance, ccas, culture, services-techniques, urbanisme,
    /// police-municipale, other.
    #[arg(long, default_value = "other")]
    pub category: String,
    /// Service the letter is addressed to.
    #[arg(long, default_value = "")]
    pub service: String,
    /// letter, registered, parcel, memo.
    #[arg(long, default_value = "letter")]
    pub kind: String,
    #[arg(long, default_value = "")]
    pub tracking_number: String,
    /// Date received (YYYY-MM-DD); today when absent.
    #[arg(long)]
    pub received: Option<String>,
    /// Scans to attach (PDF, TIFF, JPEG, PNG).
    #[arg(long)]
    pub scan: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CourrierListArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    #[arg(long)]
    pub service: Option<String>,
    /// registered, routed, answered.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub overdue: bool,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct CourrierRouteArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub chrono: String,
    #[arg(long)]
    pub service: String,
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct CourrierStepArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub chrono: String,
    #[arg(long)]
    pub step: String,
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct CourrierAnswerArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub chrono: String,
    /// courrier, email, sms, phone, desk.
    #[arg(long)]
    pub channel: String,
    /// Reference of the answer (outgoing chrono, Message-ID...).
    #[arg(long, default_value = "")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct CourrierReceiptArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub chrono: String,
    /// Output PDF file.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CourrierUnmatchedArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Commune (INSEE code); every commune's when absent (ops right needed).
    #[arg(long, env = "CONTACTHUB_TENANT")]
    pub tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CitizenCommand {
    /// Finds citizens by name, phone, e-mail, street address, citizen id or letter number;
    /// one line per citizen, best first, starting with the citizen id.
    Search(CitizenSearchArgs),
    /// Shows a citizen record.
    Show(CitizenRefArgs),
    /// Creates a citizen record and prints its id.
    Create(CitizenCreateArgs),
    /// Corrects or completes a record: the given fields replace those of the record.
    Update(CitizenUpdateArgs),
    /// Merges a record into another (the same person).
    Merge(CitizenMergeArgs),
    /// Undoes the merge of a record.
    Unmerge(CitizenUnmergeArgs),
    /// Shows a household, or adds (--add) or removes (--remove) a member.
    Household(CitizenHouseholdArgs),
    /// The "à rattacher" worklist: contacts waiting for an agent, with their candidates.
    Unresolved(CitizenUnresolvedArgs),
    /// Attaches a waiting contact (its event id) to a citizen.
    Attach(CitizenAttachArgs),
    /// Records that may be the same person.
    Proposals(CourrierTenantArgs),
    /// Accounts of the citizens' space waiting to be linked to a record.
    Accounts(CourrierTenantArgs),
    /// Links a waiting account (its proposal id, as listed) to a record.
    LinkAccount(CitizenLinkAccountArgs),
    /// Two records proposed as duplicates are different people.
    Dismiss(CitizenDismissArgs),
    /// Erases a citizen's data (and the records merged into it) for good: the data protection
    /// officer's token only (docs/operations.md, « Données personnelles »).
    Erase(CitizenEraseArgs),
    /// Writes everything held about a citizen to a zip (the right of access): donnees.json,
    /// the original documents, resume.html; the data protection officer's token only.
    Export(CitizenExportArgs),
}

#[derive(Debug, Args)]
pub struct CitizenExportArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub citizen: String,
    /// The zip to write (not overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CitizenEraseArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub citizen: String,
    /// Why, without personal data (« demande de l'intéressé du 02/12/2026 »).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CitizenUnresolvedArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Also contacts attached by their identifiers that named an unknown citizen id.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CitizenLinkAccountArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The proposal's id, as `citizen accounts` lists it.
    pub proposal: String,
    pub citizen: String,
}

#[derive(Debug, Args)]
pub struct CitizenAttachArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Event id of the contact, as listed.
    pub contact: String,
    pub citizen: String,
}

#[derive(Debug, Args)]
pub struct CitizenDismissArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub citizen: String,
    pub other: String,
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CitizenSearchArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// What the agent types: "durand marie", "06 12 34 56 78", "12 rue Émile Zola"…
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct CitizenRefArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Citizen id, e.g. GIV-000002.
    pub citizen: String,
}

/// The fields of a citizen record.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Nom d'usage.
    #[arg(long)]
    pub usage_name: Option<String>,
    /// Nom de naissance.
    #[arg(long)]
    pub birth_name: Option<String>,
    /// Prénoms.
    #[arg(long)]
    pub first_names: Option<String>,
    /// YYYY-MM-DD.
    #[arg(long)]
    pub birth_date: Option<String>,
    /// Postal address "NUMBER|STREET|POSTCODE|CITY" (repeat for several; replaces them all).
    #[arg(long)]
    pub address: Vec<String>,
    /// Phone (repeat for several; replaces them all).
    #[arg(long)]
    pub phone: Vec<String>,
    /// E-mail (repeat for several; replaces them all).
    #[arg(long)]
    pub email: Vec<String>,
    /// Preferred channel for answers.
    #[arg(long, value_enum)]
    pub preferred: Option<PreferredChannel>,
    /// Where the citizen agreed to it (e.g. "accueil"); the consent is dated now.
    #[arg(long)]
    pub consent_source: Option<String>,
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PreferredChannel {
    Email,
    Sms,
    Courrier,
    Phone,
}

#[derive(Debug, Args)]
pub struct CitizenCreateArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub struct CitizenUpdateArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub citizen: String,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Args)]
pub struct CitizenMergeArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The record merged (it joins the other).
    pub citizen: String,
    #[arg(long)]
    pub into: String,
    /// Why they are the same person.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CitizenUnmergeArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub citizen: String,
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CitizenHouseholdArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub household: String,
    /// Adds this citizen.
    #[arg(long, group = "change")]
    pub add: Option<String>,
    /// Removes this citizen.
    #[arg(long, group = "change")]
    pub remove: Option<String>,
    /// Role of the added member (responsable, enfant, autre).
    #[arg(long, default_value = "autre")]
    pub role: String,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// First month, YYYY-MM (default: eleven months before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Last month, YYYY-MM (default: this month, Paris time).
    #[arg(long)]
    pub to: Option<String>,
    /// Every row as CSV for a spreadsheet (`;`, decimal comma).
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Opens a request and prints its reference and due date.
    Open(RequestOpenArgs),
    /// Links a later contact (its event id) to a request.
    Link(RequestContactArgs),
    /// Assigns a request to a service and/or an agent.
    Assign(RequestAssignArgs),
    /// Records the written answer of a request.
    Answer(RequestAnswerArgs),
    /// Closes a request: after its answer, or with a reason.
    Close(RequestCloseArgs),
    /// Reopens a request.
    Reopen(RequestRefArgs),
    /// Groups requests about one problem under a collective request.
    Group(RequestGroupArgs),
    /// Shows a request and its history.
    Show(RequestRefArgs),
    /// Worklists: oldest due first.
    List(RequestListArgs),
}

#[derive(Debug, Args)]
pub struct RequestRefArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Reference, e.g. GIV-D-2026-000042.
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct RequestOpenArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    #[arg(long)]
    pub subject: String,
    /// état civil, scolaire, petite-enfance, ccas, culture, services-techniques, urbanisme,
    /// police-municipale, other.
    #[arg(long, default_value = "other")]
    pub category: String,
    #[arg(long, default_value = "")]
    pub service: String,
    /// The contact it comes from (event id).
    #[arg(long)]
    pub from_contact: Option<String>,
    /// The requester's citizen id.
    #[arg(long)]
    pub citizen: Option<String>,
    /// On behalf of an élu or a neighbourhood council.
    #[arg(long)]
    pub on_behalf_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct RequestContactArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub reference: String,
    /// Event id of the contact.
    pub contact: String,
}

#[derive(Debug, Args)]
pub struct RequestAssignArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub reference: String,
    #[arg(long, default_value = "")]
    pub service: String,
    #[arg(long, default_value = "")]
    pub agent: String,
}

#[derive(Debug, Args)]
pub struct RequestAnswerArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub reference: String,
    /// courrier, email, sms, portal.
    #[arg(long)]
    pub channel: String,
    /// Reference of the answer (outgoing chrono, Message-ID…).
    #[arg(long)]
    pub answer_ref: String,
}

#[derive(Debug, Subcommand)]
pub enum AnswerCommand {
    /// Shows the answer as it would be sent (channel, recipient, text, SMS segments); writes
    /// the letter with --pdf.
    Preview(AnswerComposeArgs),
    /// Puts the answer in the outbox and prints its id: the hub sends it, retrying.
    Send(AnswerComposeArgs),
    /// Where the answers of a request are: sent, retried, failed, bounced.
    Status(RequestRefArgs),
}

/// Whether a hub sends the outbox's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Outbound {
    /// Deliver the answers of the outbox (one hub per log).
    Send,
    /// Leave them to another hub.
    Off,
}

/// The written channels an answer goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnswerChannelArg {
    Email,
    Sms,
    Courrier,
    /// A message in the citizen's portal account.
    Portal,
}

#[derive(Debug, Args)]
pub struct AnswerComposeArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The request answered, e.g. GIV-D-2026-000042.
    pub reference: String,
    /// Default: the citizen's preferred channel, when they consented to it.
    #[arg(long, value_enum)]
    pub channel: Option<AnswerChannelArg>,
    /// Why another channel than the preferred one (required then).
    #[arg(long)]
    pub reason: Option<String>,
    /// Default: "Votre demande <reference>".
    #[arg(long)]
    pub subject: Option<String>,
    /// The answer; `-` reads it from standard input.
    #[arg(long)]
    pub text: Option<String>,
    /// A catalogue answer to start from (its text when --text is not given).
    #[arg(long)]
    pub catalogue: Option<String>,
    /// E-mail: attach the answer letter as a PDF.
    #[arg(long)]
    pub attach_letter: bool,
    /// Preview: write the letter (courrier, or attached) to this file.
    #[arg(long)]
    pub pdf: Option<PathBuf>,
    /// The same key sends one answer, however many times the command is run.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OutboundCommand {
    /// Letters waiting to be printed, oldest first; --out writes their PDFs,
    /// --mark-printed records letters printed and posted.
    PrintQueue(PrintQueueArgs),
}

#[derive(Debug, Args)]
pub struct PrintQueueArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// Folder to write each letter to (`<answer id>.pdf`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Answer ids of letters printed and posted (repeatable).
    #[arg(long)]
    pub mark_printed: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CloseReasonArg {
    Answered,
    Redirected,
    Duplicate,
    Withdrawn,
}

#[derive(Debug, Args)]
pub struct RequestCloseArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    pub reference: String,
    #[arg(long, value_enum)]
    pub reason: CloseReasonArg,
    /// The administration it was redirected to.
    #[arg(long, default_value = "")]
    pub redirected_to: String,
    /// The request it duplicates.
    #[arg(long, default_value = "")]
    pub duplicate_of: String,
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct RequestListArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    #[arg(long, default_value = "")]
    pub service: String,
    #[arg(long, default_value = "")]
    pub agent: String,
    #[arg(long)]
    pub overdue: bool,
    /// Due within this many days.
    #[arg(long, default_value_t = 0)]
    pub due_within: u32,
    #[arg(long)]
    pub unassigned: bool,
    /// Closed ones too.
    #[arg(long)]
    pub all: bool,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct RequestGroupArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The collective request.
    pub collective: String,
    /// The requests it gathers.
    #[arg(required = true, num_args = 1..)]
    pub members: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccueilCommand {
    /// A person arrives at the pré-accueil: prints their ticket.
    Ticket(AccueilTicketArgs),
    /// Calls the next ticket for a counter (the oldest for a motive it takes).
    CallNext(AccueilCounterArgs),
    /// Calls a called ticket again (the person has not come yet).
    Recall(AccueilTicketRefArgs),
    /// The person is at the counter: handling starts.
    Start(AccueilTicketRefArgs),
    /// Closes a ticket: settled, transferred to a service, turned into a request, absent.
    Close(AccueilCloseArgs),
    /// Who waits at a site now, who is at which counter, the estimated wait.
    Waiting(AccueilSiteArgs),
    /// The accueil's figures over days: arrivals and calls by weekday and hour, waits and
    /// handling times, outcomes, bounce-backs, contacts outside opening hours.
    Report(AccueilReportArgs),
}

#[derive(Debug, Args)]
pub struct AccueilSiteArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The site (its code in the communes file, e.g. hdv).
    #[arg(long, env = "CONTACTHUB_SITE")]
    pub site: String,
}

#[derive(Debug, Args)]
pub struct AccueilTicketArgs {
    #[command(flatten)]
    pub site: AccueilSiteArgs,
    /// Why the person comes: a category (état civil, scolaire, ccas, urbanisme…) or autre.
    #[arg(long)]
    pub motive: String,
    /// With --motive autre: a word (at most 40 characters).
    #[arg(long, default_value = "")]
    pub label: String,
    /// The person's record, when known.
    #[arg(long, default_value = "")]
    pub citizen: String,
}

#[derive(Debug, Args)]
pub struct AccueilCounterArgs {
    #[command(flatten)]
    pub site: AccueilSiteArgs,
    /// The counter's number.
    #[arg(long, env = "CONTACTHUB_COUNTER")]
    pub counter: u32,
}

#[derive(Debug, Args)]
pub struct AccueilTicketRefArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The ticket, as `ticket` and `call-next` print it (hdv-20261204-A042).
    pub ticket: String,
}

/// How a ticket ended at the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TicketOutcomeArg {
    /// Settled at the first contact.
    Settled,
    /// Sent to a service (--service).
    Transferred,
    /// Turned into a request (--request).
    Request,
    /// Called, never came.
    Absent,
}

#[derive(Debug, Args)]
pub struct AccueilCloseArgs {
    #[command(flatten)]
    pub ticket: AccueilTicketRefArgs,
    #[arg(long, value_enum)]
    pub outcome: TicketOutcomeArg,
    /// With --outcome transferred: the service's code (etat-civil, ccas…).
    #[arg(long, default_value = "")]
    pub service: String,
    /// With --outcome request: the request's reference.
    #[arg(long, default_value = "")]
    pub request: String,
}

#[derive(Debug, Args)]
pub struct AccueilReportArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// First day, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// Last day, YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// One site only (its code); calls and web contacts stay the commune's.
    #[arg(long, env = "CONTACTHUB_SITE", default_value = "")]
    pub site: String,
    /// As CSV for a French spreadsheet (`;`, decimal comma, UTF-8 with a BOM).
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Subcommand)]
pub enum AppointmentCommand {
    /// The free slots of a kind of appointment (or of a service's kind).
    Slots(AppointmentSlotsArgs),
    /// Books a slot for a person (at the counter, on the phone).
    Book(AppointmentBookArgs),
    /// Cancels an appointment.
    Cancel(AppointmentRefArgs),
    /// Moves an appointment to another free slot of its kind, in one step (the old one is
    /// kept when the new slot was taken meanwhile).
    Move(AppointmentMoveArgs),
    /// Records whether the person came, once the appointment has begun.
    Attendance(AppointmentAttendanceArgs),
    /// The appointments of a day, or of the seven days from it (`--week`).
    List(AppointmentDayArgs),
}

#[derive(Debug, Args)]
pub struct AppointmentMoveArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The appointment's id, as `book` and `list` print it.
    pub id: String,
    /// The new slot's start, Paris time: `07/12/2026 09:40`.
    #[arg(long)]
    pub at_time: String,
}

/// Whether the person came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Presence {
    Came,
    NoShow,
}

#[derive(Debug, Args)]
pub struct AppointmentAttendanceArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The appointment's id, as `list` prints it.
    pub id: String,
    #[arg(long, value_enum)]
    pub outcome: Presence,
}

#[derive(Debug, Args)]
pub struct AppointmentSlotsArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The kind's code (`passeport-cni`), or a service that has one (`etat-civil`).
    #[arg(long, env = "CONTACTHUB_SERVICE")]
    pub service: String,
    /// From this day (`2026-12-07` or `07/12/2026`); default: now.
    #[arg(long)]
    pub from: Option<String>,
    /// Days shown.
    #[arg(long, default_value_t = 14)]
    pub days: u32,
}

#[derive(Debug, Args)]
pub struct AppointmentBookArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    #[arg(long, env = "CONTACTHUB_SERVICE")]
    pub service: String,
    /// The person's record.
    #[arg(long)]
    pub citizen: String,
    /// The slot's start, Paris time: `07/12/2026 09:20` (as `slots` prints it).
    #[arg(long)]
    pub at_time: String,
}

#[derive(Debug, Args)]
pub struct AppointmentRefArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The appointment's id, as `book` and `list` print it.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct AppointmentDayArgs {
    #[command(flatten)]
    pub at: CourrierTenantArgs,
    /// The day (`2026-12-07` or `07/12/2026`).
    #[arg(long)]
    pub day: String,
    /// The seven days from `--day`.
    #[arg(long)]
    pub week: bool,
}
