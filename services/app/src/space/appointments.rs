//! « Prendre rendez-vous » on the citizens' space: the person's own appointments, booking a
//! free slot, moving or cancelling one of theirs still to come.

use super::Citizen;
use crate::appointments::Free;
use crate::{App, Error, Result};
use contacthub_core::pb::{self, appointment::Status};

impl App {
    /// The person's appointments, soonest first.
    pub fn my_appointments(&self, c: &Citizen) -> Result<Vec<pb::Appointment>> {
        let me = self.own_record(c)?;
        Ok(self
            .store
            .citizen_appointments(c.tenant(), &me)?
            .into_iter()
            .filter(|a| a.status != Status::Refused as i32)
            .collect())
    }

    /// The free slots of kind `code`, for the person (signed in and linked).
    pub fn slots_for(&self, c: &Citizen, code: &str, from_us: i64, days: u32) -> Result<Vec<Free>> {
        self.own_record(c)?;
        self.free_slots(c.tenant(), code, from_us, days)
    }

    /// Books slot `start_us` of kind `code` for the person.
    pub async fn book_my_appointment(
        &self,
        c: &Citizen,
        code: &str,
        start_us: i64,
    ) -> Result<pb::Appointment> {
        let me = self.own_record(c)?;
        self.writable_citizen(c.tenant(), &me)?;
        self.book(c.tenant(), code, start_us, &me, "", None).await
    }

    /// Moves one of the person's appointments still to come to slot `start_us` of its kind,
    /// in one step: the new one, or [`Error::Conflict`] with the old one kept.
    pub async fn move_my_appointment(
        &self,
        c: &Citizen,
        id: &str,
        start_us: i64,
    ) -> Result<pb::Appointment> {
        let mine = self.my_appointment(c, id)?;
        self.writable_citizen(c.tenant(), &mine.citizen_id)?;
        self.book(
            c.tenant(),
            &mine.kind.clone(),
            start_us,
            &mine.citizen_id,
            "",
            Some(&mine),
        )
        .await
    }

    /// One of the person's appointments (another's is « not found »).
    pub fn my_appointment(&self, c: &Citizen, id: &str) -> Result<pb::Appointment> {
        let me = self.own_record(c)?;
        self.store
            .appointment(c.tenant(), id)?
            .filter(|a| a.citizen_id == me && a.status != Status::Refused as i32)
            .ok_or_else(|| Error::NotFound("vous n'avez pas ce rendez-vous".into()))
    }

    /// Cancels one of the person's appointments still to come.
    pub async fn cancel_my_appointment(&self, c: &Citizen, id: &str) -> Result<()> {
        let mine = self.my_appointment(c, id)?;
        if mine.start_us <= self.now() {
            return Err(Error::Invalid("ce rendez-vous est passé".into()));
        }
        self.cancel(c.tenant(), &mine, "").await
    }
}
