//! Written answers (the outbound channel): compose an answer to a request on the citizen's
//! preferred channel (or another, with the reason kept), preview it, put it in the outbox;
//! its status; the print queue of letters; and the outcomes the sender, the printers and the
//! bounce handlers report. Delivering is the sender's job (`contacthub_adapters::outbound`).

use crate::auth::{Scope, System};
use crate::commands::{self, Content};
use crate::{App, Error, Result};
use contacthub_core::event::content_fingerprint;
use contacthub_core::fold::answers::postal_lines;
use contacthub_core::fold::citizens::display_name;
use contacthub_core::identity::{normalize_phone, valid_id};
use contacthub_core::limits::{self, quote};
use contacthub_core::outbound::{preferred_channel, sms_segments, MAX_SMS_SEGMENTS};
use contacthub_core::pb::{self, answer_outcome::Kind, event::Payload, Channel, RequestStatus};
use contacthub_core::render::channel_fr;
use contacthub_documents::answer_letter_pdf;
use contacthub_proto::ts;
use sha2::{Digest, Sha256};

/// An answer ready to be written: the event, and what the preview shows.
struct Composed {
    event: pb::Event,
    preview: pb::AnswerPreview,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn written(channel: i32) -> bool {
    [
        Channel::Email,
        Channel::Sms,
        Channel::Courrier,
        Channel::WebForm,
    ]
    .map(|c| c as i32)
    .contains(&channel)
}

/// The scope of `actor` in `tenant` if it is one of the hub's parts `allowed` to do this.
fn hub_part(actor: System, allowed: &[System], tenant: &str) -> Result<Scope> {
    actor.allowed(allowed, "deliver answers nor report on them")?;
    Ok(Scope::system(actor, tenant))
}

impl App {
    /// Builds the answer `r` asks for, checking everything a send would.
    fn compose(&self, scope: &Scope, r: &commands::ComposeAnswer) -> Result<Composed> {
        let tenant = scope.commune();
        let commune = self.tenant(tenant)?.clone();
        let request = self.request_for_work(scope, tenant, &r.reference)?;
        if request.status == RequestStatus::Closed as i32 {
            return Err(Error::Invalid(format!(
                "la demande {} est clôturée : rouvrez-la pour répondre de nouveau",
                request.reference
            )));
        }
        let Some(requester) = request.requesters.first() else {
            return Err(Error::Invalid(format!(
                "la demande {} n'a pas de demandeur à qui répondre",
                request.reference
            )));
        };
        let citizen_id = self.store.canonical(tenant, requester)?;
        let identity = self
            .store
            .citizen(tenant, &citizen_id)?
            .and_then(|c| c.identity)
            .unwrap_or_default();
        let preferred = preferred_channel(&identity);
        let channel = match (r.channel as i32, preferred) {
            (0, Some(p)) => p as i32,
            (0, None) => {
                return Err(Error::Invalid(
                    "l'usager n'a consenti à aucun canal écrit : choisissez le courriel, le SMS, le courrier ou le portail".into(),
                ))
            }
            (c, _) if !written(c) => {
                return Err(Error::Invalid(
                    "la réponse part par écrit : courriel, SMS, courrier ou portail".into(),
                ))
            }
            (c, _) => c,
        };
        let reason = r.channel_reason.trim();
        if preferred.is_some_and(|p| p as i32 != channel) && reason.is_empty() {
            return Err(Error::Invalid(format!(
                "l'usager préfère le canal « {} » : indiquez pourquoi vous répondez par « {} »",
                channel_fr(preferred.map_or(0, |p| p as i32)),
                channel_fr(channel)
            )));
        }
        if reason.chars().count() > limits::LABEL_CHARS {
            return Err(Error::Invalid(format!(
                "le motif du canal dépasse {} caractères",
                limits::LABEL_CHARS
            )));
        }
        let catalogue = r.catalogue_answer_id.trim();
        let mut text = r.text.trim().to_string();
        if !catalogue.is_empty() {
            let c = self
                .store
                .catalogue_answer(tenant, catalogue)?
                .filter(|c| !c.withdrawn)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "aucune réponse validée {} dans cette commune (ou elle a été retirée)",
                        quote(catalogue)
                    ))
                })?;
            if text.is_empty() {
                text = c.text;
            }
        }
        if text.is_empty() {
            return Err(Error::Invalid(
                "écrivez le texte de la réponse (ou partez d'une réponse validée)".into(),
            ));
        }
        if text.chars().count() > limits::TEXT_CHARS {
            return Err(Error::Invalid(format!(
                "le texte fait {} caractères ; la limite est {}",
                text.chars().count(),
                limits::TEXT_CHARS
            )));
        }
        let subject = match r.subject.trim() {
            "" => format!("Votre demande {}", request.reference),
            s => s.to_string(),
        };
        if subject.chars().count() > limits::LABEL_CHARS {
            return Err(Error::Invalid(format!(
                "l'objet dépasse {} caractères",
                limits::LABEL_CHARS
            )));
        }
        if r.idempotency_key.chars().count() > 128 {
            return Err(Error::Invalid(
                "la clé d'idempotence dépasse 128 caractères".into(),
            ));
        }
        let mut party = pb::Party {
            citizen_id: citizen_id.clone(),
            name: display_name(&identity),
            ..Default::default()
        };
        // The postal address, for a letter (printed, or attached to an e-mail).
        party.address = identity.addresses.first().map(|a| pb::PostalAddress {
            lines: [
                format!("{} {}", a.number, a.street).trim().to_string(),
                a.complement.trim().to_string(),
            ]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect(),
            postal_code: a.postcode.clone(),
            city: a.city.clone(),
            country: String::new(),
        });
        let mut segments = 0;
        let missing = |what: &str| {
            Error::Invalid(format!(
                "la fiche de l'usager n'a pas {what} : complétez sa fiche ou choisissez un autre canal"
            ))
        };
        match Channel::try_from(channel).unwrap_or(Channel::Unspecified) {
            Channel::Email => {
                party.email = identity
                    .emails
                    .first()
                    .cloned()
                    .ok_or_else(|| missing("d'adresse de courriel"))?;
            }
            Channel::Sms => {
                party.phone = identity
                    .phones
                    .iter()
                    .find_map(|p| normalize_phone(p))
                    .ok_or_else(|| missing("de numéro de téléphone"))?;
                if self.store.sms_stopped(tenant, &party.phone)?.is_some() {
                    return Err(Error::Invalid(
                        "l'usager a répondu STOP aux SMS de la mairie : répondez par un autre canal"
                            .into(),
                    ));
                }
                segments = sms_segments(&text);
                if segments > MAX_SMS_SEGMENTS {
                    return Err(Error::Invalid(format!(
                        "le texte tient en {segments} SMS ; la limite est {MAX_SMS_SEGMENTS} : raccourcissez-le ou répondez par courriel ou courrier"
                    )));
                }
            }
            Channel::Courrier if party.address.is_none() => {
                return Err(missing("d'adresse postale"));
            }
            _ => {}
        }
        let source_id = if r.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            r.idempotency_key.clone()
        };
        let mut e = self.internal_event(
            "answers",
            tenant,
            &source_id,
            &scope.agent_id(),
            Payload::AnswerComposed(pb::AnswerComposed {
                channel,
                catalogue_answer_id: catalogue.to_string(),
                channel_reason: reason.to_string(),
                attach_letter: r.attach_letter && channel == Channel::Email as i32,
                message_nonce: uuid::Uuid::new_v4().simple().to_string(),
            }),
        );
        e.direction = pb::Direction::Outbound as i32;
        e.request_id = request.reference.clone();
        e.category = request.category;
        e.personal = Some(pb::Personal {
            party: Some(party.clone()),
            subject: subject.clone(),
            text: text.clone(),
            ..Default::default()
        });
        e.fingerprint = content_fingerprint(&Default::default(), &[&r.content()]);
        // What the letter will look like (a courrier, or attached to an e-mail).
        let draft = pb::Answer {
            request_reference: request.reference.clone(),
            subject: subject.clone(),
            text: text.clone(),
            postal_lines: postal_lines(&party),
            composed_at: e.occurred_at,
            follow_up_code: self.follow_up_code(tenant, &request.reference),
            ..Default::default()
        };
        let with_letter = channel == Channel::Courrier as i32
            || (channel == Channel::Email as i32 && r.attach_letter);
        let letter = if with_letter {
            answer_letter_pdf(&draft, &commune, &request.service)
        } else {
            Vec::new()
        };
        let preview = pb::AnswerPreview {
            channel,
            preferred: preferred.is_some_and(|p| p as i32 == channel),
            recipient: match Channel::try_from(channel).unwrap_or(Channel::Unspecified) {
                Channel::Email => party.email.clone(),
                Channel::Sms => party.phone.clone(),
                Channel::WebForm => citizen_id,
                _ => String::new(),
            },
            postal_lines: draft.postal_lines,
            subject,
            text,
            sms_segments: segments,
            letter_pdf: letter,
        };
        Ok(Composed { event: e, preview })
    }

    /// The answer as it would be sent; writes nothing.
    pub fn preview_answer(
        &self,
        scope: &Scope,
        r: &commands::ComposeAnswer,
    ) -> Result<pb::AnswerPreview> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let composed = self.compose(scope, r)?;
        let citizen = composed
            .event
            .personal
            .as_ref()
            .and_then(|p| p.party.as_ref())
            .map(|p| p.citizen_id.clone())
            .unwrap_or_default();
        self.read_by(
            scope,
            &citizen,
            crate::audit::Reading::Preview,
            &r.reference,
        )?;
        Ok(composed.preview)
    }

    /// Puts the answer in the outbox; returns it once visible. The sender delivers it.
    pub async fn send_answer(
        &self,
        scope: &Scope,
        r: &commands::ComposeAnswer,
    ) -> Result<pb::Answer> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let composed = self.compose(scope, r)?;
        self.write(&composed.event).await?;
        self.answer(tenant, &composed.event.event_id)
    }

    /// An answer by its id, whoever asks: for the checks and the hub's own parts only.
    pub(crate) fn answer(&self, tenant: &str, answer_id: &str) -> Result<pb::Answer> {
        self.tenant(tenant)?;
        if !valid_id(answer_id) {
            return Err(Error::Invalid(format!(
                "{:?} n'est pas un identifiant de réponse",
                quote(answer_id)
            )));
        }
        self.store.answer(tenant, answer_id)?.ok_or_else(|| {
            Error::NotFound(format!(
                "aucune réponse {} dans cette commune",
                quote(answer_id)
            ))
        })
    }

    /// An answer as `agent` may see it: one of a request they see.
    pub fn get_answer(&self, scope: &Scope, answer_id: &str) -> Result<pb::Answer> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let a = self.answer(tenant, answer_id)?;
        self.request_for_work(scope, tenant, &a.request_reference)
            .map_err(|_| {
                Error::NotFound(format!(
                    "aucune réponse {} dans cette commune",
                    quote(answer_id)
                ))
            })?;
        self.read_answer(scope, &a)?;
        Ok(a)
    }

    /// Records that `scope` read answer `a` (its text, its letter).
    fn read_answer(&self, scope: &Scope, a: &pb::Answer) -> Result<()> {
        self.read_by(
            scope,
            &a.citizen_id,
            crate::audit::Reading::Answer,
            &a.answer_event_id,
        )
    }

    /// The answers of a request, oldest first.
    pub fn list_answers(&self, scope: &Scope, reference: &str) -> Result<Vec<pb::Answer>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let r = self.request_for_work(scope, tenant, reference)?;
        let answers = self.store.request_answers(tenant, &r.reference)?;
        for a in &answers {
            self.read_answer(scope, a)?;
        }
        Ok(answers)
    }

    /// The letter of an answer the sender delivers (attached to an e-mail, printed).
    pub fn answer_letter_for(&self, actor: System, a: &pb::Answer) -> Result<Vec<u8>> {
        hub_part(actor, &[System::Sender], &a.tenant)?;
        self.answer_letter(a)
    }

    /// The letter of an answer, as printed or attached (an answer the caller already read).
    pub(crate) fn answer_letter(&self, a: &pb::Answer) -> Result<Vec<u8>> {
        let commune = self.tenant(&a.tenant)?;
        let service = self
            .store
            .request(&a.tenant, &a.request_reference)?
            .map(|r| r.service)
            .unwrap_or_default();
        let a = pb::Answer {
            follow_up_code: self.follow_up_code(&a.tenant, &a.request_reference),
            ..a.clone()
        };
        Ok(answer_letter_pdf(&a, commune, &service))
    }

    /// A commune's letters waiting to be printed, oldest first, with their PDF and its hash
    /// (of requests `agent` sees).
    pub fn print_queue(&self, scope: &Scope) -> Result<Vec<pb::PrintItem>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let mut out = Vec::new();
        for a in self.store.print_queue(tenant)? {
            if self
                .request_for_work(scope, tenant, &a.request_reference)
                .is_err()
            {
                continue;
            }
            let pdf = self.answer_letter(&a)?;
            self.read_answer(scope, &a)?;
            out.push(pb::PrintItem {
                pdf_sha256: sha256_hex(&pdf),
                letter_pdf: pdf,
                answer: Some(a),
            });
        }
        Ok(out)
    }

    /// The letters of the print queue named by `answer_ids` (all of them when empty), in one
    /// PDF to print at once, with the answers it holds. Only letters of requests `agent` sees.
    pub fn print_batch(
        &self,
        scope: &Scope,
        answer_ids: &[String],
    ) -> Result<(Vec<u8>, Vec<pb::Answer>)> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let commune = self.tenant(tenant)?.clone();
        let mut chosen = Vec::new();
        for a in self.store.print_queue(tenant)? {
            let listed = answer_ids.is_empty() || answer_ids.contains(&a.answer_event_id);
            if !listed {
                continue;
            }
            let Ok(request) = self.request_for_work(scope, tenant, &a.request_reference) else {
                continue;
            };
            let code = self.follow_up_code(tenant, &a.request_reference);
            chosen.push((
                pb::Answer {
                    follow_up_code: code,
                    ..a
                },
                request.service,
            ));
        }
        if chosen.is_empty() {
            return Err(Error::Invalid(
                "aucune lettre de la file d'impression n'est choisie".into(),
            ));
        }
        let letters: Vec<(&pb::Answer, &str)> =
            chosen.iter().map(|(a, s)| (a, s.as_str())).collect();
        let pdf = contacthub_documents::answer_letters_pdf(&letters, &commune);
        for (a, _) in &chosen {
            self.read_answer(scope, a)?;
        }
        Ok((pdf, chosen.into_iter().map(|(a, _)| a).collect()))
    }

    /// A letter of the print queue was printed and posted: the request's written answer, with
    /// the printed PDF's hash (as the queue listed it) as its proof.
    pub async fn mark_printed(
        &self,
        scope: &Scope,
        answer_id: &str,
        pdf_sha256: &str,
    ) -> Result<pb::Answer> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        let a = self.get_answer(scope, answer_id)?;
        if a.channel != Channel::Courrier as i32 {
            return Err(Error::Invalid(format!(
                "la réponse {} part par {}, pas par courrier",
                a.answer_event_id,
                channel_fr(a.channel)
            )));
        }
        if a.status == pb::AnswerStatus::Delivered as i32 {
            return Ok(a);
        }
        let pdf = self.answer_letter(&a)?;
        let hash = sha256_hex(&pdf);
        if !pdf_sha256.is_empty() && !pdf_sha256.eq_ignore_ascii_case(&hash) {
            return Err(Error::Conflict(format!(
                "la lettre de la réponse {} n'est plus celle de la liste (empreinte {}) : affichez de nouveau la file d'impression",
                a.answer_event_id,
                quote(pdf_sha256)
            )));
        }
        let outcome = pb::AnswerOutcome {
            answer_event_id: a.answer_event_id.clone(),
            kind: Kind::Delivered as i32,
            attempt: 1,
            pdf_sha256: hash,
            ..Default::default()
        };
        self.record_outcome(scope, &a, outcome).await
    }

    /// What the sender found delivering an answer (no agent: the hub itself); returns the
    /// answer as it is then. Not for front-ends: agents mark letters printed
    /// ([`App::mark_printed`]), bounces come from providers ([`App::answer_bounced`]).
    pub async fn record_delivery(
        &self,
        actor: System,
        a: &pb::Answer,
        outcome: pb::AnswerOutcome,
    ) -> Result<pb::Answer> {
        let scope = hub_part(actor, &[System::Sender], &a.tenant)?;
        self.record_outcome(&scope, a, outcome).await
    }

    /// Writes what happened to an answer, by `agent` if one did it. The outcome's id is
    /// derived from the answer, the kind and the attempt, so a report repeated after a crash
    /// is written once.
    async fn record_outcome(
        &self,
        scope: &Scope,
        a: &pb::Answer,
        outcome: pb::AnswerOutcome,
    ) -> Result<pb::Answer> {
        let source_id = format!(
            "{}/{}/{}",
            a.answer_event_id,
            Kind::try_from(outcome.kind)
                .unwrap_or(Kind::Unspecified)
                .as_str_name(),
            outcome.attempt
        );
        let mut e = self.internal_event(
            "outbound",
            &a.tenant,
            &source_id,
            &scope.agent_id(),
            Payload::AnswerOutcome(outcome),
        );
        e.direction = pb::Direction::Outbound as i32;
        e.request_id = a.request_reference.clone();
        let result = match &e.payload {
            Some(Payload::AnswerOutcome(o)) if o.kind == Kind::Delivered as i32 => "delivered",
            Some(Payload::AnswerOutcome(o)) if o.kind == Kind::Bounced as i32 => "bounced",
            Some(Payload::AnswerOutcome(o)) if o.retry_at.is_some() => "retrying",
            _ => "failed",
        };
        self.write(&e).await?;
        // Every outcome, sent by the sender or printed by the mail room, under one name.
        let channel = pb::Channel::try_from(a.channel)
            .map(|c| {
                c.as_str_name()
                    .trim_start_matches("CHANNEL_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        metrics::counter!("contacthub_answers_total", "channel" => channel, "outcome" => result)
            .increment(1);
        self.answer(&a.tenant, &a.answer_event_id)
    }

    /// A delivered answer came back (an SMTP delivery status notification, the SMS gateway's
    /// status callback), named by the provider's message id: the request goes back to its
    /// worklist. `None` when no delivered answer of this commune has that id.
    pub async fn answer_bounced(
        &self,
        actor: System,
        tenant: &str,
        provider_message_id: &str,
        reason: &str,
    ) -> Result<Option<pb::Answer>> {
        self.tenant(tenant)?;
        let scope = hub_part(actor, &[System::Adapters, System::Sender], tenant)?;
        let Some(id) = self
            .store
            .by_provider_message(tenant, provider_message_id)?
        else {
            return Ok(None);
        };
        let Some(a) = self.store.answer(tenant, &id)? else {
            return Ok(None);
        };
        if a.status != pb::AnswerStatus::Delivered as i32 {
            return Ok(Some(a));
        }
        let reason: String = reason.chars().take(limits::NOTE_CHARS).collect();
        let outcome = pb::AnswerOutcome {
            answer_event_id: a.answer_event_id.clone(),
            kind: Kind::Bounced as i32,
            attempt: a.attempts,
            provider_message_id: a.provider_message_id.clone(),
            error: reason,
            ..Default::default()
        };
        self.record_outcome(&scope, &a, outcome).await.map(Some)
    }

    /// Answers of every commune due in the outbox now, at most `limit`, due first.
    pub fn outbox_due(&self, actor: System, limit: usize) -> Result<Vec<pb::Answer>> {
        hub_part(actor, &[System::Sender], "")?;
        let now = (self.clock)();
        let mut out = Vec::new();
        for (tenant, id) in self.store.outbox_due(now, limit)? {
            out.extend(self.store.answer(&tenant, &id)?);
        }
        Ok(out)
    }

    /// When the next answer of the outbox is due, if any.
    pub fn outbox_next_due(&self, actor: System) -> Result<Option<i64>> {
        hub_part(actor, &[System::Sender], "")?;
        Ok(self
            .store
            .outbox_due(i64::MAX, 1)?
            .first()
            .and_then(|(t, id)| self.store.answer(t, id).ok().flatten())
            .and_then(|a| a.next_attempt_at.as_ref().and_then(ts::to_micros)))
    }
}
