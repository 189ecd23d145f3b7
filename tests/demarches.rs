//! A commune's démarche on démarches-simplifiées, on both log backends, against a local
//! server speaking the platform's GraphQL API: its webhook makes the hub fetch the dossier
//! (champs, pièce jointe downloaded, states, messages) and open one request of the démarche's
//! category; a webhook posted twice is one contact; a 500 then success is taken; a dossier
//! deleted before the fetch is ignored; an expired token is refused, kept in the quarantine
//! and shown in the connector's health; polling pages through the changes and a restarted
//! hub goes on from its cursor.

use contacthub_core::pb;
use contacthub_tests::ds::{Ds, TOKEN};
use contacthub_tests::*;
use serde_json::{json, Value};

const PLAN: &[u8] = b"%PDF-1.4\n% plan de masse\n%%EOF\n";

fn dossier(ds: &Ds, number: u64, demarche: u64, modified: &str) -> Value {
    json!({
        "id": format!("RG9zc2llci0{number}"),
        "number": number,
        "state": "en_construction",
        "dateDepot": "2026-11-02T10:00:00+01:00",
        "datePassageEnInstruction": null,
        "dateTraitement": null,
        "dateDerniereModification": modified,
        "motivation": null,
        "demarche": {"number": demarche, "title": "Déclaration préalable de travaux"},
        "usager": {"email": format!("demandeur{number}@example.org")},
        "demandeur": {"__typename": "PersonnePhysique", "civilite": "Mme", "nom": "Durand", "prenom": format!("Marie{number}"), "email": null},
        "champs": [
            {"id": "Q2hhbXAtMQ==", "__typename": "TextChamp", "label": "Adresse des travaux", "stringValue": "12 rue Roger Salengro"},
            {"id": "Q2hhbXAtMg==", "__typename": "PieceJustificativeChamp", "label": "Plan de masse", "stringValue": "plan.pdf",
             "files": [{"filename": "plan.pdf", "contentType": "application/pdf", "checksum": "c2hhMjU2", "byteSize": "31", "url": ds.file("plan.pdf", PLAN)}]}
        ],
        "messages": []
    })
}

fn config(ds: &Ds, poll: bool) -> String {
    format!(
        "[[commune]]\ncode = \"69091\"\nattachment_private_networks = true\n\
         [[commune.demarches_simplifiees]]\ndemarche = 4321\ntoken = \"{TOKEN}\"\ncategory = \"urbanisme\"\napi_url = \"{}\"\n{}",
        ds.api(),
        if poll { "poll_seconds = 3600\n" } else { "" }
    )
}

async fn webhook(url: &str, body: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/69091/demarches-simplifiees"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn requests_of(hub: &TestHub, number: u64) -> Vec<pb::Request> {
    let subject = format!("Déclaration préalable de travaux — dossier n° {number}");
    hub.store
        .requests(GIVORS)
        .unwrap()
        .into_iter()
        .filter(|r| r.subject == subject)
        .collect()
}

