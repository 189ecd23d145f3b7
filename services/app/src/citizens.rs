//! Citizen records: create, correct, find, merge and unmerge them, and households. Every
//! change is an event (with the agent, in the citizen's timeline); ids of new records are
//! given by the projector in log order.

use crate::audit::Reading;
use crate::auth::Scope;
use crate::commands::{self, Content};
use crate::{App, Error, Result};
use contacthub_core::event::content_fingerprint;
use contacthub_core::identity::{normalize_email, normalize_phone, valid_id};
use contacthub_core::limits::{self, quote};
use contacthub_core::pb::{self, event::Payload, Citizen};
use std::collections::BTreeMap;

/// What an identifier match scores against word matches (always first).
const IDENTIFIER_SCORE: u32 = 1_000;

/// A back-office event of `tenant` written now by `agent`.
fn back_office(
    app: &App,
    tenant: &str,
    source_id: &str,
    agent: &str,
    payload: Payload,
    personal: Option<pb::Personal>,
) -> pb::Event {
    let mut e = app.internal_event("citizens", tenant, source_id, agent, payload);
    e.personal = personal;
    e
}

/// The source id of a command: the client's idempotency key, else a new one.
fn source_id(key: &str) -> Result<String> {
    if key.chars().count() > 128 {
        return Err(Error::Invalid(
            "la clé d'idempotence dépasse 128 caractères".into(),
        ));
    }
    Ok(if key.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        key.to_string()
    })
}

/// An identity an agent may save: a name, and identifiers that are what they say.
fn check_identity(identity: Option<&pb::Identity>) -> Result<pb::Identity> {
    let i = identity
        .cloned()
        .ok_or_else(|| Error::Invalid("l'identité est requise".into()))?;
    if i.usage_name.trim().is_empty() && i.birth_name.trim().is_empty() {
        return Err(Error::Invalid(
            "indiquez un nom d'usage ou un nom de naissance".into(),
        ));
    }
    for p in &i.phones {
        if normalize_phone(p).is_none() {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un numéro de téléphone",
                quote(p)
            )));
        }
    }
    for m in &i.emails {
        if normalize_email(m).is_none() {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas une adresse électronique",
                quote(m)
            )));
        }
    }
    Ok(i)
}

