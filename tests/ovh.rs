//! OVHcloud SMS as a commune's gateway, on both log backends: a written answer by SMS leaves
//! through a local server speaking OVH's API (`POST /1.0/sms/{service}/jobs`, signed with the
//! application secret and the consumer key, which the server checks), with the commune's
//! sender; delivered with OVH's job id. A commune whose secret is wrong gets its answer failed
//! with the reason, not retried for ever.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::*;
use std::sync::{Arc, Mutex};

/// The jobs a fake OVH API took, and where it listens.
#[derive(Clone, Default)]
struct Ovh {
    base: String,
    jobs: Arc<Mutex<Vec<serde_json::Value>>>,
}

async fn job(
    State(o): State<Ovh>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let url = format!("{}/1.0/sms/{service}/jobs", o.base);
    let ts: i64 = h("x-ovh-timestamp").parse().unwrap_or(0);
    let expected =
        contacthub_adapters::ovh::signature("AS-givors", "CK-givors", "POST", &url, &body, ts);
    let fresh = (chrono::Utc::now().timestamp() - ts).abs() < 60;
    if h("x-ovh-application") != "AK-givors" || h("x-ovh-signature") != expected || !fresh {
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

async fn ovh(backend: Backend) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Ovh {
        base: format!("http://{}", listener.local_addr().unwrap()),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/1.0/sms/{service}/jobs", post(job))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
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
