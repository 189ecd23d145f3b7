//! Who may call: agents authenticate with a bearer token and may read only the communes their
//! entry allows. With no agents file the API is open (one-machine trials only; warned at start).
//!
//! Agents file (TOML), tokens stored as SHA-256 so the file holds no secret:
//!
//! ```toml
//! [[agent]]
//! id = "accueil-givors-1"       # pseudonymous, recorded on the events the agent writes
//! token_sha256 = "5e88…"        # sha256sum of the bearer token, lower-case hex
//! tenants = ["69091"]           # communes this agent may see; "*" for every commune
//! ops = false                   # may call OpsService (positions, dead letters)
//! services = ["voirie"]         # optional: sees only these services' requests (and its own)
//! role = "agent"                # "elu": dashboards only (aggregates, no personal data);
//!                               # "dpo": the data protection officer, reads the read trail only;
//!                               # "borne": a device in the hall (the pré-accueil kiosk, the
//!                               # hall screen): takes tickets and shows the line, nothing else
//! catalogue = false             # may publish and withdraw validated answers
//! ```
//!
//! Agents may also sign in with their commune's identity provider (`[oidc]`, see
//! [`crate::oidc`]): the desk by OpenID Connect, gRPC callers with its JWT access tokens. The
//! file's tokens then remain for service accounts (scanners, scripts).

use crate::oidc::{self, Provider};
use crate::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    /// The name shown on the desk (from the identity provider), when known.
    pub name: Option<String>,
    tenants: BTreeSet<String>,
    all_tenants: bool,
    ops: bool,
    /// Services whose requests the agent sees; empty: every service (accueil, mail room).
    services: BTreeSet<String>,
    role: Role,
    /// May publish and withdraw the catalogue's validated answers.
    catalogue: bool,
}

/// What an agent is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An agent of the commune: citizens, contacts, requests of their communes.
    #[default]
    Agent,
    /// An élu: dashboards only (aggregates, no personal data).
    Elu,
    /// The data protection officer: the read trail of their communes (who read whose data),
    /// no citizen's data.
    Dpo,
    /// A device in the accueil's hall — the pré-accueil kiosk, the hall screen: issues tickets
    /// naming no one and reads the line (numbers, counters), nothing else.
    Borne,
}

impl Agent {
    /// An agent with these rights (the agents file's entries, the identity provider's rules).
    pub(crate) fn new(
        id: String,
        name: Option<String>,
        tenants: BTreeSet<String>,
        services: BTreeSet<String>,
        role: Role,
        ops: bool,
        catalogue: bool,
    ) -> Agent {
        Agent {
            id,
            name,
            all_tenants: tenants.contains("*"),
            tenants: tenants.into_iter().filter(|t| t != "*").collect(),
            ops,
            services,
            role,
            catalogue,
        }
    }

    /// Whether the agent sees a request of `service` assigned to `assignee`.
    pub fn sees_request(&self, service: &str, assignee: &str) -> bool {
        self.services.is_empty() || self.services.contains(service) || assignee == self.id
    }

    /// Whether the agent works in service `service`.
    pub fn in_service(&self, service: &str) -> bool {
        self.services.contains(service)
    }

    /// Whether the agent may publish and withdraw validated answers of the catalogue.
    pub fn publishes_catalogue(&self) -> bool {
        self.catalogue && self.role == Role::Agent
    }

    /// Whether the agent belongs to no service: the accueil, the mail room. They see every
    /// service's requests, but of a confidential service's matters only what orients the
    /// person (see [`crate::guard`]).
    pub fn is_generalist(&self) -> bool {
        self.services.is_empty()
    }

    pub fn may_read(&self, tenant: &str) -> bool {
        self.all_tenants || self.tenants.contains(tenant)
    }

    /// Whether the agent is an élu (dashboards only).
    pub fn is_elu(&self) -> bool {
        self.role == Role::Elu
    }

    /// Whether the agent is the data protection officer (the read trail only).
    pub fn is_dpo(&self) -> bool {
        self.role == Role::Dpo
    }

    /// Whether the caller is a device in the hall (kiosk, screen).
    pub fn is_borne(&self) -> bool {
        self.role == Role::Borne
    }

    /// Whether the agent may see every commune ("*").
    pub fn all_communes(&self) -> bool {
        self.all_tenants
    }
}

/// Who calls, and in which commune: what every command and query of [`crate::App`] takes, so
/// what it reads and writes is what this caller may. Only this module makes one: an agent's
/// from their token checked for the commune ([`Access::scope`]), an open hub's visitor, or a
/// named part of the hub itself ([`Scope::system`]).
#[derive(Debug, Clone)]
pub struct Scope {
    commune: String,
    caller: Caller,
    origin: Origin,
}

