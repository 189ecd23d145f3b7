//! A person's own requests in their space: every request they made, on any channel, with its
//! answers and the documents they may download — another's is « not found », as is one that
//! does not exist.

use super::Citizen;
use crate::{App, Error, Result};
use contacthub_core::limits::quote;
use contacthub_core::pb;
use contacthub_core::render::status_fr;
use contacthub_proto::ts;

/// One of a person's requests as their space shows it: French words, times in µs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mine {
    pub reference: String,
    pub subject: String,
    /// The service handling it, by name.
    pub service: String,
    pub status_fr: &'static str,
    /// How it was made (« par téléphone », « à l'accueil de la mairie »…).
    pub channel_fr: &'static str,
    pub opened_us: Option<i64>,
    pub due_us: Option<i64>,
    pub answered_us: Option<i64>,
    /// How the written answer went (« par courrier »…), once answered.
    pub answered_by: &'static str,
    pub closed_us: Option<i64>,
    /// Not closed: the person may still write about it.
    pub open: bool,
    /// The child it is for, by first name (empty: the person's own).
    pub for_whom: String,
    pub follow_up_code: String,
}

/// A written answer a person received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub at_us: Option<i64>,
    pub channel_fr: &'static str,
    pub subject: String,
    pub text: String,
    /// The letter's number among the request's documents, when it went by post.
    pub letter: Option<usize>,
}

/// Something the person wrote about their request (a letter, a mail, a message of the space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub at_us: Option<i64>,
    /// How it came (« par courrier », « en ligne »…).
    pub how: &'static str,
    pub text: String,
}

/// One request of a person, whole: its answers and the documents of it they may download
/// (what they sent, the letters they were sent), numbered as [`App::my_document`] takes them.
#[derive(Debug, Clone)]
pub struct MineInFull {
    pub request: Mine,
    /// What the person wrote about it, oldest first.
    pub messages: Vec<Sent>,
    pub answers: Vec<Received>,
    pub documents: Vec<(pb::Attachment, String)>,
}

