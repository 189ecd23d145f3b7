//! Sealing an event's personal part with its data subject's key, and opening it again: the
//! pure half of erasure by crypto-shredding (the keyring, its IO half, is `contacthub_log`'s).
//!
//! On the log, an event's `personal` and its payload's free text are empty; `sealed` holds
//! them, encrypted with XChaCha20-Poly1305 under the key of the subject (see [`subject`]),
//! with the event's tenant and id as associated data. Destroy the key and the sealed part is
//! noise for ever, wherever a copy of the log went.

use crate::pb::event::Payload;
use crate::pb::{Event, Sealed, SealedFields};
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prost::Message;

/// A data subject's key: 32 bytes.
pub type Key = [u8; 32];

/// Length of a nonce of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;

/// Why a sealed part was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("its key was destroyed (erased data subject)")]
    Erased,
    #[error("its key {0} is not in the keyring (not caught up, or not this hub's keyring)")]
    Unknown(String),
    #[error("it does not decrypt with its key (altered, or moved from another event)")]
    Tampered,
    #[error("it decrypts to something that is not sealed fields: {0}")]
    Malformed(String),
}

/// What a keyring knows of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Live(Key),
    /// Destroyed by an erasure: what it sealed is gone.
    Destroyed,
    /// Not known here (yet): a keyring on Kafka not caught up, or the wrong keyring.
    Unknown,
}

/// Where the keys of the keyring come from when a sealed event is opened.
pub trait Keys {
    fn key(&self, id: &str) -> Lookup;
}

/// Keys that no longer exist: every sealed part stays closed (a fold of what the log shows
/// without any key, for tests and for checking what an erasure leaves).
#[derive(Debug, Clone, Copy)]
pub struct NoKeys;

impl Keys for NoKeys {
    fn key(&self, _: &str) -> Lookup {
        Lookup::Destroyed
    }
}

/// The key id an event is sealed with: its citizen's when the writer knows one
/// (`c/COMMUNE/ID`), else its own (`e/EVENT-ID`), as is a request several people make. An
/// erasure destroys the person's own key and the keys of events that are theirs alone.
///
/// A citizen id the sender wrote itself (an online form's; not a signed-in person's message
/// of the citizens' space) is not the writer's knowledge:
/// such a contact has its own key. Otherwise anyone could seal their form with a stranger's
/// key by naming their id, and that key would outlive the stranger's erasure for as long as
/// the form's record lives.
pub fn subject(event: &Event) -> String {
    let declared = crate::event::declared_by_sender(event);
    let party = event
        .personal
        .as_ref()
        .and_then(|p| p.party.as_ref())
        .filter(|_| !declared);
    // A request several people make is theirs together: its own key, erased with the last.
    if let Some(Payload::RequestOpened(o)) = &event.payload {
        let from_party = party.is_some_and(|p| !p.citizen_id.is_empty());
        if o.requester_citizen_ids.len() + usize::from(from_party) > 1 {
            return format!("e/{}", event.event_id);
        }
    }
    let citizen = party
        .map(|p| p.citizen_id.as_str())
        .filter(|c| !c.is_empty())
        .or(match &event.payload {
            Some(Payload::CitizenRegistered(r)) => Some(r.citizen_id.as_str()),
            Some(Payload::CitizenUpdated(u)) => Some(u.citizen_id.as_str()),
            Some(Payload::HouseholdMembership(h)) => Some(h.citizen_id.as_str()),
            Some(Payload::RequestOpened(o)) => o.requester_citizen_ids.first().map(String::as_str),
            _ => None,
        })
        .filter(|c| !c.is_empty());
    match citizen {
        Some(c) => format!("c/{}/{c}", event.tenant),
        None => format!("e/{}", event.event_id),
    }
}

/// The payload's free text that is personal (emptied in the clear payload when sealed).
fn payload_text(payload: &mut Option<Payload>) -> Option<&mut String> {
    match payload.as_mut()? {
        Payload::RequestOpened(o) => Some(&mut o.on_behalf_of),
        Payload::CourrierRouted(r) => Some(&mut r.note),
        Payload::CourrierStep(s) => Some(&mut s.note),
        Payload::RequestClosed(c) => Some(&mut c.resolution),
        Payload::HouseholdMembership(h) => Some(&mut h.role),
        Payload::AnswerOutcome(o) => Some(&mut o.error),
        // A provider's words may quote the address or number.
        Payload::NoticeOutcome(o) => Some(&mut o.error),
        Payload::AnswerComposed(c) => Some(&mut c.channel_reason),
        _ => None,
    }
}

