//! OVHcloud SMS, a French operator, as a commune's SMS gateway: its REST API, each call
//! signed with the application's secret and the consumer key (`X-Ovh-Signature: $1$` + the
//! SHA-1 of `AS+CK+METHOD+URL+BODY+TIMESTAMP`).
//! - What the hub sends (written answers, notices, codes): `POST {endpoint}/sms/{service}/jobs`
//!   with the commune's sender (« VILLEGIVORS », 11 characters at most); OVH adds its STOP
//!   clause. With `public_url` set, the job names a `callBack` URL carrying a token made from
//!   the application secret, where OVH reports the delivery (`id`, `dlr`: 1 delivered, 2 or
//!   16 not): a failure is a bounce.
//! - What the account receives: `GET /sms/{service}/incoming` (ids), then each
//!   `GET /sms/{service}/incoming/{id}` (`sender`, `message`, `creationDatetime`), read by the
//!   pure [`OvhIncoming`] adapter like the SMS webhook's (a « STOP » withdraws consent), then
//!   `DELETE`d from OVH once on the log.

use crate::config::{AdaptersConfig, OvhSmsSettings};
use crate::ingest::Ingest;
use crate::outbound::Delivery;
use crate::{clip, Adapter, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::normalize_phone;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use sha1::{Digest, Sha1};
use std::sync::Arc;
use std::time::Duration;

/// The `source` of the SMS read from OVH.
pub const SOURCE: &str = "ovh-sms";

/// The token OVH's delivery reports for commune `tenant` carry (`?t=`): 32 hex digits of an
/// HMAC-SHA256 of the commune with the application secret, so nothing else needs sharing.
pub fn callback_token(application_secret: &str, tenant: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(application_secret.as_bytes())
        .expect("HMAC takes any key");
    mac.update(format!("contacthub ovh callback {tenant}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a delivery report (`dlr`) says: `Some(reason)` when the SMS was not delivered.
pub fn undelivered(dlr: &str, description: &str) -> Option<String> {
    match dlr.trim() {
        "2" | "16" => Some(if description.trim().is_empty() {
            format!("SMS non remis (OVHcloud, code {})", dlr.trim())
        } else {
            format!(
                "SMS non remis (OVHcloud : {})",
                clip(description.trim(), 100)
            )
        }),
        _ => None,
    }
}

/// The `X-Ovh-Signature` of a call.
pub fn signature(
    application_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &str,
    timestamp: i64,
) -> String {
    let mut h = Sha1::new();
    h.update(
        format!("{application_secret}+{consumer_key}+{method}+{url}+{body}+{timestamp}").as_bytes(),
    );
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("$1${hex}")
}

/// OVH's answer to a job.
#[derive(serde::Deserialize)]
struct Job {
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default, rename = "invalidReceivers")]
    invalid_receivers: Vec<String>,
}

/// A commune's OVHcloud SMS account.
pub(crate) struct Ovh {
    pub(crate) http: reqwest::Client,
    pub(crate) settings: OvhSmsSettings,
    /// Where OVH reports deliveries (with its token), when the hub's `public_url` is known.
    pub(crate) callback: Option<String>,
}

impl Ovh {
    /// A call to `path` (after the endpoint), signed at unix time `now_s`.
    fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &str,
        now_s: i64,
    ) -> reqwest::RequestBuilder {
        let s = &self.settings;
        let url = format!("{}{path}", s.endpoint.trim_end_matches('/'));
        let sig = signature(
            &s.application_secret,
            &s.consumer_key,
            method.as_str(),
            &url,
            body,
            now_s,
        );
        let mut call = self
            .http
            .request(method, &url)
            .header("X-Ovh-Application", &s.application_key)
            .header("X-Ovh-Consumer", &s.consumer_key)
            .header("X-Ovh-Timestamp", now_s.to_string())
            .header("X-Ovh-Signature", sig);
        if !body.is_empty() {
            call = call
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        call
    }

    /// Sends `a`'s text to its recipient, at unix time `now_s`.
    pub(crate) async fn send(&self, a: &pb::Answer, now_s: i64) -> Delivery {
        let s = &self.settings;
        let gsm = contacthub_core::outbound::is_gsm7(&a.text);
        let mut body = serde_json::json!({
            "charset": "UTF-8",
            "coding": if gsm { "7bit" } else { "8bit" },
            "message": a.text,
            "noStopClause": false,
            "priority": "high",
            "receivers": [a.recipient],
            "sender": s.sender,
            "senderForResponse": false,
            "validityPeriod": 2880,
            // OVH takes 20 characters at most.
            "tag": a.answer_event_id.chars().take(20).collect::<String>(),
        });
        if let Some(url) = &self.callback {
            body["callBack"] = serde_json::Value::String(url.clone());
        }
        let path = format!("/sms/{}/jobs", s.service_name);
        let sent = self
            .signed(reqwest::Method::POST, &path, &body.to_string(), now_s)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Delivery::Failed {
                    permanent: false,
                    reason: format!("OVHcloud SMS injoignable : {e}"),
                }
            }
        };
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return match serde_json::from_slice::<Job>(&bytes) {
                Ok(j) if !j.ids.is_empty() && j.invalid_receivers.is_empty() => Delivery::Sent {
                    message_id: format!("ovh-{}", j.ids[0]),
                    segments: contacthub_core::outbound::sms_segments(&a.text),
                    pdf_sha256: String::new(),
                },
                Ok(_) => Delivery::Failed {
                    permanent: true,
                    reason: "OVHcloud SMS : numéro refusé".into(),
                },
                Err(_) => Delivery::Failed {
                    permanent: false,
                    reason: format!("OVHcloud SMS : réponse {status} illisible"),
                },
            };
        }
        // 4xx but 429: the call itself is wrong (credentials, a number OVH refuses).
        Delivery::Failed {
            permanent: status.is_client_error() && status.as_u16() != 429,
            reason: format!("OVHcloud SMS : {status}"),
        }
    }
}

