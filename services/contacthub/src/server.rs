//! The hub as one running server: read model, projector, gRPC API, scan inbox, channel
//! adapters and web desk over a given log, wired once here for `contacthub serve` and for the
//! tests.
//!
//! Every part runs as a supervised task: when one ends before shutdown (an error, or a task
//! that should have run until shutdown), [`Server::failed`] says which and why; the caller
//! then reports it (health turns NOT_SERVING) and stops the rest with [`Server::stop`]
//! (`serve` exits non-zero, so a supervisor restarts it).

use anyhow::{Context, Result};
use contacthub_adapters::config::AdaptersConfig;
use contacthub_app::auth::Access;
use contacthub_app::{App, Clock};
use contacthub_core::tenant::Tenants;
use contacthub_log::keyring::SharedKeyring;
use contacthub_log::EventLog;
use contacthub_projector::{Projector, ProjectorHandle, Store};
use contacthub_tls::{Listener, Tls};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long [`Server::stop`] waits for the parts to finish before abandoning them.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a stored document may wait for the event naming it before collection takes it.
const DOCUMENT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What a server needs besides its log and listeners.
pub struct ServerConfig {
    /// Data folder: `read-model/`, `content/`, `quarantine/`, default drop folders.
    pub data: PathBuf,
    pub tenants: Arc<Tenants>,
    pub access: Access,
    /// How long a write waits to become visible before failing.
    pub visibility_timeout: Duration,
    /// Largest scan accepted, in bytes.
    pub max_scan_bytes: u64,
    /// The scanner drop folder.
    pub scan_inbox: PathBuf,
    /// How often watched folders are listed.
    pub poll: Duration,
    pub clock: Clock,
    /// Keep the read trail (`DATA/audit/`); off only to measure what it costs.
    pub read_trail: bool,
    /// The data subjects' keys (`open_keyring`).
    pub keys: SharedKeyring,
    /// TLS on every port (gRPC, adapters, desk, metrics), when a certificate is given.
    pub tls: Option<Tls>,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub proxies: contacthub_app::source::Proxies,
    /// This hub's name in its cluster: its read trail is shared through the log (Kafka).
    pub trail_hub: Option<String>,
    /// Where documents are kept: `DATA/content`, or the object storage the cluster shares.
    pub content: contacthub_app::content::ContentStore,
}

