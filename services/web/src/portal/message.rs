//! « Écrire à la mairie » on the citizens' space: the form (about one of one's open requests,
//! or a new matter in a domain), and its sending with documents (multipart, read in bounded
//! chunks, after the session's token): [`contacthub_app::App::write_to_town_hall`] decides.

use super::sessions::Session;
use super::{failure_on, Site, State};
use crate::view::url_encode;
use crate::{render, Failure};
use askama::Template;
use axum::extract::{Multipart, Path, Query, State as Axum};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contacthub_app::commands::WriteToTownHall;
use contacthub_app::space::{Upload, MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES};
use contacthub_core::pb::Category;
use contacthub_core::render::{category_fr, CATEGORIES};
use contacthub_core::tenant::Tenant;
use serde::Deserialize;
use std::collections::HashMap;

/// The longest text field read, in bytes (a message of 20,000 characters, accented).
const FIELD_BYTES: usize = 80_000;

#[derive(Template)]
#[template(path = "espace_ecrire.html")]
pub struct WritePage {
    pub site: Site,
    pub csrf: String,
    /// A fresh key per form shown: sent twice, one message.
    pub key: String,
    /// Reference and subject of each of the person's open requests.
    pub requests: Vec<(String, String)>,
    /// The one chosen (empty: a new matter).
    pub chosen: String,
    /// Category number and the name of who handles it.
    pub domains: Vec<(i32, String)>,
    pub domain: i32,
    pub subject: String,
    pub text: String,
    pub error: String,
    pub max_files: usize,
    pub max_mb: u64,
}

/// The domains a person may write about: the commune's service of each, « Autre » last.
fn domains(t: &Tenant) -> Vec<(i32, String)> {
    let mut out: Vec<(i32, String)> = CATEGORIES
        .iter()
        .filter(|c| **c != Category::Other)
        .map(|c| {
            let n = *c as i32;
            let name = match t.service_of_category(n) {
                Some(s) => s.name.clone(),
                None => contacthub_core::render::capitalized(category_fr(n)),
            };
            (n, name)
        })
        .collect();
    out.push((Category::Other as i32, "Autre question".into()));
    out
}

/// The page, for `s` in commune `t`.
fn page(space: &State, t: &Tenant, s: &Session) -> Result<WritePage, Box<Response>> {
    let requests = space
        .app
        .my_requests(&s.citizen)
        .map_err(|e| Box::new(failure_on(Site::of(t, Some(s)), super::account::said(e))))?
        .into_iter()
        .filter(|m| m.open)
        .map(|m| (m.reference, m.subject))
        .collect();
    Ok(WritePage {
        site: Site::of(t, Some(s)),
        csrf: s.csrf.clone(),
        key: crate::session::random_hex(),
        requests,
        chosen: String::new(),
        domains: domains(t),
        domain: 0,
        subject: String::new(),
        text: String::new(),
        error: String::new(),
        max_files: MAX_ATTACHMENTS,
        max_mb: MAX_ATTACHMENT_BYTES / (1024 * 1024),
    })
}

#[derive(Deserialize)]
pub struct WriteQuery {
    #[serde(default)]
    demande: String,
}

/// `GET /{commune}/ecrire[?demande=REF]`: the form.
pub async fn form(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<WriteQuery>,
) -> Response {
    let (t, s) = match super::account::signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    match page(&space, t, &s) {
        Ok(mut p) => {
            if p.requests.iter().any(|(r, _)| *r == q.demande) {
                p.chosen = q.demande;
            }
            render(&p)
        }
        Err(res) => *res,
    }
}

