//! Folding one log record into the read model. Pure: all state goes through [`Kv`], so the
//! same code runs over sled (projector) and over a `BTreeMap` (tests, models).

use crate::courrier;
use crate::event::{self, is_contact, kind, Invalid, Valid};
use crate::identity::{fold_name, normalize_email, normalize_phone};
use crate::keys;
use crate::pb::{
    self, event::Payload, Citizen, CourrierEvent, CourrierState, DeadLetter, RequestState,
    TimelineEntry,
};
use crate::render::{excerpt, summary};
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

fn get_msg<M: Message + Default>(kv: &impl Kv, key: &[u8]) -> Result<Option<M>> {
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

/// Which per-commune phone counters a call moves (see [`keys::phone_counter`]): a bounce back
/// to the central accueil is counted apart from the inbound calls it bounces.
fn phone_figures(e: &pb::Event, call: &pb::PhoneCall) -> Vec<&'static str> {
    let inbound = e.direction != pb::Direction::Outbound as i32;
    let answered = call.disposition == pb::phone_call::Disposition::Answered as i32;
    match (inbound, call.bounced_to_accueil, answered) {
        (_, true, _) => vec![keys::PHONE_BOUNCED],
        (true, false, true) => vec![keys::PHONE_INBOUND],
        (true, false, false) => vec![keys::PHONE_INBOUND, keys::PHONE_MISSED],
        (false, false, _) => vec![keys::PHONE_OUTBOUND],
    }
}

fn bump(kv: &mut impl Kv, name: &str) -> Result<()> {
    let k = keys::counter(name);
    let n = kv.get(&k)?.map_or(0, |v| keys::read_u64(&v));
    kv.put(k, (n + 1).to_be_bytes().to_vec());
    Ok(())
}

/// Folds the record at `pos` (log key and value as read) into the read model.
pub fn apply(
    kv: &mut impl Kv,
    tenants: &Tenants,
    pos: Position,
    key: &[u8],
    raw: &[u8],
) -> Result<Outcome> {
    let mut event = match event::decode(raw) {
        Ok(e) => e,
        Err(invalid) => return dead_letter(kv, pos, key, raw, invalid),
    };
    let occurred_us = match event::validate(&event, tenants) {
        Ok(v) => v.occurred_us,
        Err(invalid) => return dead_letter(kv, pos, key, raw, invalid),
    };
    let applied_key = keys::applied(&event.tenant, &event.event_id);
    if kv.get(&applied_key)?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    // Validated above; giving a letter its chrono changes nothing validation looks at.
    assign_chrono(kv, tenants, &mut event)?;
    let Some(payload) = event.payload.as_ref() else {
        return dead_letter(kv, pos, key, raw, Invalid("missing payload".into()));
    };
    let valid = Valid {
        event: &event,
        payload,
        occurred_us,
    };
    let entries = match project(kv, tenants, &valid, pos)? {
        Ok(entries) => entries,
        Err(invalid) => return dead_letter(kv, pos, key, raw, invalid),
    };
    kv.put(
        applied_key,
        keys::applied_value(
            pos.partition,
            pos.offset,
            valid.occurred_us,
            &event.fingerprint,
            entries.first().map_or("", |e| e.citizen_id.as_str()),
        ),
    );
    // What the citizen wrote, beyond who they are (the party is in the entry and the citizen):
    // kept only when there is some, so calls and visits cost nothing here.
    if is_contact(payload) {
        if let Some(mut detail) = event.personal.take() {
            if !(detail.subject.is_empty()
                && detail.text.is_empty()
                && detail.fields.is_empty()
                && detail.attachment_names.is_empty())
            {
                detail.party = None;
                kv.put(
                    keys::contact_detail(&event.tenant, &event.event_id),
                    detail.encode_to_vec(),
                );
            }
        }
    }
    bump(kv, keys::COUNTER_APPLIED)?;
    if let Payload::PhoneCall(call) = payload {
        let month = courrier::paris(occurred_us).format("%Y-%m").to_string();
        for figure in phone_figures(&event, call) {
            bump(kv, &keys::phone_counter(&event.tenant, &month, figure))?;
        }
    }
    Ok(Outcome::Applied {
        tenant: event.tenant.clone(),
        entries,
    })
}

