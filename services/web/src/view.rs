//! What the templates show, prepared here: French labels, Europe/Paris times, channel icons,
//! links. Templates receive plain strings (askama escapes them) and never compute anything.

use askama::Template;
use contacthub_core::pb;
use contacthub_core::render::{category_fr, channel_fr, close_reason_fr, status_fr};
use contacthub_proto::ts;

/// What every page around its content shows: who is signed in, the CSRF token of its forms,
/// whether the desk is open to anyone.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub who: String,
    pub csrf: String,
    pub open: bool,
    pub elu: bool,
    /// The data protection officer: the read trail only.
    pub dpo: bool,
    /// A device of the accueil's hall: the waiting line only.
    pub borne: bool,
    /// May read the hub's operation (`/exploitation`): an ops agent, or anyone on an open hub.
    pub ops: bool,
    /// The section of the navigation the page belongs to.
    pub section: &'static str,
}

/// `%`-encoding for a URL query value or path segment.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A time for people: `02/11/2026 09:14`, Paris local time.
pub fn when(us: i64) -> String {
    contacthub_core::courrier::paris_display(us)
}

/// A date for people: `02/11/2026`, Paris local time.
pub fn day(us: i64) -> String {
    contacthub_core::courrier::paris_day(us)
}

pub fn micros(t: &Option<contacthub_proto::Timestamp>) -> Option<i64> {
    t.as_ref().and_then(ts::to_micros)
}

/// The icon (a symbol of the page's sprite) of a channel.
pub fn icon(channel: i32) -> &'static str {
    match pb::Channel::try_from(channel).unwrap_or(pb::Channel::Unspecified) {
        pb::Channel::Phone => "i-phone",
        pb::Channel::Courrier => "i-courrier",
        pb::Channel::WebForm => "i-form",
        pb::Channel::Sms => "i-sms",
        pb::Channel::Email => "i-email",
        pb::Channel::Desk => "i-desk",
        _ => "i-office",
    }
}

fn direction_fr(d: i32) -> &'static str {
    match pb::Direction::try_from(d).unwrap_or(pb::Direction::Unspecified) {
        pb::Direction::Inbound => "reçu",
        pb::Direction::Outbound => "envoyé",
        _ => "interne",
    }
}

/// One line of a timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    pub when: String,
    /// ISO instant, for `<time datetime>`.
    pub iso: String,
    pub icon: &'static str,
    pub channel: &'static str,
    pub direction: &'static str,
    pub summary: String,
    pub excerpt: String,
    pub url: String,
    pub request: String,
    pub request_url: String,
}

impl Entry {
    pub fn of(tenant: &str, e: &pb::TimelineEntry) -> Entry {
        let at = micros(&e.occurred_at).unwrap_or(0);
        Entry {
            when: when(at),
            iso: chrono::DateTime::from_timestamp_micros(at)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default(),
            icon: icon(e.channel),
            channel: channel_fr(e.channel),
            direction: direction_fr(e.direction),
            summary: if e.subject.is_empty() {
                e.summary.clone()
            } else {
                format!("{} — {}", e.summary, e.subject)
            },
            excerpt: e.excerpt.clone(),
            url: format!(
                "/contacts/{}/{}",
                url_encode(tenant),
                url_encode(&e.event_id)
            ),
            request: e.request_id.clone(),
            request_url: if e.request_id.is_empty() {
                String::new()
            } else {
                format!(
                    "/demandes/{}/{}",
                    url_encode(tenant),
                    url_encode(&e.request_id)
                )
            },
        }
    }
}

/// One request in a list.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub reference: String,
    pub url: String,
    pub subject: String,
    pub status: &'static str,
    pub service: String,
    pub due: String,
    pub overdue: bool,
    pub category: &'static str,
    pub assignee: String,
    /// The written answer is recorded: to close.
    pub answered: bool,
    /// Not closed yet.
    pub open: bool,
    /// The channel it came by (« courrier », « téléphone »…).
    pub channel: &'static str,
    /// Who asks: the first requester's name, or whom it is on behalf of.
    pub requester: String,
}

impl RequestRow {
    /// The row with its service by name, from the commune's directory.
    pub fn named(mut self, commune: Option<&contacthub_core::tenant::Tenant>, code: &str) -> Self {
        if let Some(t) = commune {
            if !code.is_empty() {
                self.service = t.service_name(code).to_string();
            }
        }
        self
    }

