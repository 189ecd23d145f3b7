//! The adapters' configuration (`adapters.toml`): per commune, the credentials of its callers,
//! its mailboxes, its central accueil extensions and its form categories; globally, the CDR
//! drop folder and how CDR times are written. Secrets live here, not in `communes.toml`.

use crate::Error;
use contacthub_core::identity::normalize_email;
use contacthub_core::pb::Category;
use contacthub_core::tenant::Tenants;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Form slugs every commune knows without configuration (the usual démarches).
const DEFAULT_FORMS: &[(&str, Category)] = &[
    ("acte-naissance", Category::EtatCivil),
    ("acte-mariage", Category::EtatCivil),
    ("acte-deces", Category::EtatCivil),
    ("recensement-citoyen", Category::EtatCivil),
    ("inscription-scolaire", Category::Scolaire),
    ("inscription-periscolaire", Category::Scolaire),
    ("restauration-scolaire", Category::Scolaire),
    ("creche", Category::PetiteEnfance),
    ("aide-sociale", Category::Ccas),
    ("signalement-voirie", Category::ServicesTechniques),
    ("demande-travaux", Category::ServicesTechniques),
    ("permis-construire", Category::Urbanisme),
    ("declaration-prealable", Category::Urbanisme),
    ("objet-trouve", Category::PoliceMunicipale),
];

/// How the PBX writes CDR times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum CdrTimezone {
    /// Local time of the communes (Asterisk's default).
    #[default]
    #[serde(rename = "Europe/Paris")]
    Paris,
    /// UTC (`usegmtime=yes` in cdr.conf).
    #[serde(rename = "UTC")]
    Utc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSettings {
    /// Drop folder of CDR files (default DATA/cdr-inbox).
    pub inbox: Option<PathBuf>,
    #[serde(default)]
    pub timezone: CdrTimezone,
    /// Dialplan contexts of transfers: a call leg in one of these, to an accueil extension,
    /// is a bounce back to the central accueil (it concerns the inbound caller).
    #[serde(default = "default_transfer_contexts")]
    pub transfer_contexts: Vec<String>,
    /// Dialplan contexts of calls coming from outside (FreePBX: `from-trunk`, `from-pstn`,
    /// `from-did-direct`…).
    #[serde(default = "default_inbound_contexts")]
    pub inbound_contexts: Vec<String>,
    /// Dialplan contexts of calls placed by the commune's extensions (FreePBX:
    /// `from-internal`).
    #[serde(default = "default_outbound_contexts")]
    pub outbound_contexts: Vec<String>,
}

impl PhoneSettings {
    /// The direction a dialplan context tells, if it tells one.
    pub fn direction_of(&self, dcontext: &str) -> Option<contacthub_core::pb::Direction> {
        use contacthub_core::pb::Direction;
        let has = |list: &[String]| list.iter().any(|c| c == dcontext);
        if has(&self.outbound_contexts) {
            Some(Direction::Outbound)
        } else if has(&self.inbound_contexts) || has(&self.transfer_contexts) {
            Some(Direction::Inbound)
        } else {
            None
        }
    }
}

fn default_inbound_contexts() -> Vec<String> {
    [
        "from-trunk",
        "from-pstn",
        "from-did-direct",
        "ext-did",
        "from-external",
    ]
    .map(String::from)
    .to_vec()
}

fn default_outbound_contexts() -> Vec<String> {
    vec!["from-internal".into()]
}

impl Default for PhoneSettings {
    fn default() -> Self {
        PhoneSettings {
            inbox: None,
            timezone: CdrTimezone::Paris,
            transfer_contexts: default_transfer_contexts(),
            inbound_contexts: default_inbound_contexts(),
            outbound_contexts: default_outbound_contexts(),
        }
    }
}

fn default_transfer_contexts() -> Vec<String> {
    vec!["from-internal-xfer".into(), "transfer".into()]
}

