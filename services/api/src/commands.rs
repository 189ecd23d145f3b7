//! gRPC requests translated into the application layer's commands
//! ([`contacthub_app::commands`]): enum numbers into the domain's enums (an unknown number is
//! refused here, named in French), the citizen reference into a [`Who`]. The commune stays
//! behind: it made the caller's scope.

use contacthub_app::commands::{self as c, Who};
use contacthub_core::pb;
use tonic::Status;

/// A gRPC request as the command it asks for.
pub(crate) trait Command {
    type Out;
    fn command(&self) -> Result<Self::Out, Status>;
}

/// An enum's number as its value, refused when this version does not know it (`unknown`:
/// « catégorie inconnue »).
fn known<E: TryFrom<i32>>(value: i32, unknown: &str) -> Result<E, Status> {
    E::try_from(value).map_err(|_| Status::invalid_argument(format!("{unknown} : {value}")))
}

/// Whom a request is about.
pub(crate) fn who(r: &Option<pb::CitizenRef>) -> Result<Who, Status> {
    use pb::citizen_ref::By;
    match r.as_ref().and_then(|r| r.by.as_ref()) {
        Some(By::CitizenId(id)) => Ok(Who::Record(id.clone())),
        Some(By::Phone(p)) => Ok(Who::Phone(p.clone())),
        Some(By::Email(e)) => Ok(Who::Email(e.clone())),
        None => Err(Status::invalid_argument(
            "indiquez l'usager (fiche, téléphone ou courriel)",
        )),
    }
}

macro_rules! command {
    ($request:ty => $out:ty, |$r:ident| $body:expr) => {
        impl Command for $request {
            type Out = $out;
            fn command(&self) -> Result<$out, Status> {
                let $r = self;
                Ok($body)
            }
        }
    };
}

