//! Benchmark printing figures (release: `cargo bench -p contacthub-tests --bench desk`): the
//! web desk as agents use it, over HTTP on loopback. The citizen page of a citizen with 500
//! timeline entries (the page shows the newest 50, then pages), with one agent (one request
//! in flight, its own connection) and with 8 at once: p50 / p99 server round trip, for an
//! accueil agent and for an agent of a service (services techniques), whose pages go through
//! the need-to-know guard's lookups (the CCAS's matters are confidential). Then the
//! time from a contact being appended to the log to its line arriving in an open page's live
//! stream (server-sent events), embedded log. Then what the read trail costs: GetTimeline over
//! gRPC at 1 and 8 clients (one call in flight each) on a hub with the trail and one without,
//! same data, same run. Last, what signing in with the identity provider costs: the same calls
//! with an agents file's token and with the provider's JWT (RS256, checked on every call), on
//! one hub, same run.

use contacthub_app::auth::{token_hash, Access};
use contacthub_core::pb;
use contacthub_tests::*;
use futures::StreamExt;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn sign_in(web: &str, token: &str) -> String {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{web}/connexion"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let access = Access::from_toml(&format!(
        "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n\
         [[agent]]\nid='voirie'\ntoken_sha256='{}'\ntenants=['69091']\nservices=['voirie']\n",
        token_hash("givors"),
        token_hash("voirie")
    ))
    .unwrap();
    let hub = TestHub::start_with_access(&Backend::Embedded, access).await;
    let start = at(2025, 1, 1, 8, 0);
    let contacts: Vec<pb::Event> = (0..500)
        .map(|i| {
            let mut e = call(
                GIVORS,
                &format!("c{i}"),
                "06 12 34 56 78",
                start + i * 3_600_000_000,
            );
            if i % 3 == 0 {
                e = web_form(
                    GIVORS,
                    &format!("f{i}"),
                    "06 12 34 56 78",
                    "",
                    start + i * 3_600_000_000,
                );
            }
            // One in five is a CCAS matter: withheld from the services techniques agent.
            if i % 5 == 0 {
                e.category = pb::Category::Ccas as i32;
            }
            e
        })
        .collect();
    hub.publish(&contacts).await;
    hub.settle().await;
    let citizen = hub
        .hub
        .search_citizens(
            &hub.scope(GIVORS),
            &contacthub_app::commands::SearchCitizens {
                query: "06 12 34 56 78".into(),
                ..Default::default()
            },
        )
        .unwrap()
        .hits[0]
        .citizen
        .clone()
        .unwrap()
        .citizen_id;
    let entries = hub
        .store
        .citizen(GIVORS, &citizen)
        .unwrap()
        .unwrap()
        .entries;
    let page = format!("{}/citoyens/{GIVORS}/{citizen}", hub.web);
    for (who, token, agents) in [
        ("accueil", "givors", 1usize),
        ("accueil", "givors", 8),
        ("services techniques", "voirie", 1),
        ("services techniques", "voirie", 8),
    ] {
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..agents {
            let cookie = sign_in(&hub.web, token).await;
            let page = page.clone();
            tasks.push(tokio::spawn(async move {
                // One connection per agent, one request in flight.
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let mut lat = Vec::new();
                for i in 0..220 {
                    let t = Instant::now();
                    let r = http
                        .get(&page)
                        .header("cookie", &cookie)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                    let body = r.text().await.unwrap();
                    assert!(body.contains("Historique"));
                    if i >= 20 {
                        lat.push(t.elapsed());
                    }
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let wall = started.elapsed();
        all.sort();
        println!(
            "citizen page ({entries} entries, 50 shown; {agents} {who} agent(s), one request in flight each): p50 {} p99 {} ({:.0} pages/s)",
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            all.len() as f64 / wall.as_secs_f64()
        );
    }

    // A contact appended while the page is open: how long until its line reaches the page.
    let cookie = sign_in(&hub.web, "givors").await;
    let stream = reqwest::Client::new()
        .get(format!("{page}/flux"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut body = stream.bytes_stream();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lat = Vec::new();
    for i in 0..50 {
        let e = call(
            GIVORS,
            &format!("live{i}"),
            "06 12 34 56 78",
            at(2026, 11, 1, 9, 0) + i,
        );
        let t = Instant::now();
        hub.publish(&[e]).await;
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .expect("the live line within 5 s")
                .expect("the stream open")
                .unwrap();
            if String::from_utf8_lossy(&chunk).contains("event: entry") {
                break;
            }
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "append → line in an open page (server-sent event, embedded log, {} contacts): p50 {} p99 {} max {}",
        lat.len(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    hub.stop().await;

    // The read trail's cost: the same timeline over gRPC on two hubs, one with the trail and
    // one without, measured in turns (off, on, off, on) so that neither always goes first.
    let access = || {
        Access::from_toml(&format!(
            "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n",
            token_hash("givors")
        ))
        .unwrap()
    };
    let without = TestHub::start_without_read_trail(&Backend::Embedded, access()).await;
    let with = TestHub::start_with_access(&Backend::Embedded, access()).await;
    for hub in [&without, &with] {
        hub.publish(&contacts).await;
        hub.settle().await;
    }
    for round in 1..=2 {
        for (label, hub) in [("off", &without), ("on ", &with)] {
            for clients in [1usize, 8] {
                let (rate, p50, p99) = timelines(hub, &citizen, clients, "givors").await;
                println!(
                    "GetTimeline (50 of {} entries), read trail {label}, {clients} client(s), turn {round}: {rate:.0} calls/s p50 {} p99 {}",
                    contacts.len(),
                    ms(p50),
                    ms(p99),
                );
            }
        }
    }
    without.stop().await;
    with.stop().await;

    // An agents-file token against the identity provider's JWT, on one hub, in turns.
    let issuer = contacthub_tests::oidc::TestIssuer::start().await;
    let secret = issuer.client_secret.clone();
    let hub = TestHub::start_with_desk_access(&Backend::Embedded, |desk| {
        Access::from_toml(&format!(
            "[[agent]]\nid='accueil'\ntoken_sha256='{}'\ntenants=['69091']\n\n{}",
            token_hash("givors"),
            issuer.agents_toml(
                desk,
                "[[oidc.rule]]\nwhen = { groups = \"accueil\" }\ntenants = [\"69091\"]\n"
            )
        ))
        .unwrap()
        .with_oidc_secret(secret)
    })
    .await;
    hub.publish(&contacts).await;
    hub.settle().await;
    let jwt = issuer.access_token(
        "contacthub-api",
        3600,
        serde_json::json!({"sub": "a-1", "preferred_username": "l.bernard", "groups": ["accueil"]}),
    );
    for round in 1..=2 {
        for (label, token) in [
            ("agents file token", "givors"),
            ("provider JWT RS256", jwt.as_str()),
        ] {
            for clients in [1usize, 8] {
                let (rate, p50, p99) = timelines(&hub, &citizen, clients, token).await;
                println!(
                    "GetTimeline (50 of {} entries), {label}, {clients} client(s), turn {round}: {rate:.0} calls/s p50 {} p99 {}",
                    contacts.len(),
                    ms(p50),
                    ms(p99),
                );
            }
        }
    }
    hub.stop().await;
}

/// `clients` desks asking `citizen`'s timeline with `token`, one call in flight each: calls/s,
/// p50, p99.
async fn timelines(
    hub: &TestHub,
    citizen: &str,
    clients: usize,
    token: &str,
) -> (f64, Duration, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let grpc = format!("http://{}", hub.addr);
        let citizen = citizen.to_string();
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut desk = pb::desk_service_client::DeskServiceClient::connect(grpc)
                .await
                .unwrap();
            let mut lat = Vec::new();
            for i in 0..520 {
                let t = Instant::now();
                desk.get_timeline(as_agent(
                    &token,
                    pb::GetTimelineRequest {
                        tenant: GIVORS.into(),
                        citizen: by_id(&citizen),
                        ..Default::default()
                    },
                ))
                .await
                .unwrap();
                if i >= 20 {
                    lat.push(t.elapsed());
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    (
        all.len() as f64 / wall.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}
