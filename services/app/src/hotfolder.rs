//! The scanner drop folder: scanner stations drop files; a file named after a chrono number
//! (`GIV-2026-000123.pdf`), or with a JSON sidecar naming one (`scan42.pdf` +
//! `scan42.json` = `{"chrono": "GIV-2026-000123"}`), is attached to that letter through the
//! log (the content store keeps its bytes), then deleted from the folder with its sidecar: a
//! copy left here would outlive an erasure of the person. Anything else moves to `unmatched/`
//! with a `.reason` file, listed for the clerk: nothing is deleted that is not attached.

use crate::App;
use contacthub_core::event::{event_id, valid_chrono, SCHEMA_VERSION};
use contacthub_core::pb::{self, event::Payload};
use contacthub_core::tenant::Tenants;
use contacthub_proto::ts;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Watches `dir` until `shutdown`, attaching scans that match a letter.
pub async fn run(app: App, dir: PathBuf, poll: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    for sub in ["unmatched"] {
        if let Err(e) = std::fs::create_dir_all(dir.join(sub)) {
            tracing::error!(dir = %dir.display(), error = %e, "scan inbox unusable");
            return;
        }
    }
    tracing::info!(dir = %dir.display(), "watching the scan inbox");
    let mut sizes: HashMap<PathBuf, u64> = HashMap::new();
    loop {
        let seen = match candidates(&dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list the scan inbox");
                Vec::new()
            }
        };
        let mut next_sizes = HashMap::new();
        for (path, size) in seen {
            // A file is taken once its size stayed the same for one poll (the scanner finished).
            if sizes.get(&path) == Some(&size) {
                take(&app, &dir, &path).await;
            } else {
                next_sizes.insert(path, size);
            }
        }
        sizes = next_sizes;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Scan files waiting in the inbox (not sidecars, not hidden or partial files).
fn candidates(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        if !meta.is_file()
            || name.starts_with('.')
            || name.ends_with(".json")
            || name.ends_with(".part")
            || name.ends_with(".tmp")
        {
            continue;
        }
        out.push((path, meta.len()));
    }
    out.sort();
    Ok(out)
}

/// The chrono a scan names, by sidecar first, then by file name.
fn chrono_of(path: &Path) -> Option<String> {
    let sidecar = path.with_extension("json");
    if let Ok(text) = std::fs::read_to_string(&sidecar) {
        #[derive(serde::Deserialize)]
        struct Sidecar {
            chrono: String,
        }
        if let Ok(s) = serde_json::from_str::<Sidecar>(&text) {
            // A sidecar naming no chrono number names nothing.
            return valid_chrono(&s.chrono).then_some(s.chrono);
        }
    }
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    (valid_chrono(&stem) && stem.contains('-')).then_some(stem)
}

async fn take(app: &App, dir: &Path, path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match attach(app, path).await {
        Ok(chrono) => {
            tracing::info!(chrono = %chrono, "scan attached from the inbox");
            for p in [path.to_path_buf(), path.with_extension("json")] {
                if let Err(e) = std::fs::remove_file(&p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::debug!(file = %p.display(), "scan that could not be deleted");
                        tracing::error!(error = %e, "attached, but could not delete a scan from the inbox (it will be attached again: harmless)");
                    }
                }
            }
        }
        Err(reason) => {
            // File names may carry a name: only at debug level.
            tracing::debug!(file = %name, "unmatched scan");
            tracing::warn!(reason = %reason, "scan left unmatched in the inbox");
            let _ = std::fs::write(
                dir.join("unmatched").join(format!("{name}.reason")),
                &reason,
            );
            move_with_sidecar(path, &dir.join("unmatched"));
        }
    }
}

fn move_with_sidecar(path: &Path, to: &Path) {
    for p in [path.to_path_buf(), path.with_extension("json")] {
        if let Some(name) = p.file_name() {
            if p.exists() {
                if let Err(e) = std::fs::rename(&p, to.join(name)) {
                    tracing::debug!(file = %p.display(), "scan that could not be moved");
                    tracing::error!(error = %e, "could not move a scan out of the inbox");
                }
            }
        }
    }
}

/// The commune whose prefix starts a chrono number.
fn tenant_of(tenants: &Tenants, chrono: &str) -> Option<String> {
    let prefix = chrono.split('-').next()?;
    tenants
        .iter()
        .find(|t| t.prefix == prefix)
        .map(|t| t.code.clone())
}

