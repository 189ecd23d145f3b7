//! A commune's Publik (w.c.s.) portal, on both log backends: its « appel de webservice »
//! posts a form's data to a URL signed as w.c.s. signs it; the first post opens a request of
//! the form's category, a status change joins it; a replayed, unsigned, forged or stale URL
//! is refused, the same post twice is one contact, what is not form data is quarantined.

use contacthub_core::pb;
use contacthub_tests::*;
use hmac::{Hmac, Mac};

const KEY: &str = "cle-partagee-publik-givors-0123";
const ORIG: &str = "publik-givors";

/// A query signed as w.c.s.'s `sign_query` signs it, at `at` (UTC), with `nonce`.
fn signed(key: &str, at: chrono::DateTime<chrono::Utc>, nonce: &str) -> String {
    let unsigned = format!(
        "algo=sha256&timestamp={}&nonce={nonce}&orig={ORIG}",
        at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(unsigned.as_bytes());
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        mac.finalize().into_bytes(),
    );
    let quoted: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    format!("{unsigned}&signature={quoted}")
}

/// A form's data as w.c.s. exports it, at status `status` updated at `updated`.
fn form(status: (&str, &str), updated: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "12",
        "url": "https://demarches.ville-givors.fr/signalement-voirie/12/",
        "display_id": "15-12",
        "display_name": "Signalement voirie - n°15-12",
        "receipt_time": "2026-12-03T10:14:03+01:00",
        "last_update_time": updated,
        "criticality_level": 0,
        "submission": {"channel": "web", "backoffice": false},
        "user": {"id": 7, "name": "Marie Durand", "email": "marie.durand@example.org", "NameID": ["4f1c0a"]},
        "fields": {
            "adresse": "12 rue Émile Zola",
            "description": "Nid de poule dangereux devant l'école",
            "photo": {"filename": "trou.jpg", "content_type": "image/jpeg", "content": "/9j/4AAQSkZJRgABAQ=="}
        },
        "workflow": {"status": {"id": status.0, "name": status.1}}
    })
}

