//! « Mon compte citoyen »: signing in and out with the commune's FranceConnect (the code
//! flow with PKCE, state and nonce: the state tied to the browser by a cookie, once), the
//! commune's home — one's requests once the account is linked, « votre compte sera rattaché
//! par la mairie » until then —, one request with its answers and documents.

use super::sessions::{self, Session};
use super::{failure, failure_on, Site, State};
use crate::view::{day, url_encode};
use crate::{render, Failure};
use askama::Template;
use axum::extract::{Path, Query, State as Axum};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use contacthub_app::space::{Mine, MineInFull, Standing};
use contacthub_app::Error;
use contacthub_core::tenant::Tenant;
use serde::Deserialize;

/// The cookie that ties a sign-in at FranceConnect to the browser that started it.
const STATE_COOKIE: &str = "contacthub_fc";

/// A request in a person's list: French words, Paris dates.
pub struct MineView {
    pub reference: String,
    pub subject: String,
    pub service: String,
    pub status: &'static str,
    pub channel: &'static str,
    pub opened: String,
    pub due: String,
    pub answered: String,
    pub answered_by: &'static str,
    pub closed: String,
    pub code: String,
    pub url: String,
    /// The child it is for (empty: the person's own).
    pub for_whom: String,
}

impl MineView {
    fn of(slug: &str, m: &Mine) -> MineView {
        let date = |us: Option<i64>| us.map(day).unwrap_or_default();
        MineView {
            url: format!("/{slug}/demandes/{}", url_encode(&m.reference)),
            reference: m.reference.clone(),
            subject: m.subject.clone(),
            service: m.service.clone(),
            status: m.status_fr,
            channel: m.channel_fr,
            opened: date(m.opened_us),
            due: date(m.due_us),
            answered: date(m.answered_us),
            answered_by: m.answered_by,
            closed: date(m.closed_us),
            code: m.follow_up_code.clone(),
            for_whom: m.for_whom.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "espace.html")]
pub struct HomePage {
    pub site: Site,
    /// Whether the commune offers sign-in with FranceConnect.
    pub franceconnect: bool,
    /// A word for the person (signed out, account waiting…); empty when none.
    pub notice: String,
    /// Signed in and linked: their requests.
    pub linked: bool,
    pub waiting: bool,
    pub requests: Vec<MineView>,
}

/// An answer received, as the page shows it.
pub struct ReceivedView {
    pub date: String,
    pub channel: &'static str,
    pub subject: String,
    pub text: String,
    pub letter: String,
}

#[derive(Template)]
#[template(path = "espace_demande.html")]
pub struct RequestPage {
    pub site: Site,
    pub notice: String,
    pub request: MineView,
    /// What the person wrote: date, how, text.
    pub messages: Vec<(String, &'static str, String)>,
    /// Where to write about it (empty once closed).
    pub write: String,
    pub answers: Vec<ReceivedView>,
    /// Name, kind and address of each document.
    pub documents: Vec<(String, String, String)>,
}

/// The commune whose site `slug` names, or the page that says there is none.
pub(crate) fn commune<'a>(space: &'a State, slug: &str) -> Result<&'a Tenant, Box<Response>> {
    space
        .app
        .tenants()
        .iter()
        .find(|t| t.slug() == slug)
        .ok_or_else(|| {
            Box::new(failure(Failure {
                status: StatusCode::NOT_FOUND,
                message: "Cette page n'existe pas.".into(),
            }))
        })
}

/// The session of the request, when it signed in to this commune's site.
fn session_in(space: &State, headers: &HeaderMap, t: &Tenant) -> Option<(String, Session)> {
    space
        .sessions
        .of(headers)
        .filter(|(_, s)| s.citizen.tenant() == t.code)
}

#[derive(Deserialize)]
pub struct HomeQuery {
    /// Set when the browser comes back from signing out.
    #[serde(default)]
    deconnecte: Option<String>,
}

