//! The élu's permanence (`/permanence`): a page for a laptop or a phone to record each
//! person met — kept in the browser while the network is away, sent once when it is back
//! (`static/desk.js`) — and the people met with where the requests born from them stand.

use crate::contacts::{categories, category_of};
use crate::pages::{chrome, pick, see_other, services, Page};
use crate::session::Caller;
use crate::view::{day, url_encode, when, Chrome, Commune};
use crate::{render, Failure, State};
use askama::Template;
use axum::extract::{Path, Query, State as Axum};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use contacthub_app::commands::RecordMeeting;
use contacthub_app::permanence::Meeting;
use contacthub_core::pb::RequestStatus;
use contacthub_core::render::{category_fr, status_fr};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct PermanenceQuery {
    #[serde(default)]
    commune: String,
}

/// A person met, as the élu's page lists it.
pub struct MeetingRow {
    pub when: String,
    pub place: String,
    pub name: String,
    pub reach: String,
    pub category: &'static str,
    pub motive: String,
    pub promise: String,
    /// The request: reference, service, status, due or answered date.
    pub request: Option<(String, String, &'static str, String)>,
    pub erased: bool,
}

impl MeetingRow {
    fn of(m: &Meeting) -> MeetingRow {
        MeetingRow {
            when: when(m.occurred_us),
            place: m.place.clone(),
            name: m.name.clone(),
            reach: m.reach.clone(),
            category: category_fr(m.category as i32),
            motive: m.motive.clone(),
            promise: m.promise.clone(),
            request: m.request.as_ref().map(|r| {
                let date = match (r.closed_us, r.answered_us, r.due_us) {
                    (Some(c), _, _) => format!("close le {}", day(c)),
                    (_, Some(a), _) => format!("répondue le {}", day(a)),
                    (_, _, Some(d)) => format!("réponse promise au plus tard le {}", day(d)),
                    _ => String::new(),
                };
                let status = if r.withheld && r.status == RequestStatus::Unspecified {
                    "affaire confidentielle du service"
                } else {
                    status_fr(r.status as i32)
                };
                (r.reference.clone(), r.service_name.clone(), status, date)
            }),
            erased: m.erased,
        }
    }
}

#[derive(Template)]
#[template(path = "permanence.html")]
pub struct PermanencePage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
    /// Where the browser keeps what waits to be sent: one queue per commune and élu.
    pub queue: String,
    pub key: String,
    pub categories: Vec<(String, &'static str)>,
    pub services: Vec<(String, String)>,
    pub meetings: Vec<MeetingRow>,
}

#[derive(Template)]
#[template(path = "meeting.html")]
pub struct MeetingItem {
    pub m: MeetingRow,
}

pub async fn permanence(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<PermanenceQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.dashboard_scope(&desk, &tenant)?;
    let meetings = desk.app.meetings(&scope)?;
    Ok(render(&PermanencePage {
        chrome: chrome(&caller, &desk, "permanence"),
        communes,
        queue: format!("{tenant}|{}", scope.agent_id()),
        key: format!("{:032x}", rand::random::<u128>()),
        categories: categories(),
        services: services(&desk, &tenant),
        tenant,
        meetings: meetings.iter().map(MeetingRow::of).collect(),
    }))
}

#[derive(Deserialize)]
pub struct MeetingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lieu: String,
    #[serde(default)]
    nom: String,
    #[serde(default)]
    telephone: String,
    #[serde(default)]
    courriel: String,
    #[serde(default)]
    adresse: String,
    #[serde(default)]
    motif: String,
    #[serde(default)]
    objet: String,
    #[serde(default)]
    promesse: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    cle: String,
    /// When the élu typed it: milliseconds since the epoch, from the browser.
    #[serde(default)]
    quand: String,
    /// `script`: the page's script sends it and reads a JSON answer.
    #[serde(default)]
    envoi: String,
}

/// A person met, from the form or from the page's queue.
pub async fn record(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Form(f): Form<MeetingForm>,
) -> Response {
    let script = f.envoi == "script";
    match record_meeting(&desk, &caller, &tenant, f).await {
        Ok(m) if script => Json(serde_json::json!({
            "ok": true,
            "ligne": MeetingItem { m: MeetingRow::of(&m) }.render().unwrap_or_default(),
        }))
        .into_response(),
        Ok(_) => see_other(&format!(
            "/permanence?commune={}#rencontres",
            url_encode(&tenant)
        )),
        Err(e) if script => (
            e.status,
            Json(serde_json::json!({ "ok": false, "message": e.message })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn record_meeting(
    desk: &State,
    caller: &Caller,
    tenant: &str,
    f: MeetingForm,
) -> Result<Meeting, Failure> {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.dashboard_scope(desk, tenant)?;
    let occurred_at = match f.quand.trim() {
        "" => None,
        ms => Some(
            ms.parse::<i64>()
                .ok()
                .and_then(|ms| ms.checked_mul(1000))
                .map(contacthub_proto::ts::from_micros)
                .ok_or(Failure {
                    status: StatusCode::BAD_REQUEST,
                    message: "Impossible : l'heure de la rencontre est illisible.".into(),
                })?,
        ),
    };
    Ok(desk
        .app
        .record_meeting(
            &scope,
            &RecordMeeting {
                place: f.lieu,
                name: f.nom,
                phone: f.telephone,
                email: f.courriel,
                address: f.adresse,
                category: category_of(&f.motif),
                motive: f.objet,
                promise: f.promesse,
                service: f.service,
                occurred_at,
                idempotency_key: f.cle,
            },
        )
        .await?)
}