/// Gives an incoming letter without a number the next chrono of its commune and registration
/// year. Runs in log order, once per event id, so numbers are unique and gap-free, and a
/// replay assigns the very same ones.
fn assign_chrono(kv: &mut impl Kv, tenants: &Tenants, event: &mut pb::Event) -> Result<()> {
    let inbound = event.direction != pb::Direction::Outbound as i32;
    let recorded = event
        .recorded_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros);
    let (Some(Payload::Courrier(c)), true, Some(recorded), Some(tenant)) = (
        event.payload.as_mut(),
        inbound,
        recorded,
        tenants.get(&event.tenant),
    ) else {
        return Ok(());
    };
    if !c.chrono.is_empty() {
        return Ok(());
    }
    let year = courrier::registration_year(recorded);
    let ck = keys::chrono_counter(&tenant.code, year);
    let n = kv.get(&ck)?.map_or(1, |v| keys::read_u64(&v));
    kv.put(ck, (n + 1).to_be_bytes().to_vec());
    c.chrono = courrier::format_chrono(&tenant.prefix, year, n);
    Ok(())
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
    bump(kv, keys::COUNTER_DEAD)?;
    Ok(Outcome::DeadLettered(invalid.0))
}

/// Applies a validated event. The inner `Err` is a semantic refusal (dead letter).
fn project(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    pos: Position,
) -> Result<Result<Vec<TimelineEntry>, Invalid>> {
    let e = v.event;
    let tenant = &e.tenant;
    // A citizen id the contact named that no citizen of this commune has.
    let mut unknown_claim: Option<String> = None;
    let citizens: Vec<String> = match v.payload {
        Payload::RequestOpened(open) => {
            let (citizen, claimed) = resolve_party(kv, tenants, v)?;
            unknown_claim = claimed;
            let state = RequestState {
                request_id: e.request_id.clone(),
                tenant: tenant.clone(),
                citizen_id: citizen.clone(),
                kind: open.kind.clone(),
                status: pb::RequestStatus::Open as i32,
                opened_at: e.occurred_at,
                updated_at: e.occurred_at,
                ..Default::default()
            };
            kv.put(keys::request(tenant, &e.request_id), state.encode_to_vec());
            vec![citizen]
        }
        Payload::RequestAssigned(_)
        | Payload::RequestStatusChanged(_)
        | Payload::RequestAnswered(_)
        | Payload::RequestClosed(_) => {
            let rk = keys::request(tenant, &e.request_id);
            let Some(mut state) = get_msg::<RequestState>(kv, &rk)? else {
                return Ok(Err(Invalid(format!("unknown request {:?}", e.request_id))));
            };
            match v.payload {
                Payload::RequestAssigned(a) => {
                    state.service = a.service.clone();
                    state.assignee_agent_id = a.assignee_agent_id.clone();
                    if state.status == pb::RequestStatus::Open as i32 {
                        state.status = pb::RequestStatus::InProgress as i32;
                    }
                }
                Payload::RequestStatusChanged(s) => state.status = s.status,
                Payload::RequestAnswered(a) => {
                    state.status = pb::RequestStatus::Answered as i32;
                    state.answer_event_id = a.answer_event_id.clone();
                }
                _ => state.status = pb::RequestStatus::Closed as i32,
            }
            state.updated_at = e.occurred_at;
            let citizen = state.citizen_id.clone();
            kv.put(rk, state.encode_to_vec());
            vec![citizen]
        }
        Payload::CitizenRegistered(r) => {
            if kv.get(&keys::citizen(tenant, &r.citizen_id))?.is_some() {
                return Ok(Err(Invalid(format!(
                    "citizen {} already exists",
                    r.citizen_id
                ))));
            }
            let c = Citizen {
                citizen_id: r.citizen_id.clone(),
                tenant: tenant.clone(),
                ..Default::default()
            };
            put_citizen(kv, &c);
            index_party(kv, v, &r.citizen_id)?;
            vec![r.citizen_id.clone()]
        }
        Payload::HouseholdMembership(h) => {
            let Some(mut c) = get_msg::<Citizen>(kv, &keys::citizen(tenant, &h.citizen_id))? else {
                return Ok(Err(Invalid(format!("unknown citizen {}", h.citizen_id))));
            };
            let hk = keys::household_member(tenant, &h.household_id, &h.citizen_id);
            if h.member {
                kv.put(hk, h.role.as_bytes().to_vec());
                if !c.households.contains(&h.household_id) {
                    c.households.push(h.household_id.clone());
                }
            } else {
                kv.remove(hk);
                c.households.retain(|x| x != &h.household_id);
            }
            put_citizen(kv, &c);
            vec![h.citizen_id.clone()]
        }
        Payload::IdentityLinked(l) => {
            let (Some(mut from), Some(into)) = (
                get_msg::<Citizen>(kv, &keys::citizen(tenant, &l.citizen_id))?,
                get_msg::<Citizen>(kv, &keys::citizen(tenant, &l.into_citizen_id))?,
            ) else {
                return Ok(Err(Invalid(format!(
                    "unknown citizen {} or {}",
                    l.citizen_id, l.into_citizen_id
                ))));
            };
            if !from.merged_into.is_empty() {
                return Ok(Err(Invalid(format!(
                    "citizen {} is already merged into {}",
                    from.citizen_id, from.merged_into
                ))));
            }
            if canonical(kv, tenant, &into.citizen_id)? == from.citizen_id {
                return Ok(Err(Invalid(format!(
                    "merging {} into {} would make a cycle",
                    from.citizen_id, into.citizen_id
                ))));
            }
            from.merged_into = into.citizen_id.clone();
            kv.put(
                keys::merge_member(tenant, &into.citizen_id, &from.citizen_id),
                vec![],
            );
            put_citizen(kv, &from);
            put_citizen(kv, &into);
            vec![from.citizen_id]
        }
        Payload::IdentityUnlinked(u) => {
            let Some(mut c) = get_msg::<Citizen>(kv, &keys::citizen(tenant, &u.citizen_id))? else {
                return Ok(Err(Invalid(format!("unknown citizen {}", u.citizen_id))));
            };
            if c.merged_into != u.from_citizen_id {
                return Ok(Err(Invalid(format!(
                    "citizen {} is not merged into {}",
                    u.citizen_id, u.from_citizen_id
                ))));
            }
            c.merged_into.clear();
            kv.remove(keys::merge_member(
                tenant,
                &u.from_citizen_id,
                &u.citizen_id,
            ));
            put_citizen(kv, &c);
            vec![u.citizen_id.clone()]
        }
        Payload::CourrierRouted(pb::CourrierRouted { chrono, .. })
        | Payload::CourrierStep(pb::CourrierStep { chrono, .. })
        | Payload::CourrierAnswered(pb::CourrierAnswered { chrono, .. })
        | Payload::CourrierScanAttached(pb::CourrierScanAttached { chrono }) => {
            let ck = keys::courrier(tenant, chrono);
            let Some(mut state) = get_msg::<CourrierState>(kv, &ck)? else {
                return Ok(Err(Invalid(format!("unknown courrier {chrono:?}"))));
            };
            let (kind, service, note) = match v.payload {
                Payload::CourrierRouted(r) => {
                    let kind = if state.service.is_empty() {
                        "routed"
                    } else {
                        "reassigned"
                    };
                    state.service = r.service.clone();
                    if state.status == pb::CourrierStatus::Registered as i32 {
                        state.status = pb::CourrierStatus::Routed as i32;
                    }
                    (kind, r.service.clone(), r.note.clone())
                }
                Payload::CourrierStep(s) => (
                    "step",
                    state.service.clone(),
                    format!(
                        "{}{}{}",
                        s.step,
                        if s.note.is_empty() { "" } else { " : " },
                        s.note
                    ),
                ),
                Payload::CourrierAnswered(a) => {
                    state.status = pb::CourrierStatus::Answered as i32;
                    state.answered_at = e.occurred_at;
                    state.answer_channel = a.answer_channel;
                    state.answer_ref = a.answer_ref.clone();
                    ("answered", state.service.clone(), a.answer_ref.clone())
                }
                _ => {
                    state.scans.extend(e.attachments.iter().cloned());
                    ("scan", state.service.clone(), String::new())
                }
            };
            push_history(&mut state, e, kind, service, note, v.occurred_us);
            let citizen = state.citizen_id.clone();
            kv.put(ck, state.encode_to_vec());
            vec![citizen]
        }
        _ => {
            debug_assert!(is_contact(v.payload));
            let (citizen, claimed) = resolve_party(kv, tenants, v)?;
            unknown_claim = claimed;
            if let Payload::Courrier(c) = v.payload {
                if !c.chrono.is_empty() && e.direction != pb::Direction::Outbound as i32 {
                    register_courrier(kv, v, c, &citizen)?;
                }
            }
            vec![citizen]
        }
    };

    if let Some(claimed) = &unknown_claim {
        // For an agent to attach by hand ("à rattacher"); the claim is on the entry too.
        kv.put(
            keys::unresolved_claim(tenant, &e.event_id),
            claimed.as_bytes().to_vec(),
        );
    }
    let mut entries = Vec::with_capacity(citizens.len());
    for citizen_id in citizens {
        let mut entry = timeline_entry(v, &citizen_id, pos);
        if let Some(claimed) = &unknown_claim {
            entry.links.push(pb::Link {
                rel: "claimed_citizen".into(),
                target: claimed.clone(),
            });
        }
        let ck = keys::citizen(tenant, &citizen_id);
        if let Some(mut c) = get_msg::<Citizen>(kv, &ck)? {
            c.entries += 1;
            let occ = e.occurred_at;
            if c.first_seen.is_none() || ts_lt(occ, c.first_seen) {
                c.first_seen = occ;
            }
            if c.last_seen.is_none() || ts_lt(c.last_seen, occ) {
                c.last_seen = occ;
            }
            kv.put(ck, c.encode_to_vec());
        }
        kv.put(
            keys::timeline_entry(tenant, &citizen_id, v.occurred_us, &e.event_id),
            entry.encode_to_vec(),
        );
        entries.push(entry);
    }
    Ok(Ok(entries))
}