/// `GET /{commune}/`: the commune's home of the space.
pub async fn home(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HomeQuery>,
) -> Response {
    let t = match commune(&space, &slug) {
        Ok(t) => t,
        Err(res) => return *res,
    };
    let session = session_in(&space, &headers, t);
    let mut page = HomePage {
        site: Site::of(t, session.as_ref().map(|(_, s)| s)),
        franceconnect: space.app.franceconnect(&t.code).is_some(),
        notice: if q.deconnecte.is_some() {
            "Vous êtes déconnecté de l'espace citoyen.".into()
        } else {
            String::new()
        },
        linked: false,
        waiting: false,
        requests: Vec::new(),
    };
    let Some((id, s)) = session else {
        return render(&page);
    };
    match space.app.standing(&s.citizen) {
        Ok(Some(Standing::Linked(_))) => match space.app.my_requests(&s.citizen) {
            Ok(list) => {
                page.linked = true;
                page.requests = list
                    .iter()
                    .map(|m| MineView::of(&page.site.slug, m))
                    .collect();
            }
            Err(e) => return failure_on(page.site, said(e)),
        },
        Ok(Some(Standing::Waiting)) => page.waiting = true,
        Ok(None) => {
            // The record was erased meanwhile: the session ends with it.
            space.sessions.close(&id);
            page.site = Site::of(t, None);
            page.notice = "Votre compte n'est plus rattaché à une fiche de la mairie : reconnectez-vous pour le rattacher à nouveau.".into();
        }
        Err(e) => return failure_on(page.site, said(e)),
    }
    render(&page)
}

/// `GET /{commune}/connexion`: sends the browser to FranceConnect.
pub async fn sign_in(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    source: Option<axum::Extension<contacthub_app::source::ClientAddress>>,
    headers: HeaderMap,
) -> Response {
    let t = match commune(&space, &slug) {
        Ok(t) => t,
        Err(res) => return *res,
    };
    match space.app.space_start(&t.code).await {
        Ok(pending) => {
            let url = pending.url.clone();
            let cookie = format!(
                "{STATE_COOKIE}={}; Path=/{slug}/connexion; HttpOnly; SameSite=Lax; Max-Age=600{}",
                pending.state,
                crate::session::secure(&headers, space.tls)
            );
            space
                .starts
                .put(pending, t.code.clone(), source.map(|s| s.0 .0));
            (
                [(header::SET_COOKIE, cookie)],
                crate::pages::see_other(&url),
            )
                .into_response()
        }
        Err(e @ Error::NotFound(_)) => failure_on(Site::of(t, None), said(e)),
        Err(e) => {
            tracing::warn!(error = %e, "citizens' space: FranceConnect cannot be reached");
            failure_on(
                Site::of(t, None),
                Failure {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "FranceConnect ne répond pas : réessayez dans un instant.".into(),
                },
            )
        }
    }
}

/// What the space says of an error: the application's own words where they are for the
/// person (what they may not see, what does not exist), the desk's otherwise.
pub(crate) fn said(e: Error) -> Failure {
    match e {
        Error::NotFound(m) => Failure {
            status: StatusCode::NOT_FOUND,
            message: format!("{}.", contacthub_core::render::capitalized(&m)),
        },
        Error::Forbidden(m) => Failure {
            status: StatusCode::FORBIDDEN,
            message: format!("{}.", contacthub_core::render::capitalized(&m)),
        },
        e => Failure::from(e),
    }
}

