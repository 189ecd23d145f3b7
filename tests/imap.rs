//! A commune's mailboxes on a real IMAP server (Dovecot, started by the tests), on both log
//! backends, over STARTTLS and IMAPS: what is there at the first connection is read, new mail arrives while the hub
//! idles (IDLE, timed), a legacy charset is read right, a second mailbox is read too and its
//! messages moved to « Traité » once on the log, a delivery status notification is not a
//! contact; the server restarted, the hub comes back and goes on; its folder rebuilt (a new
//! UIDVALIDITY), nothing is written twice; a connection cut in the middle of a 30 MB message's
//! fetch is made again and the message taken once; a message over the mailbox's limit is left
//! unread with its headers in the quarantine; 5,000 messages at the first connection.

use contacthub_core::pb;
use contacthub_tests::dovecot::Dovecot;
use contacthub_tests::*;
use std::time::{Duration, Instant};

fn message(id: &str, from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: mairie@ville-givors.fr\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Thu, 03 Dec 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A message as an old mail program writes it: ISO-8859-1, quoted-printable.
fn latin1() -> Vec<u8> {
    let mut m = b"From: Jean Gonnet <jean.gonnet@example.org>\r\nTo: mairie@ville-givors.fr\r\n\
Subject: =?ISO-8859-1?Q?R=E9clamation_=E9clairage?=\r\nMessage-ID: <latin1-1@example.org>\r\n\
Date: Thu, 03 Dec 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        .to_vec();
    // « Le lampadaire de la rue Émile Zola est éteint. » in Latin-1 bytes.
    m.extend_from_slice(b"Le lampadaire de la rue \xc9mile Zola est \xe9teint.\r\n");
    m
}

/// The mairie's mailbox and the état civil's, both on `port` without TLS.
fn config(port: u16, extra: &str) -> String {
    format!(
        "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\", \"@givors.fr\"]\n\
         [[commune.imap]]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nuser = \"mairie\"\npassword = \"secret-mairie\"\n\
         [[commune.imap]]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nuser = \"etatcivil\"\npassword = \"secret-ec\"\nmove_to = \"Traité\"\n{extra}"
    )
}

/// The mairie's mailbox over STARTTLS, the état civil's over IMAPS, the server's certificate
/// trusted through `ca_file`.
fn tls_config(dc: &Dovecot) -> String {
    let ca = dc.certificate().display().to_string();
    format!(
        "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\", \"@givors.fr\"]\n\
         [[commune.imap]]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\nca_file = {ca:?}\nuser = \"mairie\"\npassword = \"secret-mairie\"\n\
         [[commune.imap]]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = {ca:?}\nuser = \"etatcivil\"\npassword = \"secret-ec\"\nmove_to = \"Traité\"\n",
        dc.port, dc.tls_port
    )
}

async fn entries(hub: &TestHub, email: &str) -> Vec<pb::TimelineEntry> {
    hub.desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_email(email),
            page_size: 500,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().entries)
        .unwrap_or_default()
}