fn push_history(
    state: &mut CourrierState,
    e: &pb::Event,
    kind: &str,
    service: String,
    note: String,
    at_us: i64,
) {
    let previous = state
        .history
        .last()
        .and_then(|h| h.at.as_ref())
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(at_us);
    state.history.push(CourrierEvent {
        event_id: e.event_id.clone(),
        at: Some(contacthub_proto::ts::from_micros(at_us)),
        kind: kind.into(),
        service,
        agent_id: e.agent_id.clone(),
        note,
        seconds_since_previous: (at_us - previous) / 1_000_000,
    });
}

/// Creates the mail-room record of an incoming letter.
fn register_courrier(kv: &mut impl Kv, v: &Valid, c: &pb::Courrier, citizen: &str) -> Result<()> {
    let e = v.event;
    let ck = keys::courrier(&e.tenant, &c.chrono);
    if kv.get(&ck)?.is_some() {
        // A number given by an import that is already taken: keep the first letter's record.
        return Ok(());
    }
    let personal = e.personal.clone().unwrap_or_default();
    let party = personal.party.unwrap_or_default();
    let mut state = CourrierState {
        chrono: c.chrono.clone(),
        tenant: e.tenant.clone(),
        event_id: e.event_id.clone(),
        citizen_id: citizen.to_string(),
        kind: c.kind,
        tracking_number: c.tracking_number.clone(),
        subject: personal.subject,
        category: e.category,
        addressed_to_service: c.addressed_to_service.clone(),
        status: pb::CourrierStatus::Registered as i32,
        received_at: e.occurred_at,
        registered_at: e.recorded_at,
        scans: e.attachments.clone(),
        sender_display: if party.name.is_empty() {
            citizen.to_string()
        } else {
            party.name
        },
        ..Default::default()
    };
    let at = e
        .recorded_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(v.occurred_us);
    push_history(
        &mut state,
        e,
        "registered",
        c.addressed_to_service.clone(),
        String::new(),
        at,
    );
    kv.put(ck, state.encode_to_vec());
    kv.put(
        keys::courrier_by_event(&e.tenant, &e.event_id),
        c.chrono.as_bytes().to_vec(),
    );
    Ok(())
}

