//! The organisation of the accueil: when each commune opens its counter and answers the
//! phone, and the days it is closed (what agents tell people, what marks a call or a
//! walk-in « hors des horaires d'ouverture »); the waiting line at the counters — tickets
//! taken at the pré-accueil, called, started and closed —, and the accueil's report.

use crate::audit::Reading;
use crate::auth::Scope;
use crate::commands::{CloseTicket, IssueTicket, TicketOutcome};
use crate::{App, Error, Result};
use contacthub_core::accueil::{self, Site};
use contacthub_core::limits::quote;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenant;

/// A commune's opening hours as agents read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    /// A day per line: « lundi : 08:30–12:00, 13:30–17:30 », « dimanche : fermé ».
    pub counter: Vec<String>,
    pub phone: Vec<String>,
    /// The days closed in the coming weeks: (« 25/12/2026 », « jour férié (Noël) »).
    pub closed: Vec<(String, String)>,
    /// Sites whose counter keeps hours of its own: (its name, a day per line).
    pub sites: Vec<(String, Vec<String>)>,
}

/// How far ahead closed days are listed.
const AHEAD_DAYS: u32 = 62;

impl App {
    /// The opening hours of the scope's commune and its closed days from today on (`None`
    /// when the communes file says none). For every agent and élu of the commune.
    pub fn opening_hours(&self, scope: &Scope) -> Result<Option<OpeningHours>> {
        let tenant = self.enter_figures(scope, scope.commune())?;
        let Some(schedule) = &tenant.schedule else {
            return Ok(None);
        };
        let today = contacthub_core::courrier::paris((self.clock)()).date();
        Ok(Some(OpeningHours {
            counter: schedule.describe(contacthub_core::hours::Opening::Counter),
            phone: schedule.describe(contacthub_core::hours::Opening::Phone),
            closed: schedule
                .closed_days(today, AHEAD_DAYS)
                .into_iter()
                .map(|(d, why)| (d.format("%d/%m/%Y").to_string(), why))
                .collect(),
            sites: tenant
                .sites
                .iter()
                .filter_map(|s| s.hours.as_ref().map(|w| (s.name.clone(), w.describe())))
                .collect(),
        }))
    }
}

/// How many times `call_next` tries again when another hub called the same ticket first.
const CALL_ATTEMPTS: usize = 5;
/// The longest a live line goes without being computed again.
pub const LINE_REFRESH: std::time::Duration = std::time::Duration::from_secs(20);
/// A counter that called someone this recently is open, for the estimated wait.
const ACTIVE_COUNTER_US: i64 = 30 * 60 * 1_000_000;

/// The line at a site now.
#[derive(Debug, Clone)]
pub struct Line {
    pub site: String,
    pub site_name: String,
    /// Waiting, in arrival order.
    pub waiting: Vec<pb::TicketView>,
    /// Called or at a counter now, latest call first.
    pub at_counters: Vec<pb::TicketView>,
    /// The wait of someone arriving now, in minutes.
    pub estimated_wait_minutes: u32,
    /// When (the hub's clock).
    pub at_us: i64,
}

