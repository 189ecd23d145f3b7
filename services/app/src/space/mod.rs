//! The citizens' space (« Mon compte citoyen »): people sign in with their commune's
//! FranceConnect; their account is linked to their record by the hub when the « identité
//! pivot » is exactly one record's (an `account_linked` event with its evidence), else it is
//! proposed to the agents (« à rattacher »), who link it — never an automatic merge. A
//! signed-in person is a [`Citizen`], made here only: every query of the space takes one and
//! reads nothing but that person's own requests, answers and documents — and those of the
//! minors they are a parent of ([`household`]) — ([`requests`]), and writes nothing but their
//! messages to the town hall ([`message`]).

mod appointments;
mod code;
mod data;
mod details;
mod household;
mod message;
mod requests;

pub use details::{ChangeDetails, Codes, Details};
pub use household::{Member, ADDABLE};
pub use message::{Upload, ACCEPTED, MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES};
pub use requests::{Mine, MineInFull, Received, Sent};

use crate::auth::Scope;
use crate::{commands, oidc, App, Error, Result};
use contacthub_core::account::{self, Pivot, FRANCECONNECT};
use contacthub_core::limits::quote;
use contacthub_core::pb::{self, event::Payload};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Records looked at when a person signs in (those the search finds by their names).
const CANDIDATES_LOOKED_AT: usize = 200;
/// Records proposed to the agent with a proposal, at most.
const CANDIDATES_KEPT: usize = 10;

/// The FranceConnect clients of the communes whose communes file configures one.
pub fn providers(
    tenants: &contacthub_core::tenant::Tenants,
) -> std::result::Result<BTreeMap<String, Arc<oidc::Provider>>, String> {
    let mut out = BTreeMap::new();
    for t in tenants.iter() {
        if let Some(fc) = &t.franceconnect {
            let p = oidc::Provider::franceconnect(fc)
                .map_err(|e| format!("commune {}: {e}", t.code))?;
            out.insert(t.code.clone(), Arc::new(p));
        }
    }
    Ok(out)
}

/// A person signed in to the citizens' space of a commune. Made by [`App::space_finish`]
/// only; what it reads is found again from its account at every call (an agent may link it
/// meanwhile, an erasure end it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizen {
    tenant: String,
    account: String,
    /// Their first given name, to greet them.
    given_name: String,
}

impl Citizen {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Their account (one per commune, provider and person).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The first given name FranceConnect gave.
    pub fn given_name(&self) -> &str {
        &self.given_name
    }
}

/// A finished sign-in: the person, and the ID token (the hint of the sign-out at
/// FranceConnect).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub citizen: Citizen,
    pub id_token: String,
}

/// Whose account it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Linked to this record (followed through merges).
    Linked(String),
    /// Waiting for an agent: « votre compte sera rattaché par la mairie ».
    Waiting,
}

impl App {
    /// The FranceConnect client of commune `tenant`, when its communes file has one.
    pub fn franceconnect(&self, tenant: &str) -> Option<&oidc::Provider> {
        self.franceconnect.get(tenant).map(|p| p.as_ref())
    }

    fn provider(&self, tenant: &str) -> Result<&oidc::Provider> {
        self.tenant(tenant)?;
        self.franceconnect(tenant).ok_or_else(|| {
            Error::NotFound(
                "cette commune ne propose pas encore de connexion à son espace citoyen".into(),
            )
        })
    }

    /// Starts a sign-in with the commune's FranceConnect.
    pub async fn space_start(&self, tenant: &str) -> Result<oidc::Pending> {
        self.provider(tenant)?.start().await
    }

    /// Finishes a sign-in: FranceConnect's answer checked, the person's account found — or
    /// linked now when their identity is exactly one record's, or proposed to the agents.
    pub async fn space_finish(
        &self,
        tenant: &str,
        pending: &oidc::Pending,
        code: &str,
    ) -> Result<SignedIn> {
        let (claims, id_token) = self.provider(tenant)?.claims(pending, code).await?;
        let sub = text(&claims, "sub");
        if sub.is_empty() || sub.len() > 256 {
            return Err(Error::Unauthenticated(
                "FranceConnect n'a pas donné d'identifiant de compte (sub)".into(),
            ));
        }
        let pivot = pivot(&claims);
        let citizen = self.signed_in(tenant, &pivot, &sub).await?;
        tracing::info!(tenant, "citizens' space: signed in with FranceConnect");
        Ok(SignedIn { citizen, id_token })
    }

