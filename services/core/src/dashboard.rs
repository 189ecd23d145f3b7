//! Dashboards for élus and services: the figures the fold counts per commune and month
//! (`dash/…` counters), and their assembly into rows, percentiles, rates, recurring problems
//! and a CSV for spreadsheets. Pure. Aggregates only: no name, no reference, no text.
//!
//! A counter is named `dash/TENANT/MONTH/DIMENSION=VALUE/FIGURE` (month in Paris time):
//! requests are counted in the month they were opened, answers in the month they were
//! written (with a histogram of days to answer, `days/NNNN`), letters in the month they were
//! registered (traced ones too, when first routed). "Overdue now" is read at query time from
//! the open requests counted by the Paris day they are due (`due/TENANT/DAY/DIMENSION=VALUE`)
//! for the days before today, and from the index of open requests by due instant for today:
//! a dashboard costs the same with a backlog of ten or of fifty thousand.

use crate::courrier::paris;
use crate::keys::{counter_value, Counter, PhoneFigure};
use crate::pb::{self, Category, Channel};
use crate::render::{category_fr, channel_fr};
use std::collections::BTreeMap;

pub const DIM_COMMUNE: &str = "commune";
pub const DIM_CHANNEL: &str = "channel";
pub const DIM_CATEGORY: &str = "category";
pub const DIM_SERVICE: &str = "service";
pub const DIM_STREET: &str = "street";

pub const CONTACTS: &str = "contacts";
pub const OPENED: &str = "opened";
pub const ANSWERED: &str = "answered";
pub const IN_TIME: &str = "in_time";
pub const CLOSED_OTHER: &str = "closed_other";
pub const LETTERS: &str = "letters";
pub const TRACED: &str = "traced";
use crate::fold::appointments::{APPOINTMENTS, CANCELLED as APPOINTMENTS_CANCELLED, NO_SHOWS};
const DAYS: &str = "days/";

/// The longest period a dashboard covers, in months.
pub const MAX_MONTHS: usize = 36;
/// Recurring problems listed per kind.
const RECURRING: usize = 10;
/// The fewest requests a street needs to be listed among recurring problems.
const MIN_STREET_REQUESTS: u64 = 2;

/// The slices something is counted in: its channel, category and service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    pub channel: String,
    pub category: String,
    pub service: String,
}

impl Slice {
    pub fn of(channel: i32, category: i32, service: &str) -> Slice {
        Slice {
            channel: channel_code(channel),
            category: category_code(category),
            service: counter_value(service),
        }
    }

    /// The slice as kept in the index of open requests.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.channel, self.category, self.service).into_bytes()
    }

    pub fn decode(v: &[u8]) -> Slice {
        let s = String::from_utf8_lossy(v);
        let mut parts = s.splitn(3, '\0').map(str::to_string);
        Slice {
            channel: parts.next().unwrap_or_default(),
            category: parts.next().unwrap_or_default(),
            service: parts.next().unwrap_or_default(),
        }
    }

    /// Every (dimension, value) the slice is counted under, the whole commune first.
    pub fn dims(&self) -> [(&'static str, &str); 4] {
        [
            (DIM_COMMUNE, ""),
            (DIM_CHANNEL, &self.channel),
            (DIM_CATEGORY, &self.category),
            (DIM_SERVICE, &self.service),
        ]
    }
}

/// `email`, `web_form`, `back_office`…
pub fn channel_code(c: i32) -> String {
    let name = Channel::try_from(c)
        .unwrap_or(Channel::Unspecified)
        .as_str_name();
    name.trim_start_matches("CHANNEL_").to_ascii_lowercase()
}

/// `voirie`, `etat_civil`…
pub fn category_code(c: i32) -> String {
    let name = Category::try_from(c)
        .unwrap_or(Category::Unspecified)
        .as_str_name();
    name.trim_start_matches("CATEGORY_").to_ascii_lowercase()
}

fn channel_from_code(code: &str) -> i32 {
    Channel::from_str_name(&format!("CHANNEL_{}", code.to_ascii_uppercase()))
        .map_or(0, |c| c as i32)
}

fn category_from_code(code: &str) -> i32 {
    Category::from_str_name(&format!("CATEGORY_{}", code.to_ascii_uppercase()))
        .map_or(0, |c| c as i32)
}

/// The street of an address as counted for recurring problems (folded: `rue emile zola`).
pub fn street_of(a: &pb::Address) -> Option<String> {
    let s = counter_value(&crate::identity::fold_name(&a.street));
    (!s.is_empty()).then_some(s)
}

