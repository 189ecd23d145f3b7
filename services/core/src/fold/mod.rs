//! Folding one log record into the read model. Pure: all state goes through [`Kv`], so the
//! same code runs over sled (projector) and over a `BTreeMap` (tests, models).
//!
//! Layout, one module per aggregate: [`citizens`] (identity resolution, citizen records,
//! merges, households, the search index), [`timeline`] (entries and the citizen's counts),
//! [`courrier`] (the mail room: chrono numbers and letters), [`accueil`] (the waiting line's tickets), [`accounts`] (the citizens' space's accounts), [`appointments`] (slots booked and freed), [`requests`] (demandes, from
//! first contact to written answer), [`answers`] (the outbox of written answers), [`notices`] (confirmations, reminders and acknowledgements to send), [`counters`] (global and per-commune figures). This file decodes and validates the record, dedupes by event id,
//! dispatches, and keeps a refused event from leaving any write behind ([`Staged`]).

pub mod accounts;
pub mod accueil;
pub mod answers;
pub mod appointments;
pub mod citizens;
pub mod counters;
pub mod courrier;
pub mod notices;
pub mod requests;
pub mod timeline;

use crate::event::{self, is_contact, Invalid, Valid};
use crate::keys;
use crate::pb::{self, event::Payload, DeadLetter, TimelineEntry};
use crate::seal;
use crate::tenant::Tenants;
use crate::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;

/// Ordered key-value state the fold reads and writes. Writes are buffered by the caller and
/// must be visible to later reads of the same fold.
pub trait Kv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    fn remove(&mut self, key: Vec<u8>);
    /// Every key starting with `prefix`, with its value, in key order, at most `limit`.
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
}

impl Kv for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(BTreeMap::get(self, key).cloned())
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.insert(key, value);
    }
    fn remove(&mut self, key: Vec<u8>) {
        BTreeMap::remove(self, &key);
    }
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Writes over a [`Kv`] held apart until [`Staged::commit`]: a savepoint. Dropped without a
/// commit, it leaves the underlying state as it was.
pub struct Staged<'a, K: Kv> {
    base: &'a mut K,
    writes: Changes,
}

impl<'a, K: Kv> Staged<'a, K> {
    pub fn new(base: &'a mut K) -> Self {
        Staged {
            base,
            writes: BTreeMap::new(),
        }
    }

    /// Applies the held writes to the underlying state.
    pub fn commit(self) {
        for (k, v) in self.writes {
            match v {
                Some(v) => self.base.put(k, v),
                None => self.base.remove(k),
            }
        }
    }
}

impl<K: Kv> Kv for Staged<'_, K> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        // The base's keys, overridden by the held writes, in order.
        let layers = [&self.writes];
        let base = self
            .base
            .scan_prefix(prefix, limit.saturating_add(pending(&layers, prefix)))?;
        Ok(merge_scan(base, &layers, prefix, limit))
    }
}

/// Changes held over a state, in key order (`None`: removed).
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// How many changes of `layers` fall under `prefix`: how much more of the state below a
/// prefix scan must read to still give `limit` keys once they are applied.
pub fn pending(layers: &[&Changes], prefix: &[u8]) -> usize {
    layers
        .iter()
        .map(|l| {
            l.range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .count()
        })
        .sum()
}

/// `base`, a prefix scan of the state below, with `layers` of changes over it (oldest
/// first): the first `limit` keys starting with `prefix`, with their values.
pub fn merge_scan(
    base: Vec<(Vec<u8>, Vec<u8>)>,
    layers: &[&Changes],
    prefix: &[u8],
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
    for layer in layers {
        for (k, v) in layer
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
    }
    merged.into_iter().take(limit).collect()
}

/// Where a record sits on the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// What folding one record did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// New timeline entries (one per affected citizen) for `tenant`.
    Applied {
        tenant: String,
        entries: Vec<TimelineEntry>,
    },
    /// The event id was already applied; nothing changed.
    Duplicate,
    /// The record was kept as a dead letter with this reason.
    DeadLettered(String),
}

