//! The élus' permanences: each person an élu meets is a contact in that person's timeline
//! and, when something must be done, a request assigned to a service, followed like any
//! other. An élu sees the people they met and where the requests born from their
//! permanences stand, nothing of other timelines.

use crate::audit::Reading;
use crate::auth::Scope;
use crate::commands::{Content, RecordMeeting};
use crate::{timestamp, App, Error, Result};
use contacthub_core::event::{contact, content_fingerprint};
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::limits::{self, quote};
use contacthub_core::pb::{self, event::Payload, Category, RequestStatus};
use contacthub_core::tenant::Tenant;
use contacthub_proto::ts;

/// How many meetings an élu's page lists.
const LISTED: usize = 200;
/// How long a meeting typed offline may wait before it is sent.
const OFFLINE_DAYS: i64 = 31;
const DAY_US: i64 = 86_400_000_000;
/// The events' source: an élu's permanence.
const SOURCE: &str = "permanence";
/// What the élu typed of the person, kept with the contact as form fields.
const NAME: &str = "Nom";
const PHONE: &str = "Téléphone";
const EMAIL: &str = "Courriel";

/// The source id of the request opened with the meeting `contact`.
fn request_source(contact: &str) -> String {
    format!("{contact}/demande")
}

/// A person an élu met, as that élu reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    /// The contact in the person's timeline.
    pub event_id: String,
    pub occurred_us: i64,
    pub place: String,
    /// Their record, once the hub knows who they are (empty while « à rattacher »).
    pub citizen_id: String,
    /// Their name as the élu typed it (never their record's).
    pub name: String,
    /// The phone or e-mail address the élu typed, as typed.
    pub reach: String,
    pub category: Category,
    pub motive: String,
    pub promise: String,
    /// The request born from it, when one was asked.
    pub request: Option<FollowUp>,
    /// The person's data were erased: nothing of them is shown.
    pub erased: bool,
}

/// Where a request born from a permanence stands, as its élu reads it: no answer text, no
/// note of the service (a confidential service's matters stay its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    pub reference: String,
    pub service_name: String,
    /// A confidential service's matter: the status and dates only when the commune lets
    /// those who orient people follow it (`orientation = "suivi"`).
    pub withheld: bool,
    pub status: RequestStatus,
    pub due_us: Option<i64>,
    pub answered_us: Option<i64>,
    pub closed_us: Option<i64>,
}

impl App {
    /// The commune of `scope` for a permanence: an élu's (anyone's on an open hub).
    fn enter_permanence(&self, scope: &Scope, tenant: &str) -> Result<&Tenant> {
        let commune = self.enter_figures(scope, tenant)?;
        if scope.agent().is_some_and(|a| !a.is_elu()) {
            return Err(Error::Forbidden(
                "les permanences sont celles des élus : un agent enregistre une visite sur la fiche de la personne"
                    .into(),
            ));
        }
        Ok(commune)
    }

