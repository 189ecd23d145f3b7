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
        let (p, _) = Projector::new(store.clone(), log, Arc::new(Tenants::builtin())).unwrap();
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
            .counter(contacthub_core::keys::COUNTER_APPLIED)
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
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut ops = pb::ops_service_client::OpsServiceClient::new(channel);
    let mut caught_up = false;
    for _ in 0..300 {
        let s = ops
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.partitions.iter().all(|p| p.lag == 0) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(caught_up, "restarted server did not catch up");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(
        child.wait().unwrap().success(),
        "clean shutdown after SIGTERM"
    );

    let store = Store::open(dir.path().join("read-model")).unwrap();
    for e in &acked {
        let tenant = if e.citizen_id.starts_with("GIV") {
            GIVORS
        } else {
            GRIGNY
        };
        let found = store.applied_entry(tenant, &e.event_id).unwrap();
        assert_eq!(
            found.as_ref(),
            Some(e),
            "acknowledged visit {} lost or changed",
            e.event_id
        );
    }
    // Nothing doubled: as many entries applied as distinct events written.
    let applied = store
        .counter(contacthub_core::keys::COUNTER_APPLIED)
        .unwrap();
    let log = EmbeddedLog::open(dir.path().join("log"), 4).unwrap();
    let written: u64 = log.end_offsets().await.unwrap().iter().sum();
    assert_eq!(applied, written);
    eprintln!(
        "{} acknowledged visits of {written} written, all present",
        acked.len()
    );
}
