//! Who read what: reads of a person's data through the gRPC API, the command line and the web
//! desk land in the hub's read trail with the agent, the citizen, what was read, the front-end
//! and the address; the data protection officer lists them (`contacthub audit`), nobody else
//! does; the trail survives a kill -9 right after a read and `audit verify` finds a changed or
//! removed line.

use contacthub_app::auth::token_hash;
use contacthub_core::pb;
use contacthub_tests::*;

fn agents() -> String {
    format!(
        "[[agent]]\nid = 'accueil-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\
         [[agent]]\nid = 'dpo-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nrole = 'dpo'\n\
         [[agent]]\nid = 'dpo-grigny'\ntoken_sha256 = '{}'\ntenants = ['69096']\nrole = 'dpo'\n",
        token_hash("accueil"),
        token_hash("dpo"),
        token_hash("dpo-grigny"),
    )
}

/// A visit at the accueil of Givors by the agent `accueil` (its request as sent, `with` it
/// may change): its timeline line.
async fn visit(
    desk: &mut pb::desk_service_client::DeskServiceClient<tonic::transport::Channel>,
    key: &str,
    with: impl FnOnce(&mut tonic::Request<pb::RecordVisitRequest>),
) -> pb::TimelineEntry {
    let mut request = as_agent(
        "accueil",
        pb::RecordVisitRequest {
            tenant: GIVORS.into(),
            party: Some(party_phone("06 12 34 56 78")),
            subject: "Passeport".into(),
            idempotency_key: key.into(),
            ..Default::default()
        },
    );
    with(&mut request);
    desk.record_visit(request)
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap()
}