/// An SMS the account received, as `GET /sms/{service}/incoming/{id}` gives it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    id: i64,
    sender: String,
    #[serde(default)]
    message: String,
    creation_datetime: Option<String>,
}

/// The SMS an OVHcloud account received: an inbound SMS of the commune, like the webhook's.
#[derive(Debug, Clone)]
pub struct OvhIncoming {
    tenants: Arc<Tenants>,
    cfg: Arc<AdaptersConfig>,
}

impl OvhIncoming {
    pub fn new(cfg: Arc<AdaptersConfig>, tenants: Arc<Tenants>) -> Self {
        OvhIncoming { tenants, cfg }
    }

    fn message(&self, input: &Input<'_>) -> Item {
        let reject = |reason: String| Item::reject("", reason, input.tenant, input.bytes);
        let Some(tenant) = input.tenant.and_then(|t| self.tenants.get(t)) else {
            return reject("no commune for this SMS".into());
        };
        let m: Incoming = match serde_json::from_slice(input.bytes) {
            Ok(m) => m,
            Err(e) => return reject(format!("not an OVHcloud incoming SMS: {e}")),
        };
        let Some(phone) = normalize_phone(&m.sender) else {
            return reject(format!(
                "sender {:?} is not a phone number",
                clip(&m.sender, 30)
            ));
        };
        let at = match m.creation_datetime.as_deref() {
            None => input.received_us,
            Some(t) => match crate::publik::time_us(t) {
                Some(us) => us,
                None => return reject(format!("creationDatetime {:?} is not a date", clip(t, 40))),
            },
        };
        let account = self
            .cfg
            .commune(&tenant.code)
            .and_then(|c| c.ovh_sms.as_ref())
            .map(|o| o.service_name.clone())
            .unwrap_or_default();
        let sid = format!("ovh-in-{}", m.id);
        let payload = Payload::Sms(pb::Sms {
            message_sid: sid.clone(),
            segments: contacthub_core::outbound::sms_segments(&m.message)
                .min(contacthub_core::limits::SMS_SEGMENTS),
            commune_number: account,
        });
        let party = pb::Party {
            phone,
            ..Default::default()
        };
        let mut event = contact(
            &tenant.code,
            SOURCE,
            &sid,
            at,
            input.received_us,
            payload,
            party,
        );
        if let Some(p) = event.personal.as_mut() {
            p.text = m.message;
        }
        crate::checked(&self.tenants, event, Vec::new(), "", input.bytes)
    }
}

impl Adapter for OvhIncoming {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        vec![self.message(input)]
    }
}

