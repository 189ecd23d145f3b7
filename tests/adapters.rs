//! Channel adapters end to end: real-format samples (Asterisk CDRs, SMS gateway webhooks,
//! portal JSON, Maildir messages) sent over HTTP or dropped in folders, read back from the
//! gRPC timeline; the same input twice gives one entry; bad input is quarantined with its
//! reason. Every body runs on the embedded log and on Kafka.

use contacthub_adapters::http::{body_signature, gateway_signature};
use contacthub_adapters::ingest::Summary;
use contacthub_adapters::quarantine::Quarantine;
use contacthub_proto::v1 as pb;
use contacthub_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

on_every_backend!(
    phone_calls_reach_the_timeline_once,
    sms_webhooks_signed_by_the_gateway,
    web_forms_with_attachments,
    maildir_messages_and_their_threads,
);

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/adapters")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn timeline(
    hub: &TestHub,
    tenant: &str,
    who: Option<pb::CitizenRef>,
) -> Vec<pb::TimelineEntry> {
    hub.desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: tenant.into(),
            citizen: who,
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("timeline: {s}"))
        .into_inner()
        .entries
}

async fn contact(hub: &TestHub, tenant: &str, event_id: &str) -> pb::GetContactResponse {
    hub.desk()
        .get_contact(pb::GetContactRequest {
            tenant: tenant.into(),
            event_id: event_id.into(),
        })
        .await
        .unwrap_or_else(|s| panic!("contact: {s}"))
        .into_inner()
}

/// `occurred_at summary` per entry, newest first.
fn lines(entries: &[pb::TimelineEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            let at = contacthub_proto::ts::to_micros(e.occurred_at.as_ref().unwrap()).unwrap();
            format!("{} {}\n", contacthub_core::event::fmt_us(at), e.summary)
        })
        .collect()
}

/// The HTTP status a request gets.
async fn status(
    sent: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
) -> u16 {
    sent.await.unwrap().status().as_u16()
}

async fn summary(resp: reqwest::Response) -> (u16, Summary) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let s = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text}: {e}"));
    (status, s)
}

fn quarantine(hub: &TestHub, adapter: &str) -> Vec<contacthub_adapters::quarantine::Entry> {
    Quarantine::open(hub.dir.path().join("quarantine"))
        .unwrap()
        .list(Some(adapter), None)
        .unwrap()
}

