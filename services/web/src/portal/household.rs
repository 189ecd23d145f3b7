//! « Mon foyer » on the citizens' space: the household as the town hall's records say, and
//! the form asking to add a child or a partner, with the documents that prove it.

use super::message::read_form;
use super::{failure_on, Site, State};
use crate::view::url_encode;
use crate::{render, Failure};
use askama::Template;
use axum::extract::{Multipart, Path, State as Axum};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contacthub_app::commands::AskHouseholdChange;
use contacthub_app::space::{Member, ADDABLE, MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES};

#[derive(Template)]
#[template(path = "espace_foyer.html")]
pub struct HouseholdPage {
    pub site: Site,
    pub csrf: String,
    pub key: String,
    pub members: Vec<Member>,
    pub relations: Vec<&'static str>,
    pub error: String,
    pub max_files: usize,
    pub max_mb: u64,
}

/// `GET /{commune}/foyer`.
pub async fn page(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (t, s) = match super::account::signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    let site = Site::of(t, Some(&s));
    match space.app.my_household(&s.citizen) {
        Ok(members) => render(&HouseholdPage {
            site,
            csrf: s.csrf.clone(),
            key: crate::session::random_hex(),
            members,
            relations: ADDABLE.to_vec(),
            error: String::new(),
            max_files: MAX_ATTACHMENTS,
            max_mb: MAX_ATTACHMENT_BYTES / (1024 * 1024),
        }),
        Err(e) => failure_on(site, super::account::said(e)),
    }
}

/// `POST /{commune}/foyer` (multipart): asks to add someone; to the request it opened.
pub async fn ask(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let (t, s) = match super::account::signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    let refuse = |status: StatusCode, message: String| {
        failure_on(Site::of(t, Some(&s)), Failure { status, message })
    };
    if !crate::session::same_origin(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Ce formulaire s'envoie depuis la page « Mon foyer » de ce site.".into(),
        );
    }
    let (fields, attachments) = match read_form(&mut form, &s).await {
        Ok(x) => x,
        Err((status, message)) => return refuse(status, message),
    };
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let asked = AskHouseholdChange {
        first_names: get("prenoms"),
        name: get("nom"),
        birth_date: get("naissance"),
        relation: get("lien"),
        note: get("precisions"),
        attachments,
        idempotency_key: get("cle").trim().to_string(),
    };
    match space.app.ask_household_change(&s.citizen, &asked).await {
        Ok(reference) => crate::pages::see_other(&format!(
            "/{slug}/demandes/{}?envoye=1",
            url_encode(&reference)
        ))
        .into_response(),
        Err(e) => {
            let f = super::account::said(e);
            refuse(f.status, f.message)
        }
    }
}
