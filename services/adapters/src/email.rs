//! E-mail (courriel): RFC 5322 messages parsed with `mail-parser` (MIME, quoted-printable,
//! base64, legacy charsets such as ISO-8859-1 and Windows-1252, HTML-only mail reduced to
//! text). The original message and its attachments are kept as documents; threads are
//! linked through Message-ID, In-Reply-To and References.

use crate::config::AdaptersConfig;
use crate::{clip, Adapter, Blob, BlobSource, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::normalize_email;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The `source` of e-mail events.
pub const SOURCE: &str = "email";

/// Longest body text kept in the event; the whole message is kept as a document.
pub const MAX_TEXT_CHARS: usize = 20_000;

/// The e-mail adapter.
#[derive(Debug, Clone)]
pub struct Email {
    cfg: Arc<AdaptersConfig>,
    tenants: Arc<Tenants>,
}

fn first_id(v: &HeaderValue<'_>) -> Option<String> {
    match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => l.first().map(|t| t.to_string()),
        _ => None,
    }
    .map(|s| s.trim().trim_matches(['<', '>']).to_string())
    .filter(|s| !s.is_empty() && s.len() <= 250)
}

/// A delivery status notification (RFC 3464: `multipart/report;
/// report-type=delivery-status`) of a failed delivery: the bounce of the message it names by
/// its Message-ID (in its `text/rfc822-headers` or `message/rfc822` part). Reports of
/// successful or delayed delivery are not bounces.
fn delivery_report(msg: &mail_parser::Message<'_>, tenant: &str) -> Option<Item> {
    let ct = msg.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct
            .attribute("report-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return None;
    }
    let kind = |p: &mail_parser::MessagePart<'_>| {
        p.content_type()
            .map(|c| {
                format!(
                    "{}/{}",
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or("").to_ascii_lowercase()
                )
            })
            .unwrap_or_default()
    };
    let mut status = String::new();
    let mut diagnostic = String::new();
    let mut action = String::new();
    let mut original = None;
    for part in &msg.parts {
        match kind(part).as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                let text = String::from_utf8_lossy(part.contents());
                for line in text.lines() {
                    let (name, value) = line.split_once(':').unwrap_or(("", ""));
                    let value = value.trim();
                    match name.trim().to_ascii_lowercase().as_str() {
                        "status" if status.is_empty() => status = clip(value, 20),
                        "action" if action.is_empty() => action = value.to_ascii_lowercase(),
                        "diagnostic-code" if diagnostic.is_empty() => {
                            diagnostic = clip(value.trim_start_matches("smtp;").trim(), 200)
                        }
                        _ => {}
                    }
                }
            }
            "text/rfc822-headers" | "message/rfc822" | "message/global-headers" => {
                original = original.or_else(|| {
                    MessageParser::default()
                        .parse_headers(part.contents())
                        .and_then(|m| m.message_id().map(str::to_string))
                });
            }
            _ => {}
        }
    }
    if !action.is_empty() && action != "failed" {
        return Some(Item::Ignored {
            locator: String::new(),
            why: format!("delivery report: {action}"),
        });
    }
    let message_id = original?.trim().trim_matches(['<', '>']).to_string();
    let mut reason = "courriel non remis".to_string();
    if !status.is_empty() {
        reason += &format!(" (statut {status})");
    }
    if !diagnostic.is_empty() {
        reason += &format!(" : {diagnostic}");
    }
    Some(Item::Bounce {
        tenant: tenant.to_string(),
        message_id,
        reason,
    })
}

impl Email {
    pub fn new(cfg: Arc<AdaptersConfig>, tenants: Arc<Tenants>) -> Self {
        Email { cfg, tenants }
    }

