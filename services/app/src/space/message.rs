//! « Écrire à la mairie »: a signed-in person's message, its attachments kept in the content
//! store first, then one batch on the log: a contact from the citizens' space (a web form
//! signed in: the hub knows who wrote) joining one of their open requests, or with a new
//! request in the category they chose, for the commune's service of that category.

use super::Citizen;
use crate::commands::WriteToTownHall;
use crate::{App, Error, Result};
use contacthub_core::event::{contact, content_fingerprint};
use contacthub_core::limits::{self, quote};
use contacthub_core::pb::{self, event::Payload, Category, RequestStatus};

/// The source of what the citizens' space writes on the log.
pub(crate) const SOURCE: &str = "espace-citoyen";
/// Documents joined to one message, at most.
pub const MAX_ATTACHMENTS: usize = 3;
/// The largest document, in bytes.
pub const MAX_ATTACHMENT_BYTES: u64 = 5 * 1024 * 1024;
/// The kinds of documents taken, as their content says (never as the browser names them).
pub const ACCEPTED: [&str; 3] = ["application/pdf", "image/jpeg", "image/png"];

/// A document as the browser sent it.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The file name of `raw` (a path some browsers send), without control characters, at most
/// [`limits::FILE_NAME_CHARS`] characters; « pièce jointe » when nothing is left.
fn file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(limits::FILE_NAME_CHARS)
        .collect();
    match clean.trim() {
        "" => "pièce jointe".into(),
        t => t.to_string(),
    }
}

impl App {
    /// Records the person's message (and, for a new matter, its request); the reference of the
    /// request it belongs to.
    pub async fn write_to_town_hall(&self, c: &Citizen, m: &WriteToTownHall) -> Result<String> {
        self.write_from_space(c, m, None).await
    }

    /// [`App::write_to_town_hall`], a new matter going to `service` when given (else the
    /// commune's service of its category).
    pub(crate) async fn write_from_space(
        &self,
        c: &Citizen,
        m: &WriteToTownHall,
        service: Option<&str>,
    ) -> Result<String> {
        let circle = self.circle(c)?;
        let me = circle.me.clone();
        let tenant = c.tenant();
        let commune = self.tenant(tenant)?;
        let text = m.text.trim();
        let subject = m.subject.trim();
        if text.is_empty() {
            return Err(Error::Invalid("écrivez votre message".into()));
        }
        if text.chars().count() > limits::TEXT_CHARS {
            return Err(Error::Invalid(format!(
                "le message dépasse {} caractères",
                limits::TEXT_CHARS
            )));
        }
        if subject.chars().count() > limits::LABEL_CHARS {
            return Err(Error::Invalid(format!(
                "l'objet dépasse {} caractères",
                limits::LABEL_CHARS
            )));
        }
        if m.idempotency_key.chars().count() > 128 {
            return Err(Error::Invalid(
                "la clé d'idempotence dépasse 128 caractères".into(),
            ));
        }
        // Which matter: one of theirs still open, or a new one in a category.
        let existing = m.reference.trim();
        let (reference, category, service) = if existing.is_empty() {
            if subject.is_empty() {
                return Err(Error::Invalid("indiquez l'objet de votre demande".into()));
            }
            if m.category == Category::Unspecified {
                return Err(Error::Invalid(
                    "choisissez le domaine de votre demande".into(),
                ));
            }
            let service = service.unwrap_or_else(|| {
                commune
                    .service_of_category(m.category as i32)
                    .map_or("accueil", |s| s.code.as_str())
            });
            (None, m.category, service.to_string())
        } else {
            let r = self
                .store
                .request(tenant, existing)?
                .filter(|r| circle.whose(&r.requesters).is_some())
                .ok_or_else(|| {
                    Error::NotFound(format!("vous n'avez pas de demande {}", quote(existing)))
                })?;
            if r.status == RequestStatus::Closed as i32 {
                return Err(Error::Invalid(format!(
                    "la demande {} est close : écrivez une nouvelle demande",
                    r.reference
                )));
            }
            (Some(r.reference.clone()), r.category(), r.service.clone())
        };
        if m.attachments.len() > MAX_ATTACHMENTS {
            return Err(Error::Invalid(format!(
                "joignez au plus {MAX_ATTACHMENTS} documents"
            )));
        }
        // The documents first (kept by content, so a message sent again stores nothing new).
        let mut attachments = Vec::new();
        let mut names = Vec::new();
        for u in &m.attachments {
            let name = file_name(&u.name);
            let kind = crate::content::sniff(&u.bytes)
                .filter(|k| ACCEPTED.contains(k))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "« {} » n'est ni un PDF ni une image JPEG ou PNG",
                        quote(&name)
                    ))
                })?;
            if u.bytes.len() as u64 > MAX_ATTACHMENT_BYTES {
                return Err(Error::Invalid(format!(
                    "« {} » dépasse {} Mo",
                    quote(&name),
                    MAX_ATTACHMENT_BYTES / (1024 * 1024)
                )));
            }
            let stored = self
                .content
                .put_document(&u.bytes, kind, MAX_ATTACHMENT_BYTES)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "citizens' space: a document could not be stored");
                    Error::Unavailable("le document n'a pas pu être enregistré".into())
                })?;
            attachments.push(stored);
            names.push(name);
        }
        let now = self.now();
        let key = if m.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            m.idempotency_key.clone()
        };
        let source_id = format!("{me}/{key}");
        let party = pb::Party {
            citizen_id: me.clone(),
            ..Default::default()
        };
        let mut e = contact(
            tenant,
            SOURCE,
            &source_id,
            now,
            now,
            Payload::WebForm(pb::WebForm {
                form_slug: "message".into(),
                submission_id: format!("{SOURCE}/{source_id}"),
                signed_in: true,
                thread_id: String::new(),
            }),
            party.clone(),
        );
        e.category = category as i32;
        e.request_id = reference.clone().unwrap_or_default();
        if let Some(p) = e.personal.as_mut() {
            p.subject = subject.to_string();
            p.text = text.to_string();
            p.attachment_names = names;
        }
        let documents: Vec<&[u8]> = m.attachments.iter().map(|u| u.bytes.as_slice()).collect();
        e.fingerprint = content_fingerprint(&e, &documents);
        e.attachments = attachments;
        let mut batch = vec![e];
        if reference.is_none() {
            let mut r = contact(
                tenant,
                SOURCE,
                &format!("{}/demande", batch[0].event_id),
                now,
                now,
                Payload::RequestOpened(pb::RequestOpened {
                    service,
                    from_contact_event_id: batch[0].event_id.clone(),
                    ..Default::default()
                }),
                party,
            );
            r.direction = pb::Direction::Internal as i32;
            r.category = category as i32;
            if let Some(p) = r.personal.as_mut() {
                p.subject = subject.to_string();
            }
            r.fingerprint = content_fingerprint(&r, &[]);
            batch.push(r);
        }
        self.append_and_wait(&batch).await?;
        tracing::info!(
            tenant,
            "citizens' space: a message written to the town hall"
        );
        match reference {
            Some(r) => Ok(r),
            None => self
                .store
                .request_by_event(tenant, &batch[1].event_id)?
                .ok_or_else(|| Error::Internal("the space's request projected unseen".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_their_last_part_only() {
        assert_eq!(
            file_name("C:\\Users\\m\\facture EDF.pdf"),
            "facture EDF.pdf"
        );
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("\u{7}"), "pièce jointe");
        assert_eq!(
            file_name(&"a".repeat(400)).chars().count(),
            limits::FILE_NAME_CHARS
        );
    }
}
