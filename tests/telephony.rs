//! The phone that shows who calls, from a fake Asterisk Manager Interface speaking the real
//! wire format (recorded sequences in `tests/fixtures/ami/`) to a live desk page: a known
//! caller's name before the agent picks up (the time from `Newchannel` printed), candidates
//! for a shared number, « numéro inconnu » with a new record one click away, a withheld
//! number; another agent's rings never reach this desk; the call recorded once, whether its
//! CDR line comes after or not; a transfer that comes back to the accueil counted against
//! the service; a dropped connection opened again.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_tests::ami::{recorded, FakeSwitch};
use contacthub_tests::*;
use futures::StreamExt;
use std::time::{Duration, Instant};

fn agents() -> Access {
    Access::from_toml(&format!(
        "[[agent]]\nid='accueil-1'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='etat-civil-1'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['etat-civil']\n\
         [[agent]]\nid='grigny-1'\ntoken_sha256='{}'\ntenants=['69096']\n",
        token_hash("accueil"),
        token_hash("etat-civil"),
        token_hash("grigny"),
    ))
    .unwrap()
}

fn adapters(port: u16) -> String {
    format!(
        "[[commune]]\ncode = \"69091\"\naccueil_extensions = [\"201\"]\n\
         [commune.ami]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"contacthub\"\nsecret = \"s3cret\"\n\
         [commune.ami.agents]\n\"201\" = \"accueil-1\"\n\"301\" = \"etat-civil-1\"\n\
         [commune.ami.services]\n\"301\" = \"etat-civil\"\n"
    )
}

/// A desk's live phone page, read as its browser would: the `appel` events' HTML.
struct PhonePage {
    agent: WebAgent,
    events: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    seen: String,
}

impl PhonePage {
    async fn open(web: &str, token: &str) -> PhonePage {
        Self::open_as(web, token, "69091").await
    }

    async fn open_as(web: &str, token: &str, tenant: &str) -> PhonePage {
        let agent = WebAgent::sign_in(web, token).await;
        let r = agent
            .http
            .get(format!("{web}/telephone/{tenant}/flux"))
            .header("cookie", &agent.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        PhonePage {
            agent,
            events: Box::pin(r.bytes_stream()),
            seen: String::new(),
        }
    }

    /// Reads until the page shows `what` (at most `within`); what came meanwhile.
    async fn until(&mut self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while !self.seen.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.next()).await {
                Ok(Some(Ok(chunk))) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => panic!("the page never showed {what:?}; it got:\n{}", self.seen),
            }
        }
        let at = self.seen.find(what).unwrap() + what.len();
        let upto: String = self.seen.drain(..at).collect();
        upto
    }

    /// Whether anything comes within `wait`.
    async fn quiet(&mut self, wait: Duration) -> bool {
        loop {
            match tokio::time::timeout(wait, self.events.next()).await {
                Err(_) => return !self.seen.contains("appel"),
                Ok(Some(Ok(chunk))) => {
                    let text = String::from_utf8_lossy(&chunk).into_owned();
                    // Keep-alives are comments.
                    if text.contains("event:") {
                        self.seen.push_str(&text);
                        return false;
                    }
                }
                Ok(_) => return false,
            }
        }
    }
}

/// The CSRF token of an agent's session, from a page's form.
async fn csrf_of(page: &PhonePage) -> String {
    let (_, html) = page.agent.get("/telephone").await;
    let at = html.find("name=\"csrf\" value=\"").expect("a form") + 20;
    html[at..].split('"').next().unwrap().to_string()
}

fn calls_of(hub: &TestHub, citizen: &str) -> Vec<pb::TimelineEntry> {
    hub.timeline_of(GIVORS, citizen)
        .into_iter()
        .filter(|e| e.kind == "phone_call")
        .collect()
}

/// The calls transferred to état civil today and those that came back to the accueil.
fn etat_civil_bounces(hub: &TestHub) -> (u64, u64) {
    let day = contacthub_core::accueil::day_of(hub.hub.now())
        .format("%Y-%m-%d")
        .to_string();
    let report = hub
        .hub
        .accueil_report(&hub.scope(GIVORS), &day, &day, "")
        .unwrap();
    report
        .by_service
        .iter()
        .find(|s| s.service == "etat-civil")
        .map_or((0, 0), |s| (s.calls_transferred, s.calls_bounced))
}

