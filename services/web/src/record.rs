//! A citizen's record from the desk: created from the search (filled from what was typed),
//! corrected (names, birth date, phones, e-mails, postal address, preferred channel and its
//! consent, note; a provisional « (sans nom) » record named), its household (members with
//! their relation and age), and a new request opened from the page. What the CLI does to a
//! record, the desk does; every change is an event with the agent.

use crate::pages::{chrome, now, pick, see_other, Page};
use crate::session::Caller;
use crate::view::{self, url_encode, RecordFields};
use crate::{render, State};
use axum::extract::{Path, Query, State as Axum};
use axum::Form;
use chrono::Datelike;
use contacthub_app::commands;
use contacthub_core::identity::{display_phone, normalize_email, normalize_phone};
use contacthub_core::pb;
use serde::Deserialize;

/// The preferred channels an agent chooses from, as the form sends them.
const CHANNELS: [(&str, &str, pb::ContactChannel); 5] = [
    ("", "non précisé", pb::ContactChannel::Unspecified),
    ("courriel", "courriel", pb::ContactChannel::Email),
    ("sms", "SMS", pb::ContactChannel::Sms),
    ("courrier", "courrier", pb::ContactChannel::Courrier),
    ("telephone", "téléphone", pb::ContactChannel::Phone),
];

/// Relations within a household, as the desk offers them.
pub(crate) const RELATIONS: [&str; 7] = [
    "parent",
    "enfant",
    "conjoint",
    "grand-parent",
    "petit-enfant",
    "tuteur",
    "autre",
];

fn channels() -> Vec<(&'static str, &'static str)> {
    CHANNELS
        .iter()
        .map(|(code, label, _)| (*code, *label))
        .collect()
}

fn civility(word: &str) -> bool {
    matches!(
        word.to_lowercase().trim_end_matches('.'),
        "m" | "mr" | "mme" | "mlle" | "madame" | "monsieur" | "mademoiselle"
    )
}

/// A word as a name is written: « durand » → « Durand », « jean-pierre » → « Jean-Pierre ».
fn capitalised(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut start = true;
    for c in word.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = c == '-' || c == '\'' || c == ' ';
    }
    out
}

