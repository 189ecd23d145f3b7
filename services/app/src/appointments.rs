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
    /// empty) — in place of `replaces`, one of theirs, for a move —; the appointment, or
    /// [`Error::Conflict`] when the slot was taken meanwhile (a moved one is then kept). The
    /// person is sent its confirmation.
    pub(crate) async fn book(
        &self,
        tenant: &str,
        code: &str,
        start_us: i64,
        citizen: &str,
        agent: &str,
        replaces: Option<&pb::Appointment>,
    ) -> Result<pb::Appointment> {
        let kind = self.appointment_kind(tenant, code)?.clone();
        if let Some(old) = replaces {
            if old.status != Status::Booked as i32 || old.start_us <= self.now() {
                return Err(Error::Invalid(
                    "ce rendez-vous n'est plus à venir : il ne peut pas être déplacé".into(),
                ));
            }
            if old.kind != kind.code {
                return Err(Error::Invalid(
                    "un rendez-vous se déplace vers un créneau du même type".into(),
                ));
            }
            if old.start_us == start_us {
                return Err(Error::Invalid(
                    "c'est déjà l'horaire de ce rendez-vous : choisissez-en un autre".into(),
                ));
            }
        }
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
                replaces: replaces
                    .map(|r| r.appointment_id.clone())
                    .unwrap_or_default(),
                service: kind.service.clone(),
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
        self.confirm_appointment(tenant, &a).await;
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
        self.book(tenant, code, start_us, &who, &scope.agent_id(), None)
            .await
    }

    /// An appointment of the agent's service, with its kind (or not found / refused).
    fn appointment_for_work(&self, scope: &Scope, id: &str) -> Result<(pb::Appointment, Kind)> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let a = self
            .store
            .appointment(tenant, id)?
            .filter(|a| a.status != Status::Refused as i32)
            .ok_or_else(|| Error::NotFound(format!("aucun rendez-vous {}", quote(id))))?;
        let kind = self.appointment_kind(tenant, &a.kind)?.clone();
        self.handles(scope, &kind)?;
        Ok((a, kind))
    }

    /// An agent moves an appointment of their service to slot `start_us` of its kind, in one
    /// step: the new one, or [`Error::Conflict`] with the old one kept.
    pub async fn move_for(
        &self,
        scope: &Scope,
        id: &str,
        start_us: i64,
    ) -> Result<pb::Appointment> {
        let (a, kind) = self.appointment_for_work(scope, id)?;
        self.writable_citizen(scope.commune(), &a.citizen_id)?;
        self.book(
            scope.commune(),
            &kind.code,
            start_us,
            &a.citizen_id,
            &scope.agent_id(),
            Some(&a),
        )
        .await
    }

    /// An agent records whether the person came, once the appointment has begun.
    pub async fn record_attendance(
        &self,
        scope: &Scope,
        id: &str,
        came: bool,
    ) -> Result<pb::Appointment> {
        let (a, _) = self.appointment_for_work(scope, id)?;
        let tenant = scope.commune();
        self.writable_citizen(tenant, &a.citizen_id)?;
        if a.status != Status::Booked as i32 {
            return Err(Error::Invalid(
                "ce rendez-vous n'est plus pris : personne n'était attendu".into(),
            ));
        }
        if a.start_us > self.now() {
            return Err(Error::Invalid(
                "ce rendez-vous n'a pas encore commencé".into(),
            ));
        }
        if a.attendance != pb::appointment::Attendance::Unspecified as i32 {
            return Err(Error::Invalid(
                "la présence à ce rendez-vous est déjà constatée".into(),
            ));
        }
        let mut e = self.internal_event(
            SOURCE,
            tenant,
            &format!("{}/presence", a.appointment_id),
            &scope.agent_id(),
            Payload::AppointmentAttended(pb::AppointmentAttended {
                appointment_id: a.appointment_id.clone(),
                came,
                kind: a.kind.clone(),
            }),
        );
        e.personal = Some(crate::space::about(&a.citizen_id));
        self.write(&e).await?;
        self.store
            .appointment(tenant, id)?
            .ok_or_else(|| Error::Internal("the appointment vanished".into()))
    }

    /// An agent cancels an appointment of their service.
    pub async fn cancel_for(&self, scope: &Scope, id: &str) -> Result<pb::Appointment> {
        let tenant = scope.commune();
        let (a, _) = self.appointment_for_work(scope, id)?;
        self.writable_citizen(tenant, &a.citizen_id)?;
        self.cancel(tenant, &a, &scope.agent_id()).await?;
        self.store
            .appointment(tenant, id)?
            .ok_or_else(|| Error::Internal("the appointment vanished".into()))
    }

    /// The appointments of `days` days from `day` (Paris; 7 at most) the agent receives, by
    /// start; each read recorded.
    pub fn agenda(
        &self,
        scope: &Scope,
        day: chrono::NaiveDate,
        days: u32,
    ) -> Result<Vec<pb::Appointment>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let midnight = |d: chrono::NaiveDate| {
            contacthub_core::courrier::paris_local_to_utc_us(
                d.and_hms_opt(0, 0, 0).unwrap_or_default(),
            )
        };
        let from = midnight(day);
        let to = midnight(day + chrono::Duration::days(i64::from(days.clamp(1, 7))));
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

    /// A person's appointments the agent may see (of the kinds they receive, or, an agent of
    /// no service, of services that are not confidential), soonest first; moved and refused
    /// ones left out; each read recorded.
    pub fn citizen_appointments(
        &self,
        scope: &Scope,
        citizen: &str,
    ) -> Result<Vec<pb::Appointment>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let mut out = Vec::new();
        for member in self
            .store
            .members(tenant, &self.store.canonical(tenant, citizen)?)?
        {
            for a in self.store.citizen_appointments(tenant, &member)? {
                let shown =
                    a.status == Status::Booked as i32 || a.status == Status::Cancelled as i32;
                let seen = commune
                    .appointment(&a.kind)
                    .is_some_and(|k| self.handles(scope, k).is_ok());
                if shown && seen {
                    self.read_by(
                        scope,
                        &a.citizen_id,
                        crate::audit::Reading::List,
                        &a.appointment_id,
                    )?;
                    out.push(a);
                }
            }
        }
        out.sort_by_key(|a| a.start_us);
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
                kind: a.kind.clone(),
            }),
        );
        e.personal = Some(crate::space::about(&a.citizen_id));
        self.write(&e).await?;
        Ok(())
    }
}
