//! Serve soak: `serve-soak [CYCLES] [embedded|kafka]` kills `contacthub serve` with SIGKILL
//! CYCLES times (default 100) while writers keep writing through the desk API (gRPC
//! RecordVisit) and the adapter endpoints (an SMS webhook); on Kafka against a tansu broker of
//! its own, itself restarted every 25 cycles (`SOAK_BROKER_EVERY`, 0: never) after a SIGTERM
//! (`SOAK_BROKER_STOP=term`, the default: a rolling restart) or a SIGKILL (`kill`: tansu 0.6
//! then loses records it had acknowledged, a broker bug the hub cannot undo). Then it checks that every
//! acknowledged write is visible exactly once (its event applied, one event per idempotency
//! key or message id on the log), that the read model applied each event of the log once,
//! and that its digest equals a clean replay's. Prints cycles, writes acknowledged, lost and
//! doubled; exits non-zero if any was lost or doubled.

use anyhow::{ensure, Context, Result};
use contacthub_core::pb;
use contacthub_log::{embedded::EmbeddedLog, kafka, EventLog};
use contacthub_projector::Store;
use contacthub_tests::*;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the writers were told was accepted: visits by idempotency key, SMS by message id.
#[derive(Default)]
struct Acked {
    visits: BTreeMap<String, String>,
    sms: BTreeSet<String>,
}

