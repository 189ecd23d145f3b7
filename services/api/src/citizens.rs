//! The citizen service: translates gRPC requests into the application layer's citizen
//! commands and queries ([`contacthub_app::citizens`]).

use crate::commands::Command;
use crate::status;
use contacthub_app::App;
use contacthub_core::pb::{self, citizen_service_server::CitizenService, Citizen};
use tonic::{Request, Response, Status};

pub struct Citizens {
    app: App,
}

impl Citizens {
    pub fn new(app: App) -> Self {
        Citizens { app }
    }
}

#[tonic::async_trait]
impl CitizenService for Citizens {
    async fn create_citizen(
        &self,
        req: Request<pb::CreateCitizenRequest>,
    ) -> Result<Response<Citizen>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .create_citizen(&scope, &r.command()?)
            .await)
    }

    async fn update_citizen(
        &self,
        req: Request<pb::UpdateCitizenRequest>,
    ) -> Result<Response<Citizen>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .update_citizen(&scope, &r.command()?)
            .await)
    }

    async fn get_citizen(
        &self,
        req: Request<pb::GetCitizenRequest>,
    ) -> Result<Response<Citizen>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .citizen(&scope, &r.citizen_id))
    }

    async fn search_citizens(
        &self,
        req: Request<pb::SearchCitizensRequest>,
    ) -> Result<Response<pb::SearchCitizensResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .search_citizens(&scope, &r.command()?))
    }

    async fn merge_citizens(
        &self,
        req: Request<pb::MergeCitizensRequest>,
    ) -> Result<Response<Citizen>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .merge_citizens(&scope, &r.command()?)
            .await)
    }

    async fn unmerge_citizen(
        &self,
        req: Request<pb::UnmergeCitizenRequest>,
    ) -> Result<Response<Citizen>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .unmerge_citizen(&scope, &r.command()?)
            .await)
    }

    async fn set_household_member(
        &self,
        req: Request<pb::SetHouseholdMemberRequest>,
    ) -> Result<Response<pb::Household>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .set_household_member(&scope, &r.command()?)
            .await)
    }

    async fn get_household(
        &self,
        req: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::Household>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .household(&scope, &r.command()?))
    }

    async fn list_unresolved_contacts(
        &self,
        req: Request<pb::ListUnresolvedContactsRequest>,
    ) -> Result<Response<pb::ListUnresolvedContactsResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .unresolved_contacts(&scope, &r.command()?)
            .map(|contacts| pb::ListUnresolvedContactsResponse { contacts }))
    }

    async fn attach_contact(
        &self,
        req: Request<pb::AttachContactRequest>,
    ) -> Result<Response<pb::TimelineEntry>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .attach_contact(&scope, &r.command()?)
            .await)
    }

    async fn list_account_proposals(
        &self,
        req: Request<pb::ListAccountProposalsRequest>,
    ) -> Result<Response<pb::ListAccountProposalsResponse>, Status> {
        crate::scoped!(self, req, |scope, _r| self
            .app
            .account_proposals(&scope)
            .map(|proposals| pb::ListAccountProposalsResponse { proposals }))
    }

    async fn link_account(
        &self,
        req: Request<pb::LinkAccountRequest>,
    ) -> Result<Response<pb::LinkAccountResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .link_account(&scope, &r.command()?)
            .await
            .map(|()| pb::LinkAccountResponse {}))
    }

    async fn list_duplicate_proposals(
        &self,
        req: Request<pb::ListDuplicateProposalsRequest>,
    ) -> Result<Response<pb::ListDuplicateProposalsResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .duplicate_proposals(&scope, r.limit)
            .map(|proposals| pb::ListDuplicateProposalsResponse { proposals }))
    }

    async fn dismiss_duplicate(
        &self,
        req: Request<pb::DismissDuplicateRequest>,
    ) -> Result<Response<pb::DismissDuplicateResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .dismiss_duplicate(&scope, &r.command()?)
            .await
            .map(|()| pb::DismissDuplicateResponse {}))
    }
}
