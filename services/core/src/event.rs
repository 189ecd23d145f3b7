//! Events on the log: encoding, decoding, validation and deterministic ids.

use crate::identity::{normalize_email, normalize_phone, valid_id};
use crate::limits::{self, check_chars};
use crate::pb::{self, event::Payload, Channel, Event};
use crate::tenant::Tenants;
use contacthub_proto::ts;
use prost::Message;

/// The version of the contract this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Headers every event carries on the log, so consumers can route without decoding.
pub const HEADER_EVENT_TYPE: &str = "contacthub-event-type";
pub const HEADER_SCHEMA_VERSION: &str = "contacthub-schema-version";
pub const HEADER_TENANT: &str = "contacthub-tenant";

/// Namespace of contacthub's UUIDv5 event ids.
const EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c0a_7c1b_5e2d_4f43_9a61_2b9e_0c48_d301);

/// Earliest `occurred_at` accepted: nothing in the communes' systems is older.
const EARLIEST_US: i64 = 631_152_000_000_000; // 1990-01-01T00:00:00Z
/// Latest `recorded_at` accepted.
const LATEST_US: i64 = 7_258_118_400_000_000; // 2200-01-01T00:00:00Z
/// How far `occurred_at` may lie after `recorded_at` (clock skew between systems).
const MAX_SKEW_US: i64 = 86_400_000_000;

/// The deterministic id of the event `source_id` from `source` for `tenant`: the same contact
/// read twice gets the same id, so it is projected once.
pub fn event_id(tenant: &str, source: &str, source_id: &str) -> String {
    let name = format!("{tenant}\0{source}\0{source_id}");
    uuid::Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes()).to_string()
}

/// The kind of an event's payload, e.g. `"phone_call"`: header value and timeline `kind`.
pub fn kind(payload: &Payload) -> &'static str {
    match payload {
        Payload::PhoneCall(_) => "phone_call",
        Payload::Courrier(_) => "courrier",
        Payload::WebForm(_) => "web_form",
        Payload::Sms(_) => "sms",
        Payload::Email(_) => "email",
        Payload::DeskVisit(_) => "desk_visit",
        Payload::IdentityLinked(_) => "identity_linked",
        Payload::IdentityUnlinked(_) => "identity_unlinked",
        Payload::HouseholdMembership(_) => "household_membership",
        Payload::RequestOpened(_) => "request_opened",
        Payload::RequestAssigned(_) => "request_assigned",
        Payload::RequestStatusChanged(_) => "request_status_changed",
        Payload::RequestAnswered(_) => "request_answered",
        Payload::RequestClosed(_) => "request_closed",
        Payload::CourrierRouted(_) => "courrier_routed",
        Payload::CourrierStep(_) => "courrier_step",
        Payload::CourrierAnswered(_) => "courrier_answered",
        Payload::CourrierScanAttached(_) => "courrier_scan_attached",
        Payload::CitizenRegistered(_) => "citizen_registered",
        Payload::CitizenUpdated(_) => "citizen_updated",
        Payload::ContactAttached(_) => "contact_attached",
        Payload::DuplicateDismissed(_) => "duplicate_dismissed",
        Payload::RequestReopened(_) => "request_reopened",
        Payload::RequestLinked(_) => "request_linked",
        Payload::RequestGrouped(_) => "request_grouped",
        Payload::CatalogueAnswerPublished(_) => "catalogue_answer_published",
        Payload::AnswerComposed(_) => "answer_composed",
        Payload::AnswerOutcome(_) => "answer_outcome",
        Payload::CitizenErased(_) => "citizen_erased",
        Payload::ReadsRecorded(_) => "reads_recorded",
        Payload::TicketIssued(_) => "ticket_issued",
        Payload::TicketCalled(_) => "ticket_called",
        Payload::TicketStarted(_) => "ticket_started",
        Payload::TicketClosed(_) => "ticket_closed",
        Payload::ContactNoted(_) => "contact_noted",
        Payload::AccountLinked(_) => "account_linked",
        Payload::AccountProposed(_) => "account_proposed",
        Payload::AppointmentBooked(_) => "appointment_booked",
        Payload::AppointmentCancelled(_) => "appointment_cancelled",
        Payload::AppointmentAttended(_) => "appointment_attended",
        Payload::NoticeQueued(_) => "notice_queued",
        Payload::NoticeOutcome(_) => "notice_outcome",
    }
}

/// The channel a payload belongs to.
pub fn channel_of(payload: &Payload) -> Channel {
    match payload {
        Payload::PhoneCall(_) => Channel::Phone,
        Payload::Courrier(_) => Channel::Courrier,
        Payload::WebForm(_) => Channel::WebForm,
        Payload::Sms(_) => Channel::Sms,
        Payload::Email(_) => Channel::Email,
        Payload::DeskVisit(_) => Channel::Desk,
        _ => Channel::BackOffice,
    }
}

/// Whether the event's party is what its sender declared (an online form's: its citizen id is
/// a claim), rather than what the hub knows (a person signed in to the citizens' space, an
/// agent's entry).
pub fn declared_by_sender(event: &Event) -> bool {
    event.channel == Channel::WebForm as i32
        && event.direction == crate::pb::Direction::Inbound as i32
        && !matches!(&event.payload, Some(Payload::WebForm(w)) if w.signed_in)
}

/// Whether the payload is a contact with a citizen (as opposed to bookkeeping).
pub fn is_contact(payload: &Payload) -> bool {
    channel_of(payload) != Channel::BackOffice
}

/// Encodes an event for the log.
pub fn encode(event: &Event) -> Vec<u8> {
    event.encode_to_vec()
}

/// Log headers for an event.
pub fn headers(event: &Event) -> Vec<(String, Vec<u8>)> {
    let kind = event.payload.as_ref().map(kind).unwrap_or("unknown");
    vec![
        (HEADER_EVENT_TYPE.into(), kind.as_bytes().to_vec()),
        (
            HEADER_SCHEMA_VERSION.into(),
            event.schema_version.to_string().into_bytes(),
        ),
        (HEADER_TENANT.into(), event.tenant.as_bytes().to_vec()),
    ]
}

