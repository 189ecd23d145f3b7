//! What a front-end asks of the application layer, as plain Rust in the domain's types: the
//! commands and queries of every feature, with no API message in them (the gRPC service
//! translates its requests into these, the web desk builds them from its forms). None names
//! a commune: a command acts in its caller's [`Scope`](crate::auth::Scope).

use contacthub_core::pb::{
    Address, Category, Channel, CloseReason, CourrierStatus, Identity, Party, RequestStatus,
};
use contacthub_proto::Timestamp;

/// Whom a command or a query is about: a record, or the phone or e-mail one holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Record(String),
    Phone(String),
    Email(String),
}

// --- Records, households, « à rattacher » ---------------------------------------------------

/// A citizen's data erased, by the data protection officer.
#[derive(Debug, Clone, Default)]
pub struct EraseCitizen {
    pub citizen_id: String,
    /// Why, without personal data (« demande de l'intéressé du 02/12/2026 »).
    pub reason: String,
}

/// A new record, typed by an agent.
#[derive(Debug, Clone, Default)]
pub struct CreateCitizen {
    pub identity: Option<Identity>,
    /// The same key twice makes one record.
    pub idempotency_key: String,
}

/// A record's identity replaced (names, birth date, phones, e-mails, addresses, preferred
/// channel and its consent).
#[derive(Debug, Clone, Default)]
pub struct UpdateCitizen {
    pub citizen_id: String,
    pub identity: Option<Identity>,
    pub idempotency_key: String,
}

/// Records matching a name, a phone, an e-mail, a street or a reference.
#[derive(Debug, Clone, Default)]
pub struct SearchCitizens {
    pub query: String,
    pub page_size: u32,
    pub page_token: String,
}

/// One record merged into another, the survivor.
#[derive(Debug, Clone, Default)]
pub struct MergeCitizens {
    pub citizen_id: String,
    pub into_citizen_id: String,
    pub reason: String,
}

/// A merged record separated again.
#[derive(Debug, Clone, Default)]
pub struct UnmergeCitizen {
    pub citizen_id: String,
    pub reason: String,
}

/// A person joining (`member`) or leaving a household, with their role in it.
#[derive(Debug, Clone, Default)]
pub struct SetHouseholdMember {
    pub household_id: String,
    pub citizen_id: String,
    pub role: String,
    pub member: bool,
}

/// A household, with each member's `recent` last contacts.
#[derive(Debug, Clone, Default)]
pub struct HouseholdQuery {
    pub household_id: String,
    pub recent: u32,
}

/// The contacts waiting for their citizen (« à rattacher »).
#[derive(Debug, Clone, Default)]
pub struct UnresolvedQuery {
    pub limit: u32,
    /// Also those already attached since.
    pub include_attached: bool,
}

/// A waiting contact given its citizen.
#[derive(Debug, Clone, Default)]
pub struct AttachContact {
    pub contact_event_id: String,
    pub citizen_id: String,
}

/// A citizens' space account waiting for an agent (its proposal) given its record.
#[derive(Debug, Clone, Default)]
pub struct LinkAccount {
    pub proposal_event_id: String,
    pub citizen_id: String,
}

/// A signed-in person's message to the town hall (« Écrire à la mairie »).
#[derive(Debug, Clone, Default)]
pub struct WriteToTownHall {
    /// One of their open requests; empty: a new matter in `category`, titled `subject`.
    pub reference: String,
    pub category: Category,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<crate::space::Upload>,
    /// The same key twice makes one message (a form sent twice).
    pub idempotency_key: String,
}

/// A signed-in person asks to add someone to their household (« Mon foyer »).
#[derive(Debug, Clone, Default)]
pub struct AskHouseholdChange {
    pub first_names: String,
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// « enfant » or « conjoint ».
    pub relation: String,
    pub note: String,
    /// The livret de famille, an act of birth or of marriage…
    pub attachments: Vec<crate::space::Upload>,
    pub idempotency_key: String,
}

/// Two records an agent says are different people.
#[derive(Debug, Clone, Default)]
pub struct DismissDuplicate {
    pub citizen_id: String,
    pub other_citizen_id: String,
    pub reason: String,
}

// --- The desk -------------------------------------------------------------------------------