impl App {
    /// A citizen record of `tenant`, or [`Error::NotFound`], whoever asks: for the checks
    /// of commands.
    pub(crate) fn citizen_record(&self, tenant: &str, citizen_id: &str) -> Result<Citizen> {
        self.tenant(tenant)?;
        if !valid_id(citizen_id) {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un identifiant de fiche",
                quote(citizen_id)
            )));
        }
        self.store.citizen(tenant, citizen_id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "aucune fiche {} dans cette commune",
                quote(citizen_id)
            ))
        })
    }

    /// A citizen record of `tenant` that may still be written to: an erased one may not
    /// (what would be written there could not be erased by the same means).
    pub(crate) fn writable_citizen(&self, tenant: &str, citizen_id: &str) -> Result<Citizen> {
        let c = self.citizen_record(tenant, citizen_id)?;
        if c.erased.is_some() {
            return Err(Error::Invalid(format!(
                "les données de {} ont été effacées : cette fiche ne reçoit plus rien",
                quote(citizen_id)
            )));
        }
        Ok(c)
    }

    /// A citizen record of the scope's commune, or [`Error::NotFound`].
    pub fn citizen(&self, scope: &Scope, citizen_id: &str) -> Result<Citizen> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let c = self.citizen_record(tenant, citizen_id)?;
        self.read_by(scope, &c.citizen_id, Reading::Record, "")?;
        Ok(c)
    }

    /// Registers a new citizen record and returns it once visible.
    pub async fn create_citizen(
        &self,
        scope: &Scope,
        r: &commands::CreateCitizen,
    ) -> Result<Citizen> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let identity = check_identity(r.identity.as_ref())?;
        let mut e = back_office(
            self,
            tenant,
            &source_id(&r.idempotency_key)?,
            &scope.agent_id(),
            Payload::CitizenRegistered(pb::CitizenRegistered {
                citizen_id: String::new(),
            }),
            Some(pb::Personal {
                identity: Some(identity),
                ..Default::default()
            }),
        );
        e.fingerprint = content_fingerprint(&Default::default(), &[&r.content()]);
        self.write(&e).await?;
        let entry = self
            .store
            .applied_entry(&e.tenant, &e.event_id)?
            .ok_or_else(|| {
                Error::Internal(format!("citizen {} projected without an entry", e.event_id))
            })?;
        self.citizen_record(tenant, &entry.citizen_id)
    }

    /// Replaces a record's identity and returns the record once visible.
    pub async fn update_citizen(
        &self,
        scope: &Scope,
        r: &commands::UpdateCitizen,
    ) -> Result<Citizen> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.writable_citizen(tenant, &r.citizen_id)?;
        let identity = check_identity(r.identity.as_ref())?;
        let mut e = back_office(
            self,
            tenant,
            &source_id(&r.idempotency_key)?,
            &scope.agent_id(),
            Payload::CitizenUpdated(pb::CitizenUpdated {
                citizen_id: r.citizen_id.clone(),
            }),
            Some(pb::Personal {
                identity: Some(identity),
                ..Default::default()
            }),
        );
        e.fingerprint = content_fingerprint(&Default::default(), &[&r.content()]);
        self.write(&e).await?;
        self.citizen_record(tenant, &r.citizen_id)
    }

    /// Citizens matching `query`: identifiers first (citizen id, phone, e-mail, chrono number
    /// of a letter), then names and addresses by score, then the most recent contact.
    pub fn search_citizens(
        &self,
        scope: &Scope,
        r: &commands::SearchCitizens,
    ) -> Result<pb::SearchCitizensResponse> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let query = r.query.trim();
        if query.is_empty() {
            return Err(Error::Invalid("la recherche est vide".into()));
        }
        crate::within_limit("la recherche", query, limits::QUERY_CHARS)?;
        let page_size = match r.page_size {
            0 => 20,
            n => n.min(100) as usize,
        };
        let offset = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse::<usize>()
                .ok()
                .filter(|&o| o <= 100_000)
                .ok_or_else(|| {
                    Error::Invalid(format!("jeton de page {:?} invalide", quote(&r.page_token)))
                })?
        };
        // Best score and how, per citizen id as found.
        let mut found: BTreeMap<String, (u32, &'static str)> = BTreeMap::new();
        let mut note = |id: String, score: u32, by: &'static str| {
            let slot = found.entry(id).or_insert((0, by));
            if score > slot.0 {
                *slot = (score, by);
            }
        };
        if valid_id(query) && self.store.citizen(tenant, query)?.is_some() {
            note(query.to_string(), IDENTIFIER_SCORE + 3, "citizen_id");
        }
        // Every holder of a shared number or mailbox.
        if let Some(p) = normalize_phone(query) {
            for id in self.store.holders(tenant, "phone", &p)? {
                note(id, IDENTIFIER_SCORE + 2, "phone");
            }
        }
        if let Some(m) = normalize_email(query) {
            for id in self.store.holders(tenant, "email", &m)? {
                note(id, IDENTIFIER_SCORE + 2, "email");
            }
        }
        // A letter or a contact found by its reference tells who wrote it: only to who may
        // read it.
        if contacthub_core::event::valid_chrono(query) {
            if let Some(letter) = self.store.courrier(tenant, &query.to_ascii_uppercase())? {
                if self.letter_sight(scope, commune, &letter)?.0 == crate::guard::Sight::Full {
                    note(letter.citizen_id, IDENTIFIER_SCORE + 1, "chrono");
                }
            }
        }
        // The reference a source gave a contact: a form's submission id, an SMS, an e-mail.
        if let Some(event_id) = self.store.by_source_ref(tenant, query)? {
            if let Some(entry) = self.store.applied_entry(tenant, &event_id)? {
                let full =
                    self.contact_sight(scope, commune, &entry)?.0 == crate::guard::Sight::Full;
                if !entry.citizen_id.is_empty() && full {
                    note(entry.citizen_id, IDENTIFIER_SCORE + 1, "reference");
                }
            }
        }
        for (id, score) in self.store.search_words(tenant, query)? {
            note(id, score, "name");
        }
        // One small read per candidate (its search card: last contact, merge), through
        // merges (rare) to the record it joined; the best score per record.
        let mut cards: BTreeMap<String, (u32, i64, &'static str)> = BTreeMap::new();
        for (id, (score, by)) in found {
            let mut id = id;
            let mut card = self.store.search_card(tenant, &id)?;
            for _ in 0..64 {
                match &card {
                    Some((_, into)) if !into.is_empty() => {
                        id = into.clone();
                        card = self.store.search_card(tenant, &id)?;
                    }
                    _ => break,
                }
            }
            let Some((last_seen, _)) = card else { continue };
            let better = cards.get(&id).is_none_or(|(best, _, _)| score > *best);
            if better {
                cards.insert(id, (score, last_seen, by));
            }
        }
        let mut ranked: Vec<(String, u32, i64, &'static str)> = cards
            .into_iter()
            .map(|(id, (score, last, by))| (id, score, last, by))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        let total = ranked.len();
        // Whole records for the page only.
        let mut hits = Vec::with_capacity(page_size);
        for (id, score, _, by) in ranked.into_iter().skip(offset).take(page_size) {
            if let Some(citizen) = self.store.citizen(tenant, &id)? {
                // Words found in the address only: the agent is told so.
                let by = if by == "name"
                    && contacthub_core::search::found_by_address(
                        &contacthub_core::search::words(
                            citizen.identity.as_ref(),
                            &citizen.display_name,
                        ),
                        query,
                    ) {
                    "address"
                } else {
                    by
                };
                hits.push(pb::SearchHit {
                    citizen: Some(citizen),
                    matched_by: by.into(),
                    score,
                });
            }
        }
        for h in &hits {
            if let Some(c) = &h.citizen {
                self.read_by(scope, &c.citizen_id, Reading::Search, "")?;
            }
        }
        Ok(pb::SearchCitizensResponse {
            hits,
            next_page_token: if offset.saturating_add(page_size) < total {
                (offset + page_size).to_string()
            } else {
                String::new()
            },
        })
    }

    /// Merges `citizen_id` into `into_citizen_id` (the same person); returns the merged record.
    pub async fn merge_citizens(
        &self,
        scope: &Scope,
        r: &commands::MergeCitizens,
    ) -> Result<Citizen> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let from = self.writable_citizen(tenant, &r.citizen_id)?;
        let into = self.writable_citizen(tenant, &r.into_citizen_id)?;
        if from.citizen_id == into.citizen_id {
            return Err(Error::Invalid(
                "une fiche ne se fusionne pas avec elle-même".into(),
            ));
        }
        if !from.merged_into.is_empty() {
            return Err(Error::Invalid(format!(
                "la fiche {} est déjà fusionnée dans la fiche {}",
                from.citizen_id, from.merged_into
            )));
        }
        if self.store.canonical(tenant, &into.citizen_id)? == from.citizen_id {
            return Err(Error::Invalid(format!(
                "fusionner {} dans {} ferait un cycle (l'une est déjà fusionnée dans l'autre)",
                from.citizen_id, into.citizen_id
            )));
        }
        let reason = reason(&r.reason)?;
        let e = back_office(
            self,
            tenant,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            Payload::IdentityLinked(pb::IdentityLinked {
                citizen_id: from.citizen_id.clone(),
                into_citizen_id: into.citizen_id.clone(),
            }),
            Some(pb::Personal {
                text: reason,
                ..Default::default()
            }),
        );
        self.write(&e).await?;
        let canonical = self.store.canonical(tenant, &into.citizen_id)?;
        let c = self.citizen_record(tenant, &canonical)?;
        self.read_by(scope, &c.citizen_id, Reading::Record, "")?;
        Ok(c)
    }

    /// The records merged into `canonical` (directly or through others), which an agent may
    /// separate again.
    pub fn merged_records(&self, scope: &Scope, canonical: &str) -> Result<Vec<Citizen>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let mut out = Vec::new();
        for id in self.store.members(tenant, canonical)? {
            if id != canonical {
                if let Some(c) = self.store.citizen(tenant, &id)? {
                    self.read_by(scope, &c.citizen_id, Reading::Record, canonical)?;
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// Undoes the merge of `citizen_id`: its timeline is its own again, exactly.
    pub async fn unmerge_citizen(
        &self,
        scope: &Scope,
        r: &commands::UnmergeCitizen,
    ) -> Result<Citizen> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let c = self.citizen_record(tenant, &r.citizen_id)?;
        if c.merged_into.is_empty() {
            return Err(Error::Invalid(format!(
                "la fiche {} n'est fusionnée dans aucune autre",
                c.citizen_id
            )));
        }
        let reason = reason(&r.reason)?;
        let e = back_office(
            self,
            tenant,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            Payload::IdentityUnlinked(pb::IdentityUnlinked {
                citizen_id: c.citizen_id.clone(),
                from_citizen_id: c.merged_into.clone(),
            }),
            Some(pb::Personal {
                text: reason,
                ..Default::default()
            }),
        );
        self.write(&e).await?;
        self.citizen_record(tenant, &r.citizen_id)
    }

    /// Adds a citizen to a household with a role (or removes it), and returns the household.
    pub async fn set_household_member(
        &self,
        scope: &Scope,
        r: &commands::SetHouseholdMember,
    ) -> Result<pb::Household> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.writable_citizen(tenant, &r.citizen_id)?;
        if !valid_id(&r.household_id) {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un identifiant de foyer",
                quote(&r.household_id)
            )));
        }
        let e = back_office(
            self,
            tenant,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            Payload::HouseholdMembership(pb::HouseholdMembership {
                household_id: r.household_id.clone(),
                citizen_id: r.citizen_id.clone(),
                role: r.role.trim().to_string(),
                member: r.member,
            }),
            None,
        );
        self.write(&e).await?;
        self.household(
            scope,
            &commands::HouseholdQuery {
                household_id: r.household_id.clone(),
                recent: 0,
            },
        )
    }

    /// A household: its members with their roles, and its recent contacts across members.
    pub fn household(&self, scope: &Scope, r: &commands::HouseholdQuery) -> Result<pb::Household> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        if !valid_id(&r.household_id) {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un identifiant de foyer",
                quote(&r.household_id)
            )));
        }
        let recent = match r.recent {
            0 => 20,
            n => n.min(200) as usize,
        };
        let members = self.store.household(tenant, &r.household_id)?;
        if members.is_empty() {
            return Err(Error::NotFound(format!(
                "aucun foyer {} dans cette commune",
                quote(&r.household_id)
            )));
        }
        let mut entries = Vec::new();
        let mut out = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for (member_id, role) in members {
            // A member merged into another record is that record now.
            let citizen_id = self.store.canonical(tenant, &member_id)?;
            if seen.contains(&citizen_id) {
                continue;
            }
            seen.push(citizen_id.clone());
            let Some(citizen) = self.store.citizen(tenant, &citizen_id)? else {
                continue;
            };
            let page = self.store.timeline(
                tenant,
                &citizen_id,
                &contacthub_projector::TimelineQuery {
                    page_size: recent,
                    ..Default::default()
                },
            )?;
            entries.extend(page.entries);
            out.push(pb::HouseholdMember {
                citizen: Some(citizen),
                role,
            });
        }
        let at = |e: &pb::TimelineEntry| {
            e.occurred_at
                .map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
        };
        entries.sort_by(|a, b| at(b).cmp(&at(a)).then(a.event_id.cmp(&b.event_id)));
        entries.dedup_by(|a, b| a.event_id == b.event_id);
        entries.truncate(recent);
        for c in out.iter().filter_map(|m| m.citizen.as_ref()) {
            self.read_by(scope, &c.citizen_id, Reading::Household, &r.household_id)?;
        }
        Ok(pb::Household {
            household_id: r.household_id.clone(),
            members: crate::within_page(out),
            recent: crate::within_page(self.seen_entries(scope, commune, entries)?),
        })
    }
}