/// Why an event cannot be projected. The text goes into the dead-letter record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// A citizens' space account id: 64 lower-case hex digits (a keyed hash).
fn account_id(id: &str) -> Result<(), Invalid> {
    if id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(invalid(format!(
            "account_id {:?} is not 64 hex digits",
            limits::quote(id)
        )))
    }
}

/// The documents an opened event names, by SHA-256: its attachments and an answer's letter.
pub fn documents(event: &Event) -> impl Iterator<Item = &str> {
    let letter = match &event.payload {
        Some(Payload::AnswerOutcome(o)) if !o.pdf_sha256.is_empty() => Some(o.pdf_sha256.as_str()),
        _ => None,
    };
    event
        .attachments
        .iter()
        .map(|a| a.sha256.as_str())
        .chain(letter)
}

/// Decodes an event from log bytes.
pub fn decode(bytes: &[u8]) -> Result<Event, Invalid> {
    Event::decode(bytes).map_err(|e| invalid(format!("not a contacthub event: {e}")))
}

/// An event that passed validation, with its times in microseconds.
#[derive(Debug, Clone)]
pub struct Valid<'a> {
    pub event: &'a Event,
    pub payload: &'a Payload,
    pub occurred_us: i64,
    /// The key of the keyring that sealed it (empty: not sealed, or sealed with a key that
    /// was destroyed).
    pub key_id: &'a str,
}

