//! The desk service: timelines by citizen or identifier, live watch, and walk-in visits.

use crate::{internal, Hub, WatchGuard};
use contacthub_core::event::contact;
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::limits::quote;
use contacthub_core::pb::{
    self, citizen_ref::By, desk_service_server::DeskService, event::Payload,
};
use contacthub_projector::TimelineQuery;
use contacthub_proto::ts;
use std::pin::Pin;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct Desk {
    hub: Hub,
    /// Becomes true when the server shuts down; watch streams then end.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Desk {
    pub fn new(hub: Hub, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Desk { hub, stopping }
    }

    fn tenant(&self, code: &str) -> Result<(), Status> {
        self.hub.known_tenant(code).map(|_| ())
    }

    /// The canonical citizen designated by `r` in `tenant`, or NOT_FOUND.
    fn resolve(&self, tenant: &str, r: Option<&pb::CitizenRef>) -> Result<String, Status> {
        let store = &self.hub.store;
        let by = r.and_then(|r| r.by.as_ref()).ok_or_else(|| {
            Status::invalid_argument("citizen is required (citizen_id, phone or email)")
        })?;
        let id = match by {
            By::CitizenId(id) => store
                .citizen(tenant, id)
                .map_err(internal)?
                .map(|c| c.citizen_id),
            By::Phone(raw) => {
                let n = normalize_phone(raw).ok_or_else(|| {
                    Status::invalid_argument(format!("{:?} is not a phone number", quote(raw)))
                })?;
                store.by_identifier(tenant, "phone", &n).map_err(internal)?
            }
            By::Email(raw) => {
                let n = normalize_email(raw).ok_or_else(|| {
                    Status::invalid_argument(format!("{:?} is not an e-mail address", quote(raw)))
                })?;
                store.by_identifier(tenant, "email", &n).map_err(internal)?
            }
        };
        let id = id.ok_or_else(|| Status::not_found("no such citizen in this commune"))?;
        store.canonical(tenant, &id).map_err(internal)
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::TimelineEntry, Status>> + Send>>;

#[tonic::async_trait]
impl DeskService for Desk {
    async fn get_timeline(
        &self,
        req: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.tenant(&r.tenant)?;
        let citizen_id = self.resolve(&r.tenant, r.citizen.as_ref())?;
        let bound =
            |t: &Option<contacthub_proto::Timestamp>, name: &str| -> Result<Option<i64>, Status> {
                t.as_ref()
                    .map(|t| {
                        ts::to_micros(t).ok_or_else(|| {
                            Status::invalid_argument(format!("{name} is not a valid timestamp"))
                        })
                    })
                    .transpose()
            };
        let q = TimelineQuery {
            channels: r.channels.clone(),
            since_us: bound(&r.since, "since")?,
            until_us: bound(&r.until, "until")?,
            page_size: if r.page_size == 0 {
                50
            } else {
                r.page_size as usize
            },
            page_token: (!r.page_token.is_empty()).then(|| r.page_token.clone()),
        };
        let page = self
            .hub
            .store
            .timeline(&r.tenant, &citizen_id, &q)
            .map_err(|e| match e {
                contacthub_projector::Error::PageToken(t) => {
                    Status::invalid_argument(format!("invalid page_token {:?}", quote(&t)))
                }
                e => internal(e),
            })?;
        let citizen = self
            .hub
            .store
            .citizen(&r.tenant, &citizen_id)
            .map_err(internal)?;
        Ok(Response::new(pb::GetTimelineResponse {
            citizen,
            entries: page.entries,
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn get_contact(
        &self,
        req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::GetContactResponse>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.tenant(&r.tenant)?;
        let entry = self
            .hub
            .store
            .applied_entry(&r.tenant, &r.event_id)
            .map_err(internal)?
            .ok_or_else(|| Status::not_found("no such contact in this commune"))?;
        let personal = self
            .hub
            .store
            .contact_detail(&r.tenant, &r.event_id)
            .map_err(internal)?;
        Ok(Response::new(pb::GetContactResponse {
            entry: Some(entry),
            personal,
        }))
    }

    type WatchTimelineStream = WatchStream;

    async fn watch_timeline(
        &self,
        req: Request<pb::WatchTimelineRequest>,
    ) -> Result<Response<Self::WatchTimelineStream>, Status> {
        self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.tenant(&r.tenant)?;
        // Subscribe before resolving, so nothing projected in between is missed.
        let mut rx = self.hub.projector.subscribe();
        let watched = self.resolve(&r.tenant, r.citizen.as_ref())?;
        let store = self.hub.store.clone();
        let tenant = r.tenant;
        let (tx, out) = tokio::sync::mpsc::channel(64);
        let mut stopping = self.stopping.clone();
        let guard = WatchGuard::new(&self.hub.open_watches);
        tokio::spawn(async move {
            let _guard = guard;
            loop {
                let next = tokio::select! {
                    // The client went away: free this task at once, not at the next entry.
                    _ = tx.closed() => break,
                    _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => {
                        let _ = tx.send(Err(Status::unavailable("the server is shutting down; watch again"))).await;
                        break;
                    }
                    next = rx.recv() => next,
                };
                let applied = match next {
                    Ok(a) => a,
                    Err(RecvError::Closed) => break,
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "watch fell {n} events behind; read the timeline again and re-watch"
                            ))))
                            .await;
                        break;
                    }
                };
                if applied.tenant != tenant {
                    continue;
                }
                for entry in &applied.entries {
                    let owner = match store.canonical(&tenant, &entry.citizen_id) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(internal(e))).await;
                            return;
                        }
                    };
                    if owner == watched && tx.send(Ok(entry.clone())).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }

    async fn record_visit(
        &self,
        req: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::RecordVisitResponse>, Status> {
        let agent = self.hub.access.for_tenant(&req, &req.get_ref().tenant)?;
        let r = req.into_inner();
        self.tenant(&r.tenant)?;
        let party = r.party.clone().unwrap_or_default();
        if !party.phone.is_empty() && normalize_phone(&party.phone).is_none() {
            return Err(Status::invalid_argument(format!(
                "party.phone {:?} is not a phone number",
                quote(&party.phone)
            )));
        }
        if !party.email.is_empty() && normalize_email(&party.email).is_none() {
            return Err(Status::invalid_argument(format!(
                "party.email {:?} is not an e-mail address",
                quote(&party.email)
            )));
        }
        if !party.citizen_id.is_empty()
            && self
                .hub
                .store
                .citizen(&r.tenant, &party.citizen_id)
                .map_err(internal)?
                .is_none()
        {
            return Err(Status::not_found(format!(
                "no citizen {:?} in this commune",
                quote(&party.citizen_id)
            )));
        }
        if r.idempotency_key.chars().count() > 128 {
            return Err(Status::invalid_argument(
                "idempotency_key is longer than 128 characters",
            ));
        }
        // What a retry with the same idempotency key must repeat exactly.
        let fingerprint = {
            use prost::Message;
            let mut same = r.clone();
            same.idempotency_key.clear();
            contacthub_core::event::content_fingerprint(
                &Default::default(),
                &[&same.encode_to_vec()],
            )
        };
        let now_us = (self.hub.clock)();
        let occurred_us = match &r.occurred_at {
            Some(t) => ts::to_micros(t)
                .ok_or_else(|| Status::invalid_argument("occurred_at is not a valid timestamp"))?,
            None => now_us,
        };
        let source_id = if r.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            r.idempotency_key.clone()
        };
        let mut e = contact(
            &r.tenant,
            "desk",
            &source_id,
            occurred_us,
            now_us,
            Payload::DeskVisit(pb::DeskVisit {
                desk: r.desk.clone(),
                duration_minutes: r.duration_minutes,
            }),
            party,
        );
        e.category = if r.category == 0 {
            pb::Category::Other as i32
        } else {
            r.category
        };
        e.request_id = r.request_id.clone();
        e.fingerprint = fingerprint;
        // An authenticated agent is who the token says, whatever the request claims.
        e.agent_id = agent.map_or(r.agent_id.clone(), |a| a.id);
        if let Some(p) = e.personal.as_mut() {
            p.subject = r.subject.clone();
            p.text = r.notes.clone();
        }
        self.hub.write(&e).await?;
        let entry = self
            .hub
            .store
            .applied_entry(&e.tenant, &e.event_id)
            .map_err(internal)?
            .ok_or_else(|| {
                Status::internal(format!(
                    "event {} was projected but has no timeline entry",
                    e.event_id
                ))
            })?;
        Ok(Response::new(pb::RecordVisitResponse {
            entry: Some(entry),
        }))
    }
}
