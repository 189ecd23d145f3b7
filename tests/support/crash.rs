//! Crash cycles: a child `contacthub project` killed with SIGKILL at random instants.
//! Shared by the durability test (20 cycles) and the `crash-soak` binary (as many as asked).

use crate::to_record;
use contacthub_core::{demo, tenant::Tenants};
use contacthub_log::{embedded::EmbeddedLog, EventLog};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Writes a demo population (`people` per commune) into the embedded log of `data`; returns
/// the number of events.
pub async fn write_demo_log(data: &Path, people: usize) -> usize {
    let log = EmbeddedLog::open(data.join("log"), 4).unwrap();
    let cfg = demo::DemoConfig {
        people_per_tenant: people,
        ..Default::default()
    };
    let events: Vec<_> = demo::events(&cfg, &Tenants::builtin())
        .map(|e| to_record(&e))
        .collect();
    let n = events.len();
    for chunk in events.chunks(1000) {
        log.append(chunk.to_vec()).await.unwrap();
    }
    n
}

fn projector(bin: &Path, data: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "project",
        "--exit-when-caught-up",
        "--batch-size",
        "100",
        "--data",
    ])
    .arg(data)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// Starts and SIGKILLs a projector child `cycles` times at random instants (seeded).
/// Returns how many children were killed before they finished.
pub fn crash_cycles(bin: &Path, data: &Path, cycles: usize, seed: u64) -> usize {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut killed = 0;
    for _ in 0..cycles {
        let mut child = projector(bin, data)
            .spawn()
            .expect("spawning the projector");
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            killed += 1;
        }
        child.wait().unwrap();
    }
    killed
}

/// Runs a projector child until it has applied the whole log.
pub fn project_to_end(bin: &Path, data: &Path) {
    let out = projector(bin, data)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "final projector run failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