/// Attaches the scan to its letter; `Err` says why it cannot be.
async fn attach(app: &App, path: &Path) -> Result<String, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    if size > app.max_scan_bytes {
        return Err(format!(
            "the file is {size} bytes, larger than the limit of {} bytes",
            app.max_scan_bytes
        ));
    }
    let chrono = chrono_of(path)
        .ok_or("the file name is not a chrono number and there is no sidecar naming one")?;
    let tenant = tenant_of(&app.tenants, &chrono).ok_or_else(|| {
        format!(
            "no commune has the prefix {:?}",
            contacthub_core::limits::quote(chrono.split('-').next().unwrap_or_default())
        )
    })?;
    let letter = app
        .store
        .courrier(&tenant, &chrono)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no letter {chrono}"))?;
    let attachment = store_scan(app, path).await?;
    if letter.scans.iter().any(|s| s.sha256 == attachment.sha256) {
        return Ok(chrono); // Already attached (a scan dropped twice).
    }
    let now = (app.clock)();
    let source_id = format!("{chrono}/{}", attachment.sha256);
    let e = pb::Event {
        event_id: event_id(&tenant, "scan-inbox", &source_id),
        tenant: tenant.clone(),
        channel: pb::Channel::BackOffice as i32,
        occurred_at: Some(ts::from_micros(now)),
        recorded_at: Some(ts::from_micros(now)),
        schema_version: SCHEMA_VERSION,
        direction: pb::Direction::Internal as i32,
        attachments: vec![attachment],
        source: "scan-inbox".into(),
        source_id,
        personal: Some(pb::Personal {
            attachment_names: vec![path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()],
            ..Default::default()
        }),
        payload: Some(Payload::CourrierScanAttached(pb::CourrierScanAttached {
            chrono: chrono.clone(),
        })),
        ..Default::default()
    };
    app.write(&e).await.map_err(|e| e.to_string())?;
    Ok(chrono)
}

/// Copies a scan into the content store, its bytes streamed (and the upload limited), so a
/// huge file costs no memory; [`attach`] checks its size before.
async fn store_scan(app: &App, path: &Path) -> Result<contacthub_core::pb::Attachment, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut upload = app
        .content
        .begin(app.max_scan_bytes)
        .map_err(|e| format!("the content store: {e}"))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read the file: {e}"))?;
        if n == 0 {
            break;
        }
        upload
            .write(&buf[..n])
            .map_err(|e| format!("the file {e}"))?;
    }
    upload
        .finish(&app.content)
        .await
        .map_err(|e| format!("the file {e}"))
}

/// The scans waiting in `unmatched/`, as raw input the retention rules delete after
/// `quarantine_days` (with their `.reason` and sidecar).
pub struct Unmatched {
    dir: PathBuf,
    tenants: std::sync::Arc<Tenants>,
}

impl Unmatched {
    pub fn new(inbox: &Path, tenants: std::sync::Arc<Tenants>) -> Unmatched {
        Unmatched {
            dir: inbox.join("unmatched"),
            tenants,
        }
    }
}

impl crate::retention::Held for Unmatched {
    fn held(&self) -> std::io::Result<Vec<crate::retention::HeldItem>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".reason") || name.ends_with(".json") {
                continue;
            }
            // A time that does not read is never due (rather than due at once).
            let received_us = entry
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(i64::MAX, |d| d.as_micros() as i64);
            out.push(crate::retention::HeldItem {
                tenant: chrono_of(&entry.path()).and_then(|c| tenant_of(&self.tenants, &c)),
                id: name,
                kind: "scan non rattaché".into(),
                received_us,
            });
        }
        Ok(out)
    }

    fn delete(&self, id: &str) -> std::io::Result<()> {
        // A name from `held`, never a path.
        if id.contains('/') || id.contains('\\') || id.starts_with('.') {
            return Ok(());
        }
        let scan = self.dir.join(id);
        for p in [
            scan.with_extension("json"),
            self.dir.join(format!("{id}.reason")),
            scan,
        ] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Scans waiting for a clerk in `dir/unmatched`, with the reason and the commune their name
/// points to.
pub fn unmatched(dir: &Path, tenants: &Tenants) -> std::io::Result<Vec<pb::UnmatchedScan>> {
    let u = dir.join("unmatched");
    let mut out = Vec::new();
    if !u.exists() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(&u)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".reason") || name.ends_with(".json") {
            continue;
        }
        let reason = std::fs::read_to_string(u.join(format!("{name}.reason"))).unwrap_or_default();
        let tenant = chrono_of(&entry.path())
            .and_then(|c| tenant_of(tenants, &c))
            .unwrap_or_default();
        out.push(pb::UnmatchedScan {
            filename: name,
            reason,
            size_bytes: entry.metadata()?.len(),
            tenant,
        });
    }
    out.sort_by(|a, b| a.filename.cmp(&b.filename));
    Ok(out)
}