pub(crate) fn get_msg<M: Message + Default>(kv: &impl Kv, key: &[u8]) -> Result<Option<M>> {
    match kv.get(key)? {
        None => Ok(None),
        Some(v) => M::decode(v.as_slice())
            .map(Some)
            .map_err(|source| Error::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                source,
            }),
    }
}

/// A semantic refusal (the event is dead-lettered), or a store failure.
pub(crate) type Folded<T> = Result<Result<T, Invalid>>;

/// Folds the record at `pos` (log key and value as read) into the read model.
pub fn apply(
    kv: &mut impl Kv,
    tenants: &Tenants,
    pos: Position,
    key: &[u8],
    raw: &[u8],
    keys: &dyn seal::Keys,
) -> Result<Outcome> {
    let mut event = match event::decode(raw) {
        Ok(e) => e,
        Err(invalid) => return dead_letter(kv, pos, key, raw, invalid),
    };
    // Its personal part, if its subject's key still exists: an erased person's events fold
    // as events with nothing personal (the same on a replay as it was live after the erasure).
    let sealed_with = event.sealed.as_ref().map(|s| s.key_id.clone());
    match seal::open(&mut event, keys) {
        Ok(()) | Err(seal::Unreadable::Erased) => {}
        Err(seal::Unreadable::Unknown(id)) => return Err(Error::KeyUnknown(id)),
        Err(unreadable) => {
            return dead_letter(
                kv,
                pos,
                key,
                raw,
                Invalid(format!("personal part unreadable: {unreadable}")),
            )
        }
    }
    let occurred_us = match event::validate(&event, tenants) {
        Ok(v) => v.occurred_us,
        Err(invalid) => return dead_letter(kv, pos, key, raw, invalid),
    };
    let applied_key = keys::applied(&event.tenant, &event.event_id);
    if kv.get(&applied_key)?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    // Everything this event writes, or nothing: a refusal half-way leaves no trace.
    let mut staged = Staged::new(kv);
    // Validated above; giving a letter its chrono changes nothing validation looks at.
    courrier::assign_chrono(&mut staged, tenants, &mut event)?;
    let Some(payload) = event.payload.as_ref() else {
        drop(staged);
        return dead_letter(kv, pos, key, raw, Invalid("missing payload".into()));
    };
    // Whose key sealed it: filed under each citizen it goes to, for their erasure.
    let key_id = sealed_with
        .clone()
        .filter(|_| !seal::erased(&event))
        .unwrap_or_default();
    let valid = Valid {
        key_id: &key_id,
        event: &event,
        payload,
        occurred_us,
    };
    let entries = match project(&mut staged, tenants, &valid, pos)? {
        Ok(entries) => entries,
        Err(invalid) => {
            drop(staged);
            return dead_letter(kv, pos, key, raw, invalid);
        }
    };
    staged.commit();
    // Whose key sealed it, for the erasure of each citizen it went to (an erased event went
    // to no one): the citizens of its lines, and a request's requesters.
    if !key_id.is_empty() {
        let mut owners: Vec<String> = entries.iter().map(|e| e.citizen_id.clone()).collect();
        if !event.request_id.is_empty() {
            if let Some(r) =
                get_msg::<pb::Request>(kv, &keys::request(&event.tenant, &event.request_id))?
            {
                owners.extend(r.requesters);
            }
        }
        owners.sort_unstable();
        owners.dedup();
        for citizen in owners.iter().filter(|c| !c.is_empty()) {
            file_key(kv, &event.tenant, citizen, &key_id)?;
        }
    }
    // What the citizen wrote, beyond who they are (the party is in the entry and the citizen),
    // kept with where the event went: only when there is some, so calls and visits cost
    // nothing there.
    let mut detail = Vec::new();
    if is_contact(payload) {
        if let Some(mut personal) = event.personal.take() {
            if !(personal.subject.is_empty()
                && personal.text.is_empty()
                && personal.fields.is_empty()
                && personal.attachment_names.is_empty())
            {
                // Of the party, only a postal address written on the contact (a letter's
                // envelope): the receipt is sent there; who it is lives in the entry.
                personal.party = personal
                    .party
                    .take()
                    .and_then(|p| p.address)
                    .map(|a| pb::Party {
                        address: Some(a),
                        ..Default::default()
                    });
                detail = personal.encode_to_vec();
            }
        }
    }
    let applied = keys::Applied {
        partition: pos.partition,
        offset: pos.offset,
        occurred_us,
        fingerprint: event.fingerprint.clone(),
        citizen: entries
            .first()
            .map_or_else(String::new, |e| e.citizen_id.clone()),
        detail,
    };
    kv.put(applied_key, applied.encode());
    counters::bump(kv, &keys::Counter::Applied)?;
    if is_contact(payload) && event.direction != pb::Direction::Outbound as i32 {
        let slice = crate::dashboard::Slice::of(event.channel, event.category, "");
        counters::dashboard(
            kv,
            &event.tenant,
            occurred_us,
            &slice.dims()[..3],
            crate::dashboard::CONTACTS,
        )?;
    }
    if let Payload::PhoneCall(call) = payload {
        counters::phone_call(kv, &event, call, occurred_us)?;
    }
    counters::accueil_day(kv, &event, payload, occurred_us)?;
    Ok(Outcome::Applied {
        tenant: event.tenant.clone(),
        entries,
    })
}