impl App {
    /// Every request the person made (on any channel), most recent first.
    pub fn my_requests(&self, c: &Citizen) -> Result<Vec<Mine>> {
        let circle = self.circle(c)?;
        let commune = self.tenant(&c.tenant)?;
        let ids: Vec<String> = circle.ids.keys().cloned().collect();
        let mut out: Vec<(i64, Mine)> = self
            .store
            .requests_of(&c.tenant, &ids)?
            .into_iter()
            .filter_map(|r| {
                let whose = circle.whose(&r.requesters)?.to_string();
                let opened = r.opened_at.as_ref().and_then(ts::to_micros).unwrap_or(0);
                let mut m = self.mine(commune, r);
                m.for_whom = whose;
                Some((opened, m))
            })
            .collect();
        out.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.reference.cmp(&a.1.reference))
        });
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    fn mine(&self, commune: &contacthub_core::tenant::Tenant, r: pb::Request) -> Mine {
        let micros = |t: &Option<contacthub_proto::Timestamp>| t.as_ref().and_then(ts::to_micros);
        Mine {
            follow_up_code: self.follow_up_code(&commune.code, &r.reference),
            subject: r.subject.clone(),
            service: commune.service_name(&r.service).to_string(),
            status_fr: status_fr(r.status),
            channel_fr: how(r.channel),
            opened_us: micros(&r.opened_at),
            due_us: micros(&r.due_at),
            answered_us: micros(&r.answered_at),
            answered_by: if r.answered_at.is_some() {
                how(r.answer_channel)
            } else {
                ""
            },
            closed_us: micros(&r.closed_at),
            open: r.status != pb::RequestStatus::Closed as i32,
            for_whom: String::new(),
            reference: r.reference,
        }
    }

    /// One of the person's requests, with its answers and documents; another's is « not
    /// found », as is one that does not exist.
    pub fn my_request(&self, c: &Citizen, reference: &str) -> Result<MineInFull> {
        let circle = self.circle(c)?;
        let ids: Vec<&String> = circle.ids.keys().collect();
        let not_found =
            || Error::NotFound(format!("vous n'avez pas de demande {}", quote(reference)));
        if reference.len() > 40 {
            return Err(not_found());
        }
        let r = self
            .store
            .request(&c.tenant, reference)?
            .filter(|r| circle.whose(&r.requesters).is_some())
            .ok_or_else(not_found)?;
        let mut documents = Vec::new();
        let mut messages = Vec::new();
        for contact in &r.contacts {
            let Some(entry) = self.store.applied_entry(&c.tenant, contact)? else {
                continue;
            };
            // What the person sent (not another requester's of a collective request); the
            // town hall's own papers of a contact stay with it.
            if entry.direction != pb::Direction::Inbound as i32 || !ids.contains(&&entry.citizen_id)
            {
                continue;
            }
            let detail = self
                .store
                .contact_detail(&c.tenant, contact)?
                .unwrap_or_default();
            // Their own words only: the text of a call, a desk visit or a letter is the
            // agent's note or summary, not something the person wrote.
            if written_by_the_person(entry.channel) && !detail.text.trim().is_empty() {
                messages.push(Sent {
                    at_us: entry.occurred_at.as_ref().and_then(ts::to_micros),
                    how: how(entry.channel),
                    text: detail.text.clone(),
                });
            }
            let names = detail.attachment_names;
            for (i, a) in entry.attachments.iter().enumerate() {
                let name = names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("pièce {}", documents.len() + 1));
                documents.push((a.clone(), name));
            }
        }
        let mut answers = Vec::new();
        for a in self.store.request_answers(&c.tenant, &r.reference)? {
            let delivered = a.status == pb::AnswerStatus::Delivered as i32;
            if !delivered || !ids.contains(&&a.citizen_id) {
                continue;
            }
            let letter = (!a.pdf_sha256.is_empty()).then(|| {
                documents.push((
                    pb::Attachment {
                        sha256: a.pdf_sha256.clone(),
                        media_type: "application/pdf".into(),
                        size_bytes: 0,
                    },
                    format!("Courrier de réponse {}.pdf", r.reference),
                ));
                documents.len() - 1
            });
            answers.push(Received {
                at_us: a
                    .delivered_at
                    .as_ref()
                    .or(a.composed_at.as_ref())
                    .and_then(ts::to_micros),
                channel_fr: how(a.channel),
                subject: a.subject,
                text: a.text,
                letter,
            });
        }
        let commune = self.tenant(&c.tenant)?;
        let whose = circle.whose(&r.requesters).unwrap_or_default().to_string();
        let mut request = self.mine(commune, r);
        request.for_whom = whose;
        Ok(MineInFull {
            request,
            messages,
            answers,
            documents,
        })
    }

    /// Document `n` of the person's request `reference` ([`MineInFull::documents`]).
    pub async fn my_document(
        &self,
        c: &Citizen,
        reference: &str,
        n: usize,
    ) -> Result<(pb::Attachment, String, Vec<u8>)> {
        let full = self.my_request(c, reference)?;
        let (a, name) = full
            .documents
            .get(n)
            .cloned()
            .ok_or_else(|| Error::NotFound("cette demande n'a pas ce document".into()))?;
        // A letter posted to them is made again as it was printed (its hash is the proof).
        let posted = self
            .store
            .request_answers(&c.tenant, reference)?
            .into_iter()
            .find(|answer| !a.sha256.is_empty() && answer.pdf_sha256 == a.sha256);
        if let Some(answer) = posted {
            let bytes = self.answer_letter(&answer)?;
            return Ok((a, name, bytes));
        }
        let (a, bytes) = self
            .document(&[a], 0, "cette demande n'a pas ce document")
            .await?;
        Ok((a, name, bytes))
    }
}

/// How something reached the town hall or the person, in the person's words.
/// Whether a contact's text on `channel` is what the person wrote themselves.
fn written_by_the_person(channel: i32) -> bool {
    matches!(
        pb::Channel::try_from(channel),
        Ok(pb::Channel::WebForm | pb::Channel::Email | pb::Channel::Sms)
    )
}

fn how(channel: i32) -> &'static str {
    match pb::Channel::try_from(channel).unwrap_or(pb::Channel::Unspecified) {
        pb::Channel::Phone => "par téléphone",
        pb::Channel::Courrier => "par courrier",
        pb::Channel::WebForm => "en ligne",
        pb::Channel::Sms => "par SMS",
        pb::Channel::Email => "par courriel",
        // At the accueil, or an élu's permanence.
        pb::Channel::Desk => "en personne",
        pb::Channel::BackOffice | pb::Channel::Unspecified => "auprès de la mairie",
    }
}