    /// The demo's people signing in (`serve --demo`): as [`App::space_finish`] after
    /// FranceConnect answered with `pivot` for subject `sub`. The demo only.
    pub async fn demo_sign_in(&self, scope: &Scope, pivot: &Pivot, sub: &str) -> Result<Citizen> {
        if !scope.is_part(crate::auth::System::Demo) {
            return Err(Error::Forbidden(
                "seule la démonstration connecte quelqu'un sans FranceConnect".into(),
            ));
        }
        self.signed_in(scope.commune(), pivot, sub).await
    }

    /// The person `pivot`, subject `sub` at FranceConnect, signed in to `tenant`'s space: their
    /// account found, or linked or proposed now.
    async fn signed_in(&self, tenant: &str, pivot: &Pivot, sub: &str) -> Result<Citizen> {
        pivot.check().map_err(Error::Unauthenticated)?;
        let account = self.account_id(tenant, FRANCECONNECT, sub);
        let citizen = Citizen {
            tenant: tenant.to_string(),
            given_name: pivot
                .given_names
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            account: account.clone(),
        };
        if self.standing(&citizen)?.is_none() {
            self.link_or_propose(tenant, &account, pivot).await?;
        }
        Ok(citizen)
    }

    /// Where the browser goes to sign out of FranceConnect too, coming back to the space
    /// (`post_logout_url`, or `…/deconnexion/retour` beside the sign-in's callback).
    pub fn space_logout_url(&self, tenant: &str, id_token: &str) -> Option<String> {
        let fc = self.tenants.get(tenant)?.franceconnect.as_ref()?;
        let back = fc.post_logout_url.clone().unwrap_or_else(|| {
            format!(
                "{}deconnexion/retour",
                fc.redirect_url.trim_end_matches("connexion/retour")
            )
        });
        self.franceconnect(tenant)?
            .logout_url(id_token, Some(&back))
    }

