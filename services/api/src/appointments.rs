//! The appointment service: translates agents' requests (free slots, booking for a person,
//! moving, cancelling, whether they came, an agenda) into [`contacthub_app::appointments`].

use crate::status;
use contacthub_app::App;
use contacthub_core::pb::{self, appointment_service_server::AppointmentService};
use contacthub_proto::ts;
use tonic::{Request, Response, Status};

pub struct Appointments {
    app: App,
}

impl Appointments {
    pub fn new(app: App) -> Self {
        Appointments { app }
    }
}

/// The microseconds of `t`, or INVALID_ARGUMENT naming `what`.
fn micros(t: &Option<contacthub_proto::Timestamp>, what: &str) -> Result<Option<i64>, Status> {
    match t {
        None => Ok(None),
        Some(t) => ts::to_micros(t)
            .map(Some)
            .ok_or_else(|| Status::invalid_argument(format!("{what} n'est pas une date valide"))),
    }
}

#[tonic::async_trait]
impl AppointmentService for Appointments {
    async fn list_slots(
        &self,
        req: Request<pb::ListSlotsRequest>,
    ) -> Result<Response<pb::ListSlotsResponse>, Status> {
        let from = micros(&req.get_ref().from, "from")?.unwrap_or(0);
        let days = match req.get_ref().days {
            0 => 14,
            n => n,
        };
        crate::scoped!(self, req, |scope, r| self
            .app
            .appointment_slots(&scope, &r.kind, from, days)
            .map(|free| pb::ListSlotsResponse {
                slots: free
                    .into_iter()
                    .map(|f| pb::Slot {
                        start: Some(ts::from_micros(f.start_us)),
                        left: f.left,
                    })
                    .collect(),
            }))
    }

    async fn book(
        &self,
        req: Request<pb::BookRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        let start = micros(&req.get_ref().start, "start")?
            .ok_or_else(|| Status::invalid_argument("indiquez le début du créneau (start)"))?;
        crate::scoped!(self, req, |scope, r| self
            .app
            .book_for(&scope, &r.kind, start, &r.citizen_id)
            .await)
    }

    async fn cancel(
        &self,
        req: Request<pb::CancelAppointmentRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .cancel_for(&scope, &r.appointment_id)
            .await)
    }

    async fn list_day(
        &self,
        req: Request<pb::ListDayRequest>,
    ) -> Result<Response<pb::ListDayResponse>, Status> {
        let day = chrono::NaiveDate::parse_from_str(req.get_ref().day.trim(), "%Y-%m-%d")
            .map_err(|_| Status::invalid_argument("le jour s'écrit AAAA-MM-JJ"))?;
        crate::scoped!(self, req, |scope, r| self
            .app
            .agenda(&scope, day, r.days.max(1))
            .map(|appointments| pb::ListDayResponse { appointments }))
    }

    async fn r#move(
        &self,
        req: Request<pb::MoveAppointmentRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        let start = micros(&req.get_ref().start, "start")?
            .ok_or_else(|| Status::invalid_argument("indiquez le début du créneau (start)"))?;
        crate::scoped!(self, req, |scope, r| self
            .app
            .move_for(&scope, &r.appointment_id, start)
            .await)
    }

    async fn record_attendance(
        &self,
        req: Request<pb::RecordAttendanceRequest>,
    ) -> Result<Response<pb::Appointment>, Status> {
        crate::scoped!(self, req, |scope, r| self
            .app
            .record_attendance(&scope, &r.appointment_id, r.came)
            .await)
    }
}