fn run(args: &[&str]) -> (bool, String) {
    let o = std::process::Command::new(contacthub_bin!())
        .args(args)
        .env_remove("CONTACTHUB_TOKEN")
        .env_remove("CONTACTHUB_DATA")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_traced_for_the_dpo_only_and_the_trail_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let agents_file = dir.path().join("agents.toml");
    std::fs::write(&agents_file, agents()).unwrap();
    let mut serve = spawn_serve(
        &contacthub_bin!(),
        &data,
        &["--agents".as_ref(), agents_file.as_os_str()],
    );

    // A visit at the accueil makes a record.
    let mut desk = pb::desk_service_client::DeskServiceClient::connect(serve.grpc.clone())
        .await
        .unwrap();
    let entry = visit(&mut desk, "audit-1", |_| {}).await;
    let citizen = entry.citizen_id.clone();

    // Read through the three front-ends.
    desk.get_timeline(as_agent(
        "accueil",
        pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&citizen),
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    let (ok, out) = run(&[
        "timeline",
        "--server",
        &serve.grpc,
        "--token",
        "accueil",
        "--tenant",
        GIVORS,
        "--citizen",
        &citizen,
    ]);
    assert!(ok, "{out}");
    for args in [["citizen", "search"], ["citizen", "show"]] {
        let what = if args[1] == "search" {
            "06 12 34 56 78"
        } else {
            citizen.as_str()
        };
        let (ok, out) = run(&[
            args[0],
            args[1],
            "--server",
            &serve.grpc,
            "--token",
            "accueil",
            "--tenant",
            GIVORS,
            what,
        ]);
        assert!(ok, "{out}");
    }
    let agent = WebAgent::sign_in(&serve.web, "accueil").await;
    let (status, _) = agent.get(&format!("/citoyens/{GIVORS}/{citizen}")).await;
    assert!(status.is_success());

    // The DPO reads the trail, in French, with the front-end and the address.
    let dpo = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--server",
            &serve.grpc,
            "--token",
            "dpo",
            "--tenant",
            GIVORS,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (ok, out) = dpo(&["--citizen", &citizen]);
    assert!(ok, "{out}");
    let line = format!("accueil-givors  a consulté la chronologie de {citizen}");
    for via in [
        "[API, 127.0.0.1]",
        "[ligne de commande, 127.0.0.1]",
        "[guichet web, 127.0.0.1]",
    ] {
        assert!(
            out.lines().any(|l| l.contains(&line) && l.ends_with(via)),
            "{via} missing:\n{out}"
        );
    }
    assert_eq!(
        out.lines().next().unwrap().as_bytes()[2],
        b'/',
        "dates as agents write them: {out}"
    );
    // The line docs/operations.md quotes is what the command prints (its date and id aside).
    let doc = doc("operations.md");
    let quoted = doc
        .lines()
        .map(str::trim)
        .find(|l| l.contains("a consulté la chronologie de GIV-000001  [ligne de commande"))
        .expect("docs/operations.md quotes a line of `contacthub audit`");
    let printed = out
        .lines()
        .find(|l| l.ends_with("[ligne de commande, 127.0.0.1]"))
        .unwrap();
    assert_eq!(quoted[16..].replace("GIV-000001", &citizen), printed[16..]);
    // The visit itself wrote; it read nothing of anyone else.
    for what in ["la ligne de recherche", "la fiche"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("a consulté {what} de {citizen}"))),
            "{what}:\n{out}"
        );
    }
    let (ok, by_agent) = dpo(&["--agent", "accueil-givors"]);
    assert!(ok && by_agent.lines().count() >= 3, "{by_agent}");
    assert!(by_agent.lines().all(|l| l.contains(&citizen)), "{by_agent}");

    // Nobody else reads the trail; the DPO reads no one's file.
    let (ok, out) = run(&[
        "audit",
        "--server",
        &serve.grpc,
        "--token",
        "accueil",
        "--tenant",
        GIVORS,
    ]);
    assert!(
        !ok && out.contains("n'est pas délégué à la protection des données"),
        "{out}"
    );
    let (ok, out) = run(&[
        "audit",
        "--server",
        &serve.grpc,
        "--token",
        "dpo-grigny",
        "--tenant",
        GIVORS,
    ]);
    assert!(!ok && out.contains("n'a pas accès à la commune"), "{out}");
    let refused = desk
        .get_timeline(as_agent(
            "dpo",
            pb::GetTimelineRequest {
                tenant: GIVORS.into(),
                citizen: by_id(&citizen),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // The DPO on the desk: lands on the journal, filters by citizen; the accueil is refused it.
    let dpo_desk = WebAgent::sign_in(&serve.web, "dpo").await;
    let (status, _) = dpo_desk.get("/").await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    let (status, page) = dpo_desk
        .get(&format!("/journal?commune={GIVORS}&usager={citizen}"))
        .await;
    assert!(status.is_success(), "{page}");
    assert!(page.contains("Journal des consultations"), "{page}");
    assert!(
        page.contains("<td>accueil-givors</td><td>la chronologie</td>")
            && page.contains("guichet web, 127.0.0.1")
            && page.contains("ligne de commande, 127.0.0.1"),
        "{page}"
    );
    assert!(
        !page.contains("href=\"/citoyens\""),
        "a DPO's menu has no citizens: {page}"
    );
    let (status, page) = agent.get(&format!("/journal?commune={GIVORS}")).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Accès refusé"), "{page}");

    // kill -9 right after a read: the read is in the trail.
    let contact = desk
        .get_contact(as_agent(
            "accueil",
            pb::GetContactRequest {
                tenant: GIVORS.into(),
                event_id: entry.event_id.clone(),
            },
        ))
        .await
        .unwrap();
    assert!(contact.into_inner().entry.is_some());
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    let trail = data.join("audit").join("reads.jsonl");
    let text = std::fs::read_to_string(&trail).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("\"what\":\"contact\"") && last.contains(&entry.event_id),
        "{last}"
    );
    assert!(!text.contains("06 12") && !text.contains("+336") && !text.contains("Passeport"));
    let data_arg = data.to_str().unwrap();
    let (ok, out) = run(&["audit", "verify", "--data", data_arg]);
    assert!(ok && out.starts_with("journal intact : "), "{out}");
    // The head it prints is the last line's hash, to write down elsewhere.
    let head = last
        .split("\"hash\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        out.trim_end()
            .ends_with(&format!("dernière empreinte {head}")),
        "{out}"
    );

    // A line changed, then a line removed: the chain says where.
    let lines: Vec<&str> = text.lines().collect();
    let changed: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                l.replace("accueil-givors", "dpo-givors")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&trail, changed.join("\n") + "\n").unwrap();
    let (ok, out) = run(&["audit", "verify", "--data", data_arg]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("journal altéré à la ligne 2 : son contenu a été modifié"),
        "{out}"
    );
    let removed: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&trail, removed.join("\n") + "\n").unwrap();
    let (ok, out) = run(&["audit", "verify", "--data", data_arg]);
    assert!(
        !ok && out.contains("journal altéré à la ligne 2 : numéro 3 après 1"),
        "{out}"
    );
}

