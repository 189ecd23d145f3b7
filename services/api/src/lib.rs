//! contacthub's gRPC API: the desk, citizen, request, dashboard, mail-room, outbound, accueil, ops and audit services, standard
//! health and server reflection, on one tonic server. Handlers only translate: requests into the application
//! layer's commands and queries ([`contacthub_app`]), its errors into gRPC status codes
//! ([`status`]).
//!
//! Layout: [`desk`], [`citizens`], [`requests`], [`courrier`], [`outbound`], [`accueil`], [`ops`], [`audit`] (one module per service); `commands`
//! (each request as the application layer's command); [`gate`] (the open
//! hub's host check and the throttle of failed credentials, before every service); this file wires them with
//! health (following [`App::problems`]) and reflection into [`serve`].

pub mod accueil;
pub mod appointments;
pub mod audit;
pub mod citizens;
mod commands;
pub mod courrier;
pub mod desk;
pub mod gate;
pub mod ops;
pub mod outbound;
pub mod requests;

use contacthub_app::App;
use contacthub_proto::v1::{
    accueil_service_server::AccueilServiceServer,
    appointment_service_server::AppointmentServiceServer, audit_service_server::AuditServiceServer,
    citizen_service_server::CitizenServiceServer, courrier_service_server::CourrierServiceServer,
    dashboard_service_server::DashboardServiceServer, desk_service_server::DeskServiceServer,
    ops_service_server::OpsServiceServer, outbound_service_server::OutboundServiceServer,
    request_service_server::RequestServiceServer,
};
use std::future::Future;
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

/// Checks the caller's access to the request's tenant, then runs `$call` (the agent in scope
/// under the given name) and translates its answer.
macro_rules! scoped {
    ($self:ident, $req:ident, |$agent:ident, $r:ident| $call:expr) => {{
        let $r = $req.get_ref();
        let $agent = $crate::scope_of(&$self.app, &$req, &$r.tenant)?;
        $call.map(Response::new).map_err(status)
    }};
}
pub(crate) use scoped;

/// The scope of the caller of `req` in `tenant`, with where the call comes from (the CLI
/// says so in `x-contacthub-client: cli`) for the read trail.
pub(crate) fn scope_of<T>(
    app: &contacthub_app::App,
    req: &tonic::Request<T>,
    tenant: &str,
) -> Result<contacthub_app::auth::Scope, tonic::Status> {
    let scope = app.access().scope(token(req), tenant).map_err(status)?;
    Ok(from_caller(scope, req))
}

/// `scope` called from where `req` comes: the front-end (the CLI says so in
/// `x-contacthub-client: cli`) and the address, for the read trail.
pub(crate) fn from_caller<T>(
    scope: contacthub_app::auth::Scope,
    req: &tonic::Request<T>,
) -> contacthub_app::auth::Scope {
    use contacthub_app::audit::Via;
    let via = match req
        .metadata()
        .get("x-contacthub-client")
        .map(|v| v.as_bytes())
    {
        Some(b"cli") => Via::Cli,
        _ => Via::Grpc,
    };
    let address = req
        .extensions()
        .get::<contacthub_app::source::ClientAddress>()
        .map(|c| c.0)
        .or_else(|| req.remote_addr().map(|a| a.ip()));
    scope.from(via, address)
}

/// The bearer token a request carries, if any.
pub(crate) fn token<T>(req: &tonic::Request<T>) -> Option<&str> {
    req.metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The gRPC status of an application error.
pub fn status(e: contacthub_app::Error) -> tonic::Status {
    use contacthub_app::Error as E;
    match e {
        E::Invalid(m) => tonic::Status::invalid_argument(m),
        E::NotFound(m) => tonic::Status::not_found(m),
        E::Conflict(m) => tonic::Status::already_exists(m),
        E::Unauthenticated(m) => tonic::Status::unauthenticated(m),
        E::Forbidden(m) => tonic::Status::permission_denied(m),
        E::Unavailable(m) => tonic::Status::unavailable(m),
        E::NotYetVisible(m) => tonic::Status::deadline_exceeded(m),
        E::RecordedNotVisible(m) => tonic::Status::unavailable(m),
        E::Internal(m) => tonic::Status::internal(m),
        e @ E::Throttled(_) => tonic::Status::resource_exhausted(e.to_string()),
    }
}

/// Health names that turn NOT_SERVING when writes cannot be made visible: the whole server
/// ("") and the services agents use. OpsService stays SERVING while the process answers (a
/// liveness probe must not restart a hub waiting for its disk or its broker).
const SERVICES: &[&str] = &[
    "",
    "contacthub.v1.DeskService",
    "contacthub.v1.CitizenService",
    "contacthub.v1.CourrierService",
    "contacthub.v1.RequestService",
    "contacthub.v1.DashboardService",
    "contacthub.v1.OutboundService",
    "contacthub.v1.AccueilService",
];

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Option<contacthub_tls::Tls>,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<DeskServiceServer<desk::Desk>>()
        .await;
    reporter.set_serving::<OpsServiceServer<ops::Ops>>().await;
    reporter
        .set_serving::<AuditServiceServer<audit::Audit>>()
        .await;
    reporter
        .set_serving::<CitizenServiceServer<citizens::Citizens>>()
        .await;
    reporter
        .set_serving::<RequestServiceServer<requests::Requests>>()
        .await;
    reporter
        .set_serving::<DashboardServiceServer<requests::Dashboards>>()
        .await;
    reporter
        .set_serving::<CourrierServiceServer<courrier::Mailroom>>()
        .await;
    reporter
        .set_serving::<OutboundServiceServer<outbound::Outbound>>()
        .await;
    reporter
        .set_serving::<AccueilServiceServer<accueil::Accueil>>()
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
    let watched = app.clone();
    let health_task = tokio::spawn(async move {
        let mut serving = true;
        loop {
            let problems = watched.problems().await;
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

    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "grpc api listening");
    }
    // gRPC-Web (HTTP/1.1 and the browser's framing) on the same port, for web front-ends.
    let router = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(gate::GateLayer { app: app.clone() })
        .layer(tonic_web::GrpcWebLayer::new())
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(DeskServiceServer::new(desk::Desk::new(
            app.clone(),
            stop_rx.clone(),
        )))
        .add_service(CitizenServiceServer::new(citizens::Citizens::new(
            app.clone(),
        )))
        .add_service(CourrierServiceServer::new(courrier::Mailroom::new(
            app.clone(),
        )))
        .add_service(RequestServiceServer::new(requests::Requests::new(
            app.clone(),
        )))
        .add_service(DashboardServiceServer::new(requests::Dashboards::new(
            app.clone(),
        )))
        .add_service(OutboundServiceServer::new(outbound::Outbound::new(
            app.clone(),
        )))
        .add_service(AuditServiceServer::new(audit::Audit::new(app.clone())))
        .add_service(AccueilServiceServer::new(accueil::Accueil::new(
            app.clone(),
        )))
        .add_service(AppointmentServiceServer::new(
            appointments::Appointments::new(app.clone()),
        ))
        .add_service(OpsServiceServer::new(ops::Ops::new(app)));
    // TCP_NODELAY on every accepted connection: without it a small answer waits for the
    // client's delayed ACK (~40 ms per call for a desk with one call in flight).
    let result = match tls {
        None => {
            router
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    stopping(stop_rx),
                )
                .await
        }
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(tls.incoming(listener), stopping(stop_rx))
                .await
        }
    };
    health_task.abort();
    // Wait for the abort, so no clone of the app (and of its log) outlives `serve`.
    let _ = health_task.await;
    Ok(result?)
}
