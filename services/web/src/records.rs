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
        let candidates = u
            .candidates
            .iter()
            .filter_map(|id| candidate(&desk, &scope, &tenant, id))
            .collect();
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
    // The accounts of the citizens' space, for the agents who keep the records.
    let accounts = match desk.app.account_proposals(&scope) {
        Ok(list) => list
            .iter()
            .map(|p| account(&desk, &scope, &tenant, p))
            .collect(),
        Err(contacthub_app::Error::Forbidden(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(render(&view::WaitingPage {
        chrome: chrome(&caller, &desk, "rattacher"),
        communes,
        tenant,
        items,
        accounts,
        notice: match q.avis.as_str() {
            "rattache" => "Contact rattaché.".into(),
            "compte" => "Compte de l'espace citoyen rattaché à la fiche.".into(),
            _ => String::new(),
        },
    }))
}

/// A record a waiting contact or account may be, with what tells people apart.
fn candidate(
    desk: &State,
    scope: &contacthub_app::auth::Scope,
    tenant: &str,
    id: &str,
) -> Option<view::Candidate> {
    let c = desk.app.citizen(scope, id).ok()?;
    let link = citizen_link(tenant, &c);
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
    Some(view::Candidate {
        id: c.citizen_id.clone(),
        name: link.name,
        url: link.url,
        detail: detail.join(" · "),
    })
}

/// A citizens' space account waiting for an agent, as the page shows it.
fn account(
    desk: &State,
    scope: &contacthub_app::auth::Scope,
    tenant: &str,
    p: &pb::AccountProposal,
) -> view::WaitingAccount {
    let i = p.identity.clone().unwrap_or_default();
    let mut facts = vec![
        ("Nom de naissance".to_string(), i.birth_name.clone()),
        ("Prénoms".to_string(), i.first_names.clone()),
        (
            "Date de naissance".to_string(),
            view::iso_day(&i.birth_date),
        ),
    ];
    if !i.usage_name.is_empty() {
        facts.push(("Nom d'usage".into(), i.usage_name.clone()));
    }
    for f in &p.fields {
        facts.push((f.name.clone(), f.value.clone()));
    }
    if let Some(e) = i.emails.first() {
        facts.push(("Courriel".into(), e.clone()));
    }
    view::WaitingAccount {
        action: format!(
            "/a-rattacher/comptes/{}/{}",
            url_encode(tenant),
            url_encode(&p.event_id)
        ),
        when: view::micros(&p.at).map(view::when).unwrap_or_default(),
        why: match p.exact_matches {
            0 => "Aucune fiche n'a exactement ces nom, prénoms et date de naissance.".into(),
            n => format!("{n} fiches ont exactement ces nom, prénoms et date de naissance : laquelle est la bonne ?"),
        },
        facts,
        candidates: p
            .candidates
            .iter()
            .filter_map(|id| candidate(desk, scope, tenant, id))
            .collect(),
    }
}

#[derive(Deserialize)]
pub struct LinkAccountForm {
    #[serde(default)]
    csrf: String,
    /// A proposed record.
    #[serde(default)]
    citizen: String,
    /// Or another record, by its number.
    #[serde(default)]
    fiche: String,
}

/// `POST /a-rattacher/comptes/{tenant}/{event}`: a citizens' space account linked to a record.
pub async fn link_account(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
    Form(f): Form<LinkAccountForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let citizen = match f.fiche.trim() {
        "" => f.citizen.trim(),
        typed => typed,
    };
    desk.app
        .link_account(
            &scope,
            &commands::LinkAccount {
                proposal_event_id: event,
                citizen_id: citizen.into(),
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/a-rattacher?commune={}&avis=compte",
        url_encode(&tenant)
    )))
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
