//! The sender: delivers the written answers of the outbox (e-mail through the commune's SMTP
//! relay, SMS through its gateway's REST API, portal messages at once) and records each
//! outcome as an event, retrying with backoff. Letters go to the print queue instead. The
//! notices (appointments' confirmations and reminders, requests' acknowledgements) go the same
//! way, under the same rules; the sender also queues the reminders of tomorrow's appointments.
//!
//! Exactly once: an answer leaves the outbox only when its outcome is on the log. Each
//! provider gets the answer's id as its idempotency key — the SMS gateway as the
//! `Idempotency-Key` header (a retried request returns the first message), the SMTP relay as
//! the Message-ID `<answer-id.nonce@domain>` (the nonce, drawn when the answer was composed,
//! keeps anyone but the recipient from naming it in a forged bounce). SMTP has no
//! idempotency: if the hub loses what the relay said after it accepted a message (killed
//! between its `250` after DATA and the append of the outcome, about a millisecond, or a
//! response lost on the network and taken for a failure), the e-mail is sent again with the
//! same Message-ID, which mail clients show once. The same holds for a gateway that does not
//! honour the idempotency key. Answers go one at a time; one hub per log sends
//! (`--outbound`).

use crate::config::{AdaptersConfig, SmsGatewaySettings, SmtpSettings, SmtpTls};
use crate::Error;
use contacthub_app::answers::sha256_hex;
use contacthub_app::auth::System;
use contacthub_app::App;
use contacthub_core::outbound::retry_at;
use contacthub_core::pb::{self, answer_outcome::Kind, Channel};
use contacthub_proto::ts;
use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a provider said of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted: the provider's message id, the segments of an SMS, the PDF attached.
    Sent {
        message_id: String,
        segments: u32,
        pdf_sha256: String,
    },
    /// Refused: `permanent` when trying again cannot help (a 5xx SMTP reply, a 4xx API error).
    Failed { permanent: bool, reason: String },
}

fn failed(permanent: bool, reason: impl Into<String>) -> Delivery {
    Delivery::Failed {
        permanent,
        reason: reason.into(),
    }
}

/// A commune's e-mail sender: its SMTP relay.
struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// Domain of Message-IDs (the sender's).
    domain: String,
}

impl Smtp {
    fn new(code: &str, s: &SmtpSettings) -> Result<Self, Error> {
        let bad = |what: String| Error::Config(format!("commune {code}: smtp {what}"));
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| bad(format!("from {:?}: {e}", s.from)))?;
        let reply_to = match &s.reply_to {
            Some(r) => Some(r.parse().map_err(|e| bad(format!("reply_to {r:?}: {e}")))?),
            None => None,
        };
        let builder = match s.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host),
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &s.host,
            )),
        }
        .map_err(|e| bad(format!("host {:?}: {e}", s.host)))?;
        let mut builder = builder.timeout(Some(Duration::from_secs(30)));
        if let Some(port) = s.port {
            builder = builder.port(port);
        }
        match (&s.username, &s.password) {
            (Some(u), Some(p)) => {
                builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
            }
            (None, None) => {}
            _ => return Err(bad("username and password go together".into())),
        }
        Ok(Smtp {
            transport: builder.build(),
            domain: from.email.domain().to_string(),
            from,
            reply_to,
        })
    }

    /// The Message-ID of an answer (without brackets): its id and its nonce, at the sender's
    /// domain. The same on every attempt; only the recipient sees the nonce.
    fn message_id(&self, a: &pb::Answer) -> String {
        if a.message_nonce.is_empty() {
            format!("{}@{}", a.answer_event_id, self.domain)
        } else {
            format!("{}.{}@{}", a.answer_event_id, a.message_nonce, self.domain)
        }
    }

    /// The e-mail of an answer: UTF-8 subject (RFC 2047 encoded), plain text body, the letter
    /// attached when asked, a Message-ID made of the answer's id.
    fn message(&self, a: &pb::Answer, letter: Option<&[u8]>) -> Result<Message, Delivery> {
        let to: Mailbox = a
            .recipient
            .parse()
            .map_err(|_| failed(true, "adresse électronique du destinataire invalide"))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(a.subject.clone())
            .message_id(Some(format!("<{}>", self.message_id(a))));
        if let Some(r) = &self.reply_to {
            b = b.reply_to(r.clone());
        }
        // A notice outside any request (a one-time code) has no reference to give.
        let body = if a.request_reference.is_empty() {
            format!("Madame, Monsieur,\n\n{}\n", a.text.trim())
        } else {
            format!(
                "Madame, Monsieur,\n\n{}\n\nRéférence de votre demande : {}\n",
                a.text.trim(),
                a.request_reference
            )
        };
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let m = match letter {
            Some(pdf) => b.multipart(MultiPart::mixed().singlepart(text).singlepart(
                Attachment::new(format!("reponse-{}.pdf", a.request_reference)).body(
                    pdf.to_vec(),
                    ContentType::parse("application/pdf").expect("a valid media type"),
                ),
            )),
            None => b.singlepart(text),
        };
        m.map_err(|e| failed(true, format!("courriel impossible à composer : {e}")))
    }

    async fn send(&self, a: &pb::Answer, letter: Option<&[u8]>) -> Delivery {
        let m = match self.message(a, letter) {
            Ok(m) => m,
            Err(d) => return d,
        };
        let message_id = self.message_id(a);
        match self.transport.send(m).await {
            Ok(_) => Delivery::Sent {
                message_id,
                segments: 0,
                pdf_sha256: letter.map(sha256_hex).unwrap_or_default(),
            },
            Err(e) => failed(e.is_permanent(), format!("relais SMTP : {e}")),
        }
    }
}

