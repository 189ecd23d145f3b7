//! The mail room through gRPC: chrono numbers, scans, the hot folder, the internal circuit,
//! receipts, reports and tenant isolation. Each body runs on the embedded log and on Kafka.

use contacthub_core::pb::{self, register_courrier_request::Part};
use contacthub_log::{embedded::EmbeddedLog, kafka::KafkaLog, EventLog};
use contacthub_proto::ts;
use contacthub_tests::*;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

on_every_backend!(
    concurrent_registration_is_unique_and_gap_free,
    bad_scans_are_refused_and_leave_nothing,
    hot_folder_attaches_and_keeps_the_unmatched,
    the_internal_circuit_is_traced,
    the_mail_room_refuses_other_communes,
    receipts_print_every_name_as_written,
    receipts_say_what_the_law_asks,
);

type Mailroom = pb::courrier_service_client::CourrierServiceClient<Channel>;

pub(crate) fn pdf(seed: u32, size: usize) -> Vec<u8> {
    let mut b = format!("%PDF-1.4\n% scan {seed}\n").into_bytes();
    b.resize(size.max(b.len()), b'x');
    b
}

pub(crate) fn header(tenant: &str, key: &str) -> pb::CourrierHeader {
    pb::CourrierHeader {
        tenant: tenant.into(),
        sender: Some(pb::Party {
            name: "Marie Durand".into(),
            phone: "06 12 34 56 78".into(),
            ..Default::default()
        }),
        kind: pb::courrier::Kind::Letter as i32,
        subject: "Demande de permis".into(),
        category: pb::Category::Urbanisme as i32,
        addressed_to_service: "urbanisme".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

async fn register(
    c: &mut Mailroom,
    header: pb::CourrierHeader,
    scans: Vec<Vec<u8>>,
) -> Result<pb::CourrierState, tonic::Status> {
    c.register_courrier(tokio_stream::iter(registration(header, &scans)))
        .await
        .map(|r| r.into_inner())
}

/// What a client streams to register a letter with its scans (64 KiB chunks).
pub(crate) fn registration(
    header: pb::CourrierHeader,
    scans: &[Vec<u8>],
) -> Vec<pb::RegisterCourrierRequest> {
    let mut msgs = vec![pb::RegisterCourrierRequest {
        part: Some(Part::Header(header)),
    }];
    for (i, scan) in scans.iter().enumerate() {
        for (k, chunk) in scan.chunks(64 * 1024).enumerate() {
            msgs.push(pb::RegisterCourrierRequest {
                part: Some(Part::Scan(pb::ScanChunk {
                    scan_index: i as u32,
                    filename: if k == 0 {
                        format!("scan-{i}.pdf")
                    } else {
                        String::new()
                    },
                    data: chunk.to_vec(),
                })),
            });
        }
    }
    msgs
}

fn get(tenant: &str, chrono: &str) -> pb::GetCourrierRequest {
    pb::GetCourrierRequest {
        tenant: tenant.into(),
        chrono: chrono.into(),
    }
}

/// The same log and data folder, served again (a restart).
async fn restart(hub: TestHub) -> TestHub {
    let kafka = hub.kafka.clone();
    let dir = hub.stop().await;
    let log: Arc<dyn EventLog> = match &kafka {
        None => Arc::new(EmbeddedLog::open(dir.path().join("log"), 4).unwrap()),
        Some(cfg) => Arc::new(KafkaLog::connect(cfg.clone()).await.unwrap()),
    };
    let hub = TestHub::start_on(log, kafka, dir).await;
    hub.settle().await;
    hub
}

async fn concurrent_registration_is_unique_and_gap_free(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.set_clock(at(2026, 3, 2, 9, 0));
    let mut clerks = Vec::new();
    for clerk in 0..8 {
        let mut c = hub.courrier();
        clerks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                let s = register(
                    &mut c,
                    header(GIVORS, &format!("c{clerk}-{i}")),
                    vec![pdf(clerk * 100 + i, 2000)],
                )
                .await
                .unwrap();
                got.push(s.chrono);
            }
            got
        }));
    }
    let mut chronos = Vec::new();
    for c in clerks {
        chronos.extend(c.await.unwrap());
    }
    chronos.sort();
    let expected: Vec<_> = (1..=80).map(|n| format!("GIV-2026-{n:06}")).collect();
    assert_eq!(chronos, expected, "unique and gap-free");

    // A retry with the same idempotency key (the same letter, the same scan) gets the same
    // number, and takes none; the key reused for another letter is refused.
    let mut c = hub.courrier();
    let again = register(&mut c, header(GIVORS, "c3-3"), vec![pdf(303, 2000)])
        .await
        .unwrap();
    assert!(chronos.contains(&again.chrono));
    let other = register(&mut c, header(GIVORS, "c3-3"), vec![])
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::AlreadyExists, "{other:?}");

    // The letters are in the sender's timeline, with their chrono.
    let tl = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0612345678"),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tl.entries.len(), 80);
    assert!(tl
        .entries
        .iter()
        .all(|e| e.kind == "courrier" && e.links.iter().any(|l| l.rel == "chrono")));

    // After a restart the sequence goes on; a new year starts again at 1.
    let hub = restart(hub).await;
    hub.set_clock(at(2026, 12, 31, 22, 30)); // 23:30 in Paris
    let mut c = hub.courrier();
    assert_eq!(
        register(&mut c, header(GIVORS, "after-restart"), vec![])
            .await
            .unwrap()
            .chrono,
        "GIV-2026-000081"
    );
    assert_eq!(
        register(&mut c, header(GRIGNY, "grigny-1"), vec![])
            .await
            .unwrap()
            .chrono,
        "GRI-2026-000001"
    );
    hub.set_clock(at(2026, 12, 31, 23, 30)); // 00:30 on 1 January in Paris
    assert_eq!(
        register(&mut c, header(GIVORS, "new-year"), vec![])
            .await
            .unwrap()
            .chrono,
        "GIV-2027-000001"
    );

    // A replay from offset 0 numbers every letter the same way.
    let (live, replayed, _) = hub.stop_and_replay(2000).await;
    assert_eq!(replayed.digest().unwrap(), live);
    assert!(replayed
        .courrier(GIVORS, "GIV-2027-000001")
        .unwrap()
        .is_some());
}

