//! Tenant isolation: commune A's citizens are never visible through commune B, on any RPC.

use contacthub_core::pb;
use contacthub_tests::*;
use std::time::Duration;
use tokio_stream::StreamExt;

on_every_backend!(no_rpc_crosses_communes);

fn tl(tenant: &str, r: Option<pb::CitizenRef>) -> pb::GetTimelineRequest {
    pb::GetTimelineRequest {
        tenant: tenant.into(),
        citizen: r,
        ..Default::default()
    }
}

async fn no_rpc_crosses_communes(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let mut shared_id_a = call(GIVORS, "x1", "0600000001", at(2026, 5, 1, 9, 0));
    shared_id_a
        .personal
        .as_mut()
        .unwrap()
        .party
        .as_mut()
        .unwrap()
        .citizen_id = "EXT-42".into();
    let mut shared_id_b = call(GRIGNY, "x2", "0600000002", at(2026, 5, 1, 10, 0));
    shared_id_b
        .personal
        .as_mut()
        .unwrap()
        .party
        .as_mut()
        .unwrap()
        .citizen_id = "EXT-42".into();
    hub.publish(&[
        // The same citizen id registered in both communes.
        register(
            GIVORS,
            "EXT-42",
            "Anne Givors",
            "0600000001",
            at(2026, 4, 1, 8, 0),
        ),
        register(
            GRIGNY,
            "EXT-42",
            "Bruno Grigny",
            "0600000002",
            at(2026, 4, 1, 8, 0),
        ),
        // Same person known to both communes, by phone.
        call(GIVORS, "a1", "06 77 77 77 77", at(2026, 5, 1, 8, 0)),
        web_form(
            GIVORS,
            "a2",
            "06 77 77 77 77",
            "only.givors@example.fr",
            at(2026, 5, 2, 8, 0),
        ),
        call(GRIGNY, "b1", "+33 6 77 77 77 77", at(2026, 5, 3, 8, 0)),
        // Same external citizen id in both communes.
        shared_id_a,
        shared_id_b,
    ])
    .await;
    hub.settle().await;
    let mut desk = hub.desk();

    // By phone: each commune sees only its own contacts.
    let a = desk
        .get_timeline(tl(GIVORS, by_phone("0677777777")))
        .await
        .unwrap()
        .into_inner();
    let b = desk
        .get_timeline(tl(GRIGNY, by_phone("0677777777")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.entries.len(), 2);
    assert_eq!(b.entries.len(), 1);
    assert!(a
        .entries
        .iter()
        .all(|e| e.event_id != b.entries[0].event_id));
    assert_eq!(
        b.citizen.unwrap().emails.len(),
        0,
        "Givors' e-mail never reaches Grigny"
    );

    // By e-mail and by citizen id of the other commune: not found.
    let err = desk
        .get_timeline(tl(GRIGNY, by_email("only.givors@example.fr")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = desk
        .get_timeline(tl(GRIGNY, by_id(&a.citizen.unwrap().citizen_id)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // The same citizen id in two communes names two people.
    let ga = desk
        .get_timeline(tl(GIVORS, by_id("EXT-42")))
        .await
        .unwrap()
        .into_inner();
    let gb = desk
        .get_timeline(tl(GRIGNY, by_id("EXT-42")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ga.entries.len(), gb.entries.len()),
        (2, 2),
        "each registration and call"
    );
    assert_ne!(ga.entries[0].event_id, gb.entries[0].event_id);
    assert_eq!(ga.citizen.unwrap().phones, ["+33600000001"]);

    // Watch in Grigny never receives Givors' entries for the same number.
    let mut watch = desk
        .watch_timeline(pb::WatchTimelineRequest {
            tenant: GRIGNY.into(),
            citizen: by_phone("0677777777"),
        })
        .await
        .unwrap()
        .into_inner();
    hub.publish(&[call(GIVORS, "a3", "0677777777", at(2026, 5, 4, 8, 0))])
        .await;
    let own = call(GRIGNY, "b2", "0677777777", at(2026, 5, 5, 8, 0));
    hub.publish(std::slice::from_ref(&own)).await;
    let first = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first.event_id, own.event_id,
        "the Givors call was not delivered to Grigny"
    );

    // A visit recorded in Grigny lands in Grigny only.
    let visit = desk
        .record_visit(pb::RecordVisitRequest {
            tenant: GRIGNY.into(),
            party: Some(party_phone("0677777777")),
            desk: "accueil".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    let a_after = desk
        .get_timeline(tl(GIVORS, by_phone("0677777777")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a_after.entries.len(), 3);
    assert!(a_after.entries.iter().all(|e| e.event_id != visit.event_id));

    // Unknown or missing tenants are refused on every RPC.
    for tenant in ["", "99999"] {
        let e = desk
            .get_timeline(tl(tenant, by_phone("0677777777")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{tenant:?}");
        let e = desk
            .watch_timeline(pb::WatchTimelineRequest {
                tenant: tenant.into(),
                citizen: by_phone("0677777777"),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = desk
            .record_visit(pb::RecordVisitRequest {
                tenant: tenant.into(),
                party: Some(party_phone("0677777777")),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
    hub.stop().await;
}

on_every_backend!(agents_see_only_their_communes);

fn with_token<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

async fn agents_see_only_their_communes(backend: Backend) {
    let agents = format!(
        "[[agent]]\nid = 'accueil-givors-1'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\
         [[agent]]\nid = 'syndicat-ops'\ntoken_sha256 = '{}'\ntenants = ['*']\nops = true\n",
        token_hash("givors-token"),
        token_hash("ops-token"),
    );
    let hub = TestHub::start_with_access(&backend, Access::from_toml(&agents).unwrap()).await;
    hub.publish(&[
        call(GIVORS, "a1", "0688888888", at(2026, 7, 1, 8, 0)),
        call(GRIGNY, "b1", "0688888888", at(2026, 7, 1, 9, 0)),
    ])
    .await;
    hub.settle().await;
    let mut desk = hub.desk();
    let ok = desk
        .get_timeline(with_token(
            "givors-token",
            tl(GIVORS, by_phone("0688888888")),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.entries.len(), 1);
    for (token, code) in [
        (Some("givors-token"), tonic::Code::PermissionDenied),
        (Some("wrong"), tonic::Code::Unauthenticated),
        (None, tonic::Code::Unauthenticated),
    ] {
        let req = tl(GRIGNY, by_phone("0688888888"));
        let req = match token {
            Some(t) => with_token(t, req),
            None => tonic::Request::new(req),
        };
        assert_eq!(
            desk.get_timeline(req).await.unwrap_err().code(),
            code,
            "{token:?}"
        );
        let watch = pb::WatchTimelineRequest {
            tenant: GRIGNY.into(),
            citizen: by_phone("0688888888"),
        };
        let watch = match token {
            Some(t) => with_token(t, watch),
            None => tonic::Request::new(watch),
        };
        assert_eq!(desk.watch_timeline(watch).await.unwrap_err().code(), code);
    }
    let refused = desk
        .record_visit(with_token(
            "givors-token",
            pb::RecordVisitRequest {
                tenant: GRIGNY.into(),
                party: Some(party_phone("0688888888")),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    // The agent written on the event is the authenticated one, not the claimed one.
    let visit = desk
        .record_visit(with_token(
            "givors-token",
            pb::RecordVisitRequest {
                tenant: GIVORS.into(),
                party: Some(party_phone("0688888888")),
                agent_id: "someone-else".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert_eq!(visit.agent_id, "accueil-givors-1");
    // Syndicate-wide agents may read every commune; ops needs the ops right.
    let b = desk
        .get_timeline(with_token("ops-token", tl(GRIGNY, by_phone("0688888888"))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.entries.len(), 1);
    let mut ops = hub.ops();
    let denied = ops
        .get_status(with_token("givors-token", pb::GetStatusRequest {}))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(ops
        .get_status(with_token("ops-token", pb::GetStatusRequest {}))
        .await
        .is_ok());
    hub.stop().await;
}
