//! The audit service: translates the data protection officer's requests into the application
//! layer's read-trail query ([`contacthub_app::audit`]) and erasure ([`contacthub_app::erasure`]).

use crate::{status, token};
use contacthub_app::auth::Scope;
use contacthub_app::App;
use contacthub_proto::v1::{self as pb, audit_service_server::AuditService};
use tonic::{Request, Response, Status};

pub struct Audit {
    app: App,
}

impl Audit {
    pub fn new(app: App) -> Self {
        Audit { app }
    }

    /// The caller's scope as the data protection officer of `tenant`, or the refusal.
    fn dpo<T>(&self, req: &Request<T>, tenant: &str) -> Result<Scope, Status> {
        let scope = self
            .app
            .access()
            .dpo_scope(token(req), tenant)
            .map_err(status)?;
        Ok(crate::from_caller(scope, req))
    }
}

#[tonic::async_trait]
impl AuditService for Audit {
    type ExportCitizenStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ExportChunk, Status>> + Send + 'static>,
    >;

    async fn export_citizen(
        &self,
        req: Request<pb::ExportCitizenRequest>,
    ) -> Result<Response<Self::ExportCitizenStream>, Status> {
        let r = req.get_ref();
        let scope = self.dpo(&req, &r.tenant)?;
        let export = self
            .app
            .export_citizen(&scope, &r.citizen_id)
            .await
            .map_err(status)?;
        let chunks: Vec<Result<pb::ExportChunk, Status>> = export
            .zip
            .chunks(1 << 20)
            .map(|c| Ok(pb::ExportChunk { data: c.to_vec() }))
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn list_reads(
        &self,
        req: Request<pb::ListReadsRequest>,
    ) -> Result<Response<pb::ListReadsResponse>, Status> {
        let r = req.get_ref();
        let scope = self.dpo(&req, &r.tenant)?;
        let reads = self
            .app
            .reads(&scope, &r.citizen_id, &r.agent_id, r.limit)
            .map_err(status)?
            .into_iter()
            .map(|e| pb::ReadEntry {
                seq: e.seq,
                at: Some(contacthub_proto::ts::from_micros(e.at_us)),
                agent_id: e.agent,
                citizen_id: e.citizen,
                what: e.what.code().into(),
                what_fr: e.what.fr().into(),
                object: e.object,
                address: e.from,
                via: e.via.code().into(),
                via_fr: e.via.fr().into(),
            })
            .collect();
        Ok(Response::new(pb::ListReadsResponse { reads }))
    }

    async fn erase_citizen(
        &self,
        req: Request<pb::EraseCitizenRequest>,
    ) -> Result<Response<pb::EraseCitizenResponse>, Status> {
        let r = req.get_ref();
        let scope = self.dpo(&req, &r.tenant)?;
        let done = self
            .app
            .erase_citizen(
                &scope,
                &contacthub_app::commands::EraseCitizen {
                    citizen_id: r.citizen_id.clone(),
                    reason: r.reason.clone(),
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::EraseCitizenResponse {
            citizen_id: done.citizen_id,
            merged_citizen_ids: done.merged,
            keys_destroyed: u32::try_from(done.keys).unwrap_or(u32::MAX),
        }))
    }

    async fn apply_retention(
        &self,
        req: Request<pb::ApplyRetentionRequest>,
    ) -> Result<Response<pb::ApplyRetentionResponse>, Status> {
        let r = req.get_ref();
        let scope = self.dpo(&req, &r.tenant)?;
        let due = if r.apply {
            self.app.apply_retention(&scope).await
        } else {
            self.app.retention_due(&scope)
        }
        .map_err(status)?;
        Ok(Response::new(pb::ApplyRetentionResponse {
            due: due
                .into_iter()
                .map(|d| {
                    use contacthub_app::retention::Erasable;
                    let (citizen_id, held_id, held_kind) = match d.what {
                        Erasable::Citizen(id) => (id, String::new(), String::new()),
                        Erasable::Held { item, .. } => (String::new(), item.id, item.kind),
                    };
                    pb::RetentionDue {
                        citizen_id,
                        last_contact: Some(contacthub_proto::ts::from_micros(d.last_us)),
                        rule: d.rule,
                        held_id,
                        held_kind,
                    }
                })
                .collect(),
            applied: r.apply,
        }))
    }
}
