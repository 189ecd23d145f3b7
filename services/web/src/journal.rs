//! The data protection officer's page: the read trail (who read whose data, when, from where,
//! filtered by citizen and by agent) and the erasure of a person's data.

use crate::pages::{chrome, pick, Page};
use crate::session::Caller;
use crate::view::{self, when};
use crate::{render, State};
use axum::extract::{Form, Path, Query, State as Axum};
use contacthub_app::commands;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct JournalQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    usager: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    avis: String,
}

pub async fn journal(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<JournalQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.dpo_scope(&desk, &tenant)?;
    let (citizen, agent) = (q.usager.trim(), q.agent.trim());
    let rows = desk
        .app
        .reads(&scope, citizen, agent, 500)?
        .into_iter()
        .map(|r| view::ReadRow {
            when: when(r.at_us),
            agent: r.agent,
            what: r.what.fr().to_string(),
            citizen: r.citizen,
            object: r.object,
            from: if r.from.is_empty() {
                r.via.fr().to_string()
            } else {
                format!("{}, {}", r.via.fr(), r.from)
            },
        })
        .collect();
    Ok(render(&view::JournalPage {
        chrome: chrome(&caller, &desk, "journal"),
        communes,
        tenant,
        citizen: citizen.to_string(),
        agent: agent.to_string(),
        rows,
        notice: match q.avis.as_str() {
            "efface" => format!("Les données de {citizen} sont effacées."),
            _ => String::new(),
        },
    }))
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    usager: String,
    #[serde(default)]
    motif: String,
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    usager: String,
}

/// Everything held about a person, as a zip to download (the DPO of the commune only, as the
/// application layer checks).
pub async fn export(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Page {
    use axum::response::IntoResponse;
    let scope = caller.dpo_scope(&desk, &tenant)?;
    let citizen = q.usager.trim();
    let export = desk.app.export_citizen(&scope, citizen).await?;
    let file: String = citizen
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/zip".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"donnees-{file}.zip\""),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        export.zip,
    )
        .into_response())
}

/// Erases a person's data (the DPO of the commune only, as the application layer checks).
pub async fn erase(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Form(f): Form<EraseForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.dpo_scope(&desk, &tenant)?;
    let done = desk
        .app
        .erase_citizen(
            &scope,
            &commands::EraseCitizen {
                citizen_id: f.usager.trim().into(),
                reason: f.motif,
            },
        )
        .await?;
    Ok(crate::pages::see_other(&format!(
        "/journal?commune={}&usager={}&avis=efface",
        crate::view::url_encode(&tenant),
        crate::view::url_encode(&done.citizen_id)
    )))
}
