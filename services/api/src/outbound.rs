//! The outbound service: translates gRPC requests into the application layer's written
//! answers ([`contacthub_app::answers`]): preview, send, status, the print queue.

use crate::commands::Command;
use crate::status;
use contacthub_app::App;
use contacthub_core::pb::{self, outbound_service_server::OutboundService};
use tonic::{Request, Response, Status};

pub struct Outbound {
    app: App,
}

impl Outbound {
    pub fn new(app: App) -> Self {
        Outbound { app }
    }
}

#[tonic::async_trait]
impl OutboundService for Outbound {
    async fn preview_answer(
        &self,
        req: Request<pb::ComposeAnswerRequest>,
    ) -> Result<Response<pb::AnswerPreview>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .preview_answer(&scope, &r.command()?))
    }

    async fn send_answer(
        &self,
        req: Request<pb::ComposeAnswerRequest>,
    ) -> Result<Response<pb::Answer>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .send_answer(&scope, &r.command()?)
            .await)
    }

    async fn get_answer(
        &self,
        req: Request<pb::GetAnswerRequest>,
    ) -> Result<Response<pb::Answer>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .get_answer(&scope, &r.answer_event_id))
    }

    async fn list_answers(
        &self,
        req: Request<pb::ListAnswersRequest>,
    ) -> Result<Response<pb::ListAnswersResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .list_answers(&scope, &r.reference)
            .map(|answers| pb::ListAnswersResponse { answers }))
    }

    async fn list_print_queue(
        &self,
        req: Request<pb::ListPrintQueueRequest>,
    ) -> Result<Response<pb::PrintQueue>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .print_queue(&scope)
            .map(|items| pb::PrintQueue { items }))
    }

    async fn mark_printed(
        &self,
        req: Request<pb::MarkPrintedRequest>,
    ) -> Result<Response<pb::Answer>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .mark_printed(&scope, &r.answer_event_id, &r.pdf_sha256)
            .await)
    }
}