/// Settings of one commune.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommuneSettings {
    /// INSEE code.
    pub code: String,
    /// Lower-case hex SHA-256 of the bearer token its systems send (`Authorization: Bearer`).
    pub token_sha256: Option<String>,
    /// Shared secret of body signatures: `X-Contacthub-Signature: t=UNIX,sha256=HEX` (docs/adapters.md).
    pub hmac_secret: Option<String>,
    /// Auth token of its SMS gateway account (`X-Twilio-Signature`, HMAC-SHA1).
    pub sms_auth_token: Option<String>,
    /// The commune's own mailboxes (`mairie@ville.fr`) or domains (`@ville.fr`): mail from
    /// them is outbound.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Maildir delivering the commune's incoming mail (watched by `serve`).
    pub maildir: Option<PathBuf>,
    /// Its mailboxes on an IMAP server (Exchange, Dovecot, BlueMind…), read by `serve`.
    #[serde(default)]
    pub imap: Vec<ImapSettings>,
    /// Extensions of the central accueil (bounce-back detection).
    #[serde(default)]
    pub accueil_extensions: Vec<String>,
    /// Form slug → category (`etat_civil`, `scolaire`…), on top of the usual démarches.
    #[serde(default)]
    pub forms: BTreeMap<String, String>,
    /// Hosts form attachments given by URL may be fetched from (any public host when empty).
    #[serde(default)]
    pub attachment_hosts: Vec<String>,
    /// Whether attachments may be fetched from loopback, private or link-local addresses
    /// (a portal on the commune's own network). Off by default: a URL must not make the hub
    /// reach its own machine or network.
    #[serde(default)]
    pub attachment_private_networks: bool,
    /// The SMTP relay written answers by e-mail go out through.
    pub smtp: Option<SmtpSettings>,
    /// The SMS gateway's REST API written answers by SMS go out through (the same
    /// Twilio-shaped provider as inbound; its auth token is `sms_auth_token`).
    pub sms_gateway: Option<SmsGatewaySettings>,
    /// The switch's Manager Interface (Asterisk AMI): who calls shows on the agent's desk.
    pub ami: Option<AmiSettings>,
    /// Its Publik (w.c.s.) portal, whose « appel de webservice » posts each form's data to
    /// `/v1/{commune}/publik` with a signed URL.
    pub publik: Option<PublikSettings>,
    /// Its OVHcloud SMS account: what the hub sends by SMS goes there instead of
    /// `sms_gateway`.
    pub ovh_sms: Option<OvhSmsSettings>,
    /// The street-report applications that post to its Open311 GeoReport v2 API, each with
    /// its `api_key`.
    #[serde(default)]
    pub open311: Vec<Open311Client>,
    /// Its démarches on démarches-simplifiées: each dossier is fetched from the platform's
    /// GraphQL API (on its webhook, or by polling) and becomes a request.
    #[serde(default)]
    pub demarches_simplifiees: Vec<DemarcheSettings>,
}

/// How the connection to an IMAP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (IMAPS, port 993 by default).
    #[default]
    Tls,
    /// Plain connection upgraded with STARTTLS, required (port 143 by default).
    Starttls,
    /// No encryption: only for a server on this machine (port 143 by default).
    None,
}

/// One of a commune's mailboxes on an IMAP server (`[[commune.imap]]`): where, who, which
/// folder, and what becomes of a message once it is on the log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: ImapTls,
    /// A PEM file of certificate authorities to trust besides the system's (a commune's own).
    pub ca_file: Option<PathBuf>,
    pub user: String,
    /// Its password (`AUTHENTICATE PLAIN` / `LOGIN`), or else `oauth2`.
    pub password: Option<String>,
    /// For Exchange Online: an application's credentials, a token asked at each connection
    /// and given to the server with `AUTHENTICATE XOAUTH2`.
    pub oauth2: Option<OAuth2Settings>,
    /// The folder read; `INBOX` by default.
    #[serde(default = "default_imap_folder")]
    pub folder: String,
    /// Once a message is on the log: moved to this folder; flagged read (`\Seen`) when
    /// absent. Never deleted before.
    pub move_to: Option<String>,
    /// How often to look for new mail when the server has no IDLE (seconds, default 60).
    #[serde(default = "default_imap_poll")]
    pub poll_seconds: u32,
    /// Messages larger than this are left in the mailbox, their headers kept in the
    /// quarantine with the reason (MB, default 50).
    #[serde(default = "default_imap_max_mb")]
    pub max_message_mb: u32,
}

