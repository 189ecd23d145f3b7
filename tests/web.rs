//! The web desk over real HTTP on a free port: signing in, each agent kept to its communes and
//! role on every page and action (another commune's citizen, contact, worklist, dashboard:
//! 403, nothing of it shown), CSRF on every form, session cookie flags and security headers,
//! a visit recorded from the citizen page, the dashboard page equal to GetDashboard, the open
//! desk's banner.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::{demo, pb, tenant::Tenants};
use contacthub_tests::*;
use reqwest::StatusCode;

/// An agent's browser: its session cookie.
struct Desk {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Desk {
    async fn sign_in(
        base: &str,
        token: &str,
    ) -> (StatusCode, Option<Desk>, reqwest::header::HeaderMap) {
        let http = client();
        let r = http
            .post(format!("{base}/connexion"))
            .form(&[("token", token), ("suite", "/")])
            .send()
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        (
            status,
            cookie.map(|cookie| Desk {
                http,
                base: base.to_string(),
                cookie,
            }),
            headers,
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let status = r.status();
        let body = r.text().await.unwrap();
        (status, if location.is_empty() { body } else { location })
    }
}

/// The CSRF token of the first form of a page.
fn csrf(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..].split('"').next().unwrap().to_string()
}

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-givors'\ntoken_sha256='{}'\ntenants=['69091']\ncatalogue=true\n\
         [[agent]]\nid='maire-givors'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
         [[agent]]\nid='voirie-givors'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n",
        token_hash("givors"),
        token_hash("elu"),
        token_hash("voirie")
    ))
    .unwrap()
}

