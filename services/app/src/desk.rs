//! The desk: a citizen's timeline by id or identifier, one contact in full, live watches of a
//! timeline, and walk-in visits.

use crate::audit::Reading;
use crate::auth::Scope;
use crate::commands::{self, Content, Who};
use crate::{timestamp, App, Error, Result, WatchGuard};
use contacthub_core::event::{contact, content_fingerprint};
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::limits::quote;
use contacthub_core::pb::{self, event::Payload};
use contacthub_projector::TimelineQuery;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

/// How often and when last a citizen reached the commune on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    /// `pb::Channel as i32`.
    pub channel: i32,
    pub contacts: u64,
    /// The last one, µs.
    pub last_us: i64,
}

impl App {
    /// Per channel, a citizen's contacts and the last one (merged records included), the
    /// channel of the latest first; internal steps left out. What a contact is, not what it
    /// says: an agent who may not read a matter still sees that it exists. Reads at most the
    /// last 10,000 entries.
    pub fn channel_summary(&self, scope: &Scope, citizen_id: &str) -> Result<Vec<ChannelCount>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.citizen_record(tenant, citizen_id)?;
        let canonical = self.store.canonical(tenant, citizen_id)?;
        let mut counts: Vec<ChannelCount> = Vec::new();
        let mut token = None;
        for _ in 0..10 {
            let page = self.store.timeline(
                tenant,
                &canonical,
                &TimelineQuery {
                    page_size: 1_000,
                    page_token: token.take(),
                    ..Default::default()
                },
            )?;
            for e in &page.entries {
                if e.channel == pb::Channel::BackOffice as i32 || e.channel == 0 {
                    continue;
                }
                let at = e
                    .occurred_at
                    .as_ref()
                    .and_then(contacthub_proto::ts::to_micros)
                    .unwrap_or(i64::MIN);
                match counts.iter_mut().find(|c| c.channel == e.channel) {
                    Some(c) => {
                        c.contacts += 1;
                        c.last_us = c.last_us.max(at);
                    }
                    None => counts.push(ChannelCount {
                        channel: e.channel,
                        contacts: 1,
                        last_us: at,
                    }),
                }
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        counts.sort_by_key(|c| std::cmp::Reverse(c.last_us));
        Ok(counts)
    }

    /// The canonical citizen designated by `who` in `tenant`, whoever asks: for the checks
    /// of commands.
    pub(crate) fn resolve(&self, tenant: &str, who: &Who) -> Result<String> {
        Ok(self.resolve_record(tenant, who)?.0)
    }

    /// [`App::resolve`], with the canonical citizen's record when it was read on the way (a
    /// citizen named by an id that was not merged): the desk's hottest read decodes it once.
    fn resolve_record(&self, tenant: &str, who: &Who) -> Result<(String, Option<pb::Citizen>)> {
        let (kind, value) = match who {
            Who::Record(id) => {
                let citizen = self.store.citizen(tenant, id)?.ok_or_else(|| {
                    Error::NotFound("aucune fiche de ce nom dans cette commune".into())
                })?;
                if citizen.merged_into.is_empty() {
                    return Ok((citizen.citizen_id.clone(), Some(citizen)));
                }
                return Ok((self.store.canonical(tenant, &citizen.merged_into)?, None));
            }
            Who::Phone(raw) => (
                "phone",
                normalize_phone(raw).ok_or_else(|| {
                    Error::Invalid(format!("{:?} n'est pas un numéro de téléphone", quote(raw)))
                })?,
            ),
            Who::Email(raw) => (
                "email",
                normalize_email(raw).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{:?} n'est pas une adresse électronique",
                        quote(raw)
                    ))
                })?,
            ),
        };
        let mut holders = Vec::new();
        for h in self.store.holders(tenant, kind, &value)? {
            let h = self.store.canonical(tenant, &h)?;
            if !holders.contains(&h) {
                holders.push(h);
            }
        }
        if holders.len() > 1 {
            return Err(Error::Invalid(format!(
                "{} par {} fiches ({}) : choisissez la fiche",
                if kind == "phone" {
                    "ce numéro est partagé"
                } else {
                    "cette adresse est partagée"
                },
                holders.len(),
                holders.join(", ")
            )));
        }
        let id = holders
            .pop()
            .ok_or_else(|| Error::NotFound("aucune fiche de ce nom dans cette commune".into()))?;
        Ok((self.store.canonical(tenant, &id)?, None))
    }

    /// A page of a citizen's cross-channel timeline, newest first, with the citizen.
    pub fn timeline(
        &self,
        scope: &Scope,
        r: &commands::TimelinePage,
    ) -> Result<pb::GetTimelineResponse> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let (citizen_id, citizen) = self.resolve_record(tenant, &r.citizen)?;
        let q = TimelineQuery {
            channels: r.channels.iter().map(|c| *c as i32).collect(),
            since_us: timestamp(&r.since, "since")?,
            until_us: timestamp(&r.until, "until")?,
            page_size: if r.page_size == 0 {
                50
            } else {
                r.page_size as usize
            },
            page_token: (!r.page_token.is_empty()).then(|| r.page_token.clone()),
        };
        let page = self.store.timeline(tenant, &citizen_id, &q)?;
        let citizen = match citizen {
            Some(c) => Some(c),
            None => self.store.citizen(tenant, &citizen_id)?,
        };
        self.read_by(scope, &citizen_id, Reading::Timeline, "")?;
        Ok(pb::GetTimelineResponse {
            citizen,
            entries: self.seen_entries(scope, commune, page.entries)?,
            next_page_token: page.next_page_token.unwrap_or_default(),
        })
    }

    /// One contact in full: its entry and what the citizen wrote (of a need-to-know matter
    /// of another service, only that it exists).
    pub fn contact(&self, scope: &Scope, event_id: &str) -> Result<pb::GetContactResponse> {
        let c = self.contact_seen(scope, event_id)?;
        self.read_contact(scope, &c, Reading::Contact)?;
        Ok(c)
    }

    /// Records that `scope` read contact `c` (`what`), unless it read only that it exists.
    fn read_contact(&self, scope: &Scope, c: &pb::GetContactResponse, what: Reading) -> Result<()> {
        let Some(entry) = &c.entry else {
            return Ok(());
        };
        if entry.withheld_service.is_empty() {
            self.read_by(scope, &entry.citizen_id, what, &entry.event_id)?;
        }
        Ok(())
    }

    /// [`App::contact`], not recorded in the read trail (the caller records what it reads).
    fn contact_seen(&self, scope: &Scope, event_id: &str) -> Result<pb::GetContactResponse> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let entry = self
            .store
            .applied_entry(tenant, event_id)?
            .ok_or_else(|| Error::NotFound("aucun contact de ce nom dans cette commune".into()))?;
        let entry = self.seen_entry(scope, commune, entry)?;
        let personal = if entry.withheld_service.is_empty() {
            self.store.contact_detail(tenant, event_id)?
        } else {
            None
        };
        Ok(pb::GetContactResponse {
            entry: Some(entry),
            personal,
        })
    }

    /// Document `n` (from 0) of a contact the caller reads, with its bytes.
    pub async fn contact_document(
        &self,
        scope: &Scope,
        event_id: &str,
        n: usize,
    ) -> Result<(pb::Attachment, Vec<u8>)> {
        let c = self.contact_seen(scope, event_id)?;
        let found = self
            .document(
                &c.entry.clone().unwrap_or_default().attachments,
                n,
                "ce contact n'a pas cette pièce",
            )
            .await?;
        self.read_contact(scope, &c, Reading::Document)?;
        Ok(found)
    }

    /// Document `n` of `documents` (which a checked query gave the caller), with its bytes;
    /// `missing` says why there is no such document.
    pub(crate) async fn document(
        &self,
        documents: &[pb::Attachment],
        n: usize,
        missing: &str,
    ) -> Result<(pb::Attachment, Vec<u8>)> {
        let a = documents
            .get(n)
            .cloned()
            .ok_or_else(|| Error::NotFound(missing.into()))?;
        let bytes = self
            .content
            .read(&a.sha256)
            .await
            .map_err(|e| Error::Unavailable(format!("le dépôt des documents ne répond pas : {e}")))?
            .ok_or_else(|| Error::NotFound("document introuvable dans le dépôt".into()))?;
        Ok((a, bytes))
    }

    /// New entries of a citizen's timeline as they are projected, until the receiver is
    /// dropped (the task ends at once), `stopping` turns true, or the watch falls behind.
    pub fn watch(
        &self,
        scope: &Scope,
        who: &Who,
        mut stopping: watch::Receiver<bool>,
    ) -> Result<mpsc::Receiver<Result<pb::TimelineEntry>>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let commune = self.tenant(tenant)?.clone();
        let scope = scope.clone();
        let app = self.clone();
        // Subscribe before resolving, so nothing projected in between is missed.
        let mut rx = self.projector.subscribe();
        let watched = self.resolve(tenant, who)?;
        self.read_by(&scope, &watched, Reading::Timeline, "en direct")?;
        let store = self.store.clone();
        let tenant = tenant.to_string();
        let (tx, out) = mpsc::channel(64);
        let guard = WatchGuard::new(&self.open_watches);
        tokio::spawn(async move {
            let _guard = guard;
            loop {
                let next = tokio::select! {
                    // The client went away: free this task at once, not at the next entry.
                    _ = tx.closed() => break,
                    _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => {
                        let _ = tx.send(Err(Error::Unavailable("the server is shutting down; watch again".into()))).await;
                        break;
                    }
                    next = rx.recv() => next,
                };
                let applied = match next {
                    Ok(a) => a,
                    Err(RecvError::Closed) => break,
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Error::Unavailable(format!(
                                "watch fell {n} events behind; read the timeline again and re-watch"
                            ))))
                            .await;
                        break;
                    }
                };
                if applied.tenant != tenant {
                    continue;
                }
                for entry in &applied.entries {
                    let owner = match store.canonical(&tenant, &entry.citizen_id) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    };
                    if owner != watched {
                        continue;
                    }
                    let seen = match app.seen_entry(&scope, &commune, entry.clone()) {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    if tx.send(Ok(seen)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(out)
    }

    /// Records a walk-in visit and returns its timeline entry once visible. A party naming a
    /// citizen id must name an existing citizen of the commune. An authenticated agent is who
    /// the token says, whatever the request claims.
    pub async fn record_visit(
        &self,
        scope: &Scope,
        r: &commands::RecordVisit,
    ) -> Result<pb::TimelineEntry> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let party = r.party.clone().unwrap_or_default();
        if !party.phone.is_empty() && normalize_phone(&party.phone).is_none() {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un numéro de téléphone",
                quote(&party.phone)
            )));
        }
        if !party.email.is_empty() && normalize_email(&party.email).is_none() {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas une adresse électronique",
                quote(&party.email)
            )));
        }
        let about = std::iter::once((&party.citizen_id, ""))
            .filter(|(id, _)| !id.is_empty())
            .chain(
                r.for_citizen_ids
                    .iter()
                    .map(|o| (o, " (personnes concernées)")),
            );
        for (id, which) in about {
            match self.store.citizen(tenant, id)? {
                None => {
                    return Err(Error::NotFound(format!(
                        "aucune fiche {:?} dans cette commune{which}",
                        quote(id)
                    )))
                }
                Some(_) => {
                    self.writable_citizen(tenant, id)?;
                }
            }
        }
        if r.idempotency_key.chars().count() > 128 {
            return Err(Error::Invalid(
                "la clé d'idempotence dépasse 128 caractères".into(),
            ));
        }
        // A visit joins a request only one the agent works on.
        if !r.request_id.is_empty() {
            self.request_for_work(scope, tenant, &r.request_id)?;
        }
        // What a retry with the same idempotency key must repeat exactly.
        let fingerprint = { content_fingerprint(&Default::default(), &[&r.content()]) };
        let now_us = (self.clock)();
        let occurred_us = timestamp(&r.occurred_at, "occurred_at")?.unwrap_or(now_us);
        let source_id = if r.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            r.idempotency_key.clone()
        };
        let mut e = contact(
            tenant,
            "desk",
            &source_id,
            occurred_us,
            now_us,
            Payload::DeskVisit(pb::DeskVisit {
                desk: r.desk.clone(),
                duration_minutes: r.duration_minutes,
                ..Default::default()
            }),
            party,
        );
        e.category = if r.category == pb::Category::Unspecified {
            pb::Category::Other as i32
        } else {
            r.category as i32
        };
        e.request_id = r.request_id.clone();
        e.fingerprint = fingerprint;
        e.agent_id = scope.agent().map_or(r.agent_id.clone(), |a| a.id.clone());
        if let Some(p) = e.personal.as_mut() {
            p.subject = r.subject.clone();
            p.text = r.notes.clone();
            p.concerns = r.for_citizen_ids.clone();
        }
        self.write(&e).await?;
        let entry = self
            .store
            .applied_entry(&e.tenant, &e.event_id)?
            .ok_or_else(|| {
                Error::Internal(format!(
                    "event {} was projected but has no timeline entry",
                    e.event_id
                ))
            })?;
        self.seen_entry(scope, self.tenant(&e.tenant)?, entry)
    }
}
