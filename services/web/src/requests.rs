//! Requests to their written answer: the worklist of a service, a request's page, composing
//! and sending the answer, closing.

use crate::pages::{chrome, now, pick, see_other, CsrfForm, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, RequestRow};
use crate::{render, State};
use axum::extract::{Path, Query, State as Axum};
use axum::response::IntoResponse;
use axum::Form;
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_core::render::channel_fr;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct WorklistQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    retard: bool,
    #[serde(default)]
    avis: String,
}

pub async fn worklist(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<WorklistQuery>,
) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let now = now(&desk);
    let list = desk.app.list_requests(
        &scope,
        &commands::RequestQuery {
            service: q.service.trim().into(),
            open_only: true,
            overdue_only: q.retard,
            limit: 500,
            ..Default::default()
        },
    )?;
    let commune = desk.app.tenants().get(&tenant);
    let mut names: std::collections::HashMap<String, String> = Default::default();
    let mut rows = Vec::new();
    let mut answered = Vec::new();
    for r in &list {
        let mut row = RequestRow::of(r, now).named(commune, &r.service);
        if let Some(first) = r.requesters.first() {
            if !names.contains_key(first) {
                let name = desk
                    .app
                    .citizen(&scope, first)
                    .map(|c| c.display_name)
                    .unwrap_or_default();
                names.insert(first.clone(), name);
            }
            match names.get(first).map(String::as_str) {
                Some("") | None => {}
                Some(name) => row.requester = name.to_string(),
            }
        }
        if row.answered {
            answered.push(row);
        } else {
            rows.push(row);
        }
    }
    // Overdue first, then oldest due first (the order of the list).
    rows.sort_by_key(|r| std::cmp::Reverse(r.overdue));
    let me = scope.agent().map(|a| a.id.clone()).unwrap_or_default();
    Ok(render(&view::Worklist {
        chrome: chrome(&caller, &desk, "demandes"),
        colleagues: desk.app.colleagues(&scope),
        me,
        services: crate::pages::services(&desk, &tenant),
        communes,
        tenant,
        service: q.service,
        overdue_only: q.retard,
        rows,
        answered,
        notice: match q.avis.as_str() {
            "attribuee" => "Demande attribuée.".into(),
            n if n.starts_with("closes-") => {
                format!("Demandes clôturées : {}.", &n["closes-".len()..])
            }
            _ => String::new(),
        },
    }))
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    /// The agent it goes to (the caller for « m'attribuer »).
    #[serde(default)]
    agent: String,
    /// Back to the worklist rather than the request's page.
    #[serde(default)]
    retour: String,
}

/// Gives a request to an agent: the caller (« m'attribuer ») or a colleague.
pub async fn assign(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<AssignForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let to = match (f.agent.trim(), scope.agent()) {
        ("", Some(me)) => me.id.clone(),
        ("", None) => {
            return Err(crate::Failure {
                status: axum::http::StatusCode::BAD_REQUEST,
                message: "Choisissez l'agent à qui attribuer la demande.".into(),
            })
        }
        (to, _) => to.to_string(),
    };
    desk.app
        .assign_request(
            &scope,
            &commands::AssignRequest {
                reference: reference.clone(),
                assignee_agent_id: to,
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&if f.retour == "liste" {
        format!("/demandes?commune={}&avis=attribuee", url_encode(&tenant))
    } else {
        format!(
            "/demandes/{}/{}?avis=attribuee",
            url_encode(&tenant),
            url_encode(&reference)
        )
    }))
}

