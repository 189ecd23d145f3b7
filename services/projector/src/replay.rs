//! Replay into a new read model: the log folded with its changes held in memory, written to
//! sled in key order with plain inserts whenever they exceed a memory budget and at the end,
//! on another thread while the fold goes on. Not atomic — a folder nobody reads yet needs no
//! atomicity, and a replay that stops is begun again in an empty folder — and sled takes such
//! writes about 2.5 times as fast as its atomic batches (docs/operations.md, « Replay in key
//! order »). The result is, byte for byte, the read model a live projection makes (same
//! digest; tests/replay.rs). A marker ([`keys::REPLAYING_KEY`]) is on disk while it writes:
//! a read model a replay stopped in is never taken for a finished one, whatever its
//! checkpoints say (`serve` rebuilds it).

use crate::store::{scan, Store};
use crate::Result;
use contacthub_core::fold::{self, Changes, Kv, Outcome, Position};
use contacthub_core::keys;
use contacthub_core::tenant::Tenants;
use contacthub_log::keyring::{Settled, SharedKeyring};
use contacthub_log::EventLog;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Memory for held changes when none is chosen (`contacthub replay --memory-mb`'s default).
pub const BUDGET: usize = 256 << 20;

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Records folded (duplicates and dead letters included).
    pub records: u64,
    /// Times the held changes were written before the end (the memory budget reached).
    pub spills: u64,
}

/// What a held change costs in memory besides its key and value (the map's node, vectors).
const HELD_OVERHEAD: usize = 96;

/// The fold's view: the changes held since the last write, over those being written, over
/// the tree.
struct Layers {
    tree: sled::Tree,
    held: Changes,
    held_bytes: usize,
    writing: Option<Arc<Changes>>,
    /// The thread writing `writing`.
    writer: Option<Writer>,
}

fn store_error(e: sled::Error) -> contacthub_core::Error {
    contacthub_core::Error::Store(e.to_string())
}

impl Kv for Layers {
    fn get(&self, key: &[u8]) -> contacthub_core::Result<Option<Vec<u8>>> {
        if let Some(v) = self.held.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.writing.as_ref().and_then(|w| w.get(key)) {
            return Ok(v.clone());
        }
        Ok(self.tree.get(key).map_err(store_error)?.map(|v| v.to_vec()))
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.hold(key, Some(value));
    }
    fn remove(&mut self, key: Vec<u8>) {
        self.hold(key, None);
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> contacthub_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        // Oldest first: what is being written, then what is held.
        let layers: Vec<&Changes> = self
            .writing
            .as_deref()
            .into_iter()
            .chain([&self.held])
            .collect();
        let more = fold::pending(&layers, prefix);
        let base = scan(&self.tree, prefix, limit.saturating_add(more))?;
        Ok(fold::merge_scan(base, &layers, prefix, limit))
    }
}

/// Writes `changes` into `tree` in key order, one insert or removal at a time.
fn write(tree: &sled::Tree, changes: &Changes) -> Result<(), sled::Error> {
    for (k, v) in changes {
        match v {
            Some(v) => tree.insert(k.as_slice(), v.as_slice()).map(drop)?,
            None => tree.remove(k.as_slice()).map(drop)?,
        }
    }
    Ok(())
}

type Writer = tokio::task::JoinHandle<Result<(), sled::Error>>;

impl Layers {
    /// Holds a change, counting what it adds to memory (a key held again costs its new
    /// value, not a second node).
    fn hold(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let size = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
        let added = size(&value);
        let (klen, fresh) = (key.len(), !self.held.contains_key(&key));
        if let Some(old) = self.held.insert(key, value) {
            self.held_bytes = self.held_bytes.saturating_sub(size(&old));
        }
        self.held_bytes += added + if fresh { klen + HELD_OVERHEAD } else { 0 };
    }

    /// Hands the held changes (with `checkpoints`) to a writer thread, once the previous one
    /// is done; the fold goes on over them meanwhile.
    async fn spill(&mut self, store: &Store, checkpoints: &BTreeMap<u32, u64>) -> Result<()> {
        if let Some(w) = self.writer.take() {
            finish(store, w).await?;
        }
        let mut changes = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        for (&p, &next) in checkpoints {
            changes.insert(
                contacthub_core::keys::checkpoint(p),
                Some(next.to_be_bytes().to_vec()),
            );
        }
        let changes = Arc::new(changes);
        self.writing = Some(changes.clone());
        let tree = self.tree.clone();
        self.writer = Some(tokio::task::spawn_blocking(move || write(&tree, &changes)));
        Ok(())
    }
}

async fn finish(store: &Store, w: Writer) -> Result<()> {
    w.await
        .map_err(|e| crate::Error::Rebuild(format!("the replay's writer stopped: {e}")))?
        .map_err(|e| store.sled_error(e))
}

