//! The right of access: everything the commune holds about a person, for its data protection
//! officer to hand over — a zip of `donnees.json` (record, household, timeline, every contact
//! in full, requests with their history and answers, letters, the reads of the file), the
//! original documents, and `resume.html`, a French summary the person can read.

use crate::auth::Scope;
use crate::{audit, App, Error, Result};
use contacthub_core::courrier::{paris_day, paris_display};
use contacthub_core::pb;
use contacthub_core::render;
use contacthub_projector::store::TimelineQuery;
use contacthub_proto::ts;
use serde_json::{json, Value};
use std::io::Write;

/// The export of a person's data: the zip's bytes.
#[derive(Debug, Clone)]
pub struct Export {
    pub zip: Vec<u8>,
    /// How many contacts and documents it holds.
    pub contacts: usize,
    pub documents: usize,
}

fn at(t: &Option<contacthub_proto::Timestamp>) -> String {
    t.as_ref()
        .and_then(ts::to_micros)
        .map(paris_display)
        .unwrap_or_default()
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn identity_json(i: &pb::Identity) -> Value {
    json!({
        "nom_d_usage": i.usage_name,
        "nom_de_naissance": i.birth_name,
        "prenoms": i.first_names,
        "date_de_naissance": i.birth_date,
        "telephones": i.phones,
        "courriels": i.emails,
        "adresses": i.addresses.iter().map(|a| json!({
            "numero": a.number, "voie": a.street, "code_postal": a.postcode,
            "commune": a.city, "complement": a.complement,
        })).collect::<Vec<_>>(),
        "note": i.note,
    })
}

impl App {
    /// Everything held about `citizen_id` (and the records merged into it), for the data
    /// protection officer of the commune only; recorded in the read trail as an export.
    pub async fn export_citizen(&self, scope: &Scope, citizen_id: &str) -> Result<Export> {
        if !(scope.is_dpo() || scope.is_open_visitor()) {
            return Err(Error::Forbidden(
                "l'export des données d'une personne est réservé au délégué à la protection des données".into(),
            ));
        }
        let commune = self.enter_figures(scope, scope.commune())?;
        let export = self.assemble_export(&commune.code, citizen_id).await?;
        self.read_by(scope, citizen_id, audit::Reading::Export, "")?;
        Ok(export)
    }

    /// Everything held about `citizen_id` of `tenant` (and the records merged into it), for
    /// a caller already checked.
    pub(crate) async fn assemble_export(&self, tenant: &str, citizen_id: &str) -> Result<Export> {
        let commune = self.tenant(tenant)?;
        let record = self.store.citizen(tenant, citizen_id)?.ok_or_else(|| {
            Error::NotFound(format!("aucune fiche {citizen_id} dans cette commune"))
        })?;
        let members = self.store.members(tenant, citizen_id)?;
        // The record, and those merged into it.
        let mut records = Vec::new();
        for id in &members {
            if let Some(c) = self.store.citizen(tenant, id)? {
                records.push(json!({
                    "fiche": c.citizen_id,
                    "identite": c.identity.as_ref().map(identity_json),
                    "fusionnee_dans": c.merged_into,
                    "premier_contact": at(&c.first_seen),
                    "dernier_contact": at(&c.last_seen),
                    "effacee": c.erased.as_ref().map(|e| json!({
                        "le": at(&e.at), "par": e.by, "motif": e.reason,
                    })),
                }));
            }
        }
        let mut household = Vec::new();
        for h in &record.households {
            for (member, role) in self.store.household(tenant, h)? {
                household.push(json!({"foyer": h, "fiche": member, "role": role}));
            }
        }
        // The timeline, every line, with each contact in full and its documents.
        let mut entries = Vec::new();
        let mut token = None;
        loop {
            let page = self.store.timeline(
                tenant,
                citizen_id,
                &TimelineQuery {
                    page_size: 500,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )?;
            entries.extend(page.entries);
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        entries.reverse();
        // (file in the archive, hash), read from the content store once the archive is known.
        let mut documents: Vec<(String, String)> = Vec::new();
        let mut add_document = |sha: &str, name: &str| -> Result<String> {
            let file = format!(
                "documents/{}-{}",
                &sha[..sha.len().min(12)],
                name.replace(['/', '\\'], "_")
            );
            if !documents.iter().any(|(f, _)| *f == file) {
                documents.push((file.clone(), sha.to_string()));
            }
            Ok(file)
        };
        let mut timeline = Vec::new();
        let mut contacts = 0;
        for e in &entries {
            let detail = self.store.contact_detail(tenant, &e.event_id)?;
            let names = detail
                .as_ref()
                .map(|d| d.attachment_names.clone())
                .unwrap_or_default();
            let mut files = Vec::new();
            for (i, a) in e.attachments.iter().enumerate() {
                let name = names.get(i).cloned().unwrap_or_else(|| "document".into());
                files.push(add_document(&a.sha256, &name)?);
            }
            if detail.is_some() {
                contacts += 1;
            }
            timeline.push(json!({
                "le": at(&e.occurred_at),
                "canal": render::channel_fr(e.channel),
                "resume": render::summary(e, commune),
                "demande": e.request_id,
                "objet": detail.as_ref().map(|d| d.subject.clone()).unwrap_or_default(),
                "texte": detail.as_ref().map(|d| d.text.clone()).unwrap_or_default(),
                "champs": detail.as_ref().map(|d| d.fields.iter().map(|f| json!({"nom": f.name, "valeur": f.value})).collect::<Vec<_>>()).unwrap_or_default(),
                "documents": files,
            }));
        }
        // Requests they made, with their history and written answers.
        let mut requests = Vec::new();
        for r in self.store.requests_of(tenant, &members)? {
            let mut answers = Vec::new();
            for a in self.store.request_answers(tenant, &r.reference)? {
                let letter = if a.pdf_sha256.is_empty() {
                    String::new()
                } else {
                    add_document(&a.pdf_sha256, "reponse.pdf")?
                };
                answers.push(json!({
                    "le": at(&a.composed_at),
                    "canal": render::channel_fr(a.channel),
                    "etat": render::answer_status_fr(a.status),
                    "objet": a.subject,
                    "texte": a.text,
                    "destinataire": a.recipient,
                    "lettre": letter,
                }));
            }
            requests.push(json!({
                "reference": r.reference,
                "objet": r.subject,
                "service": commune.service_name(&r.service),
                "ouverte_le": at(&r.opened_at),
                "reponse_due_le": at(&r.due_at),
                "close_le": at(&r.closed_at),
                "au_nom_de": r.on_behalf_of,
                "historique": r.history.iter().map(|h| json!({
                    "le": at(&h.at), "etape": h.kind, "note": h.note,
                })).collect::<Vec<_>>(),
                "reponses": answers,
            }));
        }
        // Letters of theirs, with their scans.
        let mut letters = Vec::new();
        for c in self.store.courriers(tenant)? {
            if !members.contains(&c.citizen_id) {
                continue;
            }
            let mut scans = Vec::new();
            for s in &c.scans {
                scans.push(add_document(&s.sha256, &format!("{}.pdf", c.chrono))?);
            }
            letters.push(json!({"chrono": c.chrono, "objet": c.subject, "numerisations": scans}));
        }
        let reads: Vec<Value> = self
            .trail
            .list(tenant, citizen_id, "", 100_000)?
            .into_iter()
            .map(|r| {
                json!({
                    "le": paris_display(r.at_us),
                    "agent": r.agent,
                    "consultation": r.what.fr(),
                    "depuis": r.via.fr(),
                })
            })
            .collect();
        let now = (self.clock)();
        let data = json!({
            "commune": commune.name,
            "exporte_le": paris_display(now),
            "fiches": records,
            "foyer": household,
            "chronologie": timeline,
            "demandes": requests,
            "courriers": letters,
            "consultations": reads,
        });
        let name = record
            .identity
            .as_ref()
            .map(|i| {
                format!("{} {}", i.first_names, i.usage_name)
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let mut summary = format!(
            "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Vos données détenues par la commune de {c}</title></head><body>\n<h1>Vos données détenues par la commune de {c}</h1>\n<p>Fiche {id}{n}, exportée le {d}. Le fichier donnees.json contient tout ; les documents originaux sont dans le dossier documents.</p>\n",
            c = html(&commune.name),
            id = html(citizen_id),
            n = if name.is_empty() { String::new() } else { format!(" ({})", html(&name)) },
            d = paris_day(now),
        );
        summary += &format!(
            "<h2>Vos contacts avec la mairie ({})</h2>\n<ul>\n",
            entries.len()
        );
        for e in &entries {
            summary += &format!(
                "<li>{} — {}</li>\n",
                html(&at(&e.occurred_at)),
                html(&render::summary(e, commune))
            );
        }
        summary += &format!(
            "</ul>\n<h2>Vos demandes ({})</h2>\n<p>Détail, historique et réponses dans donnees.json.</p>\n<h2>Consultations de votre dossier par les agents ({})</h2>\n</body></html>\n",
            data["demandes"].as_array().map_or(0, Vec::len),
            data["consultations"].as_array().map_or(0, Vec::len),
        );
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let internal =
            |e: &dyn std::fmt::Display| Error::Internal(format!("writing the export: {e}"));
        let mut put = |path: &str, bytes: &[u8]| -> Result<()> {
            zip.start_file(path, options).map_err(|e| internal(&e))?;
            zip.write_all(bytes).map_err(|e| internal(&e))
        };
        put(
            "donnees.json",
            &serde_json::to_vec_pretty(&data).map_err(|e| internal(&e))?,
        )?;
        put("resume.html", summary.as_bytes())?;
        let mut n_documents = 0;
        for (path, sha) in &documents {
            let stored = self.content.read(sha).await.map_err(|e| {
                Error::Unavailable(format!("le dépôt des documents ne répond pas : {e}"))
            })?;
            // A document erased with another record (or never stored) is left out.
            if let Some(bytes) = stored {
                put(path, &bytes)?;
                n_documents += 1;
            }
        }
        let bytes = zip.finish().map_err(|e| internal(&e))?.into_inner();
        Ok(Export {
            zip: bytes,
            contacts,
            documents: n_documents,
        })
    }
}