impl App {
    /// The "à rattacher" worklist: contacts waiting for an agent (and, with
    /// `include_attached`, those attached by their identifiers after naming an unknown id).
    pub fn unresolved_contacts(
        &self,
        scope: &Scope,
        r: &commands::UnresolvedQuery,
    ) -> Result<Vec<pb::Unresolved>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let limit = match r.limit {
            0 => 100,
            n => n.min(500) as usize,
        };
        let mut out = self.store.unresolved(tenant, limit, |u| {
            r.include_attached || u.attached_to.is_empty()
        })?;
        for u in &mut out {
            if let Some(e) = u.entry.take() {
                let e = self.seen_entry(scope, commune, e)?;
                if e.withheld_service.is_empty() {
                    self.read_by(scope, &e.citizen_id, Reading::List, &e.event_id)?;
                }
                u.entry = Some(e);
            }
        }
        Ok(crate::within_page(out))
    }

    /// Attaches a waiting contact to a citizen; returns its entry once in that timeline.
    pub async fn attach_contact(
        &self,
        scope: &Scope,
        r: &commands::AttachContact,
    ) -> Result<pb::TimelineEntry> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.writable_citizen(tenant, &r.citizen_id)?;
        self.store
            .unresolved_contact(tenant, &r.contact_event_id)?
            .filter(|u| u.attached_to.is_empty())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "aucun contact {} à rattacher dans cette commune",
                    quote(&r.contact_event_id)
                ))
            })?;
        let e = back_office(
            self,
            tenant,
            &format!("attach/{}", r.contact_event_id),
            &scope.agent_id(),
            Payload::ContactAttached(pb::ContactAttached {
                contact_event_id: r.contact_event_id.clone(),
                citizen_id: r.citizen_id.clone(),
            }),
            None,
        );
        self.write(&e).await?;
        let entry = self
            .store
            .applied_entry(tenant, &r.contact_event_id)?
            .ok_or_else(|| Error::Internal("the attached contact has no entry".into()))?;
        // Attaching a contact one may not read does not show it.
        self.seen_entry(scope, self.tenant(tenant)?, entry)
    }

    /// Pairs of records that may be one person, never merged automatically: the same folded
    /// name and birth date, the same folded name and address, or a provisional record sharing
    /// a phone or e-mail with a confirmed one. Pairs an agent dismissed are left out.
    pub fn duplicate_proposals(
        &self,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<pb::DuplicateProposal>> {
        let tenant = scope.commune();
        use contacthub_core::identity::fold_name;
        self.enter(scope, tenant)?;
        let limit = match limit {
            0 => 100,
            n => n.min(500) as usize,
        };
        let live: Vec<Citizen> = self
            .store
            .citizens(tenant)?
            .into_iter()
            .filter(|c| c.merged_into.is_empty())
            .collect();
        let name = |c: &Citizen| fold_name(&c.display_name);
        let mut groups: BTreeMap<(String, String, &'static str), Vec<usize>> = BTreeMap::new();
        for (i, c) in live.iter().enumerate() {
            let Some(id) = &c.identity else { continue };
            if !id.birth_date.is_empty() {
                groups
                    .entry((name(c), id.birth_date.clone(), "same name and birth date"))
                    .or_default()
                    .push(i);
            }
            for a in &id.addresses {
                let place = fold_name(&format!("{} {} {}", a.number, a.street, a.city));
                groups
                    .entry((name(c), place, "same name and address"))
                    .or_default()
                    .push(i);
            }
        }
        let mut pairs: Vec<(usize, usize, &'static str)> = Vec::new();
        for ((_, _, why), members) in &groups {
            for (x, &a) in members.iter().enumerate() {
                for &b in &members[x + 1..] {
                    pairs.push((a, b, why));
                }
            }
        }
        // Provisional records sharing an identifier with another record (a confirmed one, or
        // the record of a form that only declared it).
        let index: BTreeMap<&str, usize> = live
            .iter()
            .enumerate()
            .map(|(i, c)| (c.citizen_id.as_str(), i))
            .collect();
        for (i, c) in live.iter().enumerate().filter(|(_, c)| c.provisional) {
            for (kind, list, why) in [
                ("phone", &c.phones, "shared phone"),
                ("email", &c.emails, "shared e-mail"),
            ] {
                for value in list {
                    for h in self.store.holders(tenant, kind, value)? {
                        if let Some(&j) = index.get(h.as_str()) {
                            if j != i {
                                pairs.push((j, i, why));
                            }
                        }
                    }
                }
            }
        }
        // The strongest reason first, so a pair found twice is shown with it.
        let strength = |why: &str| match why {
            "same name and birth date" => 0,
            "same name and address" => 1,
            _ => 2,
        };
        pairs.sort_by_key(|(a, b, why)| (strength(why), *a, *b));
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for (a, b, why) in pairs {
            let (x, y) = (&live[a], &live[b]);
            let key = if x.citizen_id <= y.citizen_id {
                (x.citizen_id.clone(), y.citizen_id.clone())
            } else {
                (y.citizen_id.clone(), x.citizen_id.clone())
            };
            if !seen.insert(key) || self.store.dismissed(tenant, &x.citizen_id, &y.citizen_id)? {
                continue;
            }
            out.push(pb::DuplicateProposal {
                citizen: Some(x.clone()),
                other: Some(y.clone()),
                why: why.into(),
            });
            if out.len() == limit {
                break;
            }
        }
        for p in &out {
            for c in [&p.citizen, &p.other].into_iter().flatten() {
                self.read_by(scope, &c.citizen_id, Reading::List, "")?;
            }
        }
        Ok(crate::within_page(out))
    }

    /// The two records are different people: they are not proposed again.
    pub async fn dismiss_duplicate(
        &self,
        scope: &Scope,
        r: &commands::DismissDuplicate,
    ) -> Result<()> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.writable_citizen(tenant, &r.citizen_id)?;
        self.writable_citizen(tenant, &r.other_citizen_id)?;
        if r.citizen_id == r.other_citizen_id {
            return Err(Error::Invalid(
                "une fiche n'est pas le doublon d'elle-même".into(),
            ));
        }
        let reason = reason(&r.reason)?;
        let e = back_office(
            self,
            tenant,
            &uuid::Uuid::new_v4().to_string(),
            &scope.agent_id(),
            Payload::DuplicateDismissed(pb::DuplicateDismissed {
                citizen_id: r.citizen_id.clone(),
                other_citizen_id: r.other_citizen_id.clone(),
            }),
            Some(pb::Personal {
                text: reason,
                ..Default::default()
            }),
        );
        self.write(&e).await?;
        Ok(())
    }
}

/// The reason of a merge or unmerge: required, bounded.
fn reason(r: &str) -> Result<String> {
    let r = r.trim();
    if r.is_empty() {
        return Err(Error::Invalid(
            "indiquez le motif (pourquoi ces fiches sont, ou ne sont pas, la même personne)".into(),
        ));
    }
    crate::within_limit("le motif", r, limits::NOTE_CHARS)?;
    Ok(r.to_string())
}
