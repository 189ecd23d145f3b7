//! The mail room's rules: chrono numbers, local dates in Paris, committed answer dates, and
//! the per-commune report. Pure functions over read-model records.

use crate::pb::{CourrierReportResponse, CourrierState, CourrierStatus};
use crate::tenant::Tenant;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use contacthub_proto::ts;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// UTC instant (µs) of 01:00 UTC on the last Sunday of `month` in `year`: when Europe/Paris
/// switches between CET and CEST.
fn last_sunday_1am_utc(year: i32, month: u32) -> i64 {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid date");
    let mut d = first_next.pred_opt().expect("valid date");
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().expect("valid date");
    }
    Utc.from_utc_datetime(&d.and_hms_opt(1, 0, 0).expect("valid time"))
        .timestamp_micros()
}

/// Offset of Europe/Paris from UTC at instant `us` (CET +1 h, CEST +2 h, EU rules).
pub fn paris_offset_us(us: i64) -> i64 {
    let year = DateTime::from_timestamp_micros(us).map_or(1970, |d| d.year());
    let summer = (last_sunday_1am_utc(year, 3)..last_sunday_1am_utc(year, 10)).contains(&us);
    if summer {
        2 * HOUR_US
    } else {
        HOUR_US
    }
}

/// A time for people to read, Europe/Paris local time as agents write it: `02/11/2026 09:14`.
pub fn paris_display(us: i64) -> String {
    paris(us).format("%d/%m/%Y %H:%M").to_string()
}

/// A date for people to read, Europe/Paris local time: `02/11/2026`.
pub fn paris_day(us: i64) -> String {
    paris(us).format("%d/%m/%Y").to_string()
}

/// The local date and time in Paris of an instant.
pub fn paris(us: i64) -> chrono::NaiveDateTime {
    DateTime::from_timestamp_micros(us + paris_offset_us(us))
        .unwrap_or_default()
        .naive_utc()
}

/// The UTC instant (µs) of a local date and time in Paris. In the autumn hour that occurs
/// twice the first (summer-time) one is taken; a time in the spring gap is read as winter time.
pub fn paris_local_to_utc_us(local: chrono::NaiveDateTime) -> i64 {
    let naive_us = local.and_utc().timestamp_micros();
    for offset in [2 * HOUR_US, HOUR_US] {
        if paris_offset_us(naive_us - offset) == offset {
            return naive_us - offset;
        }
    }
    naive_us - HOUR_US
}

/// The registration year of a letter recorded at `us`: the civil year in Paris.
pub fn registration_year(us: i64) -> i32 {
    paris(us).year()
}

/// `GIV-2026-000123`.
pub fn format_chrono(prefix: &str, year: i32, n: u64) -> String {
    format!("{prefix}-{year}-{n:06}")
}

/// When the commune committed to answer a letter (µs): received date plus the delay of its
/// category.
pub fn due_us(state: &CourrierState, tenant: &Tenant) -> i64 {
    let from = state
        .received_at
        .as_ref()
        .or(state.registered_at.as_ref())
        .and_then(ts::to_micros)
        .unwrap_or(0);
    answer_due_us(tenant, state.category, from)
}

/// When a commune committed to answer something of `category` first received at `from_us`:
/// the same Paris local time `answer_days` later, counting calendar days or, where the
/// commune says so, working days (Monday to Friday, neither a public holiday nor one of the
/// commune's closures).
pub fn answer_due_us(tenant: &Tenant, category: i32, from_us: i64) -> i64 {
    let days = tenant.answer_days_for(category);
    let mut local = paris(from_us);
    if tenant.answer_in_working_days {
        let closed = |d: chrono::NaiveDate| match &tenant.schedule {
            Some(s) => s.closed_day(d).is_some(),
            None => crate::hours::public_holiday(d).is_some(),
        };
        let mut left = days;
        while left > 0 {
            local += chrono::Duration::days(1);
            if !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && !closed(local.date()) {
                left -= 1;
            }
        }
    } else {
        local += chrono::Duration::days(i64::from(days));
    }
    paris_local_to_utc_us(local)
}

/// A letter not answered by its committed date.
pub fn is_overdue(state: &CourrierState, tenant: &Tenant, now_us: i64) -> bool {
    state.status != CourrierStatus::Answered as i32 && now_us > due_us(state, tenant)
}

fn registered_us(s: &CourrierState) -> i64 {
    s.registered_at
        .as_ref()
        .and_then(ts::to_micros)
        .unwrap_or(0)
}

