//! contacthub's gRPC API: the desk service for accueil agents, the ops service, standard
//! health and server reflection, on one tonic server.
//!
//! Layout: [`desk`] serves timelines and records visits; [`ops`] serves positions and dead
//! letters; [`courrier`] is the mail room, with [`content`] (content-addressed scans) and
//! [`hotfolder`] (scanner drop folder); [`auth`] says which agent may see which commune; this
//! file wires them with health and reflection into [`serve`].
//!
//! Invariants: the API never writes to the read model: every write is an event appended to
//! the log, and a write returns once the projector made it visible. Every call names its
//! tenant and reads only keys of that tenant.

pub mod auth;
pub mod content;
pub mod courrier;
pub mod desk;
pub mod hotfolder;
pub mod ops;

use contacthub_core::tenant::Tenants;
use contacthub_log::EventLog;
use contacthub_projector::{NotVisible, ProjectorHandle, Store};
use contacthub_proto::v1::{
    courrier_service_server::CourrierServiceServer, desk_service_server::DeskServiceServer,
    ops_service_server::OpsServiceServer,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Errors of the API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection descriptor: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Everything the services need: the log to write to, the read model, the projector's signals.
#[derive(Clone)]
pub struct Hub {
    pub log: Arc<dyn EventLog>,
    pub store: Store,
    pub projector: ProjectorHandle,
    pub tenants: Arc<Tenants>,
    /// How long a write waits to become visible before failing.
    pub visibility_timeout: Duration,
    /// Which agent may see which commune.
    pub access: Arc<auth::Access>,
    /// Where scans are stored.
    pub content: content::ContentStore,
    /// Largest scan accepted, in bytes.
    pub max_scan_bytes: u64,
    /// The scanner drop folder, if any (its `unmatched/` lists scans matching no letter).
    pub scan_inbox: Option<std::path::PathBuf>,
    /// Now, in microseconds since the epoch (a fixed clock in tests).
    pub clock: Clock,
    /// Parts of the process that stopped working; health is NOT_SERVING while any is listed.
    pub faults: Faults,
    /// WatchTimeline streams open now.
    pub open_watches: Arc<AtomicUsize>,
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

    pub fn clear(&self, part: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(part);
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

/// Counts one open watch stream while alive.
pub(crate) struct WatchGuard(Arc<AtomicUsize>);

impl WatchGuard {
    pub(crate) fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        WatchGuard(count.clone())
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The time source of the API.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_micros())
}

impl Hub {
    /// Validates an event, appends it to the log and waits until it is projected: the one way
    /// the API writes. An event id already applied is not appended again: with the same
    /// fingerprint it is a retry (its first position is returned); with another, a conflict
    /// (ALREADY_EXISTS), never silently dropped.
    pub async fn write(
        &self,
        e: &contacthub_core::pb::Event,
    ) -> Result<contacthub_log::Appended, tonic::Status> {
        use contacthub_core::event;
        event::validate(e, &self.tenants).map_err(|i| tonic::Status::invalid_argument(i.0))?;
        if let Some(done) = self
            .store
            .applied(&e.tenant, &e.event_id)
            .map_err(unavailable)?
        {
            if !done.fingerprint.is_empty() && done.fingerprint != e.fingerprint {
                return Err(tonic::Status::already_exists(format!(
                    "this idempotency key was already used for other content (event {})",
                    e.event_id
                )));
            }
            return Ok(contacthub_log::Appended {
                partition: done.partition,
                offset: done.offset,
            });
        }
        let record = contacthub_log::Record {
            key: e.tenant.as_bytes().to_vec(),
            value: event::encode(e),
            headers: event::headers(e),
            timestamp_ms: (self.clock)() / 1000,
        };
        let placed = self.log.append(vec![record]).await.map_err(|err| {
            tracing::warn!(error = %err, "append refused by the event log");
            tonic::Status::unavailable(format!("could not write to the event log: {err}"))
        })?;
        let at = placed[0];
        match self
            .projector
            .wait_applied(at.partition, at.offset, self.visibility_timeout)
            .await
        {
            Ok(()) => {}
            Err(NotVisible::TimedOut(_)) => {
                return Err(tonic::Status::deadline_exceeded(format!(
                    "recorded (event {}, partition {}, offset {}) but not yet visible; it will appear shortly",
                    e.event_id, at.partition, at.offset
                )))
            }
            Err(NotVisible::ProjectorFailing(reason)) => {
                return Err(tonic::Status::unavailable(format!(
                    "recorded (event {}, partition {}, offset {}) but not yet visible: {reason}; it will appear once the read model is written again",
                    e.event_id, at.partition, at.offset
                )))
            }
        }
        tracing::info!(tenant = %e.tenant, event_id = %e.event_id, partition = at.partition, offset = at.offset, "event written");
        Ok(at)
    }

    /// Checks the tenant is known.
    pub fn known_tenant(
        &self,
        code: &str,
    ) -> Result<&contacthub_core::tenant::Tenant, tonic::Status> {
        if code.is_empty() {
            return Err(tonic::Status::invalid_argument(
                "tenant is required (INSEE code of the commune)",
            ));
        }
        self.tenants.get(code).ok_or_else(|| {
            tonic::Status::invalid_argument(format!(
                "unknown tenant {:?}",
                contacthub_core::limits::quote(code)
            ))
        })
    }
}

/// Health names that turn NOT_SERVING when writes cannot be made visible: the whole server
/// ("") and the services agents use. OpsService stays SERVING while the process answers (a
/// liveness probe must not restart a hub waiting for its disk or its broker).
const SERVICES: &[&str] = &[
    "",
    "contacthub.v1.DeskService",
    "contacthub.v1.CourrierService",
];

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<DeskServiceServer<desk::Desk>>()
        .await;
    reporter.set_serving::<OpsServiceServer<ops::Ops>>().await;
    reporter
        .set_serving::<CourrierServiceServer<courrier::Mailroom>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contacthub_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contacthub_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // Health follows the log, the projector and every supervised part: NOT_SERVING while
    // writes cannot be acknowledged or made visible.
    let watched = hub.clone();
    let health_task = tokio::spawn(async move {
        let mut serving = true;
        loop {
            let mut problems = watched.faults.list();
            if let Err(e) = watched.log.health().await {
                problems.push(format!("event log: {e}"));
            }
            if let Some(reason) = watched.projector.failing() {
                problems.push(format!("projector: {reason}"));
            }
            match (problems.is_empty(), serving) {
                (false, true) => {
                    tracing::warn!(problems = ?problems, "health is NOT_SERVING");
                    for name in SERVICES {
                        reporter
                            .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                            .await;
                    }
                    serving = false;
                }
                (true, false) => {
                    tracing::info!("health is SERVING again");
                    for name in SERVICES {
                        reporter
                            .set_service_status(*name, tonic_health::ServingStatus::Serving)
                            .await;
                    }
                    serving = true;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    // One shutdown signal for the server and for the open watch streams, which would
    // otherwise keep a graceful shutdown waiting forever.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopping = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "grpc api listening");
    let result = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(DeskServiceServer::new(desk::Desk::new(
            hub.clone(),
            stop_rx.clone(),
        )))
        .add_service(CourrierServiceServer::new(courrier::Mailroom::new(
            hub.clone(),
        )))
        .add_service(OpsServiceServer::new(ops::Ops::new(hub)))
        // TCP_NODELAY on every accepted connection: without it a small answer waits for the
        // client's delayed ACK (~40 ms per call for a desk with one call in flight).
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stopping(stop_rx),
        )
        .await;
    health_task.abort();
    // Wait for the abort, so no clone of the hub (and of its log) outlives `serve`.
    let _ = health_task.await;
    Ok(result?)
}

/// Maps a read-model failure to a gRPC status: UNAVAILABLE while the store is being reopened
/// after an error (retry later), INTERNAL otherwise (details in the server log).
pub(crate) fn internal(e: contacthub_projector::Error) -> tonic::Status {
    match e {
        contacthub_projector::Error::Closed { .. } | contacthub_projector::Error::Busy { .. } => {
            unavailable(e)
        }
        e => {
            tracing::error!(error = %e, "request failed");
            tonic::Status::internal("internal error reading the read model (see the server log)")
        }
    }
}

/// The read model cannot be read right now (it is being reopened after an error).
pub(crate) fn unavailable(e: impl std::fmt::Display) -> tonic::Status {
    tracing::warn!(error = %e, "read model unavailable");
    tonic::Status::unavailable(format!("the read model is unavailable right now: {e}"))
}