/// `GET /{commune}/connexion/retour`: the browser is back from FranceConnect with a code.
pub async fn back(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<crate::signin::BackQuery>,
) -> Response {
    let t = match commune(&space, &slug) {
        Ok(t) => t,
        Err(res) => return *res,
    };
    let clear =
        format!("{STATE_COOKIE}=; Path=/{slug}/connexion; HttpOnly; SameSite=Lax; Max-Age=0");
    let refuse = |status: StatusCode, message: &str| {
        let mut res = failure_on(
            Site::of(t, None),
            Failure {
                status,
                message: message.into(),
            },
        );
        if let Ok(v) = HeaderValue::from_str(&clear) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        res
    };
    // The same browser that left, with the state it left with, once, for this commune.
    let same_browser = crate::session::cookie_named(&headers, STATE_COOKIE)
        .is_some_and(|c| !q.state.is_empty() && c == q.state);
    let Some((pending, tenant)) = same_browser.then(|| space.starts.take(&q.state)).flatten()
    else {
        tracing::warn!("citizens' space: sign-in refused: unknown, replayed or foreign state");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Connexion expirée ou commencée ailleurs : recommencez depuis la page d'accueil de l'espace.",
        );
    };
    if tenant != t.code {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "Connexion commencée sur l'espace d'une autre commune : recommencez.",
        );
    }
    if !q.error.is_empty() {
        tracing::info!("citizens' space: FranceConnect did not confirm the identity");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "FranceConnect n'a pas confirmé votre identité : recommencez.",
        );
    }
    match space.app.space_finish(&t.code, &pending, &q.code).await {
        Ok(signed) => {
            let id = space.sessions.open(signed.citizen, signed.id_token);
            let mut res = crate::pages::see_other(&format!("/{slug}/")).into_response();
            for cookie in [sessions::set_cookie(&id, &headers, space.tls), clear] {
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Err(Error::Unavailable(why)) => {
            tracing::warn!(error = %why, "citizens' space: FranceConnect cannot be reached");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "FranceConnect ne répond pas : réessayez dans un instant.",
            )
        }
        Err(Error::Unauthenticated(why)) => {
            tracing::warn!(error = %why, "citizens' space: sign-in refused");
            refuse(
                StatusCode::UNAUTHORIZED,
                &format!("Connexion refusée ({why}) : recommencez."),
            )
        }
        Err(e) => {
            let f = said(e);
            refuse(f.status, &f.message)
        }
    }
}

#[derive(Deserialize)]
pub struct SignOutQuery {
    #[serde(default)]
    jeton: String,
}

/// `GET /{commune}/deconnexion?jeton=…`: ends the session, then signs out at FranceConnect
/// (which sends the browser back to the commune's home). A link, not a form: the space's
/// pages may post forms to themselves only, and FranceConnect is elsewhere.
pub async fn sign_out(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<SignOutQuery>,
) -> Response {
    let t = match commune(&space, &slug) {
        Ok(t) => t,
        Err(res) => return *res,
    };
    let home = format!("/{slug}/?deconnecte=1");
    let Some((id, s)) = session_in(&space, &headers, t) else {
        return crate::pages::see_other(&home).into_response();
    };
    // Another site's link may not sign people out.
    if !crate::session::same_token(&q.jeton, &s.csrf) {
        return failure_on(
            Site::of(t, Some(&s)),
            Failure {
                status: StatusCode::FORBIDDEN,
                message: "Ce lien de déconnexion ne vient pas de cette page : utilisez le bouton « Se déconnecter ».".into(),
            },
        );
    }
    space.sessions.close(&id);
    // Signed in with a code: nothing to end at FranceConnect.
    let next = Some(&s.id_token)
        .filter(|t| !t.is_empty())
        .and_then(|token| space.app.space_logout_url(&t.code, token))
        .unwrap_or(home);
    (
        [(header::SET_COOKIE, sessions::clear_cookie())],
        crate::pages::see_other(&next),
    )
        .into_response()
}

/// The commune of `slug` and the person signed in to its site, or the page that says to sign
/// in.
pub(crate) fn signed_in_to<'a>(
    space: &'a State,
    headers: &HeaderMap,
    slug: &str,
) -> Result<(&'a Tenant, Session), Box<Response>> {
    let t = commune(space, slug)?;
    let Some((_, s)) = session_in(space, headers, t) else {
        return Err(Box::new(failure_on(
            Site::of(t, None),
            Failure {
                status: StatusCode::UNAUTHORIZED,
                message: "Connectez-vous à l'espace citoyen pour voir vos demandes.".into(),
            },
        )));
    };
    Ok((t, s))
}

