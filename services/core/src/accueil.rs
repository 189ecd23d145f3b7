//! The accueil's waiting line, pure: the sites and counters of the communes file, ticket ids
//! and numbers, the wait a person arriving now can expect, and the accueil's report over the
//! tickets and the day counters the fold keeps.

use crate::pb::{self, ticket_closed::Outcome};
use crate::render::{category_fr, decimal_fr};
use crate::tenant::Tenant;
use crate::{Error, Result};
use chrono::{Datelike, NaiveDate, Timelike};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A place where people queue for a counter (the town hall, an annex, the CCAS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Its code (`hdv`): in ticket ids, on the command line, never shown to people.
    pub code: String,
    /// What people read (« Hôtel de ville »).
    pub name: String,
    /// Counters numbered 1 to `counters`.
    pub counters: u32,
    /// The ticket letter of a motive (`pb::Category as i32`); « A » for the others.
    pub letters: BTreeMap<i32, char>,
    /// Counters that take only some motives; every other counter takes every motive.
    pub only: BTreeMap<u32, Vec<i32>>,
    /// The hall screen sounds a chime on each call (`sound = false` in the communes file:
    /// silent).
    pub sound: bool,
    /// Its own counter hours (`[commune.site.hours]`, an annex open less), else the
    /// commune's.
    pub hours: Option<crate::hours::Week>,
}

/// The letter of a motive no `letters` entry names.
pub const DEFAULT_LETTER: char = 'A';
/// The most counters a site has.
pub const MAX_COUNTERS: u32 = 99;
/// The longest « autre » word, in characters.
pub const MOTIVE_LABEL_CHARS: usize = 40;

impl Site {
    /// The letter of tickets for `motive`.
    pub fn letter(&self, motive: i32) -> char {
        self.letters.get(&motive).copied().unwrap_or(DEFAULT_LETTER)
    }

    /// Whether counter `counter` exists here.
    pub fn has_counter(&self, counter: u32) -> bool {
        (1..=self.counters).contains(&counter)
    }

    /// Whether counter `counter` takes people who come for `motive`.
    pub fn takes(&self, counter: u32, motive: i32) -> bool {
        self.only.get(&counter).is_none_or(|m| m.contains(&motive))
    }
}

/// A site as the communes file writes it (`[[commune.site]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteEntry {
    code: String,
    name: String,
    #[serde(default = "one")]
    counters: u32,
    /// `{ etat_civil = "E", ccas = "S" }`.
    #[serde(default)]
    letters: BTreeMap<String, String>,
    /// `{ "3" = ["etat_civil"] }`: counter 3 takes only these motives.
    #[serde(default)]
    counter_motives: BTreeMap<String, Vec<String>>,
    #[serde(default = "yes")]
    sound: bool,
    /// `{ lundi = "08:30-12:00", … }`: its counter's own week.
    hours: Option<crate::hours::WeekEntry>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// A motive as the communes file and the command line name it: a category (`etat_civil`,
/// « état civil ») or `autre`.
pub fn motive_of(name: &str) -> Option<i32> {
    crate::render::category_from_name(name)
}