    /// The account id of `sub` at `provider`: a keyed hash (the provider's subject is not
    /// spread on the log; the same on every hub of the log).
    pub(crate) fn account_id(&self, tenant: &str, provider: &str, sub: &str) -> String {
        self.keyed_hash(b"contacthub account key v1", &[tenant, provider, sub])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Links `account` when `pivot` is exactly one live record of `tenant`, else proposes it.
    async fn link_or_propose(&self, tenant: &str, account: &str, pivot: &Pivot) -> Result<()> {
        let mut exact: Vec<(String, Vec<&'static str>)> = Vec::new();
        let mut resembling: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        // Best first. A record that is exactly the person holds every word as written (the
        // best score): all of those are looked at, however many — a second exact record
        // past a bound would link the wrong person —, the others up to a bound.
        let mut found = self.store.search_words(tenant, &pivot.search_text())?;
        found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let best = found.first().map_or(0, |f| f.1);
        for (i, (id, score)) in found.into_iter().enumerate() {
            if i >= CANDIDATES_LOOKED_AT && score < best {
                break;
            }
            let id = self.store.canonical(tenant, &id)?;
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(c) = self.store.citizen(tenant, &id)? else {
                continue;
            };
            if c.erased.is_some() || !c.merged_into.is_empty() {
                continue;
            }
            let record = c.identity.clone().unwrap_or_default();
            if let Some(evidence) = account::exact(pivot, &record) {
                exact.push((id, evidence));
            } else if account::resembles(pivot, &record) {
                resembling.push(id);
            }
        }
        let now = self.now();
        let event = if let [(citizen, evidence)] = exact.as_slice() {
            let mut e = self.internal_event(
                message::SOURCE,
                tenant,
                &format!("link/{account}/{now}"),
                "",
                Payload::AccountLinked(pb::AccountLinked {
                    account_id: account.to_string(),
                    citizen_id: citizen.clone(),
                    basis: pb::account_linked::Basis::PivotIdentity as i32,
                    evidence: evidence.iter().map(|s| s.to_string()).collect(),
                    proposal_event_id: String::new(),
                    provider: FRANCECONNECT.into(),
                }),
            );
            e.personal = Some(about(citizen));
            e
        } else {
            let mut candidates: Vec<String> = exact.iter().map(|(id, _)| id.clone()).collect();
            candidates.extend(resembling);
            candidates.truncate(CANDIDATES_KEPT);
            let mut e = self.internal_event(
                message::SOURCE,
                tenant,
                &format!("propose/{account}/{now}"),
                "",
                Payload::AccountProposed(pb::AccountProposed {
                    account_id: account.to_string(),
                    provider: FRANCECONNECT.into(),
                    candidate_citizen_ids: candidates,
                    exact_matches: u32::try_from(exact.len()).unwrap_or(u32::MAX),
                }),
            );
            e.personal = Some(pivot.personal());
            e
        };
        self.write(&event).await?;
        Ok(())
    }

    /// Whose account it is, or `None` when the hub knows nothing of it (never signed in, or
    /// its record erased).
    pub fn standing(&self, c: &Citizen) -> Result<Option<Standing>> {
        let Some(a) = self.store.account(&c.tenant, &c.account)? else {
            return Ok(None);
        };
        if a.citizen_id.is_empty() {
            return Ok(Some(Standing::Waiting));
        }
        let id = self.store.canonical(&c.tenant, &a.citizen_id)?;
        match self.store.citizen(&c.tenant, &id)? {
            Some(r) if r.erased.is_none() => Ok(Some(Standing::Linked(id))),
            _ => Ok(None),
        }
    }

    /// The record the person's account is linked to, or why they cannot read it yet.
    pub(crate) fn own_record(&self, c: &Citizen) -> Result<String> {
        match self.standing(c)? {
            Some(Standing::Linked(id)) => Ok(id),
            _ => Err(Error::Forbidden(
                "votre compte sera rattaché par la mairie : vos demandes apparaîtront ici ensuite"
                    .into(),
            )),
        }
    }

    /// The accounts waiting for an agent of the scope's commune (« à rattacher »): for the
    /// agents who keep the records (the accueil, the mail room), not a service's.
    pub fn account_proposals(&self, scope: &Scope) -> Result<Vec<pb::AccountProposal>> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.keeps_records(scope)?;
        let mut proposals = self.store.account_proposals(tenant, 200)?;
        // Which keys sealed them is the keyring's business, not an agent's.
        for p in &mut proposals {
            p.key_ids.clear();
        }
        Ok(proposals)
    }

    /// An agent links a waiting account to a record.
    pub async fn link_account(&self, scope: &Scope, r: &commands::LinkAccount) -> Result<()> {
        let tenant = scope.commune();
        self.enter(scope, tenant)?;
        self.keeps_records(scope)?;
        let citizen = self.writable_citizen(tenant, &r.citizen_id)?;
        let citizen = self.store.canonical(tenant, &citizen.citizen_id)?;
        let proposal = self
            .store
            .account_proposal(tenant, &r.proposal_event_id)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "aucun compte {} à rattacher dans cette commune",
                    quote(&r.proposal_event_id)
                ))
            })?;
        let mut e = self.internal_event(
            message::SOURCE,
            tenant,
            &format!("agent-link/{}", r.proposal_event_id),
            &scope.agent_id(),
            Payload::AccountLinked(pb::AccountLinked {
                account_id: proposal.account_id,
                citizen_id: citizen.clone(),
                basis: pb::account_linked::Basis::Agent as i32,
                evidence: Vec::new(),
                proposal_event_id: r.proposal_event_id.clone(),
                provider: proposal.provider,
            }),
        );
        e.personal = Some(about(&citizen));
        self.write(&e).await?;
        Ok(())
    }

    /// Refused unless the scope's agent keeps the records: an agent of no service.
    fn keeps_records(&self, scope: &Scope) -> Result<()> {
        if scope.is_system() && !scope.is_part(crate::auth::System::Demo) {
            return Err(Error::Forbidden(
                "seul un agent rattache un compte de l'espace citoyen".into(),
            ));
        }
        match scope.agent() {
            Some(a) if !a.is_generalist() => Err(Error::Forbidden(
                "les comptes de l'espace citoyen sont rattachés par l'accueil, pas par un service"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// The personal part of an event about `citizen` (sealed with their key).
pub(crate) fn about(citizen: &str) -> pb::Personal {
    pb::Personal {
        party: Some(pb::Party {
            citizen_id: citizen.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn text(claims: &Map<String, Value>, name: &str) -> String {
    match claims.get(name) {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => String::new(),
    }
}

/// The « identité pivot » of FranceConnect's claims.
fn pivot(claims: &Map<String, Value>) -> Pivot {
    Pivot {
        given_names: text(claims, "given_name"),
        family_name: text(claims, "family_name"),
        birth_date: text(claims, "birthdate"),
        birth_place: text(claims, "birthplace"),
        birth_country: text(claims, "birthcountry"),
        gender: text(claims, "gender"),
        usage_name: text(claims, "preferred_username"),
        email: text(claims, "email"),
    }
}
