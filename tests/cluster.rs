//! Several hubs, one cluster: documents in S3-compatible object storage (moto, a real
//! S3-protocol server) that every hub on a Kafka log (tansu) reads; `migrate` moving the
//! documents with the log; one sender for the cluster; a hub killed while a scan uploads
//! leaving no event that names a missing document; the content store's behaviour, the same
//! on disk and in object storage; and object storage over HTTPS with a private authority.

use crate::courrier::{header, pdf, registration};
use crate::outbound::{adapters_toml, citizen_with_request, compose, wait_status};
use contacthub_core::pb;
use contacthub_proto::v1::{
    courrier_service_client::CourrierServiceClient, outbound_service_client::OutboundServiceClient,
};
use contacthub_tests::s3::S3;
use contacthub_tests::smtp::SmtpServer;
use contacthub_tests::*;
use std::ffi::OsStr;
use std::time::{Duration, Instant, SystemTime};
use tonic::transport::Channel;

async fn channel(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn register(grpc: &str, key: &str, scan: &[u8]) -> pb::CourrierState {
    CourrierServiceClient::new(channel(grpc).await)
        .register_courrier(tokio_stream::iter(registration(
            header(GIVORS, key),
            &[scan.to_vec()],
        )))
        .await
        .unwrap_or_else(|s| panic!("registering {key}: {s}"))
        .into_inner()
}

/// The letter `chrono` as hub `grpc` shows it, once it does.
async fn letter_on(grpc: &str, chrono: &str) -> pb::CourrierState {
    let mut c = CourrierServiceClient::new(channel(grpc).await);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match c
            .get_courrier(pb::GetCourrierRequest {
                tenant: GIVORS.into(),
                chrono: chrono.into(),
            })
            .await
        {
            Ok(r) => return r.into_inner(),
            Err(s) => assert!(
                Instant::now() < deadline,
                "letter {chrono} never shown by {grpc}: {s}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first scan of a letter as the web desk of a hub serves it (an open trial hub): its
/// status and bytes.
async fn scan_on_desk(web: &str, chrono: &str) -> (reqwest::StatusCode, Vec<u8>) {
    let agent = WebAgent::sign_in(web, "").await;
    let r = agent
        .http
        .get(format!("{web}/courrier/{GIVORS}/{chrono}/scans/0"))
        .header("cookie", &agent.cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.bytes().await.unwrap().to_vec())
}

fn os(args: &[String]) -> Vec<&OsStr> {
    args.iter().map(OsStr::new).collect()
}

/// Two hubs on one tansu broker and one bucket: what one registers, the other shows with its
/// documents; the embedded history `migrate`d before them comes with its scans; only the hub
/// that sends sends; a letter answer composed on one is printed from the other's queue; a hub
/// killed while scans upload leaves no event naming a missing document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_cluster_share_documents_and_one_sends() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let Some(s3) = S3::start().await else { return };
    let bin = contacthub_bin!();
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start().await;
    smtp.require_password("relay-secret");
    let adapters = dir.path().join("adapters.toml");
    std::fs::write(&adapters, adapters_toml(&smtp, None)).unwrap();

    // A commune's history on the embedded default: a letter with its scan.
    let embedded = dir.path().join("embedded");
    let before = pdf(1, 300_000);
    let old_chrono = {
        let mut e = spawn_serve(&bin, &embedded, &[]);
        let chrono = register(&e.grpc, "before-migrate", &before).await.chrono;
        e.child.kill().unwrap();
        e.child.wait().unwrap();
        chrono
    };
    // Moved to the cluster, documents and all.
    let cfg = fresh_kafka(&brokers, 4).await;
    let kafka: Vec<String> = vec![
        "--kafka".into(),
        brokers.clone(),
        "--topic".into(),
        cfg.topic.clone(),
        "--dead-letter-topic".into(),
        cfg.dead_letter_topic.clone(),
        "--keys-topic".into(),
        cfg.keys_topic.clone(),
    ];
    let mut migrate = vec!["migrate".to_string(), "--data".into()];
    migrate.push(embedded.display().to_string());
    migrate.extend(kafka.clone());
    migrate.extend(s3.args("cluster"));
    let out = std::process::Command::new(&bin)
        .args(&migrate)
        .envs(s3.env())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "copied 1 documents from {} to s3://{}/cluster (already there: 0)",
            embedded.join("content").display(),
            s3.bucket
        )),
        "{said}"
    );
    assert_eq!(s3.keys("cluster/sha256/").await.len(), 1);

    // Hub A sends; hub B never does.
    let mut common = kafka.clone();
    common.extend(s3.args("cluster"));
    common.extend(["--adapters".into(), adapters.display().to_string()]);
    let mut args_b = common.clone();
    args_b.extend(["--outbound".into(), "off".into()]);
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let logs = || std::process::Stdio::null();
    let mut a = spawn_serve_in(&bin, &data_a, &os(&common), &s3.env(), logs());
    let mut b = spawn_serve_in(&bin, &data_b, &os(&args_b), &s3.env(), logs());

    // The migrated letter, with its scan, on both hubs.
    for hub in [&a, &b] {
        let l = letter_on(&hub.grpc, &old_chrono).await;
        assert_eq!(l.scans.len(), 1);
        let (status, bytes) = scan_on_desk(&hub.web, &old_chrono).await;
        assert_eq!(status, 200, "{}", hub.web);
        assert!(bytes == before, "the scan as migrated, on {}", hub.web);
    }

    // A letter with its scan registered on A: read, with its scan, on B's gRPC and desk.
    let scan = pdf(2, 2_000_000);
    let on_a = register(&a.grpc, "on-hub-a", &scan).await;
    let on_b = letter_on(&b.grpc, &on_a.chrono).await;
    assert_eq!(on_b.scans, on_a.scans);
    let (status, bytes) = scan_on_desk(&b.web, &on_a.chrono).await;
    assert_eq!(status, 200);
    assert!(
        bytes == scan,
        "hub A's scan, as registered, on hub B's desk"
    );
    assert!(
        !data_a.join("content/sha256").exists() && !data_b.join("content/sha256").exists(),
        "no document on a hub's own disk"
    );

    // One sender: an e-mail answer sent from B leaves once, through A.
    let ch_b = channel(&b.grpc).await;
    let (_, reference) = citizen_with_request(&ch_b, pb::ContactChannel::Email).await;
    let mut out_b = OutboundServiceClient::new(ch_b.clone());
    let sent = out_b
        .send_answer(compose(&reference, "Votre dossier est complet."))
        .await
        .unwrap()
        .into_inner();
    wait_status(&ch_b, &sent.answer_event_id, pb::AnswerStatus::Delivered).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 1, "exactly one hub sends");

    // A letter answer composed on A, printed from B's print queue.
    let ch_a = channel(&a.grpc).await;
    let (_, by_post) = citizen_with_request(&ch_a, pb::ContactChannel::Courrier).await;
    let queued = OutboundServiceClient::new(ch_a.clone())
        .send_answer(compose(&by_post, "Votre demande a reçu un avis favorable."))
        .await
        .unwrap()
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(60);
    let item = loop {
        let items = out_b
            .list_print_queue(pb::ListPrintQueueRequest {
                tenant: GIVORS.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .items;
        if let Some(i) = items.into_iter().find(|i| {
            i.answer
                .as_ref()
                .is_some_and(|x| x.answer_event_id == queued.answer_event_id)
        }) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "the letter never reached B's queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let printed = out_b
        .mark_printed(pb::MarkPrintedRequest {
            tenant: GIVORS.into(),
            answer_event_id: queued.answer_event_id.clone(),
            pdf_sha256: item.pdf_sha256.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(printed.status, pb::AnswerStatus::Delivered as i32);
    wait_status(&ch_a, &queued.answer_event_id, pb::AnswerStatus::Delivered).await;

    // Hub A killed while scans upload, five times: whatever B shows names documents that are
    // there.
    let mut a_grpc = a.grpc.clone();
    let mut cut = 0;
    for round in 0..5u32 {
        let scan = pdf(100 + round, 4_000_000);
        let grpc = a_grpc.clone();
        let key = format!("killed-{round}");
        let upload = tokio::spawn(async move {
            let mut c = CourrierServiceClient::new(channel(&grpc).await);
            c.register_courrier(tokio_stream::iter(registration(
                header(GIVORS, &key),
                &[scan],
            )))
            .await
            .map(|r| r.into_inner())
        });
        tokio::time::sleep(Duration::from_millis(60 << round)).await;
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        if !matches!(upload.await, Ok(Ok(_))) {
            cut += 1;
        }
        a = spawn_serve_in(&bin, &data_a, &os(&common), &s3.env(), logs());
        a_grpc = a.grpc.clone();
    }
    let letters = CourrierServiceClient::new(ch_b.clone())
        .list_courrier(pb::ListCourrierRequest {
            tenant: GIVORS.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .courriers;
    let stored = s3.keys("cluster/sha256/").await;
    let mut named = 0;
    for l in &letters {
        for s in &l.scans {
            named += 1;
            assert!(
                stored
                    .iter()
                    .any(|k| k.ends_with(&format!("/{}", s.sha256))),
                "letter {} names a document the store does not have",
                l.chrono
            );
        }
    }
    assert!(named >= 2, "{named} scans named");
    eprintln!("{cut} of 5 registrations cut by SIGKILL; {named} scans named, all stored");
    assert!(cut > 0, "no registration was cut: the kills came too late");
    for hub in [&mut a, &mut b] {
        hub.child.kill().unwrap();
        hub.child.wait().unwrap();
    }
}

/// What the content store does, run on disk and in object storage: stored by hash, read
/// back, stored again renewed, an upload refused leaving nothing, documents stored before a
/// time listed, one renewed since never removed by collection, and a copy between stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_store_behaves_the_same_on_disk_and_in_object_storage() {
    let dir = tempfile::tempdir().unwrap();
    let disk = contacthub_app::content::ContentStore::open(dir.path().join("disk")).unwrap();
    content_store_contract(&disk).await;
    let Some(s3) = S3::start().await else { return };
    let objects = s3.store(&dir.path().join("objects"), "contract").await;
    content_store_contract(&objects).await;
    // Copied between stores (what `migrate` does): once, then found there.
    let from = contacthub_app::content::ContentStore::open(dir.path().join("from")).unwrap();
    let doc = from.put(&pdf(7, 5000), 1 << 20).await.unwrap();
    let to = s3.store(&dir.path().join("to"), "copy").await;
    assert_eq!(from.copy_into(&to).await.unwrap(), (1, 0));
    assert_eq!(from.copy_into(&to).await.unwrap(), (0, 1));
    assert!(to.read(&doc.sha256).await.unwrap().unwrap() == pdf(7, 5000));
    // A bucket that does not exist is said at start.
    let wrong = contacthub_app::content::ContentStore::s3_with(
        dir.path().join("wrong"),
        "s3://no-such-bucket",
        &contacthub_app::content::Transport {
            endpoint: Some(s3.endpoint.clone()),
            ..Default::default()
        },
        &s3.env(),
    )
    .await
    .unwrap_err();
    assert!(wrong.to_string().contains("cannot be read"), "{wrong}");
    // Plain HTTP beyond this machine only when asked for: refused before any connection
    // (192.0.2.1 is an address nothing answers; a try would wait for its time-outs).
    let started = std::time::Instant::now();
    let clear = contacthub_app::content::ContentStore::s3_with(
        dir.path().join("clear"),
        "s3://contacthub",
        &contacthub_app::content::Transport {
            endpoint: Some("http://192.0.2.1:9000".into()),
            ..Default::default()
        },
        &s3.env(),
    )
    .await
    .unwrap_err();
    assert!(
        clear
            .to_string()
            .contains("plain HTTP at http://192.0.2.1:9000"),
        "{clear}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not after trying: {:?} ({clear})",
        started.elapsed()
    );
}

/// Object storage over HTTPS with a certificate from a private authority: a hub given
/// `--content-ca` keeps a registered letter's scan there and its desk serves it back; a hub
/// without the authority refuses to start, saying the store cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_storage_over_https_with_a_private_authority() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    contacthub_tests::pki::authority(&pki);
    let (cert, key) = contacthub_tests::pki::server_cert(&pki, "s3");
    let ca = pki.join("ca.pem");
    let pem = std::fs::read(&ca).unwrap();
    let Some(s3) = S3::start_with(Some((&cert, &key, &pem))).await else {
        return;
    };
    assert!(
        s3.endpoint.starts_with("https://127.0.0.1:"),
        "{}",
        s3.endpoint
    );
    let bin = contacthub_bin!();
    let args = s3.args("tls");

    // What a hub started with `extra` in folder `name` said, having refused to start.
    let refused = |name: &str, extra: &[String]| {
        let mut all = args.clone();
        all.extend_from_slice(extra);
        let said = dir.path().join(format!("{name}.log"));
        let started = try_spawn_serve_in(
            &bin,
            &dir.path().join(name),
            &os(&all),
            &s3.env(),
            std::fs::File::create(&said).unwrap().into(),
        );
        assert!(started.is_err(), "a hub started with {extra:?}");
        std::fs::read_to_string(&said).unwrap()
    };

    // Without the authority: no start, and why.
    let said = refused("refused", &[]);
    assert!(
        said.contains(&format!("opening the content store s3://{}/tls", s3.bucket))
            && said.to_lowercase().contains("certificate"),
        "{said}"
    );
    // A file that is no certificate (its key) given as the authority: said at start.
    let said = refused("wrong", &["--content-ca".into(), key.display().to_string()]);
    assert!(
        said.contains("authority (--content-ca) is not a PEM certificate"),
        "{said}"
    );

    // With it: the scan goes to the bucket and comes back on the desk.
    let mut with_ca = args.clone();
    with_ca.extend(["--content-ca".into(), ca.display().to_string()]);
    let mut hub = spawn_serve_in(
        &bin,
        &dir.path().join("data"),
        &os(&with_ca),
        &s3.env(),
        std::process::Stdio::null(),
    );
    let scan = pdf(3, 200_000);
    let letter = register(&hub.grpc, "over-https", &scan).await;
    assert_eq!(s3.keys("tls/sha256/").await.len(), 1);
    let (status, bytes) = scan_on_desk(&hub.web, &letter.chrono).await;
    assert_eq!(status, 200);
    assert!(
        bytes == scan,
        "the scan as registered, read back over HTTPS"
    );
    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
}

async fn content_store_contract(store: &contacthub_app::content::ContentStore) {
    let one = pdf(1, 100_000);
    let a = store.put(&one, 1 << 20).await.unwrap();
    assert!(store.read(&a.sha256).await.unwrap().unwrap() == one);
    assert_eq!(store.read(&"0".repeat(64)).await.unwrap(), None);
    assert!(store.put(b"not a scan at all", 1 << 20).await.is_err());
    assert_eq!(store.counts().await.unwrap(), (1, 0));
    // Stored before `cutoff`: listed; stored again since: no longer removable (object
    // stores keep times to the second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let b = store.put(&pdf(2, 1000), 1 << 20).await.unwrap();
    let before = store.stored_before(cutoff).await.unwrap();
    assert!(before.contains(&a.sha256) && !before.contains(&b.sha256));
    store.put(&one, 1 << 20).await.unwrap();
    assert!(!store.discard(&a.sha256, Some(cutoff)).await.unwrap());
    assert!(store.read(&a.sha256).await.unwrap().is_some());
    // In the trash: still readable, listed there, put back or purged.
    assert!(store.discard(&b.sha256, None).await.unwrap());
    assert!(!store
        .stored_before(SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap()
        .contains(&b.sha256));
    assert!(store
        .trashed_before(SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap()
        .contains(&b.sha256));
    assert!(store.read(&b.sha256).await.unwrap().is_some());
    assert!(store.restore(&b.sha256).await.unwrap());
    assert!(store
        .stored_before(SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap()
        .contains(&b.sha256));
    assert!(store.discard(&b.sha256, None).await.unwrap());
    assert!(store.purge(&b.sha256).await.unwrap());
    assert!(!store.purge(&b.sha256).await.unwrap());
    assert_eq!(store.read(&b.sha256).await.unwrap(), None);
    // Erased: unless written since (another upload, or a move to the trash racing it).
    let e = store.put(&pdf(4, 1000), 1 << 20).await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(60);
    let future = SystemTime::now() + Duration::from_secs(60);
    assert!(!store.erase(&e.sha256, past).await.unwrap());
    assert!(store.discard(&e.sha256, None).await.unwrap());
    assert!(!store.erase(&e.sha256, past).await.unwrap());
    assert!(
        store.read(&e.sha256).await.unwrap().is_some(),
        "kept in the trash"
    );
    store.put(&pdf(4, 1000), 1 << 20).await.unwrap();
    assert!(store.erase(&e.sha256, future).await.unwrap());
    assert_eq!(
        store.read(&e.sha256).await.unwrap(),
        None,
        "gone from both places"
    );
    let c = store.put(&pdf(3, 1000), 1 << 20).await.unwrap();
    assert!(store.remove(&c.sha256).await.unwrap());
    assert!(!store.remove(&c.sha256).await.unwrap());
    assert_eq!(store.read(&b.sha256).await.unwrap(), None);
}

/// Collection moves a document no event names to the trash once it is older than the grace
/// period and deletes it a grace period later; never one an event names (a dead-lettered one
/// included), and one an event names by the second step goes back. Only the retention part
/// runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_no_event_names_are_collected_and_no_other() {
    use contacthub_app::auth::System;
    let hub = TestHub::start(&Backend::Embedded).await;
    let store = |n: u32| {
        let app = hub.hub.clone();
        async move {
            app.store_document(System::Adapters, &pdf(n, 2000), "application/pdf", 1 << 20)
                .await
                .unwrap()
        }
    };
    let (used, orphan, dead, late) = (
        store(1).await,
        store(2).await,
        store(3).await,
        store(4).await,
    );
    let mut form = web_form(
        GIVORS,
        "collect-form",
        "06 12 34 56 78",
        "a@example.org",
        at(2026, 12, 2, 9, 0),
    );
    form.attachments = vec![used.clone()];
    hub.hub
        .append_contacts(System::Adapters, &[form])
        .await
        .unwrap();
    // An event the projector refuses (no party): dead-lettered, its document kept for when
    // ops publish it again, fixed. Sealed as the hub's writers seal: its document's name is
    // in the sealed part, read with the keyring.
    let mut refused_event = web_form(
        GIVORS,
        "collect-dead",
        "06 12 34 56 79",
        "b@example.org",
        at(2026, 12, 2, 9, 5),
    );
    refused_event.personal = None;
    refused_event.attachments = vec![dead.clone()];
    {
        use contacthub_core::seal;
        let id = seal::subject(&refused_event);
        let key = hub.keys.keys_for(std::slice::from_ref(&id)).await.unwrap()[0].unwrap();
        seal::seal(&mut refused_event, &id, &key, [9; seal::NONCE_LEN]);
        assert!(refused_event.attachments.is_empty() && refused_event.sealed.is_some());
    }
    hub.publish(&[refused_event]).await;
    hub.settle().await;
    assert_eq!(hub.store.dead_letters(10, |_| true).unwrap().len(), 1);
    // An upload a killed process left behind.
    let content =
        contacthub_app::content::ContentStore::open(hub.dir.path().join("content")).unwrap();
    std::fs::write(
        hub.dir.path().join("content/tmp/left-behind"),
        b"%PDF-1.4 half",
    )
    .unwrap();
    let refused = hub
        .hub
        .collect_documents(System::Adapters, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, contacthub_app::Error::Forbidden(_)),
        "{refused:?}"
    );
    // Within the grace period nothing goes.
    let kept = hub
        .hub
        .collect_documents(System::Retention, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(kept, contacthub_app::retention::Collected::default());
    assert_eq!(content.counts().await.unwrap(), (4, 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let first = hub
        .hub
        .collect_documents(System::Retention, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        (first.trashed, first.kept, first.removed, first.uploads),
        (2, 2, 0, 1),
        "{first:?}"
    );
    // In the trash, still readable: an event may name it yet (here it does, late).
    for doc in [&used, &orphan, &dead, &late] {
        assert!(content.read(&doc.sha256).await.unwrap().is_some());
    }
    let mut late_form = web_form(
        GIVORS,
        "collect-late",
        "06 12 34 56 77",
        "c@example.org",
        at(2026, 12, 2, 9, 10),
    );
    late_form.attachments = vec![late.clone()];
    hub.hub
        .append_contacts(System::Adapters, &[late_form])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = hub
        .hub
        .collect_documents(System::Retention, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        (second.removed, second.restored, second.trashed),
        (1, 1, 0),
        "{second:?}"
    );
    assert!(content.read(&orphan.sha256).await.unwrap().is_none());
    for doc in [&used, &dead, &late] {
        assert!(content.read(&doc.sha256).await.unwrap().is_some());
    }
    let listed = content
        .stored_before(SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        listed.contains(&late.sha256),
        "put back among the documents"
    );
    assert_eq!(content.counts().await.unwrap(), (3, 0));
}
