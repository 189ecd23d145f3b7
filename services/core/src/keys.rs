//! The read model's key layout: one ordered key space, so one atomic batch can carry every
//! change of a group of events together with the log position that produced it.
//!
//! | prefix | key                                  | value                     |
//! |--------|--------------------------------------|---------------------------|
//! | `ck/`  | partition (u32 BE)                   | next offset (u64 BE)      |
//! | `ev/`  | tenant `\0` event id                 | [`Applied`]: partition, offset, time, fingerprint, citizen; a contact's `Personal` (whole text, fields) |
//! | `ra/`  | tenant `\0` event id                 | `Unresolved`: a contact for an agent ("à rattacher") |
//! | `ih/`  | tenant `\0` kind `:` id `\0` citizen  | empty: every holder of an identifier |
//! | `sr/`  | tenant `\0` source reference        | event id (submission id, MessageSid, Message-ID) |
//! | `lc/`  | tenant `\0` citizen                 | [`Card`]: entries, first and last contact, merged into |
//! | `dd/`  | tenant `\0` citizen `\0` citizen      | empty: a pair dismissed as duplicates |
//! | `id/`  | tenant `\0` kind `:` normalised id   | citizen id                |
//! | `ci/`  | tenant `\0` citizen id               | `Citizen`                 |
//! | `tl/`  | tenant `\0` citizen `\0` time event  | `TimelineEntry`           |
//! | `mg/`  | tenant `\0` into `\0` member         | empty                     |
//! | `hh/`  | tenant `\0` household `\0` citizen   | role                      |
//! | `rq/`  | tenant `\0` reference                | `Request`                 |
//! | `rn/`  | tenant `\0` year                     | next request number       |
//! | `re/`  | tenant `\0` opening event id         | request reference         |
//! | `rc/`  | tenant `\0` contact id `\0` reference | empty: the requests a contact belongs to |
//! | `rt/`  | tenant `\0` e-mail thread id         | request reference         |
//! | `od/`  | tenant `\0` due (i64 BE µs) `\0` reference | open request: its dashboard slice |
//! | `ka/`  | tenant `\0` answer id                | `CatalogueAnswer`         |
//! | `an/`  | tenant `\0` answer event id          | `Answer` (outbound)       |
//! | `ar/`  | tenant `\0` reference `\0` answer id  | empty: the answers of a request |
//! | `ob/`  | next attempt (i64 BE µs) tenant `\0` answer id | empty: the outbox, due first |
//! | `pq/`  | tenant `\0` answer id                | empty: letters to print   |
//! | `pm/`  | tenant `\0` provider message id      | answer id (bounces find it) |
//! | `sq/`  | tenant                               | next provisional number   |
//! | `rd/`  | tenant `\0` hub `\0` line (u64 BE)   | `TrailRead`: a hub's read-trail line shared through the log |
//! | `cs/`  | tenant                               | next citizen number       |
//! | `nx/`  | tenant `\0` word `\0` citizen         | empty (search: a word of the record) |
//! | `dx/`  | tenant `\0` word less a letter `\0` citizen | empty (search: one typo away) |
//! | `co/`  | tenant `\0` chrono                   | `CourrierState`           |
//! | `cn/`  | tenant `\0` year                     | next chrono number        |
//! | `ce/`  | tenant `\0` registration event id    | chrono                    |
//! | `tk/`  | tenant `\0` day `\0` site `\0` number | `Ticket`: the waiting line (day: `yyyy-mm-dd`, Paris) |
//! | `tn/`  | tenant `\0` day `\0` site            | packed counts: arrivals (`#`) and tickets per letter |
//! | `ac/`  | tenant `\0` day                     | packed counts of the accueil's report (`accueil::day`) |
//! | `el/`  | tenant `\0` élu `\0` time (i64 BE µs) `\0` event id | empty: a person an élu met at a permanence |
//! | `ua/`  | tenant `\0` account id              | `Account`: a citizens' space account's citizen, or its proposal |
//! | `uc/`  | tenant `\0` citizen `\0` account id  | empty: a citizen's accounts (erasure ends them) |
//! | `up/`  | tenant `\0` proposal event id        | `AccountProposal`: an account for an agent (« à rattacher ») |
//! | `am/`  | tenant `\0` appointment id          | `Appointment`             |
//! | `as/`  | tenant `\0` kind `\0` start (i64 BE µs) `\0` appointment id | empty: a slot's bookings |
//! | `au/`  | tenant `\0` citizen `\0` start (i64 BE µs) `\0` appointment id | empty: a person's appointments |
//! | `ad/`  | tenant `\0` start (i64 BE µs) `\0` appointment id | empty: the commune's agenda |
//! | `rp/`  | tenant `\0` citizen `\0` reference  | empty: the requests a citizen asked |
//! | `pf/`  | tenant `\0` file (`WebForm.thread_id`) | the reference of the request a portal's file opened |
//! | `sx/`  | tenant `\0` phone (E.164)          | time (i64 BE µs) the number answered STOP |
//! | `nt/`  | tenant `\0` notice event id        | `Notice`: a notice and what became of it |
//! | `nq/`  | due (i64 BE µs), tenant `\0` notice event id | empty: notices to send, by when |
//! | `dl/`  | partition, offset (BE)               | `DeadLetter`              |
//! | `mf/`  | `format`                             | [`FORMAT`] (u32 BE) the read model was folded with |
//! | `st/`  | [`Counter::name`] (`applied`, `phone/…`, `dash/…`, `due/…`) | u64 BE; packed (`dash/…\0figure`): [`pack_counters`] |
//!
//! Tenants and ids never contain `\0` (validated), so prefixes of composite keys never collide.

