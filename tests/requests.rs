//! Requests (demandes) end to end over gRPC: opened from a contact, a later contact linked,
//! assigned, overdue against a fixed clock, answered in writing and closed with the delay
//! counted from the first contact; refused closings and other communes write nothing. Every
//! body runs on the embedded log and on Kafka.

use contacthub_proto::v1 as pb;
use contacthub_proto::v1::request_service_client::RequestServiceClient;
use contacthub_tests::*;
use tonic::transport::Channel;

on_every_backend!(
    a_collective_answers_each_of_its_requests,
    contacts_join_their_request_by_reference_or_thread,
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
    assert!(
        council.requesters.is_empty(),
        "a council is no citizen: {:?}",
        council.requesters
    );
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

fn email(id: &str, thread: &str, from: &str, subject: &str, when: i64) -> pb::Event {
    let mut e = contacthub_core::event::contact(
        GIVORS,
        "test-email",
        id,
        when,
        when,
        pb::event::Payload::Email(pb::Email {
            message_id: id.into(),
            thread_id: thread.into(),
            in_reply_to: if id == thread {
                String::new()
            } else {
                thread.into()
            },
            ..Default::default()
        }),
        pb::Party {
            email: from.into(),
            ..Default::default()
        },
    );
    e.personal.as_mut().unwrap().subject = subject.into();
    e
}

async fn contacts_join_their_request_by_reference_or_thread(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.set_clock(at(2026, 4, 1, 9, 0));
    let first = email(
        "m1@x",
        "m1@x",
        "paul@example.fr",
        "Trottoir dangereux",
        at(2026, 4, 1, 8, 0),
    );
    hub.publish(std::slice::from_ref(&first)).await;
    hub.settle().await;
    let mut c = client(&hub);
    let opened = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "Trottoir dangereux".into(),
            category: pb::Category::ServicesTechniques as i32,
            from_contact_event_id: first.event_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // A reply in the same thread, and an SMS quoting the reference: both join it.
    let reply = email(
        "m2@x",
        "m1@x",
        "paul@example.fr",
        "Re: Trottoir dangereux",
        at(2026, 4, 3, 8, 0),
    );
    let mut sms = call(GIVORS, "s-1", "06 55 55 55 55", at(2026, 4, 4, 8, 0));
    sms.personal.as_mut().unwrap().text =
        format!("Bonjour, où en est ma demande {} ?", opened.reference);
    let unrelated = email(
        "m9@x",
        "m9@x",
        "paul@example.fr",
        "Autre chose",
        at(2026, 4, 5, 8, 0),
    );
    hub.publish(&[reply.clone(), sms.clone(), unrelated.clone()])
        .await;
    hub.settle().await;
    let r = c
        .get_request(pb::GetRequestRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.contacts,
        [
            first.event_id.clone(),
            reply.event_id.clone(),
            sms.event_id.clone()
        ]
    );
    // The opening shows the reference and the date due in the citizen's timeline.
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_email("paul@example.fr"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let opening = timeline
        .entries
        .iter()
        .find(|e| e.kind == "request_opened")
        .unwrap();
    assert!(
        opening.summary.ends_with(&format!(
            "n° {}, réponse due le 16/04/2026",
            opened.reference
        )),
        "{}",
        opening.summary
    );
    let replied = timeline
        .entries
        .iter()
        .find(|e| e.event_id == reply.event_id)
        .unwrap();
    assert_eq!(replied.request_id, opened.reference);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let serve = spawn_serve(&contacthub_bin!(), &dir.path().join("data"), &[]);
    let run = |args: &[&str]| serve.cli(args);
    let (ok, out) = run(&[
        "citizen",
        "create",
        "--tenant",
        GIVORS,
        "--usage-name",
        "Durand",
        "--first-names",
        "Marie",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&[
        "request",
        "open",
        "--tenant",
        GIVORS,
        "--citizen",
        "GIV-000001",
        "--subject",
        "Lampadaire éteint",
        "--category",
        "services-techniques",
        "--service",
        "voirie",
    ]);
    assert!(ok, "{out}");
    let reference = out.split_whitespace().next().unwrap().to_string();
    assert!(reference.starts_with("GIV-D-"), "{out}");
    assert!(out.contains("reçue") && out.contains("voirie"), "{out}");
    let (ok, out) = run(&["request", "list", "--tenant", GIVORS, "--service", "voirie"]);
    assert!(ok && out.starts_with(&reference), "{out}");
    let (ok, out) = run(&[
        "request", "close", "--tenant", GIVORS, &reference, "--reason", "answered",
    ]);
    assert!(!ok && out.contains("no written answer"), "{out}");
    let (ok, out) = run(&[
        "request",
        "answer",
        "--tenant",
        GIVORS,
        &reference,
        "--channel",
        "courrier",
        "--answer-ref",
        "GIV-2026-S0001",
    ]);
    assert!(ok && out.contains("réponse"), "{out}");
    let (ok, out) = run(&[
        "request", "close", "--tenant", GIVORS, &reference, "--reason", "answered",
    ]);
    assert!(ok && out.contains("clôturée"), "{out}");
    let (ok, out) = run(&["request", "list", "--tenant", GIVORS]);
    assert!(ok && out.contains("aucune demande"), "{out}");
    let mut child = serve.child;
    child.kill().unwrap();
    let _ = child.wait();
}

/// The README's first command: the demo hub's worklists say something on first run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_requests_in_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let serve = spawn_serve(
        &contacthub_bin!(),
        &dir.path().join("data"),
        &["--demo".as_ref()],
    );
    let run = |args: &[&str]| {
        let (ok, out) = serve.cli(args);
        assert!(ok, "{args:?}: {out}");
        out
    };
    for tenant in ["69091", "69096", "42186"] {
        let all = run(&["request", "list", "--tenant", tenant, "--all"]);
        for status in [
            "reçue",
            "attribuée",
            "en cours",
            "en attente de l'usager",
            "répondue",
            "clôturée",
            "rouverte",
        ] {
            assert!(all.contains(status), "{tenant}: no {status} in\n{all}");
        }
        // Every closing says why.
        let closings: String = all
            .lines()
            .filter(|l| l.contains("clôturée"))
            .filter_map(|l| l.split_whitespace().next())
            .map(|r| run(&["request", "show", "--tenant", tenant, r]))
            .collect();
        for why in [
            "répondue par écrit",
            "retirée par l'usager",
            "réorientée vers Métropole de Lyon",
            "doublon de ",
        ] {
            assert!(closings.contains(why), "{tenant}: no {why} in\n{closings}");
        }
        let overdue = run(&["request", "list", "--tenant", tenant, "--overdue"]);
        assert!(overdue.lines().count() >= 3, "{tenant}:\n{overdue}");
        let unassigned = run(&["request", "list", "--tenant", tenant, "--unassigned"]);
        assert!(unassigned.contains("reçue"), "{tenant}:\n{unassigned}");
        let collective = all
            .lines()
            .find(|l| l.contains("Signalements groupés"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{tenant}: no collective in\n{all}"));
        let shown = run(&["request", "show", "--tenant", tenant, collective]);
        let members = shown
            .lines()
            .find_map(|l| l.trim().strip_prefix("regroupe"))
            .unwrap_or_else(|| panic!("{shown}"));
        assert_eq!(members.split(',').count(), 3, "{shown}");
    }
    let mut child = serve.child;
    child.kill().unwrap();
    let _ = child.wait();
}

async fn a_collective_answers_each_of_its_requests(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.set_clock(at(2026, 5, 1, 9, 0));
    let citizens = client_citizens(&hub);
    // Three neighbours report the same broken street light; one prefers SMS.
    let mut ids = Vec::new();
    for (name, preferred) in [
        ("Durand", pb::ContactChannel::Email),
        ("Martin", pb::ContactChannel::Sms),
        ("Petit", pb::ContactChannel::Unspecified),
    ] {
        let c = citizens
            .clone()
            .create_citizen(pb::CreateCitizenRequest {
                tenant: GIVORS.into(),
                identity: Some(pb::Identity {
                    usage_name: name.into(),
                    preferred_channel: preferred as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(c.citizen_id);
    }
    let mut c = client(&hub);
    let mut members = Vec::new();
    for id in &ids {
        let r = c
            .open_request(pb::OpenRequestRequest {
                tenant: GIVORS.into(),
                subject: "Lampadaire éteint rue Zola".into(),
                category: pb::Category::ServicesTechniques as i32,
                citizen_id: id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        members.push(r.reference);
    }
    let collective = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "Éclairage rue Zola en panne".into(),
            category: pb::Category::ServicesTechniques as i32,
            on_behalf_of: "services techniques".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let grouped = c
        .group_requests(pb::GroupRequestsRequest {
            tenant: GIVORS.into(),
            collective: collective.reference.clone(),
            members: members.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grouped.members, members);
    let err = c
        .group_requests(pb::GroupRequestsRequest {
            tenant: GIVORS.into(),
            collective: members[0].clone(),
            members: vec![collective.reference.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    c.record_answer(pb::RecordAnswerRequest {
        tenant: GIVORS.into(),
        reference: collective.reference.clone(),
        answer_channel: pb::Channel::Courrier as i32,
        answer_ref: "GIV-2026-S0042".into(),
    })
    .await
    .unwrap();
    c.close_request(pb::CloseRequestRequest {
        tenant: GIVORS.into(),
        reference: collective.reference.clone(),
        reason: pb::CloseReason::Answered as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut channels = Vec::new();
    for m in &members {
        let r = c
            .get_request(pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: m.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.collective, collective.reference);
        assert_eq!(r.status, pb::RequestStatus::Closed as i32);
        assert_eq!(r.answer_ref, "GIV-2026-S0042");
        channels.push(r.answer_channel);
    }
    assert_eq!(
        channels,
        [
            pb::Channel::Email as i32,
            pb::Channel::Sms as i32,
            pb::Channel::Courrier as i32
        ],
        "each requester's preferred written channel, else the collective's"
    );
    hub.stop().await;
}

fn client_citizens(
    hub: &TestHub,
) -> contacthub_proto::v1::citizen_service_client::CitizenServiceClient<Channel> {
    contacthub_proto::v1::citizen_service_client::CitizenServiceClient::new(hub.channel.clone())
}