/// A commune's SMS sender: its gateway's Messages resource.
struct Gateway {
    http: reqwest::Client,
    settings: SmsGatewaySettings,
    token: String,
    status_callback: Option<String>,
}

/// The gateway's answer to a message creation.
#[derive(serde::Deserialize)]
struct Created {
    sid: String,
    num_segments: Option<String>,
}

/// The gateway's error body.
#[derive(serde::Deserialize)]
struct ApiError {
    code: Option<u32>,
    message: Option<String>,
}

impl Gateway {
    async fn send(&self, a: &pb::Answer) -> Delivery {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.api_url.trim_end_matches('/'),
            self.settings.account_sid
        );
        let mut form = vec![
            ("To", a.recipient.as_str()),
            ("From", self.settings.from.as_str()),
            ("Body", a.text.as_str()),
        ];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let sent = self
            .http
            .post(&url)
            .basic_auth(&self.settings.account_sid, Some(&self.token))
            .header("Idempotency-Key", &a.answer_event_id)
            .form(&form)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return failed(false, format!("passerelle SMS injoignable : {e}")),
        };
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(c) if !c.sid.is_empty() => Delivery::Sent {
                    message_id: c.sid,
                    segments: c
                        .num_segments
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| contacthub_core::outbound::sms_segments(&a.text)),
                    pdf_sha256: String::new(),
                },
                _ => failed(
                    false,
                    format!("passerelle SMS : réponse {status} illisible"),
                ),
            };
        }
        let detail = serde_json::from_slice::<ApiError>(&body)
            .ok()
            .map(|e| {
                format!(
                    " (code {} : {})",
                    e.code.unwrap_or_default(),
                    e.message.unwrap_or_default()
                )
            })
            .unwrap_or_default();
        // 4xx but 429: the request itself is wrong (a number the gateway refuses).
        let permanent = status.is_client_error() && status.as_u16() != 429;
        failed(
            permanent,
            contacthub_core::limits::clip(&format!("passerelle SMS : {status}{detail}"), 500),
        )
    }
}