/// The person signed in to `slug`'s site who posted a form of page `page` (« Mes
/// coordonnées »), checked to come from the site with the session's token; or the page that
/// refuses it.
pub(crate) fn posted_by(
    space: &State,
    headers: &HeaderMap,
    slug: &str,
    csrf: &str,
    page: &str,
) -> Result<contacthub_app::space::Citizen, Box<Response>> {
    let (t, s) = signed_in_to(space, headers, slug)?;
    if !crate::session::same_origin(headers) || !crate::session::same_token(csrf.trim(), &s.csrf) {
        return Err(Box::new(failure_on(
            Site::of(t, Some(&s)),
            Failure {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "Formulaire expiré : rechargez la page « {page} » et recommencez."
                ),
            },
        )));
    }
    Ok(s.citizen)
}

fn full_view(slug: &str, f: &MineInFull) -> RequestPage {
    let reference = url_encode(&f.request.reference);
    RequestPage {
        site: Site::default(),
        notice: String::new(),
        request: MineView::of(slug, &f.request),
        messages: f
            .messages
            .iter()
            .map(|m| (m.at_us.map(day).unwrap_or_default(), m.how, m.text.clone()))
            .collect(),
        write: if f.request.open {
            format!("/{slug}/ecrire?demande={reference}")
        } else {
            String::new()
        },
        answers: f
            .answers
            .iter()
            .map(|a| ReceivedView {
                date: a.at_us.map(day).unwrap_or_default(),
                channel: a.channel_fr,
                subject: a.subject.clone(),
                text: a.text.clone(),
                letter: a
                    .letter
                    .map(|n| format!("/{slug}/demandes/{reference}/documents/{n}"))
                    .unwrap_or_default(),
            })
            .collect(),
        documents: f
            .documents
            .iter()
            .enumerate()
            .map(|(n, (a, name))| {
                (
                    name.clone(),
                    kind_fr(&a.media_type).to_string(),
                    format!("/{slug}/demandes/{reference}/documents/{n}"),
                )
            })
            .collect(),
    }
}

/// A document's kind, in words.
fn kind_fr(media_type: &str) -> &'static str {
    match media_type {
        "application/pdf" => "PDF",
        t if t.starts_with("image/") => "image",
        _ => "fichier",
    }
}

#[derive(Deserialize)]
pub struct RequestQuery {
    /// Set when the person comes from sending a message about it.
    #[serde(default)]
    envoye: Option<String>,
}

/// `GET /{commune}/demandes/{reference}`: one of the person's requests.
pub async fn request(
    Axum(space): Axum<State>,
    Path((slug, reference)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let (t, s) = match signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    let site = Site::of(t, Some(&s));
    match space.app.my_request(&s.citizen, &reference) {
        Ok(full) => {
            let mut page = full_view(&slug, &full);
            page.site = site;
            if q.envoye.is_some() {
                page.notice =
                    "Votre message a été envoyé à la mairie. Il figure ci-dessous.".into();
            }
            render(&page)
        }
        Err(e) => failure_on(site, said(e)),
    }
}

/// `GET /{commune}/demandes/{reference}/documents/{n}`: a document of the person's request.
pub async fn document(
    Axum(space): Axum<State>,
    Path((slug, reference, n)): Path<(String, String, usize)>,
    headers: HeaderMap,
) -> Response {
    let (t, s) = match signed_in_to(&space, &headers, &slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    let site = Site::of(t, Some(&s));
    match space.app.my_document(&s.citizen, &reference, n).await {
        Ok((a, name, bytes)) => {
            let kind = HeaderValue::from_str(&a.media_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let disposition = format!(
                "attachment; filename=\"document\"; filename*=UTF-8''{}",
                url_encode(&name)
            );
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, kind);
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            res
        }
        Err(e) => failure_on(site, said(e)),
    }
}
