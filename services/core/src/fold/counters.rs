//! Figures the fold keeps: events applied and dead-lettered (global), and each commune's
//! monthly phone figures (inbound, missed, outbound, bounced back to the accueil) and
//! dashboard figures.

use super::Kv;
use crate::courrier;
use crate::keys::{self, PhoneFigure};
use crate::pb;
use crate::Result;

/// Adds one to a counter.
pub(crate) fn bump(kv: &mut impl Kv, counter: &keys::Counter) -> Result<()> {
    let k = counter.key();
    let n = kv.get(&k)?.map_or(0, |v| keys::read_u64(&v));
    kv.put(k, (n + 1).to_be_bytes().to_vec());
    Ok(())
}

/// Counts one dashboard `figure` under each (dimension, value) of `dims`, in the Paris month
/// of `at_us` (see [`crate::dashboard`]). Several dimensions share one packed key (one read,
/// one write: the projector's cost is per key); a single one (a street: many values) has its
/// own.
pub(crate) fn dashboard(
    kv: &mut impl Kv,
    tenant: &str,
    at_us: i64,
    dims: &[(&str, &str)],
    figure: &str,
) -> Result<()> {
    let month = crate::dashboard::month_of(at_us);
    if let [(dim, value)] = dims {
        return bump(
            kv,
            &keys::Counter::dashboard(tenant, &month, dim, value, figure),
        );
    }
    let k = keys::Counter::DashboardPacked {
        tenant: tenant.into(),
        month,
        figure: figure.into(),
    }
    .key();
    let mut counts = kv
        .get(&k)?
        .map(|v| keys::unpack_counters(&v))
        .unwrap_or_default();
    for (dim, value) in dims {
        *counts
            .entry(keys::Counter::packed_part(dim, value))
            .or_insert(0) += 1;
    }
    kv.put(k, keys::pack_counters(&counts));
    Ok(())
}

/// Which per-commune phone counters a call moves: a bounce back to the central accueil is
/// counted apart from the inbound calls it bounces.
fn phone_figures(e: &pb::Event, call: &pb::PhoneCall) -> Vec<PhoneFigure> {
    let inbound = e.direction != pb::Direction::Outbound as i32;
    let answered = call.disposition == pb::phone_call::Disposition::Answered as i32;
    match (inbound, call.bounced_to_accueil, answered) {
        (_, true, _) => vec![PhoneFigure::Bounced],
        (true, false, true) => vec![PhoneFigure::Inbound],
        (true, false, false) => vec![PhoneFigure::Inbound, PhoneFigure::Missed],
        (false, false, _) => vec![PhoneFigure::Outbound],
    }
}

/// Counts a call in its commune's month (Paris time).
pub(crate) fn phone_call(
    kv: &mut impl Kv,
    e: &pb::Event,
    call: &pb::PhoneCall,
    occurred_us: i64,
) -> Result<()> {
    let month = courrier::paris(occurred_us).format("%Y-%m").to_string();
    for figure in phone_figures(e, call) {
        let counter = keys::Counter::Phone {
            tenant: e.tenant.clone(),
            month: month.clone(),
            figure,
        };
        bump(kv, &counter)?;
    }
    Ok(())
}

