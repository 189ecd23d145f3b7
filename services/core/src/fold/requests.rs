//! The request aggregate (demandes): opened from any contact or by an agent, numbered in log
//! order (`GIV-D-2026-000042`), owned by a service, due a committed number of days after the
//! first contact on any channel, and never closed without a written answer or a reason.

use super::{citizens, counters, get_msg, Folded, Kv};
use crate::courrier::registration_year;
use crate::dashboard::{self, Slice};
use crate::event::{Invalid, Valid};
use crate::keys;
use crate::pb::{self, event::Payload, CourrierEvent, Request, RequestStatus};
use crate::tenant::Tenants;
use crate::Result;
use contacthub_proto::ts;
use prost::Message;

const DAY_US: i64 = 86_400_000_000;

/// Whether a request still waits for its written answer.
fn is_open(r: &Request) -> bool {
    r.status != RequestStatus::Answered as i32 && r.status != RequestStatus::Closed as i32
}

/// Its key in the index of open requests by due date, when it is open.
fn open_key(r: &Request) -> Option<Vec<u8>> {
    let due = r.due_at.as_ref().and_then(ts::to_micros)?;
    is_open(r).then(|| keys::open_request(&r.tenant, due.max(0), &r.reference))
}

fn slice(r: &Request) -> Slice {
    Slice::of(r.channel, r.category, &r.service)
}

/// Counts an open request in (or, `add` false, out of) the day it is due, in each slice.
fn count_due(kv: &mut impl Kv, r: &Request, add: bool) -> Result<()> {
    let Some(due) = r.due_at.as_ref().and_then(ts::to_micros) else {
        return Ok(());
    };
    let day = dashboard::day_of(due);
    let s = slice(r);
    for (dim, value) in s.dims() {
        let k = keys::Counter::due(&r.tenant, &day, dim, value).key();
        let n = kv.get(&k)?.map_or(0, |v| keys::read_u64(&v));
        let n = if add { n + 1 } else { n.saturating_sub(1) };
        if n == 0 {
            kv.remove(k);
        } else {
            kv.put(k, n.to_be_bytes().to_vec());
        }
    }
    Ok(())
}

/// Writes a request, keeping the open requests (by due instant, and counted by due day and
/// slice) in step.
pub(super) fn put(kv: &mut impl Kv, r: &Request) -> Result<()> {
    let key = keys::request(&r.tenant, &r.reference);
    let old = get_msg::<Request>(kv, &key)?;
    let old_key = old.as_ref().and_then(open_key);
    let new_key = open_key(r);
    let same = old_key == new_key && old.as_ref().is_some_and(|o| slice(o) == slice(r));
    if !same {
        if let (Some(k), Some(o)) = (old_key, &old) {
            kv.remove(k);
            count_due(kv, o, false)?;
        }
        if let Some(k) = new_key {
            kv.put(k, slice(r).encode());
            count_due(kv, r, true)?;
        }
    }
    // Each requester's list of requests.
    let before: &[String] = old.as_ref().map_or(&[], |o| &o.requesters);
    for gone in before.iter().filter(|c| !r.requesters.contains(c)) {
        kv.remove(keys::citizen_request(&r.tenant, gone, &r.reference));
    }
    for new in r.requesters.iter().filter(|c| !before.contains(c)) {
        kv.put(
            keys::citizen_request(&r.tenant, new, &r.reference),
            Vec::new(),
        );
    }
    kv.put(key, r.encode_to_vec());
    Ok(())
}

/// Records the written answer of a request (a collective's or a letter's too), counting the
/// first one in the dashboards: in time or not, and the days it took.
fn answer(
    kv: &mut impl Kv,
    r: &mut Request,
    e: &pb::Event,
    channel: i32,
    answer_ref: &str,
    at_us: i64,
) -> Result<()> {
    if r.answered_at.is_none() {
        let dims = slice(r);
        let dims = dims.dims();
        let first = r
            .first_contact_at
            .as_ref()
            .and_then(ts::to_micros)
            .unwrap_or(at_us);
        let due = r.due_at.as_ref().and_then(ts::to_micros).unwrap_or(at_us);
        counters::dashboard(kv, &r.tenant, at_us, &dims, dashboard::ANSWERED)?;
        if at_us <= due {
            counters::dashboard(kv, &r.tenant, at_us, &dims, dashboard::IN_TIME)?;
        }
        let days = dashboard::days_figure(dashboard::days_between(first, at_us));
        counters::dashboard(kv, &r.tenant, at_us, &dims, &days)?;
    }
    r.status = RequestStatus::Answered as i32;
    r.answered_at = e.occurred_at;
    r.answer_channel = channel;
    r.answer_ref = answer_ref.to_string();
    Ok(())
}

