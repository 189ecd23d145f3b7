//! Signing in to the citizens' space with a one-time code, for people without FranceConnect:
//! the phone number or e-mail address the town hall holds, then the code it received.

use super::{failure_on, sessions, Site, State};
use crate::{render, Failure};
use askama::Template;
use axum::extract::{Form, Path, State as Axum};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use contacthub_app::source::ClientAddress;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "espace_code.html")]
pub struct CodePage {
    pub site: Site,
    /// Where the code went, as typed; empty before asking.
    pub to: String,
    pub notice: String,
    pub error: String,
}

fn page(site: Site, to: String, notice: &str, error: Option<Failure>) -> Response {
    let status = error.as_ref().map(|f| f.status);
    let mut res = render(&CodePage {
        site,
        to,
        notice: notice.into(),
        error: error.map(|f| f.message).unwrap_or_default(),
    });
    if let Some(status) = status {
        *res.status_mut() = status;
    }
    res
}

/// `GET /{commune}/connexion/code`.
pub async fn form(Axum(space): Axum<State>, Path(slug): Path<String>) -> Response {
    match super::account::commune(&space, &slug) {
        Ok(t) => page(Site::of(t, None), String::new(), "", None),
        Err(res) => *res,
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    destination: String,
    #[serde(default)]
    code: String,
}

/// `POST /{commune}/connexion/code`: sends a code when the town hall holds the address.
pub async fn send(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    source: Option<axum::Extension<ClientAddress>>,
    Form(f): Form<CodeForm>,
) -> Response {
    let t = match super::account::commune(&space, &slug) {
        Ok(t) => t,
        Err(res) => return *res,
    };
    if !crate::session::same_origin(&headers) {
        return failure_on(
            Site::of(t, None),
            Failure {
                status: StatusCode::FORBIDDEN,
                message: "Ce formulaire s'envoie depuis la page de connexion de ce site.".into(),
            },
        );
    }
    let to: String = f.destination.trim().chars().take(254).collect();
    match space
        .app
        .code_sign_in_start(&t.code, source.map(|s| s.0 .0), &to)
        .await
    {
        Ok(()) => page(
            Site::of(t, None),
            to,
            "Si la mairie connaît ces coordonnées, un code vient d'y être envoyé : saisissez-le ci-dessous.",
            None,
        ),
        Err(e) => {
            let retry = match &e {
                contacthub_app::Error::Throttled(wait) => Some(wait.as_secs()),
                _ => None,
            };
            let mut res = page(Site::of(t, None), String::new(), "", Some(super::account::said(e)));
            if let Some(secs) = retry {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            res
        }
    }
}

/// `POST /{commune}/connexion/code/confirmer`: the code typed back; signed in.
pub async fn confirm(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let t = match super::account::commune(&space, &slug) {
        Ok(t) => t,
        Err(res) => return *res,
    };
    if !crate::session::same_origin(&headers) {
        return failure_on(
            Site::of(t, None),
            Failure {
                status: StatusCode::FORBIDDEN,
                message: "Ce formulaire s'envoie depuis la page de connexion de ce site.".into(),
            },
        );
    }
    match space
        .app
        .code_sign_in_finish(&t.code, &f.destination, &f.code)
        .await
    {
        Ok(citizen) => {
            let id = space.sessions.open(citizen, String::new());
            let mut res = crate::pages::see_other(&format!("/{slug}/")).into_response();
            if let Ok(v) = HeaderValue::from_str(&sessions::set_cookie(&id, &headers, space.tls)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => page(
            Site::of(t, None),
            f.destination.chars().take(254).collect(),
            "",
            Some(super::account::said(e)),
        ),
    }
}