/// A family of keys of the read model: the one place each prefix is spelled. Every key
/// starts with its family's prefix; [`Family::of`] reads it back (the cost of an event is
/// counted by family: `docs/keys-per-event.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `ck/`: a partition's next offset.
    Checkpoint,
    /// `ev/`: an applied event: its position, time, fingerprint, first citizen and a
    /// contact's detail.
    Applied,
    /// `ra/`: a contact for an agent (« à rattacher »).
    Unresolved,
    /// `ih/`: a holder of a phone number or an e-mail address.
    IdentifierHolder,
    /// `sr/`: a contact by the reference its source gave it.
    SourceRef,
    /// `lc/`: a citizen's card: their contacts counted, the record they joined.
    SearchCard,
    /// `dd/`: a pair of citizens said different people.
    DuplicateDismissed,
    /// `id/`: the first holder of an identifier.
    Identifier,
    /// `ci/`: a citizen record.
    Citizen,
    /// `sk/`: a key that sealed a citizen's events.
    SubjectKey,
    /// `ks/`: a citizen a sealing key belongs to.
    KeyOwner,
    /// `tl/`: an entry of a citizen's timeline.
    Timeline,
    /// `mg/`: a record merged into another.
    MergeMember,
    /// `hh/`: a member of a household.
    Household,
    /// `rq/`: a request (demande).
    Request,
    /// `rn/`: the next request number of a commune's year.
    RequestNumber,
    /// `re/`: the request an event opened.
    RequestByEvent,
    /// `rc/`: a request a contact belongs to.
    ContactRequest,
    /// `rt/`: the request an e-mail thread belongs to.
    RequestThread,
    /// `od/`: an open request by its committed date.
    OpenRequest,
    /// `ka/`: a validated answer of the catalogue.
    Catalogue,
    /// `an/`: a written answer going out.
    Answer,
    /// `ar/`: an answer of a request.
    RequestAnswer,
    /// `ob/`: an answer waiting to be sent, by when.
    Outbox,
    /// `pq/`: a letter to print.
    PrintQueue,
    /// `pm/`: the answer a provider's message id names.
    ProviderMessage,
    /// `sq/`: the next provisional citizen number.
    ProvisionalNumber,
    /// `rd/`: a line of a hub's read trail.
    TrailRead,
    /// `cs/`: the next registered citizen number.
    CitizenNumber,
    /// `nx/`: search: a word of a citizen's record.
    NameWord,
    /// `dx/`: search: a word less one letter.
    NameVariant,
    /// `co/`: a registered letter.
    Courrier,
    /// `cn/`: the next chrono number of a commune's year.
    ChronoNumber,
    /// `ce/`: the chrono a registration event gave.
    CourrierByEvent,
    /// `tk/`: a ticket of the waiting line.
    Ticket,
    /// `tn/`: the numbering of a site's tickets of a day.
    TicketNumbers,
    /// `ac/`: the accueil's report of a day.
    AccueilDay,
    /// `el/`: a person an élu met at a permanence.
    Permanence,
    /// `ua/`: a citizens' space account.
    Account,
    /// `uc/`: an account of a citizen.
    CitizenAccount,
    /// `up/`: an account waiting for an agent.
    AccountProposal,
    /// `am/`: an appointment.
    Appointment,
    /// `as/`: a booking of a slot.
    AppointmentSlot,
    /// `au/`: an appointment of a citizen.
    CitizenAppointment,
    /// `ad/`: an appointment in the commune's agenda.
    Agenda,
    /// `rp/`: a request a citizen asked.
    CitizenRequest,
    /// `pf/`: the request a portal's file opened.
    PortalFile,
    /// `sx/`: a number that answered STOP.
    SmsStopped,
    /// `nt/`: a notice and what became of it.
    Notice,
    /// `nq/`: a notice waiting to be sent, by when.
    NoticeDue,
    /// `dl/`: a record the fold refused.
    DeadLetter,
    /// `mf/`: the format the read model was folded with.
    Format,
    /// `st/`: a counter (applied, dead letters, phone, dashboards).
    Counter,
}

impl Family {
    pub const ALL: [Family; 53] = [
        Family::Checkpoint,
        Family::Applied,
        Family::Unresolved,
        Family::IdentifierHolder,
        Family::SourceRef,
        Family::SearchCard,
        Family::DuplicateDismissed,
        Family::Identifier,
        Family::Citizen,
        Family::SubjectKey,
        Family::KeyOwner,
        Family::Timeline,
        Family::MergeMember,
        Family::Household,
        Family::Request,
        Family::RequestNumber,
        Family::RequestByEvent,
        Family::ContactRequest,
        Family::RequestThread,
        Family::OpenRequest,
        Family::Catalogue,
        Family::Answer,
        Family::RequestAnswer,
        Family::Outbox,
        Family::PrintQueue,
        Family::ProviderMessage,
        Family::ProvisionalNumber,
        Family::TrailRead,
        Family::CitizenNumber,
        Family::NameWord,
        Family::NameVariant,
        Family::Courrier,
        Family::ChronoNumber,
        Family::CourrierByEvent,
        Family::Ticket,
        Family::TicketNumbers,
        Family::AccueilDay,
        Family::Permanence,
        Family::Account,
        Family::CitizenAccount,
        Family::AccountProposal,
        Family::Appointment,
        Family::AppointmentSlot,
        Family::CitizenAppointment,
        Family::Agenda,
        Family::CitizenRequest,
        Family::PortalFile,
        Family::SmsStopped,
        Family::Notice,
        Family::NoticeDue,
        Family::DeadLetter,
        Family::Format,
        Family::Counter,
    ];

    /// The prefix of the family's keys (two letters and a slash).
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            Family::Checkpoint => b"ck/",
            Family::Applied => b"ev/",
            Family::Unresolved => b"ra/",
            Family::IdentifierHolder => b"ih/",
            Family::SourceRef => b"sr/",
            Family::SearchCard => b"lc/",
            Family::DuplicateDismissed => b"dd/",
            Family::Identifier => b"id/",
            Family::Citizen => b"ci/",
            Family::SubjectKey => b"sk/",
            Family::KeyOwner => b"ks/",
            Family::Timeline => b"tl/",
            Family::MergeMember => b"mg/",
            Family::Household => b"hh/",
            Family::Request => b"rq/",
            Family::RequestNumber => b"rn/",
            Family::RequestByEvent => b"re/",
            Family::ContactRequest => b"rc/",
            Family::RequestThread => b"rt/",
            Family::OpenRequest => b"od/",
            Family::Catalogue => b"ka/",
            Family::Answer => b"an/",
            Family::RequestAnswer => b"ar/",
            Family::Outbox => b"ob/",
            Family::PrintQueue => b"pq/",
            Family::ProviderMessage => b"pm/",
            Family::ProvisionalNumber => b"sq/",
            Family::TrailRead => b"rd/",
            Family::CitizenNumber => b"cs/",
            Family::NameWord => b"nx/",
            Family::NameVariant => b"dx/",
            Family::Courrier => b"co/",
            Family::ChronoNumber => b"cn/",
            Family::CourrierByEvent => b"ce/",
            Family::Ticket => b"tk/",
            Family::TicketNumbers => b"tn/",
            Family::AccueilDay => b"ac/",
            Family::Permanence => b"el/",
            Family::Account => b"ua/",
            Family::CitizenAccount => b"uc/",
            Family::AccountProposal => b"up/",
            Family::Appointment => b"am/",
            Family::AppointmentSlot => b"as/",
            Family::CitizenAppointment => b"au/",
            Family::Agenda => b"ad/",
            Family::CitizenRequest => b"rp/",
            Family::PortalFile => b"pf/",
            Family::SmsStopped => b"sx/",
            Family::Notice => b"nt/",
            Family::NoticeDue => b"nq/",
            Family::DeadLetter => b"dl/",
            Family::Format => b"mf/",
            Family::Counter => b"st/",
        }
    }

    /// Whether many events rewrite the same few keys of the family (a counter, a commune's
    /// or a day's numbering or tally): a batch of events writes each of them once, so they
    /// cost per batch rather than per event.
    pub fn shared(self) -> bool {
        matches!(
            self,
            Family::Checkpoint
                | Family::Counter
                | Family::ProvisionalNumber
                | Family::CitizenNumber
                | Family::RequestNumber
                | Family::ChronoNumber
                | Family::TicketNumbers
                | Family::AccueilDay
        )
    }

    /// The family of a key of the read model.
    pub fn of(key: &[u8]) -> Option<Family> {
        let prefix = key.get(..3)?;
        Family::ALL.into_iter().find(|f| f.prefix() == prefix)
    }
}