/// An OAuth 2.0 client (`[commune.imap.oauth2]`) that gets its tokens with the client
/// credentials grant (Microsoft Entra ID for Exchange Online).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    /// `https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// `https://outlook.office365.com/.default` by default.
    #[serde(default = "default_oauth2_scope")]
    pub scope: String,
}

fn default_oauth2_scope() -> String {
    "https://outlook.office365.com/.default".into()
}

impl ImapSettings {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            ImapTls::Tls => 993,
            ImapTls::Starttls | ImapTls::None => 143,
        })
    }
}

fn default_imap_folder() -> String {
    "INBOX".into()
}

fn default_imap_poll() -> u32 {
    60
}

fn default_imap_max_mb() -> u32 {
    50
}

/// A démarche on démarches-simplifiées (`[[commune.demarches_simplifiees]]`): its number, the
/// API token of an instructeur of it, the category its dossiers are filed under, and whether
/// the hub polls for changes besides its webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemarcheSettings {
    /// The démarche's number (`https://www.demarches-simplifiees.fr/procedures/12345`).
    pub demarche: u32,
    /// The API token (« jeton d'API ») of an instructeur of the démarche.
    pub token: String,
    /// The category of its dossiers (`etat_civil`, `urbanisme`…).
    pub category: String,
    /// The GraphQL endpoint; `https://www.demarches-simplifiees.fr/api/v2/graphql` by default.
    #[serde(default = "default_ds_api")]
    pub api_url: String,
    /// Ask the platform for the dossiers changed since last time every so many seconds
    /// (for a démarche without a webhook, or as a safety net); not at all when absent.
    pub poll_seconds: Option<u32>,
}

fn default_ds_api() -> String {
    "https://www.demarches-simplifiees.fr/api/v2/graphql".into()
}

/// A commune's OVHcloud SMS account (`[commune.ovh_sms]`): the API's endpoint, the SMS
/// service, the application's keys and the consumer key made for it, and the sender.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OvhSmsSettings {
    /// `https://eu.api.ovh.com/1.0` by default.
    #[serde(default = "default_ovh_endpoint")]
    pub endpoint: String,
    /// The SMS account, `sms-ab12345-1`.
    pub service_name: String,
    pub application_key: String,
    pub application_secret: String,
    pub consumer_key: String,
    /// The sender declared on the account: a name (« VILLEGIVORS », 11 characters at most,
    /// the GSM rule) or a number.
    pub sender: String,
    /// Read the SMS the account receives (`GET /sms/{service}/incoming`) every so many
    /// seconds, each deleted from OVH once on the log; not read when absent.
    pub incoming_poll_seconds: Option<u32>,
}

fn default_ovh_endpoint() -> String {
    "https://eu.api.ovh.com/1.0".into()
}

/// An application allowed to post reports (`[[commune.open311]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open311Client {
    /// Its name, kept with each report (« FixMyStreet », « Signalement Givors »).
    pub name: String,
    /// Lower-case hex SHA-256 of its `api_key`.
    pub api_key_sha256: String,
}

/// A commune's Publik portal (`[commune.publik]`): the key its signed URLs are made with and
/// the name (`orig`) it signs them as, both from its `secrets` settings for the hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublikSettings {
    pub orig: String,
    pub key: String,
}

/// A commune's Asterisk Manager Interface (`[commune.ami]`): where it is, the account the hub
/// logs in with (`manager.conf`, read access to `call` events), and which extension is whose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiSettings {
    pub host: String,
    #[serde(default = "default_ami_port")]
    pub port: u16,
    pub username: String,
    pub secret: String,
    /// Extension → the agent (agents file or identity provider id) whose desk it rings.
    #[serde(default)]
    pub agents: BTreeMap<String, String>,
    /// Extension → the service it belongs to (its code in the communes file): a call
    /// transferred there and back to an `accueil_extensions` is a bounce-back of that service.
    #[serde(default)]
    pub services: BTreeMap<String, String>,
}

