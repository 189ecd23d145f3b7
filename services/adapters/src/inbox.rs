//! Folders the adapters watch inside `contacthub serve`:
//! - the CDR drop folder: the PBX (or a cron job) drops copies of `Master.csv`; a file is
//!   read once its size stayed the same for one poll;
//! - each commune's Maildir: messages delivered to `new/` are read.
//!
//! A file is deleted once its events are on the log (sealed with their person's key) and its
//! bad records in the quarantine: a copy left in the folder would outlive an erasure of the
//! person, as a POP3 reader leaves nothing on the server. When the log is down it stays where
//! it is and is read again later.

use crate::ingest::Ingest;
use crate::{Adapter, Channels, Input};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A watched folder.
#[derive(Debug, Clone)]
pub enum Watched {
    /// CDR drop folder (files of any commune).
    Cdr(PathBuf),
    /// Maildir of one commune.
    Maildir { tenant: String, dir: PathBuf },
}

/// Watches `folders` until `shutdown`.
pub async fn run(
    ingest: Ingest,
    channels: Channels,
    folders: Vec<Watched>,
    poll: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    for f in &folders {
        let dirs = match f {
            Watched::Cdr(d) => vec![d.clone()],
            Watched::Maildir { dir, .. } => vec![dir.join("new"), dir.join("cur"), dir.join("tmp")],
        };
        for d in dirs {
            if let Err(e) = std::fs::create_dir_all(&d) {
                tracing::error!(dir = %d.display(), error = %e, "cannot create a watched folder");
            }
        }
        match f {
            Watched::Cdr(d) => {
                tracing::info!(folder = %d.display(), "watching the CDR drop folder")
            }
            Watched::Maildir { tenant, dir } => {
                tracing::info!(tenant = %tenant, folder = %dir.display(), "watching a Maildir")
            }
        }
    }
    let mut sizes: HashMap<PathBuf, u64> = HashMap::new();
    loop {
        let mut next = HashMap::new();
        for f in &folders {
            match f {
                Watched::Cdr(dir) => {
                    let mut ready = Vec::new();
                    for (path, size) in files(dir) {
                        if sizes.get(&path) == Some(&size) {
                            ready.push(path);
                        } else {
                            next.insert(path, size);
                        }
                    }
                    for batch in ready.chunks(BATCH) {
                        take(&ingest, &channels.phone, batch, None, dir).await;
                    }
                }
                Watched::Maildir { tenant, dir } => {
                    // Maildir delivery is atomic (tmp/ then rename into new/): no wait.
                    let ready: Vec<_> = files(&dir.join("new"))
                        .into_iter()
                        .map(|(p, _)| p)
                        .collect();
                    for batch in ready.chunks(BATCH) {
                        take(&ingest, &channels.email, batch, Some(tenant), dir).await;
                    }
                }
            }
        }
        sizes = next;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Regular, visible files of `dir` with their sizes.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| (e.path(), m.len()))
        })
        .collect();
    out.sort();
    out
}

/// Files read together: one append to the log and one wait for visibility per batch.
const BATCH: usize = 200;

/// Reads files of the folder `dir` through `adapter` as one batch, then deletes them.
async fn take(
    ingest: &Ingest,
    adapter: &dyn Adapter,
    paths: &[PathBuf],
    tenant: Option<&str>,
    dir: &Path,
) {
    let mut read = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read(path) {
            Ok(b) => read.push((
                path,
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                b,
            )),
            Err(e) => {
                // File names may carry a name: only at debug level.
                tracing::debug!(file = %path.display(), "unreadable file");
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read a file of a watched folder");
            }
        }
    }
    let received_us = ingest.app.now();
    let inputs: Vec<Input<'_>> = read
        .iter()
        .map(|(_, name, bytes)| Input {
            bytes,
            origin: name,
            tenant,
            received_us,
        })
        .collect();
    if let Err(e) = ingest.run_batch(adapter, &inputs).await {
        tracing::warn!(dir = %dir.display(), files = inputs.len(), error = %e, "not ingested; will try again");
        return;
    }
    for (path, _, _) in &read {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::debug!(file = %path.display(), "file that could not be deleted");
            tracing::error!(dir = %dir.display(), error = %e, "ingested but could not be deleted; it will be read again (harmless)");
        }
    }
}
