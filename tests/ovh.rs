//! OVHcloud SMS as a commune's gateway, on both log backends: a written answer by SMS leaves
//! through a local server speaking OVH's API (`POST /1.0/sms/{service}/jobs`, signed with the
//! application secret and the consumer key, which the server checks), with the commune's
//! sender; delivered with OVH's job id. A commune whose secret is wrong gets its answer failed
//! with the reason, not retried for ever. The SMS the account receives are read from its
//! `incoming` list (a « STOP » among them withdraws consent) and deleted there once on the
//! log; OVH's delivery report of a failed SMS, on the job's callBack URL, is a bounce, and a
//! report without the URL's token is refused.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::*;
use std::sync::{Arc, Mutex};

/// The jobs a fake OVH API took, the SMS waiting on its account, and where it listens.
#[derive(Clone, Default)]
struct Ovh {
    base: String,
    jobs: Arc<Mutex<Vec<serde_json::Value>>>,
    incoming: Arc<Mutex<std::collections::BTreeMap<i64, serde_json::Value>>>,
}

/// Whether a call is signed as OVH checks it (Givors' keys, made within the minute).
fn signed_right(o: &Ovh, headers: &HeaderMap, method: &str, path: &str, body: &str) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let url = format!("{}{path}", o.base);
    let ts: i64 = h("x-ovh-timestamp").parse().unwrap_or(0);
    let expected =
        contacthub_adapters::ovh::signature("AS-givors", "CK-givors", method, &url, body, ts);
    let fresh = (chrono::Utc::now().timestamp() - ts).abs() < 60;
    h("x-ovh-application") == "AK-givors" && h("x-ovh-signature") == expected && fresh
}

async fn incoming_list(
    State(o): State<Ovh>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if !signed_right(
        &o,
        &headers,
        "GET",
        &format!("/1.0/sms/{service}/incoming"),
        "",
    ) {
        return (
            StatusCode::FORBIDDEN,
            "{\"message\":\"Invalid signature\"}".into(),
        );
    }
    let ids: Vec<i64> = o.incoming.lock().unwrap().keys().copied().collect();
    (StatusCode::OK, serde_json::to_string(&ids).unwrap())
}

async fn incoming_one(
    State(o): State<Ovh>,
    Path((service, id)): Path<(String, i64)>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let path = format!("/1.0/sms/{service}/incoming/{id}");
    if !signed_right(&o, &headers, method.as_str(), &path, "") {
        return (
            StatusCode::FORBIDDEN,
            "{\"message\":\"Invalid signature\"}".into(),
        );
    }
    let mut waiting = o.incoming.lock().unwrap();
    match (method.as_str(), waiting.get(&id).cloned()) {
        ("GET", Some(sms)) => (StatusCode::OK, sms.to_string()),
        ("DELETE", Some(_)) => {
            waiting.remove(&id);
            (StatusCode::OK, "null".into())
        }
        _ => (StatusCode::NOT_FOUND, "{\"message\":\"not found\"}".into()),
    }
}

async fn job(
    State(o): State<Ovh>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if !signed_right(
        &o,
        &headers,
        "POST",
        &format!("/1.0/sms/{service}/jobs"),
        &body,
    ) {
        return (
            StatusCode::FORBIDDEN,
            "{\"message\":\"Invalid signature\"}".into(),
        );
    }
    let job: serde_json::Value = serde_json::from_str(&body).unwrap();
    let to = job["receivers"].clone();
    let mut jobs = o.jobs.lock().unwrap();
    jobs.push(job);
    (
        StatusCode::OK,
        serde_json::json!({"totalCreditsRemoved": 1, "invalidReceivers": [], "ids": [jobs.len() as i64 + 41], "validReceivers": to})
            .to_string(),
    )
}

