//! A generated, realistic population of the communes with years of contacts on every channel,
//! deterministic from a seed. Used by `serve --demo`, tests and benchmarks.
//!
//! Every commune's first person is a fixed, documented fixture (Givors: Marie Durand,
//! `06 12 34 56 78`, `marie.durand@example.fr`), so the README tour always finds someone.
//! Each person's first event is a desk visit that registers them with a citizen id and all
//! their identifiers; later contacts carry only what that channel would see, with phone
//! numbers written in the many ways people write them.

mod accueil;

use crate::event::{contact, event_id, SCHEMA_VERSION};
use crate::pb::{self, event::Payload, Category, Channel, Direction, Event};
use crate::tenant::{Tenant, Tenants};
use contacthub_proto::ts;
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FIRST: &[&str] = &[
    "Marie",
    "Jean",
    "Fatima",
    "Mohamed",
    "Camille",
    "Lucas",
    "Léa",
    "Hugo",
    "Chloé",
    "Karim",
    "Inès",
    "Thomas",
    "Manon",
    "Yanis",
    "Élodie",
    "Nicolas",
    "Sofia",
    "Antoine",
    "Aïcha",
    "Julien",
    "Zoé",
    "Mehdi",
    "Anaïs",
    "François",
    "Nadia",
    "Rémi",
    "Océane",
    "Bruno",
    "Leïla",
    "Gérard",
];
const LAST: &[&str] = &[
    "Durand", "Martin", "Benali", "Nguyen", "Petit", "Moreau", "Lefèvre", "Garcia", "Haddad",
    "Roux", "Fontaine", "Da Silva", "Mercier", "Bouvier", "Chérif", "Giraud", "Lambert", "Ferrand",
    "Saïdi", "Perrin", "Rousseau", "Blanc", "Guérin", "Muller", "Diallo", "Colin", "Le Gall",
];
const DOMAINS: &[&str] = &[
    "example.fr",
    "example.com",
    "example.net",
    "mail.example.org",
];
/// The service a category's letters and requests go to in the demo.
pub fn service_for(category: Category) -> &'static str {
    match category {
        Category::EtatCivil => "etat-civil",
        Category::Scolaire => "education",
        Category::PetiteEnfance => "petite-enfance",
        Category::Ccas => "ccas",
        Category::Culture => "culture",
        Category::ServicesTechniques => "services-techniques",
        Category::Urbanisme => "urbanisme",
        Category::PoliceMunicipale => "police-municipale",
        _ => "accueil",
    }
}

/// Beginnings and endings of French surnames: with the common names above, a population has
/// as many distinct surnames as a real commune (a few hundred people share the most common
/// ones, most names are rare), which is what search is measured on.
const NAME_STARTS: &[&str] = &[
    "Bel", "Bon", "Bou", "Char", "Chau", "Cour", "Dela", "Des", "Du", "Fa", "Fer", "Fon", "Gar",
    "Gau", "Gi", "Gu", "La", "Lan", "Le", "Ma", "Mar", "Mer", "Mo", "Pa", "Per", "Pi", "Po", "Ri",
    "Ro", "Sau", "Ta", "Ter", "Va", "Ver", "Vil", "Bran", "Cla", "Dau", "Hou", "Mon",
];
const NAME_ENDS: &[&str] = &[
    "bert", "chard", "det", "don", "fort", "gnier", "got", "guet", "lard", "lin", "lon", "mand",
    "mier", "nard", "net", "nier", "pin", "quet", "rand", "reau", "ret", "rier", "rin", "rot",
    "ssard", "ssier", "tel", "thier", "tier", "ton", "vaud", "veau", "vel", "zard", "zier", "llet",
    "chon", "geon", "dieu", "rieux",
];

/// A surname: one of the common names one time in five, else a rarer one.
fn surname(rng: &mut ChaCha8Rng) -> String {
    if rng.gen_bool(0.2) {
        LAST.choose(rng).unwrap().to_string()
    } else {
        format!(
            "{}{}",
            NAME_STARTS.choose(rng).unwrap(),
            NAME_ENDS.choose(rng).unwrap()
        )
    }
}

/// Streets of the communes (as in the Base Adresse Nationale).
const STREETS: &[&str] = &[
    "rue Jean Jaurès",
    "rue Émile Zola",
    "avenue Charles de Gaulle",
    "rue Victor Hugo",
    "place de la Liberté",
    "rue de la République",
    "boulevard Gambetta",
    "rue Pasteur",
    "chemin des Saules",
    "allée des Tilleuls",
    "rue Jules Ferry",
    "avenue du 8 Mai 1945",
    "rue Paul Éluard",
    "impasse des Lilas",
    "rue Lamartine",
    "quai du Rhône",
];

