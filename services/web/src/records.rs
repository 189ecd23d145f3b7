//! Keeping citizen records right: contacts waiting for their citizen ("à rattacher"), pairs of
//! records that may be one person (merge with a reason, or say they are two people), and
//! separating a merged record again. Every change is an event with the agent and the reason.

use crate::pages::{chrome, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, Entry};
use crate::{render, State};
use axum::extract::{Path, Query, State as Axum};
use axum::Form;
use contacthub_app::commands;
use contacthub_core::pb;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct CommuneQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    avis: String,
}

fn citizen_link(tenant: &str, c: &pb::Citizen) -> view::Member {
    view::Member {
        url: format!(
            "/citoyens/{}/{}",
            url_encode(tenant),
            url_encode(&c.citizen_id)
        ),
        name: if c.display_name.is_empty() {
            c.citizen_id.clone()
        } else {
            c.display_name.clone()
        },
        role: c.citizen_id.clone(),
    }
}

pub async fn unresolved(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<CommuneQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let list = desk.app.unresolved_contacts(
        &scope,
        &commands::UnresolvedQuery {
            limit: 200,
            include_attached: false,
        },
    )?;
    let mut items = Vec::new();
    for u in list {
        let entry = u.entry.clone().unwrap_or_default();
        let mut candidates = Vec::new();
        for id in &u.candidates {
            if let Ok(c) = desk.app.citizen(&scope, id) {
                let link = citizen_link(&tenant, &c);
                let identity = c.identity.clone().unwrap_or_default();
                let mut detail = Vec::new();
                if !identity.birth_date.is_empty() {
                    detail.push(format!("né(e) le {}", view::iso_day(&identity.birth_date)));
                }
                if let Some(a) = identity.addresses.first() {
                    detail.push(
                        format!("{} {}, {}", a.number, a.street, a.city)
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                detail.push(match c.entries {
                    0 | 1 => format!("{} contact", c.entries),
                    n => format!("{n} contacts"),
                });
                candidates.push(view::Candidate {
                    id: c.citizen_id.clone(),
                    name: link.name,
                    url: link.url,
                    detail: detail.join(" · "),
                });
            }
        }
        // What it says, so the agent can tell who wrote or called.
        let text = desk
            .app
            .contact(&scope, &entry.event_id)
            .ok()
            .and_then(|c| c.personal)
            .map(|p| {
                let t = if p.text.trim().is_empty() {
                    p.subject
                } else {
                    p.text
                };
                let mut t: String = t.chars().take(400).collect();
                if t.chars().count() == 400 {
                    t.push('…');
                }
                t
            })
            .unwrap_or_default();
        items.push(view::Waiting {
            action: format!(
                "/a-rattacher/{}/{}",
                url_encode(&tenant),
                url_encode(&entry.event_id)
            ),
            e: Entry::of(&tenant, &entry),
            who: contacthub_core::identity::display_phone(&entry.party_identifier),
            claimed: u.claimed_citizen_id.clone(),
            text,
            candidates,
        });
    }
    Ok(render(&view::WaitingPage {
        chrome: chrome(&caller, &desk, "rattacher"),
        communes,
        tenant,
        items,
        notice: if q.avis == "rattache" {
            "Contact rattaché.".into()
        } else {
            String::new()
        },
    }))
}

#[derive(Deserialize)]
pub struct AttachForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    citizen: String,
}

pub async fn attach(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
    Form(f): Form<AttachForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .attach_contact(
            &scope,
            &commands::AttachContact {
                contact_event_id: event,
                citizen_id: f.citizen.trim().into(),
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/a-rattacher?commune={}&avis=rattache",
        url_encode(&tenant)
    )))
}

pub async fn duplicates(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<CommuneQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let proposals = desk
        .app
        .duplicate_proposals(&scope, 100)?
        .into_iter()
        .filter_map(|p| {
            let (a, b) = (p.citizen?, p.other?);
            Some(view::Pair {
                a: citizen_link(&tenant, &a),
                b: citizen_link(&tenant, &b),
                why: match p.why.as_str() {
                    "same name and birth date" => "même nom et même date de naissance",
                    "same name and address" => "même nom et même adresse",
                    "shared phone" => "même téléphone",
                    "shared e-mail" => "même courriel",
                    _ => "ressemblance",
                }
                .to_string(),
            })
        })
        .collect();
    Ok(render(&view::PairsPage {
        chrome: chrome(&caller, &desk, "doublons"),
        communes,
        tenant,
        pairs: proposals,
        notice: match q.avis.as_str() {
            "fusion" => "Fiches fusionnées.".into(),
            "ecarte" => "Proposition écartée : ce sont deux personnes.".into(),
            _ => String::new(),
        },
    }))
}

#[derive(Deserialize)]
pub struct PairForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    citizen: String,
    #[serde(default)]
    other: String,
    #[serde(default)]
    reason: String,
}

pub async fn merge(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Form(f): Form<PairForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .merge_citizens(
            &scope,
            &commands::MergeCitizens {
                citizen_id: f.citizen.trim().into(),
                into_citizen_id: f.other.trim().into(),
                reason: f.reason,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/doublons?commune={}&avis=fusion",
        url_encode(&tenant)
    )))
}

pub async fn dismiss(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Form(f): Form<PairForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .dismiss_duplicate(
            &scope,
            &commands::DismissDuplicate {
                citizen_id: f.citizen.trim().into(),
                other_citizen_id: f.other.trim().into(),
                reason: f.reason,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/doublons?commune={}&avis=ecarte",
        url_encode(&tenant)
    )))
}

#[derive(Deserialize)]
pub struct UnmergeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn unmerge(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<UnmergeForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .unmerge_citizen(
            &scope,
            &commands::UnmergeCitizen {
                citizen_id: id.clone(),
                reason: f.reason,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/citoyens/{}/{}?avis=defusion",
        url_encode(&tenant),
        url_encode(&id)
    )))
}