async fn bad_scans_are_refused_and_leave_nothing(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let mut c = hub.courrier();
    let before: u64 = hub.log.end_offsets().await.unwrap().iter().sum();
    let cases = [
        (
            vec![pdf(1, MAX_SCAN_BYTES as usize + 1)],
            "le scan 1 (scan-0.pdf) dépasse la taille maximale (1 Mio)",
        ),
        (
            vec![b"Bonjour, ceci est un courriel, pas un scan".to_vec()],
            "le scan 1 (scan-0.pdf) n'est ni un PDF, ni un TIFF, ni un JPEG, ni un PNG",
        ),
        (
            vec![pdf(2, 5000), b"GIF89a.........".to_vec()],
            "le scan 2 (scan-1.pdf) n'est ni un PDF, ni un TIFF, ni un JPEG, ni un PNG",
        ),
        (
            vec![pdf(3, 5000), b"%PD".to_vec()],
            "le scan 2 (scan-1.pdf) n'est ni un PDF, ni un TIFF, ni un JPEG, ni un PNG",
        ),
    ];
    for (i, (scans, message)) in cases.into_iter().enumerate() {
        let err = register(&mut c, header(GIVORS, &format!("bad-{i}")), scans)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), message);
    }
    let mut registered = header(GIVORS, "bad-registered");
    registered.kind = pb::courrier::Kind::RegisteredLetter as i32;
    let err = register(&mut c, registered, vec![]).await.unwrap_err();
    assert!(
        err.message().contains("numéro de suivi"),
        "{}",
        err.message()
    );
    let only_scan = c
        .register_courrier(tokio_stream::iter(vec![pb::RegisterCourrierRequest {
            part: Some(Part::Scan(pb::ScanChunk {
                data: pdf(9, 10),
                ..Default::default()
            })),
        }]))
        .await
        .unwrap_err();
    assert!(
        only_scan.message().contains("header"),
        "{}",
        only_scan.message()
    );

    // Nothing written, nothing stored, nothing half-uploaded.
    let after: u64 = hub.log.end_offsets().await.unwrap().iter().sum();
    assert_eq!(after, before);
    let content =
        contacthub_app::content::ContentStore::open(hub.dir.path().join("content")).unwrap();
    assert_eq!(content.counts().await.unwrap(), (0, 0));
    let list = c
        .list_courrier(pb::ListCourrierRequest {
            tenant: GIVORS.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(list.courriers.is_empty());

    // A good one afterwards takes number 1: refusals consumed no number.
    let ok = register(&mut c, header(GIVORS, "good"), vec![pdf(4, 200_000)])
        .await
        .unwrap();
    assert!(ok.chrono.ends_with("-000001"), "{}", ok.chrono);
    assert_eq!(ok.scans.len(), 1);
    assert_eq!(ok.scans[0].media_type, "application/pdf");
    assert_eq!(content.counts().await.unwrap(), (1, 0));
    hub.stop().await;
}

async fn wait_for<F: Fn(&pb::CourrierState) -> bool>(
    c: &mut Mailroom,
    chrono: &str,
    cond: F,
) -> pb::CourrierState {
    for _ in 0..200 {
        let s = c
            .get_courrier(get(GIVORS, chrono))
            .await
            .unwrap()
            .into_inner();
        if cond(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("letter {chrono} never reached the expected state");
}

async fn hot_folder_attaches_and_keeps_the_unmatched(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let mut c = hub.courrier();
    let letter = register(&mut c, header(GIVORS, "hot-1"), vec![])
        .await
        .unwrap();
    let inbox = hub.dir.path().join("scan-inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join(format!("{}.pdf", letter.chrono)), pdf(10, 3000)).unwrap();
    let png = [
        &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a][..],
        &[7u8; 500][..],
    ]
    .concat();
    std::fs::write(inbox.join("scan42.png"), &png).unwrap();
    std::fs::write(
        inbox.join("scan42.json"),
        format!("{{\"chrono\": \"{}\"}}", letter.chrono),
    )
    .unwrap();
    std::fs::write(inbox.join("GIV-2026-999999.pdf"), pdf(11, 100)).unwrap();
    std::fs::write(inbox.join("notes.txt"), b"pas un scan").unwrap();

    let s = wait_for(&mut c, &letter.chrono, |s| s.scans.len() == 2).await;
    let types: Vec<_> = s.scans.iter().map(|a| a.media_type.as_str()).collect();
    assert!(
        types.contains(&"application/pdf") && types.contains(&"image/png"),
        "{types:?}"
    );
    assert_eq!(s.history.iter().filter(|h| h.kind == "scan").count(), 2);

    let mut unmatched = Vec::new();
    for _ in 0..100 {
        unmatched = c
            .list_unmatched_scans(pb::ListUnmatchedScansRequest::default())
            .await
            .unwrap()
            .into_inner()
            .scans;
        if unmatched.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<_> = unmatched.iter().map(|u| u.filename.as_str()).collect();
    assert_eq!(names, ["GIV-2026-999999.pdf", "notes.txt"]);
    assert_eq!(unmatched[0].reason, "no letter GIV-2026-999999");
    assert!(
        unmatched[1].reason.contains("not a chrono number"),
        "{}",
        unmatched[1].reason
    );
    // Nothing is lost: attached scans are in the content store (and deleted from the inbox,
    // with their sidecars: no copy outlives an erasure), the rest wait in unmatched/.
    assert!(!inbox.join(format!("{}.pdf", letter.chrono)).exists());
    assert!(!inbox.join("scan42.json").exists() && !inbox.join("scan42.pdf").exists());
    assert!(!inbox.join("done").exists());
    assert!(inbox.join("unmatched").join("notes.txt").exists());
    hub.stop().await;
}

async fn the_internal_circuit_is_traced(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let mut c = hub.courrier();
    let day = 86_400_000_000i64;
    let t0 = at(2026, 4, 1, 8, 0);
    hub.set_clock(t0);
    let mut h = header(GIVORS, "circuit-1");
    h.received_at = Some(ts::from_micros(t0 - day));
    h.agent_id = "courrier-1".into();
    let letter = register(&mut c, h, vec![pdf(20, 1000)]).await.unwrap();
    assert_eq!(letter.status, pb::CourrierStatus::Registered as i32);

    hub.set_clock(t0 + day);
    c.route_courrier(pb::RouteCourrierRequest {
        tenant: GIVORS.into(),
        chrono: letter.chrono.clone(),
        service: "urbanisme".into(),
        agent_id: "courrier-1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    hub.set_clock(t0 + 2 * day);
    c.route_courrier(pb::RouteCourrierRequest {
        tenant: GIVORS.into(),
        chrono: letter.chrono.clone(),
        service: "voirie".into(),
        note: "relève de la voirie".into(),
        agent_id: "urba-2".into(),
    })
    .await
    .unwrap();
    hub.set_clock(t0 + 4 * day);
    c.record_step(pb::RecordStepRequest {
        tenant: GIVORS.into(),
        chrono: letter.chrono.clone(),
        step: "visa DGS".into(),
        agent_id: "dgs".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    hub.set_clock(t0 + 9 * day);
    let done = c
        .mark_answered(pb::MarkAnsweredRequest {
            tenant: GIVORS.into(),
            chrono: letter.chrono.clone(),
            answer_channel: pb::Channel::Email as i32,
            answer_ref: "<reponse-42@givors.example.fr>".into(),
            agent_id: "voirie-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status, pb::CourrierStatus::Answered as i32);
    assert_eq!(done.service, "voirie");
    let steps: Vec<_> = done
        .history
        .iter()
        .map(|h| {
            (
                h.kind.as_str(),
                h.service.as_str(),
                h.agent_id.as_str(),
                h.seconds_since_previous / 86_400,
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("registered", "urbanisme", "courrier-1", 0),
            ("routed", "urbanisme", "courrier-1", 1),
            ("reassigned", "voirie", "urba-2", 1),
            ("step", "voirie", "dgs", 2),
            ("answered", "voirie", "voirie-1", 5),
        ]
    );

    // A second letter, received 40 days ago, never answered: overdue (30 days for urbanisme).
    let mut late = header(GIVORS, "circuit-2");
    late.received_at = Some(ts::from_micros(t0 + 9 * day - 40 * day));
    let late = register(&mut c, late, vec![]).await.unwrap();
    let list =
        |status: pb::CourrierStatus, service: &str, overdue_only: bool| pb::ListCourrierRequest {
            tenant: GIVORS.into(),
            service: service.into(),
            status: status as i32,
            overdue_only,
            ..Default::default()
        };
    for (req, want) in [
        (
            list(pb::CourrierStatus::Unspecified, "voirie", false),
            &letter.chrono,
        ),
        (
            list(pb::CourrierStatus::Answered, "", false),
            &letter.chrono,
        ),
        (
            list(pb::CourrierStatus::Unspecified, "", true),
            &late.chrono,
        ),
    ] {
        let got: Vec<_> = c.list_courrier(req).await.unwrap().into_inner().courriers;
        let got: Vec<_> = got.into_iter().map(|s| s.chrono).collect();
        assert_eq!(got, std::slice::from_ref(want));
    }

    let report = c
        .courrier_report(pb::CourrierReportRequest {
            tenant: GIVORS.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (report.registered, report.routed, report.answered),
        (2, 1, 1)
    );
    assert!(
        (report.average_days_to_answer - 10.0).abs() < 1e-6,
        "{}",
        report.average_days_to_answer
    );
    assert_eq!(report.overdue.len(), 1);

    let receipt = c
        .get_receipt(get(GIVORS, &letter.chrono))
        .await
        .unwrap()
        .into_inner();
    assert!(receipt.pdf.starts_with(b"%PDF-"));
    if let Some(text) = pdf_text(&receipt.pdf) {
        assert!(
            text.contains(&letter.chrono)
                && text.contains("Mairie de Givors")
                && text.contains("30 jours"),
            "{text}"
        );
    }

    // The sender's timeline tells the story too.
    let tl = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&letter.citizen_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = tl.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "courrier_answered",
            "courrier_step",
            "courrier_routed",
            "courrier_routed",
            "courrier",
            "courrier"
        ]
    );
    hub.stop().await;
}

async fn the_mail_room_refuses_other_communes(backend: Backend) {
    let agents = format!(
        "[[agent]]\nid = 'courrier-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n",
        token_hash("givors-token"),
    );
    let hub = TestHub::start(&backend).await;
    let mut c = hub.courrier();
    let letter = register(&mut c, header(GIVORS, "iso-1"), vec![])
        .await
        .unwrap();
    let nf = |r: Result<tonic::Response<pb::CourrierState>, tonic::Status>| {
        assert_eq!(r.unwrap_err().code(), tonic::Code::NotFound);
    };
    nf(c.get_courrier(get(GRIGNY, &letter.chrono)).await);
    nf(c.route_courrier(pb::RouteCourrierRequest {
        tenant: GRIGNY.into(),
        chrono: letter.chrono.clone(),
        service: "x".into(),
        ..Default::default()
    })
    .await);
    nf(c.record_step(pb::RecordStepRequest {
        tenant: GRIGNY.into(),
        chrono: letter.chrono.clone(),
        step: "x".into(),
        ..Default::default()
    })
    .await);
    nf(c.mark_answered(pb::MarkAnsweredRequest {
        tenant: GRIGNY.into(),
        chrono: letter.chrono.clone(),
        answer_channel: pb::Channel::Email as i32,
        ..Default::default()
    })
    .await);
    assert_eq!(
        c.get_receipt(get(GRIGNY, &letter.chrono))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    let list = c
        .list_courrier(pb::ListCourrierRequest {
            tenant: GRIGNY.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(list.courriers.is_empty());
    let report = c
        .courrier_report(pb::CourrierReportRequest {
            tenant: GRIGNY.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.registered, 0);
    let unknown = c
        .get_courrier(get("99999", &letter.chrono))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    // The letter itself is untouched by those attempts.
    let s = c
        .get_courrier(get(GIVORS, &letter.chrono))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.history.len(), 1);
    let kafka = hub.kafka.clone();
    let dir = hub.stop().await;

    // With agents, a Givors clerk cannot even ask about Grigny.
    let log: Arc<dyn EventLog> = match &kafka {
        None => Arc::new(EmbeddedLog::open(dir.path().join("log"), 4).unwrap()),
        Some(cfg) => Arc::new(KafkaLog::connect(cfg.clone()).await.unwrap()),
    };
    let hub =
        TestHub::start_with_access_on(log, kafka, dir, Access::from_toml(&agents).unwrap()).await;
    let mut c = hub.courrier();
    let with = |t: &str, m: pb::GetCourrierRequest| {
        let mut r = tonic::Request::new(m);
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
        r
    };
    assert_eq!(
        c.get_courrier(with("givors-token", get(GRIGNY, "GRI-2026-000001")))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied
    );
    assert!(c
        .get_courrier(with("givors-token", get(GIVORS, &letter.chrono)))
        .await
        .is_ok());
    let mut req = tonic::Request::new(tokio_stream::iter(vec![pb::RegisterCourrierRequest {
        part: Some(Part::Header(header(GRIGNY, "iso-2"))),
    }]));
    req.metadata_mut()
        .insert("authorization", "Bearer givors-token".parse().unwrap());
    assert_eq!(
        c.register_courrier(req).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    hub.stop().await;
}

/// A receipt for a Vietnamese name about a Polish one reads as written, with the sender's
/// postal address where the envelope window shows it.
async fn receipts_print_every_name_as_written(backend: Backend) {
    let Some(_) = pdftotext() else {
        eprintln!("pdftotext is not installed: skipped");
        return;
    };
    let hub = TestHub::start(&backend).await;
    let citizen = pb::citizen_service_client::CitizenServiceClient::new(hub.channel.clone())
        .create_citizen(pb::CreateCitizenRequest {
            tenant: GIVORS.into(),
            identity: Some(pb::Identity {
                usage_name: "Nguyễn".into(),
                first_names: "Thị Minh Khai".into(),
                addresses: vec![pb::Address {
                    number: "3".into(),
                    street: "rue Pasteur".into(),
                    postcode: "69700".into(),
                    city: "Givors".into(),
                    complement: "Bâtiment Ø, 2ᵉ étage".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut c: Mailroom = hub.courrier();
    let mut h = header(GIVORS, "unicode-1");
    h.sender = Some(pb::Party {
        citizen_id: citizen.citizen_id.clone(),
        name: "Nguyễn Thị Minh Khai".into(),
        ..Default::default()
    });
    h.subject = "Demande de logement — Łukasz Żółć, 3ᵉ étage".into();
    let letter = register(&mut c, h, vec![]).await.unwrap();
    let receipt = c
        .get_receipt(pb::GetCourrierRequest {
            tenant: GIVORS.into(),
            chrono: letter.chrono.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let text = pdf_text(&receipt.pdf).unwrap();
    for expected in [
        "Nguyễn Thị Minh Khai",
        "Demande de logement — Łukasz Żółć, 3ᵉ étage",
        "3 rue Pasteur",
        "Bâtiment Ø, 2ᵉ étage",
        "69700 Givors",
        "Mairie de Givors",
        "Hôtel de ville",
        letter.chrono.as_str(),
        "Accusé de réception",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(!text.contains('?'), "no character lost:\n{text}");
    // With its request's reference and follow-up code, for the citizens' space.
    let request = contacthub_proto::v1::request_service_client::RequestServiceClient::new(
        hub.channel.clone(),
    )
    .get_request(pb::GetRequestRequest {
        tenant: GIVORS.into(),
        reference: letter.request_reference.clone(),
    })
    .await
    .unwrap()
    .into_inner();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!(
            "saisissez sa référence {} et le code de suivi {}",
            request.reference, request.follow_up_code
        )),
        "{flat}"
    );
    hub.stop().await;
}

/// An acknowledgement of receipt says what the Code des relations entre le public et
/// l'administration asks, with the commune's texts: the service in charge with its postal
/// address, phone and e-mail; for a category where silence is a decision, the date from which
/// it is (accepted for urbanisme, rejected for the CCAS) and the routes of appeal; nothing of
/// the kind for a category the communes file does not name.
async fn receipts_say_what_the_law_asks(backend: Backend) {
    let Some(_) = pdftotext() else {
        eprintln!("pdftotext is not installed: skipped");
        return;
    };
    let hub = TestHub::start(&backend).await;
    let mut c: Mailroom = hub.courrier();
    let received = at(2026, 11, 16, 10, 0);
    let mut text_of = async |category: pb::Category, service: &str, key: &str| {
        let mut h = header(GIVORS, key);
        h.category = category as i32;
        h.addressed_to_service = service.into();
        h.received_at = Some(contacthub_proto::ts::from_micros(received));
        let letter = register(&mut c, h, vec![]).await.unwrap();
        let receipt = c
            .get_receipt(pb::GetCourrierRequest {
                tenant: GIVORS.into(),
                chrono: letter.chrono.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        pdf_text(&receipt.pdf)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ccas = text_of(pb::Category::Ccas, "ccas", "crpa-1").await;
    for expected in [
        "Service chargé du dossier : Centre communal d'action sociale",
        "Adresse : CCAS de Givors, Place Camille Vallin, 69700 Givors",
        "Téléphone : 04 72 49 18 55 — courriel : ccas@example.fr",
        "votre demande sera réputée rejetée le 16/01/2027",
        "Voies et délais de recours : En cas de refus",
        "tribunal administratif de Lyon",
    ] {
        assert!(ccas.contains(expected), "{expected:?} in\n{ccas}");
    }
    let permit = text_of(pb::Category::Urbanisme, "urbanisme", "crpa-2").await;
    assert!(
        permit.contains("votre demande sera réputée acceptée le 16/01/2027"),
        "{permit}"
    );
    let culture = text_of(pb::Category::Culture, "culture", "crpa-3").await;
    assert!(!culture.contains("réputée"), "{culture}");
    assert!(!culture.contains("Voies et délais"), "{culture}");
    hub.stop().await;
}
