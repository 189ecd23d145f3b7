//! Who read what: every read of a person's data by an agent (a timeline, a contact, a document,
//! a search's results, a record, a household, a request, an answer's preview) is appended to
//! the hub's read trail before the reply leaves, so a reply an agent saw is in the trail even
//! if the hub is killed right after (`write(2)` on an append-only file: in the kernel's cache at
//! once; synced to disk by a thread of its own at most a second later).
//!
//! The trail is one JSON line per read in `DATA/audit/reads.jsonl`, holding ids, never names:
//! sequence number, time, commune, agent, citizen, what was read and its id, the caller's
//! address and front-end, and a SHA-256 chained to the previous line's, so a changed, inserted
//! or removed line breaks the chain ([`verify`]). Each hub keeps its own trail (on Kafka, one
//! per hub: the DPO asks each, docs/operations.md).

use crate::auth::Scope;
use crate::{Error, Result};
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
        Ok(Trail {
            inner: Some(Mutex::new(Open {
                path,
                file,
                len: whole,
                seq,
                last,
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