/// The timeline entry of an applied contact, if it was applied in this commune.
fn applied_entry(kv: &impl Kv, tenant: &str, event_id: &str) -> Result<Option<pb::TimelineEntry>> {
    let Some(a) = kv
        .get(&keys::applied(tenant, event_id))?
        .and_then(|v| keys::Applied::decode(&v))
    else {
        return Ok(None);
    };
    get_msg(
        kv,
        &keys::timeline_entry(tenant, &a.citizen, a.occurred_us, event_id),
    )
}

/// When an applied event occurred, if it was applied in this commune.
fn occurred(kv: &impl Kv, tenant: &str, event_id: &str) -> Result<Option<i64>> {
    Ok(kv
        .get(&keys::applied(tenant, event_id))?
        .and_then(|v| keys::Applied::decode(&v))
        .map(|a| a.occurred_us))
}

/// The e-mail thread of an applied contact (from its timeline entry's links), if it is one.
fn thread_of(kv: &impl Kv, tenant: &str, event_id: &str) -> Result<Option<String>> {
    Ok(applied_entry(kv, tenant, event_id)?.and_then(|e| {
        let link = |rel: &str| {
            e.links
                .iter()
                .find(|l| l.rel == rel)
                .map(|l| l.target.clone())
        };
        link("thread").or_else(|| link("message_id"))
    }))
}

/// Remembers the e-mail thread of a contact of a request, so the thread's later messages
/// join it.
fn follow_thread(kv: &mut impl Kv, tenant: &str, event_id: &str, reference: &str) -> Result<()> {
    if let Some(thread) = thread_of(kv, tenant, event_id)? {
        kv.put(
            keys::request_thread(tenant, &thread),
            reference.as_bytes().to_vec(),
        );
    }
    Ok(())
}

/// The reference of a request of the commune that `text` quotes (`GIV-D-2026-000042`).
fn quoted_reference(text: &str, prefix: &str) -> Option<String> {
    let marker = format!("{prefix}-D-");
    let mut rest = text;
    while let Some(i) = rest.find(&marker) {
        let tail = &rest[i + marker.len()..];
        let candidate: String = tail.chars().take(11).collect();
        let b = candidate.as_bytes();
        if b.len() == 11
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..].iter().all(u8::is_ascii_digit)
        {
            return Some(format!("{marker}{candidate}"));
        }
        rest = tail;
    }
    None
}

/// Links a new contact to the open request it belongs to: the one a signed-in person wrote it
/// for on the citizens' space, one whose reference it quotes (subject or text), or whose
/// e-mail thread it continues. Returns the reference.
pub(crate) fn auto_link(kv: &mut impl Kv, tenants: &Tenants, v: &Valid) -> Result<Option<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let prefix = tenants.get(tenant).map_or("X", |t| t.prefix.as_str());
    let personal = e.personal.as_ref();
    let quoted = personal.and_then(|p| {
        quoted_reference(&p.subject, prefix).or_else(|| quoted_reference(&p.text, prefix))
    });
    // A portal's file is its own request ([`follow_file`]): nothing it says links it elsewhere.
    if matches!(v.payload, Payload::WebForm(w) if !w.thread_id.is_empty()) {
        return Ok(None);
    }
    let threaded = match v.payload {
        Payload::Email(m) if !m.thread_id.is_empty() => kv
            .get(&keys::request_thread(tenant, &m.thread_id))?
            .map(|r| String::from_utf8_lossy(&r).into_owned()),
        _ => None,
    };
    // A person signed in to the citizens' space wrote it for one of their requests (the
    // application layer checked it is theirs).
    let written_for = match v.payload {
        Payload::WebForm(w) if w.signed_in && !e.request_id.is_empty() => {
            Some(e.request_id.clone())
        }
        _ => None,
    };
    for reference in written_for.into_iter().chain(quoted).chain(threaded) {
        let Some(mut r) = get_msg::<Request>(kv, &keys::request(tenant, &reference))? else {
            continue;
        };
        if r.status == RequestStatus::Closed as i32 {
            continue;
        }
        if !r.contacts.contains(&e.event_id) {
            r.contacts.push(e.event_id.clone());
        }
        if let Payload::Email(m) = v.payload {
            if !m.thread_id.is_empty() {
                kv.put(
                    keys::request_thread(tenant, &m.thread_id),
                    reference.as_bytes().to_vec(),
                );
            }
        }
        step(&mut r, e, "linked", "automatique".into(), v.occurred_us);
        put(kv, &r)?;
        return Ok(Some(reference));
    }
    Ok(None)
}

