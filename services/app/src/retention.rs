//! Retention: what a commune's rules say must go now — citizens' records with no contact for
//! years, raw input held outside the log (the quarantine, scans no letter matched) for days —
//! listed (a dry run) or erased, each with its rule as the reason.

use crate::auth::{Scope, System};
use crate::{App, Error, Result};
use contacthub_proto::ts;

/// What the retention rules erase, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub what: Erasable,
    /// Its last contact (or its creation, or its last change), or when it arrived, in µs.
    pub last_us: i64,
    /// The rule, in French: the reason of its erasure.
    pub rule: String,
}

/// A thing the retention rules erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasable {
    /// A citizen's record (erased with its keys, as by the data protection officer).
    Citizen(String),
    /// Raw input held outside the log (deleted), and which of the hub's holders holds it.
    Held { holder: usize, item: HeldItem },
}

/// Raw input the hub holds outside the log, waiting for someone: an adapter's quarantine,
/// the scans no letter matched. What the retention rules list and delete; each edge that
/// holds some implements it.
pub trait Held: Send + Sync {
    /// Everything held now.
    fn held(&self) -> std::io::Result<Vec<HeldItem>>;
    /// Deletes one item (nothing when it is gone already).
    fn delete(&self, id: &str) -> std::io::Result<()>;
}

/// One item of raw input held outside the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldItem {
    /// Its id where it is held (a quarantine id, a scan's file name).
    pub id: String,
    /// What it is, in French (« entrée de quarantaine », « scan non rattaché »).
    pub kind: String,
    /// Its commune, when known.
    pub tenant: Option<String>,
    /// When it arrived, in µs.
    pub received_us: i64,
}

/// A day, in µs.
const DAY_US: i64 = 86_400_000_000;

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
        let mut due = self.citizens_due(tenant)?;
        // What no commune claims is listed to who sees every commune (and the daily run).
        let unclaimed = scope.agent().is_none_or(|a| a.all_communes());
        due.extend(self.held_due(tenant, unclaimed));
        Ok(due)
    }

    /// Raw input held outside the log for longer than the commune's `quarantine_days`: the
    /// commune's own, and with `unclaimed` what no commune claims (under the shortest rule of
    /// all communes). A holder that cannot be read is skipped, and said in the log: the other
    /// holders' input and the records are still due.
    fn held_due(&self, tenant: &contacthub_core::tenant::Tenant, unclaimed: bool) -> Vec<Due> {
        let shortest = self
            .tenants
            .iter()
            .map(|t| t.retention.quarantine_days)
            .filter(|d| *d > 0)
            .min();
        let now = (self.clock)();
        let mut due = Vec::new();
        for (h, holder) in self.held.iter().enumerate() {
            let items = match holder.held() {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(holder = h, error = %e, "retention: raw input held cannot be read; skipped");
                    continue;
                }
            };
            for item in items {
                let days = match item.tenant.as_deref() {
                    Some(t) if t == tenant.code => tenant.retention.quarantine_days,
                    Some(_) => continue,
                    None if !unclaimed => continue,
                    None => match shortest {
                        Some(d) => d,
                        None => continue,
                    },
                };
                if days == 0 || item.received_us >= now - i64::from(days) * DAY_US {
                    continue;
                }
                due.push(Due {
                    last_us: item.received_us,
                    rule: format!(
                        "règle de conservation : {}, {days} jours au plus",
                        item.kind
                    ),
                    what: Erasable::Held { holder: h, item },
                });
            }
        }
        due.sort_by_key(|d| d.last_us);
        due
    }

    /// Records of the commune with no contact for longer than its `inactive_citizen_years`;
    /// provisional records (senders nobody attached to a known person) after its
    /// `unknown_sender_months` already.
    fn citizens_due(&self, tenant: &contacthub_core::tenant::Tenant) -> Result<Vec<Due>> {
        let now = (self.clock)();
        let years = tenant.retention.inactive_citizen_years;
        let months = tenant.retention.unknown_sender_months;
        let known = (years > 0).then(|| {
            (
                now - i64::from(years) * YEAR_US,
                format!("règle de conservation : aucun contact depuis {years} ans"),
            )
        });
        let unknown = (months > 0).then(|| {
            (
                now - i64::from(months) * YEAR_US / 12,
                format!(
                    "règle de conservation : expéditeur inconnu, sans contact depuis {months} mois"
                ),
            )
        });
        let mut due = Vec::new();
        for c in self.store.citizens(&tenant.code)? {
            if c.erased.is_some() || !c.merged_into.is_empty() {
                continue;
            }
            // The shorter of the rules that apply.
            let rule = match (&unknown, &known) {
                (Some(u), Some(k)) if c.provisional => {
                    if u.0 > k.0 {
                        u
                    } else {
                        k
                    }
                }
                (Some(u), None) if c.provisional => u,
                (_, Some(k)) => k,
                _ => continue,
            };
            let (before, rule) = (rule.0, &rule.1);
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
                    what: Erasable::Citizen(c.citizen_id),
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
            .filter_map(|d| match &d.what {
                Erasable::Citizen(id) => Some((id.clone(), d.rule.clone())),
                Erasable::Held { .. } => None,
            })
            .collect();
        if !records.is_empty() {
            self.erase_records(scope, &records).await?;
        }
        for d in &due {
            if let Erasable::Held { holder, item } = &d.what {
                if let Some(holder) = self.held.get(*holder) {
                    holder
                        .delete(&item.id)
                        .map_err(|e| Error::Unavailable(format!("deleting held input: {e}")))?;
                }
            }
        }
        let held = due.len() - records.len();
        if held > 0 {
            tracing::info!(
                items = held,
                "retention: raw input held outside the log deleted"
            );
        }
        Ok(due)
    }
}

