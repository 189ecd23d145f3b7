//! The web desk in a real browser: headless Chromium driven over WebDriver (Debian's chromium
//! and chromium-driver, started by scripts/test-all and named by `CONTACTHUB_TEST_WEBDRIVER`;
//! axe-core named by `CONTACTHUB_TEST_AXE`). An accueil agent signs in, finds Marie Durand by
//! typing, reads her timeline in Paris time, sees a visit recorded in another window appear
//! live, opens a request from her e-mail, answers and closes it; the dashboard page says what
//! GetDashboard says; another commune's page is refused; every page has no serious or critical
//! accessibility violation. Further days: an accueil agent keeping a record (create, correct,
//! household, a request, an answer previewed, the print queue, a letter registered for her),
//! a service agent and an élu. A screenshot of every page is kept in `target/desk-screenshots/`.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::event::contact;
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::{demo, tenant::Tenants};
use contacthub_tests::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::time::{Duration, Instant};

/// The WebDriver server, when one is configured (scripts/test-all starts chromedriver).
fn webdriver() -> Option<String> {
    match std::env::var("CONTACTHUB_TEST_WEBDRIVER") {
        Ok(w) if !w.is_empty() => Some(w),
        _ if std::env::var_os("CONTACTHUB_TEST_REQUIRE_BROWSER").is_some() => {
            panic!("CONTACTHUB_TEST_REQUIRE_BROWSER is set but CONTACTHUB_TEST_WEBDRIVER names no WebDriver server")
        }
        _ => None,
    }
}

/// The WebDriver server and axe-core's script, or `None` (the test is skipped, and says so)
/// when no WebDriver server is configured.
fn webdriver_and_axe() -> Option<(String, String)> {
    let Some(webdriver) = webdriver() else {
        eprintln!("no WebDriver server (CONTACTHUB_TEST_WEBDRIVER): skipped");
        return None;
    };
    let axe = std::fs::read_to_string(
        std::env::var("CONTACTHUB_TEST_AXE").expect("CONTACTHUB_TEST_AXE names axe.min.js"),
    )
    .expect("reading axe-core");
    Some((webdriver, axe))
}

async fn browser(webdriver: &str, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": std::env::var("CONTACTHUB_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    // chromedriver listens on loopback: plain HTTP.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a browser session from the WebDriver server")
}

fn screenshots() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/desk-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the page and checks it with axe-core: no serious or critical
/// violation of WCAG 2.1 A/AA.
async fn review(c: &Client, name: &str, axe: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    let found = violations(c, axe).await;
    assert!(
        found.is_empty(),
        "{name}: accessibility violations: {found:#?}"
    );
}

/// The serious and critical WCAG 2.1 A/AA violations axe-core finds on the page.
async fn violations(c: &Client, axe: &str) -> Vec<String> {
    let script = format!(
        "{axe}\nconst done = arguments[arguments.length - 1];\
         axe.run(document, {{ runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }})\
           .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
             .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))))\
           .catch(e => done(['axe failed: ' + e]));"
    );
    let found = c.execute_async(&script, vec![]).await.unwrap();
    serde_json::from_value(found).unwrap()
}

