//! The citizens' space (« espace citoyen »), served apart from the desk on its own port, one
//! site per commune under its name (`/givors/`): « Suivre une demande » (`/suivi`), where a
//! reference and its follow-up code tell where a request stands — its state, service and
//! dates, nothing personal — to anyone holding them, without an account; and, signed in with
//! the commune's FranceConnect ([`account`]), one's own requests, answers and documents.
//! Handlers translate only, like the desk's: [`contacthub_app::space`] decides.

pub mod account;
pub mod appointments;
pub mod code;
pub mod data;
pub mod details;
pub mod household;
pub mod message;
pub mod sessions;

use crate::view::day;
use crate::{render, Failure};
use askama::Template;
use axum::extract::State as Axum;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use contacthub_app::followup::Tracked;
use contacthub_app::source::ClientAddress;
use contacthub_app::App;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;

const CSS: &str = include_str!("../../static/portal.css");

/// The state of a running space.
pub struct Space {
    pub app: App,
    pub sessions: sessions::Sessions,
    /// Sign-ins sent to FranceConnect, not back yet.
    pub starts: crate::signin::Starts,
    /// Served over TLS by the hub itself (the session cookie is then Secure).
    pub tls: bool,
}

pub type State = Arc<Space>;

/// What every page's header shows: the commune whose site it is, and who is signed in.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// The commune's name; empty on the pages of every commune (`/`, `/suivi`).
    pub name: String,
    pub slug: String,
    /// The signed-in person's first given name; empty when nobody is.
    pub greeting: String,
    /// The sign-out link (with the session's token).
    pub logout: String,
}

impl Site {
    /// The header of commune `t`'s pages, `session` signed in there.
    pub fn of(t: &contacthub_core::tenant::Tenant, session: Option<&sessions::Session>) -> Site {
        let slug = t.slug();
        Site {
            name: t.name.clone(),
            logout: session
                .map(|s| format!("/{slug}/deconnexion?jeton={}", s.csrf))
                .unwrap_or_default(),
            greeting: session
                .map(|s| s.citizen.given_name().to_string())
                .unwrap_or_default(),
            slug,
        }
    }
}

#[derive(Template)]
#[template(path = "suivi.html")]
pub struct TrackPage {
    pub site: Site,
    pub reference: String,
    /// What the hub says of the reference and code given: empty before any.
    pub error: String,
    pub found: Option<TrackedView>,
}

/// A request's state as the page shows it: French words, Paris dates.
pub struct TrackedView {
    pub reference: String,
    pub commune: String,
    pub service: String,
    pub status: &'static str,
    pub opened: String,
    pub due: String,
    pub answered: String,
    pub closed: String,
}

impl TrackedView {
    fn of(t: &Tracked) -> TrackedView {
        let date = |us: Option<i64>| us.map(day).unwrap_or_default();
        TrackedView {
            reference: t.reference.clone(),
            commune: t.commune.clone(),
            service: t.service.clone(),
            status: t.status_fr,
            opened: date(t.opened_us),
            due: date(t.due_us),
            answered: date(t.answered_us),
            closed: date(t.closed_us),
        }
    }
}

#[derive(Deserialize)]
pub struct TrackForm {
    #[serde(default)]
    reference: String,
    #[serde(default)]
    code: String,
}

async fn track_form() -> Response {
    render(&TrackPage {
        site: Site::default(),
        reference: String::new(),
        error: String::new(),
        found: None,
    })
}

