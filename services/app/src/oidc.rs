//! Signing in with OpenID Connect: agents with their commune's identity provider
//! (ProConnect, Keycloak, ADFS) — and, through [`Provider::claims`], citizens with
//! FranceConnect (see [`crate::space`]): the desk's authorization code flow with PKCE, state and nonce, and the
//! bearer JWT access tokens of gRPC callers. Signatures are checked against the provider's
//! published keys (JWKS, fetched from its discovery document, again when a token names a key
//! not seen yet, and at least hourly), with its issuer, the audience, expiry and a clock skew;
//! claims map to an [`Agent`] through the rules of the agents file (`[oidc]`, `[[oidc.rule]]`).
//! Nothing here keeps a token: the desk keeps the [`Agent`] a sign-in made.
//!
//! ```toml
//! [oidc]
//! issuer = "https://sso.syndicat.example/realms/communes"
//! client_id = "contacthub"
//! client_secret_file = "/run/secrets/oidc-client-secret"   # or CONTACTHUB_OIDC_CLIENT_SECRET
//! redirect_url = "https://accueil.syndicat.example/connexion/retour"
//!
//! [[oidc.rule]]
//! when = { groups = "grc-givors-accueil" }
//! tenants = ["69091"]
//! ```

use crate::auth::{Agent, Role};
use crate::{Error, Result};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// A token longer than this is refused before it is parsed.
pub const MAX_TOKEN: usize = 16 * 1024;
/// Published keys older than this are fetched again before a token is checked.
const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Tokens naming a key not published make the provider be asked at most this often (a flood
/// of forged tokens must not become a flood of requests to it), and a provider that did not
/// answer is asked again after this long at the soonest.
const MIN_REFRESH: Duration = Duration::from_secs(10);
/// An answer of the provider larger than this is refused.
const MAX_ANSWER: usize = 512 * 1024;
/// How long a checked access token is taken again without a new check (its expiry is
/// checked then: a token expiring sooner is refused at most this late).
const CHECKED_FOR: Duration = Duration::from_secs(30);
/// Access tokens remembered as checked, at most.
const MAX_CHECKED: usize = 10_000;
/// The longest agent id or display name taken from a claim.
const MAX_CLAIM: usize = 128;
/// How long the provider has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The signature algorithms accepted: asymmetric only (a token signed with a shared secret —
/// or with the public key used as one — is refused; `none` does not parse).
const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
];

/// The `[oidc]` table of the agents file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The provider's issuer URL, exactly as its discovery document states it (https; http
    /// only on this machine, for trials and tests).
    pub issuer: String,
    /// This hub's client id at the provider.
    pub client_id: String,
    /// A file holding the client secret (confidential clients); else
    /// `CONTACTHUB_OIDC_CLIENT_SECRET` (given to `serve`), else a public client (PKCE only).
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// The audience gRPC access tokens must carry (default: `client_id`).
    #[serde(default)]
    pub audience: Option<String>,
    /// The desk's callback, as registered at the provider (`https://…/connexion/retour`);
    /// without it the desk offers no sign-in with the provider (gRPC tokens still work).
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Scopes asked at sign-in.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// `acr_values` asked at sign-in (ProConnect: `eidas1`), checked on the ID token's `acr`.
    #[serde(default)]
    pub acr_values: Option<String>,
    /// The claim whose value is the agent's id, recorded on the events they write.
    #[serde(default = "default_id_claim")]
    pub id_claim: String,
    /// The claim shown as the agent's name on the desk.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Whether claims are also read from the userinfo endpoint after sign-in (ProConnect
    /// gives most of its claims there, as a signed JWT).
    #[serde(default)]
    pub userinfo: bool,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    /// The provider's name on the sign-in button (« Se connecter avec … »).
    #[serde(default = "default_label")]
    pub label: String,
    /// What claims give which rights.
    #[serde(default)]
    pub rule: Vec<Rule>,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}
fn default_id_claim() -> String {
    "preferred_username".into()
}
fn default_name_claim() -> String {
    "name".into()
}
fn default_skew() -> u64 {
    60
}
fn default_label() -> String {
    "le compte de la mairie".into()
}