pub const CHECKPOINT: &[u8] = Family::Checkpoint.prefix();

/// The version of what the fold writes. A read model folded with another one is rebuilt from
/// the log when the hub starts: bump it whenever a change of the fold or of this layout means
/// an existing read model would read wrong (a new index, a value in another shape).
pub const FORMAT: u32 = 17;
/// Where the read model says which [`FORMAT`] it was folded with.
pub const FORMAT_KEY: &[u8] = b"mf/format";
/// Present while a replay writes the read model (written first, removed once everything is
/// on disk): a read model that has it is unfinished, whatever its checkpoints say.
pub const REPLAYING_KEY: &[u8] = b"mf/replaying";
pub const DEAD_LETTER: &[u8] = Family::DeadLetter.prefix();

fn key(family: Family, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = family.prefix().to_vec();
    joined(&mut k, parts);
    k
}

/// `parts` after `k`, separated by `\0`.
fn joined(k: &mut Vec<u8>, parts: &[&[u8]]) {
    k.reserve(parts.iter().map(|p| p.len() + 1).sum::<usize>());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
}

pub fn checkpoint(partition: u32) -> Vec<u8> {
    key(Family::Checkpoint, &[&partition.to_be_bytes()])
}

pub fn applied(tenant: &str, event_id: &str) -> Vec<u8> {
    key(Family::Applied, &[tenant.as_bytes(), event_id.as_bytes()])
}

/// Where an applied event went, as kept under its `ev/` key, with what a contact says
/// beyond who it is from (kept there rather than under a key of its own: one key less per
/// contact).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub partition: u32,
    pub offset: u64,
    pub occurred_us: i64,
    /// [`crate::pb::Event::fingerprint`] as written (empty when the writer set none).
    pub fingerprint: Vec<u8>,
    /// Citizen of its first timeline entry (empty when it made none).
    pub citizen: String,
    /// A contact's [`crate::pb::Personal`] beyond its party, encoded (empty: none).
    pub detail: Vec<u8>,
}

impl Applied {
    /// Partition (u32 BE), offset (u64 BE), time (i64 BE), the fingerprint and the citizen
    /// each after its length (u8, u16 BE), then the detail.
    pub fn encode(&self) -> Vec<u8> {
        let fp = &self.fingerprint[..self.fingerprint.len().min(255)];
        let citizen = &self.citizen.as_bytes()[..self.citizen.len().min(u16::MAX as usize)];
        let mut v = Vec::with_capacity(23 + fp.len() + citizen.len() + self.detail.len());
        v.extend_from_slice(&self.partition.to_be_bytes());
        v.extend_from_slice(&self.offset.to_be_bytes());
        v.extend_from_slice(&self.occurred_us.to_be_bytes());
        v.push(fp.len() as u8);
        v.extend_from_slice(fp);
        v.extend_from_slice(&(citizen.len() as u16).to_be_bytes());
        v.extend_from_slice(citizen);
        v.extend_from_slice(&self.detail);
        v
    }

    /// Reads [`Applied::encode`]'s layout.
    pub fn decode(v: &[u8]) -> Option<Applied> {
        let fixed = v.get(..21)?;
        let fp_len = usize::from(fixed[20]);
        let fingerprint = v.get(21..21 + fp_len)?.to_vec();
        let rest = &v[21 + fp_len..];
        let citizen_len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let citizen = rest.get(2..2 + citizen_len)?;
        Some(Applied {
            partition: u32::from_be_bytes(fixed[0..4].try_into().ok()?),
            offset: u64::from_be_bytes(fixed[4..12].try_into().ok()?),
            occurred_us: i64::from_be_bytes(fixed[12..20].try_into().ok()?),
            fingerprint,
            citizen: String::from_utf8_lossy(citizen).into_owned(),
            detail: rest[2 + citizen_len..].to_vec(),
        })
    }
}

/// A contact for an agent: waiting to be attached, or that named an unknown citizen id.
pub fn unresolved_claim(tenant: &str, event_id: &str) -> Vec<u8> {
    key(
        Family::Unresolved,
        &[tenant.as_bytes(), event_id.as_bytes()],
    )
}

/// Prefix of every contact for an agent of a commune.
pub fn unresolved_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::Unresolved, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// `citizen` holds the identifier (`kind` is `phone` or `email`).
pub fn identifier_holder(tenant: &str, kind: &str, normalized: &str, citizen: &str) -> Vec<u8> {
    let id = format!("{kind}:{normalized}");
    key(
        Family::IdentifierHolder,
        &[tenant.as_bytes(), id.as_bytes(), citizen.as_bytes()],
    )
}

/// Prefix of every holder of an identifier.
pub fn identifier_holders_prefix(tenant: &str, kind: &str, normalized: &str) -> Vec<u8> {
    let id = format!("{kind}:{normalized}");
    let mut k = key(
        Family::IdentifierHolder,
        &[tenant.as_bytes(), id.as_bytes()],
    );
    k.push(0);
    k
}

/// A pair of citizens an agent said are different people (in id order).
pub fn duplicate_dismissed(tenant: &str, a: &str, b: &str) -> Vec<u8> {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    key(
        Family::DuplicateDismissed,
        &[tenant.as_bytes(), a.as_bytes(), b.as_bytes()],
    )
}

/// Prefix of every citizen record of a commune.
pub fn citizens_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::Citizen, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// `kind` is `phone` or `email`.
pub fn identifier(tenant: &str, kind: &str, normalized: &str) -> Vec<u8> {
    let id = format!("{kind}:{normalized}");
    key(Family::Identifier, &[tenant.as_bytes(), id.as_bytes()])
}

pub fn citizen(tenant: &str, citizen_id: &str) -> Vec<u8> {
    key(Family::Citizen, &[tenant.as_bytes(), citizen_id.as_bytes()])
}

/// A key of the keyring that sealed an event of this citizen: what an erasure destroys.
pub fn subject_key(tenant: &str, citizen_id: &str, key_id: &str) -> Vec<u8> {
    key(
        Family::SubjectKey,
        &[tenant.as_bytes(), citizen_id.as_bytes(), key_id.as_bytes()],
    )
}

