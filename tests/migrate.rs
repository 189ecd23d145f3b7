//! Moving from the embedded default to Kafka: the history copied into a topic projects to the
//! very same read model, byte for byte.

use contacthub_core::tenant::Tenants;
use contacthub_log::{copy_log, embedded::EmbeddedLog, kafka, EventLog};
use contacthub_projector::{Projector, Store};
use contacthub_tests::crash::write_demo_log;
use contacthub_tests::*;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_history_copied_to_kafka_projects_identically() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = write_demo_log(&data, 10).await;
    let embedded: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(data.join("log"), 4).unwrap());

    let cfg = fresh_kafka(&brokers, 4).await;
    let kafka: Arc<dyn EventLog> = Arc::new(kafka::KafkaLog::connect(cfg).await.unwrap());
    let copied = copy_log(embedded.as_ref(), kafka.as_ref(), 500)
        .await
        .unwrap();
    assert_eq!(copied.copied as usize, events);
    // Run again (after an interruption, or by mistake): nothing is copied twice.
    let again = copy_log(embedded.as_ref(), kafka.as_ref(), 500)
        .await
        .unwrap();
    assert_eq!((again.copied, again.already as usize), (0, events));

    let mut digests = Vec::new();
    for (name, log) in [("embedded", embedded), ("kafka", kafka)] {
        let store = Store::open(dir.path().join(name)).unwrap();
        let (p, _) = Projector::new(
            store.clone(),
            log,
            Arc::new(Tenants::builtin()),
            keyring(dir.path()),
        )
        .unwrap();
        assert_eq!(p.catch_up().await.unwrap() as usize, events);
        digests.push(store.digest().unwrap());
    }
    assert_eq!(digests[0], digests[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_holding_other_events_is_not_taken_for_a_copy() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_demo_log(&data, 3).await;
    let embedded = EmbeddedLog::open(data.join("log"), 4).unwrap();
    let kafka = kafka::KafkaLog::connect(fresh_kafka(&brokers, 4).await)
        .await
        .unwrap();
    // Another hub's event, on the partition of Givors.
    kafka
        .append(vec![contacthub_app::write::record(&call(
            GIVORS,
            "elsewhere",
            "0600000009",
            at(2026, 1, 1, 9, 0),
        ))])
        .await
        .unwrap();
    let e = copy_log(&embedded, &kafka, 500).await.unwrap_err();
    assert!(e.to_string().contains("not a copy of this log"), "{e}");
}
