//! The accueil's figures (« fréquentation », `/accueil/rapport`): arrivals and calls by
//! weekday and hour as a heat map, waits and handling times, outcomes at the counter,
//! bounce-backs per service, contacts outside opening hours; as CSV too.

use crate::pages::{chrome, now, pick, Page};
use crate::session::Caller;
use crate::view::{url_encode, Chrome, Commune};
use crate::{render, Failure, State};
use askama::Template;
use axum::extract::{Query, State as Axum};
use axum::http::header;
use axum::response::IntoResponse;
use contacthub_core::accueil::{csv, weekday_fr};
use contacthub_core::pb;
use contacthub_core::render::percent_fr;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    de: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    site: String,
}

/// One row of the heat map: an hour, and per weekday its count and shade (0 to 4).
pub struct HeatRow {
    pub hour: u32,
    pub cells: Vec<(u64, u8)>,
}

#[derive(Template)]
#[template(path = "attendance.html")]
pub struct ReportPage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub from: String,
    pub to: String,
    pub site: String,
    pub sites: Vec<(String, String)>,
    pub r: pb::AccueilReport,
    pub weekdays: Vec<&'static str>,
    /// Arrivals at the counter, then calls: (title, rows).
    pub heatmaps: Vec<(&'static str, Vec<HeatRow>)>,
    /// Waits by motive, then by counter: (title, rows).
    pub waits: Vec<(&'static str, Vec<pb::WaitRow>)>,
    /// Per service: name, tickets sent to it, calls transferred, bounced back, their share.
    pub services: Vec<(String, u64, u64, u64, String)>,
    pub settled: String,
    pub transferred: String,
    pub bounced: String,
    pub csv_url: String,
}

/// A report with what the page offers to choose.
struct Asked {
    communes: Vec<Commune>,
    /// The commune's sites: (code, name).
    sites: Vec<(String, String)>,
    report: pb::AccueilReport,
}

/// The report asked for: by default the last 28 days to today (Paris time).
fn report_of(desk: &State, caller: &Caller, q: &ReportQuery) -> Result<Asked, Failure> {
    let (communes, tenant) = pick(desk, caller, &q.commune)?;
    let scope = caller.dashboard_scope(desk, &tenant)?;
    let today = contacthub_core::accueil::day_of(now(desk));
    let or = |s: &str, d: chrono::NaiveDate| {
        if s.trim().is_empty() {
            d.format("%Y-%m-%d").to_string()
        } else {
            s.trim().to_string()
        }
    };
    let from = or(&q.de, today - chrono::Duration::days(27));
    let to = or(&q.a, today);
    let r = desk.app.accueil_report(&scope, &from, &to, &q.site)?;
    let sites = desk
        .app
        .tenants()
        .get(&tenant)
        .map(|t| {
            t.sites
                .iter()
                .map(|s| (s.code.clone(), s.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Asked {
        communes,
        sites,
        report: r,
    })
}

/// The hours that have something, each with the seven weekdays' counts of `figure`.
fn heat(r: &pb::AccueilReport, figure: fn(&pb::HeatCell) -> u64) -> Vec<HeatRow> {
    let max = r.heat.iter().map(figure).max().unwrap_or(0);
    let mut hours: Vec<u32> = r
        .heat
        .iter()
        .filter(|c| figure(c) > 0)
        .map(|c| c.hour)
        .collect();
    hours.sort_unstable();
    hours.dedup();
    hours
        .into_iter()
        .map(|hour| HeatRow {
            hour,
            cells: (1..=7)
                .map(|d| {
                    let n = r
                        .heat
                        .iter()
                        .find(|c| c.weekday == d && c.hour == hour)
                        .map_or(0, figure);
                    let shade = if n == 0 || max == 0 {
                        0
                    } else {
                        (1 + n * 3 / max).min(4) as u8
                    };
                    (n, shade)
                })
                .collect(),
        })
        .collect()
}

pub async fn report(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<ReportQuery>) -> Page {
    let Asked {
        communes,
        sites,
        report: r,
    } = report_of(&desk, &caller, &q)?;
    let closed = r.settled + r.transferred + r.to_request;
    let share = |x: f64, of: u64| if of == 0 { "—".into() } else { percent_fr(x) };
    Ok(render(&ReportPage {
        chrome: chrome(&caller, &desk, "rapport"),
        communes,
        from: r.from.clone(),
        to: r.to.clone(),
        site: r.site.clone(),
        sites,
        weekdays: (1..=7).map(weekday_fr).collect(),
        heatmaps: vec![
            (
                "Arrivées au guichet par jour et heure",
                heat(&r, |c| c.arrivals),
            ),
            ("Appels reçus par jour et heure", heat(&r, |c| c.calls)),
        ],
        waits: vec![
            ("Attente et traitement par motif", r.by_motive.clone()),
            ("Attente et traitement par guichet", r.by_counter.clone()),
        ],
        services: r
            .by_service
            .iter()
            .map(|s| {
                (
                    s.service_name.clone(),
                    s.tickets_transferred,
                    s.calls_transferred,
                    s.calls_bounced,
                    share(s.bounce_back_percent, s.calls_transferred),
                )
            })
            .collect(),
        settled: share(r.settled_percent, closed),
        transferred: share(r.transferred_percent, closed),
        bounced: share(r.bounce_back_percent, r.calls),
        csv_url: format!(
            "/accueil/rapport.csv?commune={}&de={}&a={}&site={}",
            url_encode(&r.tenant),
            url_encode(&r.from),
            url_encode(&r.to),
            url_encode(&r.site)
        ),
        r,
    }))
}

pub async fn report_csv(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<ReportQuery>,
) -> Page {
    let r = report_of(&desk, &caller, &q)?.report;
    let name = format!("frequentation-{}-{}-{}.csv", r.tenant, r.from, r.to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        csv(&r),
    )
        .into_response())
}
