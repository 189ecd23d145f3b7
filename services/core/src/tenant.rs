//! Tenants are communes, named by INSEE code and loaded from a TOML file.

use crate::identity::normalize_phone;
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The configuration shipped with contacthub: the six communes of the syndicate.
pub const DEFAULT_COMMUNES: &str = include_str!("../communes.toml");

/// One commune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// INSEE code, e.g. "69091".
    pub code: String,
    pub name: String,
    /// Three-letter prefix of chrono numbers and provisional citizen ids, e.g. "GIV".
    pub prefix: String,
    /// The commune's own numbers, E.164.
    pub numbers: Vec<String>,
    /// Prefixes (E.164) of the commune's direct lines (SDA ranges), e.g. `+3347249`.
    pub direct_lines: Vec<String>,
    /// Committed answer delay for letters, in days, by category name (`urbanisme`…), and for
    /// every other category.
    pub answer_days_by_category: BTreeMap<String, u32>,
    pub answer_days: u32,
    /// Whether those days are working days (Monday to Friday, Paris time) rather than
    /// calendar days.
    pub answer_in_working_days: bool,
    /// The town hall's postal address, for the letterhead (lines).
    pub address: Vec<String>,
    /// The logo file named in the communes file (relative to it), if any.
    pub logo_file: Option<String>,
    /// Where its citizens' space answers (« https://demarches.ville-givors.fr »), printed on
    /// receipts and answer letters with the follow-up code; empty when not published.
    pub portal_url: String,
    /// How its citizens sign in to its space with FranceConnect (`[commune.franceconnect]`);
    /// `None`: the space offers no sign-in, only « Suivre une demande ».
    pub franceconnect: Option<FranceConnect>,
    /// The logo printed on the letterhead (PNG or JPEG bytes; empty: none), loaded from
    /// `logo_file` by the binary ([`Tenants::set_logo`]).
    pub logo: Vec<u8>,
    /// The commune's services (the shared directory, completed by the commune's own entries),
    /// in the order of the file.
    pub services: Vec<Service>,
    /// What its acknowledgements of receipt say of silence and appeals (CRPA L112-3, R112-5).
    pub receipt: ReceiptTexts,
    /// What agents outside a confidential service (the accueil, the mail room) see of its
    /// matters.
    pub orientation: Orientation,
    /// How long the commune keeps what (its retention rules).
    pub retention: Retention,
    /// When its counter and phone are open (`[hours]`, or its own `[commune.hours]`, minus
    /// public holidays and its `closures`); `None`: not said, nothing is marked outside hours.
    pub schedule: Option<crate::hours::Schedule>,
    /// Where people queue for a counter (`[[commune.site]]`), in the order of the file.
    pub sites: Vec<crate::accueil::Site>,
    /// The kinds of appointment it offers (`[[appointment]]`, `[[commune.appointment]]`).
    pub appointments: Vec<crate::appointment::Kind>,
}

/// A commune's client at FranceConnect (OpenID Connect), as the partners' space gives it:
///
/// ```toml
/// [commune.franceconnect]
/// issuer = "https://oidc.franceconnect.gouv.fr/api/v2"
/// client_id = "…"
/// client_secret_file = "/run/secrets/franceconnect-givors"
/// redirect_url = "https://demarches.ville-givors.fr/givors/connexion/retour"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FranceConnect {
    /// The issuer, exactly as its discovery document says (`…/api/v2`).
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret (never the secret in this file).
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// The space's callback, as declared at FranceConnect: `…/<commune>/connexion/retour`.
    pub redirect_url: String,
    /// Where FranceConnect sends the browser back after a sign-out (declared there too);
    /// default: `…/<commune>/deconnexion/retour`.
    #[serde(default)]
    pub post_logout_url: Option<String>,
    /// The level of assurance asked (`eidas1`), checked on the ID token's `acr`.
    #[serde(default = "default_acr")]
    pub acr_values: String,
    /// The claims asked: the « identité pivot » and the e-mail address.
    #[serde(default = "default_fc_scopes")]
    pub scopes: Vec<String>,
}

fn default_acr() -> String {
    "eidas1".into()
}

impl FranceConnect {
    /// The claims asked when the communes file names none: the « identité pivot », the usage
    /// name and the e-mail address.
    pub fn default_scopes() -> Vec<String> {
        default_fc_scopes()
    }
}

