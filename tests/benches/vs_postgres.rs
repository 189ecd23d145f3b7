//! The contacthub side of `scripts/bench-vs-postgres` (which runs PostgreSQL beside it and
//! prints the comparison). Prints figures; writes what PostgreSQL loads.
//!
//! 1. Generates N demo events (the demo's mix of channels; about 150,000 citizens at 1M
//!    events), appends them to an empty embedded log, projects from offset 0: events/s, peak
//!    RSS, bytes on disk per event (log and read model).
//! 2. Writes the same contacts, citizens and identifiers as CSV for PostgreSQL's `COPY`
//!    (`contacts.csv`, `citizens.csv`, `identifiers.csv` in `--out`).
//! 3. GetTimeline over gRPC (page of 20, random citizens, one connection per client, closed
//!    loop) at 1, 8 and 64 clients, and a bare tonic server answering every call with the same
//!    20-entry page: calls/s, p50, p99. The clients run in a process of their own (this
//!    binary again, `--client URL`), as pgbench does beside PostgreSQL, so that both servers
//!    share the machine's cores with their clients alike.
//!
//! Figures go to standard output and, as `name<TAB>value` lines, to `--out/contacthub.tsv`.
//! Options: `--events N` (1,000,000), `--out DIR` (required), `--seconds S` per run (5).

use contacthub_core::{demo, identity, pb, tenant::Tenants};
use contacthub_log::{embedded::EmbeddedLog, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_tests::*;
use rand::Rng;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

// As the `contacthub` binary: the allocator is a third of the projector's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The store's own ceiling: random inserts per second into an empty sled tree opened as the
/// read model is (keys of 50 bytes under one commune, values of 150 bytes, atomic batches of
/// 2,000, as the projector commits them).
fn sled_alone(out: &Path, inserts: usize) -> f64 {
    let dir = tempfile::tempdir_in(out).unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(256 << 20)
        .flush_every_ms(Some(500))
        .open()
        .unwrap();
    let tree = db.open_tree("read-model").unwrap();
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    for _ in 0..inserts / 2000 {
        let mut batch = sled::Batch::default();
        for _ in 0..2000 {
            let key = format!(
                "tl/69091\0{:08}\0{:032x}",
                rng.gen_range(0..150_000u32),
                rng.gen::<u128>()
            );
            batch.insert(key.as_bytes(), vec![7u8; 150]);
        }
        tree.apply_batch(batch).unwrap();
    }
    db.flush().unwrap();
    inserts as f64 / started.elapsed().as_secs_f64()
}

/// A CSV field, quoted.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn cfg(events: usize) -> demo::DemoConfig {
    // About 150,000 citizens for a million events, each with its registration.
    let people = (events / 6 / 7).clamp(10, 25_000);
    demo::DemoConfig {
        people_per_tenant: people,
        contacts_per_person: (events / (people * 6)).max(1),
        ..Default::default()
    }
}

struct Figures(Vec<(String, String)>);

impl Figures {
    fn put(&mut self, name: &str, value: impl std::fmt::Display) {
        println!("{name:<40} {value}");
        self.0.push((name.into(), value.to_string()));
    }
}

