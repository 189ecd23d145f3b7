//! The élus' permanences on the web desk, on both log backends: an élu records a person met
//! (with what was promised and the service that must act); it is a contact in the person's
//! timeline and a request in the service's worklist; sent again with its key it is still one;
//! the élu sees the people they met and where the requests stand, nothing else; an agent,
//! another élu and another commune's élu are refused; bad input is refused in French.

use contacthub_app::auth::{token_hash, Access};
use contacthub_app::commands::RequestQuery;
use contacthub_core::pb;
use contacthub_tests::*;
use reqwest::StatusCode;

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='maire'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
         [[agent]]\nid='adjointe'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
         [[agent]]\nid='maire-grigny'\ntoken_sha256='{}'\ntenants=['69096']\nrole='elu'\n\
         [[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='ccas-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n",
        token_hash("elu"),
        token_hash("adjointe"),
        token_hash("grigny"),
        token_hash("accueil"),
        token_hash("voirie"),
        token_hash("ccas"),
    ))
    .unwrap()
}

/// What the élu's page sends for a meeting (its script: `envoi=script`).
fn meeting<'a>(
    key: &'a str,
    name: &'a str,
    phone: &'a str,
    service: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("lieu", "Maison du quartier des Vernes"),
        ("nom", name),
        ("telephone", phone),
        ("motif", "services-techniques"),
        ("objet", "Lampadaire éteint rue Jean-Jaurès"),
        ("promesse", "Le faire réparer avant Noël"),
        ("service", service),
        ("cle", key),
        ("envoi", "script"),
    ]
}

/// `agent` posts `form` to the permanence of `tenant`: status and body.
async fn post(agent: &WebAgent, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let (_, page) = agent.get("/horaires").await;
    let csrf = csrf_of(&page);
    let mut form = form.to_vec();
    form.push(("csrf", &csrf));
    let r = agent
        .http
        .post(format!("{}/permanence/{tenant}/rencontres", agent.base))
        .header("cookie", &agent.cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap_or_default())
}

fn meetings_of(hub: &TestHub, citizen: &str) -> Vec<pb::TimelineEntry> {
    hub.timeline_of(GIVORS, citizen)
        .into_iter()
        .filter(|e| e.facts.as_ref().is_some_and(|f| f.permanence))
        .collect()
}

