//! The citizens' space (« espace citoyen »), served apart from the desk on its own port: for
//! now « Suivre une demande » (`/suivi`), where a reference and its follow-up code tell where
//! a request stands — its state, service and dates, nothing personal — to anyone holding
//! them, without an account. Handlers translate only, like the desk's.

use crate::view::day;
use crate::{render, Desk, Failure, State};
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
use tokio::sync::watch;

const CSS: &str = include_str!("../static/portal.css");

#[derive(Template)]
#[template(path = "suivi.html")]
pub struct TrackPage {
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
        reference: String::new(),
        error: String::new(),
        found: None,
    })
}

async fn track(
    Axum(desk): Axum<State>,
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
        match desk
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
    pub message: String,
}

/// A page that could not be shown, in the space's own look.
fn failure(f: Failure) -> Response {
    let mut res = render(&ErrorPage { message: f.message });
    *res.status_mut() = f.status;
    res
}

/// The space's routes.
pub fn router(state: State) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/suivi") }))
        .route("/suivi", get(track_form).post(track))
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
            crate::client_address,
        ))
        .layer(axum::middleware::from_fn(crate::security_headers))
        .with_state(state)
}

/// Serves the space on `listener` until `shutdown` completes.
pub async fn serve(
    listener: contacthub_tls::Listener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: watch::Receiver<bool>,
) -> Result<(), crate::Error> {
    let state = Arc::new(Desk::new(app, stopping, listener.scheme() == "https"));
    crate::serve_router(listener, router(state), shutdown).await
}