/// One rule: an agent whose claims hold every `when` pair (a claim equal to the value, or a
/// list of values containing it) gets these rights. An agent matching several rules gets
/// every commune they give; their role, services, ops and catalogue rights must be the same
/// (an agent's rights are the same in each of their communes: rules that differ would give a
/// right of one commune in another).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: BTreeMap<String, String>,
    /// The agent's id, when the rule names one person (`when = { email = … }`): recorded
    /// instead of the `id_claim` (which may be an e-mail address, not to be spread).
    #[serde(default)]
    pub id: Option<String>,
    pub tenants: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub ops: bool,
    #[serde(default)]
    pub catalogue: bool,
}

impl Config {
    fn check(&self) -> std::result::Result<(), String> {
        url_of(&self.issuer).map_err(|e| format!("oidc.issuer: {e}"))?;
        if let Some(r) = &self.redirect_url {
            url_of(r).map_err(|e| format!("oidc.redirect_url: {e}"))?;
        }
        if self.client_id.trim().is_empty() {
            return Err("oidc.client_id is empty".into());
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err("oidc.scopes must include openid".into());
        }
        for (i, r) in self.rule.iter().enumerate() {
            if r.when.is_empty() {
                return Err(format!(
                    "oidc.rule {}: when is empty (it would match every account)",
                    i + 1
                ));
            }
            if r.tenants.is_empty() {
                return Err(format!("oidc.rule {}: tenants is empty", i + 1));
            }
        }
        Ok(())
    }
}

/// `url` parsed, https — or http on this machine.
fn url_of(url: &str) -> std::result::Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    match u.scheme() {
        "https" => Ok(u),
        "http" if matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(u),
        _ => Err(format!(
            "{url:?} must be https (http only on localhost, for trials)"
        )),
    }
}

/// What the provider's discovery document says (the parts used).
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

/// What was fetched from the provider.
#[derive(Default)]
struct Known {
    metadata: Option<Metadata>,
    /// Its signing keys, by `kid` (an empty `kid` for a key without one).
    keys: Vec<(String, Jwk)>,
    fetched: Option<Instant>,
}

/// A configured provider: its configuration and what was fetched from it.
pub struct Provider {
    config: Config,
    secret: Option<String>,
    http: reqwest::Client,
    known: RwLock<Known>,
    /// One refresh at a time, and when the provider was last asked for an unknown key, or
    /// last failed to answer.
    refreshing: tokio::sync::Mutex<Tries>,
    /// Agents who signed in since the start, by id: requests can be given to them.
    seen: Mutex<BTreeMap<String, Agent>>,
    /// The ids of the agents file's agents: no account of the provider takes one.
    reserved: BTreeSet<String>,
    /// Access tokens checked lately, by SHA-256: the agent, and until when it holds.
    checked: Mutex<HashMap<[u8; 32], (Agent, Instant)>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// When the provider was last asked because of an unknown key, and last failed.
#[derive(Debug, Default)]
struct Tries {
    unknown_kid: Option<Instant>,
    failed: Option<Instant>,
}

/// What the desk keeps between sending a browser to the provider and its return.
#[derive(Debug, Clone)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where the browser goes.
    pub url: String,
}

/// A finished sign-in: the agent, and the ID token (the hint of a later sign-out).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub agent: Agent,
    pub id_token: String,
}

fn random_url_safe() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Whether `token` has the shape of a JWT (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN && token.split('.').count() == 3
}

/// Why a token or sign-in is refused, in French for the agent.
fn refused(why: impl std::fmt::Display) -> Error {
    Error::Unauthenticated(format!("jeton refusé : {why}"))
}