/// A new record's form filled from what the agent searched: an e-mail, a phone number, or a
/// name typed as « NOM Prénom » (civilities left out).
pub(crate) fn prefilled(q: &str) -> RecordFields {
    let q = q.trim();
    let mut f = RecordFields::default();
    if q.contains('@') {
        f.emails = q.to_string();
    } else if normalize_phone(q).is_some() {
        f.phones = q.to_string();
    } else {
        let words: Vec<&str> = q.split_whitespace().filter(|w| !civility(w)).collect();
        if let Some((last, first)) = words.split_first() {
            f.usage_name = capitalised(last);
            f.first_names = first
                .iter()
                .map(|w| capitalised(w))
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    f
}

/// The form's fields of a stored identity.
fn fields_of(i: &pb::Identity) -> RecordFields {
    let a = i.addresses.first().cloned().unwrap_or_default();
    RecordFields {
        usage_name: i.usage_name.clone(),
        birth_name: i.birth_name.clone(),
        first_names: i.first_names.clone(),
        birth_date: i.birth_date.clone(),
        phones: i
            .phones
            .iter()
            .map(|p| display_phone(p))
            .collect::<Vec<_>>()
            .join("\n"),
        emails: i.emails.join("\n"),
        number: a.number,
        street: a.street,
        complement: a.complement,
        postcode: a.postcode,
        city: a.city,
        preferred: CHANNELS
            .iter()
            .find(|(_, _, c)| *c as i32 == i.preferred_channel)
            .map_or("", |(code, _, _)| code)
            .to_string(),
        consent: i.consent.is_some(),
        note: i.note.clone(),
    }
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
}

/// The identity the form describes, or what is wrong with it in the agent's words.
/// `previous` keeps what the form does not show (further addresses, when consent was given).
fn identity_of(
    f: &RecordFields,
    previous: &pb::Identity,
    now_us: i64,
) -> Result<pb::Identity, String> {
    let usage_name = f.usage_name.trim().to_string();
    let birth_name = f.birth_name.trim().to_string();
    if usage_name.is_empty() && birth_name.is_empty() {
        return Err("Indiquez le nom d'usage ou le nom de naissance.".into());
    }
    let mut phones = Vec::new();
    for p in lines(&f.phones) {
        if normalize_phone(p).is_none() {
            return Err(format!("« {p} » n'est pas un numéro de téléphone."));
        }
        phones.push(p.to_string());
    }
    let mut emails = Vec::new();
    for m in lines(&f.emails) {
        if normalize_email(m).is_none() {
            return Err(format!("« {m} » n'est pas une adresse de courriel."));
        }
        emails.push(m.to_string());
    }
    let birth_date = f.birth_date.trim().to_string();
    if !birth_date.is_empty() {
        let born = chrono::NaiveDate::parse_from_str(&birth_date, "%Y-%m-%d")
            .map_err(|_| format!("« {birth_date} » n'est pas une date de naissance."))?;
        let today = contacthub_core::courrier::paris(now_us).date();
        if born > today || born.year_ce().1 < 1900 {
            return Err("La date de naissance n'est pas plausible.".into());
        }
    }
    let postcode = f.postcode.trim().to_string();
    let five_digits = postcode.len() == 5 && postcode.bytes().all(|b| b.is_ascii_digit());
    if !postcode.is_empty() && !five_digits {
        return Err(format!(
            "« {postcode} » n'est pas un code postal (cinq chiffres)."
        ));
    }
    let address = pb::Address {
        number: f.number.trim().into(),
        street: f.street.trim().into(),
        postcode,
        city: f.city.trim().into(),
        complement: f.complement.trim().into(),
    };
    let mut addresses = Vec::new();
    if address != pb::Address::default() {
        addresses.push(address);
    }
    addresses.extend(previous.addresses.iter().skip(1).cloned());
    let preferred = CHANNELS
        .iter()
        .find(|(code, _, _)| *code == f.preferred.trim())
        .map(|(_, _, c)| *c)
        .ok_or_else(|| format!("« {} » n'est pas un canal.", f.preferred))?;
    match preferred {
        pb::ContactChannel::Email if emails.is_empty() => {
            return Err(
                "Le canal préféré est le courriel : indiquez une adresse de courriel.".into(),
            )
        }
        pb::ContactChannel::Sms if phones.is_empty() => {
            return Err("Le canal préféré est le SMS : indiquez un numéro de téléphone.".into())
        }
        pb::ContactChannel::Courrier if addresses.is_empty() => {
            return Err("Le canal préféré est le courrier : indiquez une adresse postale.".into())
        }
        _ => {}
    }
    let consent = match (f.consent, preferred) {
        (false, _) => None,
        (true, pb::ContactChannel::Unspecified) => {
            return Err(
                "Choisissez le canal préféré auquel l'usager accepte d'être répondu.".into(),
            )
        }
        (true, _) if previous.preferred_channel == preferred as i32 => previous
            .consent
            .clone()
            .or_else(|| Some(consent_now(now_us))),
        (true, _) => Some(consent_now(now_us)),
    };
    Ok(pb::Identity {
        usage_name,
        birth_name,
        first_names: f.first_names.trim().into(),
        birth_date,
        addresses,
        phones,
        emails,
        preferred_channel: preferred as i32,
        consent,
        note: f.note.trim().into(),
    })
}

fn consent_now(now_us: i64) -> pb::Consent {
    pb::Consent {
        given_at: Some(contacthub_proto::ts::from_micros(now_us)),
        source: "accueil".into(),
    }
}

fn consent_given(i: &pb::Identity) -> String {
    i.consent
        .as_ref()
        .map(|k| {
            format!(
                "donné le {} ({})",
                view::micros(&k.given_at).map(view::day).unwrap_or_default(),
                k.source
            )
        })
        .unwrap_or_default()
}

#[derive(Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    commune: String,
    #[serde(default)]
    q: String,
}

/// The form of a new record, filled from the search that found nobody.
pub async fn new_record(
    Axum(desk): Axum<State>,
    caller: Caller,
    Query(q): Query<NewQuery>,
) -> Page {
    let (_, tenant) = pick(&desk, &caller, &q.commune)?;
    caller.scope(&desk, &tenant)?;
    Ok(render(&view::RecordPage {
        chrome: chrome(&caller, &desk, "citoyens"),
        title: "Nouvelle fiche".into(),
        id: String::new(),
        action: format!(
            "/fiches/{}?cle={:032x}",
            url_encode(&tenant),
            rand::random::<u128>()
        ),
        submit: "Créer la fiche",
        cancel: format!(
            "/citoyens?commune={}&q={}",
            url_encode(&tenant),
            url_encode(q.q.trim())
        ),
        f: prefilled(&q.q),
        channels: channels(),
        consent_given: String::new(),
        error: String::new(),
    }))
}

#[derive(Deserialize)]
pub struct RecordPost {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    f: RecordFields,
}

#[derive(Deserialize)]
pub struct Key {
    /// Drawn when the form was shown: a form sent twice creates one record.
    #[serde(default)]
    cle: String,
}

pub async fn create_record(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path(tenant): Path<String>,
    Query(k): Query<Key>,
    Form(p): Form<RecordPost>,
) -> Page {
    caller.check_csrf(&p.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let identity = match identity_of(&p.f, &pb::Identity::default(), now(&desk)) {
        Ok(i) => i,
        Err(error) => {
            return Ok(render(&view::RecordPage {
                chrome: chrome(&caller, &desk, "citoyens"),
                title: "Nouvelle fiche".into(),
                id: String::new(),
                action: format!("/fiches/{}?cle={}", url_encode(&tenant), url_encode(&k.cle)),
                submit: "Créer la fiche",
                cancel: format!("/citoyens?commune={}", url_encode(&tenant)),
                f: p.f,
                channels: channels(),
                consent_given: String::new(),
                error,
            }))
        }
    };
    let c = desk
        .app
        .create_citizen(
            &scope,
            &commands::CreateCitizen {
                identity: Some(identity),
                idempotency_key: k.cle.chars().take(128).collect(),
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/citoyens/{}/{}?avis=fiche-creee",
        url_encode(&tenant),
        url_encode(&c.citizen_id)
    )))
}

fn edit_page(
    desk: &State,
    caller: &Caller,
    tenant: &str,
    c: &pb::Citizen,
    f: RecordFields,
    error: String,
) -> view::RecordPage {
    let url = format!(
        "/citoyens/{}/{}",
        url_encode(tenant),
        url_encode(&c.citizen_id)
    );
    view::RecordPage {
        chrome: chrome(caller, desk, "citoyens"),
        title: if c.display_name.is_empty() {
            "Compléter la fiche".into()
        } else {
            format!("Corriger la fiche de {}", c.display_name)
        },
        id: c.citizen_id.clone(),
        action: format!("{url}/fiche"),
        submit: "Enregistrer la fiche",
        cancel: url,
        f,
        channels: channels(),
        consent_given: consent_given(&c.identity.clone().unwrap_or_default()),
        error,
    }
}

/// The record's form, filled with what the record holds now (merged records included).
pub async fn edit_record(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Page {
    let scope = caller.scope(&desk, &tenant)?;
    let c = desk.app.citizen(&scope, &id)?;
    let mut f = fields_of(&c.identity.clone().unwrap_or_default());
    // A provisional record has no identity yet: what its contacts gave.
    if c.identity.is_none() {
        f.phones = c
            .phones
            .iter()
            .map(|p| display_phone(p))
            .collect::<Vec<_>>()
            .join("\n");
        f.emails = c.emails.join("\n");
    }
    Ok(render(&edit_page(
        &desk,
        &caller,
        &tenant,
        &c,
        f,
        String::new(),
    )))
}

pub async fn update_record(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(p): Form<RecordPost>,
) -> Page {
    caller.check_csrf(&p.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let c = desk.app.citizen(&scope, &id)?;
    let previous = c.identity.clone().unwrap_or_default();
    let identity = match identity_of(&p.f, &previous, now(&desk)) {
        Ok(i) => i,
        Err(error) => return Ok(render(&edit_page(&desk, &caller, &tenant, &c, p.f, error))),
    };
    desk.app
        .update_citizen(
            &scope,
            &commands::UpdateCitizen {
                citizen_id: c.citizen_id.clone(),
                identity: Some(identity),
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/citoyens/{}/{}?avis=fiche",
        url_encode(&tenant),
        url_encode(&c.citizen_id)
    )))
}

#[derive(Deserialize)]
pub struct HouseholdForm {
    #[serde(default)]
    csrf: String,
    /// The member's citizen id.
    #[serde(default)]
    member: String,
    #[serde(default)]
    relation: String,
    /// `retirer` to take the member out.
    #[serde(default)]
    action: String,
}

/// Adds a person to the citizen's household (created with its first other member) or takes
/// one out.
pub async fn household(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<HouseholdForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let c = desk.app.citizen(&scope, &id)?;
    let member = desk.app.citizen(&scope, f.member.trim())?;
    let removing = f.action == "retirer";
    if !removing && !RELATIONS.contains(&f.relation.as_str()) {
        return Err(crate::Failure {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "Choisissez le lien avec l'usager dans la liste.".into(),
        });
    }
    let household = match (c.households.first(), member.households.first()) {
        (Some(h), _) => h.clone(),
        (None, Some(h)) if !removing => h.clone(),
        _ if removing => {
            return Err(crate::Failure {
                status: axum::http::StatusCode::BAD_REQUEST,
                message: "Cette personne n'est pas dans le foyer.".into(),
            })
        }
        _ => format!("FOY-{}", c.citizen_id),
    };
    let mut members = vec![(member.citizen_id.clone(), f.relation.clone(), !removing)];
    // A new household holds the citizen too.
    if !removing && c.households.is_empty() {
        members.insert(0, (c.citizen_id.clone(), String::new(), true));
    }
    for (citizen_id, role, member) in members {
        desk.app
            .set_household_member(
                &scope,
                &commands::SetHouseholdMember {
                    household_id: household.clone(),
                    citizen_id,
                    role,
                    member,
                },
            )
            .await?;
    }
    Ok(see_other(&format!(
        "/citoyens/{}/{}?avis={}",
        url_encode(&tenant),
        url_encode(&c.citizen_id),
        if removing { "foyer-retire" } else { "foyer" }
    )))
}

#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    csrf: String,
    /// The existing record it is the same person as.
    #[serde(default)]
    into: String,
}

/// A provisional record (an unknown SMS sender, a caller) is an existing citizen: it joins
/// their record (a merge, with the agent and a reason; separable again from their page).
pub async fn join(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<JoinForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let c = desk.app.citizen(&scope, &id)?;
    if !c.provisional {
        return Err(crate::Failure {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "Seule une fiche provisoire se rattache ainsi ; deux fiches confirmées se fusionnent depuis « Doublons ».".into(),
        });
    }
    let into = f.into.trim();
    if into.is_empty() {
        return Err(crate::Failure {
            status: axum::http::StatusCode::BAD_REQUEST,
            message: "Choisissez la fiche de l'usager.".into(),
        });
    }
    let merged = desk
        .app
        .merge_citizens(
            &scope,
            &commands::MergeCitizens {
                citizen_id: c.citizen_id.clone(),
                into_citizen_id: into.to_string(),
                reason: "fiche provisoire rattachée à la fiche de l'usager depuis sa page".into(),
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/citoyens/{}/{}?avis=rattachee",
        url_encode(&tenant),
        url_encode(&merged.citizen_id)
    )))
}