/// A running hub.
pub struct Server {
    pub app: App,
    /// The read model and the projector's signals, for what the process does besides the
    /// application layer (metrics) and for white-box tests; front-ends use `app`.
    pub store: Store,
    pub projector: ProjectorHandle,
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    tls: Option<Tls>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<(&'static str, Result<(), String>)>,
}

/// The read model in `dir`, first rebuilt from the log (into a new folder, then switched)
/// when it cannot be used as it is: sled cannot open it, or another format of the fold wrote
/// it. A folder that takes no writes (a full or read-only disk) is an error before sled
/// touches anything, so such a start leaves the read model as it was.
pub async fn open_read_model(
    dir: &std::path::Path,
    log: &Arc<dyn EventLog>,
    tenants: &Arc<Tenants>,
    keys: &SharedKeyring,
) -> Result<Store> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the read-model folder {}", dir.display()))?;
    Store::check_writable(dir).with_context(|| {
        format!(
            "the read model in {} was not opened (left as it was): free space or make the folder writable, then start again",
            dir.display()
        )
    })?;
    let why = match Store::open(dir) {
        Ok(store) => match store.format() {
            Ok(_) if store.unfinished_replay().unwrap_or(true) => {
                "a replay began writing it and did not finish".to_string()
            }
            Ok(f) if f == contacthub_core::keys::FORMAT => return Ok(store),
            Ok(f) => format!(
                "it was folded with format {f}; this contacthub folds format {}",
                contacthub_core::keys::FORMAT
            ),
            Err(e) => e.to_string(),
        },
        // In use elsewhere: neither damaged nor ours to replace.
        Err(e @ contacthub_projector::Error::Locked { .. }) => return Err(e.into()),
        Err(e) => e.to_string(),
    };
    tracing::warn!(folder = %dir.display(), reason = %why, "read model cannot be used as it is: rebuilding it from the log");
    let started = std::time::Instant::now();
    let fresh = dir.with_extension("rebuild");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)
            .with_context(|| format!("removing an unfinished rebuild in {}", fresh.display()))?;
    }
    let n = {
        let store = Store::open(&fresh)
            .with_context(|| format!("creating a read model in {}", fresh.display()))?;
        let folded = std::sync::atomic::AtomicU64::new(0);
        contacthub_projector::replay::replay(
            &store,
            log.as_ref(),
            tenants,
            keys,
            contacthub_projector::replay::BUDGET,
            &folded,
        )
        .await
        .context("rebuilding the read model from the log")?
        .records
    };
    let old = dir.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    std::fs::rename(dir, &old)
        .and_then(|()| std::fs::rename(&fresh, dir))
        .with_context(|| format!("switching to the rebuilt read model in {}", dir.display()))?;
    std::fs::remove_dir_all(&old)
        .with_context(|| format!("removing the old read model in {}", old.display()))?;
    tracing::warn!(folder = %dir.display(), events = n, seconds = started.elapsed().as_secs_f64(), "read model rebuilt from the log");
    Store::open(dir).with_context(|| format!("opening the read model in {}", dir.display()))
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Server {
    /// Opens the read model in `DATA/read-model` and starts the projector, the gRPC API on
    /// `grpc` and the scan inbox.
    pub async fn start(
        cfg: ServerConfig,
        log: Arc<dyn EventLog>,
        grpc: TcpListener,
    ) -> Result<Server> {
        let dir = cfg.data.join("read-model");
        let store = open_read_model(&dir, &log, &cfg.tenants, &cfg.keys).await?;
        let (projector, handle) = Projector::new(
            store.clone(),
            log.clone(),
            cfg.tenants.clone(),
            cfg.keys.clone(),
        )?;
        let franceconnect =
            contacthub_app::space::providers(&cfg.tenants).map_err(anyhow::Error::msg)?;
        let app = App::new(contacthub_app::Parts {
            franceconnect,
            log,
            store: store.clone(),
            projector: handle.clone(),
            tenants: cfg.tenants,
            visibility_timeout: cfg.visibility_timeout,
            access: cfg.access,
            content: cfg.content,
            max_scan_bytes: cfg.max_scan_bytes,
            scan_inbox: Some(cfg.scan_inbox.clone()),
            clock: cfg.clock,
            trail: if cfg.read_trail {
                let dir = contacthub_app::audit::path_in(&cfg.data);
                contacthub_app::audit::Trail::open(&cfg.data)
                    .with_context(|| format!("opening the read trail {}", dir.display()))?
            } else {
                contacthub_app::audit::Trail::off()
            },
            keys: cfg.keys,
            proxies: cfg.proxies,
            trail_hub: cfg.trail_hub.clone(),
            held: vec![Arc::new(
                contacthub_adapters::quarantine::Quarantine::open(
                    contacthub_adapters::quarantine_dir(&cfg.data),
                )
                .context("opening the quarantine")?,
            )],
        });
        let grpc_addr = grpc.local_addr()?;
        let (stop, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn({
            let s = stopped(rx.clone());
            async move {
                (
                    "projector",
                    projector.run(s).await.map_err(|e| e.to_string()),
                )
            }
        });
        tasks.spawn({
            let s = stopped(rx.clone());
            let app = app.clone();
            let tls = cfg.tls.clone();
            async move {
                let r = contacthub_api::serve(grpc, tls, app, s).await;
                ("grpc api", r.map_err(|e| e.to_string()))
            }
        });
        tasks.spawn({
            let s = stopped(rx.clone());
            let app = app.clone();
            async move {
                contacthub_app::hotfolder::run(app, cfg.scan_inbox, cfg.poll, s).await;
                ("scan inbox", Ok(()))
            }
        });
        if cfg.trail_hub.is_some() {
            // The read trail shared through the log, a batch a second at most.
            let mut stop = rx.clone();
            let app = app.clone();
            tasks.spawn(async move {
                let mut failing = false;
                loop {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return ("read trail sharing", Ok(())),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match app.share_reads().await {
                        Ok(_) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "the read trail cannot be shared through the log now; it will be (the hub's own file has it)");
                        }
                        Err(_) => {}
                    }
                }
            });
        }
        Ok(Server {
            app,
            store,
            projector: handle,
            grpc_addr,
            tls: cfg.tls,
            stop,
            tasks,
        })
    }

    /// Starts the channel adapters: HTTP endpoints on `listener`, the CDR drop folder and
    /// the communes' Maildirs, the quarantine in `DATA/quarantine`.
    pub fn start_adapters(
        &mut self,
        cfg: AdaptersConfig,
        data: PathBuf,
        listener: TcpListener,
        max_body_bytes: usize,
        poll: Duration,
    ) {
        let s = stopped(self.stop.subscribe());
        let app = self.app.clone();
        let listener = Listener::new(listener, self.tls.as_ref());
        self.tasks.spawn(async move {
            let r = contacthub_adapters::run(
                app,
                Arc::new(cfg),
                data,
                listener,
                max_body_bytes,
                poll,
                s,
            )
            .await;
            ("channel adapters", r.map_err(|e| e.to_string()))
        });
    }

    /// Starts the sender of written answers with the SMTP relays and SMS gateways of `cfg`.
    pub fn start_sender(&mut self, cfg: &AdaptersConfig) -> Result<()> {
        let providers = contacthub_adapters::outbound::Providers::from_config(cfg)?;
        // The citizens' space's one-time codes leave through the same relays and gateways.
        self.app.set_notifier(Arc::new(providers.clone()));
        let s = stopped(self.stop.subscribe());
        let app = self.app.clone();
        self.tasks.spawn(async move {
            contacthub_adapters::outbound::run(app, providers, Duration::from_millis(200), s).await;
            ("sender of written answers", Ok(()))
        });
        Ok(())
    }

    /// Applies the communes' retention rules 5 minutes after the start, then once a day, and
    /// collects the documents no event names (one hub per log: the one that sends the
    /// written answers).
    pub fn start_retention(&mut self) {
        let app = self.app.clone();
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            let mut wait = Duration::from_secs(300);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return ("retention rules", Ok(())),
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = Duration::from_secs(24 * 3600);
                let codes: Vec<String> = app.tenants().iter().map(|t| t.code.clone()).collect();
                for code in codes {
                    let scope = contacthub_app::auth::Scope::system(
                        contacthub_app::auth::System::Retention,
                        &code,
                    );
                    match app.apply_retention(&scope).await {
                        Ok(erased) if erased.is_empty() => {}
                        Ok(erased) => {
                            tracing::warn!(tenant = %code, records = erased.len(), "retention rules applied: records erased")
                        }
                        Err(e) => {
                            tracing::warn!(tenant = %code, error = %e, "retention rules not applied; next try in a day")
                        }
                    }
                }
                // Documents no event names (an upload whose event was never written).
                match app
                    .collect_documents(
                        contacthub_app::auth::System::Retention,
                        DOCUMENT_GRACE,
                    )
                    .await
                {
                    Ok(c) if c != Default::default() => {
                        tracing::warn!(trashed = c.trashed, removed = c.removed, restored = c.restored, kept = c.kept, uploads = c.uploads, "documents collected (restored: an event named one in the trash)")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "documents not collected; next try in a day")
                    }
                }
            }
        });
    }

    /// Starts the web desk on `listener`.
    pub fn start_web(&mut self, listener: TcpListener) {
        let rx = self.stop.subscribe();
        let s = stopped(rx.clone());
        let app = self.app.clone();
        let listener = Listener::new(listener, self.tls.as_ref());
        self.tasks.spawn(async move {
            let r = contacthub_web::serve(listener, app, s, rx).await;
            ("web desk", r.map_err(|e| e.to_string()))
        });
    }

    /// Starts the citizens' space on `listener`, with `beside` on the same port (the demo's
    /// identity provider).
    pub fn start_portal(&mut self, listener: TcpListener, beside: Option<axum::Router>) {
        let s = stopped(self.stop.subscribe());
        let app = self.app.clone();
        let listener = Listener::new(listener, self.tls.as_ref());
        self.tasks.spawn(async move {
            let r = contacthub_web::portal::serve(listener, app, s, beside).await;
            ("citizens' space", r.map_err(|e| e.to_string()))
        });
    }

    /// Serves the hub's Prometheus metrics on `listener` (`GET /metrics`), after installing
    /// the process's metrics recorder (once per process: `serve`).
    pub fn start_metrics(&mut self, listener: TcpListener) -> Result<()> {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[
                0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 10.0,
            ])
            .context("the metrics' histogram buckets")?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
        describe_metrics();
        let app = self.app.clone();
        let s = stopped(self.stop.subscribe());
        let listener = Listener::new(listener, self.tls.as_ref());
        self.tasks.spawn(async move {
            let router = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let (app, handle) = (app.clone(), handle.clone());
                    async move { metrics_page(&app, &handle).await }
                }),
            );
            let r = axum::serve(listener, router)
                .with_graceful_shutdown(s)
                .await;
            ("metrics endpoint", r.map_err(|e| e.to_string()))
        });
        Ok(())
    }

    /// Resolves when a part ends before shutdown: its name and why.
    pub async fn failed(&mut self) -> (String, String) {
        match self.tasks.join_next().await {
            Some(Ok((part, Ok(())))) => (part.into(), "it stopped on its own".into()),
            Some(Ok((part, Err(e)))) => (part.into(), e),
            Some(Err(e)) => (
                "a task".into(),
                format!("it panicked or was cancelled: {e}"),
            ),
            None => std::future::pending().await,
        }
    }

    /// Stops every part and waits for them (at most 10 s). `Err` names the parts that failed.
    pub async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(None) => break,
                Ok(Some(Ok((_, Ok(()))))) => {}
                Ok(Some(Ok((part, Err(e))))) => failures.push(format!("{part}: {e}")),
                Ok(Some(Err(e))) => failures.push(format!("a task: {e}")),
                Err(_) => {
                    tracing::error!(
                        parts = self.tasks.len(),
                        "parts still running after the grace period: abandoned"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", failures.join("; "))
        }
    }
}

