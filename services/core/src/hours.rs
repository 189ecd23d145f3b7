//! Opening hours: when a commune's sites open their counter and answer the phone — a weekly
//! schedule in Paris time, minus French public holidays (computed, Easter Monday and Whit
//! Monday included) and the commune's own closures. Pure: the communes file gives the
//! schedules, callers give the time.

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike, Weekday};
use serde::Deserialize;

/// The channels a site opens: its counter (walk-ins) and its phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Counter,
    Phone,
}

/// A weekly schedule: for each day from Monday, the periods open, in minutes since midnight
/// (Paris time), sorted and apart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Week(pub [Vec<(u16, u16)>; 7]);

/// A schedule as the communes file writes it: `lundi = "08:30-12:00 13:30-17:30"`, a day
/// missing or empty is closed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekEntry {
    #[serde(default)]
    lundi: String,
    #[serde(default)]
    mardi: String,
    #[serde(default)]
    mercredi: String,
    #[serde(default)]
    jeudi: String,
    #[serde(default)]
    vendredi: String,
    #[serde(default)]
    samedi: String,
    #[serde(default)]
    dimanche: String,
}

impl WeekEntry {
    /// The schedule, or what is wrong with it (named by its day).
    pub fn parse(&self) -> Result<Week, String> {
        let days = [
            ("lundi", &self.lundi),
            ("mardi", &self.mardi),
            ("mercredi", &self.mercredi),
            ("jeudi", &self.jeudi),
            ("vendredi", &self.vendredi),
            ("samedi", &self.samedi),
            ("dimanche", &self.dimanche),
        ];
        let mut week = Week::default();
        for (i, (day, text)) in days.into_iter().enumerate() {
            week.0[i] = periods(text).map_err(|e| format!("{day} = {text:?}: {e}"))?;
        }
        Ok(week)
    }
}

/// `"08:30-12:00 13:30-17:30"` (or with commas) as periods in minutes.
fn periods(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for part in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let (a, b) = part
            .split_once('-')
            .ok_or_else(|| format!("{part:?} is not a period like 08:30-12:00"))?;
        let minutes = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M")
                .map(|t| (t.hour() * 60 + t.minute()) as u16)
                .map_err(|_| format!("{t:?} is not a time like 08:30"))
        };
        let (start, end) = (minutes(a)?, minutes(b)?);
        if start >= end {
            return Err(format!("{part:?} ends before it starts"));
        }
        if out.last().is_some_and(|(_, e)| *e > start) {
            return Err(format!("{part:?} overlaps the period before it"));
        }
        out.push((start, end));
    }
    Ok(out)
}

/// Easter Sunday of `year` (Gregorian calendar; the anonymous algorithm of 1876).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("a date")
}

/// The French public holiday falling on `date`, by its name, if any (metropolitan France:
/// the eleven days of the Code du travail, L3133-1).
pub fn public_holiday(date: NaiveDate) -> Option<&'static str> {
    let easter = easter(date.year());
    let after = |days: i64| easter + chrono::Duration::days(days);
    match (date.month(), date.day()) {
        (1, 1) => return Some("Jour de l'an"),
        (5, 1) => return Some("Fête du Travail"),
        (5, 8) => return Some("Victoire 1945"),
        (7, 14) => return Some("Fête nationale"),
        (8, 15) => return Some("Assomption"),
        (11, 1) => return Some("Toussaint"),
        (11, 11) => return Some("Armistice 1918"),
        (12, 25) => return Some("Noël"),
        _ => {}
    }
    if date == after(1) {
        Some("Lundi de Pâques")
    } else if date == after(39) {
        Some("Ascension")
    } else if date == after(50) {
        Some("Lundi de Pentecôte")
    } else {
        None
    }
}

/// A day closed by the commune (`"2026-12-24"`, or a range `"2026-12-24..2026-12-31"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closure {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Closure {
    pub fn parse(text: &str) -> Result<Closure, String> {
        let date = |t: &str| {
            NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
                .map_err(|_| format!("{t:?} is not a date like 2026-12-24"))
        };
        let (from, to) = match text.split_once("..") {
            Some((a, b)) => (date(a)?, date(b)?),
            None => (date(text)?, date(text)?),
        };
        if to < from {
            return Err(format!("{text:?} ends before it starts"));
        }
        Ok(Closure { from, to })
    }
}

/// A site's schedules and the commune's closures: whether it is open at a given time. A
/// channel the communes file says nothing of (`None`) is never « closed ».
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    pub counter: Option<Week>,
    pub phone: Option<Week>,
    pub closures: Vec<Closure>,
}