/// The payload's document that is the person's (emptied in the clear payload when sealed).
fn payload_document(payload: &mut Option<Payload>) -> Option<&mut String> {
    match payload.as_mut()? {
        Payload::AnswerOutcome(o) => Some(&mut o.pdf_sha256),
        _ => None,
    }
}

fn aad(event: &Event) -> Vec<u8> {
    let mut aad = Vec::with_capacity(event.tenant.len() + 1 + event.event_id.len());
    aad.extend_from_slice(event.tenant.as_bytes());
    aad.push(0);
    aad.extend_from_slice(event.event_id.as_bytes());
    aad
}

/// Whether `event` has anything [`seal`] would seal (its personal part beyond `location`, the
/// payload's free text or document, attachments): the others need no key.
pub fn needs_key(event: &Event) -> bool {
    let mut e = event.clone();
    let personal = e.personal.take().map(|mut p| {
        p.location = None;
        p
    });
    personal.is_some_and(|p| p != crate::pb::Personal::default())
        || !e.attachments.is_empty()
        || payload_text(&mut e.payload).is_some_and(|t| !t.is_empty())
        || payload_document(&mut e.payload).is_some_and(|d| !d.is_empty())
}

/// Moves `event`'s personal part into `sealed`, encrypted with `key` (the key `key_id` of the
/// keyring) and `nonce` (random, never reused with that key). An event with nothing personal
/// is left as it is. The location stays in the clear (see `SealedFields`).
pub fn seal(event: &mut Event, key_id: &str, key: &Key, nonce: [u8; NONCE_LEN]) {
    let mut personal = event.personal.take();
    let location = personal.as_mut().and_then(|p| p.location.take());
    let text = payload_text(&mut event.payload)
        .map(std::mem::take)
        .unwrap_or_default();
    let document = payload_document(&mut event.payload)
        .map(std::mem::take)
        .unwrap_or_default();
    let fields = SealedFields {
        personal,
        payload_text: text,
        attachments: std::mem::take(&mut event.attachments),
        payload_document: document,
    };
    if let Some(location) = location {
        event.personal = Some(crate::pb::Personal {
            location: Some(location),
            ..Default::default()
        });
    }
    if fields == SealedFields::default() {
        return;
    }
    let cipher = XChaCha20Poly1305::new(key.into());
    let aad = aad(event);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: &fields.encode_to_vec(),
                aad: &aad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any length this side of 256 GiB");
    event.sealed = Some(Sealed {
        key_id: key_id.to_string(),
        nonce: nonce.to_vec(),
        ciphertext,
    });
}

/// Puts `event`'s sealed part back in the clear. With its key destroyed, the event stays
/// sealed (`Err(Erased)`): [`erased`] then says so, and the fold folds it without its
/// personal part.
pub fn open(event: &mut Event, keys: &dyn Keys) -> Result<(), Unreadable> {
    let Some(sealed) = event.sealed.take() else {
        return Ok(());
    };
    let key = match keys.key(&sealed.key_id) {
        Lookup::Live(key) => key,
        Lookup::Destroyed => {
            // Left sealed: the fold reads it as a personal part that is gone.
            event.sealed = Some(sealed);
            return Err(Unreadable::Erased);
        }
        Lookup::Unknown => {
            let id = sealed.key_id.clone();
            event.sealed = Some(sealed);
            return Err(Unreadable::Unknown(id));
        }
    };
    if sealed.nonce.len() != NONCE_LEN {
        return Err(Unreadable::Tampered);
    }
    let cipher = XChaCha20Poly1305::new((&key).into());
    let aad = aad(event);
    let clear = cipher
        .decrypt(
            XNonce::from_slice(&sealed.nonce),
            AeadPayload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| Unreadable::Tampered)?;
    let fields =
        SealedFields::decode(clear.as_slice()).map_err(|e| Unreadable::Malformed(e.to_string()))?;
    let location = event.personal.take().and_then(|p| p.location);
    let mut personal = fields.personal;
    if location.is_some() {
        personal.get_or_insert_with(Default::default).location = location;
    }
    event.personal = personal;
    if let Some(t) = payload_text(&mut event.payload) {
        *t = fields.payload_text;
    }
    if let Some(d) = payload_document(&mut event.payload) {
        *d = fields.payload_document;
    }
    event.attachments = fields.attachments;
    Ok(())
}

