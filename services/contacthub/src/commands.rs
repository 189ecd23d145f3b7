//! What each command does. IO lives here; everything else is in the library crates.

use crate::cli::*;
use anyhow::{bail, Context, Result};
use contacthub_core::{render, tenant::Tenants};
use contacthub_log::keyring::{FileKeyring, MasterKey, SharedKeyring};
use contacthub_log::{embedded::EmbeddedLog, kafka, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_proto::v1::{
    self as pb, desk_service_client::DeskServiceClient, ops_service_client::OpsServiceClient,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(cli: Cli) -> Result<()> {
    let log_format = cli.log_format;
    match cli.command {
        Command::Serve(a) => serve(*a, log_format).await,
        Command::Project(a) => project(a).await,
        Command::Replay(a) => replay(a).await,
        Command::Digest(a) => digest(a).await,
        Command::Migrate(a) => migrate(a).await,
        Command::Courrier { command } => crate::courrier::run(command).await,
        Command::Citizen { command } => crate::citizen::run(command).await,
        Command::Request { command } => crate::request::run(command).await,
        Command::Dashboard(a) => crate::request::dashboard(a).await,
        Command::Accueil { command } => crate::accueil::run(command).await,
        Command::Appointment { command } => crate::appointment::run(command).await,
        Command::Answer { command } => crate::answer::run(command).await,
        Command::Outbound { command } => crate::answer::outbound(command).await,
        Command::Timeline(a) => timeline(a).await,
        Command::Status(a) => status(a).await,
        Command::DeadLetters(a) => dead_letters(a).await,
        Command::Ingest { command } => ingest(command).await,
        Command::Quarantine { command } => quarantine(command),
        Command::Audit(a) => crate::audit::run(a).await,
        Command::Retention(a) => crate::audit::retention(a).await,
        Command::PhoneReport(a) => phone_report(a).await,
        Command::Topics {
            command: TopicsCommand::Init(a),
        } => {
            let mut cfg = kafka::KafkaConfig::new(&a.kafka);
            if let Some(path) = &a.kafka_config {
                cfg.properties = kafka::read_properties(path)?;
            }
            cfg.topic = a.topic;
            cfg.dead_letter_topic = a.dead_letter_topic;
            cfg.keys_topic = a.keys_topic;
            let created = kafka::create_topics(&cfg, a.partitions, a.replication).await?;
            if created.is_empty() {
                crate::say!(
                    "topics {}, {} and {} already exist",
                    cfg.topic,
                    cfg.dead_letter_topic,
                    cfg.keys_topic
                );
            } else {
                crate::say!("created {}", created.join(", "));
            }
            Ok(())
        }
    }
}

fn tenants(args: &LogArgs) -> Result<Arc<Tenants>> {
    Ok(Arc::new(match &args.communes {
        None => Tenants::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut tenants =
                Tenants::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
            // Logos are named relative to the communes file.
            let logos: Vec<(String, String)> = tenants
                .iter()
                .filter_map(|t| t.logo_file.clone().map(|f| (t.code.clone(), f)))
                .collect();
            let base = path.parent().unwrap_or(std::path::Path::new("."));
            for (code, file) in logos {
                let logo = base.join(&file);
                let bytes = std::fs::read(&logo).with_context(|| {
                    format!("reading the logo of commune {code}: {}", logo.display())
                })?;
                tenants
                    .set_logo(&code, bytes, contacthub_documents::check_logo)
                    .with_context(|| format!("in {}", path.display()))?;
            }
            tenants
        }
    }))
}

/// The Kafka settings of `args` (which give `--kafka`).
fn kafka_config(args: &LogArgs) -> Result<kafka::KafkaConfig> {
    let mut cfg = kafka::KafkaConfig::new(args.kafka.clone().unwrap_or_default());
    cfg.topic = args.topic.clone();
    cfg.dead_letter_topic = args.dead_letter_topic.clone();
    cfg.keys_topic = args.keys_topic.clone();
    cfg.compression = args.kafka_compression.clone();
    if let Some(path) = &args.kafka_config {
        cfg.properties = kafka::read_properties(path)?;
    }
    Ok(cfg)
}

/// Opens the configured log: Kafka when an address is given, else the embedded log.
pub async fn open_log(args: &LogArgs) -> Result<Arc<dyn EventLog>> {
    if args.kafka.is_some() {
        let log = kafka::KafkaLog::connect(kafka_config(args)?).await?;
        tracing::info!(topic = %log.name(), partitions = log.partitions(), "connected to kafka");
        Ok(Arc::new(log))
    } else {
        let dir = args.data.join("log");
        let log = EmbeddedLog::open(&dir, args.partitions)
            .with_context(|| format!("opening the embedded log in {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), partitions = log.partitions(), "embedded log open");
        Ok(Arc::new(log))
    }
}

/// Opens where the documents are kept: the object storage of `--content-url`, else
/// `DATA/content` (a warning on Kafka: the other hubs of the cluster cannot read it).
pub async fn open_content(
    content: &ContentArgs,
    log: &LogArgs,
) -> Result<contacthub_app::content::ContentStore> {
    use contacthub_app::content::ContentStore;
    let dir = log.data.join("content");
    match &content.content_url {
        Some(url) => {
            let ca_pem = match &content.content_ca {
                Some(path) => Some(std::fs::read(path).with_context(|| {
                    format!("reading the object storage's authority {}", path.display())
                })?),
                None => None,
            };
            let transport = contacthub_app::content::Transport {
                endpoint: content.content_endpoint.clone(),
                allow_http: content.content_allow_http,
                ca_pem,
            };
            let store = ContentStore::s3(&dir, url, &transport)
                .await
                .with_context(|| format!("opening the content store {url}"))?;
            tracing::info!(store = %store.describe(), "documents in object storage");
            Ok(store)
        }
        None => {
            if log.kafka.is_some() {
                tracing::warn!(
                    folder = %dir.display(),
                    "documents are kept on this hub's disk: the other hubs of the cluster answer 404 for them; give --content-url s3://… (docs/operations.md)"
                );
            }
            ContentStore::open(&dir)
                .with_context(|| format!("opening the content store in {}", dir.display()))
        }
    }
}

/// The master key: `--master-key-file`, else `$CONTACTHUB_MASTER_KEY`, else the default file
/// in the user's configuration folder, made on first use.
pub fn master_key(args: &LogArgs) -> Result<MasterKey> {
    if let Some(path) = &args.master_key_file {
        return Ok(MasterKey::load(path, &args.data)?);
    }
    if let Ok(hex) = std::env::var("CONTACTHUB_MASTER_KEY") {
        return MasterKey::parse(&hex).context("in $CONTACTHUB_MASTER_KEY");
    }
    let home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("no --master-key-file, no $CONTACTHUB_MASTER_KEY and no $HOME to keep one in")?;
    let path = home.join("contacthub").join("master.key");
    if path.exists() {
        return Ok(MasterKey::load(&path, &args.data)?);
    }
    let key = MasterKey::create_or_load(&path, &args.data)?;
    tracing::warn!(path = %path.display(), "master key made: keep a copy of it away from the data folder (without it, nothing personal can be read again)");
    Ok(key)
}

/// The keyring of the log `args` opens: `DATA/keyring` beside the embedded log; on Kafka, the
/// keys topic every hub of the cluster shares.
pub async fn open_keyring(args: &LogArgs) -> Result<SharedKeyring> {
    let master = master_key(args)?;
    let dir = args.data.join("keyring");
    if args.kafka.is_some() {
        let cfg = kafka_config(args)?;
        let hub = hub_id(&dir)?;
        let ring = contacthub_log::kafka_keyring::KafkaKeyring::open(&cfg, master, &hub)
            .await
            .with_context(|| format!("opening the keyring on the topic {}", cfg.keys_topic))?;
        return Ok(Arc::new(ring));
    }
    let ring = FileKeyring::open(&dir, master)
        .with_context(|| format!("opening the keyring in {}", dir.display()))?;
    Ok(Arc::new(ring))
}

/// This hub's name among the hubs of a cluster (the suffix of the keys it makes), kept in
/// `DATA/keyring/hub` so a restart reuses it.
fn hub_id(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("hub");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_string());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let id = format!("{:016x}", rand::random::<u64>());
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// Resolves on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // Registered now, not when first polled: a SIGTERM that comes right after the hub said
    // where it listens stops it gracefully instead of killing it.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    }
}

/// Whether an address only this machine can reach.
fn loopback_only(addr: std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}

async fn serve(a: ServeArgs, log_format: LogFormat) -> Result<()> {
    let tenants = tenants(&a.log)?;
    std::fs::create_dir_all(&a.log.data)
        .with_context(|| format!("creating {}", a.log.data.display()))?;
    let adapters_cfg = match &a.adapters {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            contacthub_adapters::config::AdaptersConfig::from_toml(&text, &tenants)
                .with_context(|| format!("in {}", path.display()))?
        }
        None => Default::default(),
    };
    let access = match &a.agents {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            contacthub_app::auth::Access::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("invalid agents file {}: {e}", path.display()))?
        }
        None => contacthub_app::auth::Access::Open,
    };
    let access = match a.oidc_client_secret.clone() {
        Some(secret) => access.with_oidc_secret(secret),
        None => access,
    };
    if let Some(p) = access.oidc() {
        // Fetched now to say at once when the provider cannot be reached; fetched again on
        // demand when it could not.
        if let Err(e) = p.refresh(None).await {
            tracing::warn!(error = %e, "the identity provider did not answer at start: agents cannot sign in with it until it does");
        }
    }
    // Without credentials, everything is open to whoever can connect: loopback only, unless
    // the operator says otherwise in so many words.
    if access.is_open() && !loopback_only(a.listen) && !a.insecure_open {
        bail!(
            "refusing to serve the gRPC API on {} without an agents file: anyone on the network could read every citizen. Give --agents FILE, listen on 127.0.0.1, or pass --insecure-open",
            a.listen
        );
    }
    if access.is_open() && !loopback_only(a.web_listen) && !a.insecure_open {
        bail!(
            "refusing to serve the web desk on {} without an agents file: anyone on the network could read every citizen. Give --agents FILE, listen on 127.0.0.1, or pass --insecure-open",
            a.web_listen
        );
    }
    if access.is_open() && !loopback_only(a.portal_listen) && !a.insecure_open {
        bail!(
            "refusing to serve the citizens' space on {} without an agents file (a trial hub): give --agents FILE, listen on 127.0.0.1, or pass --insecure-open",
            a.portal_listen
        );
    }
    if !adapters_cfg.has_credentials() && !loopback_only(a.adapters_listen) && !a.insecure_open {
        bail!(
            "refusing to serve the adapter endpoints on {} without credentials in an adapters file: anyone on the network could write contacts. Give --adapters FILE with credentials, listen on 127.0.0.1, or pass --insecure-open",
            a.adapters_listen
        );
    }
    if access.is_open() {
        tracing::warn!("no agents file: the API is open to anyone who can reach it");
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(contacthub_tls::Tls::load(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let log = open_log(&a.log).await?;
    let keys = open_keyring(&a.log).await?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding the gRPC API to {}", a.listen))?;
    let adapters_listener = tokio::net::TcpListener::bind(a.adapters_listen)
        .await
        .with_context(|| format!("binding the adapter endpoints to {}", a.adapters_listen))?;
    let adapters_addr = adapters_listener.local_addr()?;
    let web_listener = tokio::net::TcpListener::bind(a.web_listen)
        .await
        .with_context(|| format!("binding the web desk to {}", a.web_listen))?;
    let web_addr = web_listener.local_addr()?;
    let portal_listener = tokio::net::TcpListener::bind(a.portal_listen)
        .await
        .with_context(|| format!("binding the citizens' space to {}", a.portal_listen))?;
    let portal_addr = portal_listener.local_addr()?;
    // The demo's people sign in to their space with the demo's FranceConnect, served beside
    // it: only with --demo, on a trial hub (no agents file) whose space is this machine's,
    // and whose log is the demo's — anyone may sign in as anyone with it.
    let demo_portal = match a.demo && portal_addr.ip().is_loopback() && access.is_open() {
        true if crate::demo::is_demo_log(&a.log.data, log.as_ref()).await? => {
            Some(format!("{scheme}://{portal_addr}"))
        }
        true => {
            tracing::warn!("the log holds events the demo did not write: the demo's FranceConnect is not served");
            None
        }
        false => {
            if a.demo {
                tracing::warn!("the demo's FranceConnect is served only on a trial hub (no agents file) on 127.0.0.1");
            }
            None
        }
    };
    let tenants = match &demo_portal {
        Some(portal) => Arc::new(crate::demo_issuer::configure(&tenants, portal)),
        None => tenants,
    };
    let metrics_listener = tokio::net::TcpListener::bind(a.metrics_listen)
        .await
        .with_context(|| format!("binding the metrics endpoint to {}", a.metrics_listen))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let mut server = crate::server::Server::start(
        crate::server::ServerConfig {
            data: a.log.data.clone(),
            tenants,
            access,
            visibility_timeout: Duration::from_secs(a.visibility_timeout),
            max_scan_bytes: a.max_scan_mb * 1024 * 1024,
            scan_inbox: a
                .scan_inbox
                .clone()
                .unwrap_or_else(|| a.log.data.join("scan-inbox")),
            poll: Duration::from_secs(1),
            clock: contacthub_app::system_clock(),
            read_trail: true,
            keys,
            tls,
            proxies: contacthub_app::source::Proxies::parse(&a.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?,
            trail_hub: match &a.log.kafka {
                Some(_) => Some(hub_id(&a.log.data.join("keyring"))?),
                None => None,
            },
            content: {
                let content = open_content(&a.content, &a.log).await?;
                // This hub's own unfinished uploads (tmp/ is per hub, and the data folder is
                // locked to this process): a killed process left them, nothing writes them.
                let swept = content.sweep_uploads(std::time::SystemTime::now());
                if swept > 0 {
                    tracing::info!(
                        uploads = swept,
                        "unfinished uploads of a previous run deleted"
                    );
                }
                content
            },
        },
        log,
        listener,
    )
    .await?;
    if a.outbound == Outbound::Send {
        server.start_sender(&adapters_cfg)?;
        server.start_retention();
    }
    server.start_adapters(
        adapters_cfg,
        a.log.data.clone(),
        adapters_listener,
        (a.adapters_max_body_mb * 1024 * 1024) as usize,
        Duration::from_secs(1),
    );
    server.start_web(web_listener);
    let beside = match &demo_portal {
        Some(portal) => Some(crate::demo_issuer::router(
            portal,
            server.app.tenants().clone(),
            crate::demo::franceconnect_people(server.app.clone()),
        )?),
        None => None,
    };
    server.start_portal(portal_listener, beside);
    server.start_metrics(metrics_listener)?;
    if a.demo {
        crate::demo::load_demo(&server.app, a.demo_seed, a.demo_people).await?;
    }
    let shutdown = shutdown_signal();
    // Where to reach the server, for scripts and tests; a closed stdout must not stop it.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let lines = [
            (
                "contacthub",
                match scheme {
                    "https" => format!("https://{}", server.grpc_addr),
                    _ => server.grpc_addr.to_string(),
                },
            ),
            (
                "adapter endpoints",
                match scheme {
                    "https" => format!("https://{adapters_addr}"),
                    _ => adapters_addr.to_string(),
                },
            ),
            ("web desk", format!("{scheme}://{web_addr}/")),
            ("citizens' space", format!("{scheme}://{portal_addr}/")),
            ("metrics", format!("{scheme}://{metrics_addr}/metrics")),
        ];
        for (part, at) in lines {
            let _ = match log_format {
                LogFormat::Human => writeln!(out, "{part} listening on {at}"),
                // Every line JSON, like the logs.
                LogFormat::Json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"message": "listening", "part": part, "addr": at})
                ),
            };
        }
        let _ = out.flush();
    }
    let failure = tokio::select! {
        _ = shutdown => None,
        f = server.failed() => Some(f),
    };
    match failure {
        None => server.stop().await,
        Some((part, why)) => {
            tracing::error!(part = %part, reason = %why, "a part of the hub stopped: shutting down");
            server.app.faults().set(&part, why.clone());
            let _ = server.stop().await;
            bail!("{part} stopped: {why}")
        }
    }
}

