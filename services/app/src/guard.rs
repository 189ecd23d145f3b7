//! Need-to-know: one guard decides how much of a commune's contacts, requests, letters and
//! documents a caller reads. The communes file names the services whose matters are
//! confidential (CCAS, police municipale); an agent of such a service reads its matters
//! whole, an agent of another service sees that one exists (its date, channel and service),
//! and the accueil and the mail room (agents of no service) also see, when the commune says
//! so ([`Orientation::Suivi`]), a request's reference, status and date due to tell the
//! person where it stands. Every query that returns one of these objects passes it through
//! here, so what it returns holds only what the caller may read.
//!
//! Which service a contact belongs to: the services of the requests it belongs to (opened
//! from it, linked to it, quoting it), else the service its category belongs to in the
//! commune's directory.

use crate::auth::Scope;
use crate::{App, Result};
use contacthub_core::pb::{CourrierState, Request, TimelineEntry};
use contacthub_core::tenant::{Orientation, Tenant};

/// How much of one matter a caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sight {
    /// That it exists: date, channel, service.
    Existence,
    /// Also where a request stands: reference, status, date due (the accueil's orientation).
    Suivi,
    /// Everything.
    Full,
}

/// The sight `agent` has on a matter of `service` assigned to `assignee` in `commune`.
pub fn sight(scope: &Scope, commune: &Tenant, service: &str, assignee: &str) -> Sight {
    let Some(a) = scope.agent() else {
        // Open mode (no agents file): one machine's trials, everything.
        return Sight::Full;
    };
    if !commune.is_confidential(service) || a.in_service(service) || a.id == assignee {
        return Sight::Full;
    }
    if a.is_generalist() && commune.orientation == Orientation::Suivi {
        Sight::Suivi
    } else {
        Sight::Existence
    }
}

/// What an agent reads of a withheld matter instead of its summary.
pub fn withheld_summary(commune: &Tenant, service: &str) -> String {
    format!("Confidentiel — {}", commune.service_name(service))
}

/// A timeline entry reduced to what `sight` allows (whole when [`Sight::Full`]), its summary
/// worded for the reader.
pub fn entry_as_seen(
    mut e: TimelineEntry,
    commune: &Tenant,
    service: &str,
    sight: Sight,
) -> TimelineEntry {
    // Which key sealed it is the keyring's business, not an agent's.
    e.key_id.clear();
    if sight == Sight::Full {
        e.summary = contacthub_core::render::summary(&e, commune);
        return e;
    }
    TimelineEntry {
        event_id: e.event_id,
        citizen_id: e.citizen_id,
        channel: e.channel,
        occurred_at: e.occurred_at,
        direction: e.direction,
        kind: "confidential".into(),
        summary: withheld_summary(commune, service),
        request_id: if sight == Sight::Suivi {
            e.request_id
        } else {
            String::new()
        },
        withheld_service: service.to_string(),
        ..Default::default()
    }
}

/// A request reduced to what `sight` allows.
pub fn request_as_seen(mut r: Request, commune: &Tenant, sight: Sight) -> Request {
    r.service_name = commune.service_name(&r.service).to_string();
    if sight == Sight::Full {
        return r;
    }
    let suivi = sight == Sight::Suivi;
    Request {
        subject: withheld_summary(commune, &r.service),
        withheld_service: r.service.clone(),
        reference: r.reference,
        tenant: r.tenant,
        service: r.service,
        status: if suivi { r.status } else { 0 },
        requesters: r.requesters,
        opened_at: r.opened_at,
        first_contact_at: r.first_contact_at,
        due_at: if suivi { r.due_at } else { None },
        answered_at: if suivi { r.answered_at } else { None },
        closed_at: if suivi { r.closed_at } else { None },
        channel: r.channel,
        chrono: if suivi { r.chrono } else { String::new() },
        service_name: r.service_name,
        ..Default::default()
    }
}

/// A letter reduced to what `sight` allows.
pub fn letter_as_seen(
    mut s: CourrierState,
    commune: &Tenant,
    service: &str,
    sight: Sight,
) -> CourrierState {
    let code = if s.service.is_empty() {
        &s.addressed_to_service
    } else {
        &s.service
    };
    s.service_name = commune.service_name(code).to_string();
    if sight == Sight::Full {
        return s;
    }
    let suivi = sight == Sight::Suivi;
    CourrierState {
        subject: withheld_summary(commune, service),
        withheld_service: service.to_string(),
        chrono: s.chrono,
        tenant: s.tenant,
        event_id: s.event_id,
        citizen_id: s.citizen_id,
        kind: s.kind,
        service: s.service,
        addressed_to_service: s.addressed_to_service,
        service_name: s.service_name,
        status: if suivi { s.status } else { 0 },
        received_at: s.received_at,
        registered_at: s.registered_at,
        answered_at: if suivi { s.answered_at } else { None },
        // The mail room finds a letter by its sender when the person asks about it.
        sender_display: if suivi {
            s.sender_display
        } else {
            String::new()
        },
        request_reference: if suivi {
            s.request_reference
        } else {
            String::new()
        },
        ..Default::default()
    }
}

