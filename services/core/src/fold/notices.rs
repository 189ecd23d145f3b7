//! Notices (an appointment's confirmation and reminder, a request's acknowledgement): queued
//! in `nt/` with their recipient and words, and in `nq/` by when they are next tried, until
//! the sender records that one was sent or given up.

use super::{get_msg, Folded, Kv};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{self, notice::Status, Channel};
use contacthub_proto::ts::to_micros;
use prost::Message;

pub(crate) fn queued(kv: &mut impl Kv, v: &Valid, n: &pb::NoticeQueued) -> Folded<Vec<String>> {
    let e = v.event;
    let key = keys::notice(&e.tenant, &e.event_id);
    if kv.get(&key)?.is_some() {
        return Ok(Err(Invalid(format!(
            "notice {} is queued already",
            e.event_id
        ))));
    }
    let personal = e.personal.clone().unwrap_or_default();
    let party = personal.party.unwrap_or_default();
    let recipient = if n.channel == Channel::Email as i32 {
        party.email
    } else {
        party.phone
    };
    // An erased person's notice: kept as a fact, with no one to send it to.
    let erased = crate::seal::erased(e) || recipient.trim().is_empty();
    let notice = pb::Notice {
        notice_event_id: e.event_id.clone(),
        tenant: e.tenant.clone(),
        citizen_id: party.citizen_id.clone(),
        kind: n.kind,
        channel: n.channel,
        about: n.about.clone(),
        recipient,
        subject: personal.subject,
        text: personal.text,
        status: if erased {
            Status::Failed
        } else {
            Status::Queued
        } as i32,
        next_attempt_us: if erased { 0 } else { v.occurred_us },
        queued_us: v.occurred_us,
        last_error: if erased {
            "personne effacée ou sans adresse".into()
        } else {
            String::new()
        },
        ..Default::default()
    };
    if !erased {
        kv.put(
            keys::notice_due(v.occurred_us, &e.tenant, &e.event_id),
            Vec::new(),
        );
    }
    kv.put(key, notice.encode_to_vec());
    Ok(Ok(if party.citizen_id.is_empty() || erased {
        Vec::new()
    } else {
        vec![party.citizen_id]
    }))
}

pub(crate) fn outcome(kv: &mut impl Kv, v: &Valid, o: &pb::NoticeOutcome) -> Folded<Vec<String>> {
    let tenant = &v.event.tenant;
    let key = keys::notice(tenant, &o.notice_event_id);
    let Some(mut n) = get_msg::<pb::Notice>(kv, &key)? else {
        return Ok(Err(Invalid(format!(
            "unknown notice {}",
            o.notice_event_id
        ))));
    };
    // A second report of a settled notice (a sender restarted after sending) changes nothing.
    if n.status == Status::Sent as i32 || n.status == Status::Failed as i32 {
        return Ok(Ok(Vec::new()));
    }
    kv.remove(keys::notice_due(
        n.next_attempt_us,
        tenant,
        &n.notice_event_id,
    ));
    n.attempts = n.attempts.max(o.attempt);
    match (o.sent, o.retry_at.as_ref().and_then(to_micros)) {
        (true, _) => {
            n.status = Status::Sent as i32;
            n.sent_us = v.occurred_us;
            n.provider_message_id = o.provider_message_id.clone();
            n.next_attempt_us = 0;
            n.last_error.clear();
        }
        (false, Some(at)) => {
            n.status = Status::Retrying as i32;
            n.next_attempt_us = at;
            n.last_error = o.error.clone();
            kv.put(keys::notice_due(at, tenant, &n.notice_event_id), Vec::new());
        }
        (false, None) => {
            n.status = Status::Failed as i32;
            n.next_attempt_us = 0;
            n.last_error = o.error.clone();
        }
    }
    // Its timeline line says whether it went.
    let status = match Status::try_from(n.status) {
        Ok(Status::Sent) => Some(pb::AnswerStatus::Delivered),
        Ok(Status::Failed) => Some(pb::AnswerStatus::Failed),
        _ => None,
    };
    if let (Some(status), false) = (status, n.citizen_id.is_empty()) {
        let at = keys::timeline_entry(tenant, &n.citizen_id, n.queued_us, &n.notice_event_id);
        if let Some(mut entry) = get_msg::<pb::TimelineEntry>(kv, &at)? {
            entry
                .facts
                .get_or_insert_with(Default::default)
                .answer_status = status as i32;
            super::timeline::rewrite(kv, tenant, &entry);
        }
    }
    kv.put(key, n.encode_to_vec());
    Ok(Ok(Vec::new()))
}
