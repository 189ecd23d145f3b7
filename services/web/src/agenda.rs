//! The appointments on the desk (`/rendez-vous`): a day's agenda of the kinds the agent
//! receives, an appointment booked for someone at the counter or on the phone (a kind, a
//! free time, their record), one cancelled.

use crate::pages::{chrome, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{url_encode, Commune};
use crate::{render, Failure, State};
use askama::Template;
use axum::extract::{Query, State as Axum};
use axum::http::StatusCode;
use axum::Form;
use contacthub_core::courrier::paris;
use contacthub_core::pb::appointment::Status;
use serde::Deserialize;

/// An appointment of the agenda.
pub struct Line {
    pub id: String,
    pub time: String,
    pub what: String,
    pub citizen: String,
    pub url: String,
    pub booked: bool,
}

#[derive(Template)]
#[template(path = "agenda.html")]
pub struct AgendaPage {
    pub chrome: crate::view::Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    /// `yyyy-mm-dd` and « lundi 07/12/2026 ».
    pub day: String,
    pub day_name: String,
    pub lines: Vec<Line>,
    /// Code and name of each kind.
    pub kinds: Vec<(String, String)>,
    pub kind: String,
    /// Free times of `kind` that day: start (µs), « 09:20 ».
    pub times: Vec<(i64, String)>,
    pub notice: String,
}

#[derive(Deserialize)]
pub struct AgendaQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    jour: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    avis: String,
}

const WEEKDAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

/// `GET /rendez-vous`.
pub async fn agenda(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<AgendaQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let today = paris(desk.app.now()).date();
    let day = chrono::NaiveDate::parse_from_str(q.jour.trim(), "%Y-%m-%d").unwrap_or(today);
    let commune = desk.app.tenant(&tenant)?;
    let lines = desk
        .app
        .agenda(&scope, day)?
        .into_iter()
        .map(|a| Line {
            time: paris(a.start_us).format("%H:%M").to_string(),
            what: commune
                .appointment(&a.kind)
                .map_or(a.kind.clone(), |k| k.name.clone()),
            url: format!(
                "/citoyens/{}/{}",
                url_encode(&tenant),
                url_encode(&a.citizen_id)
            ),
            citizen: a.citizen_id.clone(),
            booked: a.status == Status::Booked as i32,
            id: a.appointment_id,
        })
        .collect();
    let start = contacthub_core::courrier::paris_local_to_utc_us(
        day.and_hms_opt(0, 0, 0).unwrap_or_default(),
    );
    let times = match commune.appointment(&q.kind) {
        Some(kind) => desk
            .app
            .appointment_slots(&scope, &kind.code, start, 1)?
            .into_iter()
            .map(|f| (f.start_us, paris(f.start_us).format("%H:%M").to_string()))
            .collect(),
        None => Vec::new(),
    };
    let weekday = chrono::Datelike::weekday(&day).num_days_from_monday() as usize;
    Ok(render(&AgendaPage {
        chrome: chrome(&caller, &desk, "rendez-vous"),
        communes,
        day: day.format("%Y-%m-%d").to_string(),
        day_name: format!("{} {}", WEEKDAYS[weekday], day.format("%d/%m/%Y")),
        lines,
        kinds: commune
            .appointments
            .iter()
            .map(|k| (k.code.clone(), k.name.clone()))
            .collect(),
        kind: q.kind.clone(),
        times,
        notice: match q.avis.as_str() {
            "pris" => "Rendez-vous pris.".into(),
            "annule" => "Rendez-vous annulé.".into(),
            _ => String::new(),
        },
        tenant,
    }))
}

#[derive(Deserialize)]
pub struct BookForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    commune: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    debut: String,
    #[serde(default)]
    fiche: String,
    #[serde(default)]
    jour: String,
}

/// Where the agenda of `tenant` on `day` is.
fn back(tenant: &str, day: &str, avis: &str) -> String {
    format!(
        "/rendez-vous?commune={}&jour={}&avis={avis}",
        url_encode(tenant),
        url_encode(day)
    )
}

/// `POST /rendez-vous`: books a free time for a person.
pub async fn book(Axum(desk): Axum<State>, caller: Caller, Form(f): Form<BookForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &f.commune)?;
    let start: i64 = f.debut.trim().parse().map_err(|_| Failure {
        status: StatusCode::BAD_REQUEST,
        message: "Choisissez un horaire.".into(),
    })?;
    desk.app
        .book_for(&scope, &f.kind, start, f.fiche.trim())
        .await?;
    Ok(see_other(&back(&f.commune, &f.jour, "pris")))
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    commune: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    jour: String,
}

/// `POST /rendez-vous/annulation`.
pub async fn cancel(Axum(desk): Axum<State>, caller: Caller, Form(f): Form<CancelForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &f.commune)?;
    desk.app.cancel_for(&scope, &f.id).await?;
    Ok(see_other(&back(&f.commune, &f.jour, "annule")))
}
