//! The demo's accueil: weeks of tickets at every site of every commune, during its counter's
//! opening hours only (no one at the counter at 00:30, none on a public holiday), more on
//! Monday mornings and around lunch, served by the site's counters in turn, so waits lengthen
//! at the peaks as they do in a town hall.

use super::{internal, DemoConfig};
use crate::accueil::{day_of, ticket_id, ticket_number, Site};
use crate::courrier::paris_local_to_utc_us;
use crate::pb::{self, event::Payload, ticket_closed::Outcome, Category, Event};
use crate::tenant::Tenant;
use chrono::{Datelike, NaiveDate, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Weeks of tickets before the demo's end.
const WEEKS: i64 = 3;
/// Why people come, with weights: état civil and « autre » first.
const MOTIVES: &[(Category, u32)] = &[
    (Category::EtatCivil, 30),
    (Category::Other, 20),
    (Category::Scolaire, 12),
    (Category::PetiteEnfance, 6),
    (Category::Ccas, 10),
    (Category::ServicesTechniques, 8),
    (Category::Urbanisme, 10),
    (Category::Culture, 4),
];

/// Every ticket event of the demo's accueil, in log order (by site and day, then time).
pub(super) fn events(cfg: &DemoConfig, tenants: &[Tenant]) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x0acc_0e11);
    let per_day = (cfg.people_per_tenant / 15).clamp(2, 40) as f64;
    let last = day_of(cfg.end_us) - chrono::Duration::days(1);
    let first = last - chrono::Duration::days(WEEKS * 7 - 1);
    let mut out = Vec::new();
    for tenant in tenants {
        let Some(schedule) = &tenant.schedule else {
            continue;
        };
        let Some(week) = &schedule.counter else {
            continue;
        };
        for (i, site) in tenant.sites.iter().enumerate() {
            let week = site.hours.as_ref().unwrap_or(week);
            let mut day = first;
            while day <= last {
                let open = &week.0[day.weekday().num_days_from_monday() as usize];
                if !open.is_empty() && schedule.closed_day(day).is_none() {
                    let mut n = per_day * if i == 0 { 1.0 } else { 0.5 };
                    n *= match day.weekday() {
                        Weekday::Mon => 1.5,
                        Weekday::Sat => 0.6,
                        _ => 1.0,
                    };
                    let n = (n * rng.gen_range(0.8..1.2)).round().max(1.0) as usize;
                    out.extend(site_day(&mut rng, tenant, site, day, open, n));
                }
                day += chrono::Duration::days(1);
            }
        }
    }
    out
}

/// A minute of the day (Paris) when someone arrives: within the opening intervals, drawn
/// toward the opening on Monday and toward lunch (the half hour before the midday close and
/// after the reopening) every day.
fn arrival(rng: &mut ChaCha8Rng, open: &[(u16, u16)], monday: bool) -> u16 {
    let total: u32 = open.iter().map(|(a, b)| u32::from(b - a)).sum();
    let peak = rng.gen_range(0..100);
    if open.len() > 1 && peak < 30 {
        // Around lunch: the end of the morning or the start of the afternoon.
        let (a, b) = if rng.gen_bool(0.5) {
            (open[0].1.saturating_sub(30).max(open[0].0), open[0].1)
        } else {
            (open[1].0, (open[1].0 + 30).min(open[1].1))
        };
        return rng.gen_range(a..b.max(a + 1));
    }
    if monday && peak < 55 {
        return rng.gen_range(open[0].0..(open[0].0 + 60).min(open[0].1));
    }
    let mut m = rng.gen_range(0..total.max(1));
    for (a, b) in open {
        let len = u32::from(b - a);
        if m < len {
            return a + m as u16;
        }
        m -= len;
    }
    open[0].0
}