/// Whether `code` is a site code: 1 to 32 lower-case letters, digits or dashes.
pub fn valid_site_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The sites of `commune` from its entries, checked.
pub(crate) fn sites(commune: &str, entries: Vec<SiteEntry>) -> Result<Vec<Site>> {
    let bad = |what: String| Error::Config(format!("commune {commune}: {what}"));
    let mut out: Vec<Site> = Vec::new();
    for e in entries {
        if !valid_site_code(&e.code) {
            return Err(bad(format!(
                "site code {:?} must be 1 to 32 lower-case letters, digits or dashes",
                e.code
            )));
        }
        if out.iter().any(|s| s.code == e.code) {
            return Err(bad(format!("site {} is listed twice", e.code)));
        }
        let name = e.name.trim().to_string();
        if name.is_empty() || name.chars().count() > crate::limits::LABEL_CHARS {
            return Err(bad(format!(
                "site {} needs a name (at most {} characters)",
                e.code,
                crate::limits::LABEL_CHARS
            )));
        }
        if !(1..=MAX_COUNTERS).contains(&e.counters) {
            return Err(bad(format!(
                "site {}: counters must be 1 to {MAX_COUNTERS}",
                e.code
            )));
        }
        let motive = |m: &str| {
            motive_of(m).ok_or_else(|| bad(format!("site {}: unknown motive {m:?}", e.code)))
        };
        let mut letters = BTreeMap::new();
        for (m, l) in &e.letters {
            let mut chars = l.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_uppercase() => {
                    letters.insert(motive(m)?, c);
                }
                _ => {
                    return Err(bad(format!(
                        "site {}: the letter of {m} must be one capital letter, not {l:?}",
                        e.code
                    )))
                }
            }
        }
        let mut only = BTreeMap::new();
        for (c, motives) in &e.counter_motives {
            let counter = c
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=e.counters).contains(n))
                .ok_or_else(|| {
                    bad(format!(
                        "site {}: counter_motives names counter {c:?}, which is not 1 to {}",
                        e.code, e.counters
                    ))
                })?;
            let list = motives
                .iter()
                .map(|m| motive(m))
                .collect::<Result<Vec<_>>>()?;
            if list.is_empty() {
                return Err(bad(format!(
                    "site {}: counter {counter} takes no motive",
                    e.code
                )));
            }
            only.insert(counter, list);
        }
        let hours = e
            .hours
            .as_ref()
            .map(|w| {
                w.parse()
                    .map_err(|why| bad(format!("site {}: hours: {why}", e.code)))
            })
            .transpose()?;
        out.push(Site {
            code: e.code,
            name,
            counters: e.counters,
            letters,
            only,
            sound: e.sound,
            hours,
        });
    }
    Ok(out)
}

/// A ticket's id: `<site>-<yyyymmdd>-<number>` (`hdv-20261204-A042`).
pub fn ticket_id(site: &str, day: NaiveDate, number: &str) -> String {
    format!("{site}-{}-{number}", day.format("%Y%m%d"))
}

/// A ticket id's site, day and number.
pub fn parse_ticket_id(id: &str) -> Option<(&str, NaiveDate, &str)> {
    let mut parts = id.rsplitn(3, '-');
    let number = parts.next()?;
    let day = parts.next().filter(|d| d.len() == 8)?;
    let day = NaiveDate::parse_from_str(day, "%Y%m%d").ok()?;
    let site = parts.next()?;
    let valid_number = number.len() >= 4
        && number.len() <= 8
        && number.starts_with(|c: char| c.is_ascii_uppercase())
        && number[1..].bytes().all(|b| b.is_ascii_digit());
    (valid_number && !site.is_empty()).then_some((site, day, number))
}

/// The `n`-th ticket of letter `letter` (« A042 »).
pub fn ticket_number(letter: char, n: u64) -> String {
    format!("{letter}{n:03}")
}

/// The Paris day of an instant.
pub fn day_of(us: i64) -> NaiveDate {
    crate::courrier::paris(us).date()
}

/// Whole minutes from `from_us` to `to_us` (0 when either is unset or backwards).
pub fn minutes(from_us: i64, to_us: i64) -> u32 {
    if from_us <= 0 || to_us <= from_us {
        return 0;
    }
    ((to_us - from_us) / 60_000_000).min(u32::MAX as i64) as u32
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Called,
    AtCounter,
    Closed,
}

pub fn state(t: &pb::Ticket) -> State {
    if t.closed_us > 0 {
        State::Closed
    } else if t.started_us > 0 {
        State::AtCounter
    } else if t.called_us > 0 {
        State::Called
    } else {
        State::Waiting
    }
}

