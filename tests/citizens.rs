//! Citizen records end to end (gRPC CitizenService and the CLI): create, correct, search the
//! way an accueil agent types, merge and unmerge with a reason, households; bad input and
//! other communes refused with nothing written. Every body runs on the embedded log and on
//! Kafka.

use contacthub_proto::v1 as pb;
use contacthub_proto::v1::citizen_service_client::CitizenServiceClient;
use contacthub_tests::*;
use tonic::transport::Channel;

on_every_backend!(
    shared_identifiers_wait_for_an_agent_and_duplicates_are_proposed,
    records_are_created_found_and_corrected,
    merges_are_reversible_and_households_gather_contacts,
    a_merged_record_holds_the_union_of_both,
    bad_citizen_requests_say_what_is_wrong_and_write_nothing,
);

fn client(hub: &TestHub) -> CitizenServiceClient<Channel> {
    CitizenServiceClient::new(hub.channel.clone())
}

fn identity(first: &str, usage: &str, phone: &str, street: &str) -> pb::Identity {
    pb::Identity {
        usage_name: usage.into(),
        first_names: first.into(),
        birth_date: "1984-03-12".into(),
        addresses: vec![pb::Address {
            number: "12".into(),
            street: street.into(),
            postcode: "69700".into(),
            city: "Givors".into(),
            ..Default::default()
        }],
        phones: vec![phone.into()],
        emails: vec![format!(
            "{}.{}@example.fr",
            first.to_lowercase(),
            usage.to_lowercase()
        )
        .replace(' ', "")],
        preferred_channel: pb::ContactChannel::Email as i32,
        ..Default::default()
    }
}