    pub fn of(r: &pb::Request, now_us: i64) -> RequestRow {
        let due = micros(&r.due_at);
        let open = r.status != pb::RequestStatus::Answered as i32
            && r.status != pb::RequestStatus::Closed as i32;
        RequestRow {
            reference: r.reference.clone(),
            url: format!(
                "/demandes/{}/{}",
                url_encode(&r.tenant),
                url_encode(&r.reference)
            ),
            subject: r.subject.clone(),
            status: status_fr(r.status),
            service: if r.service.is_empty() {
                "non attribuée".into()
            } else {
                r.service.clone()
            },
            due: due.map(day).unwrap_or_default(),
            overdue: open && due.is_some_and(|d| now_us > d),
            category: category_fr(r.category),
            assignee: r.assignee_agent_id.clone(),
            answered: r.status == pb::RequestStatus::Answered as i32,
            open: r.status != pb::RequestStatus::Closed as i32,
            channel: if r.channel == 0 {
                ""
            } else {
                channel_fr(r.channel)
            },
            requester: r.on_behalf_of.clone(),
        }
    }
}

/// A commune in a selector.
#[derive(Debug, Clone)]
pub struct Commune {
    pub code: String,
    pub name: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub open: bool,
    /// The identity provider's name, when agents sign in with it.
    pub provider: Option<String>,
    /// Where its button leads (with `next`).
    pub provider_url: String,
    pub next: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "hours.html")]
pub struct HoursPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub hours: Option<contacthub_app::accueil::OpeningHours>,
}

/// A page that goes on to `next` by itself (after a sign-in with the identity provider, whose
/// site the browser comes from; before a sign-out there, which a redirect after a form would
/// not reach under the desk's `form-action 'self'`).
#[derive(Template)]
#[template(path = "onward.html")]
pub struct Onward {
    pub title: &'static str,
    pub link: &'static str,
    pub next: String,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub url: String,
    pub name: String,
    pub id: String,
    pub contacts: String,
    pub address: String,
    pub matched_by: String,
    pub provisional: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
pub struct Search {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub q: String,
    pub hits: Vec<Hit>,
    pub message: String,
    pub create_url: String,
    /// Always false: the search page links to citizens' pages.
    pub picker: bool,
}

#[derive(Template)]
#[template(path = "results.html")]
pub struct Results {
    pub q: String,
    pub hits: Vec<Hit>,
    pub message: String,
    /// A new record's form filled from the search (offered when nobody or the wrong people
    /// were found).
    pub create_url: String,
    /// Results to pick a citizen from (the mail room's sender), not links to their pages.
    pub picker: bool,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub role: String,
    pub url: String,
}

/// A member of the citizen's household, as the citizen page lists them.
#[derive(Debug, Clone)]
pub struct Relative {
    pub id: String,
    pub name: String,
    pub url: String,
    /// « enfant », « conjoint »…
    pub role: String,
    /// « 7 ans », or empty when the birth date is unknown.
    pub age: String,
}

/// « 7 ans » (« 1 an », « 4 mois » under one) on `today`, from a `YYYY-MM-DD` birth date.
pub fn age(birth_date: &str, today: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let Ok(born) = chrono::NaiveDate::parse_from_str(birth_date, "%Y-%m-%d") else {
        return String::new();
    };
    if born > today {
        return String::new();
    }
    let mut months = (today.year() - born.year()) * 12 + today.month() as i32 - born.month() as i32;
    if today.day() < born.day() {
        months -= 1;
    }
    match months / 12 {
        0 => format!("{months} mois"),
        1 => "1 an".into(),
        y => format!("{y} ans"),
    }
}

/// A `YYYY-MM-DD` date as agents write it (03/12/2026); as stored when it is not one.
pub fn iso_day(date: &str) -> String {
    contacthub_core::render::date_fr(date)
}

#[derive(Debug, Clone)]
pub struct ChannelFilter {
    pub code: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "citizen.html")]
