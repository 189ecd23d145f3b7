//! Sealing: every personal datum a writer puts on the log is encrypted with its data subject's
//! key (the log and its Kafka topic hold no name, number, address or text in the clear), the
//! hub's own read model still shows it, and the keyring on Kafka is one for every hub.

use contacthub_app::auth::System;
use contacthub_app::commands;
use contacthub_core::pb;
use contacthub_core::seal::{Keys, Lookup};
use contacthub_log::keyring::Keyring;
use contacthub_tests::canary::{self, *};
use contacthub_tests::*;

const NAME: &str = "Zéphirine Canarixa";

async fn the_log_holds_nothing_personal_in_the_clear(backend: Backend) {
    let hub = TestHub::start(&backend).await;
    let scope = hub.scope(GIVORS);
    // At the desk: a visit with the person's name, number, subject and notes.
    let visit = hub
        .hub
        .record_visit(
            &scope,
            &commands::RecordVisit {
                party: Some(pb::Party {
                    phone: PHONE.into(),
                    name: NAME.into(),
                    email: EMAIL.into(),
                    ..Default::default()
                }),
                desk: "accueil-hdv".into(),
                category: pb::Category::Ccas,
                subject: SUBJECT.into(),
                notes: NOTES.into(),
                idempotency_key: "sealing-visit".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Through a channel adapter's write path: a letter and a form.
    let now = at(2026, 12, 3, 9, 0);
    let mut mail = letter(GIVORS, "000777", PHONE, now);
    mail.personal.as_mut().unwrap().text = LETTER.into();
    let form = web_form(GIVORS, "sealing-form", PHONE, EMAIL, now);
    hub.hub
        .append_contacts(System::Adapters, &[mail, form])
        .await
        .unwrap();
    // A request opened on behalf of a council, closed with a resolution.
    canary::request_opened_and_closed(&hub, "", "sealing-request").await;
    hub.settle().await;

    // The hub's read model opened them: the visit's detail has its subject and notes.
    let contact = hub
        .hub
        .contact(&scope, &visit.event_id)
        .expect("the visit's detail");
    let shown = format!("{contact:?}");
    assert!(shown.contains(NOTES) && shown.contains(SUBJECT), "{shown}");

    // Every record of the log, as stored (key, value, headers).
    let (bytes, read) = canary::log_bytes(hub.log.as_ref()).await;
    assert_eq!(read, 5, "visit, letter, form, request opened and closed");
    let canaries = [canary::ALL.as_slice(), &["Marie Durand"]].concat();
    assert_eq!(canary::hits(&bytes, &canaries), Vec::<String>::new());
    // On the embedded log, also every byte of its files.
    if hub.kafka.is_none() {
        let mut files = canary::bytes_under(&hub.dir.path().join("log"));
        files.extend(canary::bytes_under(&hub.dir.path().join("keyring")));
        assert_eq!(canary::hits(&files, &canaries), Vec::<String>::new());
    }
    hub.stop().await;
}

on_every_backend!(the_log_holds_nothing_personal_in_the_clear);

/// A contact's fingerprint is kept keyed (HMAC with a key of the master key): what the read
/// model holds is not the content's hash, which a short SMS would let anyone find by hashing
/// guesses; a source sending the same contact again is still told it is a duplicate, and
/// other content under its id is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_are_kept_keyed_and_still_find_duplicates() {
    let hub = TestHub::start(&Backend::Embedded).await;
    let mut sms = web_form(GIVORS, "keyed-1", PHONE, "", at(2026, 12, 2, 9, 0));
    sms.personal.as_mut().unwrap().text = "Oui".into();
    sms.fingerprint = contacthub_core::event::content_fingerprint(&sms, &[]);
    let first = hub
        .hub
        .append_contacts(System::Adapters, std::slice::from_ref(&sms))
        .await
        .unwrap();
    let kept = hub.store.applied(GIVORS, &sms.event_id).unwrap().unwrap();
    assert_eq!(kept.fingerprint.len(), 16);
    assert_ne!(
        kept.fingerprint, sms.fingerprint,
        "not the content's own hash"
    );
    let again = hub
        .hub
        .append_contacts(System::Adapters, std::slice::from_ref(&sms))
        .await
        .unwrap();
    assert_eq!(again, first, "the same contact again is a duplicate");
    let mut other = sms.clone();
    other.personal.as_mut().unwrap().text = "Non".into();
    other.fingerprint = contacthub_core::event::content_fingerprint(&other, &[]);
    let refused = hub
        .hub
        .append_contacts(System::Adapters, &[other])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, contacthub_app::Error::Conflict(_)),
        "{refused}"
    );
    hub.stop().await;
}

