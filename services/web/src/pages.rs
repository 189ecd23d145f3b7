//! One handler per page or action. Each checks the caller's access to the commune it names
//! (as the gRPC API does), calls the application layer, and renders a template; actions check
//! the form's CSRF token and redirect (post/redirect/get).

use crate::session::{self, Caller};
use crate::view::{self, url_encode, Chrome, Commune, Entry, RequestRow};
use crate::{render, Failure, State};
use axum::extract::{Path, Query, RawQuery, State as Axum};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use contacthub_app::auth::Agent;
use contacthub_core::dashboard as dash;
use contacthub_core::identity::display_phone;
use contacthub_core::pb;
use contacthub_core::render::{category_fr, channel_fr};
use serde::Deserialize;
use std::convert::Infallible;

pub(crate) type Page = Result<Response, Failure>;

pub(crate) fn chrome(c: &Caller, desk: &State, section: &'static str) -> Chrome {
    Chrome {
        who: c.who(),
        csrf: c.session.csrf.clone(),
        open: desk.app.access.is_open(),
        elu: c.is_elu(),
        section,
    }
}

/// The communes the caller may open with `chosen` (or the first) selected, and the selected
/// one; a commune the caller may not open is refused, not replaced.
pub(crate) fn pick(
    desk: &State,
    caller: &Caller,
    chosen: &str,
) -> Result<(Vec<Commune>, String), Failure> {
    let communes = communes(desk, caller.session.agent.as_ref(), chosen);
    if !chosen.is_empty() && !communes.iter().any(|c| c.code == chosen) {
        return Err(Failure {
            status: StatusCode::FORBIDDEN,
            message: "Vous n'avez pas accès à cette commune.".into(),
        });
    }
    let tenant = selected(&communes)?;
    Ok((communes, tenant))
}

