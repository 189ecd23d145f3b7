//! The mail-room aggregate: chrono numbers given in log order, the record of each incoming
//! letter, and its circuit (routing, steps, scans, answer) as history.

use super::{counters, get_msg, requests, Folded, Kv};
use crate::courrier;
use crate::dashboard::{self, Slice};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{self, event::Payload, CourrierEvent, CourrierState};
use crate::tenant::Tenants;
use crate::Result;
use prost::Message;

/// Gives an incoming letter without a number the next chrono of its commune and registration
/// year. Runs in log order, once per event id, so numbers are unique and gap-free, and a
/// replay assigns the very same ones.
pub(crate) fn assign_chrono(
    kv: &mut impl Kv,
    tenants: &Tenants,
    event: &mut pb::Event,
) -> Result<()> {
    let inbound = event.direction != pb::Direction::Outbound as i32;
    let recorded = event
        .recorded_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros);
    let (Some(Payload::Courrier(c)), true, Some(recorded), Some(tenant)) = (
        event.payload.as_mut(),
        inbound,
        recorded,
        tenants.get(&event.tenant),
    ) else {
        return Ok(());
    };
    if !c.chrono.is_empty() {
        return Ok(());
    }
    let year = courrier::registration_year(recorded);
    let ck = keys::chrono_counter(&tenant.code, year);
    let n = kv.get(&ck)?.map_or(1, |v| keys::read_u64(&v));
    kv.put(ck, (n + 1).to_be_bytes().to_vec());
    c.chrono = courrier::format_chrono(&tenant.prefix, year, n);
    Ok(())
}

fn push_history(
    state: &mut CourrierState,
    e: &pb::Event,
    kind: &str,
    service: String,
    note: String,
    at_us: i64,
) {
    let previous = state
        .history
        .last()
        .and_then(|h| h.at.as_ref())
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(at_us);
    state.history.push(CourrierEvent {
        event_id: e.event_id.clone(),
        at: Some(contacthub_proto::ts::from_micros(at_us)),
        kind: kind.into(),
        service,
        agent_id: e.agent_id.clone(),
        note,
        seconds_since_previous: (at_us - previous) / 1_000_000,
    });
}

/// Whether a letter holds this chrono number already (an import may bring a taken one: the
/// first letter keeps it).
pub(crate) fn is_registered(kv: &impl Kv, tenant: &str, chrono: &str) -> Result<bool> {
    Ok(kv.get(&keys::courrier(tenant, chrono))?.is_some())
}

/// Counts a letter's figure in the month it was registered.
fn count(kv: &mut impl Kv, state: &CourrierState, figure: &str) -> Result<()> {
    let at = state
        .registered_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(0);
    let slice = Slice::of(
        pb::Channel::Courrier as i32,
        state.category,
        &state.addressed_to_service,
    );
    counters::dashboard(kv, &state.tenant, at, &slice.dims(), figure)
}

/// Routes a letter to a service (the first routing makes it traced); the kind of step.
fn route(kv: &mut impl Kv, state: &mut CourrierState, service: &str) -> Result<&'static str> {
    let first = state.service.is_empty();
    state.service = service.to_string();
    if state.status == pb::CourrierStatus::Registered as i32 {
        state.status = pb::CourrierStatus::Routed as i32;
    }
    if first {
        count(kv, state, dashboard::TRACED)?;
        Ok("routed")
    } else {
        Ok("reassigned")
    }
}

/// A request that follows a letter was assigned to another service: the letter goes there.
pub(crate) fn routed_by_request(
    kv: &mut impl Kv,
    v: &Valid,
    chrono: &str,
    service: &str,
) -> Result<()> {
    let ck = keys::courrier(&v.event.tenant, chrono);
    let Some(mut state) = get_msg::<CourrierState>(kv, &ck)? else {
        return Ok(());
    };
    if state.service == service {
        return Ok(());
    }
    let kind = route(kv, &mut state, service)?;
    push_history(
        &mut state,
        v.event,
        kind,
        service.to_string(),
        "demande".into(),
        v.occurred_us,
    );
    kv.put(ck, state.encode_to_vec());
    Ok(())
}

/// The request that follows a letter got its written answer: so did the letter.
pub(crate) fn answered_by_request(
    kv: &mut impl Kv,
    v: &Valid,
    chrono: &str,
    a: &pb::RequestAnswered,
) -> Result<()> {
    let ck = keys::courrier(&v.event.tenant, chrono);
    let Some(mut state) = get_msg::<CourrierState>(kv, &ck)? else {
        return Ok(());
    };
    state.status = pb::CourrierStatus::Answered as i32;
    state.answered_at = v.event.occurred_at;
    state.answer_channel = a.answer_channel;
    state.answer_ref = a.answer_ref.clone();
    let service = state.service.clone();
    push_history(
        &mut state,
        v.event,
        "answered",
        service,
        a.answer_ref.clone(),
        v.occurred_us,
    );
    kv.put(ck, state.encode_to_vec());
    Ok(())
}

