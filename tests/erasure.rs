//! Erasure: the data protection officer erases a citizen; the keys that sealed their events
//! are destroyed, the read model is made again from the log, and nothing of them is left to
//! read — in the log (or its Kafka topic), the keyring, the read model's files — while a
//! bystander's data, the counters and a replay's digest are as they should be.

use contacthub_app::auth::{token_hash, Access, System};
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::canary::{self, *};
use contacthub_tests::*;

const SCAN: &str = "Canarixa-numerisation-77d0";
const ANSWER: &str = "Canarixa-reponse-2f5e";
const ATTACHMENT: &str = "Canarixa-piece-jointe-41c2";
const BYSTANDER_DOCUMENT: &str = "Témoin-document-9e11";
const BYSTANDER_VISIT: &str = "Témoin-visite-pour-8d21";
const JOINT: &str = "Témoin-demande-commune-5a90";
const BYSTANDER: &str = "Témoin-visite-3b8c";

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid = 'accueil-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\
         [[agent]]\nid = 'dpo-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nrole = 'dpo'\n\
         [[agent]]\nid = 'dpo-grigny'\ntoken_sha256 = '{}'\ntenants = ['69096']\nrole = 'dpo'\n",
        token_hash("accueil"),
        token_hash("dpo"),
        token_hash("dpo-grigny"),
    ))
    .unwrap()
}

