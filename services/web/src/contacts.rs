//! One contact: what it says and its documents, and turning it into a request or linking it
//! to one of the citizen's open requests.

use crate::pages::{chrome, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, Entry};
use crate::{render, State};
use axum::extract::{Path, State as Axum};
use axum::Form;
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_core::render::{category_code, category_fr};
use serde::Deserialize;

/// The categories an agent chooses among: (code, French name).
pub(crate) fn categories() -> Vec<(String, &'static str)> {
    contacthub_core::render::CATEGORIES
        .iter()
        .map(|&c| (category_code(c), category_fr(c as i32)))
        .collect()
}

/// The category a form's code names (« autre » when none).
pub(crate) fn category_of(code: &str) -> pb::Category {
    contacthub_core::render::category_from_name(code)
        .and_then(|c| pb::Category::try_from(c).ok())
        .unwrap_or(pb::Category::Other)
}

pub async fn contact(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let c = desk.app.contact(&scope, &event)?;
    let entry = c.entry.unwrap_or_default();
    let personal = c.personal.unwrap_or_default();
    // The citizen's open requests, to link this contact to one.
    let open: Vec<(String, String)> = if entry.citizen_id.is_empty() {
        vec![]
    } else {
        desk.app
            .citizen_requests(&scope, &entry.citizen_id)?
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
                    "{} ({}, {})",
                    personal
                        .attachment_names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("pièce {}", i + 1)),
                    view::kind_fr(&a.media_type),
                    view::size_fr(a.size_bytes)
                ),
            })
            .collect(),
        services: crate::pages::services(&desk, &tenant),
        categories: categories(),
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
    let scope = caller.scope(&desk, &tenant)?;
    let reference = f.reference.trim().to_string();
    // `link_contact` checks the request is one this agent may see.
    desk.app
        .link_contact(
            &scope,
            &commands::LinkContact {
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
    let scope = caller.scope(&desk, &tenant)?;
    let category = category_of(&f.category);
    let r = desk
        .app
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: f.subject.trim().into(),
                category,
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