fn motive(rng: &mut ChaCha8Rng) -> Category {
    let total: u32 = MOTIVES.iter().map(|(_, w)| w).sum();
    let mut m = rng.gen_range(0..total);
    for (c, w) in MOTIVES {
        if m < *w {
            return *c;
        }
        m -= w;
    }
    Category::Other
}

/// One site's day: arrivals, each served at the counter free first among those that take its
/// motive, then closed (most settled at once, some sent to a service, a few absent).
fn site_day(
    rng: &mut ChaCha8Rng,
    tenant: &Tenant,
    site: &Site,
    day: NaiveDate,
    open: &[(u16, u16)],
    n: usize,
) -> Vec<Event> {
    let at = |minute: f64| {
        let time = chrono::NaiveTime::from_hms_opt(0, 0, 0).unwrap_or_default()
            + chrono::Duration::seconds((minute * 60.0) as i64);
        paris_local_to_utc_us(day.and_time(time))
    };
    let mut arrivals: Vec<f64> = (0..n)
        .map(|_| {
            f64::from(arrival(rng, open, day.weekday() == Weekday::Mon)) + rng.gen_range(0.0..1.0)
        })
        .collect();
    arrivals.sort_by(|a, b| a.total_cmp(b));
    let mut free: BTreeMap<u32, f64> = (1..=site.counters)
        .map(|c| (c, f64::from(open[0].0)))
        .collect();
    let mut letters: BTreeMap<char, u64> = BTreeMap::new();
    let mut timed: Vec<(i64, Event)> = Vec::new();
    let key = format!("{}-{}-{}", tenant.code, site.code, day.format("%Y%m%d"));
    for (k, arrived) in arrivals.into_iter().enumerate() {
        let motive = motive(rng);
        let Some((&counter, &free_at)) = free
            .iter()
            .filter(|(c, _)| site.takes(**c, motive as i32))
            .min_by(|a, b| a.1.total_cmp(b.1))
        else {
            continue;
        };
        let letter = site.letter(motive as i32);
        let count = letters.entry(letter).or_insert(0);
        *count += 1;
        let number = ticket_number(letter, *count);
        let id = ticket_id(&site.code, day, &number);
        let agent = format!("agent-{counter}");
        let mut event = |minute: f64, step: &str, payload: Payload| {
            let mut e = internal(tenant, &format!("{key}-{k}-{step}"), at(minute), payload);
            e.agent_id = agent.clone();
            timed.push((at(minute), e));
        };
        event(
            arrived,
            "issued",
            Payload::TicketIssued(pb::TicketIssued {
                site: site.code.clone(),
                motive: motive as i32,
                kiosk: true,
                letter: letter.to_string(),
            }),
        );
        let called = arrived.max(free_at) + rng.gen_range(0.2..1.0);
        event(
            called,
            "called",
            Payload::TicketCalled(pb::TicketCalled {
                ticket_id: id.clone(),
                counter,
            }),
        );
        let absent = rng.gen_range(0..100) < 5;
        let closed = if absent {
            called + 3.0
        } else {
            let started = called + rng.gen_range(0.5..2.0);
            event(
                started,
                "started",
                Payload::TicketStarted(pb::TicketStarted {
                    ticket_id: id.clone(),
                }),
            );
            let long = if motive == Category::EtatCivil {
                6.0
            } else {
                0.0
            };
            started + long + rng.gen_range(3.0..12.0)
        };
        let (outcome, service) = match rng.gen_range(0..100) {
            _ if absent => (Outcome::Absent, ""),
            0..=71 => (Outcome::Settled, ""),
            _ => (Outcome::Transferred, super::service_for(motive)),
        };
        event(
            closed,
            "closed",
            Payload::TicketClosed(pb::TicketClosed {
                ticket_id: id,
                outcome: outcome as i32,
                service: service.to_string(),
                request_reference: String::new(),
            }),
        );
        free.insert(counter, closed);
    }
    timed.sort_by_key(|(t, _)| *t);
    timed.into_iter().map(|(_, e)| e).collect()
}