/// Where a ticket stands, in French.
pub fn state_fr(t: &pb::Ticket) -> String {
    match state(t) {
        State::Waiting => "en attente".into(),
        State::Called => format!("appelé au guichet {}", t.counter),
        State::AtCounter => format!("au guichet {}", t.counter),
        State::Closed => outcome_fr(t.outcome).into(),
    }
}

/// How a ticket ended, in French.
pub fn outcome_fr(outcome: i32) -> &'static str {
    match Outcome::try_from(outcome).unwrap_or(Outcome::Unspecified) {
        Outcome::Settled => "réglé au premier contact",
        Outcome::Transferred => "orienté vers un service",
        Outcome::Request => "transformé en demande",
        Outcome::Absent => "absent à l'appel",
        Outcome::Unspecified => "clos",
    }
}

/// A motive as people read it: « État civil », « Autre : stationnement ».
pub fn motive_fr(motive: i32, label: &str) -> String {
    let capital = crate::render::capitalized(category_fr(motive));
    if motive == pb::Category::Other as i32 && !label.is_empty() {
        format!("{capital} : {label}")
    } else {
        capital
    }
}

/// Minutes a handling takes when the day has none to go by.
const DEFAULT_HANDLING_MINUTES: f64 = 6.0;

/// The wait, in minutes, of someone with `ahead` people before them and `busy` counters
/// serving someone now, given today's handling times at the site (minutes) and the counters
/// that called someone in the last half hour (at least one): they are called once `ahead + 1`
/// counters have freed, the idle ones first.
pub fn estimate_minutes(ahead: usize, busy: usize, handled: &[u32], active_counters: usize) -> u32 {
    let counters = active_counters.max(busy).max(1);
    let idle = counters - busy.min(counters);
    let turns = (ahead + 1).saturating_sub(idle);
    if turns == 0 {
        return 0;
    }
    // The latest twenty: the pace now, not the morning's.
    let recent = &handled[handled.len().saturating_sub(20)..];
    let mean = if recent.is_empty() {
        DEFAULT_HANDLING_MINUTES
    } else {
        recent.iter().map(|&m| f64::from(m.max(1))).sum::<f64>() / recent.len() as f64
    };
    (turns as f64 * mean / counters as f64).ceil() as u32
}

/// What the fold counts per commune and day for the accueil's report (`ac/<tenant>\0<day>`,
/// packed): calls, missed calls and web contacts per hour, contacts outside opening hours,
/// calls transferred to and bounced back from each service.
pub mod day {
    pub const CALLS: &str = "calls";
    pub const MISSED: &str = "missed";
    pub const WEB: &str = "web";
    pub const OUTSIDE_CALLS: &str = "outside/calls";
    pub const OUTSIDE_VISITS: &str = "outside/visits";
    pub const BOUNCED: &str = "bounced";

    /// `h08/calls`: a figure in an hour (Paris time) of the day.
    pub fn hourly(hour: u32, figure: &str) -> String {
        format!("h{hour:02}/{figure}")
    }

    /// A service's transfers (`transfer/ccas`) or bounce-backs (`bounce/ccas`).
    pub fn transfer(service: &str) -> String {
        format!("transfer/{service}")
    }
    pub fn bounce(service: &str) -> String {
        format!("bounce/{service}")
    }
}

/// The value at rank `p` (0..1) of sorted `xs`, 0 when empty.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[derive(Default)]
struct Times {
    waits: Vec<u32>,
    handling: Vec<u32>,
    tickets: u64,
}

impl Times {
    fn add(&mut self, t: &pb::Ticket) {
        self.tickets += 1;
        if t.called_us > 0 {
            self.waits.push(minutes(t.arrived_us, t.called_us));
        }
        if t.closed_us > 0 && t.outcome != Outcome::Absent as i32 {
            let from = if t.started_us > 0 {
                t.started_us
            } else {
                t.called_us
            };
            self.handling.push(minutes(from, t.closed_us));
        }
    }

