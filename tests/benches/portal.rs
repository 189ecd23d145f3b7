//! Benchmark printing figures (release: `cargo bench -p contacthub-tests --bench portal`): the
//! citizens' space as a citizen uses it, over HTTP on loopback, one client with one call in
//! flight (a phone): the « Suivre une demande » page, then a reference and its code answered,
//! p50 / p99 server round trip, with the stylesheet (a static asset, no application call) as
//! the anchor of the same run; then, signed in with FranceConnect (the tests' issuer in its
//! shape), « Mon compte citoyen »'s pages for a person with twenty requests; and what each
//! page weighs (HTML + CSS, no script, no image).

use contacthub_tests::*;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `n` round trips of `call`, sorted, with the size of the last body.
async fn timed<F, Fut>(n: usize, mut call: F) -> (Vec<Duration>, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut out = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = call().await.expect("the space answers");
        assert!(r.status().is_success(), "{}", r.status());
        size = r.bytes().await.unwrap().len();
        out.push(t.elapsed());
    }
    out.sort();
    (out, size)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let issuer = contacthub_tests::oidc::TestIssuer::start_franceconnect().await;
    let secret = tempfile::tempdir().unwrap();
    let secret = secret.path().join("fc-secret");
    let hub = TestHub::start_with_communes(
        &Backend::Embedded,
        contacthub_app::auth::Access::Open,
        |portal| issuer.communes_file(portal, &secret),
    )
    .await;
    hub.register_marie().await;
    let (reference, code) = hub.voirie_request_with_code().await;
    // Marie's record as the état civil writes her, and nineteen more requests of hers.
    hub.hub
        .update_citizen(
            &hub.scope(GIVORS),
            &contacthub_app::commands::UpdateCitizen {
                citizen_id: "GIV-000900".into(),
                identity: Some(contacthub_core::pb::Identity {
                    usage_name: "Durand".into(),
                    first_names: "Marie".into(),
                    birth_date: "1980-06-15".into(),
                    phones: vec!["06 12 34 56 78".into()],
                    ..Default::default()
                }),
                idempotency_key: "bench".into(),
            },
        )
        .await
        .unwrap();
    for _ in 0..19 {
        hub.voirie_request_with_code().await;
    }
    let http = reqwest::Client::new();
    let n = 2_000;
    let base = hub.portal.clone();
    // Warm-up: connections, caches.
    for _ in 0..50 {
        http.get(format!("{base}/suivi")).send().await.unwrap();
    }
    let (css, css_bytes) = timed(n, || http.get(format!("{base}/static/portal.css")).send()).await;
    let (form, form_bytes) = timed(n, || http.get(format!("{base}/suivi")).send()).await;
    let (answered, answer_bytes) = timed(n, || {
        http.post(format!("{base}/suivi"))
            .form(&[("reference", reference.as_str()), ("code", code.as_str())])
            .send()
    })
    .await;
    // Signed in: FranceConnect's round trip once, then each page with the session.
    issuer.sign_in_next_as(serde_json::json!({
        "sub": "bench-marie", "given_name": "Marie", "family_name": "DURAND",
        "birthdate": "1980-06-15", "birthplace": "69091", "birthcountry": "99100", "gender": "female",
    }));
    let browser = no_redirects();
    let r = browser
        .get(format!("{base}/givors/connexion"))
        .send()
        .await
        .unwrap();
    let state = set_cookie(&r, "contacthub_fc").unwrap();
    let r = browser.get(location(&r)).send().await.unwrap();
    let r = browser
        .get(location(&r))
        .header("cookie", format!("contacthub_fc={state}"))
        .send()
        .await
        .unwrap();
    let session = format!(
        "contacthub_espace={}",
        set_cookie(&r, "contacthub_espace").expect("signed in")
    );
    let page = |path: String| {
        let (http, session) = (http.clone(), session.clone());
        move || {
            http.get(path.clone())
                .header("cookie", session.clone())
                .send()
        }
    };
    let (home, home_bytes) = timed(n, page(format!("{base}/givors/"))).await;
    let (one, one_bytes) = timed(n, page(format!("{base}/givors/demandes/{reference}"))).await;
    let (write, write_bytes) = timed(n, page(format!("{base}/givors/ecrire"))).await;
    let (details, details_bytes) = timed(n, page(format!("{base}/givors/coordonnees"))).await;
    let (household, household_bytes) = timed(n, page(format!("{base}/givors/foyer"))).await;
    let first = hub
        .hub
        .free_slots(GIVORS, "passeport-cni", hub.hub.now(), 28)
        .unwrap()[0]
        .start_us;
    let day = contacthub_core::courrier::paris(first).format("%Y-%m-%d");
    let (days, days_bytes) = timed(
        n,
        page(format!("{base}/givors/rendez-vous?type=passeport-cni")),
    )
    .await;
    let (times, times_bytes) = timed(
        n,
        page(format!(
            "{base}/givors/rendez-vous?type=passeport-cni&jour={day}"
        )),
    )
    .await;
    println!("citizens' space, one client, one call in flight, {n} calls each (p50 / p99):");
    for (what, d, bytes) in [
        ("stylesheet (anchor, no app call)", &css, css_bytes),
        ("« Suivre une demande » (form)", &form, form_bytes),
        ("reference + code answered", &answered, answer_bytes),
        ("Mes demandes (20 requests)", &home, home_bytes),
        ("one request", &one, one_bytes),
        ("Écrire à la mairie (form)", &write, write_bytes),
        ("Mes coordonnées", &details, details_bytes),
        ("Mon foyer", &household, household_bytes),
        ("rendez-vous: days (4 weeks)", &days, days_bytes),
        ("rendez-vous: a day's times", &times, times_bytes),
    ] {
        println!(
            "  {what:<34} {} / {}   {bytes} bytes",
            ms(percentile(d, 0.5)),
            ms(percentile(d, 0.99))
        );
    }
    let kb = |b: usize| format!("{:.1}", (b + css_bytes) as f64 / 1024.0).replace('.', ",");
    println!(
        "page weight, HTML + CSS: form {} KB, answer {} KB, Mes demandes {} KB, one request {} KB, écrire {} KB, coordonnées {} KB, foyer {} KB, rendez-vous {} / {} KB (target < 100 KB)",
        kb(form_bytes),
        kb(answer_bytes),
        kb(home_bytes),
        kb(one_bytes),
        kb(write_bytes),
        kb(details_bytes),
        kb(household_bytes),
        kb(days_bytes),
        kb(times_bytes)
    );
}