async fn project(a: ProjectArgs) -> Result<()> {
    let tenants = tenants(&a.log)?;
    let log = open_log(&a.log).await?;
    let keys = open_keyring(&a.log).await?;
    // A read model sled cannot open (a crash at the wrong instant) is rebuilt, as `serve` does.
    let dir = a.log.data.join("read-model");
    let store = crate::server::open_read_model(&dir, &log, &tenants, &keys).await?;
    let (projector, _handle) = Projector::new(store, log, tenants, keys)?;
    let projector = projector.with_batch_size(a.batch_size);
    if a.exit_when_caught_up {
        let n = projector.catch_up().await?;
        crate::say!("applied {n} records");
        return Ok(());
    }
    projector.run(shutdown_signal()).await?;
    Ok(())
}

async fn replay(a: ReplayArgs) -> Result<()> {
    if a.into.exists() && std::fs::read_dir(&a.into)?.next().is_some() {
        bail!(
            "{} is not empty: replay builds a new read model in an empty folder",
            a.into.display()
        );
    }
    let tenants = tenants(&a.log)?;
    // The embedded log is read as it stands now, even while a hub serves it (blue/green).
    let log: Arc<dyn EventLog> = match &a.log.kafka {
        Some(_) => open_log(&a.log).await?,
        None => {
            let dir = a.log.data.join("log");
            Arc::new(
                EmbeddedLog::open_snapshot(&dir)
                    .with_context(|| format!("reading the embedded log in {}", dir.display()))?,
            )
        }
    };
    let ends = log.end_offsets().await?;
    let keys = open_keyring(&a.log).await?;
    let store = Store::open_with_cache(&a.into, a.cache_mb << 20)?;
    let folded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let progress = tokio::spawn(replay_progress(folded.clone(), ends, done_rx));
    let budget = a.memory_mb.saturating_mul(1 << 20) as usize;
    let n = contacthub_projector::replay::replay(
        &store,
        log.as_ref(),
        &tenants,
        &keys,
        budget,
        &folded,
    )
    .await;
    let _ = done_tx.send(true);
    let _ = progress.await;
    let n = n?.records;
    crate::say!("replayed {n} records into {}", a.into.display());
    crate::say!("digest {}", store.digest()?);
    Ok(())
}