/// Postcode of a commune of the syndicate (demo addresses).
fn postcode(code: &str) -> &'static str {
    match code {
        "69091" => "69700",
        "69096" => "69520",
        "69152" => "69310",
        "42186" => "42800",
        "69256" => "69120",
        "69259" => "69200",
        _ => "69000",
    }
}

const FORMS: &[(&str, &str, Category)] = &[
    (
        "acte-naissance",
        "Demande d'acte de naissance",
        Category::EtatCivil,
    ),
    (
        "acte-mariage",
        "Demande d'acte de mariage",
        Category::EtatCivil,
    ),
    (
        "inscription-scolaire",
        "Inscription scolaire",
        Category::Scolaire,
    ),
    (
        "inscription-cantine",
        "Inscription à la cantine",
        Category::Scolaire,
    ),
    (
        "demande-creche",
        "Demande de place en crèche",
        Category::PetiteEnfance,
    ),
    ("aide-sociale", "Demande d'aide sociale", Category::Ccas),
    (
        "signalement-voirie",
        "Signalement sur la voirie",
        Category::ServicesTechniques,
    ),
    (
        "declaration-travaux",
        "Déclaration préalable de travaux",
        Category::Urbanisme,
    ),
    (
        "inscription-mediatheque",
        "Inscription à la médiathèque",
        Category::Culture,
    ),
];
const SUBJECTS: &[(&str, Category)] = &[
    ("Demande d'acte de naissance", Category::EtatCivil),
    ("Renouvellement carte d'identité", Category::EtatCivil),
    ("Inscription à l'école", Category::Scolaire),
    ("Facture de cantine", Category::Scolaire),
    ("Place en crèche", Category::PetiteEnfance),
    ("Demande d'aide au CCAS", Category::Ccas),
    (
        "Nid-de-poule rue de la République",
        Category::ServicesTechniques,
    ),
    ("Éclairage public en panne", Category::ServicesTechniques),
    ("Permis de construire", Category::Urbanisme),
    ("Stationnement gênant", Category::PoliceMunicipale),
    ("Programme de la saison culturelle", Category::Culture),
    ("Question générale", Category::Other),
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    /// People per commune.
    pub people_per_tenant: usize,
    /// Average contacts per person after registration.
    pub contacts_per_person: usize,
    /// The contacts span `years` years before `end_us`.
    pub years: u32,
    pub end_us: i64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 42,
            people_per_tenant: 200,
            contacts_per_person: 12,
            years: 3,
            end_us: 1_793_491_200_000_000, // 2026-11-01T00:00:00Z
        }
    }
}

/// A generated person.
#[derive(Debug, Clone)]
pub struct Person {
    pub tenant: String,
    pub citizen_id: String,
    pub name: String,
    /// E.164.
    pub phones: Vec<String>,
    pub email: Option<String>,
    pub household: String,
}

/// All events of the demo, lazily, in log order (each person registered before their
/// contacts), then the tickets of the accueil's waiting line.
pub fn events(cfg: &DemoConfig, tenants: &Tenants) -> impl Iterator<Item = Event> {
    let cfg = cfg.clone();
    let tenants: Vec<Tenant> = tenants.iter().cloned().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut index = 0usize;
    let total = cfg.people_per_tenant * tenants.len();
    let line = accueil::events(&cfg, &tenants);
    std::iter::from_fn(move || {
        if index >= total {
            return None;
        }
        let tenant = &tenants[index % tenants.len()];
        let n = index / tenants.len();
        index += 1;
        let person = person(&mut rng, tenant, n);
        Some(person_events(&mut rng, &cfg, tenant, &person, n))
    })
    .flatten()
    // Then the accueil's waiting line of the last weeks (tickets name no one).
    .chain(line)
}