    fn message(&self, input: &Input<'_>) -> Item {
        let reject =
            |reason: String, tenant: Option<&str>| Item::reject("", reason, tenant, input.bytes);
        let Some(msg) = MessageParser::default().parse(input.bytes) else {
            return reject("not an e-mail message".into(), input.tenant);
        };
        let Some(from) = msg.from().and_then(|a| a.first()).and_then(|a| {
            a.address()
                .map(|x| (x.to_string(), a.name().map(str::to_string)))
        }) else {
            return reject("no From address".into(), input.tenant);
        };
        let Some(from_email) = normalize_email(&from.0) else {
            return reject(
                format!("From {:?} is not an e-mail address", clip(&from.0, 60)),
                input.tenant,
            );
        };
        let recipients: Vec<(String, Option<String>)> = msg
            .to()
            .into_iter()
            .chain(msg.cc())
            .flat_map(|a| a.iter())
            .filter_map(|a| {
                a.address()
                    .and_then(normalize_email)
                    .map(|e| (e, a.name().map(str::to_string)))
            })
            .collect();
        // The commune: the one the message arrived for, else the one it was addressed to.
        let tenant = match input.tenant {
            Some(t) => self.tenants.get(t).map(|t| t.code.clone()),
            None => self
                .tenants
                .iter()
                .find(|t| {
                    recipients
                        .iter()
                        .any(|(r, _)| self.cfg.is_commune_address(&t.code, r))
                        || self.cfg.is_commune_address(&t.code, &from_email)
                })
                .map(|t| t.code.clone()),
        };
        let Some(tenant) = tenant else {
            return reject(
                "no commune: the message was not delivered to a commune mailbox and no address of it is configured"
                    .into(),
                input.tenant,
            );
        };
        if let Some(bounce) = delivery_report(&msg, &tenant) {
            return bounce;
        }
        let outbound = self.cfg.is_commune_address(&tenant, &from_email);
        let (party_email, party_name, mailbox) = if outbound {
            let Some((to, name)) = recipients.first().cloned() else {
                return reject("outbound message without a recipient".into(), Some(&tenant));
            };
            (to, name, from_email.clone())
        } else {
            let mailbox = recipients
                .iter()
                .find(|(r, _)| self.cfg.is_commune_address(&tenant, r))
                .or(recipients.first())
                .map(|(r, _)| r.clone())
                .unwrap_or_default();
            (from_email.clone(), from.1.clone(), mailbox)
        };

        let sha = Sha256::digest(input.bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let message_id = msg
            .message_id()
            .map(|m| m.trim().trim_matches(['<', '>']).to_string())
            .filter(|m| !m.is_empty() && m.len() <= 250 && !m.contains(|c: char| c.is_control()))
            .unwrap_or_else(|| format!("sha256:{sha}"));
        let in_reply_to = first_id(msg.in_reply_to()).unwrap_or_default();
        let thread_id = first_id(msg.references())
            .or_else(|| (!in_reply_to.is_empty()).then(|| in_reply_to.clone()))
            .unwrap_or_else(|| message_id.clone());

        // The Date header, unless absent or absurd (then the time of receipt).
        let occurred_us = msg
            .date()
            .map(|d| d.to_timestamp().saturating_mul(1_000_000))
            .filter(|us| (631_152_000_000_000..=input.received_us + 3_600_000_000).contains(us))
            .unwrap_or(input.received_us);

        let mut text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
        if text.chars().count() > MAX_TEXT_CHARS {
            text =
                clip(&text, MAX_TEXT_CHARS) + "\n[…texte tronqué : le message complet est joint]";
        }
        let mut blobs = vec![Blob {
            name: "message.eml".into(),
            media_type: "message/rfc822".into(),
            source: BlobSource::Bytes(input.bytes.to_vec()),
        }];
        for (i, part) in msg.attachments().enumerate() {
            let media_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_default()
                .to_ascii_lowercase();
            blobs.push(Blob {
                name: part
                    .attachment_name()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("piece-{}", i + 1)),
                media_type,
                source: BlobSource::Bytes(part.contents().to_vec()),
            });
        }

        let payload = Payload::Email(pb::Email {
            message_id: message_id.clone(),
            in_reply_to,
            mailbox,
            thread_id,
        });
        let party = pb::Party {
            email: party_email,
            name: party_name.unwrap_or_default(),
            ..Default::default()
        };
        let mut event = contact(
            &tenant,
            SOURCE,
            &message_id,
            occurred_us,
            input.received_us,
            payload,
            party,
        );
        if outbound {
            event.direction = pb::Direction::Outbound as i32;
        }
        if let Some(p) = event.personal.as_mut() {
            p.subject = msg.subject().unwrap_or("").to_string();
            p.text = text;
        }
        crate::checked(&self.tenants, event, blobs, "", input.bytes)
    }
}

