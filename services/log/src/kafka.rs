//! The Kafka backend: the same [`EventLog`] over a Kafka cluster, through rdkafka.
//!
//! Producer: idempotent, `acks=all`, batched (`linger.ms`) and compressed, every record sent to
//! the partition [`partition_for`] its key, like the embedded backend. `append` returns only
//! once the broker acknowledged every record; while the broker is unreachable it retries with
//! backoff, says so in the log and in [`EventLog::health`], and gives up after
//! `append_timeout` with an error: nothing is reported written that was not.
//!
//! Consumers assign partitions explicitly and start at offsets the caller keeps (the
//! projector keeps them in its own store); no consumer-group offsets are committed.

use crate::{partition_for, Appended, Error, EventLog, LogReader, Record, Result, StoredRecord};
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to reach the cluster and which topics to use.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub brokers: String,
    pub topic: String,
    pub dead_letter_topic: String,
    /// The compacted topic of the keyring ([`crate::kafka_keyring`]).
    pub keys_topic: String,
    /// `lz4` by default; `none`, `gzip`, `snappy`, `lz4`, `zstd` per librdkafka.
    pub compression: String,
    /// How long `append` keeps retrying an unreachable cluster before failing.
    pub append_timeout: Duration,
    /// Records per producer batch at most (`batch.num.messages`, default 10000).
    pub batch_records: u32,
    /// Further librdkafka client properties, set last: how to reach a secured cluster
    /// (`security.protocol=SASL_SSL`, `sasl.mechanisms`, `sasl.username`, `sasl.password`,
    /// `ssl.ca.location`…), from a Kafka client properties file ([`read_properties`]).
    pub properties: Vec<(String, String)>,
}

/// Reads a Kafka client properties file: `key=value` lines, `#` or `!` comments, blank lines
/// ignored. A line that is not a property is refused with its number; values are never
/// printed (the file holds the SASL password).
pub fn read_properties(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_properties(&text).map_err(|m| Error::Kafka(format!("{}: {m}", path.display())))
}

fn parse_properties(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {} is not key=value", n + 1));
        };
        let key = key.trim();
        let valid = !key.is_empty()
            && key.len() <= 100
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if !valid {
            return Err(format!("line {}: {key:?} is not a property name", n + 1));
        }
        if key == "bootstrap.servers" {
            return Err(format!(
                "line {}: bootstrap.servers comes from --kafka, not from this file",
                n + 1
            ));
        }
        out.push((key.to_string(), value.trim().to_string()));
    }
    Ok(out)
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            topic: "contacthub.events.v1".into(),
            dead_letter_topic: "contacthub.dead-letters.v1".into(),
            keys_topic: "contacthub.keys.v1".into(),
            compression: "lz4".into(),
            append_timeout: Duration::from_secs(60),
            batch_records: 10_000,
            properties: Vec::new(),
        }
    }

    pub(crate) fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "contacthub")
            .set("socket.keepalive.enable", "true")
            .set("reconnect.backoff.max.ms", "5000")
            .set("log_level", "4");
        for (key, value) in &self.properties {
            c.set(key, value);
        }
        c
    }
}

fn kerr(e: rdkafka::error::KafkaError) -> Error {
    Error::Kafka(e.to_string())
}

/// How long the dead-letter topic keeps a record: 90 days.
pub const DEAD_LETTER_RETENTION_MS: &str = "7776000000";

/// The events topic's `retention.ms`: the longest Kafka takes, the same as `-1` (no limit) on
/// Apache Kafka, and also kept by brokers that read `-1` as 0 — tansu 0.6 deletes every
/// record of a `delete` topic whose retention is `-1` at each start and every 10 minutes.
pub const KEEP_FOREVER_MS: &str = "9223372036854775807";

/// Creates the event topic (infinite retention: it is the system of record), the
/// dead-letter topic (90 days) and the keys topic (compacted). Existing topics are left as
/// they are.
pub async fn create_topics(
    cfg: &KafkaConfig,
    partitions: u32,
    replication: i32,
) -> Result<Vec<String>> {
    let admin: Arc<AdminClient<DefaultClientContext>> =
        Arc::new(cfg.base().create().map_err(kerr)?);
    // A cluster that does not answer is said within seconds, not after librdkafka's retries.
    let probe = admin.clone();
    let reached = tokio::task::spawn_blocking(move || {
        probe
            .inner()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|_| ())
    })
    .await
    .map_err(|e| Error::Kafka(format!("asking the cluster: {e}")))?;
    if let Err(e) = reached {
        let secured = if cfg.properties.is_empty() {
            ""
        } else {
            ", and that --kafka-config (security.protocol, sasl.*, ssl.*) is what the cluster expects"
        };
        return Err(Error::Kafka(format!(
            "no Kafka broker answered at {} within 10 s ({e}): check --kafka (CONTACTHUB_KAFKA) and that the brokers run{secured}",
            cfg.brokers
        )));
    }
    let events = NewTopic::new(
        &cfg.topic,
        partitions as i32,
        TopicReplication::Fixed(replication),
    )
    .set("retention.ms", KEEP_FOREVER_MS)
    .set("retention.bytes", "-1")
    .set("cleanup.policy", "delete");
    // Dead letters are copies for other systems to see (the read model keeps its own, the
    // event topic the record): kept 90 days, as the quarantine's default.
    let dead = NewTopic::new(
        &cfg.dead_letter_topic,
        1,
        TopicReplication::Fixed(replication),
    )
    .set("retention.ms", DEAD_LETTER_RETENTION_MS);
    // The keyring: one record per key, the last kept. A destroyed key's wrapped bytes are
    // compacted away within a day (a segment rolls every hour, is cleaned within 24 hours).
    let keys = NewTopic::new(&cfg.keys_topic, 1, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact")
        .set("retention.ms", "-1")
        .set("segment.ms", "3600000")
        .set("max.compaction.lag.ms", "86400000")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "86400000");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&events, &dead, &keys], &opts)
        .await
        .map_err(kerr)?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::Kafka(format!("creating topic {name}: {code}")))
            }
        }
    }
    Ok(created)
}