/// Whether `event`'s personal part is gone: it is still sealed after [`open`] (its key was
/// destroyed). Such an event is folded without what was personal in it.
pub fn erased(event: &Event) -> bool {
    event.sealed.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;
    use std::collections::HashMap;

    struct Ring(HashMap<String, Key>);
    impl Keys for Ring {
        fn key(&self, id: &str) -> Lookup {
            self.0
                .get(id)
                .copied()
                .map_or(Lookup::Destroyed, Lookup::Live)
        }
    }

    fn letter() -> Event {
        Event {
            event_id: "e1".into(),
            tenant: "69091".into(),
            attachments: vec![pb::Attachment {
                sha256: "ab".repeat(32),
                media_type: "application/pdf".into(),
                size_bytes: 10,
            }],
            personal: Some(pb::Personal {
                party: Some(pb::Party {
                    phone: "06 12 34 56 78".into(),
                    name: "Canari Jaune".into(),
                    ..Default::default()
                }),
                text: "Mon voisin fait du bruit".into(),
                location: Some(pb::Address {
                    street: "rue Jean Jaurès".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            payload: Some(Payload::CourrierStep(pb::CourrierStep {
                chrono: "GIV-2026-000001".into(),
                note: "appelé Mme Canari".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn sealed_event_holds_no_clear_personal_text_and_opens_back_whole() {
        let original = letter();
        let mut e = original.clone();
        let id = subject(&e);
        assert_eq!(id, "e/e1", "no citizen known: the event's own key");
        seal(&mut e, &id, &[1; 32], [2; NONCE_LEN]);
        let bytes = e.encode_to_vec();
        for canary in ["Canari", "voisin", "612345678", "appelé"] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} in the clear"
            );
        }
        assert!(e.attachments.is_empty(), "which documents: sealed too");
        // The place of the problem stays readable (street figures survive an erasure).
        assert_eq!(
            e.personal
                .as_ref()
                .unwrap()
                .location
                .as_ref()
                .unwrap()
                .street,
            "rue Jean Jaurès"
        );
        let ring = Ring([(id.clone(), [1; 32])].into());
        open(&mut e, &ring).unwrap();
        assert_eq!(e, original);
    }

    #[test]
    fn without_its_key_or_moved_elsewhere_it_does_not_open() {
        let mut e = letter();
        seal(&mut e, "c/x", &[1; 32], [2; NONCE_LEN]);
        let sealed = e.clone();
        assert_eq!(open(&mut e, &Ring(HashMap::new())), Err(Unreadable::Erased));
        assert!(e.personal.as_ref().unwrap().party.is_none());
        let ring = Ring([("c/x".to_string(), [1; 32])].into());
        let mut moved = sealed.clone();
        moved.event_id = "e2".into();
        assert_eq!(open(&mut moved, &ring), Err(Unreadable::Tampered));
        let mut other_key = sealed;
        assert_eq!(
            open(&mut other_key, &Ring([("c/x".to_string(), [9; 32])].into())),
            Err(Unreadable::Tampered)
        );
    }

    #[test]
    fn an_event_with_nothing_personal_is_not_sealed() {
        let mut e = Event {
            event_id: "e3".into(),
            payload: Some(Payload::RequestReopened(Default::default())),
            ..Default::default()
        };
        let before = e.clone();
        seal(&mut e, "e/e3", &[1; 32], [2; NONCE_LEN]);
        assert_eq!(e, before);
    }

    #[test]
    fn a_key_is_the_citizens_in_its_commune_or_the_events_own() {
        let mut e = letter();
        e.personal
            .as_mut()
            .unwrap()
            .party
            .as_mut()
            .unwrap()
            .citizen_id = "C1".into();
        assert_eq!(subject(&e), "c/69091/C1");
        let e = Event {
            event_id: "e9".into(),
            tenant: "69091".into(),
            request_id: "GIV-D-2026-000001".into(),
            ..Default::default()
        };
        assert_eq!(subject(&e), "e/e9");
    }
}
