//! The projection loop: read a batch from the log, fold it into one sled batch with the new
//! checkpoints, commit, then tell watchers.
//!
//! When the read model cannot be written (full disk, read-only folder), the loop says so on
//! [`ProjectorHandle::failure`] (health turns NOT_SERVING), logs it, and retries with backoff:
//! it reopens the store and resumes from the checkpoints that are durable, so once the
//! disk is usable again everything acknowledged is projected, without a restart.

use crate::store::Store;
use crate::Result;
use contacthub_core::fold::{self, Outcome, Position};
use contacthub_core::pb::TimelineEntry;
use contacthub_core::seal::Keys;
use contacthub_core::tenant::Tenants;
use contacthub_log::keyring::{Settled, SharedKeyring};
use contacthub_log::{EventLog, LogReader, Record, StoredRecord};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// Entries a projected event added, for watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub tenant: String,
    pub entries: Vec<TimelineEntry>,
}

/// What the rest of the process may observe of a running projector.
#[derive(Clone)]
pub struct ProjectorHandle {
    /// Next offset to apply, per partition; changes after every committed batch.
    pub positions: watch::Receiver<Vec<u64>>,
    /// Why the projector cannot apply the log right now (it keeps retrying); `None` while it can.
    pub failure: watch::Receiver<Option<String>>,
    events: broadcast::Sender<Arc<Applied>>,
}

/// Why a write did not become visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotVisible {
    #[error("not yet projected after {0:?}")]
    TimedOut(Duration),
    #[error("the read model cannot be updated right now: {0}")]
    ProjectorFailing(String),
}

impl ProjectorHandle {
    /// New entries from now on. A receiver that falls more than 4096 events behind is told so.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Applied>> {
        self.events.subscribe()
    }

    /// Waits until `offset` of `partition` is applied. Fails after `timeout`, or at once while
    /// the projector cannot write the read model.
    pub async fn wait_applied(
        &self,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<(), NotVisible> {
        let mut rx = self.positions.clone();
        let mut failure = self.failure.clone();
        let done = |p: &Vec<u64>| p.get(partition as usize).is_some_and(|&n| n > offset);
        let failing = async {
            let reason = failure
                .wait_for(Option::is_some)
                .await
                .map(|r| r.clone().unwrap_or_default());
            match reason {
                Ok(reason) => reason,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            applied = tokio::time::timeout(timeout, rx.wait_for(done)) => match applied {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) | Err(_) => Err(NotVisible::TimedOut(timeout)),
            },
            reason = failing => {
                // Applied just before the failure was noticed: visible after all.
                if done(&self.positions.borrow()) {
                    Ok(())
                } else {
                    Err(NotVisible::ProjectorFailing(reason))
                }
            }
        }
    }

    /// Why the projector cannot apply the log right now, if it cannot.
    pub fn failing(&self) -> Option<String> {
        self.failure.borrow().clone()
    }
}

/// Folds the log into the store.
pub struct Projector {
    store: Store,
    log: Arc<dyn EventLog>,
    tenants: Arc<Tenants>,
    /// Opens the events' sealed personal parts.
    keys: SharedKeyring,
    batch_size: usize,
    positions: watch::Sender<Vec<u64>>,
    failure: watch::Sender<Option<String>>,
    events: broadcast::Sender<Arc<Applied>>,
}

impl Projector {
    pub fn new(
        store: Store,
        log: Arc<dyn EventLog>,
        tenants: Arc<Tenants>,
        keys: SharedKeyring,
    ) -> Result<(Self, ProjectorHandle)> {
        let start = store.checkpoints(log.partitions())?;
        let (positions, rx) = watch::channel(start);
        let (events, _) = broadcast::channel(4096);
        let (failure, failure_rx) = watch::channel(None);
        let handle = ProjectorHandle {
            positions: rx,
            failure: failure_rx,
            events: events.clone(),
        };
        Ok((
            Projector {
                store,
                log,
                tenants,
                keys,
                batch_size: 2000,
                positions,
                failure,
                events,
            },
            handle,
        ))
    }

