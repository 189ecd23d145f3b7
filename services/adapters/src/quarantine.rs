//! The quarantine: input an adapter could not (wholly) turn into events, kept on disk with
//! the reasons, so nothing received is ever lost. One entry per input (a CDR file with 2,000
//! bad lines is one entry listing them): `ROOT/ADAPTER/ID.raw` holds the bytes exactly as
//! received, `ROOT/ADAPTER/ID.json` the record. The id derives from the adapter and the
//! bytes, so the same bad input received again is one entry.

use crate::{Error, Rejected};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One quarantined input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub adapter: String,
    pub tenant: Option<String>,
    /// File name, URL path or Maildir entry it came from.
    pub origin: String,
    /// Where in it, e.g. "line 12" (the first refused record).
    pub locator: String,
    /// Why (the first refused record's reason, with its detail; see `records` for all).
    pub reason: String,
    /// RFC 3339, UTC.
    pub received_at: String,
    pub size_bytes: u64,
    /// Every refused record of the input, in order (the last time it was refused).
    #[serde(default)]
    pub records: Vec<Refusal>,
    /// RFC 3339, UTC: when the same input was last refused for other reasons than first
    /// (a configuration changed, a document could be fetched no more…); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refused_again_at: String,
}

/// One refused record of a quarantined input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub locator: String,
    pub reason: String,
}

impl Refusal {
    fn of(r: &Rejected) -> Refusal {
        Refusal {
            locator: r.locator.clone(),
            reason: match &r.detail {
                Some(d) => format!("{} ({d})", r.reason),
                None => r.reason.clone(),
            },
        }
    }
}

/// The quarantine folder.
#[derive(Debug, Clone)]
pub struct Quarantine {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a file completely and durably, then moves it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Quarantine {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Quarantine { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keeps an input whose records in `refused` (at least one) could not become events;
    /// returns its entry and whether it was new.
    pub fn put(
        &self,
        adapter: &str,
        origin: &str,
        raw: &[u8],
        refused: &[Rejected],
        received_us: i64,
    ) -> Result<(Entry, bool), Error> {
        let mut h = Sha256::new();
        h.update(adapter.as_bytes());
        h.update([0]);
        h.update(raw);
        let id: String = h.finalize()[..10]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = self.root.join(adapter);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let meta = dir.join(format!("{id}.json"));
        let records: Vec<Refusal> = refused.iter().map(Refusal::of).collect();
        let first = records.first().cloned().unwrap_or(Refusal {
            locator: String::new(),
            reason: "refused".into(),
        });
        let reason = if records.len() > 1 {
            format!("{} records refused; first: {}", records.len(), first.reason)
        } else {
            first.reason.clone()
        };
        if let Ok(text) = std::fs::read(&meta) {
            if let Ok(mut entry) = serde_json::from_slice::<Entry>(&text) {
                if entry.records == records {
                    return Ok((entry, false));
                }
                // Refused again, for other reasons: the record says the new ones.
                entry.records = records;
                entry.reason = reason;
                entry.locator = first.locator;
                entry.refused_again_at = contacthub_core::event::fmt_us(received_us);
                let json = serde_json::to_vec_pretty(&entry).expect("an entry serialises");
                write_atomic(&meta, &json)?;
                return Ok((entry, false));
            }
        }
        let entry = Entry {
            id: id.clone(),
            adapter: adapter.to_string(),
            tenant: refused.iter().find_map(|r| r.tenant.clone()),
            origin: origin.to_string(),
            locator: first.locator,
            reason,
            received_at: contacthub_core::event::fmt_us(received_us),
            size_bytes: raw.len() as u64,
            records,
            refused_again_at: String::new(),
        };
        write_atomic(&dir.join(format!("{id}.raw")), raw)?;
        let json = serde_json::to_vec_pretty(&entry).expect("an entry serialises");
        write_atomic(&meta, &json)?;
        Ok((entry, true))
    }

