//! The one write path: validate, refuse a conflicting re-use of an id, append in one batch,
//! wait until the projector made everything visible.

use crate::auth::System;
use crate::{App, Error, Result};
use contacthub_core::pb::Event;
use contacthub_core::{event, seal};
use contacthub_log::{Appended, Record};
use contacthub_projector::NotVisible;
use std::collections::BTreeMap;

/// The log record of an event: keyed by its tenant, with the routing headers, timestamped
/// with its `recorded_at`. Every writer of events uses it, on an event already sealed.
pub fn record(e: &Event) -> Record {
    Record {
        key: e.tenant.as_bytes().to_vec(),
        value: event::encode(e),
        headers: event::headers(e),
        timestamp_ms: e
            .recorded_at
            .as_ref()
            .and_then(contacthub_proto::ts::to_micros)
            .map_or(0, |us| us / 1000),
    }
}

/// What the log already holds under an event's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    /// Nothing: the event is new.
    New,
    /// The same content (or content with no fingerprint): a retry, already at this place.
    Same(Appended),
    /// Other content under the same id: refused.
    Other,
}

impl App {
    /// What the log already holds under `e`'s id: the one conflict rule of every writer
    /// (a channel adapter checks a batch with it before fetching documents).
    pub fn prior(&self, e: &Event) -> Result<Prior> {
        Ok(match self.store.applied(&e.tenant, &e.event_id)? {
            // Stored keyed (or, written before fingerprints were keyed, as computed).
            Some(done)
                if !done.fingerprint.is_empty()
                    && done.fingerprint != self.keyed(&e.fingerprint)
                    && done.fingerprint != e.fingerprint =>
            {
                Prior::Other
            }
            Some(done) => Prior::Same(Appended {
                partition: done.partition,
                offset: done.offset,
            }),
            None => Prior::New,
        })
    }

    /// Records contacts a part of the hub received on its own (a channel adapter's batch, the
    /// demo's population) as [`App::append_and_wait`] does. Agents' commands never come here:
    /// each has its own method with its checks.
    pub async fn append_contacts(&self, actor: System, events: &[Event]) -> Result<Vec<Appended>> {
        actor.allowed(&[System::Adapters, System::Demo], "record contacts")?;
        // Only the citizens' space says a person signed in wrote a message.
        if events.iter().any(|e| {
            matches!(&e.payload, Some(contacthub_core::pb::event::Payload::WebForm(w)) if w.signed_in)
        }) {
            return Err(Error::Forbidden(
                "un formulaire reçu par les adaptateurs ne vient pas de l'espace citoyen".into(),
            ));
        }
        self.append_and_wait(events).await
    }