/// The month (`YYYY-MM`, Paris time) of an instant.
pub fn month_of(us: i64) -> String {
    paris(us).format("%Y-%m").to_string()
}

/// Whole Paris calendar days from `from_us` to `to_us` (0 when answered the same day).
pub fn days_between(from_us: i64, to_us: i64) -> u32 {
    let days = (paris(to_us).date() - paris(from_us).date()).num_days();
    u32::try_from(days.clamp(0, 9999)).unwrap_or(0)
}

pub fn days_figure(days: u32) -> String {
    format!("{DAYS}{:04}", days.min(9999))
}

/// The Paris day (`YYYY-MM-DD`) of an instant.
pub fn day_of(us: i64) -> String {
    paris(us).format("%Y-%m-%d").to_string()
}

/// The first instant (µs) of the Paris day of `us`.
pub fn start_of_day(us: i64) -> i64 {
    let midnight = paris(us).date().and_hms_opt(0, 0, 0).unwrap_or_default();
    crate::courrier::paris_local_to_utc_us(midnight)
}

fn parse_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (2000..=2200).contains(&y)).then_some((y, m))
}

/// The months from `from` to `to` (`YYYY-MM`, inclusive), or what is wrong with them.
pub fn months(from: &str, to: &str) -> Result<Vec<String>, String> {
    let quote = crate::limits::quote;
    let a = parse_month(from)
        .ok_or_else(|| format!("from_month {:?} is not a month (YYYY-MM)", quote(from)))?;
    let b = parse_month(to)
        .ok_or_else(|| format!("to_month {:?} is not a month (YYYY-MM)", quote(to)))?;
    if b < a {
        return Err(format!("to_month {to} is before from_month {from}"));
    }
    let (mut y, mut m) = a;
    let mut out = Vec::new();
    while (y, m) <= b {
        if out.len() == MAX_MONTHS {
            return Err(format!("a dashboard covers at most {MAX_MONTHS} months"));
        }
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    Ok(out)
}

/// A dashboard's period from what was asked: `to` defaults to the month of `now_us`, `from`
/// to eleven months before `to` (a year).
pub fn period(from: &str, to: &str, now_us: i64) -> Result<(String, String), String> {
    let to = if to.trim().is_empty() {
        month_of(now_us)
    } else {
        to.trim().to_string()
    };
    let from = if from.trim().is_empty() {
        let (y, m) = parse_month(&to).ok_or_else(|| {
            format!(
                "to_month {:?} is not a month (YYYY-MM)",
                crate::limits::quote(&to)
            )
        })?;
        let months = y * 12 + (m as i32 - 1) - 11;
        format!("{:04}-{:02}", months / 12, months % 12 + 1)
    } else {
        from.trim().to_string()
    };
    Ok((from, to))
}

/// What the read model holds for a dashboard.
#[derive(Debug, Default)]
pub struct Inputs {
    /// The commune's counters: its months' [`Counter::Dashboard`] and [`Counter::Phone`]
    /// counters, and its open requests by the day they are due ([`Counter::Due`]); others
    /// are not read.
    pub counters: Vec<(Counter, u64)>,
    /// Today (Paris), `YYYY-MM-DD`: requests due before it are overdue.
    pub today: String,
    /// The slice of every open request due earlier today.
    pub overdue_today: Vec<Slice>,
    /// Per service offering appointments: when its first free slot starts (µs), or `None`
    /// when none is free within the horizon.
    pub first_free: BTreeMap<String, Option<i64>>,
}

#[derive(Debug, Default, Clone)]
struct Acc {
    n: BTreeMap<&'static str, u64>,
    days: BTreeMap<u32, u64>,
    calls: [u64; 3],
    overdue: u64,
}

impl Acc {
    fn add(&mut self, other: &Acc) {
        for (k, v) in &other.n {
            *self.n.entry(k).or_default() += v;
        }
        for (k, v) in &other.days {
            *self.days.entry(*k).or_default() += v;
        }
        for (a, b) in self.calls.iter_mut().zip(other.calls) {
            *a += b;
        }
        self.overdue += other.overdue;
    }

    fn get(&self, figure: &str) -> u64 {
        self.n.get(figure).copied().unwrap_or(0)
    }

    /// The smallest number of days within which `p` of the answers were written.
    fn percentile(&self, p: f64) -> u32 {
        let total: u64 = self.days.values().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((p * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (d, n) in &self.days {
            seen += n;
            if seen >= rank {
                return *d;
            }
        }
        0
    }

    fn figures(&self) -> pb::DashboardFigures {
        let percent = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                a as f64 * 100.0 / b as f64
            }
        };
        let [inbound, missed, bounced] = self.calls;
        pb::DashboardFigures {
            contacts_received: self.get(CONTACTS),
            requests_opened: self.get(OPENED),
            requests_answered: self.get(ANSWERED),
            answered_in_time: self.get(IN_TIME),
            answered_in_time_percent: percent(self.get(IN_TIME), self.get(ANSWERED)),
            p50_days_to_answer: self.percentile(0.5),
            p90_days_to_answer: self.percentile(0.9),
            closed_without_answer: self.get(CLOSED_OTHER),
            overdue_now: self.overdue,
            letters_registered: self.get(LETTERS),
            letters_traced: self.get(TRACED),
            letters_traced_percent: percent(self.get(TRACED), self.get(LETTERS)),
            calls_inbound: inbound,
            calls_missed: missed,
            calls_bounced: bounced,
            missed_call_percent: percent(missed, inbound),
            bounce_back_percent: percent(bounced, inbound),
            appointments: self.get(APPOINTMENTS),
            appointments_cancelled: self.get(APPOINTMENTS_CANCELLED),
            no_shows: self.get(NO_SHOWS),
            days_to_first_free_slot: None,
        }
    }
}

fn figure_static(f: &str) -> Option<&'static str> {
    [
        CONTACTS,
        OPENED,
        ANSWERED,
        IN_TIME,
        CLOSED_OTHER,
        LETTERS,
        TRACED,
        APPOINTMENTS,
        APPOINTMENTS_CANCELLED,
        NO_SHOWS,
    ]
    .into_iter()
    .find(|k| *k == f)
}