/// A citizen a key of the keyring belongs to (the reverse of [`subject_key`]).
pub fn key_owner(tenant: &str, key_id: &str, citizen_id: &str) -> Vec<u8> {
    key(
        Family::KeyOwner,
        &[tenant.as_bytes(), key_id.as_bytes(), citizen_id.as_bytes()],
    )
}

/// Prefix of the owners of a key ([`key_owner`]); the citizen id follows it.
pub fn key_owners_prefix(tenant: &str, key_id: &str) -> Vec<u8> {
    let mut k = key(Family::KeyOwner, &[tenant.as_bytes(), key_id.as_bytes()]);
    k.push(0);
    k
}

/// Prefix of the keys of [`subject_key`] of a citizen; the key id follows it.
pub fn subject_keys_prefix(tenant: &str, citizen_id: &str) -> Vec<u8> {
    let mut k = key(
        Family::SubjectKey,
        &[tenant.as_bytes(), citizen_id.as_bytes()],
    );
    k.push(0);
    k
}

/// Prefix of a citizen's timeline; entries sort by time, then event id.
pub fn timeline_prefix(tenant: &str, citizen_id: &str) -> Vec<u8> {
    let mut k = key(
        Family::Timeline,
        &[tenant.as_bytes(), citizen_id.as_bytes()],
    );
    k.push(0);
    k
}

/// Order-preserving encoding of a signed time.
pub fn time_bytes(us: i64) -> [u8; 8] {
    ((us as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn timeline_entry(tenant: &str, citizen_id: &str, occurred_us: i64, event_id: &str) -> Vec<u8> {
    let mut k = timeline_prefix(tenant, citizen_id);
    k.extend_from_slice(&time_bytes(occurred_us));
    k.extend_from_slice(event_id.as_bytes());
    k
}

pub fn merge_member(tenant: &str, into: &str, member: &str) -> Vec<u8> {
    key(
        Family::MergeMember,
        &[tenant.as_bytes(), into.as_bytes(), member.as_bytes()],
    )
}

pub fn merge_members_prefix(tenant: &str, into: &str) -> Vec<u8> {
    let mut k = key(Family::MergeMember, &[tenant.as_bytes(), into.as_bytes()]);
    k.push(0);
    k
}

/// Prefix of every member of a household.
pub fn household_members_prefix(tenant: &str, household: &str) -> Vec<u8> {
    let mut k = key(
        Family::Household,
        &[tenant.as_bytes(), household.as_bytes()],
    );
    k.push(0);
    k
}

pub fn household_member(tenant: &str, household: &str, citizen_id: &str) -> Vec<u8> {
    key(
        Family::Household,
        &[
            tenant.as_bytes(),
            household.as_bytes(),
            citizen_id.as_bytes(),
        ],
    )
}

/// The next number of a registered citizen (`PREFIX-000123`).
pub fn citizen_sequence(tenant: &str) -> Vec<u8> {
    key(Family::CitizenNumber, &[tenant.as_bytes()])
}

/// A word of a citizen's names or addresses (folded), for search.
pub fn name_word(tenant: &str, word: &str, citizen: &str) -> Vec<u8> {
    key(
        Family::NameWord,
        &[tenant.as_bytes(), word.as_bytes(), citizen.as_bytes()],
    )
}

/// Prefix of every citizen having `word` (ends with the separator).
pub fn name_word_prefix(tenant: &str, word: &str) -> Vec<u8> {
    let mut k = key(Family::NameWord, &[tenant.as_bytes(), word.as_bytes()]);
    k.push(0);
    k
}

/// A word of a citizen's record less one letter, for search with one typo.
pub fn name_variant(tenant: &str, variant: &str, citizen: &str) -> Vec<u8> {
    key(
        Family::NameVariant,
        &[tenant.as_bytes(), variant.as_bytes(), citizen.as_bytes()],
    )
}

/// Prefix of every citizen with a word that `variant` is one deletion of.
pub fn name_variant_prefix(tenant: &str, variant: &str) -> Vec<u8> {
    let mut k = key(
        Family::NameVariant,
        &[tenant.as_bytes(), variant.as_bytes()],
    );
    k.push(0);
    k
}

/// The part of a composite key after its last separator (a citizen id).
pub fn last_part(k: &[u8]) -> String {
    let start = k.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&k[start..]).into_owned()
}

/// A request by its reference (`GIV-D-2026-000042`).
pub fn request(tenant: &str, reference: &str) -> Vec<u8> {
    key(Family::Request, &[tenant.as_bytes(), reference.as_bytes()])
}

/// Prefix of every request of a commune.
pub fn requests_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::Request, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// A request `citizen` asked (one of its requesters).
pub fn citizen_request(tenant: &str, citizen: &str, reference: &str) -> Vec<u8> {
    key(
        Family::CitizenRequest,
        &[tenant.as_bytes(), citizen.as_bytes(), reference.as_bytes()],
    )
}

/// Prefix of the requests `citizen` asked.
pub fn citizen_requests_prefix(tenant: &str, citizen: &str) -> Vec<u8> {
    let mut k = key(
        Family::CitizenRequest,
        &[tenant.as_bytes(), citizen.as_bytes()],
    );
    k.push(0);
    k
}

/// The request an opening event opened (its reference).
pub fn request_by_event(tenant: &str, event_id: &str) -> Vec<u8> {
    key(
        Family::RequestByEvent,
        &[tenant.as_bytes(), event_id.as_bytes()],
    )
}

/// The request an e-mail thread belongs to (by the thread's first Message-ID).
/// A request `contact_id` belongs to (opened from it, linked to it, or quoted by it).
pub fn contact_request(tenant: &str, contact_id: &str, reference: &str) -> Vec<u8> {
    key(
        Family::ContactRequest,
        &[
            tenant.as_bytes(),
            contact_id.as_bytes(),
            reference.as_bytes(),
        ],
    )
}

/// Prefix of the requests a contact belongs to.
pub fn contact_requests_prefix(tenant: &str, contact_id: &str) -> Vec<u8> {
    let mut k = key(
        Family::ContactRequest,
        &[tenant.as_bytes(), contact_id.as_bytes()],
    );
    k.push(0);
    k
}

/// The request a portal's file opened (`WebForm.thread_id`): written only by that file's
/// first contact, apart from e-mail threads (`rt/`), which a sender chooses.
pub fn portal_file(tenant: &str, thread_id: &str) -> Vec<u8> {
    key(
        Family::PortalFile,
        &[tenant.as_bytes(), thread_id.as_bytes()],
    )
}

pub fn request_thread(tenant: &str, thread_id: &str) -> Vec<u8> {
    key(
        Family::RequestThread,
        &[tenant.as_bytes(), thread_id.as_bytes()],
    )
}

/// The next request number of a commune's year.
pub fn request_counter(tenant: &str, year: i32) -> Vec<u8> {
    key(
        Family::RequestNumber,
        &[tenant.as_bytes(), year.to_string().as_bytes()],
    )
}

/// An open request (not answered, not closed) by its committed date: what "overdue now" and
/// the dashboards read without decoding every request. The value is
/// [`crate::dashboard::Slice::encode`] of the request.
pub fn open_request(tenant: &str, due_us: i64, reference: &str) -> Vec<u8> {
    key(
        Family::OpenRequest,
        &[
            tenant.as_bytes(),
            &due_us.to_be_bytes(),
            reference.as_bytes(),
        ],
    )
}

/// A validated answer of a commune's catalogue.
pub fn catalogue(tenant: &str, answer_id: &str) -> Vec<u8> {
    key(
        Family::Catalogue,
        &[tenant.as_bytes(), answer_id.as_bytes()],
    )
}

pub fn answer(tenant: &str, answer_id: &str) -> Vec<u8> {
    key(Family::Answer, &[tenant.as_bytes(), answer_id.as_bytes()])
}

pub fn request_answer(tenant: &str, reference: &str, answer_id: &str) -> Vec<u8> {
    key(
        Family::RequestAnswer,
        &[
            tenant.as_bytes(),
            reference.as_bytes(),
            answer_id.as_bytes(),
        ],
    )
}

/// Prefix of the answers of one request.
pub fn request_answers_prefix(tenant: &str, reference: &str) -> Vec<u8> {
    let mut k = key(
        Family::RequestAnswer,
        &[tenant.as_bytes(), reference.as_bytes()],
    );
    k.push(0);
    k
}

/// The answer a provider's message id (Message-ID, SMS sid) names, for bounces.
pub fn provider_message(tenant: &str, message_id: &str) -> Vec<u8> {
    key(
        Family::ProviderMessage,
        &[tenant.as_bytes(), message_id.as_bytes()],
    )
}

pub const OUTBOX: &[u8] = Family::Outbox.prefix();

/// An answer waiting in the outbox, ordered by when it is next tried.
pub fn outbox(due_us: i64, tenant: &str, answer_id: &str) -> Vec<u8> {
    due_key(OUTBOX, due_us, tenant, answer_id)
}

/// `prefix`, then due (i64 BE µs), tenant and id: a queue ordered by when each is due.
fn due_key(prefix: &[u8], due_us: i64, tenant: &str, id: &str) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&due_us.max(0).to_be_bytes());
    joined(&mut k, &[tenant.as_bytes(), id.as_bytes()]);
    k
}

