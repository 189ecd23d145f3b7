//! The waiting line at the accueil's counters: the pré-accueil (`/accueil/borne`, on a
//! tablet at the entrance or an agent's desk), the ticket on screen and as a receipt PDF, the
//! counter (`/accueil/guichet`) and the hall screen (`/accueil/ecran`), live over server-sent
//! events.

use crate::pages::{chrome, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{url_encode, Chrome, Commune};
use crate::{render, Failure, State};
use askama::Template;
use axum::extract::{Form, Path, Query, State as Axum};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use contacthub_app::commands::{CloseTicket, IssueTicket, TicketOutcome};
use contacthub_core::accueil::{motive_fr, state, State as TicketState};
use contacthub_core::pb;
use serde::Deserialize;
use std::convert::Infallible;

/// A ticket as the pages show it.
pub struct TicketLine {
    pub id: String,
    pub number: String,
    pub motive: String,
    pub state: String,
    pub counter: u32,
    pub waited: u32,
    pub ahead: u32,
    pub estimate: u32,
    pub citizen_id: String,
    pub called: bool,
    /// Not called yet: the turns before it and the estimate say when.
    pub waiting: bool,
    /// When it was last called (µs), so the screen announces a call once.
    pub last_call_us: i64,
}

impl TicketLine {
    fn of(v: &pb::TicketView) -> TicketLine {
        let t = v.ticket.clone().unwrap_or_default();
        TicketLine {
            id: t.ticket_id.clone(),
            number: t.number.clone(),
            motive: v.motive_fr.clone(),
            state: v.state_fr.clone(),
            counter: t.counter,
            waited: v.waited_minutes,
            ahead: v.ahead,
            estimate: v.estimated_wait_minutes,
            citizen_id: t.citizen_id.clone(),
            called: state(&t) == TicketState::Called,
            waiting: state(&t) == TicketState::Waiting,
            last_call_us: t.called_us.max(t.recalled_us),
        }
    }
}

/// A site to choose.
pub struct SiteChoice {
    pub code: String,
    pub name: String,
    pub counters: Vec<u32>,
    pub selected: bool,
    /// The hall screen sounds a chime on each call.
    pub sound: bool,
}

/// The motives the pré-accueil offers: (category code as the form sends it, label).
fn motives() -> Vec<(i32, String)> {
    (1..=9).map(|c| (c, motive_fr(c, ""))).collect()
}

/// The caller's communes, the chosen one, its sites (the chosen one selected) and the
/// caller's scope in the waiting line.
struct Chosen {
    communes: Vec<Commune>,
    tenant: String,
    sites: Vec<SiteChoice>,
    scope: contacthub_app::auth::Scope,
}

/// What a page of the line asks for: the commune, and the site (the first when none or an
/// unknown one is asked).
fn sites(desk: &State, caller: &Caller, q: &LineQuery) -> Result<Chosen, Failure> {
    let (communes, tenant) = pick(desk, caller, &q.commune)?;
    let scope = caller.hall_scope(desk, &tenant)?;
    let list = desk.app.sites(&scope)?;
    let chosen = if list.iter().any(|s| s.code == q.site) {
        q.site.clone()
    } else {
        list.first().map(|s| s.code.clone()).unwrap_or_default()
    };
    let sites = list
        .into_iter()
        .map(|s| SiteChoice {
            selected: s.code == chosen,
            counters: (1..=s.counters).collect(),
            code: s.code,
            name: s.name,
            sound: s.sound,
        })
        .collect();
    Ok(Chosen {
        communes,
        tenant,
        sites,
        scope,
    })
}

fn chosen(sites: &[SiteChoice]) -> Option<&SiteChoice> {
    sites.iter().find(|s| s.selected)
}

#[derive(Template)]
#[template(path = "borne.html")]
pub struct BornePage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub sites: Vec<SiteChoice>,
    pub site: Option<String>,
    pub motives: Vec<(i32, String)>,
    /// An agent may name the person (the kiosk may not).
    pub agent: bool,
    pub fiche: String,
    pub waiting: usize,
    pub estimate: u32,
}

