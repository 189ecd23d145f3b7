//! Erasure by crypto-shredding: the data protection officer erases a citizen; the keys that
//! sealed their events are destroyed, then the erasure is recorded on the log (the projector
//! makes the read model again from the log before it is visible).

use crate::auth::Scope;
use crate::{commands, App, Error, Result};
use contacthub_core::limits;
use contacthub_core::pb::{self, event::Payload};

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
    /// Erases a citizen's data (and the records merged into it): for the data protection
    /// officer of the commune only. Refused for a record merged into another (erase that one)
    /// and for a record already erased.
    pub async fn erase_citizen(&self, scope: &Scope, r: &commands::EraseCitizen) -> Result<Erased> {
        if !(scope.is_dpo() || scope.is_open_visitor()) {
            return Err(Error::Forbidden(
                "l'effacement des données d'une personne est réservé au délégué à la protection des données".into(),
            ));
        }
        let tenant = scope.commune();
        self.enter_figures(scope, tenant)?;
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > limits::ERASURE_REASON_CHARS {
            return Err(Error::Invalid(format!(
                "le motif de l'effacement est obligatoire ({} caractères au plus)",
                limits::ERASURE_REASON_CHARS
            )));
        }
        let citizen = self.store.citizen(tenant, &r.citizen_id)?.ok_or_else(|| {
            Error::NotFound(format!("aucune fiche {} dans cette commune", r.citizen_id))
        })?;
        if citizen.erased.is_some() {
            return Err(Error::Conflict(format!(
                "les données de {} sont déjà effacées",
                r.citizen_id
            )));
        }
        if !citizen.merged_into.is_empty() {
            return Err(Error::Invalid(format!(
                "{} est fusionnée dans {} : effacez celle-ci",
                r.citizen_id, citizen.merged_into
            )));
        }
        let members = self.store.members(tenant, &r.citizen_id)?;
        let mut key_ids = Vec::new();
        for id in &members {
            // Its own key even if nothing was sealed with it yet: never made again.
            key_ids.push(format!("c/{id}"));
            key_ids.extend(self.store.subject_keys(tenant, id)?);
        }
        key_ids.sort_unstable();
        key_ids.dedup();
        let destroyed = self.keys.destroy(&key_ids).await.map_err(|e| {
            tracing::warn!(error = %e, "keyring refused an erasure");
            Error::Unavailable(format!("le trousseau de clés ne peut pas être écrit : {e}"))
        })?;
        let e = self.internal_event(
            "erasure",
            tenant,
            &r.citizen_id,
            &scope.agent_id(),
            Payload::CitizenErased(pb::CitizenErased {
                citizen_id: r.citizen_id.clone(),
                merged_citizen_ids: members[1..].to_vec(),
                key_ids,
                reason: reason.to_string(),
            }),
        );
        self.append_and_wait(&[e]).await?;
        tracing::warn!(tenant = %tenant, citizen = %r.citizen_id, keys = destroyed, "citizen's data erased");
        Ok(Erased {
            citizen_id: r.citizen_id.clone(),
            merged: members[1..].to_vec(),
            keys: destroyed,
        })
    }
}
