//! « Mes coordonnées »: what the town hall holds to reach a signed-in person, and their
//! changes — a postal address (in the fields of the Base Adresse Nationale), a preferred
//! channel with its consent (dated, source « espace citoyen ») — written at once; a new phone
//! number or e-mail address only once a one-time code sent there was typed back (6 digits,
//! 10 minutes, single use, 5 tries, 3 sendings per quarter of an hour).

use super::Citizen;
use crate::notify::Destination;
use crate::{App, Error, Result};
use contacthub_core::event::content_fingerprint;
use contacthub_core::identity::{display_phone, normalize_email, normalize_phone};
use contacthub_core::pb::{self, event::Payload, ContactChannel};
use contacthub_proto::ts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a code may be typed back.
const CODE_FOR: Duration = Duration::from_secs(600);
/// Wrong codes before the code is void.
const MAX_TRIES: u32 = 5;
/// Codes sent per person and window, at most.
const SENDS: usize = 3;
const SEND_WINDOW: Duration = Duration::from_secs(900);
/// Codes waiting at once, at most (the oldest forgotten first).
const MAX_PENDING: usize = 20_000;
/// Where the consent given on the space comes from.
const CONSENT_SOURCE: &str = "espace citoyen";

/// A code sent, waiting to be typed back.
struct Pending {
    to: Destination,
    /// The record it signs in to (a sign-in by code); empty for a new phone or address.
    citizen: String,
    hash: [u8; 32],
    sent: Instant,
    tries: u32,
}

/// The codes of this hub (its sessions are its own too), by what they are for: a person's
/// account (a new phone or address), or a destination (a sign-in by code).
#[derive(Default)]
pub struct Codes {
    pending: Mutex<HashMap<String, Pending>>,
    sendings: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Codes {
    /// A new code for `key`, to `to` (signing in to `citizen` when not empty); refused beyond
    /// [`SENDS`] in [`SEND_WINDOW`].
    pub(crate) fn issue(&self, key: &str, to: &Destination, citizen: &str) -> Result<String> {
        {
            let mut sendings = self.sendings.lock().unwrap_or_else(|p| p.into_inner());
            if sendings.len() >= MAX_PENDING {
                sendings.retain(|_, at| at.iter().any(|t| t.elapsed() < SEND_WINDOW));
            }
            let theirs = sendings.entry(key.to_string()).or_default();
            theirs.retain(|t| t.elapsed() < SEND_WINDOW);
            if theirs.len() >= SENDS {
                return Err(Error::Throttled(
                    SEND_WINDOW.saturating_sub(theirs[0].elapsed()),
                ));
            }
            theirs.push(Instant::now());
        }
        let code = format!(
            "{:06}",
            rand::Rng::gen_range(&mut rand::thread_rng(), 0..1_000_000)
        );
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, p| p.sent.elapsed() < CODE_FOR);
        }
        pending.insert(
            key.to_string(),
            Pending {
                to: to.clone(),
                citizen: citizen.to_string(),
                hash: hash(&code),
                sent: Instant::now(),
                tries: 0,
            },
        );
        Ok(code)
    }

    /// Where the code of `key` went and for whom, once `typed` is it (then void); a wrong code
    /// counts, the fifth voids it.
    pub(crate) fn check(&self, key: &str, typed: &str) -> Result<(Destination, String)> {
        let typed: String = typed.chars().filter(char::is_ascii_digit).take(6).collect();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let none = || Error::NotFound("aucun code en attente : demandez-en un".into());
        let p = pending.get_mut(key).ok_or_else(none)?;
        if p.sent.elapsed() >= CODE_FOR {
            pending.remove(key);
            return Err(Error::Invalid(
                "ce code a expiré : demandez-en un autre".into(),
            ));
        }
        if hash(&typed) != p.hash {
            p.tries += 1;
            if p.tries >= MAX_TRIES {
                pending.remove(key);
                return Err(Error::Invalid(
                    "code erroné trop de fois : demandez-en un autre".into(),
                ));
            }
            return Err(Error::Invalid("ce n'est pas le code envoyé".into()));
        }
        let p = pending.remove(key).ok_or_else(none)?;
        Ok((p.to, p.citizen))
    }

    /// Where the code of `key` went, while it may be typed.
    fn waiting(&self, key: &str) -> Option<Destination> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|p| p.sent.elapsed() < CODE_FOR)
            .map(|p| p.to.clone())
    }
}