/// A page of a citizen's timeline, newest first.
#[derive(Debug, Clone)]
pub struct TimelinePage {
    pub citizen: Who,
    /// 50 when 0.
    pub page_size: u32,
    pub page_token: String,
    /// Every channel when empty.
    pub channels: Vec<Channel>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A visit at a desk, recorded by its agent.
#[derive(Debug, Clone, Default)]
pub struct RecordVisit {
    pub party: Option<Party>,
    pub desk: String,
    pub category: Category,
    pub subject: String,
    pub notes: String,
    /// Now when not given.
    pub occurred_at: Option<Timestamp>,
    pub duration_minutes: u32,
    pub request_id: String,
    pub idempotency_key: String,
    /// Who received the person, on an open hub (an agent's own id otherwise).
    pub agent_id: String,
    /// Other people of the household the visit is also about.
    pub for_citizen_ids: Vec<String>,
}

// --- Élus' permanences ----------------------------------------------------------------------

/// A person an élu met at a permanence, as the élu typed it (perhaps offline, sent later).
#[derive(Debug, Clone, Default)]
pub struct RecordMeeting {
    /// Where the permanence was held (« Mairie annexe du Village »).
    pub place: String,
    /// The person: a name, and a phone or an e-mail address when they gave one (how the
    /// hub finds their record and answers them).
    pub name: String,
    pub phone: String,
    pub email: String,
    /// A postal address on one line, when given.
    pub address: String,
    pub category: Category,
    /// What the person came about.
    pub motive: String,
    /// What the élu promised.
    pub promise: String,
    /// The service that must act on it (its code): a request is opened for it; empty when
    /// nothing is to be done.
    pub service: String,
    /// When they met (the time the élu typed it); now when not given.
    pub occurred_at: Option<Timestamp>,
    /// The same key twice makes one meeting (and one request): the page sends it again
    /// until it hears back.
    pub idempotency_key: String,
}

// --- The mail room --------------------------------------------------------------------------

/// A letter sent to a service.
#[derive(Debug, Clone, Default)]
pub struct RouteCourrier {
    pub chrono: String,
    pub service: String,
    pub note: String,
    /// Who routed it, on an open hub (an agent's own id otherwise).
    pub agent_id: String,
}

/// A step of a letter's circuit.
#[derive(Debug, Clone, Default)]
pub struct RecordStep {
    pub chrono: String,
    pub step: String,
    pub note: String,
    pub agent_id: String,
}

/// A letter answered, and how.
#[derive(Debug, Clone, Default)]
pub struct MarkAnswered {
    pub chrono: String,
    pub answer_channel: Channel,
    pub answer_ref: String,
    pub agent_id: String,
}

/// The mail room's register, filtered.
#[derive(Debug, Clone, Default)]
pub struct CourrierQuery {
    pub service: String,
    /// Any status when unspecified.
    pub status: CourrierStatus,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub overdue_only: bool,
    pub limit: u32,
}

/// A period, open at either end when a bound is not given.
#[derive(Debug, Clone, Default)]
pub struct Period {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// The élus' and services' figures, month `from_month` to `to_month` (`YYYY-MM`).
#[derive(Debug, Clone, Default)]
pub struct DashboardQuery {
    pub from_month: String,
    pub to_month: String,
}

// --- Requests and answers -------------------------------------------------------------------

/// A request opened from a contact, or for a citizen.
#[derive(Debug, Clone, Default)]
pub struct OpenRequest {
    pub subject: String,
    pub category: Category,
    pub service: String,
    pub from_contact_event_id: String,
    pub citizen_id: String,
    pub other_requester_citizen_ids: Vec<String>,
    pub on_behalf_of: String,
    pub location: Option<Address>,
    pub idempotency_key: String,
}

/// A contact joined to a request.
#[derive(Debug, Clone, Default)]
pub struct LinkContact {
    pub reference: String,
    pub contact_event_id: String,
}

/// A request sent to a service, or given to one of its agents.
#[derive(Debug, Clone, Default)]
pub struct AssignRequest {
    pub reference: String,
    pub service: String,
    pub assignee_agent_id: String,
}

/// Where a request stands, as its agent says.
#[derive(Debug, Clone, Default)]
pub struct SetRequestStatus {
    pub reference: String,
    pub status: RequestStatus,
}

/// A request answered outside the hub (its proof: a letter's reference, a sent message).
#[derive(Debug, Clone, Default)]
pub struct RecordAnswer {
    pub reference: String,
    pub answer_channel: Channel,
    pub answer_ref: String,
}

/// A request closed, and why.
#[derive(Debug, Clone, Default)]
pub struct CloseRequest {
    pub reference: String,
    pub reason: CloseReason,
    pub redirected_to: String,
    pub duplicate_of: String,
    pub note: String,
}

/// Requests gathered under a collective one.
#[derive(Debug, Clone, Default)]
pub struct GroupRequests {
    pub collective: String,
    pub members: Vec<String>,
}

/// A worklist.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub service: String,
    pub assignee_agent_id: String,
    pub open_only: bool,
    pub overdue_only: bool,
    pub due_within_days: u32,
    pub unassigned_only: bool,
    pub limit: u32,
}

/// A written answer to a request, previewed or sent on the citizen's channel.
#[derive(Debug, Clone, Default)]
pub struct ComposeAnswer {
    pub reference: String,
    pub channel: Channel,
    /// Why another channel than the one the citizen prefers.
    pub channel_reason: String,
    pub subject: String,
    pub text: String,
    pub catalogue_answer_id: String,
    /// A letter printed for the mail room as well.
    pub attach_letter: bool,
    pub idempotency_key: String,
}

/// What a command with an idempotency key says, without its key: the same key twice with a
/// different content is refused (the event's fingerprint keeps it).
pub(crate) trait Content {
    fn content(&self) -> Vec<u8>;
}

macro_rules! content_without_key {
    ($($t:ty),*) => {$(
        impl Content for $t {
            fn content(&self) -> Vec<u8> {
                let mut same = self.clone();
                same.idempotency_key.clear();
                format!("{same:?}").into_bytes()
            }
        }
    )*};
}
content_without_key!(
    CreateCitizen,
    UpdateCitizen,
    RecordVisit,
    OpenRequest,
    ComposeAnswer,
    RecordMeeting
);

// --- The accueil's waiting line -----------------------------------------------------------

/// A person arrives at the pré-accueil of `site`.
#[derive(Debug, Clone, Default)]
pub struct IssueTicket {
    pub site: String,
    pub motive: Category,
    /// « autre » : a word (at most 40 characters).
    pub motive_label: String,
    /// The person, when known (an agent only: the kiosk names no one).
    pub citizen_id: String,
}

/// How a ticket ended at the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOutcome {
    Settled,
    /// Sent to a service (its code).
    Transferred,
    /// Turned into a request (its reference).
    Request,
    /// Called, never came.
    Absent,
}

/// A ticket closed at the counter.
#[derive(Debug, Clone)]
pub struct CloseTicket {
    pub ticket_id: String,
    pub outcome: TicketOutcome,
    pub service: String,
    pub request_reference: String,
}