fn visit(citizen: &str, text: &str, key: &str) -> commands::RecordVisit {
    commands::RecordVisit {
        party: Some(pb::Party {
            citizen_id: citizen.into(),
            ..Default::default()
        }),
        desk: "accueil-hdv".into(),
        category: pb::Category::Ccas,
        subject: format!("{text}-objet"),
        notes: text.into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

async fn an_erased_citizen_leaves_nothing_readable(backend: Backend) {
    let hub = TestHub::start_with_access(&backend, agents()).await;
    let scope = hub.scope(GIVORS);
    let person = hub
        .hub
        .create_citizen(
            &scope,
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: SURNAME.into(),
                    first_names: FIRST.into(),
                    phones: vec![PHONE.into()],
                    emails: vec![EMAIL.into()],
                    addresses: vec![pb::Address {
                        number: "7".into(),
                        street: "impasse Canarixa".into(),
                        postcode: "69700".into(),
                        city: "Givors".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                idempotency_key: "erasure-person".into(),
            },
        )
        .await
        .unwrap();
    let id = person.citizen_id.clone();
    let seen = hub
        .hub
        .record_visit(&scope, &visit(&id, NOTES, "erasure-visit"))
        .await
        .unwrap();
    // A letter with its scan and a form with a document, from the person's number, through
    // an adapter's write path.
    let app = hub.hub.clone();
    let document = |bytes: &[u8]| {
        let (app, bytes) = (app.clone(), bytes.to_vec());
        async move {
            app.store_document(System::Adapters, &bytes, "application/pdf", 1 << 20)
                .await
                .unwrap()
        }
    };
    let mut mail = letter(GIVORS, "000888", PHONE, at(2026, 12, 2, 9, 0));
    mail.personal.as_mut().unwrap().text = LETTER.into();
    mail.personal.as_mut().unwrap().party.as_mut().unwrap().name = format!("{FIRST} {SURNAME}");
    mail.attachments = vec![document(format!("%PDF {SCAN}").as_bytes()).await];
    let mut form = web_form(GIVORS, "erasure-form", PHONE, EMAIL, at(2026, 12, 2, 10, 0));
    form.attachments = vec![document(format!("%PDF {ATTACHMENT}").as_bytes()).await];
    form.personal.as_mut().unwrap().attachment_names = vec!["justificatif.pdf".into()];
    hub.hub
        .append_contacts(System::Adapters, &[mail, form])
        .await
        .unwrap();
    canary::request_opened_and_closed(&hub, &id, "erasure-request").await;
    // Written answers to another request: one by e-mail (in the outbox), one by letter (in
    // the print queue).
    let pending = hub
        .hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: "Demande en cours".into(),
                category: pb::Category::EtatCivil,
                service: "etat-civil".into(),
                citizen_id: id.clone(),
                idempotency_key: "erasure-pending".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .reference;
    for (channel, key) in [
        (pb::Channel::Email, "erasure-answer-mail"),
        (pb::Channel::Courrier, "erasure-answer-letter"),
    ] {
        hub.hub
            .send_answer(
                &scope,
                &commands::ComposeAnswer {
                    reference: pending.clone(),
                    channel,
                    text: ANSWER.into(),
                    idempotency_key: key.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(hub.store.print_queue(GIVORS).unwrap().len(), 1);
    // Someone else, who must lose nothing.
    let other = hub
        .hub
        .create_citizen(
            &scope,
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: "Témoin".into(),
                    phones: vec!["07 11 22 33 44".into()],
                    ..Default::default()
                }),
                idempotency_key: "erasure-bystander".into(),
            },
        )
        .await
        .unwrap();
    hub.hub
        .record_visit(
            &scope,
            &visit(&other.citizen_id, BYSTANDER, "bystander-visit"),
        )
        .await
        .unwrap();
    // The bystander's visit about the person, and a request they made together: theirs too,
    // so they stay readable.
    let mut about = visit(&other.citizen_id, BYSTANDER_VISIT, "bystander-about");
    about.for_citizen_ids = vec![id.clone()];
    hub.hub.record_visit(&scope, &about).await.unwrap();
    hub.hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: JOINT.into(),
                category: pb::Category::ServicesTechniques,
                service: "voirie".into(),
                citizen_id: id.clone(),
                other_requester_citizen_ids: vec![other.citizen_id.clone()],
                idempotency_key: "erasure-joint".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut theirs = web_form(
        GIVORS,
        "bystander-form",
        "07 11 22 33 44",
        "",
        at(2026, 12, 2, 11, 0),
    );
    theirs.attachments = vec![document(format!("%PDF {BYSTANDER_DOCUMENT}").as_bytes()).await];
    hub.hub
        .append_contacts(System::Adapters, &[theirs])
        .await
        .unwrap();
    hub.settle().await;
    let timeline = |who: &str| {
        hub.hub
            .timeline(
                &scope,
                &commands::TimelinePage {
                    citizen: commands::Who::Record(who.to_string()),
                    page_size: 100,
                    page_token: String::new(),
                    channels: Vec::new(),
                    since: None,
                    until: None,
                },
            )
            .unwrap()
            .entries
    };
    assert!(timeline(&id).len() >= 4, "{:?}", timeline(&id));
    // Every figure but the count of events applied (the erasure is one more).
    let figures = || {
        let mut all = hub
            .store
            .counters(contacthub_core::keys::Counters::All)
            .unwrap();
        all.remove(&contacthub_core::keys::Counter::Applied);
        all
    };
    let before = figures();

    // Only the commune's data protection officer erases.
    let mut dpo = pb::audit_service_client::AuditServiceClient::new(hub.channel.clone());
    let erase = |token: &str, tenant: &str| {
        as_agent(
            token,
            pb::EraseCitizenRequest {
                tenant: tenant.into(),
                citizen_id: id.clone(),
                reason: "demande de l'intéressée du 02/12/2026".into(),
            },
        )
    };
    let refused = dpo
        .erase_citizen(erase("accueil", GIVORS))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let refused = dpo
        .erase_citizen(erase("dpo-grigny", GIVORS))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    let done = dpo
        .erase_citizen(erase("dpo", GIVORS))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.citizen_id, id);
    assert!(done.keys_destroyed >= 2, "{done:?}");
    let again = dpo.erase_citizen(erase("dpo", GIVORS)).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::AlreadyExists, "{again:?}");

    // What agents see: one line, the record empty, the contact gone.
    let lines = timeline(&id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].summary.starts_with("Données effacées le ")
            && lines[0].summary.ends_with(
                ", à la demande de dpo-givors, motif : demande de l'intéressée du 02/12/2026"
            ),
        "{}",
        lines[0].summary
    );
    let record = hub.store.citizen(GIVORS, &id).unwrap().unwrap();
    assert!(
        record.erased.is_some() && record.identity.is_none(),
        "{record:?}"
    );
    let contact = hub.hub.contact(&scope, &seen.event_id);
    assert!(
        !format!("{contact:?}").contains(NOTES),
        "the visit still reads: {contact:?}"
    );
    // Nothing is written to the shell any more.
    let refused = hub
        .hub
        .record_visit(&scope, &visit(&id, "Canarixa-apres", "after-erasure"))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("ont été effacées"),
        "{refused}"
    );
    // The bystander keeps everything; the figures are as they were.
    let theirs = format!("{:?}", timeline(&other.citizen_id));
    assert!(theirs.contains(BYSTANDER), "{theirs}");
    assert_eq!(figures(), before);

    // Nothing of the person left to read anywhere in the data folder (log, keyring, read
    // model, read trail), nor on the Kafka topic.
    let mut everything = canary::bytes_under(hub.dir.path());
    if hub.kafka.is_some() {
        everything.extend(canary::log_bytes(hub.log.as_ref()).await.0);
    }
    let canaries = [canary::ALL.as_slice(), &[SCAN, ATTACHMENT, ANSWER]].concat();
    // Nothing left to send or print to them.
    assert_eq!(hub.store.print_queue(GIVORS).unwrap(), vec![]);
    assert_eq!(hub.store.outbox_due(i64::MAX, 100).unwrap(), vec![]);
    assert_eq!(canary::hits(&everything, &canaries), Vec::<String>::new());
    let theirs = [BYSTANDER, BYSTANDER_DOCUMENT, BYSTANDER_VISIT, JOINT];
    assert_eq!(
        canary::hits(&everything, &theirs),
        theirs.map(|t| format!("{t} (utf-8)")).to_vec(),
        "the scan reads the read model and the documents, where the bystander's are"
    );

    // A replay of the log comes to the same read model.
    let (live, replayed, _) = hub.stop_and_replay(2000).await;
    assert_eq!(replayed.digest().unwrap(), live);
}