/// Writes the contacts (with the citizen the projector gave each), citizens and identifiers.
fn export(
    store: &Store,
    cfg: &demo::DemoConfig,
    events: usize,
    out: &Path,
) -> Vec<(String, String)> {
    let tenants = Tenants::builtin();
    let mut numbers: HashMap<(String, String), u64> = HashMap::new();
    let mut citizens =
        std::io::BufWriter::new(std::fs::File::create(out.join("citizens.csv")).unwrap());
    let mut identifiers =
        std::io::BufWriter::new(std::fs::File::create(out.join("identifiers.csv")).unwrap());
    for t in tenants.iter() {
        for c in store.citizens(&t.code).unwrap() {
            let n = numbers.len() as u64 + 1;
            numbers.insert((t.code.clone(), c.citizen_id.clone()), n);
            let i = c.identity.clone().unwrap_or_default();
            let address = i
                .addresses
                .first()
                .map(|a| format!("{} {}, {} {}", a.number, a.street, a.postcode, a.city))
                .unwrap_or_default();
            writeln!(
                citizens,
                "{n},{},{},{},{},{},{}",
                t.code,
                q(&c.citizen_id),
                q(&i.usage_name),
                q(&i.first_names),
                q(&i.birth_date),
                q(&address)
            )
            .unwrap();
            let phones = i.phones.iter().filter_map(|p| identity::normalize_phone(p));
            let emails = i.emails.iter().filter_map(|e| identity::normalize_email(e));
            let held: std::collections::BTreeSet<(&str, String)> = phones
                .map(|p| ("phone", p))
                .chain(emails.map(|e| ("email", e)))
                .collect();
            for (kind, value) in held {
                writeln!(identifiers, "{},{kind},{},{n}", t.code, q(&value)).unwrap();
            }
        }
    }
    let mut contacts =
        std::io::BufWriter::new(std::fs::File::create(out.join("contacts.csv")).unwrap());
    let mut with_entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in demo::events(cfg, &tenants).take(events) {
        let Some(payload) = e.payload.as_ref() else {
            continue;
        };
        if !contacthub_core::event::is_contact(payload) {
            continue;
        }
        let Some(applied) = store.applied(&e.tenant, &e.event_id).unwrap() else {
            continue;
        };
        let Some(&n) = numbers.get(&(e.tenant.clone(), applied.citizen.clone())) else {
            continue;
        };
        let p = e.personal.clone().unwrap_or_default();
        let at = chrono::DateTime::from_timestamp_micros(applied.occurred_us)
            .unwrap()
            .to_rfc3339();
        writeln!(
            contacts,
            "{},{},{n},{},{},{at},{},{},{},{}",
            e.event_id,
            e.tenant,
            e.channel,
            e.direction,
            q(contacthub_core::event::kind(payload)),
            q(&p.subject),
            q(&contacthub_core::render::summary(
                &contacthub_core::pb::TimelineEntry {
                    kind: contacthub_core::event::kind(payload).into(),
                    direction: e.direction,
                    request_id: e.request_id.clone(),
                    facts: Some(contacthub_core::render::facts(payload)),
                    ..Default::default()
                },
                tenants.get(&e.tenant).unwrap(),
            )),
            q(&p.text)
        )
        .unwrap();
        if seen.insert((e.tenant.clone(), applied.citizen.clone())) {
            with_entries.push((e.tenant.clone(), applied.citizen));
        }
    }
    contacts.flush().unwrap();
    citizens.flush().unwrap();
    identifiers.flush().unwrap();
    std::fs::write(out.join("citizens.count"), numbers.len().to_string()).unwrap();
    with_entries
}

/// A server answering every GetTimeline with the same page: what tonic costs alone.
struct Echo(pb::GetTimelineResponse);

#[tonic::async_trait]
impl pb::desk_service_server::DeskService for Echo {
    async fn get_timeline(
        &self,
        _: Request<pb::GetTimelineRequest>,
    ) -> Result<Response<pb::GetTimelineResponse>, Status> {
        Ok(Response::new(self.0.clone()))
    }
    type WatchTimelineStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::TimelineEntry, Status>>;
    async fn watch_timeline(
        &self,
        _: Request<pb::WatchTimelineRequest>,
    ) -> Result<Response<Self::WatchTimelineStream>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn record_visit(
        &self,
        _: Request<pb::RecordVisitRequest>,
    ) -> Result<Response<pb::RecordVisitResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }
    async fn get_contact(
        &self,
        _: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::GetContactResponse>, Status> {
        Err(Status::unimplemented("echo"))
    }
}

