//! Connector benchmark printing figures (release: `cargo bench -p contacthub-tests --bench
//! connectors`): a Publik portal's webhook (a signed « appel de webservice » with a form's
//! data), an Open311 street report and démarches-simplifiées's webhook (the hub then fetches
//! the dossier from a local server speaking the platform's GraphQL API, its pièce jointe
//! included), each posted over HTTP on loopback by one client with one call in flight, until
//! the hub answers — by then the contact is on the log, projected, and its request opened and
//! visible on the desk. p50 / p99, with `/healthz` (no application
//! call) as the anchor of the same run; embedded log.

use contacthub_app::auth::token_hash;
use contacthub_tests::*;
use hmac::{Hmac, Mac};
use std::time::{Duration, Instant};

const KEY: &str = "cle-partagee-publik-givors-0123";
const N: usize = 400;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0).replace('.', ",")
}

fn signed(nonce: usize) -> String {
    let unsigned = format!(
        "algo=sha256&timestamp={}&nonce=n{nonce}&orig=publik-givors",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(unsigned.as_bytes());
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        mac.finalize().into_bytes(),
    );
    let quoted: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    format!("{unsigned}&signature={quoted}")
}

#[tokio::main]
async fn main() {
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let ds = contacthub_tests::ds::Ds::start().await;
    let url = hub
        .start_adapters(&format!(
            "[[commune]]\ncode = \"69091\"\nattachment_private_networks = true\n[commune.publik]\norig = \"publik-givors\"\nkey = \"{KEY}\"\n[[commune.open311]]\nname = \"Bench\"\napi_key_sha256 = \"{}\"\n[[commune.demarches_simplifiees]]\ndemarche = 4321\ntoken = \"{}\"\ncategory = \"urbanisme\"\napi_url = \"{}\"\n",
            token_hash("cle-bench"),
            contacthub_tests::ds::TOKEN,
            ds.api()
        ))
        .await;
    let plan = ds.file("plan.pdf", b"%PDF-1.4\n% plan\n%%EOF\n");
    for i in 0..N {
        ds.put(serde_json::json!({
            "number": 1000 + i, "state": "en_construction",
            "dateDepot": "2026-12-03T10:00:00+01:00",
            "dateDerniereModification": "2026-12-03T10:00:00+01:00",
            "demarche": {"number": 4321, "title": "Déclaration préalable de travaux"},
            "usager": {"email": format!("d{i}@example.org")},
            "demandeur": {"__typename": "PersonnePhysique", "nom": "Durand", "prenom": format!("Marie{i}")},
            "champs": [
                {"label": "Adresse des travaux", "stringValue": "12 rue Roger Salengro"},
                {"label": "Plan", "stringValue": "plan.pdf", "files": [{"filename": "plan.pdf", "contentType": "application/pdf", "checksum": "c2hh", "url": plan}]}
            ],
            "messages": []
        }));
    }
    let http = reqwest::Client::new();
    for _ in 0..50 {
        http.get(format!("{url}/healthz")).send().await.unwrap();
    }
    let mut anchor = Vec::with_capacity(N);
    for _ in 0..N {
        let t = Instant::now();
        let r = http.get(format!("{url}/healthz")).send().await.unwrap();
        assert!(r.status().is_success());
        r.bytes().await.unwrap();
        anchor.push(t.elapsed());
    }
    let mut publik = Vec::with_capacity(N);
    for i in 0..N {
        let body = serde_json::json!({
            "url": format!("https://demarches.ville-givors.fr/signalement-voirie/{i}/"),
            "display_id": format!("15-{i}"),
            "display_name": format!("Signalement voirie - n°15-{i}"),
            "last_update_time": "2026-12-03T10:14:03+01:00",
            "user": {"name": format!("Personne {i}"), "email": format!("p{i}@example.org")},
            "fields": {"description": "Nid de poule", "adresse": "12 rue Émile Zola"},
            "workflow": {"status": {"id": "new", "name": "Nouveau"}}
        });
        let t = Instant::now();
        let r = http
            .post(format!("{url}/v1/69091/publik?{}", signed(i)))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
        publik.push(t.elapsed());
    }
    let mut open311 = Vec::with_capacity(N);
    for i in 0..N {
        let form = [
            ("api_key", "cle-bench".to_string()),
            ("service_code", "services-techniques".to_string()),
            ("address_string", format!("{i} avenue Jean Jaurès")),
            ("description", "Dépôt sauvage".to_string()),
            ("email", format!("q{i}@example.org")),
        ];
        let t = Instant::now();
        let r = http
            .post(format!("{url}/open311/v2/69091/requests.json"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
        open311.push(t.elapsed());
    }
    let mut demarches = Vec::with_capacity(N);
    for i in 0..N {
        let t = Instant::now();
        let r = http
            .post(format!("{url}/v1/69091/demarches-simplifiees"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "procedure_id=4321&dossier_id={}&state=en_construction",
                1000 + i
            ))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
        demarches.push(t.elapsed());
    }
    // Every form opened its request, visible now.
    let opened = hub
        .store
        .requests(GIVORS)
        .unwrap()
        .iter()
        .filter(|r| r.channel == contacthub_core::pb::Channel::WebForm as i32)
        .count();
    assert_eq!(opened, 3 * N);
    println!(
        "connectors, one client, one call in flight, {N} calls each, embedded log (p50 / p99):"
    );
    for (what, mut d) in [
        ("/healthz (anchor, no application call)", anchor),
        ("Publik webhook → request visible", publik),
        ("Open311 report → request visible", open311),
        ("démarches-simplifiées webhook → visible", demarches),
    ] {
        d.sort();
        println!(
            "  {what:<40} {} / {}",
            ms(percentile(&d, 0.5)),
            ms(percentile(&d, 0.99))
        );
    }
    hub.stop().await;
    imap().await;
}

/// IMAP: delivery → timeline with IDLE, and a first connection to 5,000 messages.
async fn imap() {
    let Some(dc) = contacthub_tests::dovecot::Dovecot::start(&[("mairie", "secret")]) else {
        println!("  IMAP: skipped (Dovecot is not installed)");
        return;
    };
    let mail = |i: usize, from: &str| {
        format!(
            "From: {from}\r\nTo: mairie@ville-givors.fr\r\nSubject: Demande {i}\r\nMessage-ID: <bench-{i}@example.org>\r\n\
             Date: Thu, 03 Dec 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, une question.\r\n"
        )
        .into_bytes()
    };
    const WAITING: usize = 5_000;
    for i in 0..WAITING {
        dc.deliver("mairie", &mail(i, &format!("p{}@example.org", i % 500)));
    }
    let mut hub = TestHub::start(&Backend::Embedded).await;
    let t = Instant::now();
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\n[[commune.imap]]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"mairie\"\npassword = \"secret\"\n",
        dc.port
    ))
    .await;
    let marks = hub.dir.path().join("connectors");
    let taken = |n: usize| {
        std::fs::read_dir(&marks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .any(|t| t.split_whitespace().nth(1) == Some(&n.to_string()))
    };
    while !taken(WAITING) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = t.elapsed();
    let timeline = |who: String| {
        let desk = hub.desk();
        async move {
            let mut desk = desk;
            desk.get_timeline(contacthub_core::pb::GetTimelineRequest {
                tenant: GIVORS.into(),
                citizen: by_email(&who),
                page_size: 10,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().entries.len())
            .unwrap_or(0)
        }
    };
    const IDLE: usize = 40;
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let who = format!("idle{i}@example.org");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        dc.deliver("mairie", &mail(WAITING + i, &who));
        while timeline(who.clone()).await == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        idle.push(t.elapsed());
    }
    idle.sort();
    println!(
        "  IMAP (Dovecot, IDLE) delivery → timeline {} / {} (target < 2 s; {IDLE} messages, one at a time)",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99))
    );
    println!(
        "  IMAP first connection to {WAITING} messages: {} s until all taken",
        format!("{:.1}", first.as_secs_f64()).replace('.', ",")
    );
    hub.stop().await;
}