/// Shows how far a replay is, on standard error: a progress bar with events/s and the time
/// left on a terminal, a line every ten seconds otherwise (logs, CI).
async fn replay_progress(
    folded: Arc<std::sync::atomic::AtomicU64>,
    ends: Vec<u64>,
    mut done: tokio::sync::watch::Receiver<bool>,
) {
    use std::io::IsTerminal;
    let total: u64 = ends.iter().sum();
    let position = || folded.load(std::sync::atomic::Ordering::Relaxed).min(total);
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} events  {per_sec}  reste {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = std::time::Instant::now();
    let every = if terminal {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(10)
    };
    loop {
        let stop = tokio::time::timeout(every, done.wait_for(|d| *d))
            .await
            .is_ok();
        let at = position();
        match &bar {
            Some(bar) => bar.set_position(at),
            None if !stop => {
                let rate = at as f64 / started.elapsed().as_secs_f64().max(0.001);
                let left = (total.saturating_sub(at)) as f64 / rate.max(1.0);
                eprintln!(
                    "replayed {at} of {total} events ({rate:.0} events/s, about {left:.0} s left)"
                );
            }
            None => {}
        }
        if stop {
            if let Some(bar) = bar {
                bar.finish();
            }
            return;
        }
    }
}

async fn migrate(a: MigrateArgs) -> Result<()> {
    let Some(brokers) = a.log.kafka.clone() else {
        bail!("migrate needs the target cluster: --kafka host:port");
    };
    let dir = a.log.data.join("log");
    if !dir.join("log.meta").exists() {
        bail!("no embedded log in {}", dir.display());
    }
    let from = EmbeddedLog::open(&dir, a.log.partitions)?;
    let to = open_log(&a.log).await?;
    if from.partitions() != to.partitions() {
        tracing::warn!(
            embedded = from.partitions(),
            kafka = to.partitions(),
            "partition counts differ: communes keep their order but land on other partitions, so the replayed read model's positions differ"
        );
    }
    // The keys first: a hub on Kafka must open every event it reads.
    let master = master_key(&a.log)?;
    let keys_dir = a.log.data.join("keyring");
    let embedded_keys = FileKeyring::open(&keys_dir, master.clone())
        .with_context(|| format!("opening the keyring in {}", keys_dir.display()))?;
    let cfg = kafka_config(&a.log)?;
    let shared =
        contacthub_log::kafka_keyring::KafkaKeyring::open(&cfg, master, &hub_id(&keys_dir)?)
            .await
            .with_context(|| format!("opening the keyring on the topic {}", cfg.keys_topic))?;
    let keys = shared.import(&embedded_keys.entries()).await?;
    crate::say!("copied {keys} keys to {brokers}/{}", cfg.keys_topic);
    let done = contacthub_log::copy_log(&from, to.as_ref(), 1000).await?;
    if done.already > 0 {
        crate::say!(
            "{} events were already in {}/{} from an earlier copy: went on after them",
            done.already,
            brokers,
            to.name()
        );
    }
    crate::say!(
        "copied {} events from {} to {brokers}/{}, read back and checked",
        done.copied,
        dir.display(),
        to.name()
    );
    let local = a.log.data.join("content");
    if a.content.content_url.is_some() {
        let from = contacthub_app::content::ContentStore::open(&local)
            .with_context(|| format!("opening the content store in {}", local.display()))?;
        let to = open_content(&a.content, &a.log).await?;
        let (copied, already) = from.copy_into(&to).await?;
        crate::say!(
            "copied {copied} documents from {} to {} (already there: {already})",
            local.display(),
            to.describe()
        );
    } else {
        crate::say!(
            "documents (scans, attachments, letters) stay in {}: give --content-url s3://… to copy them to the object storage the hubs share (docs/operations.md)",
            local.display()
        );
    }
    Ok(())
}

