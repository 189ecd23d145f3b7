//! The mail room (service courrier): register incoming letters with their scans, route them,
//! record each step of the internal circuit, mark them answered, list, report, and print the
//! acknowledgement of receipt. Every change is an event on the log; the chrono number is
//! given by the projector in log order.

use crate::content::Upload;
use crate::{internal, Hub};
use contacthub_core::courrier::{is_overdue, report};
use contacthub_core::event::{contact, event_id, valid_chrono, SCHEMA_VERSION};
use contacthub_core::pb::{
    self, courrier_service_server::CourrierService, event::Payload,
    register_courrier_request::Part, CourrierState,
};
use contacthub_core::receipt::receipt_pdf;
use contacthub_proto::ts;
use tonic::{Request, Response, Status, Streaming};

/// Scans per letter, at most.
const MAX_SCANS: usize = 50;

pub struct Mailroom {
    hub: Hub,
}

impl Mailroom {
    pub fn new(hub: Hub) -> Self {
        Mailroom { hub }
    }

    fn letter(&self, tenant: &str, chrono: &str) -> Result<CourrierState, Status> {
        if !valid_chrono(chrono) {
            return Err(Status::invalid_argument(format!(
                "{:?} is not a chrono number",
                contacthub_core::limits::quote(chrono)
            )));
        }
        self.hub
            .store
            .courrier(tenant, chrono)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("no letter {chrono} in this commune")))
    }

    /// Writes a mail-room event about `chrono` and returns the letter as it is then.
    async fn bookkeeping(
        &self,
        tenant: &str,
        chrono: &str,
        agent: String,
        payload: Payload,
    ) -> Result<Response<CourrierState>, Status> {
        self.letter(tenant, chrono)?;
        let now = (self.hub.clock)();
        let source_id = uuid::Uuid::new_v4().to_string();
        let e = pb::Event {
            event_id: event_id(tenant, "courrier", &source_id),
            tenant: tenant.into(),
            channel: pb::Channel::BackOffice as i32,
            occurred_at: Some(ts::from_micros(now)),
            recorded_at: Some(ts::from_micros(now)),
            schema_version: SCHEMA_VERSION,
            direction: pb::Direction::Internal as i32,
            source: "courrier".into(),
            source_id,
            agent_id: agent,
            payload: Some(payload),
            ..Default::default()
        };
        self.hub.write(&e).await?;
        Ok(Response::new(self.letter(tenant, chrono)?))
    }
}

fn agent_of(agent: Option<crate::auth::Agent>, claimed: &str) -> String {
    agent.map_or(claimed.to_string(), |a| a.id)
}

fn bound(t: &Option<contacthub_proto::Timestamp>, name: &str) -> Result<Option<i64>, Status> {
    t.as_ref()
        .map(|t| {
            ts::to_micros(t)
                .ok_or_else(|| Status::invalid_argument(format!("{name} is not a valid timestamp")))
        })
        .transpose()
}