async fn the_desk_shows_who_calls(backend: Backend) {
    let switch = FakeSwitch::start("contacthub", "s3cret").await;
    let mut hub = TestHub::start_with_access(&backend, agents()).await;
    hub.publish(&[
        register(
            GIVORS,
            "GIV-000900",
            "Marie Durand",
            "06 12 34 56 78",
            at(2026, 1, 5, 9, 0),
        ),
        register(
            GIVORS,
            "GIV-000901",
            "Jean Dupont",
            "06 98 76 54 32",
            at(2026, 1, 5, 9, 0),
        ),
        register(
            GIVORS,
            "GIV-000902",
            "Jeanne Dupont",
            "06 98 76 54 32",
            at(2026, 1, 5, 9, 0),
        ),
    ])
    .await;
    hub.settle().await;
    hub.start_adapters(&adapters(switch.port)).await;
    until("the hub logs in to the switch", || switch.logins() == 1).await;
    let mut accueil = PhonePage::open(&hub.web, "accueil").await;
    let mut etat_civil = PhonePage::open(&hub.web, "etat-civil").await;

    // Marie calls the accueil: her name on the agent's page before they pick up.
    let answered = recorded("answered.txt");
    let rung = Instant::now();
    switch.send(&answered[..2].concat());
    let shown = accueil
        .until("Ouvrir la fiche de Marie Durand", Duration::from_secs(5))
        .await;
    let latency = rung.elapsed();
    println!(
        "screen pop: Newchannel to the caller's name on the desk in {:.1} ms",
        latency.as_secs_f64() * 1000.0
    );
    assert!(shown.contains("Appel entrant — 06 12 34 56 78"), "{shown}");
    assert!(shown.contains("/citoyens/69091/GIV-000900"), "{shown}");
    assert!(
        latency < Duration::from_secs(2),
        "the name took {latency:?}"
    );
    // Not on the desk of an agent whose extension did not ring.
    assert!(etat_civil.quiet(Duration::from_millis(300)).await);
    switch.send(&answered[2..].concat());
    let ended = accueil
        .until("Enregistrer le motif", Duration::from_secs(5))
        .await;
    assert!(ended.contains("Appel terminé"), "{ended}");
    until("the call is in Marie's timeline", || {
        calls_of(&hub, "GIV-000900").len() == 1
    })
    .await;
    // The motive in one step: the call's line says what it was about.
    let attr = |name: &str| {
        let at = ended
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {ended}"))
            + name.len();
        ended[at..].split('"').next().unwrap().replace("&#38;", "&")
    };
    let (action, csrf) = (attr("action=\""), attr("name=\"csrf\" value=\""));
    let post = |page: &PhonePage, csrf: String| {
        let (http, cookie) = (page.agent.http.clone(), page.agent.cookie.clone());
        let url = format!("{}{action}", hub.web);
        async move {
            http.post(url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("category", "1"),
                    ("motif", "Attestation d'accueil"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let grigny = PhonePage::open_as(&hub.web, "grigny", "69096").await;
    let refused = post(&grigny, csrf_of(&grigny).await).await;
    assert_eq!(
        refused.status(),
        reqwest::StatusCode::FORBIDDEN,
        "another commune"
    );
    let noted = post(&accueil, csrf).await;
    assert_eq!(noted.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(noted.headers()["location"], "/citoyens/69091/GIV-000900");
    let call = &calls_of(&hub, "GIV-000900")[0];
    assert_eq!(
        (call.subject.as_str(), call.category),
        ("Attestation d'accueil", pb::Category::EtatCivil as i32)
    );
    // Its CDR line, later, is the same contact.
    let cdr = "\"\",\"0612345678\",\"0472491818\",\"from-trunk\",\"\"\"\"\" <0612345678>\",\"PJSIP/trunk-00000001\",\"PJSIP/201-00000002\",\"Dial\",\"PJSIP/201,30\",\"2025-12-04 09:00:00\",\"2025-12-04 09:00:05\",\"2025-12-04 09:02:00\",120,115,\"ANSWERED\",\"DOCUMENTATION\",\"1764838800.101\",\"\"\n";
    let inbox = hub.dir.path().join("cdr-inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("Master-1.csv"), cdr).unwrap();
    until("the CDR file is taken", || {
        !inbox.join("Master-1.csv").exists()
    })
    .await;
    hub.settle().await;
    assert_eq!(calls_of(&hub, "GIV-000900").len(), 1, "one contact");
    assert!(
        std::fs::read_dir(hub.dir.path().join("quarantine"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "nothing quarantined"
    );

    // A number two records share: the candidates. A number nobody has: a new record.
    let shared = String::from_utf8(recorded("transfer-bounce.txt").concat()).unwrap();
    switch.send(shared.as_bytes());
    let shown = accueil
        .until("Jeanne Dupont (GIV-000902)", Duration::from_secs(5))
        .await;
    assert!(shown.contains("Plusieurs fiches ont ce numéro"), "{shown}");
    assert!(shown.contains("Jean Dupont (GIV-000901)"), "{shown}");
    // The transfer rang the état civil agent's desk too.
    etat_civil
        .until("Plusieurs fiches ont ce numéro", Duration::from_secs(5))
        .await;
    // A missed call rings (its hang-up, sent once the desk shows the ring, files a contact
    // that gives the number a record of its own: a pop computed after it would know it).
    let missed = recorded("missed.txt");
    switch.send(&missed[..2].concat());
    let shown = accueil
        .until("Numéro inconnu.", Duration::from_secs(5))
        .await;
    assert!(shown.contains("Appel entrant — 04 78 12 34 56"), "{shown}");
    accueil
        .until(
            "/fiches/nouvelle?commune=69091&#38;q=04%2078%2012%2034%2056",
            Duration::from_secs(1),
        )
        .await;
    switch.send(&missed[2..].concat());
    switch.send(&recorded("withheld.txt").concat());
    accueil
        .until("Appel entrant — numéro masqué", Duration::from_secs(5))
        .await;

    // The bounce-back counted against état civil, from the live events.
    until("the transferred call is counted", || {
        etat_civil_bounces(&hub) == (1, 1)
    })
    .await;

    // The switch restarts: the hub logs in again and follows the next call.
    switch.drop_connections();
    until("the hub logs in again", || switch.logins() == 2).await;
    let again = String::from_utf8(recorded("answered.txt").concat())
        .unwrap()
        .replace("1764838800.10", "1764840000.10");
    let rung = Instant::now();
    switch.send(again.as_bytes());
    accueil
        .until("Ouvrir la fiche de Marie Durand", Duration::from_secs(5))
        .await;
    println!(
        "screen pop after a reconnection: {:.1} ms",
        rung.elapsed().as_secs_f64() * 1000.0
    );
    until("the second call is in Marie's timeline", || {
        calls_of(&hub, "GIV-000900").len() == 2
    })
    .await;
}

on_every_backend!(the_desk_shows_who_calls);