async fn writers(grpc: String, adapters: String, acked: Arc<Mutex<Acked>>, cycle: usize) {
    let desk = async {
        let Ok(ch) = tonic::transport::Endpoint::from_shared(grpc)
            .unwrap()
            .connect()
            .await
        else {
            return;
        };
        let mut desk = pb::desk_service_client::DeskServiceClient::new(ch);
        for i in 0.. {
            let key = format!("c{cycle}-v{i}");
            let r = desk
                .record_visit(pb::RecordVisitRequest {
                    tenant: GIVORS.into(),
                    party: Some(party_phone(&format!(
                        "06 00 00 {:02} {:02}",
                        cycle % 100,
                        i % 100
                    ))),
                    desk: "accueil".into(),
                    idempotency_key: key.clone(),
                    ..Default::default()
                })
                .await;
            match r {
                Ok(r) => {
                    let id = r.into_inner().entry.map(|e| e.event_id).unwrap_or_default();
                    acked.lock().unwrap().visits.insert(key, id);
                }
                Err(_) => return,
            }
        }
    };
    let sms = async {
        let http = reqwest::Client::new();
        for i in 0.. {
            let sid = format!("SMsoak{cycle:05}x{i:05}");
            let r = http
                .post(format!("{adapters}/v1/{GRIGNY}/sms"))
                .form(&[
                    ("MessageSid", sid.as_str()),
                    ("From", "+33612345678"),
                    ("To", "+33472491818"),
                    ("Body", "Bonjour, une question sur la cantine"),
                ])
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    acked.lock().unwrap().sms.insert(sid);
                }
                Ok(_) => {}
                Err(_) => return,
            }
            // Under the adapters' 1,200 requests a minute per source.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    };
    tokio::join!(desk, sms);
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    // Cycles between two SIGKILLs of the broker (0: never), `SOAK_BROKER_EVERY`.
    let broker_every: usize = std::env::var("SOAK_BROKER_EVERY").map_or(Ok(25), |v| v.parse())?;
    let broker_kill = match std::env::var("SOAK_BROKER_STOP").as_deref() {
        Err(_) | Ok("term") => false,
        Ok("kill") => true,
        Ok(other) => anyhow::bail!("SOAK_BROKER_STOP={other:?}: give term or kill"),
    };
    let on_kafka = match args.next().as_deref() {
        None | Some("embedded") => false,
        Some("kafka") => true,
        Some(other) => anyhow::bail!("{other:?}: give embedded or kafka"),
    };
    let bin = std::env::current_exe()?.with_file_name("contacthub-under-test");
    ensure!(
        bin.exists(),
        "build it first: cargo build --release -p contacthub-tests --bins"
    );
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // Every start's logs, one after the other: what a start that failed said.
    let serve_log = dir.path().join("serve.log");
    let logs = || -> anyhow::Result<std::process::Stdio> {
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&serve_log)?
            .into())
    };
    // A start that fails panics in the helper: the folder is kept then too.
    let kept_on_panic = dir.path().to_path_buf();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!(
            "kept: {} (serve's logs in serve.log)",
            kept_on_panic.display()
        );
        std::process::exit(101);
    }));
    let mut broker = None;
    let mut extra: Vec<String> = vec!["--partitions".into(), "4".into()];
    let mut kafka_cfg = None;
    if on_kafka {
        let tansu = Tansu::start(&dir.path().join("tansu.db"), free_port(), None, &[])
            .context("tansu is not installed")?;
        let cfg = fresh_kafka(&tansu.brokers(), 4).await;
        extra = vec![
            "--kafka".into(),
            tansu.brokers(),
            "--topic".into(),
            cfg.topic.clone(),
            "--dead-letter-topic".into(),
            cfg.dead_letter_topic.clone(),
            "--keys-topic".into(),
            cfg.keys_topic.clone(),
        ];
        kafka_cfg = Some(cfg);
        broker = Some(tansu);
    }
    let os: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = rand::thread_rng();
    let started = std::time::Instant::now();
    let mut failed_starts = 0usize;
    for cycle in 0..cycles {
        // A start that fails (the broker not answering in time after its restart) is
        // started again, as systemd or Kubernetes would; counted.
        let mut serve = loop {
            match try_spawn_serve_in(&bin, &data, &os, &[], logs()?) {
                Ok(s) => break s,
                Err(e) if failed_starts < 20 => {
                    failed_starts += 1;
                    eprintln!("cycle {cycle}: serve did not start ({e}); starting it again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => anyhow::bail!("serve did not start 20 times, last: {e}"),
            }
        };
        let writing = tokio::spawn(writers(
            serve.grpc.clone(),
            serve.adapters.clone(),
            acked.clone(),
            cycle,
        ));
        // Kafka's first writes of a process take longer: a longer window there.
        let window = if on_kafka { 500..3_000 } else { 100..900 };
        tokio::time::sleep(Duration::from_millis(rng.gen_range(window))).await;
        serve.child.kill()?; // SIGKILL
        serve.child.wait()?;
        let _ = writing.await;
        if let Some(b) = broker
            .as_mut()
            .filter(|_| broker_every > 0 && cycle % broker_every == broker_every - 1)
        {
            if broker_kill {
                b.kill9();
            } else {
                b.stop();
            }
            b.restart();
        }
        if cycle % 50 == 49 {
            let a = acked.lock().unwrap();
            eprintln!(
                "{} cycles, {} visits and {} SMS acknowledged, {:.0} s",
                cycle + 1,
                a.visits.len(),
                a.sms.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }

    // The last start: caught up, then stopped cleanly.
    let serve = spawn_serve_with_logs(&bin, &data, &os, logs()?);
    let ch = tonic::transport::Endpoint::from_shared(serve.grpc.clone())?
        .connect()
        .await?;
    let mut ops = pb::ops_service_client::OpsServiceClient::new(ch);
    let mut caught_up = false;
    for _ in 0..600 {
        let s = ops.get_status(pb::GetStatusRequest {}).await?.into_inner();
        if s.partitions.iter().all(|p| p.lag == 0) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(caught_up, "the hub never caught up after the last restart");
    let mut child = serve.child;
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    child.wait()?;

    // The log, read whole: events per idempotency key (visits) and per message id (SMS).
    let log: Arc<dyn EventLog> = match &kafka_cfg {
        Some(cfg) => Arc::new(kafka::KafkaLog::connect(cfg.clone()).await?),
        None => Arc::new(EmbeddedLog::open(data.join("log"), 4)?),
    };
    let ends = log.end_offsets().await?;
    let from: Vec<(u32, u64)> = (0..log.partitions()).map(|p| (p, 0)).collect();
    let mut reader = log.reader(&from).await?;
    let mut by_source: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // By position, not by count: a broker's offsets may leave gaps.
    let mut next = vec![0u64; ends.len()];
    let mut records = 0u64;
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        for r in reader.next_batch(5000, Duration::from_secs(1)).await? {
            next[r.partition as usize] = r.offset + 1;
            records += 1;
            if let Ok(e) = contacthub_core::event::decode(&r.record.value) {
                by_source
                    .entry(e.source_id.clone())
                    .or_default()
                    .insert(e.event_id.clone());
            }
        }
    }
    let store = Store::open(data.join("read-model"))?;
    let checkpoints = store.checkpoints(log.partitions())?;
    if checkpoints.iter().zip(&ends).any(|(c, e)| c > e) {
        eprintln!("the log's end offsets {ends:?} are behind what the hub applied {checkpoints:?}");
    }
    let acked = acked.lock().unwrap();
    let (mut lost, mut doubled) = (0usize, 0usize);
    for (key, event_id) in &acked.visits {
        if by_source.get(key).is_some_and(|ids| ids.len() > 1) {
            doubled += 1;
        }
        if store.applied_entry(GIVORS, event_id)?.is_none() {
            lost += 1;
        }
    }
    for sid in &acked.sms {
        match by_source.get(sid) {
            Some(ids) if ids.len() > 1 => doubled += 1,
            Some(ids) => {
                let id = ids.iter().next().expect("one");
                if store.applied(GRIGNY, id)?.is_none() {
                    lost += 1;
                }
            }
            None => lost += 1,
        }
    }
    let applied = store.counter(&contacthub_core::keys::Counter::Applied)?;
    let live = store.digest()?;
    drop(store);
    let replayed = dir.path().join("replayed");
    let out = std::process::Command::new(&bin)
        .args(["replay", "--data"])
        .arg(&data)
        .args(&extra)
        .arg("--into")
        .arg(&replayed)
        .output()?;
    ensure!(
        out.status.success(),
        "replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = Store::open(&replayed)?.digest()?;
    println!(
        "{} backend: {cycles} SIGKILLs of serve{}, {} writes acknowledged ({} visits, {} SMS), {records} events on the log, {applied} applied; lost {lost}, doubled {doubled}; digest {} a clean replay's; {failed_starts} starts failed and were made again; {:.0} s",
        if on_kafka { "kafka" } else { "embedded" },
        if on_kafka {
            format!(
                " ({} broker restarts after a {})",
                cycles.checked_div(broker_every).unwrap_or(0),
                if broker_kill { "SIGKILL" } else { "SIGTERM" }
            )
        } else {
            String::new()
        },
        acked.visits.len() + acked.sms.len(),
        acked.visits.len(),
        acked.sms.len(),
        if live == clean { "equal to" } else { "DIFFERENT from" },
        started.elapsed().as_secs_f64()
    );
    if lost > 0 || doubled > 0 || live != clean || applied != records {
        // Kept for whoever looks into it: the data folder, and on Kafka tansu's database.
        eprintln!("kept: {}", dir.keep().display());
    }
    ensure!(lost == 0 && doubled == 0, "lost {lost}, doubled {doubled}");
    ensure!(
        !acked.visits.is_empty() && !acked.sms.is_empty(),
        "nothing was acknowledged: the soak tested nothing"
    );
    ensure!(
        applied == records,
        "{applied} applied of {records} events on the log"
    );
    ensure!(live == clean, "the read model differs from a clean replay");
    Ok(())
}