/// The pré-accueil: a motive per button, « autre » with a word, and for an agent the person.
pub async fn borne(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<LineQuery>) -> Page {
    let Chosen {
        communes,
        tenant,
        sites,
        scope,
    } = sites(&desk, &caller, &q)?;
    let site = chosen(&sites).map(|s| s.code.clone());
    let line = match &site {
        Some(s) => Some(desk.app.waiting(&scope, s)?),
        None => None,
    };
    Ok(render(&BornePage {
        chrome: chrome(&caller, &desk, "borne"),
        communes,
        tenant,
        site,
        sites,
        motives: motives(),
        agent: !scope.is_borne(),
        fiche: q.fiche.trim().to_string(),
        waiting: line.as_ref().map_or(0, |l| l.waiting.len()),
        estimate: line.map_or(0, |l| l.estimated_wait_minutes),
    }))
}

#[derive(Deserialize)]
pub struct TakeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    motive: i32,
    #[serde(default)]
    label: String,
    #[serde(default)]
    fiche: String,
}

/// A person takes a ticket.
pub async fn take(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, site)): Path<(String, String)>,
    Form(f): Form<TakeForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.hall_scope(&desk, &tenant)?;
    let motive = pb::Category::try_from(f.motive).map_err(|_| Failure {
        status: StatusCode::BAD_REQUEST,
        message: "Choisissez le motif de la visite.".into(),
    })?;
    let v = desk
        .app
        .issue_ticket(
            &scope,
            &IssueTicket {
                site,
                motive,
                motive_label: f.label,
                citizen_id: f.fiche,
            },
        )
        .await?;
    let id = v.ticket.map(|t| t.ticket_id).unwrap_or_default();
    Ok(see_other(&format!(
        "/accueil/{}/tickets/{}",
        url_encode(&tenant),
        url_encode(&id)
    )))
}

#[derive(Template)]
#[template(path = "ticket.html")]
pub struct TicketPage {
    pub chrome: Chrome,
    pub tenant: String,
    pub site: String,
    pub site_name: String,
    pub t: TicketLine,
    /// The kiosk goes back to its first page by itself.
    pub kiosk: bool,
}

/// A ticket on screen, with its receipt to print.
pub async fn ticket(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Page {
    let scope = caller.hall_scope(&desk, &tenant)?;
    let v = desk.app.ticket_for(&scope, &id)?;
    Ok(render(&TicketPage {
        chrome: chrome(&caller, &desk, "borne"),
        site: v
            .ticket
            .as_ref()
            .map(|t| t.site.clone())
            .unwrap_or_default(),
        site_name: v.site_name.clone(),
        t: TicketLine::of(&v),
        kiosk: scope.is_borne(),
        tenant,
    }))
}

/// The ticket as a receipt for an 80 mm printer.
pub async fn ticket_pdf(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Page {
    let scope = caller.hall_scope(&desk, &tenant)?;
    let v = desk.app.ticket_for(&scope, &id)?;
    let commune = desk.app.tenants().get(&tenant).cloned().ok_or(Failure {
        status: StatusCode::NOT_FOUND,
        message: "Introuvable dans cette commune.".into(),
    })?;
    let t = v.ticket.clone().unwrap_or_default();
    let pdf = contacthub_documents::ticket_pdf(
        &commune,
        &v.site_name,
        &t.number,
        &v.motive_fr,
        t.arrived_us,
        v.ahead,
        v.estimated_wait_minutes,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"ticket-{}.pdf\"", t.number),
            ),
        ],
        pdf,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "guichet.html")]
pub struct CounterPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub sites: Vec<SiteChoice>,
    pub site: String,
    pub counter: u32,
    /// The ticket at this counter now, and the person's name when known.
    pub current: Option<TicketLine>,
    pub person: String,
    pub waiting: Vec<TicketLine>,
    pub estimate: u32,
    pub services: Vec<(String, String)>,
    pub notice: String,
}

