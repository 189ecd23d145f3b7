//! The timeline aggregate: one entry per citizen an event concerns, under
//! `tl/tenant/citizen/time/event`, and the citizen's first and last contact and count.

use super::{get_msg, Kv, Position};
use crate::event::{kind, Valid};
use crate::identity::{normalize_email, normalize_phone};
use crate::keys;
use crate::pb::{self, event::Payload, TimelineEntry};
use crate::render::{excerpt, facts};
use crate::Result;
use prost::Message;

/// Writes the entries of `v` for `citizens` and updates their records; `claimed` is a citizen
/// id the contact named that no citizen has (linked on the entry for an agent).
pub(crate) fn write(
    kv: &mut impl Kv,
    v: &Valid,
    pos: Position,
    citizens: &[String],
    claimed: Option<&str>,
) -> Result<Vec<TimelineEntry>> {
    let e = v.event;
    let tenant = &e.tenant;
    let mut entries = Vec::with_capacity(citizens.len());
    for citizen_id in citizens {
        let mut entry = entry(v, citizen_id, pos);
        if let Some(claimed) = claimed {
            entry.links.push(pb::Link {
                rel: "claimed_citizen".into(),
                target: claimed.to_string(),
            });
        }
        put_entry(kv, tenant, &entry)?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Writes an entry in its citizen's timeline and counts it in the citizen's record.
pub(crate) fn put_entry(kv: &mut impl Kv, tenant: &str, entry: &TimelineEntry) -> Result<()> {
    let at = entry
        .occurred_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(0);
    super::citizens::count_contact(kv, tenant, &entry.citizen_id, at)?;
    kv.put(
        keys::timeline_entry(tenant, &entry.citizen_id, at, &entry.event_id),
        entry.encode_to_vec(),
    );
    Ok(())
}

/// Writes an entry again after a change (the citizen's counts are already right).
pub(crate) fn rewrite(kv: &mut impl Kv, tenant: &str, entry: &TimelineEntry) {
    let at = entry
        .occurred_at
        .as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .unwrap_or(0);
    kv.put(
        keys::timeline_entry(tenant, &entry.citizen_id, at, &entry.event_id),
        entry.encode_to_vec(),
    );
}

/// The entry of an event in a citizen's timeline (`citizen_id` empty for a contact waiting
/// to be attached).
pub(crate) fn entry(v: &Valid, citizen_id: &str, pos: Position) -> TimelineEntry {
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
        key_id: v.key_id.to_string(),
        event_id: e.event_id.clone(),
        citizen_id: citizen_id.to_string(),
        channel: e.channel,
        occurred_at: e.occurred_at,
        direction: e.direction,
        category: e.category,
        kind: kind(v.payload).to_string(),
        subject: personal.subject.clone(),
        summary: String::new(),
        facts: Some(facts(v.payload)),
        request_id: e.request_id.clone(),
        attachments: e.attachments.clone(),
        links,
        agent_id: e.agent_id.clone(),
        partition: pos.partition,
        offset: pos.offset,
        excerpt: excerpt(&personal.text),
        party_identifier,
        withheld_service: String::new(),
    }
}

/// A contact's motive added afterwards ([`pb::ContactNoted`]): its timeline line and its
/// detail take the subject and category. An erased note (its key destroyed) changes nothing.
pub(crate) fn noted(
    kv: &mut impl Kv,
    v: &Valid,
    n: &pb::ContactNoted,
) -> super::Folded<Vec<String>> {
    use crate::event::Invalid;
    let e = v.event;
    if crate::seal::erased(e) {
        return Ok(Ok(Vec::new()));
    }
    let applied_key = keys::applied(&e.tenant, &n.contact_event_id);
    let Some(mut applied) = kv
        .get(&applied_key)?
        .and_then(|a| keys::Applied::decode(&a))
    else {
        return Ok(Err(Invalid(format!(
            "contact_noted: no contact {:?}",
            n.contact_event_id
        ))));
    };
    if applied.citizen.is_empty() {
        return Ok(Err(Invalid(
            "contact_noted: the contact is in no one's timeline".into(),
        )));
    }
    let subject = e
        .personal
        .as_ref()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let key = keys::timeline_entry(
        &e.tenant,
        &applied.citizen,
        applied.occurred_us,
        &n.contact_event_id,
    );
    // A contact no longer on a timeline (its person erased) keeps nothing to note.
    let Some(mut entry) = get_msg::<TimelineEntry>(kv, &key)? else {
        return Ok(Ok(Vec::new()));
    };
    entry.subject = subject.clone();
    entry.category = n.category;
    kv.put(key, entry.encode_to_vec());
    let mut detail = pb::Personal::decode(applied.detail.as_slice()).map_err(|source| {
        crate::Error::Corrupt {
            key: String::from_utf8_lossy(&applied_key).into_owned(),
            source,
        }
    })?;
    detail.subject = subject;
    applied.detail = detail.encode_to_vec();
    kv.put(applied_key, applied.encode());
    Ok(Ok(Vec::new()))
}

#[cfg(test)]
mod tests {
    use crate::event::contact;
    use crate::fold::tests::{apply_all, apply_from, Mem};
    use crate::fold::Outcome;
    use crate::keys;
    use crate::pb::{self, event::Payload};
    use prost::Message;

    #[test]
    fn entries_keep_time_order_and_the_citizen_counts_them() {
        let mut kv = Mem::new();
        let call = |id: &str, at: i64| {
            contact(
                "69091",
                "t",
                id,
                at,
                at,
                Payload::PhoneCall(pb::PhoneCall::default()),
                pb::Party {
                    phone: "0612345678".into(),
                    ..Default::default()
                },
            )
        };
        let out = apply_all(
            &mut kv,
            &[
                call("late", 1_800_000_100_000_000),
                call("early", 1_800_000_000_000_000),
            ],
        );
        let Outcome::Applied { entries, .. } = &out[0] else {
            panic!("{out:?}")
        };
        let citizen = &entries[0].citizen_id;
        let prefix = keys::timeline_prefix("69091", citizen);
        let stored: Vec<pb::TimelineEntry> = kv
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| pb::TimelineEntry::decode(v.as_slice()).unwrap())
            .collect();
        // Facts, not words: the reader words the line (render::summary).
        assert!(stored
            .iter()
            .all(|e| e.summary.is_empty() && e.facts.is_some()));
        let ids: Vec<String> = stored.into_iter().map(|e| e.event_id).collect();
        assert_eq!(
            ids,
            [
                crate::event::event_id("69091", "t", "early"),
                crate::event::event_id("69091", "t", "late")
            ]
        );
        let c = super::super::citizens::record(&kv, "69091", citizen)
            .unwrap()
            .unwrap();
        assert_eq!(c.entries, 2);
        assert_eq!(
            c.first_seen.unwrap().seconds,
            1_800_000_000,
            "first contact by occurrence, not by log order"
        );
    }

    /// A note on a call names its subject on the line and in the detail; on a contact whose
    /// person was erased (no line, an emptied detail) it writes nothing back.
    #[test]
    fn a_note_never_writes_into_an_erased_contact() {
        let mut kv = Mem::new();
        let call = contact(
            "69091",
            "t",
            "call-1",
            1_800_000_000_000_000,
            1_800_000_000_000_000,
            Payload::PhoneCall(pb::PhoneCall::default()),
            pb::Party {
                phone: "0612345678".into(),
                ..Default::default()
            },
        );
        let note = |id: &str, subject: &str| {
            let mut e = contact(
                "69091",
                "desk",
                id,
                1_800_000_100_000_000,
                1_800_000_100_000_000,
                Payload::ContactNoted(pb::ContactNoted {
                    contact_event_id: call.event_id.clone(),
                    category: pb::Category::Urbanisme as i32,
                }),
                pb::Party::default(),
            );
            e.direction = pb::Direction::Internal as i32;
            e.personal.as_mut().unwrap().subject = subject.into();
            e
        };
        let out = apply_all(&mut kv, &[call.clone(), note("note-1", "Nid-de-poule")]);
        assert!(matches!(out[1], Outcome::Applied { .. }), "{out:?}");
        let applied_key = keys::applied("69091", &call.event_id);
        let applied = keys::Applied::decode(&kv[&applied_key]).unwrap();
        let detail = pb::Personal::decode(applied.detail.as_slice()).unwrap();
        assert_eq!(detail.subject, "Nid-de-poule");
        let line_key = keys::timeline_entry(
            "69091",
            &applied.citizen,
            applied.occurred_us,
            &call.event_id,
        );
        let line = pb::TimelineEntry::decode(kv[&line_key].as_slice()).unwrap();
        assert_eq!(line.subject, "Nid-de-poule");
        // As an erasure leaves it: the line gone, the detail emptied.
        kv.remove(&line_key);
        let erased = keys::Applied {
            detail: Vec::new(),
            ..applied
        };
        kv.insert(applied_key.clone(), erased.encode());
        apply_from(&mut kv, &[note("note-2", "Mme Durand, 3 rue Pasteur")], 2);
        assert_eq!(
            keys::Applied::decode(&kv[&applied_key]).unwrap().detail,
            Vec::<u8>::new()
        );
        assert!(!kv.contains_key(&line_key));
    }
}
