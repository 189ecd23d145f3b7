//! The catalogue of validated answers (catalogue de réponses, the communes' internal
//! information project): per commune, what agents answer about each démarche, owned by a
//! service, with the date it was last reviewed. Publishing and withdrawing are events; the
//! search is over the commune's answers in the read model.

use crate::auth::Scope;
use crate::{App, Error, Result};
use contacthub_core::identity::fold_name;
use contacthub_core::limits::quote;
use contacthub_core::pb::{self, event::Payload, CatalogueAnswer};

/// An answer as an agent writes it.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Empty for a new answer (an id is made from its title).
    pub answer_id: String,
    pub demarche: String,
    pub service: String,
    pub title: String,
    pub text: String,
    pub owner: String,
    /// `YYYY-MM-DD`; empty: today (Paris).
    pub reviewed_on: String,
    pub withdrawn: bool,
}

/// An id from a title: `carte-d-identite-delais`.
fn slug(title: &str) -> String {
    let folded = fold_name(title);
    let mut s: String = folded
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').chars().take(48).collect()
}

impl App {
    /// The answers of a commune's catalogue matching every word of `query` (all when empty),
    /// withdrawn ones only when asked, by title.
    pub fn catalogue(
        &self,
        scope: &Scope,
        query: &str,
        with_withdrawn: bool,
    ) -> Result<Vec<CatalogueAnswer>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        crate::within_limit("la recherche", query, contacthub_core::limits::QUERY_CHARS)?;
        let words: Vec<String> = fold_name(query)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let mut out: Vec<CatalogueAnswer> = self
            .store
            .catalogue(tenant)?
            .into_iter()
            .filter(|a| with_withdrawn || !a.withdrawn)
            .filter(|a| {
                let hay = fold_name(&format!(
                    "{} {} {} {}",
                    a.title, a.demarche, a.service, a.text
                ));
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect();
        out.sort_by(|a, b| a.title.cmp(&b.title));
        Ok(out)
    }

    /// One answer of the catalogue.
    pub fn catalogue_answer(&self, scope: &Scope, answer_id: &str) -> Result<CatalogueAnswer> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.catalogue_entry(tenant, answer_id)
    }

    /// One answer of the catalogue, whoever asks: for the checks of commands.
    pub(crate) fn catalogue_entry(&self, tenant: &str, answer_id: &str) -> Result<CatalogueAnswer> {
        self.tenant(tenant)?;
        self.store
            .catalogue_answer(tenant, answer_id)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "aucune réponse validée {} dans cette commune",
                    quote(answer_id)
                ))
            })
    }

    /// The reference of a written answer that follows catalogue answer `catalogue_id` (when
    /// given): `catalogue:ID`, after the agent's own reference if any. A withdrawn answer is
    /// not cited.
    pub fn answer_ref(&self, scope: &Scope, own: &str, catalogue_id: &str) -> Result<String> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        if catalogue_id.is_empty() {
            return Ok(own.to_string());
        }
        let a = self.catalogue_entry(tenant, catalogue_id)?;
        if a.withdrawn {
            return Err(Error::Invalid(format!(
                "la réponse validée {} a été retirée",
                quote(&a.answer_id)
            )));
        }
        let link = format!("catalogue:{}", a.answer_id);
        Ok(if own.is_empty() {
            link
        } else {
            format!("{own} ({link})")
        })
    }

    /// Publishes an answer (a new one, or a new version of `draft.answer_id`); returns it
    /// once visible.
    pub async fn publish_answer(&self, scope: &Scope, draft: &Draft) -> Result<CatalogueAnswer> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        // Validating an answer is a right the agents file gives (`catalogue = true`); the
        // agent who publishes is who validated it.
        let owner = match scope.agent() {
            Some(a) if !a.may_read(tenant) || !a.publishes_catalogue() => {
                return Err(Error::Forbidden(format!(
                    "l'agent {} ne publie ni ne retire de réponses validées",
                    a.id
                )))
            }
            Some(a) => a.id.clone(),
            None => draft.owner.trim().to_string(),
        };
        let now = (self.clock)();
        let answer_id = if draft.answer_id.trim().is_empty() {
            let base = slug(&draft.title);
            if base.is_empty() {
                return Err(Error::Invalid(
                    "la réponse validée a besoin d'un titre".into(),
                ));
            }
            // A new answer never replaces another with the same title.
            let mut id = base.clone();
            let mut n = 2;
            while self.store.catalogue_answer(tenant, &id)?.is_some() {
                id = format!("{base}-{n}");
                n += 1;
            }
            id
        } else {
            self.catalogue_entry(tenant, draft.answer_id.trim())?;
            draft.answer_id.trim().to_string()
        };
        let reviewed_on = if draft.reviewed_on.trim().is_empty() {
            contacthub_core::courrier::paris(now)
                .format("%Y-%m-%d")
                .to_string()
        } else {
            draft.reviewed_on.trim().to_string()
        };
        let source_id = uuid::Uuid::new_v4().to_string();
        let e = self.internal_event(
            "catalogue",
            tenant,
            &source_id,
            &scope.agent_id(),
            Payload::CatalogueAnswerPublished(pb::CatalogueAnswerPublished {
                answer_id: answer_id.clone(),
                demarche: draft.demarche.trim().into(),
                service: draft.service.trim().into(),
                title: draft.title.trim().into(),
                text: draft.text.trim().into(),
                owner,
                reviewed_on,
                withdrawn: draft.withdrawn,
            }),
        );
        contacthub_core::event::validate(&e, &self.tenants).map_err(|i| Error::Invalid(i.0))?;
        self.write(&e).await?;
        self.catalogue_entry(tenant, &answer_id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_come_from_titles() {
        assert_eq!(
            super::slug("Carte d'identité : délais"),
            "carte-d-identite-delais"
        );
        assert_eq!(super::slug("!!!"), "");
    }
}
