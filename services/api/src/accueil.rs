//! The accueil service: translates the waiting line's calls (pré-accueil, counters, hall
//! screen) and the accueil's report into the application layer ([`contacthub_app::accueil`]).

use crate::commands::Command;
use crate::{from_caller, status, token};
use contacthub_app::auth::Scope;
use contacthub_app::App;
use contacthub_core::pb::{self, accueil_service_server::AccueilService};
use tonic::{Request, Response, Status};

pub struct Accueil {
    app: App,
}

impl Accueil {
    pub fn new(app: App) -> Self {
        Accueil { app }
    }

    /// An agent's or a hall device's scope in `tenant`.
    fn hall<T>(&self, req: &Request<T>, tenant: &str) -> Result<Scope, Status> {
        let scope = self
            .app
            .access()
            .hall_scope(token(req), tenant)
            .map_err(status)?;
        Ok(from_caller(scope, req))
    }
}

#[tonic::async_trait]
impl AccueilService for Accueil {
    async fn issue_ticket(
        &self,
        req: Request<pb::IssueTicketRequest>,
    ) -> Result<Response<pb::TicketView>, Status> {
        let r = req.get_ref();
        let scope = self.hall(&req, &r.tenant)?;
        self.app
            .issue_ticket(&scope, &r.command()?)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn call_next(
        &self,
        req: Request<pb::CallNextRequest>,
    ) -> Result<Response<pb::CallNextResponse>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        let ticket = self
            .app
            .call_next(&scope, &r.site, r.counter)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CallNextResponse { ticket }))
    }

    async fn recall(
        &self,
        req: Request<pb::TicketRequest>,
    ) -> Result<Response<pb::TicketView>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        self.app
            .recall_ticket(&scope, &r.ticket_id)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn start_ticket(
        &self,
        req: Request<pb::TicketRequest>,
    ) -> Result<Response<pb::TicketView>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        self.app
            .start_ticket(&scope, &r.ticket_id)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn close_ticket(
        &self,
        req: Request<pb::CloseTicketRequest>,
    ) -> Result<Response<pb::TicketView>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        self.app
            .close_ticket(&scope, &r.command()?)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn waiting(
        &self,
        req: Request<pb::WaitingRequest>,
    ) -> Result<Response<pb::WaitingResponse>, Status> {
        let r = req.get_ref();
        let scope = self.hall(&req, &r.tenant)?;
        let line = self.app.waiting(&scope, &r.site).map_err(status)?;
        Ok(Response::new(pb::WaitingResponse {
            site: line.site,
            site_name: line.site_name,
            waiting: line.waiting,
            at_counters: line.at_counters,
            estimated_wait_minutes: line.estimated_wait_minutes,
            at: Some(contacthub_proto::ts::from_micros(line.at_us)),
        }))
    }

    async fn report(
        &self,
        req: Request<pb::AccueilReportRequest>,
    ) -> Result<Response<pb::AccueilReport>, Status> {
        let r = req.get_ref();
        let scope = self
            .app
            .access()
            .dashboard_scope(token(&req), &r.tenant)
            .map_err(status)?;
        self.app
            .accueil_report(&scope, &r.from, &r.to, &r.site)
            .map(Response::new)
            .map_err(status)
    }
}