fn default_ami_port() -> u16 {
    5038
}

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465 by default).
    Tls,
    /// No encryption (a relay on the same host or network only; port 25 by default).
    None,
}

/// A commune's SMTP relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// Credentials (AUTH PLAIN / LOGIN), when the relay asks for them.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Mairie de Givors <reponses@ville-givors.fr>`.
    pub from: String,
    /// Where citizens' replies go, if not to `from`.
    pub reply_to: Option<String>,
}

/// A commune's SMS gateway account (REST API shaped like Twilio's Messages resource).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsGatewaySettings {
    /// Base URL of the API, e.g. `https://api.twilio.com`.
    pub api_url: String,
    pub account_sid: String,
    /// The commune's sending number (E.164) or sender id.
    pub from: String,
    /// Where the gateway posts delivery reports; default `public_url` +
    /// `/v1/{commune}/sms/status`.
    pub status_callback: Option<String>,
}

/// The whole adapters configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptersConfig {
    /// The URL the outside world calls the HTTP endpoints with (reverse proxy), used to check
    /// SMS gateway signatures, e.g. `https://grc.syndicat.fr/adapters`.
    pub public_url: Option<String>,
    /// Hex SHA-256 of a bearer token accepted for every commune and for the commune-less
    /// endpoints (`/v1/phone/cdr`, `/v1/email`): the syndicate's PBX and ops.
    pub ops_token_sha256: Option<String>,
    /// How far the time of an `X-Contacthub-Signature` may be from the hub's, in seconds
    /// (default 300): a request replayed later than that is refused.
    #[serde(default = "default_signature_tolerance")]
    pub signature_tolerance_seconds: u32,
    /// Requests a source address may make per minute on the adapter endpoints (default 1200;
    /// 0: no limit); beyond, 429 with Retry-After.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute_per_source: u32,
    #[serde(default)]
    pub phone: PhoneSettings,
    #[serde(default, rename = "commune")]
    pub communes: Vec<CommuneSettings>,
}

fn default_signature_tolerance() -> u32 {
    300
}

fn default_requests_per_minute() -> u32 {
    1200
}