/// The communes the caller may open, `chosen` (or the first) selected.
fn communes(desk: &State, agent: Option<&Agent>, chosen: &str) -> Vec<Commune> {
    let mut out: Vec<Commune> = desk
        .app
        .tenants
        .iter()
        .filter(|t| agent.is_none_or(|a| a.may_read(&t.code)))
        .map(|t| Commune {
            code: t.code.clone(),
            name: t.name.clone(),
            selected: t.code == chosen,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if !out.iter().any(|c| c.selected) {
        if let Some(first) = out.first_mut() {
            first.selected = true;
        }
    }
    out
}

fn selected(communes: &[Commune]) -> Result<String, Failure> {
    communes
        .iter()
        .find(|c| c.selected)
        .map(|c| c.code.clone())
        .ok_or(Failure {
            status: StatusCode::FORBIDDEN,
            message: "Aucune commune ne vous est ouverte.".into(),
        })
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn now(desk: &State) -> i64 {
    (desk.app.clock)()
}

pub async fn home(caller: Caller) -> Response {
    see_other(landing(caller.session.agent.as_ref()))
}

/// Where an agent starts their day: an élu on the dashboard, an agent of a service on their
/// worklist, the accueil and the mail room on the search.
fn landing(agent: Option<&Agent>) -> &'static str {
    match agent {
        Some(a) if a.is_elu() => "/tableau-de-bord",
        Some(a) if !a.is_generalist() => "/demandes",
        _ => "/citoyens",
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    suite: String,
}

/// Where to go after signing in: a path of this desk only (no scheme, no other host, no
/// control character or space a browser would strip into `//elsewhere`).
fn safe_next(next: &str) -> &str {
    let path_only = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2_000
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if path_only {
        next
    } else {
        "/"
    }
}

pub async fn login_form(Axum(desk): Axum<State>, Query(q): Query<NextQuery>) -> Response {
    render(&view::Login {
        open: desk.app.access.is_open(),
        next: safe_next(&q.suite).to_string(),
        error: String::new(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    suite: String,
}

pub async fn login(
    Axum(desk): Axum<State>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    // Signing in from another site (login CSRF) is refused: the browser says where the form
    // came from.
    if !session::same_origin(&headers) {
        tracing::info!("web desk: sign-in from another origin refused");
        return Failure {
            status: StatusCode::FORBIDDEN,
            message: "Connexion refusée : le formulaire ne vient pas de ce poste.".into(),
        }
        .into_response();
    }
    let token = f.token.trim();
    let (token, agent) = if desk.app.access.is_open() {
        (None, None)
    } else {
        match desk.app.access.caller(Some(token)) {
            Ok(agent) => (Some(token.to_string()), agent),
            Err(_) => {
                let page = view::Login {
                    open: false,
                    next: safe_next(&f.suite).to_string(),
                    error: "Jeton inconnu : vérifiez-le et recommencez.".into(),
                };
                return (StatusCode::UNAUTHORIZED, render(&page)).into_response();
            }
        }
    };
    let start = landing(agent.as_ref());
    if let Some(a) = &agent {
        tracing::info!(agent = %a.id, "web desk: signed in");
    }
    let Some(id) = desk.sessions.open(token, agent) else {
        return Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Trop de sessions ouvertes : fermez-en une (Se déconnecter) et recommencez."
                .into(),
        }
        .into_response();
    };
    let next = match safe_next(&f.suite) {
        "/" => start,
        n => n,
    };
    (
        [(header::SET_COOKIE, session::set_cookie(&id, &headers))],
        see_other(next),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(Axum(desk): Axum<State>, caller: Caller, Form(f): Form<CsrfForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    desk.sessions.close(&caller.id);
    Ok((
        [(header::SET_COOKIE, session::clear_cookie())],
        see_other("/connexion"),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    commune: String,
    /// Only the results (for search as you type).
    #[serde(default)]
    fragment: bool,
}

fn hits(tenant: &str, r: &pb::SearchCitizensResponse) -> Vec<view::Hit> {
    r.hits
        .iter()
        .filter_map(|h| {
            let c = h.citizen.as_ref()?;
            let identity = c.identity.clone().unwrap_or_default();
            let address = identity
                .addresses
                .first()
                .map(|a| format!("{} {} {} {}", a.number, a.street, a.postcode, a.city))
                .unwrap_or_default();
            Some(view::Hit {
                url: format!(
                    "/citoyens/{}/{}",
                    url_encode(tenant),
                    url_encode(&c.citizen_id)
                ),
                name: if c.display_name.is_empty() {
                    "(sans nom)".into()
                } else {
                    c.display_name.clone()
                },
                id: c.citizen_id.clone(),
                contacts: c
                    .phones
                    .iter()
                    .map(|p| display_phone(p))
                    .chain(c.emails.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", "),
                address: address.split_whitespace().collect::<Vec<_>>().join(" "),
                matched_by: match h.matched_by.as_str() {
                    "name" => "le nom",
                    "phone" => "le téléphone",
                    "email" => "le courriel",
                    "address" => "l'adresse",
                    "citizen_id" => "le numéro d'usager",
                    "chrono" => "le numéro de courrier",
                    "reference" => "la référence d'une démarche",
                    _ => "la recherche",
                }
                .to_string(),
                provisional: c.provisional,
            })
        })
        .collect()
}

pub async fn search(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<SearchQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    let query = q.q.trim().to_string();
    let (found, message) = if query.is_empty() {
        (vec![], String::new())
    } else {
        match desk.app.search_citizens(
            &agent,
            &pb::SearchCitizensRequest {
                tenant: tenant.clone(),
                query: query.clone(),
                page_size: 20,
                ..Default::default()
            },
        ) {
            Ok(r) if r.hits.is_empty() => {
                (vec![], format!("Aucun usager ne correspond à « {query} »."))
            }
            Ok(r) => (hits(&tenant, &r), String::new()),
            Err(contacthub_app::Error::Invalid(m)) => {
                (vec![], format!("Recherche impossible : {m}"))
            }
            Err(e) => return Err(e.into()),
        }
    };
    if q.fragment {
        return Ok(render(&view::Results {
            q: query,
            hits: found,
            message,
        }));
    }
    Ok(render(&view::Search {
        chrome: chrome(&caller, &desk, "citoyens"),
        communes,
        tenant,
        q: query,
        hits: found,
        message,
    }))
}

const FILTERS: [(pb::Channel, &str); 7] = [
    (pb::Channel::Phone, "telephone"),
    (pb::Channel::Courrier, "courrier"),
    (pb::Channel::WebForm, "demarche"),
    (pb::Channel::Sms, "sms"),
    (pb::Channel::Email, "courriel"),
    (pb::Channel::Desk, "accueil"),
    (pb::Channel::BackOffice, "interne"),
];

#[derive(Deserialize, Default)]
pub struct CitizenQuery {
    /// The page after this token.
    #[serde(default)]
    suite: String,
    #[serde(default)]
    avis: String,
}

pub async fn citizen(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Query(q): Query<CitizenQuery>,
    RawQuery(raw): RawQuery,
) -> Page {
    let agent = caller.for_tenant(&desk, &tenant)?;
    // The channels shown (`canal=telephone&canal=courriel`); all when none.
    let raw = raw.unwrap_or_default();
    let chosen: Vec<&str> = raw
        .split('&')
        .filter_map(|kv| kv.strip_prefix("canal="))
        .filter(|c| FILTERS.iter().any(|(_, code)| code == c))
        .collect();
    let channels: Vec<i32> = FILTERS
        .iter()
        .filter(|(_, code)| chosen.contains(code))
        .map(|(c, _)| *c as i32)
        .collect();
    let page = desk.app.timeline(
        &agent,
        &pb::GetTimelineRequest {
            tenant: tenant.clone(),
            citizen: Some(pb::CitizenRef {
                by: Some(pb::citizen_ref::By::CitizenId(id.clone())),
            }),
            channels,
            page_size: 50,
            page_token: q.suite.clone(),
            ..Default::default()
        },
    )?;
    let c = page.citizen.clone().unwrap_or_default();
    let identity = c.identity.clone().unwrap_or_default();
    let url = format!(
        "/citoyens/{}/{}",
        url_encode(&tenant),
        url_encode(&c.citizen_id)
    );
    let mut household = Vec::new();
    for h in &c.households {
        let hh = desk.app.household(
            &agent,
            &pb::GetHouseholdRequest {
                tenant: tenant.clone(),
                household_id: h.clone(),
                recent: 1,
            },
        )?;
        for m in hh.members {
            let Some(mc) = m.citizen else { continue };
            if mc.citizen_id == c.citizen_id {
                continue;
            }
            household.push(view::Member {
                url: format!(
                    "/citoyens/{}/{}",
                    url_encode(&tenant),
                    url_encode(&mc.citizen_id)
                ),
                name: mc.display_name,
                role: m.role,
            });
        }
    }
    let now = now(&desk);
    let mut requests: Vec<RequestRow> = desk
        .app
        .citizen_requests(&agent, &tenant, &c.citizen_id)?
        .iter()
        .map(|r| RequestRow::of(r, now))
        .collect();
    requests.sort_by_key(|r| std::cmp::Reverse(r.overdue));
    let consent = identity
        .consent
        .as_ref()
        .map(|k| {
            format!(
                "donné le {} ({})",
                view::micros(&k.given_at).map(view::day).unwrap_or_default(),
                k.source
            )
        })
        .unwrap_or_else(|| "non recueilli".into());
    let canaux: String = chosen.iter().map(|c| format!("canal={c}&")).collect();
    Ok(render(&view::CitizenPage {
        chrome: chrome(&caller, &desk, "citoyens"),
        tenant: tenant.clone(),
        id: c.citizen_id.clone(),
        url: url.clone(),
        name: if c.display_name.is_empty() {
            "(sans nom)".into()
        } else {
            c.display_name.clone()
        },
        provisional: c.provisional,
        merged_into: c.merged_into.clone(),
        birth_date: identity.birth_date.clone(),
        phones: c.phones.iter().map(|p| display_phone(p)).collect(),
        emails: c.emails.clone(),
        addresses: identity
            .addresses
            .iter()
            .map(|a| {
                format!("{} {}, {} {}", a.number, a.street, a.postcode, a.city)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
        preferred: match pb::ContactChannel::try_from(identity.preferred_channel) {
            Ok(pb::ContactChannel::Email) => "courriel",
            Ok(pb::ContactChannel::Sms) => "SMS",
            Ok(pb::ContactChannel::Courrier) => "courrier",
            Ok(pb::ContactChannel::Phone) => "téléphone",
            _ => "non précisé",
        }
        .into(),
        consent,
        household,
        merged: desk
            .app
            .merged_records(&tenant, &c.citizen_id)?
            .into_iter()
            .map(|m| view::Member {
                url: format!(
                    "/citoyens/{}/{}/defusion",
                    url_encode(&tenant),
                    url_encode(&m.citizen_id)
                ),
                name: if m.display_name.is_empty() {
                    m.citizen_id.clone()
                } else {
                    m.display_name.clone()
                },
                role: m.citizen_id,
            })
            .collect(),
        requests,
        entries: page.entries.iter().map(|e| Entry::of(&tenant, e)).collect(),
        filters: FILTERS
            .iter()
            .map(|(c, code)| view::ChannelFilter {
                code,
                label: channel_fr(*c as i32),
                checked: chosen.contains(code),
            })
            .collect(),
        next_page: if page.next_page_token.is_empty() {
            String::new()
        } else {
            format!("{url}?{canaux}suite={}", url_encode(&page.next_page_token))
        },
        live_url: if q.suite.is_empty() {
            format!("{url}/flux")
        } else {
            String::new()
        },
        notice: match q.avis.as_str() {
            "visite" => "Visite enregistrée.".into(),
            "defusion" => "Fiche séparée : son historique est de nouveau le sien.".into(),
            _ => String::new(),
        },
    }))
}

/// New timeline entries of a citizen as server-sent events (`entry`: the line's HTML).
pub async fn live(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, Failure> {
    let agent = caller.for_tenant(&desk, &tenant)?;
    let Some((guard, mut ended)) = caller.session.open_stream(&desk.sessions) else {
        return Err(Failure {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "Trop de pages ouvertes en direct : fermez-en une et rechargez celle-ci."
                .into(),
        });
    };
    // The stream ends with the server, or with the session (sign-out, expiry).
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let mut server = desk.stopping.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = server.wait_for(|s| *s) => {}
            _ = ended.wait_for(|e| *e) => {}
            _ = stop_tx.closed() => return,
        }
        let _ = stop_tx.send(true);
    });
    let rx = desk.app.watch(
        &agent,
        &tenant,
        Some(&pb::CitizenRef {
            by: Some(pb::citizen_ref::By::CitizenId(id)),
        }),
        stopping,
    )?;
    let stream = futures::StreamExt::filter_map(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        move |item| {
            // Counted as open for as long as the stream lives.
            let _guard = &guard;
            let tenant = tenant.clone();
            async move {
                // A watch that fell behind or a server shutting down ends the stream: the
                // page says to reload rather than miss contacts silently.
                let Ok(entry) = item else {
                    return Some(Ok(Event::default()
                        .event("reload")
                        .data("Rechargez la page pour voir les derniers contacts.")));
                };
                let html = askama::Template::render(&view::EntryFragment {
                    e: Entry::of(&tenant, &entry),
                })
                .ok()?;
                Some(Ok(Event::default().event("entry").data(html)))
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
pub struct VisitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    desk: String,
}

pub async fn visit(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<VisitForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    desk.app
        .record_visit(
            agent,
            &pb::RecordVisitRequest {
                tenant: tenant.clone(),
                party: Some(pb::Party {
                    citizen_id: id.clone(),
                    ..Default::default()
                }),
                desk: if f.desk.trim().is_empty() {
                    "accueil".into()
                } else {
                    f.desk.trim().into()
                },
                subject: f.subject.trim().into(),
                notes: f.notes,
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/citoyens/{}/{}?avis=visite",
        url_encode(&tenant),
        url_encode(&id)
    )))
}

pub(crate) const CATEGORIES: [(pb::Category, &str); 9] = [
    (pb::Category::Other, "autre"),
    (pb::Category::EtatCivil, "etat-civil"),
    (pb::Category::Scolaire, "scolaire"),
    (pb::Category::PetiteEnfance, "petite-enfance"),
    (pb::Category::Ccas, "ccas"),
    (pb::Category::Culture, "culture"),
    (pb::Category::ServicesTechniques, "services-techniques"),
    (pb::Category::Urbanisme, "urbanisme"),
    (pb::Category::PoliceMunicipale, "police-municipale"),
];

pub async fn contact(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
) -> Page {
    let agent = caller.for_tenant(&desk, &tenant)?;
    let c = desk.app.contact(&agent, &tenant, &event)?;
    let entry = c.entry.unwrap_or_default();
    let personal = c.personal.unwrap_or_default();
    // The citizen's open requests, to link this contact to one.
    let open: Vec<(String, String)> = if entry.citizen_id.is_empty() {
        vec![]
    } else {
        desk.app
            .citizen_requests(&agent, &tenant, &entry.citizen_id)?
            .into_iter()
            .filter(|r| r.status != pb::RequestStatus::Closed as i32)
            .map(|r| (r.reference, r.subject))
            .collect()
    };
    Ok(render(&view::ContactPage {
        chrome: chrome(&caller, &desk, "citoyens"),
        tenant: tenant.clone(),
        event_id: event.clone(),
        e: Entry::of(&tenant, &entry),
        citizen_url: if entry.citizen_id.is_empty() {
            String::new()
        } else {
            format!(
                "/citoyens/{}/{}",
                url_encode(&tenant),
                url_encode(&entry.citizen_id)
            )
        },
        subject: personal.subject,
        text: personal.text,
        fields: personal
            .fields
            .into_iter()
            .map(|f| view::Field {
                name: f.name,
                value: f.value,
            })
            .collect(),
        attachments: entry
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| view::Document {
                url: format!(
                    "/contacts/{}/{}/pieces/{i}",
                    url_encode(&tenant),
                    url_encode(&event)
                ),
                label: format!(
                    "{} ({}, {} Ko)",
                    personal
                        .attachment_names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("pièce {}", i + 1)),
                    a.media_type,
                    a.size_bytes.div_ceil(1024)
                ),
            })
            .collect(),
        categories: CATEGORIES
            .iter()
            .map(|(c, code)| (*code, category_fr(*c as i32)))
            .collect(),
        open_requests: open,
    }))
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reference: String,
}

/// Links a contact to an open request.
pub async fn link_request(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
    Form(f): Form<LinkForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    let reference = f.reference.trim().to_string();
    // `link_contact` checks the request is one this agent may see.
    desk.app
        .link_contact(
            agent,
            &pb::LinkContactRequest {
                tenant: tenant.clone(),
                reference: reference.clone(),
                contact_event_id: event,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=rattache",
        url_encode(&tenant),
        url_encode(&reference)
    )))
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    service: String,
}

pub async fn open_request(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
    Form(f): Form<OpenForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    let category = CATEGORIES
        .iter()
        .find(|(_, code)| *code == f.category)
        .map_or(pb::Category::Other, |(c, _)| *c);
    let r = desk
        .app
        .open_request(
            agent,
            &pb::OpenRequestRequest {
                tenant: tenant.clone(),
                subject: f.subject.trim().into(),
                category: category as i32,
                service: f.service.trim().into(),
                from_contact_event_id: event,
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=ouverte",
        url_encode(&tenant),
        url_encode(&r.reference)
    )))
}

#[derive(Deserialize)]
pub struct WorklistQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    retard: bool,
}

pub async fn worklist(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<WorklistQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    let now = now(&desk);
    let list = desk.app.list_requests(
        &agent,
        &pb::ListRequestsRequest {
            tenant: tenant.clone(),
            service: q.service.trim().into(),
            open_only: true,
            overdue_only: q.retard,
            limit: 500,
            ..Default::default()
        },
    )?;
    let mut rows: Vec<RequestRow> = list.iter().map(|r| RequestRow::of(r, now)).collect();
    // Overdue first, then oldest due first (the order of the list).
    rows.sort_by_key(|r| std::cmp::Reverse(r.overdue));
    Ok(render(&view::Worklist {
        chrome: chrome(&caller, &desk, "demandes"),
        communes,
        tenant,
        service: q.service,
        overdue_only: q.retard,
        rows,
    }))
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    avis: String,
}

pub async fn request(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Query(n): Query<Notice>,
) -> Page {
    let agent = caller.for_tenant(&desk, &tenant)?;
    let r = desk.app.get_request(&agent, &tenant, &reference)?;
    let now = now(&desk);
    let mut requesters = Vec::new();
    // The written channel the first requester prefers, if they consented to it.
    let mut preferred = String::new();
    for id in &r.requesters {
        let citizen = desk.app.citizen(&tenant, id).ok();
        if preferred.is_empty() {
            preferred = citizen
                .as_ref()
                .and_then(|c| c.identity.as_ref())
                .and_then(contacthub_core::outbound::preferred_channel)
                .map(|c| channel_fr(c as i32).to_string())
                .unwrap_or_default();
        }
        let name = citizen.map(|c| c.display_name).unwrap_or_default();
        requesters.push(view::Member {
            url: format!("/citoyens/{}/{}", url_encode(&tenant), url_encode(id)),
            name: if name.is_empty() { id.clone() } else { name },
            role: id.clone(),
        });
    }
    let answered = r.answered_at.is_some();
    Ok(render(&view::RequestPage {
        chrome: chrome(&caller, &desk, "demandes"),
        tenant: tenant.clone(),
        r: RequestRow::of(&r, now),
        requesters,
        first_contact: view::micros(&r.first_contact_at)
            .map(view::when)
            .unwrap_or_default(),
        answer: if answered {
            format!(
                "le {} par {} ({})",
                view::micros(&r.answered_at)
                    .map(view::when)
                    .unwrap_or_default(),
                channel_fr(r.answer_channel),
                r.answer_ref
            )
        } else {
            String::new()
        },
        closing: view::RequestPage::closing_of(&r),
        chrono: r.chrono.clone(),
        on_behalf_of: r.on_behalf_of.clone(),
        open: r.status != pb::RequestStatus::Closed as i32,
        answered: r.status == pb::RequestStatus::Answered as i32,
        history: r
            .history
            .iter()
            .map(|h| view::Step {
                when: view::micros(&h.at).map(view::when).unwrap_or_default(),
                kind: contacthub_core::render::step_fr(&h.kind).to_string(),
                agent: h.agent_id.clone(),
                note: if h.kind == "assigned" && !h.note.is_empty() {
                    format!("à {}", h.note)
                } else {
                    h.note.clone()
                },
            })
            .collect(),
        notice: match n.avis.as_str() {
            "ouverte" => "Demande ouverte.".into(),
            "repondue" => "Réponse enregistrée.".into(),
            "envoyee" => {
                "Réponse mise à l'envoi : son état (remise, nouvel essai, échec) est dans « Réponses écrites »."
                    .into()
            }
            "close" => "Demande clôturée.".into(),
            "rattache" => "Contact rattaché à la demande.".into(),
            _ => String::new(),
        },
        catalogue: desk
            .app
            .catalogue(&tenant, "", false)?
            .into_iter()
            .map(|a| (a.answer_id, a.title))
            .collect(),
        // Of a need-to-know matter of another service, nothing of its answers.
        sent: if r.withheld_service.is_empty() {
            desk.app
                .list_answers(&agent, &tenant, &reference)?
                .iter()
                .map(view::SentAnswer::of)
                .collect()
        } else {
            Vec::new()
        },
        send_key: crate::session::random_hex(),
        preferred,
    }))
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    csrf: String,
    /// Empty: the citizen's preferred channel.
    #[serde(default)]
    channel: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    catalogue: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    letter: Option<String>,
    /// Given by the page: a second click sends one answer.
    #[serde(default)]
    key: String,
}

/// The written channel an answer form names (`courriel`, `sms`, `courrier`, `portail`).
fn written_channel(name: &str) -> Option<pb::Channel> {
    match name {
        "courriel" => Some(pb::Channel::Email),
        "sms" => Some(pb::Channel::Sms),
        "courrier" => Some(pb::Channel::Courrier),
        "portail" => Some(pb::Channel::WebForm),
        _ => None,
    }
}

/// Composes a written answer and puts it in the outbox.
pub async fn send_answer(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<SendForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    // Empty: the citizen's preferred channel.
    let channel = written_channel(&f.channel).unwrap_or(pb::Channel::Unspecified);
    desk.app
        .send_answer(
            agent,
            &pb::ComposeAnswerRequest {
                tenant: tenant.clone(),
                reference: reference.clone(),
                channel: channel as i32,
                channel_reason: f.reason,
                subject: f.subject,
                text: f.text,
                catalogue_answer_id: f.catalogue,
                attach_letter: f.letter.is_some(),
                idempotency_key: f.key,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=envoyee",
        url_encode(&tenant),
        url_encode(&reference)
    )))
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    answer_ref: String,
    /// A validated answer of the catalogue the written answer follows.
    #[serde(default)]
    catalogue: String,
}

pub async fn answer(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<AnswerForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    let channel = written_channel(&f.channel).unwrap_or(pb::Channel::Courrier);
    let answer_ref = desk
        .app
        .answer_ref(&tenant, f.answer_ref.trim(), f.catalogue.trim())?;
    desk.app
        .record_answer(
            agent,
            &pb::RecordAnswerRequest {
                tenant: tenant.clone(),
                reference: reference.clone(),
                answer_channel: channel as i32,
                answer_ref,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=repondue",
        url_encode(&tenant),
        url_encode(&reference)
    )))
}

pub async fn close(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let agent = caller.for_tenant(&desk, &tenant)?;
    desk.app
        .close_request(
            agent,
            &pb::CloseRequestRequest {
                tenant: tenant.clone(),
                reference: reference.clone(),
                reason: pb::CloseReason::Answered as i32,
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=close",
        url_encode(&tenant),
        url_encode(&reference)
    )))
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    de: String,
    #[serde(default)]
    a: String,
}

/// The dashboard asked for: the commune, and the period (by default the last twelve months).
fn dashboard_of(
    desk: &State,
    caller: &Caller,
    q: &DashboardQuery,
) -> Result<(Vec<Commune>, pb::Dashboard), Failure> {
    let (communes, tenant) = pick(desk, caller, &q.commune)?;
    caller.for_dashboard(desk, &tenant)?;
    let (from, to) = dash::period(&q.de, &q.a, now(desk)).map_err(|m| Failure {
        status: StatusCode::BAD_REQUEST,
        message: format!("Période incorrecte : {m}"),
    })?;
    let d = desk.app.dashboard(&pb::GetDashboardRequest {
        tenant,
        from_month: from,
        to_month: to,
    })?;
    Ok((communes, d))
}

fn pct(x: f64) -> String {
    format!("{x:.1} %").replace('.', ",")
}

pub async fn dashboard(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<DashboardQuery>,
) -> Page {
    let (communes, d) = dashboard_of(&desk, &caller, &q)?;
    let whole = d
        .rows
        .iter()
        .find(|r| r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
        .and_then(|r| r.figures)
        .unwrap_or_default();
    let figures = vec![
        ("Contacts reçus", whole.contacts_received.to_string()),
        ("Demandes ouvertes", whole.requests_opened.to_string()),
        ("Demandes répondues", whole.requests_answered.to_string()),
        (
            "Répondues dans le délai",
            pct(whole.answered_in_time_percent),
        ),
        (
            "Délai de réponse médian",
            format!("{} j", whole.p50_days_to_answer),
        ),
        (
            "Délai pour 90 % des réponses",
            format!("{} j", whole.p90_days_to_answer),
        ),
        ("En retard aujourd'hui", whole.overdue_now.to_string()),
        ("Courriers tracés", pct(whole.letters_traced_percent)),
        ("Appels manqués", pct(whole.missed_call_percent)),
        (
            "Appels renvoyés à l'accueil",
            pct(whole.bounce_back_percent),
        ),
    ];
    let months: Vec<(String, u64, u64)> = d
        .rows
        .iter()
        .filter(|r| !r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
        .map(|r| {
            let f = r.figures.unwrap_or_default();
            (r.month.clone(), f.requests_opened, f.requests_answered)
        })
        .collect();
    let row = |label: String, f: pb::DashboardFigures| view::DashRow {
        label,
        opened: f.requests_opened,
        answered: f.requests_answered,
        in_time: pct(f.answered_in_time_percent),
        p50: f.p50_days_to_answer,
        p90: f.p90_days_to_answer,
        overdue: f.overdue_now,
    };
    let mut tables = vec![view::DashTable {
        caption: "Par mois",
        overdue: false,
        rows: d
            .rows
            .iter()
            .filter(|r| !r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
            .map(|r| row(r.month.clone(), r.figures.unwrap_or_default()))
            .collect(),
    }];
    for (dim, caption) in [
        (dash::DIM_CHANNEL, "Par canal"),
        (dash::DIM_CATEGORY, "Par catégorie"),
        (dash::DIM_SERVICE, "Par service"),
    ] {
        tables.push(view::DashTable {
            caption,
            overdue: true,
            rows: d
                .rows
                .iter()
                .filter(|r| r.month.is_empty() && r.dimension == dim)
                .map(|r| row(r.label.clone(), r.figures.unwrap_or_default()))
                .collect(),
        });
    }
    let csv_url = format!(
        "/tableau-de-bord.csv?commune={}&de={}&a={}",
        url_encode(&d.tenant),
        url_encode(&d.from_month),
        url_encode(&d.to_month)
    );
    Ok(render(&view::DashboardPage {
        chrome: chrome(&caller, &desk, "tableau"),
        communes,
        tenant: d.tenant.clone(),
        from: d.from_month.clone(),
        to: d.to_month.clone(),
        figures,
        chart: crate::chart::bars(&months),
        tables,
        recurring: d
            .recurring
            .iter()
            .map(|p| {
                (
                    dash::dimension_fr(&p.kind).to_string(),
                    p.label.clone(),
                    p.requests,
                )
            })
            .collect(),
        csv_url,
    }))
}

pub async fn dashboard_csv(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<DashboardQuery>,
) -> Page {
    let (_, d) = dashboard_of(&desk, &caller, &q)?;
    let name = format!(
        "tableau-de-bord-{}-{}-{}.csv",
        d.tenant, d.from_month, d.to_month
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        // A byte-order mark, so spreadsheets read the accents as UTF-8.
        format!("\u{feff}{}", dash::csv(&d)),
    )
        .into_response())
}
