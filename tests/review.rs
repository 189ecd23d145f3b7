//! What an outside security review found on a running hub, each reproduced: an ops agent of
//! one commune reading another's dead letters, credentials guessed at speed on the desk and
//! the adapters, live streams outliving sign-out and unbounded, a web page of another site
//! posting to the adapters, files readable by every local user, and a read model that sled
//! cannot open making every start fail.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_proto::v1::ops_service_client::OpsServiceClient;
use contacthub_tests::*;
use reqwest::StatusCode;
use std::time::Duration;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ops_agent_reads_the_dead_letters_of_their_communes_only() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='ops-givors'\ntoken_sha256='{}'\ntenants=['69091']\nops=true\n\
         [[agent]]\nid='ops-venissieux'\ntoken_sha256='{}'\ntenants=['69259']\nops=true\n\
         [[agent]]\nid='ops'\ntoken_sha256='{}'\ntenants=['*']\nops=true\n",
        token_hash("givors"),
        token_hash("venissieux"),
        token_hash("all"),
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    const RAW: &[u8] = b"Leila Haddad 06 12 34 56 78 not protobuf";
    hub.publish_raw(b"69259", RAW.to_vec()).await;
    hub.publish_raw(b"nobody", b"garbage".to_vec()).await;
    hub.settle().await;
    let mut ops = OpsServiceClient::new(hub.channel.clone());
    let list = |token: &'static str| {
        let mut ops = ops.clone();
        async move {
            ops.list_dead_letters(as_agent(token, pb::ListDeadLettersRequest { limit: 0 }))
                .await
                .unwrap()
                .into_inner()
                .dead_letters
        }
    };
    assert!(
        list("givors").await.is_empty(),
        "another commune's dead letter"
    );
    let theirs = list("venissieux").await;
    assert_eq!(theirs.len(), 1);
    assert!(
        theirs[0].raw.is_empty(),
        "raw bytes for an ops agent of every commune only"
    );
    assert_eq!(theirs[0].raw_size, RAW.len() as u64);
    let all = list("all").await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|d| d.raw.starts_with(b"Leila")));
    let refused = ops
        .list_dead_letters(pb::ListDeadLettersRequest { limit: 0 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_credentials_is_slowed_down_on_the_desk_and_the_adapters() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("right")
    ))
    .unwrap();
    let mut hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let adapters = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\ntoken_sha256 = \"{}\"\n",
            token_hash("portal")
        ))
        .await;
    let web = hub.web.clone();
    let sign_in = |token: &'static str| {
        let web = web.clone();
        async move {
            http()
                .post(format!("{web}/connexion"))
                .form(&[("token", token), ("suite", "/")])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..contacthub_app::throttle::MAX_FAILURES {
        assert_eq!(sign_in("wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Without trusted proxies, a forwarded address is the caller's word: not believed.
    let forged = http()
        .post(format!("{web}/connexion"))
        .header("x-forwarded-for", "192.0.2.99")
        .form(&[("token", "right"), ("suite", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = sign_in("right").await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right token"
    );
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.text().await.unwrap().contains("Trop de tentatives"));

    // The adapters share the count of this address.
    let post = |token: &'static str| {
        let adapters = adapters.clone();
        async move {
            http()
                .post(format!("{adapters}/v1/69091/sms"))
                .bearer_auth(token)
                .form(&[
                    ("MessageSid", "SM1"),
                    ("From", "+33612345678"),
                    ("Body", "x"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post("portal").await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_of_another_site_cannot_post_to_the_adapters() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let adapters = hub.start_adapters("").await;
    let form = [
        ("MessageSid", "SM-forged"),
        ("From", "+33612345678"),
        ("To", "+33472491818"),
        ("Body", "forged"),
    ];
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = http()
            .post(format!("{adapters}/v1/69091/sms"))
            .header(name, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    }
    // A gateway posting from its server is taken.
    let r = http()
        .post(format!("{adapters}/v1/69091/sms"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_bounded_and_end_with_their_session() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("t")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    hub.publish(&[register(
        GIVORS,
        "GIV-000901",
        "Marie Durand",
        "06 12 34 56 78",
        at(2026, 1, 5, 9, 0),
    )])
    .await;
    hub.settle().await;
    let web = hub.web.clone();
    let agent = WebAgent::sign_in(&web, "t").await;
    let (client, cookie) = (agent.http.clone(), agent.cookie.clone());
    let flux = format!("{web}/citoyens/69091/GIV-000901/flux");
    let mut open = Vec::new();
    for _ in 0..contacthub_web::session::STREAMS_PER_SESSION {
        let r = client
            .get(&flux)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        open.push(r);
    }
    let r = client
        .get(&flux)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Signing out ends every stream of the session.
    let (_, page) = agent.get("/citoyens").await;
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[at..].split('"').next().unwrap().to_string();
    let r = client
        .post(format!("{web}/deconnexion"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for r in open {
        let body = tokio::time::timeout(Duration::from_secs(10), r.text())
            .await
            .expect("the stream ended with the session")
            .unwrap();
        assert!(body.contains("event: reload"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_read_model_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, kafka) = open_log(&Backend::Embedded, dir.path()).await;
    let hub = TestHub::start_on(log, kafka, dir).await;
    hub.publish(&[call(GIVORS, "c1", "06 12 34 56 78", at(2026, 3, 3, 10, 0))])
        .await;
    hub.settle().await;
    let dir = hub.stop().await;
    // What a start on a full disk left behind: files sled cannot read.
    let model = dir.path().join("read-model");
    for f in std::fs::read_dir(&model).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::write(&f, b"\x00garbage\xff").unwrap();
        }
    }
    let (log, kafka) = open_log(&Backend::Embedded, dir.path()).await;
    let hub = TestHub::start_on(log, kafka, dir).await;
    let page = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0612345678"),
            ..Default::default()
        })
        .await
        .expect("the rebuilt read model answers")
        .into_inner();
    assert_eq!(page.entries.len(), 1);
    assert!(!dir_exists(&hub, "read-model.rebuild") && !dir_exists(&hub, "read-model.old"));
}

fn dir_exists(hub: &TestHub, name: &str) -> bool {
    hub.dir.path().join(name).exists()
}

#[test]
fn the_hub_keeps_its_files_to_its_own_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Listening means its log, read model and stores are open.
    let mut serve = spawn_serve(&contacthub_bin!(), &data, &[]);
    let _ = serve.child.kill();
    let _ = serve.child.wait();
    let mut seen = 0;
    let mut stack = vec![data];
    while let Some(p) = stack.pop() {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        if p.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
            seen += 1;
        }
    }
    assert!(seen > 2, "the log and the read model: {seen} files");
}

/// A form from the portal naming a citizen and giving identifiers, as anyone may post one.
fn claiming_form(id: &str, claimed: &str, name: &str, phone: &str, email: &str) -> pb::Event {
    let mut e = web_form(GIVORS, id, phone, email, at(2026, 3, 4, 9, 0));
    let party = e.personal.as_mut().unwrap().party.as_mut().unwrap();
    party.citizen_id = claimed.into();
    party.name = name.into();
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_claiming_a_citizen_changes_no_record_and_captures_no_contact() {
    let hub = TestHub::start(&Backend::Embedded).await;
    let mut marie = register(
        GIVORS,
        "GIV-000902",
        "Marie Durand",
        "06 12 34 56 78",
        at(2026, 1, 5, 9, 0),
    );
    marie
        .personal
        .as_mut()
        .unwrap()
        .party
        .as_mut()
        .unwrap()
        .email = "marie@example.fr".into();
    let forged = claiming_form(
        "f1",
        "GIV-000902",
        "Marie Durand",
        "",
        "attacker@evil.example",
    );
    let decoy = claiming_form("f2", "GIV-999999", "Faux Nom", "06 99 88 77 66", "");
    let mut sms = contacthub_core::event::contact(
        GIVORS,
        "test-sms",
        "s1",
        at(2026, 3, 5, 9, 0),
        at(2026, 3, 5, 9, 0),
        pb::event::Payload::Sms(pb::Sms {
            message_sid: "SM-victim".into(),
            ..Default::default()
        }),
        party_phone("06 99 88 77 66"),
    );
    sms.personal.as_mut().unwrap().text = "Bonjour".into();
    // Her own form, with her own e-mail, goes to her timeline as before.
    let own = claiming_form("f3", "GIV-000902", "Marie Durand", "", "marie@example.fr");
    hub.publish(&[
        marie,
        forged.clone(),
        decoy.clone(),
        sms.clone(),
        own.clone(),
    ])
    .await;
    hub.settle().await;

    let mut citizens = contacthub_proto::v1::citizen_service_client::CitizenServiceClient::new(
        hub.channel.clone(),
    );
    let record = citizens
        .get_citizen(pb::GetCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: "GIV-000902".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        record.emails,
        ["marie@example.fr"],
        "no e-mail added by a form"
    );
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id("GIV-000902"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = timeline
        .entries
        .iter()
        .map(|e| e.event_id.as_str())
        .collect();
    assert!(ids.contains(&own.event_id.as_str()), "{ids:?}");
    assert!(!ids.contains(&forged.event_id.as_str()), "{ids:?}");
    // The forged claim waits for an agent, with her as a candidate.
    let waiting = citizens
        .list_unresolved_contacts(pb::ListUnresolvedContactsRequest {
            tenant: GIVORS.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contacts;
    let claim = waiting
        .iter()
        .find(|u| u.entry.as_ref().unwrap().event_id == forged.event_id)
        .expect("the forged form waits in « à rattacher »");
    assert_eq!(claim.candidates, ["GIV-000902"]);
    // The decoy's number leads no SMS to the decoy's record.
    let sms_owner = hub
        .desk()
        .get_contact(pb::GetContactRequest {
            tenant: GIVORS.into(),
            event_id: sms.event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap()
        .citizen_id;
    let decoy_owner = hub
        .desk()
        .get_contact(pb::GetContactRequest {
            tenant: GIVORS.into(),
            event_id: decoy.event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap()
        .citizen_id;
    assert_ne!(sms_owner, decoy_owner);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_hub_answers_grpc_web_for_this_machine_only() {
    let hub = TestHub::start(&Backend::Embedded).await;
    let call = |host: &'static str| {
        let url = format!("http://{}/contacthub.v1.DeskService/GetTimeline", hub.addr);
        async move {
            let r = http()
                .post(url)
                .header("host", host)
                .header("content-type", "application/grpc-web+proto")
                .header("x-grpc-web", "1")
                // An empty GetTimelineRequest, framed: no flag, length 0.
                .body(vec![0u8, 0, 0, 0, 0])
                .send()
                .await
                .unwrap();
            r.headers()
                .get("grpc-status")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        }
    };
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    assert_eq!(call("evil.example:50051").await, "7", "PERMISSION_DENIED");
    assert_eq!(
        call("127.0.0.1").await,
        "3",
        "INVALID_ARGUMENT: the request itself is looked at"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_over_grpc_is_slowed_down() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("right")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let mut desk = hub.desk();
    let ask = |token: &str| {
        as_agent(
            token,
            pb::GetTimelineRequest {
                tenant: GIVORS.into(),
                citizen: by_phone("0612345678"),
                ..Default::default()
            },
        )
    };
    for _ in 0..contacthub_app::throttle::MAX_FAILURES {
        let e = desk.get_timeline(ask("wrong")).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }
    let e = desk.get_timeline(ask("right")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
}
