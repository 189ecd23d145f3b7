//! Appointments (prendre rendez-vous): the free slots of a commune's kinds, a slot booked for
//! a person, an appointment cancelled. A booking is an event; the projector gives a slot to
//! its first bookings in log order (one log partition per commune, on both backends), so of
//! two people racing for its last place one has it and the other is told.

use crate::auth::Scope;
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
    /// Kind `code` of commune `tenant` (or the first kind of service `code`).
    pub fn appointment_kind(&self, tenant: &str, code: &str) -> Result<&Kind> {
        let commune = self.tenant(tenant)?;
        commune
            .appointment(code)
            .or_else(|| commune.appointments.iter().find(|k| k.service == code))
            .ok_or_else(|| {
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

    /// Refused unless the scope's agent receives for `kind`'s service or is an agent of no
    /// service and the service is not confidential (a CCAS appointment is the CCAS's).
    fn handles(&self, scope: &Scope, kind: &Kind) -> Result<()> {
        let Some(agent) = scope.agent() else {
            return Ok(());
        };
        let confidential = self
            .tenant(scope.commune())?
            .service(&kind.service)
            .is_some_and(|s| s.confidential);
        if agent.in_service(&kind.service) || (agent.is_generalist() && !confidential) {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "les rendez-vous « {} » sont ceux d'un autre service",
            kind.name
        )))
    }

    /// The free slots of kind `code`, for an agent.
    pub fn appointment_slots(
        &self,
        scope: &Scope,
        code: &str,
        from_us: i64,
        days: u32,
    ) -> Result<Vec<Free>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.free_slots(tenant, code, from_us, days)
    }

    /// An agent books slot `start_us` of kind `code` for `citizen` (at the counter, on the
    /// phone).
    pub async fn book_for(
        &self,
        scope: &Scope,
        code: &str,
        start_us: i64,
        citizen: &str,
    ) -> Result<pb::Appointment> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let kind = self.appointment_kind(tenant, code)?.clone();
        self.handles(scope, &kind)?;
        let record = self.writable_citizen(tenant, citizen)?;
        let who = self.store.canonical(tenant, &record.citizen_id)?;
        self.book(tenant, code, start_us, &who, &scope.agent_id())
            .await
    }

    /// An agent cancels an appointment of their service.
    pub async fn cancel_for(&self, scope: &Scope, id: &str) -> Result<pb::Appointment> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let a = self
            .store
            .appointment(tenant, id)?
            .ok_or_else(|| Error::NotFound(format!("aucun rendez-vous {}", quote(id))))?;
        let kind = self.appointment_kind(tenant, &a.kind)?.clone();
        self.handles(scope, &kind)?;
        self.cancel(tenant, &a, &scope.agent_id()).await?;
        self.store
            .appointment(tenant, id)?
            .ok_or_else(|| Error::Internal("the appointment vanished".into()))
    }

    /// The appointments of `day` (Paris) the agent receives, by start; each read recorded.
    pub fn agenda(&self, scope: &Scope, day: chrono::NaiveDate) -> Result<Vec<pb::Appointment>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let from = contacthub_core::courrier::paris_local_to_utc_us(
            day.and_hms_opt(0, 0, 0).unwrap_or_default(),
        );
        let to = from + 24 * 3_600_000_000;
        let mut out = Vec::new();
        for a in self.store.agenda(tenant, from, to)? {
            let Some(kind) = commune.appointment(&a.kind) else {
                continue;
            };
            if self.handles(scope, kind).is_err() {
                continue;
            }
            self.read_by(
                scope,
                &a.citizen_id,
                crate::audit::Reading::List,
                &a.appointment_id,
            )?;
            out.push(a);
        }
        Ok(out)
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