impl App {
    /// A site of the scope's commune, or the refusal naming the sites it has.
    fn site<'a>(&self, tenant: &'a Tenant, code: &str) -> Result<&'a Site> {
        tenant.site(code).ok_or_else(|| {
            let known: Vec<&str> = tenant.sites.iter().map(|s| s.code.as_str()).collect();
            Error::NotFound(if known.is_empty() {
                format!(
                    "la commune {} n'a pas de site d'accueil ([[commune.site]] du fichier des communes)",
                    tenant.name
                )
            } else {
                format!(
                    "aucun site d'accueil {:?} à {} (sites : {})",
                    quote(code),
                    tenant.name,
                    known.join(", ")
                )
            })
        })
    }

    /// The ticket `id` of the scope's commune.
    fn ticket(&self, tenant: &Tenant, id: &str) -> Result<pb::Ticket> {
        let id = id.trim();
        if accueil::parse_ticket_id(id).is_none() {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un numéro de ticket (site-AAAAMMJJ-A042)",
                quote(id)
            )));
        }
        self.store
            .ticket(&tenant.code, id)?
            .ok_or_else(|| Error::NotFound(format!("aucun ticket {:?}", quote(id))))
    }

    /// The ticket `id`, for a step at the counter: today's only (a ticket forgotten open
    /// yesterday would add a day of handling to the figures).
    fn todays_ticket(&self, tenant: &Tenant, id: &str) -> Result<pb::Ticket> {
        let t = self.ticket(tenant, id)?;
        let today = accueil::day_of((self.clock)());
        let day = accueil::day_of(t.arrived_us);
        if day != today {
            return Err(Error::Invalid(format!(
                "le ticket {} est du {} : seuls les tickets du jour se traitent au guichet",
                t.number,
                day.format("%d/%m/%Y")
            )));
        }
        Ok(t)
    }

    /// Today's tickets of `site`, by arrival.
    fn todays(&self, tenant: &Tenant, site: &str) -> Result<Vec<pb::Ticket>> {
        let today = accueil::day_of((self.clock)());
        Ok(self.store.tickets(&tenant.code, today, today, Some(site))?)
    }

    /// A ticket as the caller reads it. A device of the hall reads its number, motive and
    /// where it stands, nothing of who issued, called or closed it, nor the person. An agent
    /// reads the person only when the motive is not another service's confidential matter
    /// (need-to-know), and that read is in the read trail.
    fn ticket_view(
        &self,
        scope: &Scope,
        tenant: &Tenant,
        mut t: pb::Ticket,
        day: &[pb::Ticket],
    ) -> Result<pb::TicketView> {
        let now = (self.clock)();
        if scope.is_borne() {
            t = pb::Ticket {
                ticket_id: t.ticket_id,
                site: t.site,
                number: t.number,
                seq: t.seq,
                motive: t.motive,
                arrived_us: t.arrived_us,
                called_us: t.called_us,
                counter: t.counter,
                calls: t.calls,
                started_us: t.started_us,
                closed_us: t.closed_us,
                outcome: t.outcome,
                recalled_us: t.recalled_us,
                kiosk: t.kiosk,
                ..Default::default()
            };
        } else if !t.citizen_id.is_empty() {
            let confidential = tenant
                .service_of_category(t.motive)
                .filter(|s| s.confidential)
                .is_some_and(|s| !scope.agent().is_some_and(|a| a.in_service(&s.code)));
            if confidential {
                t.citizen_id.clear();
                t.motive_label.clear();
            } else {
                self.read_by(scope, &t.citizen_id, Reading::List, &t.ticket_id)?;
            }
        }
        let waiting = accueil::state(&t) == accueil::State::Waiting;
        let ahead = if waiting {
            day.iter()
                .filter(|o| o.seq < t.seq && accueil::state(o) == accueil::State::Waiting)
                .count()
        } else {
            0
        };
        let waited_until = match (t.called_us, waiting) {
            (0, true) => now,
            (c, _) => c,
        };
        Ok(pb::TicketView {
            state_fr: accueil::state_fr(&t),
            motive_fr: accueil::motive_fr(t.motive, &t.motive_label),
            site_name: tenant
                .site(&t.site)
                .map_or(t.site.clone(), |s| s.name.clone()),
            waited_minutes: accueil::minutes(t.arrived_us, waited_until),
            handled_minutes: accueil::minutes(
                if t.started_us > 0 {
                    t.started_us
                } else {
                    t.called_us
                },
                if t.closed_us > 0 { t.closed_us } else { now },
            ),
            ahead: ahead as u32,
            estimated_wait_minutes: if waiting {
                estimate(day, ahead, now)
            } else {
                0
            },
            ticket: Some(t),
        })
    }

    /// The ticket `id` as it stands (for an agent, or the kiosk that printed it).
    pub fn ticket_for(&self, scope: &Scope, id: &str) -> Result<pb::TicketView> {
        let tenant = self.enter_hall(scope, scope.commune())?;
        // A device of the hall reads today's tickets only.
        let t = if scope.is_borne() {
            self.todays_ticket(tenant, id)?
        } else {
            self.ticket(tenant, id)?
        };
        let day = self.todays(tenant, &t.site)?;
        self.ticket_view(scope, tenant, t, &day)
    }

    /// The sites of the scope's commune, as the communes file says.
    pub fn sites(&self, scope: &Scope) -> Result<Vec<Site>> {
        let tenant = self.enter_hall(scope, scope.commune())?;
        Ok(tenant.sites.clone())
    }

    /// A person arrives: their ticket, numbered, once on the log. An agent may name the
    /// person; the kiosk (a `borne`) names no one.
    pub async fn issue_ticket(&self, scope: &Scope, c: &IssueTicket) -> Result<pb::TicketView> {
        let tenant = self.enter_hall(scope, scope.commune())?;
        let site = self.site(tenant, c.site.trim())?;
        if c.motive == pb::Category::Unspecified {
            return Err(Error::Invalid(
                "le motif de la visite manque (une catégorie, ou « autre »)".into(),
            ));
        }
        let label = c.motive_label.trim();
        if label.chars().count() > accueil::MOTIVE_LABEL_CHARS {
            return Err(Error::Invalid(format!(
                "le motif « autre » tient en {} caractères au plus",
                accueil::MOTIVE_LABEL_CHARS
            )));
        }
        if !label.is_empty() && c.motive != pb::Category::Other {
            return Err(Error::Invalid(
                "un mot de motif va avec le motif « autre » seulement".into(),
            ));
        }
        let citizen = c.citizen_id.trim();
        if !citizen.is_empty() {
            // Naming a person is an agent's act, on a record of this commune.
            self.enter(scope, &tenant.code)?;
            self.writable_citizen(&tenant.code, citizen)?;
        }
        let mut e = self.internal_event(
            "accueil",
            &tenant.code,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            Payload::TicketIssued(pb::TicketIssued {
                site: site.code.clone(),
                motive: c.motive as i32,
                kiosk: scope.is_borne(),
                letter: site.letter(c.motive as i32).to_string(),
            }),
        );
        if !citizen.is_empty() || !label.is_empty() {
            e.personal = Some(pb::Personal {
                party: (!citizen.is_empty()).then(|| pb::Party {
                    citizen_id: citizen.to_string(),
                    ..Default::default()
                }),
                subject: label.to_string(),
                ..Default::default()
            });
        }
        self.write(&e).await?;
        // The day it was issued (not the clock after the write: midnight may have passed).
        let issued = accueil::day_of(
            e.occurred_at
                .as_ref()
                .and_then(contacthub_proto::ts::to_micros)
                .unwrap_or_default(),
        );
        let day = self
            .store
            .tickets(&tenant.code, issued, issued, Some(&site.code))?;
        let t = day
            .iter()
            .find(|t| t.issued_event_id == e.event_id)
            .cloned()
            .ok_or_else(|| {
                Error::Internal(format!("ticket {} projected without a record", e.event_id))
            })?;
        tracing::info!(tenant = %tenant.code, ticket = %t.ticket_id, "ticket issued");
        self.ticket_view(scope, tenant, t, &day)
    }

    /// The next ticket for `counter` at `site`: the oldest waiting for a motive it takes.
    /// `None` when no one waits for it.
    pub async fn call_next(
        &self,
        scope: &Scope,
        site: &str,
        counter: u32,
    ) -> Result<Option<pb::TicketView>> {
        let tenant = self.enter(scope, scope.commune())?;
        let site = self.site(tenant, site.trim())?;
        if !site.has_counter(counter) {
            return Err(Error::Invalid(format!(
                "le site {} a les guichets 1 à {}, pas {counter}",
                site.name, site.counters
            )));
        }
        let _one_at_a_time = self.line.lock().await;
        if let Some(open) = self
            .todays(tenant, &site.code)?
            .iter()
            .find(|t| t.counter == counter && t.called_us > 0 && t.closed_us == 0)
        {
            return Err(Error::Conflict(format!(
                "le guichet {counter} a le ticket {} en cours : clôturez-le avant d'appeler le suivant",
                open.number
            )));
        }
        for _ in 0..CALL_ATTEMPTS {
            let day = self.todays(tenant, &site.code)?;
            let Some(next) = day
                .iter()
                .filter(|t| accueil::state(t) == accueil::State::Waiting)
                .find(|t| site.takes(counter, t.motive))
            else {
                return Ok(None);
            };
            let id = next.ticket_id.clone();
            self.ticket_step(
                scope,
                tenant,
                Payload::TicketCalled(pb::TicketCalled {
                    ticket_id: id.clone(),
                    counter,
                }),
            )
            .await?;
            let t = self.ticket(tenant, &id)?;
            if t.counter == counter && t.called_by == scope.agent_id() {
                let day = self.todays(tenant, &site.code)?;
                return Ok(Some(self.ticket_view(scope, tenant, t, &day)?));
            }
            // Another hub's counter called it first: the next one.
        }
        Err(Error::Unavailable(
            "d'autres guichets appellent en même temps : réessayez".into(),
        ))
    }

    /// Calls a called ticket again (the person has not come to the counter yet).
    pub async fn recall_ticket(&self, scope: &Scope, id: &str) -> Result<pb::TicketView> {
        let tenant = self.enter(scope, scope.commune())?;
        let t = self.todays_ticket(tenant, id)?;
        if accueil::state(&t) != accueil::State::Called {
            return Err(Error::Conflict(format!(
                "le ticket {} est {} : seul un ticket appelé peut être rappelé",
                t.number,
                accueil::state_fr(&t)
            )));
        }
        let payload = Payload::TicketCalled(pb::TicketCalled {
            ticket_id: t.ticket_id.clone(),
            counter: t.counter,
        });
        self.ticket_step(scope, tenant, payload).await?;
        self.ticket_after(scope, tenant, &t.ticket_id)
    }

    /// The person is at the counter: handling starts.
    pub async fn start_ticket(&self, scope: &Scope, id: &str) -> Result<pb::TicketView> {
        let tenant = self.enter(scope, scope.commune())?;
        let t = self.todays_ticket(tenant, id)?;
        if accueil::state(&t) != accueil::State::Called {
            return Err(Error::Conflict(format!(
                "le ticket {} est {} : on commence un ticket appelé",
                t.number,
                accueil::state_fr(&t)
            )));
        }
        let payload = Payload::TicketStarted(pb::TicketStarted {
            ticket_id: t.ticket_id.clone(),
        });
        self.ticket_step(scope, tenant, payload).await?;
        self.ticket_after(scope, tenant, &t.ticket_id)
    }

    /// Closes a ticket: settled, sent to a service, turned into a request, or absent. A
    /// ticket naming a person puts the visit in their timeline first (once, whatever the
    /// retries).
    pub async fn close_ticket(&self, scope: &Scope, c: &CloseTicket) -> Result<pb::TicketView> {
        use pb::ticket_closed::Outcome;
        let tenant = self.enter(scope, scope.commune())?;
        let t = self.todays_ticket(tenant, &c.ticket_id)?;
        if t.closed_us > 0 {
            return Err(Error::Conflict(format!(
                "le ticket {} est déjà clos ({})",
                t.number,
                accueil::state_fr(&t)
            )));
        }
        if t.called_us == 0 {
            return Err(Error::Conflict(format!(
                "le ticket {} n'a pas encore été appelé",
                t.number
            )));
        }
        let (outcome, service, reference) = match c.outcome {
            TicketOutcome::Settled => (Outcome::Settled, "", ""),
            TicketOutcome::Absent => (Outcome::Absent, "", ""),
            TicketOutcome::Transferred => {
                let code = c.service.trim();
                if tenant.service(code).is_none() {
                    return Err(Error::Invalid(format!(
                        "orienté vers quel service ? {:?} n'est pas un service de {}",
                        quote(code),
                        tenant.name
                    )));
                }
                (Outcome::Transferred, code, "")
            }
            TicketOutcome::Request => {
                let reference = c.request_reference.trim();
                if reference.is_empty() {
                    return Err(Error::Invalid(
                        "transformé en quelle demande ? indiquez sa référence".into(),
                    ));
                }
                // A request this agent works on: not another service's, not a confidential
                // matter they may not read.
                self.request_for_work(scope, &tenant.code, reference)?;
                (Outcome::Request, "", reference)
            }
        };
        let now = (self.clock)();
        let visit_key = format!("ticket/{}", t.ticket_id);
        let recorded = self
            .store
            .applied(
                &tenant.code,
                &contacthub_core::event::event_id(&tenant.code, "desk", &visit_key),
            )?
            .is_some();
        if !t.citizen_id.is_empty() && outcome != Outcome::Absent && !recorded {
            let started = if t.started_us > 0 {
                t.started_us
            } else {
                t.called_us
            };
            let mut subject = format!(
                "{} — guichet {} : {}",
                accueil::motive_fr(t.motive, &t.motive_label),
                t.counter,
                accueil::outcome_fr(outcome as i32)
            );
            if !service.is_empty() {
                subject.push_str(&format!(" ({})", tenant.service_name(service)));
            }
            if !reference.is_empty() {
                subject.push_str(&format!(" ({reference})"));
            }
            let visit = crate::commands::RecordVisit {
                party: Some(pb::Party {
                    citizen_id: t.citizen_id.clone(),
                    ..Default::default()
                }),
                desk: t.site.clone(),
                category: pb::Category::try_from(t.motive).unwrap_or(pb::Category::Other),
                subject,
                notes: String::new(),
                occurred_at: Some(contacthub_proto::ts::from_micros(started)),
                duration_minutes: accueil::minutes(started, now)
                    .min(contacthub_core::limits::VISIT_MINUTES),
                // The visit joins the request it became.
                request_id: reference.to_string(),
                idempotency_key: visit_key,
                agent_id: String::new(),
                for_citizen_ids: Vec::new(),
            };
            self.record_visit(scope, &visit).await?;
        }
        let payload = Payload::TicketClosed(pb::TicketClosed {
            ticket_id: t.ticket_id.clone(),
            outcome: outcome as i32,
            service: service.to_string(),
            request_reference: reference.to_string(),
        });
        self.ticket_step(scope, tenant, payload).await?;
        self.ticket_after(scope, tenant, &t.ticket_id)
    }

    /// Writes a step of a ticket by the scope's agent.
    async fn ticket_step(&self, scope: &Scope, tenant: &Tenant, payload: Payload) -> Result<()> {
        let e = self.internal_event(
            "accueil",
            &tenant.code,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            payload,
        );
        self.write(&e).await?;
        Ok(())
    }

    /// A ticket as it is after a step.
    fn ticket_after(&self, scope: &Scope, tenant: &Tenant, id: &str) -> Result<pb::TicketView> {
        let t = self.ticket(tenant, id)?;
        let day = self.todays(tenant, &t.site)?;
        self.ticket_view(scope, tenant, t, &day)
    }

    /// The line at `site` now: who waits, who is called where, and the wait of someone
    /// arriving now. For agents and the hall's devices.
    pub fn waiting(&self, scope: &Scope, site: &str) -> Result<Line> {
        let tenant = self.enter_hall(scope, scope.commune())?;
        let site = self.site(tenant, site.trim())?;
        let day = self.todays(tenant, &site.code)?;
        let now = (self.clock)();
        let mut waiting = Vec::new();
        let mut at_counters: Vec<pb::TicketView> = Vec::new();
        for t in &day {
            match accueil::state(t) {
                accueil::State::Waiting => {
                    waiting.push(self.ticket_view(scope, tenant, t.clone(), &day)?)
                }
                accueil::State::Called | accueil::State::AtCounter => {
                    at_counters.push(self.ticket_view(scope, tenant, t.clone(), &day)?)
                }
                accueil::State::Closed => {}
            }
        }
        let last_call = |v: &pb::TicketView| {
            v.ticket
                .as_ref()
                .map_or(0, |t| t.called_us.max(t.recalled_us))
        };
        // The latest call first (of two at once, the later arrival).
        at_counters.sort_by_key(|v| {
            std::cmp::Reverse((last_call(v), v.ticket.as_ref().map_or(0, |t| t.seq)))
        });
        Ok(Line {
            site: site.code.clone(),
            site_name: site.name.clone(),
            estimated_wait_minutes: estimate(&day, waiting.len(), now),
            at_us: now,
            waiting,
            at_counters,
        })
    }

    /// The line at `site`, again each time the read model moves and at least every
    /// [`LINE_REFRESH`] (waits grow), until `stopping` or the receiver goes away: what the
    /// hall screen and the counters show live. Each value differs from the one before.
    pub fn watch_line(
        &self,
        scope: &Scope,
        site: &str,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Result<tokio::sync::mpsc::Receiver<Line>> {
        let first = self.waiting(scope, site)?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let app = self.clone();
        let scope = scope.clone();
        let site = site.to_string();
        let mut positions = self.projector.positions.clone();
        tokio::spawn(async move {
            let mut last = first.clone();
            if tx.send(first).await.is_err() {
                return;
            }
            loop {
                let moved = tokio::select! {
                    _ = tx.closed() => return,
                    _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => return,
                    changed = positions.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        true
                    }
                    _ = tokio::time::sleep(LINE_REFRESH) => false,
                };
                if moved {
                    // A burst of batches makes one computation, not one each.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let Ok(line) = app.waiting(&scope, &site) else {
                    return;
                };
                if line.waiting != last.waiting
                    || line.at_counters != last.at_counters
                    || line.estimated_wait_minutes != last.estimated_wait_minutes
                {
                    last = line.clone();
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// The accueil's figures of the scope's commune from `from` to `to` (`YYYY-MM-DD`, Paris
    /// time), of one site when `site` is not empty. Aggregates only: for agents and élus.
    pub fn accueil_report(
        &self,
        scope: &Scope,
        from: &str,
        to: &str,
        site: &str,
    ) -> Result<pb::AccueilReport> {
        let tenant = self.enter_figures(scope, scope.commune())?;
        let (from, to) = accueil::period(from.trim(), to.trim()).map_err(Error::Invalid)?;
        let site = site.trim();
        if !site.is_empty() {
            self.site(tenant, site)?;
        }
        let tickets =
            self.store
                .tickets(&tenant.code, from, to, (!site.is_empty()).then_some(site))?;
        let days = self.store.accueil_days(&tenant.code, from, to)?;
        Ok(accueil::report(tenant, from, to, site, &tickets, &days))
    }
}

/// The wait of someone with `ahead` people before them, from `day`'s tickets: its handling
/// times, the counters that called someone lately and those of them serving someone now.
fn estimate(day: &[pb::Ticket], ahead: usize, now: i64) -> u32 {
    let mut closed: Vec<&pb::Ticket> = day
        .iter()
        .filter(|t| t.closed_us > 0 && t.outcome != pb::ticket_closed::Outcome::Absent as i32)
        .collect();
    closed.sort_by_key(|t| t.closed_us);
    let handled: Vec<u32> = closed
        .iter()
        .map(|t| {
            let from = if t.started_us > 0 {
                t.started_us
            } else {
                t.called_us
            };
            accueil::minutes(from, t.closed_us)
        })
        .collect();
    let mut counters: Vec<u32> = day
        .iter()
        .filter(|t| t.called_us > 0 && now - t.called_us.max(t.recalled_us) < ACTIVE_COUNTER_US)
        .map(|t| t.counter)
        .collect();
    counters.sort_unstable();
    counters.dedup();
    let mut busy: Vec<u32> = day
        .iter()
        .filter(|t| t.called_us > 0 && t.closed_us == 0)
        .map(|t| t.counter)
        .collect();
    busy.sort_unstable();
    busy.dedup();
    let busy = busy.len();
    accueil::estimate_minutes(ahead, busy, &handled, counters.len())
}
