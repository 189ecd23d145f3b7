//! Faults on a real Kafka-API broker (tansu): a broker killed with SIGKILL and restarted in the
//! middle of a stream, and poison messages from a foreign producer.

use contacthub_core::pb;
use contacthub_core::tenant::Tenants;
use contacthub_log::{embedded::EmbeddedLog, kafka, EventLog};
use contacthub_projector::{Projector, Store, TimelineQuery};
use contacthub_tests::*;
use prost::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

fn event(i: u32) -> pb::Event {
    let tenant = [GIVORS, GRIGNY, "69259"][i as usize % 3];
    let mut e = call(
        tenant,
        &format!("fault-{i}"),
        &format!("06 10 00 {:02} {:02}", i / 100 % 100, i % 100),
        at(2026, 6, 1, 8, 0) + i64::from(i) * 1_000_000,
    );
    e.personal
        .as_mut()
        .unwrap()
        .party
        .as_mut()
        .unwrap()
        .citizen_id = format!("C-{}", i % 40);
    e
}

/// Event ids of each citizen's timeline, in order, for a set of citizens.
/// The citizens `C-0`…`C-39` of each commune the events name, registered first.
fn registrations() -> Vec<pb::Event> {
    let mut out = Vec::new();
    for tenant in [GIVORS, GRIGNY, "69259"] {
        for c in 0..40 {
            out.push(register(
                tenant,
                &format!("C-{c}"),
                "Test",
                "",
                at(2026, 5, 1, 8, 0),
            ));
        }
    }
    out
}

