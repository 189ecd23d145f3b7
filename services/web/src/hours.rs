//! The commune's opening hours and closed days, as agents tell them to people (`/horaires`).

use crate::pages::{chrome, pick, Page};
use crate::session::Caller;
use crate::{render, view, State};
use axum::extract::{Query, State as Axum};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct HoursQuery {
    #[serde(default)]
    commune: String,
}

pub async fn hours(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<HoursQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    // No one's data: élus read them too.
    let scope = caller.dashboard_scope(&desk, &tenant)?;
    let hours = desk.app.opening_hours(&scope)?;
    Ok(render(&view::HoursPage {
        chrome: chrome(&caller, &desk, "horaires"),
        communes,
        hours,
    }))
}