/// Checks an event against the contract and the configured tenants.
pub fn validate<'a>(event: &'a Event, tenants: &Tenants) -> Result<Valid<'a>, Invalid> {
    // An event whose personal part was erased is checked for everything else.
    let erased = crate::seal::erased(event);
    if event.schema_version == 0 || event.schema_version > SCHEMA_VERSION {
        return Err(invalid(format!(
            "unsupported schema_version {} (this build reads 1..={SCHEMA_VERSION})",
            event.schema_version
        )));
    }
    if event.event_id.is_empty() {
        return Err(invalid("missing event_id"));
    }
    if event.event_id.len() > 128 || event.event_id.contains(|c: char| c.is_control()) {
        return Err(invalid(
            "event_id is longer than 128 characters or has control characters",
        ));
    }
    check_limits(event)?;
    if event.tenant.is_empty() {
        return Err(invalid("missing tenant"));
    }
    if tenants.get(&event.tenant).is_none() {
        return Err(invalid(format!(
            "unknown tenant {:?}",
            limits::quote(&event.tenant)
        )));
    }
    let payload = event
        .payload
        .as_ref()
        .ok_or_else(|| invalid("missing payload"))?;
    let expected = channel_of(payload);
    if event.channel != expected as i32 {
        return Err(invalid(format!(
            "channel {} does not match payload {} (expected {})",
            Channel::try_from(event.channel)
                .map_or("unknown".into(), |c| c.as_str_name().to_string()),
            kind(payload),
            expected.as_str_name()
        )));
    }
    let recorded_us = event
        .recorded_at
        .as_ref()
        .ok_or_else(|| invalid("missing recorded_at"))
        .and_then(|t| {
            ts::to_micros(t).ok_or_else(|| invalid("recorded_at is not a valid timestamp"))
        })?;
    let occurred_us = event
        .occurred_at
        .as_ref()
        .ok_or_else(|| invalid("missing occurred_at"))
        .and_then(|t| {
            ts::to_micros(t).ok_or_else(|| invalid("occurred_at is not a valid timestamp"))
        })?;
    if !(EARLIEST_US..LATEST_US).contains(&recorded_us) {
        return Err(invalid(format!(
            "recorded_at {} is outside 1990..2200",
            fmt_us(recorded_us)
        )));
    }
    if occurred_us < EARLIEST_US || occurred_us > recorded_us + MAX_SKEW_US {
        return Err(invalid(format!(
            "occurred_at {} is absurd (before 1990 or more than a day after recorded_at {})",
            fmt_us(occurred_us),
            fmt_us(recorded_us)
        )));
    }
    let need_request = |what: &str| {
        if event.request_id.is_empty() {
            Err(invalid(format!("{what} without request_id")))
        } else if !valid_id(&event.request_id) {
            Err(invalid(format!(
                "request_id {:?} is not a valid id",
                limits::quote(&event.request_id)
            )))
        } else {
            Ok(())
        }
    };
    let need_citizen = |field: &str, id: &str| {
        if valid_id(id) {
            Ok(())
        } else {
            Err(invalid(format!(
                "{field} {:?} is not a valid citizen id",
                limits::quote(id)
            )))
        }
    };
    // A ticket's shape only: which sites and counters exist is the communes file's of the
    // day it was written (checked by the writer), not of a replay.
    let ticket = |id: &str| -> Result<(), Invalid> {
        if crate::accueil::parse_ticket_id(id).is_some() {
            Ok(())
        } else {
            Err(invalid(format!(
                "ticket_id {:?} is not a ticket id",
                limits::quote(id)
            )))
        }
    };
    match payload {
        Payload::TicketIssued(t) => {
            if !crate::accueil::valid_site_code(&t.site) {
                return Err(invalid(format!(
                    "ticket_issued names site {:?}, which is not a site code",
                    limits::quote(&t.site)
                )));
            }
            let mut letter = t.letter.chars();
            if !matches!((letter.next(), letter.next()), (Some(c), None) if c.is_ascii_uppercase())
            {
                return Err(invalid("ticket_issued needs one capital letter"));
            }
            if t.motive == pb::Category::Unspecified as i32
                || pb::Category::try_from(t.motive).is_err()
            {
                return Err(invalid(format!(
                    "ticket_issued: motive {} is not a category",
                    t.motive
                )));
            }
            let label = event.personal.as_ref().map_or("", |p| p.subject.as_str());
            if label.chars().count() > crate::accueil::MOTIVE_LABEL_CHARS {
                return Err(invalid(format!(
                    "ticket_issued: the motive's word is longer than {} characters",
                    crate::accueil::MOTIVE_LABEL_CHARS
                )));
            }
        }
        Payload::TicketCalled(t) => {
            ticket(&t.ticket_id)?;
            if !(1..=crate::accueil::MAX_COUNTERS).contains(&t.counter) {
                return Err(invalid(format!(
                    "ticket_called: counter {} is not 1 to {}",
                    t.counter,
                    crate::accueil::MAX_COUNTERS
                )));
            }
        }
        Payload::TicketStarted(t) => ticket(&t.ticket_id)?,
        Payload::ContactNoted(n) => {
            if n.contact_event_id.is_empty() || n.contact_event_id.len() > 128 {
                return Err(invalid("contact_noted needs the contact's event id"));
            }
            if pb::Category::try_from(n.category).is_err() {
                return Err(invalid(format!(
                    "contact_noted: unknown category {}",
                    n.category
                )));
            }
        }
        Payload::TicketClosed(t) => {
            ticket(&t.ticket_id)?;
            use pb::ticket_closed::Outcome;
            match Outcome::try_from(t.outcome) {
                Ok(Outcome::Transferred) if t.service.is_empty() => {
                    return Err(invalid("ticket_closed: transferred to which service?"))
                }
                Ok(Outcome::Request) if t.request_reference.is_empty() => {
                    return Err(invalid("ticket_closed: turned into which request?"))
                }
                Ok(Outcome::Unspecified) | Err(_) => {
                    return Err(invalid(format!(
                        "ticket_closed: unknown outcome {}",
                        t.outcome
                    )))
                }
                Ok(_) => {}
            }
            limits::check_chars("service", &t.service, limits::LABEL_CHARS)
                .map_err(|e| invalid(format!("ticket_closed: {e}")))?;
            limits::check_chars("request_reference", &t.request_reference, limits::ID_CHARS)
                .map_err(|e| invalid(format!("ticket_closed: {e}")))?;
        }
        Payload::ReadsRecorded(r) => {
            if r.hub.is_empty() || r.hub.len() > 64 || !valid_id(&r.hub) {
                return Err(invalid(format!(
                    "reads_recorded needs a hub name of 1 to 64 characters, not {:?}",
                    limits::quote(&r.hub)
                )));
            }
            if r.reads.is_empty() || r.reads.len() > limits::TRAIL_READS {
                return Err(invalid(format!(
                    "reads_recorded carries 1 to {} lines",
                    limits::TRAIL_READS
                )));
            }
            for line in &r.reads {
                for (field, value) in [
                    ("agent", &line.agent),
                    ("citizen", &line.citizen),
                    ("what", &line.what),
                    ("object", &line.object),
                    ("from", &line.from),
                    ("via", &line.via),
                    ("prev", &line.prev),
                    ("hash", &line.hash),
                ] {
                    limits::check_chars(field, value, limits::ID_CHARS)
                        .map_err(|e| invalid(format!("reads_recorded: {e}")))?;
                }
            }
        }
        Payload::CitizenErased(x) => {
            need_citizen("citizen_id", &x.citizen_id)?;
            for m in &x.merged_citizen_ids {
                need_citizen("merged_citizen_ids", m)?;
            }
            let reason = x.reason.trim();
            if reason.is_empty() || reason.chars().count() > limits::ERASURE_REASON_CHARS {
                return Err(invalid(format!(
                    "citizen_erased needs a reason of 1 to {} characters",
                    limits::ERASURE_REASON_CHARS
                )));
            }
            if x.key_ids.len() > limits::ERASED_KEYS || x.key_ids.iter().any(|k| k.len() > 160) {
                return Err(invalid(format!(
                    "citizen_erased lists at most {} key ids of at most 160 bytes",
                    limits::ERASED_KEYS
                )));
            }
        }
        Payload::CitizenRegistered(r) => {
            if !r.citizen_id.is_empty() {
                need_citizen("citizen_id", &r.citizen_id)?;
                if is_provisional_id(&r.citizen_id) {
                    return Err(invalid(format!(
                        "citizen_id {:?} has the form of a provisional id, which only the projector gives",
                        r.citizen_id
                    )));
                }
            }
            let named = event
                .personal
                .as_ref()
                .and_then(|p| p.identity.as_ref())
                .is_some_and(|i| {
                    !(i.usage_name.trim().is_empty() && i.birth_name.trim().is_empty())
                });
            if !named && !erased {
                check_party(event)?;
            }
        }
        Payload::CitizenUpdated(u) => {
            need_citizen("citizen_id", &u.citizen_id)?;
            let named = event
                .personal
                .as_ref()
                .and_then(|p| p.identity.as_ref())
                .is_some_and(|i| {
                    !(i.usage_name.trim().is_empty() && i.birth_name.trim().is_empty())
                });
            if !named && !erased {
                return Err(invalid(
                    "citizen_updated needs an identity with a usage or birth name",
                ));
            }
        }
        Payload::ContactAttached(a) => {
            need_citizen("citizen_id", &a.citizen_id)?;
            if a.contact_event_id.is_empty() || a.contact_event_id.len() > 128 {
                return Err(invalid("contact_attached needs the contact's event id"));
            }
        }
        Payload::DuplicateDismissed(d) => {
            need_citizen("citizen_id", &d.citizen_id)?;
            need_citizen("other_citizen_id", &d.other_citizen_id)?;
            if d.citizen_id == d.other_citizen_id {
                return Err(invalid("duplicate_dismissed names one citizen twice"));
            }
        }
        Payload::IdentityLinked(l) => {
            need_citizen("citizen_id", &l.citizen_id)?;
            need_citizen("into_citizen_id", &l.into_citizen_id)?;
            if l.citizen_id == l.into_citizen_id {
                return Err(invalid("identity_linked links a citizen to itself"));
            }
        }
        Payload::AccountLinked(l) => {
            account_id(&l.account_id)?;
            need_citizen("citizen_id", &l.citizen_id)?;
            use pb::account_linked::Basis;
            match Basis::try_from(l.basis) {
                Ok(Basis::PivotIdentity | Basis::OneTimeCode) if l.evidence.is_empty() => {
                    return Err(invalid("account_linked names no evidence"))
                }
                Ok(Basis::Agent) if !valid_id(&l.proposal_event_id) => {
                    return Err(invalid("account_linked by an agent names no proposal"))
                }
                Ok(Basis::PivotIdentity | Basis::Agent | Basis::OneTimeCode) => {}
                _ => {
                    return Err(invalid(format!(
                        "account_linked: unknown basis {}",
                        l.basis
                    )))
                }
            }
            if l.evidence.len() > 8 || l.evidence.iter().any(|e| e.len() > 32) {
                return Err(invalid("account_linked: evidence too long"));
            }
        }
        Payload::AppointmentBooked(b) => {
            if !valid_id(&b.appointment_id) || !valid_id(&b.kind) {
                return Err(invalid("appointment_booked needs its id and its kind"));
            }
            if b.start.is_none() || !(5..=240).contains(&b.minutes) || !(1..=50).contains(&b.desks)
            {
                return Err(invalid(
                    "appointment_booked needs its start, 5 to 240 minutes, 1 to 50 desks",
                ));
            }
            if !erased {
                check_party(event)?;
            }
        }
        Payload::AppointmentCancelled(c) => {
            if !valid_id(&c.appointment_id) {
                return Err(invalid("appointment_cancelled needs the appointment's id"));
            }
        }
        Payload::AppointmentAttended(a) => {
            if !valid_id(&a.appointment_id) {
                return Err(invalid("appointment_attended needs the appointment's id"));
            }
        }
        Payload::NoticeQueued(n) => {
            use pb::notice_queued::Kind;
            if matches!(Kind::try_from(n.kind), Err(_) | Ok(Kind::Unspecified)) {
                return Err(invalid(format!("notice_queued: unknown kind {}", n.kind)));
            }
            if n.channel != Channel::Email as i32 && n.channel != Channel::Sms as i32 {
                return Err(invalid("notice_queued goes by e-mail or SMS"));
            }
            if n.about.is_empty() {
                return Err(invalid("notice_queued says what it is about"));
            }
            if !erased {
                check_party(event)?;
            }
        }
        Payload::NoticeOutcome(o) => {
            if !valid_id(&o.notice_event_id) || o.attempt == 0 {
                return Err(invalid(
                    "notice_outcome needs the notice's event id and its attempt",
                ));
            }
        }
        Payload::AccountProposed(p) => {
            account_id(&p.account_id)?;
            if p.candidate_citizen_ids.len() > 20 {
                return Err(invalid("account_proposed: more than 20 candidates"));
            }
            for c in &p.candidate_citizen_ids {
                need_citizen("candidate_citizen_ids", c)?;
            }
        }
        Payload::IdentityUnlinked(u) => {
            need_citizen("citizen_id", &u.citizen_id)?;
            need_citizen("from_citizen_id", &u.from_citizen_id)?;
        }
        Payload::HouseholdMembership(h) => {
            need_citizen("citizen_id", &h.citizen_id)?;
            if !valid_id(&h.household_id) {
                return Err(invalid(format!(
                    "household_id {:?} is not a valid id",
                    limits::quote(&h.household_id)
                )));
            }
        }
        Payload::RequestOpened(_) => {
            if !event.request_id.is_empty() {
                return Err(invalid(
                    "request_opened carries no request_id: the projector gives its reference",
                ));
            }
            if !erased {
                check_party(event)?;
            }
        }
        Payload::RequestAssigned(_)
        | Payload::RequestStatusChanged(_)
        | Payload::RequestAnswered(_)
        | Payload::RequestClosed(_)
        | Payload::RequestReopened(_)
        | Payload::RequestLinked(_)
        | Payload::RequestGrouped(_) => need_request(kind(payload))?,
        Payload::AnswerComposed(a) => {
            need_request(kind(payload))?;
            use Channel as C;
            if ![C::Email, C::Sms, C::Courrier, C::WebForm]
                .map(|c| c as i32)
                .contains(&a.channel)
            {
                return Err(invalid(
                    "answer_composed channel is e-mail, SMS, courrier or portal (web form)",
                ));
            }
            let citizen = event
                .personal
                .as_ref()
                .and_then(|p| p.party.as_ref())
                .map_or("", |p| p.citizen_id.as_str());
            if !erased {
                need_citizen("answer_composed party citizen_id", citizen)?;
            }
        }
        Payload::AnswerOutcome(o) => {
            need_request(kind(payload))?;
            if !valid_id(&o.answer_event_id) {
                return Err(invalid("answer_outcome without a valid answer_event_id"));
            }
            if !matches!(
                pb::answer_outcome::Kind::try_from(o.kind),
                Ok(pb::answer_outcome::Kind::Delivered
                    | pb::answer_outcome::Kind::Failed
                    | pb::answer_outcome::Kind::Bounced)
            ) {
                return Err(invalid(
                    "answer_outcome kind is delivered, failed or bounced",
                ));
            }
        }
        Payload::CatalogueAnswerPublished(a) => {
            if !crate::identity::valid_id(&a.answer_id) || a.answer_id.chars().count() > 64 {
                return Err(invalid(format!(
                    "catalogue answer_id {:?} is not an id (at most 64 characters)",
                    limits::quote(&a.answer_id)
                )));
            }
            if chrono::NaiveDate::parse_from_str(&a.reviewed_on, "%Y-%m-%d").is_err() {
                return Err(invalid(format!(
                    "catalogue reviewed_on {:?} is not a date (YYYY-MM-DD)",
                    limits::quote(&a.reviewed_on)
                )));
            }
            if a.title.trim().is_empty() || a.text.trim().is_empty() {
                return Err(invalid("a catalogue answer has a title and a text"));
            }
        }
        Payload::CourrierRouted(pb::CourrierRouted { chrono, .. })
        | Payload::CourrierStep(pb::CourrierStep { chrono, .. })
        | Payload::CourrierAnswered(pb::CourrierAnswered { chrono, .. })
        | Payload::CourrierScanAttached(pb::CourrierScanAttached { chrono }) => {
            if !valid_chrono(chrono) {
                return Err(invalid(format!(
                    "{} has an invalid chrono {:?}",
                    kind(payload),
                    limits::quote(chrono)
                )));
            }
        }
        Payload::Courrier(c) if !c.chrono.is_empty() && !valid_chrono(&c.chrono) => {
            return Err(invalid(format!(
                "courrier has an invalid chrono {:?}",
                limits::quote(&c.chrono)
            )));
        }
        _ => {
            if !event.request_id.is_empty() {
                need_request(kind(payload))?;
            }
            if !erased {
                check_party(event)?;
            }
        }
    }
    Ok(Valid {
        key_id: "",
        event,
        payload,
        occurred_us,
    })
}