/// Waits until `check` holds on the page's text (at most 10 s).
async fn until_text(c: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        // While a page loads, the old one's elements go stale: read again.
        let text = c
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if check(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}; the page says:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Chooses the option of value `value` in the `<select>` `css`.
async fn choose(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accueil_agent_works_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil-givors'\ntoken_sha256='{}'\ntenants=['69091']\ncatalogue=true\n\
         [[agent]]\nid='dpo-givors'\ntoken_sha256='{}'\ntenants=['69091']\nrole='dpo'\n",
        token_hash("givors"),
        token_hash("dpo")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 4,
        ..Default::default()
    };
    let mut events: Vec<pb::Event> = demo::events(&cfg, &Tenants::builtin()).collect();
    // An e-mail of Marie Durand's to open a request from.
    let mut mail = contact(
        GIVORS,
        "test-email",
        "<cantine-1@example.fr>",
        at(2026, 10, 20, 8, 30),
        at(2026, 10, 20, 8, 30),
        Payload::Email(pb::Email {
            message_id: "<cantine-1@example.fr>".into(),
            mailbox: "contact".into(),
            ..Default::default()
        }),
        pb::Party {
            email: "marie.durand@example.fr".into(),
            ..Default::default()
        },
    );
    mail.category = pb::Category::Scolaire as i32;
    if let Some(p) = mail.personal.as_mut() {
        p.subject = "Cantine de septembre".into();
        p.text = "Bonjour,\nla facture de cantine de septembre est en double.\nMarie Durand".into();
    }
    events.push(mail);
    hub.publish(&events).await;
    hub.settle().await;
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;

    // Sign in.
    c.goto(&format!("{}/citoyens", hub.web)).await.unwrap();
    review(&c, "connexion", &axe).await;
    // The check can fail: an image without a text alternative is found.
    c.execute(
        "const i = document.createElement('img'); i.src = '/static/none.png'; i.id = 'probe'; document.body.append(i); return null;",
        vec![],
    )
    .await
    .unwrap();
    let found = violations(&c, &axe).await;
    assert!(
        found.iter().any(|v| v.starts_with("image-alt")),
        "{found:?}"
    );
    c.refresh().await.unwrap();
    fill(&c, "#token", "givors").await;
    click(&c, "button[type=submit]").await;
    until_text(&c, "signed in", |t| t.contains("Rechercher un usager")).await;
    review(&c, "recherche", &axe).await;
    // The search box has the focus when the page opens: the agent types at once.
    let focused = c
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, "q");
    // Keyboard first: from the top of the page, Tab reaches the skip link, Enter takes focus
    // to the content.
    c.execute(
        "document.body.tabIndex = -1; document.body.focus(); document.body.removeAttribute('tabindex');",
        vec![],
    )
    .await
    .unwrap();
    let body = c.find(Locator::Css("body")).await.unwrap();
    body.send_keys("\u{e004}").await.unwrap();
    let focused = c
        .execute("return document.activeElement.className;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, "skip");
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{e007}")
        .await
        .unwrap();
    let focused = c
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, "contenu");

    // Search as you type: no button pressed.
    fill(&c, "#q", "durand").await;
    until_text(&c, "results appear as one types", |t| {
        t.contains("Marie DURAND")
    })
    .await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("q=durand&commune=69091"));
    review(&c, "resultats", &axe).await;
    click(&c, "#resultats a[href='/citoyens/69091/GIV-000001']").await;
    let page = until_text(&c, "Marie Durand's page", |t| {
        t.contains("Historique de tous les canaux")
    })
    .await;
    for channel in ["téléphone", "courriel", "accueil"] {
        assert!(page.contains(channel), "{channel} in {page}");
    }
    // At the top: how she reached the commune, per channel, and her requests.
    let (brief, _) = page.split_once("Historique de tous les canaux").unwrap();
    assert!(brief.contains("En bref"), "{brief}");
    assert!(
        brief.contains("téléphone : ") && brief.contains(", le dernier le "),
        "{brief}"
    );
    // Times in Europe/Paris: each shown time is its instant in Paris.
    let times = c
        .execute(
            "return [...document.querySelectorAll('#timeline time')].map(t => [t.dateTime, t.textContent]);",
            vec![],
        )
        .await
        .unwrap();
    let times: Vec<(String, String)> = serde_json::from_value(times).unwrap();
    assert!(times.len() > 3, "{times:?}");
    for (iso, shown) in &times {
        let us = chrono::DateTime::parse_from_rfc3339(iso)
            .unwrap()
            .timestamp_micros();
        let paris = contacthub_core::courrier::paris(us)
            .format("%d/%m/%Y %H:%M")
            .to_string();
        assert_eq!(shown, &paris, "{iso}");
    }
    review(&c, "usager", &axe).await;

    // A second window on the same page sees a visit recorded in the first, without reload.
    let first = c.window().await.unwrap();
    let second = c.new_window(false).await.unwrap().handle;
    c.switch_to_window(second.clone()).await.unwrap();
    c.goto(&format!("{}/citoyens/69091/GIV-000001", hub.web))
        .await
        .unwrap();
    until_text(&c, "the second window", |t| t.contains("Historique")).await;
    c.execute("window.__notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    // Let its live stream connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.switch_to_window(first.clone()).await.unwrap();
    fill(&c, "#subject", "Demande de carte d'identité").await;
    click(&c, "form[action$='/visites'] button").await;
    until_text(&c, "the visit recorded", |t| {
        t.contains("Visite enregistrée")
    })
    .await;
    c.switch_to_window(second).await.unwrap();
    let appeared = Instant::now();
    until_text(&c, "the visit appears live", |t| {
        t.contains("Demande de carte d'identité")
    })
    .await;
    let live = c
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        live,
        serde_json::Value::Bool(true),
        "the page was not reloaded"
    );
    // The notice is at the top of the page, where the agent looks, not below the fold.
    let notice = c
        .execute(
            "const a = document.getElementById('annonce'); return [a.textContent, a.getBoundingClientRect().top];",
            vec![],
        )
        .await
        .unwrap();
    let (text, top): (String, f64) = serde_json::from_value(notice).unwrap();
    assert!(text.starts_with("Nouveau contact reçu"), "{text}");
    assert!(top < 400.0, "the notice is {top} px down the page");
    eprintln!(
        "visit seen in the other window {:?} after the first showed it",
        appeared.elapsed()
    );
    c.close_window().await.unwrap();
    c.switch_to_window(first).await.unwrap();

    // A request opened from her e-mail, answered in writing, closed.
    c.goto(&format!("{}/citoyens/69091/GIV-000001", hub.web))
        .await
        .unwrap();
    let email = c
        .find(Locator::XPath(
            "//ol[@id='timeline']//a[contains(., 'Cantine de septembre')]",
        ))
        .await
        .unwrap();
    email.click().await.unwrap();
    until_text(&c, "the e-mail in full", |t| {
        t.contains("la facture de cantine de septembre est en double")
    })
    .await;
    review(&c, "contact", &axe).await;
    c.find(Locator::Css("#r-category"))
        .await
        .unwrap()
        .select_by_value("scolaire")
        .await
        .unwrap();
    choose(&c, "#r-service", "education").await;
    click(&c, "form[action$='/demande'] button").await;
    let opened = until_text(&c, "the request opened", |t| t.contains("Demande ouverte.")).await;
    let reference = opened
        .split_whitespace()
        .find(|w| w.starts_with("GIV-D-"))
        .expect("a reference")
        .to_string();
    review(&c, "demande", &axe).await;
    c.find(Locator::Css("#channel"))
        .await
        .unwrap()
        .select_by_value("courriel")
        .await
        .unwrap();
    fill(&c, "#answer_ref", "<reponse-cantine@givors.fr>").await;
    click(&c, "form[action$='/reponse'] button").await;
    until_text(&c, "the answer recorded", |t| {
        t.contains("Réponse enregistrée.")
    })
    .await;
    click(&c, "form[action$='/cloture'] button").await;
    until_text(&c, "the request closed", |t| {
        t.contains("Demande clôturée.")
    })
    .await;
    c.goto(&format!("{}/citoyens/69091/GIV-000001", hub.web))
        .await
        .unwrap();
    let page = until_text(&c, "the citizen page", |t| t.contains("Demandes")).await;
    assert!(
        page.lines()
            .any(|l| l.contains(&reference) && l.contains("clôturée")),
        "{reference} closed in {page}"
    );

    // The mail room: a letter registered with its scan gets its chrono number, its receipt,
    // its request.
    let scan = profiles.path().join("scan-lettre.pdf");
    let pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
    std::fs::write(&scan, pdf).unwrap();
    c.goto(&format!("{}/courrier", hub.web)).await.unwrap();
    until_text(&c, "the mail room", |t| {
        t.contains("Enregistrer un courrier reçu")
    })
    .await;
    review(&c, "courrier", &axe).await;
    fill(&c, "#l-sender", "Jean Martin").await;
    fill(&c, "#l-phone", "06 98 76 54 32").await;
    fill(&c, "#l-subject", "Stationnement rue Pasteur").await;
    choose(&c, "#l-service", "voirie").await;
    c.find(Locator::Css("#l-scans"))
        .await
        .unwrap()
        .send_keys(&scan.display().to_string())
        .await
        .unwrap();
    click(&c, "form[enctype] button").await;
    let registered = until_text(&c, "the letter registered", |t| {
        t.contains("Courrier enregistré sous le numéro")
    })
    .await;
    let chrono = registered
        .split_whitespace()
        .find(|w| w.starts_with("GIV-2026-") || w.starts_with("GIV-2027-"))
        .expect("a chrono number")
        .trim_end_matches('.')
        .to_string();
    assert!(registered.contains("GIV-D-"), "its request: {registered}");
    review(&c, "lettre", &axe).await;
    let fetched = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             Promise.all([fetch(location.pathname + '/accuse.pdf'), fetch(location.pathname + '/scans/0')])\
               .then(rs => Promise.all(rs.map(r => r.arrayBuffer().then(b => [r.status, r.headers.get('content-type'), new TextDecoder().decode(b)]))))\
               .then(done);",
            vec![],
        )
        .await
        .unwrap();
    let fetched: Vec<(u16, String, String)> = serde_json::from_value(fetched).unwrap();
    assert_eq!(
        (fetched[0].0, fetched[0].1.as_str()),
        (200, "application/pdf")
    );
    assert!(fetched[0].2.starts_with("%PDF"), "the receipt of {chrono}");
    assert_eq!(fetched[1].2.as_bytes(), pdf, "the scan as uploaded");
    choose(&c, "#o-service", "police-municipale").await;
    click(&c, "form[action$='/orientation'] button").await;
    let routed = until_text(&c, "the letter routed", |t| t.contains("Courrier orienté.")).await;
    assert!(routed.contains("Police municipale"), "{routed}");
    assert!(
        routed.contains("Adressé à\nVoirie"),
        "services by name: {routed}"
    );

    // The worklist and the dashboard.
    c.goto(&format!("{}/demandes", hub.web)).await.unwrap();
    until_text(&c, "the worklist", |t| t.contains("Demandes à traiter")).await;
    review(&c, "demandes", &axe).await;
    c.goto(&format!("{}/tableau-de-bord?de=2024-11&a=2026-10", hub.web))
        .await
        .unwrap();
    until_text(&c, "the dashboard", |t| t.contains("Problèmes récurrents")).await;
    review(&c, "tableau-de-bord", &axe).await;
    let shown = c
        .execute(
            "return Object.fromEntries([...document.querySelectorAll('dd[data-figure]')].map(d => [d.dataset.figure, d.textContent]));",
            vec![],
        )
        .await
        .unwrap();
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
    assert_eq!(shown["Contacts reçus"], whole.contacts_received.to_string());
    assert_eq!(
        shown["Demandes ouvertes"],
        whole.requests_opened.to_string()
    );
    assert_eq!(
        shown["Demandes répondues"],
        whole.requests_answered.to_string()
    );
    assert_eq!(
        shown["En retard aujourd'hui"],
        whole.overdue_now.to_string()
    );

    // The records and catalogue pages.
    for (path, name, says) in [
        ("/a-rattacher", "a-rattacher", "Contacts à rattacher"),
        ("/doublons", "doublons", "Fiches en double possibles"),
        ("/catalogue", "catalogue", "Catalogue de réponses validées"),
    ] {
        c.goto(&format!("{}{path}", hub.web)).await.unwrap();
        until_text(&c, name, |t| t.contains(says)).await;
        review(&c, name, &axe).await;
    }
    fill(&c, "#n-title", "Inscription scolaire : pièces").await;
    fill(
        &c,
        "#n-text",
        "Livret de famille, justificatif de domicile, carnet de vaccination.",
    )
    .await;
    click(&c, "form[action='/catalogue/69091'] button").await;
    until_text(&c, "the answer published", |t| {
        t.contains("Réponse publiée.")
    })
    .await;
    review(&c, "reponse-catalogue", &axe).await;

    // Another commune: refused, nothing shown.
    c.goto(&format!("{}/citoyens/69096/GRI-000001", hub.web))
        .await
        .unwrap();
    let refused = until_text(&c, "refused", |t| t.contains("Accès refusé")).await;
    assert!(!refused.contains("GRI-0"));
    review(&c, "refus", &axe).await;

    // Signed out everywhere, the DPO signs in: the journal of what the accueil read today.
    c.goto(&format!("{}/citoyens", hub.web)).await.unwrap();
    click(&c, "button[name=partout]").await;
    until_text(&c, "signed out", |t| t.contains("Jeton d'agent")).await;
    fill(&c, "#token", "dpo").await;
    click(&c, "button[type=submit]").await;
    let journal = until_text(&c, "the DPO's journal", |t| {
        t.contains("Journal des consultations") && t.contains("accueil-givors")
    })
    .await;
    assert!(journal.contains("la chronologie") && journal.contains("guichet web"));
    review(&c, "journal", &axe).await;
    c.close().await.unwrap();
    hub.stop().await;
}

