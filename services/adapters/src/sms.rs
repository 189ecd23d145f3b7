//! SMS: the form-encoded webhook SMS gateways post (Twilio's shape, which most gateways
//! copy): `MessageSid`, `From`, `To`, `Body`, `NumSegments`, `NumMedia`, `MediaUrl0`…
//! A message from one of the commune's numbers is outbound (the gateway's status callback
//! for a message the commune sent); anything else is inbound.

use crate::{clip, Adapter, Blob, BlobSource, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::normalize_phone;
use contacthub_core::outbound::sms_segments;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use std::sync::Arc;

/// The `source` of SMS events.
pub const SOURCE: &str = "sms";

/// The SMS adapter.
#[derive(Debug, Clone)]
pub struct SmsWebhook {
    tenants: Arc<Tenants>,
}

impl SmsWebhook {
    pub fn new(tenants: Arc<Tenants>) -> Self {
        SmsWebhook { tenants }
    }
}

impl Adapter for SmsWebhook {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        vec![self.message(input)]
    }
}

impl SmsWebhook {
    fn message(&self, input: &Input<'_>) -> Item {
        let reject = |reason: String| Item::reject("", reason, input.tenant, input.bytes);
        let Some(tenant) = input.tenant.and_then(|t| self.tenants.get(t)) else {
            return reject("no commune: post SMS to /v1/{commune}/sms".into());
        };
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(input.bytes) {
            params.push((k.into_owned(), v.into_owned()));
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let sid = ["MessageSid", "SmsMessageSid", "SmsSid"]
            .iter()
            .find_map(|k| get(k))
            .unwrap_or("")
            .trim();
        if sid.is_empty() {
            return reject(if params.is_empty() {
                "not a form-encoded SMS webhook (no fields)".into()
            } else {
                "missing MessageSid".into()
            });
        }
        if sid.len() > 128 || sid.contains(|c: char| c.is_control()) {
            return reject(format!("MessageSid {:?} is not an id", clip(sid, 40)));
        }
        let (Some(from), Some(to)) = (get("From"), get("To")) else {
            return reject("missing From or To".into());
        };
        let outbound = normalize_phone(from).is_some_and(|n| tenant.numbers.contains(&n));
        let (party_phone, commune_number) = if outbound { (to, from) } else { (from, to) };
        let Some(party_e164) = normalize_phone(party_phone) else {
            return reject(format!(
                "{} {:?} is not a phone number",
                if outbound { "To" } else { "From" },
                clip(party_phone, 30)
            ));
        };
        let body = get("Body").unwrap_or("");
        let counted = get("NumSegments").and_then(|n| n.trim().parse::<u32>().ok());
        let payload = Payload::Sms(pb::Sms {
            message_sid: sid.to_string(),
            segments: counted
                .unwrap_or_else(|| sms_segments(body))
                .min(contacthub_core::limits::SMS_SEGMENTS),
            commune_number: normalize_phone(commune_number)
                .unwrap_or_else(|| commune_number.to_string()),
        });
        let party = pb::Party {
            phone: party_e164,
            ..Default::default()
        };
        let mut event = contact(
            &tenant.code,
            SOURCE,
            sid,
            input.received_us,
            input.received_us,
            payload,
            party,
        );
        if outbound {
            event.direction = pb::Direction::Outbound as i32;
        }
        let media = get("NumMedia")
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut blobs = Vec::new();
        for i in 0..media.min(10) {
            if let Some(url) = get(&format!("MediaUrl{i}")) {
                blobs.push(Blob {
                    name: format!("mms-{i}"),
                    media_type: get(&format!("MediaContentType{i}"))
                        .unwrap_or("")
                        .to_string(),
                    source: BlobSource::Url(url.to_string()),
                });
            }
        }
        if let Some(p) = event.personal.as_mut() {
            p.text = body.to_string();
        }
        crate::checked(&self.tenants, event, blobs, "", input.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(body: &str, tenant: Option<&str>) -> Item {
        SmsWebhook::new(Arc::new(Tenants::builtin()))
            .parse(&Input {
                bytes: body.as_bytes(),
                origin: "/v1/69091/sms",
                tenant,
                received_us: 1_800_000_000_000_000,
            })
            .remove(0)
    }

    fn encode(pairs: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    #[test]
    fn an_inbound_sms_keeps_accents_emoji_and_long_text() {
        let text = "Bonjour, ma fille est inscrite à l'école Jules-Ferry 🏫 : la cantine du mercredi est-elle ouverte pendant les vacances de février ? Merci d'avance — Mme Durand 😊";
        let body = encode(&[
            ("ToCountry", "FR"),
            ("SmsMessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("NumMedia", "0"),
            ("From", "+33612345678"),
            ("To", "+33472491818"),
            ("Body", text),
            ("NumSegments", "3"),
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("AccountSid", "ACxxxxxxxx"),
            ("ApiVersion", "2010-04-01"),
        ]);
        let Item::Contact(c) = parse(&body, Some("69091")) else {
            panic!()
        };
        assert_eq!(c.event.direction, pb::Direction::Inbound as i32);
        let p = c.event.personal.as_ref().unwrap();
        assert_eq!(p.text, text);
        assert_eq!(p.party.as_ref().unwrap().phone, "+33612345678");
        let Some(Payload::Sms(s)) = &c.event.payload else {
            panic!()
        };
        assert_eq!(s.segments, 3);
        assert_eq!(s.commune_number, "+33472491818");
        assert_eq!(
            c.event.event_id,
            contacthub_core::event::event_id("69091", SOURCE, "SM0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn a_status_callback_from_the_commune_number_is_outbound() {
        let body = encode(&[
            ("MessageSid", "SMout1"),
            ("MessageStatus", "delivered"),
            ("From", "04 72 49 18 18"),
            ("To", "+33612345678"),
        ]);
        let Item::Contact(c) = parse(&body, Some("69091")) else {
            panic!()
        };
        assert_eq!(c.event.direction, pb::Direction::Outbound as i32);
        assert_eq!(
            c.event.personal.unwrap().party.unwrap().phone,
            "+33612345678"
        );
    }

    #[test]
    fn bad_webhooks_say_what_is_wrong() {
        for (body, tenant, says) in [
            (
                "From=%2B33612345678&To=x&Body=hi",
                Some("69091"),
                "missing MessageSid",
            ),
            ("", Some("69091"), "not a form-encoded SMS webhook"),
            ("{\"json\": true}", Some("69091"), "missing MessageSid"),
            (
                "MessageSid=SM1&Body=hi",
                Some("69091"),
                "missing From or To",
            ),
            (
                "MessageSid=SM1&From=anonymous&To=%2B33472491818",
                Some("69091"),
                "From \"anonymous\" is not a phone number",
            ),
            (
                "MessageSid=SM1&From=%2B33612345678&To=x",
                None,
                "no commune",
            ),
        ] {
            match parse(body, tenant) {
                Item::Rejected(r) => {
                    assert!(r.reason.contains(says), "{body}: {}", r.reason);
                    assert_eq!(r.raw, body.as_bytes());
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), tenant in proptest::option::of("69091|x")) {
            let _ = SmsWebhook::new(Arc::new(Tenants::builtin())).parse(&Input { bytes: &bytes, origin: "x", tenant: tenant.as_deref(), received_us: 1_800_000_000_000_000 });
        }

        #[test]
        fn any_text_survives_the_webhook(text in "\\PC{0,400}") {
            let body = encode(&[("MessageSid", "SM1"), ("From", "+33612345678"), ("To", "+33472491818"), ("Body", &text)]);
            match parse(&body, Some("69091")) {
                Item::Contact(c) => prop_assert_eq!(&c.event.personal.as_ref().unwrap().text, &text),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