/// Where a call comes from, for the read trail: the front-end and the caller's address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub via: crate::audit::Via,
    /// The caller's IP address, empty when unknown.
    pub address: String,
}

/// Who is behind a [`Scope`].
#[derive(Debug, Clone)]
enum Caller {
    Agent(Agent),
    /// A hub without an agents file (one machine's trials): everything.
    Open,
    /// A part of the hub, named so a scope printed with `{:?}` says which.
    #[allow(dead_code)]
    System(System),
}

/// The parts of the hub that act on their own, without an agent: they read whole and write
/// events with no agent on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// The channel adapters (forms, SMS, e-mail, calls) and their bounce reports.
    Adapters,
    /// The outbound sender delivering written answers.
    Sender,
    /// The scanner drop folder attaching scans to letters.
    ScanInbox,
    /// The demo loader's agents' follow-up.
    Demo,
    /// The daily application of the communes' retention rules.
    Retention,
}

impl System {
    /// `Ok` when this part is one of those `allowed` to `what` (« record contacts »…).
    pub(crate) fn allowed(self, allowed: &[System], what: &str) -> Result<()> {
        if allowed.contains(&self) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{self:?} does not {what}")))
        }
    }
}

impl Scope {
    /// A part of the hub acting in `tenant` on its own.
    pub fn system(actor: System, tenant: &str) -> Scope {
        Scope {
            commune: tenant.to_string(),
            caller: Caller::System(actor),
            origin: Origin::default(),
        }
    }

    /// This scope, called through `via` from `address` (what the read trail records).
    pub fn from(mut self, via: crate::audit::Via, address: Option<std::net::IpAddr>) -> Scope {
        self.origin = Origin {
            via,
            address: address.map(|a| a.to_string()).unwrap_or_default(),
        };
        self
    }

    /// Where the call comes from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether a part of the hub acts (no agent reads: nothing to record).
    pub(crate) fn is_system(&self) -> bool {
        matches!(self.caller, Caller::System(_))
    }

    /// Whether the caller is the data protection officer.
    pub fn is_dpo(&self) -> bool {
        self.agent().is_some_and(Agent::is_dpo)
    }

    /// Whether the caller is a device in the hall (the line only).
    pub fn is_borne(&self) -> bool {
        self.agent().is_some_and(Agent::is_borne)
    }

    /// The commune (INSEE code) this scope is in.
    pub fn commune(&self) -> &str {
        &self.commune
    }

    /// The agent calling, if an agent calls (not an open hub's visitor, not the hub itself).
    pub fn agent(&self) -> Option<&Agent> {
        match &self.caller {
            Caller::Agent(a) => Some(a),
            _ => None,
        }
    }

    /// The id recorded on the events this caller writes (empty when no agent writes).
    pub fn agent_id(&self) -> String {
        self.agent().map(|a| a.id.clone()).unwrap_or_default()
    }

    /// Whether the caller reads dashboards only (an élu).
    pub fn is_elu(&self) -> bool {
        self.agent().is_some_and(Agent::is_elu)
    }

    /// Whether anyone calls on a hub without an agents file.
    pub(crate) fn is_open_visitor(&self) -> bool {
        matches!(self.caller, Caller::Open)
    }

    /// Whether the hub's own `part` acts.
    pub(crate) fn is_part(&self, part: System) -> bool {
        matches!(self.caller, Caller::System(p) if p == part)
    }
}

/// An ops caller: an ops agent (of some or every commune), or anyone on an open hub.
#[derive(Debug, Clone)]
pub struct Ops(Caller);

impl Ops {
    /// Whether the caller sees `tenant`'s dead letters and quarantine.
    pub fn may_read(&self, tenant: &str) -> bool {
        match &self.0 {
            Caller::Agent(a) => a.may_read(tenant),
            _ => true,
        }
    }

    /// Whether the caller sees every commune (and so raw bytes of what no commune owns).
    pub fn all_communes(&self) -> bool {
        match &self.0 {
            Caller::Agent(a) => a.all_communes(),
            _ => true,
        }
    }
}

/// The access policy of the API.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anyone may call anything (no agents file).
    Open,
    /// Agents by SHA-256 of their token, and those of the identity provider.
    Agents(Agents),
}

/// The agents of an agents file.
#[derive(Debug, Clone, Default)]
pub struct Agents {
    by_token: HashMap<String, Agent>,
    oidc: Option<Arc<Provider>>,
}

