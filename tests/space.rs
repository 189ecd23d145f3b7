//! « Mon compte citoyen », on both log backends, against a local issuer in FranceConnect's
//! shape: a person whose « identité pivot » is exactly one record's is linked at once (an
//! `account_linked` line in their timeline) and sees their requests — made by phone or at
//! the desk too —, with their answers; a person no record matches exactly is told the town
//! hall will link them, and an agent of the accueil does (a service's agent and another
//! commune's are refused); nobody opens another's request or document by changing the URL;
//! a replayed return from FranceConnect is refused; signing out ends the session here and
//! at FranceConnect.

use contacthub_app::auth::{token_hash, Access};
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::oidc::TestIssuer;
use contacthub_tests::*;
use reqwest::StatusCode;
use serde_json::json;

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='accueil-grigny'\ntoken_sha256='{}'\ntenants=['69096']\n\
         [[agent]]\nid='dpo-givors'\ntoken_sha256='{}'\ntenants=['69091']\nrole='dpo'\n",
        token_hash("accueil"),
        token_hash("voirie"),
        token_hash("grigny"),
        token_hash("dpo"),
    ))
    .unwrap()
}

/// Signs in on Givors's space as whoever the issuer was told: the session cookie, and the
/// return URL (to replay it).
async fn sign_in(http: &reqwest::Client, hub: &TestHub) -> (String, String) {
    let r = http
        .get(format!("{}/givors/connexion", hub.portal))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "the space sends the browser to FranceConnect"
    );
    let state = set_cookie(&r, "contacthub_fc").expect("the state cookie");
    let to_fc = location(&r);
    for asked in [
        "acr_values=eidas1",
        "birthplace",
        "birthcountry",
        "family_name",
        "code_challenge_method=S256",
    ] {
        assert!(to_fc.contains(asked), "{asked} in {to_fc}");
    }
    let r = http.get(&to_fc).send().await.unwrap();
    assert_eq!(r.status(), 303, "FranceConnect sends the browser back");
    let back = location(&r);
    assert!(
        back.starts_with(&format!("{}/givors/connexion/retour?", hub.portal)),
        "{back}"
    );
    let r = http
        .get(&back)
        .header("cookie", format!("contacthub_fc={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/givors/");
    let session = set_cookie(&r, "contacthub_espace").expect("a session");
    (session, back)
}

/// Page `path` of the space as the browser of `session` sees it.
async fn page(
    http: &reqwest::Client,
    hub: &TestHub,
    session: &str,
    path: &str,
) -> (StatusCode, String) {
    let r = http
        .get(format!("{}{path}", hub.portal))
        .header("cookie", format!("contacthub_espace={session}"))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn record(hub: &TestHub, usage: &str, birth: &str, first: &str, date: &str) -> String {
    hub.hub
        .create_citizen(
            &hub.scope(GIVORS),
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: usage.into(),
                    birth_name: birth.into(),
                    first_names: first.into(),
                    birth_date: date.into(),
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            },
        )
        .await
        .unwrap()
        .citizen_id
}