    /// Records a person the élu met (and the request for the service that must act, when
    /// named); the same idempotency key again changes nothing and returns the same meeting.
    pub async fn record_meeting(&self, scope: &Scope, m: &RecordMeeting) -> Result<Meeting> {
        let tenant = scope.commune();
        let commune = self.enter_permanence(scope, tenant)?;
        check_meeting(commune, m)?;
        let now = (self.clock)();
        let occurred = timestamp(&m.occurred_at, "occurred_at")?.unwrap_or(now);
        if occurred > now + 5 * 60_000_000 {
            return Err(Error::Invalid(
                "la date de la rencontre est dans le futur : vérifiez l'heure de l'appareil".into(),
            ));
        }
        if occurred < now - OFFLINE_DAYS * DAY_US {
            return Err(Error::Invalid(format!(
                "cette rencontre date de plus de {OFFLINE_DAYS} jours : enregistrez-la comme une visite à l'accueil"
            )));
        }
        // An élu's keys are their own: another's key names another meeting.
        let key = if m.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            m.idempotency_key.clone()
        };
        let source_id = format!("{}/{key}", scope.agent_id());
        let typed = |s: &str| s.trim().to_string();
        // Who, as typed: the hub finds their record by it; the élu reads it back as typed.
        let party = pb::Party {
            name: typed(&m.name),
            phone: typed(&m.phone),
            email: typed(&m.email),
            address: (!m.address.trim().is_empty()).then(|| pb::PostalAddress {
                lines: vec![typed(&m.address)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let fields = [(NAME, &m.name), (PHONE, &m.phone), (EMAIL, &m.email)]
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(name, value)| pb::Field {
                name: name.into(),
                value: typed(value),
            })
            .collect();
        let category = match m.category {
            Category::Unspecified => Category::Other,
            c => c,
        };
        let mut e = contact(
            tenant,
            SOURCE,
            &source_id,
            occurred,
            now,
            Payload::DeskVisit(pb::DeskVisit {
                desk: typed(&m.place),
                permanence: true,
                ..Default::default()
            }),
            party.clone(),
        );
        e.category = category as i32;
        e.agent_id = scope.agent_id();
        e.fingerprint = content_fingerprint(&Default::default(), &[&m.content()]);
        if let Some(p) = e.personal.as_mut() {
            p.subject = typed(&m.motive);
            p.text = typed(&m.promise);
            p.fields = fields;
        }
        let mut batch = vec![e];
        let service = m.service.trim();
        if !service.is_empty() {
            // The request is the contact's, asked by whom it names; written with it, so
            // neither is without the other, and sent again both are the same events.
            let mut r = contact(
                tenant,
                SOURCE,
                &request_source(&batch[0].event_id),
                now,
                now,
                Payload::RequestOpened(pb::RequestOpened {
                    service: service.to_string(),
                    from_contact_event_id: batch[0].event_id.clone(),
                    ..Default::default()
                }),
                party,
            );
            r.direction = pb::Direction::Internal as i32;
            r.category = category as i32;
            r.agent_id = scope.agent_id();
            r.fingerprint = content_fingerprint(&Default::default(), &[b"request", &m.content()]);
            if let Some(p) = r.personal.as_mut() {
                p.subject = typed(&m.motive);
            }
            batch.push(r);
        }
        self.append_and_wait(&batch).await?;
        self.meeting(scope, commune, &batch[0].event_id)?
            .ok_or_else(|| {
                Error::Internal(format!("meeting {} projected unseen", batch[0].event_id))
            })
    }

    /// The people the élu met at their permanences, newest first, with where each request
    /// born from them stands.
    pub fn meetings(&self, scope: &Scope) -> Result<Vec<Meeting>> {
        let tenant = scope.commune();
        let commune = self.enter_permanence(scope, tenant)?;
        let mut out = Vec::new();
        // On an open hub (a trial), every élu's.
        let elu = scope.agent().map(|a| a.id.as_str());
        for id in self.store.permanence_meetings(tenant, elu, LISTED)? {
            out.extend(self.meeting(scope, commune, &id)?);
        }
        Ok(out)
    }

    /// One meeting of the élu's, in the read trail when it names someone.
    fn meeting(&self, scope: &Scope, commune: &Tenant, event_id: &str) -> Result<Option<Meeting>> {
        let tenant = &commune.code;
        let Some(entry) = self.store.applied_entry(tenant, event_id)? else {
            return Ok(None);
        };
        // Only the élu who held the permanence reads it (on an open hub, anyone).
        let theirs = scope.agent().is_none_or(|a| a.id == entry.agent_id);
        if !theirs || entry.facts.as_ref().is_none_or(|f| !f.permanence) {
            return Ok(None);
        }
        let occurred_us = entry
            .occurred_at
            .as_ref()
            .and_then(ts::to_micros)
            .unwrap_or_default();
        let detail = self.store.contact_detail(tenant, event_id)?;
        let erased = detail.is_none()
            || (!entry.citizen_id.is_empty()
                && self
                    .store
                    .citizen(tenant, &entry.citizen_id)?
                    .is_some_and(|c| c.erased.is_some()));
        if erased {
            return Ok(Some(Meeting {
                event_id: event_id.into(),
                occurred_us,
                place: String::new(),
                citizen_id: String::new(),
                name: String::new(),
                reach: String::new(),
                category: Category::Other,
                motive: String::new(),
                promise: String::new(),
                request: None,
                erased: true,
            }));
        }
        let detail = detail.unwrap_or_default();
        // What the élu typed, never the record's name: a phone typed tells no one's name.
        let typed = |name: &str| {
            detail
                .fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.value.clone())
                .unwrap_or_default()
        };
        let reach = [typed(PHONE), typed(EMAIL)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        if !entry.citizen_id.is_empty() {
            self.read_by(scope, &entry.citizen_id, Reading::List, event_id)?;
        }
        // The request opened from it (a permanence joins no request it quotes: only one
        // opened from it, or one an agent linked it to), as an agent of no service sees it (a
        // confidential service's matter: where it stands, or only that it exists, as the
        // commune says).
        let request = match self.store.contact_requests(tenant, event_id)?.first() {
            Some(reference) => self.store.request(tenant, reference)?.map(|r| {
                let sight = self.request_sight(scope, commune, &r);
                let r = crate::guard::request_as_seen(r, commune, sight);
                FollowUp {
                    service_name: r.service_name.clone(),
                    status: r.status(),
                    withheld: !r.withheld_service.is_empty(),
                    due_us: r.due_at.as_ref().and_then(ts::to_micros),
                    answered_us: r.answered_at.as_ref().and_then(ts::to_micros),
                    closed_us: r.closed_at.as_ref().and_then(ts::to_micros),
                    reference: r.reference,
                }
            }),
            None => None,
        };
        Ok(Some(Meeting {
            event_id: event_id.into(),
            occurred_us,
            place: entry
                .facts
                .as_ref()
                .map(|f| f.desk.clone())
                .unwrap_or_default(),
            citizen_id: entry.citizen_id.clone(),
            name: typed(NAME),
            reach,
            category: Category::try_from(entry.category).unwrap_or(Category::Other),
            motive: detail.subject,
            promise: detail.text,
            request,
            erased,
        }))
    }
}

/// What an élu typed, checked: someone, a motive, numbers and addresses that are ones,
/// every field within its limit, a service of the commune.
fn check_meeting(commune: &Tenant, m: &RecordMeeting) -> Result<()> {
    let fields = [
        ("le lieu", &m.place, limits::LABEL_CHARS),
        ("le nom", &m.name, limits::NAME_CHARS),
        ("le téléphone", &m.phone, limits::PHONE_CHARS),
        ("l'adresse électronique", &m.email, limits::EMAIL_CHARS),
        ("l'adresse postale", &m.address, limits::ADDRESS_LINE_CHARS),
        ("le motif", &m.motive, limits::SUBJECT_CHARS),
        ("la promesse", &m.promise, limits::NOTE_CHARS),
        ("la clé d'idempotence", &m.idempotency_key, 128),
    ];
    for (what, value, max) in fields {
        if value.chars().count() > max {
            return Err(Error::Invalid(format!("{what} dépasse {max} caractères")));
        }
    }
    if !m
        .idempotency_key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::Invalid(
            "la clé d'idempotence s'écrit en lettres, chiffres et tirets".into(),
        ));
    }
    if m.name.trim().is_empty() && m.phone.trim().is_empty() && m.email.trim().is_empty() {
        return Err(Error::Invalid(
            "indiquez qui vous avez rencontré : un nom, un téléphone ou une adresse électronique"
                .into(),
        ));
    }
    if m.motive.trim().is_empty() {
        return Err(Error::Invalid("indiquez le motif de la rencontre".into()));
    }
    if !m.phone.trim().is_empty() && normalize_phone(m.phone.trim()).is_none() {
        return Err(Error::Invalid(format!(
            "« {} » n'est pas un numéro de téléphone",
            quote(m.phone.trim())
        )));
    }
    if !m.email.trim().is_empty() && normalize_email(m.email.trim()).is_none() {
        return Err(Error::Invalid(format!(
            "« {} » n'est pas une adresse électronique",
            quote(m.email.trim())
        )));
    }
    let service = m.service.trim();
    if !service.is_empty() && commune.service(service).is_none() {
        return Err(Error::Invalid(format!(
            "« {} » n'est pas un service de {}",
            quote(service),
            commune.name
        )));
    }
    Ok(())
}