/// The person number `n` of `tenant`; number 0 is the documented fixture.
fn person(rng: &mut ChaCha8Rng, tenant: &Tenant, n: usize) -> Person {
    let (first, last) = if n == 0 {
        ("Marie", "Durand".to_string())
    } else {
        (*FIRST.choose(rng).unwrap(), surname(rng))
    };
    let last = last.as_str();
    let mut phones = vec![if n == 0 {
        "+33612345678".to_string()
    } else {
        format!(
            "+33{}{:08}",
            rng.gen_range(6..=7),
            rng.gen_range(0..100_000_000u32)
        )
    }];
    if rng.gen_bool(0.3) {
        phones.push(format!(
            "+334{}{:07}",
            rng.gen_range(7..=8),
            rng.gen_range(0..10_000_000u32)
        ));
    }
    let email = (n == 0 || rng.gen_bool(0.7)).then(|| {
        let fold = |s: &str| crate::identity::fold_name(s).replace(' ', "-");
        let domain = if n == 0 {
            "example.fr"
        } else {
            DOMAINS.choose(rng).unwrap()
        };
        format!("{}.{}@{domain}", fold(first), fold(last))
    });
    Person {
        tenant: tenant.code.clone(),
        citizen_id: format!("{}-{:06}", tenant.prefix, n + 1),
        name: format!("{first} {}", last.to_uppercase()),
        phones,
        email,
        household: format!("{}-F{:05}", tenant.prefix, n / 3 + 1),
    }
}

/// Writes an E.164 French number the way a person or a system might.
pub fn write_phone(e164: &str, style: u8) -> String {
    let national = format!("0{}", &e164[3..]);
    let pairs: Vec<&str> = (0..5).map(|i| &national[i * 2..i * 2 + 2]).collect();
    match style % 7 {
        0 => pairs.join(" "),
        1 => pairs.join("."),
        2 => national,
        3 => format!("+33 {} {}", &e164[3..4], pairs[1..].join(" ")),
        4 => format!("0033{}", &e164[3..]),
        5 => format!("+33 (0){} {}", &e164[3..4], pairs[1..].join(" ")),
        _ => pairs.join("-"),
    }
}

