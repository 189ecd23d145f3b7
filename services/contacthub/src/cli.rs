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
    Serve(ServeArgs),
    /// Runs the projector alone (a read model kept up to date from the log).
    Project(ProjectArgs),
    /// Rebuilds a read model from offset 0 into an empty folder and prints its digest.
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
    /// Kafka topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
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
    /// Kafka producer compression (none, gzip, snappy, lz4, zstd).
    #[arg(long, env = "CONTACTHUB_KAFKA_COMPRESSION", default_value = "lz4")]
    pub kafka_compression: String,
    /// Partitions of a new embedded log (an existing log keeps its own).
    #[arg(long, env = "CONTACTHUB_PARTITIONS", default_value_t = 12)]
    pub partitions: u32,
    /// Communes configuration (TOML); the six communes of the syndicate when absent.
    #[arg(long, env = "CONTACTHUB_COMMUNES")]
    pub communes: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub log: LogArgs,
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
    /// Agents file (TOML: id, token_sha256, tenants, ops). Without it the API is open to
    /// anyone who can reach it: keep it on 127.0.0.1 then.
    #[arg(long, env = "CONTACTHUB_AGENTS")]
    pub agents: Option<PathBuf>,
    /// Seconds a write waits to become visible before the call fails.
    #[arg(long, env = "CONTACTHUB_VISIBILITY_TIMEOUT", default_value_t = 10)]
    pub visibility_timeout: u64,
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
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The embedded log's data folder (--data) and the target cluster (--kafka, required).
    #[command(flatten)]
    pub log: LogArgs,
    /// Append even when the target topic already holds events.
    #[arg(long)]
    pub allow_non_empty: bool,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// Read-model folder (e.g. ./data/read-model).
    #[arg(long, env = "CONTACTHUB_READ_MODEL")]
    pub read_model: PathBuf,
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
    #[arg(long, env = "CONTACTHUB_TOPIC", default_value = "contacthub.events.v1")]
    pub topic: String,
    #[arg(
        long,
        env = "CONTACTHUB_DEAD_LETTER_TOPIC",
        default_value = "contacthub.dead-letters.v1"
    )]
    pub dead_letter_topic: String,
    /// Partitions of the event topic.
    #[arg(long, env = "CONTACTHUB_PARTITIONS", default_value_t = 12)]
    pub partitions: u32,
    /// Replication factor (3 in production).
    #[arg(long, env = "CONTACTHUB_REPLICATION", default_value_t = 1)]
    pub replication: i32,
}