async fn demarches_simplifiees(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let ds = Ds::start().await;
    ds.put(dossier(&ds, 987, 4321, "2026-11-02T10:00:00+01:00"));
    let url = hub.start_adapters(&config(&ds, false)).await;
    let hook = "procedure_id=4321&dossier_id=987&state=en_construction&updated_at=2026-11-02+10%3A00%3A00+%2B0100";
    let (code, body) = webhook(&url, hook).await;
    assert_eq!(code, 200, "{body}");
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["accepted"], 1, "{summary}");
    // Posted twice: nothing new.
    let (code, body) = webhook(&url, hook).await;
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, again["duplicates"].clone()),
        (200, json!(1)),
        "{body}"
    );
    hub.settle().await;
    let requests = requests_of(&hub, 987);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.category, pb::Category::Urbanisme as i32);
    assert_eq!(request.channel, pb::Channel::WebForm as i32);
    let marie = request.requesters[0].clone();
    let timeline = hub.timeline_of(GIVORS, &marie);
    let deposited = timeline
        .iter()
        .find(|e| e.request_id == request.reference)
        .unwrap_or_else(|| panic!("{timeline:#?}"));
    // The pièce jointe, downloaded from the platform's storage into the content store.
    assert_eq!(deposited.attachments.len(), 1, "{deposited:?}");
    assert_eq!(deposited.attachments[0].size_bytes, PLAN.len() as u64);

    // Instructed, with a message from the instructeur; the platform fails once first.
    let mut d = dossier(&ds, 987, 4321, "2026-11-04T11:00:00+01:00");
    d["state"] = json!("en_instruction");
    d["datePassageEnInstruction"] = json!("2026-11-03T09:00:00+01:00");
    d["messages"] = json!([{"id": "Q29tbWVudGFpcmUtMQ==", "email": "instructeur@ville-givors.fr", "body": "Merci de préciser la hauteur de la clôture.", "createdAt": "2026-11-04T11:00:00+01:00", "attachments": []}]);
    ds.put(d);
    ds.fail_next(1);
    let (code, body) = webhook(
        &url,
        "procedure_id=4321&dossier_id=987&state=en_instruction",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    hub.settle().await;
    let request = hub
        .store
        .request(GIVORS, &request.reference)
        .unwrap()
        .unwrap();
    assert_eq!(request.contacts.len(), 3, "{request:#?}");
    let mut texts = Vec::new();
    for e in hub.timeline_of(GIVORS, &marie) {
        if e.request_id != request.reference {
            continue;
        }
        let full = hub
            .desk()
            .get_contact(pb::GetContactRequest {
                tenant: GIVORS.into(),
                event_id: e.event_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        texts.push(full.personal.unwrap_or_default().text);
    }
    assert!(
        texts.contains(&"Merci de préciser la hauteur de la clôture.".to_string())
            && texts.contains(&"Statut : en instruction".to_string()),
        "{texts:?}"
    );

    // Deleted between the webhook and the fetch: nothing taken, nothing refused.
    let (code, body) = webhook(&url, "procedure_id=4321&dossier_id=988").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ignored\":1"), "{body}");
    // Not a webhook, another démarche: refused with the reason.
    let (code, body) = webhook(&url, "procedure_id=4321").await;
    assert_eq!((code, body.trim()), (400, "the webhook has no dossier_id"));
    let (code, body) = webhook(&url, "procedure_id=999&dossier_id=1").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("démarche 999 is not connected"), "{body}");

    // The token expired: refused, the webhook kept, the health tells ops.
    ds.expire_token(true);
    let (code, body) = webhook(&url, "procedure_id=4321&dossier_id=987").await;
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("token of démarche 4321 was refused"),
        "{body}"
    );
    let kept = contacthub_adapters::quarantine::Quarantine::open(hub.dir.path().join("quarantine"))
        .unwrap()
        .list(Some("demarches-simplifiees"), Some(GIVORS))
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].reason.contains("was refused"), "{kept:?}");
    let health = hub.connector("demarches-simplifiees", GIVORS).await;
    // Taken: 1, then 1 again (a duplicate), then 3 (the champs again, a state, a message).
    assert_eq!(health.accepted, 5, "{health:?}");
    assert!(
        health.last_error_reason.contains("jeton d'API refusé"),
        "{health:?}"
    );
    hub.stop().await;
}

on_every_backend!(demarches_simplifiees);

/// Polling: five dossiers changed, pages of two, all taken and the cursor kept; a restarted
/// hub asks only for what changed since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_pages_through_changes_and_goes_on_after_a_restart() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let ds = Ds::start().await;
    for n in 0..5u64 {
        ds.put(dossier(
            &ds,
            100 + n,
            4321,
            &format!("2026-11-1{n}T10:00:00+01:00"),
        ));
    }
    // Another démarche's dossier: never asked for.
    ds.put(dossier(&ds, 500, 7777, "2026-11-15T10:00:00+01:00"));
    hub.start_adapters(&config(&ds, true)).await;
    let cursor = hub
        .dir
        .path()
        .join("connectors/demarches-simplifiees-69091-4321.cursor");
    wait_for(|| {
        std::fs::read_to_string(&cursor).ok().as_deref() == Some("2026-11-14T10:00:00+01:00")
    })
    .await;
    hub.settle().await;
    for n in 0..5 {
        assert_eq!(requests_of(&hub, 100 + n).len(), 1, "dossier {}", 100 + n);
    }
    assert_eq!(requests_of(&hub, 500).len(), 0);
    assert_eq!(
        ds.since_asked(),
        vec![Some("2000-01-01T00:00:00Z".to_string()); 3],
        "three pages from the start"
    );

    // One dossier changes; the hub restarts: it asks since its cursor and takes the change.
    let mut d = dossier(&ds, 102, 4321, "2026-11-20T10:00:00+01:00");
    d["state"] = json!("en_instruction");
    d["datePassageEnInstruction"] = json!("2026-11-20T10:00:00+01:00");
    ds.put(d);
    hub.restart_adapters(&config(&ds, true)).await;
    wait_for(|| {
        std::fs::read_to_string(&cursor).ok().as_deref() == Some("2026-11-20T10:00:00+01:00")
    })
    .await;
    assert_eq!(
        ds.since_asked()[3..],
        [Some("2026-11-14T10:00:00+01:00".to_string())]
    );
    hub.settle().await;
    let r = &requests_of(&hub, 102)[0];
    assert_eq!(r.contacts.len(), 2, "{r:#?}");
    hub.stop().await;
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not done within 10 s");
}