/// The written channel the first of `citizens` who chose one prefers (e-mail, SMS, courrier).
fn preferred_channel(kv: &impl Kv, tenant: &str, citizens: &[String]) -> Result<Option<i32>> {
    for id in citizens {
        let c: Option<pb::Citizen> = get_msg(kv, &keys::citizen(tenant, id))?;
        let preferred = c
            .and_then(|c| c.identity)
            .map(|i| i.preferred_channel)
            .and_then(|p| match pb::ContactChannel::try_from(p) {
                Ok(pb::ContactChannel::Email) => Some(pb::Channel::Email as i32),
                Ok(pb::ContactChannel::Sms) => Some(pb::Channel::Sms as i32),
                Ok(pb::ContactChannel::Courrier) => Some(pb::Channel::Courrier as i32),
                _ => None,
            });
        if preferred.is_some() {
            return Ok(preferred);
        }
    }
    Ok(None)
}

/// The committed answer date: `days` of the commune for the category after the first contact.
fn due(tenants: &Tenants, tenant: &str, category: i32, first_us: i64) -> i64 {
    tenants.get(tenant).map_or(first_us + 15 * DAY_US, |t| {
        crate::courrier::answer_due_us(t, category, first_us)
    })
}

pub(super) fn step(r: &mut Request, e: &pb::Event, kind: &str, note: String, at_us: i64) {
    let previous = r
        .history
        .last()
        .and_then(|h| h.at.as_ref())
        .and_then(ts::to_micros)
        .unwrap_or(at_us);
    r.history.push(CourrierEvent {
        event_id: e.event_id.clone(),
        at: Some(ts::from_micros(at_us)),
        kind: kind.into(),
        service: r.service.clone(),
        agent_id: e.agent_id.clone(),
        note,
        seconds_since_previous: (at_us - previous) / 1_000_000,
    });
}

/// What a new request starts with.
struct New {
    subject: String,
    category: i32,
    service: String,
    requesters: Vec<String>,
    from_contact: String,
    first_us: i64,
    on_behalf_of: String,
    location: Option<pb::Address>,
    channel: i32,
    chrono: String,
}

