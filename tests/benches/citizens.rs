//! Benchmark printing figures (release: `cargo bench -p contacthub-tests --bench citizens`):
//! citizen search over 150,000 citizens (25,000 per commune, the demo's French names and
//! addresses), through gRPC as the desk calls it, with one client (one call in flight, its
//! own connection) and with 8; p50 / p99 and calls/s; and the search index's bytes per
//! citizen.
//!
//! Options: `--people N` (per commune, default 25,000).

use contacthub_core::pb::{self, event::Payload};
use contacthub_core::{demo, tenant::Tenants};
use contacthub_proto::v1::citizen_service_client::CitizenServiceClient;
use contacthub_tests::*;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let people_per_tenant = args
        .iter()
        .position(|a| a == "--people")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(25_000);
    let tenants = Tenants::builtin();
    let cfg = demo::DemoConfig {
        people_per_tenant,
        contacts_per_person: 0,
        ..Default::default()
    };
    // The registrations of the demo population (names, addresses, phones).
    let registrations: Vec<pb::Event> = demo::events(&cfg, &tenants)
        .filter(|e| matches!(e.payload, Some(Payload::CitizenRegistered(_))))
        .collect();
    let givors: Vec<(String, String)> = registrations
        .iter()
        .filter(|e| e.tenant == GIVORS)
        .filter_map(|e| e.personal.as_ref()?.identity.as_ref())
        .map(|i| (i.first_names.clone(), i.usage_name.clone()))
        .collect();
    let hub = TestHub::start(&Backend::Embedded).await;
    let started = Instant::now();
    let mut placed = Vec::new();
    for chunk in registrations.chunks(5_000) {
        placed.extend(hub.publish(chunk).await);
    }
    // Every partition's last record projected (no time limit: this is what is measured).
    let mut ends = std::collections::BTreeMap::new();
    for a in &placed {
        let e = ends.entry(a.partition).or_insert(0);
        *e = (*e).max(a.offset);
    }
    for (p, o) in ends {
        hub.projector
            .wait_applied(p, o, Duration::from_secs(3_600))
            .await
            .expect("projected");
    }

    println!(
        "{} citizens registered and indexed in {:.1} s",
        registrations.len(),
        started.elapsed().as_secs_f64()
    );
    // Steady state, as a desk meets it: what the bulk load left to flush is on disk, and the
    // server has answered a few searches.
    hub.store.flush().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let index_bytes =
        hub.store.prefix_bytes(b"nx/").unwrap() + hub.store.prefix_bytes(b"dx/").unwrap();
    println!(
        "search index: {:.0} bytes per citizen ({:.1} MiB)",
        index_bytes as f64 / registrations.len() as f64,
        index_bytes as f64 / (1 << 20) as f64
    );
    for clients in [1usize, 8] {
        let mut tasks = Vec::new();
        let started = Instant::now();
        for c in 0..clients {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", hub.addr))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let qs = search_queries(&givors[..], 440);
            tasks.push(tokio::spawn(async move {
                let mut client = CitizenServiceClient::new(channel);
                let mut lat = Vec::new();
                let mut found = 0usize;
                for (i, q) in qs.iter().enumerate().skip(c) {
                    let t = Instant::now();
                    let r = client
                        .search_citizens(pb::SearchCitizensRequest {
                            tenant: GIVORS.into(),
                            query: q.clone(),
                            page_size: 20,
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    // The first 40 warm the connection and caches.
                    if i >= 40 {
                        lat.push((i % 4, t.elapsed()));
                        found += usize::from(!r.hits.is_empty());
                    }
                }
                (lat, found)
            }));
        }
        let mut all = Vec::new();
        let mut by_kind: Vec<Vec<Duration>> = vec![Vec::new(); 4];
        let mut found = 0;
        for t in tasks {
            let (lat, f) = t.await.unwrap();
            for (kind, d) in lat {
                by_kind[kind].push(d);
                all.push(d);
            }
            found += f;
        }
        let wall = started.elapsed();
        all.sort();
        for (kind, name) in [
            "surname first name",
            "first name surname",
            "4-letter prefix",
            "one typo",
        ]
        .iter()
        .enumerate()
        {
            let mut l = by_kind[kind].clone();
            l.sort();
            println!(
                "  {clients} client(s), {name}: p50 {} p99 {}",
                ms(percentile(&l, 0.5)),
                ms(percentile(&l, 0.99))
            );
        }
        println!(
            "SearchCitizens ({} citizens in the commune, {clients} client(s), one call in flight each, {} calls, {:.0} % with hits): p50 {} p99 {} ({:.0} calls/s)",
            givors.len(),
            all.len(),
            found as f64 * 100.0 / all.len() as f64,
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            all.len() as f64 / wall.as_secs_f64()
        );
    }
    hub.stop().await;
}