pub(crate) async fn connect(c: &ClientArgs) -> Result<tonic::transport::Channel> {
    let address = server_url(&c.server);
    let endpoint = tonic::transport::Endpoint::from_shared(address.clone()).map_err(|_| {
        anyhow::anyhow!(
            "{:?} is not a hub address: give host:port, e.g. --server 127.0.0.1:50051 (or CONTACTHUB_SERVER)",
            c.server
        )
    })?;
    let endpoint = if address.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(path) = &c.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the authority {}", path.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint
            .tls_config(tls)
            .context("the TLS settings of the hub's address")?
    } else {
        endpoint
    };
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no contacthub answers at {address}: is the hub running (contacthub serve)? Otherwise give its address with --server host:port or CONTACTHUB_SERVER"
            )
        })
}

/// A hub's address as given (`127.0.0.1:50051`, `hub.example:50051`, `http://…`), with the
/// scheme gRPC needs.
pub(crate) fn server_url(given: &str) -> String {
    let given = given.trim();
    if given.contains("://") {
        given.to_string()
    } else {
        format!("http://{given}")
    }
}

/// A server's refusal, as the message it gave.
pub(crate) fn status_err(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

/// A time for people: Paris local time (empty when unset).
pub(crate) fn when(t: &Option<contacthub_proto::Timestamp>) -> String {
    t.as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .map(contacthub_core::courrier::paris_display)
        .unwrap_or_default()
}

/// A request carrying the agent's token, if any, and saying it comes from the command line
/// (the hub's read trail records the front-end).
pub(crate) fn authed<T>(c: &ClientArgs, msg: T) -> Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "x-contacthub-client",
        tonic::metadata::MetadataValue::from_static("cli"),
    );
    if let Some(t) = &c.token {
        let value = format!("Bearer {t}")
            .parse()
            .context("the token has characters a header cannot carry")?;
        req.metadata_mut().insert("authorization", value);
    }
    Ok(req)
}

