//! Requests (demandes) end to end over gRPC: opened from a contact, a later contact linked,
//! assigned, overdue against a fixed clock, answered in writing and closed with the delay
//! counted from the first contact; refused closings and other communes write nothing. Every
//! body runs on the embedded log and on Kafka.

use contacthub_proto::v1 as pb;
use contacthub_proto::v1::request_service_client::RequestServiceClient;
use contacthub_tests::*;
use tonic::transport::Channel;

on_every_backend!(
    a_request_is_followed_to_a_written_answer,
    refused_closings_and_other_communes_write_nothing,
);

fn client(hub: &TestHub) -> RequestServiceClient<Channel> {
    RequestServiceClient::new(hub.channel.clone())
}

const DAY: i64 = 86_400_000_000;

async fn a_request_is_followed_to_a_written_answer(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    // A citizen writes through the portal on 2 March, then calls on 1 March… a call logged
    // late: the clock starts at the first contact on any channel.
    let form = web_form(GIVORS, "R-1", "06 12 34 56 78", "", at(2026, 3, 2, 9, 0));
    let earlier_call = call(GIVORS, "c-1", "06 12 34 56 78", at(2026, 3, 1, 9, 0));
    hub.publish(&[form.clone(), earlier_call.clone()]).await;
    hub.settle().await;
    hub.set_clock(at(2026, 3, 3, 9, 0));
    let mut c = client(&hub);
    let opened = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "Acte de naissance introuvable".into(),
            category: pb::Category::EtatCivil as i32,
            service: "etat-civil".into(),
            from_contact_event_id: form.event_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.reference, "GIV-D-2026-000001");
    assert_eq!(opened.status, pb::RequestStatus::Open as i32);
    assert_eq!(opened.requesters.len(), 1);
    // État civil answers within 8 days (communes.toml) of the form.
    assert_eq!(
        opened.due_at.unwrap().seconds * 1_000_000,
        at(2026, 3, 2, 9, 0) + 8 * DAY
    );
    let linked = c
        .link_contact(pb::LinkContactRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
            contact_event_id: earlier_call.event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        linked.due_at.unwrap().seconds * 1_000_000,
        at(2026, 3, 1, 9, 0) + 8 * DAY,
        "the earlier contact moves the due date"
    );
    let assigned = c
        .assign_request(pb::AssignRequestRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
            service: "etat-civil".into(),
            assignee_agent_id: "agent-ec-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.status, pb::RequestStatus::Assigned as i32);

    // Worklists against a fixed clock: not overdue on 5 March, overdue on 12 March.
    let list = |overdue_only: bool, due_within_days: u32| pb::ListRequestsRequest {
        tenant: GIVORS.into(),
        service: "etat-civil".into(),
        overdue_only,
        due_within_days,
        ..Default::default()
    };
    hub.set_clock(at(2026, 3, 5, 9, 0));
    let overdue = c.list_requests(list(true, 0)).await.unwrap().into_inner();
    assert!(overdue.requests.is_empty());
    let soon = c.list_requests(list(false, 5)).await.unwrap().into_inner();
    assert_eq!(soon.requests.len(), 1, "due within 5 days");
    hub.set_clock(at(2026, 3, 12, 9, 0));
    let overdue = c.list_requests(list(true, 0)).await.unwrap().into_inner();
    assert_eq!(overdue.requests[0].reference, opened.reference);

    // The written answer by courrier, then the closing.
    let answered = c
        .record_answer(pb::RecordAnswerRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
            answer_channel: pb::Channel::Courrier as i32,
            answer_ref: "GIV-2026-S00012".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.status, pb::RequestStatus::Answered as i32);
    let closed = c
        .close_request(pb::CloseRequestRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
            reason: pb::CloseReason::Answered as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status, pb::RequestStatus::Closed as i32);
    let days =
        (closed.answered_at.unwrap().seconds - closed.first_contact_at.unwrap().seconds) / 86_400;
    assert_eq!(days, 11, "answered 11 days after the first contact");
    let kinds: Vec<_> = closed.history.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["opened", "linked", "assigned", "answered", "closed"]
    );
    assert!(c
        .list_requests(list(true, 0))
        .await
        .unwrap()
        .into_inner()
        .requests
        .is_empty());
    // Reopened when the citizen comes back; in the citizen's timeline all along.
    let reopened = c
        .reopen_request(pb::ReopenRequestRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reopened.status, pb::RequestStatus::Reopened as i32);
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0612345678"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // (Events of the same instant of the fixed clock come in id order.)
    let mut requests: Vec<_> = timeline
        .entries
        .iter()
        .filter(|e| e.request_id == opened.reference || e.kind == "request_opened")
        .map(|e| e.kind.as_str())
        .collect();
    requests.sort();
    assert_eq!(
        requests,
        [
            "request_answered",
            "request_assigned",
            "request_closed",
            "request_linked",
            "request_opened",
            "request_reopened",
        ]
    );
    hub.stop().await;
}

async fn refused_closings_and_other_communes_write_nothing(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.set_clock(at(2026, 3, 3, 9, 0));
    hub.publish(&[register(
        GIVORS,
        "GIV-000001",
        "Marie Durand",
        "0612345678",
        at(2026, 3, 1, 9, 0),
    )])
    .await;
    hub.settle().await;
    let mut c = client(&hub);
    let opened = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "Lampadaire éteint rue Zola".into(),
            category: pb::Category::ServicesTechniques as i32,
            citizen_id: "GIV-000001".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ends = hub.log.end_offsets().await.unwrap();
    let close = |reason: pb::CloseReason, duplicate_of: &str| pb::CloseRequestRequest {
        tenant: GIVORS.into(),
        reference: opened.reference.clone(),
        reason: reason as i32,
        duplicate_of: duplicate_of.into(),
        ..Default::default()
    };
    for (req, code, says) in [
        (
            close(pb::CloseReason::Unspecified, ""),
            tonic::Code::InvalidArgument,
            "never closed silently",
        ),
        (
            close(pb::CloseReason::Answered, ""),
            tonic::Code::InvalidArgument,
            "no written answer",
        ),
        (
            close(pb::CloseReason::Redirected, ""),
            tonic::Code::InvalidArgument,
            "redirected_to",
        ),
        (
            close(pb::CloseReason::Duplicate, "GIV-D-2026-999999"),
            tonic::Code::NotFound,
            "no request",
        ),
    ] {
        let err = c.close_request(req).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(err.message().contains(says), "{}", err.message());
    }
    let err = c
        .get_request(pb::GetRequestRequest {
            tenant: GRIGNY.into(),
            reference: opened.reference.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::NotFound,
        "another commune's request"
    );
    let err = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("say who asks"), "{err:?}");
    let err = c
        .record_answer(pb::RecordAnswerRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
            answer_channel: pb::Channel::Phone as i32,
            answer_ref: "x".into(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("written one"), "{err:?}");
    assert_eq!(
        hub.log.end_offsets().await.unwrap(),
        ends,
        "nothing written"
    );
    // On behalf of a neighbourhood council: no citizen needed; withdrawn closes it.
    let council = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "Éclairage du square".into(),
            on_behalf_of: "conseil de quartier Centre".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(council.reference, "GIV-D-2026-000002");
    let closed = c
        .close_request(pb::CloseRequestRequest {
            tenant: GIVORS.into(),
            reference: council.reference.clone(),
            reason: pb::CloseReason::Withdrawn as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.close_reason, pb::CloseReason::Withdrawn as i32);
    hub.stop().await;
}