/// `POST /{commune}/ecrire` (multipart): sends the message; to its request's page.
pub async fn send(
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
            "Ce formulaire s'envoie depuis la page « Écrire à la mairie » de ce site.".into(),
        );
    }
    let (fields, uploads) = match read_form(&mut form, &s).await {
        Ok(x) => x,
        Err((status, message)) => return refuse(status, message),
    };
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let domain: i32 = get("domaine").trim().parse().unwrap_or(0);
    let m = WriteToTownHall {
        reference: get("demande").trim().to_string(),
        category: Category::try_from(domain).unwrap_or(Category::Unspecified),
        subject: get("objet"),
        text: get("message"),
        attachments: uploads,
        idempotency_key: get("cle").trim().to_string(),
    };
    match space.app.write_to_town_hall(&s.citizen, &m).await {
        Ok(reference) => crate::pages::see_other(&format!(
            "/{slug}/demandes/{}?envoye=1",
            url_encode(&reference)
        ))
        .into_response(),
        Err(e @ (contacthub_app::Error::Invalid(_) | contacthub_app::Error::NotFound(_))) => {
            let said = super::account::said(e);
            match page(&space, t, &s) {
                Ok(mut p) => {
                    p.chosen = m.reference;
                    p.domain = domain;
                    p.subject = m.subject;
                    p.text = m.text;
                    p.error = said.message;
                    let mut res = render(&p);
                    *res.status_mut() = said.status;
                    res
                }
                Err(res) => *res,
            }
        }
        Err(e) => failure_on(Site::of(t, Some(&s)), super::account::said(e)),
    }
}

/// What the space's multipart forms send: their text fields, and their documents (field
/// `documents`, at most [`MAX_ATTACHMENTS`] of [`MAX_ATTACHMENT_BYTES`]), read in bounded
/// chunks, the session's token checked before any document is read; or why not (status and
/// French message).
pub(crate) async fn read_form(
    form: &mut Multipart,
    s: &Session,
) -> Result<(HashMap<String, String>, Vec<Upload>), (StatusCode, String)> {
    let expired = || {
        (
            StatusCode::FORBIDDEN,
            "Formulaire expiré : rechargez la page et recommencez.".to_string(),
        )
    };
    let mut fields = HashMap::new();
    let mut uploads = Vec::new();
    // The token comes first in the form: no document is read before it is checked.
    let mut checked = false;
    while let Some(mut field) = form.next_field().await.map_err(|e| {
        tracing::debug!(error = %e, "a space form could not be read");
        (
            StatusCode::BAD_REQUEST,
            "L'envoi a été interrompu ou il est trop gros : recommencez, avec des documents plus petits au besoin.".to_string(),
        )
    })? {
        let name = field.name().unwrap_or_default().to_string();
        let is_file = name == "documents";
        if is_file && !checked {
            return Err(expired());
        }
        if is_file && uploads.len() >= MAX_ATTACHMENTS {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Joignez au plus {MAX_ATTACHMENTS} documents."),
            ));
        }
        if !is_file && fields.len() >= 16 {
            return Err((StatusCode::BAD_REQUEST, "Formulaire trop long.".into()));
        }
        let cap = if is_file {
            MAX_ATTACHMENT_BYTES as usize
        } else {
            FIELD_BYTES
        };
        let file_name = field.file_name().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "a space form was cut");
                (
                    StatusCode::BAD_REQUEST,
                    "L'envoi a été interrompu : recommencez.".to_string(),
                )
            })?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > cap {
                let what = if is_file {
                    format!(
                        "Un document dépasse {} Mo.",
                        MAX_ATTACHMENT_BYTES / (1024 * 1024)
                    )
                } else {
                    "Un champ du formulaire est trop long.".into()
                };
                return Err((StatusCode::PAYLOAD_TOO_LARGE, what));
            }
        }
        if is_file {
            // An empty file input sends an empty part: no document.
            if !bytes.is_empty() {
                uploads.push(Upload {
                    name: file_name,
                    bytes,
                });
            }
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "Le formulaire n'est pas du texte.".to_string(),
            )
        })?;
        if name == "csrf" {
            if !crate::session::same_token(text.trim(), &s.csrf) {
                return Err(expired());
            }
            checked = true;
        }
        fields.insert(name, text);
    }
    if !checked {
        return Err(expired());
    }
    Ok((fields, uploads))
}
