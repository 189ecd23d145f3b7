//! Requests (demandes): open one from a contact or directly, assign it, record its written
//! answer, close it (never silently), reopen it, link later contacts, and the worklists of
//! services and agents. Every change is an event; references and due dates are given by the
//! projector.

use crate::auth::Scope;
use crate::commands::{self, Content};
use crate::{App, Error, Result};
use contacthub_core::event::content_fingerprint;
use contacthub_core::identity::valid_id;
use contacthub_core::limits::{self, quote};
use contacthub_core::pb::{self, event::Payload, Request, RequestStatus};
use contacthub_proto::ts;

const DAY_US: i64 = 86_400_000_000;
/// The farthest a list of soon-due requests looks ahead.
const MAX_DUE_WITHIN_DAYS: u32 = 3_660;

impl App {
    /// A request of `tenant` by its reference, whoever asks: for the checks below only.
    pub(crate) fn request(&self, tenant: &str, reference: &str) -> Result<Request> {
        self.tenant(tenant)?;
        if !valid_id(reference) {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas une référence de demande",
                quote(reference)
            )));
        }
        self.store.request(tenant, reference)?.ok_or_else(|| {
            Error::NotFound(format!(
                "aucune demande {} dans cette commune",
                quote(reference)
            ))
        })
    }

    /// A request as `agent` may see it: an agent of services sees their services' requests
    /// and those assigned to them; another's is not found, as in another commune.
    pub fn get_request(&self, scope: &Scope, reference: &str) -> Result<Request> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let r = self.visible_request(scope, tenant, reference)?;
        let sight = self.request_sight(scope, commune, &r);
        if sight == crate::guard::Sight::Full {
            for citizen in &r.requesters {
                self.read_by(scope, citizen, crate::audit::Reading::Request, &r.reference)?;
            }
        }
        let mut seen = crate::guard::request_as_seen(r, commune, sight);
        if sight != crate::guard::Sight::Existence {
            seen.follow_up_code = self.follow_up_code(tenant, &seen.reference);
        }
        Ok(seen)
    }

    /// A request `agent` sees in the worklists (an agent of services: theirs, or assigned to
    /// them), whole, whatever its need-to-know: for the checks of commands.
    fn visible_request(&self, scope: &Scope, tenant: &str, reference: &str) -> Result<Request> {
        let r = self.request(tenant, reference)?;
        match scope.agent() {
            Some(a) if !a.sees_request(&r.service, &r.assignee_agent_id) => Err(Error::NotFound(
                format!("aucune demande {} dans cette commune", quote(reference)),
            )),
            _ => Ok(r),
        }
    }

    /// A request `agent` may read whole and act on: one they see, not a need-to-know matter
    /// of another service. Every command about a request checks it here.
    pub(crate) fn request_for_work(
        &self,
        scope: &Scope,
        tenant: &str,
        reference: &str,
    ) -> Result<Request> {
        let commune = self.tenant(tenant)?;
        let r = self.visible_request(scope, tenant, reference)?;
        if self.request_sight(scope, commune, &r) != crate::guard::Sight::Full {
            return Err(Error::Forbidden(format!(
                "la demande {} est une affaire confidentielle du service {} : seuls ses agents la lisent et la modifient",
                r.reference,
                commune.service_name(&r.service)
            )));
        }
        Ok(r)
    }

    /// Checks that `agent` reads a contact whole before acting on it (opening a request from
    /// it, linking it).
    pub(crate) fn contact_for_work(
        &self,
        scope: &Scope,
        tenant: &str,
        entry: &pb::TimelineEntry,
    ) -> Result<()> {
        let commune = self.tenant(tenant)?;
        let (sight, service) = self.contact_sight(scope, commune, entry)?;
        if sight != crate::guard::Sight::Full {
            return Err(Error::Forbidden(format!(
                "le contact {} est une affaire confidentielle du service {} : seuls ses agents le lisent et le modifient",
                entry.event_id,
                commune.service_name(&service)
            )));
        }
        Ok(())
    }

    /// The request a portal's file (`WebForm.thread_id`: an Open311 report, a Publik form)
    /// opened, for the adapters that tell its caller where it stands; `None` when that file
    /// opened none (yet).
    pub fn request_of_file(
        &self,
        actor: crate::auth::System,
        tenant: &str,
        thread: &str,
    ) -> Result<Option<Request>> {
        actor.allowed(&[crate::auth::System::Adapters], "read files' requests")?;
        self.tenant(tenant)?;
        match self.store.request_of_file(tenant, thread)? {
            Some(reference) => Ok(self.store.request(tenant, &reference)?),
            None => Ok(None),
        }
    }

    /// The requests a citizen asked (as requester), as `agent` may see them, newest first.
    pub fn citizen_requests(&self, scope: &Scope, citizen: &str) -> Result<Vec<Request>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let mut members = self.store.members(tenant, citizen)?;
        members.push(citizen.to_string());
        let mut out: Vec<Request> = self
            .store
            .requests_of(tenant, &members)?
            .into_iter()
            .filter(|r| {
                scope
                    .agent()
                    .is_none_or(|a| a.sees_request(&r.service, &r.assignee_agent_id))
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.opened_at.as_ref().and_then(ts::to_micros)));
        out.truncate(200);
        let out: Vec<Request> = out
            .into_iter()
            .map(|r| {
                let sight = self.request_sight(scope, commune, &r);
                crate::guard::request_as_seen(r, commune, sight)
            })
            .collect();
        self.read_requests(scope, &out)?;
        Ok(out)
    }

    /// Records that `scope` read the lines of `requests` (as seen: a withheld one is not
    /// read), for each requester.
    fn read_requests(&self, scope: &Scope, requests: &[Request]) -> Result<()> {
        for q in requests.iter().filter(|q| q.withheld_service.is_empty()) {
            for citizen in &q.requesters {
                self.read_by(scope, citizen, crate::audit::Reading::List, &q.reference)?;
            }
        }
        Ok(())
    }

    fn request_event(
        &self,
        tenant: &str,
        reference: &str,
        scope: &Scope,
        payload: Payload,
        note: String,
    ) -> pb::Event {
        let source_id = uuid::Uuid::new_v4().to_string();
        let mut e = self.internal_event("requests", tenant, &source_id, &scope.agent_id(), payload);
        e.request_id = reference.into();
        e.personal = (!note.is_empty()).then(|| pb::Personal {
            text: note,
            ..Default::default()
        });
        e
    }

    /// Writes an event about a request and returns the request as it is then.
    async fn follow_request(
        &self,
        tenant: &str,
        reference: &str,
        scope: &Scope,
        payload: Payload,
        note: String,
    ) -> Result<Request> {
        self.request_for_work(scope, tenant, reference)?;
        let e = self.request_event(tenant, reference, scope, payload, note);
        self.write(&e).await?;
        self.request(tenant, reference)
    }

    /// Opens a request; returns it with its reference and due date once visible.
    pub async fn open_request(&self, scope: &Scope, r: &commands::OpenRequest) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if r.subject.trim().is_empty() {
            return Err(Error::Invalid("indiquez l'objet de la demande".into()));
        }
        // The requester: the contact's citizen, or the one named, or whom it is on behalf of.
        let mut party = pb::Party::default();
        let now = (self.clock)();
        if !r.from_contact_event_id.is_empty() {
            let entry = self
                .store
                .applied_entry(tenant, &r.from_contact_event_id)?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "aucun contact {} dans cette commune",
                        quote(&r.from_contact_event_id)
                    ))
                })?;
            self.contact_for_work(scope, tenant, &entry)?;
            party.citizen_id = entry.citizen_id;
            // A letter is followed by the request the mail room opened for it.
            if let Some(existing) = self
                .store
                .request_by_event(tenant, &r.from_contact_event_id)?
            {
                return Err(Error::Invalid(format!(
                    "ce contact ({}) est déjà suivi par la demande {existing}",
                    quote(&r.from_contact_event_id)
                )));
            }
        }
        if !r.citizen_id.is_empty() {
            self.writable_citizen(tenant, &r.citizen_id)?;
            party.citizen_id = r.citizen_id.clone();
        }
        for other in &r.other_requester_citizen_ids {
            self.writable_citizen(tenant, other)?;
        }
        if party.citizen_id.is_empty() {
            if r.on_behalf_of.trim().is_empty() {
                return Err(Error::Invalid(
                    "indiquez qui demande : un contact, une fiche ou au nom de qui".into(),
                ));
            }
            party.name = r.on_behalf_of.clone();
        }
        if r.idempotency_key.chars().count() > 128 {
            return Err(Error::Invalid(
                "la clé d'idempotence dépasse 128 caractères".into(),
            ));
        }
        let source_id = if r.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            r.idempotency_key.clone()
        };
        let mut e = contacthub_core::event::contact(
            tenant,
            "requests",
            &source_id,
            now,
            now,
            Payload::RequestOpened(pb::RequestOpened {
                kind: String::new(),
                service: r.service.trim().to_string(),
                from_contact_event_id: r.from_contact_event_id.clone(),
                requester_citizen_ids: r.other_requester_citizen_ids.clone(),
                on_behalf_of: r.on_behalf_of.clone(),
            }),
            party,
        );
        e.direction = pb::Direction::Internal as i32;
        e.category = if r.category == pb::Category::Unspecified {
            pb::Category::Other as i32
        } else {
            r.category as i32
        };
        e.agent_id = scope.agent_id();
        if let Some(p) = e.personal.as_mut() {
            p.subject = r.subject.trim().to_string();
            p.location = r.location.clone();
        }
        e.fingerprint = content_fingerprint(&Default::default(), &[&r.content()]);
        self.write(&e).await?;
        let reference = self
            .store
            .request_by_event(tenant, &e.event_id)?
            .ok_or_else(|| {
                Error::Internal(format!(
                    "request {} projected without a reference",
                    e.event_id
                ))
            })?;
        let request = self.request(tenant, &reference)?;
        if !r.from_contact_event_id.is_empty() {
            self.acknowledge(tenant, &request, &r.from_contact_event_id)
                .await;
        }
        Ok(request)
    }

    /// A later contact belongs to the request.
    pub async fn link_contact(&self, scope: &Scope, r: &commands::LinkContact) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.request_for_work(scope, tenant, &r.reference)?;
        let entry = self
            .store
            .applied_entry(tenant, &r.contact_event_id)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "aucun contact {} dans cette commune",
                    quote(&r.contact_event_id)
                ))
            })?;
        self.contact_for_work(scope, tenant, &entry)?;
        let payload = Payload::RequestLinked(pb::RequestLinked {
            contact_event_id: r.contact_event_id.clone(),
        });
        self.follow_request(tenant, &r.reference, scope, payload, String::new())
            .await
    }

    /// The agents the caller may give a request to: their colleagues of the commune (see
    /// [`crate::auth::Access::colleagues`]); empty when no agent calls.
    pub fn colleagues(&self, scope: &Scope) -> Vec<String> {
        scope
            .agent()
            .map(|a| self.access.colleagues(a, scope.commune()))
            .unwrap_or_default()
    }

    pub async fn assign_request(
        &self,
        scope: &Scope,
        r: &commands::AssignRequest,
    ) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if r.service.trim().is_empty() && r.assignee_agent_id.trim().is_empty() {
            return Err(Error::Invalid(
                "indiquez à quel service ou à quel agent".into(),
            ));
        }
        let assignee = r.assignee_agent_id.trim();
        if !assignee.is_empty() && !self.access.is_agent_of(assignee, tenant) {
            return Err(Error::Invalid(format!(
                "{} n'est pas un agent de cette commune",
                quote(assignee)
            )));
        }
        if !assignee.is_empty()
            && scope.agent().is_some()
            && !self.colleagues(scope).iter().any(|c| c == assignee)
        {
            return Err(Error::Invalid(
                "cet agent n'est pas de votre service : orientez la demande vers son service"
                    .into(),
            ));
        }
        let payload = Payload::RequestAssigned(pb::RequestAssigned {
            service: r.service.trim().to_string(),
            assignee_agent_id: r.assignee_agent_id.trim().to_string(),
        });
        self.follow_request(tenant, &r.reference, scope, payload, String::new())
            .await
    }

    pub async fn set_request_status(
        &self,
        scope: &Scope,
        r: &commands::SetRequestStatus,
    ) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if !matches!(
            r.status,
            RequestStatus::InProgress | RequestStatus::WaitingCitizen
        ) {
            return Err(Error::Invalid(
                "le statut est « en cours » ou « en attente de l'usager » ; répondre, clôturer et rouvrir ont leurs propres actions".into(),
            ));
        }
        let payload = Payload::RequestStatusChanged(pb::RequestStatusChanged {
            status: r.status as i32,
        });
        self.follow_request(tenant, &r.reference, scope, payload, String::new())
            .await
    }

    /// Records the written answer: how it went, and its reference.
    pub async fn record_answer(
        &self,
        scope: &Scope,
        r: &commands::RecordAnswer,
    ) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if !matches!(
            r.answer_channel,
            pb::Channel::Courrier | pb::Channel::Email | pb::Channel::Sms | pb::Channel::WebForm
        ) {
            return Err(Error::Invalid(
                "la réponse écrite part par courrier, courriel, SMS ou le portail".into(),
            ));
        }
        if r.answer_ref.trim().is_empty() {
            return Err(Error::Invalid(
                "indiquez la référence de la réponse (chrono de départ, Message-ID, identifiant du SMS…)".into(),
            ));
        }
        let payload = Payload::RequestAnswered(pb::RequestAnswered {
            answer_event_id: String::new(),
            answer_channel: r.answer_channel as i32,
            answer_ref: r.answer_ref.trim().to_string(),
        });
        self.follow_request(tenant, &r.reference, scope, payload, String::new())
            .await
    }

    /// Closes a request after its written answer, or with a reason; never silently.
    pub async fn close_request(
        &self,
        scope: &Scope,
        r: &commands::CloseRequest,
    ) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        use pb::CloseReason as R;
        let current = self.request_for_work(scope, tenant, &r.reference)?;
        match r.reason {
            R::Unspecified => {
                return Err(Error::Invalid(
                    "une demande n'est jamais clôturée sans motif : répondue (après la réponse écrite), réorientée, doublon ou retirée".into(),
                ))
            }
            R::Answered if current.status != RequestStatus::Answered as i32 => {
                return Err(Error::Invalid(format!(
                    "la demande {} n'a pas encore de réponse écrite enregistrée",
                    current.reference
                )))
            }
            R::Redirected if r.redirected_to.trim().is_empty() => {
                return Err(Error::Invalid(
                    "indiquez l'administration vers laquelle la demande est réorientée".into(),
                ))
            }
            R::Duplicate => {
                if r.duplicate_of == r.reference {
                    return Err(Error::Invalid("une demande n'est pas le doublon d'elle-même".into()));
                }
                self.request_for_work(scope, tenant, &r.duplicate_of)?;
            }
            _ => {}
        }
        crate::within_limit("la note", &r.note, limits::NOTE_CHARS)?;
        let payload = Payload::RequestClosed(pb::RequestClosed {
            resolution: String::new(),
            reason: r.reason as i32,
            redirected_to: r.redirected_to.trim().to_string(),
            duplicate_of: r.duplicate_of.clone(),
        });
        self.follow_request(tenant, &r.reference, scope, payload, r.note.clone())
            .await
    }

    /// Groups requests about one problem under a collective request.
    pub async fn group_requests(
        &self,
        scope: &Scope,
        r: &commands::GroupRequests,
    ) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let collective = self.request_for_work(scope, tenant, &r.collective)?;
        if r.members.is_empty() {
            return Err(Error::Invalid(
                "choisissez au moins une demande à regrouper".into(),
            ));
        }
        if !collective.collective.is_empty() {
            return Err(Error::Invalid(format!(
                "la demande {} est elle-même regroupée sous {}",
                collective.reference, collective.collective
            )));
        }
        for m in &r.members {
            if *m == r.collective {
                return Err(Error::Invalid(
                    "une demande ne se regroupe pas avec elle-même".into(),
                ));
            }
            // Grouping writes each member: each is checked as any write would be.
            let member = self.request_for_work(scope, tenant, m)?;
            if !member.members.is_empty() {
                return Err(Error::Invalid(format!(
                    "la demande {m} est elle-même une demande collective"
                )));
            }
        }
        let payload = Payload::RequestGrouped(pb::RequestGrouped {
            members: r.members.clone(),
        });
        self.follow_request(tenant, &r.collective, scope, payload, String::new())
            .await
    }

    pub async fn reopen_request(&self, scope: &Scope, reference: &str) -> Result<Request> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let payload = Payload::RequestReopened(pb::RequestReopened {});
        self.follow_request(tenant, reference, scope, payload, String::new())
            .await
    }

    /// A worklist: requests by service or agent, open, overdue, due soon or unassigned,
    /// oldest due first.
    pub fn list_requests(&self, scope: &Scope, r: &commands::RequestQuery) -> Result<Vec<Request>> {
        let tenant = scope.commune();
        let commune = self.enter(scope, tenant)?;
        let now = (self.clock)();
        let limit = match r.limit {
            0 => 100,
            n => n.min(1_000) as usize,
        };
        if r.due_within_days > MAX_DUE_WITHIN_DAYS {
            return Err(Error::Invalid(format!(
                "due_within_days : au plus {MAX_DUE_WITHIN_DAYS} jours"
            )));
        }
        let within = i64::from(r.due_within_days) * DAY_US;
        let due = |q: &Request| {
            q.due_at
                .as_ref()
                .and_then(ts::to_micros)
                .unwrap_or(i64::MAX)
        };
        let closed = |q: &Request| q.status == RequestStatus::Closed as i32;
        let answered = |q: &Request| q.status == RequestStatus::Answered as i32 || closed(q);
        // Lists of what is late or soon due hold open requests only: read those due before
        // the list's bound, not every request of the commune.
        let bound = [
            r.overdue_only.then_some(now),
            (r.due_within_days > 0).then(|| now.saturating_add(within)),
        ]
        .into_iter()
        .flatten()
        .min();
        let candidates = match bound {
            Some(until) => self.store.open_requests_before(tenant, until)?,
            None => self.store.requests(tenant)?,
        };
        let mut out: Vec<Request> = candidates
            .into_iter()
            .filter(|q| {
                scope
                    .agent()
                    .is_none_or(|a| a.sees_request(&q.service, &q.assignee_agent_id))
            })
            .filter(|q| r.service.is_empty() || q.service == r.service)
            .filter(|q| {
                r.assignee_agent_id.is_empty() || q.assignee_agent_id == r.assignee_agent_id
            })
            .filter(|q| !r.open_only || !closed(q))
            .filter(|q| !r.overdue_only || (!answered(q) && due(q) < now))
            .filter(|q| {
                r.due_within_days == 0 || (!answered(q) && due(q) < now.saturating_add(within))
            })
            .filter(|q| !r.unassigned_only || (q.assignee_agent_id.is_empty() && !closed(q)))
            .collect();
        out.sort_by(|a, b| due(a).cmp(&due(b)).then(a.reference.cmp(&b.reference)));
        out.truncate(limit);
        let out: Vec<Request> = out
            .into_iter()
            .map(|q| {
                let sight = self.request_sight(scope, commune, &q);
                crate::guard::request_as_seen(q, commune, sight)
            })
            .collect();
        self.read_requests(scope, &out)?;
        Ok(crate::within_page(out))
    }
}