async fn publik(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let url = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\n[commune.publik]\norig = \"{ORIG}\"\nkey = \"{KEY}\"\n"
        ))
        .await;
    let http = reqwest::Client::new();
    let post = |query: String, body: Vec<u8>| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(format!("{url}/v1/69091/publik?{query}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let now = chrono::Utc::now();
    let first = serde_json::to_vec(&form(("new", "Nouveau"), "2026-12-03T10:14:03+01:00")).unwrap();
    let query = signed(KEY, now, "n1");
    let r = post(query.clone(), first.clone()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // The same signed URL again: refused (its nonce was taken), by a restarted hub too.
    assert_eq!(post(query.clone(), first.clone()).await.status(), 401);
    let restarted = hub
        .restart_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\n[commune.publik]\norig = \"{ORIG}\"\nkey = \"{KEY}\"\n"
        ))
        .await;
    let replayed = reqwest::Client::new()
        .post(format!("{restarted}/v1/69091/publik?{query}"))
        .body(first.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401, "the nonce was kept on disk");
    // Unsigned, forged, stale, another portal's: refused.
    assert_eq!(post(String::new(), first.clone()).await.status(), 401);
    assert_eq!(
        post(
            signed("une-autre-cle-de-portail-0000", now, "n2"),
            first.clone()
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        post(
            signed(KEY, now - chrono::Duration::hours(1), "n3"),
            first.clone()
        )
        .await
        .status(),
        401
    );
    hub.settle().await;
    let requests: Vec<pb::Request> = hub
        .store
        .requests(GIVORS)
        .unwrap()
        .into_iter()
        .filter(|r| r.subject == "Signalement voirie - n°15-12")
        .collect();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.category, pb::Category::ServicesTechniques as i32);
    assert_eq!(request.channel, pb::Channel::WebForm as i32);
    assert_eq!(request.contacts.len(), 1);
    let marie = request.requesters[0].clone();

    // Instructed: the status change joins the same request; posted twice, it is one contact.
    let second = serde_json::to_vec(&form(
        ("accepted", "Pris en charge"),
        "2026-12-04T09:00:00+01:00",
    ))
    .unwrap();
    let r = post(signed(KEY, now, "n4"), second.clone()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = post(signed(KEY, now, "n5"), second).await;
    let summary: serde_json::Value = r.json().await.unwrap();
    assert_eq!(summary["duplicates"], 1, "{summary}");
    hub.settle().await;
    let request = hub
        .store
        .request(GIVORS, &request.reference)
        .unwrap()
        .unwrap();
    assert_eq!(request.contacts.len(), 2, "{request:#?}");
    let timeline = hub.timeline_of(GIVORS, &marie);
    let forms: Vec<_> = timeline
        .iter()
        .filter(|e| e.kind == "web_form" && e.request_id == request.reference)
        .collect();
    assert_eq!(forms.len(), 2, "{timeline:#?}");

    // Closed by the town hall, then the portal says it is done: the same request still.
    hub.hub
        .close_request(
            &hub.scope(GIVORS),
            &contacthub_app::commands::CloseRequest {
                reference: request.reference.clone(),
                reason: pb::CloseReason::Withdrawn,
                redirected_to: String::new(),
                duplicate_of: String::new(),
                note: String::new(),
            },
        )
        .await
        .unwrap();
    let third =
        serde_json::to_vec(&form(("done", "Terminé"), "2026-12-05T09:00:00+01:00")).unwrap();
    let r = post(signed(KEY, now, "n7"), third).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    hub.settle().await;
    let same: Vec<pb::Request> = hub
        .store
        .requests(GIVORS)
        .unwrap()
        .into_iter()
        .filter(|r| r.subject == "Signalement voirie - n°15-12")
        .collect();
    assert_eq!(same.len(), 1, "{same:#?}");
    assert_eq!(same[0].contacts.len(), 3);

    // Signed but not form data: quarantined with the reason.
    let r = post(signed(KEY, now, "n6"), b"{\"url\": 3}".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not w.c.s. form data"));
    // Its health, for ops: what it took and refused, its last success and last error.
    let publik = hub.connector("publik", GIVORS).await;
    assert_eq!((publik.accepted, publik.refused), (4, 1), "{publik:?}");
    assert!(publik.last_success.is_some() && publik.last_error.is_some());
    assert_eq!(publik.last_error_reason, "not w.c.s. form data");
    // And as `contacthub status` prints it.
    let (ok, out) = hub.cli_as(&contacthub_bin!(), "", &["status"]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("publik")
            && l.contains("69091")
            && l.contains("not w.c.s. form data")),
        "{out}"
    );
    hub.stop().await;
}

on_every_backend!(publik);

/// The desk's « Exploitation » shows an ops agent the connectors (Publik for Givors, with
/// what it took and refused); an agent without ops rights is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_page_shows_the_connectors() {
    use contacthub_app::auth::{token_hash, Access};
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='ops-1'\ntoken_sha256='{}'\ntenants=['69091']\nops=true\n\
         [[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("ops"),
        token_hash("accueil"),
    ))
    .unwrap();
    let mut hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let url = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\n[commune.publik]\norig = \"{ORIG}\"\nkey = \"{KEY}\"\n"
        ))
        .await;
    let body = serde_json::to_vec(&form(("new", "Nouveau"), "2026-12-03T10:14:03+01:00")).unwrap();
    let r = reqwest::Client::new()
        .post(format!(
            "{url}/v1/69091/publik?{}",
            signed(KEY, chrono::Utc::now(), "ops-1")
        ))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ops = WebAgent::sign_in(&hub.web, "ops").await;
    let (status, page) = ops.get("/exploitation").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<th scope=\"row\">publik</th><td>Givors</td><td>1</td><td>0</td>"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/exploitation\""),
        "the ops agent's navigation"
    );
    let accueil = WebAgent::sign_in(&hub.web, "accueil").await;
    let (status, _) = accueil.get("/exploitation").await;
    assert_eq!(status, 403);
    let (_, home) = accueil.get("/citoyens").await;
    assert!(!home.contains("href=\"/exploitation\""));
    hub.stop().await;
}
