//! Appointments: a slot goes to its first bookings in log order (`desks` at most), indexed by
//! slot (`as/`), person (`au/`) and day (`ad/`); a booking of a full slot is kept refused,
//! so the booker reads why; a cancellation frees the slot.

use super::{get_msg, Folded, Kv};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{self, appointment::Status};
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
    let taken = kv.scan_prefix(&slot, b.desks as usize)?.len();
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
    };
    kv.put(key, a.encode_to_vec());
    if status == Status::Refused {
        return Ok(Ok(Vec::new()));
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
    Ok(Ok(if citizen.is_empty() {
        Vec::new()
    } else {
        vec![citizen]
    }))
}

pub(crate) fn cancelled(
    kv: &mut impl Kv,
    v: &Valid,
    c: &pb::AppointmentCancelled,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::appointment(tenant, &c.appointment_id);
    let Some(mut a) = get_msg::<pb::Appointment>(kv, &key)? else {
        return Ok(Err(Invalid(format!(
            "unknown appointment {}",
            c.appointment_id
        ))));
    };
    if a.status != Status::Booked as i32 {
        // Cancelled twice, or never booked: nothing to free.
        return Ok(Ok(Vec::new()));
    }
    a.status = Status::Cancelled as i32;
    a.cancelled_us = v.occurred_us;
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
    let citizen = a.citizen_id.clone();
    kv.put(key, a.encode_to_vec());
    Ok(Ok(if citizen.is_empty() {
        Vec::new()
    } else {
        vec![citizen]
    }))
}