    /// Events per sled batch (default 2000).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    async fn open_reader(&self) -> Result<Box<dyn LogReader>> {
        let from: Vec<(u32, u64)> = self
            .positions
            .borrow()
            .iter()
            .enumerate()
            .map(|(p, &o)| (p as u32, o))
            .collect();
        Ok(self.log.reader(&from).await?)
    }

    /// Projects until `shutdown` completes. Failures to read the log or to write the read
    /// model are logged, reported on [`ProjectorHandle::failure`] and retried with backoff
    /// (up to 30 s apart); `shutdown` interrupts a retry at once.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut reader = loop {
            match self.open_reader().await {
                Ok(r) => break r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the log; retrying in 1 s");
                    tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        tracing::info!(backend = self.log.backend(), positions = ?*self.positions.borrow(), "projector started");
        // A log that ends before what was applied from it lost records (a broker's retention
        // deleting them) or reports its end short (tansu's high watermark): said, not
        // repaired; the read model keeps what it applied, a replay would not.
        if let Ok(ends) = self.log.end_offsets().await {
            let applied = self.positions.borrow().clone();
            for (partition, (&at, &end)) in applied.iter().zip(&ends).enumerate() {
                if at > end {
                    tracing::error!(
                        partition,
                        applied = at,
                        log_end = end,
                        "the log reports its end before what the read model applied from it: records deleted on the broker (check the topic's retention.ms, docs/operations.md: a replay would lose them), or a broker that reports its end short"
                    );
                }
            }
        }
        let mut backoff = Duration::from_millis(100);
        // Set after the store was reopened: an empty read then proves nothing is left to redo.
        let mut reopened = false;
        // Set when the read model could not be written, until it is reopened.
        let mut broken = false;
        loop {
            if broken {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                // sled refuses every operation after an I/O error: start again from disk.
                let store = self.store.clone();
                let partitions = self.log.partitions();
                let reopen = tokio::task::spawn_blocking(move || {
                    store.reopen()?;
                    store.checkpoints(partitions)
                })
                .await;
                match reopen {
                    Ok(Ok(start)) => {
                        tracing::info!(positions = ?start, "read model reopened; projecting again from its durable checkpoints");
                        self.positions.send_replace(start);
                        // Read again from those checkpoints: the old reader is past them.
                        match self.open_reader().await {
                            Ok(r) => {
                                reader = r;
                                broken = false;
                                reopened = true;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot read the log; retrying");
                                continue;
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "the read model cannot be reopened yet");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reopening the read model failed");
                        continue;
                    }
                }
            }
            let batch = tokio::select! {
                _ = &mut shutdown => break,
                b = reader.next_batch(self.batch_size, Duration::from_millis(250)) => b,
            };
            match batch {
                Ok(records) if records.is_empty() => {
                    if reopened {
                        self.recovered();
                        reopened = false;
                    }
                }
                Ok(records) => match self.apply(&records).await {
                    Ok(()) => {
                        self.recovered();
                        reopened = false;
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        let reason = format!("cannot write the read model: {e}");
                        if self.failure.borrow().as_deref() != Some(reason.as_str()) {
                            tracing::error!(error = %e, "projection stopped: the read model cannot be written; retrying");
                        }
                        self.failure.send_replace(Some(reason));
                        broken = true;
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "reading the log failed; retrying");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    match self.open_reader().await {
                        Ok(r) => reader = r,
                        Err(e) => tracing::warn!(error = %e, "cannot read the log; retrying"),
                    }
                }
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::warn!(error = %e, "the read model could not be flushed at shutdown; it restarts from its last durable checkpoint");
        }
        tracing::info!("projector stopped");
        Ok(())
    }

    fn recovered(&self) {
        if self.failure.borrow().is_some() {
            tracing::info!("projection resumed: the read model is written again");
            self.failure.send_replace(None);
        }
    }

    /// Applies everything up to the log's current end, then returns the records applied.
    /// "The end" is the end offsets at the start and then a quiet read of one second: some
    /// brokers report a high watermark short of the last batch, so the offsets alone are not
    /// trusted.
    pub async fn catch_up(&self) -> Result<u64> {
        let end = self.log.end_offsets().await?;
        let mut reader = self.open_reader().await?;
        let mut n = 0u64;
        loop {
            let records = reader
                .next_batch(self.batch_size, Duration::from_secs(1))
                .await?;
            if records.is_empty() {
                let reached = self
                    .positions
                    .borrow()
                    .iter()
                    .zip(&end)
                    .all(|(p, e)| p >= e);
                if reached {
                    break;
                }
                continue;
            }
            n += records.len() as u64;
            self.apply(&records).await?;
        }
        self.store.flush()?;
        Ok(n)
    }

    /// Folds records into one atomic batch with their checkpoints, then publishes. A sealed
    /// event whose key this hub's keyring does not know yet (created by another hub) makes it
    /// catch the keyring up and fold the batch again; a key still unknown then is gone.
    pub async fn apply(&self, records: &[StoredRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // An erasure: the read model is made again from the log (this batch included), where
        // the erased person's events no longer open, before anyone is told it is visible.
        // Nothing of the batch is committed first: a rebuild that fails is tried again with
        // it, from the checkpoints before it.
        let erasure = records.iter().any(|r| {
            r.record.headers.iter().any(|(k, v)| {
                k == contacthub_core::event::HEADER_EVENT_TYPE && v.as_slice() == b"citizen_erased"
            })
        });
        if erasure {
            // The keys it destroyed are known destroyed here (a keyring on Kafka learns it).
            self.keys.catch_up().await?;
            self.rebuild().await?;
            let mut next: BTreeMap<u32, u64> = BTreeMap::new();
            for r in records {
                next.insert(r.partition, r.offset + 1);
            }
            self.positions.send_modify(|p| {
                for (&part, &n) in &next {
                    if let Some(slot) = p.get_mut(part as usize) {
                        *slot = (*slot).max(n);
                    }
                }
            });
            return Ok(());
        }
        match self.apply_with(records, &*self.keys).await {
            Err(crate::Error::Domain(contacthub_core::Error::KeyUnknown(_))) => {
                self.keys.catch_up().await?;
                self.apply_with(records, &Settled(&*self.keys)).await
            }
            done => done,
        }
    }

    /// Makes the read model again from the log in a new folder, then puts it in place of the
    /// one in use (the store reopens it): what an erasure leaves is then exactly what a replay
    /// gives, and the old folder, with whatever its files still held, is deleted.
    async fn rebuild(&self) -> Result<()> {
        let started = Instant::now();
        let live = self.store.path().to_path_buf();
        let fresh = live.with_extension("rebuilding");
        let old = live.with_extension("erased");
        let io = |what: &str, path: &std::path::Path, e: std::io::Error| {
            crate::Error::Rebuild(format!("{what} {}: {e}", path.display()))
        };
        for dir in [&fresh, &old] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| io("removing", dir, e))?;
            }
        }
        let n = {
            let store = Store::open(&fresh)?;
            let folded = std::sync::atomic::AtomicU64::new(0);
            crate::replay::replay(
                &store,
                self.log.as_ref(),
                &self.tenants,
                &self.keys,
                crate::replay::BUDGET,
                &folded,
            )
            .await?
            .records
        };
        std::fs::rename(&live, &old).map_err(|e| io("moving", &live, e))?;
        std::fs::rename(&fresh, &live).map_err(|e| io("moving", &fresh, e))?;
        self.store.reopen()?;
        std::fs::remove_dir_all(&old).map_err(|e| io("removing", &old, e))?;
        tracing::warn!(
            events = n,
            seconds = started.elapsed().as_secs_f64(),
            "read model made again from the log after an erasure"
        );
        Ok(())
    }

    async fn apply_with(&self, records: &[StoredRecord], keys: &(dyn Keys + Sync)) -> Result<()> {
        let started = Instant::now();
        let mut batch = self.store.batch()?;
        let mut checkpoints: BTreeMap<u32, u64> = BTreeMap::new();
        let mut applied = Vec::new();
        let mut dead = Vec::new();
        let mut duplicates = 0usize;
        for r in records {
            let pos = Position {
                partition: r.partition,
                offset: r.offset,
            };
            match fold::apply(
                &mut batch,
                &self.tenants,
                pos,
                &r.record.key,
                &r.record.value,
                keys,
            )? {
                Outcome::Applied { tenant, entries } => {
                    applied.push(Arc::new(Applied { tenant, entries }))
                }
                Outcome::Duplicate => duplicates += 1,
                Outcome::DeadLettered(reason) => dead.push((r, reason)),
            }
            checkpoints.insert(r.partition, r.offset + 1);
        }
        let cps: Vec<(u32, u64)> = checkpoints.into_iter().collect();
        batch.commit(&cps)?;
        for (r, reason) in &dead {
            // The reason can quote what the event holds (a malformed phone number): debug only.
            tracing::warn!(
                partition = r.partition,
                offset = r.offset,
                "event dead-lettered (reason: `contacthub dead-letters`)"
            );
            tracing::debug!(partition = r.partition, offset = r.offset, reason = %reason, "dead letter reason");
            let mut headers = r.record.headers.clone();
            headers.push((
                "contacthub-dead-letter-reason".into(),
                reason.as_bytes().to_vec(),
            ));
            headers.push((
                "contacthub-source-partition".into(),
                r.partition.to_string().into_bytes(),
            ));
            headers.push((
                "contacthub-source-offset".into(),
                r.offset.to_string().into_bytes(),
            ));
            let record = Record {
                key: r.record.key.clone(),
                value: r.record.value.clone(),
                headers,
                timestamp_ms: r.record.timestamp_ms,
            };
            if let Err(e) = self.log.publish_dead_letter(record).await {
                tracing::warn!(error = %e, partition = r.partition, offset = r.offset, "dead letter kept locally only");
            }
        }
        metrics::counter!("contacthub_projector_events_total").increment(records.len() as u64);
        metrics::histogram!("contacthub_projector_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(
            records = records.len(),
            applied = applied.len(),
            duplicates,
            dead_letters = dead.len(),
            micros = started.elapsed().as_micros() as u64,
            "batch projected"
        );
        // Watchers first, positions second: whoever saw a position move (a settled test, a
        // write waiting to be visible) never receives that position's entries as new.
        for a in applied {
            let _ = self.events.send(a);
        }
        self.positions.send_modify(|p| {
            for &(part, next) in &cps {
                if let Some(slot) = p.get_mut(part as usize) {
                    *slot = next;
                }
            }
        });
        Ok(())
    }
}
