//! The demo commune loaded by `serve --demo`: its population through the application layer
//! (once), then its requests handled as agents would, on a clock the demo sets before each
//! step (agents' steps within opening hours, [`demo::office_hours`]).

use anyhow::Result;
use contacthub_app::auth::{Scope, System};
use contacthub_core::demo;
use contacthub_proto::v1 as pb;
use std::sync::Arc;

/// The demo's catalogue of validated answers: (title, démarche, service, validated by, text).
const CATALOGUE: [(&str, &str, &str, &str, &str); 7] = [
    (
        "Carte d'identité et passeport : délais",
        "carte nationale d'identité, passeport",
        "etat-civil",
        "responsable de l'état civil",
        "Les demandes de carte nationale d'identité et de passeport se font sur rendez-vous, après une pré-demande en ligne sur le site de l'ANTS. Comptez quatre à six semaines entre le rendez-vous et la mise à disposition du titre, que vous retirez en personne à la mairie de {commune}.",
    ),
    (
        "Acte de naissance : comment l'obtenir",
        "acte d'état civil",
        "etat-civil",
        "responsable de l'état civil",
        "Un acte de naissance s'obtient gratuitement auprès de la mairie du lieu de naissance, en ligne, par courrier ou au guichet. Précisez vos nom, prénoms, date de naissance et les noms de vos parents. L'acte vous est adressé sous huit jours.",
    ),
    (
        "Inscription scolaire : pièces à fournir",
        "inscription scolaire",
        "education",
        "responsable du service éducation",
        "Pour inscrire votre enfant à l'école, présentez le livret de famille, un justificatif de domicile de moins de trois mois et le carnet de vaccination. Le certificat d'inscription vous est remis sur place ; vous le présentez ensuite au directeur de l'école.",
    ),
    (
        "Aide sociale d'urgence : premier rendez-vous",
        "aide sociale",
        "ccas",
        "directrice du CCAS",
        "Le centre communal d'action sociale vous reçoit sur rendez-vous pour étudier votre situation. Apportez une pièce d'identité, vos derniers justificatifs de ressources et vos factures en attente. Une réponse vous est donnée après examen de votre dossier par la commission.",
    ),
    (
        "Travaux : déclaration préalable",
        "déclaration préalable de travaux",
        "urbanisme",
        "responsable de l'urbanisme",
        "Les travaux qui modifient l'aspect extérieur d'une construction demandent une déclaration préalable, déposée en mairie ou en ligne. Le délai d'instruction est d'un mois à compter du dépôt d'un dossier complet ; sans réponse à son terme, la déclaration est acceptée.",
    ),
    (
        "Voirie : signalement pris en compte",
        "signalement sur la voie publique",
        "voirie",
        "responsable de la voirie",
        "Votre signalement a été transmis aux services techniques. Une équipe se rend sur place pour évaluer l'intervention ; les réparations urgentes sont faites sous quarante-huit heures, les autres sont programmées dans les semaines qui suivent.",
    ),
    (
        "Horaires d'ouverture de la mairie",
        "horaires",
        "accueil",
        "responsable de l'accueil",
        "La mairie de {commune} vous accueille du lundi au vendredi de 8 h 30 à 12 h et de 13 h 30 à 17 h 30, et le samedi de 9 h à 12 h pour l'état civil. Les services reçoivent sur rendez-vous en dehors de ces horaires.",
    ),
];

/// The file in the data folder that says its log was filled by the demo.
const MARKER: &str = "demo-log";

/// Whether the log is the demo's: empty (the demo fills it now; marked so) or marked so
/// when the demo filled it. A log that already held other events never is.
pub async fn is_demo_log(
    data: &std::path::Path,
    log: &dyn contacthub_log::EventLog,
) -> Result<bool> {
    let marker = data.join(MARKER);
    if marker.exists() {
        return Ok(true);
    }
    let ends = log
        .end_offsets()
        .await
        .map_err(|e| anyhow::anyhow!("reading the event log's end: {e}"))?;
    if ends.iter().any(|&e| e > 0) {
        return Ok(false);
    }
    std::fs::create_dir_all(data)?;
    std::fs::write(&marker, "the demo filled this log (serve --demo)\n")
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", marker.display()))?;
    Ok(true)
}

