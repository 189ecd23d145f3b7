//! Timelines through the real gRPC API: cross-channel, watch, read-your-writes visits,
//! dead letters, paging and merges. Each body runs on the embedded log and on Kafka.

use contacthub_core::demo;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::render::render_timeline;
use contacthub_core::tenant::Tenants;
use contacthub_tests::*;
use expect_test::expect;
use prost::Message;
use std::time::Duration;
use tokio_stream::StreamExt;

on_every_backend!(
    one_citizen_three_channels,
    watch_delivers_new_entries,
    record_visit_is_visible_when_it_returns,
    malformed_events_are_dead_lettered,
    paging_and_filters,
    merged_citizens_share_a_timeline,
    replay_is_byte_identical,
);

async fn one_citizen_three_channels(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    // Published out of time order, each with the number written differently.
    hub.publish(&[
        letter(GIVORS, "000123", "+33 6 12 34 56 78", at(2026, 3, 10, 9, 0)),
        call(GIVORS, "c1", "06 12 34 56 78", at(2026, 3, 2, 14, 30)),
        web_form(
            GIVORS,
            "f1",
            "0033612345678",
            "Marie.Durand@Example.fr",
            at(2026, 3, 5, 20, 15),
        ),
    ])
    .await;
    hub.settle().await;

    let mut desk = hub.desk();
    let r = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("06.12.34.56.78"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = r.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["courrier", "web_form", "phone_call"],
        "newest first"
    );
    let citizen = r.citizen.clone().unwrap();
    assert!(r.entries.iter().all(|e| e.citizen_id == citizen.citizen_id));
    expect![[r#"
        Usager GIV-P000001  Marie Durand  [fiche provisoire]
          tél.     06 12 34 56 78
          courriel marie.durand@example.fr
          3 contact(s)
        10/03/2026 10:00 → courrier          Courrier reçu (lettre) n° GIV-2026-000123, pour Urbanisme [urbanisme]
            objet : Permis de construire
            chrono : GIV-2026-000123
        05/03/2026 21:15 → démarche en ligne Démarche en ligne « acte-naissance » [état civil]
            submission_id : f1
        02/03/2026 15:30 → téléphone         Appel entrant, répondu (2 min 05 s) [autre]
    "#]]
    .assert_eq(&render_timeline(Some(&citizen), &r.entries));

    // The same person by e-mail, in any case.
    let by_mail = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_email(" MARIE.durand@example.FR"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_mail.entries, r.entries);
    hub.stop().await;
}

async fn watch_delivers_new_entries(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.publish(&[call(GIVORS, "w0", "0611111111", at(2026, 1, 1, 8, 0))])
        .await;
    hub.settle().await;
    let mut stream = hub
        .desk()
        .watch_timeline(pb::WatchTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("+33611111111"),
        })
        .await
        .unwrap()
        .into_inner();
    // Someone else first, then the watched citizen.
    hub.publish(&[
        call(GIVORS, "w1", "0622222222", at(2026, 1, 2, 8, 0)),
        call(GRIGNY, "w2", "0611111111", at(2026, 1, 2, 9, 0)),
    ])
    .await;
    let wanted = call(GIVORS, "w3", "06 11 11 11 11", at(2026, 1, 3, 8, 0));
    hub.publish(std::slice::from_ref(&wanted)).await;
    let got = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("no entry within 30 s")
        .expect("stream ended")
        .expect("stream error");
    assert_eq!(got.event_id, wanted.event_id);
    hub.stop().await;
}

async fn record_visit_is_visible_when_it_returns(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let mut desk = hub.desk();
    let visit = pb::RecordVisitRequest {
        tenant: GIVORS.into(),
        party: Some(pb::Party {
            phone: "07 98 76 54 32".into(),
            name: "Karim Benali".into(),
            ..Default::default()
        }),
        desk: "accueil-hdv".into(),
        category: pb::Category::Ccas as i32,
        subject: "Dossier d'aide".into(),
        notes: "Pièces justificatives apportées".into(),
        idempotency_key: "visit-1".into(),
        agent_id: "agent-7".into(),
        ..Default::default()
    };
    let entry = desk
        .record_visit(visit.clone())
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert_eq!(entry.kind, "desk_visit");
    // Visible right away, without waiting.
    let tl = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0798765432"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tl.entries, vec![entry.clone()]);
    // A retry with the same idempotency key adds nothing.
    let again = desk
        .record_visit(visit.clone())
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert_eq!(again.event_id, entry.event_id);
    hub.settle().await;
    let tl = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&entry.citizen_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tl.entries.len(), 1);
    // Bad input is refused with a reason, and nothing is written.
    let mut bad = visit.clone();
    bad.party.as_mut().unwrap().phone = "12".into();
    let err = desk.record_visit(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("n'est pas un numéro de téléphone"),
        "{}",
        err.message()
    );
    let mut nobody = visit;
    nobody.party = None;
    let err = desk.record_visit(nobody).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("party"), "{}", err.message());
    hub.stop().await;
}