async fn create(hub: &TestHub, tenant: &str, i: pb::Identity) -> pb::Citizen {
    client(hub)
        .create_citizen(pb::CreateCitizenRequest {
            tenant: tenant.into(),
            identity: Some(i),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("create: {s}"))
        .into_inner()
}

async fn search(hub: &TestHub, tenant: &str, q: &str) -> Vec<(String, String)> {
    client(hub)
        .search_citizens(pb::SearchCitizensRequest {
            tenant: tenant.into(),
            query: q.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("search {q:?}: {s}"))
        .into_inner()
        .hits
        .into_iter()
        .map(|h| (h.citizen.unwrap().citizen_id, h.matched_by))
        .collect()
}

fn ids(hits: &[(String, String)]) -> Vec<&str> {
    hits.iter().map(|(id, _)| id.as_str()).collect()
}

async fn records_are_created_found_and_corrected(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let marie = create(
        &hub,
        GIVORS,
        identity("Marie", "Durand", "06 12 34 56 78", "rue Émile Zola"),
    )
    .await;
    let ana = create(
        &hub,
        GIVORS,
        identity(
            "Ana",
            "Vélasquez-Durand",
            "06 98 76 54 32",
            "avenue Jean Jaurès",
        ),
    )
    .await;
    let other = create(
        &hub,
        GRIGNY,
        identity("Marie", "Durand", "06 12 34 56 78", "rue Émile Zola"),
    )
    .await;
    assert_eq!(
        marie.citizen_id, "GIV-000001",
        "ids from the commune's sequence"
    );
    assert_eq!(ana.citizen_id, "GIV-000002");
    assert_eq!(other.citizen_id, "GRI-000001");
    assert_eq!(marie.display_name, "Marie Durand");
    assert!(!marie.provisional);

    for (q, want) in [
        ("durand marie", vec!["GIV-000001"]),
        ("Marie DURAND", vec!["GIV-000001"]),
        ("velasquez", vec!["GIV-000002"]),
        ("velazquez", vec!["GIV-000002"]),
        ("vélasq", vec!["GIV-000002"]),
        ("12 rue Émile Zola", vec!["GIV-000001"]),
        ("06.12.34.56.78", vec!["GIV-000001"]),
        ("+33 6 98 76 54 32", vec!["GIV-000002"]),
        ("marie.durand@example.fr", vec!["GIV-000001"]),
        ("GIV-000002", vec!["GIV-000002"]),
        ("zola jaures", vec![]),
        // Titles and civilities as agents type them are not part of anyone's name.
        ("madame durand marie", vec!["GIV-000001"]),
        ("Mme Durand Marie", vec!["GIV-000001"]),
        ("M. Velasquez", vec!["GIV-000002"]),
    ] {
        assert_eq!(ids(&search(&hub, GIVORS, q).await), want, "{q}");
    }
    // Found by the street: the agent is told so.
    assert_eq!(
        search(&hub, GIVORS, "rue emile zola").await,
        [("GIV-000001".to_string(), "address".to_string())]
    );
    // Both Durand, the exact identifier first; another commune's Marie never appears.
    let hits = search(&hub, GIVORS, "durand").await;
    assert_eq!(ids(&hits).len(), 2);
    let by_phone = search(&hub, GIVORS, "0612345678").await;
    assert_eq!(by_phone, [("GIV-000001".to_string(), "phone".to_string())]);
    assert_eq!(ids(&search(&hub, GRIGNY, "durand").await), ["GRI-000001"]);
    let err = client(&hub)
        .get_citizen(pb::GetCitizenRequest {
            tenant: GRIGNY.into(),
            citizen_id: marie.citizen_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // A contact by her phone lands in her record; a letter is found by its number.
    hub.publish(&[letter(
        GIVORS,
        "000777",
        "06 12 34 56 78",
        at(2026, 3, 1, 9, 0),
    )])
    .await;
    hub.settle().await;
    assert_eq!(
        ids(&search(&hub, GIVORS, "GIV-2026-000777").await),
        ["GIV-000001"]
    );
    // And a démarche by its submission id.
    hub.publish(&[web_form(
        GIVORS,
        "DEM-2026-4242",
        "06 98 76 54 32",
        "",
        at(2026, 3, 2, 9, 0),
    )])
    .await;
    hub.settle().await;
    assert_eq!(
        search(&hub, GIVORS, "DEM-2026-4242").await,
        [("GIV-000002".to_string(), "reference".to_string())]
    );

    // A correction: she now uses her married name; the index follows, the change is in her
    // timeline with its agent.
    let mut changed = identity("Marie", "Lefèvre", "06 12 34 56 78", "rue Émile Zola");
    changed.birth_name = "Durand".into();
    let updated = client(&hub)
        .update_citizen(pb::UpdateCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            identity: Some(changed),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.display_name, "Marie Lefèvre");
    assert_eq!(ids(&search(&hub, GIVORS, "lefevre").await), ["GIV-000001"]);
    assert_eq!(
        ids(&search(&hub, GIVORS, "durand marie").await),
        ["GIV-000001"],
        "the birth name still finds her"
    );
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&marie.citizen_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<_> = timeline.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["citizen_updated", "citizen_registered", "courrier"]);
    hub.stop().await;
}

async fn merges_are_reversible_and_households_gather_contacts(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let marie = create(
        &hub,
        GIVORS,
        identity("Marie", "Durand", "06 12 34 56 78", "rue Émile Zola"),
    )
    .await;
    // The same person, known only by an SMS from another number: a provisional record.
    let mut sms = call(GIVORS, "s1", "07 11 22 33 44", at(2026, 4, 1, 9, 0));
    sms.payload = Some(pb::event::Payload::Sms(pb::Sms {
        message_sid: "SM1".into(),
        ..Default::default()
    }));
    sms.channel = pb::Channel::Sms as i32;
    hub.publish(&[sms]).await;
    hub.settle().await;
    let provisional = hub
        .store
        .by_identifier(GIVORS, "phone", "+33711223344")
        .unwrap()
        .unwrap();
    let digest_before = timeline_ids(&hub, &marie.citizen_id).await;

    let merged = client(&hub)
        .merge_citizens(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: provisional.clone(),
            into_citizen_id: marie.citizen_id.clone(),
            reason: "même personne : confirmé au guichet".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(merged.citizen_id, marie.citizen_id);
    let union = timeline_ids(&hub, &marie.citizen_id).await;
    assert!(union.len() > digest_before.len());
    // Searching the provisional record's number finds the merged record.
    assert_eq!(
        ids(&search(&hub, GIVORS, "07 11 22 33 44").await),
        [marie.citizen_id.as_str()]
    );

    client(&hub)
        .unmerge_citizen(pb::UnmergeCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: provisional.clone(),
            reason: "erreur : homonyme".into(),
        })
        .await
        .unwrap();
    let after: Vec<String> = timeline_ids(&hub, &marie.citizen_id)
        .await
        .into_iter()
        .filter(|k| !k.starts_with("identity_"))
        .collect();
    assert_eq!(
        after, digest_before,
        "the unmerge gives back the very timeline"
    );

    // A cycle is refused: b into a after a into b.
    let other = create(
        &hub,
        GIVORS,
        identity("Jean", "Petit", "06 66 66 66 66", "rue Pasteur"),
    )
    .await;
    client(&hub)
        .merge_citizens(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: other.citizen_id.clone(),
            into_citizen_id: provisional.clone(),
            reason: "même personne".into(),
        })
        .await
        .unwrap();
    let cycle = client(&hub)
        .merge_citizens(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: provisional.clone(),
            into_citizen_id: other.citizen_id.clone(),
            reason: "même personne".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(cycle.code(), tonic::Code::InvalidArgument);
    assert!(cycle.message().contains("cycle"), "{cycle:?}");
    // A household: two members, their recent contacts together, newest first.
    let child = create(
        &hub,
        GIVORS,
        identity("Léo", "Durand", "06 55 55 55 55", "rue Émile Zola"),
    )
    .await;
    for (who, role) in [
        (&marie.citizen_id, "responsable"),
        (&child.citizen_id, "enfant"),
    ] {
        client(&hub)
            .set_household_member(pb::SetHouseholdMemberRequest {
                tenant: GIVORS.into(),
                household_id: "FOY-1".into(),
                citizen_id: who.clone(),
                role: role.into(),
                member: true,
            })
            .await
            .unwrap();
    }
    // A visit the parent makes for the child: in both timelines and in the household view.
    let visit = hub
        .desk()
        .record_visit(pb::RecordVisitRequest {
            tenant: GIVORS.into(),
            party: Some(pb::Party {
                citizen_id: marie.citizen_id.clone(),
                ..Default::default()
            }),
            for_citizen_ids: vec![child.citizen_id.clone()],
            subject: "Inscription à la cantine".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert_eq!(visit.citizen_id, marie.citizen_id);
    assert!(timeline_ids(&hub, &child.citizen_id)
        .await
        .contains(&format!("desk_visit/{}", visit.event_id)));
    let h = client(&hub)
        .get_household(pb::GetHouseholdRequest {
            tenant: GIVORS.into(),
            household_id: "FOY-1".into(),
            recent: 50,
        })
        .await
        .unwrap()
        .into_inner();
    let members: Vec<_> = h
        .members
        .iter()
        .map(|m| {
            (
                m.citizen.as_ref().unwrap().citizen_id.clone(),
                m.role.clone(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            (marie.citizen_id.clone(), "responsable".to_string()),
            (child.citizen_id.clone(), "enfant".to_string())
        ]
    );
    assert!(h.recent.iter().any(|e| e.citizen_id == child.citizen_id));
    assert_eq!(
        h.recent
            .iter()
            .filter(|e| e.event_id == visit.event_id)
            .count(),
        1,
        "once in the household view, though in two timelines"
    );
    assert!(h.recent.iter().any(|e| e.citizen_id == marie.citizen_id));
    let times: Vec<_> = h
        .recent
        .iter()
        .map(|e| e.occurred_at.unwrap().seconds)
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    hub.stop().await;
}

/// Merging a complete record into a new, nearly empty one (the agent picked the wrong
/// survivor): the survivor shows her mobile, e-mail, address, preferred channel and
/// household; searching her mobile shows that number; an unmerge gives each its own again.
async fn a_merged_record_holds_the_union_of_both(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let marie = create(
        &hub,
        GIVORS,
        identity("Marie", "Durand", "06 12 34 56 78", "rue Émile Zola"),
    )
    .await;
    client(&hub)
        .set_household_member(pb::SetHouseholdMemberRequest {
            tenant: GIVORS.into(),
            household_id: "FOY-7".into(),
            citizen_id: marie.citizen_id.clone(),
            role: "parent".into(),
            member: true,
        })
        .await
        .unwrap();
    let empty = create(
        &hub,
        GIVORS,
        pb::Identity {
            usage_name: "Durand".into(),
            phones: vec!["04 78 00 00 01".into()],
            ..Default::default()
        },
    )
    .await;
    let get = |id: String| {
        let hub = &hub;
        async move {
            client(hub)
                .get_citizen(pb::GetCitizenRequest {
                    tenant: GIVORS.into(),
                    citizen_id: id,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = get(marie.citizen_id.clone()).await;
    let survivor = client(&hub)
        .merge_citizens(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            into_citizen_id: empty.citizen_id.clone(),
            reason: "même personne".into(),
        })
        .await
        .unwrap()
        .into_inner();
    for c in [survivor, get(empty.citizen_id.clone()).await] {
        assert_eq!(c.citizen_id, empty.citizen_id);
        assert_eq!(c.phones, ["+33478000001", "+33612345678"], "{c:?}");
        assert_eq!(c.emails, ["marie.durand@example.fr"]);
        assert_eq!(c.households, ["FOY-7"]);
        let i = c.identity.unwrap();
        assert_eq!(i.usage_name, "Durand", "the survivor's own value first");
        assert_eq!(i.first_names, "Marie", "what only the merged record holds");
        assert_eq!(i.birth_date, "1984-03-12");
        assert_eq!(i.addresses.len(), 1);
        assert_eq!(i.preferred_channel, pb::ContactChannel::Email as i32);
    }
    let hits = client(&hub)
        .search_citizens(pb::SearchCitizensRequest {
            tenant: GIVORS.into(),
            query: "06 12 34 56 78".into(),
            page_size: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 1);
    let hit = hits[0].citizen.clone().unwrap();
    assert_eq!(hit.citizen_id, empty.citizen_id);
    assert!(hit.phones.contains(&"+33612345678".to_string()), "{hit:?}");
    // The household names the survivor, once.
    let h = client(&hub)
        .get_household(pb::GetHouseholdRequest {
            tenant: GIVORS.into(),
            household_id: "FOY-7".into(),
            recent: 5,
        })
        .await
        .unwrap()
        .into_inner();
    let members: Vec<_> = h
        .members
        .iter()
        .map(|m| m.citizen.as_ref().unwrap().citizen_id.clone())
        .collect();
    assert_eq!(members, std::slice::from_ref(&empty.citizen_id));

    client(&hub)
        .unmerge_citizen(pb::UnmergeCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            reason: "erreur".into(),
        })
        .await
        .unwrap();
    let alone = get(empty.citizen_id.clone()).await;
    assert_eq!(alone.phones, ["+33478000001"]);
    assert!(alone.emails.is_empty() && alone.households.is_empty());
    let back = get(marie.citizen_id.clone()).await;
    assert!(back.merged_into.is_empty());
    assert_eq!(
        (back.phones, back.emails, back.households, back.identity),
        (
            before.phones,
            before.emails,
            before.households,
            before.identity
        )
    );
    hub.stop().await;
}

/// `kind/event_id` of every entry of a citizen's (merged) timeline.
async fn timeline_ids(hub: &TestHub, citizen: &str) -> Vec<String> {
    hub.desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(citizen),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| format!("{}/{}", e.kind, e.event_id))
        .collect()
}

/// A request with the Givors agent's token.
fn authed<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut()
        .insert("authorization", "Bearer t".parse().unwrap());
    r
}

async fn bad_citizen_requests_say_what_is_wrong_and_write_nothing(backend: Backend) {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='givors'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("t")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&backend, access).await;
    let marie = client(&hub)
        .create_citizen(authed(pb::CreateCitizenRequest {
            tenant: GIVORS.into(),
            identity: Some(identity("Marie", "Durand", "0612345678", "rue Zola")),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        marie.updated_by, "givors",
        "the agent is who the token says"
    );
    let ends = hub.log.end_offsets().await.unwrap();
    let mut c = client(&hub);
    let code = |r: Result<tonic::Response<pb::Citizen>, tonic::Status>| {
        let s = r.unwrap_err();
        (s.code(), s.message().to_string())
    };
    let (code1, msg) = code(
        c.merge_citizens(authed(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            into_citizen_id: marie.citizen_id.clone(),
            reason: "x".into(),
        }))
        .await,
    );
    assert_eq!(code1, tonic::Code::InvalidArgument, "{msg}");
    assert!(msg.contains("elle-même"));
    let (code2, _) = code(
        c.merge_citizens(authed(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            into_citizen_id: "GIV-999999".into(),
            reason: "x".into(),
        }))
        .await,
    );
    assert_eq!(code2, tonic::Code::NotFound);
    let (code3, msg) = code(
        c.merge_citizens(authed(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            into_citizen_id: "GIV-000001".into(),
            reason: String::new(),
        }))
        .await,
    );
    assert_eq!(code3, tonic::Code::InvalidArgument, "{msg}");
    let (code4, msg) = code(
        c.unmerge_citizen(authed(pb::UnmergeCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            reason: "x".into(),
        }))
        .await,
    );
    assert_eq!(code4, tonic::Code::InvalidArgument);
    assert!(msg.contains("n'est fusionnée dans aucune autre"), "{msg}");
    let (code5, msg) = code(
        c.create_citizen(authed(pb::CreateCitizenRequest {
            tenant: GIVORS.into(),
            identity: Some(pb::Identity {
                first_names: "Sans nom".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await,
    );
    assert_eq!(code5, tonic::Code::InvalidArgument);
    assert!(msg.contains("nom d'usage ou un nom de naissance"), "{msg}");
    let mut bad_date = identity("Marie", "Durand", "0612345678", "rue Zola");
    bad_date.birth_date = "12/03/1984".into();
    let (code6, msg) = code(
        c.create_citizen(authed(pb::CreateCitizenRequest {
            tenant: GIVORS.into(),
            identity: Some(bad_date),
            ..Default::default()
        }))
        .await,
    );
    assert_eq!(code6, tonic::Code::InvalidArgument);
    assert!(msg.contains("birth_date"), "{msg}");
    // Another commune: refused before anything.
    let (code7, _) = code(
        c.get_citizen(authed(pb::GetCitizenRequest {
            tenant: GRIGNY.into(),
            citizen_id: marie.citizen_id.clone(),
        }))
        .await,
    );
    assert_eq!(code7, tonic::Code::PermissionDenied);
    // Searches: empty, oversized.
    for (q, says) in [
        ("   ", "la recherche est vide"),
        (&*"x".repeat(10_000), "dépasse 200 caractères"),
    ] {
        let s = c
            .search_citizens(authed(pb::SearchCitizensRequest {
                tenant: GIVORS.into(),
                query: q.into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains(says), "{}", s.message());
    }
    // A merge across communes: the other commune's record does not exist here.
    let (code8, _) = code(
        c.merge_citizens(authed(pb::MergeCitizensRequest {
            tenant: GIVORS.into(),
            citizen_id: marie.citizen_id.clone(),
            into_citizen_id: "GRI-000001".into(),
            reason: "x".into(),
        }))
        .await,
    );
    assert_eq!(code8, tonic::Code::NotFound);
    // Every citizen RPC refuses another commune before anything.
    let denied = |s: tonic::Status| assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
    let g = || GRIGNY.to_string();
    denied(
        c.create_citizen(authed(pb::CreateCitizenRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.update_citizen(authed(pb::UpdateCitizenRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.search_citizens(authed(pb::SearchCitizensRequest {
            tenant: g(),
            query: "durand".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.merge_citizens(authed(pb::MergeCitizensRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.unmerge_citizen(authed(pb::UnmergeCitizenRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.set_household_member(authed(pb::SetHouseholdMemberRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.get_household(authed(pb::GetHouseholdRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.list_unresolved_contacts(authed(pb::ListUnresolvedContactsRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.attach_contact(authed(pb::AttachContactRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.list_duplicate_proposals(authed(pb::ListDuplicateProposalsRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    denied(
        c.dismiss_duplicate(authed(pb::DismissDuplicateRequest {
            tenant: g(),
            ..Default::default()
        }))
        .await
        .unwrap_err(),
    );
    assert_eq!(
        hub.log.end_offsets().await.unwrap(),
        ends,
        "nothing written"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_finds_and_creates_citizens() {
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
        "--address",
        "12|rue Émile Zola|69700|Givors",
        "--phone",
        "06 12 34 56 78",
        "--preferred",
        "sms",
        "--consent-source",
        "accueil",
    ]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "GIV-000001");
    let (ok, out) = run(&["citizen", "search", "--tenant", GIVORS, "durand", "marie"]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("GIV-000001  Marie Durand  12 rue Émile Zola Givors  06 12 34 56 78"),
        "{out}"
    );
    let (ok, out) = run(&[
        "citizen",
        "update",
        "--tenant",
        GIVORS,
        "GIV-000001",
        "--birth-date",
        "1984-03-12",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("naissance 12/03/1984") && out.contains("adresse  12 rue Émile Zola"),
        "{out}"
    );
    assert!(out.contains("préfère  SMS (accord accueil "), "{out}");
    let (ok, out) = run(&["citizen", "show", "--tenant", GIVORS, "GIV-000099"]);
    assert!(!ok && out.contains("aucune fiche GIV-000099"), "{out}");
    let mut child = serve.child;
    child.kill().unwrap();
    let _ = child.wait();
}

async fn shared_identifiers_wait_for_an_agent_and_duplicates_are_proposed(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    // A family landline on two records.
    let mut a = identity("Paul", "Martin", "04 78 00 00 01", "rue Pasteur");
    a.birth_date = "1970-01-01".into();
    let paul = create(&hub, GIVORS, a.clone()).await;
    let anne = create(
        &hub,
        GIVORS,
        identity("Anne", "Martin", "04 78 00 00 01", "rue Pasteur"),
    )
    .await;
    let landline = call(GIVORS, "family", "04 78 00 00 01", at(2026, 6, 1, 9, 0));
    hub.publish(std::slice::from_ref(&landline)).await;
    hub.settle().await;
    // On nobody's timeline yet: in the worklist, with both candidates.
    let mut c = client(&hub);
    let waiting = c
        .list_unresolved_contacts(pb::ListUnresolvedContactsRequest {
            tenant: GIVORS.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contacts;
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0].entry.as_ref().unwrap().event_id,
        landline.event_id
    );
    assert_eq!(
        waiting[0].candidates,
        [paul.citizen_id.clone(), anne.citizen_id.clone()]
    );
    let err = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0478000001"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("partagé par 2 fiches"), "{err:?}");
    assert_eq!(search(&hub, GIVORS, "04 78 00 00 01").await.len(), 2);
    // The agent attaches it to Anne: it is in her timeline, and the worklist is empty.
    let entry = c
        .attach_contact(pb::AttachContactRequest {
            tenant: GIVORS.into(),
            contact_event_id: landline.event_id.clone(),
            citizen_id: anne.citizen_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.citizen_id, anne.citizen_id);
    assert!(timeline_ids(&hub, &anne.citizen_id)
        .await
        .contains(&format!("phone_call/{}", landline.event_id)));
    assert!(!timeline_ids(&hub, &paul.citizen_id)
        .await
        .iter()
        .any(|e| e.ends_with(&landline.event_id)));
    let again = c
        .attach_contact(pb::AttachContactRequest {
            tenant: GIVORS.into(),
            contact_event_id: landline.event_id.clone(),
            citizen_id: paul.citizen_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::NotFound);

    // Duplicates proposed, never merged: the same name and birth date; a provisional record
    // sharing a phone with a confirmed one.
    let twin = create(&hub, GIVORS, a).await;
    hub.publish(&[call(GIVORS, "p1", "06 44 44 44 44", at(2026, 6, 2, 9, 0))])
        .await;
    hub.settle().await;
    let provisional = hub
        .store
        .by_identifier(GIVORS, "phone", "+33644444444")
        .unwrap()
        .unwrap();
    let confirmed = create(
        &hub,
        GIVORS,
        identity("Léa", "Roux", "06 44 44 44 44", "rue Lamartine"),
    )
    .await;
    let proposals = |c: &mut CitizenServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.list_duplicate_proposals(pb::ListDuplicateProposalsRequest {
                tenant: GIVORS.into(),
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .proposals
            .into_iter()
            .map(|p| {
                let mut pair = [p.citizen.unwrap().citizen_id, p.other.unwrap().citizen_id];
                pair.sort();
                (pair, p.why)
            })
            .collect::<Vec<_>>()
        }
    };
    let found = proposals(&mut c).await;
    let mut twins = [paul.citizen_id.clone(), twin.citizen_id.clone()];
    twins.sort();
    let mut shared = [provisional.clone(), confirmed.citizen_id.clone()];
    shared.sort();
    assert!(
        found.contains(&(twins.clone(), "same name and birth date".to_string())),
        "{found:?}"
    );
    assert!(
        found.contains(&(shared, "shared phone".to_string())),
        "{found:?}"
    );
    c.dismiss_duplicate(pb::DismissDuplicateRequest {
        tenant: GIVORS.into(),
        citizen_id: paul.citizen_id.clone(),
        other_citizen_id: twin.citizen_id.clone(),
        reason: "homonymes : dates de naissance vérifiées".into(),
    })
    .await
    .unwrap();
    assert!(!proposals(&mut c)
        .await
        .iter()
        .any(|(pair, _)| *pair == twins));
    assert_eq!(
        hub.store
            .citizen(GIVORS, &paul.citizen_id)
            .unwrap()
            .unwrap()
            .merged_into,
        "",
        "never merged automatically"
    );
    hub.stop().await;
}
