//! « Prendre rendez-vous » on the citizens' space: a kind, a day with free slots, a time;
//! the person's appointments, each movable (a new time of its kind, chosen the same way) or
//! cancellable until it begins.

use super::{failure_on, Site, State};
use crate::{render, Failure};
use askama::Template;
use axum::extract::{Form, Path, Query, State as Axum};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use contacthub_app::notices::{day_fr, when_fr};
use contacthub_core::courrier::paris;
use contacthub_core::pb::appointment::Status;
use serde::Deserialize;

/// Days shown ahead.
const DAYS: u32 = 28;

/// An appointment as the page shows it.
pub struct Booked {
    pub id: String,
    /// Its kind's code.
    pub kind: String,
    pub what: String,
    pub when: String,
    pub state: &'static str,
    /// It may still be moved or cancelled.
    pub cancellable: bool,
}

#[derive(Template)]
#[template(path = "espace_rendez_vous.html")]
pub struct AppointmentsPage {
    pub site: Site,
    pub csrf: String,
    pub notice: String,
    pub error: String,
    pub mine: Vec<Booked>,
    /// Code and name of each kind.
    pub kinds: Vec<(String, String)>,
    pub kind: String,
    pub kind_name: String,
    /// Days with free slots: `yyyy-mm-dd`, « lundi 07/12/2026 », free places.
    pub days: Vec<(String, String, u32)>,
    pub day: String,
    /// Times of the day chosen: start (µs), « 09:20 ».
    pub times: Vec<(i64, String)>,
    /// The appointment being moved (its id), and when it is: empty when booking.
    pub moving: String,
    pub moving_when: String,
}

#[derive(Deserialize, Default)]
pub struct AppointmentsQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    jour: String,
    #[serde(default)]
    avis: String,
    /// The id of the appointment being moved.
    #[serde(default)]
    deplacer: String,
}

/// The page for `q`, with `error` when an action failed.
fn show(
    space: &State,
    headers: &HeaderMap,
    slug: &str,
    q: &AppointmentsQuery,
    error: Option<Failure>,
) -> Response {
    let (t, s) = match super::account::signed_in_to(space, headers, slug) {
        Ok(x) => x,
        Err(res) => return *res,
    };
    let site = Site::of(t, Some(&s));
    let app = &space.app;
    let now = app.now();
    let mine = match app.my_appointments(&s.citizen) {
        Ok(list) => list
            .into_iter()
            .map(|a| {
                let booked = a.status == Status::Booked as i32;
                Booked {
                    what: t
                        .appointment(&a.kind)
                        .map_or(a.kind.clone(), |k| k.name.clone()),
                    when: when_fr(a.start_us),
                    state: match (booked, a.start_us > now) {
                        (true, true) => "à venir",
                        (true, false) => "passé",
                        _ if a.status == Status::Moved as i32 => "déplacé",
                        _ => "annulé",
                    },
                    cancellable: booked && a.start_us > now,
                    id: a.appointment_id,
                    kind: a.kind,
                }
            })
            .collect(),
        Err(e) => return failure_on(site, super::account::said(e)),
    };
    let mut page = AppointmentsPage {
        site,
        csrf: s.csrf.clone(),
        notice: match q.avis.as_str() {
            "pris" => "Votre rendez-vous est pris. Il figure dans « Mes rendez-vous ».".into(),
            "annule" => "Votre rendez-vous est annulé.".into(),
            "deplace" => "Votre rendez-vous est déplacé ; l'ancien horaire est libéré.".into(),
            _ => String::new(),
        },
        error: String::new(),
        mine,
        kinds: t
            .appointments
            .iter()
            .map(|k| (k.code.clone(), k.name.clone()))
            .collect(),
        kind: String::new(),
        kind_name: String::new(),
        days: Vec::new(),
        day: String::new(),
        times: Vec::new(),
        moving: String::new(),
        moving_when: String::new(),
    };
    if !q.deplacer.is_empty() {
        match page
            .mine
            .iter()
            .find(|a| a.id == q.deplacer && a.cancellable)
        {
            Some(a) => {
                page.moving = a.id.clone();
                page.moving_when = a.when.clone();
            }
            None => page.error = "Ce rendez-vous ne peut plus être déplacé.".into(),
        }
    }
    if let Some(kind) = t.appointment(&q.kind) {
        page.kind = kind.code.clone();
        page.kind_name = kind.name.clone();
        match app.slots_for(&s.citizen, &kind.code, now, DAYS) {
            Ok(free) => {
                for f in &free {
                    let date = paris(f.start_us).format("%Y-%m-%d").to_string();
                    match page.days.last_mut() {
                        Some((d, _, n)) if *d == date => *n += f.left,
                        _ => page.days.push((date.clone(), day_fr(f.start_us), f.left)),
                    }
                    if date == q.jour {
                        page.times
                            .push((f.start_us, paris(f.start_us).format("%H:%M").to_string()));
                    }
                }
                if !page.times.is_empty() {
                    page.day = q.jour.clone();
                }
            }
            Err(e) => page.error = super::account::said(e).message,
        }
    }
    let status = error.as_ref().map(|f| f.status);
    if let Some(f) = error {
        page.error = f.message;
    }
    let mut res = render(&page);
    if let Some(status) = status {
        *res.status_mut() = status;
    }
    res
}

