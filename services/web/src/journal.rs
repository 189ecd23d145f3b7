//! The read trail on the desk, for the data protection officer: who read whose data, when,
//! from where, filtered by citizen and by agent.

use crate::pages::{chrome, pick, Page};
use crate::session::Caller;
use crate::view::{self, when};
use crate::{render, State};
use axum::extract::{Query, State as Axum};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct JournalQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    usager: String,
    #[serde(default)]
    agent: String,
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
    }))
}
