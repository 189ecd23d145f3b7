//! Who read what: every read of a person's data by an agent (a timeline, a contact, a document,
//! a search's results, a record, a household, a request, an answer's preview) is appended to
//! the hub's read trail before the reply leaves, so a reply an agent saw is in the trail even
//! if the hub is killed right after (`write(2)` on an append-only file: in the kernel's cache at
//! once; synced to disk by a thread of its own at most a second later).
//!
//! The trail is one JSON line per read in `DATA/audit/reads.jsonl`, holding ids, never names:
//! sequence number, time, commune, agent, citizen, what was read and its id, the caller's
//! address and front-end, and a SHA-256 chained to the previous line's, so a changed, inserted
//! or removed line breaks the chain ([`verify`]). Each hub keeps its own trail; on a cluster
//! (Kafka) each also shares its lines through the log (`reads_recorded` events, a batch a
//! second at most: [`crate::App::share_reads`]), so any hub answers the DPO for all of them.

use crate::auth::Scope;
use crate::{Error, Result};
use contacthub_core::pb;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What an agent read of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// Their timeline.
    Timeline,
    /// One contact in full.
    Contact,
    /// A scan or an attachment.
    Document,
    /// They were among a search's results.
    Search,
    /// Their record.
    Record,
    /// Their household.
    Household,
    /// A request they made.
    Request,
    /// A written answer to them, previewed.
    Preview,
    /// A letter of theirs (its page, its scan, its receipt).
    Letter,
    /// A written answer to them (its text, its letter).
    Answer,
    /// A line of a list: the mail room's letters, a worklist, « à rattacher », duplicates.
    List,
    /// Everything about them, exported for them (the right of access).
    Export,
}

impl Reading {
    /// The reading named `code` ([`Reading::code`]).
    pub fn from_code(code: &str) -> Option<Reading> {
        serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
    }

    /// Its name in the trail and the API (`timeline`…).
    pub fn code(self) -> &'static str {
        match self {
            Reading::Timeline => "timeline",
            Reading::Contact => "contact",
            Reading::Document => "document",
            Reading::Search => "search",
            Reading::Record => "record",
            Reading::Household => "household",
            Reading::Request => "request",
            Reading::Preview => "preview",
            Reading::Letter => "letter",
            Reading::Answer => "answer",
            Reading::List => "list",
            Reading::Export => "export",
        }
    }

    /// What was read, in French, for the DPO.
    pub fn fr(self) -> &'static str {
        match self {
            Reading::Timeline => "la chronologie",
            Reading::Contact => "un contact",
            Reading::Document => "un document",
            Reading::Search => "la ligne de recherche",
            Reading::Record => "la fiche",
            Reading::Household => "le foyer",
            Reading::Request => "une demande",
            Reading::Preview => "l'aperçu d'une réponse",
            Reading::Letter => "un courrier",
            Reading::Answer => "une réponse écrite",
            Reading::List => "une ligne de liste",
            Reading::Export => "l'export des données",
        }
    }
}

/// The front-end a read came through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The gRPC API (another program).
    #[default]
    Grpc,
    /// The command line (over the gRPC API).
    Cli,
    /// The web desk.
    Desk,
}

impl Via {
    /// The front-end named `code` ([`Via::code`]).
    pub fn from_code(code: &str) -> Option<Via> {
        serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
    }

    /// Its name in the trail and the API (`desk`…).
    pub fn code(self) -> &'static str {
        match self {
            Via::Grpc => "grpc",
            Via::Cli => "cli",
            Via::Desk => "desk",
        }
    }

    /// The front-end, in French.
    pub fn fr(self) -> &'static str {
        match self {
            Via::Grpc => "API",
            Via::Cli => "ligne de commande",
            Via::Desk => "guichet web",
        }
    }
}