pub(crate) fn parse_channel(s: &str) -> Result<i32> {
    let c = match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "phone" | "telephone" => pb::Channel::Phone,
        "courrier" | "mail" => pb::Channel::Courrier,
        "web-form" | "web" | "form" => pb::Channel::WebForm,
        "sms" => pb::Channel::Sms,
        "email" | "courriel" => pb::Channel::Email,
        "desk" | "accueil" => pb::Channel::Desk,
        "back-office" => pb::Channel::BackOffice,
        other => bail!(
            "unknown channel {other:?} (phone, courrier, web-form, sms, email, desk, back-office)"
        ),
    };
    Ok(c as i32)
}

async fn timeline(a: TimelineArgs) -> Result<()> {
    use pb::citizen_ref::By;
    let by = match (a.citizen, a.phone, a.email) {
        (Some(c), _, _) => By::CitizenId(c),
        (_, Some(p), _) => By::Phone(p),
        (_, _, Some(m)) => By::Email(m),
        _ => bail!("say who: --citizen ID, --phone NUMBER or --email ADDRESS"),
    };
    let channels = a
        .channel
        .iter()
        .map(|c| parse_channel(c))
        .collect::<Result<Vec<_>>>()?;
    let mut client = DeskServiceClient::new(connect(&a.client).await?);
    let resp = client
        .get_timeline(authed(
            &a.client,
            pb::GetTimelineRequest {
                tenant: a.tenant,
                citizen: Some(pb::CitizenRef { by: Some(by) }),
                page_size: a.limit,
                channels,
                ..Default::default()
            },
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    crate::say_raw!(
        "{}",
        render::render_timeline(resp.citizen.as_ref(), &resp.entries)
    );
    if !resp.next_page_token.is_empty() {
        crate::say!("  … plus anciens contacts : --limit {}", a.limit * 2);
    }
    Ok(())
}

/// The digest of a read model: read from its folder, or, while a hub serves it (sled lets one
/// process open it), asked of that hub.
async fn digest(a: DigestArgs) -> Result<()> {
    if !a.read_model.exists() {
        bail!("no read model in {}", a.read_model.display());
    }
    match Store::open(&a.read_model) {
        Ok(store) => {
            crate::say!("{}", store.digest()?);
            Ok(())
        }
        Err(local) => {
            let mut client = OpsServiceClient::new(connect(&a.client).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read {} ({local}) and {}",
                    a.read_model.display(),
                    crate::one_line(&e)
                )
            })?);
            let d = client
                .get_digest(authed(&a.client, pb::GetDigestRequest {})?)
                .await
                .map_err(status_err)?
                .into_inner();
            crate::say!("{}", d.digest);
            Ok(())
        }
    }
}