/// Closes the answered requests ticked on the worklist (`ref=…` repeated), each checked.
pub async fn close_answered(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    body: String,
) -> Page {
    let mut csrf = String::new();
    let mut references = Vec::new();
    for pair in body.split('&') {
        match pair.split_once('=') {
            Some(("csrf", v)) => csrf = v.to_string(),
            Some(("ref", v))
                if !v.is_empty()
                    && v.len() <= 64
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                references.push(v.to_string())
            }
            _ => {}
        }
    }
    caller.check_csrf(&csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    if references.is_empty() || references.len() > 500 {
        return Err(crate::Failure {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "Cochez les demandes répondues à clôturer.".into(),
        });
    }
    for reference in &references {
        desk.app
            .close_request(
                &scope,
                &commands::CloseRequest {
                    reference: reference.clone(),
                    reason: pb::CloseReason::Answered,
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(see_other(&format!(
        "/demandes?commune={}&avis=closes-{}",
        url_encode(&tenant),
        references.len()
    )))
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    avis: String,
}

pub async fn request(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Query(n): Query<Notice>,
) -> Page {
    request_page(
        &desk,
        &caller,
        &tenant,
        &reference,
        &n.avis,
        view::Compose::default(),
    )
}

/// A request's page, with the answer being written as the agent left it.
fn request_page(
    desk: &State,
    caller: &Caller,
    tenant: &str,
    reference: &str,
    avis: &str,
    compose: view::Compose,
) -> Page {
    let (desk, tenant, reference) = (desk.clone(), tenant.to_string(), reference.to_string());
    let scope = caller.scope(&desk, &tenant)?;
    let r = desk.app.get_request(&scope, &reference)?;
    let now = now(&desk);
    let mut requesters = Vec::new();
    // The written channel the first requester prefers, if they consented to it.
    let mut preferred = String::new();
    for id in &r.requesters {
        let citizen = desk.app.citizen(&scope, id).ok();
        if preferred.is_empty() {
            preferred = citizen
                .as_ref()
                .and_then(|c| c.identity.as_ref())
                .and_then(contacthub_core::outbound::preferred_channel)
                .map(|c| channel_fr(c as i32).to_string())
                .unwrap_or_default();
        }
        let name = citizen.map(|c| c.display_name).unwrap_or_default();
        requesters.push(view::Member {
            url: format!("/citoyens/{}/{}", url_encode(&tenant), url_encode(id)),
            name: if name.is_empty() { id.clone() } else { name },
            role: id.clone(),
        });
    }
    let answered = r.answered_at.is_some();
    // A refused answer is the page again, with what stops it: 422.
    let status = if compose.error.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, render(&view::RequestPage {
        compose,
        colleagues: desk.app.colleagues(&scope),
        chrome: chrome(caller, &desk, "demandes"),
        tenant: tenant.clone(),
        r: RequestRow::of(&r, now).named(desk.app.tenants().get(&tenant), &r.service),
        follow_up_code: r.follow_up_code.clone(),
        requesters,
        first_contact: view::micros(&r.first_contact_at)
            .map(view::when)
            .unwrap_or_default(),
        answer: if answered {
            format!(
                "le {} par {} ({})",
                view::micros(&r.answered_at)
                    .map(view::when)
                    .unwrap_or_default(),
                channel_fr(r.answer_channel),
                r.answer_ref
            )
        } else {
            String::new()
        },
        closing: view::RequestPage::closing_of(&r),
        chrono: r.chrono.clone(),
        on_behalf_of: r.on_behalf_of.clone(),
        open: r.status != pb::RequestStatus::Closed as i32,
        answered: r.status == pb::RequestStatus::Answered as i32,
        history: r
            .history
            .iter()
            .map(|h| view::Step {
                when: view::micros(&h.at).map(view::when).unwrap_or_default(),
                kind: contacthub_core::render::step_fr(&h.kind).to_string(),
                agent: h.agent_id.clone(),
                note: match h.kind.as_str() {
                    "assigned" if !h.note.is_empty() => format!("à {}", h.note),
                    "service" => desk
                        .app
                        .tenants()
                        .get(&tenant)
                        .map_or(h.note.clone(), |c| c.service_name(&h.note).to_string()),
                    _ => h.note.clone(),
                },
            })
            .collect(),
        notice: match avis {
            "ouverte" => "Demande ouverte.".into(),
            "attribuee" => "Demande attribuée.".into(),
            "repondue" => "Réponse enregistrée.".into(),
            "envoyee" => {
                "Réponse mise à l'envoi : son état (remise, nouvel essai, échec) est dans « Réponses écrites »."
                    .into()
            }
            "close" => "Demande clôturée.".into(),
            "rattache" => "Contact rattaché à la demande.".into(),
            _ => String::new(),
        },
        catalogue: desk
            .app
            .catalogue(&scope, "", false)?
            .into_iter()
            .map(|a| (a.answer_id, a.title, a.text))
            .collect(),
        // Of a need-to-know matter of another service, nothing of its answers.
        sent: if r.withheld_service.is_empty() {
            desk.app
                .list_answers(&scope, &reference)?
                .iter()
                .map(view::SentAnswer::of)
                .collect()
        } else {
            Vec::new()
        },
        send_key: crate::session::random_hex(),
        preferred,
    }))
        .into_response())
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    csrf: String,
    /// Empty: the citizen's preferred channel.
    #[serde(default)]
    channel: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    catalogue: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    letter: Option<String>,
    /// Given by the page: a second click sends one answer.
    #[serde(default)]
    key: String,
    /// Present when « Prévisualiser » was pressed.
    #[serde(default)]
    apercu: Option<String>,
}

/// The written channel an answer form names (`courriel`, `sms`, `courrier`, `portail`).
fn written_channel(name: &str) -> Option<pb::Channel> {
    match name {
        "courriel" => Some(pb::Channel::Email),
        "sms" => Some(pb::Channel::Sms),
        "courrier" => Some(pb::Channel::Courrier),
        "portail" => Some(pb::Channel::WebForm),
        _ => None,
    }
}

/// Composes a written answer: previews it (« Prévisualiser ») or puts it in the outbox. What
/// stops it (no consent, a missing address, a text too long for an SMS…) is said on the page,
/// in French, with everything typed kept.
pub async fn send_answer(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<SendForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    // Empty: the citizen's preferred channel.
    let channel = written_channel(&f.channel).unwrap_or(pb::Channel::Unspecified);
    let asked = commands::ComposeAnswer {
        reference: reference.clone(),
        channel,
        channel_reason: f.reason.clone(),
        subject: f.subject.clone(),
        text: f.text.clone(),
        catalogue_answer_id: f.catalogue.clone(),
        attach_letter: f.letter.is_some(),
        idempotency_key: f.key.clone(),
    };
    let mut compose = view::Compose {
        channel: f.channel.clone(),
        reason: f.reason.clone(),
        subject: f.subject.clone(),
        text: f.text.clone(),
        catalogue: f.catalogue.clone(),
        letter: f.letter.is_some(),
        ..Default::default()
    };
    let refused = |e: contacthub_app::Error| match e {
        contacthub_app::Error::Invalid(m) => Ok(m),
        e => Err(crate::Failure::from(e)),
    };
    if f.apercu.is_some() {
        match desk.app.preview_answer(&scope, &asked) {
            Ok(p) => {
                let service = desk
                    .app
                    .get_request(&scope, &reference)
                    .map(|r| r.service)
                    .unwrap_or_default();
                compose.preview = Some(preview_of(&desk, &tenant, &service, p));
            }
            Err(e) => compose.error = refused(e)?,
        }
        return request_page(&desk, &caller, &tenant, &reference, "", compose);
    }
    match desk.app.send_answer(&scope, &asked).await {
        Ok(_) => Ok(see_other(&format!(
            "/demandes/{}/{}?avis=envoyee",
            url_encode(&tenant),
            url_encode(&reference)
        ))),
        Err(e) => {
            compose.error = refused(e)?;
            request_page(&desk, &caller, &tenant, &reference, "", compose)
        }
    }
}

/// What the agent reads before sending: the letter's paragraphs as printed (salutation,
/// text, closing, signature: [`contacthub_documents::letter_body`]), or the e-mail's or
/// SMS's text as sent.
fn preview_of(desk: &State, tenant: &str, service: &str, p: pb::AnswerPreview) -> view::Preview {
    let letter = !p.letter_pdf.is_empty();
    let paragraphs = match (letter, desk.app.tenants().get(tenant)) {
        (true, Some(commune)) => contacthub_documents::letter_body(
            &pb::Answer {
                text: p.text.clone(),
                ..Default::default()
            },
            commune,
            service,
        ),
        _ => p.text.lines().map(str::to_string).collect(),
    };
    view::Preview {
        channel: channel_fr(p.channel),
        recipient: match pb::Channel::try_from(p.channel) {
            Ok(pb::Channel::Sms) => contacthub_core::identity::display_phone(&p.recipient),
            _ => p.recipient,
        },
        postal_lines: p.postal_lines,
        subject: p.subject,
        paragraphs,
        sms_segments: p.sms_segments,
        letter,
    }
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    answer_ref: String,
    /// A validated answer of the catalogue the written answer follows.
    #[serde(default)]
    catalogue: String,
}

pub async fn answer(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<AnswerForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let channel = written_channel(&f.channel).unwrap_or(pb::Channel::Courrier);
    let answer_ref = desk
        .app
        .answer_ref(&scope, f.answer_ref.trim(), f.catalogue.trim())?;
    desk.app
        .record_answer(
            &scope,
            &commands::RecordAnswer {
                reference: reference.clone(),
                answer_channel: channel,
                answer_ref,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=repondue",
        url_encode(&tenant),
        url_encode(&reference)
    )))
}

pub async fn close(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, reference)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    desk.app
        .close_request(
            &scope,
            &commands::CloseRequest {
                reference: reference.clone(),
                reason: pb::CloseReason::Answered,
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=close",
        url_encode(&tenant),
        url_encode(&reference)
    )))
}
