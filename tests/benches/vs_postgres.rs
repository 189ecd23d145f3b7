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
//! 4. The same N events appended sealed, as the hub's writers seal, and projected: the cost of
//!    the personal-data sealing beside the clear projection.
//! 5. `contacthub replay` of `--replay-events` events (10,000,000; 0 skips it) run as an
//!    operator runs it, in its own process (`--contacthub PATH`, the release binary): seconds,
//!    events/s, its peak RSS, bytes per event (its time includes the digest it prints at the
//!    end, a full read: about the read-once time below); then on what it built (about 150,000 citizens):
//!    GetTimeline at 8 clients on a cold start (the page cache dropped when the system allows
//!    it), the read model read once (its digest), GetTimeline at 1, 8 and 64 clients beside the
//!    bare tonic server, and SearchCitizens at 1 and 8 clients.
//!
//! Figures go to standard output and, as `name<TAB>value` lines, to `--out/contacthub.tsv`
//! (rewritten at each figure: a run that fails late keeps what it measured).
//! Options: `--events N` (1,000,000), `--out DIR` (required), `--seconds S` per run (5),
//! `--replay-events N` (10,000,000), `--contacthub PATH` (required unless `--replay-events 0`).

use contacthub_core::{demo, identity, pb, tenant::Tenants};
use contacthub_log::{embedded::EmbeddedLog, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_proto::v1::citizen_service_client::CitizenServiceClient;
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

/// The figures measured so far, and the file they are written to.
struct Figures(Vec<(String, String)>, PathBuf);

impl Figures {
    fn put(&mut self, name: &str, value: impl std::fmt::Display) {
        println!("{name:<40} {value}");
        self.0.push((name.into(), value.to_string()));
        let tsv: String = self.0.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        std::fs::write(&self.1, tsv).unwrap();
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

/// What a client process calls.
#[derive(Clone, Copy, PartialEq)]
enum Call {
    /// GetTimeline of a citizen (page of 20); `who` lines are `commune<TAB>citizen id`.
    Timeline,
    /// SearchCitizens (page of 20); `who` lines are `commune<TAB>what the agent typed`.
    Search,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Timeline => "timeline",
            Call::Search => "search",
        }
    }
}

/// Closed loop: `clients` desks, each on its own connection, one call in flight, for
/// `seconds`: calls/s, p50 and p99 in milliseconds.
async fn closed_loop(
    url: &str,
    clients: usize,
    seconds: f64,
    who: Arc<Vec<(String, String)>>,
    call: Call,
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
        let mut desk = pb::desk_service_client::DeskServiceClient::new(channel.clone());
        let mut citizens = CitizenServiceClient::new(channel);
        let who = who.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < until {
                let (tenant, what) = &who[rand::thread_rng().gen_range(0..who.len())];
                let t = Instant::now();
                match call {
                    Call::Timeline => {
                        desk.get_timeline(pb::GetTimelineRequest {
                            tenant: tenant.clone(),
                            citizen: by_id(what),
                            page_size: 20,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    }
                    Call::Search => {
                        citizens
                            .search_citizens(pb::SearchCitizensRequest {
                                tenant: tenant.clone(),
                                query: what.clone(),
                                page_size: 20,
                                ..Default::default()
                            })
                            .await
                            .unwrap();
                    }
                }
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
/// `--client`), reading what to ask for from `who`: calls/s, p50 and p99 (ms).
fn clients_apart(
    url: &str,
    clients: usize,
    seconds: f64,
    who: &Path,
    call: Call,
) -> (f64, f64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--client", url, "--clients", &clients.to_string()])
        .args([
            "--seconds",
            &seconds.to_string(),
            "--call",
            call.name(),
            "--who",
        ])
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
    let call = match arg("--call").as_deref() {
        Some("search") => Call::Search,
        Some("timeline") => Call::Timeline,
        other => panic!("--call takes timeline or search, not {other:?}"),
    };
    let who: Vec<(String, String)> = std::fs::read_to_string(arg("--who").unwrap())
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(t, c)| (t.to_string(), c.to_string()))
        .collect();
    let (rate, p50, p99) = closed_loop(&url, clients, seconds, Arc::new(who), call).await;
    println!("{rate} {p50} {p99}");
}

/// Writes `who` as the client processes read it.
fn who_file(out: &Path, name: &str, who: &[(String, String)]) -> PathBuf {
    let file = out.join(name);
    let lines: String = who.iter().map(|(t, c)| format!("{t}\t{c}\n")).collect();
    std::fs::write(&file, lines).unwrap();
    file
}

/// What client processes ask of which server, for how long.
#[derive(Clone, Copy)]
struct Load<'a> {
    url: &'a str,
    /// What to ask for (see [`Call`]).
    who: &'a Path,
    call: Call,
    seconds: f64,
}

/// Runs the clients apart at each count in `counts` and puts `{prefix}_{n}_calls_per_s`,
/// `_p50_ms` and `_p99_ms`.
async fn measure(f: &mut Figures, prefix: &str, load: Load<'_>, counts: &[usize]) {
    let Load {
        url,
        who,
        call,
        seconds,
    } = load;
    for &clients in counts {
        let (url, who) = (url.to_string(), who.to_path_buf());
        let (rate, p50, p99) =
            tokio::task::spawn_blocking(move || clients_apart(&url, clients, seconds, &who, call))
                .await
                .unwrap();
        f.put(
            &format!("{prefix}_{clients}_calls_per_s"),
            format!("{rate:.0}"),
        );
        f.put(&format!("{prefix}_{clients}_p50_ms"), format!("{p50:.2}"));
        f.put(&format!("{prefix}_{clients}_p99_ms"), format!("{p99:.2}"));
    }
}

/// A bare tonic server answering every GetTimeline with `page`: its URL.
async fn echo_server(page: pb::GetTimelineResponse) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::desk_service_server::DeskServiceServer::new(Echo(page)))
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    url
}

/// One page of `citizen`'s timeline from `hub`.
async fn sample_page(
    hub: &TestHub,
    (tenant, citizen): &(String, String),
) -> pb::GetTimelineResponse {
    pb::desk_service_client::DeskServiceClient::new(hub.channel.clone())
        .get_timeline(pb::GetTimelineRequest {
            tenant: tenant.clone(),
            citizen: by_id(citizen),
            page_size: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// 4. The same events appended sealed and projected from offset 0.
async fn sealed_projection(f: &mut Figures, out: &Path, events: usize) {
    let dir = tempfile::tempdir_in(out).unwrap();
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path().join("log"), 12).unwrap());
    let keys = keyring(dir.path());
    let written = append_demo_sealed(&*log, &cfg(events), events, Some(&*keys)).await;
    let store = Store::open(dir.path().join("read-model")).unwrap();
    let (projector, _) =
        Projector::new(store.clone(), log, Arc::new(Tenants::builtin()), keys).unwrap();
    let started = Instant::now();
    let n = projector.catch_up().await.unwrap();
    let took = started.elapsed().as_secs_f64();
    f.put("sealed_events", written);
    f.put(
        "sealed_projection_events_per_s",
        format!("{:.0}", n as f64 / took),
    );
    drop(projector);
    store.flush().unwrap();
    drop(store);
    // Log, read model and keyring.
    f.put(
        "sealed_bytes_per_event",
        size_of(dir.path()) / written as u64,
    );
}

/// Runs `command` to its end: seconds and its peak resident memory in MiB. The peak is its
/// `VmHWM` (a high-water mark) read every 20 ms while it runs, since an ended process has no
/// `/proc` entry (and this crate forbids the `unsafe` a `wait4` would take): only growth in its
/// last 20 ms could be missed.
fn run_measured(mut command: std::process::Command) -> (f64, f64) {
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
    let pid = child.id().to_string();
    let mut peak_kib = 0f64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak_kib = peak_kib.max(peak_rss_kib(&pid).unwrap_or(0.0));
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "contacthub replay failed: {status}");
    (started.elapsed().as_secs_f64(), peak_kib / 1024.0)
}

/// What agents type at the desk for the people of `store`, `per_commune` searches in each
/// commune ([`search_queries`]): `(commune, query)`.
fn queries_of(store: &Store, per_commune: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in Tenants::builtin().iter() {
        let people: Vec<(String, String)> = store
            .citizens(&t.code)
            .unwrap()
            .into_iter()
            .filter_map(|c| c.identity)
            .map(|i| (i.first_names, i.usage_name))
            .collect();
        if people.is_empty() {
            continue;
        }
        let queries = search_queries(&people, per_commune);
        out.extend(queries.into_iter().map(|q| (t.code.clone(), q)));
    }
    out
}

/// The memory `contacthub replay` holds changes in and sled's cache (its defaults, given
/// explicitly).
const REPLAY_MEMORY_MB: &str = "256";
const REPLAY_CACHE_MB: &str = "64";

/// 5. `contacthub replay` of `events` events, then reads on what it built.
async fn replay_phase(f: &mut Figures, out: &Path, events: usize, contacthub: &Path, seconds: f64) {
    let dir = tempfile::tempdir_in(out).unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), 12).unwrap();
    let started = Instant::now();
    let written = append_demo(&log, &cfg(events), events).await;
    drop(log);
    f.put("replay_events", written);
    f.put(
        "replay_append_events_per_s",
        format!("{:.0}", written as f64 / started.elapsed().as_secs_f64()),
    );
    let model = dir.path().join("read-model");
    let printed = out.join("replay.out");
    let mut command = std::process::Command::new(contacthub);
    command
        .arg("replay")
        .arg("--data")
        .arg(dir.path())
        .arg("--into")
        .arg(&model)
        .args([
            "--memory-mb",
            REPLAY_MEMORY_MB,
            "--cache-mb",
            REPLAY_CACHE_MB,
        ])
        .stdout(std::fs::File::create(&printed).unwrap());
    // The settings of whoever runs the bench do not change what it measures.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONTACTHUB_") {
            command.env_remove(name);
        }
    }
    command.env("CONTACTHUB_MASTER_KEY", test_master_key_hex());
    f.put("replay_memory_mb", REPLAY_MEMORY_MB);
    f.put("replay_cache_mb", REPLAY_CACHE_MB);
    let (took, rss) = tokio::task::spawn_blocking(move || run_measured(command))
        .await
        .unwrap();
    f.put("replay_seconds", format!("{took:.1}"));
    f.put(
        "replay_events_per_s",
        format!("{:.0}", written as f64 / took),
    );
    f.put("replay_peak_rss_mib", format!("{rss:.0}"));
    let digest = std::fs::read_to_string(&printed).unwrap();
    let digest = digest
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .expect("contacthub replay prints the digest")
        .to_string();
    let log_bytes = size_of(&dir.path().join("log"));
    let rm_bytes = size_of(&model);
    f.put("replay_log_bytes_per_event", log_bytes / written as u64);
    f.put(
        "replay_read_model_bytes_per_event",
        rm_bytes / written as u64,
    );
    f.put(
        "replay_bytes_per_event",
        (log_bytes + rm_bytes) / written as u64,
    );

    // Whom the desks ask for, and what they type.
    let store = Store::open(&model).unwrap();
    let mut who = Vec::new();
    for t in Tenants::builtin().iter() {
        for c in store.citizens(&t.code).unwrap() {
            who.push((t.code.clone(), c.citizen_id));
        }
    }
    let queries = queries_of(&store, 4_000);
    drop(store);
    f.put("replay_citizens", who.len());
    let first = who[0].clone();
    let who = who_file(out, "who-replayed.tsv", &who);
    let queries = who_file(out, "queries.tsv", &queries);

    // Cold: the page cache dropped (as root), else as the replay left it.
    let _ = std::process::Command::new("sync").status();
    let dropped = std::fs::write("/proc/sys/vm/drop_caches", "3");
    f.put(
        "replay_cold_cache",
        match dropped {
            Ok(()) => "page cache dropped".to_string(),
            Err(e) => format!("page cache kept ({e})"),
        },
    );
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.path().join("log"), 12).unwrap());
    let hub = TestHub::start_on(log, None, dir).await;
    let url = format!("http://{}", hub.addr);
    let timeline = Load {
        url: &url,
        who: &who,
        call: Call::Timeline,
        seconds,
    };
    measure(f, "replayed_cold_timeline", timeline, &[8]).await;

    // Read once: the digest reads every key, and must be the replay's.
    let started = Instant::now();
    let read = hub.store.digest().unwrap();
    f.put(
        "replay_read_once_seconds",
        format!("{:.1}", started.elapsed().as_secs_f64()),
    );
    assert_eq!(
        read, digest,
        "the served read model's digest differs from the one replay printed"
    );
    let echo = echo_server(sample_page(&hub, &first).await).await;
    measure(f, "replayed_timeline", timeline, &[1, 8, 64]).await;
    let tonic = Load {
        url: &echo,
        ..timeline
    };
    measure(f, "replayed_tonic_echo", tonic, &[1, 8, 64]).await;
    let search = Load {
        who: &queries,
        call: Call::Search,
        ..timeline
    };
    measure(f, "replayed_search", search, &[1, 8]).await;
    hub.stop().await;
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
    let count = |name: &str, default: usize| {
        arg(name).map_or(default, |n| {
            n.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name} takes a number of events, not {n:?}"))
        })
    };
    let events = count("--events", 1_000_000);
    let replay_events = count("--replay-events", 10_000_000);
    let seconds: f64 = arg("--seconds").map_or(5.0, |s| s.parse().unwrap());
    let out = PathBuf::from(arg("--out").expect("--out DIR: where the CSV files and figures go"));
    let contacthub = arg("--contacthub").map(PathBuf::from);
    assert!(
        replay_events == 0 || contacthub.as_ref().is_some_and(|p| p.is_file()),
        "--contacthub PATH (the release binary, a file) runs the replay; --replay-events 0 \
         skips it; given: {contacthub:?}"
    );
    std::fs::create_dir_all(&out).unwrap();
    let mut f = Figures(Vec::new(), out.join("contacthub.tsv"));
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
    let who = export(&store, &cfg, events, &out);
    f.put("citizens_with_contacts", who.len());
    drop(store);

    // 3. GetTimeline, and tonic alone.
    let hub = TestHub::start_on(log, None, dir).await;
    let url = format!("http://{}", hub.addr);
    let echo = echo_server(sample_page(&hub, &who[0]).await).await;
    let who_path = who_file(&out, "who.tsv", &who);
    let timeline = Load {
        url: &url,
        who: &who_path,
        call: Call::Timeline,
        seconds,
    };
    let tonic = Load {
        url: &echo,
        ..timeline
    };
    for clients in [1usize, 8, 64] {
        measure(&mut f, "get_timeline", timeline, &[clients]).await;
        measure(&mut f, "tonic_echo", tonic, &[clients]).await;
    }
    hub.stop().await;

    // 4. Sealed.
    sealed_projection(&mut f, &out, events).await;

    // 5. Replay at scale.
    if let Some(contacthub) = contacthub.filter(|_| replay_events > 0) {
        replay_phase(&mut f, &out, replay_events, &contacthub, seconds).await;
    }
}
