//! How each connector (a channel adapter: forms, Publik, Open311, SMS, e-mail, CDR) fares for
//! each commune since the hub started: its last success, its last error and why, what it took
//! and refused — for `contacthub status`, the metrics and ops. In memory: a restart starts
//! them again.

use crate::auth::{Ops, System};
use crate::{App, Result};
use contacthub_core::pb;
use contacthub_proto::ts;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Connectors' figures, by (connector, commune).
#[derive(Debug, Default)]
pub struct Connectors(Mutex<BTreeMap<(String, String), pb::ConnectorStatus>>);

impl App {
    /// What connector `name` made of an input for `tenant` at `at_us`: items taken, refused,
    /// and why it failed when nothing could be recorded or everything was refused (`reason`:
    /// words without personal data).
    pub fn connector_result(
        &self,
        actor: System,
        (name, tenant): (&str, &str),
        (accepted, refused): (u64, u64),
        reason: Option<&str>,
    ) -> Result<()> {
        actor.allowed(&[System::Adapters], "report on connectors")?;
        let at = Some(ts::from_micros(self.now()));
        let mut all = self.connectors.0.lock().unwrap_or_else(|p| p.into_inner());
        let c = all
            .entry((name.to_string(), tenant.to_string()))
            .or_insert_with(|| pb::ConnectorStatus {
                connector: name.to_string(),
                tenant: tenant.to_string(),
                ..Default::default()
            });
        c.accepted += accepted;
        c.refused += refused;
        match reason {
            Some(why) => {
                c.last_error = at;
                c.last_error_reason = contacthub_core::limits::clip(why, 200);
            }
            None => {
                c.last_success = at;
                metrics::gauge!(
                    "contacthub_connector_last_success_timestamp_seconds",
                    "connector" => name.to_string(),
                    "commune" => tenant.to_string()
                )
                .set(self.now() as f64 / 1e6);
            }
        }
        if reason.is_some() {
            metrics::counter!(
                "contacthub_connector_errors_total",
                "connector" => name.to_string(),
                "commune" => tenant.to_string()
            )
            .increment(1);
        }
        Ok(())
    }

    /// The connectors of the communes `ops` may read, with the seconds since each succeeded.
    pub fn connectors(&self, ops: &Ops) -> Vec<pb::ConnectorStatus> {
        let now = self.now();
        let all = self.connectors.0.lock().unwrap_or_else(|p| p.into_inner());
        all.values()
            .filter(|c| c.tenant.is_empty() || ops.may_read(&c.tenant))
            .cloned()
            .map(|mut c| {
                c.seconds_since_success = c
                    .last_success
                    .as_ref()
                    .and_then(ts::to_micros)
                    .map_or(0, |at| ((now - at).max(0) / 1_000_000) as u64);
                c
            })
            .collect()
    }
}