fn dead_letter(
    kv: &mut impl Kv,
    pos: Position,
    key: &[u8],
    raw: &[u8],
    invalid: Invalid,
) -> Result<Outcome> {
    let dl = DeadLetter {
        partition: pos.partition,
        offset: pos.offset,
        reason: invalid.0.clone(),
        key: key.to_vec(),
        raw: raw.to_vec(),
        raw_size: raw.len() as u64,
    };
    kv.put(
        keys::dead_letter(pos.partition, pos.offset),
        dl.encode_to_vec(),
    );
    counters::bump(kv, &keys::Counter::DeadLetters)?;
    Ok(Outcome::DeadLettered(invalid.0))
}

/// Files `key_id` under `citizen` (and the citizen under the key): an erasure of the citizen
/// destroys it unless another citizen it also belongs to stays.
pub(crate) fn file_key(kv: &mut impl Kv, tenant: &str, citizen: &str, key_id: &str) -> Result<()> {
    // Both are written together: filed once, not again by each of the citizen's events.
    let filed = keys::subject_key(tenant, citizen, key_id);
    if kv.get(&filed)?.is_none() {
        kv.put(filed, Vec::new());
        kv.put(keys::key_owner(tenant, key_id, citizen), Vec::new());
    }
    Ok(())
}

