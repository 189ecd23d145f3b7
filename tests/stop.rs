//! « STOP » by SMS, on both log backends: the number gets no more SMS from the commune — no
//! written answer by SMS (the agent is told to choose another channel), no appointment
//! confirmation —, the record says so; « START » lets them come again.

use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::gateway::Gateway;
use contacthub_tests::*;

/// An SMS from `phone` saying `text`.
fn sms(id: &str, phone: &str, text: &str, at: i64) -> pb::Event {
    let mut e = call(GIVORS, id, phone, at);
    e.channel = pb::Channel::Sms as i32;
    e.payload = Some(pb::event::Payload::Sms(pb::Sms {
        message_sid: id.into(),
        ..Default::default()
    }));
    e.source = "test-sms".into();
    e.personal.as_mut().unwrap().text = text.into();
    e
}

async fn stop(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let gateway = Gateway::start().await;
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\nsms_auth_token = \"{}\"\n\n[commune.sms_gateway]\napi_url = \"{}\"\naccount_sid = \"{}\"\nfrom = \"+33472000000\"\n",
        contacthub_tests::gateway::TOKEN,
        gateway.url,
        contacthub_tests::gateway::ACCOUNT,
    ))
    .await;
    let scope = hub.scope(GIVORS);
    let alice = hub.sms_person(GIVORS, "Martin", "06 12 34 56 78").await;
    let reference = hub
        .hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: "Lampadaire".into(),
                category: pb::Category::ServicesTechniques,
                citizen_id: alice.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .reference;
    let answer = |text: &str| commands::ComposeAnswer {
        reference: reference.clone(),
        channel: pb::Channel::Sms,
        text: text.into(),
        ..Default::default()
    };

    hub.publish(&[sms("SM-stop", "+33612345678", "Stop", hub.hub.now())])
        .await;
    hub.settle().await;
    let refused = hub.hub.send_answer(&scope, &answer("Réparé.")).await;
    assert!(
        matches!(&refused, Err(contacthub_app::Error::Invalid(m)) if m.contains("STOP")),
        "{refused:?}"
    );
    let stops = hub
        .hub
        .sms_stops(&scope, &["06 12 34 56 78".to_string()])
        .unwrap();
    assert!(stops[0].is_some());
    // No appointment confirmation by SMS either.
    let now = hub.hub.now();
    let slot = hub
        .hub
        .free_slots(GIVORS, "passeport-cni", now, 14)
        .unwrap()[0];
    let booked = hub
        .hub
        .book_for(&scope, "passeport-cni", slot.start_us, &alice)
        .await
        .unwrap();
    let confirmation = contacthub_core::event::event_id(
        GIVORS,
        "avis",
        &format!("confirmation/{}", booked.appointment_id),
    );
    assert!(hub.store.notice(GIVORS, &confirmation).unwrap().is_none());

    // « START »: the SMS answer goes.
    hub.publish(&[sms("SM-start", "+33612345678", "START", hub.hub.now())])
        .await;
    hub.settle().await;
    hub.hub
        .send_answer(&scope, &answer("Réparé."))
        .await
        .unwrap();
    until("the answer is sent", || {
        gateway.sent().iter().any(|s| s.body.contains("Réparé."))
    })
    .await;
    assert!(gateway.sent().iter().all(|s| !s.body.contains("confirmé")));
    hub.stop().await;
}

on_every_backend!(stop);
