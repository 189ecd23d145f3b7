//! Open311 GeoReport v2, the street-report apps' API, per commune under
//! `/open311/v2/{commune}/`: `services.json` (the kinds of report the commune takes), a report
//! posted to `requests.json` (form-encoded, with a client application's `api_key`) becomes a
//! contact that opens a request of the hub like any other (its location and photos kept),
//! `requests/{id}.json` and `requests.json?service_request_id=…` tell where each stands —
//! nothing personal. Pure: the report is read by [`Open311`]'s `parse`; the answers are
//! shaped by [`service_list`] and [`request_status`].

use crate::{clip, Adapter, Blob, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::pb::{self, event::Payload, Category};
use contacthub_core::render::{capitalized, category_code, category_fr, status_fr};
use contacthub_core::tenant::Tenants;
use serde_json::{json, Value};
use std::sync::Arc;

/// The `source` of Open311 reports.
pub const SOURCE: &str = "open311";

/// The kinds of report a commune takes over Open311: street matters.
const SERVICES: [Category; 4] = [
    Category::ServicesTechniques,
    Category::Urbanisme,
    Category::PoliceMunicipale,
    Category::Other,
];

/// Longest description a report may carry (the specification's 4,000 characters).
const DESCRIPTION_CHARS: usize = 4_000;

/// `services.json` of `commune`.
pub fn service_list(commune: &contacthub_core::tenant::Tenant) -> Value {
    Value::Array(
        SERVICES
            .iter()
            .map(|c| {
                let group = commune
                    .service_of_category(*c as i32)
                    .map_or_else(|| capitalized(category_fr(*c as i32)), |s| s.name.clone());
                json!({
                    "service_code": category_code(*c),
                    "service_name": capitalized(category_fr(*c as i32)),
                    "description": format!("Signalement à la mairie de {} ({group})", commune.name),
                    "metadata": false,
                    "type": "realtime",
                    "keywords": "",
                    "group": group,
                })
            })
            .collect(),
    )
}

/// A request as GeoReport tells it (`service_request_id` is the report's id, not the hub's
/// reference): its status and dates, the service, the place reported — nothing personal.
pub fn request_status(
    commune: &contacthub_core::tenant::Tenant,
    id: &str,
    r: &pb::Request,
) -> Value {
    let time = |t: &Option<contacthub_proto::Timestamp>| {
        t.as_ref()
            .and_then(contacthub_proto::ts::to_micros)
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    let done = r.status == pb::RequestStatus::Answered as i32
        || r.status == pb::RequestStatus::Closed as i32;
    let updated = r
        .history
        .last()
        .and_then(|h| time(&h.at))
        .or_else(|| time(&r.opened_at));
    let address = r
        .location
        .as_ref()
        .map(|a| {
            [
                a.number.as_str(),
                a.street.as_str(),
                a.postcode.as_str(),
                a.city.as_str(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
        })
        .unwrap_or_default();
    let category = Category::try_from(r.category).unwrap_or(Category::Other);
    json!({
        "service_request_id": id,
        "status": if done { "closed" } else { "open" },
        "status_notes": capitalized(status_fr(r.status)),
        "service_name": capitalized(category_fr(r.category)),
        "service_code": category_code(category),
        "agency_responsible": match commune.service_name(&r.service) {
            "" => format!("Mairie de {}", commune.name),
            name => name.to_string(),
        },
        "requested_datetime": time(&r.opened_at),
        "updated_datetime": updated,
        "expected_datetime": time(&r.due_at),
        "address": address,
    })
}

/// An Open311 error body: `[{"code": …, "description": …}]`.
pub fn error(code: u16, description: &str) -> Value {
    json!([{ "code": code, "description": description }])
}

/// The id GeoReport gives a report: made of what was posted (the key left out), so the same
/// report posted twice is one.
pub fn report_id(client: &str, form: &[(String, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(client.as_bytes());
    for (k, v) in form.iter().filter(|(k, _)| k != "api_key") {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Open311 adapter: one report (form-encoded), its client application named in
/// `Input::origin` (`open311:<client>`), by then authenticated.
#[derive(Debug, Clone)]
pub struct Open311 {
    tenants: Arc<Tenants>,
}

impl Open311 {
    pub fn new(tenants: Arc<Tenants>) -> Self {
        Open311 { tenants }
    }

    fn report(&self, input: &Input<'_>) -> Item {
        let reject = |reason: String| Item::reject("", reason, input.tenant, input.bytes);
        let Some(tenant) = input.tenant.and_then(|t| self.tenants.get(t)) else {
            return reject("no commune: post to /open311/v2/{commune}/requests.json".into());
        };
        let client = input.origin.strip_prefix("open311:").unwrap_or("open311");
        let form: Vec<(String, String)> = form_urlencoded::parse(input.bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(code) = get("service_code") else {
            return reject("service_code is required".into());
        };
        let Some(category) = SERVICES.iter().find(|c| category_code(**c) == code) else {
            return reject(format!(
                "service_code {:?} is not one of services.json",
                clip(&code, 40)
            ));
        };
        let (lat, long, address) = (get("lat"), get("long"), get("address_string"));
        let coordinate = |v: &Option<String>, max: f64| {
            v.as_deref()
                .map(|t| t.parse::<f64>().ok().filter(|x| x.abs() <= max))
        };
        match (coordinate(&lat, 90.0), coordinate(&long, 180.0), &address) {
            (Some(None), _, _) | (_, Some(None), _) => {
                return reject("lat and long are decimal degrees".into())
            }
            (None, None, None) => {
                return reject("a report needs lat and long, or address_string".into())
            }
            _ => {}
        }
        let description = get("description").unwrap_or_default();
        if description.chars().count() > DESCRIPTION_CHARS {
            return reject(format!(
                "description is over {DESCRIPTION_CHARS} characters"
            ));
        }
        let name = [get("first_name"), get("last_name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let id = report_id(client, &form);
        let party = pb::Party {
            // An anonymous report: a record of its own.
            name: if name.is_empty() && get("email").is_none() && get("phone").is_none() {
                format!("Auteur anonyme du signalement {id}")
            } else {
                name
            },
            email: get("email")
                .map(|m| normalize_email(&m).unwrap_or(m))
                .unwrap_or_default(),
            phone: get("phone")
                .map(|p| normalize_phone(&p).unwrap_or(p))
                .unwrap_or_default(),
            ..Default::default()
        };
        let mut fields = Vec::new();
        for (label, value) in [
            ("Application", Some(client.to_string())),
            ("Latitude", lat),
            ("Longitude", long),
            ("Adresse signalée", address.clone()),
        ] {
            if let Some(v) = value {
                fields.push(pb::Field {
                    name: label.into(),
                    value: clip(&v, contacthub_core::limits::FIELD_VALUE_CHARS),
                });
            }
        }
        let mut blobs = Vec::new();
        if let Some(url) = get("media_url") {
            let source = match crate::blob_source(None, Some(&url)) {
                Ok(source) => source,
                Err(why) => return reject(format!("media_url {why}")),
            };
            blobs.push(Blob {
                name: "photo".into(),
                media_type: String::new(),
                source,
            });
        }
        let payload = Payload::WebForm(pb::WebForm {
            form_slug: format!("open311-{code}"),
            submission_id: format!("open311/{id}"),
            signed_in: false,
            thread_id: format!("open311:{id}"),
        });
        let mut event = contact(
            &tenant.code,
            SOURCE,
            &id,
            input.received_us,
            input.received_us,
            payload,
            party,
        );
        event.category = *category as i32;
        if let Some(p) = event.personal.as_mut() {
            p.subject = format!("Signalement : {}", category_fr(*category as i32));
            p.text = description;
            p.fields = fields;
            p.location = address.map(|a| pb::Address {
                street: clip(&a, contacthub_core::limits::LABEL_CHARS),
                city: tenant.name.clone(),
                ..Default::default()
            });
        }
        crate::checked(&self.tenants, event, blobs, "", input.bytes)
    }
}

impl Adapter for Open311 {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        vec![self.report(input)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Item {
        Open311::new(Arc::new(Tenants::builtin()))
            .parse(&Input {
                bytes: body.as_bytes(),
                origin: "open311:fixmystreet",
                tenant: Some("69091"),
                received_us: 1_796_300_000_000_000,
            })
            .remove(0)
    }

    #[test]
    fn a_report_is_a_file_of_its_own() {
        let body = "api_key=k&service_code=services-techniques&lat=45.59&long=4.77\
                    &address_string=12+rue+%C3%89mile+Zola&description=Nid+de+poule\
                    &email=Marie%40Example.org&first_name=Marie&last_name=Durand\
                    &media_url=https%3A%2F%2Fphotos.example.org%2F1.jpg";
        let Item::Contact(c) = parse(body) else {
            panic!("{:?}", parse(body))
        };
        let Some(Payload::WebForm(w)) = &c.event.payload else {
            panic!()
        };
        assert!(w.thread_id.starts_with("open311:"));
        assert_eq!(c.event.category, Category::ServicesTechniques as i32);
        let p = c.event.personal.as_ref().unwrap();
        assert_eq!(p.party.as_ref().unwrap().email, "marie@example.org");
        assert_eq!(p.location.as_ref().unwrap().street, "12 rue Émile Zola");
        assert_eq!(c.blobs.len(), 1);
        // Posted again with another key: the same report.
        let again = parse(&body.replace("api_key=k", "api_key=autre"));
        let Item::Contact(d) = again else { panic!() };
        assert_eq!(d.event.event_id, c.event.event_id);
    }

    #[test]
    fn a_bad_report_says_what_is_wrong() {
        let reason = |body: &str| match parse(body) {
            Item::Rejected(r) => r.reason,
            other => panic!("{other:?}"),
        };
        assert!(reason("lat=1&long=2").contains("service_code is required"));
        assert!(reason("service_code=ccas&lat=1&long=2").contains("not one of services.json"));
        assert!(reason("service_code=other").contains("lat and long, or address_string"));
        assert!(reason("service_code=other&lat=abc&long=2").contains("decimal degrees"));
    }
}