#[derive(Deserialize)]
pub struct LineQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    site: String,
    /// The counter's number (read by [`counter_number`]).
    #[serde(default)]
    guichet: String,
    /// The person, when the pré-accueil comes from their page.
    #[serde(default)]
    fiche: String,
    /// What the counter's page says after an action (`personne`, `clos`).
    #[serde(default)]
    avis: String,
}

/// A counter: the ticket being served, calling the next one, closing it; the line.
pub async fn counter(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<LineQuery>) -> Page {
    let Chosen {
        communes,
        tenant,
        sites,
        ..
    } = sites(&desk, &caller, &q)?;
    // The counter's work is an agent's.
    let scope = caller.scope(&desk, &tenant)?;
    let site = chosen(&sites).map(|s| s.code.clone()).unwrap_or_default();
    let counter = counter_number(&q.guichet)?;
    let (mut current, mut waiting, mut estimate) = (None, Vec::new(), 0);
    if !site.is_empty() {
        let line = desk.app.waiting(&scope, &site)?;
        current = line
            .at_counters
            .iter()
            .map(TicketLine::of)
            .find(|t| t.counter == counter);
        waiting = line.waiting.iter().map(TicketLine::of).collect();
        estimate = line.estimated_wait_minutes;
    }
    let person = match current.as_ref().map(|t| t.citizen_id.clone()) {
        Some(id) if !id.is_empty() => desk.app.citizen(&scope, &id)?.display_name,
        _ => String::new(),
    };
    Ok(render(&CounterPage {
        chrome: chrome(&caller, &desk, "accueil"),
        communes,
        services: crate::pages::services(&desk, &tenant),
        tenant,
        sites,
        site,
        counter,
        current,
        person,
        waiting,
        estimate,
        notice: match q.avis.as_str() {
            "personne" => "Personne n'attend pour ce guichet.".into(),
            "clos" => "Ticket clos.".into(),
            _ => String::new(),
        },
    }))
}

/// A counter's number as a page or a form gives it: the first when none is given, refused in
/// French when it is no number.
fn counter_number(raw: &str) -> Result<u32, Failure> {
    match raw.trim() {
        "" => Ok(1),
        n => n.parse::<u32>().map(|n| n.max(1)).map_err(|_| Failure {
            status: StatusCode::BAD_REQUEST,
            message: format!(
                "Le guichet « {} » n'est pas un numéro.",
                contacthub_core::limits::quote(n)
            ),
        }),
    }
}

fn back_to_counter(
    tenant: &str,
    site: &str,
    counter: u32,
    notice: &str,
) -> axum::response::Response {
    see_other(&format!(
        "/accueil/guichet?commune={}&site={}&guichet={counter}{}",
        url_encode(tenant),
        url_encode(site),
        if notice.is_empty() {
            String::new()
        } else {
            format!("&avis={notice}")
        }
    ))
}

/// Calls the next ticket for this counter.
pub async fn call_next(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, site, counter)): Path<(String, String, String)>,
    Form(f): Form<crate::pages::CsrfForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let counter = counter_number(&counter)?;
    let scope = caller.scope(&desk, &tenant)?;
    let called = desk.app.call_next(&scope, &site, counter).await?;
    Ok(back_to_counter(
        &tenant,
        &site,
        counter,
        if called.is_some() { "" } else { "personne" },
    ))
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    /// `rappel`, `debut` or `cloture`.
    #[serde(default)]
    step: String,
    #[serde(default)]
    issue: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    demande: String,
}