#[tonic::async_trait]
impl CourrierService for Mailroom {
    async fn register_courrier(
        &self,
        req: Request<Streaming<pb::RegisterCourrierRequest>>,
    ) -> Result<Response<CourrierState>, Status> {
        let meta = Request::from_parts(req.metadata().clone(), Default::default(), ());
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
        let agent = self.hub.access.for_tenant(&meta, &header.tenant)?;
        self.hub.known_tenant(&header.tenant)?;
        let now = (self.hub.clock)();
        let received = bound(&header.received_at, "received_at")?.unwrap_or(now);
        if received > now + 300_000_000 {
            return Err(Status::invalid_argument("received_at is in the future"));
        }
        if header.kind == pb::courrier::Kind::RegisteredLetter as i32
            && header.tracking_number.trim().is_empty()
        {
            return Err(Status::invalid_argument(
                "a registered letter needs its tracking_number",
            ));
        }

        // Scans go to temporary files; nothing is kept unless the whole registration succeeds.
        let mut uploads: Vec<(String, Upload)> = Vec::new();
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
                        "at most {MAX_SCANS} scans per letter"
                    )));
                }
                let upload = self
                    .hub
                    .content
                    .begin(self.hub.max_scan_bytes)
                    .map_err(|e| crate::unavailable(format!("the content store: {e}")))?;
                uploads.push((chunk.filename.clone(), upload));
            } else if i > uploads.len() {
                return Err(Status::invalid_argument(format!(
                    "scan {i} started before scan {}",
                    uploads.len()
                )));
            }
            let (name, upload) = &mut uploads[i];
            upload
                .write(&chunk.data)
                .map_err(|e| Status::invalid_argument(format!("scan {i} ({name}) {e}")))?;
        }
        // Check every scan before keeping any.
        for (i, (name, upload)) in uploads.iter().enumerate() {
            upload
                .check()
                .map_err(|e| Status::invalid_argument(format!("scan {i} ({name}) {e}")))?;
        }
        let mut attachments = Vec::new();
        let mut names = Vec::new();
        for (i, (name, upload)) in uploads.into_iter().enumerate() {
            let a = upload
                .finish(&self.hub.content)
                .map_err(|e| Status::invalid_argument(format!("scan {i} ({name}) {e}")))?;
            attachments.push(a);
            names.push(name);
        }

        let source_id = if header.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            header.idempotency_key.clone()
        };
        let payload = Payload::Courrier(pb::Courrier {
            kind: if header.kind == 0 {
                pb::courrier::Kind::Letter as i32
            } else {
                header.kind
            },
            chrono: String::new(),
            tracking_number: header.tracking_number.clone(),
            addressed_to_service: header.addressed_to_service.clone(),
        });
        let mut e = contact(
            &header.tenant,
            "courrier",
            &source_id,
            received,
            now,
            payload,
            header.sender.clone().unwrap_or_default(),
        );
        e.category = if header.category == 0 {
            pb::Category::Other as i32
        } else {
            header.category
        };
        e.attachments = attachments;
        e.agent_id = agent_of(agent, &header.agent_id);
        if let Some(p) = e.personal.as_mut() {
            p.subject = header.subject.clone();
            p.attachment_names = names;
        }
        self.hub.write(&e).await?;
        let state = self
            .hub
            .store
            .courrier_by_event(&e.tenant, &e.event_id)
            .map_err(internal)?
            .ok_or_else(|| {
                Status::internal(format!("letter {} projected without a record", e.event_id))
            })?;
        tracing::info!(tenant = %e.tenant, chrono = %state.chrono, scans = state.scans.len(), "courrier registered");
        Ok(Response::new(state))
    }

    async fn route_courrier(
        &self,
        req: Request<pb::RouteCourrierRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        let agent = self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.hub.known_tenant(&r.tenant)?;
        if r.service.trim().is_empty() {
            return Err(Status::invalid_argument("service is required"));
        }
        let payload = Payload::CourrierRouted(pb::CourrierRouted {
            chrono: r.chrono.clone(),
            service: r.service.trim().to_string(),
            note: r.note,
        });
        self.bookkeeping(&r.tenant, &r.chrono, agent_of(agent, &r.agent_id), payload)
            .await
    }

    async fn record_step(
        &self,
        req: Request<pb::RecordStepRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        let agent = self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.hub.known_tenant(&r.tenant)?;
        if r.step.trim().is_empty() {
            return Err(Status::invalid_argument("step is required"));
        }
        let payload = Payload::CourrierStep(pb::CourrierStep {
            chrono: r.chrono.clone(),
            step: r.step,
            note: r.note,
        });
        self.bookkeeping(&r.tenant, &r.chrono, agent_of(agent, &r.agent_id), payload)
            .await
    }

    async fn mark_answered(
        &self,
        req: Request<pb::MarkAnsweredRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        let agent = self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.hub.known_tenant(&r.tenant)?;
        if r.answer_channel == 0 || r.answer_channel == pb::Channel::BackOffice as i32 {
            return Err(Status::invalid_argument(
                "answer_channel must say how the answer went (courrier, email, sms, phone...)",
            ));
        }
        let payload = Payload::CourrierAnswered(pb::CourrierAnswered {
            chrono: r.chrono.clone(),
            answer_channel: r.answer_channel,
            answer_ref: r.answer_ref,
        });
        self.bookkeeping(&r.tenant, &r.chrono, agent_of(agent, &r.agent_id), payload)
            .await
    }

    async fn get_courrier(
        &self,
        req: Request<pb::GetCourrierRequest>,
    ) -> Result<Response<CourrierState>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.hub.known_tenant(&r.tenant)?;
        Ok(Response::new(self.letter(&r.tenant, &r.chrono)?))
    }

    async fn list_courrier(
        &self,
        req: Request<pb::ListCourrierRequest>,
    ) -> Result<Response<pb::ListCourrierResponse>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        let tenant = self.hub.known_tenant(&r.tenant)?.clone();
        let since = bound(&r.since, "since")?.unwrap_or(i64::MIN);
        let until = bound(&r.until, "until")?.unwrap_or(i64::MAX);
        let now = (self.hub.clock)();
        let limit = if r.limit == 0 {
            100
        } else {
            r.limit.min(10_000) as usize
        };
        let courriers = self
            .hub
            .store
            .courriers(&r.tenant)
            .map_err(internal)?
            .into_iter()
            .filter(|s| {
                r.service.is_empty()
                    || s.service == r.service
                    || (s.service.is_empty() && s.addressed_to_service == r.service)
            })
            .filter(|s| r.status == 0 || s.status == r.status)
            .filter(|s| {
                let at = s
                    .registered_at
                    .as_ref()
                    .and_then(ts::to_micros)
                    .unwrap_or(0);
                at >= since && at < until
            })
            .filter(|s| !r.overdue_only || is_overdue(s, &tenant, now))
            .take(limit)
            .collect();
        Ok(Response::new(pb::ListCourrierResponse { courriers }))
    }

    async fn get_receipt(
        &self,
        req: Request<pb::GetCourrierRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        let tenant = self.hub.known_tenant(&r.tenant)?.clone();
        let state = self.letter(&r.tenant, &r.chrono)?;
        let pdf = receipt_pdf(&state, &tenant, std::slice::from_ref(&state.sender_display));
        Ok(Response::new(pb::Receipt {
            chrono: state.chrono,
            pdf,
        }))
    }

    async fn courrier_report(
        &self,
        req: Request<pb::CourrierReportRequest>,
    ) -> Result<Response<pb::CourrierReportResponse>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        let tenant = self.hub.known_tenant(&r.tenant)?.clone();
        let since = bound(&r.since, "since")?.unwrap_or(i64::MIN);
        let until = bound(&r.until, "until")?.unwrap_or(i64::MAX);
        let states = self.hub.store.courriers(&r.tenant).map_err(internal)?;
        Ok(Response::new(report(
            &states,
            &tenant,
            since,
            until,
            (self.hub.clock)(),
        )))
    }

    async fn list_unmatched_scans(
        &self,
        req: Request<pb::ListUnmatchedScansRequest>,
    ) -> Result<Response<pb::ListUnmatchedScansResponse>, Status> {
        let tenant = req.get_ref().tenant.clone();
        // Every commune's scans need the ops right; an agent still sees only its communes'
        // (file names carry personal data), and scans no commune can be told from only with
        // access to every commune.
        let agent = if tenant.is_empty() {
            self.hub.access.for_ops(&req)?
        } else {
            let agent = self.hub.access.for_tenant(&req, &tenant)?;
            self.hub.known_tenant(&tenant)?;
            agent
        };
        let scans = match &self.hub.scan_inbox {
            Some(dir) => crate::hotfolder::unmatched(dir, &self.hub.tenants)
                .map_err(|e| crate::unavailable(format!("the scan inbox: {e}")))?,
            None => Vec::new(),
        };
        let scans = scans
            .into_iter()
            .filter(|s| tenant.is_empty() || s.tenant == tenant)
            .filter(|s| {
                agent.as_ref().is_none_or(|a| {
                    if s.tenant.is_empty() {
                        a.all_communes()
                    } else {
                        a.may_read(&s.tenant)
                    }
                })
            })
            .collect();
        Ok(Response::new(pb::ListUnmatchedScansResponse { scans }))
    }
}
