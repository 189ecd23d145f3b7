//! Benchmarks printing figures (run in release: `cargo bench -p contacthub-tests --bench projection`).
//!
//! 1. Projection rate on the embedded log: N generated events (default 1,000,000) appended,
//!    then projected into sled; events/s, bytes per event and peak RSS; once in the clear and
//!    once sealed with the keyring as the hub's writers seal (the cost of sealing).
//! 2. GetTimeline latency p50/p99 and calls/s for a citizen with 500 entries: one client with
//!    one call in flight on its own connection (a desk: a wait per call shows here, as the
//!    44 ms of a missing TCP_NODELAY did), 8 clients, and 32 clients, each on its own
//!    connection.
//! 3. Publish → visible latency (RecordVisit) and end-to-end throughput (append → projected),
//!    on the embedded log and, when `CONTACTHUB_TEST_KAFKA` names a broker, on Kafka.
//!
//! 4. Mail room: courrier registrations/s with a 200 KB scan each, 8 concurrent clerks.
//!
//! Options: `--events N`, `--batch-sizes 2000,20000` (events per sled batch, one projection
//! each over the same log), `--replay-budgets 256,64` (MiB held by `replay`, one replay each;
//! empty: none), `--clear-only`, `--skip-projection`, `--skip-latency`,
//! `--skip-courrier`.

use contacthub_core::{demo, pb, tenant::Tenants};
use contacthub_log::{embedded::EmbeddedLog, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_tests::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

// As the `contacthub` binary: the allocator is a third of the projector's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn projection(events: usize, batch_sizes: &[usize], budgets: &[usize], clear_only: bool) {
    // Clear, then sealed as the hub's writers seal (the cost of sealing, same run).
    let kinds: &[bool] = if clear_only { &[false] } else { &[false, true] };
    for &sealed in kinds {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(EmbeddedLog::open(dir.path().join("log"), 12).unwrap());
        let keys = keyring(dir.path());
        // About 14.3 events per person on average.
        let people = (events as f64 / 14.3 / 6.0).ceil() as usize;
        let cfg = demo::DemoConfig {
            people_per_tenant: people,
            ..Default::default()
        };
        let how = if sealed { "sealed" } else { "clear" };
        let started = Instant::now();
        let written = append_demo_sealed(&*log, &cfg, events, sealed.then_some(&*keys)).await;
        let gen = started.elapsed();
        println!(
            "[{how}] generate+append {written} events: {:.1} s, {:.0} events/s (fsync per 5000-event batch)",
            gen.as_secs_f64(),
            written as f64 / gen.as_secs_f64()
        );
        let log_bytes = size_of(&dir.path().join("log"));
        // `contacthub replay` first (the peak RSS is then its own): changes held in memory,
        // written in key order.
        for &budget_mb in budgets {
            let model = dir.path().join(format!("read-model-replay-{budget_mb}"));
            let store = Store::open(&model).unwrap();
            let folded = std::sync::atomic::AtomicU64::new(0);
            let started = Instant::now();
            let done = contacthub_projector::replay::replay(
                &store,
                &*log,
                &Tenants::builtin(),
                &keys,
                budget_mb << 20,
                &folded,
            )
            .await
            .unwrap();
            let took = started.elapsed();
            println!(
                "[{how}] replay, {budget_mb} MiB held: {} events in {:.1} s = {:.0} events/s ({} writes in key order); read model {:.0} bytes/event; digest {}; peak RSS of the process {:.0} MiB",
                done.records,
                took.as_secs_f64(),
                done.records as f64 / took.as_secs_f64(),
                done.spills + 1,
                size_of(&model) as f64 / done.records as f64,
                &store.digest().unwrap()[..16],
                peak_rss_mib()
            );
        }
        for &batch in batch_sizes {
            let model = dir.path().join(format!("read-model-{batch}"));
            let store = Store::open(&model).unwrap();
            let (projector, _) = Projector::new(
                store.clone(),
                log.clone(),
                Arc::new(Tenants::builtin()),
                keys.clone(),
            )
            .unwrap();
            let projector = projector.with_batch_size(batch);
            let started = Instant::now();
            let n = projector.catch_up().await.unwrap();
            let took = started.elapsed();
            drop(projector);
            store.flush().unwrap();
            println!(
                "[{how}] projection, {batch} events per batch: {n} events in {:.1} s = {:.0} events/s; read model {:.0} bytes/event; digest {}; peak RSS of the process {:.0} MiB",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64(),
                size_of(&model) as f64 / n as f64,
                &store.digest().unwrap()[..16],
                peak_rss_mib()
            );
        }
        let n = written;
        let size: u64 = size_of(dir.path());
        println!(
            "[{how}] on disk: log {:.0} bytes/event, keyring {:.0} KiB, all {:.0} bytes/event ({:.0} MiB)",
            log_bytes as f64 / n as f64,
            size_of(&dir.path().join("keyring")) as f64 / 1024.0,
            size as f64 / n as f64,
            size as f64 / 1048576.0
        );
    }
}