fn default_fc_scopes() -> Vec<String> {
    [
        "openid",
        "given_name",
        "family_name",
        "birthdate",
        "birthplace",
        "birthcountry",
        "gender",
        "preferred_username",
        "email",
    ]
    .map(String::from)
    .to_vec()
}

/// The commune's retention rules (`[retention]`, or a commune's own `[commune.retention]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// A citizen with no contact for this many years is erased (0: never).
    #[serde(default = "default_inactive_years")]
    pub inactive_citizen_years: u32,
    /// Raw input held outside the log — the adapters' quarantine, scans no letter matched —
    /// is deleted this many days after it arrived (0: never).
    #[serde(default = "default_quarantine_days")]
    pub quarantine_days: u32,
    /// A provisional record — a sender nobody attached to a known person — with no contact
    /// for this many months is erased (0: only under `inactive_citizen_years`).
    #[serde(default = "default_unknown_sender_months")]
    pub unknown_sender_months: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            inactive_citizen_years: default_inactive_years(),
            quarantine_days: default_quarantine_days(),
            unknown_sender_months: default_unknown_sender_months(),
        }
    }
}

fn default_inactive_years() -> u32 {
    5
}

fn default_quarantine_days() -> u32 {
    90
}

fn default_unknown_sender_months() -> u32 {
    12
}

/// A service of a commune, from the directory of the communes file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// Its code on the log (`ccas`, `etat-civil`): never shown to agents or citizens.
    pub code: String,
    /// What agents and citizens read (« Centre communal d'action sociale »).
    pub name: String,
    /// Its contacts and requests are need-to-know: only its own agents read them.
    pub confidential: bool,
    /// Categories (`pb::Category as i32`) whose contacts belong to it when nothing else says
    /// (a form « aide sociale » is the CCAS's before any request is opened).
    pub categories: Vec<i32>,
    /// Where citizens reach it (acknowledgements of receipt, answer letters).
    pub address: Vec<String>,
    pub phone: String,
    pub email: String,
    /// Who signs its answer letters, by name and title (« Claire Martin, responsable de
    /// l'état civil »); empty: the service by name.
    pub signatory: String,
}

/// What an acknowledgement of receipt says beyond the facts of the letter, as the Code des
/// relations entre le public et l'administration asks (L112-3, R112-5): when silence is a
/// decision, and the routes and deadlines of appeal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTexts {
    /// By category (`urbanisme`): what the administration's silence means, « acceptation »
    /// or « rejet ». A category not named gets no such mention.
    #[serde(default)]
    pub silence: BTreeMap<String, Silence>,
    /// Months after receipt after which silence is a decision (two by default, L231-1).
    #[serde(default = "default_silence_months")]
    pub silence_months: u32,
    /// The routes and deadlines of appeal, printed when silence can be a decision.
    #[serde(default)]
    pub appeal: String,
}

fn default_silence_months() -> u32 {
    2
}

/// What an administration's silence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Silence {
    /// Silence vaut acceptation.
    Acceptation,
    /// Silence vaut rejet.
    Rejet,
}

impl ReceiptTexts {
    /// What silence means for letters of `category` (`pb::Category as i32`), if anything.
    pub fn silence_for(&self, category: i32) -> Option<Silence> {
        let name = crate::pb::Category::try_from(category)
            .ok()?
            .as_str_name()
            .trim_start_matches("CATEGORY_")
            .to_ascii_lowercase();
        self.silence.get(&name).copied()
    }
}

/// What an agent of no confidential service sees of a confidential matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    /// That a contact or a request exists: its date, its channel, its service.
    Existence,
    /// Also a request's reference, status and date due, to tell the person where it
    /// stands and where to go (the default).
    #[default]
    Suivi,
}

impl Tenant {
    /// Its kind of appointment `code`.
    pub fn appointment(&self, code: &str) -> Option<&crate::appointment::Kind> {
        self.appointments.iter().find(|k| k.code == code)
    }