pub struct CitizenPage {
    pub chrome: Chrome,
    pub tenant: String,
    pub id: String,
    pub url: String,
    pub name: String,
    pub provisional: bool,
    pub merged_into: String,
    pub birth_date: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub addresses: Vec<String>,
    pub preferred: String,
    pub consent: String,
    pub household: Vec<Relative>,
    /// At the top: per channel, « téléphone : 12, le dernier le 03/12/2026 ».
    pub summary: Vec<String>,
    /// « 2 demandes en cours, dont 1 en retard », or empty.
    pub open_summary: String,
    pub relations: &'static [&'static str],
    pub age: String,
    pub categories: Vec<(String, &'static str)>,
    /// The commune's services (code, name), from its directory.
    pub services: Vec<(String, String)>,
    /// Records merged into this one, each with its form to separate it again.
    pub merged: Vec<Member>,
    pub requests: Vec<RequestRow>,
    /// The person's appointments: « Passeport… », « lundi 07/12/2026 à 09:20 », its state.
    pub appointments: Vec<(String, String, &'static str)>,
    pub entries: Vec<Entry>,
    pub filters: Vec<ChannelFilter>,
    pub next_page: String,
    pub live_url: String,
    pub notice: String,
}

#[derive(Template)]
#[template(path = "entry.html")]
pub struct EntryFragment {
    pub e: Entry,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "contact.html")]
pub struct ContactPage {
    pub chrome: Chrome,
    pub tenant: String,
    pub event_id: String,
    pub e: Entry,
    pub citizen_url: String,
    pub subject: String,
    pub text: String,
    pub fields: Vec<Field>,
    pub attachments: Vec<Document>,
    pub categories: Vec<(String, &'static str)>,
    /// The commune's services (code, name), from its directory.
    pub services: Vec<(String, String)>,
    /// The citizen's open requests (reference, subject).
    pub open_requests: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub when: String,
    pub kind: String,
    pub agent: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "request.html")]
pub struct RequestPage {
    pub chrome: Chrome,
    pub tenant: String,
    pub r: RequestRow,
    /// What the requester types with the reference on the citizens' space to follow it.
    pub follow_up_code: String,
    pub requesters: Vec<Member>,
    pub first_contact: String,
    pub answer: String,
    pub closing: String,
    pub chrono: String,
    pub on_behalf_of: String,
    pub open: bool,
    pub answered: bool,
    pub history: Vec<Step>,
    pub notice: String,
    /// Validated answers to start from (id, title, text).
    pub catalogue: Vec<(String, String, String)>,
    /// Written answers composed here, oldest first.
    pub sent: Vec<SentAnswer>,
    /// Idempotency key of the compose form: a second click sends one answer.
    pub send_key: String,
    /// The written channel the requester prefers (empty: none consented to).
    pub preferred: String,
    /// Whom the request can be given to (the caller's colleagues), by id.
    pub colleagues: Vec<String>,
    /// The answer being written: what was typed, what is wrong with it, its preview.
    pub compose: Compose,
}

/// The compose form as the agent left it.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    pub channel: String,
    pub reason: String,
    pub subject: String,
    pub text: String,
    pub catalogue: String,
    pub letter: bool,
    /// Why it cannot go, in French.
    pub error: String,
    pub preview: Option<Preview>,
}

/// An answer exactly as it would leave.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// « courriel », « SMS », « courrier »…
    pub channel: &'static str,
    pub recipient: String,
    pub postal_lines: Vec<String>,
    pub subject: String,
    /// The e-mail's or SMS's text, or the letter's paragraphs (salutation to signature).
    pub paragraphs: Vec<String>,
    pub sms_segments: u32,
    /// A letter is printed (or attached to the e-mail).
    pub letter: bool,
}

/// A written answer as the request page lists it.
pub struct SentAnswer {
    pub when: String,
    pub channel: String,
    pub status: String,
    /// The proof (provider's id, printed letter's hash) or what went wrong.
    pub detail: String,
}

impl SentAnswer {
    pub fn of(a: &pb::Answer) -> SentAnswer {
        let channel = if a.channel == pb::Channel::WebForm as i32 {
            "portail".to_string()
        } else {
            channel_fr(a.channel).to_string()
        };
        let detail = if !a.last_error.is_empty() {
            a.last_error.clone()
        } else if !a.provider_message_id.is_empty() {
            a.provider_message_id.clone()
        } else if !a.pdf_sha256.is_empty() {
            format!(
                "lettre imprimée, empreinte {}",
                &a.pdf_sha256[..a.pdf_sha256.len().min(16)]
            )
        } else {
            String::new()
        };
        SentAnswer {
            when: micros(&a.composed_at).map(when).unwrap_or_default(),
            channel,
            status: contacthub_core::render::answer_status_fr(a.status).to_string(),
            detail,
        }
    }
}

impl RequestPage {
    pub fn closing_of(r: &pb::Request) -> String {
        if r.status == pb::RequestStatus::Closed as i32 {
            close_reason_fr(r)
        } else {
            String::new()
        }
    }
}

