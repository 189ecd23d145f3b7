//! The ops service: log end offsets against projector positions, and dead letters.

use crate::{internal, Hub};
use contacthub_core::keys;
use contacthub_proto::v1::{self as pb, ops_service_server::OpsService};
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

/// Bytes of each dead letter's value returned by ListDeadLetters (the whole value is kept).
const DEAD_LETTER_RAW_BYTES: usize = 256 * 1024;

pub struct Ops {
    hub: Hub,
}

impl Ops {
    pub fn new(hub: Hub) -> Self {
        Ops { hub }
    }
}

#[tonic::async_trait]
impl OpsService for Ops {
    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        self.hub.access.for_ops(&req)?;
        let hub = &self.hub;
        let positions = hub.projector.positions.borrow().clone();
        let (ends, log_error) = match hub.log.end_offsets().await {
            Ok(e) => (e, String::new()),
            Err(e) => (vec![], e.to_string()),
        };
        let log_error = match (log_error.is_empty(), hub.log.health().await) {
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
        Ok(Response::new(pb::GetStatusResponse {
            backend: hub.log.backend().into(),
            topic: hub.log.name(),
            partitions,
            // Read-model figures are 0 while it is unreadable; projector_error says why.
            dead_letters: hub.store.counter(keys::COUNTER_DEAD).unwrap_or(0),
            events_applied: hub.store.counter(keys::COUNTER_APPLIED).unwrap_or(0),
            log_error,
            projector_error: hub.projector.failing().unwrap_or_default(),
            open_watches: hub.open_watches.load(std::sync::atomic::Ordering::SeqCst) as u64,
        }))
    }

    async fn list_dead_letters(
        &self,
        req: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        self.hub.access.for_ops(&req)?;
        let limit = match req.get_ref().limit {
            0 => 100,
            n => n.min(10_000) as usize,
        };
        let mut dead_letters = self.hub.store.dead_letters(limit).map_err(internal)?;
        for d in &mut dead_letters {
            d.raw_size = d.raw.len() as u64;
            d.raw.truncate(DEAD_LETTER_RAW_BYTES);
        }
        Ok(Response::new(pb::ListDeadLettersResponse { dead_letters }))
    }

    async fn get_phone_report(
        &self,
        req: Request<pb::GetPhoneReportRequest>,
    ) -> Result<Response<pb::PhoneReport>, Status> {
        let tenant = req.get_ref().tenant.clone();
        self.hub.access.for_tenant(&req, &tenant)?;
        self.hub.known_tenant(&tenant)?;
        let counters = self
            .hub
            .store
            .counters(&keys::phone_counter_prefix(&tenant))
            .map_err(internal)?;
        // Counters are monthly: `phone/TENANT/MONTH/FIGURE`.
        let prefix = keys::phone_counter_prefix(&tenant);
        let mut by_month: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
        for (name, n) in &counters {
            let Some((month, figure)) = name[prefix.len()..].split_once('/') else {
                continue;
            };
            let slot = match figure {
                keys::PHONE_INBOUND => 0,
                keys::PHONE_MISSED => 1,
                keys::PHONE_OUTBOUND => 2,
                keys::PHONE_BOUNCED => 3,
                _ => continue,
            };
            by_month.entry(month).or_default()[slot] += n;
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
        Ok(Response::new(pb::PhoneReport {
            total: Some(figures(total)),
            months: by_month
                .iter()
                .map(|(m, f)| pb::PhoneMonth {
                    month: m.to_string(),
                    figures: Some(figures(*f)),
                })
                .collect(),
            tenant,
        }))
    }
}