/// Reads the value of the form field `css`.
async fn value(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Sets a date field (typing into `<input type="date">` depends on the browser's locale).
async fn set_date(c: &Client, css: &str, iso: &str) {
    c.execute(
        "document.querySelector(arguments[0]).value = arguments[1]; return null;",
        vec![css.into(), iso.into()],
    )
    .await
    .unwrap();
}

/// An accueil agent keeps a record without the command line: creates it from a search that
/// found nobody (filled from what was typed), is told in French what is wrong, corrects it,
/// builds a household with a child whose age shows, and opens a request from the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accueil_agent_keeps_a_record_on_the_desk() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil-givors'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("givors")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;
    c.goto(&format!("{}/connexion", hub.web)).await.unwrap();
    fill(&c, "#token", "givors").await;
    click(&c, "button[type=submit]").await;
    until_text(&c, "signed in", |t| t.contains("Rechercher un usager")).await;

    // Nobody found: the page offers a new record, filled from the search.
    fill(&c, "#q", "madame lefebvre jeanne").await;
    until_text(&c, "nobody found", |t| {
        t.contains("Aucun usager ne correspond")
    })
    .await;
    click(&c, "#resultats a.action").await;
    until_text(&c, "the new record's form", |t| {
        t.contains("Nouvelle fiche")
    })
    .await;
    assert_eq!(value(&c, "#r-usage").await, "Lefebvre");
    assert_eq!(value(&c, "#r-first").await, "Jeanne");
    review(&c, "fiche-nouvelle", &axe).await;
    fill(&c, "#r-phones", "0612345678").await;
    fill(&c, "#r-emails", "jeanne.lefebvre@").await;
    set_date(&c, "#r-born", "1985-04-02").await;
    choose(&c, "#r-preferred", "courriel").await;
    click(&c, "input[name=consent]").await;
    click(&c, "form.record button[type=submit]").await;
    let wrong = until_text(&c, "the error in French", |t| {
        t.contains("n'est pas une adresse de courriel")
    })
    .await;
    assert!(wrong.contains("« jeanne.lefebvre@ »"), "{wrong}");
    assert_eq!(
        value(&c, "#r-phones").await,
        "0612345678",
        "nothing typed is lost"
    );
    review(&c, "fiche-erreur", &axe).await;
    fill(&c, "#r-emails", "jeanne.lefebvre@example.fr").await;
    click(&c, "form.record button[type=submit]").await;
    let page = until_text(&c, "the record created", |t| t.contains("Fiche créée.")).await;
    for shown in [
        "Jeanne Lefebvre",
        "06 12 34 56 78",
        "jeanne.lefebvre@example.fr",
        "02/04/1985",
        "courriel",
        "donné le",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    let parent_url = c.current_url().await.unwrap();
    let parent = parent_url
        .path_segments()
        .unwrap()
        .nth(2)
        .unwrap()
        .to_string();
    let stored = hub.store.citizen(GIVORS, &parent).unwrap().unwrap();
    assert_eq!(stored.phones, ["+33612345678"]);
    assert!(stored.identity.unwrap().consent.is_some());
    review(&c, "fiche-creee", &axe).await;

    // Corrected: her address.
    click(&c, "a[href$='/fiche']").await;
    until_text(&c, "the record's form", |t| t.contains("Corriger la fiche")).await;
    assert_eq!(value(&c, "#r-emails").await, "jeanne.lefebvre@example.fr");
    fill(&c, "#r-number", "8").await;
    fill(&c, "#r-street", "rue Jean Jaurès").await;
    fill(&c, "#r-postcode", "69700").await;
    fill(&c, "#r-city", "Givors").await;
    click(&c, "form.record button[type=submit]").await;
    let page = until_text(&c, "the record saved", |t| t.contains("Fiche enregistrée.")).await;
    assert!(page.contains("8 rue Jean Jaurès, 69700 Givors"), "{page}");

    // Her son, and the household.
    c.goto(&format!(
        "{}/fiches/nouvelle?commune=69091&q=lefebvre+léo",
        hub.web
    ))
    .await
    .unwrap();
    until_text(&c, "the child's form", |t| t.contains("Nouvelle fiche")).await;
    set_date(&c, "#r-born", "2019-06-15").await;
    click(&c, "form.record button[type=submit]").await;
    until_text(&c, "the child's record", |t| t.contains("Fiche créée.")).await;
    let child_url = c.current_url().await.unwrap();
    let child = child_url
        .path_segments()
        .unwrap()
        .nth(2)
        .unwrap()
        .to_string();
    c.goto(parent_url.as_str()).await.unwrap();
    until_text(&c, "her page", |t| t.contains("Foyer")).await;
    fill(&c, "#h-member", &child).await;
    choose(&c, "#h-relation", "enfant").await;
    click(&c, "form[action$='/foyer'] button").await;
    let page = until_text(&c, "the household", |t| t.contains("Foyer mis à jour.")).await;
    let today = contacthub_core::courrier::paris(chrono::Utc::now().timestamp_micros()).date();
    let age = contacthub_web::view::age("2019-06-15", today);
    assert!(
        page.contains(&format!("Léo Lefebvre (enfant), {age}")),
        "{page}"
    );
    review(&c, "foyer", &axe).await;
    // The child's page names his mother.
    c.goto(child_url.as_str()).await.unwrap();
    until_text(&c, "the child's household", |t| {
        t.contains("Jeanne Lefebvre")
    })
    .await;

    // A request opened from her page.
    c.goto(parent_url.as_str()).await.unwrap();
    until_text(&c, "her page", |t| t.contains("Nouvelle demande")).await;
    fill(&c, "#n-subject", "Renouvellement de carte d'identité").await;
    choose(&c, "#n-category", "etat-civil").await;
    choose(&c, "#n-service", "etat-civil").await;
    click(&c, "form[action$='/demandes'] button").await;
    let page = until_text(&c, "the request", |t| t.contains("Demande ouverte")).await;
    assert!(
        page.contains("Renouvellement de carte d'identité"),
        "{page}"
    );
    let requests = hub
        .hub
        .citizen_requests(&hub.scope(GIVORS), &parent)
        .unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].service, "etat-civil");

    // The answer: a validated answer fills the editor; the agent adds a salutation of her
    // own; the preview shows the letter as printed, with one salutation and the service's
    // signatory; a channel she does not prefer needs a reason, said in French.
    hub.hub
        .publish_answer(
            &hub.scope(GIVORS),
            &contacthub_app::catalogue::Draft {
                title: "Carte d'identité : délais".into(),
                service: "etat-civil".into(),
                text: "Comptez quatre semaines après le rendez-vous en mairie.".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    c.refresh().await.unwrap();
    until_text(&c, "the compose form", |t| t.contains("Rédiger et envoyer")).await;
    choose(&c, "#send_catalogue", "carte-d-identite-delais").await;
    c.execute(
        "document.getElementById('send_catalogue').dispatchEvent(new Event('change')); return null;",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        value(&c, "#send_text").await,
        "Comptez quatre semaines après le rendez-vous en mairie."
    );
    fill(
        &c,
        "#send_text",
        "Madame, Monsieur,\nComptez quatre semaines après le rendez-vous en mairie.",
    )
    .await;
    choose(&c, "#send_channel", "sms").await;
    click(&c, "button[name=apercu]").await;
    let refused = until_text(&c, "the reason asked", |t| {
        t.contains("Réponse non envoyée")
    })
    .await;
    assert!(
        refused.contains(
            "l'usager préfère le canal « courriel » : indiquez pourquoi vous répondez par « SMS »"
        ),
        "{refused}"
    );
    assert!(!refused.contains("channel_reason"), "{refused}");
    assert!(
        value(&c, "#send_text").await.contains("quatre semaines"),
        "the text is kept"
    );
    choose(&c, "#send_channel", "courrier").await;
    fill(&c, "#send_reason", "l'usagère le demande").await;
    click(&c, "button[name=apercu]").await;
    until_text(&c, "the preview", |t| t.contains("Aperçu : courrier")).await;
    let preview = c
        .execute(
            "return document.getElementById('apercu').innerText;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    // Once as the salutation, once in the closing formula: the one typed is dropped.
    assert_eq!(preview.matches("Madame, Monsieur,").count(), 2, "{preview}");
    for line in [
        "8 rue Jean Jaurès",
        "Claire Martin, responsable de l'état civil",
        "État civil, mairie de Givors",
        "Nous vous prions d'agréer",
    ] {
        assert!(preview.contains(line), "{line} in {preview}");
    }
    review(&c, "apercu-reponse", &axe).await;
    click(&c, "form[action$='/envoi'] button:not([name])").await;
    until_text(&c, "the answer sent", |t| {
        t.contains("Réponse mise à l'envoi")
    })
    .await;

    // The mail room prints it from the desk and marks it posted, closing the request in the
    // same step.
    c.goto(&format!("{}/impression", hub.web)).await.unwrap();
    let queue = until_text(&c, "the print queue", |t| t.contains("Lettres à imprimer")).await;
    assert!(
        queue.contains("Jeanne Lefebvre") || queue.contains("LEFEBVRE"),
        "{queue}"
    );
    review(&c, "impression", &axe).await;
    click(&c, "input[name=cloturer]").await;
    click(&c, "button[formaction$='/imprimees']").await;
    until_text(&c, "marked printed", |t| {
        t.contains("demandes clôturées : 1.")
    })
    .await;
    let r = &hub
        .hub
        .citizen_requests(&hub.scope(GIVORS), &parent)
        .unwrap()[0];
    assert_eq!(r.status, pb::RequestStatus::Closed as i32);
    assert_eq!(r.answer_channel, pb::Channel::Courrier as i32);

    // Her letter at the mail room: the clerk picks her as its sender as he types, and writes
    // the address on the envelope, which the acknowledgement of receipt carries.
    c.goto(&format!("{}/courrier", hub.web)).await.unwrap();
    until_text(&c, "the mail room", |t| {
        t.contains("Enregistrer un courrier reçu")
    })
    .await;
    fill(&c, "#l-who", "lefebvre jeanne").await;
    until_text(&c, "the citizens to pick from", |t| t.contains(&parent)).await;
    click(&c, &format!("button[data-pick-id='{parent}']")).await;
    until_text(&c, "the sender picked", |t| {
        t.contains(&format!("Expéditeur : Jeanne Lefebvre ({parent})"))
    })
    .await;
    review(&c, "courrier-expediteur", &axe).await;
    fill(&c, "#l-address", "2 place de la Liberté").await;
    fill(&c, "#l-postcode", "69700").await;
    fill(&c, "#l-city", "Givors").await;
    fill(&c, "#l-subject", "Demande d'acte de mariage").await;
    click(&c, "form[action='/courrier/69091'] button[type=submit]").await;
    let letter = until_text(&c, "the letter registered", |t| {
        t.contains("Demande d'acte de mariage")
    })
    .await;
    assert!(letter.contains("Jeanne Lefebvre"), "{letter}");
    let chrono = c
        .current_url()
        .await
        .unwrap()
        .path_segments()
        .unwrap()
        .nth(2)
        .unwrap()
        .to_string();
    let state = hub.hub.letter_for(&hub.scope(GIVORS), &chrono).unwrap();
    assert_eq!(
        state.citizen_id, parent,
        "her record, not a provisional one"
    );
    let receipt = hub.hub.receipt(&hub.scope(GIVORS), &chrono).unwrap();
    if let Some(text) = pdf_text(&receipt.pdf) {
        assert!(
            text.contains("2 place de la Liberté") && text.contains("69700 Givors"),
            "{text}"
        );
    }
    // An SMS from a number nobody has: a provisional record, joined to hers from its page.
    let mut sms = call(
        GIVORS,
        "sms-unknown-1",
        "07 66 55 44 33",
        at(2026, 11, 30, 9, 0),
    );
    sms.channel = pb::Channel::Sms as i32;
    sms.payload = Some(Payload::Sms(pb::Sms {
        message_sid: "SMunknown1".into(),
        ..Default::default()
    }));
    if let Some(p) = sms.personal.as_mut() {
        p.text = "C'est Jeanne Lefebvre, j'ai changé de numéro.".into();
    }
    hub.publish(&[sms.clone()]).await;
    hub.settle().await;
    let provisional = hub
        .store
        .applied_entry(GIVORS, &sms.event_id)
        .unwrap()
        .unwrap()
        .citizen_id;
    c.goto(&format!("{}/citoyens/69091/{provisional}", hub.web))
        .await
        .unwrap();
    until_text(&c, "the provisional record", |t| {
        t.contains("Rattacher à la fiche d'un usager connu")
    })
    .await;
    fill(&c, "#j-who", "lefebvre jeanne").await;
    until_text(&c, "candidates", |t| t.contains(&parent)).await;
    click(&c, &format!("button[data-pick-id='{parent}']")).await;
    review(&c, "fiche-provisoire", &axe).await;
    click(&c, "form[action$='/rattacher'] button[type=submit]").await;
    let joined = until_text(&c, "joined", |t| t.contains("Fiche provisoire rattachée")).await;
    assert!(joined.contains("j'ai changé de numéro"), "{joined}");
    assert!(
        joined.contains("07 66 55 44 33"),
        "her new number on her record: {joined}"
    );
    assert!(c.current_url().await.unwrap().as_str().contains(&parent));

    // On a phone (360 px wide) no page scrolls sideways: the menu folds, forms stack, wide
    // tables scroll inside their frame.
    c.set_window_size(360, 800).await.unwrap();
    let width = c
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(width <= 400, "a phone's width, not {width}");
    let request = hub
        .hub
        .citizen_requests(&hub.scope(GIVORS), &parent)
        .unwrap()[0]
        .reference
        .clone();
    for (n, path) in [
        "/citoyens?q=lefebvre".to_string(),
        format!("/citoyens/69091/{parent}"),
        format!("/citoyens/69091/{parent}/fiche"),
        "/demandes".into(),
        format!("/demandes/69091/{request}"),
        "/courrier".into(),
        format!("/courrier/69091/{chrono}"),
        "/impression".into(),
        "/a-rattacher".into(),
        "/doublons".into(),
        "/catalogue".into(),
        "/tableau-de-bord".into(),
    ]
    .into_iter()
    .enumerate()
    {
        c.goto(&format!("{}{path}", hub.web)).await.unwrap();
        until_text(&c, &path, |t| t.contains("Se déconnecter")).await;
        let (scroll, inner) = c
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .map(|v| serde_json::from_value::<(u64, u64)>(v).unwrap())
            .unwrap();
        if scroll > inner {
            let wide = c
                .execute(
                    "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('table, .scroll, pre')).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + getComputedStyle(e).display + ' ' + getComputedStyle(e.parentElement).overflowX + ' ' + e.parentElement.className);",
                    vec![],
                )
                .await
                .unwrap();
            panic!("{path} scrolls sideways: {scroll} px in {inner}: {wide}");
        }
        review(&c, &format!("telephone-{n:02}"), &axe).await;
    }

    c.close().await.unwrap();
    hub.stop().await;
}

/// A service agent's and an élu's day on the desk, without the command line. The voirie
/// agent lands on the worklist, takes a request (« m'attribuer »), answers it by letter after
/// reading the preview, closes the answered ones in one step and never sees the CCAS's
/// matter; the élu lands on the dashboard, picks a preset period, compares with the year
/// before and is refused a citizen's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_agent_and_an_elu_work_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='voirie-givors'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n\
         [[agent]]\nid='maire-givors'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n",
        token_hash("voirie"),
        token_hash("elu")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 6,
        ..Default::default()
    };
    let events: Vec<pb::Event> = demo::events(&cfg, &Tenants::builtin()).collect();
    hub.publish(&events).await;
    hub.settle().await;
    let open = |subject: &str, service: &str, category: pb::Category| {
        let hub = &hub;
        let (subject, service) = (subject.to_string(), service.to_string());
        async move {
            hub.hub
                .open_request(
                    &hub.scope(GIVORS),
                    &contacthub_app::commands::OpenRequest {
                        subject,
                        category,
                        service,
                        citizen_id: "GIV-000001".into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .reference
        }
    };
    let pothole = open(
        "Nid-de-poule rue Pasteur",
        "voirie",
        pb::Category::ServicesTechniques,
    )
    .await;
    let secret = open("Aide au loyer", "ccas", pb::Category::Ccas).await;
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;

    // The voirie agent starts on the worklist.
    c.goto(&format!("{}/connexion", hub.web)).await.unwrap();
    fill(&c, "#token", "voirie").await;
    click(&c, "button[type=submit]").await;
    let list = until_text(&c, "the worklist", |t| t.contains("Demandes à traiter")).await;
    assert!(list.contains("Nid-de-poule rue Pasteur"), "{list}");
    assert!(
        !list.contains(&secret) && !list.contains("Aide au loyer"),
        "{list}"
    );
    click(
        &c,
        &format!("form[action$='/{pothole}/attribution'] button"),
    )
    .await;
    until_text(&c, "assigned", |t| t.contains("Demande attribuée.")).await;
    review(&c, "voirie-demandes", &axe).await;
    c.goto(&format!("{}/demandes/69091/{pothole}", hub.web))
        .await
        .unwrap();
    until_text(&c, "the request", |t| t.contains("Rédiger et envoyer")).await;
    choose(&c, "#send_channel", "courrier").await;
    fill(&c, "#send_reason", "réponse avec le plan des travaux").await;
    fill(
        &c,
        "#send_text",
        "L'équipe de voirie comblera le nid-de-poule la semaine prochaine.",
    )
    .await;
    click(&c, "button[name=apercu]").await;
    until_text(&c, "the preview", |t| t.contains("Aperçu : courrier")).await;
    review(&c, "voirie-apercu", &axe).await;
    click(&c, "form[action$='/envoi'] button:not([name])").await;
    until_text(&c, "sent", |t| t.contains("Réponse mise à l'envoi")).await;
    // The letter printed and posted (the print queue), the request is to close.
    let letter = hub.hub.print_queue(&hub.scope(GIVORS)).unwrap()[0]
        .answer
        .clone()
        .unwrap();
    hub.hub
        .mark_printed(&hub.scope(GIVORS), &letter.answer_event_id, "")
        .await
        .unwrap();
    c.goto(&format!("{}/demandes", hub.web)).await.unwrap();
    let list = until_text(&c, "to close", |t| t.contains("Répondues, à clôturer")).await;
    let (_, to_close) = list.split_once("Répondues, à clôturer").unwrap();
    assert!(to_close.contains(&pothole), "{to_close}");
    click(&c, "form[action$='/cloture-groupee'] button").await;
    until_text(&c, "closed", |t| t.contains("Demandes clôturées : 1.")).await;
    assert_eq!(
        hub.hub
            .get_request(&hub.scope(GIVORS), &pothole)
            .unwrap()
            .status,
        pb::RequestStatus::Closed as i32
    );
    // The CCAS's matter: refused at its address too.
    c.goto(&format!("{}/demandes/69091/{secret}", hub.web))
        .await
        .unwrap();
    let refused = until_text(&c, "the CCAS request", |t| t.contains("Introuvable")).await;
    assert!(!refused.contains("Aide au loyer"), "{refused}");
    click(&c, "a[href='/']").await;
    until_text(&c, "back to work", |t| t.contains("Demandes à traiter")).await;
    click(&c, ".who button").await;
    until_text(&c, "signed out", |t| t.contains("Jeton")).await;

    // The élu starts on the dashboard.
    fill(&c, "#token", "elu").await;
    click(&c, "button[type=submit]").await;
    until_text(&c, "the dashboard", |t| t.contains("Tableau de bord")).await;
    click(&c, "nav.presets a[href*='de=']").await;
    let page = until_text(&c, "a preset period", |t| t.contains("De ")).await;
    assert!(page.contains("Contacts reçus"), "{page}");
    let compare = c
        .find(Locator::XPath("//a[contains(., 'Comparer avec')]"))
        .await
        .unwrap();
    compare.click().await.unwrap();
    until_text(&c, "compared", |t| t.contains("un an plus tôt")).await;
    review(&c, "elu-tableau-de-bord", &axe).await;
    c.goto(&format!("{}/citoyens/69091/GIV-000001", hub.web))
        .await
        .unwrap();
    let refused = until_text(&c, "refused", |t| t.contains("Accès refusé")).await;
    assert!(!refused.contains("DURAND"), "{refused}");
    c.close().await.unwrap();
    hub.stop().await;
}

/// The waiting line in the browser: the kiosk (a `borne` device account) gives a ticket, an
/// agent at the pré-accueil gives one naming Marie Durand, two counters call them, the hall
/// screen opened before shows each call as it happens (no reload), the counter shows Marie's
/// name and record, the ticket is closed as sent to urbanisme and the visit is in her
/// timeline; then the accueil's figures. Every page passes axe-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_line_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil-givors'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='borne-hdv'\ntoken_sha256='{}'\ntenants=['69091']\nrole='borne'\n",
        token_hash("givors"),
        token_hash("borne")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    hub.register_marie().await;
    // Monday 7 December 2026, 09:00 in Givors.
    hub.set_clock(at(2026, 12, 7, 8, 0));
    let profiles = tempfile::tempdir().unwrap();
    let kiosk = browser(&webdriver, &profiles.path().join("borne")).await;
    let agent = browser(&webdriver, &profiles.path().join("agent")).await;

    // The kiosk signs in once and lands on the pré-accueil.
    kiosk.goto(&format!("{}/connexion", hub.web)).await.unwrap();
    fill(&kiosk, "#token", "borne").await;
    click(&kiosk, "button[type=submit]").await;
    until_text(&kiosk, "the kiosk's page", |t| {
        t.contains("Pour quel motif venez-vous ?")
    })
    .await;
    review(&kiosk, "pre-accueil", &axe).await;
    assert!(
        kiosk.find(Locator::Css("#fiche")).await.is_err(),
        "the kiosk names no one"
    );
    click(&kiosk, "button[name=motive][value='1']").await;
    let ticket = until_text(&kiosk, "the ticket", |t| t.contains("E001")).await;
    assert!(ticket.contains("Vous êtes le prochain."), "{ticket}");
    review(&kiosk, "ticket", &axe).await;
    // Its receipt, for an 80 mm printer.
    let (status, _) = {
        let url = format!(
            "{}/accueil/69091/tickets/hdv-20261207-E001/ticket.pdf",
            hub.web
        );
        let cookies = kiosk.get_all_cookies().await.unwrap();
        let jar = cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ");
        let r = reqwest::Client::new()
            .get(&url)
            .header("cookie", jar)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let pdf = r.bytes().await.unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "a PDF");
        if let Some(text) = pdf_text(&pdf) {
            assert!(
                text.contains("E001") && text.contains("État civil"),
                "{text}"
            );
        }
        (status, ())
    };
    assert_eq!(status, reqwest::StatusCode::OK);

    // The hall screen, opened before any call.
    kiosk
        .goto(&format!("{}/accueil/ecran?commune=69091&site=hdv", hub.web))
        .await
        .unwrap();
    until_text(&kiosk, "the screen", |t| {
        t.contains("1 personne en attente")
    })
    .await;
    review(&kiosk, "ecran", &axe).await;

    // The agent at the pré-accueil: a ticket for Marie, « autre : stationnement ».
    agent.goto(&format!("{}/connexion", hub.web)).await.unwrap();
    fill(&agent, "#token", "givors").await;
    click(&agent, "button[type=submit]").await;
    until_text(&agent, "signed in", |t| t.contains("Rechercher un usager")).await;
    agent
        .goto(&format!(
            "{}/accueil/borne?commune=69091&site=hdv&fiche=GIV-000900",
            hub.web
        ))
        .await
        .unwrap();
    assert_eq!(value(&agent, "#fiche").await, "GIV-000900");
    fill(&agent, "#label", "stationnement").await;
    click(&agent, "button[name=motive][value='9']").await;
    let ticket = until_text(&agent, "Marie's ticket", |t| t.contains("A001")).await;
    assert!(ticket.contains("1 personne avant vous."), "{ticket}");
    until_text(&kiosk, "the screen counts two", |t| {
        t.contains("2 personnes en attente")
    })
    .await;

    // Counter 3 (état civil only) calls E001; the screen shows it without a reload.
    agent
        .goto(&format!(
            "{}/accueil/guichet?commune=69091&site=hdv&guichet=3",
            hub.web
        ))
        .await
        .unwrap();
    review(&agent, "guichet", &axe).await;
    hub.set_clock(at(2026, 12, 7, 8, 5));
    click(&agent, "button.primary").await;
    until_text(&agent, "E001 at counter 3", |t| {
        t.contains("appelé au guichet 3")
    })
    .await;
    until_text(&kiosk, "the screen announces E001", |t| {
        t.contains("E001") && t.contains("guichet 3")
    })
    .await;
    // Counter 1 calls A001: Marie's name and record are on the counter's page.
    agent
        .goto(&format!(
            "{}/accueil/guichet?commune=69091&site=hdv&guichet=1",
            hub.web
        ))
        .await
        .unwrap();
    hub.set_clock(at(2026, 12, 7, 8, 8));
    click(&agent, "button.primary").await;
    let at_counter = until_text(&agent, "A001 at counter 1", |t| {
        t.contains("Fiche de Marie Durand")
    })
    .await;
    assert!(at_counter.contains("Autre : stationnement"), "{at_counter}");
    let screen = until_text(&kiosk, "the screen announces A001 first", |t| {
        t.find("A001")
            .is_some_and(|a| t.find("E001").is_some_and(|e| a < e))
    })
    .await;
    assert!(screen.contains("guichet 1"), "{screen}");
    let announced = kiosk
        .execute(
            "return document.getElementById('annonce-appel').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(announced.as_str(), Some("A001 au guichet 1"), "{announced}");
    review(&kiosk, "ecran-appel", &axe).await;

    // Marie is there; sent to urbanisme.
    hub.set_clock(at(2026, 12, 7, 8, 9));
    click(&agent, "button[value=debut]").await;
    // (« appelé au guichet 1 » holds « au guichet 1 »: wait for the page after the click.)
    until_text(&agent, "started", |t| {
        t.contains("au guichet 1") && !t.contains("appelé au guichet 1")
    })
    .await;
    hub.set_clock(at(2026, 12, 7, 8, 21));
    click(&agent, "#oriente").await;
    choose(&agent, "#service", "urbanisme").await;
    click(&agent, "fieldset button[type=submit]").await;
    until_text(&agent, "closed", |t| t.contains("Ticket clos.")).await;
    agent
        .goto(&format!("{}/citoyens/69091/GIV-000900", hub.web))
        .await
        .unwrap();
    until_text(&agent, "the visit in Marie's timeline", |t| {
        t.contains("guichet 1 : orienté vers un service (Urbanisme)")
    })
    .await;

    // The accueil's figures for that Monday.
    agent
        .goto(&format!(
            "{}/accueil/rapport?commune=69091&de=2026-12-07&a=2026-12-07",
            hub.web
        ))
        .await
        .unwrap();
    let figures = until_text(&agent, "the figures", |t| t.contains("Fréquentation")).await;
    assert!(figures.contains("1 (100,0 %)"), "{figures}");
    assert!(figures.contains("Tickets\n2"), "{figures}");
    review(&agent, "frequentation", &axe).await;
    hub.set_clock(0);
    kiosk.close().await.unwrap();
    agent.close().await.unwrap();
}

/// The phone on the desk in the browser: the « Téléphone » page open, a call from Marie
/// Durand rings at the agent's extension on a fake Asterisk Manager Interface and her name
/// shows before the agent picks up (the time printed); when the call ends the agent gives
/// its motive in one step and lands on her page, where the call says what it was about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_shows_who_calls_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n",
        token_hash("givors")
    ))
    .unwrap();
    let switch = contacthub_tests::ami::FakeSwitch::start("contacthub", "s3cret").await;
    let mut hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    hub.register_marie().await;
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"201\"]\n\
         [commune.ami]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"contacthub\"\nsecret = \"s3cret\"\n\
         [commune.ami.agents]\n\"201\" = \"accueil-1\"\n",
        switch.port
    ))
    .await;
    until("the hub logs in to the switch", || switch.logins() == 1).await;
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;
    c.goto(&format!("{}/connexion", hub.web)).await.unwrap();
    fill(&c, "#token", "givors").await;
    click(&c, "button[type=submit]").await;
    until_text(&c, "signed in", |t| t.contains("Rechercher un usager")).await;
    c.goto(&format!("{}/telephone", hub.web)).await.unwrap();
    until_text(&c, "the phone page", |t| t.contains("Aucun appel en cours")).await;
    review(&c, "telephone", &axe).await;
    // Let the page's stream open before the call rings.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let call = contacthub_tests::ami::recorded("answered.txt");
    let rung = Instant::now();
    switch.send(&call[..2].concat());
    until_text(&c, "Marie's name", |t| t.contains("Marie Durand")).await;
    println!(
        "screen pop in the browser: Newchannel to the caller's name on the page in {:.1} ms",
        rung.elapsed().as_secs_f64() * 1000.0
    );
    review(&c, "telephone-appel", &axe).await;
    switch.send(&call[2..].concat());
    until_text(&c, "the motive's form", |t| {
        t.contains("Enregistrer le motif")
    })
    .await;
    until("the call is recorded", || {
        hub.store
            .applied(
                GIVORS,
                &contacthub_core::event::event_id(GIVORS, "asterisk-cdr", "1764838800.101"),
            )
            .unwrap()
            .is_some()
    })
    .await;
    fill(&c, "#motif", "Attestation d'accueil").await;
    choose(&c, "#categorie", "1").await;
    click(&c, ".motif-appel button[type=submit]").await;
    let page = until_text(&c, "Marie's page with the call's motive", |t| {
        t.contains("Attestation d'accueil")
    })
    .await;
    assert!(page.contains("Marie Durand"), "{page}");
    c.close().await.unwrap();
}