/// An event log on a Kafka topic.
pub struct KafkaLog {
    cfg: KafkaConfig,
    producer: FutureProducer,
    meta: Arc<BaseConsumer>,
    partitions: u32,
    unhealthy: Arc<Mutex<Option<String>>>,
}

impl KafkaLog {
    /// Connects and checks that the topics exist.
    pub async fn connect(cfg: KafkaConfig) -> Result<Self> {
        let producer: FutureProducer = cfg
            .base()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("linger.ms", "5")
            .set("batch.num.messages", cfg.batch_records.to_string())
            .set("batch.size", "1000000")
            .set("compression.type", &cfg.compression)
            .set("message.timeout.ms", "30000")
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "2000")
            .create()
            .map_err(kerr)?;
        let meta: BaseConsumer = cfg
            .base()
            .set("group.id", "contacthub-metadata")
            .set("isolation.level", "read_uncommitted")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(kerr)?;
        let meta = Arc::new(meta);
        let partitions = topic_partitions(&meta, &cfg, &cfg.topic).await?;
        topic_partitions(&meta, &cfg, &cfg.dead_letter_topic).await?;
        Ok(KafkaLog {
            cfg,
            producer,
            meta,
            partitions,
            unhealthy: Arc::new(Mutex::new(None)),
        })
    }

    /// Sends records and waits for every acknowledgement; `Err` holds the ones not acknowledged.
    async fn send_once(
        &self,
        topic: &str,
        records: &[(u32, &Record)],
    ) -> Vec<std::result::Result<(u32, u64), String>> {
        let mut futures = Vec::with_capacity(records.len());
        for (partition, r) in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let fr = FutureRecord::to(topic)
                .partition(*partition as i32)
                .key(&r.key)
                .payload(&r.value)
                .headers(headers)
                .timestamp(r.timestamp_ms);
            futures.push(self.producer.send(fr, Duration::from_secs(5)));
        }
        futures::future::join_all(futures)
            .await
            .into_iter()
            .map(|res| match res {
                Ok(d) => Ok((d.partition as u32, d.offset as u64)),
                Err((e, _)) => Err(e.to_string()),
            })
            .collect()
    }
}