/// Creates a request: the next reference of its commune and year (Paris time of recording),
/// its committed date from its first contact, counted as opened in the dashboards.
fn create(kv: &mut impl Kv, tenants: &Tenants, v: &Valid, n: New) -> Result<Request> {
    let e = v.event;
    let tenant = &e.tenant;
    let recorded = e
        .recorded_at
        .as_ref()
        .and_then(ts::to_micros)
        .unwrap_or(v.occurred_us);
    let year = registration_year(recorded);
    let prefix = tenants.get(tenant).map_or("X", |t| t.prefix.as_str());
    let ck = keys::request_counter(tenant, year);
    let number = kv.get(&ck)?.map_or(1, |v| keys::read_u64(&v));
    kv.put(ck, (number + 1).to_be_bytes().to_vec());
    let mut r = Request {
        reference: format!("{prefix}-D-{year}-{number:06}"),
        tenant: tenant.clone(),
        subject: n.subject,
        category: n.category,
        service: n.service,
        status: RequestStatus::Open as i32,
        requesters: n.requesters,
        contacts: if n.from_contact.is_empty() {
            vec![]
        } else {
            vec![n.from_contact.clone()]
        },
        opened_at: Some(ts::from_micros(v.occurred_us)),
        first_contact_at: Some(ts::from_micros(n.first_us)),
        due_at: Some(ts::from_micros(due(
            tenants, tenant, n.category, n.first_us,
        ))),
        on_behalf_of: n.on_behalf_of,
        location: n.location,
        channel: n.channel,
        chrono: n.chrono,
        ..Default::default()
    };
    step(&mut r, e, "opened", String::new(), v.occurred_us);
    kv.put(
        keys::request_by_event(tenant, &e.event_id),
        r.reference.as_bytes().to_vec(),
    );
    if !n.from_contact.is_empty() {
        follow_thread(kv, tenant, &n.from_contact, &r.reference)?;
        kv.put(
            keys::contact_request(tenant, &n.from_contact, &r.reference),
            Vec::new(),
        );
    }
    counters::dashboard(
        kv,
        tenant,
        v.occurred_us,
        &slice(&r).dims(),
        dashboard::OPENED,
    )?;
    if let Some(street) = r.location.as_ref().and_then(dashboard::street_of) {
        counters::dashboard(
            kv,
            tenant,
            v.occurred_us,
            &[(dashboard::DIM_STREET, &street)],
            dashboard::OPENED,
        )?;
    }
    put(kv, &r)?;
    Ok(r)
}

/// Opens a request: resolves its requester, starts its clock at its first contact.
pub(crate) fn open(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    o: &pb::RequestOpened,
) -> Folded<Vec<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let (first, channel) = if o.from_contact_event_id.is_empty() {
        (v.occurred_us, e.channel)
    } else {
        if let Some(letter) = kv.get(&keys::request_by_event(tenant, &o.from_contact_event_id))? {
            return Ok(Err(Invalid(format!(
                "contact {} is already followed by request {}",
                o.from_contact_event_id,
                String::from_utf8_lossy(&letter)
            ))));
        }
        match occurred(kv, tenant, &o.from_contact_event_id)? {
            Some(at) => (
                at.min(v.occurred_us),
                applied_entry(kv, tenant, &o.from_contact_event_id)?
                    .map_or(e.channel, |entry| entry.channel),
            ),
            None => {
                return Ok(Err(Invalid(format!(
                    "unknown contact {}",
                    o.from_contact_event_id
                ))))
            }
        }
    };
    let mut requesters = Vec::new();
    for id in &o.requester_citizen_ids {
        if kv.get(&keys::citizen(tenant, id))?.is_none() {
            return Ok(Err(Invalid(format!("unknown citizen {id}"))));
        }
        requesters.push(id.clone());
    }
    // The requester, when the party names a citizen (an élu or a council named only by
    // `on_behalf_of` is no citizen).
    let party = e.personal.as_ref().and_then(|p| p.party.as_ref());
    let names_someone = party.is_some_and(|p| {
        !p.citizen_id.is_empty()
            || crate::identity::normalize_phone(&p.phone).is_some()
            || crate::identity::normalize_email(&p.email).is_some()
    });
    let number = citizens::number_for(kv, v)?;
    if let (true, Some(n)) = (crate::seal::erased(e), number) {
        citizens::erased_shell(kv, tenants, v, n)?;
    }
    if names_someone {
        if let citizens::Resolution::Attached { citizen, .. } =
            citizens::resolve_party(kv, tenants, v, number)?
        {
            if !requesters.contains(&citizen) {
                requesters.insert(0, citizen);
            }
        }
    }
    let personal = e.personal.clone().unwrap_or_default();
    create(
        kv,
        tenants,
        v,
        New {
            subject: personal.subject,
            category: e.category,
            service: o.service.clone(),
            requesters: requesters.clone(),
            from_contact: o.from_contact_event_id.clone(),
            first_us: first,
            on_behalf_of: o.on_behalf_of.clone(),
            location: personal.location,
            channel,
            chrono: String::new(),
        },
    )?;
    Ok(Ok(requesters))
}

