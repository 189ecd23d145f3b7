//! The ops service: translates gRPC requests into the application layer's status queries
//! ([`contacthub_app::status`]).

use crate::{status, token};
use contacthub_app::App;
use contacthub_proto::v1::{self as pb, ops_service_server::OpsService};
use tonic::{Request, Response, Status};

pub struct Ops {
    app: App,
}

impl Ops {
    pub fn new(app: App) -> Self {
        Ops { app }
    }
}

#[tonic::async_trait]
impl OpsService for Ops {
    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let ops = self.app.access().ops(token(&req)).map_err(status)?;
        let mut answer = self.app.status().await;
        answer.connectors = self.app.connectors(&ops);
        Ok(Response::new(answer))
    }

    async fn list_dead_letters(
        &self,
        req: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let ops = self.app.access().ops(token(&req)).map_err(status)?;
        let dead_letters = self
            .app
            .dead_letters(&ops, req.get_ref().limit)
            .map_err(status)?;
        Ok(Response::new(pb::ListDeadLettersResponse { dead_letters }))
    }

    async fn get_digest(
        &self,
        req: Request<pb::GetDigestRequest>,
    ) -> Result<Response<pb::GetDigestResponse>, Status> {
        self.app.access().ops(token(&req)).map_err(status)?;
        // Hashing the whole read model takes a while: off the async threads.
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || app.digest())
            .await
            .map_err(|e| Status::internal(format!("digest: {e}")))?
            .map(Response::new)
            .map_err(status)
    }

    async fn get_phone_report(
        &self,
        req: Request<pb::GetPhoneReportRequest>,
    ) -> Result<Response<pb::PhoneReport>, Status> {
        crate::scoped!(self, req, |scope, _r| self.app.phone_report(&scope))
    }
}