async fn topic_partitions(meta: &Arc<BaseConsumer>, cfg: &KafkaConfig, topic: &str) -> Result<u32> {
    let m = meta.clone();
    let t = topic.to_string();
    let md =
        tokio::task::spawn_blocking(move || m.fetch_metadata(Some(&t), Duration::from_secs(10)))
            .await
            .map_err(|e| Error::Kafka(e.to_string()))?
            .map_err(kerr)?;
    let found = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none() && !t.partitions().is_empty());
    match found {
        Some(t) => Ok(t.partitions().len() as u32),
        None => Err(Error::TopicMissing {
            topic: topic.to_string(),
            brokers: cfg.brokers.clone(),
        }),
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    fn backend(&self) -> &'static str {
        "kafka"
    }

    fn name(&self) -> String {
        self.cfg.topic.clone()
    }

    fn partitions(&self) -> u32 {
        self.partitions
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Appended>> {
        let placed: Vec<(u32, &Record)> = records
            .iter()
            .map(|r| (partition_for(&r.key, self.partitions), r))
            .collect();
        let mut result: Vec<Option<Appended>> = vec![None; records.len()];
        let mut pending: Vec<usize> = (0..records.len()).collect();
        let deadline = tokio::time::Instant::now() + self.cfg.append_timeout;
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let batch: Vec<(u32, &Record)> = pending.iter().map(|&i| placed[i]).collect();
            let outcomes = self.send_once(&self.cfg.topic, &batch).await;
            let mut failed = Vec::new();
            let mut last_error = None;
            for (&i, o) in pending.iter().zip(outcomes) {
                match o {
                    Ok((partition, offset)) => result[i] = Some(Appended { partition, offset }),
                    Err(e) => {
                        failed.push(i);
                        last_error = Some(e);
                    }
                }
            }
            if failed.is_empty() {
                if attempt > 1 {
                    tracing::info!(attempts = attempt, "kafka append succeeded after retries");
                }
                *self.unhealthy.lock().unwrap() = None;
                return Ok(result.into_iter().map(Option::unwrap).collect());
            }
            let reason = last_error.unwrap_or_default();
            *self.unhealthy.lock().unwrap() = Some(reason.clone());
            if tokio::time::Instant::now() + backoff > deadline {
                return Err(Error::Kafka(format!(
                    "{} of {} records not acknowledged after {attempt} attempts: {reason}",
                    failed.len(),
                    records.len()
                )));
            }
            tracing::warn!(
                attempt,
                unacknowledged = failed.len(),
                error = %reason,
                retry_in_ms = backoff.as_millis() as u64,
                "kafka broker did not acknowledge; retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            pending = failed;
        }
    }

    async fn end_offsets(&self) -> Result<Vec<u64>> {
        let m = self.meta.clone();
        let topic = self.cfg.topic.clone();
        let n = self.partitions;
        tokio::task::spawn_blocking(move || {
            (0..n)
                .map(|p| {
                    m.fetch_watermarks(&topic, p as i32, Duration::from_secs(5))
                        .map(|(_, high)| high.max(0) as u64)
                        .map_err(kerr)
                })
                .collect()
        })
        .await
        .map_err(|e| Error::Kafka(e.to_string()))?
    }

    async fn reader(&self, from: &[(u32, u64)]) -> Result<Box<dyn LogReader>> {
        let consumer: StreamConsumer = self
            .cfg
            .base()
            .set("group.id", "contacthub-projector")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", "25")
            .set("fetch.min.bytes", "1")
            .set("queued.min.messages", "20000")
            .create()
            .map_err(kerr)?;
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in from {
            if p >= self.partitions {
                return Err(Error::NoSuchPartition {
                    partition: p,
                    count: self.partitions,
                });
            }
            tpl.add_partition_offset(&self.cfg.topic, p as i32, Offset::Offset(o as i64))
                .map_err(kerr)?;
        }
        consumer.assign(&tpl).map_err(kerr)?;
        Ok(Box::new(KafkaReader {
            consumer,
            next: from.iter().copied().collect(),
        }))
    }

    async fn publish_dead_letter(&self, record: Record) -> Result<()> {
        let res = self
            .send_once(&self.cfg.dead_letter_topic, &[(0, &record)])
            .await;
        match res.into_iter().next() {
            Some(Err(e)) => Err(Error::Kafka(e)),
            _ => Ok(()),
        }
    }

    async fn health(&self) -> Result<()> {
        if let Some(e) = self.unhealthy.lock().unwrap().clone() {
            return Err(Error::Kafka(e));
        }
        let m = self.meta.clone();
        let topic = self.cfg.topic.clone();
        tokio::task::spawn_blocking(move || m.fetch_metadata(Some(&topic), Duration::from_secs(2)))
            .await
            .map_err(|e| Error::Kafka(e.to_string()))?
            .map(|_| ())
            .map_err(kerr)
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

struct KafkaReader {
    consumer: StreamConsumer,
    /// Next expected offset per partition, to skip anything redelivered after a reconnect.
    next: std::collections::HashMap<u32, u64>,
}

#[async_trait]
impl LogReader for KafkaReader {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        let mut timeout = wait;
        while out.len() < max.max(1) {
            let msg = match tokio::time::timeout(timeout, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    if out.is_empty() {
                        return Err(kerr(e));
                    }
                    break;
                }
                Ok(Ok(m)) => m,
            };
            timeout = Duration::from_millis(1);
            let partition = msg.partition() as u32;
            let offset = msg.offset() as u64;
            let expected = self.next.get(&partition).copied().unwrap_or(0);
            if offset < expected {
                continue;
            }
            self.next.insert(partition, offset + 1);
            let headers = msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(StoredRecord {
                partition,
                offset,
                record: Record {
                    key: msg.key().unwrap_or_default().to_vec(),
                    value: msg.payload().unwrap_or_default().to_vec(),
                    headers,
                    timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod properties_tests {
    use super::parse_properties;

    #[test]
    fn a_properties_file_reads_as_kafka_clients_write_it() {
        let p = parse_properties(
            "# secured cluster\nsecurity.protocol=SASL_SSL\n\nsasl.mechanisms = SCRAM-SHA-512\nsasl.password=a=b\n",
        )
        .unwrap();
        assert_eq!(
            p,
            [
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.mechanisms".into(), "SCRAM-SHA-512".into()),
                ("sasl.password".into(), "a=b".into()),
            ]
        );
        assert_eq!(
            parse_properties("ok=1\nnot a property\n").unwrap_err(),
            "line 2 is not key=value"
        );
        assert!(parse_properties("bootstrap.servers=x:9092").is_err());
    }
}
