//! Requests (demandes) end to end over gRPC: opened from a contact, a later contact linked,
//! assigned, overdue against a fixed clock, answered in writing and closed with the delay
//! counted from the first contact; letters from the mail room followed the same way; refused
//! closings and other communes write nothing; dashboards against a hand-computed history,
//! read by an élu, and agents of a service seeing its requests. Every body runs on the
//! embedded log and on Kafka.

use contacthub_proto::v1 as pb;
use contacthub_proto::v1::request_service_client::RequestServiceClient;
use contacthub_tests::*;
use tonic::transport::Channel;

on_every_backend!(
    a_letter_is_followed_as_a_request,
    dashboard_figures_match_a_hand_computed_history,
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
    let far = c
        .list_requests(list(false, 3_660))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(far.requests.len(), 1, "due within ten years");
    let beyond = c.list_requests(list(false, u32::MAX)).await.unwrap_err();
    assert_eq!(beyond.code(), tonic::Code::InvalidArgument);
    assert!(beyond.message().contains("due_within_days"), "{beyond:?}");
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
    // The form only declared the phone number: the call went to a record of its own (an agent
    // merges them), and the request's steps are in its requester's timeline.
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&opened.requesters[0]),
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
    // The form's number got the request's acknowledgement (`notice_queued`).
    assert_eq!(
        requests,
        [
            "notice_queued",
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
            "jamais clôturée sans motif",
        ),
        (
            close(pb::CloseReason::Answered, ""),
            tonic::Code::InvalidArgument,
            "pas encore de réponse écrite",
        ),
        (
            close(pb::CloseReason::Redirected, ""),
            tonic::Code::InvalidArgument,
            "réorientée",
        ),
        (
            close(pb::CloseReason::Duplicate, "GIV-D-2026-999999"),
            tonic::Code::NotFound,
            "aucune demande",
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
    assert!(err.message().contains("indiquez qui demande"), "{err:?}");
    let err = c
        .record_answer(pb::RecordAnswerRequest {
            tenant: GIVORS.into(),
            reference: opened.reference.clone(),
            answer_channel: pb::Channel::Phone as i32,
            answer_ref: "x".into(),
        })
        .await
        .unwrap_err();
    assert!(
        err.message().contains("la réponse écrite part par"),
        "{err:?}"
    );
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
    // The service by its name in the directory, the date due as agents write it.
    assert!(
        out.contains("  Voirie  ") && !out.contains(" voirie "),
        "{out}"
    );
    assert!(
        out.split("échéance ")
            .nth(1)
            .is_some_and(|d| d.as_bytes()[2] == b'/'),
        "{out}"
    );
    let (ok, out) = run(&[
        "request", "close", "--tenant", GIVORS, &reference, "--reason", "answered",
    ]);
    assert!(!ok && out.contains("pas encore de réponse écrite"), "{out}");
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
        let all = run(&[
            "request", "list", "--tenant", tenant, "--all", "--limit", "1000",
        ]);
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
        // A form of the commune's Publik portal (submitted, then taken in hand: one request,
        // two contacts), a street report from an Open311 application and a dossier of
        // démarches-simplifiées.
        for subject in [
            "Signalement voirie - n°12-",
            "Signalement : services techniques",
            "Déclaration préalable de travaux — dossier n° 2",
        ] {
            let line = all
                .lines()
                .find(|l| l.contains(subject))
                .unwrap_or_else(|| panic!("{tenant}: no {subject} in\n{all}"));
            let reference = line.split_whitespace().next().unwrap();
            let shown = run(&["request", "show", "--tenant", tenant, reference]);
            assert!(shown.contains("démarche en ligne"), "{shown}");
        }
        // A message of its IMAP mailbox and an SMS received on its OVHcloud account, on
        // their senders' timelines.
        let slug = match tenant {
            "69091" => "givors",
            "69096" => "grigny",
            _ => "rive-de-gier",
        };
        let mail = run(&[
            "timeline",
            "--tenant",
            tenant,
            "--email",
            &format!("sophie.lambert@{slug}.example.org"),
        ]);
        assert!(mail.contains("Horaires de la piscine"), "{tenant}: {mail}");
        let received = (0..6).any(|n| {
            let (ok, out) = serve.cli(&[
                "timeline",
                "--tenant",
                tenant,
                "--phone",
                &format!("+336987654{n:02}"),
            ]);
            ok && out.contains("déchetterie")
        });
        assert!(
            received,
            "{tenant}: the SMS received on the OVHcloud account"
        );
        // The dashboard of the demo says something, as text and as CSV.
        let board = run(&[
            "dashboard",
            "--tenant",
            tenant,
            "--from",
            "2024-11",
            "--to",
            "2026-10",
        ]);
        assert!(
            board.contains(&format!("Tableau de bord {tenant}"))
                && board.contains("demandes ouvertes")
                && board.contains("problèmes récurrents"),
            "{board}"
        );
        let csv = run(&[
            "dashboard",
            "--tenant",
            tenant,
            "--from",
            "2024-11",
            "--to",
            "2026-10",
            "--csv",
        ]);
        assert!(csv.starts_with("mois;dimension;valeur;"), "{csv}");
        assert!(csv.lines().count() > 24, "{csv}");
    }
    // A filled catalogue of validated answers, in each commune's name (open desk).
    let desk = WebAgent::sign_in(&serve.web, "").await;
    let (_, catalogue) = desk.get("/catalogue?commune=69096").await;
    for title in [
        "Carte d&#39;identité et passeport : délais",
        "Inscription scolaire : pièces à fournir",
        "Aide sociale d&#39;urgence : premier rendez-vous",
        "Horaires d&#39;ouverture de la mairie",
    ] {
        assert!(catalogue.contains(title), "{title} in {catalogue}");
    }
    let (_, hours) = desk
        .get("/catalogue/69096/horaires-d-ouverture-de-la-mairie")
        .await;
    assert!(
        hours.contains("La mairie de Grigny vous accueille"),
        "{hours}"
    );
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

fn with_token<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A letter registered by the mail room is a request: its clock starts on the day it was
/// received, it moves with the letter's routing, it is overdue past its date, and the mail
/// room's answer is its written answer.
async fn a_letter_is_followed_as_a_request(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.set_clock(at(2026, 4, 1, 8, 0));
    let mut mail = hub.courrier();
    let mut header = pb::CourrierHeader {
        tenant: GIVORS.into(),
        sender: Some(pb::Party {
            name: "Marie Durand".into(),
            phone: "06 12 34 56 78".into(),
            ..Default::default()
        }),
        kind: pb::courrier::Kind::Letter as i32,
        subject: "Demande de permis".into(),
        category: pb::Category::Urbanisme as i32,
        addressed_to_service: "urbanisme".into(),
        idempotency_key: "letter-1".into(),
        ..Default::default()
    };
    header.received_at = Some(contacthub_proto::ts::from_micros(at(2026, 3, 30, 8, 0)));
    let letter = mail
        .register_courrier(tokio_stream::iter(vec![pb::RegisterCourrierRequest {
            part: Some(pb::register_courrier_request::Part::Header(header)),
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(letter.request_reference, "GIV-D-2026-000001");
    let mut c = client(&hub);
    let get = |c: &mut RequestServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.get_request(pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: "GIV-D-2026-000001".into(),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let r = get(&mut c).await;
    assert_eq!(
        (r.chrono.as_str(), r.channel, r.service.as_str(), r.status),
        (
            letter.chrono.as_str(),
            pb::Channel::Courrier as i32,
            "urbanisme",
            pb::RequestStatus::Open as i32
        )
    );
    assert_eq!(r.requesters, std::slice::from_ref(&letter.citizen_id));
    // Urbanisme answers within 30 days of the day the letter came (communes.toml).
    assert_eq!(
        r.due_at.unwrap().seconds * 1_000_000,
        at(2026, 3, 30, 8, 0) + 30 * DAY
    );
    // An agent opening another request from the letter is told which one follows it.
    let again = c
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: "x".into(),
            from_contact_event_id: letter.event_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(again.message().contains("GIV-D-2026-000001"), "{again:?}");
    // The mail room routes the letter: the request is assigned to that service.
    mail.route_courrier(pb::RouteCourrierRequest {
        tenant: GIVORS.into(),
        chrono: letter.chrono.clone(),
        service: "droit-des-sols".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = get(&mut c).await;
    assert_eq!(
        (r.service.as_str(), r.status),
        ("droit-des-sols", pb::RequestStatus::Assigned as i32)
    );
    // Its history keeps the fact (to which service), worded when read.
    let step = r.history.last().unwrap();
    assert_eq!(
        (step.kind.as_str(), step.note.as_str()),
        ("service", "droit-des-sols")
    );
    assert_eq!(
        contacthub_core::render::step_fr(&step.kind),
        "orientée vers"
    );
    // Overdue in the service's worklist on 1 May, not before.
    let overdue = |c: &mut RequestServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.list_requests(pb::ListRequestsRequest {
                tenant: GIVORS.into(),
                service: "droit-des-sols".into(),
                overdue_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .requests
            .len()
        }
    };
    hub.set_clock(at(2026, 4, 28, 8, 0));
    assert_eq!(overdue(&mut c).await, 0);
    hub.set_clock(at(2026, 5, 1, 8, 0));
    assert_eq!(overdue(&mut c).await, 1);
    // The mail room's answer is the request's written answer; the request can be closed.
    let answered = mail
        .mark_answered(pb::MarkAnsweredRequest {
            tenant: GIVORS.into(),
            chrono: letter.chrono.clone(),
            answer_channel: pb::Channel::Courrier as i32,
            answer_ref: "GIV-2026-S0042".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.status, pb::CourrierStatus::Answered as i32);
    let r = get(&mut c).await;
    assert_eq!(
        (r.status, r.answer_ref.as_str()),
        (pb::RequestStatus::Answered as i32, "GIV-2026-S0042")
    );
    assert_eq!(overdue(&mut c).await, 0);
    let closed = c
        .close_request(pb::CloseRequestRequest {
            tenant: GIVORS.into(),
            reference: r.reference.clone(),
            reason: pb::CloseReason::Answered as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status, pb::RequestStatus::Closed as i32);
    // And an answer recorded on the request shows on the letter (a second letter).
    let second = mail
        .register_courrier(tokio_stream::iter(vec![pb::RegisterCourrierRequest {
            part: Some(pb::register_courrier_request::Part::Header(
                pb::CourrierHeader {
                    tenant: GIVORS.into(),
                    kind: pb::courrier::Kind::Letter as i32,
                    subject: "Voirie".into(),
                    sender: Some(pb::Party {
                        name: "Jean Martin".into(),
                        ..Default::default()
                    }),
                    idempotency_key: "letter-2".into(),
                    ..Default::default()
                },
            )),
        }]))
        .await
        .unwrap()
        .into_inner();
    c.record_answer(pb::RecordAnswerRequest {
        tenant: GIVORS.into(),
        reference: second.request_reference.clone(),
        answer_channel: pb::Channel::Email as i32,
        answer_ref: "<answer@givors.fr>".into(),
    })
    .await
    .unwrap();
    let letter = mail
        .get_courrier(pb::GetCourrierRequest {
            tenant: GIVORS.into(),
            chrono: second.chrono.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (letter.status, letter.answer_ref.as_str()),
        (pb::CourrierStatus::Answered as i32, "<answer@givors.fr>")
    );
    hub.stop().await;
}

fn agents() -> contacthub_app::auth::Access {
    use contacthub_app::auth::{token_hash, Access};
    let text = format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='maire'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n",
        token_hash("accueil"),
        token_hash("voirie"),
        token_hash("elu")
    );
    Access::from_toml(&text).unwrap()
}

/// A small history of Givors in March and April 2026 whose dashboard is computed by hand
/// below; an élu reads it, and nothing else; an agent of a service sees its requests only;
/// a replay gives the same read model.
async fn dashboard_figures_match_a_hand_computed_history(backend: Backend) {
    let hub = TestHub::start_with_access(&backend, agents()).await;
    let acc = "accueil";
    let phone_call = |id: &str, who: &str, when: i64, answered: bool, bounced: bool| {
        let mut e = call(GIVORS, id, who, when);
        if let Some(pb::event::Payload::PhoneCall(c)) = e.payload.as_mut() {
            if !answered {
                c.disposition = pb::phone_call::Disposition::NoAnswer as i32;
            }
            c.bounced_to_accueil = bounced;
        }
        e
    };
    let form = web_form(GIVORS, "F1", "06 11 11 11 11", "", at(2026, 3, 2, 9, 0));
    let l1 = letter(GIVORS, "L1", "06 33 33 33 33", at(2026, 3, 5, 9, 0));
    let l2 = letter(GIVORS, "L2", "06 44 44 44 44", at(2026, 3, 6, 9, 0));
    hub.publish(&[
        form.clone(),
        phone_call("C1", "06 22 22 22 22", at(2026, 3, 3, 9, 0), true, false),
        phone_call("C2", "06 22 22 22 22", at(2026, 3, 3, 10, 0), false, false),
        phone_call("C3", "06 22 22 22 22", at(2026, 3, 4, 9, 0), true, true),
        l1,
        l2,
    ])
    .await;
    hub.settle().await;
    let mut c = client(&hub);
    let mut mail = hub.courrier();
    hub.set_clock(at(2026, 3, 2, 10, 0));
    let r1 = c
        .open_request(with_token(
            acc,
            pb::OpenRequestRequest {
                tenant: GIVORS.into(),
                subject: "Acte de naissance".into(),
                category: pb::Category::EtatCivil as i32,
                service: "etat-civil".into(),
                from_contact_event_id: form.event_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let street_light = |street: &str, number: &str| pb::OpenRequestRequest {
        tenant: GIVORS.into(),
        subject: "Lampadaire éteint".into(),
        category: pb::Category::ServicesTechniques as i32,
        service: "voirie".into(),
        on_behalf_of: "conseil de quartier du Centre".into(),
        location: Some(pb::Address {
            number: number.into(),
            street: street.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    hub.set_clock(at(2026, 3, 3, 10, 0));
    let r2 = c
        .open_request(with_token(acc, street_light("Rue Émile Zola", "12")))
        .await
        .unwrap()
        .into_inner();
    hub.set_clock(at(2026, 3, 4, 10, 0));
    let r3 = c
        .open_request(with_token(acc, street_light("rue Emile  Zola", "3")))
        .await
        .unwrap()
        .into_inner();
    // R1 answered on 9 March: 7 days, within its 8. R2 withdrawn. Letter 1 routed on
    // 6 March and answered on 1 April: 27 days, within urbanisme's 30. Letter 2 and R3 wait.
    hub.set_clock(at(2026, 3, 9, 10, 0));
    c.record_answer(with_token(
        acc,
        pb::RecordAnswerRequest {
            tenant: GIVORS.into(),
            reference: r1.reference.clone(),
            answer_channel: pb::Channel::Email as i32,
            answer_ref: "<a1@givors.fr>".into(),
        },
    ))
    .await
    .unwrap();
    hub.set_clock(at(2026, 3, 10, 10, 0));
    c.close_request(with_token(
        acc,
        pb::CloseRequestRequest {
            tenant: GIVORS.into(),
            reference: r2.reference.clone(),
            reason: pb::CloseReason::Withdrawn as i32,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    hub.set_clock(at(2026, 3, 6, 10, 0));
    mail.route_courrier(with_token(
        acc,
        pb::RouteCourrierRequest {
            tenant: GIVORS.into(),
            chrono: "GIV-2026-L1".into(),
            service: "urbanisme".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    hub.set_clock(at(2026, 4, 1, 10, 0));
    mail.mark_answered(with_token(
        acc,
        pb::MarkAnsweredRequest {
            tenant: GIVORS.into(),
            chrono: "GIV-2026-L1".into(),
            answer_channel: pb::Channel::Courrier as i32,
            answer_ref: "GIV-2026-S1".into(),
            ..Default::default()
        },
    ))
    .await
    .unwrap();

    hub.set_clock(at(2026, 5, 15, 10, 0));
    let mut dash = pb::dashboard_service_client::DashboardServiceClient::new(hub.channel.clone());
    let ask = pb::GetDashboardRequest {
        tenant: GIVORS.into(),
        from_month: "2026-03".into(),
        to_month: "2026-04".into(),
    };
    let d = dash
        .get_dashboard(with_token("elu", ask.clone()))
        .await
        .unwrap()
        .into_inner();
    let row = |month: &str, dim: &str, value: &str| {
        d.rows
            .iter()
            .find(|r| r.month == month && r.dimension == dim && r.value == value)
            .and_then(|r| r.figures)
            .unwrap_or_else(|| panic!("no row {month} {dim} {value}: {:#?}", d.rows))
    };
    let all = row("", "commune", "");
    // Contacts: the form, three calls (one bounced), two letters.
    assert_eq!(all.contacts_received, 6);
    // Opened: R1, R2, R3 and the two letters.
    assert_eq!(all.requests_opened, 5);
    assert_eq!((all.requests_answered, all.answered_in_time), (2, 2));
    assert_eq!(all.answered_in_time_percent, 100.0);
    assert_eq!((all.p50_days_to_answer, all.p90_days_to_answer), (7, 27));
    assert_eq!(all.closed_without_answer, 1);
    // R3 (due 19 March) and letter 2 (due 5 April) are overdue on 15 May.
    assert_eq!(all.overdue_now, 2);
    assert_eq!((all.letters_registered, all.letters_traced), (2, 1));
    assert_eq!(all.letters_traced_percent, 50.0);
    // Inbound calls (bounces apart): C1 and C2, one missed; one bounced to the accueil.
    assert_eq!(
        (all.calls_inbound, all.calls_missed, all.calls_bounced),
        (2, 1, 1)
    );
    assert_eq!(
        (all.missed_call_percent, all.bounce_back_percent),
        (50.0, 50.0)
    );
    let march = row("2026-03", "commune", "");
    let april = row("2026-04", "commune", "");
    assert_eq!(
        (
            march.requests_opened,
            march.requests_answered,
            march.p50_days_to_answer
        ),
        (5, 1, 7)
    );
    assert_eq!(
        (
            april.requests_opened,
            april.requests_answered,
            april.p50_days_to_answer
        ),
        (0, 1, 27)
    );
    assert_eq!(row("", "channel", "courrier").requests_opened, 2);
    assert_eq!(row("", "channel", "web_form").contacts_received, 1);
    assert_eq!(row("", "channel", "phone").contacts_received, 3);
    let voirie = row("", "service", "voirie");
    assert_eq!(
        (
            voirie.requests_opened,
            voirie.closed_without_answer,
            voirie.overdue_now
        ),
        (2, 1, 1)
    );
    assert_eq!(row("", "category", "urbanisme").overdue_now, 1);
    let recurring: Vec<_> = d
        .recurring
        .iter()
        .map(|p| (p.kind.as_str(), p.value.as_str(), p.requests))
        .collect();
    assert_eq!(
        recurring,
        [
            ("category", "services_techniques", 2),
            ("category", "urbanisme", 2),
            ("category", "etat_civil", 1),
            ("street", "rue emile zola", 2),
        ]
    );
    let csv = contacthub_core::dashboard::csv(&d);
    assert!(
        csv.lines()
            .any(|l| l
                == "2026-03 à 2026-04;commune;;6;5;2;2;100,0;7;27;1;2;2;1;50,0;2;1;1;50,0;50,0;0;0;0;0,1"),
        "{csv}"
    );
    // Services, categories and channels by name, from the communes file's directory.
    let labels: Vec<(&str, &str)> = d
        .rows
        .iter()
        .filter(|r| r.month.is_empty() && r.dimension == "service")
        .map(|r| (r.value.as_str(), r.label.as_str()))
        .collect();
    assert!(labels.contains(&("urbanisme", "Urbanisme")), "{labels:?}");
    assert!(
        csv.contains(";service;Urbanisme;") && csv.contains(";catégorie;urbanisme;"),
        "{csv}"
    );
    // Overdue from the minute its date passes: R3 is due on 19 March at 10:00 UTC.
    for (clock, expected) in [(at(2026, 3, 19, 9, 59), 0), (at(2026, 3, 19, 10, 1), 1)] {
        hub.set_clock(clock);
        let d = dash
            .get_dashboard(with_token("elu", ask.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(d.rows[0].figures.unwrap().overdue_now, expected);
    }
    // Aggregates only for an élu: no request, no timeline.
    let refused = c
        .get_request(with_token(
            "elu",
            pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: r1.reference.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    // Bad periods are named.
    let bad = dash
        .get_dashboard(with_token(
            "elu",
            pb::GetDashboardRequest {
                from_month: "2026-3".into(),
                ..ask.clone()
            },
        ))
        .await
        .unwrap_err();
    assert!(
        bad.code() == tonic::Code::InvalidArgument && bad.message().contains("from_month"),
        "{bad:?}"
    );
    // An agent of voirie sees voirie's requests, not état civil's.
    let theirs = c
        .list_requests(with_token(
            "voirie",
            pb::ListRequestsRequest {
                tenant: GIVORS.into(),
                open_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .requests;
    assert_eq!(
        theirs
            .iter()
            .map(|r| r.reference.as_str())
            .collect::<Vec<_>>(),
        [r3.reference.as_str()]
    );
    let hidden = c
        .get_request(with_token(
            "voirie",
            pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: r1.reference.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    // A replay from offset 0 gives the same read model, so the same dashboard.
    let (live, replayed, _) = hub.stop_and_replay(2000).await;
    assert_eq!(replayed.digest().unwrap(), live);
}