/// Counts, time to answer (average and 90th percentile, in days) and overdue letters among
/// the letters registered in `[since, until)`.
pub fn report(
    states: &[CourrierState],
    tenant: &Tenant,
    since_us: i64,
    until_us: i64,
    now_us: i64,
) -> CourrierReportResponse {
    let mut r = CourrierReportResponse::default();
    let mut days = Vec::new();
    for s in states {
        let at = registered_us(s);
        if at < since_us || at >= until_us {
            continue;
        }
        r.registered += 1;
        if s.history.iter().any(|h| h.kind == "routed") {
            r.routed += 1;
        }
        if s.status == CourrierStatus::Answered as i32 {
            r.answered += 1;
            let received = s.received_at.as_ref().and_then(ts::to_micros).unwrap_or(at);
            let answered = s
                .answered_at
                .as_ref()
                .and_then(ts::to_micros)
                .unwrap_or(received);
            days.push((answered - received).max(0) as f64 / DAY_US as f64);
        } else if is_overdue(s, tenant, now_us) {
            r.overdue.push(s.clone());
        }
    }
    if !days.is_empty() {
        days.sort_by(f64::total_cmp);
        r.average_days_to_answer = days.iter().sum::<f64>() / days.len() as f64;
        let rank = ((days.len() as f64) * 0.9).ceil() as usize;
        r.p90_days_to_answer = days[rank.clamp(1, days.len()) - 1];
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Tenants;

    fn at(y: i32, m: u32, d: u32, h: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn paris_local_times_convert_back_to_utc() {
        let local = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // Winter (+1 h), summer (+2 h), the doubled autumn hour, the spring gap.
        assert_eq!(
            paris_local_to_utc_us(local("2026-01-15 10:00")),
            at(2026, 1, 15, 9)
        );
        assert_eq!(
            paris_local_to_utc_us(local("2026-07-15 10:00")),
            at(2026, 7, 15, 8)
        );
        assert_eq!(
            paris_local_to_utc_us(local("2026-10-25 02:30")),
            at(2026, 10, 25, 0) + HOUR_US / 2
        );
        assert_eq!(
            paris_local_to_utc_us(local("2026-03-29 02:30")),
            at(2026, 3, 29, 1) + HOUR_US / 2
        );
        for us in [at(2026, 1, 15, 9), at(2026, 7, 15, 8), at(2026, 12, 31, 23)] {
            assert_eq!(paris_local_to_utc_us(paris(us)), us);
        }
    }

    #[test]
    fn due_dates_count_working_days_where_the_commune_says_so() {
        let t = Tenants::builtin();
        let other = crate::pb::Category::Other as i32;
        // Friday 6 March 2026, 10:00 in Paris.
        let friday = at(2026, 3, 6, 9);
        // Givors: 15 calendar days → Saturday 21 March, same local hour.
        let giv = t.get("69091").unwrap();
        assert_eq!(answer_due_us(giv, other, friday), at(2026, 3, 21, 9));
        // Across the spring change the local hour is kept: 10:00 CEST is 08:00 UTC.
        assert_eq!(
            answer_due_us(giv, other, at(2026, 3, 20, 9)),
            at(2026, 4, 4, 8)
        );
        // Grigny: 15 working days → Friday 27 March.
        let gri = t.get("69096").unwrap();
        assert!(gri.answer_in_working_days);
        assert_eq!(answer_due_us(gri, other, friday), at(2026, 3, 27, 9));
        // From a Saturday the count starts on Monday: 15 working days → Friday 27 March.
        assert_eq!(
            answer_due_us(gri, other, at(2026, 3, 7, 9)),
            at(2026, 3, 27, 9)
        );
        // Public holidays are not working days: from Thursday 30 April 2026, 15 working days
        // skip 1 May, 8 May, Ascension (14 May) and Whit Monday (25 May) → Wednesday 27 May.
        assert_eq!(
            answer_due_us(gri, other, at(2026, 4, 30, 8)),
            at(2026, 5, 27, 8)
        );
    }

    #[test]
    fn registration_year_is_the_year_in_paris() {
        assert_eq!(registration_year(at(2026, 12, 31, 22)), 2026); // 23:00 in Paris
        assert_eq!(registration_year(at(2026, 12, 31, 23)), 2027); // midnight in Paris
        assert_eq!(paris(at(2026, 7, 1, 22)).day(), 2); // CEST: 00:00 on 2 July
        assert_eq!(paris(at(2026, 3, 29, 0)).format("%H").to_string(), "01");
        assert_eq!(paris(at(2026, 3, 29, 1)).format("%H").to_string(), "03");
    }

    #[test]
    fn report_counts_and_percentiles() {
        let t = Tenants::builtin();
        let giv = t.get("69091").unwrap();
        let mk = |n: u32, answered_days: Option<i64>| {
            let received = at(2026, 1, n, 9);
            CourrierState {
                chrono: format_chrono("GIV", 2026, n.into()),
                category: crate::pb::Category::Urbanisme as i32,
                received_at: Some(ts::from_micros(received)),
                registered_at: Some(ts::from_micros(received)),
                status: if answered_days.is_some() {
                    CourrierStatus::Answered as i32
                } else {
                    CourrierStatus::Registered as i32
                },
                answered_at: answered_days.map(|d| ts::from_micros(received + d * DAY_US)),
                ..Default::default()
            }
        };
        let states: Vec<_> = (1..=10)
            .map(|n| mk(n, Some(i64::from(n))))
            .chain([mk(20, None), mk(28, None)])
            .collect();
        let r = report(
            &states,
            giv,
            at(2026, 1, 1, 0),
            at(2027, 1, 1, 0),
            at(2026, 2, 25, 0),
        );
        assert_eq!((r.registered, r.answered), (12, 10));
        assert!((r.average_days_to_answer - 5.5).abs() < 1e-9);
        assert!((r.p90_days_to_answer - 9.0).abs() < 1e-9);
        // Urbanisme: 30 days committed. Received 20 January: due 19 February, overdue on the 25th.
        let overdue: Vec<_> = r.overdue.iter().map(|s| s.chrono.as_str()).collect();
        assert_eq!(overdue, ["GIV-2026-000020"]);
    }
}