/// What one collection of the content store did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Documents stored before the grace period that no event names: moved to the trash.
    pub trashed: usize,
    /// Documents in the trash since before the grace period that no event names: deleted.
    pub removed: usize,
    /// Documents in the trash that an event names after all: put back.
    pub restored: usize,
    /// Documents stored before the grace period that an event names: kept.
    pub kept: usize,
    /// Uploads left unfinished since before the grace period (a process killed): deleted.
    pub uploads: usize,
}

impl App {
    /// Which of `candidates` a record or a dead letter names, once everything appended
    /// before the call is in the read model and every key made before it in the keyring (a
    /// key still unknown after that is gone, as the projector settles it).
    pub(crate) async fn documents_in_use(
        &self,
        candidates: &std::collections::BTreeSet<String>,
    ) -> Result<std::collections::BTreeSet<String>> {
        self.wait_caught_up().await?;
        self.keys.catch_up().await.map_err(|e| {
            Error::Unavailable(format!("the keyring cannot be read right now: {e}"))
        })?;
        Ok(self
            .store
            .documents_in_use(candidates, &contacthub_log::keyring::Settled(&*self.keys))?)
    }

    /// Collects the documents no event names (an upload whose event was never written: a
    /// crash, a refused registration), in two steps a grace period apart, once the read
    /// model shows the whole log: documents last stored more than `grace` ago that nothing
    /// names go to the trash (still readable there); documents in the trash for more than
    /// `grace` are deleted, or put back if something names them by then. A document is
    /// stored before its event is appended and storing it again renews it, so one an event
    /// is being written for is never deleted, even when an upload renews it while it is
    /// being moved; one an event names — dead-lettered ones included — is never taken
    /// whatever its age. Only the retention part runs it.
    pub async fn collect_documents(
        &self,
        actor: System,
        grace: std::time::Duration,
    ) -> Result<Collected> {
        actor.allowed(&[System::Retention], "collect documents")?;
        let unavailable =
            |e: crate::content::UploadError| Error::Unavailable(format!("the content store: {e}"));
        let cutoff = std::time::SystemTime::now() - grace;
        let mut done = Collected {
            uploads: self.content.sweep_uploads(cutoff),
            ..Default::default()
        };
        let candidates = self
            .content
            .stored_before(cutoff)
            .await
            .map_err(unavailable)?;
        let trashed = self
            .content
            .trashed_before(cutoff)
            .await
            .map_err(unavailable)?;
        if candidates.is_empty() && trashed.is_empty() {
            return Ok(done);
        }
        let all: std::collections::BTreeSet<String> = candidates.union(&trashed).cloned().collect();
        let in_use = self.documents_in_use(&all).await?;
        done.kept = candidates.intersection(&in_use).count();
        for sha in candidates.difference(&in_use) {
            if self
                .content
                .discard(sha, Some(cutoff))
                .await
                .map_err(unavailable)?
            {
                done.trashed += 1;
            }
        }
        for sha in &trashed {
            if in_use.contains(sha) {
                if self.content.restore(sha).await.map_err(unavailable)? {
                    done.restored += 1;
                }
            } else if self.content.purge(sha).await.map_err(unavailable)? {
                done.removed += 1;
            }
        }
        Ok(done)
    }
}
