//! The `appointment` commands (free slots, booking for a person, moving, cancelling, whether
//! they came, a day's or week's agenda) over the gRPC AppointmentService of a running hub.
//! Times in Paris local time.

use crate::cli::*;
use crate::commands::{authed, connect, status_err};
use anyhow::{bail, Result};
use contacthub_core::courrier::{paris, paris_local_to_utc_us};
use contacthub_proto::ts;
use contacthub_proto::v1::{self as pb, appointment_service_client::AppointmentServiceClient};
use tonic::transport::Channel;

async fn client(c: &ClientArgs) -> Result<AppointmentServiceClient<Channel>> {
    Ok(AppointmentServiceClient::new(connect(c).await?))
}

/// A day as people type it: `2026-12-07` or `07/12/2026`.
fn day(text: &str) -> Result<chrono::NaiveDate> {
    let t = text.trim();
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(t, "%d/%m/%Y"))
        .map_err(|_| anyhow::anyhow!("« {t} » n'est pas une date (07/12/2026 ou 2026-12-07)"))
}

/// « 07/12/2026 09:20 ».
fn when(us: i64) -> String {
    paris(us).format("%d/%m/%Y %H:%M").to_string()
}

/// A slot's start as people type it: `07/12/2026 09:20` (Paris).
fn start(text: &str) -> Result<contacthub_proto::Timestamp> {
    let Ok(local) = chrono::NaiveDateTime::parse_from_str(text.trim(), "%d/%m/%Y %H:%M") else {
        bail!("« {} » n'est pas une heure (07/12/2026 09:20)", text.trim());
    };
    Ok(ts::from_micros(paris_local_to_utc_us(local)))
}

/// One appointment, on one line.
fn line(a: &pb::Appointment) -> String {
    use pb::appointment::{Attendance, Status};
    let state = match (
        Status::try_from(a.status),
        Attendance::try_from(a.attendance),
    ) {
        (Ok(Status::Booked), Ok(Attendance::Came)) => "venu",
        (Ok(Status::Booked), Ok(Attendance::NoShow)) => "absent",
        (Ok(Status::Booked), _) => "pris",
        (Ok(Status::Cancelled), _) => "annulé",
        (Ok(Status::Moved), _) => "déplacé",
        _ => "refusé",
    };
    format!(
        "{}  {:<16}  fiche {:<12}  {state}  [{}]",
        when(a.start_us),
        a.kind,
        a.citizen_id,
        a.appointment_id
    )
}

/// `contacthub appointment …`.
pub async fn run(command: AppointmentCommand) -> Result<()> {
    match command {
        AppointmentCommand::Slots(a) => {
            let from = match &a.from {
                Some(d) => Some(ts::from_micros(paris_local_to_utc_us(
                    day(d)?.and_hms_opt(0, 0, 0).unwrap_or_default(),
                ))),
                None => None,
            };
            let r = crate::rpc!(
                &a.at.client,
                list_slots,
                pb::ListSlotsRequest {
                    tenant: a.at.tenant.clone(),
                    kind: a.service.clone(),
                    from,
                    days: a.days,
                }
            );
            if r.slots.is_empty() {
                crate::say!("aucun créneau libre");
            }
            for s in &r.slots {
                let start = s.start.as_ref().and_then(ts::to_micros).unwrap_or(0);
                let places = if s.left > 1 { "places" } else { "place" };
                crate::say!("{}  {} {places}", when(start), s.left);
            }
        }
        AppointmentCommand::Book(a) => {
            let r = crate::rpc!(
                &a.at.client,
                book,
                pb::BookRequest {
                    tenant: a.at.tenant.clone(),
                    kind: a.service.clone(),
                    start: Some(start(&a.at_time)?),
                    citizen_id: a.citizen.clone(),
                }
            );
            crate::say!("{}", line(&r));
        }
        AppointmentCommand::Move(a) => {
            let r = crate::rpc!(
                &a.at.client,
                r#move,
                pb::MoveAppointmentRequest {
                    tenant: a.at.tenant.clone(),
                    appointment_id: a.id.clone(),
                    start: Some(start(&a.at_time)?),
                }
            );
            crate::say!("{}", line(&r));
        }
        AppointmentCommand::Attendance(a) => {
            let r = crate::rpc!(
                &a.at.client,
                record_attendance,
                pb::RecordAttendanceRequest {
                    tenant: a.at.tenant.clone(),
                    appointment_id: a.id.clone(),
                    came: a.outcome == Presence::Came,
                }
            );
            crate::say!("{}", line(&r));
        }
        AppointmentCommand::Cancel(a) => {
            let r = crate::rpc!(
                &a.at.client,
                cancel,
                pb::CancelAppointmentRequest {
                    tenant: a.at.tenant.clone(),
                    appointment_id: a.id.clone(),
                }
            );
            crate::say!("{}", line(&r));
        }
        AppointmentCommand::List(a) => {
            let r = crate::rpc!(
                &a.at.client,
                list_day,
                pb::ListDayRequest {
                    tenant: a.at.tenant.clone(),
                    day: day(&a.day)?.format("%Y-%m-%d").to_string(),
                    days: if a.week { 7 } else { 1 },
                }
            );
            if r.appointments.is_empty() {
                crate::say!(
                    "aucun rendez-vous {}",
                    if a.week { "ces sept jours" } else { "ce jour" }
                );
            }
            for x in &r.appointments {
                crate::say!("{}", line(x));
            }
        }
    }
    Ok(())
}