/// Notices (the citizens' space's one-time codes) go at once through the commune's relay or
/// gateway, as an answer without a request would, never retried: the person asks again.
impl contacthub_app::notify::Notify for Providers {
    fn send<'a>(
        &'a self,
        tenant: &'a str,
        to: &'a contacthub_app::notify::Destination,
        subject: &'a str,
        text: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        use contacthub_app::notify::Destination;
        Box::pin(async move {
            let (channel, recipient) = match to {
                Destination::Email(m) => (Channel::Email, m),
                Destination::Sms(n) => (Channel::Sms, n),
            };
            let notice = pb::Answer {
                // The provider's idempotency key: one per code (each code is new).
                answer_event_id: format!(
                    "avis-{}",
                    &sha256_hex(format!("{recipient}\0{text}").as_bytes())[..32]
                ),
                tenant: tenant.to_string(),
                channel: channel as i32,
                recipient: recipient.to_string(),
                subject: subject.to_string(),
                text: text.to_string(),
                ..Default::default()
            };
            match self.send_short(&notice).await {
                Delivery::Sent { .. } => Ok(()),
                Delivery::Failed { reason, .. } => Err(reason),
            }
        })
    }
}

/// The providers of every commune, built from the adapters configuration.
#[derive(Clone, Default)]
pub struct Providers {
    smtp: BTreeMap<String, Arc<Smtp>>,
    sms: BTreeMap<String, Arc<SmsRoute>>,
}

/// Where a commune's SMS go: its Twilio-shaped gateway or its OVHcloud account.
enum SmsRoute {
    Twilio(Gateway),
    Ovh(crate::ovh::Ovh),
}

impl SmsRoute {
    async fn send(&self, a: &pb::Answer) -> Delivery {
        match self {
            SmsRoute::Twilio(g) => g.send(a).await,
            // OVH checks the call's time against its own clock: the machine's, not the hub's.
            SmsRoute::Ovh(o) => o.send(a, chrono::Utc::now().timestamp()).await,
        }
    }
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("smtp", &self.smtp.keys().collect::<Vec<_>>())
            .field("sms", &self.sms.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Providers {
    /// Checks and builds each commune's SMTP relay and SMS gateway.
    pub fn from_config(cfg: &AdaptersConfig) -> Result<Self, Error> {
        let mut p = Providers::default();
        for c in &cfg.communes {
            if let Some(s) = &c.smtp {
                p.smtp
                    .insert(c.code.clone(), Arc::new(Smtp::new(&c.code, s)?));
            }
            if let Some(g) = &c.sms_gateway {
                let token = c.sms_auth_token.clone().ok_or_else(|| {
                    Error::Config(format!(
                        "commune {}: sms_gateway needs sms_auth_token (the account's auth token)",
                        c.code
                    ))
                })?;
                url::Url::parse(&g.api_url).map_err(|e| {
                    Error::Config(format!(
                        "commune {}: sms_gateway api_url {:?}: {e}",
                        c.code, g.api_url
                    ))
                })?;
                let status_callback = g.status_callback.clone().or_else(|| {
                    cfg.public_url
                        .as_ref()
                        .map(|u| format!("{}/v1/{}/sms/status", u.trim_end_matches('/'), c.code))
                });
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| Error::Config(format!("SMS gateway client: {e}")))?;
                p.sms.insert(
                    c.code.clone(),
                    Arc::new(SmsRoute::Twilio(Gateway {
                        http,
                        settings: g.clone(),
                        token,
                        status_callback,
                    })),
                );
            }
            // An OVHcloud account takes the commune's SMS instead.
            if let Some(o) = &c.ovh_sms {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| Error::Config(format!("OVHcloud SMS client: {e}")))?;
                let callback = cfg.public_url.as_ref().map(|u| {
                    format!(
                        "{}/v1/{}/ovh/status?t={}",
                        u.trim_end_matches('/'),
                        c.code,
                        crate::ovh::callback_token(&o.application_secret, &c.code)
                    )
                });
                p.sms.insert(
                    c.code.clone(),
                    Arc::new(SmsRoute::Ovh(crate::ovh::Ovh {
                        http,
                        settings: o.clone(),
                        callback,
                    })),
                );
            }
        }
        Ok(p)
    }