impl Schedule {
    /// Why `date` is closed all day, if it is: a public holiday or a closure.
    pub fn closed_day(&self, date: NaiveDate) -> Option<String> {
        if let Some(name) = public_holiday(date) {
            return Some(format!("jour férié ({name})"));
        }
        self.closures
            .iter()
            .any(|c| c.from <= date && date <= c.to)
            .then(|| "fermeture exceptionnelle".to_string())
    }

    /// The days closed all day from `from` on, for `days` days: (date, why).
    pub fn closed_days(&self, from: NaiveDate, days: u32) -> Vec<(NaiveDate, String)> {
        (0..i64::from(days))
            .map(|n| from + chrono::Duration::days(n))
            .filter_map(|d| self.closed_day(d).map(|why| (d, why)))
            .collect()
    }

    /// Whether `channel` is open at `us` (µs since the epoch, read in Paris time).
    pub fn is_open(&self, channel: Opening, us: i64) -> bool {
        match self.week(channel) {
            Some(week) => self.open_in(week, us),
            None => true,
        }
    }

    /// The week of `channel`, if the communes file gives one.
    fn week(&self, channel: Opening) -> Option<&Week> {
        match channel {
            Opening::Counter => self.counter.as_ref(),
            Opening::Phone => self.phone.as_ref(),
        }
    }

    /// Whether `week` (the commune's, or a site's own) is open at `us`, the commune's closed
    /// days left out.
    pub fn open_in(&self, week: &Week, us: i64) -> bool {
        let paris = crate::courrier::paris(us);
        if self.closed_day(paris.date()).is_some() {
            return false;
        }
        let day = paris.weekday().num_days_from_monday() as usize;
        let minute = (paris.hour() * 60 + paris.minute()) as u16;
        week.0[day].iter().any(|(s, e)| *s <= minute && minute < *e)
    }

    /// The schedule of `channel` in French, a day per line: « lundi : 08:30–12:00, 13:30–17:30 »
    /// (one line « non renseignés » when the communes file says nothing of it).
    pub fn describe(&self, channel: Opening) -> Vec<String> {
        match self.week(channel) {
            Some(week) => week.describe(),
            None => vec!["horaires non renseignés".to_string()],
        }
    }
}

impl Week {
    /// The week in French, a day per line: « lundi : 08:30–12:00, 13:30–17:30 ».
    pub fn describe(&self) -> Vec<String> {
        let week = self;
        let names = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .map(|d| match d {
            Weekday::Mon => "lundi",
            Weekday::Tue => "mardi",
            Weekday::Wed => "mercredi",
            Weekday::Thu => "jeudi",
            Weekday::Fri => "vendredi",
            Weekday::Sat => "samedi",
            Weekday::Sun => "dimanche",
        });
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        names
            .iter()
            .zip(&week.0)
            .map(|(name, periods)| {
                if periods.is_empty() {
                    format!("{name} : fermé")
                } else {
                    let p: Vec<String> = periods
                        .iter()
                        .map(|(s, e)| format!("{}–{}", hm(*s), hm(*e)))
                        .collect();
                    format!("{name} : {}", p.join(", "))
                }
            })
            .collect()
    }
}

