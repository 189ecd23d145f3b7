//! « Mes données » on the citizens' space: downloading everything the commune holds about
//! oneself (the access export, a zip), and asking the data protection officer to erase it.

use super::{failure_on, Site, State};
use crate::render;
use crate::view::url_encode;
use askama::Template;
use axum::extract::{Form, Path, State as Axum};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "espace_donnees.html")]
pub struct DataPage {
    pub site: Site,
    pub csrf: String,
    pub key: String,
}

/// `GET /{commune}/donnees`.
pub async fn page(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (t, s) = match super::account::signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    render(&DataPage {
        site: Site::of(t, Some(&s)),
        csrf: s.csrf.clone(),
        key: crate::session::random_hex(),
    })
}

/// `GET /{commune}/donnees/mes-donnees.zip`: the access export.
pub async fn export(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (t, s) = match super::account::signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    match space.app.my_data(&s.citizen).await {
        Ok(export) => {
            let mut res = export.zip.into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"mes-donnees.zip\""),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            res
        }
        Err(e) => failure_on(Site::of(t, Some(&s)), super::account::said(e)),
    }
}

#[derive(Deserialize)]
pub struct ErasureForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cle: String,
    #[serde(default)]
    precisions: String,
}

/// `POST /{commune}/donnees/effacement`: asks for the erasure; to the request it opened.
pub async fn ask_erasure(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ErasureForm>,
) -> Response {
    let citizen = match super::account::posted_by(&space, &headers, &slug, &f.csrf, "Mes données")
    {
        Ok(c) => c,
        Err(res) => return *res,
    };
    match space
        .app
        .ask_erasure(&citizen, &f.precisions, f.cle.trim())
        .await
    {
        Ok(reference) => crate::pages::see_other(&format!(
            "/{slug}/demandes/{}?envoye=1",
            url_encode(&reference)
        ))
        .into_response(),
        Err(e) => match super::account::signed_in_to(&space, &headers, &slug) {
            Ok((t, s)) => failure_on(Site::of(t, Some(&s)), super::account::said(e)),
            Err(res) => *res,
        },
    }
}
