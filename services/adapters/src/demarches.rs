//! démarches-simplifiées, pure: its webhook's form, the GraphQL queries the hub sends to its
//! API (`/api/v2/graphql`) and what their answers mean, and a dossier as fetched turned into
//! contacts — its champs and pièces jointes, each state it reached, each message — all on
//! one thread, so the dossier is one request. The IO (fetching on a webhook, polling) is
//! [`crate::demarches_sync`].
//!
//! The webhook is only a nudge: it carries no secret, so nothing in it is trusted but the
//! numbers of the démarche and the dossier to fetch.

use crate::config::AdaptersConfig;
use crate::{clip, Adapter, Blob, BlobSource, Input, Item};
use contacthub_core::event::contact;
use contacthub_core::identity::normalize_email;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The adapter's name: the `source` of its events, its metrics label and quarantine folder.
pub const SOURCE: &str = "demarches-simplifiees";

/// What a dossier is asked for, in the GraphQL query of one dossier and of a page of them.
const DOSSIER_FIELDS: &str = "
fragment DossierFields on Dossier {
  number state dateDepot datePassageEnInstruction dateTraitement dateDerniereModification motivation
  demarche { number title }
  usager { email }
  demandeur {
    __typename
    ... on PersonnePhysique { civilite nom prenom email }
    ... on PersonneMorale { siret entreprise { raisonSociale } }
  }
  champs {
    label stringValue
    ... on PieceJustificativeChamp { files { filename contentType checksum url } }
  }
  messages { id email body createdAt attachments { filename contentType checksum url } }
}";

/// Dossiers asked for per page when polling.
pub const PAGE_SIZE: u32 = 50;

/// The request for dossier `number`.
pub fn dossier_query(number: u64) -> Value {
    json!({
        "operationName": "getDossier",
        "query": format!("query getDossier($number: Int!) {{ dossier(number: $number) {{ ...DossierFields }} }}\n{DOSSIER_FIELDS}"),
        "variables": {"number": number},
    })
}

/// The request for a page of démarche `demarche`'s dossiers changed since `since` (RFC 3339),
/// oldest change first, after the page cursor `after`.
pub fn dossiers_query(demarche: u32, since: Option<&str>, after: Option<&str>) -> Value {
    json!({
        "operationName": "getDemarche",
        "query": format!("query getDemarche($demarche: Int!, $since: ISO8601DateTime, $after: String, $first: Int) {{ demarche(number: $demarche) {{ dossiers(updatedSince: $since, after: $after, first: $first, order: ASC) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ ...DossierFields }} }} }} }}\n{DOSSIER_FIELDS}"),
        "variables": {"demarche": demarche, "since": since, "after": after, "first": PAGE_SIZE},
    })
}

/// What the webhook says: démarche (`procedure_id`) and dossier (`dossier_id`) — form-encoded
/// as the platform posts it, or JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub demarche: u64,
    pub dossier: u64,
    /// The state it says the dossier is in (not trusted; for the logs).
    pub state: String,
}

pub fn parse_webhook(body: &[u8]) -> Result<Webhook, String> {
    let fields: Vec<(String, String)> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o
            .into_iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k, v)
            })
            .collect(),
        _ => form_urlencoded::parse(body).into_owned().collect(),
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    let number = |name: &str| -> Result<u64, String> {
        let v = get(name).ok_or_else(|| format!("the webhook has no {name}"))?;
        v.parse::<u64>()
            .ok()
            .filter(|n| *n > 0 && *n < 1 << 31)
            .ok_or_else(|| format!("{name} {:?} is not a number", clip(&v, 20)))
    };
    Ok(Webhook {
        demarche: number("procedure_id")?,
        dossier: number("dossier_id")?,
        state: clip(&get("state").unwrap_or_default(), 30),
    })
}

