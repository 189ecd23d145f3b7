//! The élus' and services' dashboard, on the page and as CSV.

use crate::pages::{chrome, now, pick, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, Commune};
use crate::{render, Failure, State};
use axum::extract::{Query, State as Axum};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use contacthub_app::commands;
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
    /// Beside each key figure, the same months a year before.
    #[serde(default)]
    comparer: bool,
}

/// The dashboard asked for: the commune, and the period (by default the last twelve months).
fn dashboard_of(
    desk: &State,
    caller: &Caller,
    q: &DashboardQuery,
) -> Result<(Vec<Commune>, pb::Dashboard), Failure> {
    let (communes, tenant) = pick(desk, caller, &q.commune)?;
    let scope = caller.dashboard_scope(desk, &tenant)?;
    let (from, to) = dash::period(&q.de, &q.a, now(desk)).map_err(|m| Failure {
        status: StatusCode::BAD_REQUEST,
        message: format!("Période incorrecte : {m}"),
    })?;
    let d = desk.app.dashboard(
        &scope,
        &commands::DashboardQuery {
            from_month: from,
            to_month: to,
        },
    )?;
    Ok((communes, d))
}

/// A share in French (« 87,5 % »), or « — » when there is nothing to count.
fn pct(x: f64, of: u64) -> String {
    if of == 0 {
        "—".into()
    } else {
        contacthub_core::render::percent_fr(x)
    }
}

/// Days to answer, or « — » when nothing was answered.
fn days(d: u32, answered: u64) -> String {
    if answered == 0 {
        "—".into()
    } else {
        format!("{d} j")
    }
}

/// Days to the first free slot (« 2,5 j »), or « — » when none is free.
fn first_free(d: Option<f64>) -> String {
    d.map_or("—".into(), |d| {
        format!("{} j", contacthub_core::render::decimal_fr(d))
    })
}

/// The key figures of a period, as the page shows them.
fn key_figures(f: &pb::DashboardFigures) -> Vec<(&'static str, String)> {
    vec![
        ("Contacts reçus", f.contacts_received.to_string()),
        ("Demandes ouvertes", f.requests_opened.to_string()),
        ("Demandes répondues", f.requests_answered.to_string()),
        (
            "Répondues dans le délai",
            pct(f.answered_in_time_percent, f.requests_answered),
        ),
        (
            "Délai de réponse médian",
            days(f.p50_days_to_answer, f.requests_answered),
        ),
        (
            "Délai pour 90 % des réponses",
            days(f.p90_days_to_answer, f.requests_answered),
        ),
        ("En retard aujourd'hui", f.overdue_now.to_string()),
        (
            "Courriers tracés",
            pct(f.letters_traced_percent, f.letters_registered),
        ),
        (
            "Appels manqués",
            pct(f.missed_call_percent, f.calls_inbound),
        ),
        (
            "Appels renvoyés à l'accueil",
            pct(f.bounce_back_percent, f.calls_inbound),
        ),
        ("Rendez-vous pris", f.appointments.to_string()),
        ("Absences aux rendez-vous", f.no_shows.to_string()),
        (
            "Premier créneau libre",
            first_free(f.days_to_first_free_slot),
        ),
    ]
}

/// The same months a year before.
fn year_before(month: &str) -> String {
    match month.split_once('-') {
        Some((y, m)) => match y.parse::<i32>() {
            Ok(y) => format!("{:04}-{m}", y - 1),
            Err(_) => month.to_string(),
        },
        None => month.to_string(),
    }
}

/// The period presets: (label, from, to), from the current month.
fn presets(now_us: i64) -> Vec<(&'static str, String, String)> {
    let this = dash::month_of(now_us);
    let year = this.get(..4).unwrap_or("2026").to_string();
    let last_year = year
        .parse::<i32>()
        .map_or(year.clone(), |y| (y - 1).to_string());
    let (twelve_from, _) = dash::period("", &this, now_us).unwrap_or_default();
    vec![
        ("Ce mois", this.clone(), this.clone()),
        ("12 derniers mois", twelve_from, this.clone()),
        ("Année civile", format!("{year}-01"), this),
        (
            "Année précédente",
            format!("{last_year}-01"),
            format!("{last_year}-12"),
        ),
    ]
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
    let mut figures: Vec<(&'static str, String, String)> = key_figures(&whole)
        .into_iter()
        .map(|(k, v)| (k, v, String::new()))
        .collect();
    if q.comparer {
        let scope = caller.dashboard_scope(&desk, &d.tenant)?;
        let before = desk.app.dashboard(
            &scope,
            &commands::DashboardQuery {
                from_month: year_before(&d.from_month),
                to_month: year_before(&d.to_month),
            },
        )?;
        let then = before
            .rows
            .iter()
            .find(|r| r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
            .and_then(|r| r.figures)
            .unwrap_or_default();
        for (f, (_, v)) in figures.iter_mut().zip(key_figures(&then)) {
            // These two are of today, not of a period.
            if f.0 != "En retard aujourd'hui" && f.0 != "Premier créneau libre" {
                f.2 = v;
            }
        }
    }
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
        in_time: pct(f.answered_in_time_percent, f.requests_answered),
        p50: days(f.p50_days_to_answer, f.requests_answered),
        p90: days(f.p90_days_to_answer, f.requests_answered),
        overdue: f.overdue_now,
    };
    let mut tables = vec![view::DashTable {
        caption: "Par mois",
        overdue: false,
        rows: d
            .rows
            .iter()
            .filter(|r| !r.month.is_empty() && r.dimension == dash::DIM_COMMUNE)
            .map(|r| {
                row(
                    contacthub_core::render::month_fr(&r.month),
                    r.figures.unwrap_or_default(),
                )
            })
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
    let appointments = d
        .rows
        .iter()
        .filter(|r| r.month.is_empty() && r.dimension == dash::DIM_SERVICE)
        .filter_map(|r| {
            let f = r.figures?;
            (f.appointments > 0 || f.days_to_first_free_slot.is_some()).then(|| {
                (
                    r.label.clone(),
                    f.appointments,
                    f.appointments_cancelled,
                    f.no_shows,
                    first_free(f.days_to_first_free_slot),
                )
            })
        })
        .collect();
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
        period: format!(
            "De {} à {}",
            contacthub_core::render::month_fr(&d.from_month),
            contacthub_core::render::month_fr(&d.to_month)
        ),
        compared: q.comparer,
        presets: presets(now(&desk))
            .into_iter()
            .map(|(label, from, to)| {
                (
                    label,
                    format!(
                        "/tableau-de-bord?commune={}&de={from}&a={to}",
                        url_encode(&d.tenant)
                    ),
                )
            })
            .collect(),
        compare_url: format!(
            "/tableau-de-bord?commune={}&de={}&a={}&comparer=true",
            url_encode(&d.tenant),
            url_encode(&d.from_month),
            url_encode(&d.to_month)
        ),
        figures,
        chart: crate::chart::bars(&months),
        tables,
        appointments,
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
