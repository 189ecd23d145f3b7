//! Following a request without an account, on both log backends: an agent reads the
//! request's follow-up code (gRPC, the command line); the citizens' space `/suivi` shows
//! with it where the request stands and nothing personal; a wrong code and an unknown
//! reference get the same answer; a confidential service is not named; a form posted from
//! another site is refused; an address that guessed too often is refused, the right code
//! too, while the desk still signs agents in from it.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_proto::v1::request_service_client::RequestServiceClient;
use contacthub_tests::*;
use reqwest::StatusCode;

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='ccas-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['ccas']\n",
        token_hash("accueil"),
        token_hash("voirie"),
        token_hash("ccas"),
    ))
    .unwrap()
}

/// What `/suivi` answers for `reference` and `code`: status and page.
async fn track(portal: &str, reference: &str, code: &str) -> (StatusCode, String) {
    let r = reqwest::Client::new()
        .post(format!("{portal}/suivi"))
        .form(&[("reference", reference), ("code", code)])
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The error paragraph of a page (what it says, without the form's echo).
fn alert(page: &str) -> &str {
    page.split("role=\"alert\">")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .unwrap_or("")
}

/// Request `reference` of Givors as `token` reads it over gRPC.
async fn get(
    mut requests: RequestServiceClient<tonic::transport::Channel>,
    token: &str,
    reference: String,
) -> Result<pb::Request, tonic::Status> {
    requests
        .get_request(as_agent(
            token,
            pb::GetRequestRequest {
                tenant: GIVORS.into(),
                reference,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn a_request_is_followed_with_its_code(backend: Backend) {
    let hub = TestHub::start_with_access(&backend, agents()).await;
    hub.register_marie().await;
    let mut requests = RequestServiceClient::new(hub.channel.clone());
    let opened = requests
        .open_request(as_agent(
            "accueil",
            pb::OpenRequestRequest {
                tenant: GIVORS.into(),
                subject: "Trottoir défoncé rue Jean-Jaurès".into(),
                category: pb::Category::ServicesTechniques as i32,
                service: "voirie".into(),
                citizen_id: "GIV-000900".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let read = |token: &'static str| {
        let reference = opened.reference.clone();
        let requests = requests.clone();
        async move { get(requests, token, reference).await.unwrap() }
    };
    let code = read("accueil").await.follow_up_code;
    assert!(
        code.len() == 9
            && code.as_bytes()[4] == b'-'
            && code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)),
        "{code}"
    );
    assert_eq!(
        read("voirie").await.follow_up_code,
        code,
        "one code per request"
    );
    // The command line shows it.
    let (ok, out) = hub.cli_as(
        &contacthub_bin!(),
        "accueil",
        &["request", "show", "--tenant", GIVORS, &opened.reference],
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("code de suivi  {code}")), "{out}");

    // The space, with the code typed as people type it: where it stands, nothing personal.
    let typed = code.to_lowercase().replace('-', " ");
    let (status, page) = track(&hub.portal, &opened.reference.to_lowercase(), &typed).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!("Demande {}", opened.reference)),
        "{page}"
    );
    assert!(page.contains("<dd>reçue</dd>"), "{page}");
    assert!(page.contains("<dd>Voirie</dd>"), "{page}");
    assert!(page.contains("<dd>Givors</dd>"), "{page}");
    assert!(page.contains("Réponse promise au plus tard le"), "{page}");
    for personal in ["Marie", "Durand", "Trottoir", "GIV-000900", "06 12"] {
        assert!(!page.contains(personal), "{personal}: {page}");
    }

    // A confidential service's request: the accueil, who orients people, reads its code; a
    // voirie agent does not see it at all; the space does not name the service.
    let secret = hub.ccas_request("ccas").await;
    let ask = |token: &'static str| get(requests.clone(), token, secret.reference.clone());
    let ccas_code = ask("accueil").await.unwrap().follow_up_code;
    assert_eq!(ccas_code, ask("ccas").await.unwrap().follow_up_code);
    assert_eq!(
        ask("voirie").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let (status, page) = track(&hub.portal, &secret.reference, &ccas_code).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<dd>reçue</dd>"), "{page}");
    assert!(!page.contains("CCAS") && !page.contains("Aide"), "{page}");

    // Another site's page may not post codes (nor spend this address's tries).
    let r = reqwest::Client::new()
        .post(format!("{}/suivi", hub.portal))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("reference", opened.reference.as_str()),
            ("code", "CCCC-CCCC"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("/static/portal.css"));
    let (status, missing) = {
        let r = reqwest::get(format!("{}/nulle-part", hub.portal))
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        missing.contains("Cette page n&#39;existe pas."),
        "{missing}"
    );

    // A wrong code and an unknown reference say the same.
    let (status, wrong) = track(&hub.portal, &opened.reference, "AAAA-AAAA").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, unknown) = track(&hub.portal, "GIV-D-2026-999999", &code).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        alert(&wrong).contains("Aucune demande ne correspond"),
        "{wrong}"
    );
    assert_eq!(alert(&wrong), alert(&unknown));
    assert!(!wrong.contains("<dd>"), "{wrong}");

    // Guessing: after ten failures in a minute, this address is refused, the right code too.
    for _ in 0..8 {
        track(&hub.portal, &opened.reference, "BBBB-BBBB").await;
    }
    let (status, refused) = track(&hub.portal, &opened.reference, &code).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert!(
        alert(&refused).starts_with("Trop d&#39;essais depuis cette adresse : réessayez dans"),
        "{refused}"
    );
    assert!(!refused.contains("<dd>"), "{refused}");
    let r = reqwest::Client::new()
        .post(format!("{}/suivi", hub.portal))
        .form(&[
            ("reference", opened.reference.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The guesser locked only the space: the desk still signs agents in from this address.
    let desk = WebAgent::sign_in(&hub.web, "accueil").await;
    let (status, _) = desk.get("/demandes").await;
    assert!(status.is_success(), "{status}");
}

on_every_backend!(a_request_is_followed_with_its_code);