/// The text of a code's message.
pub(crate) fn code_text(commune: &str, code: &str) -> String {
    format!(
        "Mairie de {commune} : votre code de confirmation est {code}. Il expire dans 10 minutes. Si vous n'avez rien demandé, ignorez ce message."
    )
}

/// The destination `to` names (an e-mail address when it has an `@`, else a phone number).
pub(crate) fn destination(to: &str) -> Result<Destination> {
    let to = to.trim();
    if to.contains('@') {
        normalize_email(to)
            .map(Destination::Email)
            .ok_or_else(|| Error::Invalid("ce n'est pas une adresse électronique".into()))
    } else {
        normalize_phone(to)
            .map(Destination::Sms)
            .ok_or_else(|| Error::Invalid("ce n'est pas un numéro de téléphone".into()))
    }
}

/// Whether record identity `i` holds `to` (as the town hall typed it).
pub(crate) fn holds(i: &pb::Identity, to: &Destination) -> bool {
    match to {
        Destination::Email(m) => i
            .emails
            .iter()
            .any(|x| normalize_email(x).as_ref() == Some(m)),
        Destination::Sms(n) => i
            .phones
            .iter()
            .any(|x| normalize_phone(x).as_ref() == Some(n)),
    }
}

/// What the town hall holds to reach the person.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// As people write them (« 06 12 34 56 78 »).
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub address: Option<pb::Address>,
    pub preferred: ContactChannel,
    /// When they consented to it, and where.
    pub consent_us: Option<i64>,
    pub consent_source: String,
    /// A phone or address waiting for its code.
    pub waiting: Option<String>,
}

/// A change of address and preferred channel.
#[derive(Debug, Clone, Default)]
pub struct ChangeDetails {
    /// Empty: the address stays.
    pub address: pb::Address,
    pub preferred: ContactChannel,
}

/// What is wrong with `a`, in French: BAN's fields, five-digit postcode, bounded lengths.
fn check_address(a: &pb::Address) -> Result<()> {
    let bad = |m: &str| Err(Error::Invalid(m.into()));
    if a.street.trim().is_empty() || a.city.trim().is_empty() {
        return bad("indiquez la voie et la commune de l'adresse");
    }
    let postcode = a.postcode.trim();
    if postcode.len() != 5 || !postcode.bytes().all(|b| b.is_ascii_digit()) {
        return bad("le code postal a cinq chiffres");
    }
    if a.number.chars().count() > 16
        || [&a.street, &a.city, &a.complement]
            .iter()
            .any(|f| f.chars().count() > 200 || f.chars().any(char::is_control))
    {
        return bad("une partie de l'adresse est trop longue ou illisible");
    }
    Ok(())
}

fn hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

impl App {
    /// The record the person's account is linked to, still writable.
    fn my_record(&self, c: &Citizen) -> Result<pb::Citizen> {
        let me = self.own_record(c)?;
        self.writable_citizen(c.tenant(), &me)
    }

    /// What the town hall holds to reach the person.
    pub fn my_details(&self, c: &Citizen) -> Result<Details> {
        let record = self.my_record(c)?;
        let i = record.identity.unwrap_or_default();
        let waiting = self.codes.waiting(&c.account).map(|to| match to {
            Destination::Email(m) => m,
            Destination::Sms(n) => display_phone(&n),
        });
        Ok(Details {
            phones: i.phones.iter().map(|p| display_phone(p)).collect(),
            emails: i.emails.clone(),
            address: i.addresses.first().cloned(),
            preferred: i.preferred_channel(),
            consent_us: i
                .consent
                .as_ref()
                .and_then(|c| c.given_at.as_ref())
                .and_then(ts::to_micros),
            consent_source: i.consent.map(|c| c.source).unwrap_or_default(),
            waiting,
        })
    }

    /// Writes the person's record with `change` applied to its identity.
    async fn write_identity(
        &self,
        c: &Citizen,
        record: pb::Citizen,
        change: impl FnOnce(&mut pb::Identity),
    ) -> Result<()> {
        let mut identity = record.identity.unwrap_or_default();
        change(&mut identity);
        let mut e = self.internal_event(
            super::message::SOURCE,
            c.tenant(),
            &format!("coordonnees/{}/{}", record.citizen_id, uuid::Uuid::new_v4()),
            "",
            Payload::CitizenUpdated(pb::CitizenUpdated {
                citizen_id: record.citizen_id.clone(),
            }),
        );
        e.personal = Some(pb::Personal {
            identity: Some(identity),
            ..Default::default()
        });
        e.fingerprint = content_fingerprint(&e, &[]);
        self.write(&e).await?;
        Ok(())
    }

