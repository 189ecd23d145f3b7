//! Figures the fold keeps: events applied and dead-lettered (global), and each commune's
//! monthly phone figures (inbound, missed, outbound, bounced back to the accueil) and
//! dashboard figures.

use super::Kv;
use crate::courrier;
use crate::keys;
use crate::pb;
use crate::Result;

/// Adds one to a counter.
pub(crate) fn bump(kv: &mut impl Kv, name: &str) -> Result<()> {
    let k = keys::counter(name);
    let n = kv.get(&k)?.map_or(0, |v| keys::read_u64(&v));
    kv.put(k, (n + 1).to_be_bytes().to_vec());
    Ok(())
}

/// Counts one dashboard `figure` under each (dimension, value) of `dims`, in the Paris month
/// of `at_us` (see [`crate::dashboard`]).
pub(crate) fn dashboard(
    kv: &mut impl Kv,
    tenant: &str,
    at_us: i64,
    dims: &[(&str, &str)],
    figure: &str,
) -> Result<()> {
    let month = crate::dashboard::month_of(at_us);
    for (dim, value) in dims {
        bump(
            kv,
            &crate::dashboard::counter_name(tenant, &month, dim, value, figure),
        )?;
    }
    Ok(())
}

/// Which per-commune phone counters a call moves (see [`keys::phone_counter`]): a bounce back
/// to the central accueil is counted apart from the inbound calls it bounces.
fn phone_figures(e: &pb::Event, call: &pb::PhoneCall) -> Vec<&'static str> {
    let inbound = e.direction != pb::Direction::Outbound as i32;
    let answered = call.disposition == pb::phone_call::Disposition::Answered as i32;
    match (inbound, call.bounced_to_accueil, answered) {
        (_, true, _) => vec![keys::PHONE_BOUNCED],
        (true, false, true) => vec![keys::PHONE_INBOUND],
        (true, false, false) => vec![keys::PHONE_INBOUND, keys::PHONE_MISSED],
        (false, false, _) => vec![keys::PHONE_OUTBOUND],
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
        bump(kv, &keys::phone_counter(&e.tenant, &month, figure))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::contact;
    use crate::fold::tests::{apply_all, Mem};
    use crate::pb::{event::Payload, phone_call::Disposition};

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
        let read = |figure: &str| {
            kv.get(&keys::counter(&keys::phone_counter(
                "69091", "2027-01", figure,
            )))
            .map_or(0, |v| keys::read_u64(v))
        };
        assert_eq!(
            [keys::PHONE_INBOUND, keys::PHONE_MISSED, keys::PHONE_BOUNCED].map(read),
            [2, 1, 1]
        );
        assert_eq!(
            kv.get(&keys::counter(keys::COUNTER_APPLIED))
                .map(|v| keys::read_u64(v)),
            Some(3)
        );
    }
}
