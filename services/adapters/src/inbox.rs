//! Folders the adapters watch inside `contacthub serve`:
//! - the CDR drop folder: the PBX (or a cron job) drops copies of `Master.csv`; a file is
//!   read once its size stayed the same for one poll, then moved to `done/`;
//! - each commune's Maildir: messages delivered to `new/` are read, then moved to `cur/` with
//!   the Seen flag (`:2,S`), as any Maildir reader does.
//!
//! A file is moved only after its events are on the log (and its bad records in the
//! quarantine); when the log is down it stays where it is and is read again later.

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
            Watched::Cdr(d) => vec![d.clone(), d.join("done")],
            Watched::Maildir { dir, .. } => vec![dir.join("new"), dir.join("cur"), dir.join("tmp")],
        };
        for d in dirs {
            if let Err(e) = std::fs::create_dir_all(&d) {
                tracing::error!(dir = %d.display(), error = %e, "cannot create a watched folder");
            }
        }
        tracing::info!(folder = ?f, "watching");
    }
    let mut sizes: HashMap<PathBuf, u64> = HashMap::new();
    loop {
        let mut next = HashMap::new();
        for f in &folders {
            match f {
                Watched::Cdr(dir) => {
                    for (path, size) in files(dir) {
                        if sizes.get(&path) == Some(&size) {
                            take(&ingest, &channels.phone, &path, None, &dir.join("done")).await;
                        } else {
                            next.insert(path, size);
                        }
                    }
                }
                Watched::Maildir { tenant, dir } => {
                    // Maildir delivery is atomic (tmp/ then rename into new/): no wait.
                    for (path, _) in files(&dir.join("new")) {
                        take(
                            &ingest,
                            &channels.email,
                            &path,
                            Some(tenant),
                            &dir.join("cur"),
                        )
                        .await;
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

/// Reads one file through `adapter`, then moves it into `to`.
async fn take(
    ingest: &Ingest,
    adapter: &dyn Adapter,
    path: &Path,
    tenant: Option<&str>,
    to: &Path,
) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read");
            return;
        }
    };
    let input = Input {
        bytes: &bytes,
        origin: &name,
        tenant,
        received_us: (ingest.hub.clock)(),
    };
    if let Err(e) = ingest.run(adapter, input).await {
        tracing::warn!(file = %path.display(), error = %e, "not ingested; will try again");
        return;
    }
    let target = match to.file_name().and_then(|n| n.to_str()) {
        // Maildir: new/ → cur/ with the Seen flag.
        Some("cur") if !name.contains(":2,") => to.join(format!("{name}:2,S")),
        _ if to.join(&name).exists() => to.join(format!("{name}.{}", (ingest.hub.clock)())),
        _ => to.join(&name),
    };
    if let Err(e) = std::fs::rename(path, &target) {
        tracing::error!(file = %path.display(), error = %e, "ingested but could not be moved; it will be read again (harmless)");
    }
}
