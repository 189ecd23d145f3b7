//! The outbound aggregate (réponses écrites): an answer composed for a request waits in the
//! outbox (`ob/`, by when it is next tried) or, a letter, in its commune's print queue
//! (`pq/`). Its outcomes move it: delivered (the provider's message id, the PDF's hash) is the
//! request's written answer; failed is retried at the instant the sender chose, or given up;
//! bounced puts the request back in its worklist.

use super::requests::{self, answered};
use super::{get_msg, timeline, Folded, Kv};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{
    self, answer_outcome::Kind, Answer, AnswerStatus, Channel, Request, RequestStatus,
};
use crate::render::channel_fr;
use crate::Result;
use contacthub_proto::ts;
use prost::Message;

/// The postal lines of a party: name, street lines, then postcode and city (and country).
pub fn postal_lines(p: &pb::Party) -> Vec<String> {
    let mut out = Vec::new();
    if !p.name.trim().is_empty() {
        out.push(p.name.trim().to_string());
    }
    if let Some(a) = &p.address {
        out.extend(a.lines.iter().filter(|l| !l.trim().is_empty()).cloned());
        let city = format!("{} {}", a.postal_code, a.city).trim().to_string();
        if !city.is_empty() {
            out.push(city);
        }
        if !a.country.trim().is_empty() {
            out.push(a.country.trim().to_uppercase());
        }
    }
    out
}

/// Rewrites the timeline line of an answer after its status changed.
fn retell(kv: &mut impl Kv, a: &Answer) -> Result<()> {
    let at = a.composed_at.as_ref().and_then(ts::to_micros).unwrap_or(0);
    let key = keys::timeline_entry(&a.tenant, &a.citizen_id, at, &a.answer_event_id);
    if let Some(mut entry) = get_msg::<pb::TimelineEntry>(kv, &key)? {
        let facts = entry.facts.get_or_insert_with(Default::default);
        facts.answer_channel = a.channel;
        facts.answer_status = a.status;
        timeline::rewrite(kv, &a.tenant, &entry);
    }
    Ok(())
}

/// Takes an answer out of the outbox and the print queue.
fn unqueue(kv: &mut impl Kv, a: &Answer) {
    if let Some(due) = a.next_attempt_at.as_ref().and_then(ts::to_micros) {
        kv.remove(keys::outbox(due, &a.tenant, &a.answer_event_id));
    }
    kv.remove(keys::print_queue(&a.tenant, &a.answer_event_id));
}

/// A request closed with answers still waiting: they are not sent (failed, with the reason),
/// and leave the outbox and the print queue.
pub(crate) fn cancel_pending(kv: &mut impl Kv, tenant: &str, reference: &str) -> Result<()> {
    let prefix = keys::request_answers_prefix(tenant, reference);
    for (k, _) in kv.scan_prefix(&prefix, 10_000)? {
        let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let key = keys::answer(tenant, &id);
        let Some(mut a) = get_msg::<Answer>(kv, &key)? else {
            continue;
        };
        if a.status == AnswerStatus::Queued as i32 || a.status == AnswerStatus::Retrying as i32 {
            unqueue(kv, &a);
            a.status = AnswerStatus::Failed as i32;
            a.next_attempt_at = None;
            a.last_error = "demande clôturée avant l'envoi".into();
            kv.put(key, a.encode_to_vec());
            retell(kv, &a)?;
        }
    }
    Ok(())
}

