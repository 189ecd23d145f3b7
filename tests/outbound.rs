//! The outbound channel end to end: written answers composed over gRPC go out on the
//! citizen's preferred channel through a local SMTP server and a fake SMS gateway speaking
//! their real wire formats, with their proof; a failure is retried; bounces (a delivery status
//! notification, the gateway's status callback) put the request back in its worklist; letters
//! wait in the print queue; a sender killed mid-batch delivers every answer exactly once.

use contacthub_core::pb::{
    self, citizen_service_client::CitizenServiceClient,
    outbound_service_client::OutboundServiceClient, request_service_client::RequestServiceClient,
};
use contacthub_proto::ts;
use contacthub_tests::gateway::{Gateway, ACCOUNT, TOKEN};
use contacthub_tests::smtp::SmtpServer;
use contacthub_tests::*;
use mail_parser::MimeHeaders;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tonic::transport::Channel;

const GIVORS: &str = "69091";
const SUBJECT: &str = "Demande de logement — Łukasz Żółć, 3ᵉ étage";
const AGENT_TOKEN: &str = "givors-systems-token";

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Adapters configuration of Givors: its SMTP relay and SMS gateway are the test's.
pub(crate) fn adapters_toml(smtp: &SmtpServer, gateway: Option<&Gateway>) -> String {
    let mut t = format!(
        r#"
[[commune]]
code = "69091"
token_sha256 = "{}"
addresses = ["@ville-givors.fr"]
"#,
        hex(AGENT_TOKEN.as_bytes())
    );
    if gateway.is_some() {
        t += &format!("sms_auth_token = \"{TOKEN}\"\n");
    }
    t += &format!(
        r#"
[commune.smtp]
host = "127.0.0.1"
port = {}
tls = "none"
username = "grc-givors"
password = "relay-secret"
from = "Mairie de Givors <reponses@ville-givors.fr>"
"#,
        smtp.port
    );
    if let Some(g) = gateway {
        t += &format!(
            r#"
[commune.sms_gateway]
api_url = "{}"
account_sid = "{ACCOUNT}"
from = "+33472000000"
"#,
            g.url
        );
    }
    t
}

/// Nguyễn Thị Minh Khai, who prefers `preferred` and consented to it.
fn identity(preferred: pb::ContactChannel) -> pb::Identity {
    pb::Identity {
        usage_name: "Nguyễn".into(),
        first_names: "Thị Minh Khai".into(),
        addresses: vec![pb::Address {
            number: "3".into(),
            street: "rue Pasteur".into(),
            postcode: "69700".into(),
            city: "Givors".into(),
            complement: "Bâtiment Ø, 2ᵉ étage".into(),
        }],
        phones: vec!["06 12 34 56 78".into()],
        emails: vec!["minh.khai@example.org".into()],
        preferred_channel: preferred as i32,
        consent: Some(pb::Consent {
            given_at: Some(ts::from_micros(at(2026, 1, 5, 10, 0))),
            source: "accueil".into(),
        }),
        ..Default::default()
    }
}

/// A citizen and a request of theirs: (citizen id, request reference).
pub(crate) async fn citizen_with_request(
    ch: &Channel,
    preferred: pb::ContactChannel,
) -> (String, String) {
    let citizen = CitizenServiceClient::new(ch.clone())
        .create_citizen(pb::CreateCitizenRequest {
            tenant: GIVORS.into(),
            identity: Some(identity(preferred)),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("create citizen: {s}"))
        .into_inner()
        .citizen_id;
    let request = RequestServiceClient::new(ch.clone())
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: SUBJECT.into(),
            category: pb::Category::Ccas as i32,
            service: "ccas".into(),
            citizen_id: citizen.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("open request: {s}"))
        .into_inner()
        .reference;
    (citizen, request)
}

pub(crate) fn compose(reference: &str, text: &str) -> pb::ComposeAnswerRequest {
    pb::ComposeAnswerRequest {
        tenant: GIVORS.into(),
        reference: reference.into(),
        text: text.into(),
        ..Default::default()
    }
}