impl Provider {
    /// A provider from the agents file's `[oidc]` table; `secret` overrides its secret file.
    pub fn new(config: Config, secret: Option<String>) -> std::result::Result<Provider, String> {
        config.check()?;
        let secret = match (secret, &config.client_secret_file) {
            (Some(s), _) => Some(s),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("oidc.client_secret_file {}: {e}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("oidc: HTTP client: {e}"))?;
        Ok(Provider {
            config,
            secret: secret.filter(|s| !s.is_empty()),
            http,
            known: RwLock::new(Known::default()),
            refreshing: tokio::sync::Mutex::new(Tries::default()),
            seen: Mutex::new(BTreeMap::new()),
            reserved: BTreeSet::new(),
            checked: Mutex::new(HashMap::new()),
        })
    }

    /// This provider, its accounts never taking one of `ids` (the agents file's).
    pub(crate) fn reserving(mut self, ids: BTreeSet<String>) -> Provider {
        self.reserved = ids;
        self
    }

    /// A commune's FranceConnect client (its citizens' space): FranceConnect's claims come
    /// from its userinfo endpoint (a signed JWT), at the level of assurance asked.
    pub fn franceconnect(
        fc: &contacthub_core::tenant::FranceConnect,
    ) -> std::result::Result<Provider, String> {
        let config = Config {
            issuer: fc.issuer.clone(),
            client_id: fc.client_id.clone(),
            client_secret_file: fc.client_secret_file.as_ref().map(Into::into),
            audience: None,
            redirect_url: Some(fc.redirect_url.clone()),
            scopes: fc.scopes.clone(),
            acr_values: Some(fc.acr_values.clone()).filter(|a| !a.trim().is_empty()),
            id_claim: "sub".into(),
            name_claim: "given_name".into(),
            userinfo: true,
            clock_skew_seconds: default_skew(),
            label: "FranceConnect".into(),
            rule: Vec::new(),
        };
        Provider::new(config, None).map_err(|e| e.replace("oidc.", "franceconnect."))
    }

    /// A copy with the client secret `secret`.
    pub fn with_secret(&self, secret: String) -> Provider {
        Provider {
            config: self.config.clone(),
            secret: Some(secret).filter(|s| !s.is_empty()),
            http: self.http.clone(),
            known: RwLock::new(Known::default()),
            refreshing: tokio::sync::Mutex::new(Tries::default()),
            seen: Mutex::new(BTreeMap::new()),
            reserved: self.reserved.clone(),
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// The name on the desk's sign-in button, when the desk offers sign-in with it.
    pub fn desk_label(&self) -> Option<&str> {
        self.config
            .redirect_url
            .as_ref()
            .map(|_| self.config.label.as_str())
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Fetches the discovery document and the keys when never fetched or older than an
    /// hour, or when a token names a key (`kid`) not published: one fetch at a time, for an
    /// unknown key at most every 10 s, after a failure not before 10 s.
    pub async fn refresh(&self, kid: Option<&str>) -> Result<()> {
        let needed = |k: &Known| {
            let stale =
                k.metadata.is_none() || k.fetched.is_none_or(|t| t.elapsed() >= KEYS_MAX_AGE);
            let unknown = kid.is_some_and(|kid| !k.keys.iter().any(|(id, _)| id == kid));
            (stale, unknown)
        };
        let (stale, unknown) = needed(&self.known.read().unwrap_or_else(|p| p.into_inner()));
        if (stale, unknown) == (false, false) {
            return Ok(());
        }
        let usable = !unknown
            && self
                .known
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .metadata
                .is_some();
        let mut tries = if usable {
            // Old keys that still verify the token: refreshed by whoever comes first, the
            // others go on with them rather than wait for a slow provider.
            match self.refreshing.try_lock() {
                Ok(t) => t,
                Err(_) => return Ok(()),
            }
        } else {
            self.refreshing.lock().await
        };
        // Another caller may have fetched while this one waited.
        let (stale, unknown) = needed(&self.known.read().unwrap_or_else(|p| p.into_inner()));
        let recently = |t: Option<Instant>| t.is_some_and(|t| t.elapsed() < MIN_REFRESH);
        if recently(tries.failed) || !(stale || unknown && !recently(tries.unknown_kid)) {
            return Ok(());
        }
        if unknown && !stale {
            tries.unknown_kid = Some(Instant::now());
        }
        match self.fetch().await {
            Ok((metadata, keys)) => {
                let mut k = self.known.write().unwrap_or_else(|p| p.into_inner());
                tracing::info!(keys = keys.len(), "oidc: provider keys fetched");
                *k = Known {
                    metadata: Some(metadata),
                    keys,
                    fetched: Some(Instant::now()),
                };
                // A key withdrawn takes its tokens with it: every token is checked again.
                self.checked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                tries.failed = None;
                Ok(())
            }
            Err(e) => {
                tries.failed = Some(Instant::now());
                tracing::warn!(error = %e, "oidc: the identity provider did not answer");
                Err(e)
            }
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value> {
        let res =
            self.http.get(url).send().await.map_err(|e| {
                Error::Unavailable(format!("fournisseur d'identité injoignable : {e}"))
            })?;
        if !res.status().is_success() {
            return Err(Error::Unavailable(format!(
                "le fournisseur d'identité répond {} à {url}",
                res.status()
            )));
        }
        let body = limited(res).await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::Unavailable(format!(
                "le fournisseur d'identité répond du JSON invalide ({e})"
            ))
        })
    }

    async fn fetch(&self) -> Result<(Metadata, Vec<(String, Jwk)>)> {
        let base = self.config.issuer.trim_end_matches('/');
        let doc = self
            .get_json(&format!("{base}/.well-known/openid-configuration"))
            .await?;
        let metadata: Metadata = serde_json::from_value(doc).map_err(|e| {
            Error::Unavailable(format!("document de découverte OpenID incomplet ({e})"))
        })?;
        if metadata.issuer != self.config.issuer {
            return Err(Error::Unavailable(format!(
                "le document de découverte annonce l'émetteur {:?}, pas {:?}",
                metadata.issuer, self.config.issuer
            )));
        }
        for url in [
            Some(&metadata.jwks_uri),
            Some(&metadata.token_endpoint),
            Some(&metadata.authorization_endpoint),
            metadata.userinfo_endpoint.as_ref(),
            metadata.end_session_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            url_of(url).map_err(Error::Unavailable)?;
        }
        let jwks = self.get_json(&metadata.jwks_uri).await?;
        let mut keys = Vec::new();
        for key in jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // A key this crate does not know (or meant for encryption) is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(key.clone()) else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            keys.push((jwk.common.key_id.clone().unwrap_or_default(), jwk));
        }
        Ok((metadata, keys))
    }

    /// Makes sure the keys `token` needs are known (fetching them when not): what an async
    /// front-end calls before the synchronous check.
    pub async fn prepare(&self, token: &str) {
        if !looks_like_jwt(token) {
            return;
        }
        // A token whose header does not parse is refused anyway: nothing to fetch for it.
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return;
        };
        let _ = self.refresh(Some(&header.kid.unwrap_or_default())).await;
    }

    /// The claims of `token`, its signature, issuer, `audience`, expiry (and `nonce`, when
    /// given) checked. `userinfo`: a userinfo answer (no expiry required).
    fn verify(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
        userinfo: bool,
    ) -> Result<Map<String, Value>> {
        if token.len() > MAX_TOKEN {
            return Err(refused(format!("plus de {MAX_TOKEN} octets")));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refused(format!("en-tête illisible ou algorithme refusé ({e})")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(refused(format!("algorithme {:?} refusé", header.alg)));
        }
        let kid = header.kid.clone().unwrap_or_default();
        let (jwk, issuer) = {
            let k = self.known.read().unwrap_or_else(|p| p.into_inner());
            let Some(metadata) = &k.metadata else {
                return Err(Error::Unavailable(
                    "le fournisseur d'identité n'a pas encore répondu : réessayez".into(),
                ));
            };
            let Some((_, jwk)) = k.keys.iter().find(|(id, _)| *id == kid) else {
                return Err(refused(format!(
                    "clé de signature inconnue du fournisseur ({kid:?})"
                )));
            };
            (jwk.clone(), metadata.issuer.clone())
        };
        if let Some(alg) = jwk.common.key_algorithm {
            if format!("{alg:?}") != format!("{:?}", header.alg) {
                return Err(refused("l'algorithme ne correspond pas à la clé"));
            }
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|e| refused(format!("clé inutilisable ({e})")))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.clock_skew_seconds;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        if userinfo {
            validation.validate_exp = false;
            validation.set_required_spec_claims(&["sub", "iss", "aud"]);
        } else {
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => refused("expiré"),
                    K::InvalidAudience => refused("destiné à une autre application (audience)"),
                    K::InvalidIssuer => refused("émis par un autre fournisseur"),
                    K::InvalidSignature => refused("signature invalide"),
                    K::ImmatureSignature => refused("pas encore valable (nbf)"),
                    K::MissingRequiredClaim(c) => refused(format!("revendication {c} absente")),
                    _ => refused(e),
                }
            })?;
        let claims = data.claims;
        if !claims.get("iss").is_some_and(Value::is_string) {
            return Err(refused("émetteur (iss) illisible"));
        }
        match claims.get("iat") {
            None if userinfo => {}
            None => return Err(refused("revendication iat absente")),
            Some(iat) => {
                let Some(iat) = iat.as_f64() else {
                    return Err(refused("date d'émission (iat) illisible"));
                };
                let now = chrono::Utc::now().timestamp() as f64;
                if iat > now + self.config.clock_skew_seconds as f64 {
                    return Err(refused("émis dans le futur (iat)"));
                }
            }
        }
        if let Some(expected) = nonce {
            if claims.get("nonce").and_then(Value::as_str) != Some(expected) {
                return Err(refused("nonce différent de celui de la connexion"));
            }
        }
        Ok(claims)
    }

    /// The agent a gRPC bearer access token stands for.
    pub fn access_token(&self, token: &str) -> Result<Agent> {
        // A token checked lately is not checked again (an RSA verification and the claims'
        // parsing cost a desk's call a third of its time): its hash, the agent, and until when.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some((agent, until)) = self
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest)
        {
            if now < *until {
                return Ok(agent.clone());
            }
        }
        let (agent, expires) = self.check_access_token(token)?;
        // Never taken past its expiry.
        let left = u64::try_from(expires - chrono::Utc::now().timestamp()).unwrap_or(0);
        let until = now + CHECKED_FOR.min(Duration::from_secs(left));
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.len() >= MAX_CHECKED {
            checked.retain(|_, (_, until)| now < *until);
            if checked.len() >= MAX_CHECKED {
                checked.clear();
            }
        }
        checked.insert(digest, (agent.clone(), until));
        Ok(agent)
    }

    /// The agent of an access token checked now, and its expiry (UNIX seconds).
    fn check_access_token(&self, token: &str) -> Result<(Agent, i64)> {
        let audience = self
            .config
            .audience
            .clone()
            .unwrap_or_else(|| self.config.client_id.clone());
        let claims = self.verify(token, &audience, None, false)?;
        // An ID token (it carries the nonce of its sign-in) is not an access token, even when
        // the audiences are the same.
        if claims.contains_key("nonce") {
            return Err(refused("c'est un ID token, pas un jeton d'accès"));
        }
        let expires = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        Ok((self.agent(&claims)?, expires))
    }

    /// The agent `claims` stand for, by the rules; refused when no rule matches.
    pub fn agent(&self, claims: &Map<String, Value>) -> Result<Agent> {
        let id = claims
            .get(&self.config.id_claim)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::Forbidden(format!(
                    "le compte ne porte pas la revendication {} qui identifie l'agent",
                    self.config.id_claim
                ))
            })?;
        if id.chars().count() > MAX_CLAIM || id.chars().any(char::is_control) {
            return Err(Error::Forbidden(format!(
                "l'identifiant d'agent ({}) est trop long ou illisible",
                self.config.id_claim
            )));
        }
        let name = claims
            .get(&self.config.name_claim)
            .and_then(Value::as_str)
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_CLAIM)
                    .collect::<String>()
            })
            .filter(|s| !s.trim().is_empty());
        let matched: Vec<&Rule> = self
            .config
            .rule
            .iter()
            .filter(|r| {
                r.when.iter().all(|(claim, value)| {
                    // An address the provider says it did not verify proves nothing.
                    let unverified = claim == "email"
                        && claims.get("email_verified") == Some(&Value::Bool(false));
                    !unverified && holds(claims.get(claim), value)
                })
            })
            .collect();
        let Some(first) = matched.first() else {
            // Not the id: it may be an e-mail address.
            tracing::warn!("oidc: no rule gives this account any right");
            return Err(Error::Forbidden(format!(
                "le compte {id} est reconnu par le fournisseur d'identité, mais aucune règle ne lui donne accès à contacthub : demandez l'accès à l'administrateur de votre commune"
            )));
        };
        let same_rights = |r: &&Rule| {
            r.role == first.role
                && r.ops == first.ops
                && r.catalogue == first.catalogue
                && r.services.iter().collect::<BTreeSet<_>>()
                    == first.services.iter().collect::<BTreeSet<_>>()
        };
        if !matched.iter().all(same_rights) {
            tracing::warn!("oidc: rules give this account different rights");
            return Err(Error::Forbidden(format!(
                "le compte {id} relève de règles aux droits différents (rôle, services, exploitation ou catalogue) : l'administrateur doit les accorder"
            )));
        }
        let ids: BTreeSet<&str> = matched.iter().filter_map(|r| r.id.as_deref()).collect();
        if ids.len() > 1 {
            return Err(Error::Forbidden(format!(
                "le compte {id} relève de règles aux identifiants différents : l'administrateur doit n'en laisser qu'un"
            )));
        }
        let id = match ids.into_iter().next() {
            Some(given) => given,
            // An e-mail address would be spread on every event and log line the agent makes.
            None if id.contains('@') => {
                return Err(Error::Forbidden(format!(
                    "l'identifiant du compte ({}) est une adresse électronique : l'administrateur doit donner un id à la règle de cet agent, ou choisir une autre revendication (id_claim)",
                    self.config.id_claim
                )))
            }
            None => id,
        };
        if self.reserved.contains(id) {
            tracing::warn!(
                "oidc: an account of the provider has the id of an agents file's account"
            );
            return Err(Error::Forbidden(format!(
                "l'identifiant {id} est celui d'un compte de service du fichier des agents : l'administrateur doit en changer"
            )));
        }
        let tenants: BTreeSet<String> = matched.iter().flat_map(|r| r.tenants.clone()).collect();
        let agent = Agent::new(
            id.to_string(),
            name,
            tenants,
            first.services.iter().cloned().collect(),
            first.role,
            first.ops,
            first.catalogue,
        );
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent.id.clone(), agent.clone());
        Ok(agent)
    }

    /// Agents who signed in since the hub started.
    pub fn seen(&self) -> Vec<Agent> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Starts a sign-in: where to send the browser, and what to keep until it returns.
    pub async fn start(&self) -> Result<Pending> {
        let Some(redirect) = self.config.redirect_url.clone() else {
            return Err(Error::Invalid(
                "la connexion par le fournisseur d'identité n'est pas configurée (oidc.redirect_url)".into(),
            ));
        };
        if let Err(e) = self.refresh(None).await {
            // Keys and endpoints fetched before are still good for a sign-in.
            if self
                .known
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .metadata
                .is_none()
            {
                return Err(e);
            }
        }
        let endpoint = {
            let k = self.known.read().unwrap_or_else(|p| p.into_inner());
            k.metadata
                .as_ref()
                .map(|m| m.authorization_endpoint.clone())
                .ok_or_else(|| Error::Unavailable("fournisseur d'identité injoignable".into()))?
        };
        let state = random_url_safe();
        let nonce = random_url_safe();
        let verifier = random_url_safe();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let mut url = reqwest::Url::parse(&endpoint)
            .map_err(|e| Error::Unavailable(format!("authorization_endpoint invalide ({e})")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &redirect)
                .append_pair("scope", &self.config.scopes.join(" "))
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(acr) = &self.config.acr_values {
                q.append_pair("acr_values", acr);
            }
        }
        Ok(Pending {
            state,
            nonce,
            verifier,
            url: url.to_string(),
        })
    }

    /// Finishes an agent's sign-in: [`Provider::claims`] mapped to an agent.
    pub async fn finish(&self, pending: &Pending, code: &str) -> Result<SignedIn> {
        let (claims, id_token) = self.claims(pending, code).await?;
        let agent = self.agent(&claims)?;
        Ok(SignedIn { agent, id_token })
    }

    /// Finishes a sign-in: trades `code` for tokens at the provider, checks the ID token
    /// (signature, issuer, audience, expiry, `nonce`, `acr`); its claims (with the userinfo's,
    /// when configured) and the ID token (the hint of a later sign-out).
    pub async fn claims(
        &self,
        pending: &Pending,
        code: &str,
    ) -> Result<(Map<String, Value>, String)> {
        if code.is_empty() || code.len() > 4096 {
            return Err(refused("code d'autorisation absent ou trop long"));
        }
        let redirect = self.config.redirect_url.clone().unwrap_or_default();
        let (token_endpoint, userinfo_endpoint) = {
            let k = self.known.read().unwrap_or_else(|p| p.into_inner());
            let m = k
                .metadata
                .as_ref()
                .ok_or_else(|| Error::Unavailable("fournisseur d'identité injoignable".into()))?;
            (m.token_endpoint.clone(), m.userinfo_endpoint.clone())
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        if let Some(secret) = &self.secret {
            form.push(("client_secret", secret.as_str()));
        }
        let res = self
            .http
            .post(&token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("fournisseur d'identité injoignable : {e}")))?;
        let status = res.status();
        let body = limited(res).await?;
        if !status.is_success() {
            let why = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| status.to_string());
            return Err(refused(format!("le fournisseur refuse le code ({why})")));
        }
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("réponse du fournisseur illisible ({e})")))?;
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| refused("le fournisseur n'a pas donné d'ID token"))?
            .to_string();
        self.prepare(&id_token).await;
        let mut claims = self.verify(
            &id_token,
            &self.config.client_id,
            Some(&pending.nonce),
            false,
        )?;
        if let Some(aud) = claims.get("aud").and_then(Value::as_array) {
            if aud.len() > 1
                && claims.get("azp").and_then(Value::as_str) != Some(&self.config.client_id)
            {
                return Err(refused(
                    "ID token à plusieurs audiences sans azp pour ce hub",
                ));
            }
        }
        if let Some(acr) = &self.config.acr_values {
            let allowed: Vec<&str> = acr.split_whitespace().collect();
            if !claims
                .get("acr")
                .and_then(Value::as_str)
                .is_some_and(|a| allowed.contains(&a))
            {
                return Err(refused(format!(
                    "niveau d'authentification (acr) autre que {acr}"
                )));
            }
        }
        if self.config.userinfo {
            let access = answer
                .get("access_token")
                .and_then(Value::as_str)
                .ok_or_else(|| refused("le fournisseur n'a pas donné de jeton d'accès"))?;
            let endpoint = userinfo_endpoint
                .ok_or_else(|| refused("le fournisseur n'annonce pas de userinfo_endpoint"))?;
            let extra = self.userinfo(&endpoint, access).await?;
            if extra.get("sub") != claims.get("sub") {
                return Err(refused("userinfo d'un autre compte (sub)"));
            }
            for (k, v) in extra {
                claims.entry(k).or_insert(v);
            }
        }
        Ok((claims, id_token))
    }

    /// The userinfo of `access`: JSON, or a JWT signed by the provider (ProConnect).
    async fn userinfo(&self, endpoint: &str, access: &str) -> Result<Map<String, Value>> {
        let res = self
            .http
            .get(endpoint)
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("fournisseur d'identité injoignable : {e}")))?;
        if !res.status().is_success() {
            return Err(refused(format!("userinfo répond {}", res.status())));
        }
        let jwt = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/jwt"));
        let body = limited(res).await?;
        if jwt {
            let text = String::from_utf8(body).map_err(|_| refused("userinfo illisible"))?;
            let text = text.trim();
            self.prepare(text).await;
            self.verify(text, &self.config.client_id, None, true)
        } else {
            serde_json::from_slice(&body).map_err(|e| refused(format!("userinfo illisible ({e})")))
        }
    }

    /// Where the browser goes to sign out at the provider too (when it has an end-session
    /// endpoint), coming back to `back`.
    pub fn logout_url(&self, id_token: &str, back: Option<&str>) -> Option<String> {
        let k = self.known.read().unwrap_or_else(|p| p.into_inner());
        let endpoint = k.metadata.as_ref()?.end_session_endpoint.clone()?;
        let mut url = reqwest::Url::parse(&endpoint).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("id_token_hint", id_token);
            q.append_pair("state", &random_url_safe());
            if let Some(back) = back {
                q.append_pair("post_logout_redirect_uri", back);
            }
        }
        Some(url.to_string())
    }
}

