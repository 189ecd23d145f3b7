//! Notices to a person outside any written answer: an appointment's confirmation and its
//! reminder the day before, a request's acknowledgement with its follow-up code. Each is
//! queued once as an event whose id is made of what it is about (`rappel/<appointment>`),
//! then sent by the sender like the written answers — exactly once, the notice's id as the
//! providers' idempotency key, its outcome on the log. Appointments' notices go on the
//! person's preferred channel when it is e-mail or SMS (with their consent): someone who
//! chose the post, or consented to nothing, gets none. An acknowledgement answers a message
//! on the address it came from.

use crate::auth::System;
use crate::{App, Error, Result};
use chrono::Timelike;
use contacthub_core::courrier::{paris, paris_local_to_utc_us};
use contacthub_core::identity::{normalize_email, normalize_phone};
use contacthub_core::outbound::preferred_channel;
use contacthub_core::pb::{self, appointment::Status, event::Payload, notice_queued::Kind};
use contacthub_core::pb::{Channel, Request};
use contacthub_core::tenant::Tenant;

/// The source of notices and their outcomes on the log.
const SOURCE: &str = "avis";
/// Reminders of tomorrow's appointments are queued within these hours (Paris), not at night.
const REMINDER_HOURS: std::ops::Range<u32> = 10..19;

const WEEKDAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

/// « lundi 07/12/2026 » (Paris).
pub fn day_fr(us: i64) -> String {
    let t = paris(us);
    let weekday = chrono::Datelike::weekday(&t).num_days_from_monday() as usize;
    format!("{} {}", WEEKDAYS[weekday], t.format("%d/%m/%Y"))
}

/// « lundi 07/12/2026 à 09:20 » (Paris).
pub fn when_fr(us: i64) -> String {
    format!("{} à {}", day_fr(us), paris(us).format("%H:%M"))
}

/// A notice's words: subject and text. No « » nor ’ in texts that may go by SMS: outside the
/// GSM alphabet, one of them makes every part of the SMS hold 70 characters, not 160.
struct Words {
    subject: String,
    text: String,
}

