//! Crash soak: `crash-soak [CYCLES] [PEOPLE]` kills a projector child CYCLES times (default
//! 200) over a demo log, then checks the projection equals a run without crashes.

use contacthub_core::tenant::Tenants;
use contacthub_log::{embedded::EmbeddedLog, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_tests::crash::{crash_cycles, project_to_end, write_demo_log};
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let people: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let bin = std::env::current_exe()?.with_file_name("contacthub-under-test");
    anyhow::ensure!(
        bin.exists(),
        "build it first: cargo build -p contacthub-tests --bins"
    );
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let events = write_demo_log(&data, people).await;
    let reference = {
        let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(data.join("log"), 4)?);
        let store = Store::open(dir.path().join("reference"))?;
        let (p, _) = Projector::new(
            store.clone(),
            log,
            Arc::new(Tenants::builtin()),
            contacthub_tests::keyring(dir.path()),
        )?;
        p.catch_up().await?;
        store.digest()?
    };
    let mut killed = 0;
    let mut seed = 1;
    while killed < cycles {
        let batch = (cycles - killed).min(20);
        killed += crash_cycles(&bin, &data, batch, seed);
        seed += 1;
        // Start over once the projection finished, so every kill lands mid-projection.
        if Store::open(data.join("read-model"))?.digest()? == reference {
            std::fs::remove_dir_all(data.join("read-model"))?;
        }
    }
    project_to_end(&bin, &data);
    let digest = Store::open(data.join("read-model"))?.digest()?;
    println!(
        "{events} events, {killed} SIGKILLs, digest {}",
        if digest == reference {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
    anyhow::ensure!(
        digest == reference,
        "projection after crashes differs from the reference"
    );
    Ok(())
}
