//! What every page of the desk shares (the page chrome, the commune picker, redirects) and
//! signing in and out. The pages themselves are one module per feature (`citizen`,
//! `contacts`, `requests`, `mailroom`, `records`, `catalogue`, `dashboard`): one handler per
//! page or action, each checking the caller's access to the commune it names (as the gRPC API
//! does), calling the application layer and rendering a template; actions check the form's
//! CSRF token and redirect (post/redirect/get).

use crate::session::{self, Caller};
use crate::view::{self, Chrome, Commune};
use crate::{render, Failure, State};
use axum::extract::{Query, State as Axum};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use contacthub_app::auth::Agent;
use serde::Deserialize;

pub(crate) type Page = Result<Response, Failure>;

pub(crate) fn chrome(c: &Caller, desk: &State, section: &'static str) -> Chrome {
    Chrome {
        who: c.who(),
        csrf: c.session.csrf.clone(),
        open: desk.app.access().is_open(),
        elu: c.is_elu(),
        dpo: c.session.agent.as_ref().is_some_and(Agent::is_dpo),
        section,
    }
}

/// The communes the caller may open with `chosen` (or the first) selected, and the selected
/// one; a commune the caller may not open is refused, not replaced.
pub(crate) fn pick(
    desk: &State,
    caller: &Caller,
    chosen: &str,
) -> Result<(Vec<Commune>, String), Failure> {
    let communes = communes(desk, caller.session.agent.as_ref(), chosen);
    if !chosen.is_empty() && !communes.iter().any(|c| c.code == chosen) {
        return Err(Failure {
            status: StatusCode::FORBIDDEN,
            message: "Vous n'avez pas accès à cette commune.".into(),
        });
    }
    let tenant = selected(&communes)?;
    Ok((communes, tenant))
}

/// The communes the caller may open, `chosen` (or the first) selected.
fn communes(desk: &State, agent: Option<&Agent>, chosen: &str) -> Vec<Commune> {
    let mut out: Vec<Commune> = desk
        .app
        .tenants()
        .iter()
        .filter(|t| agent.is_none_or(|a| a.may_read(&t.code)))
        .map(|t| Commune {
            code: t.code.clone(),
            name: t.name.clone(),
            selected: t.code == chosen,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if !out.iter().any(|c| c.selected) {
        if let Some(first) = out.first_mut() {
            first.selected = true;
        }
    }
    out
}

fn selected(communes: &[Commune]) -> Result<String, Failure> {
    communes
        .iter()
        .find(|c| c.selected)
        .map(|c| c.code.clone())
        .ok_or(Failure {
            status: StatusCode::FORBIDDEN,
            message: "Aucune commune ne vous est ouverte.".into(),
        })
}

/// The services of `tenant`'s directory an agent chooses from: (code, name), by name.
pub(crate) fn services(desk: &State, tenant: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = desk
        .app
        .tenants()
        .get(tenant)
        .map(|t| {
            t.services
                .iter()
                .map(|s| (s.code.clone(), s.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub(crate) fn now(desk: &State) -> i64 {
    desk.app.now()
}

pub async fn home(caller: Caller) -> Response {
    see_other(landing(caller.session.agent.as_ref()))
}

/// Where an agent starts their day: an élu on the dashboard, an agent of a service on their
/// worklist, the accueil and the mail room on the search.
fn landing(agent: Option<&Agent>) -> &'static str {
    match agent {
        Some(a) if a.is_elu() => "/tableau-de-bord",
        Some(a) if a.is_dpo() => "/journal",
        Some(a) if !a.is_generalist() => "/demandes",
        _ => "/citoyens",
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    suite: String,
}

/// Where to go after signing in: a path of this desk only (no scheme, no other host, no
/// control character or space a browser would strip into `//elsewhere`).
fn safe_next(next: &str) -> &str {
    let path_only = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= 2_000
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if path_only {
        next
    } else {
        "/"
    }
}

pub async fn login_form(Axum(desk): Axum<State>, Query(q): Query<NextQuery>) -> Response {
    render(&view::Login {
        open: desk.app.access().is_open(),
        next: safe_next(&q.suite).to_string(),
        error: String::new(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    suite: String,
}

pub async fn login(
    Axum(desk): Axum<State>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    // Signing in from another site (login CSRF) is refused: the browser says where the form
    // came from.
    if !session::same_origin(&headers) {
        tracing::info!("web desk: sign-in from another origin refused");
        return Failure {
            status: StatusCode::FORBIDDEN,
            message: "Connexion refusée : le formulaire ne vient pas de ce poste.".into(),
        }
        .into_response();
    }
    let token = f.token.trim();
    let (token, agent) = if desk.app.access().is_open() {
        (None, None)
    } else {
        match desk.app.access().caller(Some(token)) {
            Ok(agent) => (Some(token.to_string()), agent),
            Err(_) => {
                let page = view::Login {
                    open: false,
                    next: safe_next(&f.suite).to_string(),
                    error: "Jeton inconnu : vérifiez-le et recommencez.".into(),
                };
                return (StatusCode::UNAUTHORIZED, render(&page)).into_response();
            }
        }
    };
    let start = landing(agent.as_ref());
    if let Some(a) = &agent {
        tracing::info!(agent = %a.id, "web desk: signed in");
    }
    let Some(id) = desk.sessions.open(token, agent) else {
        return Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Trop de sessions ouvertes : fermez-en une (Se déconnecter) et recommencez."
                .into(),
        }
        .into_response();
    };
    let next = match safe_next(&f.suite) {
        "/" => start,
        n => n,
    };
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&id, &headers, desk.tls),
        )],
        see_other(next),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
    /// « Se déconnecter partout »: every session of the agent, on every browser.
    partout: Option<String>,
}

pub async fn logout(Axum(desk): Axum<State>, caller: Caller, Form(f): Form<LogoutForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    if f.partout.is_some() {
        let n = desk.sessions.close_everywhere(&caller.id);
        tracing::info!(agent = %caller.who(), sessions = n, "web desk: signed out everywhere");
    } else {
        desk.sessions.close(&caller.id);
    }
    Ok((
        [(header::SET_COOKIE, session::clear_cookie())],
        see_other("/connexion"),
    )
        .into_response())
}
