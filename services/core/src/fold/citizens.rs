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

pub(crate) fn put_citizen(kv: &mut impl Kv, c: &Citizen) {
    kv.put(keys::citizen(&c.tenant, &c.citizen_id), c.encode_to_vec());
}

fn load(kv: &impl Kv, tenant: &str, id: &str) -> Result<Option<Citizen>> {
    get_msg(kv, &keys::citizen(tenant, id))
}

/// The citizen a (possibly merged) citizen id stands for now.
pub fn canonical(kv: &impl Kv, tenant: &str, id: &str) -> Result<String> {
    let mut id = id.to_string();
    // Merges are acyclic (checked on link); the bound only guards corrupt data.
    for _ in 0..64 {
        match load(kv, tenant, &id)? {
            Some(c) if !c.merged_into.is_empty() => id = c.merged_into,
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

/// Finds or creates the citizen of a contact's party, adds the party's identifiers to it, and
/// returns it with the citizen id the party claimed, if no citizen of the commune has it.
pub(crate) fn resolve_party(
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
        for (kind, value) in identifiers(&party, None) {
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
    let Some(mut c) = load(kv, tenant, &citizen_id)? else {
        return Ok((citizen_id, claimed_unknown));
    };
    add_identifiers(kv, &mut c, &party, None)?;
    if c.display_name.is_empty() && !fold_name(&party.name).is_empty() {
        c.display_name = party.name.split_whitespace().collect::<Vec<_>>().join(" ");
        reindex(kv, &c, None)?;
    }
    put_citizen(kv, &c);
    Ok((citizen_id, claimed_unknown))
}

/// Adds identifiers to a citizen record, and indexes those no other citizen holds yet.
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
        let out = apply_all(
            &mut kv,
            &[
                registration("r1", "GIV-000001", None),
                form("f1", "GIV-000001", "marie@example.fr"),
                registration("r2", "GIV-000001", None),
            ],
        );
        let (c, links) = citizen_of(&out[1]);
        assert_eq!(c, "GIV-000001");
        assert!(links.iter().all(|l| l.rel != "claimed_citizen"));
        assert!(
            matches!(&out[2], Outcome::DeadLettered(r) if r.contains("already exists")),
            "{:?}",
            out[2]
        );
        let r = record(&kv, "GIV-000001");
        assert_eq!(r.display_name, "Marie Durand");
        assert_eq!(r.phones, ["+33612345678"]);
        assert_eq!(r.emails, ["marie@example.fr"]);
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
}
