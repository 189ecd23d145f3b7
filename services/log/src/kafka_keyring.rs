//! The keyring shared by the hubs of a Kafka cluster: a compacted topic of wrapped keys.
//!
//! One record per key, keyed by its id: the wrapped key when made, the marker `destroyed`
//! when erased. Compaction keeps the last record of each id, so a destroyed key's wrapped
//! bytes leave the cluster once its segment is compacted (the topic's settings bound that to a
//! day, docs/operations.md), and the id stays destroyed for ever: it is never made again.
//!
//! Each hub makes keys only under its own suffix (`@<hub>`), so two hubs never make one id
//! twice (compaction would keep the second and lose the first); any hub destroys any key.
//! Every hub reads the whole topic at start and follows it.

use crate::kafka::KafkaConfig;
use crate::keyring::{new_key, Keyring, MasterKey, MAX_ID, WRAPPED};
use crate::{Error, Result};
use async_trait::async_trait;
use contacthub_core::seal::{Key, Keys, Lookup};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The value that says a key was destroyed.
pub const DESTROYED: &[u8] = b"destroyed";

#[derive(Debug, Clone, Copy)]
enum Held {
    Live(Key),
    Destroyed,
}

/// The keyring on the keys topic of a cluster.
pub struct KafkaKeyring {
    topic: String,
    producer: FutureProducer,
    watermarks: Arc<BaseConsumer>,
    master: MasterKey,
    suffix: String,
    known: Arc<RwLock<HashMap<String, Held>>>,
    /// Held while keys are made: two writers of this hub never make one id twice (the
    /// topic would keep the second, and what the first sealed would not open).
    making: tokio::sync::Mutex<()>,
    /// Next offset of the topic the follower will read.
    next: watch::Receiver<i64>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for KafkaKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaKeyring")
            .field("topic", &self.topic)
            .field("suffix", &self.suffix)
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaKeyring {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn kerr(e: rdkafka::error::KafkaError) -> Error {
    Error::Kafka(e.to_string())
}

impl KafkaKeyring {
    /// Connects to `cfg.keys_topic`, reads it whole, then follows it. `hub` names this hub's
    /// keys (a stable id kept in its data folder).
    pub async fn open(cfg: &KafkaConfig, master: MasterKey, hub: &str) -> Result<Self> {
        let producer: FutureProducer = cfg
            .base()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(kerr)?;
        let follower: BaseConsumer = cfg
            .base()
            .set("group.id", "contacthub-keyring")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(kerr)?;
        let watermarks: BaseConsumer = cfg
            .base()
            .set("group.id", "contacthub-keyring")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(kerr)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&cfg.keys_topic, 0, Offset::Beginning)
            .map_err(kerr)?;
        follower.assign(&tpl).map_err(kerr)?;
        let known: Arc<RwLock<HashMap<String, Held>>> = Arc::default();
        let (next_tx, next) = watch::channel(0i64);
        let stop = Arc::new(AtomicBool::new(false));
        {
            let known = known.clone();
            let stop = stop.clone();
            let master = master.clone();
            std::thread::Builder::new()
                .name("keyring-follower".into())
                .spawn(move || follow(follower, master, known, next_tx, stop))
                .map_err(|e| Error::Kafka(format!("starting the keyring follower: {e}")))?;
        }
        let ring = Self {
            topic: cfg.keys_topic.clone(),
            producer,
            watermarks: Arc::new(watermarks),
            master,
            suffix: format!("@{hub}"),
            known,
            making: tokio::sync::Mutex::new(()),
            next,
            stop,
        };
        ring.catch_up().await?;
        Ok(ring)
    }

    /// Copies keys made elsewhere (the embedded keyring of a log moving to Kafka) under their
    /// own ids; ids this keyring knows already are left as they are. Returns how many were
    /// copied.
    pub async fn import(&self, entries: &[(String, Option<Key>)]) -> Result<usize> {
        let mut copied = 0;
        for (id, key) in entries {
            if id.len() > MAX_ID {
                return Err(Error::KeyIdTooLong(id.len()));
            }
            if self.known.read().expect("keyring index").contains_key(id) {
                continue;
            }
            let (value, held) = match key {
                Some(k) => (self.master.wrap(id, k), Held::Live(*k)),
                None => (DESTROYED.to_vec(), Held::Destroyed),
            };
            self.produce(id, &value).await?;
            self.known
                .write()
                .expect("keyring index")
                .insert(id.clone(), held);
            copied += 1;
        }
        Ok(copied)
    }

    async fn produce(&self, id: &str, value: &[u8]) -> Result<()> {
        let record = FutureRecord::to(&self.topic)
            .partition(0)
            .key(id.as_bytes())
            .payload(value);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| Error::Kafka(format!("writing to the keys topic: {e}")))
    }
}