/// Creates the mail-room record of an incoming letter, followed by request `reference`.
pub(crate) fn register(
    kv: &mut impl Kv,
    v: &Valid,
    c: &pb::Courrier,
    citizen: &str,
    reference: &str,
) -> Result<()> {
    let e = v.event;
    let ck = keys::courrier(&e.tenant, &c.chrono);
    let personal = e.personal.clone().unwrap_or_default();
    let party = personal.party.unwrap_or_default();
    let mut state = CourrierState {
        chrono: c.chrono.clone(),
        tenant: e.tenant.clone(),
        event_id: e.event_id.clone(),
        citizen_id: citizen.to_string(),
        kind: c.kind,
        tracking_number: c.tracking_number.clone(),
        subject: personal.subject,
        category: e.category,
        addressed_to_service: c.addressed_to_service.clone(),
        status: pb::CourrierStatus::Registered as i32,
        received_at: e.occurred_at,
        registered_at: e.recorded_at,
        scans: e.attachments.clone(),
        sender_display: if party.name.is_empty() {
            citizen.to_string()
        } else {
            party.name
        },
        request_reference: reference.to_string(),
        ..Default::default()
    };
    let at = e
        .recorded_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(v.occurred_us);
    push_history(
        &mut state,
        e,
        "registered",
        c.addressed_to_service.clone(),
        String::new(),
        at,
    );
    count(kv, &state, dashboard::LETTERS)?;
    kv.put(ck, state.encode_to_vec());
    kv.put(
        keys::courrier_by_event(&e.tenant, &e.event_id),
        c.chrono.as_bytes().to_vec(),
    );
    Ok(())
}

/// A routing, step, scan or answer of a registered letter, in its history; its request moves
/// with it.
pub(crate) fn bookkeeping(kv: &mut impl Kv, v: &Valid) -> Folded<Vec<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let chrono = match v.payload {
        Payload::CourrierRouted(pb::CourrierRouted { chrono, .. })
        | Payload::CourrierStep(pb::CourrierStep { chrono, .. })
        | Payload::CourrierAnswered(pb::CourrierAnswered { chrono, .. })
        | Payload::CourrierScanAttached(pb::CourrierScanAttached { chrono }) => chrono,
        _ => return Ok(Ok(vec![])),
    };

    let ck = keys::courrier(tenant, chrono);
    let Some(mut state) = get_msg::<CourrierState>(kv, &ck)? else {
        return Ok(Err(Invalid(format!("unknown courrier {chrono:?}"))));
    };
    let (kind, service, note) = match v.payload {
        Payload::CourrierRouted(r) => {
            let kind = route(kv, &mut state, &r.service)?;
            (kind, r.service.clone(), r.note.clone())
        }
        Payload::CourrierStep(s) => (
            "step",
            state.service.clone(),
            format!(
                "{}{}{}",
                s.step,
                if s.note.is_empty() { "" } else { " : " },
                s.note
            ),
        ),
        Payload::CourrierAnswered(a) => {
            state.status = pb::CourrierStatus::Answered as i32;
            state.answered_at = e.occurred_at;
            state.answer_channel = a.answer_channel;
            state.answer_ref = a.answer_ref.clone();
            ("answered", state.service.clone(), a.answer_ref.clone())
        }
        _ => {
            state.scans.extend(e.attachments.iter().cloned());
            ("scan", state.service.clone(), String::new())
        }
    };
    push_history(&mut state, e, kind, service, note, v.occurred_us);
    let citizen = state.citizen_id.clone();
    kv.put(ck, state.encode_to_vec());
    if !state.request_reference.is_empty() {
        requests::letter_moved(kv, v, &state.request_reference)?;
    }
    Ok(Ok(vec![citizen]))
}

#[cfg(test)]
mod tests {
    use crate::event::contact;
    use crate::fold::tests::{apply_all, Mem};
    use crate::fold::Outcome;
    use crate::pb::{self, event::Payload};

    fn letter(id: &str, recorded_us: i64) -> pb::Event {
        contact(
            "69091",
            "t",
            id,
            recorded_us,
            recorded_us,
            Payload::Courrier(pb::Courrier::default()),
            pb::Party {
                name: "Jean Martin".into(),
                ..Default::default()
            },
        )
    }

    fn chrono_of(o: &Outcome) -> String {
        match o {
            Outcome::Applied { entries, .. } => entries[0]
                .links
                .iter()
                .find(|l| l.rel == "chrono")
                .map(|l| l.target.clone())
                .unwrap_or_default(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chrono_numbers_follow_the_log_and_the_paris_year() {
        let mut kv = Mem::new();
        // 31 Dec 2026 23:30 in Paris is still 2026; 00:30 on 1 Jan is 2027.
        let out = apply_all(
            &mut kv,
            &[
                letter("a", 1_798_758_000_000_000 - 1_800_000_000),
                letter("b", 1_798_758_000_000_000 + 1_800_000_000),
                letter("c", 1_798_758_000_000_000 - 3_600_000_000),
            ],
        );
        let chronos: Vec<_> = out.iter().map(chrono_of).collect();
        assert_eq!(
            chronos,
            ["GIV-2026-000001", "GIV-2027-000001", "GIV-2026-000002"]
        );
    }
}