/// Whether a claim holds `value`: equal to it, or a list containing it.
fn holds(claim: Option<&Value>, value: &str) -> bool {
    match claim {
        Some(Value::String(s)) => s == value,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
        Some(Value::Bool(b)) => b.to_string() == value,
        Some(Value::Number(n)) => n.to_string() == value,
        _ => false,
    }
}

/// The body of `res`, refused beyond [`MAX_ANSWER`] bytes.
async fn limited(mut res: reqwest::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| Error::Unavailable(format!("fournisseur d'identité : {e}")))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(Error::Unavailable(format!(
                "le fournisseur d'identité répond plus de {MAX_ANSWER} octets"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(rules: &str) -> Provider {
        let text =
            format!("issuer = 'https://sso.example/realms/c'\nclient_id = 'contacthub'\n{rules}");
        Provider::new(toml::from_str(&text).unwrap(), None).unwrap()
    }

    fn claims(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rules_map_claims_to_rights() {
        let p = provider(
            "[[rule]]\nwhen = { groups = 'givors-ccas' }\ntenants = ['69091']\nservices = ['ccas']\n\
             [[rule]]\nwhen = { groups = 'grigny-accueil' }\ntenants = ['69096']\n\
             [[rule]]\nwhen = { groups = 'grigny-ccas' }\ntenants = ['69096']\nservices = ['ccas']\n\
             [[rule]]\nwhen = { groups = 'elus' }\ntenants = ['69091']\nrole = 'elu'\n",
        );
        let a = p
            .agent(&claims(
                r#"{"preferred_username":"m.dupont","name":"Marie Dupont","groups":["givors-ccas","grigny-ccas"]}"#,
            ))
            .unwrap();
        assert_eq!(a.id, "m.dupont");
        assert_eq!(a.name.as_deref(), Some("Marie Dupont"));
        assert!(a.may_read("69091") && a.may_read("69096") && !a.may_read("69244"));
        assert!(a.in_service("ccas") && !a.is_generalist());
        // CCAS in Givors, accueil in Grigny: the Grigny accueil's view would reach the
        // Givors CCAS's requests — refused.
        let mixed = p
            .agent(&claims(
                r#"{"preferred_username":"z","groups":["givors-ccas","grigny-accueil"]}"#,
            ))
            .unwrap_err();
        assert!(
            matches!(&mixed, Error::Forbidden(m) if m.contains("droits différents")),
            "{mixed}"
        );
        let email = p
            .agent(&claims(
                r#"{"preferred_username":"a@b.fr","groups":["grigny-accueil"]}"#,
            ))
            .unwrap_err();
        assert!(matches!(&email, Error::Forbidden(m) if m.contains("adresse électronique")));
        let none = p
            .agent(&claims(r#"{"preferred_username":"x","groups":["autre"]}"#))
            .unwrap_err();
        assert!(
            matches!(&none, Error::Forbidden(m) if m.contains("aucune règle")),
            "{none}"
        );
        let mixed = p
            .agent(&claims(
                r#"{"preferred_username":"y","groups":["elus","grigny-accueil"]}"#,
            ))
            .unwrap_err();
        assert!(matches!(&mixed, Error::Forbidden(m) if m.contains("droits différents")));
        let no_id = p.agent(&claims(r#"{"groups":["elus"]}"#)).unwrap_err();
        assert!(matches!(&no_id, Error::Forbidden(m) if m.contains("preferred_username")));
        assert_eq!(p.seen().len(), 1);
    }

    #[test]
    fn bad_configurations_say_what_is_wrong() {
        let bad = |text: &str| {
            let c: Config = toml::from_str(text).unwrap();
            Provider::new(c, None).unwrap_err()
        };
        assert!(bad("issuer = 'http://sso.example'\nclient_id = 'c'\n").contains("https"));
        assert!(bad(
            "issuer = 'https://sso.example'\nclient_id = 'c'\n[[rule]]\nwhen = {}\ntenants = ['69091']\n"
        )
        .contains("when is empty"));
        assert!(
            bad("issuer = 'https://sso.example'\nclient_id = 'c'\nscopes = ['email']\n")
                .contains("openid")
        );
        // http is fine on this machine (trials, tests).
        let c: Config =
            toml::from_str("issuer = 'http://127.0.0.1:9/'\nclient_id = 'c'\n").unwrap();
        assert!(Provider::new(c, None).is_ok());
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_refused_before_any_key_is_looked_up() {
        let p = provider("");
        assert!(!looks_like_jwt("abc"));
        let long = "a.".repeat(MAX_TOKEN);
        assert!(p.access_token(&long).is_err());
        // alg "none": refused at the header.
        let none = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        let e = p.access_token(&none).unwrap_err();
        assert!(
            matches!(&e, Error::Unauthenticated(m) if m.contains("algorithme")),
            "{e}"
        );
        // HS256 (the public key used as a shared secret): refused.
        let hs = format!(
            "{}.{}.c2ln",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        let e = p.access_token(&hs).unwrap_err();
        assert!(
            matches!(&e, Error::Unauthenticated(m) if m.contains("HS256")),
            "{e}"
        );
    }
}