async fn track(
    Axum(space): Axum<State>,
    headers: HeaderMap,
    source: Option<axum::Extension<ClientAddress>>,
    Form(f): Form<TrackForm>,
) -> Response {
    // Another site's page may not make a browser guess codes (and spend its address's tries).
    if !crate::session::same_origin(&headers) {
        return failure(Failure {
            status: StatusCode::FORBIDDEN,
            message: "Ce formulaire s'envoie depuis la page « Suivre une demande » de ce site."
                .into(),
        });
    }
    let reference: String = f.reference.trim().chars().take(40).collect();
    let code: String = f.code.chars().take(40).collect();
    let (status, error, found, retry) =
        match space
            .app
            .track_request(source.map(|s| s.0 .0), &reference, &code)
        {
            Ok(t) => (StatusCode::OK, String::new(), Some(TrackedView::of(&t)), None),
            Err(contacthub_app::Error::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                "Aucune demande ne correspond à cette référence et à ce code. Vérifiez-les sur votre accusé de réception ou le courrier de la mairie.".into(),
                None,
                None,
            ),
            Err(e) => {
                let retry = match e {
                    contacthub_app::Error::Throttled(wait) => Some(wait.as_secs()),
                    _ => None,
                };
                let f = Failure::from(e);
                (f.status, f.message, None, retry)
            }
        };
    let mut res = render(&TrackPage {
        site: Site::default(),
        reference,
        error,
        found,
    });
    *res.status_mut() = status;
    if let Some(secs) = retry {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

#[derive(Template)]
#[template(path = "portal_error.html")]
pub struct ErrorPage {
    pub site: Site,
    pub message: String,
}

/// A page that could not be shown, in the space's own look.
pub(crate) fn failure(f: Failure) -> Response {
    failure_on(Site::default(), f)
}

/// A page of commune `site` that could not be shown.
pub(crate) fn failure_on(site: Site, f: Failure) -> Response {
    let mut res = render(&ErrorPage {
        site,
        message: f.message,
    });
    *res.status_mut() = f.status;
    res
}

/// The communes' sites, for whoever comes to the space's root.
#[derive(Template)]
#[template(path = "portal_communes.html")]
pub struct CommunesPage {
    pub site: Site,
    /// Name and address of each commune's site, in French order.
    pub communes: Vec<(String, String)>,
}

async fn communes(Axum(space): Axum<State>) -> Response {
    let mut communes: Vec<(String, String)> = space
        .app
        .tenants()
        .iter()
        .map(|t| (t.name.clone(), format!("/{}/", t.slug())))
        .collect();
    communes.sort_by_key(|(name, _)| contacthub_core::identity::fold_name(name));
    render(&CommunesPage {
        site: Site::default(),
        communes,
    })
}

/// Finds the client's address for the handlers (the follow-up's tries count by it).
async fn client_address(
    Axum(space): Axum<State>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    crate::source_of(&space.app, &mut req);
    next.run(req).await
}

/// The space's routes.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(communes))
        .route("/suivi", get(track_form).post(track))
        .route(
            "/{commune}",
            get(
                |axum::extract::Path(c): axum::extract::Path<String>| async move {
                    Redirect::to(&format!("/{}/", crate::view::url_encode(&c)))
                },
            ),
        )
        .route("/{commune}/", get(account::home))
        .route("/{commune}/connexion", get(account::sign_in))
        .route("/{commune}/connexion/retour", get(account::back))
        .route(
            "/{commune}/connexion/code",
            get(code::form).post(code::send),
        )
        .route(
            "/{commune}/connexion/code/confirmer",
            axum::routing::post(code::confirm),
        )
        .route("/{commune}/deconnexion", get(account::sign_out))
        .route(
            "/{commune}/deconnexion/retour",
            get(
                |axum::extract::Path(c): axum::extract::Path<String>| async move {
                    Redirect::to(&format!("/{}/?deconnecte=1", crate::view::url_encode(&c)))
                },
            ),
        )
        .route("/{commune}/demandes/{reference}", get(account::request))
        .route(
            "/{commune}/foyer",
            get(household::page)
                .post(household::ask)
                .layer(axum::extract::DefaultBodyLimit::max(
                    (contacthub_app::space::MAX_ATTACHMENTS as u64
                        * contacthub_app::space::MAX_ATTACHMENT_BYTES
                        + 1024 * 1024) as usize,
                )),
        )
        .route(
            "/{commune}/coordonnees",
            get(details::page).post(details::change),
        )
        .route(
            "/{commune}/coordonnees/code",
            axum::routing::post(details::send_code),
        )
        .route(
            "/{commune}/coordonnees/confirmer",
            axum::routing::post(details::confirm),
        )
        .route(
            "/{commune}/rendez-vous",
            get(appointments::page).post(appointments::book),
        )
        .route(
            "/{commune}/rendez-vous/{id}/annuler",
            axum::routing::post(appointments::cancel),
        )
        .route("/{commune}/donnees", get(data::page))
        .route("/{commune}/donnees/mes-donnees.zip", get(data::export))
        .route(
            "/{commune}/donnees/effacement",
            axum::routing::post(data::ask_erasure),
        )
        .route(
            "/{commune}/ecrire",
            get(message::form)
                .post(message::send)
                .layer(axum::extract::DefaultBodyLimit::max(
                    (contacthub_app::space::MAX_ATTACHMENTS as u64
                        * contacthub_app::space::MAX_ATTACHMENT_BYTES
                        + 1024 * 1024) as usize,
                )),
        )
        .route(
            "/{commune}/demandes/{reference}/documents/{n}",
            get(account::document),
        )
        .route(
            "/static/portal.css",
            get(|| async { crate::asset("text/css; charset=utf-8", CSS) }),
        )
        .fallback(|| async {
            failure(Failure {
                status: StatusCode::NOT_FOUND,
                message: "Cette page n'existe pas.".into(),
            })
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_address,
        ))
        .layer(axum::middleware::from_fn(crate::security_headers))
        .with_state(state)
}

/// Serves the space on `listener` until `shutdown` completes, with `beside` (the demo's
/// identity provider) on the same port.
pub async fn serve(
    listener: contacthub_tls::Listener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
    beside: Option<Router>,
) -> Result<(), crate::Error> {
    let state = Arc::new(Space {
        app,
        sessions: sessions::Sessions::default(),
        starts: crate::signin::Starts::default(),
        tls: listener.scheme() == "https",
    });
    let routes = match beside {
        Some(other) => other.merge(router(state)),
        None => router(state),
    };
    crate::serve_router(listener, routes, shutdown).await
}