#[derive(Deserialize)]
pub struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    service: String,
}

/// « Nouvelle demande » from the citizen's page: the citizen is the requester.
pub async fn open_request(
    Axum(desk): Axum<State>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<OpenForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let scope = caller.scope(&desk, &tenant)?;
    let c = desk.app.citizen(&scope, &id)?;
    let category = crate::contacts::category_of(&f.category);
    let r = desk
        .app
        .open_request(
            &scope,
            &commands::OpenRequest {
                subject: f.subject.trim().into(),
                category,
                service: f.service.trim().into(),
                citizen_id: c.citizen_id,
                ..Default::default()
            },
        )
        .await?;
    Ok(see_other(&format!(
        "/demandes/{}/{}?avis=ouverte",
        url_encode(&tenant),
        url_encode(&r.reference)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_fills_the_new_record() {
        let f = prefilled("madame durand marie-claire");
        assert_eq!(
            (f.usage_name.as_str(), f.first_names.as_str()),
            ("Durand", "Marie-Claire")
        );
        assert_eq!(prefilled("06 12 34 56 78").phones, "06 12 34 56 78");
        assert_eq!(
            prefilled("m.durand@example.fr").emails,
            "m.durand@example.fr"
        );
        assert_eq!(prefilled("M. PETIT").usage_name, "Petit");
    }

    #[test]
    fn a_form_says_in_french_what_is_wrong() {
        let ok = RecordFields {
            usage_name: "Durand".into(),
            ..Default::default()
        };
        let now = 1_796_000_000_000_000;
        let with = |f: fn(&mut RecordFields)| {
            let mut r = ok.clone();
            f(&mut r);
            identity_of(&r, &pb::Identity::default(), now).unwrap_err()
        };
        assert!(identity_of(&ok, &pb::Identity::default(), now).is_ok());
        assert_eq!(
            with(|r| r.usage_name.clear()),
            "Indiquez le nom d'usage ou le nom de naissance."
        );
        assert_eq!(
            with(|r| r.phones = "06 12\n".into()),
            "« 06 12 » n'est pas un numéro de téléphone."
        );
        assert_eq!(
            with(|r| r.postcode = "6970".into()),
            "« 6970 » n'est pas un code postal (cinq chiffres)."
        );
        assert_eq!(
            with(|r| r.preferred = "courriel".into()),
            "Le canal préféré est le courriel : indiquez une adresse de courriel."
        );
        assert_eq!(
            with(|r| r.consent = true),
            "Choisissez le canal préféré auquel l'usager accepte d'être répondu."
        );
        assert_eq!(
            with(|r| r.birth_date = "2990-01-01".into()),
            "La date de naissance n'est pas plausible."
        );
    }

    #[test]
    fn consent_is_kept_while_the_channel_stays() {
        let before = pb::Identity {
            usage_name: "Durand".into(),
            emails: vec!["m@example.fr".into()],
            preferred_channel: pb::ContactChannel::Email as i32,
            consent: Some(consent_now(1)),
            ..Default::default()
        };
        let mut f = fields_of(&before);
        let kept = identity_of(&f, &before, 99).unwrap();
        assert_eq!(kept.consent, before.consent);
        f.phones = "06 12 34 56 78".into();
        f.preferred = "sms".into();
        let new = identity_of(&f, &before, 99).unwrap();
        assert_eq!(
            new.consent,
            Some(consent_now(99)),
            "a new channel, a new consent"
        );
        f.consent = false;
        assert_eq!(identity_of(&f, &before, 99).unwrap().consent, None);
    }
}