/// What each metric of the hub means (`# HELP` lines).
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(
        "contacthub_log_end_offset",
        "Next offset the log will give, per partition."
    );
    describe_gauge!(
        "contacthub_projector_offset",
        "Next offset the projector will fold, per partition."
    );
    describe_gauge!(
        "contacthub_projector_lag",
        "Records on the log not yet folded into the read model, per partition."
    );
    describe_gauge!(
        "contacthub_dead_letters",
        "Records that could not be projected, kept with their reason."
    );
    describe_gauge!(
        "contacthub_open_watches",
        "Live timeline streams open now (gRPC and web desk)."
    );
    describe_gauge!(
        "contacthub_serving",
        "1 while the hub is healthy, 0 while health is NOT_SERVING."
    );
    describe_counter!(
        "contacthub_projector_events_total",
        "Records folded into the read model."
    );
    describe_histogram!(
        "contacthub_projector_batch_seconds",
        Unit::Seconds,
        "Time to fold and commit one batch of records."
    );
    describe_histogram!(
        "contacthub_log_append_seconds",
        Unit::Seconds,
        "Time for the log to acknowledge an append."
    );
    describe_histogram!(
        "contacthub_write_visible_seconds",
        Unit::Seconds,
        "Time from an append to its visibility in the read model."
    );
    describe_histogram!(
        "contacthub_get_timeline_seconds",
        Unit::Seconds,
        "Time to answer GetTimeline."
    );
    describe_counter!("contacthub_answers_total", "Outcomes of written answers by channel (email, sms, courrier, web_form) and outcome (delivered, retrying, failed, bounced); printed letters count as delivered.");
    describe_counter!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "CPU time the hub's process used, user and system."
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of the hub's process."
    );
    describe_gauge!(
        "process_open_fds",
        "Open file descriptors of the hub's process."
    );
    describe_gauge!(
        "process_max_fds",
        "Most file descriptors the hub's process may open."
    );
    describe_gauge!(
        "process_start_time_seconds",
        Unit::Seconds,
        "When the hub's process started, in seconds since the epoch."
    );
}