/// Every letter registered by the mail room is a request: opened by the letter itself, owned
/// by the service it is addressed to, its clock started on the day it was received.
pub(crate) fn open_for_letter(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    c: &pb::Courrier,
    citizen: &str,
) -> Result<String> {
    let new = opened_by(
        v,
        &c.addressed_to_service,
        citizen,
        pb::Channel::Courrier,
        &c.chrono,
    );
    Ok(create(kv, tenants, v, new)?.reference)
}

/// A request opened by the contact being folded, from `citizen` (empty: no one yet).
fn opened_by(v: &Valid, service: &str, citizen: &str, channel: pb::Channel, chrono: &str) -> New {
    let personal = v.event.personal.clone().unwrap_or_default();
    New {
        subject: personal.subject,
        category: v.event.category,
        service: service.to_string(),
        requesters: if citizen.is_empty() {
            vec![]
        } else {
            vec![citizen.to_string()]
        },
        from_contact: v.event.event_id.clone(),
        first_us: v.occurred_us,
        on_behalf_of: String::new(),
        location: personal.location,
        channel: channel as i32,
        chrono: chrono.to_string(),
    }
}

/// A portal's file is a request: its first submission opens it (owned by the service of its
/// category), the next ones — its status changes — join it, closed or not, and give it its
/// requester if it had none (see `WebForm.thread_id`). Its reference.
pub(crate) fn follow_file(
    kv: &mut impl Kv,
    tenants: &Tenants,
    v: &Valid,
    thread_id: &str,
    citizen: &str,
) -> Result<String> {
    let e = v.event;
    let file = keys::portal_file(&e.tenant, thread_id);
    if let Some(reference) = kv.get(&file)? {
        let reference = String::from_utf8_lossy(&reference).into_owned();
        if let Some(mut r) = get_msg::<Request>(kv, &keys::request(&e.tenant, &reference))? {
            if !r.contacts.contains(&e.event_id) {
                r.contacts.push(e.event_id.clone());
            }
            if r.requesters.is_empty() && !citizen.is_empty() {
                r.requesters.push(citizen.to_string());
            }
            step(
                &mut r,
                e,
                "linked",
                "suite du dossier".into(),
                v.occurred_us,
            );
            put(kv, &r)?;
            return Ok(reference);
        }
    }
    let service = tenants
        .get(&e.tenant)
        .and_then(|t| t.service_of_category(e.category))
        .map(|s| s.code.clone())
        .unwrap_or_default();
    let r = create(
        kv,
        tenants,
        v,
        opened_by(v, &service, citizen, pb::Channel::WebForm, ""),
    )?;
    kv.put(file, r.reference.as_bytes().to_vec());
    Ok(r.reference)
}

/// The mail room routed or answered the letter a request follows: the request moves with it.
pub(crate) fn letter_moved(kv: &mut impl Kv, v: &Valid, reference: &str) -> Result<()> {
    let e = v.event;
    let Some(mut r) = get_msg::<Request>(kv, &keys::request(&e.tenant, reference))? else {
        return Ok(());
    };
    if r.status == RequestStatus::Closed as i32 {
        return Ok(());
    }
    let (kind, note) = match v.payload {
        Payload::CourrierRouted(c) => {
            r.service = c.service.clone();
            if r.status == RequestStatus::Open as i32 {
                r.status = RequestStatus::Assigned as i32;
            }
            ("service", c.service.clone())
        }
        Payload::CourrierAnswered(a) => {
            answer(
                kv,
                &mut r,
                e,
                a.answer_channel,
                &a.answer_ref,
                v.occurred_us,
            )?;
            ("answered", a.answer_ref.clone())
        }
        _ => return Ok(()),
    };
    step(&mut r, e, kind, note, v.occurred_us);
    put(kv, &r)
}