/// How long the log may give nothing before its announced end is reached: the replay then
/// stops with an error rather than wait for records that will not come.
const STALL: Duration = Duration::from_secs(60);

/// Folds the whole log, as it ends now, into `store`, which must be new (nothing but its
/// format): changes are held until they take about `budget` bytes, then written in key order
/// while the fold goes on. `done` counts the records folded so far (for a progress bar). An
/// erasure on the log folds as the rebuild after it would (the erased person's events no
/// longer open); dead letters are kept in the read model and not published again. On error
/// the writer is waited for (nothing writes behind the caller's back) and the read model
/// stays marked unfinished.
pub async fn replay(
    store: &Store,
    log: &dyn EventLog,
    tenants: &Tenants,
    keys: &SharedKeyring,
    budget: usize,
    done: &AtomicU64,
) -> Result<Replayed> {
    // An unfinished replay's marker is more than a format too.
    if !store.is_new()? {
        return Err(crate::Error::Rebuild(format!(
            "{} already holds a read model (or an unfinished replay): replay folds into a new, empty folder",
            store.path().display()
        )));
    }
    let tree = store.tree()?;
    tree.insert(keys::REPLAYING_KEY, &[])
        .map_err(|e| store.sled_error(e))?;
    store.flush()?;
    let mut kv = Layers {
        tree,
        held: Changes::new(),
        held_bytes: 0,
        writing: None,
        writer: None,
    };
    let folded = kv.fold_log(store, log, tenants, keys, budget, done).await;
    let written = match kv.writer.take() {
        Some(w) => finish(store, w).await,
        None => Ok(()),
    };
    let out = folded?;
    written?;
    // Everything on disk before the marker goes.
    store.flush()?;
    store
        .tree()?
        .remove(keys::REPLAYING_KEY)
        .map_err(|e| store.sled_error(e))?;
    store.flush()?;
    Ok(out)
}

impl Layers {
    /// The fold of [`replay`], up to handing the last changes to the writer.
    async fn fold_log(
        &mut self,
        store: &Store,
        log: &dyn EventLog,
        tenants: &Tenants,
        keys: &SharedKeyring,
        budget: usize,
        done: &AtomicU64,
    ) -> Result<Replayed> {
        let partitions = log.partitions();
        let end = log.end_offsets().await?;
        keys.catch_up().await?;
        let from: Vec<(u32, u64)> = (0..partitions).map(|p| (p, 0)).collect();
        let mut reader = log.reader(&from).await?;
        let mut next: BTreeMap<u32, u64> = BTreeMap::new();
        let mut out = Replayed::default();
        let mut last_record = std::time::Instant::now();
        loop {
            let reached = end
                .iter()
                .enumerate()
                .all(|(p, &e)| next.get(&(p as u32)).copied().unwrap_or(0) >= e);
            if reached {
                break;
            }
            let records = reader.next_batch(5_000, Duration::from_secs(1)).await?;
            if records.is_empty() && last_record.elapsed() > STALL {
                let short: Vec<String> = end
                    .iter()
                    .enumerate()
                    .filter_map(|(p, &e)| {
                        let at = next.get(&(p as u32)).copied().unwrap_or(0);
                        (at < e).then(|| format!("partition {p} at {at} of {e}"))
                    })
                    .collect();
                return Err(crate::Error::Rebuild(format!(
                    "the log gave nothing for {} s before its end ({}): not replayed",
                    STALL.as_secs(),
                    short.join(", ")
                )));
            }
            if !records.is_empty() {
                last_record = std::time::Instant::now();
            }
            for r in &records {
                let pos = Position {
                    partition: r.partition,
                    offset: r.offset,
                };
                let (key, value) = (&r.record.key, &r.record.value);
                let folded = match fold::apply(self, tenants, pos, key, value, &**keys) {
                    // A key another hub made since: learnt, else gone (as the live projector).
                    Err(contacthub_core::Error::KeyUnknown(_)) => {
                        keys.catch_up().await?;
                        fold::apply(self, tenants, pos, key, value, &Settled(&**keys))
                    }
                    other => other,
                };
                if let Outcome::DeadLettered(_) = folded? {
                    tracing::debug!(
                        partition = r.partition,
                        offset = r.offset,
                        "replay: event dead-lettered"
                    );
                }
                next.insert(r.partition, r.offset + 1);
                out.records += 1;
                if self.held_bytes > budget {
                    self.spill(store, &next).await?;
                    out.spills += 1;
                }
            }
            done.store(out.records, Ordering::Relaxed);
        }
        self.spill(store, &next).await?;
        Ok(out)
    }
}
