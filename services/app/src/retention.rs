//! Retention: the records a commune's rules say must go now, listed (a dry run) or erased,
//! each with its rule as the reason.

use crate::auth::{Scope, System};
use crate::{App, Error, Result};
use contacthub_proto::ts;

/// A record the retention rules erase, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub citizen_id: String,
    /// Its last contact (or its creation, or its last change), in µs.
    pub last_us: i64,
    /// The rule, in French: the reason of its erasure.
    pub rule: String,
}

/// A year, for retention: 365.25 days.
const YEAR_US: i64 = 31_557_600_000_000;

impl App {
    /// The records of the scope's commune that its retention rules erase now. For its data
    /// protection officer, an open hub, and the hub's own daily run.
    pub fn retention_due(&self, scope: &Scope) -> Result<Vec<Due>> {
        if !(scope.is_dpo() || scope.is_open_visitor() || scope.is_part(System::Retention)) {
            return Err(Error::Forbidden(
                "les règles de conservation sont appliquées par le délégué à la protection des données".into(),
            ));
        }
        let tenant = self.enter_figures(scope, scope.commune())?;
        let years = tenant.retention.inactive_citizen_years;
        if years == 0 {
            return Ok(Vec::new());
        }
        let before = (self.clock)() - i64::from(years) * YEAR_US;
        let rule = format!("règle de conservation : aucun contact depuis {years} ans");
        let mut due = Vec::new();
        for c in self.store.citizens(&tenant.code)? {
            if c.erased.is_some() || !c.merged_into.is_empty() {
                continue;
            }
            let last = [&c.last_seen, &c.first_seen, &c.updated_at]
                .into_iter()
                .filter_map(|t| t.as_ref().and_then(ts::to_micros))
                .max()
                .unwrap_or(0);
            // A record that others were merged into lives as long as the latest of them.
            let mut latest = last;
            for id in self
                .store
                .members(&tenant.code, &c.citizen_id)?
                .iter()
                .skip(1)
            {
                if let Some(m) = self.store.citizen(&tenant.code, id)? {
                    for t in [&m.last_seen, &m.first_seen, &m.updated_at] {
                        if let Some(us) = t.as_ref().and_then(ts::to_micros) {
                            latest = latest.max(us);
                        }
                    }
                }
            }
            if latest < before {
                due.push(Due {
                    citizen_id: c.citizen_id,
                    last_us: latest,
                    rule: rule.clone(),
                });
            }
        }
        Ok(due)
    }

    /// Erases what [`App::retention_due`] lists, each with its rule as the reason, in one
    /// step; returns what it erased.
    pub async fn apply_retention(&self, scope: &Scope) -> Result<Vec<Due>> {
        let due = self.retention_due(scope)?;
        if due.is_empty() {
            return Ok(due);
        }
        let records: Vec<(String, String)> = due
            .iter()
            .map(|d| (d.citizen_id.clone(), d.rule.clone()))
            .collect();
        self.erase_records(scope, &records).await?;
        Ok(due)
    }
}
