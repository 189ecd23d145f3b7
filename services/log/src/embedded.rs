//! The embedded backend: one append-only file per partition in a local folder.
//!
//! Durability: appends go to one writer thread that takes every request waiting, writes them,
//! `fdatasync`s each touched file once (group commit), and only then acknowledges them and
//! makes them readable. An acknowledged record therefore survives `kill -9` and power loss. On
//! open, each file is scanned; a torn tail (a write that was never acknowledged) is cut off and
//! kept beside the file as `p-N.log.torn-OFFSET`, never silently dropped. A lock file stops
//! two processes from opening the same log for writing; [`EmbeddedLog::open_snapshot`] reads
//! what a running hub's log holds at that instant, without the lock (a replay into a new read
//! model while the hub serves).

use crate::frame::{self, FrameError};
use crate::{partition_for, Appended, Error, EventLog, LogReader, Record, Result, StoredRecord};
use async_trait::async_trait;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

const META: &str = "log.meta";
const LOCK: &str = "log.lock";

/// An event log in a local folder.
pub struct EmbeddedLog {
    dir: PathBuf,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    /// The lock held while the log is open for writing (none for a snapshot).
    _lock: Option<File>,
}

struct Shared {
    /// Per partition: byte position of every record, plus the end of the last one.
    index: Vec<RwLock<Vec<u64>>>,
    /// Why the last group commit failed, until one succeeds (or a probe write does).
    failing: std::sync::Mutex<Option<String>>,
    files: Vec<Arc<File>>,
    /// Bumped after every group commit, to wake readers.
    commits: watch::Sender<u64>,
}