/// Loads the demo population through the application layer, once (skipped when the log
/// already holds events).
pub async fn load_demo(app: &contacthub_app::App, seed: u64, people: usize) -> Result<()> {
    if !app.log_is_empty().await? {
        tracing::info!("the log already holds events: demo data not loaded again");
        return Ok(());
    }
    let cfg = demo::DemoConfig {
        seed,
        people_per_tenant: people,
        ..Default::default()
    };
    let mut batch = Vec::with_capacity(1000);
    let mut total = 0usize;
    for e in demo::events(&cfg, app.tenants()) {
        batch.push(e);
        if batch.len() == 1000 {
            total += batch.len();
            app.append_contacts(System::Demo, &std::mem::take(&mut batch))
                .await
                .map_err(|e| anyhow::anyhow!("loading the demo: {e}"))?;
        }
    }
    total += batch.len();
    app.append_contacts(System::Demo, &batch)
        .await
        .map_err(|e| anyhow::anyhow!("loading the demo: {e}"))?;
    // The demo's requests are handled when their contacts came, not when the demo loads:
    // the same application layer, on a clock the demo sets before each step.
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let timed = app.with_clock({
        let (clock, real) = (clock.clone(), app.clone());
        Arc::new(
            move || match clock.load(std::sync::atomic::Ordering::SeqCst) {
                0 => real.now(),
                t => t.min(real.now()),
            },
        )
    });
    let requests = demo_requests(&timed, &clock, 20)
        .await
        .map_err(|e| anyhow::anyhow!("opening the demo's requests: {e}"))?;
    let accounts = demo_accounts(app, ACCOUNTS_PER_COMMUNE)
        .await
        .map_err(|e| anyhow::anyhow!("signing the demo's people in: {e}"))?;
    tracing::info!(accounts, "demo: people signed in to the citizens' space");
    for tenant in app.tenants().iter() {
        let scope = Scope::system(System::Demo, &tenant.code);
        for (title, demarche, service, owner, text) in CATALOGUE {
            app.publish_answer(
                &scope,
                &contacthub_app::catalogue::Draft {
                    title: title.to_string(),
                    demarche: demarche.to_string(),
                    service: service.to_string(),
                    owner: owner.to_string(),
                    text: text.replace("{commune}", &tenant.name),
                    reviewed_on: "2026-09-15".into(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("publishing the demo's catalogue: {e}"))?;
        }
    }
    let connected = demo_connectors(app)
        .await
        .map_err(|e| anyhow::anyhow!("the demo's portal and street reports: {e}"))?;
    tracing::info!(
        events = total + connected,
        requests,
        seed,
        people_per_commune = people,
        "demo data loaded"
    );
    Ok(())
}

/// In each commune, a form of its Publik portal (submitted, then taken in hand), a street
/// report from an Open311 application and a dossier of démarches-simplifiées (deposited,
/// instructed, with an instructeur's message) — each opens a request —, a message of its
/// IMAP mailbox and an SMS received on its OVHcloud account, read by the same adapters as
/// the real ones and written the same way. How many contacts.
async fn demo_connectors(app: &contacthub_app::App) -> Result<usize> {
    use contacthub_adapters::{Adapter, Input, Item};
    let tenants = app.tenants().clone();
    let demarches: String = tenants
        .iter()
        .map(|t| {
            format!(
                "[[commune]]\ncode = \"{}\"\n[[commune.demarches_simplifiees]]\ndemarche = {DEMO_DEMARCHE}\ntoken = \"demo\"\ncategory = \"urbanisme\"\n",
                t.code
            )
        })
        .collect();
    let cfg = Arc::new(
        contacthub_adapters::config::AdaptersConfig::from_toml(&demarches, &tenants)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let publik = contacthub_adapters::publik::Publik::new(cfg.clone(), tenants.clone());
    let ds = contacthub_adapters::demarches::Demarches::new(cfg.clone(), tenants.clone());
    let email = contacthub_adapters::email::Email::new(cfg.clone(), tenants.clone());
    let ovh = contacthub_adapters::ovh::OvhIncoming::new(cfg, tenants.clone());
    let open311 = contacthub_adapters::open311::Open311::new(tenants.clone());
    let now = app.now();
    let mut events = Vec::new();
    for (n, tenant) in tenants.iter().enumerate() {
        let slug = tenant.slug();
        let at = |hours: i64| {
            chrono::DateTime::from_timestamp_micros(now - hours * HOUR_US)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        let form = |status: (&str, &str), updated: String| {
            serde_json::json!({
                "url": format!("https://demarches.{slug}.fr/signalement-voirie/{}/", 30 + n),
                "display_id": format!("{}-{}", 12, 30 + n),
                "display_name": format!("Signalement voirie - n°12-{}", 30 + n),
                "receipt_time": at(50),
                "last_update_time": updated,
                "user": {"name": "Lucie Bernard", "email": format!("lucie.bernard@{slug}.example.org"), "NameID": ["d3m0"]},
                "fields": {"adresse": "place de la Liberté", "description": "Banc cassé près de l'arrêt de bus"},
                "workflow": {"status": {"id": status.0, "name": status.1}}
            })
        };
        let report = format!(
            "service_code=services-techniques&address_string=avenue+Jean+Jaur%C3%A8s&description=D%C3%A9p%C3%B4t+sauvage+sur+le+trottoir&email=paul.morel%40{slug}.example.org&first_name=Paul&last_name=Morel"
        );
        let dossier = serde_json::json!({
            "number": 20_000 + n,
            "state": "en_instruction",
            "dateDepot": at(72),
            "datePassageEnInstruction": at(48),
            "dateDerniereModification": at(30),
            "demarche": {"number": DEMO_DEMARCHE, "title": "Déclaration préalable de travaux"},
            "usager": {"email": format!("karim.haddad@{slug}.example.org")},
            "demandeur": {"__typename": "PersonnePhysique", "civilite": "M.", "nom": "Haddad", "prenom": "Karim"},
            "champs": [
                {"label": "Adresse des travaux", "stringValue": "8 rue Victor Hugo"},
                {"label": "Nature des travaux", "stringValue": "Remplacement de la clôture"}
            ],
            "messages": [{"id": format!("demo-{n}"), "email": format!("urbanisme@{slug}.example.org"), "body": "Merci de préciser la hauteur de la clôture.", "createdAt": at(30)}]
        });
        // A message read from the town hall's mailbox (IMAP), an SMS received on its OVHcloud
        // account.
        let mail = format!(
            "From: Sophie Lambert <sophie.lambert@{slug}.example.org>\r\nTo: mairie@{slug}.example.org\r\n\
             Subject: Horaires de la piscine\r\nMessage-ID: <demo-imap-{n}@{slug}.example.org>\r\n\
             Date: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Bonjour, la piscine est-elle ouverte pendant les vacances de Noël ?\r\n",
            chrono::DateTime::from_timestamp_micros(now - 20 * HOUR_US)
                .map(|d| d.to_rfc2822())
                .unwrap_or_default()
        );
        let sms = serde_json::json!({
            "id": 90_000 + n, "creationDatetime": at(10), "credits": 0,
            "message": "Bonjour, la déchetterie est-elle ouverte samedi ?",
            "sender": format!("+336987654{:02}", n), "tag": ""
        });
        let inputs: [(&dyn Adapter, Vec<u8>, &str); 6] = [
            (
                &publik,
                serde_json::to_vec(&form(("new", "Nouveau"), at(50)))?,
                "demo",
            ),
            (
                &publik,
                serde_json::to_vec(&form(("accepted", "Pris en charge"), at(26)))?,
                "demo",
            ),
            (
                &open311,
                report.into_bytes(),
                "open311:Application de démonstration",
            ),
            (&ds, serde_json::to_vec(&dossier)?, "demo"),
            (&email, mail.into_bytes(), "imap INBOX"),
            (&ovh, serde_json::to_vec(&sms)?, "ovh incoming"),
        ];
        for (adapter, bytes, origin) in inputs {
            let items = adapter.parse(&Input {
                bytes: &bytes,
                origin,
                tenant: Some(&tenant.code),
                received_us: now,
            });
            for item in items {
                match item {
                    Item::Contact(c) => events.push(c.event),
                    other => anyhow::bail!("a demo input was refused: {other:?}"),
                }
            }
        }
    }
    app.append_contacts(System::Demo, &events)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(events.len())
}

const HOUR_US: i64 = 3_600_000_000;

/// The démarche of démarches-simplifiées the demo's communes take dossiers from.
const DEMO_DEMARCHE: u32 = 4321;

/// The identity FranceConnect would give for demo record `c` (an adult's): theirs exactly,
/// or with a second given name the record lacks (`other`: no record matches it exactly).
pub fn demo_pivot(c: &pb::Citizen, other: bool) -> Option<contacthub_core::account::Pivot> {
    let i = c.identity.clone()?;
    // FranceConnect is for adults: a child's record is not signed in.
    let born = chrono::NaiveDate::parse_from_str(&i.birth_date, "%Y-%m-%d").ok()?;
    let adult = born.checked_add_months(chrono::Months::new(18 * 12))?;
    if adult > chrono::Utc::now().date_naive() {
        return None;
    }
    let family = if i.birth_name.is_empty() {
        i.usage_name.clone()
    } else {
        i.birth_name.clone()
    };
    let mut given = i.first_names.clone();
    if other {
        given.push_str(" Claude");
    }
    Some(contacthub_core::account::Pivot {
        given_names: given,
        family_name: family,
        birth_date: i.birth_date.clone(),
        birth_country: "99100".into(),
        usage_name: i.usage_name.clone(),
        ..Default::default()
    })
}

/// The subject FranceConnect would give demo record `citizen`.
pub fn demo_subject(citizen: &str) -> String {
    format!("demo-{citizen}")
}

/// The people of the demo's FranceConnect (`demo_issuer`) in commune `tenant`: the records
/// the demo signed in (their identity is their record's, or has a given name more), and one
/// person the town hall has no record of.
pub fn franceconnect_people(app: contacthub_app::App) -> crate::demo_issuer::People {
    Arc::new(move |tenant: &str| {
        let Some(t) = app.tenants().get(tenant) else {
            return Vec::new();
        };
        let scope = Scope::system(System::Demo, tenant);
        let mut out = Vec::new();
        for k in 1..=ACCOUNTS_PER_COMMUNE {
            let (linked, proposed) = (k % 4 == 1, k == 2);
            if !linked && !proposed {
                continue;
            }
            let id = format!("{}-{k:06}", t.prefix);
            let Some(pivot) = app
                .citizen(&scope, &id)
                .ok()
                .and_then(|c| demo_pivot(&c, proposed))
            else {
                continue;
            };
            out.push(person(&pivot, &demo_subject(&id)));
        }
        let stranger = contacthub_core::account::Pivot {
            given_names: "Camille Andrée".into(),
            family_name: "Nouvel".into(),
            birth_date: "1991-04-23".into(),
            birth_country: "99100".into(),
            gender: "female".into(),
            ..Default::default()
        };
        out.push(person(&stranger, &format!("demo-{tenant}-nouvelle")));
        out
    })
}

/// A person of the demo's FranceConnect: how the page names them, and their claims.
fn person(p: &contacthub_core::account::Pivot, sub: &str) -> crate::demo_issuer::Person {
    let day = chrono::NaiveDate::parse_from_str(&p.birth_date, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_default();
    let mut claims = serde_json::Map::new();
    for (k, v) in [
        ("sub", sub),
        ("given_name", &p.given_names),
        ("family_name", &p.family_name),
        ("birthdate", &p.birth_date),
        ("birthplace", &p.birth_place),
        ("birthcountry", &p.birth_country),
        ("gender", &p.gender),
        ("preferred_username", &p.usage_name),
    ] {
        claims.insert(k.into(), serde_json::Value::String(v.to_string()));
    }
    crate::demo_issuer::Person {
        label: format!(
            "{} {}, né(e) le {day}",
            p.given_names,
            p.family_name.to_uppercase()
        ),
        claims,
    }
}

/// Records of each commune among which the demo signs people in to the space.
const ACCOUNTS_PER_COMMUNE: usize = 20;

/// Each commune's code and prefix.
fn communes(app: &contacthub_app::App) -> Vec<(String, String)> {
    app.tenants()
        .iter()
        .map(|t| (t.code.clone(), t.prefix.clone()))
        .collect()
}

/// What the demo's people write from the space: (category, subject, text).
const SPACE_MESSAGES: [(pb::Category, &str, &str); 3] = [
    (
        pb::Category::ServicesTechniques,
        "Trottoir abîmé",
        "Bonjour, le trottoir devant chez moi est défoncé depuis l'orage de la semaine dernière ; une poussette ne passe plus. Merci de faire le nécessaire.",
    ),
    (
        pb::Category::Scolaire,
        "Inscription à la cantine",
        "Bonjour, je souhaite inscrire mon fils à la cantine à partir de janvier, les lundis et jeudis. Quelles pièces dois-je fournir ?",
    ),
    (
        pb::Category::EtatCivil,
        "Copie d'acte de mariage",
        "Bonjour, pourriez-vous m'adresser une copie intégrale de mon acte de mariage, célébré à la mairie en 2009 ? Je vous remercie.",
    ),
];

/// One person in four of the first `per_commune` records of each commune signed in to the
/// space (linked at once: their identity is their record's), each with a passport
/// appointment in the coming two weeks, one in eight writing to the town hall; the second one
/// with a given name more than their record says (a proposal for the accueil). How many
/// signed in.
async fn demo_accounts(
    app: &contacthub_app::App,
    per_commune: usize,
) -> contacthub_app::Result<usize> {
    let mut n = 0;
    for (tenant, prefix) in communes(app) {
        let scope = Scope::system(System::Demo, &tenant);
        for k in 1..=per_commune {
            let (linked, proposed) = (k % 4 == 1, k == 2);
            if !linked && !proposed {
                continue;
            }
            let id = format!("{prefix}-{k:06}");
            let record = match app.citizen(&scope, &id) {
                Ok(c) => c,
                Err(contacthub_app::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let Some(pivot) = demo_pivot(&record, proposed) else {
                continue;
            };
            if pivot.check().is_err() {
                continue;
            }
            let signed = app.demo_sign_in(&scope, &pivot, &demo_subject(&id)).await?;
            n += 1;
            // Those linked book a passport appointment within the coming two weeks; one in
            // two writes to the town hall from the space.
            if linked {
                let free = app.free_slots(&tenant, "passeport-cni", app.now(), 14)?;
                if let Some(slot) = free.get((k * 7) % free.len().max(1)) {
                    app.book_my_appointment(&signed, "passeport-cni", slot.start_us)
                        .await?;
                }
            }
            if linked && k % 8 == 1 {
                let (category, subject, text) = SPACE_MESSAGES[(k / 8) % SPACE_MESSAGES.len()];
                app.write_to_town_hall(
                    &signed,
                    &contacthub_app::commands::WriteToTownHall {
                        category,
                        subject: subject.into(),
                        text: text.into(),
                        idempotency_key: format!("demo-{id}"),
                        ..Default::default()
                    },
                )
                .await?;
            }
        }
    }
    Ok(n)
}

/// Requests of the demo, through the application layer like an agent's: opened from the
/// latest written contact of the first citizens of each commune, in every state (see
/// `demo_request_state`; the old ones overdue), and one collective request gathering three
/// open ones of each commune.
async fn demo_requests(
    app: &contacthub_app::App,
    clock: &std::sync::atomic::AtomicI64,
    per_commune: usize,
) -> contacthub_app::Result<usize> {
    use std::sync::atomic::Ordering::SeqCst;
    let mut opened = 0;
    for (tenant, prefix) in communes(app) {
        let scope = Scope::system(System::Demo, &tenant);
        let mut references = Vec::new();
        let mut first = String::new();
        let mut k = 0;
        for n in 1..=per_commune {
            let citizen = format!("{prefix}-{n:06}");
            let page = match app.timeline(
                &scope,
                &contacthub_app::commands::TimelinePage {
                    citizen: contacthub_app::commands::Who::Record(citizen),
                    page_size: 50,
                    page_token: String::new(),
                    channels: Vec::new(),
                    since: None,
                    until: None,
                },
            ) {
                Ok(page) => page,
                Err(contacthub_app::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            // Letters are requests already (the mail room opens one for each).
            let written = [pb::Channel::WebForm as i32, pb::Channel::Email as i32];
            let Some(contact) = page.entries.iter().find(|e| {
                written.contains(&e.channel) && e.direction == pb::Direction::Inbound as i32
            }) else {
                continue;
            };
            let service = pb::Category::try_from(contact.category)
                .map(|c| demo::service_for(c).to_string())
                .unwrap_or_default();
            let at = contact
                .occurred_at
                .as_ref()
                .and_then(contacthub_proto::ts::to_micros)
                .unwrap_or(0);
            clock.store(at + HOUR_US, SeqCst);
            let r = app
                .open_request(
                    &scope,
                    &contacthub_app::commands::OpenRequest {
                        subject: if contact.subject.is_empty() {
                            contact.summary.clone()
                        } else {
                            contact.subject.clone()
                        },
                        category: pb::Category::try_from(contact.category)
                            .unwrap_or(pb::Category::Other),
                        service: service.clone(),
                        from_contact_event_id: contact.event_id.clone(),
                        idempotency_key: format!("demo-request-{tenant}-{n}"),
                        ..Default::default()
                    },
                )
                .await?;
            opened += 1;
            k += 1;
            demo_request_state(
                app,
                clock,
                at,
                &tenant,
                &r.reference,
                &service,
                k,
                &mut first,
            )
            .await?;
            if [0, 1, 2, 3, 9].contains(&(k % 10)) {
                references.push(r.reference);
            }
        }
        // Every other person the maire met at a permanence is followed by a request of the
        // service the promise names.
        for (i, m) in app.meetings(&scope)?.iter().rev().enumerate() {
            if i % 2 == 1 || m.request.is_some() {
                continue;
            }
            clock.store(m.occurred_us + 48 * HOUR_US, SeqCst);
            app.open_request(
                &scope,
                &contacthub_app::commands::OpenRequest {
                    subject: m.motive.clone(),
                    category: m.category,
                    service: demo::service_for(m.category).to_string(),
                    from_contact_event_id: m.event_id.clone(),
                    idempotency_key: format!("demo-permanence-{}", m.event_id),
                    ..Default::default()
                },
            )
            .await?;
            opened += 1;
        }
        // The collective is gathered now.
        clock.store(0, SeqCst);
        if references.len() >= 3 {
            let collective = app
                .open_request(
                    &scope,
                    &contacthub_app::commands::OpenRequest {
                        subject: "Signalements groupés".into(),
                        category: pb::Category::ServicesTechniques,
                        service: "services-techniques".into(),
                        on_behalf_of: "services techniques".into(),
                        idempotency_key: format!("demo-collective-{tenant}"),
                        ..Default::default()
                    },
                )
                .await?;
            app.group_requests(
                &scope,
                &contacthub_app::commands::GroupRequests {
                    collective: collective.reference,
                    members: references[..3].to_vec(),
                },
            )
            .await?;
            opened += 1;
        }
    }
    Ok(opened)
}

/// Moves a commune's `n`th demo request to one of ten states, by `n % 10`: received,
/// assigned, in progress, waiting for the citizen, answered, closed answered, withdrawn,
/// redirected, duplicate (of `first`, the commune's first request), reopened.
#[allow(clippy::too_many_arguments)]
async fn demo_request_state(
    app: &contacthub_app::App,
    clock: &std::sync::atomic::AtomicI64,
    contact_at: i64,
    tenant: &str,
    reference: &str,
    service: &str,
    n: usize,
    first: &mut String,
) -> contacthub_app::Result<()> {
    use pb::CloseReason as R;
    let step = n % 10;
    if first.is_empty() {
        *first = reference.to_string();
    }
    let tenant = tenant.to_string();
    let scope = Scope::system(System::Demo, &tenant);
    let reference = reference.to_string();
    // Days after the contact: assigned the next day, worked on, answered within 3 to 25 days
    // (some late), closed the day after.
    let day = |d: i64| {
        clock.store(
            demo::office_hours(contact_at + d * 24 * HOUR_US),
            std::sync::atomic::Ordering::SeqCst,
        )
    };
    let answered_after = 3 + (n as i64 * 7) % 23;
    day(1);
    if step != 0 {
        app.assign_request(
            &scope,
            &contacthub_app::commands::AssignRequest {
                reference: reference.clone(),
                service: service.to_string(),
                // Someone of the service: a pseudonymous agent on an open hub, one of the agents
                // file's otherwise (none when the service has nobody there).
                assignee_agent_id: if app.access().is_open() {
                    format!("agent-{}", n % 7 + 1)
                } else {
                    let agents = app.access().agents_in(&tenant, service);
                    agents
                        .get(n % agents.len().max(1))
                        .cloned()
                        .unwrap_or_default()
                },
            },
        )
        .await?;
    }
    let status = match step {
        2 => Some(pb::RequestStatus::InProgress),
        3 => Some(pb::RequestStatus::WaitingCitizen),
        _ => None,
    };
    if let Some(status) = status {
        day(2);
        app.set_request_status(
            &scope,
            &contacthub_app::commands::SetRequestStatus {
                reference: reference.clone(),
                status,
            },
        )
        .await?;
    }
    if [4, 5, 9].contains(&step) {
        day(answered_after);
        app.record_answer(
            &scope,
            &contacthub_app::commands::RecordAnswer {
                reference: reference.clone(),
                answer_channel: pb::Channel::Courrier,
                answer_ref: format!("{reference}-S{n:04}"),
            },
        )
        .await?;
    }
    let close = match step {
        5 | 9 => Some((R::Answered, "", "")),
        6 => Some((R::Withdrawn, "", "")),
        7 => Some((R::Redirected, "Métropole de Lyon", "")),
        8 if *first != reference => Some((R::Duplicate, "", first.as_str())),
        _ => None,
    };
    if let Some((reason, redirected_to, duplicate_of)) = close {
        day(answered_after + 1);
        app.close_request(
            &scope,
            &contacthub_app::commands::CloseRequest {
                reference: reference.clone(),
                reason,
                redirected_to: redirected_to.into(),
                duplicate_of: duplicate_of.into(),
                note: String::new(),
            },
        )
        .await?;
    }
    if step == 9 {
        day(answered_after + 3);
        app.reopen_request(&scope, &reference).await?;
    }
    Ok(())
}