    /// Every entry, oldest first, optionally of one adapter or one commune.
    pub fn list(&self, adapter: Option<&str>, tenant: Option<&str>) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        let Ok(dirs) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for dir in dirs.flatten() {
            if adapter.is_some_and(|a| dir.file_name().to_string_lossy() != a) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for f in files.flatten() {
                let path = f.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let text = std::fs::read(&path).map_err(io(&path))?;
                let entry: Entry = serde_json::from_slice(&text).map_err(|e| Error::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
                if tenant.is_none_or(|t| entry.tenant.as_deref() == Some(t)) {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| (&a.received_at, &a.id).cmp(&(&b.received_at, &b.id)));
        Ok(out)
    }

    /// The raw bytes of an entry.
    pub fn raw(&self, id: &str) -> Result<Option<(Entry, Vec<u8>)>, Error> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        for e in self.list(None, None)? {
            if e.id == id {
                let path = self.root.join(&e.adapter).join(format!("{id}.raw"));
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                return Ok(Some((e, bytes)));
            }
        }
        Ok(None)
    }
}

/// Quarantined input is raw input held outside the log: the retention rules delete it
/// `quarantine_days` after it arrived.
impl contacthub_app::retention::Held for Quarantine {
    fn held(&self) -> std::io::Result<Vec<contacthub_app::retention::HeldItem>> {
        let entries = self.list(None, None).map_err(std::io::Error::other)?;
        Ok(entries
            .into_iter()
            .map(|e| contacthub_app::retention::HeldItem {
                // A date that does not read is never due (rather than due at once).
                received_us: chrono::DateTime::parse_from_rfc3339(&e.received_at)
                    .map_or(i64::MAX, |t| t.timestamp_micros()),
                id: e.id,
                kind: "entrée de quarantaine".into(),
                tenant: e.tenant,
            })
            .collect())
    }

    fn delete(&self, id: &str) -> std::io::Result<()> {
        let Some((entry, _)) = self.raw(id).map_err(std::io::Error::other)? else {
            return Ok(());
        };
        let dir = self.root.join(&entry.adapter);
        for p in [
            dir.join(format!("{id}.raw")),
            dir.join(format!("{id}.json")),
        ] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_input_is_kept_once_with_its_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quarantine::open(dir.path()).unwrap();
        let file = b"\"\",\"1\",\"2\"\xff\nok\n\"\",\"3\"\n".to_vec();
        let bad = |line: &str, reason: &str| Rejected {
            locator: line.into(),
            reason: reason.into(),
            detail: None,
            tenant: Some("69091".into()),
            raw: vec![],
        };
        let refused = [bad("line 1", "has 3 fields"), bad("line 3", "has 2 fields")];
        let (e, new) = q
            .put(
                "asterisk-cdr",
                "Master.csv",
                &file,
                &refused,
                1_800_000_000_000_000,
            )
            .unwrap();
        assert!(new);
        assert_eq!(e.reason, "2 records refused; first: has 3 fields");
        assert_eq!(e.records.len(), 2);
        assert_eq!(e.records[1].locator, "line 3");
        let (again, new) = q
            .put(
                "asterisk-cdr",
                "Master.csv",
                &file,
                &refused,
                1_800_000_100_000_000,
            )
            .unwrap();
        assert!(!new);
        assert_eq!(again, e);
        // Refused again for another reason: the entry says the new one, and when.
        let (changed, new) = q
            .put(
                "asterisk-cdr",
                "Master.csv",
                &file,
                &[bad("line 3", "unknown commune")],
                1_800_000_150_000_000,
            )
            .unwrap();
        assert!(!new);
        assert_eq!(changed.reason, "unknown commune");
        assert_eq!(changed.received_at, e.received_at);
        assert!(!changed.refused_again_at.is_empty());
        let e = changed;
        let other = Rejected {
            locator: "".into(),
            reason: "document 1 could not be fetched".into(),
            detail: Some("connection refused".into()),
            tenant: None,
            raw: vec![],
        };
        q.put("email", "new/1", b"x", &[other], 1_800_000_200_000_000)
            .unwrap();

        assert_eq!(q.list(None, None).unwrap().len(), 2);
        assert_eq!(
            q.list(Some("email"), None).unwrap()[0].reason,
            "document 1 could not be fetched (connection refused)",
            "the detail is kept in the quarantine"
        );
        assert_eq!(q.list(None, Some("69091")).unwrap(), vec![e.clone()]);
        let (entry, raw) = q.raw(&e.id).unwrap().unwrap();
        assert_eq!((entry.locator.as_str(), raw), ("line 3", file));
        assert!(q.raw("../etc").unwrap().is_none());
        // Reopened: still there.
        assert_eq!(
            Quarantine::open(dir.path())
                .unwrap()
                .list(None, None)
                .unwrap()
                .len(),
            2
        );
    }
}