async fn a_permanence(backend: Backend) {
    let hub = TestHub::start_with_access(&backend, agents()).await;
    hub.register_marie().await;
    let elu = WebAgent::sign_in(&hub.web, "elu").await;
    let (status, page) = elu.get("/permanence?commune=69091").await;
    assert!(status.is_success(), "{status}: {page}");
    assert!(page.contains("Aucune rencontre enregistrée."), "{page}");

    // The élu met Marie Durand (known by her phone) and promised a repair by the voirie.
    let form = meeting("k-1", "Marie Durand", "06 12 34 56 78", "voirie");
    let (status, body) = post(&elu, GIVORS, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["ok"], true, "{body}");
    let line = answer["ligne"].as_str().unwrap();
    assert!(line.contains("Marie Durand"), "{line}");
    assert!(
        line.contains("pour Voirie : reçue, réponse promise au plus tard le"),
        "{line}"
    );
    // The page's script sends it again (no answer heard): still one meeting, one request.
    let (status, again) = post(&elu, GIVORS, &form).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let met = meetings_of(&hub, "GIV-000900");
    assert_eq!(met.len(), 1, "{met:#?}");
    assert_eq!(met[0].agent_id, "maire");
    let born = hub
        .store
        .contact_requests(GIVORS, &met[0].event_id)
        .unwrap();
    assert_eq!(born.len(), 1, "one request: {born:?}");
    let reference = born[0].clone();
    assert!(line.contains(&reference), "{line}");

    // In her timeline, as the accueil reads it.
    let accueil = WebAgent::sign_in(&hub.web, "accueil").await;
    let (_, timeline) = accueil.get("/citoyens/69091/GIV-000900").await;
    assert!(
        timeline.contains("Rencontre à la permanence d&#39;un élu (Maison du quartier des Vernes)"),
        "{timeline}"
    );
    // In the voirie's worklist, requested by her.
    let voirie = hub
        .hub
        .list_requests(
            &hub.hub.access().scope(Some("voirie"), GIVORS).unwrap(),
            &RequestQuery::default(),
        )
        .unwrap();
    let r = voirie
        .iter()
        .find(|r| r.reference == reference)
        .expect("the request in the voirie's worklist");
    assert_eq!(r.requesters, vec!["GIV-000900".to_string()]);
    assert_eq!(r.service, "voirie");
    assert_eq!(r.subject, "Lampadaire éteint rue Jean-Jaurès");
    assert!(r.due_at.is_some());

    // Someone the hub does not know, with nothing to follow: a contact « à rattacher ».
    let (status, body) = post(&elu, GIVORS, &meeting("k-2", "Jean Martin", "", "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = elu.get("/permanence?commune=69091").await;
    assert!(page.contains("Jean Martin"), "{page}");
    assert!(page.contains("Sans suite demandée à un service."), "{page}");
    assert!(
        page.find("Jean Martin") < page.find("Marie Durand"),
        "newest first: {page}"
    );

    // A phone alone does not tell the élu whose it is; a reference quoted in what the élu
    // wrote does not put it into that request.
    let mut quoting = meeting("k-6", "", "06 12 34 56 78", "");
    let promise = format!("Voir où en est {reference}");
    quoting.retain(|(k, _)| *k != "promesse");
    quoting.push(("promesse", &promise));
    let (status, body) = post(&elu, GIVORS, &quoting).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let line = answer["ligne"].as_str().unwrap();
    assert!(!line.contains("Durand"), "{line}");
    assert!(line.contains("(06 12 34 56 78)"), "{line}");
    assert!(line.contains("Sans suite demandée à un service."), "{line}");
    let quoted = meetings_of(&hub, "GIV-000900")
        .into_iter()
        .find(|e| e.event_id != met[0].event_id)
        .expect("the second meeting with her");
    assert!(hub
        .store
        .contact_requests(GIVORS, &quoted.event_id)
        .unwrap()
        .is_empty());
    // A confidential service's request: the élu follows where it stands, as the accueil does.
    let (status, body) = post(
        &elu,
        GIVORS,
        &meeting("k-7", "Marie Durand", "06 12 34 56 78", "ccas"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("pour Centre communal d&#39;action sociale (CCAS) : reçue"),
        "{body}"
    );

    // What the élu may not do or see.
    let (status, _) = elu.get("/citoyens/69091/GIV-000900").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an élu reads no timeline");
    let (status, _) = elu.get(&format!("/demandes/69091/{reference}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "nor a request's page");
    let other = WebAgent::sign_in(&hub.web, "adjointe").await;
    let (_, theirs) = other.get("/permanence?commune=69091").await;
    assert!(
        theirs.contains("Aucune rencontre enregistrée."),
        "another élu's: {theirs}"
    );
    assert!(!theirs.contains("Marie Durand"), "{theirs}");
    let (status, body) = post(&accueil, GIVORS, &meeting("k-3", "Marie Durand", "", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an agent: {body}");
    let (status, body) = post(
        &WebAgent::sign_in(&hub.web, "voirie").await,
        GIVORS,
        &meeting("k-3", "Marie Durand", "", ""),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a service's agent: {body}");
    let grigny = WebAgent::sign_in(&hub.web, "grigny").await;
    let (status, body) = post(&grigny, GIVORS, &meeting("k-4", "Marie Durand", "", "")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another commune's élu: {body}"
    );
    let (status, _) = grigny.get("/permanence?commune=69091").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The same key for something else is refused, and nothing changes.
    let (status, body) = post(
        &elu,
        GIVORS,
        &meeting("k-1", "Marie Durand", "06 12 34 56 78", "ccas"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Bad input, named in French; nothing recorded.
    for (field, value, says) in [
        ("telephone", "12", "n'est pas un numéro de téléphone"),
        ("courriel", "marie@", "n'est pas une adresse électronique"),
        ("service", "jardins", "n'est pas un service de Givors"),
        ("objet", " ", "indiquez le motif de la rencontre"),
        ("quand", "demain", "l'heure de la rencontre est illisible"),
        ("quand", "4102444800000", "dans le futur"),
        ("cle", "maire/k-1", "lettres, chiffres et tirets"),
    ] {
        let mut form = meeting("k-bad", "Marie Durand", "", "");
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let (status, body) = post(&elu, GIVORS, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{field}: {body}"
        );
    }
    let long = "x".repeat(2_001);
    let mut form = meeting("k-long", "Marie Durand", "", "");
    form.retain(|(k, _)| *k != "promesse");
    form.push(("promesse", &long));
    let (status, body) = post(&elu, GIVORS, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("la promesse dépasse 2000 caractères"),
        "{body}"
    );
    assert_eq!(meetings_of(&hub, "GIV-000900").len(), 3);

    // Without the script: the form posts and comes back to the page.
    let (_, page) = elu.get("/permanence?commune=69091").await;
    let mut plain = meeting("k-5", "Marie Durand", "06 12 34 56 78", "");
    plain.retain(|(k, _)| *k != "envoi");
    let csrf = csrf_of(&page);
    plain.push(("csrf", &csrf));
    let r = elu
        .http
        .post(format!("{}/permanence/69091/rencontres", elu.base))
        .header("cookie", &elu.cookie)
        .form(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/permanence?commune=69091#rencontres"
    );
    assert_eq!(meetings_of(&hub, "GIV-000900").len(), 4);
}

on_every_backend!(a_permanence);