/// Applies a validated event: the aggregate it concerns, then the timeline entries of the
/// citizens it concerns.
fn project(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    pos: Position,
) -> Folded<Vec<TimelineEntry>> {
    let e = v.event;
    // A citizen id a contact named that no citizen of this commune has.
    let mut unknown_claim: Option<String> = None;
    // The citizens holding a waiting contact's identifiers.
    let mut waiting: Option<Vec<String>> = None;
    // The request a contact joined by itself.
    let mut request: Option<String> = None;
    let folded = match v.payload {
        Payload::CitizenRegistered(r) => citizens::register(kv, tenants, v, r)?,
        Payload::CitizenUpdated(u) => citizens::update(kv, v, u)?,
        Payload::HouseholdMembership(h) => citizens::household(kv, v, h)?,
        Payload::IdentityLinked(l) => citizens::link(kv, v, l)?,
        Payload::IdentityUnlinked(u) => citizens::unlink(kv, v, u)?,
        Payload::ContactAttached(a) => citizens::attach(kv, v, a)?,
        Payload::DuplicateDismissed(d) => citizens::dismiss(kv, v, d)?,
        Payload::CitizenErased(x) => citizens::erase(kv, v, x)?,
        Payload::ReadsRecorded(r) => {
            // Each line under its hub and number: a batch published twice is the same keys.
            for line in &r.reads {
                kv.put(
                    keys::trail_read(&e.tenant, &r.hub, line.seq),
                    line.encode_to_vec(),
                );
            }
            Ok(Vec::new())
        }
        Payload::ContactNoted(n) => timeline::noted(kv, v, n)?,
        Payload::AccountLinked(l) => accounts::linked(kv, v, l)?,
        Payload::AccountProposed(p) => accounts::proposed(kv, v, p)?,
        Payload::AppointmentBooked(b) => appointments::booked(kv, v, b)?,
        Payload::AppointmentCancelled(c) => appointments::cancelled(kv, v, c)?,
        Payload::AppointmentAttended(a) => appointments::attended(kv, v, a)?,
        Payload::NoticeQueued(n) => notices::queued(kv, v, n)?,
        Payload::NoticeOutcome(o) => notices::outcome(kv, v, o)?,
        Payload::TicketIssued(_)
        | Payload::TicketCalled(_)
        | Payload::TicketStarted(_)
        | Payload::TicketClosed(_) => accueil::fold(kv, v)?,
        Payload::CourrierRouted(_)
        | Payload::CourrierStep(_)
        | Payload::CourrierAnswered(_)
        | Payload::CourrierScanAttached(_) => courrier::bookkeeping(kv, v)?,
        Payload::RequestOpened(o) => requests::open(kv, tenants, v, o)?,
        Payload::RequestAssigned(_)
        | Payload::RequestStatusChanged(_)
        | Payload::RequestAnswered(_)
        | Payload::RequestClosed(_)
        | Payload::RequestReopened(_)
        | Payload::RequestLinked(_)
        | Payload::RequestGrouped(_) => requests::follow(kv, tenants, v)?,
        Payload::AnswerComposed(c) => answers::compose(kv, v, c)?,
        Payload::AnswerOutcome(o) => answers::outcome(kv, v, o)?,
        Payload::CatalogueAnswerPublished(a) => {
            let key = keys::catalogue(&e.tenant, &a.answer_id);
            let version = get_msg::<pb::CatalogueAnswer>(kv, &key)?.map_or(0, |c| c.version);
            let answer = pb::CatalogueAnswer {
                answer_id: a.answer_id.clone(),
                tenant: e.tenant.clone(),
                demarche: a.demarche.clone(),
                service: a.service.clone(),
                title: a.title.clone(),
                text: a.text.clone(),
                owner: a.owner.clone(),
                reviewed_on: a.reviewed_on.clone(),
                withdrawn: a.withdrawn,
                version: version + 1,
                updated_at: e.occurred_at,
                updated_by: e.agent_id.clone(),
            };
            kv.put(key, answer.encode_to_vec());
            Ok(vec![])
        }
        Payload::PhoneCall(_)
        | Payload::Courrier(_)
        | Payload::WebForm(_)
        | Payload::Sms(_)
        | Payload::Email(_)
        | Payload::DeskVisit(_) => {
            // An erased contact says no more who it came from: it joins no one and waits for
            // no one (not even in « à rattacher »).
            let erased = seal::erased(e);
            let number = citizens::number_for(kv, v)?;
            if let (true, Some(n)) = (erased, number) {
                citizens::erased_shell(kv, tenants, v, n)?;
            }
            let resolved = if erased {
                citizens::Resolution::Waiting {
                    candidates: Vec::new(),
                    claimed: None,
                }
            } else {
                citizens::resolve_party(kv, tenants, v, number)?
            };
            let citizen = match resolved {
                citizens::Resolution::Attached { citizen, claimed } => {
                    unknown_claim = claimed;
                    Some(citizen)
                }
                citizens::Resolution::Waiting {
                    candidates,
                    claimed,
                } => {
                    unknown_claim = claimed;
                    waiting = (!erased).then_some(candidates);
                    None
                }
            };
            // « STOP » from a number: no more SMS to it; « START »: again.
            if let (Payload::Sms(_), Some(p)) = (v.payload, e.personal.as_ref()) {
                let phone = p.party.as_ref().map_or("", |p| p.phone.as_str());
                if e.direction != pb::Direction::Outbound as i32 && !phone.is_empty() {
                    use crate::outbound::{sms_keyword, SmsKeyword};
                    match sms_keyword(&p.text) {
                        Some(SmsKeyword::Stop) => kv.put(
                            keys::sms_stopped(&e.tenant, phone),
                            v.occurred_us.to_be_bytes().to_vec(),
                        ),
                        Some(SmsKeyword::Start) => kv.remove(keys::sms_stopped(&e.tenant, phone)),
                        None => {}
                    }
                }
            }
            // Found again by the reference its source gave it.
            let reference = match v.payload {
                Payload::WebForm(w) => w.submission_id.as_str(),
                Payload::Sms(m) => m.message_sid.as_str(),
                Payload::Email(m) => m.message_id.as_str(),
                _ => "",
            };
            if !reference.is_empty() {
                kv.put(
                    keys::source_ref(&e.tenant, reference),
                    e.event_id.as_bytes().to_vec(),
                );
            }
            // Whom an élu met at their permanences. What an élu wrote there joins no request
            // it quotes (an élu may not write into a service's request); the others join the
            // open request they quote or whose e-mail thread they continue.
            if matches!(v.payload, Payload::DeskVisit(d) if d.permanence) {
                kv.put(
                    keys::permanence(&e.tenant, &e.agent_id, v.occurred_us, &e.event_id),
                    Vec::new(),
                );
            } else {
                request = requests::auto_link(kv, tenants, v)?;
            }
            // A registered letter is a request (or joins the one it quotes).
            if let Payload::Courrier(c) = v.payload {
                if !c.chrono.is_empty()
                    && e.direction != pb::Direction::Outbound as i32
                    && !courrier::is_registered(kv, &e.tenant, &c.chrono)?
                {
                    let who = citizen.as_deref().unwrap_or("");
                    let reference = match request.clone() {
                        Some(r) => r,
                        None => requests::open_for_letter(kv, tenants, v, c, who)?,
                    };
                    courrier::register(kv, v, c, who, &reference)?;
                    request = Some(reference);
                }
            }
            // A portal's file is a request: its first submission opens it, the next join it
            // (an erased person's too: the numbering stays whatever is erased).
            if let Payload::WebForm(w) = v.payload {
                if !w.thread_id.is_empty() {
                    let who = citizen.as_deref().unwrap_or("");
                    request = Some(requests::follow_file(kv, tenants, v, &w.thread_id, who)?);
                }
            }
            // The citizens it is also about (a child, a relative) that exist here.
            let mut all: Vec<String> = citizen.into_iter().collect();
            for other in e.personal.iter().flat_map(|p| p.concerns.iter()) {
                if !all.contains(other) && kv.get(&keys::citizen(&e.tenant, other))?.is_some() {
                    all.push(other.clone());
                }
            }
            Ok(all)
        }
    };
    let citizens = match folded {
        Ok(c) => c,
        Err(invalid) => return Ok(Err(invalid)),
    };
    let mut entries = timeline::write(kv, v, pos, &citizens, unknown_claim.as_deref())?;
    // A call or a walk-in when the commune is closed says so.
    let outside = outside_hours(v);
    if outside {
        for entry in &mut entries {
            entry
                .facts
                .get_or_insert_with(Default::default)
                .outside_hours = true;
            timeline::rewrite(kv, &e.tenant, entry);
        }
    }
    if let Some(reference) = request {
        kv.put(
            keys::contact_request(&e.tenant, &e.event_id, &reference),
            Vec::new(),
        );
        for entry in &mut entries {
            entry.request_id = reference.clone();
            timeline::rewrite(kv, &e.tenant, entry);
        }
    }
    // An opened request shows its reference and its committed date in the timeline.
    if let Payload::RequestOpened(_) = v.payload {
        if let Some(r) = kv
            .get(&keys::request_by_event(&e.tenant, &e.event_id))?
            .and_then(|reference| {
                get_msg::<pb::Request>(
                    kv,
                    &keys::request(&e.tenant, &String::from_utf8_lossy(&reference)),
                )
                .transpose()
            })
            .transpose()?
        {
            for entry in &mut entries {
                entry.request_id = r.reference.clone();
                entry.facts.get_or_insert_with(Default::default).due_at = r.due_at;
                timeline::rewrite(kv, &e.tenant, entry);
            }
        }
    }
    // A written answer shows on the channel it goes by.
    let outbound = match v.payload {
        Payload::AnswerComposed(c) => Some(c.channel),
        Payload::NoticeQueued(n) => Some(n.channel),
        _ => None,
    };
    if let Some(channel) = outbound {
        for entry in &mut entries {
            entry.channel = channel;
            timeline::rewrite(kv, &e.tenant, entry);
        }
    }
    // For an agent ("à rattacher"): a contact waiting for its citizen, or one that named a
    // citizen id nobody has.
    if waiting.is_some() || unknown_claim.is_some() {
        // Entries of a waiting contact are only those of the citizens it is also about.
        let attached = if waiting.is_some() {
            None
        } else {
            entries.first()
        };
        let attached_to = attached.map(|e| e.citizen_id.clone());
        let unresolved = pb::Unresolved {
            entry: Some(attached.cloned().unwrap_or_else(|| {
                let mut entry = timeline::entry(v, "", pos);
                if outside {
                    entry
                        .facts
                        .get_or_insert_with(Default::default)
                        .outside_hours = true;
                }
                entry
            })),
            candidates: waiting.unwrap_or_default(),
            claimed_citizen_id: unknown_claim.unwrap_or_default(),
            attached_to: attached_to.unwrap_or_default(),
        };
        kv.put(
            keys::unresolved_claim(&e.tenant, &e.event_id),
            unresolved.encode_to_vec(),
        );
    }
    Ok(Ok(entries))
}