async fn phone_calls_reach_the_timeline_once(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let url = hub
        .start_adapters(&format!(
            "ops_token_sha256 = \"{}\"\n[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"9\"]\n",
            token_hash("pbx-token")
        ))
        .await;
    let http = reqwest::Client::new();
    let csv = fixture("Master.csv");
    let post = |token: Option<&str>| {
        let mut r = http.post(format!("{url}/v1/phone/cdr")).body(csv.clone());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    assert_eq!(status(post(None)).await, 401);
    assert_eq!(status(post(Some("wrong"))).await, 401);

    let (code, first) = summary(post(Some("pbx-token")).await.unwrap()).await;
    assert_eq!(code, 200);
    assert_eq!(
        (first.accepted, first.duplicates, first.ignored),
        (6, 0, 1),
        "{first:?}"
    );
    let reasons: Vec<_> = first
        .quarantined
        .iter()
        .map(|q| format!("{}: {}", q.locator, q.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            "line 8: start \"06/11/2026 17:00\" is not a date (YYYY-MM-DD HH:MM:SS)",
            "line 9: has 3 fields; a CDR line has at least 16 (accountcode … amaflags)",
        ]
    );

    let marie = timeline(&hub, GIVORS, by_phone("06 12 34 56 78")).await;
    expect_test::expect![[r#"
        2026-11-06T13:00:00Z Appel sortant, répondu (3 min 07 s)
        2026-11-05T07:31:00Z Appel entrant, manqué (occupé)
        2026-11-03T09:02:00Z Appel entrant, répondu (2 min 00 s), renvoyé vers l'accueil
        2026-11-02T08:14:03Z Appel entrant, répondu (3 min 09 s)
        2026-10-30T17:02:00Z Appel entrant, manqué (pas de réponse), hors des horaires d'ouverture
    "#]]
    .assert_eq(&lines(&marie));
    assert!(marie.iter().all(|e| e.channel == pb::Channel::Phone as i32));
    assert_eq!(marie[0].direction, pb::Direction::Outbound as i32);
    // Paul Martin called Grigny: Grigny sees him, Givors does not.
    assert_eq!(
        timeline(&hub, GRIGNY, by_phone("06 98 76 54 32"))
            .await
            .len(),
        1
    );
    let hidden = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("06 98 76 54 32"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);

    // The same file again, over HTTP and through the drop folder: nothing doubles.
    let (_, again) = summary(post(Some("pbx-token")).await.unwrap()).await;
    assert_eq!((again.accepted, again.duplicates), (0, 6), "{again:?}");
    assert_eq!(again.event_ids, first.event_ids);
    // With credentials configured, the metrics need the ops token too.
    assert_eq!(status(http.get(format!("{url}/metrics")).send()).await, 401);
    let metrics = http
        .get(format!("{url}/metrics"))
        .bearer_auth("pbx-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "{adapter=\"asterisk-cdr\",tenant=\"69091\",outcome=\"accepted\"} 5",
        "{adapter=\"asterisk-cdr\",tenant=\"69091\",outcome=\"duplicate\"} 5",
        "{adapter=\"asterisk-cdr\",tenant=\"69096\",outcome=\"accepted\"} 1",
        "{adapter=\"asterisk-cdr\",tenant=\"\",outcome=\"quarantined\"} 4",
    ] {
        assert!(
            metrics.contains(&format!("contacthub_adapter_items_total{line}\n")),
            "{metrics}"
        );
    }
    let inbox = hub.dir.path().join("cdr-inbox");
    std::fs::write(inbox.join("Master-2026-11.csv"), &csv).unwrap();
    // Read, on the log, then deleted: no copy outlives an erasure of the callers.
    until("the dropped file is read and deleted", || {
        !inbox.join("Master-2026-11.csv").exists()
    })
    .await;
    assert!(
        std::fs::read_dir(&inbox).unwrap().next().is_none(),
        "nothing left in the drop folder"
    );
    hub.settle().await;
    assert_eq!(
        lines(&timeline(&hub, GIVORS, by_phone("06 12 34 56 78")).await),
        lines(&marie)
    );

    // Bounce-back rate: 1 bounce for 3 inbound calls, 2 of them in November.
    let report = hub
        .ops()
        .get_phone_report(pb::GetPhoneReportRequest {
            tenant: GIVORS.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let figures = |f: &pb::PhoneFigures| {
        format!(
            "{} in ({} missed), {} out, {} bounced = {:.2} %",
            f.inbound_calls,
            f.missed_calls,
            f.outbound_calls,
            f.bounced_calls,
            f.bounce_rate_percent
        )
    };
    let by_month: Vec<_> = report
        .months
        .iter()
        .map(|m| format!("{}: {}", m.month, figures(m.figures.as_ref().unwrap())))
        .collect();
    assert_eq!(
        by_month,
        [
            "2026-10: 1 in (1 missed), 0 out, 0 bounced = 0.00 %",
            "2026-11: 2 in (1 missed), 1 out, 1 bounced = 50.00 %",
        ]
    );
    assert_eq!(
        figures(report.total.as_ref().unwrap()),
        "3 in (2 missed), 1 out, 1 bounced = 33.33 %"
    );
    let grigny = hub
        .ops()
        .get_phone_report(pb::GetPhoneReportRequest {
            tenant: GRIGNY.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        figures(grigny.total.as_ref().unwrap()),
        "1 in (0 missed), 0 out, 0 bounced = 0.00 %"
    );

    // One quarantine entry for the file, listing its bad lines, with the file as received.
    let kept = quarantine(&hub, "asterisk-cdr");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let lines_refused: Vec<_> = kept[0].records.iter().map(|r| r.locator.as_str()).collect();
    assert_eq!(lines_refused, ["line 8", "line 9"]);
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    let (_, raw) = q.raw(&first.quarantined[1].quarantine_id).unwrap().unwrap();
    assert_eq!(raw, csv);
    hub.stop().await;
}

async fn sms_webhooks_signed_by_the_gateway(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let url = hub
        .start_adapters(
            "public_url = \"https://grc.example.fr/adapters/\"\n[[commune]]\ncode = \"69091\"\nsms_auth_token = \"gateway-token\"\n",
        )
        .await;
    let http = reqwest::Client::new();
    let text = "Bonjour, ma fille Zoé est inscrite à l'école Jules-Ferry 🏫. La cantine du mercredi \
                est-elle ouverte pendant les vacances de février ? Et le centre aéré accepte-t-il les \
                enfants de 4 ans ? Merci d'avance pour votre réponse — Mme Durand 😊 (06 12 34 56 78)";
    let webhook = |sid: &str, from: &str, to: &str, body: Option<&str>| {
        let mut f = form_urlencoded::Serializer::new(String::new());
        f.append_pair("ToCountry", "FR");
        f.append_pair("MessageSid", sid);
        f.append_pair("AccountSid", "AC0123456789");
        f.append_pair("From", from);
        f.append_pair("To", to);
        if let Some(b) = body {
            f.append_pair("Body", b);
            f.append_pair("NumSegments", "4");
        } else {
            f.append_pair("MessageStatus", "delivered");
        }
        f.finish()
    };
    let send = |commune: &str, body: String, token: &str| {
        let sig = gateway_signature(
            token,
            &format!("https://grc.example.fr/adapters/v1/{commune}/sms"),
            body.as_bytes(),
        );
        http.post(format!("{url}/v1/{commune}/sms"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(body)
            .send()
    };
    let inbound = webhook(
        "SM5f2c0000000000000000000000000001",
        "+33612345678",
        "+33472491818",
        Some(text),
    );

    let r = send(GIVORS, inbound.clone(), "gateway-token")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    assert_eq!(
        r.text().await.unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
    // The gateway retries: still one message.
    assert_eq!(
        status(send(GIVORS, inbound.clone(), "gateway-token")).await,
        200
    );
    // Forged, unsigned, or signed for another commune: refused.
    assert_eq!(status(send(GIVORS, inbound.clone(), "guess")).await, 401);
    let unsigned = http
        .post(format!("{url}/v1/{GIVORS}/sms"))
        .body(inbound.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(
        status(send(GRIGNY, inbound.clone(), "gateway-token")).await,
        401
    );
    // A message the commune sent, reported by the gateway's status callback.
    let sent = webhook(
        "SM5f2c0000000000000000000000000002",
        "+33472491818",
        "+33612345678",
        None,
    );
    assert_eq!(
        send(GIVORS, sent, "gateway-token").await.unwrap().status(),
        200
    );
    // Broken: refused with the reason, kept.
    let broken = "MessageSid=SM3&Body=sans+num%C3%A9ro".to_string();
    let r = send(GIVORS, broken.clone(), "gateway-token").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap().trim(),
        "SMS refused: missing From or To"
    );

    let entries = timeline(&hub, GIVORS, by_phone("06 12 34 56 78")).await;
    let mut kinds: Vec<_> = entries
        .iter()
        .map(|e| (e.summary.clone(), e.direction))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("SMS envoyé".to_string(), pb::Direction::Outbound as i32),
            (
                "SMS reçu (4 segments)".to_string(),
                pb::Direction::Inbound as i32
            ),
        ]
    );
    let received = entries
        .iter()
        .find(|e| e.direction == pb::Direction::Inbound as i32)
        .unwrap();
    let full = contact(&hub, GIVORS, &received.event_id).await;
    assert_eq!(
        full.personal.unwrap().text,
        text,
        "the whole text, accents and emoji intact"
    );
    assert_eq!(entries.len(), 2);

    let kept = quarantine(&hub, "sms");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, "missing From or To");
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    assert_eq!(q.raw(&kept[0].id).unwrap().unwrap().1, broken.as_bytes());
    hub.stop().await;
}

/// Serves one file at `/files/justificatif.pdf` and 404 elsewhere, as a portal would.
async fn file_server(bytes: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let found = head.starts_with(b"GET /files/justificatif.pdf ");
                let (status, body): (&str, &[u8]) = if found {
                    ("200 OK", bytes)
                } else {
                    ("404 Not Found", b"")
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.write_all(body).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn web_forms_with_attachments(backend: Backend) {
    const FETCHED: &[u8] = b"%PDF-1.4\n% justificatif de domicile\n%%EOF\n";
    let files = file_server(FETCHED).await;
    let mut hub = TestHub::start(&backend).await;
    let url = hub
        .start_adapters(
            "[[commune]]\ncode = \"69091\"\nhmac_secret = \"portal-secret\"\nattachment_private_networks = true\n",
        )
        .await;
    let http = reqwest::Client::new();
    let post = |commune: &str, body: Vec<u8>, secret: &str| {
        http.post(format!("{url}/v1/{commune}/forms"))
            .header("content-type", "application/json")
            .header(
                "x-contacthub-signature",
                body_signature(secret, chrono::Utc::now().timestamp(), &body),
            )
            .body(body)
            .send()
    };
    let form = String::from_utf8(fixture("forms/acte-naissance.json"))
        .unwrap()
        .replace(
            "{{ATTACHMENT_URL}}",
            &format!("{files}/files/justificatif.pdf"),
        )
        .into_bytes();

    let (code, s) = summary(post(GIVORS, form.clone(), "portal-secret").await.unwrap()).await;
    assert_eq!((code, s.accepted), (200, 1), "{s:?}");
    let (_, s) = summary(
        post(
            GIVORS,
            fixture("forms/nouvelle-demarche.json"),
            "portal-secret",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s.accepted, 1, "an unknown form is accepted");
    let (code, again) = summary(post(GIVORS, form.clone(), "portal-secret").await.unwrap()).await;
    assert_eq!((code, again.accepted, again.duplicates), (200, 0, 1));

    let entries = timeline(&hub, GIVORS, by_email("marie.durand@example.fr")).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    let by_slug = |slug: &str| entries.iter().find(|e| e.summary.contains(slug)).unwrap();
    let birth = by_slug("acte-naissance");
    assert_eq!(birth.category, pb::Category::EtatCivil as i32);
    assert_eq!(
        by_slug("permis-de-vegetaliser").category,
        pb::Category::Other as i32
    );
    assert_eq!(birth.subject, "Demande d'acte de naissance");
    // Attachments by content hash, in the content store.
    let decoded = b"%PDF-1.4\n% pi\xc3\xa8ce d'identit\xc3\xa9\n%%EOF\n";
    let sha = |b: &[u8]| {
        use sha2::Digest;
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let got: Vec<_> = birth
        .attachments
        .iter()
        .map(|a| (a.sha256.clone(), a.media_type.clone(), a.size_bytes))
        .collect();
    assert_eq!(
        got,
        [
            (
                sha(decoded),
                "application/pdf".to_string(),
                decoded.len() as u64
            ),
            (
                sha(FETCHED),
                "application/pdf".to_string(),
                FETCHED.len() as u64
            ),
        ]
    );
    for a in &birth.attachments {
        let stored = hub
            .dir
            .path()
            .join("content/sha256")
            .join(&a.sha256[..2])
            .join(&a.sha256);
        assert_eq!(sha(&std::fs::read(stored).unwrap()), a.sha256);
    }
    let full = contact(&hub, GIVORS, &birth.event_id)
        .await
        .personal
        .unwrap();
    let fields: Vec<_> = full
        .fields
        .iter()
        .map(|f| format!("{}={}", f.name, f.value))
        .collect();
    assert_eq!(
        fields,
        [
            "Type d'acte=Copie intégrale",
            "Nom de naissance=Durand",
            "Prénoms=Marie Élise",
            "Date de naissance=1984-03-12",
            "Nombre d'exemplaires=2",
            "Motif=Renouvellement de passeport — urgent",
        ]
    );
    assert_eq!(
        full.attachment_names,
        ["piece-identite.pdf", "justificatif-domicile.pdf"]
    );

    // Bad input: clear 4xx, nothing recorded, the broken body kept.
    let broken = fixture("forms/broken.json");
    let r = post(GIVORS, broken.clone(), "portal-secret").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("not a form submission: EOF while parsing"),
        "{body}"
    );
    assert_eq!(
        status(post(GIVORS, form.clone(), "not-the-secret")).await,
        401
    );
    assert_eq!(
        status(post("12345", form.clone(), "portal-secret")).await,
        404
    );
    assert_eq!(
        status(post(
            GIVORS,
            vec![b' '; ADAPTER_MAX_BODY + 1],
            "portal-secret"
        ))
        .await,
        413
    );
    let missing = String::from_utf8(form.clone())
        .unwrap()
        .replace("GIV-AN-2026-000042", "GIV-AN-2026-000044")
        .replace("justificatif.pdf\"", "perdu.pdf\"")
        .into_bytes();
    let r = post(GIVORS, missing, "portal-secret").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        body["error"], "document 2 (\"justificatif-domicile.pdf\") could not be fetched",
        "the caller is not told why: that would map the hub's network"
    );
    let kept = quarantine(&hub, "web-form");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept.iter()
            .any(|e| e.reason.ends_with("(HTTP 404 Not Found)")),
        "the quarantine keeps the detail: {kept:?}"
    );
    let q = Quarantine::open(hub.dir.path().join("quarantine")).unwrap();
    assert!(kept
        .iter()
        .any(|e| q.raw(&e.id).unwrap().unwrap().1 == broken));
    assert_eq!(
        timeline(&hub, GIVORS, by_email("marie.durand@example.fr"))
            .await
            .len(),
        2
    );
    hub.stop().await;
}

/// Delivers a message the way an MTA does: written in tmp/, renamed into new/.
fn deliver(maildir: &Path, name: &str, bytes: &[u8]) {
    let tmp = maildir.join("tmp").join(name);
    std::fs::create_dir_all(maildir.join("tmp")).unwrap();
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
}

fn entries_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn maildir_messages_and_their_threads(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let maildir: PathBuf = hub.dir.path().join("Maildir-givors");
    for (i, name) in [
        "1-cantine.eml",
        "2-reponse.eml",
        "3-piece-jointe.eml",
        "4-broken.eml",
    ]
    .iter()
    .enumerate()
    {
        deliver(
            &maildir,
            &format!("17630000{i}.M1P1.mx1"),
            &fixture(&format!("maildir/{name}")),
        );
    }
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\", \"@givors.fr\"]\nmaildir = {:?}\n",
        maildir.display().to_string()
    ))
    .await;
    until("every message is read", || {
        entries_of(&maildir.join("new")).is_empty()
    })
    .await;
    // Read, on the log, then deleted (as a POP3 reader does): no copy outlives an erasure.
    assert!(entries_of(&maildir.join("cur")).is_empty());
    hub.settle().await;

    let entries = timeline(&hub, GIVORS, by_email("Marie.Durand@example.fr")).await;
    expect_test::expect![[r#"
        2026-11-09T11:00:00Z Courriel reçu (réponse dans un fil)
        2026-11-09T09:30:00Z Courriel envoyé (réponse dans un fil)
        2026-11-08T20:04:10Z Courriel reçu
    "#]]
    .assert_eq(&lines(&entries));
    let (reply, answer, first) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(first.subject, "Inscription à la cantine");
    assert_eq!(answer.subject, "RE: Inscription à la cantine");
    let thread = |e: &pb::TimelineEntry| {
        e.links
            .iter()
            .find(|l| l.rel == "thread")
            .map(|l| l.target.clone())
    };
    assert_eq!(thread(first), None, "the first message is its own thread");
    assert_eq!(thread(answer).as_deref(), Some("cantine-1@example.fr"));
    assert_eq!(thread(reply).as_deref(), Some("cantine-1@example.fr"));
    assert_eq!(
        reply
            .attachments
            .iter()
            .map(|a| a.media_type.as_str())
            .collect::<Vec<_>>(),
        ["message/rfc822", "application/pdf"]
    );

    let text = |e: &pb::TimelineEntry| {
        let e = e.clone();
        let hub = &hub;
        async move {
            contact(hub, GIVORS, &e.event_id)
                .await
                .personal
                .unwrap()
                .text
        }
    };
    let t = text(first).await;
    assert!(t.contains("Je souhaite inscrire mon fils Léo à la cantine de l'école Jules-Ferry à partir de décembre."), "{t:?}");
    let t = text(answer).await;
    assert!(t.contains("Léo est inscrit à la cantine dès le 1"), "{t:?}");
    assert!(t.contains("décembre – le dossier est complet"), "{t:?}");
    assert!(!t.contains("<p>"), "{t:?}");

    let kept = quarantine(&hub, "email");
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0].reason.as_str(), kept[0].tenant.as_deref()),
        ("no From address", Some(GIVORS))
    );

    // Delivered again under another name: read, moved, not doubled.
    deliver(
        &maildir,
        "1763000009.M2P1.mx1",
        &fixture("maildir/1-cantine.eml"),
    );
    until("the copy is read", || {
        entries_of(&maildir.join("new")).is_empty()
    })
    .await;
    hub.settle().await;
    assert_eq!(
        timeline(&hub, GIVORS, by_email("marie.durand@example.fr"))
            .await
            .len(),
        3
    );
    hub.stop().await;
}

/// The real binary: `serve` with its adapter port, `ingest`, `quarantine list`, `phone-report`.
#[test]
fn the_cli_sends_files_and_lists_the_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let bin = contacthub_bin!();
    let config = dir.path().join("adapters.toml");
    std::fs::write(
        &config,
        format!(
            "ops_token_sha256 = \"{}\"\n[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"9\"]\n",
            token_hash("ops-token")
        ),
    )
    .unwrap();
    let ServeChild {
        mut child,
        grpc,
        adapters,
        ..
    } = spawn_serve(
        &bin,
        dir.path(),
        &["--adapters".as_ref(), config.as_os_str()],
    );
    let run = |args: &[&str]| {
        let o = Command::new(&bin).args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/adapters");
    let csv = fixtures.join("Master.csv");
    let (ok, said) = run(&["ingest", "phone", csv.to_str().unwrap(), "--url", &adapters]);
    assert!(
        !ok && said.contains("refused (401 Unauthorized): missing or invalid credentials"),
        "{said}"
    );
    let ingest = |kind: &str, file: &Path, tenant: &[&str]| {
        let mut args = vec!["ingest", kind, file.to_str().unwrap(), "--url", &adapters];
        args.extend_from_slice(tenant);
        args.extend_from_slice(&["--token", "ops-token"]);
        run(&args)
    };
    let (ok, said) = ingest("phone", &csv, &[]);
    // Taken, but two lines went to the quarantine: the exit code says so (3).
    assert!(
        !ok && said.contains("2 item(s) went to the quarantine"),
        "{said}"
    );
    assert!(
        said.starts_with(&format!(
            "{}: 6 accepted, 0 already known, 1 ignored, 2 quarantined\n",
            csv.display()
        )),
        "{said}"
    );
    assert!(said.contains("  line 9: has 3 fields"), "{said}");
    let eml = fixtures.join("maildir/1-cantine.eml");
    let (ok, said) = ingest("email", &eml, &["--tenant", "69091"]);
    assert!(ok && said.contains(": 1 accepted"), "{said}");
    let broken = fixtures.join("maildir/4-broken.eml");
    let (ok, said) = ingest("email", &broken, &["--tenant", "69091"]);
    assert!(
        !ok && said.contains("no From address") && said.contains("1 of 1 files were refused"),
        "{said}"
    );

    let (ok, said) = run(&["quarantine", "list", "--data", dir.path().to_str().unwrap()]);
    assert!(ok, "{said}");
    let listed: Vec<_> = said.lines().collect();
    assert_eq!(listed.len(), 2, "{said}");
    assert!(
        listed.iter().any(|l| l.contains("asterisk-cdr")
            && l.contains("Master.csv line 8: 2 records refused; first: start")),
        "{said}"
    );
    assert!(
        listed.iter().any(|l| l.contains("email")
            && l.contains("69091")
            && l.contains("4-broken.eml: no From address")),
        "{said}"
    );
    let id = listed
        .iter()
        .find(|l| l.contains("email"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let o = Command::new(&bin)
        .args([
            "quarantine",
            "show",
            id,
            "--data",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.stdout, std::fs::read(&broken).unwrap());

    let (ok, said) = run(&["phone-report", "--tenant", "69091", "--server", &grpc]);
    assert!(ok, "{said}");
    assert!(
        said.contains("2026-10          1        1          0         0        0,0 %")
            && said.contains("total            3        2          1         1       33,3 %"),
        "{said}"
    );
    let (ok, said) = run(&[
        "timeline",
        "--tenant",
        "69091",
        "--email",
        "marie.durand@example.fr",
        "--server",
        &grpc,
    ]);
    assert!(ok && said.contains("Courriel reçu"), "{said}");

    let _ = child.kill();
    let _ = child.wait();
}

on_every_backend!(get_contact_reads_every_event_of_a_batch);

/// Events appended in one batch are each read back in full (offsets inside a batch).
async fn get_contact_reads_every_event_of_a_batch(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let events: Vec<_> = (0..5)
        .map(|i| {
            let mut e = call(
                GIVORS,
                &format!("batch-{i}"),
                "06 12 34 56 78",
                at(2026, 11, 2, 9, i),
            );
            e.personal.as_mut().unwrap().text = format!("note {i}");
            e
        })
        .collect();
    hub.publish(&events).await;
    hub.settle().await;
    for e in events.iter().rev() {
        let full = contact(&hub, GIVORS, &e.event_id).await;
        assert_eq!(
            full.personal.unwrap().text,
            e.personal.as_ref().unwrap().text
        );
        assert_eq!(full.entry.unwrap().event_id, e.event_id);
    }
    let missing = hub
        .desk()
        .get_contact(pb::GetContactRequest {
            tenant: GRIGNY.into(),
            event_id: events[0].event_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        tonic::Code::NotFound,
        "another commune's contact is not found"
    );
    hub.stop().await;
}

/// One source address flooding the endpoints is held back (429 with Retry-After, nothing
/// read) while another address still gets through; `/healthz` is never limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_is_held_back_and_others_are_not() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let url = hub
        .start_adapters(&format!(
            "requests_per_minute_per_source = 5\n[[commune]]\ncode = \"69091\"\ntoken_sha256 = \"{}\"\n",
            contacthub_app::auth::token_hash("portal")
        ))
        .await;
    let sms = |http: &reqwest::Client, i: usize| {
        http.post(format!("{url}/v1/69091/sms"))
            .bearer_auth("portal")
            .form(&[
                ("MessageSid", format!("SMflood{i}")),
                ("From", "+33612345678".to_string()),
                ("To", "+33472491818".to_string()),
                ("Body", format!("message {i}")),
            ])
            .send()
    };
    let http = reqwest::Client::new();
    for i in 0..5 {
        assert_eq!(sms(&http, i).await.unwrap().status(), 200);
    }
    let r = sms(&http, 5).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("more than 5 requests a minute"));
    let health = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Another address (127.0.0.2, loopback too) is not held back.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(sms(&other, 6).await.unwrap().status(), 200);
    // The held-back message was not recorded: six messages, not seven.
    hub.settle().await;
    let t = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_phone("06 12 34 56 78"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.entries.len(), 6);
    hub.stop().await;
}