/// One read, as the trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Read {
    pub seq: u64,
    pub at_us: i64,
    pub commune: String,
    /// The agent's id; `(hub ouvert)` on a hub without an agents file.
    pub agent: String,
    /// The citizen's id; empty for a contact that waits for its citizen (its event id is the
    /// object).
    pub citizen: String,
    pub what: Reading,
    /// The id of what was read: a contact's event id, a letter's chrono, a request's
    /// reference… (empty for a timeline or a record).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object: String,
    /// The caller's address, when the front-end knows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    pub via: Via,
    /// The previous line's hash (hex), empty for the first.
    pub prev: String,
    /// The hub whose trail it is, when another hub's (shared through the log); never in a
    /// hub's own file.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hub: String,
    /// SHA-256 (hex) of `prev` and this line without `hash`.
    #[serde(default)]
    pub hash: String,
}

impl Read {
    /// The line's hash: SHA-256 of `prev` and the line as written with an empty `hash`.
    fn digest(&self) -> String {
        let mut bare = self.clone();
        bare.hash.clear();
        digest_of(&self.prev, &serde_json::to_vec(&bare).unwrap_or_default())
    }
}

fn digest_of(prev: &str, bare_line: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(bare_line);
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hub's read trail (or none: benchmarks compare the desk with and without it).
pub struct Trail {
    inner: Option<Mutex<Open>>,
    /// The file handle the sync thread uses, alive as long as the trail.
    _syncer: Option<std::sync::Arc<std::fs::File>>,
}

struct Open {
    path: PathBuf,
    file: std::fs::File,
    /// The length of the whole lines written: a failed write is cut back to it.
    len: u64,
    seq: u64,
    last: String,
    /// Where the lines not shared through the log yet begin (byte offset), kept in
    /// `audit/shared` (on a cluster only).
    shared_at: u64,
}

/// The file saying how far the trail was shared: the byte offset of the first line not
/// shared yet.
fn shared_path(trail: &Path) -> PathBuf {
    trail.with_file_name("shared")
}

/// The trail's file in a data folder.
pub fn path_in(data: &Path) -> PathBuf {
    data.join("audit").join("reads.jsonl")
}

impl Trail {
    /// The trail of the data folder `data`, created when missing (0600 in a 0700 folder),
    /// continued after its last whole line.
    pub fn open(data: &Path) -> Result<Trail> {
        let path = path_in(data);
        Self::open_at(path).map_err(|e| Error::Internal(format!("opening the read trail: {e}")))
    }

    fn open_at(path: PathBuf) -> std::io::Result<Trail> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        // Where the chain stands: its last line that reads. Only a torn tail (bytes after the
        // last newline: a write cut by a crash) is cut; a whole line that does not read stays,
        // for `verify` to report.
        let len = file.seek(std::io::SeekFrom::End(0))?;
        file.seek(std::io::SeekFrom::Start(0))?;
        let (mut seq, mut last, mut whole) = (0, String::new(), 0u64);
        for line in std::io::BufReader::new(&file).split(b'\n') {
            let line = line?;
            if whole + line.len() as u64 + 1 > len {
                break;
            }
            whole += line.len() as u64 + 1;
            if let Ok(r) = serde_json::from_slice::<Read>(&line) {
                seq = r.seq;
                last = r.hash;
            }
        }
        if len > whole {
            file.set_len(whole)?;
        }
        // Synced to disk once a second by a thread of its own, outside the lock readers take;
        // it ends with the trail.
        let syncer = std::sync::Arc::new(file.try_clone()?);
        let watched = std::sync::Arc::downgrade(&syncer);
        std::thread::Builder::new()
            .name("read-trail-sync".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let Some(file) = watched.upgrade() else {
                    break;
                };
                if let Err(e) = file.sync_data() {
                    tracing::error!(error = %e, "cannot sync the read trail to disk");
                }
            })?;
        let shared_at = std::fs::read_to_string(shared_path(&path))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .min(whole);
        Ok(Trail {
            inner: Some(Mutex::new(Open {
                path,
                file,
                len: whole,
                seq,
                last,
                shared_at,
            })),
            _syncer: Some(syncer),
        })
    }

    /// No trail: reads are not recorded (benchmarks only).
    pub fn off() -> Trail {
        Trail {
            inner: None,
            _syncer: None,
        }
    }

    /// Appends one read by `scope` at `at_us`; an error when it cannot be written (the read
    /// is then refused: no reply leaves unrecorded).
    pub(crate) fn record(
        &self,
        scope: &Scope,
        at_us: i64,
        citizen: &str,
        what: Reading,
        object: &str,
    ) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if scope.is_system() || (citizen.is_empty() && object.is_empty()) {
            return Ok(());
        }
        let mut open = inner
            .lock()
            .map_err(|_| Error::Internal("read trail lock poisoned".into()))?;
        let mut r = Read {
            seq: open.seq + 1,
            at_us,
            commune: scope.commune().to_string(),
            agent: scope
                .agent()
                .map_or_else(|| "(hub ouvert)".to_string(), |a| a.id.clone()),
            citizen: citizen.to_string(),
            what,
            object: object.to_string(),
            from: scope.origin().address.clone(),
            via: scope.origin().via,
            prev: open.last.clone(),
            hub: String::new(),
            hash: String::new(),
        };
        // The line with an empty hash is what the hash covers.
        let bare =
            serde_json::to_vec(&r).map_err(|e| Error::Internal(format!("read trail line: {e}")))?;
        r.hash = digest_of(&r.prev, &bare);
        let mut line =
            serde_json::to_vec(&r).map_err(|e| Error::Internal(format!("read trail line: {e}")))?;
        line.push(b'\n');
        let written = open.file.write_all(&line);
        if let Err(e) = written {
            // A line written in part (a full disk) would glue to the next one: cut it.
            let len = open.len;
            let _ = open.file.set_len(len);
            tracing::error!(error = %e, path = %open.path.display(), "cannot write the read trail: reads are refused");
            return Err(Error::Unavailable(
                "le journal des consultations ne peut pas être écrit : la consultation est refusée"
                    .into(),
            ));
        }
        open.len += line.len() as u64;
        open.seq = r.seq;
        open.last = r.hash;
        Ok(())
    }

    /// The lines not shared through the log yet, at most `max`, and the offset after them.
    pub(crate) fn unshared(&self, max: usize) -> Result<(Vec<Read>, u64)> {
        let Some(inner) = &self.inner else {
            return Ok((Vec::new(), 0));
        };
        let (path, from, len) = {
            let open = inner
                .lock()
                .map_err(|_| Error::Internal("read trail lock poisoned".into()))?;
            (open.path.clone(), open.shared_at, open.len)
        };
        let io = |e: std::io::Error| Error::Internal(format!("reading the read trail: {e}"));
        let mut file = std::fs::File::open(&path).map_err(io)?;
        file.seek(std::io::SeekFrom::Start(from)).map_err(io)?;
        let (mut out, mut at) = (Vec::new(), from);
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(io)?;
            if out.len() == max || at + line.len() as u64 + 1 > len {
                break;
            }
            at += line.len() as u64 + 1;
            if let Ok(r) = serde_json::from_slice::<Read>(&line) {
                out.push(r);
            }
        }
        Ok((out, at))
    }

    /// The lines up to byte `at` are shared through the log.
    pub(crate) fn mark_shared(&self, at: u64) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut open = inner
            .lock()
            .map_err(|_| Error::Internal("read trail lock poisoned".into()))?;
        let path = shared_path(&open.path);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{at}\n"))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::Internal(format!("recording how far the trail is shared: {e}")))?;
        open.shared_at = at;
        Ok(())
    }

    /// The reads of `commune`, oldest first, of `citizen` and/or by `agent` when given.
    pub(crate) fn list(
        &self,
        commune: &str,
        citizen: &str,
        agent: &str,
        limit: usize,
    ) -> Result<Vec<Read>> {
        let Some(inner) = &self.inner else {
            return Ok(Vec::new());
        };
        let path = inner
            .lock()
            .map_err(|_| Error::Internal("read trail lock poisoned".into()))?
            .path
            .clone();
        let file = std::fs::File::open(&path)
            .map_err(|e| Error::Internal(format!("reading the read trail: {e}")))?;
        let mut out = Vec::new();
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| Error::Internal(format!("reading the read trail: {e}")))?;
            let Ok(r) = serde_json::from_slice::<Read>(&line) else {
                continue;
            };
            if r.commune == commune
                && (citizen.is_empty() || r.citizen == citizen)
                && (agent.is_empty() || r.agent == agent)
            {
                out.push(r);
            }
        }
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }
}