fn person_events(
    rng: &mut ChaCha8Rng,
    cfg: &DemoConfig,
    tenant: &Tenant,
    p: &Person,
    n: usize,
) -> Vec<Event> {
    let span = i64::from(cfg.years) * 365 * 86_400_000_000;
    let start = cfg.end_us - span;
    let source_id = |k: usize| format!("{}-{}-{n}-{k}", cfg.seed, tenant.code);
    let mut out = Vec::new();
    // Registered at the accueil: during opening hours.
    let reg_us = office_hours(start + rng.gen_range(0..span / 4));
    // Drawn in this order, so the generated population stays the same.
    let duration_minutes = rng.gen_range(5..30);
    let _ = rng.gen_range(1..200);
    // A household (three people in a row) lives at one address: its first member's.
    let head = n - n % 3;
    let number = 1 + (head * 37 + 11) % 199;
    let street = STREETS[head % STREETS.len()];
    let postcode = postcode(&tenant.code);
    let mut reg = contact(
        &tenant.code,
        "demo",
        &source_id(0),
        reg_us,
        reg_us,
        Payload::DeskVisit(pb::DeskVisit {
            desk: "accueil-hdv".into(),
            duration_minutes,
            ..Default::default()
        }),
        pb::Party {
            citizen_id: p.citizen_id.clone(),
            phone: p.phones[0].clone(),
            email: p.email.clone().unwrap_or_default(),
            name: p.name.clone(),
            address: Some(pb::PostalAddress {
                lines: vec![format!("{number} {street}")],
                postal_code: postcode.into(),
                city: tenant.name.clone(),
                country: "FR".into(),
            }),
        },
    );
    reg.agent_id = format!("agent-{}", rng.gen_range(1..20));
    set_text(&mut reg, "Création de la fiche usager", "", Category::Other);
    // The record itself comes first: contacts may name a citizen id only once it exists.
    let mut record = reg.clone();
    record.event_id = event_id(&tenant.code, "demo", &source_id(3));
    record.source_id = source_id(3);
    record.channel = Channel::BackOffice as i32;
    record.direction = Direction::Internal as i32;
    if let Some(x) = record.personal.as_mut() {
        x.subject.clear();
    }
    record.payload = Some(Payload::CitizenRegistered(pb::CitizenRegistered {
        citizen_id: p.citizen_id.clone(),
    }));
    if let Some(x) = record.personal.as_mut() {
        let (first, last) = p.name.split_once(' ').unwrap_or(("", &p.name));
        x.identity = Some(pb::Identity {
            usage_name: last.to_string(),
            first_names: first.to_string(),
            addresses: vec![pb::Address {
                number: number.to_string(),
                street: street.to_string(),
                postcode: postcode.to_string(),
                city: tenant.name.clone(),
                ..Default::default()
            }],
            phones: vec![p.phones[0].clone()],
            emails: p.email.iter().cloned().collect(),
            birth_date: birth_date(&tenant.code, n),
            preferred_channel: match n % 4 {
                0 => pb::ContactChannel::Email,
                1 => pb::ContactChannel::Sms,
                2 => pb::ContactChannel::Courrier,
                _ => pb::ContactChannel::Phone,
            } as i32,
            // Agreed at the accueil when the record was made.
            consent: Some(pb::Consent {
                given_at: Some(ts::from_micros(reg_us)),
                source: "accueil".into(),
            }),
            ..Default::default()
        });
    }
    out.push(record);
    out.push(reg);
    for extra in p.phones.iter().skip(1) {
        // A second number, first seen with the citizen id at the desk.
        let mut e = out[1].clone();
        e.event_id = event_id(&tenant.code, "demo", &source_id(1));
        e.source_id = source_id(1);
        if let Some(party) = e.personal.as_mut().and_then(|x| x.party.as_mut()) {
            party.phone = extra.clone();
            party.email.clear();
        }
        e.occurred_at = Some(ts::from_micros(reg_us + 60_000_000));
        out.push(e);
    }
    out.push(household(tenant, p, n, &source_id(2), reg_us + 120_000_000));

    let count = rng.gen_range(cfg.contacts_per_person / 2..=cfg.contacts_per_person * 3 / 2);
    for k in 0..count {
        let at = rng.gen_range(reg_us + 3_600_000_000..cfg.end_us);
        let sid = source_id(10 + k);
        let (subject, category) = *SUBJECTS.choose(rng).unwrap();
        let phone = p.phones.choose(rng).unwrap();
        let written = write_phone(phone, rng.gen());
        let by_phone = pb::Party {
            phone: written,
            ..Default::default()
        };
        let by_mail = || pb::Party {
            email: p.email.clone().unwrap_or_default(),
            phone: if p.email.is_none() {
                p.phones[0].clone()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let channel = *[
            Channel::Phone,
            Channel::Phone,
            Channel::Phone,
            Channel::Courrier,
            Channel::WebForm,
            Channel::Sms,
            Channel::Email,
            Channel::Desk,
        ]
        .choose(rng)
        .unwrap();
        let outbound = rng.gen_bool(0.2);
        // Calls, letters and visits when the town hall works; forms, e-mails and SMS at any
        // hour.
        let at = match channel {
            Channel::Phone | Channel::Courrier | Channel::Desk => office_hours(at).min(cfg.end_us),
            _ => at,
        };
        let mut e = match channel {
            Channel::Phone => {
                use pb::phone_call::Disposition as D;
                let disposition = *[D::Answered, D::Answered, D::Answered, D::NoAnswer, D::Busy]
                    .choose(rng)
                    .unwrap();
                let secs = if disposition == D::Answered {
                    rng.gen_range(20..900)
                } else {
                    0
                };
                let payload = Payload::PhoneCall(pb::PhoneCall {
                    disposition: disposition as i32,
                    duration_seconds: secs + 8,
                    billed_seconds: secs,
                    commune_number: tenant.numbers.first().cloned().unwrap_or_default(),
                    bounced_to_accueil: rng.gen_bool(0.2),
                    ..Default::default()
                });
                let mut e = contact(&tenant.code, "demo", &sid, at, at, payload, by_phone);
                set_text(&mut e, "", "", category);
                e
            }
            Channel::Courrier => {
                let year = chrono::DateTime::from_timestamp_micros(at)
                    .map(|d| d.format("%Y").to_string())
                    .unwrap_or_default();
                let payload = Payload::Courrier(pb::Courrier {
                    kind: if rng.gen_bool(0.15) { 2 } else { 1 },
                    chrono: format!("{}-{year}-D{:05}", tenant.prefix, n * 100 + k),
                    addressed_to_service: service_for(category).to_string(),
                    ..Default::default()
                });
                let mut party = by_mail();
                party.name = p.name.clone();
                let recorded = office_hours(at + rng.gen_range(0..3 * 86_400_000_000));
                let mut e = contact(&tenant.code, "demo", &sid, at, recorded, payload, party);
                set_text(
                    &mut e,
                    subject,
                    "Madame, Monsieur, je vous écris au sujet de ma demande.",
                    category,
                );
                e
            }
            Channel::WebForm => {
                let (slug, title, cat) = *FORMS.choose(rng).unwrap();
                let payload = Payload::WebForm(pb::WebForm {
                    form_slug: slug.into(),
                    submission_id: sid.clone(),
                    signed_in: false,
                    thread_id: String::new(),
                });
                let mut party = by_mail();
                party.citizen_id = p.citizen_id.clone();
                let mut e = contact(&tenant.code, "demo", &sid, at, at, payload, party);
                set_text(&mut e, title, "", cat);
                e
            }
            Channel::Sms => {
                let payload = Payload::Sms(pb::Sms {
                    message_sid: format!("SM{:032x}", rng.gen::<u128>()),
                    segments: 1,
                    commune_number: tenant.numbers.first().cloned().unwrap_or_default(),
                });
                let mut e = contact(&tenant.code, "demo", &sid, at, at, payload, by_phone);
                let text = if outbound {
                    "Votre rendez-vous est confirmé. Mairie 😊"
                } else {
                    "Bonjour, est-ce que la mairie est ouverte samedi ?"
                };
                set_text(&mut e, "", text, category);
                e
            }
            Channel::Email => {
                let payload = Payload::Email(pb::Email {
                    message_id: format!("<{sid}@example.fr>"),
                    mailbox: "contact".into(),
                    ..Default::default()
                });
                let mut e = contact(&tenant.code, "demo", &sid, at, at, payload, by_mail());
                set_text(
                    &mut e,
                    subject,
                    "Bonjour,\nPourriez-vous me renseigner ?\nCordialement",
                    category,
                );
                e
            }
            _ => {
                let payload = Payload::DeskVisit(pb::DeskVisit {
                    desk: "accueil-hdv".into(),
                    duration_minutes: rng.gen_range(3..40),
                    ..Default::default()
                });
                let party = pb::Party {
                    citizen_id: p.citizen_id.clone(),
                    ..Default::default()
                };
                let mut e = contact(&tenant.code, "demo", &sid, at, at, payload, party);
                e.agent_id = format!("agent-{}", rng.gen_range(1..20));
                set_text(&mut e, subject, "", category);
                e
            }
        };
        if outbound
            && matches!(
                channel,
                Channel::Phone | Channel::Sms | Channel::Email | Channel::Courrier
            )
        {
            e.direction = Direction::Outbound as i32;
        }
        let letter = match (&e.payload, e.direction == Direction::Outbound as i32) {
            (Some(Payload::Courrier(c)), false) => {
                Some((c.chrono.clone(), c.addressed_to_service.clone()))
            }
            _ => None,
        };
        let recorded = e.recorded_at.as_ref().and_then(ts::to_micros).unwrap_or(at);
        out.push(e);
        if let Some((chrono, service)) = letter {
            out.extend(letter_circuit(
                tenant, &sid, &chrono, &service, recorded, cfg.end_us,
            ));
        }
    }
    // Work for the agents' worklists, drawn from the person's number (the generator's
    // sequence is unchanged). The parents of every fourth household share a landline, and a
    // call from it waits in « à rattacher »: two records hold the number.
    if n % 12 <= 1 {
        let landline = format!("+33478{:06}", (head * 7919 + 104_729) % 1_000_000);
        if let Some(i) = out[0].personal.as_mut().and_then(|x| x.identity.as_mut()) {
            i.phones.push(landline.clone());
        }
        if n % 12 == 1 {
            let at = office_hours(reg_us + 30 * 86_400_000_000).min(cfg.end_us);
            let mut e = contact(
                &tenant.code,
                "demo",
                &source_id(5),
                at,
                at,
                Payload::PhoneCall(pb::PhoneCall {
                    disposition: pb::phone_call::Disposition::Answered as i32,
                    duration_seconds: 200,
                    billed_seconds: 192,
                    commune_number: tenant.numbers.first().cloned().unwrap_or_default(),
                    bounced_to_accueil: false,
                    ..Default::default()
                }),
                pb::Party {
                    phone: landline,
                    ..Default::default()
                },
            );
            set_text(&mut e, "", "", Category::Scolaire);
            out.push(e);
        }
    }
    // One person in twenty was registered a second time at another desk, without phone or
    // e-mail: the same name and birth date, proposed as a duplicate.
    if n % 20 == 7 {
        let mut again = out[0].clone();
        let at = office_hours(reg_us + 90 * 86_400_000_000).min(cfg.end_us);
        again.source_id = source_id(6);
        again.event_id = event_id(&tenant.code, "demo", &again.source_id);
        again.occurred_at = Some(ts::from_micros(at));
        again.recorded_at = Some(ts::from_micros(at));
        again.payload = Some(Payload::CitizenRegistered(pb::CitizenRegistered {
            citizen_id: format!("{}-{:06}", tenant.prefix, 900_000 + n),
        }));
        if let Some(i) = again.personal.as_mut().and_then(|x| x.identity.as_mut()) {
            i.phones.clear();
            i.emails.clear();
            i.consent = None;
            i.preferred_channel = 0;
        }
        if let Some(party) = again.personal.as_mut().and_then(|x| x.party.as_mut()) {
            party.phone.clear();
            party.email.clear();
        }
        out.push(again);
    }
    // One person in twenty-three met the maire at a Saturday permanence of the last two
    // months (drawing nothing, so the rest of the demo stays the same).
    if n % 23 == 5 {
        out.push(permanence(tenant, p, n, &source_id(7), cfg.end_us));
    }
    out
}

/// What people tell an élu at a permanence, and what the élu promises.
const PERMANENCE: &[(&str, &str, Category)] = &[
    (
        "Éclairage public en panne dans sa rue",
        "Signaler la panne aux services techniques et rappeler sous quinze jours",
        Category::ServicesTechniques,
    ),
    (
        "Demande de logement social sans réponse",
        "Faire le point avec le CCAS sur le dossier",
        Category::Ccas,
    ),
    (
        "Place en crèche pour la rentrée",
        "Transmettre au service petite enfance",
        Category::PetiteEnfance,
    ),
    (
        "Chantier bruyant le samedi matin",
        "Rappeler au chantier les horaires autorisés",
        Category::Urbanisme,
    ),
    (
        "Inscription à l'école du quartier",
        "Vérifier le périmètre scolaire et répondre par écrit",
        Category::Scolaire,
    ),
];

/// Person `n` met the maire at a permanence, a Saturday morning before the demo's end.
fn permanence(tenant: &Tenant, p: &Person, n: usize, sid: &str, end_us: i64) -> Event {
    use chrono::Datelike;
    let end = crate::courrier::paris(end_us).date();
    let back = (end.weekday().num_days_from_monday() + 2) % 7;
    let saturday = end
        - chrono::Duration::days(i64::from(if back == 0 { 7 } else { back }))
        - chrono::Duration::weeks(((n / 23) % 8) as i64);
    let minute = 9 * 60 + 30 + (n % 5) as u32 * 15;
    let at = crate::courrier::paris_local_to_utc_us(saturday.and_time(
        chrono::NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap_or_default(),
    ));
    let (subject, promise, category) = PERMANENCE[(n / 23) % PERMANENCE.len()];
    let mut e = contact(
        &tenant.code,
        "demo",
        sid,
        at,
        at,
        Payload::DeskVisit(pb::DeskVisit {
            desk: "Permanence du maire".into(),
            permanence: true,
            ..Default::default()
        }),
        pb::Party {
            citizen_id: p.citizen_id.clone(),
            ..Default::default()
        },
    );
    e.agent_id = format!("maire-{}", tenant.prefix.to_lowercase());
    set_text(&mut e, subject, promise, category);
    // What the maire wrote of the person, as the permanence page keeps it.
    if let Some(x) = e.personal.as_mut() {
        x.fields = vec![pb::Field {
            name: "Nom".into(),
            value: p.name.clone(),
        }];
    }
    e
}

/// The mail room's work on a demo letter: routed the next day (nineteen in twenty), answered
/// within two to forty days (most of them), as long as that is before the demo's end. Drawn
/// from the letter's own id, so the rest of the demo stays the same.
fn letter_circuit(
    tenant: &Tenant,
    sid: &str,
    chrono: &str,
    service: &str,
    recorded: i64,
    end_us: i64,
) -> Vec<Event> {
    const DAY: i64 = 86_400_000_000;
    let seed = sid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
    let event = |n: u32, at: i64, payload: Payload| {
        let mut e = internal(tenant, &format!("{sid}-circuit-{n}"), at, payload);
        e.agent_id = "courrier-1".into();
        e
    };
    let mut out = Vec::new();
    let routed = office_hours(recorded + DAY);
    if routed > end_us || rng.gen_bool(0.05) {
        return out;
    }
    out.push(event(
        1,
        routed,
        Payload::CourrierRouted(pb::CourrierRouted {
            chrono: chrono.into(),
            service: service.into(),
            note: String::new(),
        }),
    ));
    let answered = office_hours(recorded + rng.gen_range(2..40) * DAY);
    if answered <= end_us && rng.gen_bool(0.9) {
        out.push(event(
            2,
            answered,
            Payload::CourrierAnswered(pb::CourrierAnswered {
                chrono: chrono.into(),
                answer_channel: Channel::Courrier as i32,
                answer_ref: format!("{chrono}-R"),
            }),
        ));
    }
    out
}

fn set_text(e: &mut Event, subject: &str, text: &str, category: Category) {
    e.category = category as i32;
    if let Some(p) = e.personal.as_mut() {
        p.subject = subject.into();
        p.text = text.into();
    }
}

/// A back-office event of the demo.
fn internal(tenant: &Tenant, source_id: &str, at: i64, payload: Payload) -> Event {
    Event {
        event_id: event_id(&tenant.code, "demo", source_id),
        tenant: tenant.code.clone(),
        channel: Channel::BackOffice as i32,
        occurred_at: Some(ts::from_micros(at)),
        recorded_at: Some(ts::from_micros(at)),
        schema_version: SCHEMA_VERSION,
        direction: Direction::Internal as i32,
        source: "demo".into(),
        source_id: source_id.into(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// The same instant moved into the town hall's opening hours, Paris time: Monday to Friday,
/// 08:30 to 12:00 and 13:30 to 17:30, as the shipped communes file says (the time of day
/// folded into those seven and a half hours, a weekend day moved to the Monday after, so a
/// later step never comes before an earlier one). Deterministic and drawing nothing, so the
/// rest of the demo is unchanged: visits, calls, letters and agents' steps happen when a town
/// hall works, while forms, e-mails and SMS keep any hour.
pub fn office_hours(us: i64) -> i64 {
    use crate::courrier::{paris, paris_local_to_utc_us};
    use chrono::{Datelike, Timelike, Weekday};
    let local = paris(us);
    let minute = i64::from(local.hour() * 60 + local.minute());
    let (open, morning, reopen, span) = (8 * 60 + 30, 210, 13 * 60 + 30, 450);
    let folded = (minute - open).rem_euclid(span);
    let folded = if folded < morning {
        open + folded
    } else {
        reopen + folded - morning
    };
    let date = match local.weekday() {
        Weekday::Sat => local.date() + chrono::Duration::days(2),
        Weekday::Sun => local.date() + chrono::Duration::days(1),
        _ => local.date(),
    };
    let time =
        chrono::NaiveTime::from_hms_opt((folded / 60) as u32, (folded % 60) as u32, local.second())
            .unwrap_or_default();
    paris_local_to_utc_us(date.and_time(time)) + i64::from(local.nanosecond() / 1_000)
}

/// The relation of person `n` in their household: two parents and a child.
fn relation(n: usize) -> &'static str {
    match n % 3 {
        0 => "parent",
        1 => "conjoint",
        _ => "enfant",
    }
}

/// Person `n`'s birth date (`YYYY-MM-DD`): an adult born 1950–1994, a child 2008–2022. Drawn
/// from the person's number, not the demo's generator, so the rest of the demo is unchanged.
fn birth_date(tenant: &str, n: usize) -> String {
    let h = tenant
        .bytes()
        .chain((n as u64).to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let year = if relation(n) == "enfant" {
        2008 + h % 15
    } else {
        1950 + h % 45
    };
    format!("{year}-{:02}-{:02}", 1 + (h >> 8) % 12, 1 + (h >> 16) % 28)
}

fn household(tenant: &Tenant, p: &Person, n: usize, source_id: &str, at: i64) -> Event {
    internal(
        tenant,
        source_id,
        at,
        Payload::HouseholdMembership(pb::HouseholdMembership {
            household_id: p.household.clone(),
            citizen_id: p.citizen_id.clone(),
            role: relation(n).into(),
            member: true,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::validate;
    use crate::identity::normalize_phone;

    #[test]
    fn office_hours_are_a_town_halls() {
        use crate::courrier::{paris, paris_local_to_utc_us};
        use chrono::{Datelike, NaiveDate, Timelike, Weekday};
        let at = |d: u32, h: u32, m: u32| {
            paris_local_to_utc_us(
                NaiveDate::from_ymd_opt(2026, 12, d)
                    .unwrap()
                    .and_hms_opt(h, m, 0)
                    .unwrap(),
            )
        };
        // Thursday 03/12/2026: 10:00 stays; 00:30 and 03:45 fold into the day, never at
        // lunch; Saturday and Sunday go to Monday.
        assert_eq!(office_hours(at(3, 10, 0)), at(3, 10, 0));
        assert_eq!(
            paris(office_hours(at(3, 0, 30))).time().to_string(),
            "17:00:00"
        );
        assert_eq!(
            paris(office_hours(at(3, 3, 45))).time().to_string(),
            "11:15:00"
        );
        assert_eq!(office_hours(at(5, 10, 0)), at(7, 10, 0));
        assert_eq!(office_hours(at(6, 10, 0)), at(7, 10, 0));
        for hour in 0..24 {
            for day in 1..=31 {
                let local = paris(office_hours(at(day.min(31), hour, 17)));
                assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
                let minute = local.hour() * 60 + local.minute();
                assert!((8 * 60 + 30..17 * 60 + 30).contains(&minute), "{local}");
                assert!(!(12 * 60..13 * 60 + 30).contains(&minute), "lunch: {local}");
            }
        }
    }

    #[test]
    fn the_demo_town_hall_works_in_opening_hours() {
        use crate::courrier::paris;
        use chrono::{Datelike, Timelike, Weekday};
        let cfg = DemoConfig {
            people_per_tenant: 30,
            ..Default::default()
        };
        let mut at_night = 0;
        let mut counter = 0;
        let mut tickets = 0;
        let mut permanences = 0;
        for e in events(&cfg, &Tenants::builtin()) {
            let us = e.occurred_at.as_ref().and_then(ts::to_micros).unwrap();
            let local = paris(us);
            let minute = local.hour() * 60 + local.minute();
            let open = !matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
                && (8 * 60 + 30..=17 * 60 + 30).contains(&minute);
            let at_the_town_hall = matches!(
                Channel::try_from(e.channel).unwrap(),
                Channel::Phone | Channel::Courrier | Channel::Desk | Channel::BackOffice
            );
            if let Some(Payload::TicketIssued(_)) = &e.payload {
                // People arrive while the counter is open (Saturday mornings too).
                let t = Tenants::builtin();
                let commune = t.get(&e.tenant).unwrap();
                let schedule = commune.schedule.as_ref().unwrap();
                let own = match &e.payload {
                    Some(Payload::TicketIssued(i)) => {
                        commune.site(&i.site).and_then(|s| s.hours.as_ref())
                    }
                    _ => None,
                };
                let open = match own {
                    Some(week) => schedule.open_in(week, us),
                    None => schedule.is_open(crate::hours::Opening::Counter, us),
                };
                assert!(open, "a ticket at {local}");
                tickets += 1;
            } else if matches!(
                &e.payload,
                Some(
                    Payload::TicketCalled(_) | Payload::TicketStarted(_) | Payload::TicketClosed(_)
                )
            ) {
                // Those inside at closing time are still served.
            } else if matches!(&e.payload, Some(Payload::DeskVisit(v)) if v.permanence) {
                // An élu's permanence: a Saturday morning, the town hall closed.
                assert_eq!(local.weekday(), Weekday::Sat, "a permanence at {local}");
                permanences += 1;
            } else if at_the_town_hall {
                counter += 1;
                assert!(open || us == cfg.end_us, "{:?} at {local}", e.payload);
            } else if !open {
                at_night += 1;
            }
            if let Some(Payload::HouseholdMembership(h)) = &e.payload {
                assert!(["parent", "conjoint", "enfant"].contains(&h.role.as_str()));
            }
        }
        assert!(counter > 1000, "{counter}");
        // Persons 5 and 28 of each commune met the maire.
        assert_eq!(permanences, 12);
        assert!(tickets > 100, "{tickets}");
        assert!(at_night > 0, "forms, e-mails and SMS come at any hour");
    }

    #[test]
    fn demo_is_deterministic_and_valid() {
        let cfg = DemoConfig {
            people_per_tenant: 5,
            ..Default::default()
        };
        let tenants = Tenants::builtin();
        let a: Vec<_> = events(&cfg, &tenants).collect();
        let b: Vec<_> = events(&cfg, &tenants).collect();
        assert_eq!(a, b);
        assert!(a.len() > 6 * 5 * 3);
        for e in &a {
            validate(e, &tenants).unwrap_or_else(|r| panic!("{r}: {e:?}"));
        }
        let channels: std::collections::BTreeSet<_> = a.iter().map(|e| e.channel).collect();
        assert_eq!(channels.len(), 7, "every channel and back office appear");
    }

    #[test]
    fn every_phone_writing_normalises_back() {
        for style in 0..7 {
            let w = write_phone("+33612345678", style);
            assert_eq!(normalize_phone(&w).as_deref(), Some("+33612345678"), "{w}");
        }
    }
}
