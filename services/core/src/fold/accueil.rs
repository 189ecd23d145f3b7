//! The waiting line at the accueil's counters: tickets numbered in log order per site, day
//! and letter, then called, started and closed (`tk/`, numbering in `tn/`).

use super::{get_msg, Folded, Kv};
use crate::accueil::{day_of, parse_ticket_id, ticket_id, ticket_number};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{self, event::Payload};
use crate::Result;
use prost::Message;

/// The arrivals' count in a site's day numbering.
const ARRIVALS: &str = "#";

/// Folds a ticket event. Tickets make no timeline line (the visit a closed ticket records
/// does); they feed the line, the hall screen and the report.
pub(crate) fn fold(kv: &mut impl Kv, v: &Valid) -> Folded<Vec<String>> {
    let e = v.event;
    match v.payload {
        Payload::TicketIssued(t) => {
            // What the event carries, not the communes file as it is now: a replay after a
            // change of sites or letters numbers the past as it was.
            let Some(letter) = t.letter.chars().next() else {
                return Ok(Err(Invalid("ticket_issued without a letter".into())));
            };
            let day = day_of(v.occurred_us);
            let day_key = day.format("%Y-%m-%d").to_string();
            let numbers = keys::ticket_numbers(&e.tenant, &day_key, &t.site);
            let mut counts = kv
                .get(&numbers)?
                .map(|v| keys::unpack_counters(&v))
                .unwrap_or_default();
            let seq = {
                let n = counts.entry(ARRIVALS.to_string()).or_insert(0);
                *n += 1;
                *n
            };
            let n = {
                let n = counts.entry(letter.to_string()).or_insert(0);
                *n += 1;
                *n
            };
            kv.put(numbers, keys::pack_counters(&counts));
            let number = ticket_number(letter, n);
            let personal = e.personal.as_ref();
            // Only a citizen of this commune: an id nobody has is not kept.
            let citizen = personal
                .and_then(|p| p.party.as_ref())
                .map(|p| p.citizen_id.as_str())
                .filter(|c| !c.is_empty())
                .map(|c| kv.get(&keys::citizen(&e.tenant, c)).map(|r| r.map(|_| c)))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let ticket = pb::Ticket {
                ticket_id: ticket_id(&t.site, day, &number),
                site: t.site.clone(),
                number: number.clone(),
                seq: u32::try_from(seq).unwrap_or(u32::MAX),
                motive: t.motive,
                motive_label: personal.map(|p| p.subject.clone()).unwrap_or_default(),
                citizen_id: citizen.to_string(),
                kiosk: t.kiosk,
                issued_event_id: e.event_id.clone(),
                arrived_us: v.occurred_us,
                issued_by: e.agent_id.clone(),
                ..Default::default()
            };
            kv.put(
                keys::ticket(&e.tenant, &day_key, &t.site, &number),
                ticket.encode_to_vec(),
            );
            Ok(Ok(Vec::new()))
        }
        Payload::TicketCalled(c) => step(kv, v, &c.ticket_id, |t| {
            if t.closed_us > 0 || (t.called_us > 0 && t.counter != c.counter) {
                // Closed, or called first by another counter (two hubs at once): unchanged.
                return false;
            }
            if t.called_us == 0 {
                t.called_us = v.occurred_us;
                t.counter = c.counter;
                t.called_by = e.agent_id.clone();
            } else {
                t.recalled_us = v.occurred_us;
            }
            t.calls += 1;
            true
        }),
        Payload::TicketStarted(s) => step(kv, v, &s.ticket_id, |t| {
            if t.closed_us > 0 || t.started_us > 0 || t.called_us == 0 {
                return false;
            }
            t.started_us = v.occurred_us;
            true
        }),
        Payload::TicketClosed(c) => step(kv, v, &c.ticket_id, |t| {
            if t.closed_us > 0 {
                return false;
            }
            t.closed_us = v.occurred_us;
            t.outcome = c.outcome;
            t.service = c.service.clone();
            t.request_reference = c.request_reference.clone();
            t.closed_by = e.agent_id.clone();
            true
        }),
        _ => Ok(Ok(Vec::new())),
    }
}

/// Changes the ticket `id` as `change` says (it returns whether it changed anything).
fn step(
    kv: &mut impl Kv,
    v: &Valid,
    id: &str,
    change: impl FnOnce(&mut pb::Ticket) -> bool,
) -> Folded<Vec<String>> {
    let Some((site, day, number)) = parse_ticket_id(id) else {
        return Ok(Err(Invalid(format!("{id:?} is not a ticket id"))));
    };
    let key = keys::ticket(
        &v.event.tenant,
        &day.format("%Y-%m-%d").to_string(),
        site,
        number,
    );
    let Some(mut ticket) = get_msg::<pb::Ticket>(kv, &key)? else {
        return Ok(Err(Invalid(format!("no ticket {id:?}"))));
    };
    if change(&mut ticket) {
        kv.put(key, ticket.encode_to_vec());
    }
    Ok(Ok(Vec::new()))
}