impl crate::App {
    /// The read trail of the scope's commune, for its data protection officer: the reads of
    /// `citizen` and/or by `agent` (every read when both are empty), the `limit` latest,
    /// oldest first.
    pub fn reads(
        &self,
        scope: &Scope,
        citizen: &str,
        agent: &str,
        limit: u32,
    ) -> Result<Vec<Read>> {
        if !(scope.is_dpo() || scope.is_open_visitor()) {
            return Err(Error::Forbidden(
                "le journal des consultations est réservé au délégué à la protection des données"
                    .into(),
            ));
        }
        self.enter_figures(scope, scope.commune())?;
        let limit = match limit {
            0 => 200,
            n => n.min(10_000) as usize,
        };
        let mut out = self.trail.list(scope.commune(), citizen, agent, limit)?;
        // The other hubs' lines, shared through the log (this hub's own come from its file).
        for (hub, line) in self.store.trail_reads(scope.commune())? {
            if Some(&hub) == self.trail_hub.as_ref()
                || !(citizen.is_empty() || line.citizen == citizen)
                || !(agent.is_empty() || line.agent == agent)
            {
                continue;
            }
            let (Some(what), Some(via)) =
                (Reading::from_code(&line.what), Via::from_code(&line.via))
            else {
                continue;
            };
            out.push(Read {
                seq: line.seq,
                at_us: line.at_us,
                commune: scope.commune().to_string(),
                agent: line.agent,
                citizen: line.citizen,
                what,
                object: line.object,
                from: line.from,
                via,
                prev: line.prev,
                hub,
                hash: line.hash,
            });
        }
        out.sort_by(|a, b| (a.at_us, &a.hub, a.seq).cmp(&(b.at_us, &b.hub, b.seq)));
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }

    /// Shares the lines of this hub's trail not shared yet through the log, a batch per
    /// commune (on a cluster; nothing on one machine): how many. Run every second by `serve`.
    pub async fn share_reads(&self) -> Result<usize> {
        let Some(hub) = &self.trail_hub else {
            return Ok(0);
        };
        let (lines, end) = self.trail.unshared(contacthub_core::limits::TRAIL_READS)?;
        if lines.is_empty() {
            return Ok(0);
        }
        let mut events: Vec<pb::Event> = Vec::new();
        let mut batch: Vec<pb::TrailRead> = Vec::new();
        let mut commune = String::new();
        let mut flush = |commune: &str, batch: &mut Vec<pb::TrailRead>| {
            if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
                // Named by its first and last lines: a batch sent again after a crash, longer,
                // is another event (its lines are kept by number, so the overlap is harmless).
                events.push(self.internal_event(
                    "read-trail",
                    commune,
                    &format!("{hub}/{}-{}", first.seq, last.seq),
                    "",
                    pb::event::Payload::ReadsRecorded(pb::ReadsRecorded {
                        hub: hub.clone(),
                        reads: std::mem::take(batch),
                    }),
                ));
            }
        };
        for r in &lines {
            if r.commune != commune {
                flush(&commune, &mut batch);
                commune = r.commune.clone();
            }
            batch.push(pb::TrailRead {
                seq: r.seq,
                at_us: r.at_us,
                agent: r.agent.clone(),
                citizen: r.citizen.clone(),
                what: r.what.code().into(),
                object: r.object.clone(),
                from: r.from.clone(),
                via: r.via.code().into(),
                prev: r.prev.clone(),
                hash: r.hash.clone(),
            });
        }
        flush(&commune, &mut batch);
        self.append_and_wait(&events).await?;
        self.trail.mark_shared(end)?;
        Ok(lines.len())
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every line chained to the previous one: how many, the first and last times, and the
    /// last line's hash (the head: written down elsewhere, it shows a trail cut short).
    Intact {
        reads: u64,
        first_us: i64,
        last_us: i64,
        head: String,
    },
    /// The chain breaks at line `line` (1-based): why.
    Broken { line: u64, why: String },
}

