//! Appointments (prendre rendez-vous): the free slots of a commune's kinds, a slot booked for
//! a person, an appointment cancelled. A booking is an event; the projector gives a slot to
//! its first bookings in log order (one log partition per commune, on both backends), so of
//! two people racing for its last place one has it and the other is told.

use crate::{App, Error, Result};
use contacthub_core::appointment::{slots, Kind};
use contacthub_core::limits::quote;
use contacthub_core::pb::{self, appointment::Status, event::Payload};
use contacthub_proto::ts;

/// The source of bookings and cancellations on the log.
const SOURCE: &str = "rendez-vous";

/// A free slot: its start and how many places are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free {
    pub start_us: i64,
    pub left: u32,
}

impl App {
    /// Kind `code` of commune `tenant`.
    pub fn appointment_kind(&self, tenant: &str, code: &str) -> Result<&Kind> {
        self.tenant(tenant)?.appointment(code).ok_or_else(|| {
            Error::NotFound(format!(
                "aucun rendez-vous « {} » dans cette commune",
                quote(code)
            ))
        })
    }

    /// The free slots of kind `code` from `from_us` (not before now) for `days` days.
    pub fn free_slots(
        &self,
        tenant: &str,
        code: &str,
        from_us: i64,
        days: u32,
    ) -> Result<Vec<Free>> {
        let commune = self.tenant(tenant)?;
        let kind = self.appointment_kind(tenant, code)?;
        let Some(week) = commune.appointment_week(kind) else {
            return Err(Error::Invalid(
                "les horaires de ces rendez-vous ne sont pas renseignés dans le fichier des communes"
                    .into(),
            ));
        };
        let schedule = commune.schedule.clone().unwrap_or_default();
        let mut out = Vec::new();
        for start in slots(
            kind,
            week,
            &schedule,
            from_us.max(self.now()),
            days.min(366),
        ) {
            let taken = self.store.slot_bookings(tenant, &kind.code, start)? as u32;
            if taken < kind.desks {
                out.push(Free {
                    start_us: start,
                    left: kind.desks - taken,
                });
            }
        }
        Ok(out)
    }

    /// Books slot `start_us` of kind `code` for `citizen` (by `agent`, or by the person when
    /// empty); the appointment, or [`Error::Conflict`] when the slot was taken meanwhile.
    pub(crate) async fn book(
        &self,
        tenant: &str,
        code: &str,
        start_us: i64,
        citizen: &str,
        agent: &str,
    ) -> Result<pb::Appointment> {
        let kind = self.appointment_kind(tenant, code)?.clone();
        let offered = self
            .free_slots(tenant, code, self.now(), kind.horizon_days)?
            .iter()
            .any(|f| f.start_us == start_us);
        if !offered {
            return Err(Error::Conflict(
                "ce créneau n'est pas libre : choisissez-en un autre".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut e = self.internal_event(
            SOURCE,
            tenant,
            &id,
            agent,
            Payload::AppointmentBooked(pb::AppointmentBooked {
                appointment_id: id.clone(),
                kind: kind.code.clone(),
                start: Some(ts::from_micros(start_us)),
                minutes: u32::from(kind.minutes),
                desks: kind.desks,
            }),
        );
        e.personal = Some(crate::space::about(citizen));
        self.write(&e).await?;
        let a = self
            .store
            .appointment(tenant, &id)?
            .ok_or_else(|| Error::Internal("the appointment projected unseen".into()))?;
        if a.status == Status::Refused as i32 {
            tracing::info!(tenant, "appointment: the slot was taken meanwhile");
            return Err(Error::Conflict(
                "ce créneau vient d'être pris : choisissez-en un autre".into(),
            ));
        }
        Ok(a)
    }

    /// Cancels appointment `a` (by the person when `agent` is empty).
    pub(crate) async fn cancel(
        &self,
        tenant: &str,
        a: &pb::Appointment,
        agent: &str,
    ) -> Result<()> {
        if a.status != Status::Booked as i32 {
            return Err(Error::Invalid("ce rendez-vous n'est plus pris".into()));
        }
        let mut e = self.internal_event(
            SOURCE,
            tenant,
            &format!("{}/annulation", a.appointment_id),
            agent,
            Payload::AppointmentCancelled(pb::AppointmentCancelled {
                appointment_id: a.appointment_id.clone(),
                by_person: agent.is_empty(),
            }),
        );
        e.personal = Some(crate::space::about(&a.citizen_id));
        self.write(&e).await?;
        Ok(())
    }
}