async fn status(a: ClientArgs) -> Result<()> {
    let mut client = OpsServiceClient::new(connect(&a).await?);
    let s = client
        .get_status(authed(&a, pb::GetStatusRequest {})?)
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    crate::say!("backend   {} ({})", s.backend, s.topic);
    if !s.log_error.is_empty() {
        crate::say!("LOG UNAVAILABLE: {}", s.log_error);
    }
    crate::say!(
        "applied   {} events, {} dead letters",
        s.events_applied,
        s.dead_letters
    );
    crate::say!(
        "{:>9} {:>14} {:>14} {:>8}",
        "partition",
        "log end",
        "projected",
        "lag"
    );
    let mut lag = 0;
    for p in &s.partitions {
        crate::say!(
            "{:>9} {:>14} {:>14} {:>8}",
            p.partition,
            p.log_end_offset,
            p.projected_offset,
            p.lag
        );
        lag += p.lag;
    }
    crate::say!("total lag {lag}");
    if !s.projector_error.is_empty() {
        crate::say!("PROJECTOR FAILING: {}", s.projector_error);
    }
    crate::say!("open watch streams {}", s.open_watches);
    if !s.connectors.is_empty() {
        crate::say!(
            "{:<10} {:<7} {:>9} {:>8} {:>16}  last error",
            "connector",
            "commune",
            "accepted",
            "refused",
            "last success"
        );
    }
    let when = |t: &Option<contacthub_proto::Timestamp>| {
        t.as_ref()
            .and_then(contacthub_proto::ts::to_micros)
            .map(|us| {
                contacthub_core::courrier::paris(us)
                    .format("%d/%m/%Y %H:%M")
                    .to_string()
            })
    };
    for c in &s.connectors {
        crate::say!(
            "{:<10} {:<7} {:>9} {:>8} {:>16}  {}",
            c.connector,
            c.tenant,
            c.accepted,
            c.refused,
            when(&c.last_success).unwrap_or_else(|| "never".into()),
            match when(&c.last_error) {
                Some(at) => format!("{at}: {}", c.last_error_reason),
                None => "-".into(),
            }
        );
    }
    Ok(())
}