/// Waits until the answer reaches `status`, and returns it.
pub(crate) async fn wait_status(ch: &Channel, id: &str, status: pb::AnswerStatus) -> pb::Answer {
    let mut out = OutboundServiceClient::new(ch.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a = out
            .get_answer(pb::GetAnswerRequest {
                tenant: GIVORS.into(),
                answer_event_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        if a.status == status as i32 {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "answer {id} never reached {status:?}: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn request(ch: &Channel, reference: &str) -> pb::Request {
    RequestServiceClient::new(ch.clone())
        .get_request(pb::GetRequestRequest {
            tenant: GIVORS.into(),
            reference: reference.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// E-mail and SMS answers: the preferred channel by default, another only with a reason; the
/// e-mail as the relay received it (headers, UTF-8 subject, the letter attached); the SMS as
/// the gateway received it; a failure retried, a permanent one handed back; both bounces
/// putting the request back in its worklist.
async fn answers_go_out_on_the_preferred_channel_with_their_proof(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let smtp = SmtpServer::start().await;
    smtp.require_password("relay-secret");
    // The relay refuses the first attempt for now: tried again after its backoff.
    smtp.refuse_next(1);
    let gateway = Gateway::start().await;
    let adapters = hub
        .start_adapters(&adapters_toml(&smtp, Some(&gateway)))
        .await;
    let ch = hub.channel.clone();
    let mut out = OutboundServiceClient::new(ch.clone());
    let (citizen, reference) = citizen_with_request(&ch, pb::ContactChannel::Email).await;
    let text = format!("Bonjour, votre dossier « {SUBJECT} » est complet.");

    // The preview: her preferred channel, her address; another channel needs a reason.
    let preview = out
        .preview_answer(compose(&reference, &text))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.channel, pb::Channel::Email as i32);
    assert!(preview.preferred);
    assert_eq!(preview.recipient, "minh.khai@example.org");
    let mut by_sms = compose(&reference, &text);
    by_sms.channel = pb::Channel::Sms as i32;
    let refused = out.send_answer(by_sms.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("indiquez pourquoi vous répondez par « SMS »"),
        "{refused:?}"
    );
    let mut empty = compose(&reference, " ");
    empty.channel = pb::Channel::Email as i32;
    let refused = out.send_answer(empty).await.unwrap_err();
    assert!(
        refused.message().contains("écrivez le texte de la réponse"),
        "{refused:?}"
    );
    let mut elsewhere = compose(&reference, &text);
    elsewhere.tenant = "69259".into();
    assert_eq!(
        out.preview_answer(elsewhere).await.unwrap_err().code(),
        tonic::Code::NotFound,
        "another commune does not know the request"
    );

    // By e-mail, the letter attached.
    let mut req = compose(&reference, &text);
    req.subject = format!("Réponse — {SUBJECT}");
    req.attach_letter = true;
    let queued = out.send_answer(req).await.unwrap().into_inner();
    assert_eq!(queued.status, pb::AnswerStatus::Queued as i32);
    let id = queued.answer_event_id.clone();
    let retrying = wait_status(&ch, &id, pb::AnswerStatus::Retrying).await;
    assert!(retrying.last_error.contains("451"), "{retrying:?}");
    assert!(smtp.received().is_empty());
    let next = ts::to_micros(retrying.next_attempt_at.as_ref().unwrap()).unwrap();
    hub.set_clock(next + 1_000_000);
    let sent = wait_status(&ch, &id, pb::AnswerStatus::Delivered).await;
    hub.set_clock(0);
    assert_eq!(sent.attempts, 2);
    assert!(
        smtp.logins().iter().all(|l| l == "grc-givors") && !smtp.logins().is_empty(),
        "authenticated with the commune's credentials: {:?}",
        smtp.logins()
    );
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["<minh.khai@example.org>"]);
    assert_eq!(mail.mail_from, "<reponses@ville-givors.fr>");
    let head_end = mail.data.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        mail.data[..head_end].is_ascii(),
        "headers are 7-bit, the subject RFC 2047 encoded"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some(format!("Réponse — {SUBJECT}").as_str())
    );
    let message_id = parsed.message_id().unwrap().to_string();
    assert!(
        message_id.starts_with(&format!("{id}.")) && message_id.ends_with("@ville-givors.fr"),
        "the answer's id and its nonce: {message_id}"
    );
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("reponses@ville-givors.fr")
    );
    let body = parsed.body_text(0).unwrap();
    assert!(
        body.contains(SUBJECT) && body.contains(&reference),
        "{body}"
    );
    let pdf = parsed
        .attachments()
        .find(|a| a.is_content_type("application", "pdf"))
        .expect("the letter is attached")
        .contents()
        .to_vec();
    assert_eq!(sent.provider_message_id, message_id);
    assert_eq!(sent.pdf_sha256, hex(&pdf), "the proof is the PDF sent");
    if let Some(letter) = pdf_text(&pdf) {
        let code = request(&ch, &reference).await.follow_up_code;
        assert_eq!(code.len(), 9, "{code:?}");
        for words in [
            "Thị Minh Khai Nguyễn",
            "Łukasz Żółć, 3ᵉ étage",
            "Bâtiment Ø",
            &format!("Référence : {reference} — code de suivi : {code}"),
        ] {
            assert!(letter.contains(words), "{words:?} not in {letter}");
        }
    }
    let r = request(&ch, &reference).await;
    assert_eq!(r.status, pb::RequestStatus::Answered as i32);
    assert_eq!(r.answer_channel, pb::Channel::Email as i32);
    assert_eq!(r.answer_ref, sent.provider_message_id);
    // In her timeline, on the channel it went by.
    let timeline = hub
        .desk()
        .get_timeline(pb::GetTimelineRequest {
            tenant: GIVORS.into(),
            citizen: by_id(&citizen),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let line = timeline
        .entries
        .iter()
        .find(|e| e.event_id == id)
        .expect("the answer is in her timeline");
    assert_eq!(line.channel, pb::Channel::Email as i32);
    assert!(line.summary.contains("remise"), "{}", line.summary);

    // The relay's delivery status notification comes back: the request is to answer again.
    let dsn = String::from(
        "From: Mail Delivery System <MAILER-DAEMON@relay.ville-givors.fr>\r\n\
         To: reponses@ville-givors.fr\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <dsn-1@relay.ville-givors.fr>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; relay.ville-givors.fr\r\n\r\n\
         Final-Recipient: rfc822; minh.khai@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: Mairie de Givors <reponses@ville-givors.fr>\r\nMessage-ID: <MESSAGE-ID>\r\n\r\n\
         --B--\r\n"
    );
    let http = reqwest::Client::new();
    // A forged report naming the answer without its nonce bounces nothing.
    let forged = http
        .post(format!("{adapters}/v1/{GIVORS}/email"))
        .bearer_auth(AGENT_TOKEN)
        .body(dsn.replace("MESSAGE-ID", &format!("{id}@ville-givors.fr")))
        .send()
        .await
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&forged.bytes().await.unwrap()).unwrap();
    assert_eq!(summary["bounces"], 0, "{summary}");
    assert_eq!(
        request(&ch, &reference).await.status,
        pb::RequestStatus::Answered as i32
    );
    let posted = http
        .post(format!("{adapters}/v1/{GIVORS}/email"))
        .bearer_auth(AGENT_TOKEN)
        .body(dsn.replace("MESSAGE-ID", &message_id))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let summary: serde_json::Value =
        serde_json::from_slice(&posted.bytes().await.unwrap()).unwrap();
    assert_eq!(summary["bounces"], 1, "{summary}");
    assert_eq!(
        summary["accepted"], 0,
        "a bounce is not a contact: {summary}"
    );
    let bounced = wait_status(&ch, &id, pb::AnswerStatus::Bounced).await;
    assert!(bounced.last_error.contains("5.1.1"), "{bounced:?}");
    let r = request(&ch, &reference).await;
    assert_eq!(
        r.status,
        pb::RequestStatus::Reopened as i32,
        "back in the worklist"
    );
    assert!(r.history.iter().any(|h| h.kind == "answer_bounced"));

    // By SMS, with the reason; a long text is two segments.
    let long = "Votre dossier est complet. ".repeat(7);
    let mut req = compose(&reference, &long);
    req.channel = pb::Channel::Sms as i32;
    req.channel_reason = "adresse électronique en erreur".into();
    let id = out
        .send_answer(req)
        .await
        .unwrap()
        .into_inner()
        .answer_event_id;
    let sms = wait_status(&ch, &id, pb::AnswerStatus::Delivered).await;
    let texts = gateway.sent();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].to, "+33612345678");
    assert_eq!(texts[0].from, "+33472000000");
    assert_eq!(texts[0].body, long.trim());
    assert_eq!(
        texts[0].idempotency_key, id,
        "the answer's id is the idempotency key"
    );
    assert_eq!(sms.provider_message_id, texts[0].sid);
    assert_eq!(sms.segments, 2);
    assert_eq!(sms.channel_reason, "adresse électronique en erreur");
    assert_eq!(
        request(&ch, &reference).await.answer_ref,
        texts[0].sid,
        "the SMS is the request's written answer"
    );

    // The gateway fails once: tried again after its backoff, delivered on the second try.
    gateway.fail_next(503, 20500);
    let mut req = compose(&reference, "Complément : pièce reçue.");
    req.channel = pb::Channel::Sms as i32;
    req.channel_reason = "demande de l'usager".into();
    let id = out
        .send_answer(req)
        .await
        .unwrap()
        .into_inner()
        .answer_event_id;
    let retrying = wait_status(&ch, &id, pb::AnswerStatus::Retrying).await;
    assert_eq!(retrying.attempts, 1);
    assert!(retrying.last_error.contains("503"), "{retrying:?}");
    let next = ts::to_micros(retrying.next_attempt_at.as_ref().unwrap()).unwrap();
    hub.set_clock(next + 1_000_000);
    let delivered = wait_status(&ch, &id, pb::AnswerStatus::Delivered).await;
    assert_eq!(delivered.attempts, 2);
    assert_eq!(gateway.sent().len(), 2, "sent once");
    hub.set_clock(0);

    // A number the gateway refuses: given up at once, handed back to the agent.
    gateway.fail_next(400, 21211);
    let mut req = compose(&reference, "Dernier complément.");
    req.channel = pb::Channel::Sms as i32;
    req.channel_reason = "demande de l'usager".into();
    let id = out
        .send_answer(req)
        .await
        .unwrap()
        .into_inner()
        .answer_event_id;
    let failed = wait_status(&ch, &id, pb::AnswerStatus::Failed).await;
    assert!(failed.last_error.contains("21211"), "{failed:?}");
    assert!(request(&ch, &reference)
        .await
        .history
        .iter()
        .any(|h| h.kind == "answer_failed"));

    // The gateway's status callback reports the request's last answer undelivered: a bounce.
    let body = format!(
        "MessageSid={}&MessageStatus=undelivered&ErrorCode=30003&AccountSid={ACCOUNT}",
        delivered.provider_message_id
    );
    let url = format!("{adapters}/v1/{GIVORS}/sms/status");
    let unsigned = http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(
        unsigned.status(),
        401,
        "only the gateway reports deliveries"
    );
    let portal = http
        .post(&url)
        .bearer_auth(AGENT_TOKEN)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        portal.status(),
        401,
        "the commune's portal token is not the gateway"
    );
    let signed = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "x-twilio-signature",
            contacthub_adapters::http::gateway_signature(TOKEN, &url, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 204);
    let bounced = wait_status(&ch, &delivered.answer_event_id, pb::AnswerStatus::Bounced).await;
    assert!(bounced.last_error.contains("30003"), "{bounced:?}");
    assert_eq!(
        request(&ch, &reference).await.status,
        pb::RequestStatus::Reopened as i32
    );
    let all = out
        .list_answers(pb::ListAnswersRequest {
            tenant: GIVORS.into(),
            reference: reference.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .answers;
    assert_eq!(all.len(), 4, "every answer kept, oldest first");
    hub.stop().await;
}

/// A letter answer waits in the print queue (the sender does not touch it); printed, its
/// PDF's hash is the proof of the request's written answer.
async fn letters_wait_in_the_print_queue_until_printed(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let smtp = SmtpServer::start().await;
    hub.start_adapters(&adapters_toml(&smtp, None)).await;
    let ch = hub.channel.clone();
    let mut out = OutboundServiceClient::new(ch.clone());
    let (_, reference) = citizen_with_request(&ch, pb::ContactChannel::Courrier).await;
    let text = format!("Madame, votre demande « {SUBJECT} » a reçu un avis favorable.");
    let queued = out
        .send_answer(compose(&reference, &text))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(queued.channel, pb::Channel::Courrier as i32);
    let queue = out
        .list_print_queue(pb::ListPrintQueueRequest {
            tenant: GIVORS.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(queue.len(), 1);
    let item = &queue[0];
    assert_eq!(item.pdf_sha256, hex(&item.letter_pdf));
    if let Some(letter) = pdf_text(&item.letter_pdf) {
        for words in [
            "Thị Minh Khai Nguyễn",
            "3 rue Pasteur",
            "69700 Givors",
            "Łukasz Żółć, 3ᵉ étage",
            reference.as_str(),
            "Mairie de Givors",
        ] {
            assert!(letter.contains(words), "{words:?} not in {letter}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wait_status(&ch, &queued.answer_event_id, pb::AnswerStatus::Queued)
            .await
            .attempts,
        0,
        "the sender leaves letters to the printers"
    );
    let wrong = out
        .mark_printed(pb::MarkPrintedRequest {
            tenant: GIVORS.into(),
            answer_event_id: queued.answer_event_id.clone(),
            pdf_sha256: "0".repeat(64),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::AlreadyExists, "{wrong:?}");
    let printed = out
        .mark_printed(pb::MarkPrintedRequest {
            tenant: GIVORS.into(),
            answer_event_id: queued.answer_event_id.clone(),
            pdf_sha256: item.pdf_sha256.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(printed.status, pb::AnswerStatus::Delivered as i32);
    assert_eq!(printed.pdf_sha256, item.pdf_sha256);
    let r = request(&ch, &reference).await;
    assert_eq!(r.status, pb::RequestStatus::Answered as i32);
    assert_eq!(r.answer_ref, format!("sha256:{}", item.pdf_sha256));
    assert!(out
        .list_print_queue(pb::ListPrintQueueRequest {
            tenant: GIVORS.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert!(smtp.received().is_empty());

    // A request closed while its letter waits: the letter is not printed.
    let (citizen, _) = citizen_with_request(&ch, pb::ContactChannel::Courrier).await;
    let other = RequestServiceClient::new(ch.clone())
        .open_request(pb::OpenRequestRequest {
            tenant: GIVORS.into(),
            subject: SUBJECT.into(),
            citizen_id: citizen,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reference;
    let waiting = out
        .send_answer(compose(&other, &text))
        .await
        .unwrap()
        .into_inner();
    RequestServiceClient::new(ch.clone())
        .close_request(pb::CloseRequestRequest {
            tenant: GIVORS.into(),
            reference: other.clone(),
            reason: pb::CloseReason::Withdrawn as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let cancelled = wait_status(&ch, &waiting.answer_event_id, pb::AnswerStatus::Failed).await;
    assert!(cancelled.last_error.contains("clôturée"), "{cancelled:?}");
    let queue = out
        .list_print_queue(pb::ListPrintQueueRequest {
            tenant: GIVORS.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(queue.is_empty(), "{queue:?}");
    hub.stop().await;
}

on_every_backend!(
    answers_go_out_on_the_preferred_channel_with_their_proof,
    letters_wait_in_the_print_queue_until_printed,
);

/// `kill -9` of the hub while the relay holds its reply to the third of five e-mails: after a
/// restart every answer reaches the relay exactly once (the held one was never accepted), and
/// the CLI shows them delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_mid_batch_delivers_every_answer_exactly_once() {
    let smtp = SmtpServer::start().await;
    smtp.require_password("relay-secret");
    smtp.hold_message(3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("adapters.toml");
    std::fs::write(&cfg, adapters_toml(&smtp, None)).unwrap();
    let data = dir.path().join("data");
    let bin = contacthub_bin!();
    let extra = [std::ffi::OsStr::new("--adapters"), cfg.as_os_str()];
    let mut serve = spawn_serve(&bin, &data, &extra);
    let ch = tonic::transport::Endpoint::from_shared(serve.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (_, first) = citizen_with_request(&ch, pb::ContactChannel::Email).await;
    let mut references = vec![first];
    let citizen = request(&ch, &references[0]).await.requesters[0].clone();
    for _ in 1..5 {
        references.push(
            RequestServiceClient::new(ch.clone())
                .open_request(pb::OpenRequestRequest {
                    tenant: GIVORS.into(),
                    subject: SUBJECT.into(),
                    category: pb::Category::Ccas as i32,
                    citizen_id: citizen.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .reference,
        );
    }
    // Five answers sent with the CLI, as an agent would.
    let mut ids = Vec::new();
    for r in &references {
        let (ok, out) = serve.cli(&[
            "answer",
            "send",
            "--tenant",
            GIVORS,
            r,
            "--text",
            "Votre dossier est complet.",
        ]);
        assert!(ok, "{out}");
        ids.push(out.split_whitespace().next().unwrap().to_string());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !smtp.holding() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the third e-mail never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    assert_eq!(smtp.received().len(), 2, "two accepted before the kill");

    let mut serve = spawn_serve(&bin, &data, &extra);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while smtp.received().len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} e-mails after the restart",
            smtp.received().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| {
            mail_parser::MessageParser::default()
                .parse(&m.data)
                .and_then(|p| p.message_id().map(str::to_string))
                .unwrap()
        })
        .collect();
    seen.sort();
    let mut sent_for: Vec<String> = seen
        .iter()
        .map(|m| m.split('.').next().unwrap().to_string())
        .collect();
    sent_for.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sent_for, expected, "each answer exactly once: {seen:?}");
    for r in &references {
        let (ok, out) = serve.cli(&["answer", "status", "--tenant", GIVORS, r]);
        assert!(ok && out.contains("remise"), "{out}");
    }
    let (ok, out) = serve.cli(&["outbound", "print-queue", "--tenant", GIVORS]);
    assert!(ok && out.contains("aucune lettre"), "{out}");
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x56, 0xc7, 0x2f, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The communes file with a logo for Givors, `logo.png` beside it.
fn communes_with_logo(dir: &std::path::Path, logo: &[u8]) -> std::path::PathBuf {
    let text = contacthub_core::tenant::DEFAULT_COMMUNES.replacen(
        "name = \"Givors\"",
        "name = \"Givors\"\nlogo = \"logo.png\"",
        1,
    );
    std::fs::write(dir.join("logo.png"), logo).unwrap();
    let path = dir.join("communes.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A commune's logo (from the communes file) prints on its letters, as the printers get
/// them from the CLI; a logo that is not an image stops `serve` with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_logo_prints_on_its_letters() {
    let dir = tempfile::tempdir().unwrap();
    let bin = contacthub_bin!();
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    let communes = communes_with_logo(&bad, b"GIF89a not a logo");
    let out = std::process::Command::new(&bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path().join("bad-data"))
        .arg("--communes")
        .arg(&communes)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("logo") && said.contains("PNG or JPEG"),
        "{said}"
    );

    let communes = communes_with_logo(dir.path(), PNG);
    let extra = [std::ffi::OsStr::new("--communes"), communes.as_os_str()];
    let mut serve = spawn_serve(&bin, &dir.path().join("data"), &extra);
    let ch = tonic::transport::Endpoint::from_shared(serve.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (_, reference) = citizen_with_request(&ch, pb::ContactChannel::Courrier).await;
    let preview = dir.path().join("apercu.pdf");
    let (ok, said) = serve.cli(&[
        "answer",
        "preview",
        "--tenant",
        GIVORS,
        &reference,
        "--text",
        "Votre demande est acceptée.",
        "--pdf",
        preview.to_str().unwrap(),
    ]);
    assert!(ok && said.contains("courrier (canal préféré"), "{said}");
    assert!(std::fs::read(&preview).unwrap().starts_with(b"%PDF-"));
    let (ok, said) = serve.cli(&[
        "answer",
        "send",
        "--tenant",
        GIVORS,
        &reference,
        "--text",
        "Votre demande est acceptée.",
    ]);
    assert!(ok && said.contains("courrier"), "{said}");
    let letters = dir.path().join("a-imprimer");
    let (ok, said) = serve.cli(&[
        "outbound",
        "print-queue",
        "--tenant",
        GIVORS,
        "--out",
        letters.to_str().unwrap(),
    ]);
    assert!(ok, "{said}");
    let pdf = std::fs::read_dir(&letters)
        .unwrap()
        .next()
        .expect("one letter written")
        .unwrap()
        .path();
    match std::process::Command::new("pdfimages")
        .arg("-list")
        .arg(&pdf)
        .output()
    {
        Ok(o) => {
            let list = String::from_utf8_lossy(&o.stdout);
            // A header of two lines, then one line per image.
            assert_eq!(list.lines().count(), 3, "one image, the logo: {list}");
        }
        Err(_) if std::env::var_os("CONTACTHUB_TEST_REQUIRE_PDFTOTEXT").is_some() => {
            panic!("pdfimages (poppler-utils) is not installed")
        }
        Err(_) => eprintln!("pdfimages is not installed: image not checked"),
    }
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}
