//! The hub's operation on the desk (`/exploitation`), for ops agents: the log and the
//! projector (positions, lag, what is wrong), dead letters, and each connector per commune —
//! what it took and refused, its last success, its last error. No personal data.

use crate::pages::{chrome, Page};
use crate::session::Caller;
use crate::{render, State};
use askama::Template;
use axum::extract::State as Axum;
use contacthub_core::pb;

/// A connector as the page shows it.
pub struct Connector {
    pub name: String,
    pub commune: String,
    pub accepted: u64,
    pub refused: u64,
    /// « 04/12/2026 22:10 », or « jamais ».
    pub last_success: String,
    /// « 04/12/2026 22:11 : not w.c.s. form data », or empty.
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "exploitation.html")]
pub struct OperationPage {
    pub chrome: crate::view::Chrome,
    pub status: pb::GetStatusResponse,
    pub lag: u64,
    pub connectors: Vec<Connector>,
}

/// « 04/12/2026 22:10 » (Paris).
fn when(t: &Option<contacthub_proto::Timestamp>) -> Option<String> {
    t.as_ref()
        .and_then(contacthub_proto::ts::to_micros)
        .map(|us| {
            contacthub_core::courrier::paris(us)
                .format("%d/%m/%Y %H:%M")
                .to_string()
        })
}

/// `GET /exploitation`.
pub async fn page(Axum(desk): Axum<State>, caller: Caller) -> Page {
    let ops = desk.app.access().ops_for(caller.session.credential())?;
    let status = desk.app.status().await;
    let connectors = desk
        .app
        .connectors(&ops)
        .into_iter()
        .map(|c| Connector {
            commune: desk
                .app
                .tenants()
                .get(&c.tenant)
                .map_or_else(|| c.tenant.clone(), |t| t.name.clone()),
            last_success: when(&c.last_success).unwrap_or_else(|| "jamais".into()),
            last_error: when(&c.last_error)
                .map(|at| format!("{at} : {}", c.last_error_reason))
                .unwrap_or_default(),
            name: c.connector,
            accepted: c.accepted,
            refused: c.refused,
        })
        .collect();
    Ok(render(&OperationPage {
        chrome: chrome(&caller, &desk, "exploitation"),
        lag: status.partitions.iter().map(|p| p.lag).sum(),
        status,
        connectors,
    }))
}