/// A phone number (E.164) that answered STOP to the commune's SMS: none is sent to it.
pub fn sms_stopped(tenant: &str, phone: &str) -> Vec<u8> {
    key(Family::SmsStopped, &[tenant.as_bytes(), phone.as_bytes()])
}

/// A notice (an appointment's confirmation or reminder, a request's acknowledgement).
pub fn notice(tenant: &str, id: &str) -> Vec<u8> {
    key(Family::Notice, &[tenant.as_bytes(), id.as_bytes()])
}

pub const NOTICES_DUE: &[u8] = Family::NoticeDue.prefix();

/// A notice waiting to be sent, ordered by when it is next tried.
pub fn notice_due(due_us: i64, tenant: &str, id: &str) -> Vec<u8> {
    due_key(NOTICES_DUE, due_us, tenant, id)
}

/// The due instant, tenant and id of an outbox key or a notice's ([`NOTICES_DUE`]).
pub fn parse_due(prefix: &[u8], k: &[u8]) -> Option<(i64, String, String)> {
    let rest = k.strip_prefix(prefix)?;
    let due = i64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let mut parts = rest[8..].splitn(2, |b| *b == 0);
    let tenant = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let id = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some((due, tenant, id))
}

pub fn print_queue(tenant: &str, answer_id: &str) -> Vec<u8> {
    key(
        Family::PrintQueue,
        &[tenant.as_bytes(), answer_id.as_bytes()],
    )
}

/// Prefix of a commune's letters to print.
pub fn print_queue_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::PrintQueue, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// Prefix of every catalogue answer of a commune.
pub fn catalogue_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::Catalogue, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// `rd/<tenant>\0<hub>\0<seq BE>`: a line of a hub's read trail, shared through the log.
pub fn trail_read(tenant: &str, hub: &str, seq: u64) -> Vec<u8> {
    let mut k = trail_prefix(tenant);
    k.extend_from_slice(hub.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Every shared read-trail line of `tenant`.
pub fn trail_prefix(tenant: &str) -> Vec<u8> {
    key(Family::TrailRead, &[tenant.as_bytes(), b""])
}

pub fn sequence(tenant: &str) -> Vec<u8> {
    key(Family::ProvisionalNumber, &[tenant.as_bytes()])
}

pub fn courrier(tenant: &str, chrono: &str) -> Vec<u8> {
    key(Family::Courrier, &[tenant.as_bytes(), chrono.as_bytes()])
}

pub fn courrier_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::Courrier, &[tenant.as_bytes()]);
    k.push(0);
    k
}

pub fn chrono_counter(tenant: &str, year: i32) -> Vec<u8> {
    key(
        Family::ChronoNumber,
        &[tenant.as_bytes(), year.to_string().as_bytes()],
    )
}

/// A ticket of the waiting line (`day`: `yyyy-mm-dd`, Paris time, of its arrival).
pub fn ticket(tenant: &str, day: &str, site: &str, number: &str) -> Vec<u8> {
    key(
        Family::Ticket,
        &[
            tenant.as_bytes(),
            day.as_bytes(),
            site.as_bytes(),
            number.as_bytes(),
        ],
    )
}

/// Every ticket of `tenant` on `day` (all sites), or of one site when `site` is given.
pub fn ticket_prefix(tenant: &str, day: &str, site: Option<&str>) -> Vec<u8> {
    let mut k = key(Family::Ticket, &[tenant.as_bytes(), day.as_bytes()]);
    k.push(0);
    if let Some(site) = site {
        k.extend_from_slice(site.as_bytes());
        k.push(0);
    }
    k
}

/// The numbering of `site`'s tickets on `day`: [`pack_counters`] of `#` (arrivals) and each
/// letter.
pub fn ticket_numbers(tenant: &str, day: &str, site: &str) -> Vec<u8> {
    key(
        Family::TicketNumbers,
        &[tenant.as_bytes(), day.as_bytes(), site.as_bytes()],
    )
}

/// What the accueil's report reads of a commune's day (`day`: `yyyy-mm-dd`, Paris time):
/// [`pack_counters`] of [`crate::accueil::day`]'s parts.
pub fn accueil_day(tenant: &str, day: &str) -> Vec<u8> {
    key(Family::AccueilDay, &[tenant.as_bytes(), day.as_bytes()])
}