fn timelines(store: &Store) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for tenant in [GIVORS, GRIGNY, "69259"] {
        for c in 0..40 {
            let id = format!("C-{c}");
            let page = store
                .timeline(
                    tenant,
                    &id,
                    &TimelineQuery {
                        page_size: 500,
                        ..Default::default()
                    },
                )
                .unwrap();
            out.push((
                format!("{tenant}/{id}"),
                page.entries
                    .into_iter()
                    .filter(|e| e.kind != "citizen_registered")
                    .map(|e| e.event_id)
                    .collect(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_mid_stream_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut broker) = Tansu::start(&dir.path().join("tansu.db"), free_port(), None, &[])
    else {
        eprintln!("skipped: tansu is not installed");
        return;
    };
    let mut cfg = fresh_kafka(&broker.brokers(), 3).await;
    // tansu 0.6 sets a partition's high watermark to the base offset of its last batch + 1;
    // after a restart it then overwrites the tail of a multi-record batch it had acknowledged.
    // One record per batch keeps that broker bug out of what this test measures: our side.
    cfg.batch_records = 1;
    let log: Arc<dyn EventLog> = Arc::new(kafka::KafkaLog::connect(cfg.clone()).await.unwrap());
    let hub = TestHub::start_on(log.clone(), Some(cfg.clone()), tempfile::tempdir().unwrap()).await;
    hub.publish(&registrations()).await;
    hub.settle().await;

    let total = 600u32;
    // The writer stops between two appends when asked, so the broker dies with nothing in
    // flight (tansu 0.6 loses records in flight at SIGKILL, even acknowledged ones), then
    // goes on writing into the dead broker: those appends must wait and retry.
    let (pause_tx, mut pause_rx) = tokio::sync::watch::channel(false);
    let (paused_tx, paused_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut placed = Vec::new();
            let mut paused_tx = Some(paused_tx);
            for chunk in (0..total).collect::<Vec<_>>().chunks(10) {
                if *pause_rx.borrow() {
                    if let Some(tx) = paused_tx.take() {
                        let _ = tx.send(());
                    }
                    let _ = pause_rx.wait_for(|p| !*p).await;
                }
                let events: Vec<_> = chunk.iter().map(|&i| event(i)).collect();
                placed.extend(
                    log.append(events.iter().map(to_record).collect())
                        .await
                        .expect("append gave up"),
                );
                acked.extend(events.into_iter().map(|e| e.event_id));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acked, placed)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !writer.is_finished(),
        "the stream must still be flowing when the broker dies"
    );
    pause_tx.send(true).unwrap();
    paused_rx.await.unwrap();
    // What the projector has not read yet when the broker dies is read after its restart
    // (tansu 0.6 used to delete it at start: retention.ms=-1 read as 0, see
    // `kafka::KEEP_FOREVER_MS`).
    broker.kill9();
    pause_tx.send(false).unwrap();
    // While the broker is down, health says so.
    let mut health = tonic_health::pb::health_client::HealthClient::new(hub.channel.clone());
    let mut not_serving = false;
    for _ in 0..40 {
        let s = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if s == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32 {
            not_serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    broker.restart();
    let (acked, placed) = writer.await.unwrap();
    hub.note(&placed);
    assert_eq!(acked.len(), total as usize);
    assert!(
        not_serving,
        "health never turned NOT_SERVING while the broker was down"
    );
    hub.settle().await;

    let live = timelines(&hub.store);
    let ids = |t: &[(String, Vec<String>)]| {
        let mut v: Vec<String> = t.iter().flat_map(|(_, ids)| ids.clone()).collect();
        v.sort();
        v
    };
    let mut want = acked.clone();
    want.sort();

    // The same events without any fault, on the embedded log: the same timelines.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean_log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(clean_dir.path().join("log"), 3).unwrap());
    clean_log
        .append(registrations().iter().map(to_record).collect())
        .await
        .unwrap();
    clean_log
        .append((0..total).map(|i| to_record(&event(i))).collect())
        .await
        .unwrap();
    let clean = Store::open(clean_dir.path().join("rm")).unwrap();
    let (p, _) = Projector::new(
        clean.clone(),
        clean_log,
        Arc::new(Tenants::builtin()),
        keyring(clean_dir.path()),
    )
    .unwrap();
    p.catch_up().await.unwrap();
    // Through the outage: every acknowledged event projected once, and the very timelines of a
    // run without the fault.
    assert_eq!(
        ids(&live),
        want,
        "the live projection lost or doubled an entry"
    );
    assert_eq!(live, timelines(&clean));
    // The restarted broker still serves what was written before: a projection from offset
    // 0 folds the same timelines.
    let again = Store::open(dir.path().join("again")).unwrap();
    let (p, _) = Projector::new(
        again.clone(),
        log.clone(),
        Arc::new(Tenants::builtin()),
        keyring(&dir.path().join("again-keys")),
    )
    .unwrap();
    p.catch_up().await.unwrap();
    assert_eq!(timelines(&again), live, "read again after the restart");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_from_a_foreign_producer_goes_to_the_dead_letter_topic() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let cfg = fresh_kafka(&brokers, 2).await;
    let log: Arc<dyn EventLog> = Arc::new(kafka::KafkaLog::connect(cfg.clone()).await.unwrap());
    let hub = TestHub::start_on(log, Some(cfg.clone()), tempfile::tempdir().unwrap()).await;

    // A plain producer, as another system would use, writing straight to the topic.
    let foreign: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let mut unknown = call(GIVORS, "x", "0612121212", at(2026, 1, 1, 0, 0));
    unknown.tenant = "12345".into();
    let unknown = unknown.encode_to_vec();
    for (key, value) in [
        (&b"whatever"[..], &b"{\"json\": \"not protobuf\"}"[..]),
        (&b"12345"[..], &unknown[..]),
    ] {
        foreign
            .send(
                BaseRecord::to(&cfg.topic)
                    .key(key)
                    .payload(value)
                    .partition(0),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    foreign.flush(Duration::from_secs(10)).unwrap();
    let good = call(GIVORS, "after-poison", "0612121212", at(2026, 1, 2, 0, 0));
    hub.publish(std::slice::from_ref(&good)).await;
    hub.settle().await;
    // Wait until the projector passed the foreign records too.
    let mut rx = hub.projector.positions.clone();
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|p| p[0] >= 2))
        .await
        .unwrap()
        .unwrap();

    let tl = hub
        .store
        .timeline(
            GIVORS,
            &hub.store
                .by_identifier(GIVORS, "phone", "+33612121212")
                .unwrap()
                .unwrap(),
            &TimelineQuery {
                page_size: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        tl.entries.len(),
        1,
        "the projector went on after the poison"
    );
    assert_eq!(tl.entries[0].event_id, good.event_id);

    // Both poison messages are on the dead-letter topic, with their reason and raw bytes.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique("dlq-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&cfg.dead_letter_topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 2 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let reason = m
                .headers()
                .and_then(|h| h.iter().find(|x| x.key == "contacthub-dead-letter-reason"))
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            got.push((reason, m.payload().unwrap_or_default().to_vec()));
        }
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].0.starts_with("not a contacthub event"),
        "{}",
        got[0].0
    );
    assert_eq!(got[0].1, b"{\"json\": \"not protobuf\"}");
    assert_eq!(got[1].0, "unknown tenant \"12345\"");
    assert_eq!(got[1].1, unknown);
    hub.stop().await;
}

/// Reads scale out: two hubs on one topic each keep a full read model from their own consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_topic_each_keep_a_full_read_model() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let cfg = fresh_kafka(&brokers, 4).await;
    let hub = |cfg: kafka::KafkaConfig| async move {
        let log: Arc<dyn EventLog> = Arc::new(kafka::KafkaLog::connect(cfg.clone()).await.unwrap());
        TestHub::start_on(log, Some(cfg), tempfile::tempdir().unwrap()).await
    };
    let a = hub(cfg.clone()).await;
    let b = hub(cfg.clone()).await;

    let visit = a
        .desk()
        .record_visit(pb::RecordVisitRequest {
            tenant: GIVORS.into(),
            party: Some(party_phone("06 31 31 31 31")),
            desk: "accueil-hdv".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    let call = call(GIVORS, "scale-1", "0631313131", at(2026, 8, 1, 9, 0));
    b.publish(std::slice::from_ref(&call)).await;

    let wanted = {
        let mut w = vec![visit.event_id.clone(), call.event_id.clone()];
        w.sort();
        w
    };
    for h in [&a, &b] {
        let mut seen = Vec::new();
        for _ in 0..300 {
            if let Ok(r) = h
                .desk()
                .get_timeline(pb::GetTimelineRequest {
                    tenant: GIVORS.into(),
                    citizen: by_phone("0631313131"),
                    ..Default::default()
                })
                .await
            {
                seen = r
                    .into_inner()
                    .entries
                    .into_iter()
                    .map(|e| e.event_id)
                    .collect();
                seen.sort();
                if seen == wanted {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen, wanted, "each hub sees what the other wrote");
    }
    assert_eq!(
        a.store.digest().unwrap(),
        b.store.digest().unwrap(),
        "the same read model"
    );
    a.stop().await;
    b.stop().await;
}
