//! The event log: an ordered, partitioned, durable sequence of records, shaped after Kafka.
//!
//! Layout:
//! - this file: the [`EventLog`] and [`LogReader`] traits, records, the partitioner, errors.
//! - [`embedded`]: the default backend, append-only files on local disk with group commit.
//! - [`kafka`]: the same trait over a Kafka cluster (rdkafka).
//! - [`keyring`]: the data subjects' keys (erasure by crypto-shredding), beside the log;
//!   [`kafka_keyring`]: the same, shared by the hubs of a cluster.
//!
//! Both backends place a record by [`partition_for`] its key (Kafka's murmur2 partitioner), so a
//! history exported from one backend lands on the same partitions in the other.

pub mod embedded;
pub mod frame;
pub mod kafka;
pub mod kafka_keyring;
pub mod keyring;

use async_trait::async_trait;
use std::time::Duration;

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch (producer time).
    pub timestamp_ms: i64,
}

/// A record read back, with its place on the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredRecord {
    pub partition: u32,
    pub offset: u64,
    pub record: Record,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Appended {
    pub partition: u32,
    pub offset: u64,
}

/// Errors of the log backends.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("log at {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("partition {partition} does not exist (the log has {count})")]
    NoSuchPartition { partition: u32, count: u32 },
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the log is closed")]
    Closed,
    #[error("topic {topic:?} does not exist on the Kafka cluster; create the topics with `contacthub topics init --kafka {brokers}` (same --topic and --dead-letter-topic as here)")]
    TopicMissing { topic: String, brokers: String },
    #[error("kafka: {0}")]
    Kafka(String),
    /// The master key of the keyring is missing, malformed or misplaced.
    #[error("master key: {0}")]
    Master(String),
    #[error("keyring {path} is damaged at slot {slot}: {reason}")]
    KeyringCorrupt {
        path: String,
        slot: u64,
        reason: String,
    },
    #[error("key id of {0} bytes is longer than the keyring takes (160 bytes)")]
    KeyIdTooLong(usize),
    /// The target of a copy is not (the start of) a copy of the source.
    #[error("{0}")]
    NotACopy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An append-only, partitioned log.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// "embedded" or "kafka".
    fn backend(&self) -> &'static str;

    /// Name of the topic (Kafka) or folder (embedded) holding the events.
    fn name(&self) -> String;

    /// Number of partitions; fixed for the life of the log.
    fn partitions(&self) -> u32;

    /// Appends records, each to the partition of its key, in order per partition. Returns once
    /// every record is durable (embedded: fsynced; Kafka: acknowledged by all in-sync replicas).
    async fn append(&self, records: Vec<Record>) -> Result<Vec<Appended>>;

    /// Next offset to be assigned, per partition.
    async fn end_offsets(&self) -> Result<Vec<u64>>;

    /// Reads the given partitions, each from its offset.
    async fn reader(&self, from: &[(u32, u64)]) -> Result<Box<dyn LogReader>>;

    /// Keeps a record that could not be projected where other systems can see it (Kafka: the
    /// dead-letter topic). The embedded backend has nothing to add: the projector's own
    /// dead-letter store and the log itself already hold it.
    async fn publish_dead_letter(&self, _record: Record) -> Result<()> {
        Ok(())
    }

    /// Whether the log can currently accept writes; `Err` says why not.
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}

/// Reads assigned partitions in order.
#[async_trait]
pub trait LogReader: Send {
    /// Up to `max` records following the previous ones, waiting at most `wait` for the first.
    /// Records of one partition come in offset order; an empty batch means nothing new yet.
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>>;
}

/// What [`copy_log`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    /// Records appended to the target now.
    pub copied: u64,
    /// Records the target already held from an earlier, interrupted copy.
    pub already: u64,
}

/// A record as compared between the source and the target: key and value.
fn same(a: &Record, b: &Record) -> bool {
    a.key == b.key && a.value == b.value
}