    /// Stores a document a channel adapter received with a contact (an e-mail's or a form's
    /// attachment), before the contact naming it is recorded.
    pub async fn store_document(
        &self,
        actor: System,
        bytes: &[u8],
        media_type: &str,
        limit: u64,
    ) -> Result<contacthub_core::pb::Attachment, crate::content::UploadError> {
        if actor != System::Adapters {
            return Err(crate::content::UploadError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{actor:?} does not store documents"),
            )));
        }
        self.content.put_document(bytes, media_type, limit).await
    }

    /// Whether the log holds no event yet (the demo loads only then).
    pub async fn log_is_empty(&self) -> Result<bool> {
        let ends = self.log.end_offsets().await.map_err(|err| {
            Error::Unavailable(format!("could not read the event log's end: {err}"))
        })?;
        Ok(ends.iter().all(|&e| e == 0))
    }

    /// Appends `events` to the log in one batch and returns once all are visible, with where
    /// each is (in order). An event id already applied is not appended again: with the same
    /// fingerprint it is a retry (its first position is returned); with another, a
    /// [`Error::Conflict`]. Every event is validated first; nothing is appended if one fails.
    pub(crate) async fn append_and_wait(&self, events: &[Event]) -> Result<Vec<Appended>> {
        self.append_and_wait_within(events, self.visibility_timeout)
            .await
    }

    /// [`App::append_and_wait`], waiting at most `timeout` to see them (an erasure waits for
    /// the read model to be made again).
    pub(crate) async fn append_and_wait_within(
        &self,
        events: &[Event],
        timeout: std::time::Duration,
    ) -> Result<Vec<Appended>> {
        let mut placed: Vec<Option<Appended>> = Vec::with_capacity(events.len());
        let mut new = Vec::new();
        for e in events {
            event::validate(e, &self.tenants).map_err(|i| Error::Invalid(i.0))?;
            match self.prior(e)? {
                Prior::Other => {
                    return Err(Error::Conflict(format!(
                        "cet identifiant a déjà servi pour un autre contenu (événement {})",
                        e.event_id
                    )));
                }
                Prior::Same(at) => placed.push(Some(at)),
                Prior::New => {
                    placed.push(None);
                    let mut e = e.clone();
                    // Outside opening hours, by the hours in force now: part of the event.
                    contacthub_core::hours::mark(&mut e, &self.tenants);
                    new.push(e);
                }
            }
        }
        let records = self.seal(new).await?;
        if records.is_empty() {
            return Ok(placed.into_iter().flatten().collect());
        }
        let started = std::time::Instant::now();
        let appended = self.log.append(records).await.map_err(|err| {
            tracing::warn!(error = %err, "append refused by the event log");
            Error::Unavailable(format!("could not write to the event log: {err}"))
        })?;
        metrics::histogram!("contacthub_log_append_seconds")
            .record(started.elapsed().as_secs_f64());
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for a in &appended {
            let o = last.entry(a.partition).or_default();
            *o = (*o).max(a.offset);
        }
        let mut fresh = appended.into_iter();
        // Which events this call appended (the others were already applied).
        let appended_here: Vec<bool> = placed.iter().map(Option::is_none).collect();
        let placed: Vec<Appended> = placed
            .into_iter()
            .map(|p| p.or_else(|| fresh.next()).expect("one position per record"))
            .collect();
        for (partition, offset) in last {
            match self
                .projector
                .wait_applied(partition, offset, timeout)
                .await
            {
                Ok(()) => {}
                Err(NotVisible::TimedOut(_)) => {
                    return Err(Error::NotYetVisible(format!(
                        "enregistré (partition {partition}, position {offset}) mais pas encore visible : il apparaîtra sous peu"
                    )))
                }
                Err(NotVisible::ProjectorFailing(reason)) => {
                    return Err(Error::RecordedNotVisible(format!(
                        "enregistré (partition {partition}, position {offset}) mais pas encore visible : {reason} ; il apparaîtra dès que la vue pourra de nouveau être écrite"
                    )))
                }
            }
        }
        // Two writers may have appended one id with different content at once: the fold
        // kept the first; the other is told.
        for (e, was) in events.iter().zip(&appended_here) {
            if *was && !e.fingerprint.is_empty() {
                if let Some(done) = self.store.applied(&e.tenant, &e.event_id)? {
                    if done.fingerprint != self.keyed(&e.fingerprint) {
                        return Err(Error::Conflict(format!(
                            "cet identifiant a servi au même moment pour un autre contenu (événement {})",
                            e.event_id
                        )));
                    }
                }
            }
        }
        metrics::histogram!("contacthub_write_visible_seconds")
            .record(started.elapsed().as_secs_f64());
        match events {
            [e] => {
                tracing::info!(tenant = %e.tenant, event_id = %e.event_id, partition = placed[0].partition, offset = placed[0].offset, "event written")
            }
            _ => {
                tracing::info!(events = events.len(), "events written");
                for (e, at) in events.iter().zip(&placed) {
                    tracing::debug!(tenant = %e.tenant, event_id = %e.event_id, partition = at.partition, offset = at.offset, "event written");
                }
            }
        }
        Ok(placed)
    }

    /// A content fingerprint as the log and the read model keep it: keyed (HMAC-SHA-256 with
    /// the master key's fingerprint key, 16 bytes), so a short content cannot be found again
    /// by hashing guesses. Empty stays empty.
    fn keyed(&self, fingerprint: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        if fingerprint.is_empty() {
            return Vec::new();
        }
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.keys.fingerprint_key())
            .expect("any key length");
        mac.update(fingerprint);
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// `events` sealed with their data subjects' keys (created where new), as log records.
    /// The key of an erased subject is never created again: a new event about the same id (a
    /// number an erased person held, now someone else's) gets the next generation, `…~2`.
    /// An event with nothing personal (a read-trail batch, a status change) needs no key.
    async fn seal(&self, mut events: Vec<Event>) -> Result<Vec<Record>> {
        for e in &mut events {
            e.fingerprint = self.keyed(&e.fingerprint);
        }
        let need: Vec<bool> = events.iter().map(seal::needs_key).collect();
        let suffix = self.keys.suffix();
        let base: Vec<String> = events
            .iter()
            .zip(&need)
            .filter(|(_, n)| **n)
            .map(|(e, _)| seal::subject(e) + suffix)
            .collect();
        let mut ids = base.clone();
        let unavailable = |err: contacthub_log::Error| {
            tracing::warn!(error = %err, "keyring refused");
            Error::Unavailable(format!("the keyring cannot be used right now: {err}"))
        };
        let mut keys = self.keys.keys_for(&base).await.map_err(unavailable)?;
        for generation in 2..100u32 {
            let gone: Vec<usize> = (0..ids.len()).filter(|&i| keys[i].is_none()).collect();
            if gone.is_empty() {
                break;
            }
            let next: Vec<String> = gone
                .iter()
                .map(|&i| format!("{}~{generation}", base[i]))
                .collect();
            let found = self.keys.keys_for(&next).await.map_err(unavailable)?;
            for ((i, id), key) in gone.into_iter().zip(next).zip(found) {
                ids[i] = id;
                keys[i] = key;
            }
        }
        let mut records = Vec::with_capacity(events.len());
        let mut sealing = ids.iter().zip(keys);
        for (e, needs) in events.iter_mut().zip(need) {
            if needs {
                let (id, key) = sealing.next().expect("one key per event that needs one");
                let key = key.ok_or_else(|| {
                    Error::Unavailable(format!(
                        "no key can be made for {id}: 99 generations erased"
                    ))
                })?;
                let mut nonce = [0u8; seal::NONCE_LEN];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
                seal::seal(e, id, &key, nonce);
            }
            records.push(record(e));
        }
        Ok(records)
    }

    /// Returns once the read model shows everything on the log now: what a process that
    /// acts on the read model (the sender) waits for, so a restart never acts on a view older
    /// than its own last writes.
    pub async fn wait_caught_up(&self) -> Result<()> {
        let ends = self.log.end_offsets().await.map_err(|err| {
            Error::Unavailable(format!("could not read the event log's end: {err}"))
        })?;
        for (partition, end) in ends.into_iter().enumerate() {
            if end == 0 {
                continue;
            }
            self.projector
                .wait_applied(partition as u32, end - 1, self.visibility_timeout)
                .await
                .map_err(|e| {
                    Error::Unavailable(format!("the read model is behind the log: {e}"))
                })?;
        }
        Ok(())
    }

    /// [`App::append_and_wait`] for one event.
    pub(crate) async fn write(&self, e: &Event) -> Result<Appended> {
        Ok(self.append_and_wait(std::slice::from_ref(e)).await?[0])
    }
}
