//! The phone on the desk (`/telephone`): while an agent keeps this page open, a call ringing
//! at their extension shows who calls before they pick up — the record, the candidates, or
//! « numéro inconnu » with a new record one click away —, live over server-sent events.

use crate::pages::{chrome, pick, Page};
use crate::session::Caller;
use crate::view::{url_encode, Chrome, Commune};
use crate::{render, Failure, State};
use askama::Template;
use axum::extract::{Form, Path, Query, State as Axum};
use axum::response::sse::{Event, KeepAlive, Sse};
use contacthub_app::telephony::{CallState, Caller as Who, Pop};
use serde::Deserialize;
use std::convert::Infallible;

#[derive(Template)]
#[template(path = "telephone.html")]
pub struct PhonePage {
    pub chrome: Chrome,
    pub communes: Vec<Commune>,
    pub tenant: String,
}

#[derive(Deserialize)]
pub struct PhoneQuery {
    #[serde(default)]
    commune: String,
}

/// The page an agent keeps open beside their work.
pub async fn phone(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<PhoneQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    caller.scope(&desk, &tenant)?;
    Ok(render(&PhonePage {
        chrome: chrome(&caller, &desk, "telephone"),
        communes,
        tenant,
    }))
}

/// A call as the page shows it.
#[derive(Template)]
#[template(path = "call.html")]
pub struct CallFragment {
    pub tenant: String,
    /// « Appel entrant », « En ligne », « Appel terminé ».
    pub state: &'static str,
    pub number: String,
    /// One record: (id, name).
    pub known: Option<(String, String)>,
    /// Several records: (id, name) each.
    pub candidates: Vec<(String, String)>,
    pub withheld: bool,
    /// The link to a new record with the number filled in.
    pub new_record: String,
    /// Once the call ended: where its motive is posted, with the session's CSRF token, and
    /// the categories to choose from (code, label).
    pub note_action: String,
    pub csrf: String,
    pub categories: Vec<(i32, String)>,
}

fn fragment(tenant: &str, csrf: &str, pop: Pop) -> CallFragment {
    let state = match pop.state {
        CallState::Ringing => "Appel entrant",
        CallState::Answered => "En ligne",
        CallState::Ended => "Appel terminé",
    };
    let mut f = CallFragment {
        tenant: tenant.to_string(),
        state,
        number: String::new(),
        known: None,
        candidates: Vec::new(),
        withheld: false,
        new_record: String::new(),
        note_action: String::new(),
        csrf: csrf.to_string(),
        categories: (1..=9)
            .map(|c| (c, contacthub_core::accueil::motive_fr(c, "")))
            .collect(),
    };
    if pop.state == CallState::Ended && !matches!(pop.caller, Who::Withheld) {
        f.note_action = format!(
            "/telephone/{}/appels/{}/motif",
            url_encode(tenant),
            url_encode(&pop.contact_event_id)
        );
    }
    match pop.caller {
        Who::Withheld => f.withheld = true,
        Who::Unknown { number } => {
            f.new_record = format!(
                "/fiches/nouvelle?commune={}&q={}",
                url_encode(tenant),
                url_encode(&number)
            );
            f.number = number;
        }
        Who::Known {
            number,
            citizen_id,
            name,
        } => {
            f.number = number;
            // A record the number made itself (a provisional one) has no name yet.
            let name = if name.trim().is_empty() {
                "(sans nom)".to_string()
            } else {
                name
            };
            f.known = Some((citizen_id, name));
        }
        Who::Candidates { number, records } => {
            f.number = number;
            f.candidates = records;
        }
    }
    f
}

/// The calls ringing at the agent's extensions, as HTML fragments (`appel` events).
pub async fn live(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, Failure> {
    let scope = caller.scope(&desk, &tenant)?;
    let csrf = caller.session.csrf.clone();
    let (guard, stopping) = caller.live_stream(&desk)?;
    let rx = desk.app.watch_calls(&scope, stopping)?;
    let stream = futures::StreamExt::filter_map(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        move |pop| {
            let _guard = &guard;
            let tenant = tenant.clone();
            let csrf = csrf.clone();
            async move {
                let Ok(pop) = pop else {
                    return Some(Ok(Event::default()
                        .event("reload")
                        .data("Rechargez la page : des appels ont pu être manqués.")));
                };
                let html = fragment(&tenant, &csrf, pop).render().ok()?;
                Some(Ok(Event::default().event("appel").data(html)))
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    category: i32,
    #[serde(default)]
    motif: String,
}

/// The call's motive, in one step after it ended: then the caller's page.
pub async fn note(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, event)): Path<(String, String)>,
    Form(f): Form<NoteForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let category = contacthub_core::pb::Category::try_from(f.category)
        .ok()
        .filter(|c| *c != contacthub_core::pb::Category::Unspecified)
        .unwrap_or(contacthub_core::pb::Category::Other);
    let citizen = desk
        .app
        .note_contact(&scope, &event, category, &f.motif)
        .await?;
    Ok(crate::pages::see_other(&format!(
        "/citoyens/{}/{}",
        url_encode(&tenant),
        url_encode(&citizen)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> String {
        let pop = Pop {
            call: "c1".into(),
            caller: Who::Known {
                number: "04 78 12 34 56".into(),
                citizen_id: "GIV-P000004".into(),
                name: name.into(),
            },
            state: CallState::Ringing,
            at_us: 0,
            contact_event_id: String::new(),
        };
        fragment("69091", "csrf", pop).render().unwrap()
    }

    #[test]
    fn a_record_with_no_name_yet_is_opened_by_its_number() {
        let page = known("  ");
        assert!(page.contains("Ouvrir la fiche GIV-P000004"), "{page}");
        assert!(
            page.contains("(sans nom)") && !page.contains("fiche de "),
            "{page}"
        );
        assert!(known("Marie Durand").contains("Ouvrir la fiche de Marie Durand"));
    }
}
