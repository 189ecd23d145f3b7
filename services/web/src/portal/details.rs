//! « Mes coordonnées » on the citizens' space: the address and the preferred channel changed
//! at once; a new phone number or e-mail address added once the code sent there is typed back.

use super::{failure_on, Site, State};
use crate::view::day;
use crate::{render, Failure};
use askama::Template;
use axum::extract::{Form, Path, Query, State as Axum};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contacthub_app::space::{ChangeDetails, Details};
use contacthub_core::pb::{Address, ContactChannel};
use serde::Deserialize;

/// The channels a person may prefer: form value, French name.
const CHANNELS: [(&str, &str, ContactChannel); 5] = [
    ("", "pas de préférence", ContactChannel::Unspecified),
    ("courriel", "courriel", ContactChannel::Email),
    ("sms", "SMS", ContactChannel::Sms),
    ("courrier", "courrier", ContactChannel::Courrier),
    ("telephone", "téléphone", ContactChannel::Phone),
];

#[derive(Template)]
#[template(path = "espace_coordonnees.html")]
pub struct DetailsPage {
    pub site: Site,
    pub csrf: String,
    pub notice: String,
    pub error: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: Address,
    pub channels: Vec<(&'static str, &'static str)>,
    pub preferred: &'static str,
    /// « le 03/12/2026 (espace citoyen) », when consented.
    pub consent: String,
    pub waiting: String,
}

fn view(site: Site, csrf: String, d: Details) -> DetailsPage {
    let preferred = CHANNELS
        .iter()
        .find(|(_, _, c)| *c == d.preferred)
        .map_or("", |(v, _, _)| *v);
    DetailsPage {
        site,
        csrf,
        notice: String::new(),
        error: String::new(),
        phones: d.phones,
        emails: d.emails,
        address: d.address.unwrap_or_default(),
        channels: CHANNELS.iter().map(|(v, n, _)| (*v, *n)).collect(),
        preferred,
        consent: match d.consent_us {
            Some(us) if d.consent_source.is_empty() => format!("le {}", day(us)),
            Some(us) => format!("le {} ({})", day(us), d.consent_source),
            None => String::new(),
        },
        waiting: d.waiting.unwrap_or_default(),
    }
}

#[derive(Deserialize)]
pub struct DetailsQuery {
    #[serde(default)]
    avis: String,
}

/// The page of `slug`'s signed-in person, with `notice` or `error`.
fn show(
    space: &State,
    headers: &HeaderMap,
    slug: &str,
    notice: &str,
    error: Option<Failure>,
) -> Response {
    let (t, s) = match super::account::signed_in_to(space, headers, slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    match space.app.my_details(&s.citizen) {
        Ok(d) => {
            let mut page = view(Site::of(t, Some(&s)), s.csrf.clone(), d);
            page.notice = notice.to_string();
            let status = error.as_ref().map(|f| f.status);
            page.error = error.map(|f| f.message).unwrap_or_default();
            let mut res = render(&page);
            if let Some(status) = status {
                *res.status_mut() = status;
            }
            res
        }
        Err(e) => failure_on(Site::of(t, Some(&s)), super::account::said(e)),
    }
}

/// `GET /{commune}/coordonnees`.
pub async fn page(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<DetailsQuery>,
) -> Response {
    let notice = match q.avis.as_str() {
        "enregistre" => "Vos coordonnées sont enregistrées.",
        "code" => "Un code vous a été envoyé : saisissez-le ci-dessous.",
        "confirme" => "C'est confirmé : la mairie pourra vous répondre à cette adresse.",
        _ => "",
    };
    show(&space, &headers, &slug, notice, None)
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    numero: String,
    #[serde(default)]
    voie: String,
    #[serde(default)]
    code_postal: String,
    #[serde(default)]
    commune: String,
    #[serde(default)]
    complement: String,
    #[serde(default)]
    prefere: String,
    #[serde(default)]
    accord: Option<String>,
    /// The code typed back, or the phone or address to confirm.
    #[serde(default)]
    code: String,
    #[serde(default)]
    nouveau: String,
}

/// Where the person goes after a change that went through.
fn done(slug: &str, avis: &str) -> Response {
    crate::pages::see_other(&format!("/{slug}/coordonnees?avis={avis}")).into_response()
}

/// `POST /{commune}/coordonnees`: the address and the preferred channel.
pub async fn change(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ChangeForm>,
) -> Response {
    let citizen =
        match super::account::posted_by(&space, &headers, &slug, &f.csrf, "Mes coordonnées") {
            Ok(c) => c,
            Err(res) => return *res,
        };
    let Some(preferred) = CHANNELS
        .iter()
        .find(|(v, _, _)| *v == f.prefere.trim())
        .map(|(_, _, c)| *c)
    else {
        let bad = Failure {
            status: StatusCode::BAD_REQUEST,
            message: "Choisissez un canal de la liste.".into(),
        };
        return show(&space, &headers, &slug, "", Some(bad));
    };
    let current = space.app.my_details(&citizen).map(|d| d.preferred).ok();
    if preferred != ContactChannel::Unspecified && current != Some(preferred) && f.accord.is_none()
    {
        let bad = Failure {
            status: StatusCode::BAD_REQUEST,
            message:
                "Cochez la case pour accepter de recevoir les réponses de la mairie par ce canal."
                    .into(),
        };
        return show(&space, &headers, &slug, "", Some(bad));
    }
    let change = ChangeDetails {
        address: Address {
            number: f.numero,
            street: f.voie,
            postcode: f.code_postal,
            city: f.commune,
            complement: f.complement,
        },
        preferred,
    };
    match space.app.change_details(&citizen, &change).await {
        Ok(()) => done(&slug, "enregistre"),
        Err(e) => show(&space, &headers, &slug, "", Some(super::account::said(e))),
    }
}

/// `POST /{commune}/coordonnees/code`: sends a code to a new phone or e-mail address.
pub async fn send_code(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ChangeForm>,
) -> Response {
    let citizen =
        match super::account::posted_by(&space, &headers, &slug, &f.csrf, "Mes coordonnées") {
            Ok(c) => c,
            Err(res) => return *res,
        };
    match space.app.send_code(&citizen, &f.nouveau).await {
        Ok(()) => done(&slug, "code"),
        Err(e) => {
            let retry = match &e {
                contacthub_app::Error::Throttled(wait) => Some(wait.as_secs()),
                _ => None,
            };
            let mut res = show(&space, &headers, &slug, "", Some(super::account::said(e)));
            if let Some(secs) = retry {
                res.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(secs),
                );
            }
            res
        }
    }
}

/// `POST /{commune}/coordonnees/confirmer`: the code typed back.
pub async fn confirm(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ChangeForm>,
) -> Response {
    let citizen =
        match super::account::posted_by(&space, &headers, &slug, &f.csrf, "Mes coordonnées") {
            Ok(c) => c,
            Err(res) => return *res,
        };
    match space.app.confirm_code(&citizen, &f.code).await {
        Ok(()) => done(&slug, "confirme"),
        Err(e) => show(&space, &headers, &slug, "", Some(super::account::said(e))),
    }
}
