//! What every page of the desk shares (the page chrome, the commune picker, redirects). The pages themselves are one module per feature (`citizen`,
//! `contacts`, `requests`, `mailroom`, `records`, `catalogue`, `dashboard`): one handler per
//! page or action, each checking the caller's access to the commune it names (as the gRPC API
//! does), calling the application layer and rendering a template; actions check the form's
//! CSRF token and redirect (post/redirect/get).

use crate::session::Caller;
use crate::view::{Chrome, Commune};
use crate::{Failure, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
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
        borne: c.session.agent.as_ref().is_some_and(Agent::is_borne),
        ops: desk.app.access().ops_for(c.session.credential()).is_ok(),
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
    // In French order: « État civil » among the E.
    out.sort_by_cached_key(|s| contacthub_core::identity::fold_name(&s.1));
    out
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub(crate) fn now(desk: &State) -> i64 {
    desk.app.now()
}

pub async fn home(caller: Caller) -> Response {
    see_other(crate::signin::landing(caller.session.agent.as_ref()))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}