    fn row(mut self, label: String) -> pb::WaitRow {
        self.waits.sort_unstable();
        self.handling.sort_unstable();
        pb::WaitRow {
            label,
            tickets: self.tickets,
            wait_p50: percentile(&self.waits, 0.5),
            wait_p90: percentile(&self.waits, 0.9),
            handling_p50: percentile(&self.handling, 0.5),
            handling_p90: percentile(&self.handling, 0.9),
        }
    }
}

/// The accueil's report of `tenant` from `from` to `to` (days, Paris time): `tickets` of
/// those days (of one site when `site` is set) and the day counters (`days`: each day's
/// packed counts, see [`day`]).
pub fn report(
    tenant: &Tenant,
    from: NaiveDate,
    to: NaiveDate,
    site: &str,
    tickets: &[pb::Ticket],
    days: &[(NaiveDate, BTreeMap<String, u64>)],
) -> pb::AccueilReport {
    let mut heat: BTreeMap<(u32, u32), pb::HeatCell> = BTreeMap::new();
    fn cell(
        heat: &mut BTreeMap<(u32, u32), pb::HeatCell>,
        weekday: u32,
        hour: u32,
    ) -> &mut pb::HeatCell {
        heat.entry((weekday, hour)).or_insert(pb::HeatCell {
            weekday,
            hour,
            ..Default::default()
        })
    }
    let mut by_motive: BTreeMap<String, Times> = BTreeMap::new();
    let mut by_counter: BTreeMap<(String, u32), Times> = BTreeMap::new();
    let mut out = pb::AccueilReport {
        tenant: tenant.code.clone(),
        from: from.format("%Y-%m-%d").to_string(),
        to: to.format("%Y-%m-%d").to_string(),
        site: site.to_string(),
        ..Default::default()
    };
    let mut services: BTreeMap<String, pb::ServiceRow> = BTreeMap::new();
    for t in tickets {
        let at = crate::courrier::paris(t.arrived_us);
        cell(&mut heat, at.weekday().number_from_monday(), at.hour()).arrivals += 1;
        out.tickets += 1;
        by_motive.entry(motive_fr(t.motive, "")).or_default().add(t);
        if t.counter > 0 {
            by_counter
                .entry((t.site.clone(), t.counter))
                .or_default()
                .add(t);
        }
        match Outcome::try_from(t.outcome).unwrap_or(Outcome::Unspecified) {
            Outcome::Settled => out.settled += 1,
            Outcome::Transferred => {
                out.transferred += 1;
                services
                    .entry(t.service.clone())
                    .or_default()
                    .tickets_transferred += 1;
            }
            Outcome::Request => out.to_request += 1,
            Outcome::Absent => out.absent += 1,
            Outcome::Unspecified => {}
        }
    }
    for (date, counts) in days {
        let weekday = date.weekday().number_from_monday();
        for (part, &n) in counts {
            if let Some(rest) = part.strip_prefix('h') {
                let Some((hour, figure)) = rest.split_once('/') else {
                    continue;
                };
                let Ok(hour) = hour.parse::<u32>() else {
                    continue;
                };
                let c = cell(&mut heat, weekday, hour);
                match figure {
                    day::CALLS => {
                        c.calls += n;
                        out.calls += n;
                    }
                    day::MISSED => {
                        c.missed_calls += n;
                        out.missed_calls += n;
                    }
                    day::WEB => {
                        c.web_contacts += n;
                        out.web_contacts += n;
                    }
                    _ => {}
                }
            } else if part == day::OUTSIDE_CALLS {
                out.calls_outside_hours += n;
            } else if part == day::OUTSIDE_VISITS {
                out.visits_outside_hours += n;
            } else if part == day::BOUNCED {
                out.bounced_calls += n;
            } else if let Some(s) = part.strip_prefix("transfer/") {
                services.entry(s.to_string()).or_default().calls_transferred += n;
            } else if let Some(s) = part.strip_prefix("bounce/") {
                services.entry(s.to_string()).or_default().calls_bounced += n;
            }
        }
    }
    let closed = out.settled + out.transferred + out.to_request;
    out.settled_percent = percent(out.settled, closed);
    out.transferred_percent = percent(out.transferred, closed);
    out.bounce_back_percent = percent(out.bounced_calls, out.calls);
    out.heat = heat.into_values().collect();
    out.by_motive = by_motive.into_iter().map(|(m, t)| t.row(m)).collect();
    // In the order of the alphabet people read (« État civil » among the E).
    out.by_motive
        .sort_by_cached_key(|w| crate::identity::fold_name(&w.label));
    out.by_counter = by_counter
        .into_iter()
        .map(|((s, c), t)| {
            let name = tenant.site(&s).map_or(s.as_str(), |x| x.name.as_str());
            t.row(format!("{name} — guichet {c}"))
        })
        .collect();
    out.by_service = services
        .into_iter()
        .filter(|(code, _)| !code.is_empty())
        .map(|(code, mut row)| {
            row.service_name = tenant.service_name(&code).to_string();
            row.bounce_back_percent = percent(row.calls_bounced, row.calls_transferred);
            row.service = code;
            row
        })
        .collect();
    out
}

