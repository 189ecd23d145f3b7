//! Need-to-know between services: a confidential service's contacts, letters, documents and
//! requests (the CCAS's here, as the shipped communes file says) are read whole by its own
//! agents only. An agent of another service sees that a contact exists (date, channel,
//! « Confidentiel — … ») on every surface — timeline, contact, documents, household, search,
//! live watch, worklists, the web desk — and can change none of it; the accueil also sees a
//! request's reference and status to orient the person.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::event::contact;
use contacthub_core::pb::{self, event::Payload};
use contacthub_proto::v1::citizen_service_client::CitizenServiceClient;
use contacthub_proto::v1::request_service_client::RequestServiceClient;
use contacthub_tests::*;
use reqwest::StatusCode;

const SECRET: &str = "Dettes de loyer depuis mars";
const SUBJECT: &str = "Aide sociale confidentielle";

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='ccas'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n",
        token_hash("accueil"),
        token_hash("voirie"),
        token_hash("ccas"),
    ))
    .unwrap()
}

/// A form « aide sociale » of category CCAS from Marie's phone, with a document.
fn social_aid_form(at_us: i64, sha256: &str) -> pb::Event {
    let mut e = contact(
        GIVORS,
        "test-form",
        "aide-1",
        at_us,
        at_us,
        Payload::WebForm(pb::WebForm {
            form_slug: "aide-sociale".into(),
            submission_id: "AS-2026-77".into(),
            signed_in: false,
            thread_id: String::new(),
        }),
        party_phone("06 12 34 56 78"),
    );
    e.category = pb::Category::Ccas as i32;
    e.attachments = vec![pb::Attachment {
        sha256: sha256.into(),
        media_type: "application/pdf".into(),
        size_bytes: 9,
    }];
    let p = e.personal.as_mut().unwrap();
    p.subject = SUBJECT.into();
    p.text = SECRET.into();
    p.attachment_names = vec!["avis-expulsion.pdf".into()];
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_matter_is_read_by_its_service_only() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    let doc = contacthub_app::content::ContentStore::open(hub.dir.path().join("content"))
        .unwrap()
        .put(b"%PDF-1.4\n", 1 << 20)
        .await
        .expect("stored document");
    let form = social_aid_form(at(2026, 3, 2, 9, 0), &doc.sha256);
    hub.publish(&[
        register(
            GIVORS,
            "GIV-000900",
            "Marie Durand",
            "06 12 34 56 78",
            at(2026, 1, 5, 9, 0),
        ),
        form.clone(),
        call(GIVORS, "c1", "06 12 34 56 78", at(2026, 3, 3, 10, 0)),
    ])
    .await;
    hub.settle().await;
    let mut desk = hub.desk();
    let timeline = |token: &'static str| {
        let mut desk = hub.desk();
        async move {
            desk.get_timeline(as_agent(
                token,
                pb::GetTimelineRequest {
                    tenant: GIVORS.into(),
                    citizen: by_id("GIV-000900"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .entries
        }
    };
    let of = |entries: &[pb::TimelineEntry]| -> pb::TimelineEntry {
        entries
            .iter()
            .find(|e| e.event_id == form.event_id)
            .cloned()
            .expect("the form is in the timeline")
    };

    // The CCAS reads it whole.
    let mine = of(&timeline("ccas").await);
    assert_eq!(mine.subject, SUBJECT);
    assert!(mine.withheld_service.is_empty());
    // Another service and the accueil see that it exists, and nothing else.
    for token in ["voirie", "accueil"] {
        let entries = timeline(token).await;
        let theirs = of(&entries);
        assert_eq!(theirs.withheld_service, "ccas", "{token}");
        assert!(
            theirs.subject.is_empty() && theirs.excerpt.is_empty(),
            "{token}: {theirs:?}"
        );
        assert!(
            theirs.attachments.is_empty() && theirs.links.is_empty(),
            "{token}"
        );
        assert!(theirs.party_identifier.is_empty(), "{token}");
        assert_eq!(
            theirs.summary,
            "Confidentiel — Centre communal d'action sociale (CCAS)"
        );
        assert_eq!(theirs.channel, pb::Channel::WebForm as i32);
        assert!(theirs.occurred_at.is_some());
        // The call of the same person is no secret.
        assert!(entries
            .iter()
            .any(|e| e.kind == "phone_call" && e.withheld_service.is_empty()));
        let text = format!("{entries:?}");
        assert!(
            !text.contains("aide-sociale") && !text.contains("loyer"),
            "{token}: {text}"
        );
    }

    // The contact itself.
    let c = desk
        .get_contact(as_agent(
            "voirie",
            pb::GetContactRequest {
                tenant: GIVORS.into(),
                event_id: form.event_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(c.personal.is_none(), "{c:?}");
    assert_eq!(c.entry.unwrap().withheld_service, "ccas");
    let c = desk
        .get_contact(as_agent(
            "ccas",
            pb::GetContactRequest {
                tenant: GIVORS.into(),
                event_id: form.event_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.personal.unwrap().text, SECRET);

    // Search by the form's own reference finds her only for who reads the form.
    let mut citizens = CitizenServiceClient::new(hub.channel.clone());
    for (token, hits) in [("voirie", 0), ("ccas", 1)] {
        let found = citizens
            .search_citizens(as_agent(
                token,
                pb::SearchCitizensRequest {
                    tenant: GIVORS.into(),
                    query: "AS-2026-77".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.hits.len(), hits, "{token}");
    }

    // A request opened from it by the CCAS is the CCAS's: the accueil sees where it stands,
    // another service nothing of it, and neither may change it.
    let mut requests = RequestServiceClient::new(hub.channel.clone());
    let opened = requests
        .open_request(as_agent(
            "ccas",
            pb::OpenRequestRequest {
                tenant: GIVORS.into(),
                subject: SUBJECT.into(),
                category: pb::Category::Ccas as i32,
                service: "ccas".into(),
                from_contact_event_id: form.event_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let seen = requests
        .get_request(as_agent(
            "accueil",
            pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: opened.reference.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.withheld_service, "ccas");
    assert_eq!(
        seen.status,
        pb::RequestStatus::Open as i32,
        "the accueil follows it"
    );
    assert!(seen.due_at.is_some());
    assert!(!seen.subject.contains("Aide sociale"), "{}", seen.subject);
    let refused = requests
        .close_request(as_agent(
            "accueil",
            pb::CloseRequestRequest {
                tenant: GIVORS.into(),
                reference: opened.reference.clone(),
                reason: pb::CloseReason::Withdrawn as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let refused = requests
        .get_request(as_agent(
            "voirie",
            pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: opened.reference.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // Nor join a visit to it: another service's agent does not see it, the accueil may not
    // write into it.
    for (token, code) in [
        ("voirie", tonic::Code::NotFound),
        ("accueil", tonic::Code::PermissionDenied),
    ] {
        let refused = hub
            .desk()
            .record_visit(as_agent(
                token,
                pb::RecordVisitRequest {
                    tenant: GIVORS.into(),
                    party: Some(pb::Party {
                        citizen_id: "GIV-000900".into(),
                        ..Default::default()
                    }),
                    subject: "Passage à l'accueil".into(),
                    request_id: opened.reference.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{token}: {refused:?}");
    }

    // A voirie agent cannot take the CCAS request into a voirie collective and answer it.
    let collective = requests
        .open_request(as_agent(
            "voirie",
            pb::OpenRequestRequest {
                tenant: GIVORS.into(),
                subject: "Trottoir défoncé".into(),
                category: pb::Category::ServicesTechniques as i32,
                service: "voirie".into(),
                citizen_id: "GIV-000900".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let refused = requests
        .group_requests(as_agent(
            "voirie",
            pb::GroupRequestsRequest {
                tenant: GIVORS.into(),
                collective: collective.reference.clone(),
                members: vec![opened.reference.clone()],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    let after = requests
        .get_request(as_agent(
            "ccas",
            pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference: opened.reference.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(after.collective.is_empty(), "{after:?}");

    // The web desk: the contact page and its document.
    let web = WebAgent::sign_in(&hub.web, "voirie").await;
    let (status, page) = web.get(&format!("/contacts/69091/{}", form.event_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Confidentiel"), "{page}");
    assert!(
        !page.contains("loyer") && !page.contains("expulsion"),
        "{page}"
    );
    let (status, _) = web
        .get(&format!("/contacts/69091/{}/pieces/0", form.event_id))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, page) = web.get("/citoyens/69091/GIV-000900").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("Aide sociale") && !page.contains("aide-sociale"),
        "{page}"
    );
    let ccas = WebAgent::sign_in(&hub.web, "ccas").await;
    let (status, _) = ccas
        .get(&format!("/contacts/69091/{}/pieces/0", form.event_id))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = ccas
        .get(&format!("/contacts/69091/{}", form.event_id))
        .await;
    assert!(page.contains("loyer"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaching_a_waiting_confidential_contact_does_not_show_it() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    // A family landline: the form from it waits for an agent.
    let mut form = social_aid_form(at(2026, 3, 2, 9, 0), &"0".repeat(64));
    form.attachments.clear();
    form.personal.as_mut().unwrap().attachment_names.clear();
    hub.publish(&[
        register(
            GIVORS,
            "GIV-000910",
            "Marie Durand",
            "04 78 00 00 01",
            at(2026, 1, 5, 9, 0),
        ),
        register(
            GIVORS,
            "GIV-000911",
            "Paul Durand",
            "04 78 00 00 01",
            at(2026, 1, 5, 9, 0),
        ),
        {
            let mut f = form.clone();
            f.personal.as_mut().unwrap().party.as_mut().unwrap().phone = "04 78 00 00 01".into();
            f
        },
    ])
    .await;
    hub.settle().await;
    let mut citizens = CitizenServiceClient::new(hub.channel.clone());
    let entry = citizens
        .attach_contact(as_agent(
            "voirie",
            pb::AttachContactRequest {
                tenant: GIVORS.into(),
                contact_event_id: form.event_id.clone(),
                citizen_id: "GIV-000910".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.withheld_service, "ccas");
    assert!(
        entry.subject.is_empty() && entry.excerpt.is_empty(),
        "{entry:?}"
    );
}

/// The application layer is a door: every command and query takes the caller's scope, and a
/// scope acts in its own commune only, an élu's reads figures only, an open hub's visitor is
/// no one on a hub with an agents file, and the hub's own parts do only their own work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_layer_takes_the_callers_scope_only() {
    use contacthub_app::Error;
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='maire'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
         [[agent]]\nid='syndicat'\ntoken_sha256='{}'\ntenants=['*']\n",
        token_hash("accueil"),
        token_hash("maire"),
        token_hash("syndicat"),
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access.clone()).await;
    hub.publish(&[register(
        GRIGNY,
        "GRI-000900",
        "Paul Martin",
        "06 98 76 54 32",
        at(2026, 3, 1, 9, 0),
    )])
    .await;
    hub.settle().await;
    let app = &hub.hub;
    // A command names no commune: it acts in its scope's.
    let grigny_record = || contacthub_app::commands::TimelinePage {
        citizen: contacthub_app::commands::Who::Record("GRI-000900".into()),
        page_size: 0,
        page_token: String::new(),
        channels: Vec::new(),
        since: None,
        until: None,
    };

    // An agent of both communes, scoped to Givors, reads nothing of Grigny through it.
    let in_givors = access.scope(Some("syndicat"), GIVORS).unwrap();
    let refused = app.timeline(&in_givors, &grigny_record()).unwrap_err();
    assert!(matches!(refused, Error::NotFound(_)), "{refused:?}");
    let refused = app
        .open_request(
            &in_givors,
            &contacthub_app::commands::OpenRequest {
                citizen_id: "GRI-000900".into(),
                subject: "Trottoir".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::NotFound(_)), "{refused:?}");
    assert!(app.citizen(&in_givors, "GRI-000900").is_err());
    // Scoped to Grigny, the same agent reads it.
    let in_grigny = access.scope(Some("syndicat"), GRIGNY).unwrap();
    assert_eq!(
        app.timeline(&in_grigny, &grigny_record())
            .unwrap()
            .entries
            .len(),
        1
    );
    assert_eq!(
        app.citizen(&in_grigny, "GRI-000900").unwrap().citizen_id,
        "GRI-000900"
    );
    // A Givors-only agent gets no scope in Grigny at all.
    assert!(matches!(
        access.scope(Some("accueil"), GRIGNY),
        Err(Error::Forbidden(_))
    ));

    // An élu's scope reads the dashboard, and no citizen.
    let elu = access.dashboard_scope(Some("maire"), GIVORS).unwrap();
    let figures = contacthub_app::commands::DashboardQuery {
        from_month: "2026-01".into(),
        to_month: "2026-12".into(),
    };
    assert!(app.dashboard(&elu, &figures).is_ok());
    let refused = app
        .search_citizens(
            &elu,
            &contacthub_app::commands::SearchCitizens {
                query: "martin".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");

    // An open hub's visitor is no one here.
    let visitor = Access::Open.scope(None, GRIGNY).unwrap();
    let refused = app.citizen(&visitor, "GRI-000900").unwrap_err();
    assert!(matches!(refused, Error::Unauthenticated(_)), "{refused:?}");

    // The sender delivers answers; it does not record contacts, and the adapters do not
    // take the outbox.
    let refused = app
        .append_contacts(
            System::Sender,
            &[call(
                GRIGNY,
                "c-door",
                "06 98 76 54 32",
                at(2026, 3, 2, 9, 0),
            )],
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
    assert!(matches!(
        app.outbox_due(System::Adapters, 10),
        Err(Error::Forbidden(_))
    ));
}
