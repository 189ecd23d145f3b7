//! Finding a citizen and their page: search as the accueil types, the record, household,
//! requests and the timeline of every channel (live), and the visits recorded at the counter.

use crate::pages::{chrome, now, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, Entry, RequestRow};
use crate::{render, Failure, State};
use axum::extract::{Path, Query, RawQuery, State as Axum};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Form;
use contacthub_app::commands::{self, Who};
use contacthub_core::identity::display_phone;
use contacthub_core::pb;
use contacthub_core::render::channel_fr;
use serde::Deserialize;
use std::convert::Infallible;

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    commune: String,
    /// Only the results (for search as you type).
    #[serde(default)]
    fragment: bool,
    /// Results to pick from (`choix=true`), with `fragment`.
    #[serde(default)]
    choix: bool,
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
    let scope = caller.scope(&desk, &tenant)?;
    let query = q.q.trim().to_string();
    let (found, message) = if query.is_empty() {
        (vec![], String::new())
    } else {
        match desk.app.search_citizens(
            &scope,
            &commands::SearchCitizens {
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
    let create_url = if query.is_empty() {
        String::new()
    } else {
        format!(
            "/fiches/nouvelle?commune={}&q={}",
            url_encode(&tenant),
            url_encode(&query)
        )
    };
    if q.fragment {
        return Ok(render(&view::Results {
            q: query,
            hits: found,
            message,
            create_url,
            picker: q.choix,
        }));
    }
    Ok(render(&view::Search {
        chrome: chrome(&caller, &desk, "citoyens"),
        communes,
        tenant,
        q: query,
        hits: found,
        message,
        create_url,
        picker: false,
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
    let scope = caller.scope(&desk, &tenant)?;
    // The channels shown (`canal=telephone&canal=courriel`); all when none.
    let raw = raw.unwrap_or_default();
    let chosen: Vec<&str> = raw
        .split('&')
        .filter_map(|kv| kv.strip_prefix("canal="))
        .filter(|c| FILTERS.iter().any(|(_, code)| code == c))
        .collect();
    let channels: Vec<pb::Channel> = FILTERS
        .iter()
        .filter(|(_, code)| chosen.contains(code))
        .map(|(c, _)| *c)
        .collect();
    let page = desk.app.timeline(
        &scope,
        &commands::TimelinePage {
            citizen: Who::Record(id.clone()),
            channels,
            page_size: 50,
            page_token: q.suite.clone(),
            since: None,
            until: None,
        },
    )?;
    let c = page.citizen.clone().unwrap_or_default();
    let identity = c.identity.clone().unwrap_or_default();
    let url = format!(
        "/citoyens/{}/{}",
        url_encode(&tenant),
        url_encode(&c.citizen_id)
    );
    let today = contacthub_core::courrier::paris(now(&desk)).date();
    let mut household = Vec::new();
    for h in &c.households {
        let hh = desk.app.household(
            &scope,
            &commands::HouseholdQuery {
                household_id: h.clone(),
                recent: 1,
            },
        )?;
        for m in hh.members {
            let Some(mc) = m.citizen else { continue };
            if mc.citizen_id == c.citizen_id
                || household
                    .iter()
                    .any(|r: &view::Relative| r.id == mc.citizen_id)
            {
                continue;
            }
            household.push(view::Relative {
                url: format!(
                    "/citoyens/{}/{}",
                    url_encode(&tenant),
                    url_encode(&mc.citizen_id)
                ),
                age: view::age(
                    mc.identity.as_ref().map_or("", |i| i.birth_date.as_str()),
                    today,
                ),
                name: if mc.display_name.is_empty() {
                    mc.citizen_id.clone()
                } else {
                    mc.display_name
                },
                id: mc.citizen_id,
                role: m.role,
            });
        }
    }
    let now = now(&desk);
    let mut requests: Vec<RequestRow> = desk
        .app
        .citizen_requests(&scope, &c.citizen_id)?
        .iter()
        .map(|r| RequestRow::of(r, now))
        .collect();
    requests.sort_by_key(|r| std::cmp::Reverse(r.overdue));
    let open: Vec<&RequestRow> = requests.iter().filter(|r| r.open).collect();
    let late = open.iter().filter(|r| r.overdue).count();
    let open_summary = match (open.len(), late) {
        (0, _) => String::new(),
        (1, 0) => "1 demande en cours".into(),
        (1, _) => "1 demande en cours, en retard".into(),
        (n, 0) => format!("{n} demandes en cours"),
        (n, l) => format!("{n} demandes en cours, dont {l} en retard"),
    };
    let summary = desk
        .app
        .channel_summary(&scope, &c.citizen_id)?
        .iter()
        .map(|k| {
            format!(
                "{} : {}, le dernier le {}",
                channel_fr(k.channel),
                k.contacts,
                view::day(k.last_us)
            )
        })
        .collect();
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
        birth_date: view::iso_day(&identity.birth_date),
        age: view::age(&identity.birth_date, today),
        relations: &crate::record::RELATIONS,
        services: crate::pages::services(&desk, &tenant),
        categories: crate::contacts::categories(),
        phones: c
            .phones
            .iter()
            .zip(desk.app.sms_stops(&scope, &c.phones)?)
            .map(|(p, stop)| match stop {
                Some(at) => format!(
                    "{} (a répondu STOP aux SMS le {})",
                    display_phone(p),
                    contacthub_core::courrier::paris(at).format("%d/%m/%Y")
                ),
                None => display_phone(p),
            })
            .collect(),
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
        summary,
        open_summary,
        merged: desk
            .app
            .merged_records(&scope, &c.citizen_id)?
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
        appointments: {
            use contacthub_core::pb::appointment::{Attendance, Status};
            let commune = desk.app.tenant(&tenant)?;
            let now = desk.app.now();
            desk.app
                .citizen_appointments(&scope, &c.citizen_id)?
                .into_iter()
                .map(|a| {
                    let state = match (
                        Status::try_from(a.status),
                        Attendance::try_from(a.attendance),
                    ) {
                        (Ok(Status::Cancelled), _) => "annulé",
                        (_, Ok(Attendance::Came)) => "venu",
                        (_, Ok(Attendance::NoShow)) => "absent",
                        _ if a.start_us > now => "à venir",
                        _ => "passé",
                    };
                    (
                        commune
                            .appointment(&a.kind)
                            .map_or(a.kind.clone(), |k| k.name.clone()),
                        contacthub_app::notices::when_fr(a.start_us),
                        state,
                    )
                })
                .collect()
        },
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
            "fiche-creee" => "Fiche créée.".into(),
            "fiche" => "Fiche enregistrée.".into(),
            "foyer" => "Foyer mis à jour.".into(),
            "foyer-retire" => "Personne retirée du foyer.".into(),
            "rattachee" => {
                "Fiche provisoire rattachée : ses contacts sont dans cet historique.".into()
            }
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
    let scope = caller.scope(&desk, &tenant)?;
    // The stream ends with the server, or with the session (sign-out, expiry).
    let (guard, stopping) = caller.live_stream(&desk)?;
    let rx = desk.app.watch(&scope, &Who::Record(id), stopping)?;
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
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .record_visit(
            &scope,
            &commands::RecordVisit {
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
