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
use contacthub_projector::{ProjectorHandle, Store};
use contacthub_proto::v1::{
    courrier_service_server::CourrierServiceServer, desk_service_server::DeskServiceServer,
    ops_service_server::OpsServiceServer,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

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
}

/// The time source of the API.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_micros())
}

impl Hub {
    /// Validates an event, appends it to the log and waits until it is projected: the one way
    /// the API writes.
    pub async fn write(
        &self,
        e: &contacthub_core::pb::Event,
    ) -> Result<contacthub_log::Appended, tonic::Status> {
        use contacthub_core::event;
        event::validate(e, &self.tenants).map_err(|i| tonic::Status::invalid_argument(i.0))?;
        let record = contacthub_log::Record {
            key: e.tenant.as_bytes().to_vec(),
            value: event::encode(e),
            headers: event::headers(e),
            timestamp_ms: (self.clock)() / 1000,
        };
        let placed = self.log.append(vec![record]).await.map_err(|err| {
            tonic::Status::unavailable(format!("could not write to the event log: {err}"))
        })?;
        let at = placed[0];
        if !self
            .projector
            .wait_applied(at.partition, at.offset, self.visibility_timeout)
            .await
        {
            return Err(tonic::Status::deadline_exceeded(format!(
                "recorded (event {}, partition {}, offset {}) but not yet visible; it will appear shortly",
                e.event_id, at.partition, at.offset
            )));
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
        self.tenants
            .get(code)
            .ok_or_else(|| tonic::Status::invalid_argument(format!("unknown tenant {code:?}")))
    }
}

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

    // Health follows the log: NOT_SERVING while writes cannot be acknowledged.
    let watch_log = hub.log.clone();
    let health_task = tokio::spawn(async move {
        let mut serving = true;
        loop {
            let ok = watch_log.health().await;
            match (&ok, serving) {
                (Err(e), true) => {
                    tracing::warn!(error = %e, "event log unavailable: health is NOT_SERVING");
                    reporter
                        .set_not_serving::<DeskServiceServer<desk::Desk>>()
                        .await;
                    reporter
                        .set_service_status("", tonic_health::ServingStatus::NotServing)
                        .await;
                    serving = false;
                }
                (Ok(()), false) => {
                    tracing::info!("event log available again: health is SERVING");
                    reporter
                        .set_serving::<DeskServiceServer<desk::Desk>>()
                        .await;
                    reporter
                        .set_service_status("", tonic_health::ServingStatus::Serving)
                        .await;
                    serving = true;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
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
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopping(stop_rx))
        .await;
    health_task.abort();
    // Wait for the abort, so no clone of the hub (and of its log) outlives `serve`.
    let _ = health_task.await;
    Ok(result?)
}

/// Maps a read-model failure to a gRPC status (details in the server log, not to the client).
pub(crate) fn internal(e: impl std::fmt::Display) -> tonic::Status {
    tracing::error!(error = %e, "request failed");
    tonic::Status::internal(format!("internal error: {e}"))
}
