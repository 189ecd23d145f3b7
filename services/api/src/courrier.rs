//! The mail-room service: translates gRPC requests into the application layer's mail-room
//! commands ([`contacthub_app::courrier`]); reads the client-streamed scans into uploads.

use crate::commands::Command;
use crate::{status, token};
use contacthub_app::courrier::{scan_refused, MAX_SCANS};
use contacthub_app::App;
use contacthub_core::pb::{
    self, courrier_service_server::CourrierService, register_courrier_request::Part, CourrierState,
};
use tonic::{Request, Response, Status, Streaming};

pub struct Mailroom {
    app: App,
}

impl Mailroom {
    pub fn new(app: App) -> Self {
        Mailroom { app }
    }
}

#[tonic::async_trait]
impl CourrierService for Mailroom {
    async fn register_courrier(
        &self,
        req: Request<Streaming<pb::RegisterCourrierRequest>>,
    ) -> Result<Response<CourrierState>, Status> {
        let token = token(&req).map(str::to_string);
        let mut stream = req.into_inner();
        let header = match stream.message().await? {
            Some(pb::RegisterCourrierRequest {
                part: Some(Part::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be the header",
                ))
            }
        };
        let scope = self
            .app
            .access()
            .scope(token.as_deref(), &header.tenant)
            .map_err(status)?;
        self.app.check_courrier_header(&header).map_err(status)?;
        // Scans go to temporary files; nothing is kept unless the whole registration succeeds.
        let mut uploads = Vec::new();
        while let Some(msg) = stream.message().await? {
            let chunk = match msg.part {
                Some(Part::Scan(c)) => c,
                _ => {
                    return Err(Status::invalid_argument(
                        "only scan chunks may follow the header",
                    ))
                }
            };
            let i = chunk.scan_index as usize;
            if i == uploads.len() {
                if i >= MAX_SCANS {
                    return Err(Status::invalid_argument(format!(
                        "au plus {MAX_SCANS} scans par courrier"
                    )));
                }
                uploads.push((
                    chunk.filename.clone(),
                    self.app.begin_scan().map_err(status)?,
                ));
            } else if i > uploads.len() {
                return Err(Status::invalid_argument(format!(
                    "le scan {} commence avant le scan {}",
                    i + 1,
                    uploads.len() + 1
                )));
            }
            let (name, upload) = &mut uploads[i];
            upload
                .write(&chunk.data)
                .map_err(|e| Status::invalid_argument(scan_refused(i, name, &e)))?;
        }
        self.app
            .register_courrier(&scope, &header, uploads)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn route_courrier(
        &self,
        req: Request<pb::RouteCourrierRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .route_courrier(&scope, &r.command()?)
            .await)
    }

    async fn record_step(
        &self,
        req: Request<pb::RecordStepRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .record_step(&scope, &r.command()?)
            .await)
    }

    async fn mark_answered(
        &self,
        req: Request<pb::MarkAnsweredRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .mark_answered(&scope, &r.command()?)
            .await)
    }

    async fn get_courrier(
        &self,
        req: Request<pb::GetCourrierRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        crate::scoped!(self, req, |scope, r| self.app.letter_for(&scope, &r.chrono))
    }

    async fn list_courrier(
        &self,
        req: Request<pb::ListCourrierRequest>,
    ) -> Result<Response<pb::ListCourrierResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .list_courrier(&scope, &r.command()?)
            .map(|courriers| pb::ListCourrierResponse { courriers }))
    }

    async fn get_receipt(
        &self,
        req: Request<pb::GetCourrierRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        crate::scoped!(self, req, |scope, r| self.app.receipt(&scope, &r.chrono))
    }

    async fn courrier_report(
        &self,
        req: Request<pb::CourrierReportRequest>,
    ) -> Result<Response<pb::CourrierReportResponse>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .courrier_report(&scope, &r.command()?))
    }

    async fn list_unmatched_scans(
        &self,
        req: Request<pb::ListUnmatchedScansRequest>,
    ) -> Result<Response<pb::ListUnmatchedScansResponse>, Status> {
        let tenant = &req.get_ref().tenant;
        // Every commune's scans need the ops right.
        let scans = if tenant.is_empty() {
            let ops = self.app.access().ops(token(&req)).map_err(status)?;
            self.app.all_unmatched_scans(&ops)
        } else {
            let scope = self
                .app
                .access()
                .scope(token(&req), tenant)
                .map_err(status)?;
            self.app.unmatched_scans(&scope)
        }
        .map_err(status)?;
        Ok(Response::new(pb::ListUnmatchedScansResponse { scans }))
    }
}