/// Records the written answer `a` on `r` (not yet written back), on its letter, and on the
/// members of a collective (each on its requesters' preferred channel).
pub(super) fn answered(
    kv: &mut impl Kv,
    v: &Valid,
    r: &mut Request,
    a: &pb::RequestAnswered,
) -> Result<()> {
    let e = v.event;
    let tenant = &e.tenant;
    answer(kv, r, e, a.answer_channel, &a.answer_ref, v.occurred_us)?;
    if !r.chrono.is_empty() {
        super::courrier::answered_by_request(kv, v, &r.chrono, a)?;
    }
    for m in &r.members {
        let Some(mut member) = get_msg::<Request>(kv, &keys::request(tenant, m))? else {
            continue;
        };
        if member.status == RequestStatus::Closed as i32 {
            continue;
        }
        let channel =
            preferred_channel(kv, tenant, &member.requesters)?.unwrap_or(a.answer_channel);
        answer(kv, &mut member, e, channel, &a.answer_ref, v.occurred_us)?;
        step(
            &mut member,
            e,
            "answered",
            format!("réponse collective {}", r.reference),
            v.occurred_us,
        );
        put(kv, &member)?;
    }
    Ok(())
}

/// Any later event of a request (`Event.request_id` is its reference).
pub(crate) fn follow(kv: &mut impl Kv, tenants: &Tenants, v: &Valid) -> Folded<Vec<String>> {
    let e = v.event;
    let tenant = &e.tenant;
    let Some(mut r) = get_msg::<Request>(kv, &keys::request(tenant, &e.request_id))? else {
        return Ok(Err(Invalid(format!("unknown request {}", e.request_id))));
    };
    let closed = r.status == RequestStatus::Closed as i32;
    let (kind, note) = match v.payload {
        Payload::RequestAssigned(a) => {
            if closed {
                return Ok(Err(Invalid(format!("request {} is closed", r.reference))));
            }
            if !a.service.is_empty() {
                r.service = a.service.clone();
                if !r.chrono.is_empty() {
                    super::courrier::routed_by_request(kv, v, &r.chrono, &a.service)?;
                }
            }
            r.assignee_agent_id = a.assignee_agent_id.clone();
            r.status = RequestStatus::Assigned as i32;
            // A typed fact: to an agent (their id), else to a service (its code); its words
            // are the reader's (`render::step_fr`, the service's name from the commune).
            if a.assignee_agent_id.is_empty() && !a.service.is_empty() {
                ("service", a.service.clone())
            } else {
                ("assigned", a.assignee_agent_id.clone())
            }
        }
        Payload::RequestStatusChanged(s) => {
            if closed || s.status == RequestStatus::Closed as i32 {
                return Ok(Err(Invalid(
                    "a request is closed by request_closed only".into(),
                )));
            }
            r.status = s.status;
            ("status", String::new())
        }
        Payload::RequestAnswered(a) => {
            if closed {
                return Ok(Err(Invalid(format!("request {} is closed", r.reference))));
            }
            answered(kv, v, &mut r, a)?;
            ("answered", a.answer_ref.clone())
        }
        Payload::RequestGrouped(g) => {
            if closed || !r.collective.is_empty() {
                return Ok(Err(Invalid(format!(
                    "request {} cannot gather others (closed, or itself grouped)",
                    r.reference
                ))));
            }
            for m in &g.members {
                let Some(mut member) = get_msg::<Request>(kv, &keys::request(tenant, m))? else {
                    return Ok(Err(Invalid(format!("unknown request {m}"))));
                };
                if *m == r.reference || !member.members.is_empty() {
                    return Ok(Err(Invalid(format!(
                        "request {m} cannot join the collective {}",
                        r.reference
                    ))));
                }
                member.collective = r.reference.clone();
                step(
                    &mut member,
                    e,
                    "grouped",
                    r.reference.clone(),
                    v.occurred_us,
                );
                put(kv, &member)?;
                if !r.members.contains(m) {
                    r.members.push(m.clone());
                }
            }
            ("grouped", g.members.join(", "))
        }
        Payload::RequestClosed(c) => {
            if closed {
                return Ok(Err(Invalid(format!(
                    "request {} is already closed",
                    r.reference
                ))));
            }
            use pb::CloseReason as R;
            match R::try_from(c.reason).unwrap_or(R::Unspecified) {
                R::Answered if r.status != RequestStatus::Answered as i32 => {
                    return Ok(Err(Invalid(format!(
                        "request {} has no written answer recorded",
                        r.reference
                    ))))
                }
                R::Redirected if c.redirected_to.trim().is_empty() => {
                    return Ok(Err(Invalid(
                        "a redirected request names the administration it went to".into(),
                    )))
                }
                R::Duplicate
                    if c.duplicate_of == r.reference
                        || kv.get(&keys::request(tenant, &c.duplicate_of))?.is_none() =>
                {
                    return Ok(Err(Invalid(format!(
                        "duplicate_of {:?} is not another request of this commune",
                        crate::limits::quote(&c.duplicate_of)
                    ))))
                }
                R::Unspecified => {
                    return Ok(Err(Invalid(
                        "a request is never closed silently: a written answer or a reason".into(),
                    )))
                }
                _ => {}
            }
            // A collective closed on its answer closes its answered members with it.
            if c.reason == R::Answered as i32 {
                for m in &r.members {
                    let Some(mut member) = get_msg::<Request>(kv, &keys::request(tenant, m))?
                    else {
                        continue;
                    };
                    if member.status == RequestStatus::Answered as i32 {
                        member.status = RequestStatus::Closed as i32;
                        member.closed_at = e.occurred_at;
                        member.close_reason = c.reason;
                        step(
                            &mut member,
                            e,
                            "closed",
                            format!("demande collective {}", r.reference),
                            v.occurred_us,
                        );
                        put(kv, &member)?;
                    }
                }
            }
            if c.reason != R::Answered as i32 && r.answered_at.is_none() {
                counters::dashboard(
                    kv,
                    tenant,
                    v.occurred_us,
                    &slice(&r).dims(),
                    dashboard::CLOSED_OTHER,
                )?;
            }
            super::answers::cancel_pending(kv, tenant, &r.reference)?;
            r.status = RequestStatus::Closed as i32;
            r.closed_at = e.occurred_at;
            r.close_reason = c.reason;
            r.redirected_to = c.redirected_to.clone();
            r.duplicate_of = c.duplicate_of.clone();
            ("closed", c.resolution.clone())
        }
        Payload::RequestReopened(_) => {
            if r.status != RequestStatus::Closed as i32
                && r.status != RequestStatus::Answered as i32
            {
                return Ok(Err(Invalid(format!(
                    "request {} is not closed",
                    r.reference
                ))));
            }
            r.status = RequestStatus::Reopened as i32;
            r.closed_at = None;
            ("reopened", String::new())
        }
        Payload::RequestLinked(l) => {
            let Some(at) = occurred(kv, tenant, &l.contact_event_id)? else {
                return Ok(Err(Invalid(format!(
                    "unknown contact {}",
                    l.contact_event_id
                ))));
            };
            if !r.contacts.contains(&l.contact_event_id) {
                r.contacts.push(l.contact_event_id.clone());
            }
            kv.put(
                keys::contact_request(tenant, &l.contact_event_id, &r.reference),
                Vec::new(),
            );
            follow_thread(kv, tenant, &l.contact_event_id, &r.reference)?;
            // The clock starts at the first contact on any channel.
            let first = r
                .first_contact_at
                .as_ref()
                .and_then(ts::to_micros)
                .unwrap_or(at);
            if at < first {
                r.first_contact_at = Some(ts::from_micros(at));
                r.due_at = Some(ts::from_micros(due(tenants, tenant, r.category, at)));
            }
            ("linked", l.contact_event_id.clone())
        }
        _ => return Ok(Ok(vec![])),
    };
    step(&mut r, e, kind, note, v.occurred_us);
    put(kv, &r)?;
    Ok(Ok(r.requesters.clone()))
}

#[cfg(test)]
mod tests {
    use super::quoted_reference;

    #[test]
    fn references_are_found_in_what_citizens_write() {
        assert_eq!(
            quoted_reference("Re: votre demande GIV-D-2026-000042 du 3 mars", "GIV").as_deref(),
            Some("GIV-D-2026-000042")
        );
        assert_eq!(
            quoted_reference("GIV-D-26-42 et GIV-D-2026-00004", "GIV"),
            None
        );
        assert_eq!(
            quoted_reference("GRI-D-2026-000042", "GIV"),
            None,
            "another commune's"
        );
        assert_eq!(quoted_reference("é GIV-D-2026-0000é", "GIV"), None);
    }
}
