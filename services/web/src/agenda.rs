//! The appointments on the desk (`/rendez-vous`): a day's or a week's agenda of the kinds the
//! agent receives, all of them or one counter's (one kind); an appointment booked for someone
//! at the counter or on the phone (a kind, a free time, their record), one cancelled, whether
//! the person came recorded once its time has come.

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
    /// « lundi 07/12/2026 » (the week's view shows it).
    pub day: String,
    pub time: String,
    pub what: String,
    pub citizen: String,
    pub url: String,
    /// « à venir », « en attente », « venu », « absent ».
    pub state: &'static str,
    /// Still to come: it may be cancelled.
    pub to_come: bool,
    /// Begun, whether the person came not yet recorded.
    pub to_record: bool,
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
    /// The week from the day's Monday, not the day alone.
    pub week: bool,
    /// The counter (a kind's code) shown alone; empty: all.
    pub counter: String,
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
    /// `semaine`: the week's agenda.
    #[serde(default)]
    vue: String,
    #[serde(default)]
    guichet: String,
}

/// « lundi 07/12/2026 ».
fn day_name(day: chrono::NaiveDate) -> String {
    const WEEKDAYS: [&str; 7] = [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ];
    let weekday = chrono::Datelike::weekday(&day).num_days_from_monday() as usize;
    format!("{} {}", WEEKDAYS[weekday], day.format("%d/%m/%Y"))
}

/// `GET /rendez-vous`.
pub async fn agenda(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<AgendaQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let today = paris(desk.app.now()).date();
    let day = chrono::NaiveDate::parse_from_str(q.jour.trim(), "%Y-%m-%d").unwrap_or(today);
    let commune = desk.app.tenant(&tenant)?;
    let week = q.vue == "semaine";
    let (first, days) = if week {
        let monday = day
            - chrono::Duration::days(i64::from(
                chrono::Datelike::weekday(&day).num_days_from_monday(),
            ));
        (monday, 7)
    } else {
        (day, 1)
    };
    let now = desk.app.now();
    use contacthub_core::pb::appointment::Attendance;
    let lines = desk
        .app
        .agenda(&scope, first, days)?
        .into_iter()
        .filter(|a| q.guichet.is_empty() || a.kind == q.guichet)
        .filter(|a| a.status == Status::Booked as i32)
        .map(|a| Line {
            day: day_name(paris(a.start_us).date()),
            state: match Attendance::try_from(a.attendance).unwrap_or(Attendance::Unspecified) {
                Attendance::Came => "venu",
                Attendance::NoShow => "absent",
                Attendance::Unspecified if a.start_us > now => "à venir",
                Attendance::Unspecified => "en attente",
            },
            to_come: a.start_us > now,
            to_record: a.start_us <= now && a.attendance == Attendance::Unspecified as i32,
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
    Ok(render(&AgendaPage {
        chrome: chrome(&caller, &desk, "rendez-vous"),
        communes,
        day: day.format("%Y-%m-%d").to_string(),
        day_name: if week {
            format!("de la semaine du {}", day_name(first))
        } else {
            format!("du {}", day_name(day))
        },
        week,
        counter: q.guichet.clone(),
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
            "venu" => "Présence enregistrée.".into(),
            "absent" => "Absence enregistrée.".into(),
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

/// Where the agenda of `tenant` on `day` is (`view`: `semaine` or not; `counter`: a kind).
fn back(tenant: &str, day: &str, (view, counter): (&str, &str), avis: &str) -> String {
    format!(
        "/rendez-vous?commune={}&jour={}&vue={}&guichet={}&avis={avis}",
        url_encode(tenant),
        url_encode(day),
        url_encode(view),
        url_encode(counter)
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
    Ok(see_other(&back(&f.commune, &f.jour, ("", ""), "pris")))
}

/// A form about one appointment of the agenda.
#[derive(Deserialize)]
pub struct AppointmentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    commune: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    jour: String,
    /// Whether the person came: `venu` or `absent`.
    #[serde(default)]
    presence: String,
    /// The view to come back to.
    #[serde(default)]
    vue: String,
    #[serde(default)]
    guichet: String,
}

/// `POST /rendez-vous/annulation`.
pub async fn cancel(
    Axum(desk): Axum<State>,
    caller: Caller,
    Form(f): Form<AppointmentForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &f.commune)?;
    desk.app.cancel_for(&scope, &f.id).await?;
    Ok(see_other(&back(
        &f.commune,
        &f.jour,
        (&f.vue, &f.guichet),
        "annule",
    )))
}

/// `POST /rendez-vous/presence`: whether the person came.
pub async fn attendance(
    Axum(desk): Axum<State>,
    caller: Caller,
    Form(f): Form<AppointmentForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &f.commune)?;
    let came = match f.presence.as_str() {
        "venu" => true,
        "absent" => false,
        _ => {
            return Err(Failure {
                status: StatusCode::BAD_REQUEST,
                message: "Indiquez si la personne est venue.".into(),
            })
        }
    };
    desk.app.record_attendance(&scope, &f.id, came).await?;
    Ok(see_other(&back(
        &f.commune,
        &f.jour,
        (&f.vue, &f.guichet),
        &f.presence,
    )))
}
