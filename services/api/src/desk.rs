//! The desk service: translates gRPC requests into the application layer's desk queries and
//! commands ([`contacthub_app::desk`]).

use crate::commands::Command;
use crate::status;
use contacthub_app::App;
use contacthub_core::pb::{self, desk_service_server::DeskService};
use std::pin::Pin;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

pub struct Desk {
    app: App,
    /// Becomes true when the server shuts down; watch streams then end.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Desk {
    pub fn new(app: App, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Desk { app, stopping }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::TimelineEntry, Status>> + Send>>;

#[tonic::async_trait]
impl DeskService for Desk {
    async fn get_timeline(
        &self,
        req: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        let started = std::time::Instant::now();
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        let page = self
            .app
            .timeline(&scope, &r.command()?)
            .map(Response::new)
            .map_err(status);
        metrics::histogram!("contacthub_get_timeline_seconds")
            .record(started.elapsed().as_secs_f64());
        page
    }

    async fn get_contact(
        &self,
        req: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::GetContactResponse>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        self.app
            .contact(&scope, &r.event_id)
            .map(Response::new)
            .map_err(status)
    }

    type WatchTimelineStream = WatchStream;

    async fn watch_timeline(
        &self,
        req: Request<pb::WatchTimelineRequest>,
    ) -> Result<Response<Self::WatchTimelineStream>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        let rx = self
            .app
            .watch(
                &scope,
                &crate::commands::who(&r.citizen)?,
                self.stopping.clone(),
            )
            .map_err(status)?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|e| e.map_err(status));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn record_visit(
        &self,
        req: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::RecordVisitResponse>, Status> {
        let r = req.get_ref();
        let scope = crate::scope_of(&self.app, &req, &r.tenant)?;
        let entry = self
            .app
            .record_visit(&scope, &r.command()?)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RecordVisitResponse {
            entry: Some(entry),
        }))
    }
}