const DIM_ORDER: [&str; 4] = [DIM_COMMUNE, DIM_CHANNEL, DIM_CATEGORY, DIM_SERVICE];

/// The dashboard of `tenant` over `months` (from [`months`]).
pub fn assemble(tenant: &str, months: &[String], inputs: &Inputs, now_us: i64) -> pb::Dashboard {
    // (dimension, value) → figures, per month and over the period.
    type Slices = BTreeMap<(usize, String), Acc>;
    let mut period: Slices = BTreeMap::new();
    period.entry((0, String::new())).or_default();
    let mut by_month: BTreeMap<&str, Slices> = months
        .iter()
        .map(|m| (m.as_str(), [((0, String::new()), Acc::default())].into()))
        .collect();
    let mut streets: BTreeMap<String, u64> = BTreeMap::new();
    for (counter, n) in &inputs.counters {
        match counter {
            Counter::Dashboard {
                month,
                dim,
                value,
                figure,
                ..
            } => {
                let Some(slices) = by_month.get_mut(month.as_str()) else {
                    continue;
                };
                if dim == DIM_STREET {
                    if figure == OPENED {
                        *streets.entry(value.clone()).or_default() += n;
                    }
                    continue;
                }
                let Some(d) = DIM_ORDER.iter().position(|x| x == dim) else {
                    continue;
                };
                let acc = slices.entry((d, value.clone())).or_default();
                if let Some(days) = figure.strip_prefix(DAYS) {
                    if let Ok(days) = days.parse() {
                        *acc.days.entry(days).or_default() += n;
                    }
                } else if let Some(f) = figure_static(figure) {
                    *acc.n.entry(f).or_default() += n;
                }
            }
            Counter::Phone { month, figure, .. } => {
                let Some(slices) = by_month.get_mut(month.as_str()) else {
                    continue;
                };
                let commune = slices.entry((0, String::new())).or_default();
                match figure {
                    PhoneFigure::Inbound => commune.calls[0] += n,
                    PhoneFigure::Missed => commune.calls[1] += n,
                    PhoneFigure::Bounced => commune.calls[2] += n,
                    PhoneFigure::Outbound => {}
                }
            }
            Counter::Due {
                day, dim, value, ..
            } if day.as_str() < inputs.today.as_str() => {
                if let Some(d) = DIM_ORDER.iter().position(|x| x == dim) {
                    period.entry((d, value.clone())).or_default().overdue += n;
                }
            }
            _ => {}
        }
    }
    let per_month: Vec<(String, Slices)> = months
        .iter()
        .map(|m| (m.clone(), by_month.remove(m.as_str()).unwrap_or_default()))
        .collect();
    for (_, slices) in &per_month {
        for (k, acc) in slices {
            period.entry(k.clone()).or_default().add(acc);
        }
    }
    for slice in &inputs.overdue_today {
        for (dim, val) in slice.dims() {
            if let Some(d) = DIM_ORDER.iter().position(|x| *x == dim) {
                period.entry((d, val.to_string())).or_default().overdue += 1;
            }
        }
    }
    let service_dim = DIM_ORDER
        .iter()
        .position(|x| *x == DIM_SERVICE)
        .unwrap_or(0);
    for service in inputs.first_free.keys() {
        period.entry((service_dim, service.clone())).or_default();
    }
    let days_to = |start: &Option<i64>| {
        start.map(|s| ((s - now_us).max(0) as f64 / 86_400e6 * 10.0).round() / 10.0)
    };
    let soonest = inputs.first_free.values().flatten().min().copied();
    let first_free = |(d, val): &(usize, String)| match *d {
        0 if !inputs.first_free.is_empty() => days_to(&soonest),
        d if d == service_dim => inputs.first_free.get(val).and_then(days_to),
        _ => None,
    };
    let row = |month: &str, (d, val): &(usize, String), acc: &Acc| pb::DashboardRow {
        month: month.to_string(),
        dimension: DIM_ORDER[*d].to_string(),
        value: val.clone(),
        figures: Some(acc.figures()),
        label: String::new(),
    };
    let mut rows: Vec<pb::DashboardRow> = period
        .iter()
        .map(|(k, a)| {
            let mut r = row("", k, a);
            if let Some(f) = r.figures.as_mut() {
                f.days_to_first_free_slot = first_free(k);
            }
            r
        })
        .collect();
    for (month, slices) in &per_month {
        rows.extend(slices.iter().map(|(k, a)| row(month, k, a)));
    }
    let mut recurring = Vec::new();
    let mut top = |kind: &str, counts: Vec<(String, u64)>| {
        let mut counts: Vec<_> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        recurring.extend(counts.into_iter().take(RECURRING).map(|(value, requests)| {
            pb::RecurringProblem {
                kind: kind.into(),
                value,
                requests,
                label: String::new(),
            }
        }));
    };
    top(
        DIM_CATEGORY,
        period
            .iter()
            .filter(|((d, _), _)| DIM_ORDER[*d] == DIM_CATEGORY)
            .map(|((_, v), a)| (v.clone(), a.get(OPENED)))
            .collect(),
    );
    // A street with a single request could point at one household: not listed.
    top(
        DIM_STREET,
        streets
            .into_iter()
            .filter(|(_, n)| *n >= MIN_STREET_REQUESTS)
            .collect(),
    );
    pb::Dashboard {
        tenant: tenant.to_string(),
        from_month: months.first().cloned().unwrap_or_default(),
        to_month: months.last().cloned().unwrap_or_default(),
        rows,
        recurring,
        computed_at: Some(contacthub_proto::ts::from_micros(now_us)),
    }
}