/// Reads the SMS each commune's OVHcloud account receives (`incoming_poll_seconds`) until
/// `stop`.
pub async fn run(
    ingest: Ingest,
    adapter: OvhIncoming,
    cfg: Arc<AdaptersConfig>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tasks = Vec::new();
    for c in &cfg.communes {
        let Some((o, every)) = c
            .ovh_sms
            .as_ref()
            .and_then(|o| o.incoming_poll_seconds.map(|s| (o, s)))
        else {
            continue;
        };
        let account = Ovh {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            settings: o.clone(),
            callback: None,
        };
        let (ingest, adapter, tenant, mut stop) = (
            ingest.clone(),
            adapter.clone(),
            c.code.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                match account.receive(&ingest, &adapter, &tenant).await {
                    Ok(0) => ingest.connector(SOURCE, &tenant, None),
                    Ok(_) => {
                        ingest.connector(SOURCE, &tenant, Some("des SMS reçus n'ont pu être pris"))
                    }
                    Err(e) => {
                        tracing::warn!(tenant, error = %e, "reading OVHcloud's incoming SMS");
                        ingest.connector(
                            SOURCE,
                            &tenant,
                            Some("OVHcloud SMS injoignable ou en erreur"),
                        );
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(u64::from(every))) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

impl Ovh {
    /// Takes every SMS waiting on the account, oldest first (a START after its STOP): read,
    /// on the log, then deleted from OVH. One that fails is tried again next time, the
    /// others go on; one OVH no longer has is done. How many failed.
    async fn receive(
        &self,
        ingest: &Ingest,
        adapter: &OvhIncoming,
        tenant: &str,
    ) -> Result<usize, String> {
        let service = &self.settings.service_name;
        let now = || chrono::Utc::now().timestamp();
        let mut ids: Vec<i64> = self
            .signed(
                reqwest::Method::GET,
                &format!("/sms/{service}/incoming"),
                "",
                now(),
            )
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        ids.sort_unstable();
        let mut failed = 0;
        for id in &ids {
            if let Err(e) = self.take(ingest, adapter, tenant, *id, &now).await {
                tracing::warn!(tenant, id, error = %e, "an SMS received on OVHcloud not taken yet");
                failed += 1;
            }
        }
        Ok(failed)
    }

    async fn take(
        &self,
        ingest: &Ingest,
        adapter: &OvhIncoming,
        tenant: &str,
        id: i64,
        now: &impl Fn() -> i64,
    ) -> Result<(), String> {
        let path = format!("/sms/{}/incoming/{id}", self.settings.service_name);
        let got = self
            .signed(reqwest::Method::GET, &path, "", now())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if got.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        let bytes = got
            .error_for_status()
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        let origin = format!("ovh incoming {id}");
        ingest
            .run_read(adapter, &bytes, &origin, tenant)
            .await
            .map_err(|e| e.to_string())?;
        // On the log (or in the quarantine): OVH may forget it.
        let deleted = self
            .signed(reqwest::Method::DELETE, &path, "", now())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if deleted.status().is_success() || deleted.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(format!("deleting it: HTTP {}", deleted.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incoming_sms_is_an_inbound_sms_of_the_commune() {
        let t = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml("[[commune]]\ncode = \"69091\"\n[commune.ovh_sms]\nservice_name = \"sms-gv12345-1\"\napplication_key = \"AK\"\napplication_secret = \"AS\"\nconsumer_key = \"CK\"\nsender = \"VILLEGIVORS\"\n", &t).unwrap();
        let a = OvhIncoming::new(Arc::new(cfg), t);
        let body = br#"{"id": 987, "creationDatetime": "2026-12-03T10:00:00+01:00", "credits": 0, "message": "STOP", "sender": "+33612345678", "tag": ""}"#;
        let items = a.parse(&Input {
            bytes: body,
            origin: "t",
            tenant: Some("69091"),
            received_us: 1_796_300_000_000_000,
        });
        let Item::Contact(c) = &items[0] else {
            panic!("{items:?}")
        };
        let Some(Payload::Sms(m)) = &c.event.payload else {
            panic!()
        };
        assert_eq!(
            (m.message_sid.as_str(), m.commune_number.as_str()),
            ("ovh-in-987", "sms-gv12345-1")
        );
        assert_eq!(c.event.direction, pb::Direction::Inbound as i32);
        assert_eq!(c.event.personal.as_ref().unwrap().text, "STOP");
        let bad = a.parse(&Input {
            bytes: br#"{"id": 1, "sender": "moi"}"#,
            origin: "t",
            tenant: Some("69091"),
            received_us: 0,
        });
        assert!(matches!(&bad[0], Item::Rejected(r) if r.reason.contains("not a phone number")));
        assert_eq!(undelivered("1", ""), None);
        assert_eq!(
            undelivered("16", "Numéro inconnu").as_deref(),
            Some("SMS non remis (OVHcloud : Numéro inconnu)")
        );
        assert_eq!(callback_token("AS", "69091").len(), 32);
        assert_ne!(callback_token("AS", "69091"), callback_token("AS", "69096"));
    }

    /// The signature of OVH's documented example shape: `$1$` + 40 hex digits of SHA-1 over
    /// the six parts joined with `+`.
    #[test]
    fn a_call_is_signed_as_ovh_checks_it() {
        let sig = signature(
            "AS",
            "CK",
            "GET",
            "https://eu.api.ovh.com/1.0/sms/",
            "",
            1_700_000_000,
        );
        let mut h = Sha1::new();
        h.update(b"AS+CK+GET+https://eu.api.ovh.com/1.0/sms/++1700000000");
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sig, format!("$1${hex}"));
        assert_eq!(sig.len(), 43);
    }
}