/// Whether `id` has the form of a provisional citizen id (`GIV-P000123`), which the
/// projector alone gives to parties nobody knows.
pub fn is_provisional_id(id: &str) -> bool {
    id.rsplit_once("-P").is_some_and(|(prefix, n)| {
        !prefix.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Checks every field against its limit ([`crate::limits`]) and every enum against its known
/// values, naming the first field that is wrong.
pub fn check_limits(event: &Event) -> Result<(), Invalid> {
    let chars =
        |field: &str, value: &str, max: usize| check_chars(field, value, max).map_err(Invalid);
    chars("source", &event.source, limits::LABEL_CHARS)?;
    chars("source_id", &event.source_id, limits::ID_CHARS)?;
    chars("agent_id", &event.agent_id, limits::LABEL_CHARS)?;
    chars("request_id", &event.request_id, limits::ID_CHARS)?;
    if event.fingerprint.len() > 64 {
        return Err(invalid("fingerprint is longer than 64 bytes"));
    }
    if pb::Direction::try_from(event.direction).is_err() {
        return Err(invalid(format!("unknown direction {}", event.direction)));
    }
    if pb::Category::try_from(event.category).is_err() {
        return Err(invalid(format!("unknown category {}", event.category)));
    }
    if event.attachments.len() > limits::ATTACHMENTS {
        return Err(invalid(format!(
            "{} attachments; the limit is {}",
            event.attachments.len(),
            limits::ATTACHMENTS
        )));
    }
    for a in &event.attachments {
        chars("attachment media_type", &a.media_type, limits::LABEL_CHARS)?;
        if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("attachment sha256 is not 64 hex digits"));
        }
    }
    if let Some(p) = &event.personal {
        if let Some(party) = &p.party {
            chars("party.citizen_id", &party.citizen_id, 64)?;
            chars("party.name", &party.name, limits::NAME_CHARS)?;
            chars("party.phone", &party.phone, limits::PHONE_CHARS)?;
            chars("party.email", &party.email, limits::EMAIL_CHARS)?;
            if let Some(a) = &party.address {
                if a.lines.len() > limits::ADDRESS_LINES {
                    return Err(invalid(format!(
                        "party.address has {} lines; the limit is {}",
                        a.lines.len(),
                        limits::ADDRESS_LINES
                    )));
                }
                for l in &a.lines {
                    chars("party.address line", l, limits::ADDRESS_LINE_CHARS)?;
                }
                chars(
                    "party.address.postal_code",
                    &a.postal_code,
                    limits::ADDRESS_LINE_CHARS,
                )?;
                chars("party.address.city", &a.city, limits::ADDRESS_LINE_CHARS)?;
                chars(
                    "party.address.country",
                    &a.country,
                    limits::ADDRESS_LINE_CHARS,
                )?;
            }
        }
        chars("subject", &p.subject, limits::SUBJECT_CHARS)?;
        chars("text", &p.text, limits::TEXT_CHARS)?;
        if p.fields.len() > limits::FIELDS {
            return Err(invalid(format!(
                "{} form fields; the limit is {}",
                p.fields.len(),
                limits::FIELDS
            )));
        }
        for f in &p.fields {
            chars("field name", &f.name, limits::FIELD_NAME_CHARS)?;
            chars("field value", &f.value, limits::FIELD_VALUE_CHARS)?;
        }
        if p.attachment_names.len() > limits::ATTACHMENTS {
            return Err(invalid(format!(
                "{} attachment names; the limit is {}",
                p.attachment_names.len(),
                limits::ATTACHMENTS
            )));
        }
        for n in &p.attachment_names {
            chars("attachment name", n, limits::FILE_NAME_CHARS)?;
        }
        if let Some(i) = &p.identity {
            check_identity(i)?;
        }
        if p.concerns.len() > limits::IDENTIFIERS {
            return Err(invalid(format!(
                "the contact concerns {} citizens; the limit is {}",
                p.concerns.len(),
                limits::IDENTIFIERS
            )));
        }
        for c in &p.concerns {
            if !valid_id(c) {
                return Err(invalid(format!(
                    "concerns {:?}, which is not a citizen id",
                    limits::quote(c)
                )));
            }
        }
    }
    match event.payload.as_ref() {
        Some(Payload::PhoneCall(c)) => {
            if pb::phone_call::Disposition::try_from(c.disposition).is_err() {
                return Err(invalid(format!("unknown disposition {}", c.disposition)));
            }
            for (name, v) in [
                ("duration_seconds", c.duration_seconds),
                ("billed_seconds", c.billed_seconds),
            ] {
                if v > limits::CALL_SECONDS {
                    return Err(invalid(format!(
                        "{name} is {v}; a call lasts at most {} seconds",
                        limits::CALL_SECONDS
                    )));
                }
            }
            chars("commune_number", &c.commune_number, limits::PHONE_CHARS)?;
            chars("transferred_to", &c.transferred_to, limits::LABEL_CHARS)?;
        }
        Some(Payload::Courrier(c)) => {
            if pb::courrier::Kind::try_from(c.kind).is_err() {
                return Err(invalid(format!("unknown courrier kind {}", c.kind)));
            }
            chars("tracking_number", &c.tracking_number, limits::LABEL_CHARS)?;
            chars(
                "addressed_to_service",
                &c.addressed_to_service,
                limits::LABEL_CHARS,
            )?;
        }
        Some(Payload::WebForm(w)) => {
            chars("form_slug", &w.form_slug, limits::LABEL_CHARS)?;
            chars("submission_id", &w.submission_id, limits::ID_CHARS)?;
            chars("thread_id", &w.thread_id, limits::ID_CHARS)?;
        }
        Some(Payload::Sms(m)) => {
            chars("message_sid", &m.message_sid, limits::ID_CHARS)?;
            chars("commune_number", &m.commune_number, limits::PHONE_CHARS)?;
            if m.segments > limits::SMS_SEGMENTS {
                return Err(invalid(format!(
                    "segments is {}; the limit is {}",
                    m.segments,
                    limits::SMS_SEGMENTS
                )));
            }
        }
        Some(Payload::Email(m)) => {
            chars("message_id", &m.message_id, limits::ID_CHARS)?;
            chars("in_reply_to", &m.in_reply_to, limits::ID_CHARS)?;
            chars("thread_id", &m.thread_id, limits::ID_CHARS)?;
            chars("mailbox", &m.mailbox, limits::EMAIL_CHARS)?;
        }
        Some(Payload::DeskVisit(d)) => {
            chars("desk", &d.desk, limits::LABEL_CHARS)?;
            if d.duration_minutes > limits::VISIT_MINUTES {
                return Err(invalid(format!(
                    "duration_minutes is {}; a visit lasts at most {} minutes",
                    d.duration_minutes,
                    limits::VISIT_MINUTES
                )));
            }
        }
        Some(Payload::HouseholdMembership(h)) => chars("role", &h.role, limits::LABEL_CHARS)?,
        Some(Payload::RequestOpened(o)) => {
            chars("kind", &o.kind, limits::LABEL_CHARS)?;
            chars("service", &o.service, limits::LABEL_CHARS)?;
            chars("on_behalf_of", &o.on_behalf_of, limits::LABEL_CHARS)?;
            chars(
                "from_contact_event_id",
                &o.from_contact_event_id,
                limits::ID_CHARS,
            )?;
            if o.requester_citizen_ids.len() > limits::IDENTIFIERS {
                return Err(invalid(format!(
                    "{} requesters; the limit is {}",
                    o.requester_citizen_ids.len(),
                    limits::IDENTIFIERS
                )));
            }
        }
        Some(Payload::RequestLinked(l)) => {
            if l.contact_event_id.is_empty() {
                return Err(invalid("request_linked needs the contact's event id"));
            }
            chars("contact_event_id", &l.contact_event_id, limits::ID_CHARS)?;
        }
        Some(Payload::RequestReopened(_)) => {}
        Some(Payload::AnswerComposed(a)) => {
            chars(
                "catalogue_answer_id",
                &a.catalogue_answer_id,
                limits::ID_CHARS,
            )?;
            chars("channel_reason", &a.channel_reason, limits::LABEL_CHARS)?;
            chars("message_nonce", &a.message_nonce, limits::LABEL_CHARS)?;
        }
        Some(Payload::AnswerOutcome(o)) => {
            chars("answer_event_id", &o.answer_event_id, limits::ID_CHARS)?;
            chars(
                "provider_message_id",
                &o.provider_message_id,
                limits::ID_CHARS,
            )?;
            chars("pdf_sha256", &o.pdf_sha256, limits::LABEL_CHARS)?;
            chars("error", &o.error, limits::NOTE_CHARS)?;
        }
        Some(Payload::CatalogueAnswerPublished(a)) => {
            chars("answer_id", &a.answer_id, limits::ID_CHARS)?;
            chars("demarche", &a.demarche, limits::LABEL_CHARS)?;
            chars("service", &a.service, limits::LABEL_CHARS)?;
            chars("title", &a.title, limits::LABEL_CHARS)?;
            chars("text", &a.text, limits::TEXT_CHARS)?;
            chars("owner", &a.owner, limits::LABEL_CHARS)?;
            chars("reviewed_on", &a.reviewed_on, limits::LABEL_CHARS)?;
        }
        Some(Payload::RequestGrouped(g)) => {
            if g.members.is_empty() || g.members.len() > 1_000 {
                return Err(invalid("request_grouped names 1 to 1,000 member requests"));
            }
            for m in &g.members {
                chars("member", m, limits::ID_CHARS)?;
            }
        }
        Some(Payload::RequestAssigned(a)) => {
            chars("service", &a.service, limits::LABEL_CHARS)?;
            chars(
                "assignee_agent_id",
                &a.assignee_agent_id,
                limits::LABEL_CHARS,
            )?;
        }
        Some(Payload::RequestStatusChanged(s)) => {
            if pb::RequestStatus::try_from(s.status).is_err() {
                return Err(invalid(format!("unknown request status {}", s.status)));
            }
        }
        Some(Payload::RequestAnswered(a)) => {
            chars("answer_event_id", &a.answer_event_id, limits::ID_CHARS)?;
            if Channel::try_from(a.answer_channel).is_err() {
                return Err(invalid(format!(
                    "unknown answer_channel {}",
                    a.answer_channel
                )));
            }
        }
        Some(Payload::RequestClosed(c)) => {
            chars("resolution", &c.resolution, limits::NOTE_CHARS)?;
            chars("redirected_to", &c.redirected_to, limits::LABEL_CHARS)?;
            chars("duplicate_of", &c.duplicate_of, limits::ID_CHARS)?;
            if pb::CloseReason::try_from(c.reason).is_err() {
                return Err(invalid(format!("unknown close reason {}", c.reason)));
            }
        }
        Some(Payload::CourrierRouted(r)) => {
            chars("service", &r.service, limits::LABEL_CHARS)?;
            chars("note", &r.note, limits::NOTE_CHARS)?;
        }
        Some(Payload::CourrierStep(st)) => {
            chars("step", &st.step, limits::LABEL_CHARS)?;
            chars("note", &st.note, limits::NOTE_CHARS)?;
        }
        Some(Payload::CourrierAnswered(a)) => {
            chars("answer_ref", &a.answer_ref, limits::ID_CHARS)?;
            if Channel::try_from(a.answer_channel).is_err() {
                return Err(invalid(format!(
                    "unknown answer_channel {}",
                    a.answer_channel
                )));
            }
        }
        Some(Payload::TicketIssued(t)) => chars("site", &t.site, limits::LABEL_CHARS)?,
        Some(Payload::TicketCalled(t)) => chars("ticket_id", &t.ticket_id, limits::ID_CHARS)?,
        Some(Payload::TicketStarted(t)) => chars("ticket_id", &t.ticket_id, limits::ID_CHARS)?,
        Some(Payload::TicketClosed(t)) => chars("ticket_id", &t.ticket_id, limits::ID_CHARS)?,
        Some(Payload::ContactNoted(n)) => {
            chars("contact_event_id", &n.contact_event_id, limits::ID_CHARS)?
        }
        Some(Payload::AccountLinked(l)) => chars("provider", &l.provider, limits::LABEL_CHARS)?,
        Some(Payload::AppointmentBooked(b)) => {
            chars("appointment_id", &b.appointment_id, limits::ID_CHARS)?;
            chars("kind", &b.kind, limits::ID_CHARS)?;
            chars("replaces", &b.replaces, limits::ID_CHARS)?;
            chars("service", &b.service, limits::LABEL_CHARS)?;
        }
        Some(Payload::AppointmentCancelled(c)) => {
            chars("appointment_id", &c.appointment_id, limits::ID_CHARS)?;
            chars("kind", &c.kind, limits::ID_CHARS)?;
        }
        Some(Payload::AppointmentAttended(a)) => {
            chars("appointment_id", &a.appointment_id, limits::ID_CHARS)?;
            chars("kind", &a.kind, limits::ID_CHARS)?;
        }
        Some(Payload::NoticeQueued(n)) => {
            chars("about", &n.about, limits::ID_CHARS)?;
            chars("appointment_kind", &n.appointment_kind, limits::ID_CHARS)?;
        }
        Some(Payload::NoticeOutcome(o)) => {
            chars("notice_event_id", &o.notice_event_id, limits::ID_CHARS)?;
            chars(
                "provider_message_id",
                &o.provider_message_id,
                limits::ID_CHARS,
            )?;
            chars("error", &o.error, limits::NOTE_CHARS)?;
        }
        Some(Payload::AccountProposed(p)) => chars("provider", &p.provider, limits::LABEL_CHARS)?,
        Some(Payload::IdentityLinked(_))
        | Some(Payload::IdentityUnlinked(_))
        | Some(Payload::CourrierScanAttached(_))
        | Some(Payload::CitizenRegistered(_))
        | Some(Payload::CitizenErased(_))
        | Some(Payload::ReadsRecorded(_))
        | Some(Payload::CitizenUpdated(_))
        | Some(Payload::ContactAttached(_))
        | Some(Payload::DuplicateDismissed(_))
        | None => {}
    }
    // Last: a field over its limit is the better message.
    let size = event.encoded_len();
    if size > limits::EVENT_BYTES {
        return Err(invalid(format!(
            "the event is {size} bytes encoded; the limit is {}",
            limits::EVENT_BYTES
        )));
    }
    Ok(())
}

/// The limits of a citizen record's identity.
fn check_identity(i: &pb::Identity) -> Result<(), Invalid> {
    let chars =
        |field: &str, value: &str, max: usize| check_chars(field, value, max).map_err(Invalid);
    chars("identity.usage_name", &i.usage_name, limits::NAME_CHARS)?;
    chars("identity.birth_name", &i.birth_name, limits::NAME_CHARS)?;
    chars("identity.first_names", &i.first_names, limits::NAME_CHARS)?;
    chars("identity.note", &i.note, limits::NOTE_CHARS)?;
    if !i.birth_date.is_empty()
        && chrono::NaiveDate::parse_from_str(&i.birth_date, "%Y-%m-%d").is_err()
    {
        return Err(invalid(format!(
            "identity.birth_date {:?} is not a date (YYYY-MM-DD)",
            limits::quote(&i.birth_date)
        )));
    }
    if i.addresses.len() > limits::ADDRESS_LINES {
        return Err(invalid(format!(
            "identity has {} addresses; the limit is {}",
            i.addresses.len(),
            limits::ADDRESS_LINES
        )));
    }
    for a in &i.addresses {
        for (field, value) in [
            ("identity.address.number", &a.number),
            ("identity.address.street", &a.street),
            ("identity.address.postcode", &a.postcode),
            ("identity.address.city", &a.city),
            ("identity.address.complement", &a.complement),
        ] {
            chars(field, value, limits::ADDRESS_LINE_CHARS)?;
        }
    }
    if i.phones.len() > limits::IDENTIFIERS || i.emails.len() > limits::IDENTIFIERS {
        return Err(invalid(format!(
            "identity has more than {} phones or e-mails",
            limits::IDENTIFIERS
        )));
    }
    for p in &i.phones {
        chars("identity.phone", p, limits::PHONE_CHARS)?;
    }
    for m in &i.emails {
        chars("identity.email", m, limits::EMAIL_CHARS)?;
    }
    if pb::ContactChannel::try_from(i.preferred_channel).is_err() {
        return Err(invalid(format!(
            "unknown preferred_channel {}",
            i.preferred_channel
        )));
    }
    if let Some(c) = &i.consent {
        chars("identity.consent.source", &c.source, limits::LABEL_CHARS)?;
    }
    Ok(())
}

/// A chrono number: 1 to 40 characters of `[A-Za-z0-9-]`.
pub fn valid_chrono(c: &str) -> bool {
    !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A contact must say who the party is: a citizen id, a usable phone or e-mail, or a name.
fn check_party(event: &Event) -> Result<(), Invalid> {
    let party = event
        .personal
        .as_ref()
        .and_then(|p| p.party.as_ref())
        .ok_or_else(|| invalid("missing party"))?;
    if !party.citizen_id.is_empty() && !valid_id(&party.citizen_id) {
        return Err(invalid("party citizen_id is not a valid citizen id"));
    }
    let usable = !party.citizen_id.is_empty()
        || normalize_phone(&party.phone).is_some()
        || normalize_email(&party.email).is_some()
        || !party.name.trim().is_empty();
    if usable {
        Ok(())
    } else {
        Err(invalid(
            "party has no usable identifier (citizen id, phone, e-mail or name)",
        ))
    }
}

/// The fingerprint of what a source sent for `event` (16 bytes of SHA-256): the event
/// without its receipt time (and without its occurred time when that is only the receipt
/// time, as for SMS webhooks, which carry none), its id and its stored attachments, plus
/// `extra` (the documents as received). The same input received again has the same
/// fingerprint; the same source id with other content has another.
pub fn content_fingerprint(event: &Event, extra: &[&[u8]]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut e = event.clone();
    if e.occurred_at == e.recorded_at {
        e.occurred_at = None;
    }
    e.recorded_at = None;
    e.event_id.clear();
    e.fingerprint.clear();
    e.attachments.clear();
    let mut h = Sha256::new();
    h.update(e.encode_to_vec());
    for x in extra {
        h.update((x.len() as u64).to_be_bytes());
        h.update(x);
    }
    h.finalize()[..16].to_vec()
}

/// Formats microseconds since the epoch as RFC 3339 (UTC), for messages.
pub fn fmt_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{us}us"))
}

/// A contact event with the common fields filled; callers set the payload-specific parts.
pub fn contact(
    tenant: &str,
    source: &str,
    source_id: &str,
    occurred_us: i64,
    recorded_us: i64,
    payload: Payload,
    party: pb::Party,
) -> Event {
    Event {
        event_id: event_id(tenant, source, source_id),
        tenant: tenant.into(),
        channel: channel_of(&payload) as i32,
        occurred_at: Some(ts::from_micros(occurred_us)),
        recorded_at: Some(ts::from_micros(recorded_us)),
        schema_version: SCHEMA_VERSION,
        direction: pb::Direction::Inbound as i32,
        category: pb::Category::Other as i32,
        personal: Some(pb::Personal {
            party: Some(party),
            ..Default::default()
        }),
        source: source.into(),
        source_id: source_id.into(),
        payload: Some(payload),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call() -> Event {
        contact(
            "69091",
            "test",
            "1",
            1_700_000_000_000_000,
            1_700_000_000_000_000,
            Payload::PhoneCall(pb::PhoneCall::default()),
            pb::Party {
                phone: "06 12 34 56 78".into(),
                ..Default::default()
            },
        )
    }

    fn reason(e: &Event) -> String {
        validate(e, &Tenants::builtin()).unwrap_err().0
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(event_id("69091", "cdr", "1"), event_id("69091", "cdr", "1"));
        assert_ne!(event_id("69091", "cdr", "1"), event_id("69096", "cdr", "1"));
        assert_ne!(event_id("69091", "cdr", "1"), event_id("69091", "sms", "1"));
    }

    #[test]
    fn a_good_event_validates() {
        assert!(validate(&call(), &Tenants::builtin()).is_ok());
    }

    #[test]
    fn bad_events_say_what_is_wrong() {
        let mut e = call();
        e.tenant = "99999".into();
        assert_eq!(reason(&e), "unknown tenant \"99999\"");
        let mut e = call();
        e.event_id.clear();
        assert_eq!(reason(&e), "missing event_id");
        let mut e = call();
        e.occurred_at = Some(ts::from_micros(33_000_000_000_000_000));
        assert!(
            reason(&e).starts_with("occurred_at 3015-"),
            "{}",
            reason(&e)
        );
        let mut e = call();
        e.channel = Channel::Sms as i32;
        assert!(reason(&e).contains("does not match payload phone_call"));
        let mut e = call();
        e.personal = None;
        assert_eq!(reason(&e), "missing party");
        let mut e = call();
        e.personal.as_mut().unwrap().party.as_mut().unwrap().phone = "n/a".into();
        assert!(reason(&e).starts_with("party has no usable identifier"));
        let mut e = call();
        e.personal.as_mut().unwrap().subject = "x".repeat(limits::SUBJECT_CHARS + 1);
        assert_eq!(reason(&e), "subject is 1001 characters; the limit is 1000");
        let mut e = call();
        e.category = 99;
        assert_eq!(reason(&e), "unknown category 99");
        let mut e = call();
        e.payload = Some(Payload::DeskVisit(pb::DeskVisit {
            duration_minutes: u32::MAX,
            ..Default::default()
        }));
        e.channel = Channel::Desk as i32;
        assert!(reason(&e).starts_with("duration_minutes is 4294967295"));
        let mut e = call();
        e.personal.as_mut().unwrap().fields = (0..limits::FIELDS)
            .map(|i| pb::Field {
                name: format!("f{i}"),
                value: "é".repeat(limits::FIELD_VALUE_CHARS),
            })
            .collect();
        assert!(reason(&e).starts_with("the event is"), "{}", reason(&e));
        let mut e = call();
        e.payload = Some(Payload::CitizenRegistered(pb::CitizenRegistered {
            citizen_id: "GIV-P000015".into(),
        }));
        e.channel = Channel::BackOffice as i32;
        assert!(reason(&e).contains("provisional"), "{}", reason(&e));
        let mut e = call();
        e.payload = Some(Payload::RequestClosed(Default::default()));
        e.channel = Channel::BackOffice as i32;
        assert_eq!(reason(&e), "request_closed without request_id");
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(&call());
        for cut in 0..bytes.len() {
            let refused = match decode(&bytes[..cut]) {
                Err(_) => true,
                Ok(e) => validate(&e, &Tenants::builtin()).is_err(),
            };
            assert!(refused, "truncation at {cut} of {} accepted", bytes.len());
        }
    }

    proptest! {
        #[test]
        fn codec_round_trips(
            id in "[a-z0-9-]{0,40}",
            tenant in "[0-9]{5}",
            phone in "\\PC{0,20}",
            subject in "\\PC{0,60}",
            secs in 0i64..4_000_000_000,
            duration in any::<u32>(),
        ) {
            let mut e = call();
            e.event_id = id;
            e.tenant = tenant;
            e.occurred_at = Some(ts::from_micros(secs * 1_000_000));
            let p = e.personal.as_mut().unwrap();
            p.subject = subject;
            p.party.as_mut().unwrap().phone = phone;
            e.payload = Some(Payload::PhoneCall(pb::PhoneCall { duration_seconds: duration, ..Default::default() }));
            let back = decode(&encode(&e)).unwrap();
            prop_assert_eq!(back, e);
        }

        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(e) = decode(&bytes) {
                let _ = validate(&e, &Tenants::builtin());
            }
        }
    }
}