/// Reads the ticket `id` of `tenant`.
pub fn read(kv: &impl Kv, tenant: &str, id: &str) -> Result<Option<pb::Ticket>> {
    let Some((site, day, number)) = parse_ticket_id(id) else {
        return Ok(None);
    };
    get_msg(
        kv,
        &keys::ticket(tenant, &day.format("%Y-%m-%d").to_string(), site, number),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::{apply_all, Mem};
    use crate::fold::Outcome;
    use crate::pb::ticket_closed::Outcome as Closed;

    /// 2026-12-04 09:00 Paris, plus `minutes`.
    fn at(minutes: i64) -> i64 {
        1_796_371_200_000_000 + minutes * 60_000_000
    }

    fn event(id: &str, minutes: i64, payload: Payload) -> pb::Event {
        let mut e = crate::event::contact(
            "69091",
            "test-accueil",
            id,
            at(minutes),
            at(minutes),
            payload,
            Default::default(),
        );
        e.direction = pb::Direction::Internal as i32;
        e.agent_id = "agent-1".into();
        e
    }

    fn issue(id: &str, minutes: i64, site: &str, motive: pb::Category) -> pb::Event {
        event(
            id,
            minutes,
            Payload::TicketIssued(pb::TicketIssued {
                site: site.into(),
                motive: motive as i32,
                kiosk: true,
                letter: crate::tenant::Tenants::builtin()
                    .get("69091")
                    .and_then(|t| t.site(site))
                    .map(|s| s.letter(motive as i32).to_string())
                    .unwrap_or_default(),
            }),
        )
    }

    #[test]
    fn tickets_are_numbered_per_site_day_and_letter_and_follow_their_steps() {
        assert_eq!(
            crate::courrier::paris_display(at(0)),
            "04/12/2026 09:00",
            "the test's clock"
        );
        let mut kv = Mem::new();
        let called = |id: &str, m: i64, ticket: &str, counter: u32| {
            event(
                id,
                m,
                Payload::TicketCalled(pb::TicketCalled {
                    ticket_id: ticket.into(),
                    counter,
                }),
            )
        };
        let outcomes = apply_all(
            &mut kv,
            &[
                issue("1", 0, "hdv", pb::Category::Other),
                issue("2", 1, "hdv", pb::Category::EtatCivil),
                issue("3", 2, "hdv", pb::Category::Scolaire),
                issue("4", 3, "ccas", pb::Category::Ccas),
                called("5", 10, "hdv-20261204-A001", 1),
                // Another counter calls the same ticket (a second hub): unchanged.
                called("6", 11, "hdv-20261204-A001", 2),
                called("7", 12, "hdv-20261204-A001", 1),
                event(
                    "8",
                    13,
                    Payload::TicketStarted(pb::TicketStarted {
                        ticket_id: "hdv-20261204-A001".into(),
                    }),
                ),
                event(
                    "9",
                    20,
                    Payload::TicketClosed(pb::TicketClosed {
                        ticket_id: "hdv-20261204-A001".into(),
                        outcome: Closed::Transferred as i32,
                        service: "urbanisme".into(),
                        ..Default::default()
                    }),
                ),
                called("10", 21, "hdv-20261204-Z001", 1),
                called("11", 21, "hdv-20261204-E001", 0),
            ],
        );
        assert!(
            outcomes[..9]
                .iter()
                .all(|o| matches!(o, Outcome::Applied { .. })),
            "{outcomes:?}"
        );
        let dead: Vec<_> = outcomes[9..]
            .iter()
            .map(|o| match o {
                Outcome::DeadLettered(why) => why.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(dead[0].contains("no ticket"), "{dead:?}");
        assert!(dead[1].contains("counter"), "{dead:?}");
        let t = |id: &str| read(&kv, "69091", id).unwrap().unwrap();
        let first = t("hdv-20261204-A001");
        assert_eq!((first.seq, first.number.as_str()), (1, "A001"));
        assert_eq!((first.counter, first.calls), (1, 2));
        assert_eq!(first.called_us, at(10));
        assert_eq!(first.recalled_us, at(12));
        assert_eq!((first.started_us, first.closed_us), (at(13), at(20)));
        assert_eq!(first.service, "urbanisme");
        assert_eq!(first.outcome, Closed::Transferred as i32);
        let e = t("hdv-20261204-E001");
        assert_eq!((e.seq, e.called_us), (2, 0));
        // Scolaire has no letter of its own at Givors' town hall: « A », after A001.
        assert_eq!(t("hdv-20261204-A002").seq, 3);
        // Another site numbers on its own.
        assert_eq!(t("ccas-20261204-S001").seq, 1);
    }
}
