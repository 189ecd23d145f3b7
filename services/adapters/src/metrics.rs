//! Counters of what the adapters did, by adapter, commune and outcome, served in the
//! Prometheus text format on the adapters' HTTP port (`GET /metrics`).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Appended to the log.
    Accepted,
    /// Already known (same source id): not appended again.
    Duplicate,
    /// Not a contact (counted only).
    Ignored,
    /// Kept in the quarantine.
    Quarantined,
    /// A source id already received with other content (also quarantined).
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Quarantined => "quarantined",
            Outcome::Conflict => "conflict",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(&'static str, String, Outcome), u64>>,
}

impl Metrics {
    pub fn add(&self, adapter: &'static str, tenant: Option<&str>, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry((adapter, tenant.unwrap_or("").to_string(), outcome))
            .or_default() += n;
    }

    pub fn get(&self, adapter: &str, tenant: Option<&str>, outcome: Outcome) -> u64 {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.iter()
            .filter(|((a, t, o), _)| {
                *a == adapter && *o == outcome && tenant.is_none_or(|x| x == t)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP contacthub_adapter_items_total Inputs handled by the channel adapters, by outcome.\n\
             # TYPE contacthub_adapter_items_total counter\n",
        );
        for ((adapter, tenant, outcome), n) in c.iter() {
            out += &format!(
                "contacthub_adapter_items_total{{adapter=\"{adapter}\",tenant=\"{tenant}\",outcome=\"{}\"}} {n}\n",
                outcome.as_str()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_render() {
        let m = Metrics::default();
        m.add("sms", Some("69091"), Outcome::Accepted, 2);
        m.add("sms", Some("69091"), Outcome::Accepted, 1);
        m.add("sms", None, Outcome::Quarantined, 1);
        assert_eq!(m.get("sms", Some("69091"), Outcome::Accepted), 3);
        assert_eq!(m.get("sms", None, Outcome::Quarantined), 1);
        let text = m.render();
        assert!(text.contains("contacthub_adapter_items_total{adapter=\"sms\",tenant=\"69091\",outcome=\"accepted\"} 3\n"), "{text}");
        assert!(
            text.contains("tenant=\"\",outcome=\"quarantined\"} 1\n"),
            "{text}"
        );
    }
}