/// A person `elu` met at a permanence at `at_us`: the contact `event_id` (its citizen, its
/// request follow from it).
pub fn permanence(tenant: &str, elu: &str, at_us: i64, event_id: &str) -> Vec<u8> {
    key(
        Family::Permanence,
        &[
            tenant.as_bytes(),
            elu.as_bytes(),
            &at_us.to_be_bytes(),
            event_id.as_bytes(),
        ],
    )
}

/// An appointment.
pub fn appointment(tenant: &str, id: &str) -> Vec<u8> {
    key(Family::Appointment, &[tenant.as_bytes(), id.as_bytes()])
}

/// The bookings of a slot: `kind` at `start_us` (each followed by its appointment id).
pub fn appointment_slot(tenant: &str, kind: &str, start_us: i64) -> Vec<u8> {
    let mut k = key(
        Family::AppointmentSlot,
        &[tenant.as_bytes(), kind.as_bytes(), &start_us.to_be_bytes()],
    );
    k.push(0);
    k
}

/// A person's appointments (each key followed by start and id).
pub fn citizen_appointments(tenant: &str, citizen: &str) -> Vec<u8> {
    let mut k = key(
        Family::CitizenAppointment,
        &[tenant.as_bytes(), citizen.as_bytes()],
    );
    k.push(0);
    k
}

/// The commune's agenda from its first key (each followed by start and id).
pub fn agenda(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::Agenda, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// A key under `prefix` for the appointment `id` starting at `start_us`.
pub fn dated(prefix: &[u8], start_us: i64, id: &str) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&start_us.to_be_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// A citizens' space account (`account`: a keyed hash of the provider's subject).
pub fn account(tenant: &str, account: &str) -> Vec<u8> {
    key(Family::Account, &[tenant.as_bytes(), account.as_bytes()])
}

/// `account` is `citizen`'s.
pub fn citizen_account(tenant: &str, citizen: &str, account: &str) -> Vec<u8> {
    key(
        Family::CitizenAccount,
        &[tenant.as_bytes(), citizen.as_bytes(), account.as_bytes()],
    )
}

/// The accounts of `citizen`.
pub fn citizen_accounts_prefix(tenant: &str, citizen: &str) -> Vec<u8> {
    let mut k = key(
        Family::CitizenAccount,
        &[tenant.as_bytes(), citizen.as_bytes()],
    );
    k.push(0);
    k
}

/// An account waiting for an agent: the proposal event `event_id`.
pub fn account_proposal(tenant: &str, event_id: &str) -> Vec<u8> {
    key(
        Family::AccountProposal,
        &[tenant.as_bytes(), event_id.as_bytes()],
    )
}

/// Every account of the commune waiting for an agent.
pub fn account_proposals_prefix(tenant: &str) -> Vec<u8> {
    let mut k = key(Family::AccountProposal, &[tenant.as_bytes()]);
    k.push(0);
    k
}

/// Every person `elu` met at their permanences (every élu's when `None`), by élu then time.
pub fn permanence_prefix(tenant: &str, elu: Option<&str>) -> Vec<u8> {
    let mut k = key(Family::Permanence, &[tenant.as_bytes()]);
    k.push(0);
    if let Some(elu) = elu {
        k.extend_from_slice(elu.as_bytes());
        k.push(0);
    }
    k
}

/// The time and the contact a [`permanence`] key indexes (read from its end: event ids hold
/// no `\0`).
pub fn parse_permanence(key: &[u8]) -> Option<(i64, String)> {
    let cut = key.iter().rposition(|&b| b == 0)?;
    let time = key.get(cut.checked_sub(8)?..cut)?;
    let event = String::from_utf8(key[cut + 1..].to_vec()).ok()?;
    Some((i64::from_be_bytes(time.try_into().ok()?), event))
}

/// A citizen's card: what changes with each of their contacts, apart from the record so a
/// contact rewrites a few bytes, not the whole record; search ranking reads it for every
/// candidate.
pub fn search_card(tenant: &str, citizen: &str) -> Vec<u8> {
    key(Family::SearchCard, &[tenant.as_bytes(), citizen.as_bytes()])
}

/// What a citizen's card holds ([`search_card`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Their timeline's entries.
    pub entries: u64,
    /// First and last contact in µs (`i64::MIN`: none yet).
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    /// The record they joined (empty: none).
    pub merged_into: String,
}

impl Card {
    /// Last contact (i64 BE), first contact (i64 BE), entries (u64 BE), then the record
    /// joined.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24 + self.merged_into.len());
        v.extend_from_slice(&self.last_seen_us.to_be_bytes());
        v.extend_from_slice(&self.first_seen_us.to_be_bytes());
        v.extend_from_slice(&self.entries.to_be_bytes());
        v.extend_from_slice(self.merged_into.as_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Option<Card> {
        Some(Card {
            last_seen_us: i64::from_be_bytes(v.get(..8)?.try_into().ok()?),
            first_seen_us: i64::from_be_bytes(v.get(8..16)?.try_into().ok()?),
            entries: u64::from_be_bytes(v.get(16..24)?.try_into().ok()?),
            merged_into: String::from_utf8_lossy(&v[24..]).into_owned(),
        })
    }
}

/// A contact by the reference its source gave it (a form's submission id, an SMS's
/// MessageSid, an e-mail's Message-ID), for search.
pub fn source_ref(tenant: &str, reference: &str) -> Vec<u8> {
    key(
        Family::SourceRef,
        &[tenant.as_bytes(), reference.as_bytes()],
    )
}

pub fn courrier_by_event(tenant: &str, event_id: &str) -> Vec<u8> {
    key(
        Family::CourrierByEvent,
        &[tenant.as_bytes(), event_id.as_bytes()],
    )
}

pub fn dead_letter(partition: u32, offset: u64) -> Vec<u8> {
    let mut k = DEAD_LETTER.to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// One counter of the read model (`st/` + its name), by what it counts: its name is written
/// by [`Counter::name`] and read back by [`Counter::parse`], nowhere else. Values are u64 BE,
/// but for [`Counter::DashboardPacked`] ([`pack_counters`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// `applied`: events the projector applied, every commune.
    Applied,
    /// `dead_letters`: events it set aside.
    DeadLetters,
    /// `phone/TENANT/MONTH/FIGURE`: a commune's calls in a Paris month.
    Phone {
        tenant: String,
        month: String,
        figure: PhoneFigure,
    },
    /// `dash/TENANT/MONTH/DIM=VALUE/FIGURE`: a dashboard figure of one slice in a month
    /// (see [`crate::dashboard`]); a street (one dimension, many values) is kept so.
    Dashboard {
        tenant: String,
        month: String,
        dim: String,
        value: String,
        figure: String,
    },
    /// `dash/TENANT/MONTH/\0FIGURE`: the [`Counter::Dashboard`]s of one figure and month for
    /// several slices, in one value (one read and one write per event instead of four).
    DashboardPacked {
        tenant: String,
        month: String,
        figure: String,
    },
    /// `due/TENANT/DAY/DIM=VALUE`: a commune's open requests due on a Paris day, by slice.
    Due {
        tenant: String,
        day: String,
        dim: String,
        value: String,
    },
}

/// Which per-commune phone figure a [`Counter::Phone`] counts: inbound calls (bounces
/// excluded), of which missed; outbound calls; bounces back to the central accueil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhoneFigure {
    Inbound,
    Missed,
    Outbound,
    Bounced,
}