async fn malformed_events_are_dead_lettered(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let good = call(GIVORS, "g1", "0633333333", at(2026, 2, 1, 10, 0));
    let bytes = good.encode_to_vec();
    hub.publish_raw(GIVORS.as_bytes(), bytes[..bytes.len() / 2].to_vec())
        .await;
    hub.publish_raw(GIVORS.as_bytes(), b"\xff\xfe not protobuf at all".to_vec())
        .await;
    let mut unknown = call("99999", "u1", "0633333333", at(2026, 2, 1, 10, 0));
    unknown.tenant = "99999".into();
    hub.publish_raw(GIVORS.as_bytes(), unknown.encode_to_vec())
        .await;
    let mut no_id = call(GIVORS, "n1", "0633333333", at(2026, 2, 1, 10, 0));
    no_id.event_id.clear();
    hub.publish(&[no_id]).await;
    let mut absurd = call(GIVORS, "a1", "0633333333", at(3026, 2, 1, 10, 0));
    absurd.recorded_at = Some(contacthub_proto::ts::from_micros(at(2026, 2, 1, 10, 0)));
    hub.publish(&[absurd]).await;
    let mut no_party = call(GIVORS, "p1", "", at(2026, 2, 1, 10, 0));
    no_party.personal = None;
    hub.publish(&[no_party]).await;
    hub.publish(std::slice::from_ref(&good)).await;
    hub.settle().await;

    let dead = hub
        .ops()
        .list_dead_letters(pb::ListDeadLettersRequest { limit: 100 })
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    // Listed in log order, each with its reason and raw bytes.
    let reasons: Vec<_> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 6, "{reasons:#?}");
    assert_eq!(
        dead[0].raw,
        bytes[..bytes.len() / 2],
        "truncated bytes kept as they were"
    );
    assert!(!reasons[0].is_empty());
    assert_eq!(dead[1].raw, b"\xff\xfe not protobuf at all");
    let expected = [
        "not a contacthub event",
        "unknown tenant \"99999\"",
        "missing event_id",
        "occurred_at 3026-02-01T10:00:00Z is absurd",
        "missing party",
    ];
    for (reason, want) in reasons[1..].iter().zip(expected) {
        assert!(reason.contains(want), "{reason:?} should say {want:?}");
    }
    // The good event after them was projected.
    let tl = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0633333333"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tl.entries.len(), 1);
    assert_eq!(tl.entries[0].event_id, good.event_id);
    let status = hub
        .ops()
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.dead_letters, 6);
    assert_eq!(status.partitions.iter().map(|p| p.lag).sum::<u64>(), 0);
    hub.stop().await;
}

