//! The print queue on the desk: the answer letters waiting to be printed and posted, printed
//! as one PDF, then marked printed (the request's written answer, by courrier) and, in the
//! same step if the agent says so, the requests closed.

use crate::pages::{chrome, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode};
use crate::{render, Failure, State};
use axum::extract::{Path, Query, State as Axum};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use contacthub_app::commands;
use contacthub_core::pb;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    avis: String,
}

pub async fn queue(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<QueueQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let letters = desk
        .app
        .print_queue(&scope)?
        .into_iter()
        .filter_map(|item| item.answer)
        .map(|a| view::Printable {
            id: a.answer_event_id.clone(),
            request_url: format!(
                "/demandes/{}/{}",
                url_encode(&tenant),
                url_encode(&a.request_reference)
            ),
            reference: a.request_reference.clone(),
            recipient: a.postal_lines.first().cloned().unwrap_or_default(),
            address: a
                .postal_lines
                .iter()
                .skip(1)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            subject: a.subject.clone(),
            written: view::micros(&a.composed_at)
                .map(view::when)
                .unwrap_or_default(),
        })
        .collect();
    Ok(render(&view::PrintQueue {
        chrome: chrome(&caller, &desk, "impression"),
        communes,
        tenant,
        letters,
        notice: match q.avis.split_once('-') {
            Some(("imprimees", n)) => format!("Lettres marquées imprimées et postées : {n}."),
            Some(("closes", n)) => {
                format!("Lettres marquées imprimées et postées, demandes clôturées : {n}.")
            }
            _ => String::new(),
        },
    }))
}

/// The form's `csrf`, the ticked letters (`lettre=…` repeated) and whether to close their
/// requests (`cloturer`).
struct Ticked {
    csrf: String,
    letters: Vec<String>,
    close: bool,
}

fn ticked(body: &str) -> Ticked {
    let mut t = Ticked {
        csrf: String::new(),
        letters: Vec::new(),
        close: false,
    };
    for pair in body.split('&') {
        match pair.split_once('=') {
            Some(("csrf", v)) => t.csrf = v.to_string(),
            Some(("lettre", v))
                if !v.is_empty()
                    && v.len() <= 128
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                t.letters.push(v.to_string())
            }
            Some(("cloturer", _)) => t.close = true,
            _ => {}
        }
    }
    t
}

fn none_ticked() -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        message: "Cochez les lettres à imprimer.".into(),
    }
}

/// The ticked letters in one PDF.
pub async fn pdf(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    body: String,
) -> Page {
    let t = ticked(&body);
    caller.check_csrf(&t.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    if t.letters.is_empty() {
        return Err(none_ticked());
    }
    let (pdf, _) = desk.app.print_batch(&scope, &t.letters)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"lettres-{tenant}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

/// The ticked letters were printed and posted: each is the written answer of its request;
/// with « clôturer », the requests are closed as answered.
pub async fn printed(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    body: String,
) -> Page {
    let t = ticked(&body);
    caller.check_csrf(&t.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    if t.letters.is_empty() {
        return Err(none_ticked());
    }
    // Only letters of the queue this agent sees.
    let (_, letters) = desk.app.print_batch(&scope, &t.letters)?;
    for a in &letters {
        desk.app
            .mark_printed(&scope, &a.answer_event_id, "")
            .await?;
        if t.close {
            desk.app
                .close_request(
                    &scope,
                    &commands::CloseRequest {
                        reference: a.request_reference.clone(),
                        reason: pb::CloseReason::Answered,
                        ..Default::default()
                    },
                )
                .await?;
        }
    }
    Ok(see_other(&format!(
        "/impression?commune={}&avis={}-{}",
        url_encode(&tenant),
        if t.close { "closes" } else { "imprimees" },
        letters.len()
    )))
}