impl AdaptersConfig {
    /// Parses and checks a configuration against the known communes.
    pub fn from_toml(text: &str, tenants: &Tenants) -> Result<Self, Error> {
        let mut cfg: AdaptersConfig =
            toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if cfg.signature_tolerance_seconds > 3600 {
            return Err(Error::Config(format!(
                "signature_tolerance_seconds is {}: at most 3600 (an hour), or a replayed request would pass",
                cfg.signature_tolerance_seconds
            )));
        }
        // Hashes are compared with lower-case hex.
        for h in cfg
            .communes
            .iter_mut()
            .filter_map(|c| c.token_sha256.as_mut())
            .chain(cfg.ops_token_sha256.as_mut())
        {
            h.make_ascii_lowercase();
        }
        let mut seen = std::collections::BTreeSet::new();
        let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if cfg.ops_token_sha256.as_deref().is_some_and(|h| !hex64(h)) {
            return Err(Error::Config(
                "ops_token_sha256 must be 64 hex digits".into(),
            ));
        }
        for c in &cfg.communes {
            if tenants.get(&c.code).is_none() {
                return Err(Error::Config(format!("unknown commune {:?}", c.code)));
            }
            if !seen.insert(&c.code) {
                return Err(Error::Config(format!("commune {} is listed twice", c.code)));
            }
            if let Some(h) = &c.token_sha256 {
                if !hex64(h) {
                    return Err(Error::Config(format!(
                        "commune {}: token_sha256 must be 64 hex digits",
                        c.code
                    )));
                }
            }
            for (slug, cat) in &c.forms {
                if category_named(cat).is_none() {
                    return Err(Error::Config(format!(
                        "commune {}: form {slug:?} has unknown category {cat:?}",
                        c.code
                    )));
                }
            }
            if let Some(ami) = &c.ami {
                let commune = tenants.get(&c.code);
                if ami.host.trim().is_empty() || ami.username.trim().is_empty() {
                    return Err(Error::Config(format!(
                        "commune {}: [commune.ami] needs a host and a username",
                        c.code
                    )));
                }
                for (ext, service) in &ami.services {
                    if commune.and_then(|t| t.service(service)).is_none() {
                        return Err(Error::Config(format!(
                            "commune {}: AMI extension {ext:?} names service {service:?}, which the communes file does not have",
                            c.code
                        )));
                    }
                }
            }
            if let Some(o) = &c.ovh_sms {
                let sender_ok = (1..=11).contains(&o.sender.chars().count())
                    && o.sender
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == ' ')
                    || contacthub_core::identity::normalize_phone(&o.sender).is_some();
                let keys_ok = [
                    &o.service_name,
                    &o.application_key,
                    &o.application_secret,
                    &o.consumer_key,
                ]
                .iter()
                .all(|k| !k.trim().is_empty());
                if !sender_ok
                    || !keys_ok
                    || url::Url::parse(&o.endpoint).is_err()
                    || o.incoming_poll_seconds.is_some_and(|s| s < 5)
                {
                    return Err(Error::Config(format!(
                        "commune {}: [commune.ovh_sms] needs service_name, application_key, application_secret, consumer_key, an endpoint URL, a sender (11 letters, digits or dashes at most, or a number) and incoming_poll_seconds of 5 or more when set",
                        c.code
                    )));
                }
            }
            for client in &c.open311 {
                let name_ok = !client.name.trim().is_empty()
                    && client.name.len() <= 60
                    && !client.name.contains(|ch: char| ch.is_control());
                if !name_ok || !hex64(&client.api_key_sha256) {
                    return Err(Error::Config(format!(
                        "commune {}: each [[commune.open311]] needs a name (60 characters at most) and api_key_sha256 (64 hex digits)",
                        c.code
                    )));
                }
            }
            for m in &c.imap {
                let folder_ok = |f: &str| {
                    !f.is_empty()
                        && f.len() <= 200
                        && !f.contains(|c: char| c.is_control() || c == '"')
                };
                let oauth2_ok = m.oauth2.as_ref().is_none_or(|o| {
                    secure_url(&o.token_url)
                        && !o.client_id.is_empty()
                        && !o.client_secret.is_empty()
                });
                if m.tls == ImapTls::None && !loopback(&m.host) {
                    return Err(Error::Config(format!(
                        "commune {}: [[commune.imap]] {}: tls = \"none\" would send the password in clear; only for a server on this machine (127.0.0.1, localhost)",
                        c.code, m.host
                    )));
                }
                if m.host.trim().is_empty()
                    || m.user.trim().is_empty()
                    || m.password.as_deref().is_some_and(str::is_empty)
                    || m.password.is_some() == m.oauth2.is_some()
                    || !oauth2_ok
                    || !folder_ok(&m.folder)
                    || !m.move_to.as_deref().is_none_or(folder_ok)
                    || m.poll_seconds < 5
                    || m.max_message_mb == 0
                {
                    return Err(Error::Config(format!(
                        "commune {}: each [[commune.imap]] needs host, user, a password or an [commune.imap.oauth2] (an https token_url, client_id, client_secret) but not both, a folder (200 characters at most, no quotes), poll_seconds of 5 or more and max_message_mb of 1 or more",
                        c.code
                    )));
                }
                if let Some(ca) = &m.ca_file {
                    if let Err(e) = std::fs::read(ca) {
                        return Err(Error::Config(format!(
                            "commune {}: [[commune.imap]] ca_file {}: {e}",
                            c.code,
                            ca.display()
                        )));
                    }
                }
            }
            for d in &c.demarches_simplifiees {
                let url_ok = secure_url(&d.api_url);
                if d.demarche == 0
                    || d.token.trim().is_empty()
                    || d.token.len() > 500
                    || !url_ok
                    || category_named(&d.category).is_none()
                    || d.poll_seconds.is_some_and(|s| s < 10)
                {
                    return Err(Error::Config(format!(
                        "commune {}: each [[commune.demarches_simplifiees]] needs demarche (its number), token (500 characters at most), a known category (etat_civil, scolaire, urbanisme…), an https api_url (http only on this machine) and poll_seconds of 10 or more when set; démarche {} does not",
                        c.code, d.demarche
                    )));
                }
                if c.demarches_simplifiees
                    .iter()
                    .filter(|o| o.demarche == d.demarche)
                    .count()
                    > 1
                {
                    return Err(Error::Config(format!(
                        "commune {}: démarche {} is configured twice",
                        c.code, d.demarche
                    )));
                }
            }
            if let Some(p) = &c.publik {
                if p.orig.trim().is_empty() || p.key.chars().count() < 16 {
                    return Err(Error::Config(format!(
                        "commune {}: [commune.publik] needs its orig and a key of 16 characters or more",
                        c.code
                    )));
                }
            }
            for a in &c.addresses {
                let domain = a.strip_prefix('@').filter(|d| d.contains('.'));
                if domain.is_none() && normalize_email(a).is_none() {
                    return Err(Error::Config(format!(
                        "commune {}: {a:?} is neither an address nor @domain",
                        c.code
                    )));
                }
            }
        }
        Ok(cfg)
    }

    pub fn commune(&self, code: &str) -> Option<&CommuneSettings> {
        self.communes.iter().find(|c| c.code == code)
    }

    /// Whether any commune has credentials: without any, the endpoints are open.
    pub fn has_credentials(&self) -> bool {
        self.ops_token_sha256.is_some()
            || self.communes.iter().any(|c| {
                c.token_sha256.is_some()
                    || c.hmac_secret.is_some()
                    || c.sms_auth_token.is_some()
                    || c.publik.is_some()
                    || !c.open311.is_empty()
            })
    }

    /// The category of a form: the commune's map, then the usual démarches, else Other.
    pub fn form_category(&self, tenant: &str, slug: &str) -> Category {
        self.commune(tenant)
            .and_then(|c| c.forms.get(slug))
            .and_then(|c| category_named(c))
            .or_else(|| {
                DEFAULT_FORMS
                    .iter()
                    .find(|(s, _)| *s == slug)
                    .map(|(_, c)| *c)
            })
            .unwrap_or(Category::Other)
    }

    /// Démarche `number` of commune `tenant`, when connected.
    pub fn demarche(&self, tenant: &str, number: u64) -> Option<&DemarcheSettings> {
        self.commune(tenant)?
            .demarches_simplifiees
            .iter()
            .find(|d| u64::from(d.demarche) == number)
    }

    /// Whether `email` (normalised) is one of the commune's own addresses or domains.
    pub fn is_commune_address(&self, tenant: &str, email: &str) -> bool {
        let Some(c) = self.commune(tenant) else {
            return false;
        };
        c.addresses.iter().any(|a| match a.strip_prefix('@') {
            Some(domain) => email
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
            None => normalize_email(a).as_deref() == Some(email),
        })
    }

    /// Whether `ext` is a central accueil extension of the commune.
    pub fn is_accueil(&self, tenant: &str, ext: &str) -> bool {
        self.commune(tenant)
            .is_some_and(|c| c.accueil_extensions.iter().any(|e| e == ext))
    }
}