/// An answer is put in the outbox (or the print queue) and in its citizen's timeline.
pub(crate) fn compose(kv: &mut impl Kv, v: &Valid, c: &pb::AnswerComposed) -> Folded<Vec<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let Some(mut r) = get_msg::<Request>(kv, &keys::request(tenant, &e.request_id))? else {
        return Ok(Err(Invalid(format!("unknown request {}", e.request_id))));
    };
    if r.status == RequestStatus::Closed as i32 {
        return Ok(Err(Invalid(format!("request {} is closed", r.reference))));
    }
    let personal = e.personal.clone().unwrap_or_default();
    let party = personal.party.clone().unwrap_or_default();
    // The answer to an erased person: kept as a fact of its request (its figures), with
    // no recipient and nothing to send or print.
    let erased = crate::seal::erased(e);
    if erased {
        let a = Answer {
            answer_event_id: e.event_id.clone(),
            tenant: tenant.clone(),
            request_reference: r.reference.clone(),
            channel: c.channel,
            status: AnswerStatus::Queued as i32,
            composed_at: e.occurred_at,
            agent_id: e.agent_id.clone(),
            ..Default::default()
        };
        record(kv, v, &mut r, &a, false)?;
        return Ok(Ok(vec![]));
    }
    if kv.get(&keys::citizen(tenant, &party.citizen_id))?.is_none() {
        return Ok(Err(Invalid(format!(
            "answer to unknown citizen {}",
            party.citizen_id
        ))));
    }
    let recipient = match Channel::try_from(c.channel).unwrap_or(Channel::Unspecified) {
        Channel::Email => party.email.clone(),
        Channel::Sms => party.phone.clone(),
        Channel::WebForm => party.citizen_id.clone(),
        _ => String::new(),
    };
    let lines = postal_lines(&party);
    if c.channel == Channel::Courrier as i32 && lines.len() < 2 {
        return Ok(Err(Invalid(
            "a letter answer needs the citizen's postal address".into(),
        )));
    }
    if c.channel != Channel::Courrier as i32 && recipient.trim().is_empty() {
        return Ok(Err(Invalid(format!(
            "an answer by {} needs its recipient's address",
            channel_fr(c.channel)
        ))));
    }
    let a = Answer {
        answer_event_id: e.event_id.clone(),
        tenant: tenant.clone(),
        request_reference: r.reference.clone(),
        citizen_id: party.citizen_id.clone(),
        channel: c.channel,
        status: AnswerStatus::Queued as i32,
        subject: personal.subject.clone(),
        text: personal.text.clone(),
        recipient,
        postal_lines: lines,
        catalogue_answer_id: c.catalogue_answer_id.clone(),
        channel_reason: c.channel_reason.clone(),
        attach_letter: c.attach_letter,
        message_nonce: c.message_nonce.clone(),
        composed_at: e.occurred_at,
        agent_id: e.agent_id.clone(),
        next_attempt_at: e.occurred_at,
        ..Default::default()
    };
    record(kv, v, &mut r, &a, true)?;
    Ok(Ok(vec![a.citizen_id]))
}

/// Keeps a composed answer and its step on its request; `queue`: in the outbox (or the print
/// queue for a letter).
fn record(kv: &mut impl Kv, v: &Valid, r: &mut Request, a: &Answer, queue: bool) -> Result<()> {
    let tenant = &a.tenant;
    kv.put(keys::answer(tenant, &a.answer_event_id), a.encode_to_vec());
    kv.put(
        keys::request_answer(tenant, &r.reference, &a.answer_event_id),
        vec![],
    );
    if queue && a.channel == Channel::Courrier as i32 {
        kv.put(keys::print_queue(tenant, &a.answer_event_id), vec![]);
    } else if queue {
        kv.put(
            keys::outbox(v.occurred_us, tenant, &a.answer_event_id),
            vec![],
        );
    }
    requests::step(
        r,
        v.event,
        "answer_queued",
        channel_fr(a.channel).to_string(),
        v.occurred_us,
    );
    requests::put(kv, r)
}

