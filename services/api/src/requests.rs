//! The request service: translates gRPC requests into the application layer's request
//! commands and worklists ([`contacthub_app::requests`]), and the dashboard service
//! ([`contacthub_app::dashboard`]).

use crate::commands::Command;
use crate::{status, token};
use contacthub_app::App;
use contacthub_core::pb::{
    self, dashboard_service_server::DashboardService, request_service_server::RequestService,
    Request as Demande,
};
use tonic::{Request, Response, Status};

pub struct Requests {
    app: App,
}

impl Requests {
    pub fn new(app: App) -> Self {
        Requests { app }
    }
}

/// The dashboard service: aggregates only, readable by élus.
pub struct Dashboards {
    app: App,
}

impl Dashboards {
    pub fn new(app: App) -> Self {
        Dashboards { app }
    }
}

#[tonic::async_trait]
impl DashboardService for Dashboards {
    async fn get_dashboard(
        &self,
        req: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::Dashboard>, Status> {
        let r = req.get_ref();
        let scope = self
            .app
            .access()
            .dashboard_scope(token(&req), &r.tenant)
            .map_err(status)?;
        self.app
            .dashboard(&scope, &r.command()?)
            .map(Response::new)
            .map_err(status)
    }
}

#[tonic::async_trait]
impl RequestService for Requests {
    async fn open_request(
        &self,
        req: Request<pb::OpenRequestRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .open_request(&scope, &r.command()?)
            .await)
    }

    async fn link_contact(
        &self,
        req: Request<pb::LinkContactRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .link_contact(&scope, &r.command()?)
            .await)
    }

    async fn assign_request(
        &self,
        req: Request<pb::AssignRequestRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .assign_request(&scope, &r.command()?)
            .await)
    }

    async fn set_request_status(
        &self,
        req: Request<pb::SetRequestStatusRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .set_request_status(&scope, &r.command()?)
            .await)
    }

    async fn record_answer(
        &self,
        req: Request<pb::RecordAnswerRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .record_answer(&scope, &r.command()?)
            .await)
    }

    async fn close_request(
        &self,
        req: Request<pb::CloseRequestRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .close_request(&scope, &r.command()?)
            .await)
    }

    async fn reopen_request(
        &self,
        req: Request<pb::ReopenRequestRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .reopen_request(&scope, &r.reference)
            .await)
    }

    async fn get_request(
        &self,
        req: Request<pb::GetRequestRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .get_request(&scope, &r.reference))
    }

    async fn group_requests(
        &self,
        req: Request<pb::GroupRequestsRequest>,
    ) -> Result<Response<Demande>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .group_requests(&scope, &r.command()?)
            .await)
    }

    async fn list_requests(
        &self,
        req: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .list_requests(&scope, &r.command()?)
            .map(|requests| pb::ListRequestsResponse { requests }))
    }
}