/// Why the API did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The token was refused (expired, revoked, or not an instructeur's of the démarche).
    Token(String),
    /// The platform failed or answered something else than its API's shape: try again.
    Unavailable(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Token(m) => write!(f, "token refused by démarches-simplifiées: {m}"),
            ApiError::Unavailable(m) => write!(f, "démarches-simplifiées unavailable: {m}"),
        }
    }
}

/// The API's answer to a query: `data`, or its errors. HTTP 401 / 403 and errors about the
/// token or authorisation are [`ApiError::Token`]; a `not_found` error leaves `data` null.
fn answer_data(status: u16, body: &[u8]) -> Result<Value, ApiError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let errors: Vec<String> = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .map(|e| {
                    let code = e
                        .pointer("/extensions/code")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
                    format!("{code}|{}", clip(msg, 200))
                })
                .collect()
        })
        .unwrap_or_default();
    let token_error = errors.iter().any(|e| {
        let l = e.to_lowercase();
        l.starts_with("unauthorized|") || l.starts_with("forbidden|") || l.contains("token")
    });
    if status == 401 || status == 403 || token_error {
        let msg = errors
            .first()
            .map(|e| e.split_once('|').map_or(e.as_str(), |(_, m)| m).to_string())
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(ApiError::Token(msg));
    }
    if !(200..300).contains(&status) {
        return Err(ApiError::Unavailable(format!("HTTP {status}")));
    }
    let Some(data) = parsed.as_ref().and_then(|v| v.get("data")).cloned() else {
        let first = errors.first().cloned().unwrap_or_else(|| "no data".into());
        return Err(ApiError::Unavailable(format!(
            "answer without data: {first}"
        )));
    };
    let other: Vec<&String> = errors
        .iter()
        .filter(|e| !e.starts_with("not_found|"))
        .collect();
    if let Some(e) = other.first() {
        return Err(ApiError::Unavailable(format!("GraphQL error: {e}")));
    }
    Ok(data)
}

/// The dossier in the answer to [`dossier_query`]; `None` when the platform has none by that
/// number (deleted, or never deposited).
pub fn dossier_answer(status: u16, body: &[u8]) -> Result<Option<Value>, ApiError> {
    let data = answer_data(status, body)?;
    Ok(data.get("dossier").filter(|d| d.is_object()).cloned())
}

/// A page of dossiers, from [`dossiers_query`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub dossiers: Vec<Value>,
    pub next: Option<String>,
}

