//! Following a request without an account, on both log backends: an agent reads the
//! request's follow-up code (gRPC, the command line); the citizens' space `/suivi` shows
//! with it where the request stands and nothing personal; a wrong code and an unknown
//! reference get the same answer; an address that guessed too often is refused, the right
//! code too.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_proto::v1::request_service_client::RequestServiceClient;
use contacthub_tests::*;
use reqwest::StatusCode;

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n",
        token_hash("accueil"),
        token_hash("voirie"),
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
        let mut requests = requests.clone();
        let reference = opened.reference.clone();
        async move {
            requests
                .get_request(as_agent(
                    token,
                    pb::GetRequestRequest {
                        tenant: GIVORS.into(),
                        reference,
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
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
}

on_every_backend!(a_request_is_followed_with_its_code);
