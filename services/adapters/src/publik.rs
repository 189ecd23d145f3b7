//! Publik (w.c.s., Entr'ouvert's portal): the form data its workflow's « appel de webservice »
//! posts as JSON, each time a form is submitted or changes status, to a URL it signs with the
//! key shared with the hub. One form (its `url`) is one file: its first post opens a request
//! (`WebForm.thread_id`), the next ones — its status changes — join it. Pure: the signature
//! is checked by [`check_signed_query`], the JSON read by [`Publik`]'s `parse`.

use crate::config::AdaptersConfig;
use crate::{clip, Adapter, Blob, BlobSource, Input, Item};
use base64::Engine;
use contacthub_core::event::contact;
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The `source` of Publik's events.
pub const SOURCE: &str = "publik";

/// Checks a Publik signed query string (`…&algo=sha256&timestamp=2026-12-03T09:14:03Z&nonce=…
/// &orig=…&signature=BASE64`): the signature is the HMAC, keyed with `key`, of everything
/// before `&signature=`, with the algorithm named (sha256, sha1); `orig` is the portal's;
/// the timestamp (UTC) within `tolerance_s` of `now_s`. The nonce, for the caller to refuse
/// it a second time; or what is wrong.
pub fn check_signed_query(
    query: &str,
    key: &str,
    orig: &str,
    now_s: i64,
    tolerance_s: u32,
) -> Result<String, String> {
    let Some((unsigned, signature)) = query.rsplit_once("&signature=") else {
        return Err("no signature in the URL".into());
    };
    // The signature ends the URL: nothing unsigned after it.
    if signature.contains('&') {
        return Err("parameters after the signature".into());
    }
    let mut algo = None;
    let mut timestamp = None;
    let mut nonce = None;
    let mut origin = None;
    for (k, v) in form_urlencoded::parse(unsigned.as_bytes()) {
        let slot = match k.as_ref() {
            "algo" => &mut algo,
            "timestamp" => &mut timestamp,
            "nonce" => &mut nonce,
            "orig" => &mut origin,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(format!("{k} given twice"));
        }
    }
    let (Some(algo), Some(timestamp), Some(nonce)) = (algo, timestamp, nonce) else {
        return Err("algo, timestamp and nonce are required".into());
    };
    if origin.as_deref() != Some(orig) {
        return Err("orig is not this commune's portal".into());
    }
    if nonce.is_empty() || nonce.len() > 64 {
        return Err("nonce is not a nonce".into());
    }
    let at = chrono::NaiveDateTime::parse_from_str(&timestamp, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|_| "timestamp is not YYYY-MM-DDTHH:MM:SSZ".to_string())?
        .and_utc()
        .timestamp();
    if now_s.abs_diff(at) > u64::from(tolerance_s) {
        return Err("timestamp too far from now (replayed or clock off)".into());
    }
    let given = form_urlencoded::parse(format!("s={signature}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let given = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| "signature is not base64".to_string())?;
    let Some(expected) = hmac_of(&algo, key, unsigned) else {
        return Err(format!("algorithm {:?} is not supported", clip(&algo, 20)));
    };
    if bool::from(expected.ct_eq(&given)) {
        Ok(nonce)
    } else {
        Err("signature does not match".into())
    }
}

/// The HMAC of `text` keyed with `key` with the algorithm Publik names, if it is one the
/// hub knows.
fn hmac_of(algo: &str, key: &str, text: &str) -> Option<Vec<u8>> {
    Some(match algo {
        "sha256" => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).ok()?;
            mac.update(text.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "sha1" => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).ok()?;
            mac.update(text.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => return None,
    })
}

/// A form's data as w.c.s. exports it (the members the hub reads; others are ignored).
#[derive(Debug, Deserialize)]
struct FormData {
    /// The form's address on the portal: `https://…/<form slug>/<number>/`.
    url: String,
    display_id: String,
    display_name: Option<String>,
    receipt_time: Option<String>,
    last_update_time: Option<String>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    fields: serde_json::Map<String, Value>,
    #[serde(default)]
    workflow: Option<Workflow>,
    /// Where the form points on its map (`{"base": {"lat": …, "lon": …}}`).
    #[serde(default)]
    geolocations: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct User {
    name: Option<String>,
    email: Option<String>,
    /// Publik's single sign-on identifiers of the person.
    #[serde(rename = "NameID", default)]
    name_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Workflow {
    status: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Status {
    id: String,
    name: Option<String>,
}

/// A w.c.s. time: with its offset (`…+01:00`, `…Z`), or as the portal writes local time
/// (`2026-12-03T10:14:03`, Paris).
pub(crate) fn time_us(text: &str) -> Option<i64> {
    let t = text.trim();
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(contacthub_core::courrier::paris_local_to_utc_us)
        })
}

/// The form slug of a form's URL: the segment before its number.
fn slug_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let segments: Vec<&str> = u.path_segments()?.filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., slug, number] if number.bytes().all(|b| b.is_ascii_digit()) => Some(slug.to_string()),
        _ => None,
    }
}