impl Agents {
    /// Every agent known now: the file's, and those who signed in with the provider.
    fn all(&self) -> Vec<Agent> {
        let mut out: Vec<Agent> = self.by_token.values().cloned().collect();
        if let Some(p) = &self.oidc {
            out.extend(p.seen());
        }
        out
    }
}

/// What a front-end presents to be let in.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// A bearer token as received (the agents file's, or the provider's JWT), or none.
    Bearer(Option<&'a str>),
    /// An agent a sign-in already checked (the desk's session after OpenID Connect).
    SignedIn(&'a Agent),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    agent: Vec<Entry>,
    #[serde(default)]
    oidc: Option<oidc::Config>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    token_sha256: String,
    tenants: Vec<String>,
    #[serde(default)]
    ops: bool,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    role: Role,
    #[serde(default)]
    catalogue: bool,
}

/// Hex SHA-256 of a token, as the agents file stores it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Access {
    /// Parses an agents file.
    pub fn from_toml(text: &str) -> Result<Access, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut agents = HashMap::new();
        for e in file.agent {
            let hash = e.token_sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("agent {}: token_sha256 is not 64 hex digits", e.id));
            }
            if e.tenants.is_empty() {
                return Err(format!("agent {}: tenants is empty", e.id));
            }
            let agent = Agent::new(
                e.id.clone(),
                None,
                e.tenants.into_iter().collect(),
                e.services.into_iter().collect(),
                e.role,
                e.ops,
                e.catalogue,
            );
            if agents.insert(hash, agent).is_some() {
                return Err(format!("agent {}: the same token is listed twice", e.id));
            }
        }
        let oidc = match file.oidc {
            Some(config) => {
                let ids = agents.values().map(|a| a.id.clone()).collect();
                Some(Arc::new(Provider::new(config, None)?.reserving(ids)))
            }
            None => None,
        };
        Ok(Access::Agents(Agents {
            by_token: agents,
            oidc,
        }))
    }

    /// This policy with the identity provider's client secret `secret` (given to `serve`
    /// by environment rather than in a file).
    pub fn with_oidc_secret(self, secret: String) -> Access {
        match self {
            Access::Agents(Agents {
                by_token,
                oidc: Some(p),
            }) => Access::Agents(Agents {
                by_token,
                oidc: Some(Arc::new(p.with_secret(secret))),
            }),
            other => other,
        }
    }

    /// The identity provider agents sign in with, when configured.
    pub fn oidc(&self) -> Option<&Arc<Provider>> {
        match self {
            Access::Agents(a) => a.oidc.as_ref(),
            Access::Open => None,
        }
    }

    /// Makes sure what checking `token` needs is at hand (the provider's keys when it is a
    /// JWT naming a key not fetched yet): async front-ends call it before the checks.
    pub async fn prepare(&self, token: Option<&str>) {
        if let (Some(p), Some(t)) = (self.oidc(), token) {
            p.prepare(t.trim()).await;
        }
    }

    /// The agent presenting `token` (a bearer token, as the front-end received it), or
    /// [`Error::Unauthenticated`]. `None` in open mode. For a front-end that needs to know
    /// who signs in before any commune is named (the desk's sign-in); every command and
    /// query takes a [`Scope`] instead.
    pub fn caller(&self, token: Option<&str>) -> Result<Option<Agent>> {
        let Access::Agents(agents) = self else {
            return Ok(None);
        };
        let token = token
            .ok_or_else(|| {
                Error::Unauthenticated("authentification manquante : Bearer <jeton>".into())
            })?
            .trim();
        if let Some(a) = agents.by_token.get(&token_hash(token)) {
            return Ok(Some(a.clone()));
        }
        match &agents.oidc {
            Some(p) if oidc::looks_like_jwt(token) => p.access_token(token).map(Some),
            _ => Err(Error::Unauthenticated("jeton inconnu".into())),
        }
    }

    /// The caller `credential` stands for (`None` in open mode).
    fn credential(&self, credential: Credential<'_>) -> Result<Option<Agent>> {
        match credential {
            Credential::Bearer(token) => self.caller(token),
            Credential::SignedIn(a) if !self.is_open() => Ok(Some(a.clone())),
            Credential::SignedIn(_) => Ok(None),
        }
    }

    /// The scope of the agent presenting `token` in `tenant`: their commune's citizens,
    /// contacts and requests (not an élu's token: élus read dashboards only).
    pub fn scope(&self, token: Option<&str>, tenant: &str) -> Result<Scope> {
        self.scope_for(Credential::Bearer(token), tenant)
    }

    /// [`Access::scope`] for any credential.
    pub fn scope_for(&self, credential: Credential<'_>, tenant: &str) -> Result<Scope> {
        let scope = self.dashboard_scope_for(credential, tenant)?;
        if let Caller::Agent(a) = &scope.caller {
            if a.role == Role::Dpo {
                tracing::warn!(agent = %a.id, "dpo refused: personal data");
                return Err(Error::Forbidden(format!(
                    "l'agent {} est délégué à la protection des données : journal des consultations seulement",
                    a.id
                )));
            }
            if a.role == Role::Borne {
                tracing::warn!(agent = %a.id, "borne refused: personal data");
                return Err(Error::Forbidden(format!(
                    "le compte {} est une borne de l'accueil : la file d'attente seulement",
                    a.id
                )));
            }
            if a.role == Role::Elu {
                tracing::warn!(agent = %a.id, "élu refused: personal data");
                return Err(Error::Forbidden(format!(
                    "l'agent {} est un élu : tableaux de bord seulement (aucune donnée personnelle)",
                    a.id
                )));
            }
        }
        Ok(scope)
    }

    /// The scope of the agent presenting `token` in `tenant`'s dashboards (aggregates only,
    /// an élu's too).
    pub fn dashboard_scope(&self, token: Option<&str>, tenant: &str) -> Result<Scope> {
        self.dashboard_scope_for(Credential::Bearer(token), tenant)
    }

    /// [`Access::dashboard_scope`] for any credential.
    pub fn dashboard_scope_for(&self, credential: Credential<'_>, tenant: &str) -> Result<Scope> {
        let caller = match self.credential(credential)? {
            Some(a) => {
                if !a.may_read(tenant) {
                    tracing::warn!(agent = %a.id, "agent refused: commune not allowed");
                    return Err(Error::Forbidden(format!(
                        "l'agent {} n'a pas accès à la commune {}",
                        a.id,
                        contacthub_core::limits::quote(tenant)
                    )));
                }
                Caller::Agent(a)
            }
            None => Caller::Open,
        };
        Ok(Scope {
            commune: tenant.to_string(),
            caller,
            origin: Origin::default(),
        })
    }

    /// The scope of a caller of the accueil's waiting line in `tenant`: an agent, or a device
    /// of the hall (`role = "borne"`); not an élu, not the DPO.
    pub fn hall_scope(&self, token: Option<&str>, tenant: &str) -> Result<Scope> {
        self.hall_scope_for(Credential::Bearer(token), tenant)
    }

    /// [`Access::hall_scope`] for any credential.
    pub fn hall_scope_for(&self, credential: Credential<'_>, tenant: &str) -> Result<Scope> {
        let scope = self.dashboard_scope_for(credential, tenant)?;
        match &scope.caller {
            Caller::Agent(a) if a.role == Role::Elu || a.role == Role::Dpo => {
                Err(Error::Forbidden(format!(
                    "l'agent {} n'a pas accès à la file d'attente de l'accueil",
                    a.id
                )))
            }
            _ => Ok(scope),
        }
    }

    /// The scope of the data protection officer presenting `token` in `tenant`: its read
    /// trail (anyone on an open hub).
    pub fn dpo_scope(&self, token: Option<&str>, tenant: &str) -> Result<Scope> {
        self.dpo_scope_for(Credential::Bearer(token), tenant)
    }

    /// [`Access::dpo_scope`] for any credential.
    pub fn dpo_scope_for(&self, credential: Credential<'_>, tenant: &str) -> Result<Scope> {
        let scope = self.dashboard_scope_for(credential, tenant)?;
        match &scope.caller {
            Caller::Agent(a) if !a.is_dpo() => Err(Error::Forbidden(format!(
                "l'agent {} n'est pas délégué à la protection des données : le journal des consultations lui est fermé",
                a.id
            ))),
            _ => Ok(scope),
        }
    }

    /// The caller, checked for ops rights: positions, dead letters, the quarantine.
    pub fn ops(&self, token: Option<&str>) -> Result<Ops> {
        self.ops_for(Credential::Bearer(token))
    }

    /// [`Access::ops`] for any credential.
    pub fn ops_for(&self, credential: Credential<'_>) -> Result<Ops> {
        match self.credential(credential)? {
            Some(a) if !a.ops || a.role != Role::Agent => Err(Error::Forbidden(format!(
                "l'agent {} n'a pas accès à l'exploitation",
                a.id
            ))),
            Some(a) => Ok(Ops(Caller::Agent(a))),
            None => Ok(Ops(Caller::Open)),
        }
    }

    /// The agents a request of `tenant` may be given to by `of`: the commune's agents (not
    /// élus) who share a service with `of` — every agent of the commune when `of` belongs to
    /// no service — `of` included, by id. Empty in open mode (no one is known).
    pub fn colleagues(&self, of: &Agent, tenant: &str) -> Vec<String> {
        let Access::Agents(agents) = self else {
            return Vec::new();
        };
        let mut out: Vec<String> = agents
            .all()
            .into_iter()
            .filter(|a| a.role == Role::Agent && a.may_read(tenant))
            .filter(|a| {
                a.id == of.id || of.is_generalist() || a.services.iter().any(|s| of.in_service(s))
            })
            .map(|a| a.id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The agents of `tenant` working in `service`, by id (empty in open mode).
    pub fn agents_in(&self, tenant: &str, service: &str) -> Vec<String> {
        let Access::Agents(agents) = self else {
            return Vec::new();
        };
        let mut out: Vec<String> = agents
            .all()
            .into_iter()
            .filter(|a| a.role == Role::Agent && a.may_read(tenant) && a.in_service(service))
            .map(|a| a.id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether `id` is an agent (not an élu) of `tenant` a request can be given to; any id in
    /// open mode.
    pub fn is_agent_of(&self, id: &str, tenant: &str) -> bool {
        match self {
            Access::Open => true,
            Access::Agents(agents) => agents
                .all()
                .iter()
                .any(|a| a.id == id && a.role == Role::Agent && a.may_read(tenant)),
        }
    }

    /// Whether anyone may call (no agents file).
    pub fn is_open(&self) -> bool {
        matches!(self, Access::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colleagues_share_a_service_and_the_commune() {
        let text = format!(
            "[[agent]]\nid='v1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
             [[agent]]\nid='v2'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie', 'urbanisme']\n\
             [[agent]]\nid='c1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n\
             [[agent]]\nid='v3'\ntoken_sha256='{}'\ntenants=['69096']\nservices=['voirie']\n\
             [[agent]]\nid='maire'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
             [[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n",
            token_hash("v1"),
            token_hash("v2"),
            token_hash("c1"),
            token_hash("v3"),
            token_hash("maire"),
            token_hash("accueil")
        );
        let access = Access::from_toml(&text).unwrap();
        let v1 = access.caller(Some("v1")).unwrap().unwrap();
        assert_eq!(access.colleagues(&v1, "69091"), ["v1", "v2"]);
        let accueil = access.caller(Some("accueil")).unwrap().unwrap();
        assert_eq!(
            access.colleagues(&accueil, "69091"),
            ["accueil", "c1", "v1", "v2"]
        );
        assert!(access.is_agent_of("c1", "69091"));
        assert!(!access.is_agent_of("v3", "69091"), "another commune");
        assert!(!access.is_agent_of("maire", "69091"), "an élu");
        assert!(!access.is_agent_of("nobody", "69091"));
    }

    #[test]
    fn agents_see_only_their_communes() {
        let text = format!(
            "[[agent]]\nid='g'\ntoken_sha256='{}'\ntenants=['69091']\n[[agent]]\nid='s'\ntoken_sha256='{}'\ntenants=['*']\nops=true\n",
            token_hash("givors-secret"),
            token_hash("syndicate-secret")
        );
        let access = Access::from_toml(&text).unwrap();
        let g = access.scope(Some("givors-secret"), "69091").unwrap();
        assert_eq!(g.agent_id(), "g");
        assert_eq!(g.commune(), "69091");
        assert!(matches!(
            access.scope(Some("givors-secret"), "69096"),
            Err(Error::Forbidden(_))
        ));
        assert!(access.scope(Some("syndicate-secret"), "69096").is_ok());
        assert!(matches!(
            access.scope(None, "69091"),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            access.scope(Some("nope"), "69091"),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            access.ops(Some("givors-secret")),
            Err(Error::Forbidden(_))
        ));
        assert!(access.ops(Some("syndicate-secret")).is_ok());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = Access::from_toml("[[agent]]\nid='x'\ntoken_sha256='abc'\ntenants=['69091']\n")
            .unwrap_err();
        assert!(e.contains("64 hex"), "{e}");
        let e = Access::from_toml(&format!(
            "[[agent]]\nid='x'\ntoken_sha256='{}'\ntenants=[]\n",
            token_hash("t")
        ))
        .unwrap_err();
        assert!(e.contains("tenants is empty"), "{e}");
    }
}