/// Reads the keys topic into `known` until told to stop.
fn follow(
    consumer: BaseConsumer,
    master: MasterKey,
    known: Arc<RwLock<HashMap<String, Held>>>,
    next: watch::Sender<i64>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => {
                tracing::warn!(error = %e, "reading the keys topic");
                std::thread::sleep(Duration::from_millis(200));
            }
            Some(Ok(m)) => {
                let id = m.key().and_then(|k| std::str::from_utf8(k).ok());
                if let Some(id) = id {
                    let held = match m.payload() {
                        Some(v) if v == DESTROYED => Some(Held::Destroyed),
                        None => Some(Held::Destroyed),
                        Some(v) => match master.unwrap(id, v) {
                            Some(k) => Some(Held::Live(k)),
                            None => {
                                tracing::warn!(
                                    offset = m.offset(),
                                    "a key of the keys topic does not open with this master key"
                                );
                                None
                            }
                        },
                    };
                    if let Some(held) = held {
                        let mut known = known.write().expect("keyring index");
                        // A destroyed key stays destroyed, whatever comes after; a live key is
                        // the one made first (never replaced, should a copy come again).
                        match (known.get(id), held) {
                            (None, _) | (Some(Held::Live(_)), Held::Destroyed) => {
                                known.insert(id.to_string(), held);
                            }
                            _ => {}
                        }
                    }
                }
                next.send_replace(m.offset() + 1);
            }
        }
    }
}

fn held_key(held: Option<Held>) -> Option<Key> {
    match held {
        Some(Held::Live(k)) => Some(k),
        _ => None,
    }
}

impl Keys for KafkaKeyring {
    fn key(&self, id: &str) -> Lookup {
        match self.known.read().expect("keyring index").get(id) {
            Some(Held::Live(k)) => Lookup::Live(*k),
            Some(Held::Destroyed) => Lookup::Destroyed,
            None => Lookup::Unknown,
        }
    }
}

#[async_trait]
impl Keyring for KafkaKeyring {
    fn fingerprint_key(&self) -> Key {
        self.master.fingerprint_key()
    }

    async fn keys_for(&self, ids: &[String]) -> Result<Vec<Option<Key>>> {
        if let Some(id) = ids.iter().find(|id| id.len() > MAX_ID) {
            return Err(Error::KeyIdTooLong(id.len()));
        }
        let lookup = |id: &String| self.known.read().expect("keyring index").get(id).copied();
        if ids.iter().all(|id| lookup(id).is_some()) {
            return Ok(ids.iter().map(|id| held_key(lookup(id))).collect());
        }
        // Made under the lock (another writer of this hub may be making the same id), all at
        // once: one round trip to the cluster for a batch, not one per key.
        let _making = self.making.lock().await;
        let mut new: Vec<(String, Key)> = Vec::new();
        for id in ids {
            if lookup(id).is_none() && !new.iter().any(|(n, _)| n == id) {
                new.push((id.clone(), new_key()));
            }
        }
        let sent = futures::future::join_all(new.iter().map(|(id, key)| {
            let wrapped = self.master.wrap(id, key);
            debug_assert_eq!(wrapped.len(), WRAPPED);
            async move { self.produce(id, &wrapped).await }
        }))
        .await;
        for r in sent {
            r?;
        }
        {
            let mut known = self.known.write().expect("keyring index");
            for (id, key) in new {
                // Destroyed meanwhile: it stays destroyed.
                known.entry(id).or_insert(Held::Live(key));
            }
        }
        Ok(ids.iter().map(|id| held_key(lookup(id))).collect())
    }

    async fn destroy(&self, ids: &[String]) -> Result<usize> {
        let mut live = 0;
        for id in ids {
            if id.len() > MAX_ID {
                return Err(Error::KeyIdTooLong(id.len()));
            }
            self.produce(id, DESTROYED).await?;
            let was = self
                .known
                .write()
                .expect("keyring index")
                .insert(id.clone(), Held::Destroyed);
            if matches!(was, Some(Held::Live(_))) {
                live += 1;
            }
        }
        Ok(live)
    }

    async fn catch_up(&self) -> Result<()> {
        let c = self.watermarks.clone();
        let topic = self.topic.clone();
        let (_, high) = tokio::task::spawn_blocking(move || {
            c.fetch_watermarks(&topic, 0, Duration::from_secs(10))
        })
        .await
        .map_err(|e| Error::Kafka(e.to_string()))?
        .map_err(|e| {
            use rdkafka::types::RDKafkaErrorCode as Code;
            let missing = matches!(
                e.rdkafka_error_code(),
                Some(Code::UnknownTopicOrPartition | Code::UnknownTopic | Code::UnknownPartition)
            );
            let hint = if missing {
                "create it with `contacthub topics init`"
            } else {
                "the broker did not answer in time: check that it runs and is reachable"
            };
            Error::Kafka(format!(
                "the keys topic {} cannot be read ({e}): {hint}",
                self.topic
            ))
        })?;
        let mut next = self.next.clone();
        tokio::time::timeout(Duration::from_secs(60), next.wait_for(|&n| n >= high))
            .await
            .map_err(|_| {
                Error::Kafka(format!(
                    "the keys topic {} was not read to its end ({high}) within 60 s",
                    self.topic
                ))
            })?
            .map_err(|_| Error::Closed)?;
        Ok(())
    }

    fn suffix(&self) -> &str {
        &self.suffix
    }
}