/// Behind a reverse proxy the operator trusts (`--trusted-proxies`), the client is the
/// address the proxy forwards: the read trail records it and failed sign-ins count against
/// it (one client guessing does not lock out the others behind the same proxy); from any
/// other peer the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_trail_and_the_limits_see_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let agents_file = dir.path().join("agents.toml");
    std::fs::write(&agents_file, agents()).unwrap();
    // The test itself, on 127.0.0.1, plays the proxy.
    let mut serve = spawn_serve(
        &contacthub_bin!(),
        &dir.path().join("data"),
        &[
            "--agents".as_ref(),
            agents_file.as_os_str(),
            "--trusted-proxies".as_ref(),
            "10.0.0.0/8, 127.0.0.1".as_ref(),
        ],
    );
    let mut desk = pb::desk_service_client::DeskServiceClient::connect(serve.grpc.clone())
        .await
        .unwrap();
    let citizen = visit(&mut desk, "proxy-1", |r| {
        r.metadata_mut()
            .insert("x-forwarded-for", "203.0.113.5".parse().unwrap());
    })
    .await
    .citizen_id;
    let mut read = as_agent(
        "accueil",
        pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&citizen),
            ..Default::default()
        },
    );
    // What a client writes at the left of the header is not believed: the proxy's entry is.
    read.metadata_mut().insert(
        "x-forwarded-for",
        "6.6.6.6, 198.51.100.23, 10.1.2.3".parse().unwrap(),
    );
    desk.get_timeline(read).await.unwrap();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |token: &'static str, client: &'static str| {
        let http = http.clone();
        let web = serve.web.clone();
        async move {
            http.post(format!("{web}/connexion"))
                .header("x-forwarded-for", client)
                .form(&[("token", token), ("suite", "/")])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..contacthub_app::throttle::MAX_FAILURES {
        assert_eq!(sign_in("faux", "192.0.2.66").await.status(), 401);
    }
    assert_eq!(sign_in("accueil", "192.0.2.66").await.status(), 429);
    let r = sign_in("accueil", "192.0.2.7").await;
    assert_eq!(r.status(), 303, "another client behind the same proxy");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{}/citoyens/{GIVORS}/{citizen}", serve.web))
        .header("cookie", cookie)
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await
        .unwrap();
    assert!(page.status().is_success());

    let (ok, out) = run(&[
        "audit",
        "--server",
        &serve.grpc,
        "--token",
        "dpo",
        "--tenant",
        GIVORS,
        "--citizen",
        &citizen,
    ]);
    assert!(ok, "{out}");
    for via in ["[API, 198.51.100.23]", "[guichet web, 192.0.2.7]"] {
        assert!(
            out.lines().any(|l| l.ends_with(via)),
            "{via} missing:\n{out}"
        );
    }
    assert!(
        !out.contains("6.6.6.6"),
        "a client's own claim is not believed:\n{out}"
    );
    serve.child.kill().unwrap();
    let _ = serve.child.wait();
}

/// On a cluster, each hub shares its read trail through the log: a read on one hub is in
/// the trail the DPO reads on another (the accueil's desk and the DPO's need not reach the
/// same replica), with the hub's chain kept line for line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_any_hub_answers_the_dpo_for_every_hub() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let cfg = fresh_kafka(&brokers, 2).await;
    let access = || contacthub_app::auth::Access::from_toml(&agents()).unwrap();
    let mut hubs = Vec::new();
    for _ in 0..2 {
        let log = contacthub_log::kafka::KafkaLog::connect(cfg.clone())
            .await
            .unwrap();
        hubs.push(
            TestHub::start_with_access_on(
                std::sync::Arc::new(log),
                Some(cfg.clone()),
                tempfile::tempdir().unwrap(),
                access(),
            )
            .await,
        );
    }
    let (a, b) = (&hubs[0], &hubs[1]);
    let mut desk_b = pb::desk_service_client::DeskServiceClient::new(b.channel.clone());
    let citizen = visit(&mut desk_b, "cluster-1", |_| {}).await.citizen_id;
    desk_b
        .get_timeline(as_agent(
            "accueil",
            pb::GetTimelineRequest {
                tenant: GIVORS.into(),
                citizen: by_id(&citizen),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let dpo_a = pb::audit_service_client::AuditServiceClient::new(a.channel.clone());
    let trail_on_a = || {
        let mut dpo_a = dpo_a.clone();
        let citizen = citizen.clone();
        async move {
            dpo_a
                .list_reads(as_agent(
                    "dpo",
                    pb::ListReadsRequest {
                        tenant: GIVORS.into(),
                        citizen_id: citizen,
                        ..Default::default()
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .reads
        }
    };
    let started = std::time::Instant::now();
    let reads = loop {
        let reads = trail_on_a().await;
        if !reads.is_empty() || started.elapsed() > std::time::Duration::from_secs(60) {
            break reads;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        reads
            .iter()
            .any(|r| r.agent_id == "accueil-givors" && r.what == "timeline"),
        "{reads:?}"
    );
    // The same line as hub B's own file holds.
    let local = std::fs::read_to_string(contacthub_app::audit::path_in(b.dir.path())).unwrap();
    let line: serde_json::Value = serde_json::from_str(local.lines().last().unwrap()).unwrap();
    assert_eq!(line["citizen"], citizen.as_str());
    // Hub A's own file has no read of it: the line came through the log.
    let own =
        std::fs::read_to_string(contacthub_app::audit::path_in(a.dir.path())).unwrap_or_default();
    assert!(!own.contains(&citizen), "{own}");
    for h in hubs {
        h.stop().await;
    }
}
