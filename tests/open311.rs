//! Open311 GeoReport v2 for a commune's street-report applications, on both log backends:
//! the services it takes, a report posted with an application's `api_key` (none, or another
//! commune's, refused) becomes a request of the hub (its place kept), the same report posted
//! twice is one, and where it stands is told by its id — nothing personal, and nothing of a
//! request that did not come this way.

use contacthub_app::auth::token_hash;
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_tests::*;

async fn open311(backend: Backend) {
    let mut hub = TestHub::start(&backend).await;
    let url = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\n[[commune.open311]]\nname = \"FixMyStreet\"\napi_key_sha256 = \"{}\"\n\
             [[commune]]\ncode = \"69096\"\n[[commune.open311]]\nname = \"Signalement Grigny\"\napi_key_sha256 = \"{}\"\n",
            token_hash("cle-fixmystreet"),
            token_hash("cle-grigny"),
        ))
        .await;
    let base = format!("{url}/open311/v2/69091");
    let http = reqwest::Client::new();
    let json = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };

    let (status, services) = json(
        http.get(format!("{base}/services.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "services-techniques",
            "urbanisme",
            "police-municipale",
            "other"
        ]
    );

    let report = |key: &str| {
        vec![
            ("api_key", key.to_string()),
            ("service_code", "services-techniques".to_string()),
            ("lat", "45.5906".to_string()),
            ("long", "4.7713".to_string()),
            ("address_string", "12 rue Émile Zola".to_string()),
            (
                "description",
                "Lampadaire éteint depuis une semaine".to_string(),
            ),
            ("email", "marie.durand@example.org".to_string()),
            ("first_name", "Marie".to_string()),
            ("last_name", "Durand".to_string()),
        ]
    };
    let post = |form: Vec<(&'static str, String)>| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.post(format!("{base}/requests.json"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // No key, a wrong one, another commune's: refused in GeoReport's error shape.
    for key in ["", "mauvaise-cle", "cle-grigny"] {
        let (status, body) = json(post(report(key)).await).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body[0]["code"], 403);
    }
    let (status, body) = json(post(report("cle-fixmystreet")).await).await;
    assert_eq!(status, 200, "{body}");
    let id = body[0]["service_request_id"].as_str().unwrap().to_string();
    assert!(
        body[0]["service_notice"]
            .as_str()
            .unwrap()
            .contains("réponse attendue au plus tard le"),
        "{body}"
    );
    // Posted again (a retry): the same report.
    let (_, again) = json(post(report("cle-fixmystreet")).await).await;
    assert_eq!(again[0]["service_request_id"], id.as_str());

    // It is a request of the hub: services techniques, its place kept, one contact.
    let status_of = |id: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .get(format!("{base}/requests/{id}.json"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let (status, text) = status_of(id.clone()).await;
    assert_eq!(status, 200, "{text}");
    let told: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(told[0]["status"], "open");
    assert_eq!(told[0]["service_code"], "services-techniques");
    assert_eq!(told[0]["address"], "12 rue Émile Zola Givors");
    assert!(told[0]["expected_datetime"].as_str().is_some(), "{text}");
    for personal in ["Durand", "marie.durand", "Lampadaire"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    let request = hub
        .store
        .requests(GIVORS)
        .unwrap()
        .into_iter()
        .find(|r| r.subject == "Signalement : services techniques")
        .expect("the report's request");
    assert_eq!(request.contacts.len(), 1);
    assert_eq!(
        request.location.clone().unwrap_or_default().street,
        "12 rue Émile Zola"
    );

    // Closed by the town hall: the application reads it closed.
    hub.hub
        .close_request(
            &hub.scope(GIVORS),
            &commands::CloseRequest {
                reference: request.reference.clone(),
                reason: pb::CloseReason::Withdrawn,
                redirected_to: String::new(),
                duplicate_of: String::new(),
                note: String::new(),
            },
        )
        .await
        .unwrap();
    let (_, text) = status_of(id.clone()).await;
    assert!(text.contains("\"status\":\"closed\""), "{text}");
    let (status, list) = json(
        http.get(format!(
            "{base}/requests.json?service_request_id={id},{}",
            "0".repeat(24)
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // An e-mail that claims the thread of a report id and quotes the request's reference
    // joins the request, but opens no way to read it as a report.
    let forged = "0".repeat(24);
    let mut mail = call(GIVORS, "mail-forged", "06 55 44 33 22", hub.hub.now());
    mail.channel = pb::Channel::Email as i32;
    mail.payload = Some(pb::event::Payload::Email(pb::Email {
        message_id: "forged@example.org".into(),
        thread_id: format!("open311:{forged}"),
        ..Default::default()
    }));
    mail.personal.as_mut().unwrap().subject = format!("Au sujet de {}", request.reference);
    hub.publish(&[mail]).await;
    hub.settle().await;
    let (status, _) = status_of(forged).await;
    assert_eq!(status, 404);
    // No listing of every report; no reading another request by its reference.
    let (status, _) = json(
        http.get(format!("{base}/requests.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = status_of(request.reference.clone()).await;
    assert_eq!(status, 404);
    // A report that says no place: refused with the reason, kept in the quarantine.
    let mut bad = report("cle-fixmystreet");
    bad.retain(|(k, _)| !["lat", "long", "address_string"].contains(k));
    let (status, body) = json(post(bad).await).await;
    assert_eq!(status, 400);
    assert!(
        body[0]["description"]
            .as_str()
            .unwrap()
            .contains("lat and long, or address_string"),
        "{body}"
    );
    // An anonymous report (GeoReport makes the person optional) is taken all the same.
    let anonymous = vec![
        ("api_key", "cle-fixmystreet".to_string()),
        ("service_code", "other".to_string()),
        ("address_string", "parc de la Mairie".to_string()),
        ("description", "Banc arraché".to_string()),
    ];
    let (status, body) = json(post(anonymous).await).await;
    assert_eq!(status, 200, "{body}");
    hub.stop().await;
}

on_every_backend!(open311);