async fn dead_letters(a: DeadLettersArgs) -> Result<()> {
    let mut client = OpsServiceClient::new(connect(&a.client).await?);
    let r = client
        .list_dead_letters(authed(
            &a.client,
            pb::ListDeadLettersRequest { limit: a.limit },
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    if r.dead_letters.is_empty() {
        crate::say!("aucun événement en lettre morte");
    }
    for d in r.dead_letters {
        crate::say!(
            "{}@{}  {} bytes  {}",
            d.partition,
            d.offset,
            d.raw.len(),
            d.reason
        );
    }
    Ok(())
}

async fn ingest(c: IngestCommand) -> Result<()> {
    let (a, path, content_type) = match &c {
        IngestCommand::Phone(a) => (a, "phone/cdr", "text/csv; charset=utf-8"),
        IngestCommand::Email(a) => (a, "email", "message/rfc822"),
    };
    let base = a.url.trim_end_matches('/');
    let url = match &a.tenant {
        Some(t) => format!("{base}/v1/{t}/{path}"),
        None => format!("{base}/v1/{path}"),
    };
    let client = reqwest::Client::new();
    let mut failed = 0;
    let mut quarantined = 0;
    for file in &a.files {
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let mut req = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(
                "x-contacthub-origin",
                file.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
            .body(body);
        if let Some(t) = &a.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("sending {} to {url}", file.display()))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let summary: Option<contacthub_adapters::ingest::Summary> =
            serde_json::from_str(&text).ok();
        match summary {
            Some(s) => {
                crate::say!(
                    "{}: {} accepted, {} already known, {} ignored, {} quarantined",
                    file.display(),
                    s.accepted,
                    s.duplicates,
                    s.ignored,
                    s.quarantined.len()
                );
                for q in &s.quarantined {
                    let at = if q.locator.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", q.locator)
                    };
                    crate::say!("  {at}{} (quarantine {})", q.reason, q.quarantine_id);
                }
                if !status.is_success() {
                    failed += 1;
                }
                quarantined += s.quarantined.len();
            }
            None => {
                crate::say!("{}: refused ({status}): {}", file.display(), text.trim());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files were refused", a.files.len());
    }
    if quarantined > 0 {
        return Err(crate::Quarantined(quarantined).into());
    }
    Ok(())
}

fn quarantine(c: QuarantineCommand) -> Result<()> {
    use contacthub_adapters::quarantine::Quarantine;
    match c {
        QuarantineCommand::List(a) => {
            let dir = contacthub_adapters::quarantine_dir(&a.data);
            if !a.data.is_dir() {
                bail!(
                    "no data folder {}: give the hub's with --data (or CONTACTHUB_DATA)",
                    a.data.display()
                );
            }
            if !dir.is_dir() {
                crate::say!("quarantine is empty");
                return Ok(());
            }
            let q = Quarantine::open(dir)?;
            let entries = q.list(a.adapter.as_deref(), a.tenant.as_deref())?;
            if entries.is_empty() {
                crate::say!("quarantine is empty");
            }
            for e in &entries {
                let at = if e.locator.is_empty() {
                    String::new()
                } else {
                    format!(" {}", e.locator)
                };
                crate::say!(
                    "{}  {}  {:<12}  {:<5}  {}{at}: {} ({} bytes)",
                    e.id,
                    e.received_at,
                    e.adapter,
                    e.tenant.as_deref().unwrap_or("?"),
                    e.origin,
                    e.reason,
                    e.size_bytes
                );
            }
            Ok(())
        }
        QuarantineCommand::Show(a) => {
            let dir = contacthub_adapters::quarantine_dir(&a.data);
            if !dir.is_dir() {
                bail!("no quarantine in {}", dir.display());
            }
            let q = Quarantine::open(dir)?;
            let Some((_, raw)) = q.raw(&a.id)? else {
                bail!("no quarantine entry {:?}", a.id);
            };
            use std::io::Write;
            std::io::stdout().write_all(&raw)?;
            Ok(())
        }
    }
}

async fn phone_report(a: CourrierTenantArgs) -> Result<()> {
    let mut ops = OpsServiceClient::new(connect(&a.client).await?);
    let r = ops
        .get_phone_report(authed(
            &a.client,
            pb::GetPhoneReportRequest {
                tenant: a.tenant.clone(),
            },
        )?)
        .await?
        .into_inner();
    crate::say!("commune {}", r.tenant);
    crate::say!(
        "{:<8}  {:>8}  {:>7}  {:>9}  {:>8}  {:>11}",
        "mois",
        "reçus",
        "manqués",
        "émis",
        "renvoyés",
        "% renvoyés"
    );
    let row = |label: &str, f: &pb::PhoneFigures| -> Result<()> {
        crate::say!(
            "{label:<8}  {:>8}  {:>7}  {:>9}  {:>8}  {:>11}",
            f.inbound_calls,
            f.missed_calls,
            f.outbound_calls,
            f.bounced_calls,
            contacthub_core::render::percent_fr(f.bounce_rate_percent)
        );
        Ok(())
    };
    for m in &r.months {
        row(&m.month, m.figures.as_ref().unwrap_or(&Default::default()))?;
    }
    row("total", r.total.as_ref().unwrap_or(&Default::default()))?;
    Ok(())
}