type Reply = oneshot::Sender<Result<Vec<Appended>>>;
struct Request {
    records: Vec<Record>,
    reply: Reply,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl EmbeddedLog {
    /// Opens the log in `dir`, creating it with `partitions` partitions if it does not exist.
    /// An existing log keeps the partition count it was created with.
    pub fn open(dir: impl AsRef<Path>, partitions: u32) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.try_lock().map_err(|_| Error::Io {
            path: lock_path.display().to_string(),
            source: std::io::Error::other("the log is in use by another contacthub process"),
        })?;
        let meta_path = dir.join(META);
        let partitions = match std::fs::read_to_string(&meta_path) {
            Ok(text) => parse_meta(&text).ok_or_else(|| Error::Corrupt {
                path: meta_path.display().to_string(),
                reason: format!("unreadable metadata {text:?}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let n = partitions.max(1);
                let tmp = dir.join("log.meta.tmp");
                let mut f = File::create(&tmp).map_err(io(&tmp))?;
                f.write_all(format!("format=1\npartitions={n}\n").as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(io(&tmp))?;
                std::fs::rename(&tmp, &meta_path).map_err(io(&meta_path))?;
                sync_dir(&dir)?;
                n
            }
            Err(e) => return Err(io(&meta_path)(e)),
        };
        let mut index = Vec::new();
        let mut files = Vec::new();
        for p in 0..partitions {
            let path = dir.join(format!("p-{p}.log"));
            let (file, positions) = recover(&path)?;
            index.push(RwLock::new(positions));
            files.push(Arc::new(file));
        }
        sync_dir(&dir)?;
        let (commits, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            index,
            failing: std::sync::Mutex::new(None),
            files,
            commits,
        });
        let (tx, rx) = mpsc::channel(1024);
        let writer = shared.clone();
        let wdir = dir.clone();
        std::thread::Builder::new()
            .name("contacthub-log-writer".into())
            .spawn(move || writer_loop(writer, wdir, rx))
            .map_err(io(&dir))?;
        Ok(EmbeddedLog {
            dir,
            shared,
            tx,
            _lock: Some(lock),
        })
    }

    /// Opens the log in `dir` for reading only, as far as its complete records go now, while
    /// another process may hold it and append: no lock taken, nothing written, a record
    /// being written at this instant left out. Appends are refused.
    pub fn open_snapshot(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let meta_path = dir.join(META);
        let text = std::fs::read_to_string(&meta_path).map_err(io(&meta_path))?;
        let partitions = parse_meta(&text).ok_or_else(|| Error::Corrupt {
            path: meta_path.display().to_string(),
            reason: format!("unreadable metadata {text:?}"),
        })?;
        let mut index = Vec::new();
        let mut files = Vec::new();
        for p in 0..partitions {
            let path = dir.join(format!("p-{p}.log"));
            let file = File::open(&path).map_err(io(&path))?;
            let (positions, _) = scan(&file, &path)?;
            index.push(RwLock::new(positions));
            files.push(Arc::new(file));
        }
        let (commits, _) = watch::channel(0);
        // No writer: every append finds the channel closed.
        let (tx, _) = mpsc::channel(1);
        Ok(EmbeddedLog {
            dir,
            shared: Arc::new(Shared {
                index,
                failing: std::sync::Mutex::new(None),
                files,
                commits,
            }),
            tx,
            _lock: None,
        })
    }
}

fn parse_meta(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("partitions="))
        .and_then(|n| n.trim().parse().ok())
        .filter(|&n| n > 0)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Opens a partition file, scans it and cuts a torn tail. Returns the file and its index.
fn recover(path: &Path) -> Result<(File, Vec<u64>)> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let (positions, reason) = scan(&file, path)?;
    let good = *positions.last().unwrap_or(&0);
    if good < len {
        let torn = path.with_extension(format!("log.torn-{}", positions.len() - 1));
        let mut tail = vec![0u8; (len - good) as usize];
        file.read_exact_at(&mut tail, good).map_err(io(path))?;
        std::fs::write(&torn, &tail).map_err(io(&torn))?;
        file.set_len(good).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        tracing::warn!(
            path = %path.display(),
            kept_records = positions.len() - 1,
            cut_bytes = len - good,
            saved_to = %torn.display(),
            reason = reason.as_deref().unwrap_or("incomplete frame at the end"),
            "cut an unacknowledged torn tail from the log"
        );
    }
    file.flush().map_err(io(path))?;
    Ok((file, positions))
}

/// The byte position of every complete record of a partition file from its start, plus the
/// end of the last one, and why the scan stopped short of the end (if it did).
fn scan(file: &File, path: &Path) -> Result<(Vec<u64>, Option<String>)> {
    let mut positions = vec![0u64];
    let mut buf = Vec::with_capacity(8 << 20);
    let mut start = 0usize; // position in buf of the next frame
    let mut base = 0u64; // file position of buf[0]
    let mut eof = false;
    let mut reason = None;
    loop {
        match frame::decode(&buf[start..]) {
            Ok((offset, _, n)) => {
                let expected = positions.len() as u64 - 1;
                if offset != expected {
                    reason = Some(format!(
                        "frame at offset {offset} where {expected} was expected"
                    ));
                    break;
                }
                start += n;
                positions.push(base + start as u64);
            }
            Err(FrameError::Incomplete) if !eof => {
                buf.drain(..start);
                base += start as u64;
                start = 0;
                let have = buf.len();
                buf.resize(have + (8 << 20), 0);
                let mut f = file;
                let got = read_full(&mut f, &mut buf[have..]).map_err(io(path))?;
                buf.truncate(have + got);
                eof = got == 0;
            }
            Err(FrameError::Incomplete) => break,
            Err(FrameError::Corrupt(r)) => {
                reason = Some(r);
                break;
            }
        }
    }
    Ok((positions, reason))
}

fn read_full(r: &mut impl Read, mut buf: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    while !buf.is_empty() {
        match r.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// The single writer: group commit of every waiting request.
fn writer_loop(shared: Arc<Shared>, dir: PathBuf, mut rx: mpsc::Receiver<Request>) {
    let n = shared.files.len();
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); n];
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < 4096 {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        // Offsets and positions this group would take.
        let mut next: Vec<(u64, u64)> = (0..n)
            .map(|p| {
                let idx = shared.index[p].read().unwrap();
                ((idx.len() - 1) as u64, *idx.last().unwrap())
            })
            .collect();
        let mut new_positions: Vec<Vec<u64>> = vec![Vec::new(); n];
        let mut replies = Vec::with_capacity(group.len());
        for req in group {
            let mut placed = Vec::with_capacity(req.records.len());
            let mut refused = None;
            for r in &req.records {
                let size = frame::encoded_len(r);
                if size - frame::HEADER_LEN > frame::MAX_BODY {
                    refused = Some(Error::TooLarge {
                        size,
                        limit: frame::MAX_BODY,
                    });
                    break;
                }
            }
            if let Some(e) = refused {
                replies.push((req.reply, Err(e)));
                continue;
            }
            for r in req.records {
                let p = partition_for(&r.key, n as u32) as usize;
                let (offset, pos) = &mut next[p];
                let before = bufs[p].len();
                frame::encode(*offset, &r, &mut bufs[p]);
                *pos += (bufs[p].len() - before) as u64;
                new_positions[p].push(*pos);
                placed.push(Appended {
                    partition: p as u32,
                    offset: *offset,
                });
                *offset += 1;
            }
            replies.push((req.reply, Ok(placed)));
        }
        let written = write_and_sync(&shared, &dir, &mut bufs);
        *shared.failing.lock().unwrap_or_else(|p| p.into_inner()) =
            written.as_ref().err().map(|(_, e)| e.to_string());
        match written {
            Ok(()) => {
                for (p, positions) in new_positions.into_iter().enumerate() {
                    if !positions.is_empty() {
                        shared.index[p].write().unwrap().extend(positions);
                    }
                }
                shared.commits.send_modify(|c| *c += 1);
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err((p, e)) => {
                tracing::error!(partition = p, error = %e, "append to the embedded log failed");
                for (reply, _) in replies {
                    let _ = reply.send(Err(Error::Io {
                        path: dir.join(format!("p-{p}.log")).display().to_string(),
                        source: std::io::Error::new(e.kind(), e.to_string()),
                    }));
                }
            }
        }
        for b in &mut bufs {
            b.clear();
        }
    }
}

/// Writes every buffer to its partition and fsyncs; on failure, cuts each file back.
fn write_and_sync(
    shared: &Shared,
    _dir: &Path,
    bufs: &mut [Vec<u8>],
) -> Result<(), (usize, std::io::Error)> {
    let mut touched = Vec::new();
    let mut failure = None;
    for (p, buf) in bufs.iter().enumerate() {
        if buf.is_empty() {
            continue;
        }
        let mut f: &File = &shared.files[p];
        touched.push(p);
        if let Err(e) = f.write_all(buf).and_then(|_| f.sync_data()) {
            failure = Some((p, e));
            break;
        }
    }
    if let Some(err) = failure {
        for p in touched {
            let end = *shared.index[p].read().unwrap().last().unwrap();
            let _ = shared.files[p].set_len(end);
        }
        return Err(err);
    }
    Ok(())
}

#[async_trait]
impl EventLog for EmbeddedLog {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn name(&self) -> String {
        self.dir.display().to_string()
    }

    fn partitions(&self) -> u32 {
        self.shared.files.len() as u32
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Appended>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request { records, reply })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn end_offsets(&self) -> Result<Vec<u64>> {
        Ok(self
            .shared
            .index
            .iter()
            .map(|i| (i.read().unwrap().len() - 1) as u64)
            .collect())
    }

    /// Err while appends fail (full disk, read-only folder): after a failed group commit,
    /// each call probes the folder with a small synced write until one succeeds.
    async fn health(&self) -> Result<()> {
        let failing = self
            .shared
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(reason) = failing else {
            return Ok(());
        };
        let probe = self.dir.join("log.probe");
        let written = tokio::task::spawn_blocking(move || {
            let r = std::fs::File::create(&probe)
                .and_then(|mut f| f.write_all(&[0u8; 4096]).and_then(|_| f.sync_all()));
            let _ = std::fs::remove_file(&probe);
            r
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match written {
            Ok(()) => {
                *self
                    .shared
                    .failing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                Ok(())
            }
            Err(_) => Err(Error::Io {
                path: self.dir.display().to_string(),
                source: std::io::Error::other(format!("appends fail: {reason}")),
            }),
        }
    }

    async fn reader(&self, from: &[(u32, u64)]) -> Result<Box<dyn LogReader>> {
        let count = self.partitions();
        for &(partition, _) in from {
            if partition >= count {
                return Err(Error::NoSuchPartition { partition, count });
            }
        }
        Ok(Box::new(EmbeddedReader {
            shared: self.shared.clone(),
            dir: self.dir.clone(),
            positions: from.to_vec(),
            commits: self.shared.commits.subscribe(),
            next: 0,
        }))
    }
}

struct EmbeddedReader {
    shared: Arc<Shared>,
    dir: PathBuf,
    positions: Vec<(u32, u64)>,
    commits: watch::Receiver<u64>,
    next: usize,
}

impl EmbeddedReader {
    /// Reads what is available now, fairly across partitions.
    async fn available(&mut self, max: usize) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        let k = self.positions.len();
        for i in 0..k {
            if out.len() >= max {
                break;
            }
            let slot = (self.next + i) % k;
            let (partition, offset) = self.positions[slot];
            let span = {
                let idx = self.shared.index[partition as usize].read().unwrap();
                let have = (idx.len() - 1) as u64;
                if offset >= have {
                    continue;
                }
                let end = (offset + (max - out.len()) as u64).min(have);
                (idx[offset as usize], idx[end as usize], end - offset)
            };
            let (from, to, count) = span;
            let file = self.shared.files[partition as usize].clone();
            let path = self.dir.join(format!("p-{partition}.log"));
            let bytes = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; (to - from) as usize];
                file.read_exact_at(&mut buf, from).map(|_| buf)
            })
            .await
            .map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::other(e),
            })?
            .map_err(io(&path))?;
            let mut at = 0;
            for expected in offset..offset + count {
                let (o, record, n) = frame::decode(&bytes[at..]).map_err(|e| Error::Corrupt {
                    path: path.display().to_string(),
                    reason: format!("frame at offset {expected}: {e:?}"),
                })?;
                if o != expected {
                    return Err(Error::Corrupt {
                        path: path.display().to_string(),
                        reason: format!("found offset {o} where {expected} was expected"),
                    });
                }
                at += n;
                out.push(StoredRecord {
                    partition,
                    offset: o,
                    record,
                });
            }
            self.positions[slot].1 = offset + count;
        }
        self.next = (self.next + 1) % k.max(1);
        Ok(out)
    }
}

