//! What ops watch: log end offsets against projector positions, dead letters, and the
//! phone figures of a commune.

use crate::auth::{Ops, Scope};
use crate::{App, Result};
use contacthub_core::keys;
use contacthub_core::pb;
use std::collections::BTreeMap;

/// Bytes of each dead letter's value returned by [`App::dead_letters`] (the whole value is kept).
const DEAD_LETTER_RAW_BYTES: usize = 256 * 1024;

impl App {
    /// Positions, lag, counts and what is wrong, if anything (no personal data: the metrics
    /// page shows it too). Answers even while the read
    /// model is unreadable (its figures are then 0 and `projector_error` says why).
    pub async fn status(&self) -> pb::GetStatusResponse {
        let positions = self.projector.positions.borrow().clone();
        let (ends, log_error) = match self.log.end_offsets().await {
            Ok(e) => (e, String::new()),
            Err(e) => (vec![], e.to_string()),
        };
        let log_error = match (log_error.is_empty(), self.log.health().await) {
            (true, Err(e)) => e.to_string(),
            _ => log_error,
        };
        let partitions = positions
            .iter()
            .enumerate()
            .map(|(p, &projected)| {
                let end = ends.get(p).copied().unwrap_or(projected);
                pb::PartitionStatus {
                    partition: p as u32,
                    log_end_offset: end,
                    projected_offset: projected,
                    lag: end.saturating_sub(projected),
                }
            })
            .collect();
        pb::GetStatusResponse {
            backend: self.log.backend().into(),
            topic: self.log.name(),
            partitions,
            dead_letters: self.store.counter(&keys::Counter::DeadLetters).unwrap_or(0),
            events_applied: self.store.counter(&keys::Counter::Applied).unwrap_or(0),
            log_error,
            projector_error: self.projector.failing().unwrap_or_default(),
            open_watches: self.open_watches.load(std::sync::atomic::Ordering::SeqCst) as u64,
            // Filled for the ops caller: see [`App::connectors`].
            connectors: Vec::new(),
        }
    }

    /// Dead letters of the communes `agent` may see, oldest first (`limit` 0 means 100; at
    /// most 10,000), each value cut to 256 KiB (`raw_size` gives its size). The raw bytes
    /// (which hold a citizen's words) go to an agent of every commune only; a record whose key
    /// names no commune, too.
    pub fn dead_letters(&self, ops: &Ops, limit: u32) -> Result<Vec<pb::DeadLetter>> {
        let limit = match limit {
            0 => 100,
            n => n.min(10_000) as usize,
        };
        let every = ops.all_communes();
        let mut dead_letters = self.store.dead_letters(limit, |d| {
            every || std::str::from_utf8(&d.key).is_ok_and(|t| ops.may_read(t))
        })?;
        for d in &mut dead_letters {
            d.raw_size = d.raw.len() as u64;
            if every {
                d.raw.truncate(DEAD_LETTER_RAW_BYTES);
            } else {
                d.raw.clear();
            }
        }
        Ok(crate::within_page(dead_letters))
    }

    /// The digest of the read model as it is now, with the positions folded before and after
    /// (equal when nothing was folded meanwhile, else `Unavailable`: ask again).
    pub fn digest(&self) -> Result<pb::GetDigestResponse> {
        let before = self.projector.positions.borrow().clone();
        let digest = self.store.digest()?;
        let after = self.projector.positions.borrow().clone();
        if before != after {
            return Err(crate::Error::Unavailable(
                "events were folded while the digest was taken: take it again when the log is quiet".into(),
            ));
        }
        Ok(pb::GetDigestResponse {
            digest,
            positions: after,
        })
    }

    /// Calls of one commune, month by month and in total, with the bounce-back rate.
    pub fn phone_report(&self, scope: &Scope) -> Result<pb::PhoneReport> {
        let tenant = scope.commune();
        self.enter_figures(scope, tenant)?;
        let counters = self.store.counters(keys::Counters::Phone { tenant })?;
        let mut by_month: BTreeMap<String, [u64; 4]> = BTreeMap::new();
        for (counter, n) in counters {
            if let keys::Counter::Phone { month, figure, .. } = counter {
                let slot = match figure {
                    keys::PhoneFigure::Inbound => 0,
                    keys::PhoneFigure::Missed => 1,
                    keys::PhoneFigure::Outbound => 2,
                    keys::PhoneFigure::Bounced => 3,
                };
                by_month.entry(month).or_default()[slot] += n;
            }
        }
        let figures = |[inbound, missed, outbound, bounced]: [u64; 4]| pb::PhoneFigures {
            inbound_calls: inbound,
            missed_calls: missed,
            outbound_calls: outbound,
            bounced_calls: bounced,
            bounce_rate_percent: if inbound == 0 {
                0.0
            } else {
                bounced as f64 * 100.0 / inbound as f64
            },
        };
        let mut total = [0u64; 4];
        for f in by_month.values() {
            for (t, n) in total.iter_mut().zip(f) {
                *t += n;
            }
        }
        Ok(pb::PhoneReport {
            total: Some(figures(total)),
            months: by_month
                .iter()
                .map(|(m, f)| pb::PhoneMonth {
                    month: m.to_string(),
                    figures: Some(figures(*f)),
                })
                .collect(),
            tenant: tenant.to_string(),
        })
    }
}