/// Waits until `email`'s timeline holds `n` entries: how long it took.
async fn until_entries(hub: &TestHub, email: &str, n: usize, within: Duration) -> Duration {
    let t = Instant::now();
    while t.elapsed() < within {
        if entries(hub, email).await.len() >= n {
            return t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{email}: not {n} entries within {within:?}");
}

async fn imap_mailboxes(backend: Backend) {
    let Some(mut dc) = Dovecot::start(&[("mairie", "secret-mairie"), ("etatcivil", "secret-ec")])
    else {
        return;
    };
    dc.deliver(
        "mairie",
        &message(
            "m1@example.org",
            "Marie Durand <marie.durand@example.org>",
            "Cantine",
            "Bonjour, je souhaite inscrire Léo à la cantine.",
        ),
    );
    dc.deliver("mairie", &latin1());
    dc.deliver(
        "etatcivil",
        &message(
            "ec1@example.org",
            "Paul Morel <paul.morel@example.org>",
            "Acte de naissance",
            "Pouvez-vous m'envoyer une copie intégrale ?",
        ),
    );
    // A delivery status notification of a message the hub never sent: not a contact.
    dc.deliver(
        "mairie",
        b"From: MAILER-DAEMON@relay.ville-givors.fr\r\nTo: reponses@ville-givors.fr\r\nSubject: Undelivered\r\n\
Message-ID: <dsn-9@relay>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; relay\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <jamais-envoye@ville-givors.fr>\r\n\r\n--B--\r\n",
    );
    let mut hub = TestHub::start(&backend).await;
    hub.start_adapters(&tls_config(&dc)).await;
    until_entries(&hub, "marie.durand@example.org", 1, Duration::from_secs(20)).await;
    until_entries(&hub, "jean.gonnet@example.org", 1, Duration::from_secs(20)).await;
    until_entries(&hub, "paul.morel@example.org", 1, Duration::from_secs(20)).await;
    // The legacy charset, read right.
    let jean = entries(&hub, "jean.gonnet@example.org").await;
    assert_eq!(jean[0].subject, "Réclamation éclairage");
    let full = hub
        .desk()
        .get_contact(pb::GetContactRequest {
            tenant: GIVORS.into(),
            event_id: jean[0].event_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        full.personal
            .unwrap()
            .text
            .contains("Le lampadaire de la rue Émile Zola est éteint."),
        "Latin-1 decoded"
    );
    // Once on the log: the mairie's flagged read, the état civil's moved to « Traité ».
    let flagged = || {
        dc.messages("mairie", "")
            .iter()
            .filter(|(_, f)| f.contains('S'))
            .count()
    };
    for _ in 0..100 {
        if flagged() == 3 && dc.messages("etatcivil", "Trait&AOk-").len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(flagged(), 3, "{:?}", dc.messages("mairie", ""));
    assert!(dc.messages("etatcivil", "").is_empty(), "moved, not copied");
    assert_eq!(dc.messages("etatcivil", "Trait&AOk-").len(), 1);

    // New mail while the hub idles: on the timeline in well under 2 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    dc.deliver(
        "mairie",
        &message(
            "m2@example.org",
            "Marie Durand <marie.durand@example.org>",
            "Cantine (suite)",
            "Et pour sa sœur ?",
        ),
    );
    let took = until_entries(&hub, "marie.durand@example.org", 2, Duration::from_secs(10)).await;
    eprintln!("IMAP delivery → timeline with IDLE: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The server restarted: the hub connects again and goes on, nothing taken twice.
    dc.restart();
    dc.deliver(
        "mairie",
        &message(
            "m3@example.org",
            "Marie Durand <marie.durand@example.org>",
            "Cantine (fin)",
            "Merci.",
        ),
    );
    until_entries(&hub, "marie.durand@example.org", 3, Duration::from_secs(30)).await;

    // Its folder rebuilt (a new UIDVALIDITY): read again, written once.
    dc.stop();
    for f in std::fs::read_dir(dc.maildir("mairie")).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("dovecot") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    dc.restart();
    dc.deliver(
        "mairie",
        &message(
            "m4@example.org",
            "Marie Durand <marie.durand@example.org>",
            "Une dernière chose",
            "Bonne journée.",
        ),
    );
    until_entries(&hub, "marie.durand@example.org", 4, Duration::from_secs(30)).await;
    hub.settle().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(entries(&hub, "marie.durand@example.org").await.len(), 4);
    assert_eq!(entries(&hub, "jean.gonnet@example.org").await.len(), 1);
    // Its health, for ops.
    let read = hub.connector("email", GIVORS).await;
    // Five messages, then the rebuilt folder's five again: four already on the log, one new.
    assert_eq!(read.accepted, 10, "{read:?}");
    assert!(hub.connector("imap", GIVORS).await.last_success.is_some());
    hub.stop().await;
}

on_every_backend!(imap_mailboxes);

/// Forwards connections to the server; the first one through which `cut_after` bytes came
/// back from the server is cut there (in the middle of a fetch). Whether it was.
async fn cutting_proxy(
    target: u16,
    cut_after: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let cuts = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(("127.0.0.1", target))
                .await
                .unwrap();
            let cuts = cuts.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                let mut sent = 0;
                while let Ok(k) = sr.read(&mut buf).await {
                    if k == 0 || cw.write_all(&buf[..k]).await.is_err() {
                        break;
                    }
                    sent += k;
                    if sent >= cut_after && cuts.fetch_add(1, Ordering::SeqCst) == 0 {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    (port, count)
}

/// A 30 MB message whose fetch is cut in the middle: the hub connects again and takes it
/// once, its seven documents whole; a message over the mailbox's limit is left unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_fetch_of_a_large_message_is_taken_once() {
    use base64::Engine;
    let Some(dc) = Dovecot::start(&[("mairie", "secret-mairie"), ("etatcivil", "secret-ec")])
    else {
        return;
    };
    let mut big = String::from(
        "From: Claire Roux <claire.roux@example.org>\r\nTo: mairie@ville-givors.fr\r\nSubject: Dossier complet\r\n\
         Message-ID: <gros-1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"P\"\r\n\r\n\
         --P\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVoici les pièces.\r\n",
    );
    for i in 0..7u8 {
        let scan: Vec<u8> = (0..3_000_000u32).map(|k| (k as u8) ^ i).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&scan);
        big.push_str(&format!(
            "--P\r\nContent-Type: application/pdf; name=\"scan-{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"scan-{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        for line in b64.as_bytes().chunks(76) {
            big.push_str(std::str::from_utf8(line).unwrap());
            big.push_str("\r\n");
        }
    }
    big.push_str("--P--\r\n");
    assert!(big.len() > 28_000_000, "{}", big.len());
    dc.deliver("mairie", big.as_bytes());
    // Over the second mailbox's limit of 1 MB.
    let mut heavy = message(
        "lourd-1@example.org",
        "Luc Petit <luc.petit@example.org>",
        "Photos",
        "",
    );
    heavy.extend(std::iter::repeat_n(b'x', 1_500_000));
    dc.deliver("etatcivil", &heavy);
    let (port, cut) = cutting_proxy(dc.port, 5_000_000).await;
    let mut hub = TestHub::start(&Backend::Embedded).await;
    hub.start_adapters(&config(port, "max_message_mb = 1\n"))
        .await;
    until_entries(&hub, "claire.roux@example.org", 1, Duration::from_secs(60)).await;
    hub.settle().await;
    let e = entries(&hub, "claire.roux@example.org").await;
    assert_eq!(e.len(), 1);
    // The message as received, then its seven scans.
    let docs = &e[0].attachments;
    assert_eq!(docs.len(), 8, "{docs:?}");
    assert_eq!(docs[0].media_type, "message/rfc822");
    assert_eq!(docs[0].size_bytes, big.len() as u64);
    assert!(
        docs[1..].iter().all(|a| a.size_bytes == 3_000_000),
        "{docs:?}"
    );
    assert!(
        cut.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "a connection was cut in the middle of the fetch"
    );
    // The heavy one: its headers quarantined, the message left unread in its mailbox.
    let q = contacthub_adapters::quarantine::Quarantine::open(hub.dir.path().join("quarantine"))
        .unwrap();
    let mut kept = Vec::new();
    for _ in 0..100 {
        kept = q.list(Some("email"), Some(GIVORS)).unwrap();
        if !kept.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0]
            .reason
            .contains("over the mailbox's max_message_mb (1 MB)"),
        "{kept:?}"
    );
    let left = dc.messages("etatcivil", "");
    assert_eq!(left.len(), 1);
    assert!(!left[0].1.contains('S'), "left unread: {left:?}");
    assert!(entries(&hub, "luc.petit@example.org").await.is_empty());
    hub.stop().await;
}

/// 5,000 messages waiting at the first connection: all taken (the time is printed; the
/// connectors bench reports it in release).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_messages_at_the_first_connection() {
    let Some(dc) = Dovecot::start(&[("mairie", "secret-mairie"), ("etatcivil", "secret-ec")])
    else {
        return;
    };
    const N: usize = 5_000;
    for i in 0..N {
        dc.deliver(
            "mairie",
            &message(
                &format!("lot-{i}@example.org"),
                &format!("Personne {i} <p{}@example.org>", i % 500),
                "Demande",
                "Bonjour, une question sur la collecte des encombrants.",
            ),
        );
    }
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let t = Instant::now();
    hub.start_adapters(&config(dc.port, "")).await;
    let mark = hub.dir.path().join("connectors");
    loop {
        let taken = std::fs::read_dir(&mark)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .any(|t| t.split_whitespace().nth(1) == Some(&N.to_string()));
        if taken {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "not taken in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{N} messages at the first connection: {:?}", t.elapsed());
    hub.settle().await;
    assert_eq!(entries(&hub, "p7@example.org").await.len(), N / 500);
    hub.stop().await;
}

/// A local identity provider: tokens for the client credentials grant of one application,
/// and the introspection Dovecot asks (RFC 7662): active for the mailbox's user.
async fn identity_provider() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let issued = std::sync::Arc::new(AtomicUsize::new(0));
    let count = issued.clone();
    let app = axum::Router::new()
        .route(
            "/token",
            post(move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                let count = count.clone();
                async move {
                    let ok = f.get("grant_type").map(String::as_str) == Some("client_credentials")
                        && f.get("client_id").map(String::as_str) == Some("app-grc")
                        && f.get("client_secret").map(String::as_str) == Some("secret-app")
                        && f.get("scope").map(String::as_str)
                            == Some("https://outlook.office365.com/.default");
                    if !ok {
                        return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "invalid_client"})));
                    }
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    (axum::http::StatusCode::OK, axum::Json(serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("jeton-{n}")})))
                }
            }),
        )
        .route(
            "/introspect",
            post(|axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| async move {
                let active = f.get("token").is_some_and(|t| t.starts_with("jeton-"));
                axum::Json(serde_json::json!({"active": active, "username": "mairie"}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, issued)
}

/// Exchange Online's way: no password, a token from the identity provider given with
/// `AUTHENTICATE XOAUTH2`; a wrong client secret gets no mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_read_with_an_oauth2_token() {
    let (idp, issued) = identity_provider().await;
    let Some(dc) = Dovecot::start_with(&[], Some(&format!("{idp}/introspect"))) else {
        return;
    };
    dc.deliver(
        "mairie",
        &message(
            "oauth-1@example.org",
            "Nadia Benali <nadia.benali@example.org>",
            "Piscine",
            "Quels horaires ?",
        ),
    );
    let mailbox = |secret: &str| {
        format!(
            "[[commune]]\ncode = \"69091\"\n[[commune.imap]]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"mairie\"\n\
             [commune.imap.oauth2]\ntoken_url = \"{idp}/token\"\nclient_id = \"app-grc\"\nclient_secret = \"{secret}\"\n",
            dc.port
        )
    };
    // The wrong secret: no token, no mail, the health says so.
    let mut refused = TestHub::start(&Backend::Embedded).await;
    refused.start_adapters(&mailbox("wrong")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(entries(&refused, "nadia.benali@example.org")
        .await
        .is_empty());
    assert!(refused.connector("imap", GIVORS).await.last_error.is_some());
    refused.stop().await;
    let mut hub = TestHub::start(&Backend::Embedded).await;
    hub.start_adapters(&mailbox("secret-app")).await;
    until_entries(&hub, "nadia.benali@example.org", 1, Duration::from_secs(20)).await;
    assert!(issued.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    hub.stop().await;
}

/// A written answer sent by e-mail bounces: the relay's delivery status notification lands
/// in the mailbox the hub reads over IMAP, and the answer is marked bounced, its request back
/// in the worklist — the same bounce handling as for a Maildir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_in_the_mailbox_puts_the_answer_back() {
    use contacthub_app::commands;
    let Some(dc) = Dovecot::start(&[("mairie", "secret-mairie")]) else {
        return;
    };
    let smtp = contacthub_tests::smtp::SmtpServer::start().await;
    let mut hub = TestHub::start(&Backend::Embedded).await;
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\naddresses = [\"@ville-givors.fr\"]\n\
         [commune.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Mairie de Givors <reponses@ville-givors.fr>\"\n\
         [[commune.imap]]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"mairie\"\npassword = \"secret-mairie\"\n",
        smtp.port, dc.port
    ))
    .await;
    // Claire, whose record has her address.
    let scope = hub.scope(GIVORS);
    let citizen = hub
        .hub
        .create_citizen(
            &scope,
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: "Roux".into(),
                    first_names: "Claire".into(),
                    emails: vec!["claire.roux@example.org".into()],
                    preferred_channel: pb::ContactChannel::Email as i32,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .citizen_id;
    let reference = hub
        .hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: "Carte de stationnement".into(),
                category: pb::Category::Other,
                citizen_id: citizen,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .reference;
    let id = hub
        .hub
        .send_answer(
            &scope,
            &commands::ComposeAnswer {
                reference: reference.clone(),
                channel: pb::Channel::Email,
                text: "Votre demande de carte de résidente est acceptée.".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .answer_event_id;
    until("the answer leaves", || {
        hub.hub
            .get_answer(&scope, &id)
            .is_ok_and(|a| a.status == pb::AnswerStatus::Delivered as i32)
    })
    .await;
    let message_id = hub.hub.get_answer(&scope, &id).unwrap().provider_message_id;
    dc.deliver(
        "mairie",
        format!(
            "From: Mail Delivery System <MAILER-DAEMON@relay.ville-givors.fr>\r\nTo: reponses@ville-givors.fr\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-2@relay.ville-givors.fr>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.ville-givors.fr\r\n\r\n\
             Final-Recipient: rfc822; claire.roux@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
             --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Mairie de Givors <reponses@ville-givors.fr>\r\nMessage-ID: <{message_id}>\r\n\r\n--B--\r\n"
        )
        .as_bytes(),
    );
    until("the answer bounces", || {
        hub.hub
            .get_answer(&scope, &id)
            .is_ok_and(|a| a.status == pb::AnswerStatus::Bounced as i32)
    })
    .await;
    let request = hub.store.request(GIVORS, &reference).unwrap().unwrap();
    assert_eq!(
        request.status,
        pb::RequestStatus::Reopened as i32,
        "back in the worklist"
    );
    // The report is not a contact: no e-mail on Claire's timeline but the answer, marked.
    let e = entries(&hub, "claire.roux@example.org").await;
    let mails: Vec<_> = e
        .iter()
        .filter(|x| x.channel == pb::Channel::Email as i32)
        .collect();
    assert_eq!(mails.len(), 1, "{e:?}");
    assert!(mails[0].summary.contains("revenue en erreur"), "{e:?}");
    hub.stop().await;
}