/// Tells Chromium (through chromedriver's own endpoint) to act as if the network were gone,
/// or back.
async fn network(c: &Client, webdriver: &str, offline: bool) {
    let session = c.session_id().await.unwrap().expect("a WebDriver session");
    let r = reqwest::Client::new()
        .post(format!(
            "{}/session/{session}/chromium/network_conditions",
            webdriver.trim_end_matches('/')
        ))
        .json(&serde_json::json!({
            "network_conditions": {
                "offline": offline, "latency": 0,
                "download_throughput": 1_000_000, "upload_throughput": 1_000_000
            }
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// An élu at a permanence, on a phone-sized window: a meeting typed without network stays in
/// the browser, leaves when the network is back, and is one contact and one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanence_offline_then_online_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='maire-givors'\ntoken_sha256='{}'\ntenants=['69091']\nrole='elu'\n",
        token_hash("elu")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    hub.register_marie().await;
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/connexion", hub.web)).await.unwrap();
    fill(&c, "#token", "elu").await;
    click(&c, "button[type=submit]").await;
    until_text(&c, "signed in", |t| t.contains("Tableau de bord")).await;
    c.goto(&format!("{}/permanence", hub.web)).await.unwrap();
    until_text(&c, "the permanence page", |t| {
        t.contains("Aucune rencontre enregistrée.")
    })
    .await;
    review(&c, "permanence", &axe).await;

    network(&c, &webdriver, true).await;
    fill(&c, "#p-lieu", "Maison du quartier des Vernes").await;
    fill(&c, "#p-nom", "Marie Durand").await;
    fill(&c, "#p-telephone", "06 12 34 56 78").await;
    choose(&c, "#p-motif", "services-techniques").await;
    fill(&c, "#p-objet", "Lampadaire éteint rue Jean-Jaurès").await;
    fill(&c, "#p-promesse", "Le faire réparer avant Noël").await;
    choose(&c, "#p-service", "voirie").await;
    click(&c, "form[data-offline] button[type=submit]").await;
    until_text(&c, "kept in the browser", |t| {
        t.contains("1 rencontre attend le réseau")
    })
    .await;
    review(&c, "permanence-hors-ligne", &axe).await;
    // Nothing reached the hub; the form is ready for the next person, at the same place.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let met = |hub: &TestHub| {
        hub.timeline_of(GIVORS, "GIV-000900")
            .iter()
            .filter(|e| e.facts.as_ref().is_some_and(|f| f.permanence))
            .count()
    };
    assert_eq!(met(&hub), 0);
    assert_eq!(value(&c, "#p-nom").await, "");
    assert_eq!(value(&c, "#p-lieu").await, "Maison du quartier des Vernes");

    network(&c, &webdriver, false).await;
    let page = until_text(&c, "sent once the network is back", |t| {
        t.contains("Rencontre envoyée.") && t.contains("Promis : Le faire réparer avant Noël")
    })
    .await;
    assert!(page.contains("pour Voirie : reçue"), "{page}");
    assert!(!page.contains("attend le réseau"), "{page}");
    assert_eq!(met(&hub), 1);
    // What the hub refuses stays here with the reason, until taken back and corrected.
    fill(&c, "#p-nom", "Jean Martin").await;
    fill(&c, "#p-telephone", "12").await;
    fill(&c, "#p-objet", "Banc cassé au square").await;
    click(&c, "form[data-offline] button[type=submit]").await;
    until_text(&c, "refused, kept", |t| {
        t.contains("Jean Martin — Banc cassé au square : refusée (Impossible : « 12 » n'est pas un numéro de téléphone.)")
    })
    .await;
    click(&c, "#en-attente button").await;
    assert_eq!(value(&c, "#p-telephone").await, "12");
    fill(&c, "#p-telephone", "06 98 76 54 32").await;
    click(&c, "form[data-offline] button[type=submit]").await;
    let page = until_text(&c, "corrected and sent", |t| {
        t.contains("Jean Martin (06 98 76 54 32)")
    })
    .await;
    assert!(!page.contains("refusée"), "{page}");
    // Sent once: the page, read again, lists it once and keeps nothing waiting.
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    c.refresh().await.unwrap();
    let page = until_text(&c, "the page again", |t| {
        t.contains("Personnes rencontrées")
    })
    .await;
    assert_eq!(
        page.matches("Promis : Le faire réparer avant Noël").count(),
        1,
        "{page}"
    );
    assert_eq!(met(&hub), 1);
    let stored: serde_json::Value = c
        .execute("return Object.keys(localStorage).length;", vec![])
        .await
        .unwrap();
    assert_eq!(stored, serde_json::json!(0), "nothing left in the browser");
    review(&c, "permanence-envoyee", &axe).await;
    c.close().await.unwrap();
}

/// The citizens' space in the browser, on a phone-sized window: « Suivre une demande »
/// with the reference and the code an agent gave, keyboard only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_follows_a_request_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let hub = TestHub::start(&Backend::Embedded).await;
    hub.register_marie().await;
    let (reference, code) = hub.voirie_request_with_code().await;
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;
    c.set_window_size(360, 740).await.unwrap();
    c.goto(&format!("{}/suivi", hub.portal)).await.unwrap();
    until_text(&c, "the follow-up page", |t| {
        t.contains("Suivre une demande")
    })
    .await;
    review(&c, "suivi", &axe).await;
    fill(&c, "#reference", &reference).await;
    fill(&c, "#code", "AAAA-AAAA").await;
    c.find(Locator::Css("#code"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    until_text(&c, "a wrong code", |t| {
        t.contains("Aucune demande ne correspond")
    })
    .await;
    review(&c, "suivi-inconnue", &axe).await;
    fill(&c, "#code", &code).await;
    click(&c, "button[type=submit]").await;
    let page = until_text(&c, "where it stands", |t| t.contains("Réponse promise")).await;
    assert!(page.contains(&format!("Demande {}", reference)), "{page}");
    assert!(page.contains("Voirie") && page.contains("reçue"), "{page}");
    assert!(!page.contains("Durand"), "{page}");
    review(&c, "suivi-demande", &axe).await;
    c.close().await.unwrap();
}

/// « Mon compte citoyen » in the browser, on a phone-sized window: the communes, Givors's
/// home, FranceConnect (the tests' issuer in its shape) and back signed in, one's requests,
/// one of them, a message about it with a scan — on the accueil's desk at once —, signing out
/// at FranceConnect too. axe-core on every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_signs_in_with_franceconnect_in_the_browser() {
    let Some((webdriver, axe)) = webdriver_and_axe() else {
        return;
    };
    let issuer = contacthub_tests::oidc::TestIssuer::start_franceconnect().await;
    let secret = tempfile::tempdir().unwrap();
    let secret = secret.path().join("fc-secret");
    let mut hub = TestHub::start_with_communes(&Backend::Embedded, Access::Open, |portal| {
        issuer.communes_file(portal, &secret)
    })
    .await;
    let gateway = contacthub_tests::gateway::Gateway::start().await;
    hub.start_adapters(&format!(
        "[[commune]]\ncode = \"69091\"\nsms_auth_token = \"{}\"\n\n[commune.sms_gateway]\napi_url = \"{}\"\naccount_sid = \"{}\"\nfrom = \"+33472000000\"\n",
        contacthub_tests::gateway::TOKEN,
        gateway.url,
        contacthub_tests::gateway::ACCOUNT,
    ))
    .await;
    hub.register_marie().await;
    let (reference, _) = hub.voirie_request_with_code().await;
    // Her record completed at the accueil: as the état civil writes her.
    let completed = pb::Identity {
        usage_name: "Durand".into(),
        first_names: "Marie".into(),
        birth_date: "1980-06-15".into(),
        phones: vec!["06 12 34 56 78".into()],
        ..Default::default()
    };
    hub.hub
        .update_citizen(
            &hub.scope(GIVORS),
            &contacthub_app::commands::UpdateCitizen {
                citizen_id: "GIV-000900".into(),
                identity: Some(completed),
                idempotency_key: "naissance".into(),
            },
        )
        .await
        .unwrap();
    issuer.sign_in_next_as(serde_json::json!({
        "sub": "fc-marie", "given_name": "Marie", "family_name": "DURAND",
        "birthdate": "1980-06-15", "birthplace": "69091", "birthcountry": "99100", "gender": "female",
    }));
    let profiles = tempfile::tempdir().unwrap();
    let c = browser(&webdriver, profiles.path()).await;
    c.set_window_size(360, 740).await.unwrap();
    c.goto(&hub.portal).await.unwrap();
    until_text(&c, "the communes", |t| {
        t.contains("Choisissez votre commune")
    })
    .await;
    review(&c, "espace-communes", &axe).await;
    click(&c, "a[href='/givors/']").await;
    until_text(&c, "Givors's home", |t| {
        t.contains("S'identifier avec FranceConnect")
    })
    .await;
    review(&c, "espace-accueil", &axe).await;
    click(&c, "a.fc-button").await;
    let home = until_text(&c, "her requests", |t| t.contains("Mes demandes")).await;
    assert!(
        home.contains(&reference) && home.contains("Trottoir défoncé"),
        "{home}"
    );
    review(&c, "espace-mes-demandes", &axe).await;
    click(&c, &format!("a[href='/givors/demandes/{reference}']")).await;
    let page = until_text(&c, "her request", |t| t.contains("Code de suivi")).await;
    assert!(
        page.contains("Voirie") && page.contains("Pas encore de réponse"),
        "{page}"
    );
    review(&c, "espace-demande", &axe).await;

    // She writes about it with a scan; the accueil's desk, open on her page in another window,
    // sees her message come in without a reload.
    let space = c.window().await.unwrap();
    let desk = c.new_window(false).await.unwrap().handle;
    c.switch_to_window(desk.clone()).await.unwrap();
    c.goto(&format!(
        "{}/connexion?suite=/citoyens/69091/GIV-000900",
        hub.web
    ))
    .await
    .unwrap();
    click(&c, "form button[type=submit]").await;
    until_text(&c, "her page on the desk", |t| t.contains("Historique")).await;
    c.execute("window.__notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.switch_to_window(space.clone()).await.unwrap();
    click(&c, "a.action").await;
    until_text(&c, "the message form", |t| t.contains("Votre message")).await;
    review(&c, "espace-ecrire", &axe).await;
    fill(
        &c,
        "#message",
        "Le trottoir est toujours défoncé, voici une photo.",
    )
    .await;
    let scan = profiles.path().join("trottoir.pdf");
    std::fs::write(&scan, b"%PDF-1.4\ntrottoir\n%%EOF\n").unwrap();
    c.find(Locator::Css("#documents"))
        .await
        .unwrap()
        .send_keys(&scan.display().to_string())
        .await
        .unwrap();
    click(&c, "form[action='/givors/ecrire'] button[type=submit]").await;
    let sent = until_text(&c, "the message sent", |t| {
        t.contains("Votre message a été envoyé")
    })
    .await;
    assert!(
        sent.contains("voici une photo") && sent.contains("trottoir.pdf"),
        "{sent}"
    );
    review(&c, "espace-message-envoye", &axe).await;
    c.switch_to_window(desk.clone()).await.unwrap();
    until_text(&c, "her message on the desk, live", |t| {
        t.contains("Message écrit sur l'espace citoyen")
    })
    .await;
    let live = c
        .execute("return window.__notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        live,
        serde_json::Value::Bool(true),
        "the desk was not reloaded"
    );
    c.switch_to_window(space.clone()).await.unwrap();
    c.goto(&format!("{}/givors/foyer", hub.portal))
        .await
        .unwrap();
    until_text(&c, "her household", |t| t.contains("Ajouter une personne")).await;
    review(&c, "espace-foyer", &axe).await;
    // A new phone number, confirmed with the code the SMS brought.
    c.goto(&format!("{}/givors/coordonnees", hub.portal))
        .await
        .unwrap();
    until_text(&c, "her details", |t| t.contains("Pour vous joindre")).await;
    review(&c, "espace-coordonnees", &axe).await;
    fill(&c, "#nouveau", "07 11 22 33 44").await;
    click(&c, "form[action$='/coordonnees/code'] button").await;
    until_text(&c, "the code form", |t| {
        t.contains("Un code vous a été envoyé")
    })
    .await;
    review(&c, "espace-coordonnees-code", &axe).await;
    let sms = gateway.sent().last().cloned().expect("the code by SMS");
    let code: String = sms
        .body
        .split("est ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    fill(&c, "#code", &code).await;
    click(&c, "form[action$='/coordonnees/confirmer'] button").await;
    let confirmed = until_text(&c, "confirmed", |t| t.contains("C'est confirmé")).await;
    assert!(confirmed.contains("07 11 22 33 44"), "{confirmed}");
    // An appointment: a kind, the first day with free places, the first time.
    c.goto(&format!(
        "{}/givors/rendez-vous?type=passeport-cni",
        hub.portal
    ))
    .await
    .unwrap();
    until_text(&c, "the days", |t| t.contains("quel jour")).await;
    click(&c, "ul.days a").await;
    until_text(&c, "the times", |t| t.contains("À quelle heure")).await;
    review(&c, "espace-rendez-vous", &axe).await;
    click(&c, "input[name=debut]").await;
    click(&c, "form[action='/givors/rendez-vous'] button[type=submit]").await;
    let booked = until_text(&c, "booked", |t| t.contains("Votre rendez-vous est pris")).await;
    assert!(booked.contains("(à venir)"), "{booked}");
    review(&c, "espace-rendez-vous-pris", &axe).await;
    // Moved to another day in one step: the new time to come, the old one « déplacé ».
    click(&c, "a.inline-link").await;
    until_text(&c, "moving", |t| {
        t.contains("Vous déplacez votre rendez-vous")
    })
    .await;
    click(&c, "ul.days li:nth-child(2) a").await;
    until_text(&c, "the new times", |t| t.contains("À quelle heure")).await;
    review(&c, "espace-rendez-vous-deplacer", &axe).await;
    click(&c, "input[name=debut]").await;
    click(&c, "form[action='/givors/rendez-vous'] button[type=submit]").await;
    let moved = until_text(&c, "moved", |t| t.contains("Votre rendez-vous est déplacé")).await;
    assert!(
        moved.contains("(déplacé)") && moved.contains("(à venir)"),
        "{moved}"
    );
    // The desk's agenda, where the accueil books for someone at the counter.
    c.switch_to_window(desk.clone()).await.unwrap();
    c.goto(&format!(
        "{}/rendez-vous?commune=69091&type=passeport-cni",
        hub.web
    ))
    .await
    .unwrap();
    until_text(&c, "the desk's agenda", |t| {
        t.contains("Prendre un rendez-vous pour quelqu'un")
    })
    .await;
    review(&c, "bureau-rendez-vous", &axe).await;
    c.switch_to_window(space.clone()).await.unwrap();
    c.goto(&format!("{}/givors/donnees", hub.portal))
        .await
        .unwrap();
    until_text(&c, "her data", |t| t.contains("Télécharger mes données")).await;
    review(&c, "espace-donnees", &axe).await;
    click(&c, "a[href^='/givors/deconnexion']").await;
    let out = until_text(&c, "signed out", |t| t.contains("Vous êtes déconnecté")).await;
    assert!(!out.contains("Mes demandes"), "{out}");
    assert_eq!(issuer.logouts(), 1);
    review(&c, "espace-deconnecte", &axe).await;
    c.close().await.unwrap();
}