impl Adapter for Email {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        vec![self.message(input)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contact;
    use proptest::prelude::*;

    fn adapter() -> Email {
        let t = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml(
            "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie@ville-givors.fr\", \"@givors.fr\"]",
            &t,
        )
        .unwrap();
        Email::new(Arc::new(cfg), t)
    }

    fn parse(raw: &[u8], tenant: Option<&str>) -> Item {
        adapter()
            .parse(&Input {
                bytes: raw,
                origin: "test.eml",
                tenant,
                received_us: 1_800_000_000_000_000,
            })
            .remove(0)
    }

    fn contact(item: Item) -> Box<Contact> {
        match item {
            Item::Contact(c) => c,
            other => panic!("expected a contact, got {other:?}"),
        }
    }

    fn email(c: &Contact) -> &pb::Email {
        match c.event.payload.as_ref() {
            Some(Payload::Email(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn latin1_quoted_printable_mail_is_decoded() {
        let raw = b"From: =?ISO-8859-1?Q?Ren=E9e_Lef=E8vre?= <renee.lefevre@example.fr>\r\n\
To: Mairie de Givors <mairie@ville-givors.fr>\r\n\
Subject: =?ISO-8859-1?Q?Demande_d'acte_de_d=E9c=E8s?=\r\n\
Date: Mon, 02 Nov 2026 09:14:03 +0100\r\n\
Message-ID: <20261102091403.1234@example.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Bonjour,=0D=0AJe souhaiterais recevoir l'acte de d=E9c=E8s de mon p=E8re.=0D=0A=\r\n\
Cordialement\r\n";
        let c = contact(parse(raw, Some("69091")));
        let p = c.event.personal.as_ref().unwrap();
        assert_eq!(p.subject, "Demande d'acte de décès");
        assert!(p.text.contains("l'acte de décès de mon père"), "{}", p.text);
        let party = p.party.as_ref().unwrap();
        assert_eq!(
            (party.name.as_str(), party.email.as_str()),
            ("Renée Lefèvre", "renee.lefevre@example.fr")
        );
        let m = email(&c);
        assert_eq!(m.message_id, "20261102091403.1234@example.fr");
        assert_eq!(m.thread_id, m.message_id);
        assert_eq!(m.mailbox, "mairie@ville-givors.fr");
        assert_eq!(c.event.direction, pb::Direction::Inbound as i32);
        assert_eq!(c.blobs[0].source, BlobSource::Bytes(raw.to_vec()));
        assert_eq!(
            contacthub_core::event::fmt_us(
                contacthub_proto::ts::to_micros(c.event.occurred_at.as_ref().unwrap()).unwrap()
            ),
            "2026-11-02T08:14:03Z"
        );
    }

    #[test]
    fn windows_1252_base64_html_only_mail_becomes_text() {
        // "Réclamation : trottoir abîmé – rue Jean-Jaurès" with an en dash (0x96 in cp1252).
        let html = b"<html><body><p>Le trottoir est <b>ab\xeem\xe9</b> \x96 merci&nbsp;!</p></body></html>";
        let b64 = base64::engine::general_purpose::STANDARD.encode(html);
        let raw = format!(
            "From: jean@example.fr\r\nTo: mairie@ville-givors.fr\r\nSubject: =?windows-1252?B?{}?=\r\nMessage-ID: <r1@example.fr>\r\nIn-Reply-To: <a0@givors.fr>\r\nReferences: <q0@example.fr> <a0@givors.fr>\r\nContent-Type: text/html; charset=windows-1252\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n",
            base64::engine::general_purpose::STANDARD.encode(b"R\xe9clamation : trottoir ab\xeem\xe9 \x96 rue Jean-Jaur\xe8s")
        );
        use base64::Engine as _;
        let c = contact(parse(raw.as_bytes(), None));
        assert_eq!(c.event.tenant, "69091", "found from the commune address");
        let p = c.event.personal.as_ref().unwrap();
        assert_eq!(p.subject, "Réclamation : trottoir abîmé – rue Jean-Jaurès");
        assert!(
            p.text.contains("Le trottoir est abîmé – merci"),
            "{:?}",
            p.text
        );
        assert!(!p.text.contains('<'), "{:?}", p.text);
        let m = email(&c);
        assert_eq!(
            (m.in_reply_to.as_str(), m.thread_id.as_str()),
            ("a0@givors.fr", "q0@example.fr")
        );
        // No Date header: the time of receipt.
        assert_eq!(
            contacthub_proto::ts::to_micros(c.event.occurred_at.as_ref().unwrap()),
            Some(1_800_000_000_000_000)
        );
    }

    #[test]
    fn attachments_are_kept_and_outbound_mail_is_recognised() {
        let raw = b"From: Etat civil <etat-civil@givors.fr>\r\n\
To: \"Marie Durand\" <marie.durand@example.fr>\r\n\
Subject: Votre acte\r\n\
Message-ID: <a1@givors.fr>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Veuillez trouver l'acte ci-joint.\r\n\
--b\r\n\
Content-Type: application/pdf; name=\"acte.pdf\"\r\n\
Content-Disposition: attachment; filename=\"acte.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJSVFT0YK\r\n\
--b--\r\n";
        let c = contact(parse(raw, Some("69091")));
        assert_eq!(c.event.direction, pb::Direction::Outbound as i32);
        let party = c.event.personal.as_ref().unwrap().party.as_ref().unwrap();
        assert_eq!(
            (party.email.as_str(), party.name.as_str()),
            ("marie.durand@example.fr", "Marie Durand")
        );
        assert_eq!(email(&c).mailbox, "etat-civil@givors.fr");
        assert_eq!(c.blobs.len(), 2);
        assert_eq!(c.blobs[1].name, "acte.pdf");
        assert_eq!(c.blobs[1].media_type, "application/pdf");
        assert_eq!(
            c.blobs[1].source,
            BlobSource::Bytes(b"%PDF-1.4\n%%EOF\n".to_vec())
        );
    }

    #[test]
    fn messages_without_id_get_one_from_their_bytes_and_bad_ones_are_rejected() {
        let raw = b"From: a@example.fr\r\nTo: mairie@ville-givors.fr\r\nSubject: x\r\n\r\nbody\r\n";
        let a = contact(parse(raw, Some("69091")));
        assert!(email(&a).message_id.starts_with("sha256:"));
        assert_eq!(
            a.event.event_id,
            contact(parse(raw, Some("69091"))).event.event_id
        );
        for (raw, tenant, says) in [
            (
                &b"Subject: nobody\r\n\r\nhello"[..],
                Some("69091"),
                "no From address",
            ),
            (
                b"From: nobody\r\n\r\nhello",
                Some("69091"),
                "no From address",
            ),
            (
                b"From: a@example.fr\r\nTo: b@example.fr\r\n\r\nhello",
                None,
                "no commune",
            ),
            (
                b"From: mairie@ville-givors.fr\r\n\r\nhello",
                Some("69091"),
                "outbound message without a recipient",
            ),
        ] {
            match parse(raw, tenant) {
                Item::Rejected(r) => {
                    assert!(
                        r.reason.contains(says),
                        "{}: {}",
                        String::from_utf8_lossy(raw),
                        r.reason
                    );
                    assert_eq!(r.raw, raw);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = parse(&bytes, Some("69091"));
            let _ = parse(&bytes, None);
        }

        #[test]
        fn header_shaped_input_never_panics(from in "\\PC{0,40}", subject in "\\PC{0,40}", ct in "\\PC{0,40}", body in "\\PC{0,200}") {
            let raw = format!("From: {from}\r\nTo: mairie@ville-givors.fr\r\nSubject: {subject}\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{body}");
            let _ = parse(raw.as_bytes(), None);
        }
    }
}