/// What a notice is about.
enum About<'a> {
    Appointment(Kind, &'a pb::Appointment),
    /// A request's reference.
    Request(&'a str),
}

/// How the person cancels or moves an appointment.
fn appointments_link(commune: &Tenant) -> String {
    if commune.portal_url.is_empty() {
        "Pour l'annuler ou le déplacer, connectez-vous à votre espace citoyen ou appelez la mairie."
            .into()
    } else {
        format!(
            "Pour l'annuler ou le déplacer : {}/{}/rendez-vous",
            commune.portal_url,
            commune.slug()
        )
    }
}

/// Where an acknowledgement's follow-up code goes: filled in when it is sent, so the code
/// (derived from the master key) is written nowhere.
const CODE: &str = "{code}";

fn appointment_words(commune: &Tenant, a: &pb::Appointment, reminder: bool) -> Words {
    let what = commune
        .appointment(&a.kind)
        .map_or(a.kind.as_str(), |k| k.name.as_str());
    let text = if reminder {
        format!(
            "Mairie de {} : rappel de votre rendez-vous {what} demain, {}. {}",
            commune.name,
            when_fr(a.start_us),
            appointments_link(commune)
        )
    } else {
        format!(
            "Mairie de {} : votre rendez-vous {what} est confirmé le {}. {}",
            commune.name,
            when_fr(a.start_us),
            appointments_link(commune)
        )
    };
    Words {
        subject: format!("Votre rendez-vous à la mairie de {}", commune.name),
        text,
    }
}

impl App {
    /// Where an appointment's notices to `citizen` go: their preferred channel when it is
    /// e-mail or SMS, consented and held on the record.
    fn notice_party(&self, tenant: &str, citizen: &str) -> Result<Option<(Channel, pb::Party)>> {
        let Some(c) = self.store.citizen(tenant, citizen)? else {
            return Ok(None);
        };
        if c.erased.is_some() {
            return Ok(None);
        }
        let identity = c.identity.unwrap_or_default();
        let mut party = pb::Party {
            citizen_id: citizen.to_string(),
            ..Default::default()
        };
        Ok(match preferred_channel(&identity) {
            Some(Channel::Email) => identity.emails.first().map(|m| {
                party.email = m.clone();
                (Channel::Email, party)
            }),
            Some(Channel::Sms) => match identity.phones.iter().find_map(|p| normalize_phone(p)) {
                // A number that answered STOP gets no SMS.
                Some(p) if self.store.sms_stopped(tenant, &p)?.is_none() => {
                    party.phone = p;
                    Some((Channel::Sms, party))
                }
                _ => None,
            },
            _ => None,
        })
    }

    /// Queues a notice of `kind` about `about` to `party` by `channel`, once: `key` names it;
    /// one queued already is left as it is. Whether it was queued now.
    async fn queue_notice(
        &self,
        tenant: &str,
        key: &str,
        about: About<'_>,
        (channel, party): (Channel, pb::Party),
        words: Words,
    ) -> Result<bool> {
        let (kind, about, appointment_kind, request) = match about {
            About::Appointment(kind, a) => (kind, a.appointment_id.as_str(), a.kind.as_str(), ""),
            About::Request(r) => (Kind::RequestAcknowledged, r, "", r),
        };
        let mut e = self.internal_event(
            SOURCE,
            tenant,
            key,
            "",
            Payload::NoticeQueued(pb::NoticeQueued {
                kind: kind as i32,
                channel: channel as i32,
                about: about.to_string(),
                appointment_kind: appointment_kind.to_string(),
            }),
        );
        // Whose it is: the timeline withholds a confidential service's notices from others.
        e.request_id = request.to_string();
        if self.store.notice(tenant, &e.event_id)?.is_some() {
            return Ok(false);
        }
        e.direction = pb::Direction::Outbound as i32;
        e.personal = Some(pb::Personal {
            party: Some(party),
            subject: words.subject,
            text: words.text,
            ..Default::default()
        });
        self.write(&e).await?;
        Ok(true)
    }

    /// Queues the confirmation of appointment `a` just booked (or moved). A confirmation that
    /// cannot be queued does not undo the booking: it is logged.
    pub(crate) async fn confirm_appointment(&self, tenant: &str, a: &pb::Appointment) {
        let queued = async {
            let Some(to) = self.notice_party(tenant, &a.citizen_id)? else {
                return Ok(false);
            };
            let words = appointment_words(self.tenant(tenant)?, a, false);
            self.queue_notice(
                tenant,
                &format!("confirmation/{}", a.appointment_id),
                About::Appointment(Kind::AppointmentBooked, a),
                to,
                words,
            )
            .await
        };
        if let Err(e) = queued.await {
            tracing::warn!(tenant, error = %e, "an appointment's confirmation was not queued");
        }
    }

    /// Queues the reminders of tomorrow's appointments (Paris) in every commune, once each,
    /// from 10:00 to 19:00 the day before; not for one booked today (its confirmation just
    /// went). How many were queued; a commune that fails is logged and the others go on.
    pub async fn queue_reminders(&self, actor: System) -> Result<usize> {
        actor.allowed(&[System::Sender], "remind people of their appointments")?;
        let now = self.now();
        let local = paris(now);
        if !REMINDER_HOURS.contains(&local.hour()) {
            return Ok(0);
        }
        // What was booked, moved or cancelled until now is in the read model.
        self.wait_caught_up().await?;
        let today = local.date();
        let start_of = |d: chrono::NaiveDate| {
            paris_local_to_utc_us(d.and_hms_opt(0, 0, 0).unwrap_or_default())
        };
        let tomorrow = start_of(today + chrono::Duration::days(1));
        let after = start_of(today + chrono::Duration::days(2));
        let booked_today_from = start_of(today);
        let mut queued = 0;
        let tenants: Vec<String> = self.tenants().iter().map(|t| t.code.clone()).collect();
        for tenant in tenants {
            match self
                .remind_commune(&tenant, (tomorrow, after), booked_today_from)
                .await
            {
                Ok(n) => queued += n,
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "appointment reminders not queued for this commune; next try in a minute")
                }
            }
        }
        Ok(queued)
    }

    /// The reminders of one commune's appointments in `[from, to)` booked before `booked_before`.
    async fn remind_commune(
        &self,
        tenant: &str,
        (from, to): (i64, i64),
        booked_before: i64,
    ) -> Result<usize> {
        let mut queued = 0;
        for a in self.store.agenda(tenant, from, to)? {
            if a.status != Status::Booked as i32 || a.booked_us >= booked_before {
                continue;
            }
            let Some(to) = self.notice_party(tenant, &a.citizen_id)? else {
                continue;
            };
            let words = appointment_words(self.tenant(tenant)?, &a, true);
            if self
                .queue_notice(
                    tenant,
                    &format!("rappel/{}", a.appointment_id),
                    About::Appointment(Kind::AppointmentReminder, &a),
                    to,
                    words,
                )
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Notice `n` as it leaves now (an acknowledgement's follow-up code filled in), or why it
    /// no longer should: its appointment cancelled, moved or past, a reminder no longer the
    /// day before.
    pub fn notice_to_send(
        &self,
        actor: System,
        mut n: pb::Notice,
    ) -> Result<std::result::Result<pb::Notice, &'static str>> {
        actor.allowed(&[System::Sender], "send notices")?;
        let now = self.now();
        if n.channel == Channel::Sms as i32 && !self.sms_allowed(actor, &n.tenant, &n.recipient)? {
            return Ok(Err("le numéro a répondu STOP aux SMS de la mairie"));
        }
        match Kind::try_from(n.kind).unwrap_or(Kind::Unspecified) {
            Kind::AppointmentBooked | Kind::AppointmentReminder => {
                let Some(a) = self.store.appointment(&n.tenant, &n.about)? else {
                    return Ok(Err("rendez-vous inconnu"));
                };
                if a.status != Status::Booked as i32 || a.start_us <= now {
                    return Ok(Err("rendez-vous annulé, déplacé ou passé"));
                }
                let eve = paris(a.start_us).date() - chrono::Duration::days(1);
                if n.kind == Kind::AppointmentReminder as i32 && paris(now).date() != eve {
                    return Ok(Err("ce n'est plus la veille du rendez-vous"));
                }
            }
            Kind::RequestAcknowledged => {
                n.text = n
                    .text
                    .replace(CODE, &self.follow_up_code(&n.tenant, &n.about));
            }
            Kind::Unspecified => return Ok(Err("avis d'un type inconnu")),
        }
        Ok(Ok(n))
    }

    /// Acknowledges request `r`, opened from a message that came by e-mail, SMS or an online
    /// form, on the address or the number it came from: its reference, when it will be answered, and its
    /// follow-up code. Logged, not failed, when it cannot be queued.
    pub(crate) async fn acknowledge(&self, tenant: &str, r: &Request, contact: &str) {
        let queued = async {
            let Some(entry) = self.store.applied_entry(tenant, contact)? else {
                return Ok(false);
            };
            // The e-mail address or the mobile the message came from (a form's: the first
            // it gave).
            let from = &entry.party_identifier;
            let to = match Channel::try_from(entry.channel) {
                Ok(Channel::Sms | Channel::Email | Channel::WebForm) => normalize_email(from)
                    .map(|m| (Channel::Email, m))
                    .or_else(|| normalize_phone(from).map(|p| (Channel::Sms, p))),
                _ => None,
            };
            let Some((channel, address)) = to else {
                return Ok(false);
            };
            let party = pb::Party {
                citizen_id: entry.citizen_id.clone(),
                email: if channel == Channel::Email {
                    address.clone()
                } else {
                    String::new()
                },
                phone: if channel == Channel::Sms {
                    address
                } else {
                    String::new()
                },
                ..Default::default()
            };
            let commune = self.tenant(tenant)?;
            let due = r
                .due_at
                .as_ref()
                .and_then(contacthub_proto::ts::to_micros)
                .map(|us| {
                    format!(
                        " Une réponse écrite vous sera adressée au plus tard le {}.",
                        paris(us).format("%d/%m/%Y")
                    )
                })
                .unwrap_or_default();
            let follow = if commune.portal_url.is_empty() {
                format!("Pour en connaître l'avancement, donnez à la mairie sa référence et le code de suivi {CODE}.")
            } else {
                format!(
                    "Pour la suivre : {}/suivi, code de suivi {CODE}.",
                    commune.portal_url
                )
            };
            let words = Words {
                subject: format!("Votre demande {} est enregistrée", r.reference),
                text: format!(
                    "Mairie de {} : votre demande est enregistrée sous la référence {}.{due} {follow}",
                    commune.name, r.reference
                ),
            };
            self.queue_notice(
                tenant,
                &format!("accuse/{}", r.reference),
                About::Request(&r.reference),
                (channel, party),
                words,
            )
            .await
        };
        if let Err(e) = queued.await {
            tracing::warn!(tenant, error = %e, "a request's acknowledgement was not queued");
        }
    }

    /// Whether the commune may send an SMS to `phone`: not when it answered STOP (until it
    /// answers START). For the sender's last check before each SMS.
    pub fn sms_allowed(&self, actor: System, tenant: &str, phone: &str) -> Result<bool> {
        actor.allowed(&[System::Sender], "send SMS")?;
        let phone = normalize_phone(phone).unwrap_or_else(|| phone.to_string());
        Ok(self.store.sms_stopped(tenant, &phone)?.is_none())
    }

    /// When each of `phones` answered STOP to the commune's SMS (`None`: it did not), for an
    /// agent who reads the record that holds them.
    pub fn sms_stops(
        &self,
        scope: &crate::auth::Scope,
        phones: &[String],
    ) -> Result<Vec<Option<i64>>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        phones
            .iter()
            .map(|p| {
                let p = normalize_phone(p).unwrap_or_else(|| p.clone());
                Ok(self.store.sms_stopped(tenant, &p)?)
            })
            .collect()
    }

    /// Notices of every commune due now, at most `limit`, due first (for the sender).
    pub fn notices_due(&self, actor: System, limit: usize) -> Result<Vec<pb::Notice>> {
        actor.allowed(&[System::Sender], "send notices")?;
        let mut out = Vec::new();
        for (tenant, id) in self.store.notices_due(self.now(), limit)? {
            out.extend(self.store.notice(&tenant, &id)?);
        }
        Ok(out)
    }

    /// What the sender found sending notice `n`. The outcome's id is made of the notice, the
    /// result and the attempt, so a report repeated after a crash is written once.
    pub async fn record_notice_outcome(
        &self,
        actor: System,
        n: &pb::Notice,
        outcome: pb::NoticeOutcome,
    ) -> Result<()> {
        actor.allowed(&[System::Sender], "report on notices")?;
        if outcome.notice_event_id != n.notice_event_id {
            return Err(Error::Invalid("an outcome of another notice".into()));
        }
        let source_id = format!(
            "{}/{}/{}",
            n.notice_event_id,
            if outcome.sent { "sent" } else { "failed" },
            outcome.attempt
        );
        let result = match (outcome.sent, outcome.retry_at.is_some()) {
            (true, _) => "sent",
            (false, true) => "retrying",
            (false, false) => "failed",
        };
        let mut e = self.internal_event(
            SOURCE,
            &n.tenant,
            &source_id,
            "",
            Payload::NoticeOutcome(outcome),
        );
        e.direction = pb::Direction::Outbound as i32;
        // The provider's words may quote the address: sealed with the person's key.
        e.personal = Some(crate::space::about(&n.citizen_id));
        self.write(&e).await?;
        metrics::counter!("contacthub_notices_total", "outcome" => result).increment(1);
        Ok(())
    }
}