/// Counts what the accueil's report reads of a contact in its commune's day (Paris time,
/// `ac/`, packed, see [`crate::accueil::day`]): inbound calls, missed and
/// bounced back, by hour and by the service they were transferred to; web contacts by hour;
/// calls and walk-ins outside opening hours. Other events count nothing here.
pub(crate) fn accueil_day(
    kv: &mut impl Kv,
    e: &pb::Event,
    payload: &pb::event::Payload,
    occurred_us: i64,
) -> Result<()> {
    use crate::accueil::day;
    use pb::event::Payload;
    if e.direction == pb::Direction::Outbound as i32 {
        return Ok(());
    }
    let hour = chrono::Timelike::hour(&courrier::paris(occurred_us));
    let mut parts: Vec<String> = Vec::new();
    match payload {
        Payload::PhoneCall(c) => {
            if c.bounced_to_accueil {
                parts.push(day::BOUNCED.into());
                if !c.transferred_to.is_empty() {
                    parts.push(day::bounce(&c.transferred_to));
                }
            } else {
                parts.push(day::hourly(hour, day::CALLS));
                if c.disposition != pb::phone_call::Disposition::Answered as i32 {
                    parts.push(day::hourly(hour, day::MISSED));
                }
                if !c.transferred_to.is_empty() {
                    parts.push(day::transfer(&c.transferred_to));
                }
            }
            if c.outside_hours {
                parts.push(day::OUTSIDE_CALLS.into());
            }
        }
        Payload::WebForm(_) => parts.push(day::hourly(hour, day::WEB)),
        Payload::DeskVisit(d) if d.outside_hours && !d.permanence => {
            parts.push(day::OUTSIDE_VISITS.into())
        }
        _ => return Ok(()),
    }
    if parts.is_empty() {
        return Ok(());
    }
    let day = crate::accueil::day_of(occurred_us)
        .format("%Y-%m-%d")
        .to_string();
    let k = keys::accueil_day(&e.tenant, &day);
    let mut counts = kv
        .get(&k)?
        .map(|v| keys::unpack_counters(&v))
        .unwrap_or_default();
    for p in parts {
        *counts.entry(p).or_insert(0) += 1;
    }
    kv.put(k, keys::pack_counters(&counts));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::contact;
    use crate::fold::tests::{apply_all, Mem};
    use crate::keys::Counter;
    use crate::pb::{event::Payload, phone_call::Disposition};

    #[test]
    fn the_dimensions_of_a_figure_share_one_packed_key() {
        let mut kv = Mem::new();
        let dims = [("commune", ""), ("channel", "sms"), ("category", "voirie")];
        dashboard(&mut kv, "69091", 1_800_000_000_000_000, &dims, "contacts").unwrap();
        let dims = [
            ("commune", ""),
            ("channel", "email"),
            ("category", "voirie"),
        ];
        dashboard(&mut kv, "69091", 1_800_000_000_000_000, &dims, "contacts").unwrap();
        let month = keys::Counters::DashboardMonth {
            tenant: "69091",
            month: "2027-01",
        };
        let packed: Vec<_> = kv
            .iter()
            .filter(|(k, _)| k.starts_with(&month.key_prefix()))
            .collect();
        assert_eq!(packed.len(), 1, "one key for the figure's month");
        let (k, v) = packed[0];
        let named = Counter::from_key(k).unwrap().unpack(v);
        let expect = |dim: &str, value: &str, n: u64| {
            (
                Counter::dashboard("69091", "2027-01", dim, value, "contacts"),
                n,
            )
        };
        assert_eq!(
            named,
            [
                expect("category", "voirie", 2),
                expect("channel", "email", 1),
                expect("channel", "sms", 1),
                expect("commune", "", 2),
            ]
        );
        // A street (one dimension, many values) keeps a key of its own.
        dashboard(
            &mut kv,
            "69091",
            1_800_000_000_000_000,
            &[("street", "rue\0zola")],
            "opened",
        )
        .unwrap();
        let street = Counter::dashboard("69091", "2027-01", "street", "rue\0zola", "opened");
        assert_eq!(street.name(), "dash/69091/2027-01/street=rue-zola/opened");
        assert!(kv.contains_key(&street.key()));
    }

    #[test]
    fn a_truncated_packed_counter_reads_what_is_whole() {
        let mut counts = std::collections::BTreeMap::new();
        counts.insert("channel=sms".to_string(), 3u64);
        counts.insert("commune=".to_string(), 5u64);
        let v = keys::pack_counters(&counts);
        assert_eq!(keys::unpack_counters(&v), counts);
        let cut = keys::unpack_counters(&v[..v.len() - 1]);
        assert_eq!(cut.len(), 1);
        assert!(keys::unpack_counters(&[0xff]).is_empty());
    }

    #[test]
    fn calls_are_counted_by_commune_month_and_figure() {
        let mut kv = Mem::new();
        let call = |id: &str, disposition: Disposition, bounced: bool| {
            contact(
                "69091",
                "t",
                id,
                1_800_000_000_000_000,
                1_800_000_000_000_000,
                Payload::PhoneCall(pb::PhoneCall {
                    disposition: disposition as i32,
                    bounced_to_accueil: bounced,
                    ..Default::default()
                }),
                pb::Party {
                    phone: "0612345678".into(),
                    ..Default::default()
                },
            )
        };
        apply_all(
            &mut kv,
            &[
                call("1", Disposition::Answered, false),
                call("2", Disposition::NoAnswer, false),
                call("3", Disposition::Answered, true),
            ],
        );
        let read = |figure: PhoneFigure| {
            let counter = Counter::Phone {
                tenant: "69091".into(),
                month: "2027-01".into(),
                figure,
            };
            kv.get(&counter.key()).map_or(0, |v| keys::read_u64(v))
        };
        assert_eq!(
            [
                PhoneFigure::Inbound,
                PhoneFigure::Missed,
                PhoneFigure::Bounced
            ]
            .map(read),
            [2, 1, 1]
        );
        assert_eq!(
            kv.get(&Counter::Applied.key()).map(|v| keys::read_u64(v)),
            Some(3)
        );
    }
}