/// The Publik adapter.
#[derive(Debug, Clone)]
pub struct Publik {
    cfg: Arc<AdaptersConfig>,
    tenants: Arc<Tenants>,
}

impl Publik {
    pub fn new(cfg: Arc<AdaptersConfig>, tenants: Arc<Tenants>) -> Self {
        Publik { cfg, tenants }
    }

    fn form(&self, input: &Input<'_>) -> Item {
        let reject = |reason: String| Item::reject("", reason, input.tenant, input.bytes);
        let Some(tenant) = input.tenant.and_then(|t| self.tenants.get(t)) else {
            return reject("no commune: post to /v1/{commune}/publik".into());
        };
        let f: FormData = match serde_json::from_slice(input.bytes) {
            Ok(f) => f,
            Err(e) => return reject(format!("not w.c.s. form data: {e}")),
        };
        if f.url.trim().chars().count() > 200 {
            return reject("url is over 200 characters".into());
        }
        let Some(slug) = slug_of(&f.url) else {
            return reject(format!(
                "url {:?} is not a form's address (https://…/<form>/<number>/)",
                clip(&f.url, 80)
            ));
        };
        let display_id = f.display_id.trim();
        if display_id.is_empty()
            || display_id.len() > 64
            || display_id.contains(|c: char| c.is_control() || c == '/')
        {
            return reject(format!(
                "display_id {:?} is not an id",
                clip(display_id, 40)
            ));
        }
        let status = f.workflow.and_then(|w| w.status);
        let (status_id, status_name) = match &status {
            Some(s) => (
                s.id.trim().to_string(),
                s.name.clone().unwrap_or_else(|| s.id.clone()),
            ),
            None => (String::new(), String::new()),
        };
        let updated = f.last_update_time.clone().or(f.receipt_time.clone());
        let occurred_us = match updated.as_deref().map(time_us) {
            None => input.received_us,
            Some(Some(us)) => us,
            Some(None) => {
                return reject(format!(
                    "last_update_time {:?} is not a date",
                    clip(updated.as_deref().unwrap_or_default(), 40)
                ))
            }
        };
        let user = f.user.unwrap_or_default();
        let mut fields = Vec::new();
        let mut blobs = Vec::new();
        let mut phone = String::new();
        for (name, value) in &f.fields {
            match value {
                Value::Null => {}
                // A file field: its name, type and content (or where to fetch it).
                Value::Object(o) if o.contains_key("filename") => {
                    let file = o
                        .get("filename")
                        .and_then(Value::as_str)
                        .unwrap_or("piece")
                        .to_string();
                    let media_type = o
                        .get("content_type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    // Its content when given, else where to fetch it.
                    let content = o.get("content").and_then(Value::as_str);
                    let url = o
                        .get("url")
                        .and_then(Value::as_str)
                        .filter(|_| content.is_none());
                    let source = match crate::blob_source(content, url) {
                        Ok(source) => source,
                        Err(why) => {
                            return reject(format!("field {:?}: its file {why}", clip(name, 40)))
                        }
                    };
                    blobs.push(Blob {
                        name: file,
                        media_type,
                        source,
                    });
                }
                other => {
                    let text = match other {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(", "),
                        v => v.to_string(),
                    };
                    // A field the portal names as a phone number is the person's.
                    if phone.is_empty()
                        && (name.contains("telephone") || name.contains("phone") || name == "tel")
                    {
                        phone = normalize_phone(&text).unwrap_or_default();
                    }
                    fields.push(pb::Field {
                        name: name.clone(),
                        value: text,
                    });
                }
            }
        }
        if !status_name.is_empty() {
            fields.push(pb::Field {
                name: "Statut sur le portail".into(),
                value: status_name.clone(),
            });
        }
        // The place its map points at (a street report): kept with the form.
        if let Some(Value::Object(at)) = f.geolocations.get("base") {
            for (key, label) in [("lat", "Latitude"), ("lon", "Longitude")] {
                if let Some(x) = at
                    .get(key)
                    .and_then(Value::as_f64)
                    .filter(|x| x.is_finite())
                {
                    fields.push(pb::Field {
                        name: label.into(),
                        value: format!("{x:.6}"),
                    });
                }
            }
        }
        if let Some(id) = user.name_ids.first() {
            fields.push(pb::Field {
                name: "Identifiant Publik (NameID)".into(),
                value: id.clone(),
            });
        }
        let mut party = pb::Party {
            name: user.name.clone().unwrap_or_default().trim().to_string(),
            email: user.email.as_deref().map_or_else(String::new, |m| {
                normalize_email(m).unwrap_or_else(|| m.to_string())
            }),
            phone,
            ..Default::default()
        };
        // An anonymous form (no account, nothing to answer to): a record of its own.
        if party.name.is_empty() && party.email.is_empty() && party.phone.is_empty() {
            party.name = format!("Déposant anonyme du formulaire {display_id}");
        }
        let submission = format!(
            "{slug}/{display_id}/{status_id}/{}",
            updated.as_deref().unwrap_or_default().trim()
        );
        let payload = Payload::WebForm(pb::WebForm {
            form_slug: slug.clone(),
            submission_id: clip(&submission, 128),
            signed_in: false,
            thread_id: format!("publik:{}", f.url.trim()),
        });
        let mut event = contact(
            &tenant.code,
            SOURCE,
            &submission,
            occurred_us,
            input.received_us,
            payload,
            party,
        );
        event.category = self.cfg.form_category(&tenant.code, &slug) as i32;
        let (fields, clipped) = crate::web_form::fit_fields(fields);
        if clipped {
            blobs.push(Blob {
                name: "formulaire-complet.json".into(),
                media_type: "application/json".into(),
                source: BlobSource::Bytes(input.bytes.to_vec()),
            });
        }
        if let Some(p) = event.personal.as_mut() {
            p.subject = clip(
                f.display_name.as_deref().unwrap_or(display_id).trim(),
                contacthub_core::limits::LABEL_CHARS,
            );
            if !status_name.is_empty() {
                p.text = format!("Statut : {status_name}");
            }
            p.fields = fields;
        }
        crate::checked(&self.tenants, event, blobs, "", input.bytes)
    }
}

impl Adapter for Publik {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        vec![self.form(input)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query signed as w.c.s. signs it (`sign_query`: algo, timestamp, nonce, orig, then
    /// the base64 HMAC quoted).
    fn signed(key: &str, orig: &str, timestamp: &str, nonce: &str) -> String {
        let unsigned = format!("algo=sha256&timestamp={timestamp}&nonce={nonce}&orig={orig}");
        let sig = base64::engine::general_purpose::STANDARD
            .encode(hmac_of("sha256", key, &unsigned).unwrap());
        let quoted: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        format!("{unsigned}&signature={quoted}")
    }

    #[test]
    fn a_signed_query_is_checked_as_publik_signs_it() {
        let key = "une-cle-partagee-assez-longue";
        let now = chrono::NaiveDateTime::parse_from_str("2026-12-03T09:14:03", "%Y-%m-%dT%H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp();
        let q = signed(key, "publik-givors", "2026-12-03T09:14:03Z", "a1b2c3");
        assert_eq!(
            check_signed_query(&q, key, "publik-givors", now, 60),
            Ok("a1b2c3".into())
        );
        assert!(
            check_signed_query(&q, "une-autre-cle-assez-longue", "publik-givors", now, 60).is_err()
        );
        assert!(check_signed_query(&q, key, "publik-grigny", now, 60).is_err());
        assert!(check_signed_query(&q, key, "publik-givors", now + 3600, 60)
            .unwrap_err()
            .contains("timestamp"));
        let tampered = q.replace("nonce=a1b2c3", "nonce=a1b2c4");
        assert!(check_signed_query(&tampered, key, "publik-givors", now, 60).is_err());
        assert!(check_signed_query("algo=sha256", key, "publik-givors", now, 60).is_err());
    }

    #[test]
    fn a_form_is_a_file_of_the_portal() {
        let t = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml("[[commune]]\ncode = \"69091\"\n", &t).unwrap();
        let p = Publik::new(Arc::new(cfg), t);
        let body = serde_json::json!({
            "url": "https://demarches.ville-givors.fr/signalement-voirie/12/",
            "display_id": "15-12",
            "display_name": "Signalement voirie - n°15-12",
            "receipt_time": "2026-12-03T10:14:03+01:00",
            "last_update_time": "2026-12-03T10:14:03+01:00",
            "user": {"name": "Marie Durand", "email": "Marie.Durand@Example.org", "NameID": ["a1b2"]},
            "fields": {"telephone": "06 12 34 56 78", "description": "Nid de poule", "photo": {"filename": "trou.jpg", "content_type": "image/jpeg", "content": "aGVsbG8="}},
            "workflow": {"status": {"id": "new", "name": "Nouveau"}},
            "geolocations": {"base": {"lat": 45.5906, "lon": 4.7713}}
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let items = p.parse(&Input {
            bytes: &bytes,
            origin: "/v1/69091/publik",
            tenant: Some("69091"),
            received_us: 1_796_300_000_000_000,
        });
        let Item::Contact(c) = &items[0] else {
            panic!("{items:?}")
        };
        let Some(Payload::WebForm(w)) = &c.event.payload else {
            panic!()
        };
        assert_eq!(w.form_slug, "signalement-voirie");
        assert_eq!(
            w.thread_id,
            "publik:https://demarches.ville-givors.fr/signalement-voirie/12/"
        );
        assert_eq!(c.event.category, pb::Category::ServicesTechniques as i32);
        let party = c.event.personal.as_ref().unwrap().party.clone().unwrap();
        assert_eq!(party.email, "marie.durand@example.org");
        assert_eq!(party.phone, "+33612345678");
        assert_eq!(c.blobs.len(), 1);
        let fields = &c.event.personal.as_ref().unwrap().fields;
        assert!(fields
            .iter()
            .any(|f| f.name == "Latitude" && f.value == "45.590600"));
        // Not a form's address: refused with the reason.
        let bad =
            serde_json::to_vec(&serde_json::json!({"url": "https://x.fr/", "display_id": "1"}))
                .unwrap();
        let items = p.parse(&Input {
            bytes: &bad,
            origin: "/v1/69091/publik",
            tenant: Some("69091"),
            received_us: 1_796_300_000_000_000,
        });
        assert!(
            matches!(&items[0], Item::Rejected(r) if r.reason.contains("not a form's address"))
        );
    }
}