/// Folds a record into a partition's running digest (its key and value, length-prefixed).
fn digest(h: &mut u64, r: &Record) {
    for part in [&r.key, &r.value] {
        for b in (part.len() as u64).to_be_bytes().iter().chain(part.iter()) {
            *h = (*h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Reads `reader` until a read of `quiet` finds nothing, calling `each` on every record.
async fn drain(
    reader: &mut Box<dyn LogReader>,
    batch: usize,
    quiet: Duration,
    mut each: impl FnMut(StoredRecord) -> Result<()>,
) -> Result<()> {
    loop {
        let got = reader.next_batch(batch, quiet).await?;
        if got.is_empty() {
            return Ok(());
        }
        for r in got {
            each(r)?;
        }
    }
}

/// Copies every record of `from`, partition by partition in offset order, to `to` (keys,
/// values, headers and timestamps unchanged): how an embedded history moves into Kafka.
///
/// Restartable: what a target partition already holds is read back and must be the start of
/// the source partition (a copy interrupted earlier); the copy goes on after it. Verified: each
/// target partition is then read back whole and its records compared (count and digest of
/// keys and values) with the source's — never trusting end offsets, which some brokers report
/// short of the last batch. A target that holds other records is refused
/// ([`Error::NotACopy`]). With other partition counts (communes land on other partitions),
/// the target must be empty and the total count is verified.
pub async fn copy_log(from: &dyn EventLog, to: &dyn EventLog, batch: usize) -> Result<Copied> {
    let quiet = Duration::from_secs(1);
    let ends = from.end_offsets().await?;
    let mut done = Copied::default();
    let aligned = from.partitions() == to.partitions();
    if !aligned {
        let mut held = 0u64;
        let all: Vec<(u32, u64)> = (0..to.partitions()).map(|p| (p, 0)).collect();
        drain(&mut to.reader(&all).await?, batch, quiet, |_| {
            held += 1;
            Ok(())
        })
        .await?;
        if held > 0 {
            return Err(Error::NotACopy(format!(
                "the target holds {held} records and has {} partitions where the source has {}: copy into a new, empty topic",
                to.partitions(),
                from.partitions()
            )));
        }
    }
    for (p, &end) in ends.iter().enumerate() {
        let p = p as u32;
        let mut source = from.reader(&[(p, 0)]).await?;
        let mut expected = 0u64; // digest of the source partition
        let mut pending: std::collections::VecDeque<StoredRecord> = Default::default();
        let mut have = 0u64;
        // What the target partition already holds must be the start of this one.
        if aligned {
            let mut target = to.reader(&[(p, 0)]).await?;
            loop {
                let got = target.next_batch(batch, quiet).await?;
                if got.is_empty() {
                    break;
                }
                for t in got {
                    if pending.is_empty() {
                        pending.extend(source.next_batch(batch, quiet).await?);
                    }
                    match pending.pop_front() {
                        Some(s) if same(&s.record, &t.record) => {
                            digest(&mut expected, &s.record);
                            have += 1;
                        }
                        _ => {
                            return Err(Error::NotACopy(format!(
                                "partition {p} of the target holds at offset {} a record that is not the source's: it is not a copy of this log; copy into a new, empty topic",
                                t.offset
                            )))
                        }
                    }
                }
            }
        }
        done.already += have;
        // The rest, in order.
        let mut next = have;
        loop {
            let mut got: Vec<StoredRecord> = pending.drain(..).collect();
            if got.is_empty() {
                got = source.next_batch(batch, Duration::from_millis(300)).await?;
            }
            if got.is_empty() {
                if next >= end {
                    break;
                }
                continue;
            }
            next = got.last().map_or(next, |r| r.offset + 1);
            done.copied += got.len() as u64;
            for r in &got {
                digest(&mut expected, &r.record);
            }
            to.append(got.into_iter().map(|r| r.record).collect())
                .await?;
        }
        // Read back.
        if aligned {
            let (mut count, mut found) = (0u64, 0u64);
            drain(&mut to.reader(&[(p, 0)]).await?, batch, quiet, |r| {
                count += 1;
                digest(&mut found, &r.record);
                Ok(())
            })
            .await?;
            if count != next || found != expected {
                return Err(Error::NotACopy(format!(
                    "partition {p} of the target read back {count} records where the source has {next}{}: run the copy again (it goes on where it stopped) once the cluster is healthy",
                    if count == next { ", with other contents" } else { "" }
                )));
            }
        }
        tracing::info!(
            partition = p,
            records = next,
            "partition copied and read back"
        );
    }
    if !aligned {
        let mut count = 0u64;
        let all: Vec<(u32, u64)> = (0..to.partitions()).map(|p| (p, 0)).collect();
        drain(&mut to.reader(&all).await?, batch, quiet, |_| {
            count += 1;
            Ok(())
        })
        .await?;
        if count != done.copied {
            return Err(Error::NotACopy(format!(
                "the target read back {count} records where {} were copied",
                done.copied
            )));
        }
    }
    Ok(done)
}

/// Kafka's default (Java client) partitioner: murmur2 of the key, positive, modulo `count`.
pub fn partition_for(key: &[u8], count: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) % count.max(1)
}

/// Kafka's murmur2 hash (seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Vectors from Apache Kafka's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input) as i32,
                *expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn partitions_spread_the_communes() {
        let codes = ["69091", "69096", "69152", "42186", "69256", "69259"];
        let parts: std::collections::BTreeSet<_> = codes
            .iter()
            .map(|c| partition_for(c.as_bytes(), 12))
            .collect();
        assert!(parts.len() >= 4, "{parts:?}");
    }
}
