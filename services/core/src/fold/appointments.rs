//! Appointments: a slot goes to its first bookings in log order (`desks` at most), indexed by
//! slot (`as/`), person (`au/`) and day (`ad/`); a booking of a full slot is kept refused,
//! so the booker reads why; a cancellation frees the slot. A move is one booking that
//! replaces another: the old slot is freed only when the new one is had. Bookings,
//! cancellations and no-shows are counted for the dashboard, by service.

use super::{counters, get_msg, Folded, Kv};
use crate::dashboard::{DIM_COMMUNE, DIM_SERVICE};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{self, appointment::Status};
use crate::Result;
use contacthub_proto::ts::to_micros;
use prost::Message;

/// The person an event names (`personal.party.citizen_id`).
fn person(v: &Valid) -> String {
    v.event
        .personal
        .as_ref()
        .and_then(|p| p.party.as_ref())
        .map(|p| p.citizen_id.clone())
        .unwrap_or_default()
}

pub(crate) fn booked(
    kv: &mut impl Kv,
    v: &Valid,
    b: &pb::AppointmentBooked,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::appointment(tenant, &b.appointment_id);
    if get_msg::<pb::Appointment>(kv, &key)?.is_some() {
        return Ok(Err(Invalid(format!(
            "appointment {} is booked already",
            b.appointment_id
        ))));
    }
    let Some(start) = b.start.as_ref().and_then(to_micros) else {
        return Ok(Err(Invalid("appointment_booked without its start".into())));
    };
    let citizen = person(v);
    let slot = keys::appointment_slot(tenant, &b.kind, start);
    // The appointment it replaces, when it is a move: the person's, and still booked.
    let mut replaced = None;
    if !b.replaces.is_empty() {
        let old = get_msg::<pb::Appointment>(kv, &keys::appointment(tenant, &b.replaces))?;
        match old {
            Some(old) if old.status == Status::Booked as i32 && old.citizen_id == citizen => {
                replaced = Some(old)
            }
            _ => {
                return Ok(Err(Invalid(format!(
                    "appointment {} moves {}, which is not the person's booked appointment",
                    b.appointment_id, b.replaces
                ))))
            }
        }
    }
    // Its own old place does not count against a move within the same slot.
    let taken = kv
        .scan_prefix(&slot, b.desks as usize + 1)?
        .iter()
        .filter(|(k, _)| !k.ends_with(b.replaces.as_bytes()) || b.replaces.is_empty())
        .count();
    let status = if taken >= b.desks as usize {
        Status::Refused
    } else {
        Status::Booked
    };
    let a = pb::Appointment {
        appointment_id: b.appointment_id.clone(),
        kind: b.kind.clone(),
        start_us: start,
        minutes: b.minutes,
        citizen_id: citizen.clone(),
        status: status as i32,
        booked_us: v.occurred_us,
        cancelled_us: 0,
        booked_by: v.event.agent_id.clone(),
        replaces: b.replaces.clone(),
        service: b.service.clone(),
        ..Default::default()
    };
    kv.put(key, a.encode_to_vec());
    if status == Status::Refused {
        return Ok(Ok(Vec::new()));
    }
    match replaced {
        Some(mut old) => {
            free(kv, tenant, &old);
            old.status = Status::Moved as i32;
            old.cancelled_us = v.occurred_us;
            old.moved_to = b.appointment_id.clone();
            kv.put(
                keys::appointment(tenant, &old.appointment_id),
                old.encode_to_vec(),
            );
        }
        None => count(kv, tenant, v.occurred_us, &b.service, APPOINTMENTS)?,
    }
    kv.put(
        [slot, b.appointment_id.as_bytes().to_vec()].concat(),
        Vec::new(),
    );
    kv.put(
        keys::dated(&keys::agenda(tenant), start, &b.appointment_id),
        Vec::new(),
    );
    if !citizen.is_empty() {
        kv.put(
            keys::dated(
                &keys::citizen_appointments(tenant, &citizen),
                start,
                &b.appointment_id,
            ),
            Vec::new(),
        );
    }
    Ok(Ok(timeline_of(citizen)))
}