async fn demo_hub(access: Access) -> TestHub {
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 4,
        ..Default::default()
    };
    let events: Vec<pb::Event> = demo::events(&cfg, &Tenants::builtin()).collect();
    hub.publish(&events).await;
    hub.settle().await;
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_sees_only_their_commune_and_role() {
    let hub = demo_hub(agents()).await;
    let web = hub.web.clone();
    // Not signed in: to the sign-in page, then back.
    let r = client()
        .get(format!("{web}/citoyens?q=durand"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/connexion?suite=%2Fcitoyens%3Fq%3Ddurand"
    );
    let (status, bad, _) = Desk::sign_in(&web, "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(bad.is_none());
    let (status, desk, headers) = Desk::sign_in(&web, "givors").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let desk = desk.unwrap();

    // Givors: Marie Durand is found and shown, with security headers.
    let r = desk
        .http
        .get(format!("{web}/citoyens?q=durand"))
        .header("cookie", &desk.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let page = r.text().await.unwrap();
    assert!(page.contains("lang=\"fr\""));
    assert!(page.contains("/citoyens/69091/GIV-000001"), "{page}");
    let (status, marie) = desk.get("/citoyens/69091/GIV-000001").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        marie.contains("Marie DURAND") && marie.contains("Historique"),
        "{marie}"
    );

    // Grigny's citizen, contact, worklist, dashboard: refused, nothing of them shown.
    let grigny = hub.store.citizen("69096", "GRI-000001").unwrap().unwrap();
    let contact = hub
        .store
        .timeline("69096", "GRI-000001", &Default::default())
        .unwrap()
        .entries[0]
        .event_id
        .clone();
    for path in [
        "/citoyens?q=durand&commune=69096".to_string(),
        "/citoyens/69096/GRI-000001".to_string(),
        format!("/contacts/69096/{contact}"),
        "/citoyens/69096/GRI-000001/flux".to_string(),
        "/demandes?commune=69096".to_string(),
        "/tableau-de-bord?commune=69096".to_string(),
        "/tableau-de-bord.csv?commune=69096".to_string(),
        "/courrier?commune=69096".to_string(),
        "/courrier/69096/GRI-2026-000001".to_string(),
        "/courrier/69096/GRI-2026-000001/accuse.pdf".to_string(),
        "/courrier/69096/GRI-2026-000001/scans/0".to_string(),
        format!("/contacts/69096/{contact}/pieces/0"),
        "/a-rattacher?commune=69096".to_string(),
        "/doublons?commune=69096".to_string(),
        "/catalogue?commune=69096".to_string(),
        "/demandes/69096/GRI-D-2026-000001".to_string(),
    ] {
        let (status, body) = desk.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            !body.contains(&grigny.display_name) && !body.contains("GRI-0"),
            "{path}: {body}"
        );
    }
    // Grigny's contact under Givors's name is simply not there.
    let (status, _) = desk.get(&format!("/contacts/69091/{contact}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A form without its CSRF token writes nothing; with it, the visit is recorded.
    let before = hub
        .store
        .citizen("69091", "GIV-000001")
        .unwrap()
        .unwrap()
        .entries;
    let (status, _) = desk
        .post(
            "/citoyens/69091/GIV-000001/visites",
            &[("subject", "Renouvellement de passeport")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = desk
        .post(
            "/citoyens/69091/GIV-000001/visites",
            &[("subject", "x"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        hub.store
            .citizen("69091", "GIV-000001")
            .unwrap()
            .unwrap()
            .entries,
        before
    );
    let token = csrf(&marie);
    let (status, to) = desk
        .post(
            "/citoyens/69091/GIV-000001/visites",
            &[("subject", "Renouvellement de passeport"), ("csrf", &token)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (_, after) = desk.get(&to).await;
    assert!(after.contains("Visite enregistrée") && after.contains("Renouvellement de passeport"));
    assert_eq!(
        hub.store
            .citizen("69091", "GIV-000001")
            .unwrap()
            .unwrap()
            .entries,
        before + 1
    );
    // Behind TLS (a reverse proxy says so), the cookie is Secure.
    let r = client()
        .post(format!("{web}/connexion"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", "givors")])
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));

    // An élu: the dashboard, nothing personal.
    let (_, elu, _) = Desk::sign_in(&web, "elu").await;
    let elu = elu.unwrap();
    for path in [
        "/citoyens?q=durand",
        "/citoyens/69091/GIV-000001",
        "/demandes",
    ] {
        let (status, body) = elu.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!body.to_lowercase().contains("durand"), "{path}");
    }
    let (status, dashboard) = elu.get("/tableau-de-bord?de=2024-11&a=2026-10").await;
    assert_eq!(status, StatusCode::OK);
    // The page's figures are GetDashboard's.
    let d = hub
        .hub
        .dashboard(
            &hub.scope(GIVORS),
            &contacthub_app::commands::DashboardQuery {
                from_month: "2024-11".into(),
                to_month: "2026-10".into(),
            },
        )
        .unwrap();
    let whole = d.rows[0].figures.unwrap();
    assert!(whole.contacts_received > 0);
    for (label, value) in [
        ("Contacts reçus", whole.contacts_received.to_string()),
        ("Demandes ouvertes", whole.requests_opened.to_string()),
        ("Demandes répondues", whole.requests_answered.to_string()),
    ] {
        let shown = format!("data-figure=\"{label}\">{value}<");
        assert!(dashboard.contains(&shown), "{shown} in {dashboard}");
    }
    let r = elu
        .http
        .get(format!("{web}/tableau-de-bord.csv?de=2024-11&a=2026-10"))
        .header("cookie", &elu.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert_eq!(
        csv.trim_start_matches('\u{feff}'),
        contacthub_core::dashboard::csv(&d)
    );

    // Signing out ends the session.
    let token = csrf(&marie);
    let (status, _) = desk.post("/deconnexion", &[("csrf", &token)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = desk.get("/citoyens").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_desk_says_so() {
    let hub = demo_hub(Access::Open).await;
    let r = client()
        .get(format!("{}/connexion", hub.web))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Accès ouvert"));
    let (status, desk, _) = Desk::sign_in(&hub.web, "").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = desk.unwrap().get("/citoyens/69096/GRI-000001").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Accès ouvert"), "{page}");
    hub.stop().await;
}

/// gRPC-Web on the gRPC port: a browser's framing over HTTP/1.1, answered like gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_api_speaks_grpc_web() {
    use prost::Message;
    let hub = demo_hub(Access::Open).await;
    let call = |ask: pb::GetDashboardRequest| {
        let url = format!(
            "http://{}/contacthub.v1.DashboardService/GetDashboard",
            hub.addr
        );
        async move {
            let body = ask.encode_to_vec();
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
            framed.extend_from_slice(&body);
            let r = client()
                .post(url)
                .header("content-type", "application/grpc-web+proto")
                .header("x-grpc-web", "1")
                .body(framed)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()["content-type"], "application/grpc-web+proto");
            // An error comes as headers only ("trailers-only"), an answer with a trailer frame.
            let status = r
                .headers()
                .get("grpc-status")
                .map(|s| format!("grpc-status:{}", s.to_str().unwrap()));
            let bytes = r.bytes().await.unwrap().to_vec();
            // Frames: flag (0 data, 0x80 trailers), length, payload.
            let (mut message, mut trailers) = (None, status.unwrap_or_default());
            let mut rest = &bytes[..];
            while rest.len() >= 5 {
                let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
                let payload = &rest[5..5 + len];
                if rest[0] & 0x80 == 0 {
                    message = Some(pb::Dashboard::decode(payload).unwrap());
                } else {
                    trailers = String::from_utf8_lossy(payload).into_owned();
                }
                rest = &rest[5 + len..];
            }
            (message, trailers)
        }
    };
    let ask = pb::GetDashboardRequest {
        tenant: "69091".into(),
        from_month: "2025-11".into(),
        to_month: "2026-10".into(),
    };
    let (got, trailers) = call(ask.clone()).await;
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    let mut expected = hub
        .hub
        .dashboard(
            &hub.scope(GIVORS),
            &contacthub_app::commands::DashboardQuery {
                from_month: ask.from_month.clone(),
                to_month: ask.to_month.clone(),
            },
        )
        .unwrap();
    let mut got = got.unwrap();
    // Computed at a different instant.
    expected.computed_at = None;
    got.computed_at = None;
    assert_eq!(got, expected);
    let (_, trailers) = call(pb::GetDashboardRequest {
        from_month: "novembre".into(),
        ..ask
    })
    .await;
    assert!(trailers.contains("grpc-status:3"), "{trailers}");
    hub.stop().await;
}

/// Contacts waiting for their citizen are attached, duplicates merged with a reason and
/// separated again, a contact linked to a request, the catalogue written, searched, revised,
/// linked into a written answer and withdrawn: all from the desk's forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_keep_records_and_the_catalogue_from_the_desk() {
    let hub = demo_hub(agents()).await;
    let t0 = at(2026, 9, 1, 9, 0);
    // Two records share a phone: a call from it waits for an agent.
    hub.publish(&[
        register(GIVORS, "GIV-000101", "Paul Lenoir", "06 55 55 55 01", t0),
        register(GIVORS, "GIV-000102", "Rose Lenoir", "06 55 55 55 01", t0),
    ])
    .await;
    hub.settle().await;
    let waiting = call(GIVORS, "shared-1", "06 55 55 55 01", t0 + 3_600_000_000);
    // A provisional record for an unknown number, later registered: a duplicate proposal.
    let unknown = call(GIVORS, "new-1", "06 55 55 55 09", t0 + 7_200_000_000);
    hub.publish(&[waiting.clone(), unknown.clone()]).await;
    hub.settle().await;
    hub.publish(&[register(
        GIVORS,
        "GIV-000103",
        "Lucie Blanchard",
        "06 55 55 55 09",
        t0 + 10_800_000_000,
    )])
    .await;
    hub.settle().await;
    let (_, desk, _) = Desk::sign_in(&hub.web, "givors").await;
    let desk = desk.unwrap();

    let (status, page) = desk.get("/a-rattacher").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Paul Lenoir") && page.contains("Rose Lenoir"),
        "{page}"
    );
    // Each candidate with what tells them apart and a link to compare; each radio button
    // with its own label.
    assert!(page.contains("voir la fiche"), "{page}");
    assert!(
        page.contains("1 contact") || page.contains(" contacts"),
        "{page}"
    );
    assert!(
        page.contains("<label for=\"w1-GIV-000101\">Paul Lenoir (GIV-000101)</label>"),
        "{page}"
    );
    let token = csrf(&page);
    let (status, _) = desk
        .post(
            &format!("/a-rattacher/69091/{}", waiting.event_id),
            &[("csrf", &token), ("citizen", "GIV-000102")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let entry = hub
        .store
        .applied_entry(GIVORS, &waiting.event_id)
        .unwrap()
        .unwrap();
    assert_eq!(entry.citizen_id, "GIV-000102");

    let (_, page) = desk.get("/doublons").await;
    assert!(page.contains("Lucie Blanchard"), "{page}");
    let provisional = hub
        .store
        .applied_entry(GIVORS, &unknown.event_id)
        .unwrap()
        .unwrap()
        .citizen_id;
    // A merge needs a reason.
    let (status, _) = desk
        .post(
            "/doublons/69091/fusion",
            &[
                ("csrf", &token),
                ("citizen", &provisional),
                ("other", "GIV-000103"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = desk
        .post(
            "/doublons/69091/fusion",
            &[
                ("csrf", &token),
                ("citizen", &provisional),
                ("other", "GIV-000103"),
                ("reason", "même numéro, appel de la même personne"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        hub.store
            .citizen(GIVORS, &provisional)
            .unwrap()
            .unwrap()
            .merged_into,
        "GIV-000103"
    );
    let (_, page) = desk.get("/citoyens/69091/GIV-000103").await;
    assert!(page.contains("Fiches fusionnées dans celle-ci"), "{page}");
    let (status, to) = desk
        .post(
            &format!("/citoyens/69091/{provisional}/defusion"),
            &[("csrf", &token), ("reason", "erreur de fusion")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(hub
        .store
        .citizen(GIVORS, &provisional)
        .unwrap()
        .unwrap()
        .merged_into
        .is_empty());

    // The catalogue: written, found, revised, linked into an answer, withdrawn.
    let (status, to) = desk
        .post(
            "/catalogue/69091",
            &[
                ("csrf", &token),
                ("title", "Carte d'identité : délais"),
                ("demarche", "carte nationale d'identité"),
                ("service", "état civil"),
                ("owner", "responsable état civil"),
                ("reviewed_on", "2026-10-01"),
                (
                    "text",
                    "Comptez quatre semaines après le rendez-vous en mairie.",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        to.starts_with("/catalogue/69091/carte-d-identite-delais"),
        "{to}"
    );
    let (_, found) = desk.get("/catalogue?q=quatre%20semaines").await;
    assert!(
        found.contains("/catalogue/69091/carte-d-identite-delais\">Carte d&#39;identité : délais<"),
        "{found}"
    );
    let (_, none) = desk.get("/catalogue?q=passeport").await;
    assert!(none.contains("0 réponse(s)"), "{none}");
    // Validated by whom published it, not by a name typed in; an agent without the right
    // publishes nothing and is offered no form.
    assert_eq!(
        hub.hub
            .catalogue_answer(&hub.scope(GIVORS), "carte-d-identite-delais")
            .unwrap()
            .owner,
        "accueil-givors"
    );
    let (_, voirie, _) = Desk::sign_in(&hub.web, "voirie").await;
    let voirie = voirie.unwrap();
    let (_, page) = voirie.get("/catalogue").await;
    assert!(!page.contains("Ajouter une réponse"), "{page}");
    assert!(page.contains("Seuls les agents habilités"), "{page}");
    let (status, _) = voirie
        .post(
            "/catalogue/69091",
            &[
                ("csrf", &csrf(&page)),
                ("id", "carte-d-identite-delais"),
                ("title", "Carte d'identité : délais"),
                ("text", "Plus de carte d'identité."),
                ("withdraw", "true"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        !hub.hub
            .catalogue_answer(&hub.scope(GIVORS), "carte-d-identite-delais")
            .unwrap()
            .withdrawn
    );
    let (status, _) = desk
        .post(
            "/catalogue/69091",
            &[
                ("csrf", &token),
                ("id", "carte-d-identite-delais"),
                ("title", "Carte d'identité : délais"),
                ("owner", "responsable état civil"),
                (
                    "text",
                    "Comptez six semaines après le rendez-vous en mairie.",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let answer = hub
        .hub
        .catalogue_answer(&hub.scope(GIVORS), "carte-d-identite-delais")
        .unwrap();
    assert_eq!((answer.version, answer.text.contains("six")), (2, true));
    // A contact linked to a request, and the request answered with the catalogue's answer.
    let request = hub
        .hub
        .open_request(
            &hub.scope(GIVORS),
            &contacthub_app::commands::OpenRequest {
                subject: "Carte d'identité".into(),
                citizen_id: "GIV-000102".into(),
                service: "etat-civil".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (status, _) = desk
        .post(
            &format!("/contacts/69091/{}/rattacher", waiting.event_id),
            &[("csrf", &token), ("reference", &request.reference)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A written answer composed on the request page goes to the outbox, listed there.
    let (_, page) = desk
        .get(&format!("/demandes/69091/{}", request.reference))
        .await;
    assert!(page.contains("Rédiger et envoyer la réponse"), "{page}");
    let send = [
        ("csrf", token.as_str()),
        ("channel", "portail"),
        ("reason", "l'usager consulte son compte"),
        ("catalogue", "carte-d-identite-delais"),
        ("key", "desk-form-1"),
    ];
    for _ in 0..2 {
        let (status, to) = desk
            .post(
                &format!("/demandes/69091/{}/envoi", request.reference),
                &send,
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    }
    let sent = hub
        .hub
        .list_answers(&hub.scope(GIVORS), &request.reference)
        .unwrap();
    assert_eq!(sent.len(), 1, "a second click sends one answer");
    assert!(sent[0].text.contains("six semaines"), "{:?}", sent[0]);
    let (_, page) = desk
        .get(&format!(
            "/demandes/69091/{}?avis=envoyee",
            request.reference
        ))
        .await;
    assert!(
        page.contains("Réponse mise à l&#39;envoi :") && page.contains("en attente d&#39;envoi"),
        "{page}"
    );
    let (status, page) = desk
        .post(
            &format!("/demandes/69091/{}/envoi", request.reference),
            &[("csrf", token.as_str()), ("text", "")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no text, no catalogue answer"
    );
    assert!(
        page.contains("Réponse non envoyée : l&#39;usager n&#39;a consenti à aucun canal écrit"),
        "{page}"
    );
    let (status, _) = desk
        .post(
            &format!("/demandes/69091/{}/reponse", request.reference),
            &[
                ("csrf", &token),
                ("channel", "courriel"),
                ("catalogue", "carte-d-identite-delais"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let request = hub
        .hub
        .get_request(&hub.scope(GIVORS), &request.reference)
        .unwrap();
    assert!(request.contacts.contains(&waiting.event_id));
    assert_eq!(request.answer_ref, "catalogue:carte-d-identite-delais");
    assert_eq!(request.answer_channel, pb::Channel::Email as i32);
    let (status, _) = desk
        .post(
            "/catalogue/69091",
            &[
                ("csrf", &token),
                ("id", "carte-d-identite-delais"),
                ("title", "Carte d'identité : délais"),
                ("owner", "responsable état civil"),
                ("text", "Comptez six semaines."),
                ("withdraw", "true"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, list) = desk.get("/catalogue").await;
    assert!(list.contains("0 réponse(s)"), "{list}");
    // A withdrawn answer is not cited.
    let other = hub
        .hub
        .open_request(
            &hub.scope(GIVORS),
            &contacthub_app::commands::OpenRequest {
                subject: "Passeport".into(),
                citizen_id: "GIV-000101".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (status, _) = desk
        .post(
            &format!("/demandes/69091/{}/reponse", other.reference),
            &[
                ("csrf", &token),
                ("channel", "courriel"),
                ("catalogue", "carte-d-identite-delais"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    hub.stop().await;
}

/// What an attacker on the network or in another tab tries: a redirect to another site after
/// signing in, signing a victim in from another origin, reaching an open desk through a name
/// pointed at 127.0.0.1; and an agent of one service reading another service's letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_resists_redirects_foreign_forms_and_rebinding() {
    let hub = demo_hub(agents()).await;
    let web = hub.web.clone();
    for next in [
        "/\t/evil.example",
        "//evil.example",
        "https://evil.example",
        "/\\evil",
    ] {
        let r = client()
            .post(format!("{web}/connexion"))
            .form(&[("token", "givors"), ("suite", next)])
            .send()
            .await
            .unwrap();
        // Not elsewhere: where the accueil agent starts.
        assert_eq!(r.headers()["location"], "/citoyens", "{next:?}");
    }
    let r = client()
        .post(format!("{web}/connexion"))
        .header("origin", "http://evil.example")
        .form(&[("token", "givors")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("set-cookie").is_none());
    let r = client()
        .post(format!("{web}/connexion"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", "givors")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A letter for urbanisme: the mail room and urbanisme see it, voirie does not.
    let letter = hub
        .hub
        .register_courrier(
            &hub.scope(GIVORS),
            &pb::CourrierHeader {
                tenant: GIVORS.into(),
                sender: Some(pb::Party {
                    name: "Jean Martin".into(),
                    ..Default::default()
                }),
                subject: "Permis de construire".into(),
                addressed_to_service: "urbanisme".into(),
                ..Default::default()
            },
            vec![],
        )
        .await
        .unwrap();
    let path = format!("/courrier/69091/{}", letter.chrono);
    let (_, clerk, _) = Desk::sign_in(&web, "givors").await;
    let clerk = clerk.unwrap();
    let (status, page) = clerk.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Permis de construire"));
    let (_, voirie, _) = Desk::sign_in(&web, "voirie").await;
    let voirie = voirie.unwrap();
    for p in [path.clone(), format!("{path}/accuse.pdf")] {
        let (status, body) = voirie.get(&p).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
        assert!(!body.contains("Permis de construire"));
    }
    let (_, list) = voirie.get("/courrier").await;
    assert!(!list.contains(&letter.chrono), "{list}");
    let (_, list) = clerk.get("/courrier").await;
    assert!(list.contains(&letter.chrono));
    hub.stop().await;

    // An open desk answers only this machine's names.
    let open = demo_hub(Access::Open).await;
    let r = client()
        .get(format!("{}/connexion", open.web))
        .header("host", "rebound.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let port = open.web.rsplit(':').next().unwrap().to_string();
    let r = client()
        .get(format!("{}/connexion", open.web))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_starts_where_they_work() {
    let hub = demo_hub(agents()).await;
    for (token, start) in [
        ("givors", "/citoyens"),
        ("voirie", "/demandes"),
        ("elu", "/tableau-de-bord"),
    ] {
        let (status, _, headers) = Desk::sign_in(&hub.web, token).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], start, "{token}");
    }
    // The search box has the focus when the page opens.
    let (_, desk, _) = Desk::sign_in(&hub.web, "givors").await;
    let (_, page) = desk.unwrap().get("/citoyens").await;
    assert!(page.contains(" autofocus"), "{page}");
}

/// The record's new actions (create, correct, household, a request from the page) refuse an
/// agent of another commune and an élu, and write nothing for them; a form sent twice creates
/// one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_actions_refuse_whom_they_must() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil-givors'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='maire-givors'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n\
         [[agent]]\nid='accueil-grigny'\ntoken_sha256='{}'\ntenants=['69096']\n",
        token_hash("givors"),
        token_hash("elu"),
        token_hash("grigny")
    ))
    .unwrap();
    let hub = demo_hub(access).await;
    let (_, givors, _) = Desk::sign_in(&hub.web, "givors").await;
    let givors = givors.unwrap();
    let (status, form) = givors
        .get("/fiches/nouvelle?commune=69091&q=petit+anna")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("value=\"Petit\""), "{form}");
    let action = form
        .split("action=\"")
        .find(|a| a.starts_with("/fiches/"))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let token = csrf(&form);
    let fields = [
        ("csrf", token.as_str()),
        ("usage_name", "Petit"),
        ("first_names", "Anna"),
        ("phones", "06 44 44 44 01"),
        ("preferred", ""),
    ];
    let (status, to) = givors.post(&action, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let (status, again) = givors.post(&action, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, again, "the same form sent twice is one record");
    // A mistyped phone is refused in French, naming what was typed.
    let mut typo = fields;
    typo[3] = ("phones", "06 44 44");
    let (_, page) = givors.post(&action, &typo).await;
    assert!(
        page.contains("« 06 44 44 » n&#39;est pas un numéro de téléphone"),
        "{page}"
    );
    let id = to
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();

    for (token, refused) in [
        ("grigny", StatusCode::FORBIDDEN),
        ("elu", StatusCode::FORBIDDEN),
    ] {
        let (_, other, _) = Desk::sign_in(&hub.web, token).await;
        let other = other.unwrap();
        let (_, page) = other.get("/").await;
        let (_, page) = if page.contains("csrf") {
            (StatusCode::OK, page)
        } else {
            other.get("/tableau-de-bord").await
        };
        let csrf = csrf(&page);
        let base = format!("/citoyens/69091/{id}");
        let (status, _) = other.get(&format!("{base}/fiche")).await;
        assert_eq!(status, refused, "{token} reads the form");
        for (path, form) in [
            (
                format!("{base}/fiche"),
                vec![("csrf", csrf.as_str()), ("usage_name", "Volé")],
            ),
            (
                format!("{base}/foyer"),
                vec![
                    ("csrf", csrf.as_str()),
                    ("member", id.as_str()),
                    ("relation", "enfant"),
                ],
            ),
            (
                format!("{base}/demandes"),
                vec![("csrf", csrf.as_str()), ("subject", "Volée")],
            ),
            (
                format!("{base}/rattacher"),
                vec![("csrf", csrf.as_str()), ("into", "GIV-000001")],
            ),
            (
                "/fiches/69091?cle=x".to_string(),
                vec![("csrf", csrf.as_str()), ("usage_name", "Intrus")],
            ),
        ] {
            let (status, _) = other.post(&path, &form).await;
            assert_eq!(status, refused, "{token} posts {path}");
        }
    }
    let c = hub.store.citizen(GIVORS, &id).unwrap().unwrap();
    assert_eq!(c.identity.unwrap().usage_name, "Petit");
    assert!(c.households.is_empty());
    assert!(hub
        .hub
        .citizen_requests(&hub.scope(GIVORS), &id)
        .unwrap()
        .is_empty());
    let (status, to) = givors
        .post(
            &format!("/citoyens/69091/{id}/demandes"),
            &[
                ("csrf", token.as_str()),
                ("subject", "Renouvellement de passeport"),
                ("category", "etat-civil"),
                ("service", "etat-civil"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    assert!(to.ends_with("?avis=ouverte"), "{to}");
    let (_, found) = givors.get("/citoyens?commune=69091&q=intrus").await;
    assert!(found.contains("Aucun usager"), "{found}");
    hub.stop().await;
}

/// A service agent's worklist: answered requests apart (« répondues, à clôturer ») and closed
/// in one step, the requester, channel and service by name in the columns, « m'attribuer »
/// and giving a request to a colleague of the same service; a request of another service
/// slipped into the bulk close, or a colleague of another service, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_agent_clears_the_worklist() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='voirie-2'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='ccas-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n",
        token_hash("voirie"),
        token_hash("voirie2"),
        token_hash("ccas")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    hub.publish(&[register(
        GIVORS,
        "GIV-000201",
        "Paul Lenoir",
        "06 55 55 55 01",
        at(2026, 9, 1, 9, 0),
    )])
    .await;
    hub.settle().await;
    let open = |subject: &str, service: &str| {
        let hub = &hub;
        let (subject, service) = (subject.to_string(), service.to_string());
        async move {
            hub.hub
                .open_request(
                    &hub.scope(GIVORS),
                    &contacthub_app::commands::OpenRequest {
                        subject,
                        category: pb::Category::ServicesTechniques,
                        service,
                        citizen_id: "GIV-000201".into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .reference
        }
    };
    let pothole = open("Nid-de-poule rue Pasteur", "voirie").await;
    let lamp = open("Lampadaire éteint", "voirie").await;
    let aid = open("Aide au loyer", "ccas").await;
    for r in [&lamp, &aid] {
        hub.hub
            .record_answer(
                &hub.scope(GIVORS),
                &contacthub_app::commands::RecordAnswer {
                    reference: r.clone(),
                    answer_channel: pb::Channel::Courrier,
                    answer_ref: "lettre".into(),
                },
            )
            .await
            .unwrap();
    }
    let (_, desk, _) = Desk::sign_in(&hub.web, "voirie").await;
    let desk = desk.unwrap();
    let (status, page) = desk.get("/demandes").await;
    assert_eq!(status, StatusCode::OK);
    let (todo, done) = page.split_once("Répondues, à clôturer").unwrap();
    assert!(todo.contains(&pothole) && !todo.contains(&lamp), "{todo}");
    assert!(done.contains(&lamp) && !done.contains(&pothole), "{done}");
    assert!(
        !page.contains(&aid),
        "another service's request is not listed"
    );
    for column in ["Paul Lenoir", "Voirie", "M'attribuer"] {
        assert!(todo.contains(column), "{column} in {todo}");
    }
    let token = csrf(&page);

    // « M'attribuer », then to a colleague of the same service; not to the CCAS's agent.
    let (status, to) = desk
        .post(
            &format!("/demandes/69091/{pothole}/attribution"),
            &[("csrf", &token), ("retour", "liste")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{to}");
    let r = hub.hub.get_request(&hub.scope(GIVORS), &pothole).unwrap();
    assert_eq!(r.assignee_agent_id, "voirie-1");
    let (_, page) = desk.get(&format!("/demandes/69091/{pothole}")).await;
    assert!(page.contains("<option value=\"voirie-2\""), "{page}");
    assert!(!page.contains("ccas-1"), "{page}");
    let (status, _) = desk
        .post(
            &format!("/demandes/69091/{pothole}/attribution"),
            &[("csrf", &token), ("agent", "voirie-2")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        hub.hub
            .get_request(&hub.scope(GIVORS), &pothole)
            .unwrap()
            .assignee_agent_id,
        "voirie-2"
    );
    let (status, page) = desk
        .post(
            &format!("/demandes/69091/{pothole}/attribution"),
            &[("csrf", &token), ("agent", "ccas-1")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");

    // The bulk close: a CCAS request slipped in is refused.
    let body = format!("csrf={token}&ref={aid}");
    let r = reqwest::Client::new()
        .post(format!("{}/demandes/69091/cloture-groupee", hub.web))
        .header("cookie", &desk.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let status_of = |r: &str| hub.hub.get_request(&hub.scope(GIVORS), r).unwrap().status;
    assert_eq!(status_of(&aid), pb::RequestStatus::Answered as i32);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/demandes/69091/cloture-groupee", hub.web))
        .header("cookie", &desk.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&ref={lamp}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of(&lamp), pb::RequestStatus::Closed as i32);
    let (_, page) = desk.get("/demandes?avis=closes-1").await;
    assert!(page.contains("Demandes clôturées : 1."), "{page}");
    assert!(page.contains("Aucune demande répondue en attente de clôture."));
    hub.stop().await;
}

/// The demo is a commune an agent recognises: contacts wait in « à rattacher » (a landline
/// the parents share), duplicates are proposed, households hold parents and a child with
/// ages at one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_gives_the_agents_work() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 24,
        ..Default::default()
    };
    let events: Vec<pb::Event> = demo::events(&cfg, &Tenants::builtin()).collect();
    hub.publish(&events).await;
    hub.settle().await;
    let (_, desk, _) = Desk::sign_in(&hub.web, "givors").await;
    let desk = desk.unwrap();
    let (_, waiting) = desk.get("/a-rattacher").await;
    assert!(
        waiting.contains("GIV-000001") && waiting.contains("GIV-000002"),
        "{waiting}"
    );
    let (_, pairs) = desk.get("/doublons").await;
    assert!(pairs.contains("GIV-900007"), "{pairs}");
    let (_, family) = desk.get("/citoyens/69091/GIV-000001").await;
    assert!(
        family.contains("(conjoint)") && family.contains("(enfant), "),
        "{family}"
    );
    assert!(
        family.contains(" ans)"),
        "her age beside her birth date: {family}"
    );
    let head = hub.store.citizen(GIVORS, "GIV-000001").unwrap().unwrap();
    let child = hub.store.citizen(GIVORS, "GIV-000003").unwrap().unwrap();
    assert_eq!(
        head.identity.unwrap().addresses,
        child.identity.unwrap().addresses,
        "one address for the household"
    );
    hub.stop().await;
}

/// The print queue on the desk: two letters printed as one PDF (each with its salutation and
/// its recipient), marked posted; an agent of another service sees none of them and cannot
/// mark them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_room_prints_the_answer_letters() {
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='courrier-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n",
        token_hash("courrier"),
        token_hash("voirie")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let mut references = Vec::new();
    for (name, street) in [("Paul Lenoir", "rue Pasteur"), ("Rose Blanc", "rue Zola")] {
        let (first, last) = name.split_once(' ').unwrap();
        let c = hub
            .hub
            .create_citizen(
                &hub.scope(GIVORS),
                &contacthub_app::commands::CreateCitizen {
                    identity: Some(pb::Identity {
                        usage_name: last.into(),
                        first_names: first.into(),
                        addresses: vec![pb::Address {
                            number: "3".into(),
                            street: street.into(),
                            postcode: "69700".into(),
                            city: "Givors".into(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let r = hub
            .hub
            .open_request(
                &hub.scope(GIVORS),
                &contacthub_app::commands::OpenRequest {
                    subject: "Acte de naissance".into(),
                    category: pb::Category::EtatCivil,
                    service: "etat-civil".into(),
                    citizen_id: c.citizen_id,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        hub.hub
            .send_answer(
                &hub.scope(GIVORS),
                &contacthub_app::commands::ComposeAnswer {
                    reference: r.reference.clone(),
                    channel: pb::Channel::Courrier,
                    text: "Votre acte vous est envoyé.".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        references.push(r.reference);
    }
    let (_, voirie, _) = Desk::sign_in(&hub.web, "voirie").await;
    let voirie = voirie.unwrap();
    let (_, page) = voirie.get("/impression").await;
    assert!(page.contains("Aucune lettre en attente"), "{page}");
    let ids: Vec<String> = hub
        .hub
        .print_queue(&hub.scope(GIVORS))
        .unwrap()
        .into_iter()
        .map(|i| i.answer.unwrap().answer_event_id)
        .collect();
    assert_eq!(ids.len(), 2);
    let form = |token: &str, close: bool| {
        let mut body = format!("csrf={token}");
        for id in &ids {
            body.push_str(&format!("&lettre={id}"));
        }
        if close {
            body.push_str("&cloturer=1");
        }
        body
    };
    let post = |desk: &Desk, path: &str, body: String| {
        let r = client()
            .post(format!("{}{path}", hub.web))
            .header("cookie", &desk.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send();
        async move {
            let r = r.await.unwrap();
            (r.status(), r.bytes().await.unwrap().to_vec())
        }
    };
    let token = csrf(&page);
    let (status, _) = post(&voirie, "/impression/69091/imprimees", form(&token, true)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no letter of theirs");
    assert_eq!(hub.hub.print_queue(&hub.scope(GIVORS)).unwrap().len(), 2);

    let (_, desk, _) = Desk::sign_in(&hub.web, "courrier").await;
    let desk = desk.unwrap();
    let (_, page) = desk.get("/impression").await;
    assert!(
        page.contains("Paul LENOIR") || page.contains("Paul Lenoir"),
        "{page}"
    );
    let token = csrf(&page);
    let (status, pdf) = post(&desk, "/impression/69091/lettres.pdf", form(&token, false)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF-"));
    if let Some(text) = pdf_text(&pdf) {
        assert_eq!(
            text.matches("Votre acte vous est envoyé.").count(),
            2,
            "{text}"
        );
        assert!(
            text.contains("rue Pasteur") && text.contains("rue Zola"),
            "{text}"
        );
    }
    let (status, _) = post(&desk, "/impression/69091/imprimees", form(&token, true)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(hub.hub.print_queue(&hub.scope(GIVORS)).unwrap().is_empty());
    for r in &references {
        let r = hub.hub.get_request(&hub.scope(GIVORS), r).unwrap();
        assert_eq!(r.status, pb::RequestStatus::Closed as i32);
    }
    let (_, page) = desk.get("/impression?avis=closes-2").await;
    assert!(page.contains("demandes clôturées : 2."), "{page}");
    hub.stop().await;
}

/// The élus' dashboard reads as French: months by name, « — » where there is nothing to
/// count, period presets, a comparison with the year before, a scale on the chart, and no
/// « suivi » among the channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_speaks_to_elus() {
    let hub = demo_hub(agents()).await;
    let (_, elu, _) = Desk::sign_in(&hub.web, "elu").await;
    let elu = elu.unwrap();
    let (status, page) = elu
        .get("/tableau-de-bord?commune=69091&de=2026-03&a=2026-10")
        .await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "De mars 2026 à octobre 2026",
        "<th scope=\"row\">juillet 2026</th>",
        ">juil.</text>",
        "Ce mois",
        "12 derniers mois",
        "Année civile",
        "Année précédente",
        "Comparer avec l'année précédente",
        "class=\"tick\"",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(
        !page.contains(">suivi<"),
        "« suivi » is not a channel: {page}"
    );
    // A period with nothing in it: « — », not « 0,0 % ».
    let (_, empty) = elu
        .get("/tableau-de-bord?commune=69091&de=2019-01&a=2019-02")
        .await;
    assert!(
        empty.contains("data-figure=\"Répondues dans le délai\">—<"),
        "{empty}"
    );
    assert!(!empty.contains("0,0 %"), "{empty}");
    let (_, compared) = elu
        .get("/tableau-de-bord?commune=69091&de=2026-03&a=2026-10&comparer=true")
        .await;
    assert!(compared.contains("un an plus tôt : "), "{compared}");
    hub.stop().await;
}

/// The mail room's list: newest first, fifty a page with links to the others, filters by
/// answer, chrono number and sender; a letter registered for a citizen picked in the
/// commune carries their name, and its receipt the address written on the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_room_finds_every_letter() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    let t0 = at(2026, 9, 1, 9, 0);
    for n in 0..57i64 {
        hub.hub
            .register_courrier(
                &hub.scope(GIVORS),
                &pb::CourrierHeader {
                    tenant: GIVORS.into(),
                    sender: Some(pb::Party {
                        name: format!("Expéditeur {n:02}"),
                        ..Default::default()
                    }),
                    received_at: Some(contacthub_proto::ts::from_micros(t0 + n * 86_400_000_000)),
                    subject: format!("Lettre {n:02}"),
                    category: pb::Category::Urbanisme as i32,
                    ..Default::default()
                },
                vec![],
            )
            .await
            .unwrap();
    }
    let (_, desk, _) = Desk::sign_in(&hub.web, "givors").await;
    let desk = desk.unwrap();
    let (_, page) = desk.get("/courrier").await;
    assert!(
        page.contains("57 courrier(s), les plus récents d'abord — page 1 sur 2"),
        "{page}"
    );
    let first = page.find("Lettre 56").expect("the newest on page 1");
    assert!(first < page.find("Lettre 55").unwrap(), "newest first");
    assert!(!page.contains("Lettre 00"), "the oldest on page 2");
    assert!(
        page.contains("adressé à : Urbanisme") || page.contains("à orienter"),
        "{page}"
    );
    let next = page
        .split("href=\"")
        .map(|h| h.split('"').next().unwrap())
        .find(|h| h.starts_with("/courrier?") && h.ends_with("page=2"))
        .unwrap()
        .replace("&#38;", "&");
    let (_, two) = desk.get(&next).await;
    assert!(
        two.contains("Lettre 00") && !two.contains("Lettre 56"),
        "{two}"
    );
    let (_, by_sender) = desk.get("/courrier?expediteur=expediteur+07").await;
    assert!(
        by_sender.contains("1 courrier(s)") && by_sender.contains("Lettre 07"),
        "{by_sender}"
    );
    let chrono = hub
        .hub
        .list_courrier(
            &hub.scope(GIVORS),
            &contacthub_app::commands::CourrierQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .unwrap()[0]
        .chrono
        .clone();
    let (_, by_chrono) = desk
        .get(&format!("/courrier?chrono={}", chrono.to_lowercase()))
        .await;
    assert!(by_chrono.contains("1 courrier(s)"), "{by_chrono}");
    hub.hub
        .mark_answered(
            &hub.scope(GIVORS),
            &contacthub_app::commands::MarkAnswered {
                chrono: chrono.clone(),
                answer_channel: pb::Channel::Courrier,
                answer_ref: "réponse".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, unanswered) = desk.get("/courrier?non_repondu=true").await;
    assert!(unanswered.contains("56 courrier(s)"), "{unanswered}");
    hub.stop().await;
}

/// The commune's opening hours and its closed days ahead, as the communes file says, for its
/// agents and élus; another commune's are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_read_the_communes_opening_hours_and_closed_days() {
    let hub = TestHub::start_with_access(&Backend::Embedded, agents()).await;
    hub.set_clock(at(2026, 12, 4, 10, 0));
    for token in ["givors", "elu"] {
        let agent = WebAgent::sign_in(&hub.web, token).await;
        let (status, page) = agent.get("/horaires?commune=69091").await;
        assert_eq!(status, 200, "{page}");
        for line in [
            "lundi : 08:30–12:00, 13:30–17:30",
            "samedi : 09:00–12:00",
            "dimanche : fermé",
            "25/12/2026 : jour férié (Noël)",
        ] {
            assert!(page.contains(line), "{token}: {line} missing");
        }
        // The phone: closed on Saturday, unlike the counter.
        let phone = &page[page.find("Téléphone").unwrap()..];
        assert!(phone.contains("samedi : fermé"));
    }
    let agent = WebAgent::sign_in(&hub.web, "givors").await;
    let (status, _) = agent.get("/horaires?commune=69096").await;
    assert_eq!(status, 403, "Grigny's are not hers");
    hub.stop().await;
}
