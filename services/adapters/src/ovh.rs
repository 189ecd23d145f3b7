//! OVHcloud SMS, a French operator, as a commune's SMS gateway for what the hub sends (written
//! answers, notices, codes): its REST API (`POST {endpoint}/sms/{service}/jobs`), each call
//! signed with the application's secret and the consumer key (`X-Ovh-Signature: $1$` + the
//! SHA-1 of `AS+CK+METHOD+URL+BODY+TIMESTAMP`). The sender is the commune's (« VILLEGIVORS »,
//! 11 characters at most); OVH adds its STOP clause and keeps the numbers that answered it.

use crate::config::OvhSmsSettings;
use crate::outbound::Delivery;
use contacthub_core::pb;
use sha1::{Digest, Sha1};

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
}

impl Ovh {
    /// Sends `a`'s text to its recipient, at unix time `now_s`.
    pub(crate) async fn send(&self, a: &pb::Answer, now_s: i64) -> Delivery {
        let s = &self.settings;
        let url = format!(
            "{}/sms/{}/jobs",
            s.endpoint.trim_end_matches('/'),
            s.service_name
        );
        let gsm = contacthub_core::outbound::is_gsm7(&a.text);
        let body = serde_json::json!({
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
        })
        .to_string();
        let sent = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Ovh-Application", &s.application_key)
            .header("X-Ovh-Consumer", &s.consumer_key)
            .header("X-Ovh-Timestamp", now_s.to_string())
            .header(
                "X-Ovh-Signature",
                signature(
                    &s.application_secret,
                    &s.consumer_key,
                    "POST",
                    &url,
                    &body,
                    now_s,
                ),
            )
            .body(body)
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

#[cfg(test)]
mod tests {
    use super::*;

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