/// A weekday in French (1 Monday … 7 Sunday).
pub fn weekday_fr(n: u32) -> &'static str {
    match n {
        1 => "lundi",
        2 => "mardi",
        3 => "mercredi",
        4 => "jeudi",
        5 => "vendredi",
        6 => "samedi",
        _ => "dimanche",
    }
}

/// The report as one table for a French spreadsheet: UTF-8 with a BOM, `;`, decimal comma.
pub fn csv(r: &pb::AccueilReport) -> String {
    let mut out = String::from(
        "\u{feff}rubrique;libellé;nombre;part (%);attente médiane (min);attente 90 % (min);\
         traitement médian (min);traitement 90 % (min)\n",
    );
    let cell = |s: &str| {
        if s.contains([';', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut line = |rubric: &str, label: &str, n: String, share: String, times: [String; 4]| {
        out.push_str(&format!(
            "{};{};{n};{share};{}\n",
            cell(rubric),
            cell(label),
            times.join(";")
        ));
    };
    let none = || [String::new(), String::new(), String::new(), String::new()];
    for c in &r.heat {
        let label = format!("{} {:02} h", weekday_fr(c.weekday), c.hour);
        for (rubric, n) in [
            ("Arrivées au guichet", c.arrivals),
            ("Appels reçus", c.calls),
            ("Appels manqués", c.missed_calls),
            ("Contacts en ligne", c.web_contacts),
        ] {
            if n > 0 {
                line(rubric, &label, n.to_string(), String::new(), none());
            }
        }
    }
    for (rubric, rows) in [("Motif", &r.by_motive), ("Guichet", &r.by_counter)] {
        for w in rows {
            line(
                rubric,
                &w.label,
                w.tickets.to_string(),
                String::new(),
                [w.wait_p50, w.wait_p90, w.handling_p50, w.handling_p90].map(|m| m.to_string()),
            );
        }
    }
    let closed = r.settled + r.transferred + r.to_request;
    for (label, n) in [
        ("réglé au premier contact", r.settled),
        ("orienté vers un service", r.transferred),
        ("transformé en demande", r.to_request),
    ] {
        line(
            "Issue des tickets",
            label,
            n.to_string(),
            decimal_fr(percent(n, closed)),
            none(),
        );
    }
    line(
        "Issue des tickets",
        "absent à l'appel",
        r.absent.to_string(),
        String::new(),
        none(),
    );
    for s in &r.by_service {
        line(
            "Orientés au guichet",
            &s.service_name,
            s.tickets_transferred.to_string(),
            String::new(),
            none(),
        );
        line(
            "Appels transférés",
            &s.service_name,
            s.calls_transferred.to_string(),
            String::new(),
            none(),
        );
        line(
            "Appels revenus à l'accueil",
            &s.service_name,
            s.calls_bounced.to_string(),
            decimal_fr(s.bounce_back_percent),
            none(),
        );
    }
    line(
        "Appels revenus à l'accueil",
        "tous services",
        r.bounced_calls.to_string(),
        decimal_fr(r.bounce_back_percent),
        none(),
    );
    line(
        "Hors des horaires d'ouverture",
        "appels",
        r.calls_outside_hours.to_string(),
        String::new(),
        none(),
    );
    line(
        "Hors des horaires d'ouverture",
        "visites",
        r.visits_outside_hours.to_string(),
        String::new(),
        none(),
    );
    out
}

/// A report's period from the command line or a form: `YYYY-MM-DD` each, `from` ≤ `to`, at
/// most [`MAX_REPORT_DAYS`] days.
pub fn period(from: &str, to: &str) -> std::result::Result<(NaiveDate, NaiveDate), String> {
    let day = |s: &str, which: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("{which} : {s:?} n'est pas une date AAAA-MM-JJ"))
    };
    let (from, to) = (day(from, "début")?, day(to, "fin")?);
    if from > to {
        return Err("la date de début est après la date de fin".into());
    }
    if (to - from).num_days() >= MAX_REPORT_DAYS {
        return Err(format!(
            "au plus {MAX_REPORT_DAYS} jours par rapport (trois ans)"
        ));
    }
    Ok((from, to))
}

/// The longest period a report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 3 * 366;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_read_back() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let id = ticket_id("annexe-nord", d, "A042");
        assert_eq!(id, "annexe-nord-20261204-A042");
        assert_eq!(parse_ticket_id(&id), Some(("annexe-nord", d, "A042")));
        assert_eq!(parse_ticket_id("hdv-20261204-a042"), None);
        assert_eq!(parse_ticket_id("hdv-2026124-A042"), None);
        assert_eq!(parse_ticket_id("-20261204-A042"), None);
        assert_eq!(ticket_number('E', 7), "E007");
        assert_eq!(ticket_number('E', 1234), "E1234");
    }

    #[test]
    fn the_estimate_follows_the_recent_pace_and_the_counters_open() {
        // A counter free: the next one goes at once.
        assert_eq!(estimate_minutes(0, 0, &[10], 1), 0);
        // One before, one counter free: they go there, then a turn shared by two counters.
        assert_eq!(estimate_minutes(1, 1, &[10], 2), 5);
        // Every counter busy: one handling's share for the next.
        assert_eq!(estimate_minutes(0, 1, &[10], 1), 10);
        assert_eq!(estimate_minutes(2, 1, &[], 1), 18);
        assert_eq!(estimate_minutes(3, 2, &[4, 6], 2), 10);
        let mut long_morning = vec![30; 40];
        long_morning.extend([2; 20]);
        assert_eq!(estimate_minutes(4, 1, &long_morning, 1), 10);
    }

    #[test]
    fn percentiles_take_the_rank_above() {
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.9), 4);
        assert_eq!(percentile(&[7], 0.9), 7);
    }

    #[test]
    fn motives_read_in_french() {
        assert_eq!(motive_fr(1, ""), "État civil");
        assert_eq!(motive_fr(9, "stationnement"), "Autre : stationnement");
        assert_eq!(motive_of("état civil"), Some(1));
        assert_eq!(motive_of("autre"), Some(9));
    }

    #[test]
    fn periods_are_checked() {
        assert!(period("2026-01-01", "2026-12-31").is_ok());
        assert!(period("2026-02-01", "2026-01-01")
            .unwrap_err()
            .contains("après"));
        assert!(period("2026-13-01", "2026-12-31")
            .unwrap_err()
            .contains("début"));
        assert!(period("2020-01-01", "2026-12-31").is_err());
    }
}
