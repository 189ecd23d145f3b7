//! Erasure by crypto-shredding: the data protection officer erases a citizen; the keys that
//! sealed their events are destroyed, then the erasure is recorded on the log (the projector
//! makes the read model again from the log before it is visible).

use crate::auth::Scope;
use crate::{commands, App, Error, Result};
use contacthub_core::limits;
use contacthub_core::pb::{self, event::Payload};
use contacthub_projector::TimelineQuery;
use std::collections::BTreeSet;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub citizen_id: String,
    /// The records merged into it, erased with it.
    pub merged: Vec<String>,
    /// Keys destroyed (each sealed some of the person's events).
    pub keys: usize,
}

impl App {
    /// The documents of these records: their contacts' attachments, their letters' scans,
    /// the letters of the answers to their requests.
    fn documents_of(&self, tenant: &str, members: &[String]) -> Result<BTreeSet<String>> {
        let mut docs = BTreeSet::new();
        for id in members {
            let mut token = None;
            loop {
                let page = self.store.timeline(
                    tenant,
                    id,
                    &TimelineQuery {
                        page_size: 500,
                        page_token: token.clone(),
                        ..Default::default()
                    },
                )?;
                for e in &page.entries {
                    docs.extend(e.attachments.iter().map(|a| a.sha256.clone()));
                }
                match page.next_page_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        for c in self.store.courriers(tenant)? {
            if members.contains(&c.citizen_id) {
                docs.extend(c.scans.iter().map(|a| a.sha256.clone()));
            }
        }
        for r in self.store.requests_of(tenant, members)? {
            for a in self.store.request_answers(tenant, &r.reference)? {
                docs.insert(a.pdf_sha256);
            }
        }
        docs.remove("");
        Ok(docs)
    }
}

impl App {
    /// Erases a citizen's data (and the records merged into it): for the data protection
    /// officer of the commune only. Refused for a record merged into another (erase that one)
    /// and for a record already erased.
    pub async fn erase_citizen(&self, scope: &Scope, r: &commands::EraseCitizen) -> Result<Erased> {
        if !(scope.is_dpo() || scope.is_open_visitor()) {
            return Err(Error::Forbidden(
                "l'effacement des données d'une personne est réservé au délégué à la protection des données".into(),
            ));
        }
        self.enter_figures(scope, scope.commune())?;
        let mut done = self
            .erase_records(scope, &[(r.citizen_id.clone(), r.reason.clone())])
            .await?;
        Ok(done.remove(0))
    }

    /// Erases records of the scope's commune, each with its reason, in one step: their keys
    /// destroyed, then one `citizen_erased` each, appended together (one rebuild of the read
    /// model). The caller checked who may.
    pub(crate) async fn erase_records(
        &self,
        scope: &Scope,
        records: &[(String, String)],
    ) -> Result<Vec<Erased>> {
        let tenant = scope.commune();
        // A document stored again from now on is someone else's upload (the same bytes):
        // theirs is kept.
        let started = std::time::SystemTime::now();
        // Everything written until now is in the read model, so no key of theirs is missed.
        self.wait_caught_up().await?;
        let mut key_ids = Vec::new();
        let mut documents = BTreeSet::new();
        let mut events = Vec::new();
        let mut done = Vec::new();
        for (citizen_id, reason) in records {
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > limits::ERASURE_REASON_CHARS {
                return Err(Error::Invalid(format!(
                    "le motif de l'effacement est obligatoire ({} caractères au plus)",
                    limits::ERASURE_REASON_CHARS
                )));
            }
            let citizen = self.store.citizen(tenant, citizen_id)?.ok_or_else(|| {
                Error::NotFound(format!("aucune fiche {citizen_id} dans cette commune"))
            })?;
            if citizen.erased.is_some() {
                return Err(Error::Conflict(format!(
                    "les données de {citizen_id} sont déjà effacées"
                )));
            }
            if !citizen.merged_into.is_empty() {
                return Err(Error::Invalid(format!(
                    "{citizen_id} est fusionnée dans {} : effacez celle-ci",
                    citizen.merged_into
                )));
            }
            let members = self.store.members(tenant, citizen_id)?;
            documents.extend(self.documents_of(tenant, &members)?);
            let erased: Vec<&String> = records.iter().map(|(id, _)| id).chain(&members).collect();
            let mut keys = Vec::new();
            for id in &members {
                // Its own key even if nothing was sealed with it yet: never made again.
                keys.push(format!("c/{tenant}/{id}"));
                for key in self.store.subject_keys(tenant, id)? {
                    // A key that also seals someone else's event (a visit about a child, a
                    // request two people made) stays while they do.
                    let owners = self.store.key_owners(tenant, &key)?;
                    if owners.iter().all(|o| erased.contains(&o)) {
                        keys.push(key);
                    }
                }
            }
            keys.sort_unstable();
            keys.dedup();
            events.push(self.internal_event(
                "erasure",
                tenant,
                citizen_id,
                &scope.agent_id(),
                Payload::CitizenErased(pb::CitizenErased {
                    citizen_id: citizen_id.clone(),
                    merged_citizen_ids: members[1..].to_vec(),
                    key_ids: keys.clone(),
                    reason: reason.to_string(),
                }),
            ));
            done.push(Erased {
                citizen_id: citizen_id.clone(),
                merged: members[1..].to_vec(),
                keys: 0,
            });
            key_ids.push(keys);
        }
        for (keys, erased) in key_ids.iter().zip(&mut done) {
            erased.keys = self.keys.destroy(keys).await.map_err(|e| {
                tracing::warn!(error = %e, "keyring refused an erasure");
                Error::Unavailable(format!("le trousseau de clés ne peut pas être écrit : {e}"))
            })?;
        }
        // Visible once every projector made its read model again: as long as a replay takes.
        let rebuild = self
            .visibility_timeout
            .max(std::time::Duration::from_secs(30 * 60));
        self.append_and_wait_within(&events, rebuild).await?;
        // The read model is made again without them: their documents that no record uses
        // any more are deleted, unless stored again since the erasure began (an upload of
        // the same bytes for someone else, its event on its way: collection takes it later
        // if that event never comes).
        // The keys are destroyed and the events appended: from here on a failure is said and
        // the documents left to collection (which deletes what no event names), never an
        // error that would leave the erasure half-reported.
        let in_use = match self.documents_in_use(&documents).await {
            Ok(used) => used,
            Err(e) => {
                tracing::warn!(error = %e, "an erased person's documents were not deleted: collection will");
                documents.clone()
            }
        };
        // Object stores keep times to the second, on their own clock.
        let margin = if self.content.shared() { 2 } else { 0 };
        let since = started - std::time::Duration::from_secs(margin);
        let mut removed = 0usize;
        for sha in documents.difference(&in_use) {
            match self.content.erase(sha, since).await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "an erased person's document could not be deleted")
                }
            }
        }
        tracing::warn!(tenant = %tenant, records = done.len(), documents = removed, "citizens' data erased");
        Ok(done)
    }
}
