//! The audit service: translates the data protection officer's requests into the application
//! layer's read-trail query ([`contacthub_app::audit`]).

use crate::{status, token};
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
}

#[tonic::async_trait]
impl AuditService for Audit {
    async fn list_reads(
        &self,
        req: Request<pb::ListReadsRequest>,
    ) -> Result<Response<pb::ListReadsResponse>, Status> {
        let r = req.get_ref();
        let scope = self
            .app
            .access()
            .dpo_scope(token(&req), &r.tenant)
            .map_err(status)?;
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
}