pub(crate) fn cancelled(
    kv: &mut impl Kv,
    v: &Valid,
    c: &pb::AppointmentCancelled,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::appointment(tenant, &c.appointment_id);
    let mut a = match existing(kv, tenant, &c.appointment_id)? {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    if a.status != Status::Booked as i32 {
        // Cancelled twice, or never booked: nothing to free.
        return Ok(Ok(Vec::new()));
    }
    a.status = Status::Cancelled as i32;
    a.cancelled_us = v.occurred_us;
    free(kv, tenant, &a);
    count(kv, tenant, v.occurred_us, &a.service, CANCELLED)?;
    let citizen = a.citizen_id.clone();
    kv.put(key, a.encode_to_vec());
    Ok(Ok(timeline_of(citizen)))
}

/// The timelines an appointment's event goes in: its person's, when it has one.
fn timeline_of(citizen: String) -> Vec<String> {
    if citizen.is_empty() {
        Vec::new()
    } else {
        vec![citizen]
    }
}

/// The appointment `id`, or why the event naming it is refused.
fn existing(
    kv: &impl Kv,
    tenant: &str,
    id: &str,
) -> Result<std::result::Result<pb::Appointment, Invalid>> {
    Ok(
        get_msg::<pb::Appointment>(kv, &keys::appointment(tenant, id))?
            .ok_or_else(|| Invalid(format!("unknown appointment {id}"))),
    )
}

/// Dashboard figures: appointments booked (a move is not a new one), cancelled, missed.
pub const APPOINTMENTS: &str = "appointments";
pub const CANCELLED: &str = "appointments_cancelled";
pub const NO_SHOWS: &str = "no_shows";

/// Counts `figure` for the commune and the appointment's service, in the month of `at_us`.
fn count(kv: &mut impl Kv, tenant: &str, at_us: i64, service: &str, figure: &str) -> Result<()> {
    let mut dims = vec![(DIM_COMMUNE, "")];
    if !service.is_empty() {
        dims.push((DIM_SERVICE, service));
    }
    counters::dashboard(kv, tenant, at_us, &dims, figure)
}

/// Frees the slot of `a` and takes it out of the agenda (the person's list keeps it).
fn free(kv: &mut impl Kv, tenant: &str, a: &pb::Appointment) {
    kv.remove(
        [
            keys::appointment_slot(tenant, &a.kind, a.start_us),
            a.appointment_id.as_bytes().to_vec(),
        ]
        .concat(),
    );
    kv.remove(keys::dated(
        &keys::agenda(tenant),
        a.start_us,
        &a.appointment_id,
    ));
}

/// Whether the person came, once the appointment's time has come; recorded once (a no-show
/// counted in the month of the appointment).
pub(crate) fn attended(
    kv: &mut impl Kv,
    v: &Valid,
    at: &pb::AppointmentAttended,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::appointment(tenant, &at.appointment_id);
    let mut a = match existing(kv, tenant, &at.appointment_id)? {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    if a.status != Status::Booked as i32 {
        return Ok(Err(Invalid(format!(
            "appointment {} is not booked: no one was expected",
            a.appointment_id
        ))));
    }
    if v.occurred_us < a.start_us {
        return Ok(Err(Invalid(format!(
            "appointment {} has not begun",
            a.appointment_id
        ))));
    }
    use pb::appointment::Attendance;
    if a.attendance != Attendance::Unspecified as i32 {
        return Ok(Err(Invalid(format!(
            "appointment {}: whether the person came is recorded already",
            a.appointment_id
        ))));
    }
    a.attendance = if at.came {
        Attendance::Came
    } else {
        count(kv, tenant, a.start_us, &a.service, NO_SHOWS)?;
        Attendance::NoShow
    } as i32;
    let citizen = a.citizen_id.clone();
    kv.put(key, a.encode_to_vec());
    Ok(Ok(timeline_of(citizen)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{apply_all, apply_from, Mem};
    use super::super::Outcome;
    use crate::keys;
    use crate::pb::{self, appointment::Status, event::Payload};
    use contacthub_proto::ts::from_micros;
    use prost::Message;

    const T: &str = "69091";
    const NINE: i64 = 1_796_000_000_000_000;

    fn event(id: &str, at: i64, who: &str, payload: Payload) -> pb::Event {
        pb::Event {
            event_id: id.into(),
            tenant: T.into(),
            channel: pb::Channel::BackOffice as i32,
            direction: pb::Direction::Internal as i32,
            occurred_at: Some(from_micros(at)),
            recorded_at: Some(from_micros(at)),
            schema_version: crate::event::SCHEMA_VERSION,
            source: "rendez-vous".into(),
            source_id: id.into(),
            personal: Some(pb::Personal {
                party: Some(pb::Party {
                    citizen_id: who.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn book(id: &str, who: &str, start: i64, replaces: &str) -> pb::Event {
        event(
            &format!("e-{id}"),
            NINE - 86_400_000_000,
            who,
            Payload::AppointmentBooked(pb::AppointmentBooked {
                appointment_id: id.into(),
                kind: "ccas".into(),
                start: Some(from_micros(start)),
                minutes: 30,
                desks: 1,
                replaces: replaces.into(),
                service: "ccas".into(),
            }),
        )
    }

    fn status(kv: &Mem, id: &str) -> pb::Appointment {
        pb::Appointment::decode(&kv[&keys::appointment(T, id)][..]).unwrap()
    }

    /// A move takes the new slot and frees the old one in one step; a move to a taken slot
    /// keeps the old appointment as it was; only a begun appointment is missed, once.
    #[test]
    fn a_move_is_one_step_and_a_no_show_is_recorded_once() {
        let mut kv = Mem::new();
        let later = NINE + 1_800_000_000;
        let out = apply_all(
            &mut kv,
            &[
                book("a", "GIV-000001", NINE, ""),
                book("b", "GIV-000002", later, ""),
                // Alice moves to Bruno's slot: refused, hers kept.
                book("a2", "GIV-000001", later, "a"),
                // Bruno moves to another hour: his old slot is free, Alice takes it.
                book("b2", "GIV-000002", NINE + 3_600_000_000, "b"),
                book("a3", "GIV-000001", later, "a"),
                // Bruno cannot move Alice's appointment.
                book("x", "GIV-000002", NINE + 7_200_000_000, "a3"),
            ],
        );
        assert!(
            out[..5]
                .iter()
                .all(|o| matches!(o, Outcome::Applied { .. })),
            "{out:?}"
        );
        assert!(matches!(&out[5], Outcome::DeadLettered(r) if r.contains("not the person's")));
        assert_eq!(status(&kv, "a2").status, Status::Refused as i32);
        assert_eq!(status(&kv, "b").status, Status::Moved as i32);
        assert_eq!(status(&kv, "b").moved_to, "b2");
        assert_eq!(status(&kv, "a").status, Status::Moved as i32);
        assert_eq!(status(&kv, "a3").status, Status::Booked as i32);
        let attended = |at: i64, came: bool| {
            event(
                &format!("att-{at}"),
                at,
                "GIV-000001",
                Payload::AppointmentAttended(pb::AppointmentAttended {
                    appointment_id: "a3".into(),
                    came,
                    kind: "ccas".into(),
                }),
            )
        };
        let out = apply_from(
            &mut kv,
            &[
                attended(later - 60_000_000, false),
                attended(later + 60_000_000, false),
                attended(later + 120_000_000, true),
            ],
            6,
        );
        assert!(matches!(&out[0], Outcome::DeadLettered(r) if r.contains("not begun")));
        assert!(matches!(out[1], Outcome::Applied { .. }));
        assert!(matches!(&out[2], Outcome::DeadLettered(r) if r.contains("already")));
        assert_eq!(
            status(&kv, "a3").attendance,
            pb::appointment::Attendance::NoShow as i32
        );
        // Counted: three bookings (the moves are not new ones), one no-show.
        let packed = keys::Counter::DashboardPacked {
            tenant: T.into(),
            month: crate::dashboard::month_of(NINE),
            figure: super::APPOINTMENTS.into(),
        };
        let figures = kv
            .get(&packed.key())
            .map(|v| keys::unpack_counters(v))
            .unwrap_or_default();
        assert_eq!(figures.get("commune="), Some(&2), "{figures:?}");
    }
}