async fn request_of(hub: &TestHub, citizen: &str, subject: &str, service: &str) -> String {
    hub.hub
        .open_request(
            &hub.scope(GIVORS),
            &commands::OpenRequest {
                subject: subject.into(),
                category: pb::Category::ServicesTechniques,
                service: service.into(),
                citizen_id: citizen.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .reference
}

fn marie() -> serde_json::Value {
    json!({
        "sub": "fc-sub-marie", "given_name": "Marie Louise", "family_name": "MARTIN",
        "birthdate": "1980-06-15", "birthplace": "69091", "birthcountry": "99100",
        "gender": "female", "preferred_username": "Dupont", "email": "marie@example.fr",
    })
}

fn paul() -> serde_json::Value {
    json!({
        "sub": "fc-sub-paul", "given_name": "Paul", "family_name": "Bernard",
        "birthdate": "1975-02-01", "birthplace": "", "birthcountry": "99134",
        "gender": "male",
    })
}

async fn space(backend: Backend) {
    let issuer = TestIssuer::start_franceconnect().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("fc-secret");
    let mut hub = TestHub::start_with_communes(&backend, agents(), |portal| {
        issuer.communes_file(portal, &secret)
    })
    .await;
    // Givors's SMTP relay and SMS gateway, in their wire formats: the codes leave there.
    let smtp = contacthub_tests::smtp::SmtpServer::start().await;
    let gateway = contacthub_tests::gateway::Gateway::start().await;
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\nsms_auth_token = \"{}\"\n\n[commune.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Mairie de Givors <reponses@ville-givors.fr>\"\n\n[commune.sms_gateway]\napi_url = \"{}\"\naccount_sid = \"{}\"\nfrom = \"+33472000000\"\n",
        contacthub_tests::gateway::TOKEN,
        smtp.port,
        gateway.url,
        contacthub_tests::gateway::ACCOUNT,
    ))
    .await;
    let http = no_redirects();

    // Signed out: the commune's home offers FranceConnect; the root lists the communes.
    let (status, home) = page(&http, &hub, "", "/givors/").await;
    assert_eq!(status, 200);
    assert!(home.contains("S'identifier avec FranceConnect"), "{home}");
    let (_, root) = page(&http, &hub, "", "/").await;
    assert!(root.contains("href=\"/pierre-benite/\""), "{root}");
    // The demo's FranceConnect is not there without --demo.
    let (status, _) = page(
        &http,
        &hub,
        "",
        "/demo-franceconnect/api/v2/.well-known/openid-configuration",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = page(&http, &hub, "", "/nulle-part/").await;
    assert_eq!(status, 404, "no commune has this name");
    let (_, grigny) = page(&http, &hub, "", "/grigny/").await;
    assert!(
        grigny.contains("Recevoir un code")
            && !grigny.contains("S&#39;identifier avec FranceConnect")
            && !grigny.contains("S'identifier avec FranceConnect"),
        "{grigny}"
    );

    let marie_id = record(&hub, "Dupont", "Martin", "Marie-Louise", "1980-06-15").await;
    let paul_id = record(&hub, "Bernard", "", "Paul", "").await;
    let hers = request_of(&hub, &marie_id, "Lampadaire éteint", "voirie").await;

    // Marie: the same birth name, given names and birth date as one record — linked now.
    issuer.sign_in_next_as(marie());
    let (marie_session, back) = sign_in(&http, &hub).await;
    let (status, home) = page(&http, &hub, &marie_session, "/givors/").await;
    assert_eq!(status, 200, "{home}");
    assert!(home.contains("Connecté : Marie"), "{home}");
    assert!(
        home.contains("Mes demandes") && home.contains(&hers),
        "{home}"
    );
    assert!(
        home.contains("Lampadaire éteint") && home.contains("Voirie"),
        "{home}"
    );
    let linked = hub.timeline_of(GIVORS, &marie_id);
    let line = linked
        .iter()
        .find(|e| e.kind == "account_linked")
        .expect("the link in Marie's timeline");
    assert_eq!(
        line.facts.clone().unwrap_or_default().account_basis,
        pb::account_linked::Basis::PivotIdentity as i32
    );
    let (status, detail) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/demandes/{hers}"),
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    assert!(
        detail.contains("Code de suivi") && detail.contains("Pas encore de réponse"),
        "{detail}"
    );
    // She comes to the counter about it: the accueil's note is the town hall's, not hers.
    hub.hub
        .record_visit(
            &hub.hub.access().scope(Some("accueil"), GIVORS).unwrap(),
            &commands::RecordVisit {
                party: Some(pb::Party {
                    citizen_id: marie_id.clone(),
                    ..Default::default()
                }),
                desk: "Accueil".into(),
                subject: "Lampadaire".into(),
                notes: "Note de l'agent : personne très insistante".into(),
                request_id: hers.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, detail) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/demandes/{hers}"),
    )
    .await;
    assert!(!detail.contains("insistante"), "{detail}");

    // The same return again: refused, no second session.
    let r = http.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "contacthub_espace").is_none());

    // Paul: his record has no birth date — not exact: proposed to the agents.
    issuer.sign_in_next_as(paul());
    let (paul_session, _) = sign_in(&http, &hub).await;
    let (_, home) = page(&http, &hub, &paul_session, "/givors/").await;
    assert!(
        home.contains("Votre compte sera rattaché par la mairie"),
        "{home}"
    );
    assert!(!home.contains(&hers));
    let (status, _) = page(
        &http,
        &hub,
        &paul_session,
        &format!("/givors/demandes/{hers}"),
    )
    .await;
    assert_eq!(status, 403, "a waiting account reads no request");

    // The accueil lists the proposal (its candidate: Paul's record); a service's agent and
    // another commune's accueil are refused, listing and linking.
    let scope = |token: &str, tenant: &str| hub.hub.access().scope(Some(token), tenant).unwrap();
    let proposals = hub
        .hub
        .account_proposals(&scope("accueil", GIVORS))
        .unwrap();
    assert_eq!(proposals.len(), 1);
    let proposal = &proposals[0];
    assert!(proposal.key_ids.is_empty(), "no key id leaves the hub");
    let paul_proposal_key = format!("e/{}", proposal.event_id);
    assert_eq!(proposal.candidates, vec![paul_id.clone()]);
    assert_eq!(
        proposal.identity.clone().unwrap_or_default().birth_date,
        "1975-02-01"
    );
    let link = commands::LinkAccount {
        proposal_event_id: proposal.event_id.clone(),
        citizen_id: paul_id.clone(),
    };
    let refused = hub
        .hub
        .account_proposals(&scope("voirie", GIVORS))
        .unwrap_err();
    assert!(
        matches!(refused, contacthub_app::Error::Forbidden(_)),
        "{refused}"
    );
    let refused = hub
        .hub
        .link_account(&scope("voirie", GIVORS), &link)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, contacthub_app::Error::Forbidden(_)),
        "{refused}"
    );
    assert!(hub.hub.access().scope(Some("grigny"), GIVORS).is_err());
    let refused = hub
        .hub
        .link_account(&scope("grigny", "69096"), &link)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, contacthub_app::Error::NotFound(_)),
        "{refused}"
    );
    // From the command line (gRPC): the accueil lists it, the voirie's agent is refused, and
    // neither may link it to a record of another commune.
    let bin = contacthub_bin!();
    let (ok, listed) = hub.cli_as(
        &bin,
        "accueil",
        &["citizen", "accounts", "--tenant", GIVORS],
    );
    assert!(ok, "{listed}");
    assert!(
        listed.contains(&proposal.event_id) && listed.contains("Paul Bernard, né(e) le 01/02/1975"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("fiches proches : {paul_id}")),
        "{listed}"
    );
    let (ok, refused) = hub.cli_as(&bin, "voirie", &["citizen", "accounts", "--tenant", GIVORS]);
    assert!(!ok && refused.contains("accueil"), "{refused}");
    let (ok, refused) = hub.cli_as(
        &bin,
        "voirie",
        &[
            "citizen",
            "link-account",
            "--tenant",
            GIVORS,
            &proposal.event_id,
            &paul_id,
        ],
    );
    assert!(!ok, "{refused}");

    // On the desk: the accueil sees the account with what FranceConnect said and links it;
    // the voirie's agent sees no account and cannot post the link.
    let voirie = WebAgent::sign_in(&hub.web, "voirie").await;
    let (_, theirs) = voirie.get("/a-rattacher?commune=69091").await;
    assert!(!theirs.contains("Comptes de l'espace citoyen"), "{theirs}");
    let accueil = WebAgent::sign_in(&hub.web, "accueil").await;
    let (status, waiting) = accueil.get("/a-rattacher?commune=69091").await;
    assert_eq!(status, 200);
    for shown in [
        "Comptes de l'espace citoyen à rattacher",
        "Bernard",
        "01/02/1975",
        "Homme",
        &paul_id,
    ] {
        assert!(waiting.contains(shown), "{shown} in {waiting}");
    }
    let action = format!("/a-rattacher/comptes/{GIVORS}/{}", proposal.event_id);
    let post = |agent: &WebAgent, csrf: String| {
        agent
            .http
            .post(format!("{}{action}", agent.base))
            .header("cookie", agent.cookie.clone())
            .form(&[
                ("csrf", csrf),
                ("citizen", paul_id.clone()),
                ("fiche", String::new()),
            ])
            .send()
    };
    let r = post(&voirie, csrf_of(&theirs)).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = post(&accueil, csrf_of(&waiting)).await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert!(hub
        .hub
        .account_proposals(&scope("accueil", GIVORS))
        .unwrap()
        .is_empty());
    let (_, waiting) = accueil.get("/a-rattacher?commune=69091").await;
    assert!(
        !waiting.contains("Comptes de l'espace citoyen"),
        "{waiting}"
    );
    let his = request_of(&hub, &paul_id, "Nid-de-poule rue Zola", "voirie").await;
    let (_, home) = page(&http, &hub, &paul_session, "/givors/").await;
    assert!(home.contains(&his) && !home.contains(&hers), "{home}");
    assert!(hub
        .timeline_of(GIVORS, &paul_id)
        .iter()
        .any(|e| e.kind == "account_linked"));

    // Nobody opens another's request or document by changing the URL.
    for path in [
        format!("/givors/demandes/{hers}"),
        format!("/givors/demandes/{hers}/documents/0"),
        "/givors/demandes/GIV-D-2026-999999".to_string(),
    ] {
        let (status, body) = page(&http, &hub, &paul_session, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("Lampadaire"), "{path}");
    }
    // Nor on another commune's site.
    let (status, _) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/grigny/demandes/{hers}"),
    )
    .await;
    assert_eq!(status, 401);

    // « Écrire à la mairie »: Marie writes about her request, with a scan; the message joins
    // it, in her timeline for the agents, and comes back on her request's page.
    let form = |csrf: &str, reference: &str, text: &str, file: Option<(&str, Vec<u8>)>| {
        let mut f = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("cle", format!("cle-{text}"))
            .text("demande", reference.to_string())
            .text("domaine", (pb::Category::EtatCivil as i32).to_string())
            .text("objet", "Copie d'acte de naissance")
            .text("message", text.to_string());
        if let Some((name, bytes)) = file {
            f = f.part(
                "documents",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
            );
        }
        f
    };
    let write = |session: &str, f: reqwest::multipart::Form| {
        http.post(format!("{}/givors/ecrire", hub.portal))
            .header("cookie", format!("contacthub_espace={session}"))
            .multipart(f)
            .send()
    };
    let (status, blank) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/ecrire?demande={hers}"),
    )
    .await;
    assert_eq!(status, 200, "{blank}");
    assert!(
        blank.contains(&format!("<option value=\"{hers}\" selected>")),
        "{blank}"
    );
    let csrf = csrf_of(&blank);
    let scan = b"%PDF-1.4\nfacture\n%%EOF\n".to_vec();
    let r = write(
        &marie_session,
        form(
            &csrf,
            &hers,
            "Le lampadaire clignote encore.",
            Some(("C:\\scans\\photo lampadaire.pdf", scan.clone())),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), format!("/givors/demandes/{hers}?envoye=1"));
    let (_, detail) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/demandes/{hers}?envoye=1"),
    )
    .await;
    assert!(
        detail.contains("Votre message a été envoyé")
            && detail.contains("Le lampadaire clignote encore."),
        "{detail}"
    );
    assert!(detail.contains("photo lampadaire.pdf"), "{detail}");
    let r = http
        .get(format!("{}/givors/demandes/{hers}/documents/0", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.bytes().await.unwrap().to_vec(), scan);
    let line = hub
        .timeline_of(GIVORS, &marie_id)
        .into_iter()
        .find(|e| e.kind == "web_form")
        .expect("her message in her timeline");
    assert_eq!(line.request_id, hers);
    assert_eq!(line.attachments.len(), 1);
    let request = hub.store.request(GIVORS, &hers).unwrap().unwrap();
    assert!(request.contacts.contains(&line.event_id));
    // The same form sent twice is one message.
    let r = write(
        &marie_session,
        form(
            &csrf,
            &hers,
            "Le lampadaire clignote encore.",
            Some(("photo lampadaire.pdf", scan.clone())),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let messages = hub
        .timeline_of(GIVORS, &marie_id)
        .into_iter()
        .filter(|e| e.kind == "web_form")
        .count();
    assert_eq!(messages, 1);
    // A new matter: a request of the état civil, hers.
    let r = write(
        &marie_session,
        form(
            &csrf,
            "",
            "Je voudrais une copie intégrale de mon acte.",
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let new = location(&r);
    let new_ref = new
        .trim_start_matches("/givors/demandes/")
        .trim_end_matches("?envoye=1")
        .to_string();
    let opened = hub
        .store
        .request(GIVORS, &new_ref)
        .unwrap()
        .expect("a new request");
    assert_eq!(opened.service, "etat-civil");
    assert_eq!(opened.requesters, vec![marie_id.clone()]);
    assert_eq!(opened.subject, "Copie d'acte de naissance");
    // Refused: a file that is no PDF or image, another's request, a form without its token.
    let r = write(
        &marie_session,
        form(
            &csrf,
            &hers,
            "Voici",
            Some(("virus.pdf", b"MZ\x90\x00".to_vec())),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("ni un PDF ni une image"));
    let (_, his_form) = page(&http, &hub, &paul_session, "/givors/ecrire").await;
    assert!(!his_form.contains(&hers), "{his_form}");
    let r = write(
        &paul_session,
        form(&csrf_of(&his_form), &hers, "Intrus", None),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = write(
        &marie_session,
        form("pas-le-bon", &hers, "Sans jeton", None),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    // Paul may not read Marie's document either.
    let (status, _) = page(
        &http,
        &hub,
        &paul_session,
        &format!("/givors/demandes/{hers}/documents/0"),
    )
    .await;
    assert_eq!(status, 404);

    // « Mon foyer »: Marie is the parent of Léa (10) and lives with Jean (an adult): she sees
    // Léa's requests, never Jean's; she asks to add a child, with the livret de famille.
    let lea = record(&hub, "Martin", "", "Léa", "2016-03-01").await;
    let jean = record(&hub, "Martin", "", "Jean", "1979-01-01").await;
    for (who, role) in [(&marie_id, "parent"), (&lea, "enfant"), (&jean, "conjoint")] {
        hub.hub
            .set_household_member(
                &hub.scope(GIVORS),
                &commands::SetHouseholdMember {
                    household_id: "FOYER-MARTIN".into(),
                    citizen_id: who.clone(),
                    role: role.into(),
                    member: true,
                },
            )
            .await
            .unwrap();
    }
    let leas = request_of(
        &hub,
        &lea,
        "Inscription à la cantine",
        "services-techniques",
    )
    .await;
    let jeans = request_of(&hub, &jean, "Permis de construire", "services-techniques").await;
    let (_, home) = page(&http, &hub, &marie_session, "/givors/").await;
    assert!(home.contains(&leas) && home.contains("pour Léa"), "{home}");
    assert!(
        !home.contains(&jeans),
        "an adult's requests are his own: {home}"
    );
    let (status, _) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/demandes/{jeans}"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, detail) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/demandes/{leas}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(detail.contains("Léa"), "{detail}");
    let (_, foyer) = page(&http, &hub, &marie_session, "/givors/foyer").await;
    assert!(
        foyer.contains("Léa Martin — enfant : vous suivez ses demandes"),
        "{foyer}"
    );
    assert!(
        foyer.contains("Jean Martin — conjoint") && foyer.contains("(vous)"),
        "{foyer}"
    );
    let ask = reqwest::multipart::Form::new()
        .text("csrf", csrf_of(&foyer))
        .text("cle", "ajout-1")
        .text("lien", "enfant")
        .text("prenoms", "Noé")
        .text("nom", "Martin")
        .text("naissance", "2025-05-02")
        .part(
            "documents",
            reqwest::multipart::Part::bytes(b"%PDF-1.4\nlivret\n%%EOF\n".to_vec())
                .file_name("livret.pdf"),
        );
    let r = http
        .post(format!("{}/givors/foyer", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .multipart(ask)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let asked = location(&r);
    let asked = asked
        .trim_start_matches("/givors/demandes/")
        .trim_end_matches("?envoye=1");
    let asked = hub
        .store
        .request(GIVORS, asked)
        .unwrap()
        .expect("the request for the accueil");
    assert_eq!(asked.service, "accueil");
    assert!(
        asked.subject.contains("Noé Martin (enfant)"),
        "{}",
        asked.subject
    );
    // Nothing changed in the household until an agent does it.
    let (_, foyer) = page(&http, &hub, &marie_session, "/givors/foyer").await;
    assert!(!foyer.contains("Noé"), "{foyer}");

    // « Mes données »: her export, and a request to the data protection officer's office.
    let r = http
        .get(format!("{}/givors/donnees/mes-donnees.zip", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let zip = r.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("donnees.json").unwrap(), &mut json)
        .unwrap();
    assert!(json.contains(&marie_id) && json.contains("Le lampadaire clignote encore."));
    assert!(
        !json.contains("Permis de construire"),
        "Jean's request is not hers"
    );
    let (_, donnees) = page(&http, &hub, &marie_session, "/givors/donnees").await;
    let r = http
        .post(format!("{}/givors/donnees/effacement", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .form(&[
            ("csrf", csrf_of(&donnees)),
            ("cle", "eff-1".into()),
            ("precisions", "Je déménage.".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let erasure = location(&r);
    let erasure = erasure
        .trim_start_matches("/givors/demandes/")
        .trim_end_matches("?envoye=1");
    let erasure = hub.store.request(GIVORS, erasure).unwrap().unwrap();
    assert_eq!(erasure.service, "dpo");
    assert!(
        hub.store
            .citizen(GIVORS, &marie_id)
            .unwrap()
            .unwrap()
            .erased
            .is_none(),
        "asked, not erased"
    );
    // Paul can download only his own.
    let r = http
        .get(format!("{}/givors/donnees/mes-donnees.zip", hub.portal))
        .header("cookie", format!("contacthub_espace={paul_session}"))
        .send()
        .await
        .unwrap();
    let zip = r.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("donnees.json").unwrap(), &mut json)
        .unwrap();
    assert!(json.contains(&paul_id) && !json.contains(&marie_id));

    // « Mes coordonnées »: a new e-mail address is Marie's once she typed the code it received
    // (a wrong code does nothing); a new phone likewise by SMS; then she prefers e-mail, with
    // her consent dated and from the space; a postcode of four digits is refused.
    let post = |path: &str, form: Vec<(&str, String)>| {
        http.post(format!("{}/givors/{path}", hub.portal))
            .header("cookie", format!("contacthub_espace={marie_session}"))
            .form(&form)
            .send()
    };
    let (_, details) = page(&http, &hub, &marie_session, "/givors/coordonnees").await;
    let csrf = csrf_of(&details);
    let r = post(
        "coordonnees/code",
        vec![
            ("csrf", csrf.clone()),
            ("nouveau", "Marie.Martin@Example.fr".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let mail = smtp.received().last().cloned().expect("the code by e-mail");
    assert_eq!(mail.rcpt_to, vec!["<marie.martin@example.fr>".to_string()]);
    let text = String::from_utf8_lossy(&mail.data).to_string();
    let code: String = text
        .split("code de confirmation est ")
        .nth(1)
        .expect("the code in the mail")
        .chars()
        .take(6)
        .collect();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = post(
        "coordonnees/confirmer",
        vec![("csrf", csrf.clone()), ("code", wrong.into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("pas le code envoyé"));
    let record = |hub: &TestHub| {
        hub.store
            .citizen(GIVORS, &marie_id)
            .unwrap()
            .unwrap()
            .identity
            .unwrap_or_default()
    };
    assert!(record(&hub).emails.is_empty(), "not before the code");
    let r = post(
        "coordonnees/confirmer",
        vec![("csrf", csrf.clone()), ("code", code.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        record(&hub).emails,
        vec!["marie.martin@example.fr".to_string()]
    );
    // A code serves once.
    let r = post(
        "coordonnees/confirmer",
        vec![("csrf", csrf.clone()), ("code", code)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = post(
        "coordonnees/code",
        vec![("csrf", csrf.clone()), ("nouveau", "06.98.76.54.32".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let sms = gateway.sent().last().cloned().expect("the code by SMS");
    assert_eq!(sms.to, "+33698765432");
    let code: String = sms
        .body
        .split("est ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let r = post(
        "coordonnees/confirmer",
        vec![("csrf", csrf.clone()), ("code", code)],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(record(&hub).phones, vec!["06 98 76 54 32".to_string()]);
    let address = |postcode: &str, accord: bool| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("numero", "12 bis".to_string()),
            ("voie", "rue Émile Zola".to_string()),
            ("code_postal", postcode.to_string()),
            ("commune", "Givors".to_string()),
            ("prefere", "courriel".to_string()),
        ];
        if accord {
            f.push(("accord", "oui".into()));
        }
        f
    };
    let r = post("coordonnees", address("6970", true)).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("cinq chiffres"));
    let r = post("coordonnees", address("69700", false)).await.unwrap();
    assert_eq!(r.status(), 400, "a new channel needs her consent");
    let r = post("coordonnees", address("69700", true)).await.unwrap();
    assert_eq!(r.status(), 303);
    let saved = record(&hub);
    assert_eq!(saved.preferred_channel(), pb::ContactChannel::Email);
    assert_eq!(
        saved.consent.clone().unwrap_or_default().source,
        "espace citoyen"
    );
    assert_eq!(saved.addresses[0].street, "rue Émile Zola");
    let (_, details) = page(&http, &hub, &marie_session, "/givors/coordonnees").await;
    assert!(
        details.contains("06 98 76 54 32") && details.contains("marie.martin@example.fr"),
        "{details}"
    );
    // Three codes a quarter of an hour, no more.
    for n in 0..3 {
        let r = post(
            "coordonnees/code",
            vec![
                ("csrf", csrf.clone()),
                ("nouveau", format!("autre{n}@example.fr")),
            ],
        )
        .await
        .unwrap();
        if n < 1 {
            assert_eq!(r.status(), 303);
        } else {
            assert_eq!(r.status(), 429, "the {n}th code");
            assert!(r.headers().contains_key("retry-after"));
        }
    }

    // « Prendre rendez-vous »: a passport appointment on the first day with free slots, in
    // her timeline for the agents; then cancelled, the slot free again.
    let (_, kinds) = page(&http, &hub, &marie_session, "/givors/rendez-vous").await;
    assert!(
        kinds.contains("Passeport ou carte nationale d&#39;identité")
            || kinds.contains("Passeport ou carte nationale d'identité"),
        "{kinds}"
    );
    let (_, days) = page(
        &http,
        &hub,
        &marie_session,
        "/givors/rendez-vous?type=passeport-cni",
    )
    .await;
    let day = days
        .split("jour=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a day with free slots")
        .to_string();
    let (_, times) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/rendez-vous?type=passeport-cni&jour={day}"),
    )
    .await;
    let start = times
        .split("name=\"debut\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a free time")
        .to_string();
    let book = |session: &str, start: &str| {
        http.post(format!("{}/givors/rendez-vous", hub.portal))
            .header("cookie", format!("contacthub_espace={session}"))
            .form(&[
                ("csrf", csrf_of(&times)),
                ("type", "passeport-cni".into()),
                ("jour", day.clone()),
                ("debut", start.to_string()),
            ])
            .send()
    };
    let r = book(&marie_session, &start).await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let (_, booked) = page(&http, &hub, &marie_session, "/givors/rendez-vous?avis=pris").await;
    assert!(
        booked.contains("Votre rendez-vous est pris") && booked.contains("(à venir)"),
        "{booked}"
    );
    assert!(hub
        .timeline_of(GIVORS, &marie_id)
        .iter()
        .any(|e| e.kind == "appointment_booked"));
    // A time that is no slot is refused.
    let r = book(&marie_session, "12345").await.unwrap();
    assert_eq!(r.status(), 409);
    let id = booked
        .split("/givors/rendez-vous/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("her appointment's cancel form")
        .to_string();
    // Paul may not cancel it.
    let r = http
        .post(format!("{}/givors/rendez-vous/{id}/annuler", hub.portal))
        .header("cookie", format!("contacthub_espace={paul_session}"))
        .form(&[("csrf", csrf_of(&his_form))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Nor move it.
    let r = http
        .post(format!("{}/givors/rendez-vous", hub.portal))
        .header("cookie", format!("contacthub_espace={paul_session}"))
        .form(&[
            ("csrf", csrf_of(&his_form)),
            ("type", "passeport-cni".into()),
            ("jour", day.clone()),
            ("debut", start.to_string()),
            ("deplacer", id.clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{}/givors/rendez-vous/{id}/annuler", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .form(&[("csrf", csrf_of(&booked))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, cancelled) = page(&http, &hub, &marie_session, "/givors/rendez-vous").await;
    assert!(cancelled.contains("(annulé)"), "{cancelled}");

    // The written answer, posted: on her request's page with the letter's PDF.
    let answer = hub
        .hub
        .send_answer(
            &hub.scope(GIVORS),
            &commands::ComposeAnswer {
                reference: hers.clone(),
                channel: pb::Channel::Courrier,
                channel_reason: "réponse signée du maire".into(),
                text: "Le lampadaire sera réparé cette semaine.".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    hub.hub
        .mark_printed(&hub.scope(GIVORS), &answer.answer_event_id, "")
        .await
        .unwrap();
    let (_, detail) = page(
        &http,
        &hub,
        &marie_session,
        &format!("/givors/demandes/{hers}"),
    )
    .await;
    assert!(
        detail.contains("Le lampadaire sera réparé cette semaine.")
            && detail.contains("Envoyée par courrier"),
        "{detail}"
    );
    let letter = detail
        .split("href=\"")
        .filter_map(|h| h.split('"').next())
        .find(|h| h.contains("/documents/"))
        .expect("the letter's link")
        .to_string();
    let r = http
        .get(format!("{}{letter}", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF-"));
    let (status, _) = page(&http, &hub, &paul_session, &letter).await;
    assert_eq!(status, 404, "Paul may not read Marie's letter");

    // Without FranceConnect: a one-time code to the phone the town hall holds. An unknown
    // phone and a phone two records share get the same answer, and no SMS.
    let sophie = hub
        .hub
        .create_citizen(
            &hub.scope(GIVORS),
            &commands::CreateCitizen {
                identity: Some(pb::Identity {
                    usage_name: "Roux".into(),
                    first_names: "Sophie".into(),
                    phones: vec!["06 55 44 33 22".into()],
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            },
        )
        .await
        .unwrap()
        .citizen_id;
    let sophies = request_of(
        &hub,
        &sophie,
        "Poubelles non ramassées",
        "services-techniques",
    )
    .await;
    for twin in ["Arnaud", "Bérénice"] {
        hub.hub
            .create_citizen(
                &hub.scope(GIVORS),
                &commands::CreateCitizen {
                    identity: Some(pb::Identity {
                        usage_name: "Lefort".into(),
                        first_names: twin.into(),
                        phones: vec!["04 78 00 11 22".into()],
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                },
            )
            .await
            .unwrap();
    }
    let ask_code = |to: &str| {
        http.post(format!("{}/givors/connexion/code", hub.portal))
            .form(&[("destination", to)])
            .send()
    };
    let before = gateway.sent().len();
    for nobody in ["06 00 00 00 01", "04 78 00 11 22"] {
        let r = ask_code(nobody).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Si la mairie connaît ces coordonnées"));
    }
    let r = ask_code("0655443322").await.unwrap();
    assert_eq!(r.status(), 200);
    // The code leaves apart from the answer: the one SMS that comes is hers (none went to
    // the unknown or shared phones).
    let started = std::time::Instant::now();
    while gateway.sent().len() == before && started.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let sent = gateway.sent();
    assert_eq!(
        sent.len(),
        before + 1,
        "no SMS to an unknown or shared phone"
    );
    let sms = sent.last().cloned().expect("her code");
    assert_eq!(sms.to, "+33655443322");
    let code: String = sms
        .body
        .split("est ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let confirm = |code: String| {
        http.post(format!("{}/givors/connexion/code/confirmer", hub.portal))
            .form(&[("destination", "0655443322".to_string()), ("code", code)])
            .send()
    };
    let r = confirm("999999".replace('9', if code.starts_with('9') { "8" } else { "9" }))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = confirm(code).await.unwrap();
    assert_eq!(r.status(), 303);
    let sophie_session = set_cookie(&r, "contacthub_espace").expect("signed in with the code");
    let (_, home) = page(&http, &hub, &sophie_session, "/givors/").await;
    assert!(
        home.contains("Connecté : Sophie") && home.contains(&sophies) && !home.contains(&hers),
        "{home}"
    );
    let line = hub
        .timeline_of(GIVORS, &sophie)
        .into_iter()
        .find(|e| e.kind == "account_linked")
        .expect("her account in her timeline");
    assert_eq!(
        line.facts.unwrap_or_default().account_basis,
        pb::account_linked::Basis::OneTimeCode as i32
    );

    // The accueil books for Paul at the counter from the command line; the voirie may not
    // book a passport appointment nor the accueil a CCAS one; the day's agenda shows it to
    // the accueil, not to the voirie; then it is cancelled.
    let (ok, slots) = hub.cli_as(
        &bin,
        "accueil",
        &[
            "appointment",
            "slots",
            "--tenant",
            GIVORS,
            "--service",
            "etat-civil",
            "--days",
            "14",
        ],
    );
    assert!(ok, "{slots}");
    let first = slots.lines().next().expect("a free slot").to_string();
    let at_time: String = first.chars().take(16).collect();
    assert!(first.contains("place"), "{first}");
    let (ok, refused) = hub.cli_as(
        &bin,
        "voirie",
        &[
            "appointment",
            "book",
            "--tenant",
            GIVORS,
            "--service",
            "passeport-cni",
            "--citizen",
            &paul_id,
            "--at-time",
            &at_time,
        ],
    );
    assert!(!ok && refused.contains("autre service"), "{refused}");
    let (ok, refused) = hub.cli_as(
        &bin,
        "accueil",
        &[
            "appointment",
            "slots",
            "--tenant",
            GIVORS,
            "--service",
            "ccas",
        ],
    );
    assert!(ok, "slots are no one's data: {refused}");
    let ccas_first: String = refused.chars().take(16).collect();
    let (ok, refused) = hub.cli_as(
        &bin,
        "accueil",
        &[
            "appointment",
            "book",
            "--tenant",
            GIVORS,
            "--service",
            "ccas",
            "--citizen",
            &paul_id,
            "--at-time",
            &ccas_first,
        ],
    );
    assert!(!ok && refused.contains("autre service"), "{refused}");
    let (ok, booked) = hub.cli_as(
        &bin,
        "accueil",
        &[
            "appointment",
            "book",
            "--tenant",
            GIVORS,
            "--service",
            "passeport-cni",
            "--citizen",
            &paul_id,
            "--at-time",
            &at_time,
        ],
    );
    assert!(
        ok && booked.contains("pris") && booked.contains(&paul_id),
        "{booked}"
    );
    let id = booked
        .split('[')
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("its id")
        .to_string();
    let day = format!("{}-{}-{}", &at_time[6..10], &at_time[3..5], &at_time[0..2]);
    let (ok, agenda) = hub.cli_as(
        &bin,
        "accueil",
        &["appointment", "list", "--tenant", GIVORS, "--day", &day],
    );
    assert!(ok && agenda.contains(&id), "{agenda}");
    let (ok, theirs) = hub.cli_as(
        &bin,
        "voirie",
        &["appointment", "list", "--tenant", GIVORS, "--day", &day],
    );
    assert!(ok && !theirs.contains(&id), "{theirs}");
    let (ok, cancelled) = hub.cli_as(
        &bin,
        "accueil",
        &["appointment", "cancel", "--tenant", GIVORS, &id],
    );
    assert!(ok && cancelled.contains("annulé"), "{cancelled}");

    // The same on the desk: the accueil books a free time for Paul, sees it in the day's
    // agenda and cancels it; the voirie's agenda does not show it.
    let (status, agenda) = accueil
        .get(&format!(
            "/rendez-vous?commune={GIVORS}&jour={day}&type=passeport-cni"
        ))
        .await;
    assert_eq!(status, 200, "{agenda}");
    let start = agenda
        .split("name=\"debut\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a free time on the desk")
        .to_string();
    let r = accueil
        .http
        .post(format!("{}/rendez-vous", accueil.base))
        .header("cookie", accueil.cookie.clone())
        .form(&[
            ("csrf", csrf_of(&agenda)),
            ("commune", GIVORS.to_string()),
            ("jour", day.clone()),
            ("type", "passeport-cni".to_string()),
            ("debut", start),
            ("fiche", paul_id.clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let (_, agenda) = accueil
        .get(&format!("/rendez-vous?commune={GIVORS}&jour={day}"))
        .await;
    assert!(
        agenda.contains("Rendez-vous pris.") || agenda.contains(&paul_id),
        "{agenda}"
    );
    assert!(agenda.contains(&paul_id), "{agenda}");
    let (_, theirs) = voirie
        .get(&format!("/rendez-vous?commune={GIVORS}&jour={day}"))
        .await;
    assert!(!theirs.contains(&paul_id), "{theirs}");
    let id = agenda
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("its cancel form")
        .to_string();
    let r = accueil
        .http
        .post(format!("{}/rendez-vous/annulation", accueil.base))
        .header("cookie", accueil.cookie.clone())
        .form(&[
            ("csrf", csrf_of(&agenda)),
            ("commune", GIVORS.to_string()),
            ("jour", day.clone()),
            ("id", id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Signing out: a foreign link is refused; the button ends the session and sends the
    // browser to FranceConnect's end-session endpoint, which sends it back.
    let (status, _) = page(
        &http,
        &hub,
        &marie_session,
        "/givors/deconnexion?jeton=autre",
    )
    .await;
    assert_eq!(status, 403);
    let token = home_logout_token(&page(&http, &hub, &marie_session, "/givors/").await.1);
    let r = http
        .get(format!("{}/givors/deconnexion?jeton={token}", hub.portal))
        .header("cookie", format!("contacthub_espace={marie_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_fc = location(&r);
    assert!(
        to_fc.starts_with(&format!("{}/session/end?", issuer.url)),
        "{to_fc}"
    );
    let r = http.get(&to_fc).send().await.unwrap();
    assert_eq!(issuer.logouts(), 1);
    assert!(location(&r).starts_with(&format!("{}/givors/deconnexion/retour", hub.portal)));
    let (_, home) = page(&http, &hub, &marie_session, "/givors/").await;
    assert!(home.contains("S'identifier avec FranceConnect") && !home.contains(&hers));

    // Marie signs in on six browsers: five stay signed in, the first one's session ends.
    let mut browsers = Vec::new();
    for _ in 0..6 {
        issuer.sign_in_next_as(marie());
        browsers.push(sign_in(&http, &hub).await.0);
    }
    let signed_in = |session: String| {
        let (http, hub) = (&http, &hub);
        async move {
            page(http, hub, &session, "/givors/")
                .await
                .1
                .contains("Connecté : Marie")
        }
    };
    assert!(!signed_in(browsers[0].clone()).await, "the oldest ended");
    for b in &browsers[1..] {
        assert!(signed_in(b.clone()).await);
    }

    // Paul's data erased: his account ends with his record, his session with it, and the
    // identity FranceConnect gave for him with the key that sealed it.
    let sealing = |hub: &TestHub| {
        let id = format!("{paul_proposal_key}{}", hub.keys.suffix());
        let (keys, id) = (hub.keys.clone(), id);
        async move {
            matches!(
                contacthub_core::seal::Keys::key(keys.as_ref(), &id),
                contacthub_core::seal::Lookup::Live(_)
            )
        }
    };
    assert!(sealing(&hub).await, "the proposal's key lives until then");
    hub.hub
        .erase_citizen(
            &hub.hub.access().dpo_scope(Some("dpo"), GIVORS).unwrap(),
            &commands::EraseCitizen {
                citizen_id: paul_id.clone(),
                reason: "demande de l'intéressé".into(),
            },
        )
        .await
        .unwrap();
    assert!(!sealing(&hub).await, "the proposal's key destroyed");
    let (_, home) = page(&http, &hub, &paul_session, "/givors/").await;
    assert!(
        home.contains("plus rattaché à une fiche") && !home.contains(&his),
        "{home}"
    );
    let (_, home) = page(&http, &hub, &paul_session, "/givors/").await;
    assert!(
        !home.contains("Connecté :") && !home.contains("plus rattaché"),
        "{home}"
    );
    hub.stop().await;
}

/// The token of the sign-out link of a signed-in page.
fn home_logout_token(page: &str) -> String {
    page.split("deconnexion?jeton=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a sign-out link")
        .to_string()
}

on_every_backend!(space);

/// The demo's FranceConnect (`serve --demo` only) lists the demo's people: Marie Durand signs
/// in and sees her requests; a person the town hall does not know is told it will link her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_signs_its_people_in_with_its_own_franceconnect() {
    let dir = tempfile::tempdir().unwrap();
    let serve = spawn_serve(
        &contacthub_bin!(),
        &dir.path().join("data"),
        &["--demo".as_ref(), "--demo-people".as_ref(), "30".as_ref()],
    );
    let http = no_redirects();
    // Who the demo's FranceConnect offers, once the demo is loaded: links to pick from.
    let choices = |page: &str| -> Vec<String> {
        page.split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .filter(|h| h.contains("/choisir?"))
            .map(|h| h.replace("&amp;", "&"))
            .collect()
    };
    let sign_in_as = |pick: fn(&[String], &str) -> Option<String>| {
        let (http, portal) = (http.clone(), serve.portal.clone());
        async move {
            for _ in 0..240 {
                let r = http
                    .get(format!("{portal}/givors/connexion"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303);
                let state = set_cookie(&r, "contacthub_fc").unwrap();
                let page = http
                    .get(location(&r))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let Some(link) = pick(&choices(&page), &page) else {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                };
                let r = http.get(format!("{portal}{link}")).send().await.unwrap();
                let r = http
                    .get(location(&r))
                    .header("cookie", format!("contacthub_fc={state}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 303);
                let session = set_cookie(&r, "contacthub_espace").expect("signed in");
                return http
                    .get(format!("{portal}/givors/"))
                    .header("cookie", format!("contacthub_espace={session}"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
            }
            panic!("the demo's people never appeared");
        }
    };
    // Marie Durand, the demo's first person, once the demo loaded her.
    let home = sign_in_as(|links, page| {
        (links.len() > 1 && page.contains("Marie DURAND")).then(|| links[0].clone())
    })
    .await;
    assert!(
        home.contains("Connecté : Marie") && home.contains("Mes demandes"),
        "{home}"
    );
    assert!(home.contains("GIV-D-"), "{home}");
    // She wrote to the town hall from her space.
    assert!(home.contains("Trottoir abîmé"), "{home}");
    // The last one is nobody's record.
    let home =
        sign_in_as(|links, _| (links.len() > 1).then(|| links[links.len() - 1].clone())).await;
    assert!(
        home.contains("Votre compte sera rattaché par la mairie"),
        "{home}"
    );
    stop(serve);
}

/// `serve --demo` over a log that already holds a town hall's records (a demo flag left in a
/// real hub's command line) loads nothing and serves no demo FranceConnect: with it, anyone
/// could sign in as anyone. On a trial hub started with `--demo`, it stays on at restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_franceconnect_is_only_for_the_demo_log() {
    let dir = tempfile::tempdir().unwrap();
    let http = no_redirects();
    let discovery = |portal: &str| {
        format!("{portal}/demo-franceconnect/api/v2/.well-known/openid-configuration")
    };
    let real = dir.path().join("real");
    let serve = spawn_serve(&contacthub_bin!(), &real, &[]);
    let (ok, out) = serve.cli(&[
        "citizen",
        "create",
        "--tenant",
        GIVORS,
        "--usage-name",
        "Durand",
        "--first-names",
        "Marie",
        "--birth-date",
        "1980-02-01",
    ]);
    assert!(ok, "{out}");
    stop(serve);
    let serve = spawn_serve(&contacthub_bin!(), &real, &["--demo".as_ref()]);
    let r = http.get(discovery(&serve.portal)).send().await.unwrap();
    assert_eq!(r.status(), 404, "the demo's FranceConnect on a real log");
    let r = http
        .get(format!("{}/givors/connexion", serve.portal))
        .send()
        .await
        .unwrap();
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert!(
        !to.as_deref()
            .unwrap_or_default()
            .contains("demo-franceconnect"),
        "{to:?}"
    );
    stop(serve);
    // A trial hub: the demo's log, at its first start and after a restart.
    let trial = dir.path().join("trial");
    for _ in 0..2 {
        let serve = spawn_serve(
            &contacthub_bin!(),
            &trial,
            &["--demo".as_ref(), "--demo-people".as_ref(), "5".as_ref()],
        );
        let r = http.get(discovery(&serve.portal)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        stop(serve);
    }
}

/// Stops a server child.
fn stop(mut serve: ServeChild) {
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}

/// Two people racing for the last place of a slot (the CCAS receives one person at a time):
/// one has it, the other is told it was just taken — on both log backends.
async fn a_slot_goes_to_one(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let scope = hub.scope(GIVORS);
    let mut people = Vec::new();
    for (first, family) in [("Alice", "Amrani"), ("Bruno", "Berthet")] {
        record(&hub, family, "", first, "1970-01-01").await;
        let pivot = contacthub_core::account::Pivot {
            given_names: first.into(),
            family_name: family.into(),
            birth_date: "1970-01-01".into(),
            ..Default::default()
        };
        people.push(
            hub.hub
                .demo_sign_in(&scope, &pivot, &format!("sub-{first}"))
                .await
                .unwrap(),
        );
    }
    let now = hub.hub.now();
    let slot = hub.hub.free_slots(GIVORS, "ccas", now, 28).unwrap()[0];
    assert_eq!(slot.left, 1);
    let (a, b) = tokio::join!(
        hub.hub
            .book_my_appointment(&people[0], "ccas", slot.start_us),
        hub.hub
            .book_my_appointment(&people[1], "ccas", slot.start_us),
    );
    let won = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(won, 1, "{a:?} {b:?}");
    let lost = [a, b]
        .into_iter()
        .find_map(Result::err)
        .expect("one refused");
    assert!(matches!(lost, contacthub_app::Error::Conflict(_)), "{lost}");
    assert!(!hub
        .hub
        .free_slots(GIVORS, "ccas", now, 28)
        .unwrap()
        .iter()
        .any(|f| f.start_us == slot.start_us));
    hub.stop().await;
}

on_every_backend!(a_slot_goes_to_one);

/// Marie Dupont signs in where 210 Mariette Dupont came before her (the search brings them
/// in by the start of her given name): her one exact record is found among them and linked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exact_record_is_found_among_many_alike() {
    let hub = TestHub::start(&Backend::Embedded).await;
    for _ in 0..210 {
        record(&hub, "Dupont", "", "Mariette", "1990-01-01").await;
    }
    let hers = record(&hub, "Dupont", "", "Marie", "1980-06-15").await;
    let pivot = contacthub_core::account::Pivot {
        given_names: "Marie".into(),
        family_name: "Dupont".into(),
        birth_date: "1980-06-15".into(),
        ..Default::default()
    };
    let marie = hub
        .hub
        .demo_sign_in(&hub.scope(GIVORS), &pivot, "sub-marie")
        .await
        .unwrap();
    assert_eq!(
        hub.hub.standing(&marie).unwrap(),
        Some(contacthub_app::space::Standing::Linked(hers))
    );
    hub.stop().await;
}