impl PhoneFigure {
    pub const ALL: [PhoneFigure; 4] = [
        PhoneFigure::Inbound,
        PhoneFigure::Missed,
        PhoneFigure::Outbound,
        PhoneFigure::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhoneFigure::Inbound => "inbound",
            PhoneFigure::Missed => "missed",
            PhoneFigure::Outbound => "outbound",
            PhoneFigure::Bounced => "bounced",
        }
    }

    fn parse(s: &str) -> Option<PhoneFigure> {
        PhoneFigure::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A run of counters read together ([`Counters::name_prefix`] starts each of their names).
#[derive(Debug, Clone, Copy)]
pub enum Counters<'a> {
    /// Every counter.
    All,
    /// A commune's phone counters, every month.
    Phone { tenant: &'a str },
    /// A commune's phone counters of one month.
    PhoneMonth { tenant: &'a str, month: &'a str },
    /// A commune's dashboard counters of one month, packed ones included.
    DashboardMonth { tenant: &'a str, month: &'a str },
    /// A commune's open requests by due day.
    Due { tenant: &'a str },
}

impl Counters<'_> {
    pub fn name_prefix(&self) -> String {
        match self {
            Counters::All => String::new(),
            Counters::Phone { tenant } => format!("phone/{tenant}/"),
            Counters::PhoneMonth { tenant, month } => format!("phone/{tenant}/{month}/"),
            Counters::DashboardMonth { tenant, month } => format!("dash/{tenant}/{month}/"),
            Counters::Due { tenant } => format!("due/{tenant}/"),
        }
    }

    /// The first key of the run.
    pub fn key_prefix(&self) -> Vec<u8> {
        key(Family::Counter, &[self.name_prefix().as_bytes()])
    }
}

/// A value as it may stand in a counter name: no `/`, no `=`, no `\0` (which marks a packed
/// counter), at most 64 characters.
pub fn counter_value(s: &str) -> String {
    s.trim()
        .chars()
        .take(64)
        .map(|c| {
            if matches!(c, '/' | '=' | '\0') {
                '-'
            } else {
                c
            }
        })
        .collect()
}

impl Counter {
    /// A dashboard counter, its value made fit for a name ([`counter_value`]).
    pub fn dashboard(tenant: &str, month: &str, dim: &str, value: &str, figure: &str) -> Counter {
        Counter::Dashboard {
            tenant: tenant.into(),
            month: month.into(),
            dim: dim.into(),
            value: counter_value(value),
            figure: figure.into(),
        }
    }

    /// A due-day counter, its value made fit for a name ([`counter_value`]).
    pub fn due(tenant: &str, day: &str, dim: &str, value: &str) -> Counter {
        Counter::Due {
            tenant: tenant.into(),
            day: day.into(),
            dim: dim.into(),
            value: counter_value(value),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Counter::Applied => "applied".into(),
            Counter::DeadLetters => "dead_letters".into(),
            Counter::Phone {
                tenant,
                month,
                figure,
            } => format!("phone/{tenant}/{month}/{}", figure.as_str()),
            Counter::Dashboard {
                tenant,
                month,
                dim,
                value,
                figure,
            } => format!("dash/{tenant}/{month}/{dim}={value}/{figure}"),
            Counter::DashboardPacked {
                tenant,
                month,
                figure,
            } => format!("dash/{tenant}/{month}/\0{figure}"),
            Counter::Due {
                tenant,
                day,
                dim,
                value,
            } => format!("due/{tenant}/{day}/{dim}={value}"),
        }
    }

    pub fn key(&self) -> Vec<u8> {
        key(Family::Counter, &[self.name().as_bytes()])
    }

    /// Reads a name [`Counter::name`] wrote; `None` for anything else.
    pub fn parse(name: &str) -> Option<Counter> {
        match name {
            "applied" => return Some(Counter::Applied),
            "dead_letters" => return Some(Counter::DeadLetters),
            _ => {}
        }
        let (family, rest) = name.split_once('/')?;
        let (tenant, rest) = rest.split_once('/')?;
        let (when, rest) = rest.split_once('/')?;
        let slice = |s: &str| {
            s.split_once('=')
                .map(|(d, v)| (d.to_string(), v.to_string()))
        };
        let (tenant, when) = (tenant.to_string(), when.to_string());
        match family {
            "phone" => Some(Counter::Phone {
                tenant,
                month: when,
                figure: PhoneFigure::parse(rest)?,
            }),
            "dash" => {
                if let Some(figure) = rest.strip_prefix('\0') {
                    return Some(Counter::DashboardPacked {
                        tenant,
                        month: when,
                        figure: figure.into(),
                    });
                }
                // Figures may hold a `/` (`days/0003`); slices never do.
                let (slice_part, figure) = rest.split_once('/')?;
                let (dim, value) = slice(slice_part)?;
                Some(Counter::Dashboard {
                    tenant,
                    month: when,
                    dim,
                    value,
                    figure: figure.into(),
                })
            }
            "due" => {
                let (dim, value) = slice(rest)?;
                Some(Counter::Due {
                    tenant,
                    day: when,
                    dim,
                    value,
                })
            }
            _ => None,
        }
    }

    /// Reads a counter's key ([`Counter::key`]).
    pub fn from_key(k: &[u8]) -> Option<Counter> {
        let name = std::str::from_utf8(k.strip_prefix(Family::Counter.prefix())?).ok()?;
        Counter::parse(name)
    }

    /// The counters a value of this counter holds: itself with the u64 it holds, or for a
    /// packed one each [`Counter::Dashboard`] it packs with its count.
    pub fn unpack(&self, v: &[u8]) -> Vec<(Counter, u64)> {
        let Counter::DashboardPacked {
            tenant,
            month,
            figure,
        } = self
        else {
            return vec![(self.clone(), read_u64(v))];
        };
        unpack_counters(v)
            .into_iter()
            .filter_map(|(part, n)| {
                let (dim, value) = part.split_once('=')?;
                Some((
                    Counter::Dashboard {
                        tenant: tenant.clone(),
                        month: month.clone(),
                        dim: dim.into(),
                        value: value.into(),
                        figure: figure.clone(),
                    },
                    n,
                ))
            })
            .collect()
    }

    /// The part (`DIM=VALUE`) a dashboard counter has in its month's packed counter.
    pub fn packed_part(dim: &str, value: &str) -> String {
        format!("{dim}={}", counter_value(value))
    }
}

/// Counts by part (`DIM=VALUE`), in order: per part a u16 BE length, the part, a u64 BE count.
pub fn pack_counters(counts: &std::collections::BTreeMap<String, u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for (part, n) in counts {
        // Parts are `dim=value` with values of at most 64 characters.
        debug_assert!(part.len() <= u16::MAX as usize, "counter part too long");
        let part = &part.as_bytes()[..part.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(&n.to_be_bytes());
    }
    out
}

/// Reads [`pack_counters`]'s layout; a truncated tail is ignored.
pub fn unpack_counters(v: &[u8]) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let mut rest = v;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let Some(part) = rest.get(2..2 + len) else {
            break;
        };
        let Some(n) = rest.get(2 + len..2 + len + 8) else {
            break;
        };
        *out.entry(String::from_utf8_lossy(part).into_owned())
            .or_insert(0) += read_u64(n);
        rest = &rest[2 + len + 8..];
    }
    out
}