on_every_backend!(an_erased_citizen_leaves_nothing_readable);

const SMS: &str = "Canarixa-texto-61b7";
const MAIL: &str = "Canarixa-courriel-ça-8e02";
const MAIL_ATTACHMENT: &str = "Canarixa-piece-courriel-3c44";
const FORM: &str = "Canarixa-formulaire-d7a5";
const FORM_ATTACHMENT: &str = "Canarixa-piece-formulaire-12ef";

/// The canary through the channels' own wire formats — an SMS gateway's webhook, a PBX's
/// CDR file in the drop folder, an e-mail with an attachment delivered to the commune's
/// Maildir (its sender's name in RFC 2047, its text in quoted-printable, the attachment in
/// base64), an online form with a document — then erased: none of it is left anywhere, in
/// any of the usual encodings, and the drop folders keep no copy.
async fn what_the_adapters_took_is_erased_too(backend: Backend) {
    use base64::Engine;
    let mut hub = TestHub::start_with_access(&backend, agents()).await;
    let maildir = hub.dir.path().join("maildir-givors");
    let url = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\"]\nmaildir = {:?}\n",
            maildir.display().to_string()
        ))
        .await;
    let scope = hub.scope(GIVORS);
    let id = canary::person(&hub, "adapters-person").await;
    let http = reqwest::Client::new();
    let phone = format!("+33{PHONE_DIGITS}");
    let r = http
        .post(format!("{url}/v1/{GIVORS}/sms"))
        .form(&[
            ("MessageSid", "SM5f0c1e77a2"),
            ("From", phone.as_str()),
            ("To", "+33472491818"),
            ("Body", SMS),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let form = serde_json::json!({
        "form": "acte-naissance",
        "submission_id": "GIV-AN-2026-000777",
        "submitted_at": "2026-12-02T10:15:00+01:00",
        "user": {"first_name": FIRST, "last_name": SURNAME, "email": EMAIL, "phone": PHONE},
        "fields": {"Motif": FORM},
        "attachments": [{
            "filename": "piece-identite.pdf",
            "content_type": "application/pdf",
            "base64": b64(format!("%PDF-1.4 {FORM_ATTACHMENT}").as_bytes()),
        }],
    });
    let r = http
        .post(format!("{url}/v1/{GIVORS}/forms"))
        .body(form.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let inbox = hub.dir.path().join("cdr-inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("Master-2026-12-02.csv"),
        format!(
            "\"\",\"0{PHONE_DIGITS}\",\"0472491818\",\"from-trunk\",\"\"\"{FIRST} {SURNAME}\"\" <0{PHONE_DIGITS}>\",\"SIP/trunk-1\",\"SIP/201-2\",\"Dial\",\"SIP/201,30\",\"2026-12-02 09:14:03\",\"2026-12-02 09:14:09\",\"2026-12-02 09:17:12\",189,183,\"ANSWERED\",\"DOCUMENTATION\",\"1764663243.18\",\"\"\n"
        ),
    )
    .unwrap();
    let qp: String = MAIL
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            }
        })
        .collect();
    let message = format!(
        "From: =?utf-8?q?Z=C3=A9phirine_{SURNAME}?= <{EMAIL}>\r\nTo: mairie@ville-givors.fr\r\n\
         Subject: =?utf-8?b?{}?=\r\nDate: Wed, 02 Dec 2026 11:00:00 +0100\r\nMessage-ID: <5f0c1e77a2@example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n\
         --sep\r\nContent-Type: application/pdf; name=\"justificatif.pdf\"\r\nContent-Disposition: attachment; filename=\"justificatif.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--sep--\r\n",
        b64(format!("Demande {SURNAME}").as_bytes()),
        b64(format!("%PDF-1.4 {MAIL_ATTACHMENT}").as_bytes()),
    );
    for d in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(d)).unwrap();
    }
    std::fs::write(maildir.join("tmp").join("1764669600.M1P1.mx1"), message).unwrap();
    std::fs::rename(
        maildir.join("tmp").join("1764669600.M1P1.mx1"),
        maildir.join("new").join("1764669600.M1P1.mx1"),
    )
    .unwrap();
    until("the drop folders are read", || {
        !inbox.join("Master-2026-12-02.csv").exists()
            && std::fs::read_dir(maildir.join("new"))
                .unwrap()
                .next()
                .is_none()
    })
    .await;
    hub.settle().await;
    let channels: Vec<i32> = hub
        .hub
        .timeline(
            &scope,
            &commands::TimelinePage {
                citizen: commands::Who::Record(id.clone()),
                page_size: 100,
                page_token: String::new(),
                channels: Vec::new(),
                since: None,
                until: None,
            },
        )
        .unwrap()
        .entries
        .iter()
        .map(|e| e.channel)
        .collect();
    for c in [
        pb::Channel::Sms,
        pb::Channel::Phone,
        pb::Channel::Email,
        pb::Channel::WebForm,
    ] {
        assert!(
            channels.contains(&(c as i32)),
            "{c:?} missing: {channels:?}"
        );
    }
    let canaries = [
        canary::ALL.as_slice(),
        &[SMS, MAIL, MAIL_ATTACHMENT, FORM, FORM_ATTACHMENT],
    ]
    .concat();
    assert!(
        !canary::hits(&canary::bytes_under(hub.dir.path()), &canaries).is_empty(),
        "the scan finds them before the erasure"
    );

    let mut dpo = pb::audit_service_client::AuditServiceClient::new(hub.channel.clone());
    dpo.erase_citizen(as_agent(
        "dpo",
        pb::EraseCitizenRequest {
            tenant: GIVORS.into(),
            citizen_id: id.clone(),
            reason: "demande de l'intéressée".into(),
        },
    ))
    .await
    .unwrap();
    let mut everything = canary::bytes_under(hub.dir.path());
    if hub.kafka.is_some() {
        everything.extend(canary::log_bytes(hub.log.as_ref()).await.0);
    }
    assert_eq!(canary::hits(&everything, &canaries), Vec::<String>::new());
    let (live, replayed, _) = hub.stop_and_replay(2000).await;
    assert_eq!(replayed.digest().unwrap(), live);
}