#[derive(Template)]
#[template(path = "worklist.html")]
pub struct Worklist {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub service: String,
    pub overdue_only: bool,
    /// To handle: no written answer yet.
    pub rows: Vec<RequestRow>,
    /// Answered, to close (apart, with a bulk close).
    pub answered: Vec<RequestRow>,
    pub services: Vec<(String, String)>,
    /// Whom a request can be given to (the caller's colleagues), by id.
    pub colleagues: Vec<String>,
    /// The caller's id (empty in open mode: « m'attribuer » needs someone).
    pub me: String,
    pub notice: String,
}

/// A row of a dashboard table.
#[derive(Debug, Clone)]
pub struct DashRow {
    pub label: String,
    pub opened: u64,
    pub answered: u64,
    pub in_time: String,
    /// « 12 j », or « — » when nothing was answered.
    pub p50: String,
    pub p90: String,
    pub overdue: u64,
}

#[derive(Debug, Clone)]
pub struct DashTable {
    pub caption: &'static str,
    pub rows: Vec<DashRow>,
    /// Whether the rows have an "overdue now" figure (the whole period's do, months do not).
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub from: String,
    pub to: String,
    /// « De mars 2026 à février 2027 ».
    pub period: String,
    /// Key figures: (name, this period, the same months a year before when compared).
    pub figures: Vec<(&'static str, String, String)>,
    pub compared: bool,
    /// (label, url) of the period presets.
    pub presets: Vec<(&'static str, String)>,
    pub compare_url: String,
    pub chart: crate::chart::Bars,
    pub tables: Vec<DashTable>,
    /// Per service giving appointments: its name, booked, cancelled, no-shows over the
    /// period, and the days to its first free slot now.
    pub appointments: Vec<(String, u64, u64, u64, String)>,
    pub recurring: Vec<(String, String, u64)>,
    pub csv_url: String,
}

/// A document to view or download.
#[derive(Debug, Clone)]
pub struct Document {
    pub url: String,
    pub label: String,
}

/// A letter in a list.
#[derive(Debug, Clone)]
pub struct LetterRow {
    pub chrono: String,
    pub url: String,
    pub received: String,
    pub sender: String,
    pub subject: String,
    pub service: String,
    pub status: &'static str,
    pub due: String,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "letters.html")]
pub struct Letters {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub service: String,
    pub overdue_only: bool,
    pub unanswered_only: bool,
    pub chrono: String,
    pub sender: String,
    pub pager: Pager,
    pub rows: Vec<LetterRow>,
    pub categories: Vec<(String, &'static str)>,
    /// The commune's services (code, name), from its directory.
    pub services: Vec<(String, String)>,
    pub today: String,
}

#[derive(Template)]
#[template(path = "letter.html")]
pub struct LetterPage {
    pub chrome: Chrome,
    pub r: LetterRow,
    pub url: String,
    pub category: &'static str,
    pub addressed_to: String,
    pub registered: String,
    pub answer: String,
    pub citizen_url: String,
    pub request: String,
    pub request_url: String,
    pub scans: Vec<Document>,
    pub history: Vec<Step>,
    pub notice: String,
    /// The commune's services (code, name), from its directory.
    pub services: Vec<(String, String)>,
}

/// A contact waiting for its citizen.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub action: String,
    pub e: Entry,
    pub who: String,
    pub claimed: String,
    /// What the contact says (its first lines), when the agent may read it.
    pub text: String,
    pub candidates: Vec<Candidate>,
}

/// A record a waiting contact may belong to, with what tells people apart.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub url: String,
    /// « née le 12/03/1984 · 12 rue Émile Zola · 3 contacts ».
    pub detail: String,
}

/// A citizens' space account no record matched exactly, for an agent to link.
#[derive(Debug, Clone)]
pub struct WaitingAccount {
    pub action: String,
    /// When the person signed in.
    pub when: String,
    /// Why the hub did not link it by itself.
    pub why: String,
    /// The identity FranceConnect gave: label and value.
    pub facts: Vec<(String, String)>,
    pub candidates: Vec<Candidate>,
}

#[derive(Template)]
#[template(path = "waiting.html")]
pub struct WaitingPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub items: Vec<Waiting>,
    pub accounts: Vec<WaitingAccount>,
    pub notice: String,
}

/// Two records that may be one person.
#[derive(Debug, Clone)]
pub struct Pair {
    pub a: Member,
    pub b: Member,
    pub why: String,
}