    /// One attempt at sending a short message with no letter (a notice, a code) by e-mail or
    /// SMS, shaped as an answer: its id is the providers' idempotency key.
    async fn send_short(&self, a: &pb::Answer) -> Delivery {
        let none = |what: &str| {
            failed(
                true,
                format!("aucun {what} n'est configuré pour cette commune"),
            )
        };
        match Channel::try_from(a.channel).unwrap_or(Channel::Unspecified) {
            Channel::Email => match self.smtp.get(&a.tenant) {
                Some(s) => s.send(a, None).await,
                None => none("relais SMTP"),
            },
            Channel::Sms => match self.sms.get(&a.tenant) {
                Some(g) => g.send(a).await,
                None => none("passerelle SMS"),
            },
            _ => failed(true, "canal sans envoi automatique"),
        }
    }

    /// One attempt at delivering `a`.
    async fn deliver(&self, app: &App, a: &pb::Answer) -> Delivery {
        match Channel::try_from(a.channel).unwrap_or(Channel::Unspecified) {
            Channel::Email if a.attach_letter => match self.smtp.get(&a.tenant) {
                Some(s) => match app.answer_letter_for(System::Sender, a) {
                    Ok(pdf) => s.send(a, Some(&pdf)).await,
                    Err(e) => failed(false, format!("lettre : {e}")),
                },
                None => failed(true, "aucun relais SMTP n'est configuré pour cette commune"),
            },
            // The last word before an SMS leaves: a number that answered STOP gets none.
            Channel::Sms => match app.sms_allowed(System::Sender, &a.tenant, &a.recipient) {
                Ok(true) => self.send_short(a).await,
                Ok(false) => failed(true, "le numéro a répondu STOP aux SMS de la mairie"),
                Err(e) => failed(false, format!("liste des STOP illisible : {e}")),
            },
            // A portal message is the answer itself, kept in the hub for the citizen's account.
            Channel::WebForm => Delivery::Sent {
                message_id: format!("portail-{}", a.answer_event_id),
                segments: 0,
                pdf_sha256: String::new(),
            },
            _ => self.send_short(a).await,
        }
    }
}