on_every_backend!(what_the_adapters_took_is_erased_too);

/// The command docs/operations.md shows, run as written against a hub with agents: the
/// accueil is refused, the DPO erases, and the line it prints is the one the doc quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dpo_erases_from_the_command_line_as_the_doc_shows() {
    let dir = tempfile::tempdir().unwrap();
    let agents_file = dir.path().join("agents.toml");
    std::fs::write(
        &agents_file,
        format!(
            "[[agent]]\nid = 'accueil-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\n\
             [[agent]]\nid = 'dpo-givors'\ntoken_sha256 = '{}'\ntenants = ['69091']\nrole = 'dpo'\n",
            token_hash("accueil"),
            token_hash("dpo"),
        ),
    )
    .unwrap();
    let mut serve = spawn_serve(
        &contacthub_bin!(),
        &dir.path().join("data"),
        &["--agents".as_ref(), agents_file.as_os_str()],
    );
    let run = |token: &str, args: &[&str]| {
        cli_as(&contacthub_bin!(), &serve.grpc, token, dir.path(), args)
    };
    let (ok, id) = run(
        "accueil",
        &[
            "citizen",
            "create",
            "--tenant",
            GIVORS,
            "--usage-name",
            SURNAME,
            "--first-names",
            FIRST,
        ],
    );
    assert!(ok, "{id}");
    let id = id.trim().to_string();
    // The command as docs/operations.md shows it, for this record.
    let doc = doc("operations.md");
    let shown = doc_line(&doc, "contacthub citizen erase ", &id);
    let words: Vec<String> = shell_words(&shown);
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let (ok, said) = run("accueil", &args);
    assert!(!ok, "{said}");
    assert!(
        said.contains("réservé au délégué à la protection des données")
            || said.contains("n'est pas délégué à la protection des données"),
        "{said}"
    );
    let (ok, said) = run("dpo", &args);
    assert!(ok, "{said}");
    let quoted = doc_line(&doc, "données de GIV-000001 effacées", &id);
    assert_eq!(said.trim(), quoted);
    let (ok, shown) = run("accueil", &["citizen", "show", "--tenant", GIVORS, &id]);
    assert!(!shown.contains(SURNAME), "{ok} {shown}");
    let _ = serve.child.kill();
    let _ = serve.child.wait();
}