/// Delivered, failed (retried or given up) or bounced.
pub(crate) fn outcome(kv: &mut impl Kv, v: &Valid, o: &pb::AnswerOutcome) -> Folded<Vec<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let key = keys::answer(tenant, &o.answer_event_id);
    let Some(mut a) = get_msg::<Answer>(kv, &key)? else {
        return Ok(Err(Invalid(format!(
            "unknown answer {}",
            o.answer_event_id
        ))));
    };
    if a.request_reference != e.request_id {
        return Ok(Err(Invalid(format!(
            "answer {} is not an answer to request {}",
            o.answer_event_id, e.request_id
        ))));
    }
    let delivered = a.status == AnswerStatus::Delivered as i32;
    let settled = delivered
        || a.status == AnswerStatus::Failed as i32
        || a.status == AnswerStatus::Bounced as i32;
    let Some(mut r) = get_msg::<Request>(kv, &keys::request(tenant, &a.request_reference))? else {
        return Ok(Err(Invalid(format!("unknown request {}", e.request_id))));
    };
    match Kind::try_from(o.kind).unwrap_or(Kind::Unspecified) {
        // A second report of one delivery (a sender restarted after sending) changes nothing.
        // An answer cancelled with its request but sent meanwhile is recorded as sent.
        Kind::Delivered if delivered || a.status == AnswerStatus::Bounced as i32 => {
            return Ok(Ok(vec![]))
        }
        Kind::Delivered => {
            unqueue(kv, &a);
            a.status = AnswerStatus::Delivered as i32;
            a.attempts = a.attempts.max(o.attempt);
            a.delivered_at = e.occurred_at;
            a.provider_message_id = o.provider_message_id.clone();
            a.pdf_sha256 = o.pdf_sha256.clone();
            a.segments = o.segments;
            a.next_attempt_at = None;
            a.last_error.clear();
            if !o.provider_message_id.is_empty() {
                kv.put(
                    keys::provider_message(tenant, &o.provider_message_id),
                    a.answer_event_id.as_bytes().to_vec(),
                );
            }
            // The proof: the provider's id, else the printed letter's hash.
            let proof = if !o.provider_message_id.is_empty() {
                o.provider_message_id.clone()
            } else if !o.pdf_sha256.is_empty() {
                format!("sha256:{}", o.pdf_sha256)
            } else {
                a.answer_event_id.clone()
            };
            if r.status != RequestStatus::Closed as i32 {
                let written = pb::RequestAnswered {
                    answer_event_id: a.answer_event_id.clone(),
                    answer_channel: a.channel,
                    answer_ref: proof.clone(),
                };
                answered(kv, v, &mut r, &written)?;
                requests::step(&mut r, e, "answered", proof, v.occurred_us);
            }
        }
        Kind::Failed if settled => return Ok(Ok(vec![])),
        Kind::Failed => {
            unqueue(kv, &a);
            a.attempts = a.attempts.max(o.attempt);
            a.last_error = o.error.clone();
            match o.retry_at.as_ref().and_then(ts::to_micros) {
                Some(at) => {
                    a.status = AnswerStatus::Retrying as i32;
                    a.next_attempt_at = o.retry_at;
                    // An erased person's answer has no one to go to: never queued again.
                    if !a.citizen_id.is_empty() {
                        kv.put(keys::outbox(at, tenant, &a.answer_event_id), vec![]);
                    }
                }
                None => {
                    a.status = AnswerStatus::Failed as i32;
                    a.next_attempt_at = None;
                    requests::step(&mut r, e, "answer_failed", o.error.clone(), v.occurred_us);
                }
            }
        }
        Kind::Bounced => {
            if !delivered {
                return Ok(Err(Invalid(format!(
                    "answer {} was not delivered: it cannot bounce",
                    a.answer_event_id
                ))));
            }
            a.status = AnswerStatus::Bounced as i32;
            a.bounced_at = e.occurred_at;
            a.last_error = o.error.clone();
            // The written answer did not reach the citizen: the request is theirs to answer
            // again, back in its worklist.
            let answered_by_it = r.answer_ref == a.provider_message_id
                || r.answer_ref == format!("sha256:{}", a.pdf_sha256);
            if answered_by_it
                && (r.status == RequestStatus::Answered as i32
                    || r.status == RequestStatus::Closed as i32)
            {
                r.status = RequestStatus::Reopened as i32;
                r.closed_at = None;
            }
            requests::step(&mut r, e, "answer_bounced", o.error.clone(), v.occurred_us);
        }
        Kind::Unspecified => return Ok(Err(Invalid("answer_outcome without a kind".into()))),
    }
    requests::put(kv, &r)?;
    kv.put(key, a.encode_to_vec());
    retell(kv, &a)?;
    Ok(Ok(vec![]))
}