#[derive(Template)]
#[template(path = "pairs.html")]
pub struct PairsPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub pairs: Vec<Pair>,
    pub notice: String,
}

/// An answer of the catalogue.
#[derive(Debug, Clone)]
pub struct CatalogueItem {
    pub url: String,
    pub id: String,
    pub title: String,
    pub demarche: String,
    pub service: String,
    pub owner: String,
    pub reviewed_on: String,
    pub reviewed_iso: String,
    pub text: String,
    pub withdrawn: bool,
    pub version: u32,
}

/// One read of the trail, for the DPO's page.
pub struct ReadRow {
    pub when: String,
    pub agent: String,
    pub what: String,
    pub citizen: String,
    pub object: String,
    pub from: String,
}

#[derive(Template)]
#[template(path = "journal.html")]
pub struct JournalPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub citizen: String,
    pub agent: String,
    pub rows: Vec<ReadRow>,
    /// What the last action did (an erasure).
    pub notice: String,
}

#[derive(Template)]
#[template(path = "catalogue.html")]
pub struct CataloguePage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub q: String,
    pub items: Vec<CatalogueItem>,
    /// The caller may publish and withdraw answers (`catalogue = true` in the agents file).
    pub may_publish: bool,
}

#[derive(Template)]
#[template(path = "answer.html")]
pub struct AnswerPage {
    pub chrome: Chrome,
    pub tenant: String,
    pub a: CatalogueItem,
    pub notice: String,
    pub may_publish: bool,
}

/// The fields of a citizen record's form, as typed (or as stored, to correct them).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RecordFields {
    pub usage_name: String,
    pub birth_name: String,
    pub first_names: String,
    /// `YYYY-MM-DD` (an `<input type="date">`).
    pub birth_date: String,
    /// One per line.
    pub phones: String,
    pub emails: String,
    pub number: String,
    pub street: String,
    pub complement: String,
    pub postcode: String,
    pub city: String,
    /// `courriel`, `sms`, `courrier`, `telephone` or empty.
    pub preferred: String,
    #[serde(deserialize_with = "checkbox")]
    pub consent: bool,
    pub note: String,
}

fn checkbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v: String = serde::Deserialize::deserialize(d)?;
    Ok(!v.is_empty())
}

#[derive(Template)]
#[template(path = "record.html")]
pub struct RecordPage {
    pub chrome: Chrome,
    pub title: String,
    /// The record's id (empty for a new one).
    pub id: String,
    pub action: String,
    pub submit: &'static str,
    pub cancel: String,
    pub f: RecordFields,
    pub channels: Vec<(&'static str, &'static str)>,
    /// When and where the consent was given, if it was.
    pub consent_given: String,
    pub error: String,
}

/// An answer letter waiting in the print queue.
#[derive(Debug, Clone)]
pub struct Printable {
    pub id: String,
    pub request_url: String,
    pub reference: String,
    pub recipient: String,
    pub address: String,
    pub subject: String,
    pub written: String,
}

#[derive(Template)]
#[template(path = "print.html")]
pub struct PrintQueue {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub letters: Vec<Printable>,
    pub notice: String,
}

/// Where a paged list stands: its page of `pages`, `total` items, links to the neighbours.
#[derive(Debug, Clone, Default)]
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub previous: String,
    pub next: String,
}

/// A document's kind as agents say it (« PDF », « image JPEG »), never a MIME type.
pub fn kind_fr(media_type: &str) -> String {
    match media_type.split(';').next().unwrap_or("").trim() {
        "application/pdf" => "PDF".into(),
        "image/jpeg" => "image JPEG".into(),
        "image/png" => "image PNG".into(),
        "image/tiff" => "image TIFF".into(),
        "image/gif" => "image GIF".into(),
        "image/webp" => "image WebP".into(),
        "text/plain" => "texte".into(),
        "text/csv" => "tableau CSV".into(),
        "application/vnd.oasis.opendocument.text" => "document texte (ODT)".into(),
        "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            "document Word".into()
        }
        "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            "classeur Excel".into()
        }
        t if t.starts_with("image/") => "image".into(),
        _ => "fichier".into(),
    }
}

/// A document's size as agents read it: « 12 Ko », « 1,4 Mo ».
pub fn size_fr(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{} Ko", bytes.div_ceil(1024))
    } else {
        format!(
            "{} Mo",
            contacthub_core::render::decimal_fr(bytes as f64 / (1024.0 * 1024.0))
        )
    }
}
