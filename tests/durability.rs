//! Crash safety of the embedded log and the projector, with real child processes killed by
//! SIGKILL at random points.

use contacthub_core::pb;
use contacthub_core::tenant::Tenants;
use contacthub_log::{embedded::EmbeddedLog, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_tests::crash::{crash_cycles, project_to_end, write_demo_log};
use contacthub_tests::*;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The status of the `serve` child at `url` once its projector caught up with the log.
async fn caught_up(url: String) -> pb::GetStatusResponse {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut ops = pb::ops_service_client::OpsServiceClient::new(channel);
    for _ in 0..300 {
        let s = ops
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.partitions.iter().all(|p| p.lag == 0) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not catch up");
}

/// Stops a `serve` child with SIGTERM and checks it shut down cleanly.
fn terminate(child: &mut std::process::Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(
        child.wait().unwrap().success(),
        "clean shutdown after SIGTERM"
    );
}

/// A projector child killed 20 times mid-projection ends with the projection a clean run makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = write_demo_log(&data, 60).await;

    // Reference: the same log projected without faults, in-process.
    let reference = {
        let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(data.join("log"), 4).unwrap());
        let store = Store::open(dir.path().join("reference")).unwrap();
        let (p, _) = Projector::new(
            store.clone(),
            log,
            Arc::new(Tenants::builtin()),
            keyring(dir.path()),
        )
        .unwrap();
        p.catch_up().await.unwrap();
        store.digest().unwrap()
    };

    let bin = contacthub_bin!();
    let kills = crash_cycles(&bin, &data, 20, 7);
    assert!(
        kills >= 10,
        "only {kills} of 20 children were killed mid-projection"
    );
    project_to_end(&bin, &data);

    let store = Store::open(data.join("read-model")).unwrap();
    assert_eq!(
        store
            .counter(&contacthub_core::keys::Counter::Applied)
            .unwrap() as usize,
        events
    );
    assert_eq!(
        store.digest().unwrap(),
        reference,
        "nothing lost, nothing doubled"
    );
}

/// Every visit acknowledged by a `serve` child killed with SIGKILL is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_visits_survive_sigkill_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let bin = contacthub_bin!();
    let spawn = || {
        let s = spawn_serve(&bin, dir.path(), &["--partitions".as_ref(), "4".as_ref()]);
        (s.child, s.grpc)
    };
    let (mut child, url) = spawn();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut desk = pb::desk_service_client::DeskServiceClient::new(channel.clone());
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let r = desk
                    .record_visit(pb::RecordVisitRequest {
                        tenant: if w % 2 == 0 { GIVORS } else { GRIGNY }.into(),
                        party: Some(party_phone(&format!("06 00 00 {:02} {:02}", w, i % 100))),
                        idempotency_key: format!("w{w}-{i}"),
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(r) => acked.lock().unwrap().push(r.into_inner().entry.unwrap()),
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "only {} visits acknowledged", acked.len());

    // Restart, let it catch up, stop it cleanly, and read its read model.
    let (mut child, url) = spawn();
    caught_up(url).await;
    terminate(&mut child);

    let store = Store::open(dir.path().join("read-model")).unwrap();
    for e in &acked {
        let tenant = if e.citizen_id.starts_with("GIV") {
            GIVORS
        } else {
            GRIGNY
        };
        let mut found = store.applied_entry(tenant, &e.event_id).unwrap();
        // Which key sealed it is kept for erasure, never shown to agents.
        if let Some(f) = found.as_mut() {
            assert!(f.key_id.starts_with("e/"), "{f:?}");
            f.key_id.clear();
        }
        // The read model keeps the line's facts; the hub words its summary when it answers.
        // (« , hors des horaires d'ouverture » when the test runs while the town hall is shut)
        assert!(e.summary.starts_with("Visite à l'accueil"), "{}", e.summary);
        let stored = pb::TimelineEntry {
            summary: String::new(),
            ..e.clone()
        };
        assert_eq!(
            found.as_ref(),
            Some(&stored),
            "acknowledged visit {} lost or changed",
            e.event_id
        );
    }
    // Nothing doubled: as many entries applied as distinct events written.
    let applied = store
        .counter(&contacthub_core::keys::Counter::Applied)
        .unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), 4).unwrap();
    let written: u64 = log.end_offsets().await.unwrap().iter().sum();
    assert_eq!(applied, written);
    eprintln!(
        "{} acknowledged visits of {written} written, all present",
        acked.len()
    );
}

