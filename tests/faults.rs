//! Faults and hostile input, as a probe of the running hub found them (issue 9): a full disk
//! and a read-only data folder (a real small tmpfs), identity squatting, oversize input,
//! cancelled watches, attachment URLs aimed at the hub's own network, scopes of commune
//! agents, conflicting re-deliveries, quarantine amplification, personal data in logs,
//! malformed requests, a closed pipe, an open API on the network, and a part that stops.
//! Bodies that involve the log run on the embedded log and on Kafka.

use contacthub_adapters::http::{body_signature, gateway_signature};
use contacthub_adapters::ingest::Summary;
use contacthub_adapters::quarantine::Quarantine;
use contacthub_proto::v1 as pb;
use contacthub_tests::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;

on_every_backend!(
    a_full_disk_or_read_only_folder_pauses_projection_and_recovers,
    provisional_ids_cannot_be_squatted,
    oversize_input_is_kept_and_never_blocks,
    cancelled_watches_free_their_tasks,
    same_source_id_with_other_content_is_a_conflict,
);

/// A small tmpfs of its own, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a {megabytes} MiB tmpfs failed: the full-disk test needs root (as CI runs)"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file until writes fail with ENOSPC.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        filler
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {mode}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn connect(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(addr.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connecting to the child hub")
}

async fn health(channel: &tonic::transport::Channel) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {limit:?} waiting until {what}");
}

fn visit(key: &str) -> pb::RecordVisitRequest {
    pb::RecordVisitRequest {
        tenant: GIVORS.into(),
        party: Some(party_phone("06 11 22 33 44")),
        desk: "accueil".into(),
        subject: format!("visite {key}"),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

/// Kafka arguments for a child hub, on fresh topics.
async fn kafka_args(backend: &Backend) -> Vec<String> {
    match backend {
        Backend::Embedded => vec![],
        Backend::Kafka { brokers } => {
            let cfg = fresh_kafka(brokers, 4).await;
            vec![
                "--kafka".into(),
                brokers.clone(),
                "--topic".into(),
                cfg.topic,
                "--dead-letter-topic".into(),
                cfg.dead_letter_topic,
                "--keys-topic".into(),
                cfg.keys_topic,
            ]
        }
    }
}

async fn a_full_disk_or_read_only_folder_pauses_projection_and_recovers(backend: Backend) {
    let disk = SmallDisk::mount(24);
    let data = disk.path().join("data");
    let args = kafka_args(&backend).await;
    let extra: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let mut hub = spawn_serve(&contacthub_bin!(), &data, &extra);
    let channel = connect(&hub.grpc).await;
    let mut desk = pb::desk_service_client::DeskServiceClient::new(channel.clone());
    let mut ops = pb::ops_service_client::OpsServiceClient::new(channel.clone());
    desk.record_visit(visit("before"))
        .await
        .expect("a visit on a healthy hub");

    let mut acknowledged = vec!["before".to_string()];
    let filler = disk.fill();
    // Writes keep coming: refused (UNAVAILABLE), or taken by the log but not yet visible.
    let mut refused = 0;
    for i in 0..40 {
        let key = format!("full-{i}");
        match desk.record_visit(visit(&key)).await {
            Ok(_) => acknowledged.push(key),
            Err(s) => {
                assert!(
                    matches!(
                        s.code(),
                        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                    ),
                    "{s:?}"
                );
                if s.message().starts_with("enregistré") {
                    acknowledged.push(key); // On the log: it must appear later.
                }
                refused += 1;
            }
        }
        if refused > 3 && health(&channel).await == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused > 0,
        "every write was accepted and visible on a full disk"
    );
    eventually(
        "health is NOT_SERVING",
        Duration::from_secs(30),
        async || health(&channel).await == ServingStatus::NotServing as i32,
    )
    .await;
    let status = ops
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("status answers on a full disk")
        .into_inner();
    assert!(
        !status.projector_error.is_empty() || !status.log_error.is_empty(),
        "status says nothing: {status:?}"
    );

    std::fs::remove_file(filler).unwrap();
    // Without a restart: writes are visible again, and so is everything acknowledged.
    eventually(
        "a visit is visible again",
        Duration::from_secs(90),
        async || desk.record_visit(visit("after")).await.is_ok(),
    )
    .await;
    acknowledged.push("after".into());
    eventually("health is SERVING", Duration::from_secs(30), async || {
        health(&channel).await == ServingStatus::Serving as i32
    })
    .await;
    let timeline = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0611223344"),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen: Vec<String> = timeline
        .entries
        .iter()
        .map(|e| e.subject.trim_start_matches("visite ").to_string())
        .collect();
    seen.sort();
    acknowledged.sort();
    acknowledged.dedup();
    assert_eq!(seen, acknowledged, "every acknowledged visit, once");

    // SIGTERM: the hub stops within seconds and frees its data folder.
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &hub.child.id().to_string()])
        .status()
        .unwrap();
    let code = hub.child.wait().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        stopped.elapsed()
    );
    assert!(code.success(), "{code:?}");

    // A read-only data folder (Linux refuses to remount a file system read-only while files
    // are open for writing, so the hub starts on it): a clear error and an exit, not a hang.
    disk.remount("ro");
    let started = Instant::now();
    let o = Command::new(contacthub_bin!())
        .arg("serve")
        .args(FREE_PORTS)
        .arg("--data")
        .arg(&data)
        .args(&args)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
    disk.remount("rw");

    let mut again = spawn_serve(&contacthub_bin!(), &data, &extra);
    let mut desk = pb::desk_service_client::DeskServiceClient::new(connect(&again.grpc).await);
    desk.record_visit(visit("restarted"))
        .await
        .expect("restart on the same folder");
    acknowledged.push("restarted".into());
    let timeline = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0611223344"),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        timeline.entries.len(),
        acknowledged.len(),
        "nothing lost or doubled across the restart"
    );
    again.child.kill().unwrap();
    let _ = again.child.wait();
}