    /// Changes the person's postal address and preferred channel (with their consent now).
    pub async fn change_details(&self, c: &Citizen, change: &ChangeDetails) -> Result<()> {
        let record = self.my_record(c)?;
        let i = record.identity.clone().unwrap_or_default();
        let new_address = change.address != pb::Address::default();
        if new_address {
            check_address(&change.address)?;
        }
        let has_address = new_address || !i.addresses.is_empty();
        match change.preferred {
            ContactChannel::Email if i.emails.is_empty() => {
                return Err(Error::Invalid(
                    "ajoutez d'abord une adresse électronique, confirmée par son code".into(),
                ))
            }
            ContactChannel::Sms if i.phones.is_empty() => {
                return Err(Error::Invalid(
                    "ajoutez d'abord un numéro de téléphone, confirmé par son code".into(),
                ))
            }
            ContactChannel::Courrier if !has_address => {
                return Err(Error::Invalid(
                    "indiquez d'abord votre adresse postale".into(),
                ))
            }
            _ => {}
        }
        let now = self.now();
        let address = change.address.clone();
        let preferred = change.preferred;
        self.write_identity(c, record, move |i| {
            if new_address {
                let trimmed = pb::Address {
                    number: address.number.trim().into(),
                    street: address.street.trim().into(),
                    postcode: address.postcode.trim().into(),
                    city: address.city.trim().into(),
                    complement: address.complement.trim().into(),
                };
                i.addresses.retain(|a| *a != trimmed);
                i.addresses.insert(0, trimmed);
            }
            if preferred != i.preferred_channel() {
                i.preferred_channel = preferred as i32;
                i.consent = (preferred != ContactChannel::Unspecified).then(|| pb::Consent {
                    given_at: Some(ts::from_micros(now)),
                    source: CONSENT_SOURCE.into(),
                });
            }
        })
        .await
    }

    /// Sends a one-time code to a new phone number or e-mail address of the person (`to`, as
    /// typed), through the commune's outbound providers.
    pub async fn send_code(&self, c: &Citizen, to: &str) -> Result<()> {
        let record = self.my_record(c)?;
        let dest = destination(to)?;
        if holds(&record.identity.unwrap_or_default(), &dest) {
            return Err(Error::Invalid("la mairie a déjà ces coordonnées".into()));
        }
        let code = self.codes.issue(&c.account, &dest, "")?;
        self.send_code_to(c.tenant(), &dest, &code).await
    }

    /// Sends `code` to `dest` through the commune's outbound providers.
    pub(crate) async fn send_code_to(
        &self,
        tenant: &str,
        dest: &Destination,
        code: &str,
    ) -> Result<()> {
        let Some(notifier) = self.notifier() else {
            return Err(Error::Unavailable(
                "la mairie ne peut pas envoyer de code pour l'instant : réessayez plus tard".into(),
            ));
        };
        let text = code_text(&self.tenant(tenant)?.name, code);
        notifier
            .send(tenant, dest, "Votre code de confirmation", &text)
            .await
            .map_err(|why| {
                // The provider's words may quote the address: not above debug.
                tracing::warn!("citizens' space: a one-time code could not be sent");
                tracing::debug!(error = %why, "citizens' space: why the code was not sent");
                Error::Unavailable(
                    "le code n'a pas pu être envoyé : vérifiez ces coordonnées ou réessayez plus tard"
                        .into(),
                )
            })?;
        tracing::info!(tenant, "citizens' space: a one-time code sent");
        Ok(())
    }

    /// Confirms the code sent last: the phone or address it went to joins the person's
    /// record. A wrong code counts; the fifth voids it.
    pub async fn confirm_code(&self, c: &Citizen, code: &str) -> Result<()> {
        let record = self.my_record(c)?;
        let (dest, _) = self.codes.check(&c.account, code)?;
        self.write_identity(c, record, move |i| match dest {
            Destination::Email(m) => i.emails.push(m),
            Destination::Sms(n) => i.phones.push(display_phone(&n)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_has_its_street_city_and_five_digit_postcode() {
        let mut a = pb::Address {
            number: "12 bis".into(),
            street: "rue Émile Zola".into(),
            postcode: "69700".into(),
            city: "Givors".into(),
            complement: String::new(),
        };
        assert!(check_address(&a).is_ok());
        a.postcode = "6970".into();
        assert!(check_address(&a).is_err());
        a.postcode = "69700".into();
        a.street = " ".into();
        assert!(check_address(&a).is_err());
    }
}
