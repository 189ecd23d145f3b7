//! Web forms (démarches en ligne): the JSON a commune's online-procedure portal posts when a
//! citizen completes a procedure. See docs/adapters.md for the format. An unknown form slug
//! is accepted with the category "other"; unknown top-level members are ignored, so the
//! portal can add some without breaking the hub.

use crate::config::AdaptersConfig;
use crate::{clip, Adapter, Blob, BlobSource, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::limits;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use serde::Deserialize;
use std::sync::Arc;

/// The `source` of web-form events.
pub const SOURCE: &str = "web-form";

#[derive(Debug, Deserialize)]
struct Submission {
    #[serde(alias = "form_slug")]
    form: String,
    submission_id: String,
    /// RFC 3339; the time of receipt when absent.
    submitted_at: Option<String>,
    /// Title of the procedure as the portal shows it.
    title: Option<String>,
    #[serde(default)]
    user: User,
    #[serde(default)]
    fields: Fields,
    #[serde(default)]
    attachments: Vec<Attachment>,
    /// Citizen ids of the people the démarche is about besides the user (a child a parent
    /// registers at school).
    #[serde(default)]
    concerns: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct User {
    first_name: Option<String>,
    last_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    citizen_id: Option<String>,
}

/// Fields as an object (`{"name": value}`, order kept) or a list of `{name, value}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Fields {
    Object(serde_json::Map<String, serde_json::Value>),
    List(Vec<NamedField>),
}

impl Default for Fields {
    fn default() -> Self {
        Fields::List(Vec::new())
    }
}

#[derive(Debug, Deserialize)]
struct NamedField {
    name: String,
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Attachment {
    #[serde(alias = "name")]
    filename: Option<String>,
    #[serde(alias = "media_type")]
    content_type: Option<String>,
    #[serde(alias = "content_base64")]
    base64: Option<String>,
    url: Option<String>,
}

/// A field value as text: strings as they are, other JSON as JSON.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The web-form adapter.
#[derive(Debug, Clone)]
pub struct WebForm {
    cfg: Arc<AdaptersConfig>,
    tenants: Arc<Tenants>,
}

impl WebForm {
    pub fn new(cfg: Arc<AdaptersConfig>, tenants: Arc<Tenants>) -> Self {
        WebForm { cfg, tenants }
    }

    fn submission(&self, input: &Input<'_>) -> Item {
        let reject = |reason: String| Item::reject("", reason, input.tenant, input.bytes);
        let Some(tenant) = input.tenant.and_then(|t| self.tenants.get(t)) else {
            return reject("no commune: post forms to /v1/{commune}/forms".into());
        };
        let s: Submission = match serde_json::from_slice(input.bytes) {
            Ok(s) => s,
            Err(e) => return reject(format!("not a form submission: {e}")),
        };
        let slug = s.form.trim();
        if slug.is_empty() {
            return reject("empty form slug".into());
        }
        let sid = s.submission_id.trim();
        if sid.is_empty() || sid.len() > 128 || sid.contains(|c: char| c.is_control()) {
            return reject(format!("submission_id {:?} is not an id", clip(sid, 40)));
        }
        let occurred_us = match &s.submitted_at {
            None => input.received_us,
            Some(t) => match chrono::DateTime::parse_from_rfc3339(t.trim()) {
                Ok(d) => d.timestamp_micros(),
                Err(_) => {
                    return reject(format!(
                        "submitted_at {:?} is not an RFC 3339 date (2026-11-02T09:14:03+01:00)",
                        clip(t, 40)
                    ))
                }
            },
        };
        let u = &s.user;
        let name = match (&u.first_name, &u.last_name, &u.name) {
            (_, _, Some(n)) if !n.trim().is_empty() => n.trim().to_string(),
            (f, l, _) => [f.as_deref(), l.as_deref()]
                .into_iter()
                .flatten()
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        };
        let party = pb::Party {
            citizen_id: u.citizen_id.clone().unwrap_or_default(),
            // Normalised when they can be; kept as written otherwise (the projector decides).
            phone: u.phone.as_deref().map_or_else(String::new, |p| {
                normalize_phone(p).unwrap_or_else(|| p.to_string())
            }),
            email: u.email.as_deref().map_or_else(String::new, |m| {
                normalize_email(m).unwrap_or_else(|| m.to_string())
            }),
            name,
            ..Default::default()
        };
        let fields = match &s.fields {
            Fields::Object(m) => m
                .iter()
                .map(|(k, v)| pb::Field {
                    name: k.clone(),
                    value: value_text(v),
                })
                .collect(),
            Fields::List(l) => l
                .iter()
                .map(|f| pb::Field {
                    name: f.name.clone(),
                    value: value_text(&f.value),
                })
                .collect(),
        };
        let mut blobs = Vec::new();
        for (i, a) in s.attachments.iter().enumerate() {
            let name = a
                .filename
                .clone()
                .unwrap_or_else(|| format!("piece-{}", i + 1));
            let source = match crate::blob_source(a.base64.as_deref(), a.url.as_deref()) {
                Ok(source) => source,
                Err(why) => {
                    return reject(format!(
                        "attachment {} ({:?}) {why}",
                        i + 1,
                        clip(&name, 40)
                    ))
                }
            };
            blobs.push(Blob {
                name,
                media_type: a.content_type.clone().unwrap_or_default(),
                source,
            });
        }
        let payload = Payload::WebForm(pb::WebForm {
            form_slug: slug.to_string(),
            submission_id: sid.to_string(),
            signed_in: false,
            thread_id: String::new(),
        });
        let mut event = contact(
            &tenant.code,
            SOURCE,
            sid,
            occurred_us,
            input.received_us,
            payload,
            party,
        );
        event.category = self.cfg.form_category(&tenant.code, slug) as i32;
        let (fields, clipped) = fit_fields(fields);
        if clipped {
            // The submission as received keeps every field whole.
            blobs.push(Blob {
                name: "formulaire-complet.json".into(),
                media_type: "application/json".into(),
                source: BlobSource::Bytes(input.bytes.to_vec()),
            });
        }
        if let Some(p) = event.personal.as_mut() {
            p.subject = s.title.clone().unwrap_or_else(|| slug.to_string());
            p.fields = fields;
            p.concerns = s.concerns.iter().map(|c| c.trim().to_string()).collect();
        }
        crate::checked(&self.tenants, event, blobs, "", input.bytes)
    }
}

/// Fields within the limits ([`limits::FIELDS`] fields, values of [`limits::FIELD_VALUE_CHARS`]
/// characters); `true` when something was cut (the caller then keeps the whole submission).
pub(crate) fn fit_fields(mut fields: Vec<pb::Field>) -> (Vec<pb::Field>, bool) {
    let mut clipped = false;
    if fields.len() > limits::FIELDS {
        let more = fields.len() - (limits::FIELDS - 1);
        fields.truncate(limits::FIELDS - 1);
        fields.push(pb::Field {
            name: "…".into(),
            value: format!("{more} champs de plus : voir formulaire-complet.json"),
        });
        clipped = true;
    }
    for f in &mut fields {
        if f.name.chars().count() > limits::FIELD_NAME_CHARS {
            f.name = clip(&f.name, limits::FIELD_NAME_CHARS - 1);
            clipped = true;
        }
        if f.value.chars().count() > limits::FIELD_VALUE_CHARS {
            f.value = clip(&f.value, limits::FIELD_VALUE_CHARS - 60)
                + " [tronqué : voir formulaire-complet.json]";
            clipped = true;
        }
    }
    (fields, clipped)
}

impl Adapter for WebForm {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        vec![self.submission(input)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn adapter() -> WebForm {
        let t = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml(
            "[[commune]]\ncode = \"69091\"\n[commune.forms]\n\"stationnement-resident\" = \"police_municipale\"",
            &t,
        )
        .unwrap();
        WebForm::new(Arc::new(cfg), t)
    }

    fn parse(json: &str) -> Item {
        adapter()
            .parse(&Input {
                bytes: json.as_bytes(),
                origin: "/v1/69091/forms",
                tenant: Some("69091"),
                received_us: 1_800_000_000_000_000,
            })
            .remove(0)
    }

    #[test]
    fn a_submission_keeps_fields_in_order_identity_category_and_attachments() {
        let json = r#"{
          "form": "acte-naissance", "submission_id": "GIV-AN-2026-000042",
          "submitted_at": "2026-11-02T09:14:03+01:00", "title": "Demande d'acte de naissance",
          "user": {"first_name": "Marie", "last_name": "Durand", "email": "Marie.Durand@example.fr", "phone": "06 12 34 56 78"},
          "fields": {"Zéphyr": "premier", "Nom de naissance": "Durand", "Copies": 2, "Urgent": true},
          "attachments": [
            {"filename": "livret.pdf", "content_type": "application/pdf", "base64": "JVBERi0xLjQK\nJSVFT0YK"},
            {"filename": "photo.jpg", "url": "https://portail.givors.fr/files/123"}
          ]
        }"#;
        let Item::Contact(c) = parse(json) else {
            panic!("{:?}", parse(json))
        };
        assert_eq!(c.event.category, pb::Category::EtatCivil as i32);
        let p = c.event.personal.as_ref().unwrap();
        assert_eq!(p.subject, "Demande d'acte de naissance");
        let names: Vec<_> = p
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("Zéphyr", "premier"),
                ("Nom de naissance", "Durand"),
                ("Copies", "2"),
                ("Urgent", "true")
            ]
        );
        let party = p.party.as_ref().unwrap();
        assert_eq!(
            (party.name.as_str(), party.email.as_str()),
            ("Marie Durand", "marie.durand@example.fr")
        );
        assert_eq!(
            c.blobs[0].source,
            BlobSource::Bytes(b"%PDF-1.4\n%%EOF\n".to_vec())
        );
        assert_eq!(
            c.blobs[1].source,
            BlobSource::Url("https://portail.givors.fr/files/123".into())
        );
        assert_eq!(
            contacthub_core::event::fmt_us(
                contacthub_proto::ts::to_micros(c.event.occurred_at.as_ref().unwrap()).unwrap()
            ),
            "2026-11-02T08:14:03Z"
        );
    }

    #[test]
    fn unknown_slugs_are_other_and_configured_ones_mapped() {
        let json = |slug: &str| {
            format!(
                r#"{{"form": "{slug}", "submission_id": "1", "user": {{"email": "a@b.fr"}}, "fields": [{{"name": "x", "value": "y"}}]}}"#
            )
        };
        let cat = |slug: &str| match parse(&json(slug)) {
            Item::Contact(c) => c.event.category,
            other => panic!("{other:?}"),
        };
        assert_eq!(cat("jamais-vu"), pb::Category::Other as i32);
        assert_eq!(
            cat("stationnement-resident"),
            pb::Category::PoliceMunicipale as i32
        );
    }

    #[test]
    fn bad_submissions_say_what_is_wrong() {
        for (json, says) in [
            (
                "not json",
                "not a form submission: expected ident at line 1 column 2",
            ),
            (r#"{"submission_id": "1"}"#, "missing field `form`"),
            (r#"{"form": "x"}"#, "missing field `submission_id`"),
            (r#"{"form": " ", "submission_id": "1"}"#, "empty form slug"),
            (
                r#"{"form": "x", "submission_id": ""}"#,
                "submission_id \"\" is not an id",
            ),
            (
                r#"{"form": "x", "submission_id": "1", "submitted_at": "hier"}"#,
                "submitted_at \"hier\" is not an RFC 3339 date",
            ),
            (
                r#"{"form": "x", "submission_id": "1", "attachments": [{"filename": "a.pdf", "base64": "%%%"}]}"#,
                "attachment 1 (\"a.pdf\") is not valid base64",
            ),
            (
                r#"{"form": "x", "submission_id": "1", "attachments": [{"filename": "a.pdf"}]}"#,
                "needs exactly one of base64 and url",
            ),
            (
                r#"{"form": "x", "submission_id": "1", "attachments": [{"url": "file:///etc/passwd"}]}"#,
                "not an http(s) URL",
            ),
        ] {
            match parse(json) {
                Item::Rejected(r) => assert!(r.reason.contains(says), "{json}: {}", r.reason),
                other => panic!("{json}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = adapter().parse(&Input { bytes: &bytes, origin: "x", tenant: Some("69091"), received_us: 1_800_000_000_000_000 });
        }

        #[test]
        fn json_shaped_input_never_panics(slug in "\\PC{0,20}", sid in "\\PC{0,20}", at in "\\PC{0,30}", v in "\\PC{0,30}") {
            let json = serde_json::json!({"form": slug, "submission_id": sid, "submitted_at": at, "user": {"name": v}, "fields": {v.clone(): v}, "attachments": [{"base64": v}]});
            let _ = parse(&json.to_string());
        }
    }
}