/// A step of the ticket at the counter: recalled, started, closed.
pub async fn step(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<StepForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let v = match f.step.as_str() {
        "rappel" => desk.app.recall_ticket(&scope, &id).await?,
        "debut" => desk.app.start_ticket(&scope, &id).await?,
        "cloture" => {
            let outcome = match f.issue.as_str() {
                "regle" => TicketOutcome::Settled,
                "oriente" => TicketOutcome::Transferred,
                "demande" => TicketOutcome::Request,
                "absent" => TicketOutcome::Absent,
                _ => {
                    return Err(Failure {
                        status: StatusCode::BAD_REQUEST,
                        message: "Indiquez l'issue : réglé, orienté, demande ou absent.".into(),
                    })
                }
            };
            desk.app
                .close_ticket(
                    &scope,
                    &CloseTicket {
                        ticket_id: id.clone(),
                        outcome,
                        service: f.service,
                        request_reference: f.demande,
                    },
                )
                .await?
        }
        _ => {
            return Err(Failure {
                status: StatusCode::BAD_REQUEST,
                message: "Étape inconnue.".into(),
            })
        }
    };
    let t = v.ticket.unwrap_or_default();
    Ok(back_to_counter(
        &tenant,
        &t.site,
        t.counter,
        if f.step == "cloture" { "clos" } else { "" },
    ))
}

#[derive(Template)]
#[template(path = "ecran.html")]
pub struct ScreenPage {
    pub communes: Vec<Commune>,
    pub tenant: String,
    pub sites: Vec<SiteChoice>,
    pub site: String,
    pub site_name: String,
    pub sound: bool,
    /// The board, rendered (the same fragment the live stream sends).
    pub board: String,
}

/// What the hall screen shows: the latest calls, how many wait, the estimated wait.
#[derive(Template)]
#[template(path = "board.html")]
pub struct Board {
    pub called: Vec<TicketLine>,
    pub waiting: usize,
    pub estimate: u32,
}

/// The waiting list a counter shows.
#[derive(Template)]
#[template(path = "line_waiting.html")]
pub struct WaitingList {
    pub waiting: Vec<TicketLine>,
    pub estimate: u32,
}

/// Calls shown on the hall screen.
const SCREEN_CALLS: usize = 6;

fn board(line: &contacthub_app::accueil::Line) -> Board {
    Board {
        called: line
            .at_counters
            .iter()
            .take(SCREEN_CALLS)
            .map(TicketLine::of)
            .collect(),
        waiting: line.waiting.len(),
        estimate: line.estimated_wait_minutes,
    }
}

/// The hall screen: large, readable from afar, live, announcing each call.
pub async fn screen(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<LineQuery>) -> Page {
    let Chosen {
        communes,
        tenant,
        sites,
        scope,
    } = sites(&desk, &caller, &q)?;
    let Some(site) = chosen(&sites).map(|s| (s.code.clone(), s.name.clone(), s.sound)) else {
        return Err(Failure {
            status: StatusCode::NOT_FOUND,
            message: "Cette commune n'a pas de site d'accueil.".into(),
        });
    };
    let line = desk.app.waiting(&scope, &site.0)?;
    Ok(render(&ScreenPage {
        communes,
        tenant,
        sites,
        board: board(&line).render().map_err(|_| Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Erreur interne ; l'exploitation a été prévenue.".into(),
        })?,
        site: site.0,
        site_name: site.1,
        sound: site.2,
    }))
}

/// The line of a site as it changes: `board` (the hall screen) and `file` (a counter's
/// waiting list) events, HTML fragments.
pub async fn live(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, site)): Path<(String, String)>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, Failure> {
    let scope = caller.hall_scope(&desk, &tenant)?;
    let (guard, stopping) = caller.live_stream(&desk)?;
    let rx = desk.app.watch_line(&scope, &site, stopping)?;
    let stream = futures::StreamExt::flat_map(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        move |line| {
            let _guard = &guard;
            let events: Vec<Result<Event, Infallible>> = [
                ("board", board(&line).render()),
                (
                    "file",
                    WaitingList {
                        waiting: line.waiting.iter().map(TicketLine::of).collect(),
                        estimate: line.estimated_wait_minutes,
                    }
                    .render(),
                ),
            ]
            .into_iter()
            .filter_map(|(name, html)| html.ok().map(|h| Ok(Event::default().event(name).data(h))))
            .collect();
            futures::stream::iter(events)
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