/// Marks `event` when it is a call received or a walk-in while its commune's phone or counter
/// is closed, by the hours in force now (the writer's): the mark is then part of the event,
/// so a replay, or a later change of hours, gives the same history. Nothing when the commune
/// says no hours, or for any other event.
pub fn mark(event: &mut crate::pb::Event, tenants: &crate::tenant::Tenants) {
    use crate::pb::event::Payload;
    let inbound = event.direction == crate::pb::Direction::Inbound as i32;
    let Some(schedule) = tenants.get(&event.tenant).and_then(|t| t.schedule.as_ref()) else {
        return;
    };
    let Some(us) = event
        .occurred_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
    else {
        return;
    };
    match event.payload.as_mut() {
        Some(Payload::PhoneCall(c)) if inbound => {
            c.outside_hours = !schedule.is_open(Opening::Phone, us);
        }
        // An élu holds a permanence where and when they choose.
        Some(Payload::DeskVisit(v)) if v.permanence => v.outside_hours = false,
        Some(Payload::DeskVisit(v)) => {
            // At a site with hours of its own (an annex), by those.
            let site = tenants
                .get(&event.tenant)
                .and_then(|t| t.site(&v.desk))
                .and_then(|s| s.hours.as_ref());
            v.outside_hours = match site {
                Some(week) => !schedule.open_in(week, us),
                None => !schedule.is_open(Opening::Counter, us),
            };
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_and_the_holidays_that_follow_it() {
        // Published dates of Easter Sunday.
        for (y, m, day) in [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
        ] {
            assert_eq!(easter(y), d(y, m, day), "{y}");
        }
        assert_eq!(public_holiday(d(2026, 4, 6)), Some("Lundi de Pâques"));
        assert_eq!(public_holiday(d(2026, 5, 14)), Some("Ascension"));
        assert_eq!(public_holiday(d(2026, 5, 25)), Some("Lundi de Pentecôte"));
        assert_eq!(public_holiday(d(2026, 7, 14)), Some("Fête nationale"));
        assert_eq!(public_holiday(d(2026, 12, 3)), None);
        let count = (1..=365)
            .filter_map(|n| NaiveDate::from_yo_opt(2026, n))
            .filter(|day| public_holiday(*day).is_some())
            .count();
        assert_eq!(count, 11);
    }

    #[test]
    fn a_schedule_opens_by_day_and_closes_on_holidays_and_closures() {
        let week = WeekEntry {
            lundi: "08:30-12:00 13:30-17:30".into(),
            samedi: "09:00-12:00".into(),
            ..Default::default()
        }
        .parse()
        .unwrap();
        let s = Schedule {
            counter: Some(week.clone()),
            phone: Some(week),
            closures: vec![Closure::parse("2026-12-28..2026-12-31").unwrap()],
        };
        // Paris time: Monday 7 December 2026…
        let paris = |day: u32, h: u32, m: u32| {
            crate::courrier::paris_local_to_utc_us(d(2026, 12, day).and_hms_opt(h, m, 0).unwrap())
        };
        assert!(s.is_open(Opening::Counter, paris(7, 8, 30)));
        assert!(!s.is_open(Opening::Counter, paris(7, 12, 0)), "lunch");
        assert!(!s.is_open(Opening::Counter, paris(7, 0, 30)), "night");
        assert!(
            !s.is_open(Opening::Counter, paris(8, 10, 0)),
            "Tuesday: closed"
        );
        assert!(
            s.is_open(Opening::Phone, paris(12, 11, 0)),
            "Saturday morning"
        );
        assert!(!s.is_open(Opening::Counter, paris(28, 10, 0)), "closure");
        assert!(!s.is_open(Opening::Counter, paris(25, 10, 0)), "Christmas");
        assert_eq!(
            s.describe(Opening::Counter)[0],
            "lundi : 08:30–12:00, 13:30–17:30"
        );
        assert_eq!(s.describe(Opening::Counter)[1], "mardi : fermé");
        let no_phone = Schedule {
            phone: None,
            ..s.clone()
        };
        assert!(
            no_phone.is_open(Opening::Phone, paris(25, 3, 0)),
            "hours not given: never « closed »"
        );
    }

    #[test]
    fn a_visit_at_an_annex_is_judged_by_the_annexs_hours() {
        use crate::pb::{self, event::Payload};
        let tenants = crate::tenant::Tenants::builtin();
        // Monday 7 December 2026, 10:00 in Paris: the town hall is open, Vaulx-en-Velin's
        // southern annex opens on Monday afternoons only.
        let visit = |desk: &str| {
            let mut e = crate::event::contact(
                "69256",
                "test",
                desk,
                1_796_634_000_000_000,
                1_796_634_000_000_000,
                Payload::DeskVisit(pb::DeskVisit {
                    desk: desk.into(),
                    ..Default::default()
                }),
                Default::default(),
            );
            mark(&mut e, &tenants);
            match e.payload {
                Some(Payload::DeskVisit(v)) => v.outside_hours,
                _ => unreachable!(),
            }
        };
        assert_eq!(
            crate::courrier::paris_display(1_796_634_000_000_000),
            "07/12/2026 10:00"
        );
        assert!(!visit("hdv"));
        assert!(visit("annexe-sud"));
        let annex = tenants.get("69256").unwrap().site("annexe-sud").unwrap();
        assert_eq!(
            annex.hours.as_ref().unwrap().describe()[0],
            "lundi : 13:30–17:30"
        );
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let bad = |text: &str| {
            WeekEntry {
                mardi: text.into(),
                ..Default::default()
            }
            .parse()
            .unwrap_err()
        };
        assert!(bad("8h30-12h").contains("mardi"));
        assert!(bad("12:00-08:00").contains("ends before"));
        assert!(bad("08:00-12:00 11:00-13:00").contains("overlaps"));
        assert!(Closure::parse("2026-12-31..2026-12-01").is_err());
    }
}