/// `GET /{commune}/rendez-vous`.
pub async fn page(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Query(q): Query<AppointmentsQuery>,
) -> Response {
    show(&space, &headers, &slug, &q, None)
}

#[derive(Deserialize)]
pub struct BookForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    jour: String,
    #[serde(default)]
    debut: String,
    #[serde(default)]
    deplacer: String,
}

/// `POST /{commune}/rendez-vous`: books the slot chosen, or moves an appointment to it.
pub async fn book(
    Axum(space): Axum<State>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    Form(f): Form<BookForm>,
) -> Response {
    let citizen =
        match super::account::posted_by(&space, &headers, &slug, &f.csrf, "Prendre rendez-vous") {
            Ok(c) => c,
            Err(res) => return *res,
        };
    let q = AppointmentsQuery {
        kind: f.kind.clone(),
        jour: f.jour.clone(),
        avis: String::new(),
        deplacer: f.deplacer.clone(),
    };
    let Ok(start) = f.debut.trim().parse::<i64>() else {
        let bad = Failure {
            status: StatusCode::BAD_REQUEST,
            message: "Choisissez un horaire.".into(),
        };
        return show(&space, &headers, &slug, &q, Some(bad));
    };
    let (done, avis) = if f.deplacer.is_empty() {
        (
            space
                .app
                .book_my_appointment(&citizen, &f.kind, start)
                .await,
            "pris",
        )
    } else {
        (
            space
                .app
                .move_my_appointment(&citizen, &f.deplacer, start)
                .await,
            "deplace",
        )
    };
    match done {
        Ok(_) => {
            crate::pages::see_other(&format!("/{slug}/rendez-vous?avis={avis}")).into_response()
        }
        Err(e) => show(&space, &headers, &slug, &q, Some(super::account::said(e))),
    }
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /{commune}/rendez-vous/{id}/annuler`.
pub async fn cancel(
    Axum(space): Axum<State>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<CancelForm>,
) -> Response {
    let citizen =
        match super::account::posted_by(&space, &headers, &slug, &f.csrf, "Prendre rendez-vous") {
            Ok(c) => c,
            Err(res) => return *res,
        };
    match space.app.cancel_my_appointment(&citizen, &id).await {
        Ok(()) => {
            crate::pages::see_other(&format!("/{slug}/rendez-vous?avis=annule")).into_response()
        }
        Err(e) => show(
            &space,
            &headers,
            &slug,
            &AppointmentsQuery::default(),
            Some(super::account::said(e)),
        ),
    }
}