/// Whether `host` is this machine (a loopback address or `localhost`).
fn loopback(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An https URL, or an http one to this machine: where the hub may send a secret.
fn secure_url(u: &str) -> bool {
    match url::Url::parse(u) {
        Ok(url) if url.scheme() == "https" => url.host_str().is_some(),
        Ok(url) if url.scheme() == "http" => url.host_str().is_some_and(loopback),
        _ => false,
    }
}

/// `etat_civil` → `Category::EtatCivil`.
pub fn category_named(name: &str) -> Option<Category> {
    Category::from_str_name(&format!("CATEGORY_{}", name.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_travel_in_clear_but_on_this_machine() {
        let t = Tenants::builtin();
        let imap = |host: &str, tls: &str| {
            AdaptersConfig::from_toml(&format!("[[commune]]\ncode = \"69091\"\n[[commune.imap]]\nhost = \"{host}\"\ntls = \"{tls}\"\nuser = \"u\"\npassword = \"p\"\n"), &t)
        };
        assert!(imap("127.0.0.1", "none").is_ok());
        assert!(imap("localhost", "none").is_ok());
        let refused = imap("imap.ville-givors.fr", "none")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("in clear"), "{refused}");
        assert!(imap("imap.ville-givors.fr", "starttls").is_ok());
        let ds = |url: &str| {
            AdaptersConfig::from_toml(&format!("[[commune]]\ncode = \"69091\"\n[[commune.demarches_simplifiees]]\ndemarche = 1\ntoken = \"t\"\ncategory = \"urbanisme\"\napi_url = \"{url}\"\n"), &t)
        };
        assert!(ds("https://www.demarches-simplifiees.fr/api/v2/graphql").is_ok());
        assert!(ds("http://127.0.0.1:8080/api/v2/graphql").is_ok());
        assert!(ds("http://demarches.example/api/v2/graphql").is_err());
        // Both a password and OAuth 2.0, or neither: refused.
        let both = AdaptersConfig::from_toml("[[commune]]\ncode = \"69091\"\n[[commune.imap]]\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\n[commune.imap.oauth2]\ntoken_url = \"https://login.example/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\n", &t);
        assert!(both.is_err());
        let neither = AdaptersConfig::from_toml(
            "[[commune]]\ncode = \"69091\"\n[[commune.imap]]\nhost = \"h\"\nuser = \"u\"\n",
            &t,
        );
        assert!(neither.is_err());
    }

    #[test]
    fn configuration_is_checked_and_answers() {
        let t = Tenants::builtin();
        let cfg = AdaptersConfig::from_toml(
            r#"
[phone]
timezone = "UTC"
[[commune]]
code = "69091"
addresses = ["Mairie@Ville-Givors.fr", "@givors.fr"]
accueil_extensions = ["9"]
[commune.forms]
"permis-de-louer" = "urbanisme"
"#,
            &t,
        )
        .unwrap();
        assert_eq!(cfg.phone.timezone, CdrTimezone::Utc);
        assert_eq!(
            cfg.form_category("69091", "permis-de-louer"),
            Category::Urbanisme
        );
        assert_eq!(
            cfg.form_category("69091", "acte-naissance"),
            Category::EtatCivil
        );
        assert_eq!(
            cfg.form_category("69091", "nouveau-formulaire"),
            Category::Other
        );
        assert_eq!(
            cfg.form_category("69096", "permis-de-louer"),
            Category::Other
        );
        assert!(cfg.is_commune_address("69091", "mairie@ville-givors.fr"));
        assert!(cfg.is_commune_address("69091", "etat-civil@givors.fr"));
        assert!(!cfg.is_commune_address("69096", "mairie@ville-givors.fr"));
        assert!(!cfg.is_commune_address("69091", "marie@example.fr"));
        assert!(cfg.is_accueil("69091", "9"));
        assert!(!cfg.has_credentials());

        let upper =
            AdaptersConfig::from_toml(&format!("ops_token_sha256 = \"{}\"", "AB".repeat(32)), &t)
                .unwrap();
        assert_eq!(
            upper.ops_token_sha256.as_deref(),
            Some("ab".repeat(32).as_str())
        );
        assert!(upper.has_credentials());

        for (bad, says) in [
            ("[[commune]]\ncode = \"99999\"", "unknown commune"),
            (
                "[[commune]]\ncode = \"69091\"\n[[commune]]\ncode = \"69091\"",
                "listed twice",
            ),
            (
                "[[commune]]\ncode = \"69091\"\ntoken_sha256 = \"abc\"",
                "64 hex digits",
            ),
            (
                "[[commune]]\ncode = \"69091\"\n[commune.forms]\nx = \"sport\"",
                "unknown category",
            ),
            (
                "[[commune]]\ncode = \"69091\"\naddresses = [\"mairie\"]",
                "neither an address",
            ),
            ("[phone]\ntimezone = \"Europe/Berlin\"", "unknown variant"),
            ("colour = 1", "unknown field"),
        ] {
            let e = AdaptersConfig::from_toml(bad, &t).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
