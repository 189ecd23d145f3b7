//! The élus' and services' dashboard, on the page and as CSV.

use crate::pages::{chrome, now, pick, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, Commune};
use crate::{render, Failure, State};
use axum::extract::{Query, State as Axum};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use contacthub_core::dashboard as dash;
use contacthub_core::pb;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct DashboardQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    de: String,
    #[serde(default)]
    a: String,
}

/// The dashboard asked for: the commune, and the period (by default the last twelve months).
fn dashboard_of(
    desk: &State,
    caller: &Caller,
    q: &DashboardQuery,
) -> Result<(Vec<Commune>, pb::Dashboard), Failure> {
    let (communes, tenant) = pick(desk, caller, &q.commune)?;
    caller.for_dashboard(desk, &tenant)?;
    let (from, to) = dash::period(&q.de, &q.a, now(desk)).map_err(|m| Failure {
        status: StatusCode::BAD_REQUEST,
        message: format!("Période incorrecte : {m}"),
    })?;
    let d = desk.app.dashboard(&pb::GetDashboardRequest {
        tenant,
        from_month: from,
        to_month: to,
    })?;
    Ok((communes, d))
}

fn pct(x: f64) -> String {
    format!("{x:.1} %").replace('.', ",")
}

pub async fn dashboard(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<DashboardQuery>,
) -> Page {
    let (communes, d) = dashboard_of(&desk, &caller, &q)?;
    let whole = d
        .rows
        .iter()
        .find(|r| r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
        .and_then(|r| r.figures)
        .unwrap_or_default();
    let figures = vec![
        ("Contacts reçus", whole.contacts_received.to_string()),
        ("Demandes ouvertes", whole.requests_opened.to_string()),
        ("Demandes répondues", whole.requests_answered.to_string()),
        (
            "Répondues dans le délai",
            pct(whole.answered_in_time_percent),
        ),
        (
            "Délai de réponse médian",
            format!("{} j", whole.p50_days_to_answer),
        ),
        (
            "Délai pour 90 % des réponses",
            format!("{} j", whole.p90_days_to_answer),
        ),
        ("En retard aujourd'hui", whole.overdue_now.to_string()),
        ("Courriers tracés", pct(whole.letters_traced_percent)),
        ("Appels manqués", pct(whole.missed_call_percent)),
        (
            "Appels renvoyés à l'accueil",
            pct(whole.bounce_back_percent),
        ),
    ];
    let months: Vec<(String, u64, u64)> = d
        .rows
        .iter()
        .filter(|r| !r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
        .map(|r| {
            let f = r.figures.unwrap_or_default();
            (r.month.clone(), f.requests_opened, f.requests_answered)
        })
        .collect();
    let row = |label: String, f: pb::DashboardFigures| view::DashRow {
        label,
        opened: f.requests_opened,
        answered: f.requests_answered,
        in_time: pct(f.answered_in_time_percent),
        p50: f.p50_days_to_answer,
        p90: f.p90_days_to_answer,
        overdue: f.overdue_now,
    };
    let mut tables = vec![view::DashTable {
        caption: "Par mois",
        overdue: false,
        rows: d
            .rows
            .iter()
            .filter(|r| !r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
            .map(|r| row(r.month.clone(), r.figures.unwrap_or_default()))
            .collect(),
    }];
    for (dim, caption) in [
        (dash::DIM_CHANNEL, "Par canal"),
        (dash::DIM_CATEGORY, "Par catégorie"),
        (dash::DIM_SERVICE, "Par service"),
    ] {
        tables.push(view::DashTable {
            caption,
            overdue: true,
            rows: d
                .rows
                .iter()
                .filter(|r| r.month.is_empty() && r.dimension == dim)
                .map(|r| row(r.label.clone(), r.figures.unwrap_or_default()))
                .collect(),
        });
    }
    let csv_url = format!(
        "/tableau-de-bord.csv?commune={}&de={}&a={}",
        url_encode(&d.tenant),
        url_encode(&d.from_month),
        url_encode(&d.to_month)
    );
    Ok(render(&view::DashboardPage {
        chrome: chrome(&caller, &desk, "tableau"),
        communes,
        tenant: d.tenant.clone(),
        from: d.from_month.clone(),
        to: d.to_month.clone(),
        figures,
        chart: crate::chart::bars(&months),
        tables,
        recurring: d
            .recurring
            .iter()
            .map(|p| {
                (
                    dash::dimension_fr(&p.kind).to_string(),
                    p.label.clone(),
                    p.requests,
                )
            })
            .collect(),
        csv_url,
    }))
}

pub async fn dashboard_csv(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<DashboardQuery>,
) -> Page {
    let (_, d) = dashboard_of(&desk, &caller, &q)?;
    let name = format!(
        "tableau-de-bord-{}-{}-{}.csv",
        d.tenant, d.from_month, d.to_month
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        // A byte-order mark, so spreadsheets read the accents as UTF-8.
        format!("\u{feff}{}", dash::csv(&d)),
    )
        .into_response())
}