async fn paging_and_filters(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let mut events = Vec::new();
    for i in 0..25u32 {
        let when = at(2025, 1, 1, 0, 0) + i64::from(i) * 86_400_000_000;
        events.push(if i % 5 == 0 {
            letter(GIVORS, &format!("{i:06}"), "0644444444", when)
        } else {
            call(GIVORS, &format!("p{i}"), "0644444444", when)
        });
    }
    hub.publish(&events).await;
    hub.settle().await;
    let mut desk = hub.desk();
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = desk
            .get_timeline(pb::GetTimelineRequest {
                tenant: GIVORS.into(),
                citizen: by_phone("0644444444"),
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 7);
        seen.extend(
            page.entries
                .into_iter()
                .map(|e| e.occurred_at.unwrap().seconds),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 25);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first across pages"
    );

    let letters = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0644444444"),
            channels: vec![pb::Channel::Courrier as i32],
            since: Some(contacthub_proto::ts::from_micros(at(2025, 1, 6, 0, 0))),
            until: Some(contacthub_proto::ts::from_micros(at(2025, 1, 21, 0, 0))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let days: Vec<_> = letters
        .entries
        .iter()
        .map(|e| e.links[0].target.clone())
        .collect();
    assert_eq!(
        days,
        ["GIV-2026-000015", "GIV-2026-000010", "GIV-2026-000005"]
    );

    // An empty window is an empty page, not an error.
    let empty = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0644444444"),
            since: Some(contacthub_proto::ts::from_micros(at(2025, 2, 1, 0, 0))),
            until: Some(contacthub_proto::ts::from_micros(at(2025, 1, 1, 0, 0))),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.entries.is_empty() && empty.next_page_token.is_empty());

    let err = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0644444444"),
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    hub.stop().await;
}

fn back_office(tenant: &str, id: &str, when: i64, payload: Payload) -> pb::Event {
    let mut e = contacthub_core::event::contact(
        tenant,
        "test-bo",
        id,
        when,
        when,
        payload,
        pb::Party::default(),
    );
    e.channel = pb::Channel::BackOffice as i32;
    e.direction = pb::Direction::Internal as i32;
    e.personal = None;
    e
}

async fn merged_citizens_share_a_timeline(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.publish(&[
        call(GIVORS, "m1", "0655555555", at(2026, 4, 1, 9, 0)),
        web_form(GIVORS, "m2", "", "jean@example.fr", at(2026, 4, 2, 9, 0)),
    ])
    .await;
    hub.settle().await;
    let store = &hub.store;
    let a = store
        .by_identifier(GIVORS, "phone", "+33655555555")
        .unwrap()
        .unwrap();
    let b = store
        .by_identifier(GIVORS, "email", "jean@example.fr")
        .unwrap()
        .unwrap();
    assert_ne!(a, b, "two provisional citizens before the merge");
    let link = back_office(
        GIVORS,
        "link-1",
        at(2026, 4, 3, 9, 0),
        Payload::IdentityLinked(pb::IdentityLinked {
            citizen_id: b.clone(),
            into_citizen_id: a.clone(),
        }),
    );
    hub.publish(&[link]).await;
    hub.settle().await;
    let mut desk = hub.desk();
    let tl = |r: Option<pb::CitizenRef>| pb::GetTimelineRequest {
        tenant: GIVORS.into(),
        citizen: r,
        ..Default::default()
    };
    let merged = desk
        .get_timeline(tl(by_email("jean@example.fr")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(merged.citizen.as_ref().unwrap().citizen_id, a);
    let kinds: Vec<_> = merged.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["identity_linked", "web_form", "phone_call"]);

    let unlink = back_office(
        GIVORS,
        "unlink-1",
        at(2026, 4, 4, 9, 0),
        Payload::IdentityUnlinked(pb::IdentityUnlinked {
            citizen_id: b.clone(),
            from_citizen_id: a.clone(),
        }),
    );
    hub.publish(&[unlink]).await;
    hub.settle().await;
    let split = desk
        .get_timeline(tl(by_phone("0655555555")))
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = split.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["phone_call"]);
    hub.stop().await;
}

async fn replay_is_byte_identical(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 15,
        ..Default::default()
    };
    let events: Vec<_> = demo::events(&cfg, &Tenants::builtin()).collect();
    for chunk in events.chunks(250) {
        hub.publish(chunk).await;
    }
    hub.publish_raw(GIVORS.as_bytes(), b"poison".to_vec()).await;
    hub.settle().await;
    let live = hub.store.digest().unwrap();
    let applied = hub
        .store
        .counter(&contacthub_core::keys::Counter::Applied)
        .unwrap();
    assert_eq!(applied as usize, events.len());
    let (_, replayed, n) = hub.stop_and_replay(97).await;
    assert_eq!(n as usize, events.len() + 1);
    assert_eq!(replayed.digest().unwrap(), live);
}