fn ts_lt(a: Option<contacthub_proto::Timestamp>, b: Option<contacthub_proto::Timestamp>) -> bool {
    let k = |t: Option<contacthub_proto::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    k(a) < k(b)
}

fn put_citizen(kv: &mut impl Kv, c: &Citizen) {
    kv.put(keys::citizen(&c.tenant, &c.citizen_id), c.encode_to_vec());
}

fn load_or_create(kv: &mut impl Kv, tenant: &str, id: &str) -> Result<Citizen> {
    Ok(
        get_msg::<Citizen>(kv, &keys::citizen(tenant, id))?.unwrap_or_else(|| Citizen {
            citizen_id: id.to_string(),
            tenant: tenant.to_string(),
            ..Default::default()
        }),
    )
}

/// The citizen a (possibly merged) citizen id stands for now.
pub fn canonical(kv: &impl Kv, tenant: &str, id: &str) -> Result<String> {
    let mut id = id.to_string();
    // Merges are acyclic (checked on link); the bound only guards corrupt data.
    for _ in 0..64 {
        match get_msg::<Citizen>(kv, &keys::citizen(tenant, &id))? {
            Some(c) if !c.merged_into.is_empty() => id = c.merged_into,
            _ => break,
        }
    }
    Ok(id)
}

/// Finds or creates the citizen of a contact's party and indexes its identifiers. A citizen
/// id the party names is used only when that citizen exists in this commune; otherwise the
/// contact is resolved by its identifiers like any other, and the claimed id is returned so
/// the mismatch is kept for an agent. Nobody outside the projector can choose the citizen a
/// contact creates.
fn resolve_party(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
) -> Result<(String, Option<String>)> {
    let e = v.event;
    let tenant = &e.tenant;
    let party = party_of(e);
    let mut claimed_unknown = None;
    let mut found = None;
    if !party.citizen_id.is_empty() {
        if kv.get(&keys::citizen(tenant, &party.citizen_id))?.is_some() {
            found = Some(party.citizen_id.clone());
        } else {
            claimed_unknown = Some(party.citizen_id.clone());
        }
    }
    if found.is_none() {
        for (kind, value) in identifiers(&party) {
            if let Some(c) = kv.get(&keys::identifier(tenant, kind, &value))? {
                found = Some(String::from_utf8_lossy(&c).into_owned());
                break;
            }
        }
    }
    let citizen_id = match found {
        Some(id) => id,
        None => {
            let sk = keys::sequence(tenant);
            let n = kv.get(&sk)?.map_or(1, |v| keys::read_u64(&v));
            kv.put(sk, (n + 1).to_be_bytes().to_vec());
            let prefix = tenants.get(tenant).map_or("X", |t| t.prefix.as_str());
            let id = format!("{prefix}-P{n:06}");
            put_citizen(
                kv,
                &Citizen {
                    citizen_id: id.clone(),
                    tenant: tenant.clone(),
                    provisional: true,
                    ..Default::default()
                },
            );
            id
        }
    };
    index_party(kv, v, &citizen_id)?;
    Ok((citizen_id, claimed_unknown))
}

