//! The Open311 GeoReport v2 endpoints (`/open311/v2/{commune}/…`): the services, a report
//! posted with an application's `api_key`, where reports stand. The shapes are
//! [`crate::open311`]'s; this file only reads the call and answers it.

use super::Endpoints;
use crate::Input;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use contacthub_app::auth::{token_hash, System};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// A GeoReport answer: `status` and a JSON body.
fn georeport(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A GeoReport refusal: its status and error body.
type Refusal = (StatusCode, serde_json::Value);

fn refused((status, body): Refusal) -> Response {
    georeport(status, body)
}

/// The commune of an Open311 path, or its 404.
fn commune<'a>(
    e: &'a Endpoints,
    code: &str,
) -> Result<&'a contacthub_core::tenant::Tenant, Refusal> {
    e.ingest.app.tenants().get(code).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            crate::open311::error(404, "unknown commune"),
        )
    })
}

/// `GET /open311/v2/{commune}/services.json`.
pub(super) async fn services(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
) -> Response {
    match commune(&e, &code) {
        Ok(t) => georeport(StatusCode::OK, crate::open311::service_list(t)),
        Err(r) => refused(r),
    }
}

/// `POST /open311/v2/{commune}/requests.json`: a report from an application with its
/// `api_key`; the answer names the report (`service_request_id`) and when it will be answered.
pub(super) async fn report(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let commune = match commune(&e, &code) {
        Ok(t) => t,
        Err(r) => return refused(r),
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let key = form
        .iter()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| token_hash(v.trim()));
    let client = key.and_then(|h| {
        e.ingest.cfg.commune(&code).and_then(|c| {
            c.open311
                .iter()
                .find(|a| bool::from(a.api_key_sha256.as_bytes().ct_eq(h.as_bytes())))
        })
    });
    let Some(client) = client else {
        return georeport(
            StatusCode::FORBIDDEN,
            crate::open311::error(403, "api_key is missing or not valid for this commune"),
        );
    };
    let origin = format!("open311:{}", client.name);
    let input = Input {
        bytes: &body,
        origin: &origin,
        tenant: Some(&code),
        received_us: e.ingest.app.now(),
    };
    let summary = match e.ingest.run(&e.channels.open311, input).await {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(error = %err, "Open311 report not acknowledged");
            return georeport(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::open311::error(503, "not recorded, try again"),
            );
        }
    };
    if summary.accepted + summary.duplicates == 0 {
        let reason = summary
            .quarantined
            .first()
            .map_or("not recorded", |q| q.reason.as_str());
        return georeport(StatusCode::BAD_REQUEST, crate::open311::error(400, reason));
    }
    let id = crate::open311::report_id(&client.name, &form);
    let notice = match e.ingest.app.request_of_file(
        System::Adapters,
        &code,
        &format!("open311:{id}"),
    ) {
        Ok(Some(r)) => {
            let due = r
                .due_at
                .as_ref()
                .and_then(contacthub_proto::ts::to_micros)
                .map(|us| {
                    contacthub_core::courrier::paris(us)
                        .format("%d/%m/%Y")
                        .to_string()
                })
                .unwrap_or_default();
            format!(
                "Signalement enregistré par la mairie de {} ; réponse attendue au plus tard le {due}.",
                commune.name
            )
        }
        _ => format!("Signalement enregistré par la mairie de {}.", commune.name),
    };
    georeport(
        StatusCode::OK,
        serde_json::json!([{
            "service_request_id": id,
            "service_notice": notice,
            "account_id": null,
        }]),
    )
}

/// Where the reports `ids` stand (those the hub has; nothing personal).
fn statuses(e: &Endpoints, code: &str, ids: &[&str]) -> Result<Vec<serde_json::Value>, Refusal> {
    let commune = commune(e, code)?;
    let mut out = Vec::new();
    for id in ids {
        // Report ids are 24 hex digits: nothing else is looked up.
        if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        match e
            .ingest
            .app
            .request_of_file(System::Adapters, code, &format!("open311:{id}"))
        {
            Ok(Some(r)) => out.push(crate::open311::request_status(commune, id, &r)),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "Open311 status unreadable");
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    crate::open311::error(503, "try again"),
                ));
            }
        }
    }
    Ok(out)
}

/// `GET /open311/v2/{commune}/requests/{id}.json`.
pub(super) async fn request(
    State(e): State<Arc<Endpoints>>,
    Path((code, file)): Path<(String, String)>,
) -> Response {
    let id = file.strip_suffix(".json").unwrap_or(&file);
    match statuses(&e, &code, &[id]) {
        Ok(found) if found.is_empty() => georeport(
            StatusCode::NOT_FOUND,
            crate::open311::error(404, "no such service request"),
        ),
        Ok(found) => georeport(StatusCode::OK, serde_json::Value::Array(found)),
        Err(r) => refused(r),
    }
}

/// `GET /open311/v2/{commune}/requests.json?service_request_id=a,b`: the reports named (50
/// at most). Listing every report of a commune is not offered: each tells where a person
/// lives.
pub(super) async fn requests(
    State(e): State<Arc<Endpoints>>,
    Path(code): Path<String>,
    uri: Uri,
) -> Response {
    let ids: Vec<String> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "service_request_id")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .take(50)
        .collect();
    if ids.is_empty() {
        return georeport(
            StatusCode::BAD_REQUEST,
            crate::open311::error(400, "service_request_id is required (comma-separated ids)"),
        );
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    match statuses(&e, &code, &ids) {
        Ok(found) => georeport(StatusCode::OK, serde_json::Value::Array(found)),
        Err(r) => refused(r),
    }
}