/// The process's own figures from /proc (Linux): CPU seconds, resident memory, open and
/// allowed file descriptors, start time. Absent elsewhere.
fn process_metrics() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces), from field 3 on.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        metrics::counter!("process_cpu_seconds_total").absolute(((user + system) / ticks) as u64);
    }
    if let Some(rss_pages) = field(24) {
        metrics::gauge!("process_resident_memory_bytes").set(rss_pages * 4096.0);
    }
    if let (Some(start), Ok(uptime)) = (field(22), std::fs::read_to_string("/proc/uptime")) {
        let boot_ago = uptime
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        metrics::gauge!("process_start_time_seconds").set(now - boot_ago + start / ticks);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        if let Some(max) = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
        {
            metrics::gauge!("process_max_fds").set(max);
        }
    }
}

/// The metrics in Prometheus' text format, with the positions read now: log end offset,
/// projected offset and lag per partition, dead letters, open watches, health.
async fn metrics_page(
    app: &App,
    handle: &metrics_exporter_prometheus::PrometheusHandle,
) -> impl axum::response::IntoResponse {
    let status = app.status().await;
    for p in &status.partitions {
        let partition = p.partition.to_string();
        metrics::gauge!("contacthub_log_end_offset", "partition" => partition.clone())
            .set(p.log_end_offset as f64);
        metrics::gauge!("contacthub_projector_offset", "partition" => partition.clone())
            .set(p.projected_offset as f64);
        metrics::gauge!("contacthub_projector_lag", "partition" => partition).set(p.lag as f64);
    }
    metrics::gauge!("contacthub_dead_letters").set(status.dead_letters as f64);
    metrics::gauge!("contacthub_open_watches").set(status.open_watches as f64);
    let serving = app.problems().await.is_empty();
    metrics::gauge!("contacthub_serving").set(if serving { 1.0 } else { 0.0 });
    process_metrics();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
