//! Appointments (prendre rendez-vous), pure: the kinds of appointment a commune offers (the
//! communes file's `[[appointment]]`, every commune's, and a commune's own
//! `[[commune.appointment]]`), and the slots of a kind over days — its hours (its own, else
//! its site's counter hours, else the commune's), minus public holidays and closures, cut in
//! slots of its length; each slot receives `desks` people at once.

use crate::hours::{Schedule, Week, WeekEntry};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;

/// A kind of appointment of a commune, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// Its code (`passeport-cni`): in events and URLs, never shown.
    pub code: String,
    /// What people read (« Passeport ou carte nationale d'identité »).
    pub name: String,
    /// The service that receives (its code).
    pub service: String,
    /// Where (an accueil site's code; empty: the town hall).
    pub site: String,
    /// Length of a slot, in minutes.
    pub minutes: u16,
    /// People received at once (desks, agents).
    pub desks: u32,
    /// Its own weekly hours; else the site's, else the commune's counter hours.
    pub hours: Option<Week>,
    /// How far ahead one may book, in days.
    pub horizon_days: u32,
    /// How long before a slot one may still book it, in minutes.
    pub notice_minutes: u32,
}

/// A kind as the communes file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindEntry {
    pub code: String,
    pub name: String,
    pub service: String,
    #[serde(default)]
    pub site: Option<String>,
    pub minutes: u16,
    #[serde(default = "one")]
    pub desks: u32,
    #[serde(default)]
    pub hours: Option<WeekEntry>,
    #[serde(default = "four_weeks")]
    pub horizon_days: u32,
    #[serde(default = "two_hours")]
    pub notice_minutes: u32,
}

fn one() -> u32 {
    1
}
fn four_weeks() -> u32 {
    28
}
fn two_hours() -> u32 {
    120
}

impl KindEntry {
    /// The kind, or what is wrong with it.
    pub fn resolve(&self, default_site: &str) -> Result<Kind, String> {
        let code = self.code.trim();
        if code.is_empty()
            || code.len() > 40
            || !code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "appointment {code:?}: its code is lower-case letters, digits and dashes"
            ));
        }
        if !(5..=240).contains(&self.minutes) {
            return Err(format!("appointment {code}: minutes is 5 to 240"));
        }
        if !(1..=50).contains(&self.desks) {
            return Err(format!("appointment {code}: desks is 1 to 50"));
        }
        if !(1..=366).contains(&self.horizon_days) {
            return Err(format!("appointment {code}: horizon_days is 1 to 366"));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > 120 {
            return Err(format!("appointment {code}: name is 1 to 120 characters"));
        }
        Ok(Kind {
            code: code.to_string(),
            name: self.name.trim().to_string(),
            service: self.service.trim().to_string(),
            site: self
                .site
                .clone()
                .unwrap_or_else(|| default_site.to_string()),
            minutes: self.minutes,
            desks: self.desks,
            hours: match &self.hours {
                Some(h) => Some(h.parse().map_err(|e| format!("appointment {code}: {e}"))?),
                None => None,
            },
            horizon_days: self.horizon_days,
            notice_minutes: self.notice_minutes,
        })
    }
}

/// The starts (µs) of `kind`'s slots in `week` from `from_us` on (its notice respected) for
/// `days` days at most within its horizon, days the commune closes left out; Paris time.
pub fn slots(kind: &Kind, week: &Week, schedule: &Schedule, from_us: i64, days: u32) -> Vec<i64> {
    let earliest = from_us + i64::from(kind.notice_minutes) * 60_000_000;
    let first: NaiveDate = crate::courrier::paris(from_us).date();
    let days = days.min(kind.horizon_days);
    let mut out = Vec::new();
    for n in 0..i64::from(days) {
        let day = first + Duration::days(n);
        if schedule.closed_day(day).is_some() {
            continue;
        }
        let weekday = chrono::Datelike::weekday(&day).num_days_from_monday() as usize;
        for (open, close) in &week.0[weekday] {
            let mut t = *open;
            while t + kind.minutes <= *close {
                let local = day.and_hms_opt(u32::from(t / 60), u32::from(t % 60), 0);
                if let Some(local) = local {
                    let start = crate::courrier::paris_local_to_utc_us(local);
                    if start >= earliest {
                        out.push(start);
                    }
                }
                t += kind.minutes;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> Kind {
        KindEntry {
            code: "passeport-cni".into(),
            name: "Passeport".into(),
            service: "etat-civil".into(),
            site: None,
            minutes: 20,
            desks: 2,
            hours: None,
            horizon_days: 28,
            notice_minutes: 120,
        }
        .resolve("hdv")
        .unwrap()
    }

    fn us(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        crate::courrier::paris_local_to_utc_us(
            NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(h, min, 0)
                .unwrap(),
        )
    }

    #[test]
    fn slots_follow_the_hours_the_holidays_and_the_notice() {
        let mut week = Week::default();
        week.0[0] = vec![(8 * 60 + 30, 10 * 60)]; // lundi 08:30-10:00
        week.0[1] = vec![(14 * 60, 15 * 60)]; // mardi 14:00-15:00
        let schedule = Schedule::default();
        // Monday 07/12/2026 at 07:00: 08:30 is too soon (2 h notice), 09:10 and 09:30 are not.
        let found = slots(&kind(), &week, &schedule, us(2026, 12, 7, 7, 0), 2);
        assert_eq!(
            found,
            vec![
                us(2026, 12, 7, 9, 10),
                us(2026, 12, 7, 9, 30),
                us(2026, 12, 8, 14, 0),
                us(2026, 12, 8, 14, 20),
                us(2026, 12, 8, 14, 40),
            ]
        );
        // Christmas (a Friday) and the Monday after a closure.
        week.0[4] = vec![(9 * 60, 10 * 60)];
        let closed = Schedule {
            closures: vec![crate::hours::Closure::parse("2026-12-28").unwrap()],
            ..Default::default()
        };
        let found = slots(&kind(), &week, &closed, us(2026, 12, 24, 18, 0), 5);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_bad_kind_says_what_is_wrong() {
        let mut e = KindEntry {
            code: "Passeport".into(),
            name: "x".into(),
            service: "etat-civil".into(),
            site: None,
            minutes: 20,
            desks: 1,
            hours: None,
            horizon_days: 28,
            notice_minutes: 0,
        };
        assert!(e.resolve("").unwrap_err().contains("lower-case"));
        e.code = "p".into();
        e.minutes = 2;
        assert!(e.resolve("").unwrap_err().contains("minutes"));
    }
}