/// The party of an event (empty when it names none).
fn party_of(e: &pb::Event) -> pb::Party {
    e.personal
        .as_ref()
        .and_then(|p| p.party.as_ref())
        .cloned()
        .unwrap_or_default()
}

/// The normalised phone and e-mail of a party, as (`phone`|`email`, value).
fn identifiers(party: &pb::Party) -> Vec<(&'static str, String)> {
    normalize_phone(&party.phone)
        .map(|p| ("phone", p))
        .into_iter()
        .chain(normalize_email(&party.email).map(|m| ("email", m)))
        .collect()
}

/// Adds the party's identifiers and name to an existing citizen record, and indexes the
/// identifiers no other citizen holds yet.
fn index_party(kv: &mut impl Kv, v: &Valid, citizen_id: &str) -> Result<()> {
    let e = v.event;
    let tenant = &e.tenant;
    let party = party_of(e);
    let mut c = load_or_create(kv, tenant, citizen_id)?;
    for (kind, value) in identifiers(&party) {
        let ik = keys::identifier(tenant, kind, &value);
        if kv.get(&ik)?.is_none() {
            kv.put(ik, citizen_id.as_bytes().to_vec());
        }
        let list = if kind == "phone" {
            &mut c.phones
        } else {
            &mut c.emails
        };
        if !list.contains(&value) {
            list.push(value);
        }
    }
    if c.display_name.is_empty() && !fold_name(&party.name).is_empty() {
        c.display_name = party.name.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    put_citizen(kv, &c);
    Ok(())
}

fn timeline_entry(v: &Valid, citizen_id: &str, pos: Position) -> TimelineEntry {
    let e = v.event;
    let personal = e.personal.clone().unwrap_or_default();
    let party = personal.party.clone().unwrap_or_default();
    let mut links = Vec::new();
    let mut link = |rel: &str, target: &str| {
        if !target.is_empty() {
            links.push(pb::Link {
                rel: rel.into(),
                target: target.into(),
            });
        }
    };
    link("request", &e.request_id);
    match v.payload {
        Payload::Courrier(c) => link("chrono", &c.chrono),
        Payload::WebForm(w) => link("submission_id", &w.submission_id),
        Payload::Email(m) => {
            link("message_id", &m.message_id);
            link("in_reply_to", &m.in_reply_to);
            if m.thread_id != m.message_id {
                link("thread", &m.thread_id);
            }
        }
        Payload::Sms(s) => link("message_sid", &s.message_sid),
        Payload::IdentityLinked(l) => link("merged_into", &l.into_citizen_id),
        Payload::IdentityUnlinked(u) => link("unmerged_from", &u.from_citizen_id),
        Payload::HouseholdMembership(h) => link("household", &h.household_id),
        Payload::RequestAnswered(a) => link("answer", &a.answer_event_id),
        Payload::CourrierRouted(pb::CourrierRouted { chrono, .. })
        | Payload::CourrierStep(pb::CourrierStep { chrono, .. })
        | Payload::CourrierScanAttached(pb::CourrierScanAttached { chrono }) => {
            link("chrono", chrono)
        }
        Payload::CourrierAnswered(a) => {
            link("chrono", &a.chrono);
            link("answer", &a.answer_ref);
        }
        _ => {}
    }
    let party_identifier = normalize_phone(&party.phone)
        .or_else(|| normalize_email(&party.email))
        .unwrap_or_else(|| party.name.clone());
    TimelineEntry {
        event_id: e.event_id.clone(),
        citizen_id: citizen_id.to_string(),
        channel: e.channel,
        occurred_at: e.occurred_at,
        direction: e.direction,
        category: e.category,
        kind: kind(v.payload).to_string(),
        subject: personal.subject.clone(),
        summary: summary(e, v.payload),
        request_id: e.request_id.clone(),
        attachments: e.attachments.clone(),
        links,
        agent_id: e.agent_id.clone(),
        partition: pos.partition,
        offset: pos.offset,
        excerpt: excerpt(&personal.text),
        party_identifier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::contact;

    type Mem = BTreeMap<Vec<u8>, Vec<u8>>;

    fn apply_all(kv: &mut Mem, events: &[pb::Event]) -> Vec<Outcome> {
        let tenants = Tenants::builtin();
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let pos = Position {
                    partition: 0,
                    offset: i as u64,
                };
                apply(kv, &tenants, pos, e.tenant.as_bytes(), &e.encode_to_vec()).unwrap()
            })
            .collect()
    }

    fn form(id: &str, citizen_id: &str, email: &str) -> pb::Event {
        contact(
            "69091",
            "test-form",
            id,
            1_800_000_000_000_000,
            1_800_000_000_000_000,
            Payload::WebForm(pb::WebForm {
                form_slug: "x".into(),
                submission_id: id.into(),
            }),
            pb::Party {
                citizen_id: citizen_id.into(),
                email: email.into(),
                name: "Someone".into(),
                ..Default::default()
            },
        )
    }

    fn sms(id: &str, phone: &str) -> pb::Event {
        contact(
            "69091",
            "test-sms",
            id,
            1_800_000_000_000_000,
            1_800_000_000_000_000,
            Payload::Sms(pb::Sms {
                message_sid: id.into(),
                ..Default::default()
            }),
            pb::Party {
                phone: phone.into(),
                ..Default::default()
            },
        )
    }

    fn citizen_of(outcome: &Outcome) -> (String, Vec<pb::Link>) {
        match outcome {
            Outcome::Applied { entries, .. } => {
                (entries[0].citizen_id.clone(), entries[0].links.clone())
            }
            other => panic!("not applied: {other:?}"),
        }
    }

    #[test]
    fn a_claimed_citizen_id_must_exist_and_provisional_ids_cannot_be_squatted() {
        let mut kv = Mem::new();
        // An attacker names the next provisional id, with their own e-mail.
        let out = apply_all(
            &mut kv,
            &[
                form("f1", "GIV-P000001", "attacker@example.fr"),
                sms("s1", "06 12 34 56 78"),
            ],
        );
        let (attacker, links) = citizen_of(&out[0]);
        assert_eq!(attacker, "GIV-P000001", "resolved by its own identifiers");
        assert!(links
            .iter()
            .any(|l| l.rel == "claimed_citizen" && l.target == "GIV-P000001"));
        assert!(kv.contains_key(&keys::unresolved_claim("69091", &out_event_id("f1"))));
        let (victim, _) = citizen_of(&out[1]);
        assert_eq!(
            victim, "GIV-P000002",
            "the next unknown sender is someone else"
        );
        let attacker_record: Citizen = get_msg(&kv, &keys::citizen("69091", &attacker))
            .unwrap()
            .unwrap();
        assert!(attacker_record.phones.is_empty(), "{attacker_record:?}");
    }

    fn out_event_id(source_id: &str) -> String {
        crate::event::event_id("69091", "test-form", source_id)
    }

    #[test]
    fn a_registered_citizen_can_be_named_and_not_registered_twice() {
        let mut kv = Mem::new();
        let mut reg = contact(
            "69091",
            "test-register",
            "r1",
            1_800_000_000_000_000,
            1_800_000_000_000_000,
            Payload::CitizenRegistered(pb::CitizenRegistered {
                citizen_id: "GIV-000001".into(),
            }),
            pb::Party {
                name: "Marie Durand".into(),
                phone: "0612345678".into(),
                ..Default::default()
            },
        );
        reg.direction = pb::Direction::Internal as i32;
        let mut again = reg.clone();
        again.event_id = crate::event::event_id("69091", "test-register", "r2");
        let out = apply_all(
            &mut kv,
            &[reg, form("f1", "GIV-000001", "marie@example.fr"), again],
        );
        let (c, links) = citizen_of(&out[1]);
        assert_eq!(c, "GIV-000001");
        assert!(links.iter().all(|l| l.rel != "claimed_citizen"));
        assert!(
            matches!(&out[2], Outcome::DeadLettered(r) if r.contains("already exists")),
            "{:?}",
            out[2]
        );
        let record: Citizen = get_msg(&kv, &keys::citizen("69091", "GIV-000001"))
            .unwrap()
            .unwrap();
        assert_eq!(record.display_name, "Marie Durand");
        assert_eq!(record.phones, ["+33612345678"]);
        assert_eq!(record.emails, ["marie@example.fr"]);
        assert!(!record.provisional);
    }
}