/// Blue/green: a replay into a new folder while the hub serves and writers keep writing,
/// then the documented switch (stop, move the folders, start): the hub folds what came after
/// the replay and ends with the read model a replay of the whole log makes, every visit there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_rebuilt_while_serving_takes_over_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bin = contacthub_bin!();
    let extra = ["--partitions".as_ref(), "4".as_ref()];
    let mut serve = spawn_serve(&bin, &data, &extra);
    let channel = tonic::transport::Endpoint::from_shared(serve.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let visit = |i: u32| pb::RecordVisitRequest {
        tenant: if i.is_multiple_of(2) { GIVORS } else { GRIGNY }.into(),
        party: Some(party_phone(&format!(
            "06 00 00 {:02} {:02}",
            i / 100,
            i % 100
        ))),
        idempotency_key: format!("v{i}"),
        ..Default::default()
    };
    let mut desk = pb::desk_service_client::DeskServiceClient::new(channel.clone());
    for i in 0..100 {
        desk.record_visit(visit(i)).await.unwrap();
    }
    // Writers keep going while the replay runs.
    let writer = {
        let mut desk = desk.clone();
        tokio::spawn(async move {
            let mut n = 100;
            for i in 100..400 {
                if desk.record_visit(visit(i)).await.is_err() {
                    break;
                }
                n += 1;
            }
            n
        })
    };
    let green = data.join("read-model.new");
    let out = Command::new(&bin)
        .args(["replay", "--data"])
        .arg(&data)
        .arg("--into")
        .arg(&green)
        // A small cache changes nothing of what is written (the digest below).
        .args(["--cache-mb", "8"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = writer.await.unwrap();
    assert_eq!(written, 400);
    // The switch: stop, move, start.
    terminate(&mut serve.child);
    std::fs::rename(data.join("read-model"), data.join("read-model.old")).unwrap();
    std::fs::rename(&green, data.join("read-model")).unwrap();
    let mut serve = spawn_serve(&bin, &data, &extra);
    let status = caught_up(serve.grpc.clone()).await;
    assert_eq!(status.events_applied, 400, "every visit, once");
    terminate(&mut serve.child);
    // The same bytes as a replay of the whole log.
    let whole = dir.path().join("whole");
    let out = Command::new(&bin)
        .args(["replay", "--data"])
        .arg(&data)
        .arg("--into")
        .arg(&whole)
        .output()
        .unwrap();
    assert!(out.status.success());
    let digest = |path: &std::path::Path| {
        let out = Command::new(&bin)
            .args(["digest", "--read-model"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(digest(&data.join("read-model")), digest(&whole));
}

/// A read model open in another process is that process's: `project` on the same folder
/// says so and stops, leaving it whole (it never takes it for damaged and rebuilds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_in_use_is_never_rebuilt_under_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_demo_log(&data, 5).await;
    let held = Store::open(data.join("read-model")).unwrap();
    held.batch().unwrap().commit(&[(0, 42)]).unwrap();
    held.flush().unwrap();
    let out = Command::new(contacthub_bin!())
        .args(["project", "--exit-when-caught-up", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is open in another process"), "{stderr}");
    assert_eq!(held.checkpoints(1).unwrap(), vec![42], "left as it was");
    assert!(!data.join("read-model.old").exists() && !data.join("read-model.rebuild").exists());
}