pub fn page_answer(status: u16, body: &[u8]) -> Result<Page, ApiError> {
    let data = answer_data(status, body)?;
    let Some(conn) = data.pointer("/demarche/dossiers") else {
        return Err(ApiError::Unavailable(
            "the démarche is unknown to this token".into(),
        ));
    };
    let dossiers = conn
        .get("nodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_next = conn
        .pointer("/pageInfo/hasNextPage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let next = conn
        .pointer("/pageInfo/endCursor")
        .and_then(Value::as_str)
        .filter(|_| has_next)
        .map(str::to_string);
    Ok(Page { dossiers, next })
}

/// When dossier `d` last changed (`dateDerniereModification`), as the platform wrote it.
pub fn last_change(d: &Value) -> Option<&str> {
    d.get("dateDerniereModification").and_then(Value::as_str)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dossier {
    number: u64,
    state: String,
    date_depot: Option<String>,
    date_passage_en_instruction: Option<String>,
    date_traitement: Option<String>,
    motivation: Option<String>,
    demarche: DemarcheRef,
    usager: Option<Email>,
    demandeur: Option<Demandeur>,
    #[serde(default)]
    champs: Vec<Champ>,
    #[serde(default)]
    messages: Vec<Message>,
}

#[derive(Debug, Deserialize)]
struct DemarcheRef {
    number: u64,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Email {
    email: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Demandeur {
    nom: Option<String>,
    prenom: Option<String>,
    email: Option<String>,
    siret: Option<String>,
    entreprise: Option<Entreprise>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entreprise {
    raison_sociale: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Champ {
    label: String,
    string_value: Option<String>,
    #[serde(default)]
    files: Vec<File>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    filename: String,
    content_type: Option<String>,
    checksum: Option<String>,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: String,
    email: Option<String>,
    body: String,
    created_at: String,
    #[serde(default)]
    attachments: Vec<File>,
}

/// The French name of a dossier's state.
fn state_fr(state: &str) -> &str {
    match state {
        "en_construction" => "en construction",
        "en_instruction" => "en instruction",
        "accepte" => "accepté",
        "refuse" => "refusé",
        "sans_suite" => "classé sans suite",
        other => other,
    }
}

/// The démarches-simplifiées adapter: its input is one dossier, as the API gave it.
#[derive(Debug, Clone)]
pub struct Demarches {
    cfg: Arc<AdaptersConfig>,
    tenants: Arc<Tenants>,
}

impl Demarches {
    pub fn new(cfg: Arc<AdaptersConfig>, tenants: Arc<Tenants>) -> Self {
        Demarches { cfg, tenants }
    }

    fn dossier(&self, input: &Input<'_>) -> Vec<Item> {
        let reject = |reason: String| vec![Item::reject("", reason, input.tenant, input.bytes)];
        let Some(tenant) = input.tenant.and_then(|t| self.tenants.get(t)) else {
            return reject("no commune for this dossier".into());
        };
        let d: Dossier = match serde_json::from_slice(input.bytes) {
            Ok(d) => d,
            Err(e) => return reject(format!("not a dossier of démarches-simplifiées: {e}")),
        };
        let Some(settings) = self.cfg.demarche(&tenant.code, d.demarche.number) else {
            return reject(format!(
                "dossier {} belongs to démarche {}, which is not connected for commune {}",
                d.number, d.demarche.number, tenant.code
            ));
        };
        let Some(deposited) = d.date_depot.as_deref() else {
            return vec![Item::Ignored {
                locator: format!("dossier {}", d.number),
                why: "not deposited yet (brouillon)".into(),
            }];
        };
        let time = |label: &str, t: &str| {
            crate::publik::time_us(t)
                .ok_or_else(|| format!("{label} {:?} is not a date", clip(t, 40)))
        };
        let deposited_us = match time("dateDepot", deposited) {
            Ok(t) => t,
            Err(e) => return reject(e),
        };
        let demandeur = d.demandeur.unwrap_or_default();
        let usager_email = d.usager.and_then(|u| u.email).unwrap_or_default();
        let name = match (&demandeur.prenom, &demandeur.nom) {
            (Some(p), Some(n)) => format!("{} {}", p.trim(), n.trim()),
            (None, Some(n)) => n.trim().to_string(),
            _ => demandeur
                .entreprise
                .as_ref()
                .and_then(|e| e.raison_sociale.clone())
                .unwrap_or_default(),
        };
        // A dossier deposited for someone else (mandataire) names the demandeur's address.
        let email = demandeur
            .email
            .clone()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| usager_email.clone());
        let party = pb::Party {
            name: name.trim().to_string(),
            email: normalize_email(&email).unwrap_or_default(),
            ..Default::default()
        };
        let title = d
            .demarche
            .title
            .clone()
            .unwrap_or_else(|| format!("Démarche {}", d.demarche.number));
        let subject = clip(
            &format!("{} — dossier n° {}", title.trim(), d.number),
            contacthub_core::limits::LABEL_CHARS,
        );
        let category =
            crate::config::category_named(&settings.category).unwrap_or(pb::Category::Other) as i32;
        let thread = format!("{SOURCE}:{}/{}", d.demarche.number, d.number);
        let file_blobs = |files: &[File]| -> Vec<Blob> {
            files
                .iter()
                .map(|f| Blob {
                    name: f.filename.clone(),
                    media_type: f.content_type.clone().unwrap_or_default(),
                    // The platform's links expire and are made anew at each fetch.
                    source: match &f.checksum {
                        Some(checksum) => BlobSource::Signed {
                            url: f.url.clone(),
                            checksum: checksum.clone(),
                        },
                        None => BlobSource::Url(f.url.clone()),
                    },
                })
                .collect()
        };
        let make = |kind: &str,
                    occurred_us: i64,
                    text: String,
                    fields: Vec<pb::Field>,
                    blobs: Vec<Blob>| {
            let source_id = format!("{}/{}/{kind}", d.demarche.number, d.number);
            let payload = Payload::WebForm(pb::WebForm {
                form_slug: format!("demarche-{}", d.demarche.number),
                submission_id: clip(&source_id, 128),
                signed_in: false,
                thread_id: thread.clone(),
            });
            let mut event = contact(
                &tenant.code,
                SOURCE,
                &source_id,
                occurred_us,
                input.received_us,
                payload,
                party.clone(),
            );
            event.category = category;
            let (fields, _) = crate::web_form::fit_fields(fields);
            if let Some(p) = event.personal.as_mut() {
                p.subject = subject.clone();
                p.text = text;
                p.fields = fields;
            }
            (occurred_us, kind.to_string(), event, blobs)
        };
        let mut made = Vec::new();
        // The champs: one contact per version of them (a dossier edited while « en
        // construction » adds one), named by what they hold, never by when it was fetched.
        let mut fields = vec![pb::Field {
            name: "Dossier démarches-simplifiées".into(),
            value: format!("n° {} (démarche {})", d.number, d.demarche.number),
        }];
        if let Some(siret) = &demandeur.siret {
            fields.push(pb::Field {
                name: "SIRET".into(),
                value: siret.clone(),
            });
        }
        let mut digest = Sha256::new();
        let mut blobs = Vec::new();
        for c in &d.champs {
            digest.update(c.label.as_bytes());
            digest.update([0]);
            digest.update(c.string_value.as_deref().unwrap_or_default().as_bytes());
            digest.update([0]);
            for f in &c.files {
                digest.update(f.filename.as_bytes());
                digest.update(f.checksum.as_deref().unwrap_or(&f.url).as_bytes());
            }
            if let Some(v) = c.string_value.as_deref().filter(|v| !v.trim().is_empty()) {
                fields.push(pb::Field {
                    name: c.label.clone(),
                    value: v.to_string(),
                });
            }
            blobs.extend(file_blobs(&c.files));
        }
        let version: String = digest
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        made.push(make(
            &format!("champs/{version}"),
            deposited_us,
            "Dossier déposé sur démarches-simplifiées".into(),
            fields,
            blobs,
        ));
        // Each state it reached, at the time it reached it.
        let mut states = Vec::new();
        if let Some(t) = &d.date_passage_en_instruction {
            states.push(("en_instruction", t.as_str()));
        }
        if let (Some(t), "accepte" | "refuse" | "sans_suite") =
            (&d.date_traitement, d.state.as_str())
        {
            states.push((d.state.as_str(), t.as_str()));
        }
        for (state, at) in states {
            let at_us = match time("the date of its state", at) {
                Ok(t) => t,
                Err(e) => return reject(e),
            };
            let mut text = format!("Statut : {}", state_fr(state));
            if let Some(m) = d
                .motivation
                .as_deref()
                .filter(|m| !m.trim().is_empty() && state != "en_instruction")
            {
                text.push_str(&format!("\nMotivation : {}", m.trim()));
            }
            let fields = vec![pb::Field {
                name: "Statut sur démarches-simplifiées".into(),
                value: state_fr(state).into(),
            }];
            made.push(make(
                &format!("statut/{state}/{}", at.trim()),
                at_us,
                text,
                fields,
                Vec::new(),
            ));
        }
        // Each message of the messagerie, the demandeur's or an instructeur's.
        for m in &d.messages {
            if m.id.is_empty() || m.id.len() > 100 {
                return reject(format!("a message's id {:?} is not an id", clip(&m.id, 20)));
            }
            let at_us = match time("a message's createdAt", &m.created_at) {
                Ok(t) => t,
                Err(e) => return reject(e),
            };
            let from = m.email.as_deref().unwrap_or_default();
            let by_demandeur = !from.is_empty() && from.eq_ignore_ascii_case(&usager_email);
            let author = if by_demandeur {
                "le demandeur".to_string()
            } else {
                format!("l'administration ({})", clip(from, 80))
            };
            let fields = vec![pb::Field {
                name: "Message de".into(),
                value: author,
            }];
            made.push(make(
                &format!("message/{}", m.id),
                at_us,
                m.body.clone(),
                fields,
                file_blobs(&m.attachments),
            ));
        }
        made.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        made.into_iter()
            .map(|(_, kind, event, blobs)| {
                crate::checked(
                    &self.tenants,
                    event,
                    blobs,
                    &format!("dossier {} {kind}", d.number),
                    input.bytes,
                )
            })
            .collect()
    }
}

impl Adapter for Demarches {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn parse(&self, input: &Input<'_>) -> Vec<Item> {
        self.dossier(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> Demarches {
        let t = Arc::new(Tenants::builtin());
        let cfg = AdaptersConfig::from_toml(
            "[[commune]]\ncode = \"69091\"\n[[commune.demarches_simplifiees]]\ndemarche = 4321\ntoken = \"jeton\"\ncategory = \"urbanisme\"\n",
            &t,
        )
        .unwrap();
        Demarches::new(Arc::new(cfg), t)
    }

    fn dossier() -> Value {
        json!({
            "number": 987, "state": "accepte",
            "dateDepot": "2026-11-02T10:00:00+01:00",
            "datePassageEnInstruction": "2026-11-03T09:00:00+01:00",
            "dateTraitement": "2026-11-20T16:30:00+01:00",
            "dateDerniereModification": "2026-11-20T16:30:00+01:00",
            "motivation": "Travaux conformes au PLU",
            "demarche": {"number": 4321, "title": "Déclaration préalable de travaux"},
            "usager": {"email": "Marie.Durand@Example.org"},
            "demandeur": {"__typename": "PersonnePhysique", "civilite": "Mme", "nom": "Durand", "prenom": "Marie", "email": null},
            "champs": [
                {"label": "Adresse des travaux", "stringValue": "12 rue Roger Salengro"},
                {"label": "Plan", "stringValue": "plan.pdf", "files": [{"filename": "plan.pdf", "contentType": "application/pdf", "checksum": "abc==", "url": "https://storage.example/plan.pdf?temp_url_sig=1"}]}
            ],
            "messages": [{"id": "Q29tbWVudGFpcmUtMQ==", "email": "instructeur@ville-givors.fr", "body": "Pièce manquante ?", "createdAt": "2026-11-04T11:00:00+01:00", "attachments": []}]
        })
    }

    fn parse(d: &Value, tenant: &str) -> Vec<Item> {
        let bytes = serde_json::to_vec(d).unwrap();
        adapter().parse(&Input {
            bytes: &bytes,
            origin: "test",
            tenant: Some(tenant),
            received_us: 1_796_300_000_000_000,
        })
    }

    #[test]
    fn a_dossier_is_its_champs_its_states_and_its_messages_on_one_thread() {
        let items = parse(&dossier(), "69091");
        let events: Vec<&pb::Event> = items
            .iter()
            .map(|i| match i {
                Item::Contact(c) => &c.event,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(events.len(), 4, "champs, en instruction, accepté, message");
        let texts: Vec<&str> = events
            .iter()
            .map(|e| e.personal.as_ref().unwrap().text.as_str())
            .collect();
        assert_eq!(texts[0], "Dossier déposé sur démarches-simplifiées");
        assert_eq!(texts[1], "Statut : en instruction");
        assert_eq!(texts[2], "Pièce manquante ?");
        assert!(texts[3].starts_with("Statut : accepté\nMotivation : Travaux"));
        for e in &events {
            let Some(Payload::WebForm(w)) = &e.payload else {
                panic!()
            };
            assert_eq!(w.thread_id, "demarches-simplifiees:4321/987");
            assert_eq!(e.category, pb::Category::Urbanisme as i32);
            let party = e.personal.as_ref().unwrap().party.as_ref().unwrap();
            assert_eq!(party.name, "Marie Durand");
            assert_eq!(party.email, "marie.durand@example.org");
        }
        // Fetched again with a freshly signed URL: the same events.
        let mut again = dossier();
        again["champs"][1]["files"][0]["url"] =
            json!("https://storage.example/plan.pdf?temp_url_sig=2");
        let ids = |items: &[Item]| -> Vec<String> {
            items
                .iter()
                .filter_map(|i| match i {
                    Item::Contact(c) => Some(c.event.event_id.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(ids(&parse(&again, "69091")), ids(&items));
        // The demandeur edits a champ: a new version of the champs, the rest the same.
        let mut edited = dossier();
        edited["champs"][0]["stringValue"] = json!("14 rue Roger Salengro");
        let edited_ids = ids(&parse(&edited, "69091"));
        assert_ne!(edited_ids[0], ids(&items)[0]);
        assert_eq!(edited_ids[1..], ids(&items)[1..]);
    }

    #[test]
    fn a_dossier_of_another_demarche_or_commune_is_refused() {
        let mut d = dossier();
        d["demarche"]["number"] = json!(1);
        assert!(
            matches!(&parse(&d, "69091")[0], Item::Rejected(r) if r.reason.contains("not connected"))
        );
        assert!(
            matches!(&parse(&dossier(), "69096")[0], Item::Rejected(r) if r.reason.contains("not connected"))
        );
        let mut bad = dossier();
        bad["dateDepot"] = json!("hier");
        assert!(
            matches!(&parse(&bad, "69091")[0], Item::Rejected(r) if r.reason.contains("dateDepot"))
        );
    }

    #[test]
    fn the_webhook_and_the_answers_are_read_as_the_platform_writes_them() {
        let w = parse_webhook(b"procedure_id=4321&dossier_id=987&state=en_construction&updated_at=2026-12-03+10%3A00%3A00+%2B0100").unwrap();
        assert_eq!((w.demarche, w.dossier), (4321, 987));
        let j = parse_webhook(br#"{"procedure_id": 4321, "dossier_id": "987"}"#).unwrap();
        assert_eq!(j.dossier, 987);
        assert!(parse_webhook(b"procedure_id=4321")
            .unwrap_err()
            .contains("dossier_id"));
        assert!(parse_webhook(b"procedure_id=x&dossier_id=1")
            .unwrap_err()
            .contains("procedure_id"));
        // Deleted: data null with a not_found error.
        let gone = br#"{"data":{"dossier":null},"errors":[{"message":"Dossier not found","extensions":{"code":"not_found"}}]}"#;
        assert_eq!(dossier_answer(200, gone), Ok(None));
        assert!(matches!(
            dossier_answer(401, br#"{"errors":[{"message":"Le jeton a expir\u00e9"}]}"#),
            Err(ApiError::Token(m)) if m.contains("expiré")
        ));
        assert!(matches!(
            dossier_answer(500, b"oops"),
            Err(ApiError::Unavailable(_))
        ));
        let page = br#"{"data":{"demarche":{"dossiers":{"pageInfo":{"hasNextPage":true,"endCursor":"MQ"},"nodes":[{"number":1}]}}}}"#;
        let p = page_answer(200, page).unwrap();
        assert_eq!((p.dossiers.len(), p.next.as_deref()), (1, Some("MQ")));
    }
}