impl App {
    /// The services (with their assignees) a contact belongs to: those of its requests, or
    /// else the service of its category.
    pub(crate) fn contact_owners(
        &self,
        commune: &Tenant,
        entry: &TimelineEntry,
    ) -> Result<Vec<(String, String)>> {
        let tenant = &commune.code;
        let mut references = self.store.contact_requests(tenant, &entry.event_id)?;
        let linked = std::iter::once(entry.request_id.as_str()).chain(
            entry
                .links
                .iter()
                .filter(|l| l.rel == "request")
                .map(|l| l.target.as_str()),
        );
        for r in linked {
            if !r.is_empty() && !references.iter().any(|x| x == r) {
                references.push(r.to_string());
            }
        }
        // Mail-room steps name their letter only.
        for l in entry.links.iter().filter(|l| l.rel == "chrono") {
            if let Some(letter) = self.store.courrier(tenant, &l.target)? {
                if !letter.request_reference.is_empty()
                    && !references.contains(&letter.request_reference)
                {
                    references.push(letter.request_reference);
                }
            }
        }
        let mut owners = Vec::new();
        // An appointment is its kind's service's.
        let kind = entry
            .facts
            .as_ref()
            .map_or("", |f| f.appointment_kind.as_str());
        if let Some(k) = commune.appointment(kind) {
            owners.push((k.service.clone(), String::new()));
        }
        for reference in references {
            if let Some(r) = self.store.request(tenant, &reference)? {
                let service = if r.service.is_empty() {
                    commune
                        .service_of_category(r.category)
                        .map(|s| s.code.clone())
                        .unwrap_or_default()
                } else {
                    r.service
                };
                owners.push((service, r.assignee_agent_id));
            }
        }
        if owners.is_empty() {
            if let Some(s) = commune.service_of_category(entry.category) {
                owners.push((s.code.clone(), String::new()));
            }
        }
        Ok(owners)
    }

    /// The least sight `agent` has on a contact over the services it belongs to, and the
    /// service that limits it.
    pub(crate) fn contact_sight(
        &self,
        scope: &Scope,
        commune: &Tenant,
        entry: &TimelineEntry,
    ) -> Result<(Sight, String)> {
        // Nothing to look up when no matter of the commune is withheld from this caller.
        let withheld_somewhere = scope.agent().is_some_and(|a| {
            commune
                .services
                .iter()
                .any(|s| s.confidential && !a.in_service(&s.code))
        });
        if !withheld_somewhere {
            return Ok((Sight::Full, String::new()));
        }
        let mut least = (Sight::Full, String::new());
        for (service, assignee) in self.contact_owners(commune, entry)? {
            let s = sight(scope, commune, &service, &assignee);
            if s < least.0 {
                least = (s, service);
            }
        }
        Ok(least)
    }

    /// A timeline entry as `agent` may read it.
    pub(crate) fn seen_entry(
        &self,
        scope: &Scope,
        commune: &Tenant,
        entry: TimelineEntry,
    ) -> Result<TimelineEntry> {
        let (s, service) = self.contact_sight(scope, commune, &entry)?;
        Ok(entry_as_seen(entry, commune, &service, s))
    }

    /// Entries as `agent` may read them.
    pub(crate) fn seen_entries(
        &self,
        scope: &Scope,
        commune: &Tenant,
        entries: Vec<TimelineEntry>,
    ) -> Result<Vec<TimelineEntry>> {
        entries
            .into_iter()
            .map(|e| self.seen_entry(scope, commune, e))
            .collect()
    }

    /// The sight `agent` has on a request.
    pub(crate) fn request_sight(&self, scope: &Scope, commune: &Tenant, r: &Request) -> Sight {
        let service = if r.service.is_empty() {
            commune
                .service_of_category(r.category)
                .map_or("", |s| s.code.as_str())
        } else {
            r.service.as_str()
        };
        sight(scope, commune, service, &r.assignee_agent_id)
    }

    /// The service a letter belongs to and the sight `agent` has on it.
    pub(crate) fn letter_sight(
        &self,
        scope: &Scope,
        commune: &Tenant,
        s: &CourrierState,
    ) -> Result<(Sight, String)> {
        if let Some(r) = self.store.request(&commune.code, &s.request_reference)? {
            let service = if r.service.is_empty() {
                commune
                    .service_of_category(r.category)
                    .map(|x| x.code.clone())
                    .unwrap_or_default()
            } else {
                r.service.clone()
            };
            return Ok((
                sight(scope, commune, &service, &r.assignee_agent_id),
                service,
            ));
        }
        let service = [&s.service, &s.addressed_to_service]
            .into_iter()
            .find(|x| !x.is_empty())
            .cloned()
            .or_else(|| {
                commune
                    .service_of_category(s.category)
                    .map(|x| x.code.clone())
            })
            .unwrap_or_default();
        Ok((sight(scope, commune, &service, ""), service))
    }
}
