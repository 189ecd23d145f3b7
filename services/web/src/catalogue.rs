//! The catalogue of validated answers: search it from the desk, read an answer, write or
//! revise one, withdraw it. Answers are linked into a request's written answer from the
//! request page.

use crate::pages::{chrome, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode};
use crate::{render, State};
use axum::extract::{Path, Query, State as Axum};
use axum::Form;
use contacthub_app::catalogue::Draft;
use contacthub_core::pb;
use serde::Deserialize;

pub(crate) fn answer_url(tenant: &str, id: &str) -> String {
    format!("/catalogue/{}/{}", url_encode(tenant), url_encode(id))
}

fn item(a: &pb::CatalogueAnswer) -> view::CatalogueItem {
    view::CatalogueItem {
        url: answer_url(&a.tenant, &a.answer_id),
        id: a.answer_id.clone(),
        title: a.title.clone(),
        demarche: a.demarche.clone(),
        service: a.service.clone(),
        owner: a.owner.clone(),
        reviewed_on: chrono::NaiveDate::parse_from_str(&a.reviewed_on, "%Y-%m-%d")
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|_| a.reviewed_on.clone()),
        reviewed_iso: a.reviewed_on.clone(),
        text: a.text.clone(),
        withdrawn: a.withdrawn,
        version: a.version,
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    q: String,
}

pub async fn list(Axum(desk): Axum<State>, caller: Caller, Query(q): Query<ListQuery>) -> Page {
    let (communes, tenant) = pick(&desk, &caller, &q.commune)?;
    let scope = caller.scope(&desk, &tenant)?;
    let items = desk
        .app
        .catalogue(&scope, q.q.trim(), false)?
        .iter()
        .map(item)
        .collect();
    Ok(render(&view::CataloguePage {
        chrome: chrome(&caller, &desk, "catalogue"),
        communes,
        tenant,
        q: q.q,
        items,
        may_publish: scope.agent().is_none_or(|a| a.publishes_catalogue()),
    }))
}

#[derive(Deserialize, Default)]
pub struct Notice {
    #[serde(default)]
    avis: String,
}

pub async fn answer(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Query(n): Query<Notice>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let a = desk.app.catalogue_answer(&scope, &id)?;
    Ok(render(&view::AnswerPage {
        chrome: chrome(&caller, &desk, "catalogue"),
        tenant,
        a: item(&a),
        may_publish: scope.agent().is_none_or(|a| a.publishes_catalogue()),
        notice: match n.avis.as_str() {
            "publiee" => "Réponse publiée.".into(),
            "retiree" => "Réponse retirée du catalogue.".into(),
            _ => String::new(),
        },
    }))
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    demarche: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    reviewed_on: String,
    #[serde(default)]
    withdraw: bool,
}

pub async fn publish(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Form(f): Form<AnswerForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let a = desk
        .app
        .publish_answer(
            &scope,
            &Draft {
                answer_id: f.id,
                demarche: f.demarche,
                service: f.service,
                title: f.title,
                text: f.text,
                owner: f.owner,
                reviewed_on: f.reviewed_on,
                withdrawn: f.withdraw,
            },
        )
        .await?;
    Ok(see_other(&format!(
        "{}?avis={}",
        answer_url(&tenant, &a.answer_id),
        if a.withdrawn { "retiree" } else { "publiee" }
    )))
}
