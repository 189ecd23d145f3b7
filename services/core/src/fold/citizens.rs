//! The citizen aggregate: who a contact's party is (identity resolution), citizen records
//! (registration, correction), merges, households, and the search index of names and
//! addresses.
//!
//! A contact naming a citizen id is attached to it only if that citizen exists in the
//! commune; otherwise it is resolved by its identifiers and the claim is returned for an
//! agent. Provisional ids (`PREFIX-P000123`) and registered ids (`PREFIX-000123`) come from
//! per-commune sequences in log order, so a replay gives the same ids.

use super::{get_msg, Folded, Kv};
use crate::event::{Invalid, Valid};
use crate::identity::{fold_name, normalize_email, normalize_phone};
use crate::keys;
use crate::pb::{self, Citizen};
use crate::search;
use crate::tenant::Tenants;
use crate::Result;
use prost::Message;

/// Writes a citizen record, and its card ([`keys::Card`]): the record without its counts of
/// contacts, which the card holds (a contact rewrites the card alone: [`count_contact`]).
pub(crate) fn put_citizen(kv: &mut impl Kv, c: &Citizen) {
    let micros = |t: &Option<contacthub_proto::Timestamp>| {
        t.as_ref()
            .and_then(contacthub_proto::ts::to_micros)
            .unwrap_or(i64::MIN)
    };
    let card = keys::Card {
        entries: c.entries,
        first_seen_us: micros(&c.first_seen),
        last_seen_us: micros(&c.last_seen),
        merged_into: c.merged_into.clone(),
    };
    let record = Citizen {
        entries: 0,
        first_seen: None,
        last_seen: None,
        ..c.clone()
    };
    kv.put(
        keys::citizen(&c.tenant, &c.citizen_id),
        record.encode_to_vec(),
    );
    kv.put(keys::search_card(&c.tenant, &c.citizen_id), card.encode());
}

/// Counts a contact at `at_us` on `citizen`'s card (none when no such citizen is here).
pub(crate) fn count_contact(
    kv: &mut impl Kv,
    tenant: &str,
    citizen: &str,
    at_us: i64,
) -> Result<()> {
    let key = keys::search_card(tenant, citizen);
    let Some(mut card) = kv.get(&key)?.and_then(|v| keys::Card::decode(&v)) else {
        return Ok(());
    };
    card.entries = card.entries.saturating_add(1);
    if card.first_seen_us == i64::MIN || at_us < card.first_seen_us {
        card.first_seen_us = at_us;
    }
    if card.last_seen_us == i64::MIN || card.last_seen_us < at_us {
        card.last_seen_us = at_us;
    }
    kv.put(key, card.encode());
    Ok(())
}

/// The record of `id` as stored (not followed through merges), with its counts of contacts.
pub fn record(kv: &impl Kv, tenant: &str, id: &str) -> Result<Option<Citizen>> {
    load(kv, tenant, id)
}

fn load(kv: &impl Kv, tenant: &str, id: &str) -> Result<Option<Citizen>> {
    let Some(mut c) = get_msg::<Citizen>(kv, &keys::citizen(tenant, id))? else {
        return Ok(None);
    };
    if let Some(card) = kv
        .get(&keys::search_card(tenant, id))?
        .and_then(|v| keys::Card::decode(&v))
    {
        with_card(&mut c, &card);
    }
    Ok(Some(c))
}

/// Fills a record's counts of contacts from its card.
pub fn with_card(c: &mut Citizen, card: &keys::Card) {
    let at = |us: i64| (us != i64::MIN).then(|| contacthub_proto::ts::from_micros(us));
    c.entries = card.entries;
    c.first_seen = at(card.first_seen_us);
    c.last_seen = at(card.last_seen_us);
}

/// The citizen a (possibly merged) citizen id stands for now.
pub fn canonical(kv: &impl Kv, tenant: &str, id: &str) -> Result<String> {
    let mut id = id.to_string();
    // Merges are acyclic (checked on link); the bound only guards corrupt data.
    for _ in 0..64 {
        match kv
            .get(&keys::search_card(tenant, &id))?
            .and_then(|v| keys::Card::decode(&v))
        {
            Some(card) if !card.merged_into.is_empty() => id = card.merged_into,
            _ => break,
        }
    }
    Ok(id)
}