/// Splits a documented command line as a shell would (double quotes only).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// On the desk: the DPO's page has the erasure form; the accueil is refused; the DPO erases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dpo_erases_on_the_desk_and_no_one_else_does() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    let person = hub
        .hub
        .create_citizen(
            &hub.scope(GIVORS),
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: SURNAME.into(),
                    ..Default::default()
                }),
                idempotency_key: "desk-erasure".into(),
            },
        )
        .await
        .unwrap();
    let post = |agent: &WebAgent, csrf: String| {
        let http = agent.http.clone();
        let cookie = agent.cookie.clone();
        let url = format!("{}/journal/{GIVORS}/effacer", agent.base);
        let id = person.citizen_id.clone();
        async move {
            http.post(url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("usager", id.as_str()),
                    ("motif", "demande écrite du 01/12/2026"),
                    ("confirme", "on"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let accueil = WebAgent::sign_in(&hub.web, "accueil").await;
    let (_, home) = accueil.get("/a-rattacher?commune=69091").await;
    let refused = post(&accueil, csrf_of(&home)).await;
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    let dpo = WebAgent::sign_in(&hub.web, "dpo").await;
    let (status, page) = dpo.get("/journal?commune=69091").await;
    assert!(status.is_success(), "{status}");
    assert!(
        page.contains("Effacer les données d'une personne"),
        "{page}"
    );
    // The export, for the person, before: a zip to download, for the DPO only.
    let export = format!("/journal/{GIVORS}/export?usager={}", person.citizen_id);
    let (status, _) = accueil.get(&export).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let zip = dpo
        .http
        .get(format!("{}{export}", dpo.base))
        .header("cookie", &dpo.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.headers()["content-type"], "application/zip");
    assert!(zip.bytes().await.unwrap().starts_with(b"PK"));
    let forged = post(&dpo, "forged".into()).await;
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(hub
        .store
        .citizen(GIVORS, &person.citizen_id)
        .unwrap()
        .unwrap()
        .erased
        .is_none());
    let done = post(&dpo, csrf_of(&page)).await;
    assert_eq!(done.status(), reqwest::StatusCode::SEE_OTHER);
    let to = done.headers()["location"].to_str().unwrap().to_string();
    let (_, after) = dpo.get(&to).await;
    assert!(
        after.contains(&format!(
            "Les données de {} sont effacées.",
            person.citizen_id
        )),
        "{after}"
    );
    let record = hub
        .store
        .citizen(GIVORS, &person.citizen_id)
        .unwrap()
        .unwrap();
    assert_eq!(record.erased.unwrap().by, "dpo-givors");
    hub.stop().await;
}

/// The record of Givors holding `phone`, if any.
fn holder(hub: &TestHub, phone: &str) -> Option<String> {
    hub.store
        .by_identifier(
            GIVORS,
            "phone",
            &contacthub_core::identity::normalize_phone(phone).unwrap(),
        )
        .unwrap()
}

/// Retention: a record with no contact for longer than the commune keeps them is listed by a
/// dry run (as docs/operations.md shows it), then erased with its rule as the reason; a
/// recent one is kept; only the DPO applies the rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_erases_what_the_rules_say_and_nothing_else() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    let scope = hub.scope(GIVORS);
    let create = |name: &'static str, key: &'static str| {
        let (hub, scope) = (&hub, scope.clone());
        async move {
            hub.hub
                .create_citizen(
                    &scope,
                    &commands::CreateCitizen {
                        identity: Some(pb::Identity {
                            usage_name: name.into(),
                            ..Default::default()
                        }),
                        idempotency_key: key.into(),
                    },
                )
                .await
                .unwrap()
                .citizen_id
        }
    };
    hub.set_clock(at(2020, 1, 6, 10, 0));
    let old = create(SURNAME, "retention-old").await;
    let recent = create("Récent", "retention-recent").await;
    hub.set_clock(at(2025, 6, 2, 10, 0));
    hub.hub
        .record_visit(&scope, &visit(&recent, "Visite-récente", "retention-visit"))
        .await
        .unwrap();
    // Calls from numbers nobody knows: provisional records, one silent for 18 months (due
    // under the unknown senders' rule), one called again two months ago (kept).
    hub.hub
        .append_contacts(
            System::Adapters,
            &[
                call(GIVORS, "ret-call-1", "06 99 88 77 66", at(2025, 6, 1, 9, 0)),
                call(GIVORS, "ret-call-2", "06 55 44 33 22", at(2025, 6, 2, 9, 0)),
                call(
                    GIVORS,
                    "ret-call-3",
                    "06 55 44 33 22",
                    at(2026, 10, 2, 9, 0),
                ),
            ],
        )
        .await
        .unwrap();
    hub.set_clock(at(2026, 12, 4, 10, 0));
    hub.settle().await;
    let silent = holder(&hub, "06 99 88 77 66").unwrap();
    let calling = holder(&hub, "06 55 44 33 22").unwrap();
    // Raw input held outside the log: an SMS quarantined in August (due), another last week
    // (kept); a scan no letter matched since July (due), another of today (kept).
    let quarantine =
        contacthub_adapters::quarantine::Quarantine::open(hub.dir.path().join("quarantine"))
            .unwrap();
    let quarantined = |raw: &[u8], when: i64| {
        let refused = contacthub_adapters::Rejected {
            locator: String::new(),
            reason: "no sender".into(),
            detail: None,
            tenant: Some(GIVORS.into()),
            raw: raw.to_vec(),
        };
        quarantine
            .put("sms", "webhook", raw, &[refused], when)
            .unwrap()
            .0
            .id
    };
    let old_sms = quarantined(b"Body=Canarixa-sms-ancien", at(2026, 8, 1, 9, 0));
    let recent_sms = quarantined(b"Body=sms-recent", at(2026, 11, 30, 9, 0));
    let unmatched = hub.dir.path().join("scan-inbox").join("unmatched");
    std::fs::create_dir_all(&unmatched).unwrap();
    for (name, when) in [
        ("GIV-2026-000999.pdf", at(2026, 7, 2, 9, 0)),
        ("GIV-2026-001000.pdf", at(2026, 12, 4, 9, 0)),
    ] {
        std::fs::write(unmatched.join(name), b"%PDF scan").unwrap();
        std::fs::write(unmatched.join(format!("{name}.reason")), b"no letter").unwrap();
        std::fs::File::options()
            .write(true)
            .open(unmatched.join(name))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_micros(when as u64))
            .unwrap();
    }

    let cli = |token: &str, args: &[&str]| hub.cli_as(&contacthub_bin!(), token, args);
    let doc = doc("operations.md");
    let shown = doc_line(&doc, "contacthub retention ", "");
    let args: Vec<&str> = shown.split_whitespace().skip(1).collect();
    let (ok, said) = cli("accueil", &args);
    assert!(!ok, "{said}");
    let (ok, said) = cli("dpo", &args);
    assert!(ok, "{said}");
    // What the doc quotes is what it prints (the record's id aside).
    let quoted: Vec<String> = doc
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("GIV-000001  dernier contact")
                || l.starts_with("GIV-P000001  dernier contact")
                || l.contains("reçu(e) le")
                || l.contains("en attente à supprimer")
                || l.contains("fiche(s) à effacer")
        })
        .map(|l| {
            l.replace("GIV-000001", &old)
                .replace("GIV-P000001", &silent)
                .replace("3c1f0a9e27b4d6805e11", &old_sms)
        })
        .collect();
    assert_eq!(said.lines().collect::<Vec<_>>(), quoted, "{said}");
    assert!(
        hub.store
            .citizen(GIVORS, &old)
            .unwrap()
            .unwrap()
            .erased
            .is_none(),
        "a dry run"
    );

    let (ok, said) = cli("dpo", &["retention", "--tenant", GIVORS, "--apply"]);
    assert!(ok, "{said}");
    assert!(
        said.ends_with("2 fiche(s) effacée(s)\n2 entrée(s) en attente supprimée(s)\n"),
        "{said}"
    );
    let left: Vec<String> = quarantine
        .list(None, None)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, [recent_sms]);
    let mut files: Vec<String> = std::fs::read_dir(&unmatched)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["GIV-2026-001000.pdf", "GIV-2026-001000.pdf.reason"]);
    let erased = hub
        .store
        .citizen(GIVORS, &old)
        .unwrap()
        .unwrap()
        .erased
        .unwrap();
    assert_eq!(
        erased.reason,
        "règle de conservation : aucun contact depuis 5 ans"
    );
    for kept in [&recent, &calling] {
        assert!(hub
            .store
            .citizen(GIVORS, kept)
            .unwrap()
            .unwrap()
            .erased
            .is_none());
    }
    let gone = hub
        .store
        .citizen(GIVORS, &silent)
        .unwrap()
        .unwrap()
        .erased
        .unwrap();
    assert_eq!(
        gone.reason,
        "règle de conservation : expéditeur inconnu, sans contact depuis 12 mois"
    );
    // The hub's own daily run finds nothing left to do.
    let daily = contacthub_app::auth::Scope::system(System::Retention, GIVORS);
    assert_eq!(hub.hub.retention_due(&daily).unwrap(), vec![]);
    // Input no commune claims (a webhook that named none): not the Givors DPO's to list, the
    // daily run's; a holder that cannot be read (the scans' folder gone) stops nothing.
    let refused = contacthub_adapters::Rejected {
        locator: String::new(),
        reason: "no commune".into(),
        detail: None,
        tenant: None,
        raw: b"Body=sans-commune".to_vec(),
    };
    let unclaimed = quarantine
        .put(
            "sms",
            "webhook",
            b"Body=sans-commune",
            &[refused],
            at(2026, 8, 1, 9, 0),
        )
        .unwrap()
        .0
        .id;
    let (ok, said) = cli("dpo", &args);
    assert!(ok && !said.contains(&unclaimed), "{said}");
    std::fs::remove_dir_all(&unmatched).unwrap();
    std::fs::write(&unmatched, b"not a folder").unwrap();
    let due = hub.hub.retention_due(&daily).unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert!(
        matches!(&due[0].what, contacthub_app::retention::Erasable::Held { item, .. } if item.id == unclaimed),
        "{due:?}"
    );
    hub.stop().await;
}