/// Closed loop: `clients` desks, each on its own connection, one call in flight, for
/// `seconds`: calls/s, p50 and p99 in milliseconds.
async fn closed_loop(
    url: &str,
    clients: usize,
    seconds: f64,
    who: Arc<Vec<(String, String)>>,
) -> (f64, f64, f64) {
    let mut tasks = Vec::new();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    for _ in 0..clients {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .unwrap()
            .tcp_nodelay(true)
            .connect()
            .await
            .unwrap();
        let mut desk = pb::desk_service_client::DeskServiceClient::new(channel);
        let who = who.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let (tenant, citizen) = &who[rand::thread_rng().gen_range(0..who.len())];
                let t = Instant::now();
                desk.get_timeline(pb::GetTimelineRequest {
                    tenant: tenant.clone(),
                    citizen: by_id(citizen),
                    page_size: 20,
                    ..Default::default()
                })
                .await
                .unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    (all.len() as f64 / seconds, pct(0.5), pct(0.99))
}

/// Runs `clients` closed-loop clients against `url` in a child process (this binary with
/// `--client`), reading the citizens to ask for from `who`: calls/s, p50 and p99 (ms).
fn clients_apart(url: &str, clients: usize, seconds: f64, who: &Path) -> (f64, f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--client", url, "--clients", &clients.to_string()])
        .args(["--seconds", &seconds.to_string(), "--who"])
        .arg(who)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "the clients' process failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (figures[0], figures[1], figures[2])
}

/// The `--client` side of [`clients_apart`]: prints `calls/s p50 p99`.
async fn client_process(arg: impl Fn(&str) -> Option<String>) {
    let url = arg("--client").unwrap();
    let clients: usize = arg("--clients").unwrap().parse().unwrap();
    let seconds: f64 = arg("--seconds").unwrap().parse().unwrap();
    let who: Vec<(String, String)> = std::fs::read_to_string(arg("--who").unwrap())
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
    let (rate, p50, p99) = closed_loop(&url, clients, seconds, Arc::new(who)).await;
    println!("{rate} {p50} {p99}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if arg("--client").is_some() {
        return client_process(arg).await;
    }
    let events: usize = arg("--events").map_or(1_000_000, |n| n.replace('_', "").parse().unwrap());
    let seconds: f64 = arg("--seconds").map_or(5.0, |s| s.parse().unwrap());
    let out = PathBuf::from(arg("--out").expect("--out DIR: where the CSV files and figures go"));
    std::fs::create_dir_all(&out).unwrap();
    let mut f = Figures(Vec::new());
    let dir = tempfile::tempdir_in(&out).unwrap();
    let cfg = cfg(events);

    // 1. Append, then project from offset 0.
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path().join("log"), 12).unwrap());
    let started = Instant::now();
    let written = append_demo(&*log, &cfg, events).await;
    f.put("events", written);
    f.put(
        "append_events_per_s",
        format!("{:.0}", written as f64 / started.elapsed().as_secs_f64()),
    );
    let store = Store::open(dir.path().join("read-model")).unwrap();
    let (projector, _) = Projector::new(
        store.clone(),
        log.clone(),
        Arc::new(Tenants::builtin()),
        keyring(dir.path()),
    )
    .unwrap();
    let started = Instant::now();
    let n = projector.catch_up().await.unwrap();
    let took = started.elapsed().as_secs_f64();
    f.put("projection_events_per_s", format!("{:.0}", n as f64 / took));
    f.put("projection_seconds", format!("{took:.1}"));
    f.put("peak_rss_mib", format!("{:.0}", peak_rss_mib()));
    drop(projector);
    store.flush().unwrap();
    let log_bytes = size_of(&dir.path().join("log"));
    let rm_bytes = size_of(&dir.path().join("read-model"));
    f.put("log_bytes_per_event", log_bytes / written as u64);
    f.put("read_model_bytes_per_event", rm_bytes / written as u64);
    f.put("bytes_per_event", (log_bytes + rm_bytes) / written as u64);
    f.put(
        "sled_alone_inserts_per_s",
        format!("{:.0}", sled_alone(&out, 500_000)),
    );

    // 2. The same contacts for PostgreSQL.
    let who = Arc::new(export(&store, &cfg, events, &out));
    f.put("citizens_with_contacts", who.len());
    drop(store);

    // 3. GetTimeline, and tonic alone.
    let hub = TestHub::start_on(log, None, dir).await;
    let url = format!("http://{}", hub.addr);
    let sample = pb::desk_service_client::DeskServiceClient::new(hub.channel.clone())
        .get_timeline(pb::GetTimelineRequest {
            tenant: who[0].0.clone(),
            citizen: by_id(&who[0].1),
            page_size: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::desk_service_server::DeskServiceServer::new(Echo(
                sample,
            )))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    let who_file = out.join("who.tsv");
    let lines: String = who.iter().map(|(t, c)| format!("{t}\t{c}\n")).collect();
    std::fs::write(&who_file, lines).unwrap();
    let apart = |url: String, clients: usize| {
        let who_file = who_file.clone();
        tokio::task::spawn_blocking(move || clients_apart(&url, clients, seconds, &who_file))
    };
    for clients in [1usize, 8, 64] {
        let (rate, p50, p99) = apart(url.clone(), clients).await.unwrap();
        f.put(
            &format!("get_timeline_{clients}_calls_per_s"),
            format!("{rate:.0}"),
        );
        f.put(
            &format!("get_timeline_{clients}_p50_ms"),
            format!("{p50:.2}"),
        );
        f.put(
            &format!("get_timeline_{clients}_p99_ms"),
            format!("{p99:.2}"),
        );
        let (rate, p50, p99) = apart(echo_url.clone(), clients).await.unwrap();
        f.put(
            &format!("tonic_echo_{clients}_calls_per_s"),
            format!("{rate:.0}"),
        );
        f.put(&format!("tonic_echo_{clients}_p50_ms"), format!("{p50:.2}"));
        f.put(&format!("tonic_echo_{clients}_p99_ms"), format!("{p99:.2}"));
    }
    let tsv: String = f.0.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    std::fs::write(out.join("contacthub.tsv"), tsv).unwrap();
    hub.stop().await;
}
