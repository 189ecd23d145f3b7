//! Dashboards for élus and services: the figures of a commune over a period of months, from
//! the read model's counters (rebuilt by replay like everything else), with "overdue now" from
//! the open requests counted by due day and, for today, its index of open requests, and the
//! delay to each service's first free appointment now. Aggregates only; see
//! [`contacthub_core::dashboard`].

use crate::auth::Scope;
use crate::commands;
use crate::{App, Error, Result};
use contacthub_core::dashboard::{self, Inputs};
use contacthub_core::keys;
use contacthub_core::pb;

impl App {
    /// The dashboard of `r.tenant` from `r.from_month` to `r.to_month`.
    pub fn dashboard(&self, scope: &Scope, r: &commands::DashboardQuery) -> Result<pb::Dashboard> {
        let tenant = scope.commune();
        let commune = self.enter_figures(scope, tenant)?;
        let months = dashboard::months(&r.from_month, &r.to_month).map_err(Error::Invalid)?;
        let now = (self.clock)();
        let mut inputs = Inputs::default();
        for month in &months {
            for run in [
                keys::Counters::DashboardMonth { tenant, month },
                keys::Counters::PhoneMonth { tenant, month },
            ] {
                inputs.counters.extend(self.store.counters(run)?);
            }
        }
        inputs
            .counters
            .extend(self.store.counters(keys::Counters::Due { tenant })?);
        inputs.today = dashboard::day_of(now);
        inputs.overdue_today =
            self.store
                .open_requests_due(tenant, dashboard::start_of_day(now), now)?;
        // The delay to the first free slot, now, per service that gives appointments.
        for kind in &commune.appointments {
            let first = self
                .free_slots(tenant, &kind.code, now, kind.horizon_days)?
                .first()
                .map(|f| f.start_us);
            let soonest = inputs.first_free.entry(kind.service.clone()).or_default();
            *soonest = match (*soonest, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut d = dashboard::assemble(tenant, &months, &inputs, now);
        dashboard::label(&mut d, commune);
        Ok(d)
    }
}