async fn provisional_ids_cannot_be_squatted(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let url = hub
        .start_adapters("[[commune]]\ncode = \"69091\"\nhmac_secret = \"portal\"\n")
        .await;
    let http = reqwest::Client::new();
    // The attacker names the next provisional id, with their own e-mail.
    let form = serde_json::json!({
        "form": "signalement-voirie",
        "submission_id": "squat-1",
        "user": {"name": "Mallory", "email": "mallory@example.fr", "citizen_id": "GIV-P000001"},
        "fields": {"Objet": "test"}
    })
    .to_string()
    .into_bytes();
    let r = http
        .post(format!("{url}/v1/{GIVORS}/forms"))
        .header(
            "x-contacthub-signature",
            body_signature("portal", chrono::Utc::now().timestamp(), &form),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Then an unknown citizen writes by SMS.
    let r = http
        .post(format!("{url}/v1/{GIVORS}/sms"))
        .form(&[
            ("MessageSid", "SMsquat"),
            ("From", "+33612345678"),
            ("To", "+33472491818"),
            ("Body", "Ma demande personnelle"),
        ])
        .header(
            "x-contacthub-signature",
            body_signature(
                "portal",
                chrono::Utc::now().timestamp(),
                b"MessageSid=SMsquat&From=%2B33612345678&To=%2B33472491818&Body=Ma+demande+personnelle",
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut desk = hub.desk();
    let attacker = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_email("mallory@example.fr"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        attacker.entries.len(),
        1,
        "the attacker sees only their own form"
    );
    assert!(attacker.entries[0]
        .links
        .iter()
        .any(|l| l.rel == "claimed_citizen" && l.target == "GIV-P000001"));
    let victim = desk
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0612345678"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(
        victim.citizen.as_ref().unwrap().citizen_id,
        attacker.citizen.as_ref().unwrap().citizen_id
    );
    // A visit naming a citizen that does not exist is refused, and writes nothing.
    let err = desk
        .record_visit(pb::RecordVisitRequest {
            tenant: GIVORS.into(),
            party: Some(pb::Party {
                citizen_id: "GIV-P000099".into(),
                name: "X".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    // A registration may not take a provisional id.
    let mut squat = register(
        GIVORS,
        "GIV-P000050",
        "Mallory",
        "0699999999",
        at(2026, 5, 1, 8, 0),
    );
    squat.event_id = contacthub_core::event::event_id(GIVORS, "test", "squat-register");
    hub.publish(&[squat]).await;
    hub.settle().await;
    assert!(hub.store.citizen(GIVORS, "GIV-P000050").unwrap().is_none());
    hub.stop().await;
}

fn deliver(maildir: &Path, name: &str, bytes: &[u8]) {
    for d in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(d)).unwrap();
    }
    std::fs::write(maildir.join("tmp").join(name), bytes).unwrap();
    std::fs::rename(
        maildir.join("tmp").join(name),
        maildir.join("new").join(name),
    )
    .unwrap();
}

async fn oversize_input_is_kept_and_never_blocks(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let maildir = hub.dir.path().join("maildir-givors");
    let url = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\nmaildir = \"{}\"\n",
            maildir.display()
        ))
        .await;
    let http = reqwest::Client::new();

    // An SMS with 1 MB of text: accepted, the text clipped, the whole text kept as a document.
    let body = "é".repeat(500_000);
    let r = http
        .post(format!("{url}/v1/{GIVORS}/sms"))
        .form(&[
            ("MessageSid", "SMbig"),
            ("From", "+33611111111"),
            ("To", "+33472491818"),
            ("Body", body.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let entry = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0611111111"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .remove(0);
    let detail = hub
        .desk()
        .get_contact(pb::GetContactRequest {
            tenant: GIVORS.into(),
            event_id: entry.event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .personal
        .unwrap();
    assert!(detail.text.chars().count() <= contacthub_core::limits::TEXT_CHARS);
    assert_eq!(detail.attachment_names, ["texte-complet.txt"]);
    let kept = contacthub_app::content::ContentStore::open(hub.dir.path().join("content"))
        .unwrap()
        .read(&entry.attachments[0].sha256)
        .await
        .unwrap()
        .expect("the attachment is stored");
    assert_eq!(String::from_utf8(kept).unwrap(), body);

    // An e-mail with a 2.5 MB subject, in a Maildir beside a good one: the bad one is
    // quarantined naming the field and its limit, the good one goes through.
    let subject = "A".repeat(2_500_000);
    let bad = format!(
        "From: x@example.fr\r\nTo: mairie@ville-givors.fr\r\nSubject: {subject}\r\nMessage-ID: <big@x>\r\n\r\nbonjour\r\n"
    );
    deliver(&maildir, "1.big", bad.as_bytes());
    deliver(
        &maildir,
        "2.good",
        b"From: y@example.fr\r\nTo: mairie@ville-givors.fr\r\nSubject: Cantine\r\nMessage-ID: <good@y>\r\n\r\nbonjour\r\n",
    );
    until("both messages leave new/", || {
        std::fs::read_dir(maildir.join("new")).unwrap().count() == 0
    })
    .await;
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    let entries = q.list(Some("email"), None).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0]
            .reason
            .contains("subject is 2500000 characters; the limit is 1000"),
        "{}",
        entries[0].reason
    );
    hub.settle().await;
    assert!(hub
        .store
        .by_identifier(GIVORS, "email", "y@example.fr")
        .unwrap()
        .is_some());

    // A CDR file in the drop folder with one monstrous line: that line is quarantined, the
    // others and the files beside it are read.
    let inbox = hub.dir.path().join("cdr-inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let huge_name = "N".repeat(300_000);
    let csv = format!(
        "\"\",\"0612000001\",\"0472491818\",\"from-trunk\",\"\"\"{huge_name}\"\" <0612000001>\",\"SIP/1\",\"SIP/2\",\"Dial\",\"\",\"2026-11-02 09:14:03\",\"2026-11-02 09:14:09\",\"2026-11-02 09:17:12\",\"189\",\"183\",\"ANSWERED\",\"DOCUMENTATION\",\"u1\"\n\"\",\"0612000002\",\"0472491818\",\"from-trunk\",\"\",\"SIP/1\",\"SIP/2\",\"Dial\",\"\",\"2026-11-02 10:14:03\",\"2026-11-02 10:14:09\",\"2026-11-02 10:17:12\",\"189\",\"183\",\"ANSWERED\",\"DOCUMENTATION\",\"u2\"\n"
    );
    std::fs::write(inbox.join("big.csv"), csv).unwrap();
    until("the CDR file is read and deleted", || {
        !inbox.join("big.csv").exists()
    })
    .await;
    hub.settle().await;
    assert!(hub
        .store
        .by_identifier(GIVORS, "phone", "+33612000002")
        .unwrap()
        .is_some());
    let cdr = q.list(Some("asterisk-cdr"), None).unwrap();
    assert!(
        cdr.iter().any(|e| e
            .reason
            .contains("party.name is 300000 characters; the limit is 200")),
        "{cdr:?}"
    );

    // Over gRPC, every field is bounded with a clear message.
    let mut v = visit("big-subject");
    v.subject = "x".repeat(10_000);
    let err = hub.desk().record_visit(v).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("subject is 10000 characters; the limit is 1000"),
        "{err:?}"
    );
    // A full page of the largest entries still fits a client's default message limit.
    let mut big = Vec::new();
    for i in 0..500 {
        let mut e = call(
            GIVORS,
            &format!("max-{i}"),
            "0622222222",
            at(2026, 1, 1, 8, i % 60),
        );
        e.personal.as_mut().unwrap().subject = "😀".repeat(1000);
        e.personal.as_mut().unwrap().text = "😀".repeat(2_000);
        big.push(e);
    }
    hub.publish(&big).await;
    hub.settle().await;
    let page = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("0622222222"),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("a page within the default message limit")
        .into_inner();
    assert!(!page.entries.is_empty());
    hub.stop().await;
}

async fn cancelled_watches_free_their_tasks(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    hub.publish(&[call(GIVORS, "w0", "0633333333", at(2026, 5, 1, 8, 0))])
        .await;
    hub.settle().await;
    let open = || hub.hub.open_watches();
    let mut handles = Vec::new();
    for _ in 0..200 {
        let mut desk = hub.desk();
        handles.push(tokio::spawn(async move {
            let mut stream = desk
                .watch_timeline(pb::WatchTimelineRequest {
                    tenant: GIVORS.into(),
                    citizen: by_phone("0633333333"),
                })
                .await
                .unwrap()
                .into_inner();
            let _ = tokio::time::timeout(Duration::from_millis(50), stream.message()).await;
            // Dropping the stream cancels the call.
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    until("every cancelled watch is freed", || open() == 0).await;
    // No later write is needed to free them (the leak ended only at the next contact).
    let mut status = hub.ops();
    let s = status
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.open_watches, 0);
    hub.stop().await;
}

async fn same_source_id_with_other_content_is_a_conflict(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let url = hub.start_adapters("").await;
    let http = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        http.post(format!("{url}/v1/{GIVORS}/forms"))
            .body(body.to_string())
            .send()
    };
    let first = serde_json::json!({
        "form": "acte-naissance", "submission_id": "S-1",
        "user": {"name": "Marie Durand", "email": "marie@example.fr"}
    });
    let r = post(first.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = post(first.clone()).await.unwrap();
    let again: Summary = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        (again.accepted, again.duplicates),
        (0, 1),
        "the same submission twice"
    );
    let mut other = first.clone();
    other["user"]["email"] = "someone.else@example.fr".into();
    let r = post(other).await.unwrap();
    assert_eq!(r.status(), 409);
    let s: Summary = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!((s.accepted, s.duplicates, s.conflicts), (0, 0, 1));
    assert!(s.quarantined[0]
        .reason
        .contains("already received with other content"));
    hub.settle().await;
    assert!(hub
        .store
        .by_identifier(GIVORS, "email", "someone.else@example.fr")
        .unwrap()
        .is_none());
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    assert_eq!(q.list(Some("web-form"), None).unwrap().len(), 1);

    // A desk visit retried with its idempotency key: once; the key reused for another visit:
    // refused.
    let mut desk = hub.desk();
    let a = desk.record_visit(visit("k1")).await.unwrap().into_inner();
    let b = desk.record_visit(visit("k1")).await.unwrap().into_inner();
    assert_eq!(a.entry.unwrap().event_id, b.entry.unwrap().event_id);
    let mut changed = visit("k1");
    changed.notes = "autre chose".into();
    let err = desk.record_visit(changed).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
    hub.stop().await;
}

/// A server that counts the requests it receives and answers `answer`.
async fn counting_server(answer: String) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_urls_cannot_reach_the_hub() {
    let ok =
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n%PDF-1.4\n".to_string();
    let (secret_port, secret_hits) = counting_server(ok).await;
    let (redirect_port, redirect_hits) = counting_server(format!(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{secret_port}/secret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
    .await;
    let mut hub = TestHub::start(&Backend::Embedded).await;
    // Givors: the defaults. Grigny: an allow-list naming localhost, private networks allowed.
    let url = hub
        .start_adapters(
            "[[commune]]\ncode = \"69091\"\n[[commune]]\ncode = \"69096\"\nattachment_hosts = [\"localhost\"]\nattachment_private_networks = true\n",
        )
        .await;
    let adapters_port = url.rsplit(':').next().unwrap().to_string();
    let http = reqwest::Client::new();
    let form = |commune: &str, id: &str, target: &str| {
        let body = serde_json::json!({
            "form": "acte-naissance", "submission_id": id,
            "user": {"name": "Marie Durand", "email": "marie@example.fr"},
            "attachments": [{"filename": "piece.pdf", "url": target}]
        });
        http.post(format!("{url}/v1/{commune}/forms"))
            .body(body.to_string())
            .send()
    };
    let mut errors = Vec::new();
    for (i, target) in [
        format!("http://127.0.0.1:{secret_port}/x"),
        format!("http://2130706433:{secret_port}/x"),
        format!("http://localhost:{secret_port}/x"),
        format!("http://[::ffff:127.0.0.1]:{secret_port}/x"),
        format!("http://127.0.0.1:{adapters_port}/metrics"),
        "http://127.0.0.1:9/closed".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let started = Instant::now();
        let r = form(GIVORS, &format!("ssrf-{i}"), target).await.unwrap();
        assert_eq!(r.status(), 400, "{target}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        errors.push(body["error"].as_str().unwrap().to_string());
    }
    errors.dedup();
    assert_eq!(
        errors,
        ["document 1 (\"piece.pdf\") could not be fetched"],
        "one generic answer, whatever is (or is not) behind the URL"
    );
    // The redirect from an allowed host to another is not followed.
    let r = form(
        GRIGNY,
        "ssrf-redirect",
        &format!("http://localhost:{redirect_port}/doc"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(redirect_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        secret_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the hub's own network"
    );
    // The detail is for the quarantine only.
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    let kept = q.list(Some("web-form"), None).unwrap();
    assert_eq!(kept.len(), 7);
    assert!(
        kept.iter().any(|e| e.reason.contains("internal address")),
        "{kept:?}"
    );
    assert!(kept.iter().any(|e| e
        .reason
        .contains("not one of the commune's attachment_hosts")));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_scans_are_scoped_and_sized_before_reading() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='ops-givors'\ntoken_sha256='{}'\ntenants=['69091']\nops=true\n[[agent]]\nid='ops-all'\ntoken_sha256='{}'\ntenants=['*']\nops=true\n",
        token_hash("ops-givors"),
        token_hash("ops-all")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let inbox = hub.dir.path().join("scan-inbox");
    // The watcher creates it too, maybe not yet.
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("GIV-2026-999999.pdf"), b"%PDF-1.4\n").unwrap();
    std::fs::write(inbox.join("VEN-2026-000001 Dupont.pdf"), b"%PDF-1.4\n").unwrap();
    std::fs::write(inbox.join("scan-sans-nom.pdf"), b"%PDF-1.4\n").unwrap();
    // A sparse file far over the limit: refused by its size, never read.
    let big = std::fs::File::create(inbox.join("GIV-2026-000001.pdf")).unwrap();
    big.set_len(1_500_000_000).unwrap();
    drop(big);
    let unmatched = inbox.join("unmatched");
    until("the four scans are unmatched", || {
        std::fs::read_dir(&unmatched)
            .map(|d| d.count() == 8)
            .unwrap_or(false)
    })
    .await;
    let reason = std::fs::read_to_string(unmatched.join("GIV-2026-000001.pdf.reason")).unwrap();
    assert!(
        reason.contains("1500000000 bytes, larger than the limit"),
        "{reason}"
    );
    let list = |token: &str| {
        let mut c = hub.courrier();
        let mut req = tonic::Request::new(pb::ListUnmatchedScansRequest {
            tenant: String::new(),
        });
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        async move {
            let mut names: Vec<_> = c
                .list_unmatched_scans(req)
                .await
                .unwrap()
                .into_inner()
                .scans
                .into_iter()
                .map(|s| s.filename)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        list("ops-givors").await,
        ["GIV-2026-000001.pdf", "GIV-2026-999999.pdf"],
        "a commune's ops agent sees its commune's scans only"
    );
    assert_eq!(list("ops-all").await.len(), 4);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_bad_lines_is_one_quarantine_entry() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let url = hub.start_adapters("").await;
    let bad: String = (0..2000)
        .map(|i| format!("\"\",\"bad line {i}\"\n"))
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/{GIVORS}/phone/cdr"))
        .body(bad.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let s: Summary = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!((s.refused, s.quarantined.len()), (2000, 100));
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    let kept = q.list(None, None).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].records.len(), 2000);
    assert_eq!(kept[0].records[1999].locator, "line 2000");
    let files = std::fs::read_dir(hub.dir.path().join("quarantine/asterisk-cdr"))
        .unwrap()
        .count();
    assert_eq!(files, 2, "one .raw and one .json");
    hub.stop().await;
}

/// A raw gRPC call with arbitrary bytes as the request.
async fn raw_call(
    channel: tonic::transport::Channel,
    path: &'static str,
    body: Vec<u8>,
) -> tonic::Status {
    #[derive(Debug, Clone, Default)]
    struct Raw;
    impl tonic::codec::Encoder for Raw {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(
            &mut self,
            item: Vec<u8>,
            dst: &mut tonic::codec::EncodeBuf<'_>,
        ) -> Result<(), tonic::Status> {
            use bytes::BufMut;
            dst.put_slice(&item);
            Ok(())
        }
    }
    impl tonic::codec::Decoder for Raw {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(
            &mut self,
            src: &mut tonic::codec::DecodeBuf<'_>,
        ) -> Result<Option<Vec<u8>>, tonic::Status> {
            use bytes::Buf;
            Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
        }
    }
    impl tonic::codec::Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = Raw;
        type Decoder = Raw;
        fn encoder(&mut self) -> Raw {
            Raw
        }
        fn decoder(&mut self) -> Raw {
            Raw
        }
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(body),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        Raw,
    )
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_short_errors() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let url = hub
        .start_adapters("[[commune]]\ncode = \"69091\"\nsms_auth_token = \"gateway-token\"\n")
        .await;
    const TIMELINE: &str = "/contacthub.v1.DeskService/GetTimeline";
    // Not protobuf, and a string field that is not UTF-8.
    let s = raw_call(hub.channel.clone(), TIMELINE, vec![0xff, 0xff, 0xff]).await;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    let s = raw_call(hub.channel.clone(), TIMELINE, vec![0x0a, 0x02, 0xc3, 0x28]).await;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    // Unbounded input is never echoed whole.
    let err = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone(&"9".repeat(1_000_000)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().len() < 200, "{} bytes", err.message().len());
    let err = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: "x".repeat(100_000),
            citizen: by_phone("0612345678"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.message().len() < 200, "{} bytes", err.message().len());
    // Unknown enum values and absurd durations.
    let mut v = visit("enum");
    v.category = 99;
    let err = hub.desk().record_visit(v).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("catégorie inconnue : 99"), "{err:?}");
    let mut v = visit("duration");
    v.duration_minutes = u32::MAX;
    let err = hub.desk().record_visit(v).await.unwrap_err();
    assert!(
        err.message().contains("duration_minutes is 4294967295"),
        "{err:?}"
    );
    // The SMS gateway's signature opens /sms only.
    let body = br#"{"form":"x","submission_id":"1","user":{"name":"A"}}"#;
    let sig = gateway_signature("gateway-token", &format!("{url}/v1/{GIVORS}/forms"), body);
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/{GIVORS}/forms"))
        .header("x-twilio-signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    hub.stop().await;

    // Anonymous callers are told to authenticate before anything else.
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='a'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("t")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let err = hub
        .ops()
        .get_phone_report(pb::GetPhoneReportRequest {
            tenant: "99999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    hub.stop().await;
}

/// `contacthub serve` over `data` with its standard error captured, and its addresses.
fn serve_logged(data: &Path, extra: &[&str]) -> (std::process::Child, String, String) {
    let extra: Vec<&std::ffi::OsStr> = extra.iter().map(std::ffi::OsStr::new).collect();
    let s = spawn_serve_with_logs(&contacthub_bin!(), data, &extra, Stdio::piped());
    (s.child, s.grpc, s.adapters)
}

#[test]
fn file_names_stay_out_of_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _, adapters) = serve_logged(&dir.path().join("data"), &[]);
    let eml = dir.path().join("Reclamation Marie Durand 0612345678.eml");
    std::fs::write(
        &eml,
        "From: Marie Durand <marie.durand@example.fr>\r\nTo: mairie@ville-givors.fr\r\nSubject: Reclamation\r\nMessage-ID: <r1@x>\r\n\r\nbonjour\r\n",
    )
    .unwrap();
    let o = Command::new(contacthub_bin!())
        .args(["ingest", "email", "--tenant", GIVORS, "--url", &adapters])
        .arg(&eml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("input ingested"), "{logs}");
    for personal in ["Marie", "Durand", "0612345678", "marie.durand"] {
        assert!(!logs.contains(personal), "{personal} in the logs: {logs}");
    }
}

#[test]
fn the_cli_exits_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, grpc, _) = serve_logged(&dir.path().join("data"), &[]);
    let mut child = Command::new(contacthub_bin!())
        .args(["status", "--server", &grpc])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // The reader goes away before anything is written.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(141));
    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn serve_refuses_an_open_api_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // Each port beyond loopback in turn, the others on loopback: refused, saying why.
    for (flag, says) in [
        ("--listen", "without an agents file"),
        ("--adapters-listen", "without credentials"),
        ("--web-listen", "refusing to serve the web desk"),
        ("--portal-listen", "refusing to serve the citizens' space"),
    ] {
        let mut args = FREE_PORTS.to_vec();
        let at = args.iter().position(|a| *a == flag).unwrap();
        args[at + 1] = "0.0.0.0:0";
        let o = Command::new(contacthub_bin!())
            .arg("serve")
            .args(&args)
            .arg("--data")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{flag}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{flag}: {err}");
    }
    // Said in so many words, it starts.
    let (mut child, _, _) = serve_logged(&dir.path().join("open"), &["--insecure-open"]);
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn a_part_that_stops_stops_serve_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // The scan inbox is a file, not a folder: the inbox watcher cannot run.
    let not_a_folder = dir.path().join("inbox-file");
    std::fs::write(&not_a_folder, b"x").unwrap();
    let mut child = Command::new(contacthub_bin!())
        .arg("serve")
        .args(FREE_PORTS)
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--scan-inbox")
        .arg(&not_a_folder)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve went on with a dead part"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("scan inbox stopped"), "{err}");
}

/// The hub's Prometheus metrics: after writes and a timeline read, the apply count, the
/// batch, append and GetTimeline latency histograms, and a lag of zero per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = spawn_serve(&contacthub_bin!(), dir.path(), &[]);
    let ch = tonic::transport::Endpoint::from_shared(serve.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut desk = pb::desk_service_client::DeskServiceClient::new(ch);
    for i in 0..3 {
        desk.record_visit(pb::RecordVisitRequest {
            tenant: "69091".into(),
            party: Some(party_phone("0612345678")),
            subject: format!("visite {i}"),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    desk.get_timeline(pb::GetTimelineRequest {
        tenant: "69091".into(),
        citizen: by_phone("0612345678"),
        ..Default::default()
    })
    .await
    .unwrap();
    let page = reqwest::get(&serve.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        page.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{page}"))
    };
    assert!(value("contacthub_projector_events_total") >= 3.0);
    assert_eq!(value("contacthub_get_timeline_seconds_count"), 1.0);
    assert!(value("contacthub_log_append_seconds_count") >= 3.0);
    assert!(value("contacthub_projector_batch_seconds_count") >= 1.0);
    assert_eq!(value("contacthub_serving"), 1.0);
    let lags: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("contacthub_projector_lag{"))
        .collect();
    assert_eq!(lags.len(), 12, "one per partition: {lags:?}");
    assert!(lags.iter().all(|l| l.ends_with(" 0")), "{lags:?}");
    assert!(
        !page.contains("0612345678") && !page.contains("visite"),
        "no personal data"
    );
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}