/// The party of an event (empty when it names none).
fn party_of(e: &pb::Event) -> pb::Party {
    e.personal
        .as_ref()
        .and_then(|p| p.party.as_ref())
        .cloned()
        .unwrap_or_default()
}

/// The normalised phones and e-mails of a party and an identity, as (`phone`|`email`, value).
fn identifiers(party: &pb::Party, identity: Option<&pb::Identity>) -> Vec<(&'static str, String)> {
    let phones = std::iter::once(&party.phone)
        .chain(identity.into_iter().flat_map(|i| i.phones.iter()))
        .filter_map(|p| normalize_phone(p).map(|p| ("phone", p)));
    let emails = std::iter::once(&party.email)
        .chain(identity.into_iter().flat_map(|i| i.emails.iter()))
        .filter_map(|m| normalize_email(m).map(|m| ("email", m)));
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for id in phones.chain(emails) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Where a contact goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// To this citizen; `claimed` is a citizen id it named that no citizen has.
    Attached {
        citizen: String,
        claimed: Option<String>,
    },
    /// Nowhere yet: its identifiers are held by several citizens; an agent attaches it.
    Waiting {
        candidates: Vec<String>,
        claimed: Option<String>,
    },
}

/// Every citizen holding an identifier, as they stand now (merged records as the record they
/// joined), without repeats.
fn holders(kv: &impl Kv, tenant: &str, kind: &str, value: &str) -> Result<Vec<String>> {
    let prefix = keys::identifier_holders_prefix(tenant, kind, value);
    let mut out: Vec<String> = Vec::new();
    for (k, _) in kv.scan_prefix(&prefix, 100)? {
        let id = canonical(kv, tenant, &String::from_utf8_lossy(&k[prefix.len()..]))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Finds the citizen of a contact's party: the citizen id it names if that citizen exists;
/// else the one citizen holding its phone or e-mail; else a new provisional citizen. When
/// several citizens hold its identifiers (a family landline, a shared mailbox), the contact
/// waits for an agent instead of going to the first one.
///
/// What the sender merely declares is not proof: an online form ([`self_declared`]) is
/// attached to the citizen id it names only when every identifier it gives is already that
/// citizen's (otherwise it waits for an agent, the claim as a candidate); it never adds an
/// identifier to a confirmed record, and the identifiers of a provisional record it creates
/// are shown on it but never indexed, so no SMS or call is attached to that record by a
/// number someone typed into a form.
/// The provisional number of an event that may make a provisional record (a contact, a request
/// opened for a party): taken by every such event its writer did not name a citizen for,
/// whether it makes a provisional record or not, erased or not — so the numbers stay where
/// they were when an erasure makes the read model again from a log where some of these
/// events no longer say who they came from.
pub(crate) fn number_for(kv: &mut impl Kv, v: &Valid) -> Result<Option<u64>> {
    let e = v.event;
    let sealed_with = e.sealed.as_ref().map_or(v.key_id, |s| s.key_id.as_str());
    let unnamed = sealed_with.starts_with("e/")
        || (sealed_with.is_empty() && party_of(e).citizen_id.is_empty());
    if unnamed {
        take_number(kv, &e.tenant).map(Some)
    } else {
        Ok(None)
    }
}

/// The provisional record an erased contact may have made (its number `n`), as an erased
/// shell: what the agents did with it afterwards (a request for it, a merge, a contact
/// attached to it) still folds, and the erasure that follows says when, by whom and why. A
/// contact that had gone to a known person leaves a shell nobody names.
pub(crate) fn erased_shell(kv: &mut impl Kv, tenants: &Tenants, v: &Valid, n: u64) -> Result<()> {
    let tenant = &v.event.tenant;
    let prefix = tenants.get(tenant).map_or("X", |t| t.prefix.as_str());
    let id = format!("{prefix}-P{n:06}");
    if load(kv, tenant, &id)?.is_none() {
        put_citizen(
            kv,
            &Citizen {
                citizen_id: id,
                tenant: tenant.clone(),
                provisional: true,
                erased: Some(pb::Erasure {
                    at: v.event.occurred_at,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }
    Ok(())
}

/// The next provisional number of `tenant`, taken.
fn take_number(kv: &mut impl Kv, tenant: &str) -> Result<u64> {
    let sk = keys::sequence(tenant);
    let n = kv.get(&sk)?.map_or(1, |v| keys::read_u64(&v));
    kv.put(sk, (n + 1).to_be_bytes().to_vec());
    Ok(n)
}

/// `number`: the provisional number the contact took ([`take_number`]), the one a
/// provisional record it makes gets.
pub(crate) fn resolve_party(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    number: Option<u64>,
) -> Result<Resolution> {
    let e = v.event;
    let tenant = &e.tenant;
    let party = party_of(e);
    let declared = self_declared(e);
    let mut claimed = None;
    let mut found = None;
    let mut all: Vec<String> = Vec::new();
    let mut unheld = false;
    for (kind, value) in identifiers(&party, None) {
        let mut held = holders(kv, tenant, kind, &value)?;
        // A form is also matched with what earlier forms declared.
        if declared {
            for h in holders(kv, tenant, declared_kind(kind), &value)? {
                if !held.contains(&h) {
                    held.push(h);
                }
            }
        }
        unheld |= held.is_empty();
        for h in held {
            if !all.contains(&h) {
                all.push(h);
            }
        }
    }
    if !party.citizen_id.is_empty() {
        // An erased record is no one to attach to: its id is an unknown claim.
        let live = load(kv, tenant, &party.citizen_id)?.filter(|c| c.erased.is_none());
        if live.is_some() {
            let named = canonical(kv, tenant, &party.citizen_id)?;
            let consistent = !unheld && all.iter().all(|h| *h == named);
            if declared && !consistent {
                let mut candidates = all.clone();
                if !candidates.contains(&named) {
                    candidates.push(named);
                }
                candidates.sort();
                return Ok(Resolution::Waiting {
                    candidates,
                    claimed: None,
                });
            }
            found = Some(party.citizen_id.clone());
        } else {
            claimed = Some(party.citizen_id.clone());
        }
    }
    if found.is_none() {
        match all.len() {
            0 => {}
            1 => found = all.pop(),
            _ => {
                all.sort();
                return Ok(Resolution::Waiting {
                    candidates: all,
                    claimed,
                });
            }
        }
    }
    let citizen_id = match found {
        Some(id) => id,
        None => {
            let n = match number {
                Some(n) => n,
                None => take_number(kv, tenant)?,
            };
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
    let Some(mut c) = load(kv, tenant, &citizen_id)? else {
        return Ok(Resolution::Attached {
            citizen: citizen_id,
            claimed,
        });
    };
    let before = c.clone();
    if !declared {
        add_identifiers(kv, &mut c, &party, None)?;
    } else if c.provisional {
        // On the record and found by agents, but indexed apart: only forms are matched
        // with it, never a call, an SMS or an e-mail.
        for (kind, value) in identifiers(&party, None) {
            let holder = keys::identifier_holder(tenant, declared_kind(kind), &value, &citizen_id);
            if kv.get(&holder)?.is_none() {
                kv.put(holder, Vec::new());
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
    }
    if c.display_name.is_empty() && !fold_name(&party.name).is_empty() {
        c.display_name = party.name.split_whitespace().collect::<Vec<_>>().join(" ");
        reindex(kv, &c, None)?;
    }
    // Most contacts come from what the record already holds: nothing to write then.
    if c != before {
        put_citizen(kv, &c);
    }
    Ok(Resolution::Attached {
        citizen: citizen_id,
        claimed,
    })
}

/// The holder index of identifiers only declared in a form (`phone?`, `email?`): agents find
/// a record by them, later forms are matched with them, no other contact is.
pub fn declared_kind(kind: &str) -> &'static str {
    if kind == "phone" {
        "phone?"
    } else {
        "email?"
    }
}

/// Whether a contact's party is only what its sender declared, with nothing proving it: an
/// online form (anyone may type any name, number, e-mail or citizen id into one). A call or an
/// SMS comes from its number, an e-mail from its mailbox; an agent wrote the others.
pub(crate) fn self_declared(e: &pb::Event) -> bool {
    crate::event::declared_by_sender(e)
}

/// A waiting contact attached by an agent: its entry goes to the citizen's timeline.
pub(crate) fn attach(kv: &mut impl Kv, v: &Valid, a: &pb::ContactAttached) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::unresolved_claim(tenant, &a.contact_event_id);
    let Some(waiting) = get_msg::<pb::Unresolved>(kv, &key)? else {
        // A contact erased since (it says no more who it came from, and waits for no one):
        // nothing to attach, and nothing wrong.
        let done = kv
            .get(&keys::applied(tenant, &a.contact_event_id))?
            .and_then(|v| keys::Applied::decode(&v));
        if done.is_some_and(|d| d.citizen.is_empty()) {
            return Ok(Ok(Vec::new()));
        }
        return Ok(Err(Invalid(format!(
            "contact {} is not waiting to be attached",
            a.contact_event_id
        ))));
    };
    if !waiting.attached_to.is_empty() {
        return Ok(Err(Invalid(format!(
            "contact {} is already attached to {}",
            a.contact_event_id, waiting.attached_to
        ))));
    }
    if load(kv, tenant, &a.citizen_id)?.is_none() {
        return Ok(Err(Invalid(format!("unknown citizen {}", a.citizen_id))));
    }
    let mut entry = waiting.entry.unwrap_or_default();
    entry.citizen_id = a.citizen_id.clone();
    super::timeline::put_entry(kv, tenant, &entry)?;
    // Its key is the citizen's to erase from now on.
    if !entry.key_id.is_empty() {
        super::file_key(kv, tenant, &a.citizen_id, &entry.key_id)?;
    }
    let ak = keys::applied(tenant, &a.contact_event_id);
    if let Some(mut done) = kv.get(&ak)?.and_then(|v| keys::Applied::decode(&v)) {
        done.citizen = a.citizen_id.clone();
        kv.put(ak, done.encode());
    }
    kv.remove(key);
    Ok(Ok(vec![a.citizen_id.clone()]))
}

/// Two citizens an agent said are different people: not proposed as duplicates again.
pub(crate) fn dismiss(
    kv: &mut impl Kv,
    v: &Valid,
    d: &pb::DuplicateDismissed,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    for id in [&d.citizen_id, &d.other_citizen_id] {
        if load(kv, tenant, id)?.is_none() {
            return Ok(Err(Invalid(format!("unknown citizen {id}"))));
        }
    }
    kv.put(
        keys::duplicate_dismissed(tenant, &d.citizen_id, &d.other_citizen_id),
        Vec::new(),
    );
    Ok(Ok(vec![d.citizen_id.clone()]))
}

/// Adds identifiers to a citizen record and records it as one of their holders.
fn add_identifiers(
    kv: &mut impl Kv,
    c: &mut Citizen,
    party: &pb::Party,
    identity: Option<&pb::Identity>,
) -> Result<()> {
    for (kind, value) in identifiers(party, identity) {
        let ik = keys::identifier(&c.tenant, kind, &value);
        if kv.get(&ik)?.is_none() {
            kv.put(ik, c.citizen_id.as_bytes().to_vec());
        }
        // Every holder is known: a shared identifier resolves no contact by itself.
        let holder = keys::identifier_holder(&c.tenant, kind, &value, &c.citizen_id);
        if kv.get(&holder)?.is_none() {
            kv.put(holder, Vec::new());
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
    Ok(())
}

/// The name an agent reads for an identity: first names and usage name (else birth name).
pub fn display_name(i: &pb::Identity) -> String {
    let last = if i.usage_name.trim().is_empty() {
        &i.birth_name
    } else {
        &i.usage_name
    };
    format!("{} {}", i.first_names.trim(), last.trim())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces the search index of a citizen: removes the words of `before` (the record as it
/// was), adds those of `c`.
fn reindex(kv: &mut impl Kv, c: &Citizen, before: Option<&Citizen>) -> Result<()> {
    if let Some(b) = before {
        let old = search::words(b.identity.as_ref(), &b.display_name);
        for k in search::index_keys(&b.tenant, &b.citizen_id, &old) {
            kv.remove(k);
        }
    }
    let new = search::words(c.identity.as_ref(), &c.display_name);
    for k in search::index_keys(&c.tenant, &c.citizen_id, &new) {
        kv.put(k, Vec::new());
    }
    Ok(())
}

/// A new citizen record; its id given, or the commune's next free number.
pub(crate) fn register(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    r: &pb::CitizenRegistered,
) -> Folded<Vec<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let id = if r.citizen_id.is_empty() {
        let prefix = tenants.get(tenant).map_or("X", |t| t.prefix.as_str());
        let sk = keys::citizen_sequence(tenant);
        let mut n = kv.get(&sk)?.map_or(1, |v| keys::read_u64(&v));
        // Ids given by imports may have taken numbers: the next free one.
        let id = loop {
            let id = format!("{prefix}-{n:06}");
            n += 1;
            if kv.get(&keys::citizen(tenant, &id))?.is_none() {
                break id;
            }
        };
        kv.put(sk, n.to_be_bytes().to_vec());
        id
    } else {
        if kv.get(&keys::citizen(tenant, &r.citizen_id))?.is_some() {
            return Ok(Err(Invalid(format!(
                "citizen {} already exists",
                r.citizen_id
            ))));
        }
        r.citizen_id.clone()
    };
    let party = party_of(e);
    let identity = e.personal.as_ref().and_then(|p| p.identity.clone());
    let mut c = Citizen {
        citizen_id: id.clone(),
        tenant: tenant.clone(),
        display_name: match &identity {
            Some(i) => display_name(i),
            None => party.name.split_whitespace().collect::<Vec<_>>().join(" "),
        },
        updated_by: e.agent_id.clone(),
        updated_at: e.occurred_at,
        ..Default::default()
    };
    add_identifiers(kv, &mut c, &party, identity.as_ref())?;
    c.identity = identity;
    reindex(kv, &c, None)?;
    put_citizen(kv, &c);
    Ok(Ok(vec![id]))
}

/// A corrected or completed record: the identity replaced, identifiers added, the search
/// index rebuilt; a provisional citizen becomes a confirmed one.
pub(crate) fn update(kv: &mut impl Kv, v: &Valid, u: &pb::CitizenUpdated) -> Folded<Vec<String>> {
    let e = v.event;
    let Some(before) = load(kv, &e.tenant, &u.citizen_id)? else {
        return Ok(Err(Invalid(format!("unknown citizen {}", u.citizen_id))));
    };
    let Some(identity) = e.personal.as_ref().and_then(|p| p.identity.clone()) else {
        return Ok(Err(Invalid("citizen_updated without an identity".into())));
    };
    let mut c = before.clone();
    c.provisional = false;
    c.display_name = display_name(&identity);
    c.updated_by = e.agent_id.clone();
    c.updated_at = e.occurred_at;
    add_identifiers(kv, &mut c, &pb::Party::default(), Some(&identity))?;
    c.identity = Some(identity);
    reindex(kv, &c, Some(&before))?;
    put_citizen(kv, &c);
    Ok(Ok(vec![u.citizen_id.clone()]))
}

pub(crate) fn household(
    kv: &mut impl Kv,
    v: &Valid,
    h: &pb::HouseholdMembership,
) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let Some(mut c) = load(kv, tenant, &h.citizen_id)? else {
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
    Ok(Ok(vec![h.citizen_id.clone()]))
}

/// `l.citizen_id` is the same person as `l.into_citizen_id`: a read-time union, so an unmerge
/// is exact.
pub(crate) fn link(kv: &mut impl Kv, v: &Valid, l: &pb::IdentityLinked) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let (Some(mut from), Some(into)) = (
        load(kv, tenant, &l.citizen_id)?,
        load(kv, tenant, &l.into_citizen_id)?,
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
    Ok(Ok(vec![from.citizen_id]))
}

/// A citizen's data erased: the record, and those merged into it, kept as shells that say
/// when, by whom and why, nothing else; their timelines emptied with the contacts' details
/// (the erasure's one line is written next). Events sealed with the destroyed keys fold
/// without their personal part from now on, so a replay comes to the same.
///
/// A provisional record exists only through the contacts that made it: once they no longer say
/// who they came from (their keys destroyed), a fold from the log does not make it again, and
/// its shell is made here.
pub(crate) fn erase(kv: &mut impl Kv, v: &Valid, x: &pb::CitizenErased) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    for id in std::iter::once(&x.citizen_id).chain(&x.merged_citizen_ids) {
        if load(kv, tenant, id)?.is_none() {
            if !crate::event::is_provisional_id(id) {
                return Ok(Err(Invalid(format!("unknown citizen {id}"))));
            }
            put_citizen(
                kv,
                &Citizen {
                    citizen_id: id.clone(),
                    tenant: tenant.clone(),
                    provisional: true,
                    merged_into: if *id == x.citizen_id {
                        String::new()
                    } else {
                        x.citizen_id.clone()
                    },
                    ..Default::default()
                },
            );
        }
    }
    let erasure = pb::Erasure {
        at: v.event.occurred_at,
        by: v.event.agent_id.clone(),
        reason: x.reason.clone(),
    };
    for id in std::iter::once(&x.citizen_id).chain(&x.merged_citizen_ids) {
        let Some(c) = load(kv, tenant, id)? else {
            continue;
        };
        super::accounts::end(kv, tenant, id)?;
        for (k, value) in kv.scan_prefix(&keys::timeline_prefix(tenant, id), usize::MAX)? {
            if let Ok(entry) = pb::TimelineEntry::decode(value.as_slice()) {
                // What the contact said goes; that it was applied stays (its id is no one's).
                let applied = keys::applied(tenant, &entry.event_id);
                if let Some(mut a) = kv.get(&applied)?.and_then(|v| keys::Applied::decode(&v)) {
                    if !a.detail.is_empty() {
                        a.detail.clear();
                        kv.put(applied, a.encode());
                    }
                }
            }
            kv.remove(k);
        }
        put_citizen(
            kv,
            &Citizen {
                citizen_id: c.citizen_id,
                tenant: c.tenant,
                merged_into: c.merged_into,
                erased: Some(erasure.clone()),
                ..Default::default()
            },
        );
    }
    Ok(Ok(vec![x.citizen_id.clone()]))
}

/// A record as agents see it once others were merged into it: the survivor's own values
/// first, then what only the merged records hold (their phones, e-mails, postal addresses and
/// households; a name, birth date, preferred channel with its consent or note the survivor
/// lacks). Computed at read time from the records as stored, so an unmerge is exact.
pub fn union(mut survivor: Citizen, merged: impl IntoIterator<Item = Citizen>) -> Citizen {
    fn add<T: PartialEq + Clone>(into: &mut Vec<T>, from: &[T]) {
        for x in from {
            if !into.contains(x) {
                into.push(x.clone());
            }
        }
    }
    fn fill(into: &mut String, from: &str) {
        if into.trim().is_empty() {
            *into = from.to_string();
        }
    }
    for m in merged {
        add(&mut survivor.phones, &m.phones);
        add(&mut survivor.emails, &m.emails);
        add(&mut survivor.households, &m.households);
        if survivor.provisional && !m.provisional {
            survivor.provisional = false;
            survivor.display_name = m.display_name.clone();
        }
        if survivor.display_name.trim().is_empty() {
            survivor.display_name = m.display_name.clone();
        }
        survivor.entries += m.entries;
        let earlier = |a: &Option<contacthub_proto::Timestamp>,
                       b: &Option<contacthub_proto::Timestamp>| {
            let key =
                |t: &Option<contacthub_proto::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
            key(a) < key(b)
        };
        if m.first_seen.is_some()
            && (survivor.first_seen.is_none() || earlier(&m.first_seen, &survivor.first_seen))
        {
            survivor.first_seen = m.first_seen;
        }
        if earlier(&survivor.last_seen, &m.last_seen) {
            survivor.last_seen = m.last_seen;
        }
        let Some(theirs) = m.identity else { continue };
        let ours = survivor.identity.get_or_insert_with(Default::default);
        fill(&mut ours.usage_name, &theirs.usage_name);
        fill(&mut ours.birth_name, &theirs.birth_name);
        fill(&mut ours.first_names, &theirs.first_names);
        fill(&mut ours.birth_date, &theirs.birth_date);
        fill(&mut ours.note, &theirs.note);
        add(&mut ours.addresses, &theirs.addresses);
        add(&mut ours.phones, &theirs.phones);
        add(&mut ours.emails, &theirs.emails);
        if ours.preferred_channel == 0 {
            ours.preferred_channel = theirs.preferred_channel;
            ours.consent = theirs.consent;
        }
    }
    survivor
}

pub(crate) fn unlink(kv: &mut impl Kv, v: &Valid, u: &pb::IdentityUnlinked) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let Some(mut c) = load(kv, tenant, &u.citizen_id)? else {
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
    Ok(Ok(vec![u.citizen_id.clone()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::contact;
    use crate::fold::tests::{apply_all, Mem};
    use crate::fold::Outcome;
    use crate::pb::event::Payload;

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
                signed_in: false,
                thread_id: String::new(),
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

    fn registration(id: &str, citizen_id: &str, identity: Option<pb::Identity>) -> pb::Event {
        let mut e = contact(
            "69091",
            "test-register",
            id,
            1_800_000_000_000_000,
            1_800_000_000_000_000,
            Payload::CitizenRegistered(pb::CitizenRegistered {
                citizen_id: citizen_id.into(),
            }),
            pb::Party {
                name: "Marie Durand".into(),
                phone: "0612345678".into(),
                ..Default::default()
            },
        );
        e.direction = pb::Direction::Internal as i32;
        e.agent_id = "agent-1".into();
        e.personal.as_mut().unwrap().identity = identity;
        e
    }

    fn citizen_of(outcome: &Outcome) -> (String, Vec<pb::Link>) {
        // (the citizen of the first entry and its links)
        match outcome {
            Outcome::Applied { entries, .. } => {
                (entries[0].citizen_id.clone(), entries[0].links.clone())
            }
            other => panic!("not applied: {other:?}"),
        }
    }

    fn record(kv: &Mem, id: &str) -> Citizen {
        load(kv, "69091", id).unwrap().unwrap()
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
        let claim =
            keys::unresolved_claim("69091", &crate::event::event_id("69091", "test-form", "f1"));
        assert!(kv.contains_key(&claim));
        let (victim, _) = citizen_of(&out[1]);
        assert_eq!(
            victim, "GIV-P000002",
            "the next unknown sender is someone else"
        );
        assert!(record(&kv, &attacker).phones.is_empty());
    }

    #[test]
    fn a_registered_citizen_can_be_named_and_not_registered_twice() {
        let mut kv = Mem::new();
        let claim = form("f1", "GIV-000001", "marie@example.fr");
        let out = apply_all(
            &mut kv,
            &[
                registration("r1", "GIV-000001", None),
                claim.clone(),
                registration("r2", "GIV-000001", None),
            ],
        );
        // A form naming her with an e-mail she does not hold waits for an agent: what a
        // form declares never changes a confirmed record.
        assert!(
            matches!(&out[1], Outcome::Applied { entries, .. } if entries.is_empty()),
            "{:?}",
            out[1]
        );
        let waiting: pb::Unresolved =
            get_msg(&kv, &keys::unresolved_claim("69091", &claim.event_id))
                .unwrap()
                .expect("waiting for an agent");
        assert_eq!(waiting.candidates, ["GIV-000001"]);
        assert!(
            matches!(&out[2], Outcome::DeadLettered(r) if r.contains("already exists")),
            "{:?}",
            out[2]
        );
        let r = record(&kv, "GIV-000001");
        assert_eq!(r.display_name, "Marie Durand");
        assert_eq!(r.phones, ["+33612345678"]);
        assert!(r.emails.is_empty(), "{:?}", r.emails);
        assert!(!r.provisional);
    }

    #[test]
    fn registered_ids_come_from_the_commune_sequence_skipping_taken_ones() {
        let mut kv = Mem::new();
        let identity = pb::Identity {
            usage_name: "Durand".into(),
            birth_name: "Martin".into(),
            first_names: "Marie Élise".into(),
            birth_date: "1984-03-12".into(),
            phones: vec!["06 99 88 77 66".into()],
            ..Default::default()
        };
        let out = apply_all(
            &mut kv,
            &[
                registration("r1", "GIV-000002", None),
                registration("r2", "", Some(identity.clone())),
                registration("r3", "", Some(identity)),
            ],
        );
        let ids: Vec<_> = out.iter().map(|o| citizen_of(o).0).collect();
        assert_eq!(ids, ["GIV-000002", "GIV-000001", "GIV-000003"]);
        let r = record(&kv, "GIV-000001");
        assert_eq!(r.display_name, "Marie Élise Durand");
        assert_eq!(r.updated_by, "agent-1");
        assert!(r.phones.contains(&"+33699887766".to_string()));
        let found = search::by_words(&kv, "69091", "martin marie").unwrap();
        let mut found: Vec<_> = found.into_iter().map(|(c, _)| c).collect();
        found.sort();
        assert_eq!(
            found,
            ["GIV-000001", "GIV-000003"],
            "birth names are searched"
        );
    }

    #[test]
    fn an_update_replaces_the_identity_and_its_index() {
        let mut kv = Mem::new();
        let first = pb::Identity {
            usage_name: "Durand".into(),
            first_names: "Marie".into(),
            ..Default::default()
        };
        let mut second = first.clone();
        second.usage_name = "Lefèvre".into();
        let mut update = registration("u1", "", Some(second));
        update.payload = Some(Payload::CitizenUpdated(pb::CitizenUpdated {
            citizen_id: "GIV-000001".into(),
        }));
        let mut unknown = update.clone();
        unknown.event_id = crate::event::event_id("69091", "t", "u2");
        unknown.payload = Some(Payload::CitizenUpdated(pb::CitizenUpdated {
            citizen_id: "GIV-000099".into(),
        }));
        let out = apply_all(
            &mut kv,
            &[registration("r1", "", Some(first)), update, unknown],
        );
        assert_eq!(citizen_of(&out[1]).0, "GIV-000001");
        assert!(matches!(&out[2], Outcome::DeadLettered(r) if r.contains("unknown citizen")));
        assert_eq!(record(&kv, "GIV-000001").display_name, "Marie Lefèvre");
        assert!(search::by_words(&kv, "69091", "durand").unwrap().is_empty());
        assert_eq!(search::by_words(&kv, "69091", "lefevre").unwrap().len(), 1);
    }

    /// What agents see of the citizens: each one's merge state and the event ids of its
    /// timeline (the union over the citizens merged into it), bookkeeping entries left out.
    fn view(kv: &Mem) -> Vec<(String, String, Vec<String>)> {
        let mut out = Vec::new();
        for (k, v) in kv.scan_prefix(b"ci/69091\0", usize::MAX).unwrap() {
            let c = Citizen::decode(v.as_slice()).unwrap();
            let mut members = vec![c.citizen_id.clone()];
            let mut i = 0;
            while i < members.len() {
                let prefix = keys::merge_members_prefix("69091", &members[i]);
                for (m, _) in kv.scan_prefix(&prefix, usize::MAX).unwrap() {
                    members.push(String::from_utf8_lossy(&m[prefix.len()..]).into_owned());
                }
                i += 1;
            }
            let mut ids = Vec::new();
            for m in &members {
                let prefix = keys::timeline_prefix("69091", m);
                for (_, e) in kv.scan_prefix(&prefix, usize::MAX).unwrap() {
                    let e = pb::TimelineEntry::decode(e.as_slice()).unwrap();
                    if !e.kind.starts_with("identity_") {
                        ids.push(e.event_id);
                    }
                }
            }
            ids.sort();
            let _ = k;
            out.push((c.citizen_id, c.merged_into, ids));
        }
        out
    }

    fn back_office(id: &str, payload: Payload) -> pb::Event {
        let mut e = contact(
            "69091",
            "test-merge",
            id,
            1_900_000_000_000_000,
            1_900_000_000_000_000,
            payload,
            Default::default(),
        );
        e.direction = pb::Direction::Internal as i32;
        e
    }

    proptest::proptest! {
        #[test]
        fn merge_then_unmerge_is_as_if_never_merged(
            phones in proptest::collection::vec(0u8..5, 2..25),
            pick in (0usize..8, 0usize..8),
        ) {
            let events: Vec<pb::Event> = phones
                .iter()
                .enumerate()
                .map(|(i, p)| sms(&format!("s{i}"), &format!("06 00 00 00 0{p}")))
                .collect();
            let mut never = Mem::new();
            apply_all(&mut never, &events);
            let citizens: Vec<String> = view(&never).into_iter().map(|(c, _, _)| c).collect();
            let (a, b) = (&citizens[pick.0 % citizens.len()], &citizens[pick.1 % citizens.len()]);
            proptest::prop_assume!(a != b);
            let mut history = events.clone();
            history.push(back_office("link", Payload::IdentityLinked(pb::IdentityLinked {
                citizen_id: a.clone(),
                into_citizen_id: b.clone(),
            })));
            let mut merged = Mem::new();
            apply_all(&mut merged, &history);
            let together = view(&merged);
            let union = |v: &[(String, String, Vec<String>)], id: &str| {
                v.iter().find(|(c, _, _)| c == id).unwrap().2.clone()
            };
            let before = view(&never);
            let mut expected = union(&before, a);
            expected.extend(union(&before, b));
            expected.sort();
            proptest::prop_assert_eq!(union(&together, b), expected);
            history.push(back_office("unlink", Payload::IdentityUnlinked(pb::IdentityUnlinked {
                citizen_id: a.clone(),
                from_citizen_id: b.clone(),
            })));
            let mut undone = Mem::new();
            apply_all(&mut undone, &history);
            proptest::prop_assert_eq!(view(&undone), before);
        }
    }
}