/// Erasing a caller nobody knew (a provisional record, made by their call) makes the read
/// model again from a log where that call no longer says who it came from: the other
/// callers keep their records and numbers, the request an agent opened for the erased one
/// still folds (no dead letter), the figures are as they were.
async fn erasing_a_provisional_record_keeps_everyone_else_in_place(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let scope = hub.scope(GIVORS);
    hub.hub
        .append_contacts(
            System::Adapters,
            &[
                call(GIVORS, "prov-1", "06 11 11 11 11", at(2026, 11, 2, 9, 0)),
                call(GIVORS, "prov-2", "06 22 22 22 22", at(2026, 11, 2, 9, 5)),
                call(GIVORS, "prov-3", "06 33 33 33 33", at(2026, 11, 2, 9, 10)),
            ],
        )
        .await
        .unwrap();
    hub.settle().await;
    let holder = |phone: &str| holder(&hub, phone);
    let (first, second, third) = (
        holder("06 11 11 11 11").unwrap(),
        holder("06 22 22 22 22").unwrap(),
        holder("06 33 33 33 33").unwrap(),
    );
    hub.hub
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: "Rappel demandé".into(),
                category: pb::Category::EtatCivil,
                service: "etat-civil".into(),
                citizen_id: first.clone(),
                idempotency_key: "prov-request".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    hub.settle().await;
    let figures = || {
        let mut all = hub
            .store
            .counters(contacthub_core::keys::Counters::All)
            .unwrap();
        all.remove(&contacthub_core::keys::Counter::Applied);
        all
    };
    let before = figures();
    let requests = hub.store.requests(GIVORS).unwrap().len();

    // An open hub's visitor (no agents file) may erase, as its DPO would.
    let visitor = Access::Open.scope(None, GIVORS).unwrap();
    hub.hub
        .erase_citizen(
            &visitor,
            &commands::EraseCitizen {
                citizen_id: first.clone(),
                reason: "demande de l'intéressé".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        holder("06 11 11 11 11"),
        None,
        "the erased number is nobody's"
    );
    assert_eq!(holder("06 22 22 22 22").as_ref(), Some(&second));
    assert_eq!(holder("06 33 33 33 33").as_ref(), Some(&third));
    let erased = hub.store.citizen(GIVORS, &first).unwrap().unwrap();
    assert_eq!(erased.erased.unwrap().reason, "demande de l'intéressé");
    for other in [&second, &third] {
        assert!(hub
            .store
            .citizen(GIVORS, other)
            .unwrap()
            .unwrap()
            .erased
            .is_none());
    }
    assert_eq!(hub.store.requests(GIVORS).unwrap().len(), requests);
    assert_eq!(hub.store.dead_letters(100, |_| true).unwrap(), vec![]);
    assert_eq!(figures(), before);
    let (live, replayed, _) = hub.stop_and_replay(2000).await;
    assert_eq!(replayed.digest().unwrap(), live);
}

on_every_backend!(erasing_a_provisional_record_keeps_everyone_else_in_place);