/// A dimension's value for people: the French name of a channel or category, a service's
/// name from the commune's directory.
pub fn value_fr(commune: &crate::tenant::Tenant, dimension: &str, value: &str) -> String {
    match dimension {
        // A request an agent opened with no contact came by no channel.
        DIM_CHANNEL if value == "back_office" => "sans contact (ouverte par un agent)".into(),
        DIM_CHANNEL => channel_fr(channel_from_code(value)).to_string(),
        DIM_CATEGORY => category_fr(category_from_code(value)).to_string(),
        DIM_SERVICE if value.is_empty() => "sans service".into(),
        DIM_SERVICE => commune.service_name(value).to_string(),
        _ => value.to_string(),
    }
}

/// Names every row and recurring problem of a dashboard for people ([`value_fr`]).
pub fn label(d: &mut pb::Dashboard, commune: &crate::tenant::Tenant) {
    for r in &mut d.rows {
        r.label = value_fr(commune, &r.dimension, &r.value);
    }
    for p in &mut d.recurring {
        p.label = value_fr(commune, &p.kind, &p.value);
    }
}

/// A dimension's name for people.
pub fn dimension_fr(dimension: &str) -> &'static str {
    match dimension {
        DIM_CHANNEL => "canal",
        DIM_CATEGORY => "catégorie",
        DIM_SERVICE => "service",
        DIM_STREET => "rue",
        _ => "commune",
    }
}