/// Checks the chain of the trail at `path` (a line changed, inserted or removed breaks it).
pub fn verify(path: &Path) -> Result<Verdict> {
    let io = |e: std::io::Error| Error::Internal(format!("reading the read trail: {e}"));
    let file = std::fs::File::open(path).map_err(io)?;
    let (mut prev, mut seq, mut n) = (String::new(), 0u64, 0u64);
    let (mut first_us, mut last_us) = (0, 0);
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(io)?;
        let number = i as u64 + 1;
        let r: Read = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Verdict::Broken {
                    line: number,
                    why: format!("ligne illisible ({e})"),
                })
            }
        };
        if r.seq != seq + 1 {
            return Ok(Verdict::Broken {
                line: number,
                why: format!(
                    "numéro {} après {seq} : une consultation manque ou a été ajoutée",
                    r.seq
                ),
            });
        }
        if r.prev != prev {
            return Ok(Verdict::Broken {
                line: number,
                why: "elle ne suit pas la ligne précédente (chaînage rompu)".into(),
            });
        }
        if r.digest() != r.hash {
            return Ok(Verdict::Broken {
                line: number,
                why: "son contenu a été modifié (empreinte différente)".into(),
            });
        }
        if n == 0 {
            first_us = r.at_us;
        }
        last_us = r.at_us;
        prev = r.hash;
        seq = r.seq;
        n += 1;
    }
    Ok(Verdict::Intact {
        reads: n,
        first_us,
        last_us,
        head: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Scope, System};

    #[test]
    fn a_torn_tail_is_cut_and_a_whole_altered_line_stays_for_verify() {
        let dir = tempfile::tempdir().unwrap();
        let scope = Scope::system(System::Demo, "69091");
        // System scopes are not recorded: an open hub's visitor is, through an Access.
        let open = crate::auth::Access::Open.scope(None, "69091").unwrap();
        let trail = Trail::open(dir.path()).unwrap();
        trail
            .record(&scope, 1, "GIV-000001", Reading::Timeline, "")
            .unwrap();
        for i in 0..3 {
            trail
                .record(&open, i, "GIV-000001", Reading::Timeline, "")
                .unwrap();
        }
        drop(trail);
        let path = path_in(dir.path());
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count(),
            3,
            "the hub's own read is not recorded"
        );
        // A crash in the middle of a write: a torn tail, cut at the next start.
        text.push_str("{\"seq\":4,\"at_us\"");
        std::fs::write(&path, &text).unwrap();
        let trail = Trail::open(dir.path()).unwrap();
        trail
            .record(&open, 9, "GIV-000002", Reading::Record, "")
            .unwrap();
        drop(trail);
        assert!(matches!(
            verify(&path).unwrap(),
            Verdict::Intact { reads: 4, .. }
        ));
        // A whole last line made unreadable stays, and verify says where.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("garbage\n");
        std::fs::write(&path, &text).unwrap();
        drop(Trail::open(dir.path()).unwrap());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("garbage\n"));
        assert!(matches!(
            verify(&path).unwrap(),
            Verdict::Broken { line: 5, .. }
        ));
    }
}