    /// The weekly hours of appointments of `kind`: its own, else its site's, else the
    /// commune's counter hours; `None` when the communes file says none.
    pub fn appointment_week<'a>(
        &'a self,
        kind: &'a crate::appointment::Kind,
    ) -> Option<&'a crate::hours::Week> {
        kind.hours
            .as_ref()
            .or_else(|| self.site(&kind.site).and_then(|s| s.hours.as_ref()))
            .or_else(|| self.schedule.as_ref().and_then(|s| s.counter.as_ref()))
    }

    /// Its part of the citizens' space's addresses: its name folded, « pierre-benite ».
    pub fn slug(&self) -> String {
        crate::identity::fold_name(&self.name).replace(' ', "-")
    }

    /// Whether `number` (E.164) is one of the commune's numbers or direct lines.
    pub fn owns_number(&self, number: &str) -> bool {
        self.numbers.iter().any(|n| n == number)
            || self
                .direct_lines
                .iter()
                .any(|p| number.starts_with(p.as_str()))
    }

    /// The accueil's site `code`, if the communes file has it.
    pub fn site(&self, code: &str) -> Option<&crate::accueil::Site> {
        self.sites.iter().find(|s| s.code == code)
    }

    /// The service `code`, if the directory has it.
    pub fn service(&self, code: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.code == code)
    }

    /// What agents read for service `code`: its name, or the code itself when the directory
    /// does not have it (written by hand before the directory existed).
    pub fn service_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.service(code).map_or(code, |s| s.name.as_str())
    }

    /// The service contacts of `category` belong to when nothing else says.
    pub fn service_of_category(&self, category: i32) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.categories.contains(&category))
    }

    /// Whether the matters of service `code` are need-to-know.
    pub fn is_confidential(&self, code: &str) -> bool {
        self.service(code).is_some_and(|s| s.confidential)
    }

    /// Days the commune commits to answer a letter of `category` (`pb::Category as i32`).
    pub fn answer_days_for(&self, category: i32) -> u32 {
        let name = crate::pb::Category::try_from(category)
            .map(|c| {
                c.as_str_name()
                    .trim_start_matches("CATEGORY_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        self.answer_days_by_category
            .get(&name)
            .copied()
            .unwrap_or(self.answer_days)
    }
}

/// Opening hours as the communes file writes them: `[hours.counter]` and `[hours.phone]`,
/// a day per key (`lundi = "08:30-12:00 13:30-17:30"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursEntry {
    counter: Option<crate::hours::WeekEntry>,
    phone: Option<crate::hours::WeekEntry>,
}

/// All known tenants, by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenants {
    by_code: BTreeMap<String, Tenant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    commune: Vec<Entry>,
    /// The services every commune has (each may complete or add its own).
    #[serde(default)]
    service: Vec<ServiceEntry>,
    #[serde(default)]
    confidentiality: Confidentiality,
    /// What every commune's receipts say (a commune may have its own).
    receipt: Option<ReceiptTexts>,
    /// Every commune's opening hours (a commune may have its own).
    hours: Option<HoursEntry>,
    /// Every commune's retention rules (a commune may have its own).
    #[serde(default)]
    retention: Retention,
    /// The kinds of appointment every commune offers.
    #[serde(default)]
    appointment: Vec<crate::appointment::KindEntry>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Confidentiality {
    #[serde(default)]
    orientation: Orientation,
}

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    code: String,
    name: Option<String>,
    confidential: Option<bool>,
    categories: Option<Vec<String>>,
    address: Option<Vec<String>>,
    phone: Option<String>,
    email: Option<String>,
    signatory: Option<String>,
}

/// A category as the communes file names it (`etat_civil`, `etat-civil`), as an enum value.
fn category_of(name: &str) -> Option<i32> {
    crate::pb::Category::from_str_name(&format!(
        "CATEGORY_{}",
        name.to_ascii_uppercase().replace('-', "_")
    ))
    .map(|c| c as i32)
}

