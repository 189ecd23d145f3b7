//! `contacthub replay`'s way of folding (changes held in memory, written in key order with
//! plain inserts) makes the very read model a live projection makes: same digest, on both log
//! backends, with sealed events, a person whose key is destroyed, and a memory budget so small
//! the changes are written many times over.

use contacthub_core::{demo, tenant::Tenants};
use contacthub_projector::{replay, Projector, Store};
use contacthub_tests::*;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

async fn replay_makes_what_a_live_projection_makes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (log, kafka) = open_log(&backend, dir.path()).await;
    let keys = hub_keyring(kafka.as_ref(), dir.path()).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 25,
        ..Default::default()
    };
    let written = append_demo_sealed(&*log, &cfg, usize::MAX, Some(&*keys)).await;
    assert!(written > 1000, "{written} events");
    // One person erased (their key destroyed): their events fold with nothing personal.
    let someone = contacthub_core::demo::events(&cfg, &Tenants::builtin())
        .find(|e| e.sealed.is_none() && e.personal.is_some())
        .map(|e| contacthub_core::seal::subject(&e))
        .unwrap();
    assert_eq!(keys.destroy(&[someone]).await.unwrap(), 1);

    let live = Store::open(dir.path().join("live")).unwrap();
    let (projector, _) = Projector::new(
        live.clone(),
        log.clone(),
        Arc::new(Tenants::builtin()),
        keys.clone(),
    )
    .unwrap();
    assert_eq!(projector.catch_up().await.unwrap() as usize, written);

    for budget in [64 << 20, 16 << 10] {
        let replayed = Store::open(dir.path().join(format!("replayed-{budget}"))).unwrap();
        let folded = AtomicU64::new(0);
        let done = replay::replay(
            &replayed,
            &*log,
            &Tenants::builtin(),
            &keys,
            budget,
            &folded,
        )
        .await
        .unwrap();
        assert_eq!(done.records as usize, written);
        assert_eq!(
            folded.load(std::sync::atomic::Ordering::Relaxed) as usize,
            written
        );
        if budget < 1 << 20 {
            assert!(done.spills > 10, "{done:?}");
        } else {
            assert_eq!(done.spills, 0, "{done:?}");
        }
        assert_eq!(
            replayed.digest().unwrap(),
            live.digest().unwrap(),
            "budget {budget}"
        );
        // Into a read model that holds a projection already: refused.
        let again = replay::replay(
            &replayed,
            &*log,
            &Tenants::builtin(),
            &keys,
            budget,
            &folded,
        )
        .await
        .unwrap_err();
        assert!(again.to_string().contains("new, empty folder"), "{again}");
    }
}

on_every_backend!(replay_makes_what_a_live_projection_makes);

/// A log whose readers fail once they have given `after` records (a broker lost, a disk
/// that stops reading): what stops a replay half-way.
struct Failing {
    inner: Arc<dyn contacthub_log::EventLog>,
    after: usize,
}

struct FailingReader {
    inner: Box<dyn contacthub_log::LogReader>,
    left: usize,
}

#[async_trait::async_trait]
impl contacthub_log::EventLog for Failing {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }
    async fn append(
        &self,
        records: Vec<contacthub_log::Record>,
    ) -> contacthub_log::Result<Vec<contacthub_log::Appended>> {
        self.inner.append(records).await
    }
    async fn end_offsets(&self) -> contacthub_log::Result<Vec<u64>> {
        self.inner.end_offsets().await
    }
    async fn reader(
        &self,
        from: &[(u32, u64)],
    ) -> contacthub_log::Result<Box<dyn contacthub_log::LogReader>> {
        Ok(Box::new(FailingReader {
            inner: self.inner.reader(from).await?,
            left: self.after,
        }))
    }
}

#[async_trait::async_trait]
impl contacthub_log::LogReader for FailingReader {
    async fn next_batch(
        &mut self,
        max: usize,
        wait: std::time::Duration,
    ) -> contacthub_log::Result<Vec<contacthub_log::StoredRecord>> {
        if self.left == 0 {
            return Err(contacthub_log::Error::Kafka("the broker went away".into()));
        }
        let got = self.inner.next_batch(max.min(self.left), wait).await?;
        self.left -= got.len();
        Ok(got)
    }
}

/// A replay stopped half-way leaves a read model marked unfinished, even after several
/// writes of its changes (checkpoints included): another replay refuses it, and a hub that
/// finds it in its folder folds the log again rather than serve half of it.
async fn a_replay_stopped_half_way_is_never_taken_for_a_read_model(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (log, kafka) = open_log(&backend, dir.path()).await;
    let keys = hub_keyring(kafka.as_ref(), dir.path()).await;
    let cfg = demo::DemoConfig {
        people_per_tenant: 10,
        ..Default::default()
    };
    let written = append_demo_sealed(&*log, &cfg, usize::MAX, Some(&*keys)).await;
    let tenants = Arc::new(Tenants::builtin());
    let whole = Store::open(dir.path().join("whole")).unwrap();
    let folded = AtomicU64::new(0);
    replay::replay(&whole, &*log, &tenants, &keys, 1 << 20, &folded)
        .await
        .unwrap();

    let half = dir.path().join("half");
    {
        let store = Store::open(&half).unwrap();
        let failing = Failing {
            inner: log.clone(),
            after: written / 2,
        };
        let stopped = replay::replay(&store, &failing, &tenants, &keys, 16 << 10, &folded)
            .await
            .unwrap_err();
        assert!(stopped.to_string().contains("went away"), "{stopped}");
        assert!(store.unfinished_replay().unwrap());
        assert!(
            store
                .checkpoints(log.partitions())
                .unwrap()
                .iter()
                .any(|&c| c > 0),
            "changes with their checkpoints were written before it stopped"
        );
        let again = replay::replay(&store, &*log, &tenants, &keys, 1 << 20, &folded)
            .await
            .unwrap_err();
        assert!(again.to_string().contains("unfinished replay"), "{again}");
    }
    let store = contacthub::server::open_read_model(&half, &log, &tenants, &keys)
        .await
        .unwrap();
    assert!(!store.unfinished_replay().unwrap());
    assert_eq!(store.digest().unwrap(), whole.digest().unwrap());
}

on_every_backend!(a_replay_stopped_half_way_is_never_taken_for_a_read_model);
