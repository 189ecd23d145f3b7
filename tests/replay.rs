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
        assert!(again.to_string().contains("new read model"), "{again}");
    }
}

on_every_backend!(replay_makes_what_a_live_projection_makes);