async fn get_timeline_latency() {
    let hub = TestHub::start(&Backend::Embedded).await;
    let events: Vec<_> = (0..500u32)
        .map(|i| {
            call(
                GIVORS,
                &format!("b{i}"),
                "0612345678",
                at(2024, 1, 1, 0, 0) + i64::from(i) * 3_600_000_000,
            )
        })
        .collect();
    hub.publish(&events).await;
    hub.settle().await;
    for (clients, page_size, calls) in [
        (1usize, 20u32, 300),
        (8, 20, 200),
        (32, 50, 100),
        (32, 500, 30),
    ] {
        let mut desks = Vec::new();
        for _ in 0..clients {
            // One connection per client, as separate desks have.
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", hub.addr))
                .unwrap()
                .connect()
                .await
                .unwrap();
            desks.push(pb::desk_service_client::DeskServiceClient::new(channel));
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mut desk in desks {
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(calls);
                for _ in 0..calls {
                    let t = Instant::now();
                    let r = desk
                        .get_timeline(pb::GetTimelineRequest {
                            tenant: GIVORS.into(),
                            citizen: by_phone("06 12 34 56 78"),
                            page_size,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    assert_eq!(r.into_inner().entries.len(), page_size as usize);
                    lat.push(t.elapsed());
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
            "GetTimeline (500-entry citizen, page {page_size}, {clients} client(s) on own connections, one call in flight each, {} calls): p50 {} p99 {} ({:.0} calls/s)",
            all.len(),
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            all.len() as f64 / wall.as_secs_f64()
        );
    }
    hub.stop().await;
}

async fn end_to_end(backend: Backend, label: &str) {
    let hub = TestHub::start(&backend).await;
    // Publish -> visible: RecordVisit returns once the entry is projected.
    let mut desk = hub.desk();
    let mut lat = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        desk.record_visit(pb::RecordVisitRequest {
            tenant: GIVORS.into(),
            party: Some(party_phone(&format!(
                "06 20 00 {:02} {:02}",
                i / 100,
                i % 100
            ))),
            ..Default::default()
        })
        .await
        .unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "{label}: publish->visible (RecordVisit, sequential): p50 {} p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    // Throughput: 100,000 events appended in batches of 1000 until all are projected.
    let cfg = demo::DemoConfig {
        people_per_tenant: 1200,
        seed: 7,
        ..Default::default()
    };
    let events: Vec<_> = demo::events(&cfg, &Tenants::builtin())
        .take(100_000)
        .map(|e| to_record(&e))
        .collect();
    let n = events.len();
    let started = Instant::now();
    for chunk in events.chunks(1000) {
        let placed = hub.log.append(chunk.to_vec()).await.unwrap();
        hub.note(&placed);
    }
    let appended = started.elapsed();
    hub.settle().await;
    let took = started.elapsed();
    println!(
        "{label}: {n} events appended in {:.1} s ({:.0}/s), projected after {:.1} s: {:.0} events/s end to end",
        appended.as_secs_f64(),
        n as f64 / appended.as_secs_f64(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    hub.stop().await;
}

async fn courrier_registrations(backend: Backend, label: &str) {
    use contacthub_core::pb::register_courrier_request::Part;
    let hub = TestHub::start(&backend).await;
    let per_clerk = 100;
    let started = Instant::now();
    let mut clerks = Vec::new();
    for clerk in 0..8u32 {
        let mut c = hub.courrier();
        clerks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..per_clerk {
                let mut scan = format!("%PDF-1.4\n{clerk}-{i}\n").into_bytes();
                scan.resize(200 * 1024, b'x');
                let mut msgs = vec![pb::RegisterCourrierRequest {
                    part: Some(Part::Header(pb::CourrierHeader {
                        tenant: GIVORS.into(),
                        sender: Some(party_phone("06 12 34 56 78")),
                        subject: "Bench".into(),
                        ..Default::default()
                    })),
                }];
                for chunk in scan.chunks(64 * 1024) {
                    msgs.push(pb::RegisterCourrierRequest {
                        part: Some(Part::Scan(pb::ScanChunk {
                            scan_index: 0,
                            filename: "scan.pdf".into(),
                            data: chunk.to_vec(),
                        })),
                    });
                }
                let t = Instant::now();
                c.register_courrier(tokio_stream::iter(msgs)).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for c in clerks {
        all.extend(c.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    println!(
        "{label}: courrier registrations with a 200 KB scan, 8 clerks: {:.0}/s, p50 {} p99 {}",
        all.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99))
    );
    hub.stop().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return; // `cargo test --benches` compiles this; the figures come from `cargo bench`.
    }
    let events = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let batch_sizes: Vec<usize> = args
        .iter()
        .position(|a| a == "--batch-sizes")
        .and_then(|i| args.get(i + 1))
        .map(|l| l.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![2000]);
    let budgets: Vec<usize> = args
        .iter()
        .position(|a| a == "--replay-budgets")
        .and_then(|i| args.get(i + 1))
        .map(|l| {
            l.split(',')
                .filter(|n| !n.is_empty())
                .map(|n| {
                    n.parse()
                        .unwrap_or_else(|_| panic!("--replay-budgets: {n:?} is not MiB"))
                })
                .collect()
        })
        .unwrap_or_else(|| vec![256, 64]);
    if !args.iter().any(|a| a == "--skip-projection") {
        projection(
            events,
            &batch_sizes,
            &budgets,
            args.iter().any(|a| a == "--clear-only"),
        )
        .await;
    }
    if !args.iter().any(|a| a == "--skip-latency") {
        get_timeline_latency().await;
        end_to_end(Backend::Embedded, "embedded").await;
        if let Some(k) = Backend::kafka() {
            end_to_end(k, "kafka (tansu, loopback)").await;
        }
    }
    if !args.iter().any(|a| a == "--skip-courrier") {
        courrier_registrations(Backend::Embedded, "embedded").await;
        if let Some(k) = Backend::kafka() {
            courrier_registrations(k, "kafka (tansu, loopback)").await;
        }
    }
}