/// One CSV field: quoted when needed, and never read as a formula by a spreadsheet.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The dashboard as CSV for French spreadsheets: `;` separated, decimal comma, one row per
/// line of [`pb::Dashboard::rows`], headers in French.
pub fn csv(d: &pb::Dashboard) -> String {
    let mut out = String::from(
        "mois;dimension;valeur;contacts reçus;demandes ouvertes;demandes répondues;\
         répondues dans le délai;% dans le délai;délai médian (jours);délai p90 (jours);\
         closes sans réponse;en retard aujourd'hui;courriers enregistrés;courriers tracés;\
         % courriers tracés;appels reçus;appels manqués;appels renvoyés à l'accueil;\
         % appels manqués;% renvois à l'accueil;rendez-vous pris;rendez-vous annulés;\
         absences aux rendez-vous;premier créneau libre (jours)\n",
    );
    for r in &d.rows {
        let f = r.figures.unwrap_or_default();
        let month = if r.month.is_empty() {
            format!("{} à {}", d.from_month, d.to_month)
        } else {
            r.month.clone()
        };
        let cells = [
            month,
            dimension_fr(&r.dimension).to_string(),
            r.label.clone(),
            f.contacts_received.to_string(),
            f.requests_opened.to_string(),
            f.requests_answered.to_string(),
            f.answered_in_time.to_string(),
            crate::render::decimal_fr(f.answered_in_time_percent),
            f.p50_days_to_answer.to_string(),
            f.p90_days_to_answer.to_string(),
            f.closed_without_answer.to_string(),
            // "Overdue now" is a figure of the whole period, not of a month.
            if r.month.is_empty() {
                f.overdue_now.to_string()
            } else {
                String::new()
            },
            f.letters_registered.to_string(),
            f.letters_traced.to_string(),
            crate::render::decimal_fr(f.letters_traced_percent),
            f.calls_inbound.to_string(),
            f.calls_missed.to_string(),
            f.calls_bounced.to_string(),
            crate::render::decimal_fr(f.missed_call_percent),
            crate::render::decimal_fr(f.bounce_back_percent),
            f.appointments.to_string(),
            f.appointments_cancelled.to_string(),
            f.no_shows.to_string(),
            f.days_to_first_free_slot
                .map(crate::render::decimal_fr)
                .unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(";"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_defaults_to_the_last_twelve_months() {
        let (from, to) = period("", "2026-03", 0).unwrap();
        assert_eq!((from.as_str(), to.as_str()), ("2025-04", "2026-03"));
        assert!(period("", "999999999-01", 0).is_err());
        assert_eq!(period("2026-01", "2026-02", 0).unwrap().0, "2026-01");
    }

    #[test]
    fn periods_are_checked() {
        assert_eq!(
            months("2025-11", "2026-02").unwrap(),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert!(months("2026-13", "2026-12")
            .unwrap_err()
            .contains("from_month"));
        assert!(months("2026-02", "2026-01").unwrap_err().contains("before"));
        assert!(months("2020-01", "2026-01").unwrap_err().contains("36"));
    }

    #[test]
    fn percentiles_and_shares_come_from_the_counters() {
        let t = "69091";
        let mut c = Vec::new();
        let name = |dim: &str, v: &str, f: &str| Counter::dashboard(t, "2026-03", dim, v, f);
        c.push((name(DIM_COMMUNE, "", ANSWERED), 4));
        c.push((name(DIM_COMMUNE, "", IN_TIME), 3));
        for (d, n) in [(1, 2), (5, 1), (30, 1)] {
            c.push((name(DIM_COMMUNE, "", &days_figure(d)), n));
        }
        c.push((name(DIM_STREET, "rue pasteur", OPENED), 2));
        // Another month's figures and a request due today are not counted.
        c.push((
            Counter::dashboard(t, "2026-04", DIM_COMMUNE, "", ANSWERED),
            9,
        ));
        c.push((Counter::due(t, "2026-03-02", DIM_COMMUNE, ""), 1));
        c.push((Counter::due(t, "2026-03-03", DIM_COMMUNE, ""), 5));
        let inputs = Inputs {
            counters: c,
            today: "2026-03-03".into(),
            ..Default::default()
        };
        let d = assemble(t, &["2026-03".into()], &inputs, 0);
        let f = d.rows[0].figures.unwrap();
        assert_eq!((f.p50_days_to_answer, f.p90_days_to_answer), (1, 30));
        assert_eq!(f.answered_in_time_percent, 75.0);
        assert_eq!((f.requests_answered, f.overdue_now), (4, 1));
        assert_eq!(d.recurring[0].value, "rue pasteur");
        let text = csv(&d);
        assert!(text.contains(";75,0;1;30;"), "{text}");
    }

    #[test]
    fn csv_fields_are_never_formulas() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("a;b"), "\"a;b\"");
    }
}