/// Whether `v` is a call received, or a walk-in, while the commune's phone or counter was
/// closed, as its writer marked it ([`crate::hours::mark`]).
fn outside_hours(v: &Valid) -> bool {
    match v.payload {
        Payload::PhoneCall(c) => {
            c.outside_hours && v.event.direction == pb::Direction::Inbound as i32
        }
        Payload::DeskVisit(d) => d.outside_hours && !d.permanence,
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    proptest::proptest! {
        /// A prefix scan of the state read `pending` keys further, with layers of changes
        /// over it, gives what a scan of the state with the changes applied gives.
        #[test]
        fn merge_scan_is_a_scan_of_the_changed_state(
            state in proptest::collection::btree_map(proptest::collection::vec(0u8..4, 0..4), proptest::collection::vec(proptest::num::u8::ANY, 0..3), 0..40),
            layers in proptest::collection::vec(proptest::collection::btree_map(proptest::collection::vec(0u8..4, 0..4), proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..3)), 0..20), 0..3),
            prefix in proptest::collection::vec(0u8..4, 0..2),
            limit in 0usize..12,
        ) {
            let under = |m: &BTreeMap<Vec<u8>, Vec<u8>>, n: usize| -> Vec<(Vec<u8>, Vec<u8>)> {
                m.iter().filter(|(k, _)| k.starts_with(&prefix)).take(n).map(|(k, v)| (k.clone(), v.clone())).collect()
            };
            let refs: Vec<&Changes> = layers.iter().collect();
            let base = under(&state, limit.saturating_add(pending(&refs, &prefix)));
            let mut changed = state.clone();
            for layer in &layers {
                for (k, v) in layer {
                    match v {
                        Some(v) => changed.insert(k.clone(), v.clone()),
                        None => changed.remove(k),
                    };
                }
            }
            proptest::prop_assert_eq!(merge_scan(base, &refs, &prefix, limit), under(&changed, limit));
        }
    }

    pub type Mem = BTreeMap<Vec<u8>, Vec<u8>>;

    /// Applies events at offsets 0, 1, 2… of partition 0.
    pub fn apply_all(kv: &mut Mem, events: &[pb::Event]) -> Vec<Outcome> {
        apply_from(kv, events, 0)
    }

    /// Applies events at offsets `first`, `first + 1`… of partition 0.
    pub fn apply_from(kv: &mut Mem, events: &[pb::Event], first: u64) -> Vec<Outcome> {
        let tenants = Tenants::builtin();
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let pos = Position {
                    partition: 0,
                    offset: first + i as u64,
                };
                apply(
                    kv,
                    &tenants,
                    pos,
                    e.tenant.as_bytes(),
                    &e.encode_to_vec(),
                    &crate::seal::NoKeys,
                )
                .unwrap()
            })
            .collect()
    }

    /// A history whose every key was destroyed (every person erased) still folds whole: no
    /// event refused, and every figure of the dashboards (`st/` counters) as it was.
    #[test]
    fn an_erased_history_folds_whole_with_the_same_figures() {
        use crate::seal;
        use std::collections::HashMap;
        struct Ring(std::cell::RefCell<HashMap<String, seal::Key>>);
        impl seal::Keys for Ring {
            fn key(&self, id: &str) -> seal::Lookup {
                let mut ring = self.0.borrow_mut();
                let n = ring.len() as u8;
                seal::Lookup::Live(*ring.entry(id.to_string()).or_insert([n; 32]))
            }
        }
        let tenants = Tenants::builtin();
        let cfg = crate::demo::DemoConfig {
            people_per_tenant: 25,
            ..Default::default()
        };
        let ring = Ring(Default::default());
        let sealed: Vec<pb::Event> = crate::demo::events(&cfg, &tenants)
            .map(|mut e| {
                let id = seal::subject(&e);
                let seal::Lookup::Live(key) = seal::Keys::key(&ring, &id) else {
                    unreachable!()
                };
                seal::seal(&mut e, &id, &key, [7; seal::NONCE_LEN]);
                e
            })
            .collect();
        let fold = |keys: &dyn seal::Keys| {
            let mut kv = Mem::new();
            let mut dead = Vec::new();
            for (i, e) in sealed.iter().enumerate() {
                let pos = Position {
                    partition: 0,
                    offset: i as u64,
                };
                let raw = e.encode_to_vec();
                match apply(&mut kv, &tenants, pos, e.tenant.as_bytes(), &raw, keys).unwrap() {
                    Outcome::DeadLettered(why) => dead.push(format!(
                        "{}: {why}",
                        event::kind(e.payload.as_ref().unwrap())
                    )),
                    Outcome::Applied { .. } | Outcome::Duplicate => {}
                }
            }
            (kv, dead)
        };
        let (whole, dead) = fold(&ring);
        assert_eq!(dead, Vec::<String>::new(), "with every key");
        let (erased, dead) = fold(&seal::NoKeys);
        assert_eq!(dead, Vec::<String>::new(), "with no key");
        let figures = |kv: &Mem| {
            kv.range(b"st/".to_vec()..b"st0".to_vec())
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
                .collect::<Vec<_>>()
        };
        let (before, after) = (figures(&whole), figures(&erased));
        assert!(before.len() > 10, "{} counters", before.len());
        let differ: Vec<&String> = before
            .iter()
            .zip(&after)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| &a.0)
            .collect();
        assert_eq!(before.len(), after.len());
        assert_eq!(
            differ,
            Vec::<&String>::new(),
            "figures changed by the erasure"
        );
    }

    #[test]
    fn a_staged_write_is_kept_only_when_committed() {
        let mut kv = Mem::new();
        kv.put(b"a/1".to_vec(), b"x".to_vec());
        let mut s = Staged::new(&mut kv);
        s.put(b"a/2".to_vec(), b"y".to_vec());
        s.remove(b"a/1".to_vec());
        assert_eq!(s.get(b"a/1").unwrap(), None);
        assert_eq!(
            s.scan_prefix(b"a/", 10).unwrap(),
            vec![(b"a/2".to_vec(), b"y".to_vec())]
        );
        drop(s);
        assert_eq!(kv.len(), 1, "dropped: nothing written");
        let mut s = Staged::new(&mut kv);
        s.put(b"a/2".to_vec(), b"y".to_vec());
        s.commit();
        assert_eq!(kv.scan_prefix(b"a/", 1).unwrap().len(), 1, "limit");
        assert_eq!(kv.scan_prefix(b"a/", 10).unwrap().len(), 2);
        assert!(kv.scan_prefix(b"b/", 10).unwrap().is_empty());
    }

    #[test]
    fn calls_and_walk_ins_when_the_commune_is_closed_say_so() {
        use crate::courrier::paris_local_to_utc_us;
        let at = |m: u32, d: u32, h: u32| {
            paris_local_to_utc_us(
                chrono::NaiveDate::from_ymd_opt(2026, m, d)
                    .unwrap()
                    .and_hms_opt(h, 5, 0)
                    .unwrap(),
            )
        };
        let call = |id: &str, us: i64| {
            crate::event::contact(
                "69091",
                "asterisk",
                id,
                us,
                us,
                Payload::PhoneCall(pb::PhoneCall {
                    disposition: pb::phone_call::Disposition::Answered as i32,
                    duration_seconds: 60,
                    billed_seconds: 55,
                    ..Default::default()
                }),
                pb::Party {
                    phone: "06 12 34 56 78".into(),
                    ..Default::default()
                },
            )
        };
        let mut kv = Mem::new();
        // Monday 7 December 2026 at 10:05 and at 20:05; Christmas at 10:05.
        let tenants = Tenants::builtin();
        let events = [
            call("open", at(12, 7, 10)),
            call("evening", at(12, 7, 20)),
            call("christmas", at(12, 25, 10)),
        ]
        .map(|mut e| {
            crate::hours::mark(&mut e, &tenants);
            e
        });
        for out in apply_all(&mut kv, &events) {
            assert!(matches!(out, Outcome::Applied { .. }), "{out:?}");
        }
        let givors = tenants.get("69091").unwrap();
        let mut lines: Vec<(String, String)> = kv
            .scan_prefix(keys::Family::Timeline.prefix(), 10)
            .unwrap()
            .into_iter()
            .map(|(_, v)| {
                let entry = TimelineEntry::decode(v.as_slice()).unwrap();
                (
                    crate::event::fmt_us(
                        entry
                            .occurred_at
                            .as_ref()
                            .and_then(contacthub_proto::ts::to_micros)
                            .unwrap(),
                    ),
                    crate::render::summary(&entry, givors),
                )
            })
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                (
                    "2026-12-07T09:05:00Z".to_string(),
                    "Appel entrant, répondu (1 min 00 s)".to_string()
                ),
                (
                    "2026-12-07T19:05:00Z".to_string(),
                    "Appel entrant, répondu (1 min 00 s), hors des horaires d'ouverture"
                        .to_string()
                ),
                (
                    "2026-12-25T09:05:00Z".to_string(),
                    "Appel entrant, répondu (1 min 00 s), hors des horaires d'ouverture"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_refused_event_leaves_no_write() {
        // A scan attached to a letter that does not exist is refused after nothing else.
        let mut kv = Mem::new();
        let mut e = crate::event::contact(
            "69091",
            "t",
            "1",
            1_800_000_000_000_000,
            1_800_000_000_000_000,
            Payload::CourrierScanAttached(pb::CourrierScanAttached {
                chrono: "GIV-2026-000001".into(),
            }),
            Default::default(),
        );
        e.direction = pb::Direction::Internal as i32;
        let out = apply_all(&mut kv, &[e]);
        assert!(matches!(&out[0], Outcome::DeadLettered(r) if r.contains("unknown courrier")));
        let written: Vec<_> = kv
            .keys()
            .map(|k| String::from_utf8_lossy(&k[..3]).into_owned())
            .collect();
        assert_eq!(
            written,
            ["dl/", "st/"],
            "only the dead letter and its count"
        );
    }
}