/// The directory of one commune: the shared entries, each completed by the commune's entry
/// of the same code, then the commune's own.
fn directory(commune: &str, shared: &[ServiceEntry], own: &[ServiceEntry]) -> Result<Vec<Service>> {
    let mut merged: Vec<ServiceEntry> = shared.to_vec();
    for o in own {
        match merged.iter_mut().find(|m| m.code == o.code) {
            Some(m) => {
                let o = o.clone();
                m.name = o.name.or(m.name.take());
                m.confidential = o.confidential.or(m.confidential);
                m.categories = o.categories.or(m.categories.take());
                m.address = o.address.or(m.address.take());
                m.phone = o.phone.or(m.phone.take());
                m.email = o.email.or(m.email.take());
                m.signatory = o.signatory.or(m.signatory.take());
            }
            None => merged.push(o.clone()),
        }
    }
    let mut out: Vec<Service> = Vec::with_capacity(merged.len());
    for m in merged {
        let valid_code = !m.code.is_empty()
            && m.code.len() <= 64
            && m.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_code {
            return Err(Error::Config(format!(
                "commune {commune}: service code {:?} must be 1 to 64 lower-case letters, digits or dashes",
                m.code
            )));
        }
        if out.iter().any(|s| s.code == m.code) {
            return Err(Error::Config(format!(
                "commune {commune}: service {} is listed twice",
                m.code
            )));
        }
        let name = m.name.unwrap_or_default();
        if name.trim().is_empty() || name.chars().count() > crate::limits::LABEL_CHARS {
            return Err(Error::Config(format!(
                "commune {commune}: service {} needs a name (at most {} characters)",
                m.code,
                crate::limits::LABEL_CHARS
            )));
        }
        let mut categories = Vec::new();
        for c in m.categories.unwrap_or_default() {
            categories.push(category_of(&c).ok_or_else(|| {
                Error::Config(format!(
                    "commune {commune}: service {}: unknown category {c:?}",
                    m.code
                ))
            })?);
        }
        if m.signatory
            .as_ref()
            .is_some_and(|s| s.chars().count() > crate::limits::LABEL_CHARS)
        {
            return Err(Error::Config(format!(
                "commune {commune}: service {}: signatory is longer than {} characters",
                m.code,
                crate::limits::LABEL_CHARS
            )));
        }
        let phone = m.phone.unwrap_or_default();
        if !phone.is_empty() && normalize_phone(&phone).is_none() {
            return Err(Error::Config(format!(
                "commune {commune}: service {}: {phone:?} is not a phone number",
                m.code
            )));
        }
        out.push(Service {
            code: m.code,
            name: name.trim().to_string(),
            confidential: m.confidential.unwrap_or(false),
            categories,
            address: m.address.unwrap_or_default(),
            phone,
            email: m.email.unwrap_or_default(),
            signatory: m.signatory.unwrap_or_default().trim().to_string(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    prefix: String,
    #[serde(default)]
    numbers: Vec<String>,
    /// Prefixes of direct lines, written like numbers ("04 72 49 1"), or E.164 ("+3347249").
    #[serde(default)]
    direct_lines: Vec<String>,
    #[serde(default = "default_answer_days")]
    answer_days: u32,
    #[serde(default)]
    answer_days_by_category: BTreeMap<String, u32>,
    #[serde(default)]
    answer_in_working_days: bool,
    /// The town hall's postal address (lines), printed on the letterhead.
    #[serde(default)]
    address: Vec<String>,
    /// A PNG or JPEG file, relative to the communes file: the logo of the letterhead.
    logo: Option<String>,
    /// The public address of the commune's citizens' space (https).
    #[serde(default)]
    portal_url: String,
    /// The commune's own services, or its details of shared ones (address, phone…).
    #[serde(default)]
    service: Vec<ServiceEntry>,
    /// What the accueil sees of confidential matters, if not as every commune.
    orientation: Option<Orientation>,
    /// The commune's own receipt texts, if not as every commune.
    receipt: Option<ReceiptTexts>,
    /// The commune's own opening hours, if not as every commune's.
    hours: Option<HoursEntry>,
    /// Days the commune closes besides public holidays (`"2026-12-24"`,
    /// `"2026-12-26..2026-12-31"`).
    #[serde(default)]
    closures: Vec<String>,
    /// The commune's own retention rules, if not as every commune.
    retention: Option<Retention>,
    /// Its accueil's sites (town hall, annexes) and their counters.
    #[serde(default)]
    site: Vec<crate::accueil::SiteEntry>,
    /// Its citizens' sign-in with FranceConnect.
    franceconnect: Option<FranceConnect>,
    /// Its own kinds of appointment (one with the code of a shared kind replaces it).
    #[serde(default)]
    appointment: Vec<crate::appointment::KindEntry>,
}

fn default_answer_days() -> u32 {
    15
}

impl Tenants {
    /// Parses a communes TOML file (see `communes.toml` for the format).
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let mut by_code = BTreeMap::new();
        let mut prefixes = BTreeMap::new();
        for e in file.commune {
            if e.code.len() != 5 || !e.code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(Error::Config(format!(
                    "commune code {:?} is not a 5-character INSEE code",
                    e.code
                )));
            }
            if e.prefix.is_empty()
                || e.prefix.len() > 8
                || !e.prefix.bytes().all(|b| b.is_ascii_uppercase())
            {
                return Err(Error::Config(format!(
                    "prefix {:?} of commune {} must be 1 to 8 upper-case letters",
                    e.prefix, e.code
                )));
            }
            if let Some(other) = prefixes.insert(e.prefix.clone(), e.code.clone()) {
                return Err(Error::Config(format!(
                    "prefix {} is used by both {} and {}",
                    e.prefix, other, e.code
                )));
            }
            let numbers = e
                .numbers
                .iter()
                .map(|n| {
                    normalize_phone(n).ok_or_else(|| {
                        Error::Config(format!("commune {}: {n:?} is not a phone number", e.code))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let direct_lines = e
                .direct_lines
                .iter()
                .map(|p| {
                    crate::identity::national_prefix_to_e164(p)
                        .filter(|x| x.len() >= 5)
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "commune {}: direct line prefix {p:?} is not a number prefix",
                                e.code
                            ))
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            for cat in e.answer_days_by_category.keys() {
                let known = crate::pb::Category::from_str_name(&format!(
                    "CATEGORY_{}",
                    cat.to_ascii_uppercase()
                ));
                if known.is_none() {
                    return Err(Error::Config(format!(
                        "commune {}: unknown category {cat:?} in answer_days_by_category",
                        e.code
                    )));
                }
            }
            let services = directory(&e.code, &file.service, &e.service)?;
            let receipt = e
                .receipt
                .or_else(|| file.receipt.clone())
                .unwrap_or(ReceiptTexts {
                    silence_months: default_silence_months(),
                    ..Default::default()
                });
            for cat in receipt.silence.keys() {
                if category_of(cat).is_none() {
                    return Err(Error::Config(format!(
                        "commune {}: unknown category {cat:?} in receipt.silence",
                        e.code
                    )));
                }
            }
            if receipt.appeal.chars().count() > 2_000 {
                return Err(Error::Config(format!(
                    "commune {}: receipt.appeal is longer than 2000 characters",
                    e.code
                )));
            }
            let schedule = match e.hours.as_ref().or(file.hours.as_ref()) {
                Some(h) => {
                    let bad = |what: &str, why: String| {
                        Error::Config(format!("commune {}: {what}: {why}", e.code))
                    };
                    Some(crate::hours::Schedule {
                        counter: h
                            .counter
                            .as_ref()
                            .map(|w| w.parse().map_err(|why| bad("hours.counter", why)))
                            .transpose()?,
                        phone: h
                            .phone
                            .as_ref()
                            .map(|w| w.parse().map_err(|why| bad("hours.phone", why)))
                            .transpose()?,
                        closures: e
                            .closures
                            .iter()
                            .map(|c| {
                                crate::hours::Closure::parse(c).map_err(|w| bad("closures", w))
                            })
                            .collect::<Result<Vec<_>>>()?,
                    })
                }
                None if !e.closures.is_empty() => {
                    return Err(Error::Config(format!(
                        "commune {}: closures without opening hours ([hours])",
                        e.code
                    )))
                }
                None => None,
            };
            let portal = e.portal_url.trim();
            let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
            if !portal.is_empty()
                && (portal.len() > 200
                    || portal.chars().any(|c| c.is_whitespace() || c.is_control())
                    || !(portal.starts_with("https://")
                        || local.iter().any(|l| portal.starts_with(l))))
            {
                return Err(Error::Config(format!(
                    "commune {}: portal_url must be an https address of at most 200 characters",
                    e.code
                )));
            }
            let sites = crate::accueil::sites(&e.code, e.site)?;
            let default_site = sites.first().map(|s| s.code.clone()).unwrap_or_default();
            let mut appointments: Vec<crate::appointment::Kind> = Vec::new();
            for entry in e.appointment.iter().chain(
                file.appointment
                    .iter()
                    .filter(|k| !e.appointment.iter().any(|own| own.code == k.code)),
            ) {
                let kind = entry
                    .resolve(&default_site)
                    .map_err(|why| Error::Config(format!("commune {}: {why}", e.code)))?;
                if !services.iter().any(|s| s.code == kind.service) {
                    return Err(Error::Config(format!(
                        "commune {}: appointment {}: no service {}",
                        e.code, kind.code, kind.service
                    )));
                }
                if !kind.site.is_empty() && !sites.iter().any(|s| s.code == kind.site) {
                    return Err(Error::Config(format!(
                        "commune {}: appointment {}: no site {}",
                        e.code, kind.code, kind.site
                    )));
                }
                appointments.push(kind);
            }
            let t = Tenant {
                schedule,
                appointments,
                sites,
                services,
                receipt,
                orientation: e.orientation.unwrap_or(file.confidentiality.orientation),
                retention: e.retention.unwrap_or(file.retention),
                code: e.code.clone(),
                name: e.name,
                prefix: e.prefix,
                numbers,
                direct_lines,
                answer_days: e.answer_days,
                answer_in_working_days: e.answer_in_working_days,
                address: e.address,
                answer_days_by_category: e.answer_days_by_category,
                logo_file: e.logo,
                logo: Vec::new(),
                portal_url: e.portal_url.trim_end_matches('/').to_string(),
                franceconnect: e.franceconnect,
            };
            if by_code.insert(e.code.clone(), t).is_some() {
                return Err(Error::Config(format!("commune {} is listed twice", e.code)));
            }
        }
        if by_code.is_empty() {
            return Err(Error::Config("no commune is configured".into()));
        }
        let mut slugs = std::collections::BTreeSet::new();
        for t in by_code.values() {
            if !slugs.insert(t.slug()) {
                return Err(Error::Config(format!(
                    "commune {}: another commune has the same name once accents are folded ({})",
                    t.code,
                    t.slug()
                )));
            }
        }
        Ok(Tenants { by_code })
    }

    /// The six communes of the syndicate.
    pub fn builtin() -> Self {
        Self::from_toml(DEFAULT_COMMUNES).expect("the shipped communes.toml is valid")
    }

    /// Gives commune `code` the FranceConnect client `fc` (the demo's provider).
    pub fn set_franceconnect(&mut self, code: &str, fc: FranceConnect) {
        if let Some(t) = self.by_code.get_mut(code) {
            t.franceconnect = Some(fc);
        }
    }

    /// Gives commune `code` the logo `bytes` (its `logo_file`'s content): at most 1 MiB, and
    /// an image `readable` says the PDF writer can print.
    pub fn set_logo<E: std::fmt::Display>(
        &mut self,
        code: &str,
        bytes: Vec<u8>,
        readable: impl FnOnce(&[u8]) -> std::result::Result<(), E>,
    ) -> Result<()> {
        let Some(t) = self.by_code.get_mut(code) else {
            return Err(Error::Config(format!("unknown commune {code}")));
        };
        if bytes.len() > 1 << 20 {
            return Err(Error::Config(format!(
                "commune {code}: the logo is {} bytes; the limit is 1 MiB",
                bytes.len()
            )));
        }
        if let Err(why) = readable(&bytes) {
            return Err(Error::Config(format!("commune {code}: {why}")));
        }
        t.logo = bytes;
        Ok(())
    }

    pub fn get(&self, code: &str) -> Option<&Tenant> {
        self.by_code.get(code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tenant> {
        self.by_code.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_six_communes() {
        let t = Tenants::builtin();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Rive-de-Gier",
                "Givors",
                "Grigny",
                "Pierre-Bénite",
                "Vaulx-en-Velin",
                "Vénissieux"
            ]
        );
        assert_eq!(t.get("69091").unwrap().numbers, ["+33472491818"]);
    }

    #[test]
    fn a_portal_url_is_an_https_address() {
        let with = |url: &str| {
            Tenants::from_toml(&format!(
                "[[commune]]\ncode='69091'\nname='Givors'\nprefix='GIV'\nportal_url='{url}'\n"
            ))
        };
        assert_eq!(
            with("https://demarches.example.fr/")
                .unwrap()
                .get("69091")
                .unwrap()
                .portal_url,
            "https://demarches.example.fr"
        );
        assert!(with("http://127.0.0.1:8090").is_ok());
        for bad in [
            "http://demarches.example.fr",
            "javascript:alert(1)",
            "https://a b",
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("portal_url"), "{bad}: {e}");
        }
    }

    #[test]
    fn rejects_duplicates_and_bad_codes() {
        let dup = "[[commune]]\ncode='69091'\nname='A'\nprefix='A'\n[[commune]]\ncode='69091'\nname='B'\nprefix='B'\n";
        assert!(Tenants::from_toml(dup)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        let bad = "[[commune]]\ncode='6909'\nname='A'\nprefix='A'\n";
        assert!(Tenants::from_toml(bad)
            .unwrap_err()
            .to_string()
            .contains("INSEE"));
    }
}