/// Two hubs on one cluster: a key one makes, the other learns; a key one destroys is gone for
/// both, stays gone after a restart, and is never made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyring_on_kafka_is_one_for_every_hub() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    use contacthub_log::kafka_keyring::KafkaKeyring;
    let cfg = fresh_kafka(&brokers, 1).await;
    let a = KafkaKeyring::open(&cfg, test_master_key(), "a")
        .await
        .unwrap();
    let b = KafkaKeyring::open(&cfg, test_master_key(), "b")
        .await
        .unwrap();
    assert_eq!(a.suffix(), "@a");
    let ids = vec!["c/C1@a".to_string(), "i/00ff@a".to_string()];
    let made = a.keys_for(&ids).await.unwrap();
    assert_ne!(
        b.key("c/C1@a"),
        Lookup::Destroyed,
        "not caught up yet: unknown, never destroyed"
    );
    b.catch_up().await.unwrap();
    assert_eq!(b.key("c/C1@a"), Lookup::Live(made[0].unwrap()));
    assert_eq!(b.destroy(&ids[..1]).await.unwrap(), 1);
    a.catch_up().await.unwrap();
    assert_eq!(a.key("c/C1@a"), Lookup::Destroyed);
    assert_eq!(a.keys_for(&ids).await.unwrap()[0], None, "never made again");
    // Another master key cannot open what the topic holds.
    let stranger = contacthub_log::keyring::MasterKey::parse(&"01".repeat(32)).unwrap();
    let c = KafkaKeyring::open(&cfg, stranger, "c").await.unwrap();
    assert_eq!(c.key("i/00ff@a"), Lookup::Unknown);
    // A hub started later reads the same state.
    let d = KafkaKeyring::open(&cfg, test_master_key(), "d")
        .await
        .unwrap();
    assert_eq!(d.key("c/C1@a"), Lookup::Destroyed);
    assert_eq!(d.key("i/00ff@a"), Lookup::Live(made[1].unwrap()));
}

/// `contacthub migrate` takes the keyring along: a hub on Kafka, on another data folder with
/// the same master key, reads what the embedded hub sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_moved_to_kafka_opens_with_its_keys() {
    let Some(Backend::Kafka { brokers }) = Backend::kafka() else {
        eprintln!("skipped: no Kafka broker (set CONTACTHUB_TEST_KAFKA=host:port)");
        return;
    };
    let hub = TestHub::start(&Backend::Embedded).await;
    let visit = hub
        .hub
        .record_visit(
            &hub.scope(GIVORS),
            &commands::RecordVisit {
                party: Some(party_phone(PHONE)),
                subject: SUBJECT.into(),
                notes: NOTES.into(),
                idempotency_key: "moved-visit".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let dir = hub.stop().await;
    let cfg = fresh_kafka(&brokers, 4).await;
    let secrets = tempfile::tempdir().unwrap();
    let master = secrets.path().join("master.key");
    std::fs::write(&master, "5e".repeat(32)).unwrap();
    let out = std::process::Command::new(contacthub_bin!())
        .arg("migrate")
        .arg("--data")
        .arg(dir.path())
        .args(["--kafka", &brokers, "--topic", &cfg.topic])
        .args(["--dead-letter-topic", &cfg.dead_letter_topic])
        .args(["--keys-topic", &cfg.keys_topic])
        .arg("--master-key-file")
        .arg(&master)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("copied 1 keys to {brokers}/{}", cfg.keys_topic)),
        "{said}"
    );

    let log = contacthub_log::kafka::KafkaLog::connect(cfg.clone())
        .await
        .unwrap();
    let moved = TestHub::start_on(
        std::sync::Arc::new(log),
        Some(cfg),
        tempfile::tempdir().unwrap(),
    )
    .await;
    moved.hub.wait_caught_up().await.unwrap();
    let contact = moved
        .hub
        .contact(&moved.scope(GIVORS), &visit.event_id)
        .expect("the visit, read on kafka");
    let shown = format!("{contact:?}");
    assert!(shown.contains(NOTES) && shown.contains(SUBJECT), "{shown}");
    moved.stop().await;
}
