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
use contacthub_log::EventLog;
use contacthub_projector::{Projector, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long [`Server::stop`] waits for the parts to finish before abandoning them.
const STOP_GRACE: Duration = Duration::from_secs(10);

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
}

/// A running hub.
pub struct Server {
    pub app: App,
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<(&'static str, Result<(), String>)>,
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
        let store = Store::open(&dir)
            .with_context(|| format!("opening the read model in {}", dir.display()))?;
        let (projector, handle) = Projector::new(store.clone(), log.clone(), cfg.tenants.clone())?;
        let content_dir = cfg.data.join("content");
        let content = contacthub_app::content::ContentStore::open(&content_dir)
            .with_context(|| format!("opening the content store in {}", content_dir.display()))?;
        let app = App {
            log,
            store,
            projector: handle,
            tenants: cfg.tenants,
            visibility_timeout: cfg.visibility_timeout,
            access: Arc::new(cfg.access),
            content,
            max_scan_bytes: cfg.max_scan_bytes,
            scan_inbox: Some(cfg.scan_inbox.clone()),
            clock: cfg.clock,
            faults: Default::default(),
            open_watches: Default::default(),
        };
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
            async move {
                let r = contacthub_api::serve(grpc, app, s).await;
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
        Ok(Server {
            app,
            grpc_addr,
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

    /// Starts the web desk on `listener`.
    pub fn start_web(&mut self, listener: TcpListener) {
        let rx = self.stop.subscribe();
        let s = stopped(rx.clone());
        let app = self.app.clone();
        self.tasks.spawn(async move {
            let r = contacthub_web::serve(listener, app, s, rx).await;
            ("web desk", r.map_err(|e| e.to_string()))
        });
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
