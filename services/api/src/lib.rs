//! contacthub's gRPC API: the desk service for accueil agents, the ops service, standard
//! health and server reflection, on one tonic server.
//!
//! Layout: [`desk`] serves timelines and records visits; [`ops`] serves positions and dead
//! letters; [`auth`] says which agent may see which commune; this file wires them with health
//! and reflection into [`serve`].
//!
//! Invariants: the API never writes to the read model: every write is an event appended to
//! the log, and a write returns once the projector made it visible. Every call names its
//! tenant and reads only keys of that tenant.

pub mod auth;
pub mod desk;
pub mod ops;

use contacthub_core::tenant::Tenants;
use contacthub_log::EventLog;
use contacthub_projector::{ProjectorHandle, Store};
use contacthub_proto::v1::{
    desk_service_server::DeskServiceServer, ops_service_server::OpsServiceServer,
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
        .add_service(OpsServiceServer::new(ops::Ops::new(hub)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopping(stop_rx))
        .await;
    health_task.abort();
    Ok(result?)
}

/// Maps a read-model failure to a gRPC status (details in the server log, not to the client).
pub(crate) fn internal(e: impl std::fmt::Display) -> tonic::Status {
    tracing::error!(error = %e, "request failed");
    tonic::Status::internal(format!("internal error: {e}"))
}