#[async_trait]
impl LogReader for EmbeddedReader {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>> {
        let max = max.max(1);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.commits.borrow_and_update();
            let got = self.available(max).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            match tokio::time::timeout_at(deadline, self.commits.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => return Ok(Vec::new()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, v: &str) -> Record {
        Record {
            key: key.into(),
            value: v.into(),
            headers: vec![("h".into(), b"x".to_vec())],
            timestamp_ms: 1,
        }
    }

    #[tokio::test]
    async fn append_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), 4).unwrap();
        let placed = log
            .append((0..10).map(|i| rec("69091", &format!("v{i}"))).collect())
            .await
            .unwrap();
        let p = placed[0].partition;
        assert!(placed.iter().all(|a| a.partition == p));
        assert_eq!(
            placed.iter().map(|a| a.offset).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        let mut r = log.reader(&[(p, 3)]).await.unwrap();
        let got = r.next_batch(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(got.len(), 7);
        assert_eq!(got[0].record, rec("69091", "v3"));
        drop(r);
        drop(log);
        let log = EmbeddedLog::open(dir.path(), 99).unwrap();
        assert_eq!(log.partitions(), 4, "the stored partition count wins");
        assert_eq!(log.end_offsets().await.unwrap()[p as usize], 10);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), 1).unwrap();
        log.append(vec![rec("k", "a"), rec("k", "b")])
            .await
            .unwrap();
        drop(log);
        let path = dir.path().join("p-0.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[42, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let log = EmbeddedLog::open(dir.path(), 1).unwrap();
        assert_eq!(log.end_offsets().await.unwrap(), vec![2]);
        let torn = std::fs::read(dir.path().join("p-0.log.torn-2")).unwrap();
        assert_eq!(torn, vec![42, 0, 0, 0, 1, 2]);
        log.append(vec![rec("k", "c")]).await.unwrap();
        let mut r = log.reader(&[(0, 0)]).await.unwrap();
        let got = r.next_batch(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            got.iter()
                .map(|s| s.record.value.clone())
                .collect::<Vec<_>>(),
            [b"a", b"b", b"c"]
        );
    }

    #[tokio::test]
    async fn second_process_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let _log = EmbeddedLog::open(dir.path(), 1).unwrap();
        let err = EmbeddedLog::open(dir.path(), 1).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn a_reader_wakes_on_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path(), 1).unwrap());
        let mut r = log.reader(&[(0, 0)]).await.unwrap();
        let writer = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer.append(vec![rec("k", "late")]).await.unwrap();
        });
        let got = r.next_batch(10, Duration::from_secs(10)).await.unwrap();
        assert_eq!(got.len(), 1);
    }
}