command!(pb::CreateCitizenRequest => c::CreateCitizen, |r| c::CreateCitizen {
    identity: r.identity.clone(),
    idempotency_key: r.idempotency_key.clone(),
});
command!(pb::UpdateCitizenRequest => c::UpdateCitizen, |r| c::UpdateCitizen {
    citizen_id: r.citizen_id.clone(),
    identity: r.identity.clone(),
    idempotency_key: r.idempotency_key.clone(),
});
command!(pb::SearchCitizensRequest => c::SearchCitizens, |r| c::SearchCitizens {
    query: r.query.clone(),
    page_size: r.page_size,
    page_token: r.page_token.clone(),
});
command!(pb::MergeCitizensRequest => c::MergeCitizens, |r| c::MergeCitizens {
    citizen_id: r.citizen_id.clone(),
    into_citizen_id: r.into_citizen_id.clone(),
    reason: r.reason.clone(),
});
command!(pb::UnmergeCitizenRequest => c::UnmergeCitizen, |r| c::UnmergeCitizen {
    citizen_id: r.citizen_id.clone(),
    reason: r.reason.clone(),
});
command!(pb::SetHouseholdMemberRequest => c::SetHouseholdMember, |r| c::SetHouseholdMember {
    household_id: r.household_id.clone(),
    citizen_id: r.citizen_id.clone(),
    role: r.role.clone(),
    member: r.member,
});
command!(pb::GetHouseholdRequest => c::HouseholdQuery, |r| c::HouseholdQuery {
    household_id: r.household_id.clone(),
    recent: r.recent,
});
command!(pb::ListUnresolvedContactsRequest => c::UnresolvedQuery, |r| c::UnresolvedQuery {
    limit: r.limit,
    include_attached: r.include_attached,
});
command!(pb::LinkAccountRequest => c::LinkAccount, |r| c::LinkAccount {
    proposal_event_id: r.proposal_event_id.clone(),
    citizen_id: r.citizen_id.clone(),
});
command!(pb::AttachContactRequest => c::AttachContact, |r| c::AttachContact {
    contact_event_id: r.contact_event_id.clone(),
    citizen_id: r.citizen_id.clone(),
});
command!(pb::DismissDuplicateRequest => c::DismissDuplicate, |r| c::DismissDuplicate {
    citizen_id: r.citizen_id.clone(),
    other_citizen_id: r.other_citizen_id.clone(),
    reason: r.reason.clone(),
});
command!(pb::GetTimelineRequest => c::TimelinePage, |r| c::TimelinePage {
    citizen: who(&r.citizen)?,
    page_size: r.page_size,
    page_token: r.page_token.clone(),
    channels: r
        .channels
        .iter()
        .map(|&n| known(n, "canal inconnu"))
        .collect::<Result<_, _>>()?,
    since: r.since,
    until: r.until,
});
command!(pb::RecordVisitRequest => c::RecordVisit, |r| c::RecordVisit {
    party: r.party.clone(),
    desk: r.desk.clone(),
    category: known(r.category, "catégorie inconnue")?,
    subject: r.subject.clone(),
    notes: r.notes.clone(),
    occurred_at: r.occurred_at,
    duration_minutes: r.duration_minutes,
    request_id: r.request_id.clone(),
    idempotency_key: r.idempotency_key.clone(),
    agent_id: r.agent_id.clone(),
    for_citizen_ids: r.for_citizen_ids.clone(),
});
command!(pb::RouteCourrierRequest => c::RouteCourrier, |r| c::RouteCourrier {
    chrono: r.chrono.clone(),
    service: r.service.clone(),
    note: r.note.clone(),
    agent_id: r.agent_id.clone(),
});
command!(pb::RecordStepRequest => c::RecordStep, |r| c::RecordStep {
    chrono: r.chrono.clone(),
    step: r.step.clone(),
    note: r.note.clone(),
    agent_id: r.agent_id.clone(),
});
command!(pb::MarkAnsweredRequest => c::MarkAnswered, |r| c::MarkAnswered {
    chrono: r.chrono.clone(),
    answer_channel: known(r.answer_channel, "canal inconnu")?,
    answer_ref: r.answer_ref.clone(),
    agent_id: r.agent_id.clone(),
});
command!(pb::ListCourrierRequest => c::CourrierQuery, |r| c::CourrierQuery {
    service: r.service.clone(),
    status: known(r.status, "statut de courrier inconnu")?,
    since: r.since,
    until: r.until,
    overdue_only: r.overdue_only,
    limit: r.limit,
});
command!(pb::CourrierReportRequest => c::Period, |r| c::Period {
    since: r.since,
    until: r.until,
});
command!(pb::GetDashboardRequest => c::DashboardQuery, |r| c::DashboardQuery {
    from_month: r.from_month.clone(),
    to_month: r.to_month.clone(),
});
command!(pb::OpenRequestRequest => c::OpenRequest, |r| c::OpenRequest {
    subject: r.subject.clone(),
    category: known(r.category, "catégorie inconnue")?,
    service: r.service.clone(),
    from_contact_event_id: r.from_contact_event_id.clone(),
    citizen_id: r.citizen_id.clone(),
    other_requester_citizen_ids: r.other_requester_citizen_ids.clone(),
    on_behalf_of: r.on_behalf_of.clone(),
    location: r.location.clone(),
    idempotency_key: r.idempotency_key.clone(),
});
command!(pb::LinkContactRequest => c::LinkContact, |r| c::LinkContact {
    reference: r.reference.clone(),
    contact_event_id: r.contact_event_id.clone(),
});
command!(pb::AssignRequestRequest => c::AssignRequest, |r| c::AssignRequest {
    reference: r.reference.clone(),
    service: r.service.clone(),
    assignee_agent_id: r.assignee_agent_id.clone(),
});
command!(pb::SetRequestStatusRequest => c::SetRequestStatus, |r| c::SetRequestStatus {
    reference: r.reference.clone(),
    status: known(r.status, "statut inconnu")?,
});
command!(pb::RecordAnswerRequest => c::RecordAnswer, |r| c::RecordAnswer {
    reference: r.reference.clone(),
    answer_channel: known(r.answer_channel, "canal inconnu")?,
    answer_ref: r.answer_ref.clone(),
});
command!(pb::CloseRequestRequest => c::CloseRequest, |r| c::CloseRequest {
    reference: r.reference.clone(),
    reason: known(r.reason, "motif de clôture inconnu")?,
    redirected_to: r.redirected_to.clone(),
    duplicate_of: r.duplicate_of.clone(),
    note: r.note.clone(),
});
command!(pb::GroupRequestsRequest => c::GroupRequests, |r| c::GroupRequests {
    collective: r.collective.clone(),
    members: r.members.clone(),
});
command!(pb::ListRequestsRequest => c::RequestQuery, |r| c::RequestQuery {
    service: r.service.clone(),
    assignee_agent_id: r.assignee_agent_id.clone(),
    open_only: r.open_only,
    overdue_only: r.overdue_only,
    due_within_days: r.due_within_days,
    unassigned_only: r.unassigned_only,
    limit: r.limit,
});
command!(pb::ComposeAnswerRequest => c::ComposeAnswer, |r| c::ComposeAnswer {
    reference: r.reference.clone(),
    channel: known(r.channel, "canal inconnu")?,
    channel_reason: r.channel_reason.clone(),
    subject: r.subject.clone(),
    text: r.text.clone(),
    catalogue_answer_id: r.catalogue_answer_id.clone(),
    attach_letter: r.attach_letter,
    idempotency_key: r.idempotency_key.clone(),
});

command!(pb::IssueTicketRequest => c::IssueTicket, |r| c::IssueTicket {
    site: r.site.clone(),
    motive: known(r.motive, "motif inconnu")?,
    motive_label: r.motive_label.clone(),
    citizen_id: r.citizen_id.clone(),
});
command!(pb::CloseTicketRequest => c::CloseTicket, |r| c::CloseTicket {
    ticket_id: r.ticket_id.clone(),
    outcome: {
        use pb::ticket_closed::Outcome;
        match known::<Outcome>(r.outcome, "issue de ticket inconnue")? {
            Outcome::Settled => c::TicketOutcome::Settled,
            Outcome::Transferred => c::TicketOutcome::Transferred,
            Outcome::Request => c::TicketOutcome::Request,
            Outcome::Absent => c::TicketOutcome::Absent,
            Outcome::Unspecified => {
                return Err(Status::invalid_argument(
                    "indiquez l'issue : réglé, orienté, demande ou absent",
                ))
            }
        }
    },
    service: r.service.clone(),
    request_reference: r.request_reference.clone(),
});