/// Decodes a u64 value written by this module.
pub fn read_u64(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permanence_key_reads_back_whatever_its_time_bytes() {
        // 256 µs: a time whose bytes hold zeros, like the separator.
        for at in [256_i64, 1_796_395_690_195_546, 0] {
            let k = permanence("69091", "maire", at, "60bb7607-c67b");
            assert!(k.starts_with(&permanence_prefix("69091", Some("maire"))));
            assert!(k.starts_with(&permanence_prefix("69091", None)));
            assert!(!k.starts_with(&permanence_prefix("69091", Some("mai"))));
            assert_eq!(parse_permanence(&k), Some((at, "60bb7607-c67b".into())));
        }
    }

    #[test]
    fn applied_values_round_trip() {
        let a = Applied {
            partition: 3,
            offset: 42,
            occurred_us: -7,
            fingerprint: vec![1, 2, 3],
            citizen: "GIV-000001".into(),
            detail: b"texte".to_vec(),
        };
        let v = a.encode();
        assert_eq!(Applied::decode(&v), Some(a));
        assert_eq!(Applied::decode(&v[..10]), None);
        let none = Applied::default();
        assert_eq!(Applied::decode(&none.encode()), Some(none));
    }

    proptest::proptest! {
        #[test]
        fn packed_counters_round_trip(
            counts in proptest::collection::btree_map("[a-z]{1,8}=[^\\x00/=]{0,64}", 0..u64::MAX, 0..40)
        ) {
            proptest::prop_assert_eq!(unpack_counters(&pack_counters(&counts)), counts);
        }

        #[test]
        fn counters_read_back_their_own_names(
            tenant in "[0-9]{5}",
            when in "20[0-9]{2}-[01][0-9](-[0-3][0-9])?",
            dim in "[a-z]{1,8}",
            value in ".{0,80}",
            figure in "[a-z_]{1,12}|days/[0-9]{4}",
            phone in 0usize..4,
        ) {
            let counters = [
                Counter::Applied,
                Counter::DeadLetters,
                Counter::Phone { tenant: tenant.clone(), month: when.clone(), figure: PhoneFigure::ALL[phone] },
                Counter::dashboard(&tenant, &when, &dim, &value, &figure),
                Counter::DashboardPacked { tenant: tenant.clone(), month: when.clone(), figure: figure.clone() },
                Counter::due(&tenant, &when, &dim, &value),
            ];
            for c in counters {
                proptest::prop_assert_eq!(Counter::from_key(&c.key()), Some(c));
            }
        }

        #[test]
        fn counter_names_never_panic(name in ".{0,80}") {
            let _ = Counter::parse(&name);
        }

        #[test]
        fn unpacking_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = unpack_counters(&bytes);
        }
    }

    #[test]
    fn cards_round_trip() {
        let card = Card {
            entries: 3,
            first_seen_us: -1,
            last_seen_us: 7,
            merged_into: "GIV-000002".into(),
        };
        assert_eq!(Card::decode(&card.encode()), Some(card));
        assert_eq!(Card::decode(&[0; 23]), None);
    }

    proptest::proptest! {
        #[test]
        fn any_card_round_trips(
            entries in proptest::prelude::any::<u64>(),
            first_seen_us in proptest::prelude::any::<i64>(),
            last_seen_us in proptest::prelude::any::<i64>(),
            merged_into in "[A-Z]{3}-[0-9]{0,12}",
        ) {
            let card = Card { entries, first_seen_us, last_seen_us, merged_into };
            proptest::prop_assert_eq!(Card::decode(&card.encode()), Some(card));
        }

        #[test]
        fn any_applied_round_trips(
            partition in proptest::prelude::any::<u32>(),
            offset in proptest::prelude::any::<u64>(),
            occurred_us in proptest::prelude::any::<i64>(),
            fingerprint in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            citizen in "[A-Z]{0,3}-?[0-9]{0,12}",
            detail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let a = Applied { partition, offset, occurred_us, fingerprint, citizen, detail };
            proptest::prop_assert_eq!(Applied::decode(&a.encode()), Some(a));
        }

        #[test]
        fn decoding_cards_and_applied_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)
        ) {
            let _ = Card::decode(&bytes);
            let _ = Applied::decode(&bytes);
        }
    }

    #[test]
    fn every_family_has_its_own_prefix_and_is_read_back() {
        let mut seen = std::collections::BTreeSet::new();
        for f in Family::ALL {
            let p = f.prefix();
            assert!(p.len() == 3 && p[2] == b'/', "{f:?}");
            assert!(seen.insert(p), "{f:?} shares its prefix");
            assert_eq!(Family::of(&key(f, &[b"69091", b"x"])), Some(f));
        }
        assert_eq!(Family::of(b"zz/1"), None);
        assert_eq!(Family::of(FORMAT_KEY), Some(Family::Format));
        assert_eq!(Family::of(&outbox(5, "69091", "a")), Some(Family::Outbox));
    }

    #[test]
    fn timeline_keys_sort_by_time_including_before_1970() {
        let a = timeline_entry("69091", "C1", -5, "z");
        let b = timeline_entry("69091", "C1", 3, "a");
        let c = timeline_entry("69091", "C1", 3, "b");
        assert!(a < b && b < c);
        assert!(a.starts_with(&timeline_prefix("69091", "C1")));
        assert!(!a.starts_with(&timeline_prefix("69091", "C")));
    }
}