/// Delivers one answer and records the outcome.
async fn attempt(app: &App, providers: &Providers, a: pb::Answer) -> Result<(), String> {
    let attempt = a.attempts + 1;
    let delivery = providers.deliver(app, &a).await;
    let now = app.now();
    let outcome = match delivery {
        Delivery::Sent {
            message_id,
            segments,
            pdf_sha256,
        } => {
            tracing::info!(answer = %a.answer_event_id, tenant = %a.tenant, attempt, "answer delivered");
            pb::AnswerOutcome {
                answer_event_id: a.answer_event_id.clone(),
                kind: Kind::Delivered as i32,
                attempt,
                provider_message_id: message_id,
                pdf_sha256,
                segments,
                ..Default::default()
            }
        }
        Delivery::Failed { permanent, reason } => {
            let retry = (!permanent).then(|| retry_at(attempt, now)).flatten();
            tracing::warn!(answer = %a.answer_event_id, tenant = %a.tenant, attempt, permanent, retry = retry.is_some(), "answer not delivered");
            pb::AnswerOutcome {
                answer_event_id: a.answer_event_id.clone(),
                kind: Kind::Failed as i32,
                attempt,
                error: contacthub_core::limits::clip(&reason, contacthub_core::limits::NOTE_CHARS),
                retry_at: retry.map(ts::from_micros),
                ..Default::default()
            }
        }
    };
    app.record_delivery(System::Sender, &a, outcome)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Sends one notice and records the outcome.
async fn attempt_notice(app: &App, providers: &Providers, n: pb::Notice) -> Result<(), String> {
    let attempt = n.attempts + 1;
    let n = match app
        .notice_to_send(System::Sender, n.clone())
        .map_err(|e| e.to_string())?
    {
        Ok(n) => n,
        // No longer to send: given up, with why.
        Err(why) => {
            let outcome = pb::NoticeOutcome {
                notice_event_id: n.notice_event_id.clone(),
                sent: false,
                attempt,
                error: why.to_string(),
                ..Default::default()
            };
            return app
                .record_notice_outcome(System::Sender, &n, outcome)
                .await
                .map_err(|e| e.to_string());
        }
    };
    let shaped = pb::Answer {
        answer_event_id: n.notice_event_id.clone(),
        tenant: n.tenant.clone(),
        channel: n.channel,
        recipient: n.recipient.clone(),
        subject: n.subject.clone(),
        text: n.text.clone(),
        ..Default::default()
    };
    let outcome = match providers.send_short(&shaped).await {
        Delivery::Sent { message_id, .. } => {
            tracing::info!(notice = %n.notice_event_id, tenant = %n.tenant, attempt, "notice sent");
            pb::NoticeOutcome {
                notice_event_id: n.notice_event_id.clone(),
                sent: true,
                attempt,
                provider_message_id: message_id,
                ..Default::default()
            }
        }
        Delivery::Failed { permanent, reason } => {
            // Not at night: a retry falling then waits for the morning.
            let retry = (!permanent)
                .then(|| retry_at(attempt, app.now()))
                .flatten()
                .map(contacthub_core::outbound::in_daytime);
            tracing::warn!(notice = %n.notice_event_id, tenant = %n.tenant, attempt, permanent, retry = retry.is_some(), "notice not sent");
            pb::NoticeOutcome {
                notice_event_id: n.notice_event_id.clone(),
                sent: false,
                attempt,
                error: contacthub_core::limits::clip(&reason, contacthub_core::limits::NOTE_CHARS),
                retry_at: retry.map(ts::from_micros),
                ..Default::default()
            }
        }
    };
    app.record_notice_outcome(System::Sender, &n, outcome)
        .await
        .map_err(|e| e.to_string())
}

/// Runs the sender until `shutdown`: the answers due in the outbox, then the notices due,
/// one at a time, oldest due first, looked for as soon as the projector applies something
/// (a new answer) and every `poll` (retries falling due); and, at most once a minute, the
/// reminders of tomorrow's appointments queued.
pub async fn run(
    app: App,
    providers: Providers,
    poll: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let mut applied = app.applied();
    let mut reminded: Option<tokio::time::Instant> = None;
    loop {
        if reminded.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            reminded = Some(tokio::time::Instant::now());
            if let Err(e) = app.queue_reminders(System::Sender).await {
                tracing::warn!(error = %e, "appointment reminders not queued; trying again");
            }
        }
        // Work due: first let the read model catch up with the log, so an answer or a notice
        // whose outcome is on the log (written before a crash) is not sent again.
        let due = match (
            app.outbox_due(System::Sender, 1),
            app.notices_due(System::Sender, 1),
        ) {
            (Ok(a), Ok(n)) if a.is_empty() && n.is_empty() => Ok((a, n)),
            (Ok(_), Ok(_)) => match app.wait_caught_up().await {
                Ok(()) => app
                    .outbox_due(System::Sender, 64)
                    .and_then(|a| Ok((a, app.notices_due(System::Sender, 64)?))),
                Err(e) => Err(e),
            },
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let (answers, notices) = due.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "outbox unreadable; trying again");
            Default::default()
        });
        for a in answers {
            // An attempt runs to its end (bounded by the providers' timeouts): stopping
            // half-way would leave a sent message unrecorded.
            let id = a.answer_event_id.clone();
            if let Err(e) = attempt(&app, &providers, a).await {
                // Not recorded: the answer stays due and is tried again.
                tracing::warn!(answer = %id, error = %e, "outcome not recorded");
                break;
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = std::future::ready(()) => {}
            }
        }
        for n in notices {
            let id = n.notice_event_id.clone();
            if let Err(e) = attempt_notice(&app, &providers, n).await {
                tracing::warn!(notice = %id, error = %e, "outcome not recorded");
                break;
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = std::future::ready(()) => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            // Anything applied (or a lagging receiver): look again.
            _ = applied.recv() => {}
            _ = &mut shutdown => return,
        }
    }
}