/// The fake OVH API, listening.
async fn fake_ovh() -> Ovh {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Ovh {
        base: format!("http://{}", listener.local_addr().unwrap()),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/1.0/sms/{service}/jobs", post(job))
        .route("/1.0/sms/{service}/incoming", get(incoming_list))
        .route(
            "/1.0/sms/{service}/incoming/{id}",
            get(incoming_one).delete(incoming_one),
        )
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    fake
}

async fn ovh(backend: Backend) {
    let fake = fake_ovh().await;
    let mut hub = TestHub::start(&backend).await;
    let account = |code: &str, secret: &str| {
        format!(
            "[[commune]]\ncode = \"{code}\"\n[commune.ovh_sms]\nendpoint = \"{}/1.0\"\nservice_name = \"sms-gv12345-1\"\napplication_key = \"AK-givors\"\napplication_secret = \"{secret}\"\nconsumer_key = \"CK-givors\"\nsender = \"VILLEGIVORS\"\n",
            fake.base
        )
    };
    hub.start_adapters(&(account("69091", "AS-givors") + &account("69096", "AS-faux")))
        .await;
    for (tenant, words) in [
        (GIVORS, "Votre lampadaire est réparé."),
        (GRIGNY, "Réparé."),
    ] {
        let scope = hub.scope(tenant);
        let citizen = hub.sms_person(tenant, "Martin", "06 12 34 56 78").await;
        let reference = hub
            .hub
            .open_request(
                &scope,
                &commands::OpenRequest {
                    subject: "Lampadaire".into(),
                    category: pb::Category::ServicesTechniques,
                    citizen_id: citizen,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .reference;
        let answer = hub
            .hub
            .send_answer(
                &scope,
                &commands::ComposeAnswer {
                    reference,
                    channel: pb::Channel::Sms,
                    text: words.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let id = answer.answer_event_id.clone();
        let settled = || {
            hub.hub
                .get_answer(&scope, &id)
                .map(|a| {
                    a.status == pb::AnswerStatus::Delivered as i32
                        || a.status == pb::AnswerStatus::Failed as i32
                })
                .unwrap_or(false)
        };
        until("the answer is settled", settled).await;
        let a = hub.hub.get_answer(&scope, &id).unwrap();
        if tenant == GIVORS {
            assert_eq!(a.status, pb::AnswerStatus::Delivered as i32, "{a:?}");
            assert_eq!(a.provider_message_id, "ovh-42");
            let jobs = fake.jobs.lock().unwrap().clone();
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0]["receivers"][0], "+33612345678");
            assert_eq!(jobs[0]["sender"], "VILLEGIVORS");
            assert_eq!(jobs[0]["message"], words);
            assert_eq!(jobs[0]["coding"], "7bit");
        } else {
            assert_eq!(a.status, pb::AnswerStatus::Failed as i32, "{a:?}");
            assert!(a.last_error.contains("403"), "{a:?}");
            assert_eq!(
                fake.jobs.lock().unwrap().len(),
                1,
                "nothing sent for Grigny"
            );
        }
    }
    hub.stop().await;
}

on_every_backend!(ovh);

async fn ovh_incoming_and_delivery_reports(backend: Backend) {
    let fake = fake_ovh().await;
    for (id, text) in [
        (7001, "Bonjour, le ramassage des encombrants est quand ?"),
        (7002, "STOP"),
    ] {
        fake.incoming.lock().unwrap().insert(
            id,
            serde_json::json!({"id": id, "creationDatetime": "2026-12-03T10:00:00+01:00", "credits": 0, "message": text, "sender": "+33698765432", "tag": ""}),
        );
    }
    let mut hub = TestHub::start(&backend).await;
    let adapters = hub
        .start_adapters(&format!(
            "public_url = \"http://hub.example\"\n[[commune]]\ncode = \"69091\"\n[commune.ovh_sms]\nendpoint = \"{}/1.0\"\nservice_name = \"sms-gv12345-1\"\napplication_key = \"AK-givors\"\napplication_secret = \"AS-givors\"\nconsumer_key = \"CK-givors\"\nsender = \"VILLEGIVORS\"\nincoming_poll_seconds = 3600\n",
            fake.base
        ))
        .await;
    // Read, on the log, then deleted from OVH; the « STOP » withdrew consent.
    until("OVH's incoming SMS are taken", || {
        fake.incoming.lock().unwrap().is_empty()
    })
    .await;
    hub.settle().await;
    let scope = hub.scope(GIVORS);
    let stops = hub
        .hub
        .sms_stops(&scope, &["06 98 76 54 32".to_string()])
        .unwrap();
    assert!(
        stops[0].is_some(),
        "the STOP read from OVH is on the record"
    );
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: contacthub_tests::by_phone("06 98 76 54 32"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(timeline.entries.len(), 2, "{:?}", timeline.entries);
    assert!(timeline
        .entries
        .iter()
        .all(|e| e.channel == pb::Channel::Sms as i32));
    assert!(hub
        .connector("ovh-sms", GIVORS)
        .await
        .last_success
        .is_some());

    // An answer sent through OVH names the callBack URL with its token; OVH reports it failed.
    let citizen = hub.sms_person(GIVORS, "Durand", "06 12 34 56 78").await;
    let reference = hub
        .hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: "Encombrants".into(),
                category: pb::Category::ServicesTechniques,
                citizen_id: citizen,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .reference;
    let answer = hub
        .hub
        .send_answer(
            &scope,
            &commands::ComposeAnswer {
                reference: reference.clone(),
                channel: pb::Channel::Sms,
                text: "Le ramassage a lieu le premier lundi du mois.".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = answer.answer_event_id.clone();
    until("the answer is sent", || {
        hub.hub
            .get_answer(&scope, &id)
            .is_ok_and(|a| a.status == pb::AnswerStatus::Delivered as i32)
    })
    .await;
    let job = fake.jobs.lock().unwrap()[0].clone();
    let callback = job["callBack"].as_str().unwrap().to_string();
    let token = contacthub_adapters::ovh::callback_token("AS-givors", GIVORS);
    assert_eq!(
        callback,
        format!("http://hub.example/v1/69091/ovh/status?t={token}")
    );
    let sent = hub.hub.get_answer(&scope, &id).unwrap();
    let ovh_id = sent
        .provider_message_id
        .trim_start_matches("ovh-")
        .to_string();
    let http = reqwest::Client::new();
    let report = |t: &str, dlr: &str| {
        http.get(format!(
            "{adapters}/v1/69091/ovh/status?t={t}&id={ovh_id}&ptt=0&dlr={dlr}&description=Num%C3%A9ro+inconnu&date=2026-12-03+10:00:00"
        ))
        .send()
    };
    // Without the token: refused. Delivered: nothing changes. Failed: a bounce.
    assert_eq!(report("faux", "16").await.unwrap().status(), 401);
    assert_eq!(report(&token, "1").await.unwrap().status(), 204);
    assert_eq!(
        hub.hub.get_answer(&scope, &id).unwrap().status,
        pb::AnswerStatus::Delivered as i32
    );
    assert_eq!(report(&token, "16").await.unwrap().status(), 204);
    let bounced = hub.hub.get_answer(&scope, &id).unwrap();
    assert_eq!(
        bounced.status,
        pb::AnswerStatus::Bounced as i32,
        "{bounced:?}"
    );
    assert!(bounced.last_error.contains("Numéro inconnu"), "{bounced:?}");
    hub.stop().await;
}

on_every_backend!(ovh_incoming_and_delivery_reports);
