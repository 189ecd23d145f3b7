//! The read model in sled: one tree, keys laid out by `contacthub_core::keys`.
//!
//! After an I/O error (full disk, read-only folder) sled refuses every later operation, so
//! the store can be [reopened](Store::reopen) in place: the projector does so when it retries,
//! and resumes from the checkpoints that were durable.

use crate::{Error, Result};
use contacthub_core::fold::{self, Kv};
use contacthub_core::keys;
use contacthub_core::pb::{self, Citizen, CourrierState, DeadLetter, Personal, TimelineEntry};
use contacthub_proto::ts;
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The read model. Clones share one open database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// sled's cache, in bytes (as sled counts them: pages' size on disk).
    cache: u64,
    open: RwLock<Option<Arc<Open>>>,
}

struct Open {
    db: sled::Db,
    tree: sled::Tree,
}

/// sled's cache of a hub's read model, in bytes as sled counts them (the pages' size on disk;
/// in memory they take three to four times that).
pub const CACHE_BYTES: u64 = 256 << 20;

/// How long an open waits for sled's lock on a folder before saying it is in use. sled lets
/// go of its lock a moment after a database's last handle is dropped — its thread pool may
/// still be writing a buffer — so a folder this process has just closed (a rebuild switched
/// in, a reopen, a restart) can read as locked for a few milliseconds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn open_sled(path: &Path, cache: u64) -> Result<Open> {
    let err = |source| Error::Sled {
        path: path.display().to_string(),
        source,
    };
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let db = loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache)
            .flush_every_ms(Some(500))
            .open();
        match opened {
            Ok(db) => break db,
            // sled says so only in words (an `Other` I/O error).
            Err(sled::Error::Io(io)) if io.to_string().starts_with("could not acquire lock") => {
                if std::time::Instant::now() >= deadline {
                    return Err(Error::Locked {
                        path: path.display().to_string(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(err(e)),
        }
    };
    let tree = db.open_tree("read-model").map_err(err)?;
    Ok(Open { db, tree })
}

/// Most bytes of entries in one page of a list (timelines, dead letters, and the lists of the
/// application layer): under the
/// 4 MiB every gRPC client accepts by default, whatever the entries hold.
pub const PAGE_BYTES: usize = 3 << 20;

/// Filters and paging of a timeline read.
#[derive(Debug, Clone, Default)]
pub struct TimelineQuery {
    /// Channels to keep (`pb::Channel as i32`); empty keeps all.
    pub channels: Vec<i32>,
    /// Inclusive lower bound on occurred_at, microseconds.
    pub since_us: Option<i64>,
    /// Exclusive upper bound on occurred_at, microseconds.
    pub until_us: Option<i64>,
    pub page_size: usize,
    /// From a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

/// One page of a timeline, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    pub next_page_token: Option<String>,
}

impl Store {
    /// The folder of the read model.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Opens (or creates) the read model in `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(path, CACHE_BYTES)
    }

    /// Opens (or creates) the read model in `path` with `cache` bytes of sled cache (a replay
    /// writing in key order needs less than a hub serving reads).
    pub fn open_with_cache(path: impl AsRef<Path>, cache: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open = open_sled(&path, cache)?;
        // A new read model is folded with this version of the fold.
        if open.tree.is_empty() {
            open.tree
                .insert(keys::FORMAT_KEY, &keys::FORMAT.to_be_bytes())
                .map_err(|source| Error::Sled {
                    path: path.display().to_string(),
                    source,
                })?;
        }
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                cache,
                open: RwLock::new(Some(Arc::new(open))),
            }),
        })
    }

    /// Whether folder `path` takes writes now (64 KiB written and synced, then removed): what
    /// is checked before sled opens or reopens a read model, since sled writes as it opens and
    /// a write that fails half-way leaves files it cannot read again.
    pub fn check_writable(path: &Path) -> Result<()> {
        let probe = path.join("write.probe");
        let writable = std::fs::File::create(&probe).and_then(|mut f| {
            use std::io::Write;
            f.write_all(&[0u8; 64 * 1024])?;
            f.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        writable.map_err(|source| Error::NotWritable {
            path: path.display().to_string(),
            source,
        })
    }

    /// The open database, or an error while it is being reopened (or could not be).
    fn db(&self) -> Result<Arc<Open>> {
        self.inner
            .open
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Error::Closed {
                path: self.inner.path.display().to_string(),
            })
    }

    /// Closes the database and opens it again from what is on disk: after an I/O error sled
    /// refuses every operation until then. Waits (up to 10 s) for reads in flight to finish.
    /// On failure the store stays closed (reads fail) until a later reopen succeeds.
    pub fn reopen(&self) -> Result<()> {
        let path = self.inner.path.display().to_string();
        // Keep the database open (reads may still work) until the folder takes writes again.
        Store::check_writable(&self.inner.path)?;
        let mut slot = self.inner.open.write().unwrap_or_else(|p| p.into_inner());
        if let Some(mut old) = slot.take() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                match Arc::try_unwrap(old) {
                    Ok(open) => {
                        drop(open);
                        break;
                    }
                    Err(still) if std::time::Instant::now() < deadline => {
                        old = still;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(still) => {
                        *slot = Some(still);
                        return Err(Error::Busy { path });
                    }
                }
            }
        }
        *slot = Some(Arc::new(open_sled(&self.inner.path, self.inner.cache)?));
        Ok(())
    }

    /// The sled tree itself: for the replay, which writes a new read model without batches.
    pub(crate) fn tree(&self) -> Result<sled::Tree> {
        Ok(self.db()?.tree.clone())
    }

    /// A sled error of this read model, with its folder.
    pub(crate) fn sled_error(&self, source: sled::Error) -> Error {
        self.err()(source)
    }

    fn err(&self) -> impl Fn(sled::Error) -> Error + '_ {
        move |source| Error::Sled {
            path: self.inner.path.display().to_string(),
            source,
        }
    }

    fn get_msg<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>> {
        match self.db()?.tree.get(key).map_err(self.err())? {
            None => Ok(None),
            Some(v) => M::decode(&*v).map(Some).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(key).into_owned(),
                    source,
                })
            }),
        }
    }

    /// Whether a replay began writing this read model and did not finish it.
    pub fn unfinished_replay(&self) -> Result<bool> {
        self.db()?
            .tree
            .contains_key(keys::REPLAYING_KEY)
            .map_err(self.err())
    }

    /// Whether the read model holds nothing but its format (what `Store::open` writes).
    pub fn is_new(&self) -> Result<bool> {
        let db = self.db()?;
        for kv in db.tree.iter().take(2) {
            let (k, _) = kv.map_err(self.err())?;
            if &*k != keys::FORMAT_KEY {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The [`keys::FORMAT`] this read model was folded with (0: before formats were kept).
    pub fn format(&self) -> Result<u32> {
        Ok(self
            .db()?
            .tree
            .get(keys::FORMAT_KEY)
            .map_err(self.err())?
            .and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes))
            .unwrap_or(0))
    }

    /// The requests a contact belongs to (opened from it, linked to it, quoting it).
    pub fn contact_requests(&self, tenant: &str, contact_id: &str) -> Result<Vec<String>> {
        self.last_parts(&keys::contact_requests_prefix(tenant, contact_id), 1_000)
    }

    /// Which of `candidates` (documents by SHA-256) some record still refers to, in any
    /// commune: a timeline line, a contact waiting in « à rattacher », a letter's scans, a
    /// written answer's letter, or a dead-lettered event (opened with `keys`: ops may publish
    /// it again once fixed). A full scan of those families: for collection and erasures,
    /// which are rare. A record that does not decode, or a dead letter sealed with a key
    /// `keys` does not know, is an error: nothing is said unused that might be used.
    pub fn documents_in_use(
        &self,
        candidates: &std::collections::BTreeSet<String>,
        keys: &dyn contacthub_core::seal::Keys,
    ) -> Result<std::collections::BTreeSet<String>> {
        let mut used = std::collections::BTreeSet::new();
        let db = self.db()?;
        let mut see = |sha: &str| {
            if candidates.contains(sha) {
                used.insert(sha.to_string());
            }
        };
        let corrupt = |k: &[u8], source| {
            Error::Domain(contacthub_core::Error::Corrupt {
                key: String::from_utf8_lossy(k).into_owned(),
                source,
            })
        };
        use keys::Family;
        for family in [
            Family::Timeline,
            Family::Unresolved,
            Family::Courrier,
            Family::Answer,
        ] {
            for kv in db.tree.scan_prefix(family.prefix()) {
                let (k, v) = kv.map_err(self.err())?;
                match family {
                    Family::Timeline => TimelineEntry::decode(&v[..])
                        .map_err(|e| corrupt(&k, e))?
                        .attachments
                        .iter()
                        .for_each(|a| see(&a.sha256)),
                    Family::Unresolved => pb::Unresolved::decode(&v[..])
                        .map_err(|e| corrupt(&k, e))?
                        .entry
                        .iter()
                        .flat_map(|e| &e.attachments)
                        .for_each(|a| see(&a.sha256)),
                    Family::Courrier => CourrierState::decode(&v[..])
                        .map_err(|e| corrupt(&k, e))?
                        .scans
                        .iter()
                        .for_each(|a| see(&a.sha256)),
                    _ => see(&pb::Answer::decode(&v[..])
                        .map_err(|e| corrupt(&k, e))?
                        .pdf_sha256),
                }
            }
        }
        for kv in db.tree.scan_prefix(keys::DEAD_LETTER) {
            let (k, v) = kv.map_err(self.err())?;
            let dead = DeadLetter::decode(&v[..]).map_err(|e| corrupt(&k, e))?;
            // Bytes that are no event name no document.
            let Ok(mut event) = contacthub_core::event::decode(&dead.raw) else {
                continue;
            };
            use contacthub_core::seal::{self, Unreadable};
            match seal::open(&mut event, keys) {
                Ok(()) => contacthub_core::event::documents(&event).for_each(&mut see),
                // Erased, or unreadable for ever: what it named (sealed) is no one's any more.
                Err(Unreadable::Erased | Unreadable::Tampered | Unreadable::Malformed(_)) => {}
                Err(Unreadable::Unknown(id)) => {
                    return Err(Error::Domain(contacthub_core::Error::KeyUnknown(id)))
                }
            }
        }
        Ok(used)
    }

    /// The keys of the keyring that sealed events of a citizen (what erasing them destroys).
    pub fn subject_keys(&self, tenant: &str, citizen: &str) -> Result<Vec<String>> {
        self.last_parts(&keys::subject_keys_prefix(tenant, citizen), usize::MAX)
    }

    /// The citizens a key of the keyring belongs to.
    pub fn key_owners(&self, tenant: &str, key_id: &str) -> Result<Vec<String>> {
        self.last_parts(&keys::key_owners_prefix(tenant, key_id), usize::MAX)
    }

    /// What follows `prefix` in each key under it (an index's last part), at most `limit`.
    fn last_parts(&self, prefix: &[u8], limit: usize) -> Result<Vec<String>> {
        self.db()?
            .tree
            .scan_prefix(prefix)
            .keys()
            .take(limit)
            .map(|k| {
                k.map(|k| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
                    .map_err(self.err())
            })
            .collect()
    }

    /// Next offset to apply, per partition.
    pub fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>> {
        (0..partitions)
            .map(|p| {
                Ok(self
                    .db()?
                    .tree
                    .get(keys::checkpoint(p))
                    .map_err(self.err())?
                    .map_or(0, |v| keys::read_u64(&v)))
            })
            .collect()
    }

    /// Value of a counter (not a packed one: [`Store::counters`] reads those).
    pub fn counter(&self, counter: &keys::Counter) -> Result<u64> {
        Ok(self
            .db()?
            .tree
            .get(counter.key())
            .map_err(self.err())?
            .map_or(0, |v| keys::read_u64(&v)))
    }

    /// Every counter of a run, a packed counter read as the counters it holds. A key no
    /// [`keys::Counter`] reads is not counted (a read model of another [`keys::FORMAT`] is
    /// rebuilt before it is read).
    pub fn counters(&self, run: keys::Counters) -> Result<BTreeMap<keys::Counter, u64>> {
        let mut out = BTreeMap::new();
        for kv in self.db()?.tree.scan_prefix(run.key_prefix()) {
            let (k, v) = kv.map_err(self.err())?;
            let Some(counter) = keys::Counter::from_key(&k) else {
                continue;
            };
            for (counter, n) in counter.unpack(&v) {
                *out.entry(counter).or_insert(0) += n;
            }
        }
        Ok(out)
    }

    /// A record as agents see it: once others were merged into it, with what they hold that
    /// it lacks ([`fold::citizens::union`], computed here so an unmerge stays exact). A record
    /// merged into another is returned as stored (it names the record it joined).
    pub fn citizen(&self, tenant: &str, id: &str) -> Result<Option<Citizen>> {
        let db = ReadOnly(self.db()?);
        let Some(c) = fold::citizens::record(&db, tenant, id)? else {
            return Ok(None);
        };
        if !c.merged_into.is_empty() {
            return Ok(Some(c));
        }
        let mut merged = Vec::new();
        for member in self.members(tenant, id)?.iter().skip(1) {
            if let Some(m) = fold::citizens::record(&db, tenant, member)? {
                merged.push(m);
            }
        }
        Ok(Some(if merged.is_empty() {
            c
        } else {
            fold::citizens::union(c, merged)
        }))
    }

    /// The citizen an identifier (kind `phone` or `email`, normalised) belongs to first (or,
    /// when only a form declared it, the first record it was declared for).
    pub fn by_identifier(
        &self,
        tenant: &str,
        kind: &str,
        normalized: &str,
    ) -> Result<Option<String>> {
        match self
            .db()?
            .tree
            .get(keys::identifier(tenant, kind, normalized))
            .map_err(self.err())?
        {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v).into_owned())),
            None => Ok(self.holders(tenant, kind, normalized)?.into_iter().next()),
        }
    }

    /// The citizen a possibly merged citizen id stands for now.
    pub fn canonical(&self, tenant: &str, id: &str) -> Result<String> {
        Ok(fold::citizens::canonical(
            &ReadOnly(self.db()?),
            tenant,
            id,
        )?)
    }

    /// Every citizen holding an identifier (`kind` `phone` or `email`, normalised), as
    /// recorded (not resolved through merges), including records that only a form declared
    /// it for (an agent looking for a person finds those too).
    pub fn holders(&self, tenant: &str, kind: &str, normalized: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for kind in [kind, fold::citizens::declared_kind(kind)] {
            let prefix = keys::identifier_holders_prefix(tenant, kind, normalized);
            for kv in self.db()?.tree.scan_prefix(&prefix).take(100) {
                let (k, _) = kv.map_err(self.err())?;
                let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// A citizen's last contact (µs, `i64::MIN` when none) and the record it joined.
    pub fn search_card(&self, tenant: &str, citizen: &str) -> Result<Option<(i64, String)>> {
        Ok(self
            .db()?
            .tree
            .get(keys::search_card(tenant, citizen))
            .map_err(self.err())?
            .and_then(|v| keys::Card::decode(&v))
            .map(|card| (card.last_seen_us, card.merged_into)))
    }

    /// A request by its reference.
    pub fn request(&self, tenant: &str, reference: &str) -> Result<Option<pb::Request>> {
        self.get_msg(&keys::request(tenant, reference))
    }

    /// The request a portal's file (`WebForm.thread_id`) opened.
    pub fn request_of_file(&self, tenant: &str, thread: &str) -> Result<Option<String>> {
        Ok(self
            .db()?
            .tree
            .get(keys::portal_file(tenant, thread))
            .map_err(self.err())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The reference of the request an opening event opened.
    pub fn request_by_event(&self, tenant: &str, event_id: &str) -> Result<Option<String>> {
        Ok(self
            .db()?
            .tree
            .get(keys::request_by_event(tenant, event_id))
            .map_err(self.err())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Every request of a commune, by reference.
    pub fn requests(&self, tenant: &str) -> Result<Vec<pb::Request>> {
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(keys::requests_prefix(tenant)) {
            let (k, v) = kv.map_err(self.err())?;
            out.push(pb::Request::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?);
        }
        Ok(out)
    }

    /// The requests any of `citizens` asked, each once, in reference order.
    pub fn requests_of(&self, tenant: &str, citizens: &[String]) -> Result<Vec<pb::Request>> {
        let mut references = std::collections::BTreeSet::new();
        for c in citizens {
            let prefix = keys::citizen_requests_prefix(tenant, c);
            for kv in self.db()?.tree.scan_prefix(&prefix) {
                let (k, _) = kv.map_err(self.err())?;
                references.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            }
        }
        let mut out = Vec::with_capacity(references.len());
        for reference in references {
            out.extend(self.request(tenant, &reference)?);
        }
        Ok(out)
    }

    /// The open requests of a commune (not answered, not closed) due before `until_us`,
    /// oldest due first: read through the index of open requests, so the commune's answered
    /// and closed requests are not decoded.
    pub fn open_requests_before(&self, tenant: &str, until_us: i64) -> Result<Vec<pb::Request>> {
        let start = keys::open_request(tenant, 0, "");
        let end = keys::open_request(tenant, until_us.max(0), "");
        let mut out = Vec::new();
        for kv in self.db()?.tree.range(start..end) {
            let (k, _) = kv.map_err(self.err())?;
            out.extend(self.request(tenant, &keys::last_part(&k))?);
        }
        Ok(out)
    }

    /// The open requests of a commune (not answered, not closed) due from `from_us` to before
    /// `until_us`, oldest due first: their dashboard slice.
    pub fn open_requests_due(
        &self,
        tenant: &str,
        from_us: i64,
        until_us: i64,
    ) -> Result<Vec<contacthub_core::dashboard::Slice>> {
        let start = keys::open_request(tenant, from_us.max(0), "");
        let end = keys::open_request(tenant, until_us.max(0), "");
        let mut out = Vec::new();
        for kv in self.db()?.tree.range(start..end) {
            let (_, v) = kv.map_err(self.err())?;
            out.push(contacthub_core::dashboard::Slice::decode(&v));
        }
        Ok(out)
    }

    /// The answer a provider's message id names (delivered answers only).
    pub fn by_provider_message(&self, tenant: &str, message_id: &str) -> Result<Option<String>> {
        Ok(self
            .db()?
            .tree
            .get(keys::provider_message(tenant, message_id))
            .map_err(self.err())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A written answer (outbound) by its event id.
    pub fn answer(&self, tenant: &str, answer_id: &str) -> Result<Option<pb::Answer>> {
        self.get_msg(&keys::answer(tenant, answer_id))
    }

    /// Ids of the answers listed under `prefix` (`ar/`, `pq/`): the last part of each key.
    fn answers_under(&self, tenant: &str, prefix: Vec<u8>) -> Result<Vec<pb::Answer>> {
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(self.err())?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.extend(self.answer(tenant, &id)?);
        }
        out.sort_by_key(|a| a.composed_at.as_ref().map(|t| (t.seconds, t.nanos)));
        Ok(out)
    }

    /// The written answers of a request, oldest first.
    pub fn request_answers(&self, tenant: &str, reference: &str) -> Result<Vec<pb::Answer>> {
        self.answers_under(tenant, keys::request_answers_prefix(tenant, reference))
    }

    /// A commune's letters waiting to be printed, oldest first.
    pub fn print_queue(&self, tenant: &str) -> Result<Vec<pb::Answer>> {
        self.answers_under(tenant, keys::print_queue_prefix(tenant))
    }

    /// Answers of every commune due in the outbox by `now_us`, at most `limit`, due first:
    /// (tenant, answer id).
    pub fn outbox_due(&self, now_us: i64, limit: usize) -> Result<Vec<(String, String)>> {
        self.due_in(keys::OUTBOX, now_us, limit)
    }

    /// (tenant, id) of a queue ordered by due time ([`keys::parse_due`]), due by `now_us`.
    fn due_in(&self, queue: &[u8], now_us: i64, limit: usize) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(queue).take(limit) {
            let (k, _) = kv.map_err(self.err())?;
            let Some((due, tenant, id)) = keys::parse_due(queue, &k) else {
                continue;
            };
            if due > now_us {
                break;
            }
            out.push((tenant, id));
        }
        Ok(out)
    }

    /// The records of type `M` under `prefix`, in key order, at most `limit`.
    fn msgs<M: Message + Default>(&self, prefix: &[u8], limit: usize) -> Result<Vec<M>> {
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(prefix).take(limit) {
            let (k, v) = kv.map_err(self.err())?;
            out.push(M::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?);
        }
        Ok(out)
    }

    /// Every answer of a commune's catalogue, by id.
    pub fn catalogue(&self, tenant: &str) -> Result<Vec<pb::CatalogueAnswer>> {
        self.msgs(&keys::catalogue_prefix(tenant), usize::MAX)
    }

    /// One answer of a commune's catalogue.
    pub fn catalogue_answer(
        &self,
        tenant: &str,
        answer_id: &str,
    ) -> Result<Option<pb::CatalogueAnswer>> {
        self.get_msg(&keys::catalogue(tenant, answer_id))
    }

    /// The contact a source reference names (submission id, MessageSid, Message-ID).
    pub fn by_source_ref(&self, tenant: &str, reference: &str) -> Result<Option<String>> {
        Ok(self
            .db()?
            .tree
            .get(keys::source_ref(tenant, reference))
            .map_err(self.err())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Contacts for an agent ("à rattacher") that `keep` keeps, at most `limit`, in key order.
    pub fn unresolved(
        &self,
        tenant: &str,
        limit: usize,
        keep: impl Fn(&pb::Unresolved) -> bool,
    ) -> Result<Vec<pb::Unresolved>> {
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(keys::unresolved_prefix(tenant)) {
            let (k, v) = kv.map_err(self.err())?;
            let u = pb::Unresolved::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?;
            if keep(&u) {
                out.push(u);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// An appointment.
    pub fn appointment(&self, tenant: &str, id: &str) -> Result<Option<pb::Appointment>> {
        self.get_msg(&keys::appointment(tenant, id))
    }

    /// When phone `phone` (E.164) answered STOP to the commune's SMS, if it did (and has not
    /// answered START since).
    pub fn sms_stopped(&self, tenant: &str, phone: &str) -> Result<Option<i64>> {
        Ok(self
            .db()?
            .tree
            .get(keys::sms_stopped(tenant, phone))
            .map_err(self.err())?
            .map(|v| keys::read_u64(&v) as i64))
    }

    /// A notice (an appointment's confirmation or reminder, a request's acknowledgement).
    pub fn notice(&self, tenant: &str, id: &str) -> Result<Option<pb::Notice>> {
        self.get_msg(&keys::notice(tenant, id))
    }

    /// (tenant, id) of the notices due by `now_us`, at most `limit`, due first.
    pub fn notices_due(&self, now_us: i64, limit: usize) -> Result<Vec<(String, String)>> {
        self.due_in(keys::NOTICES_DUE, now_us, limit)
    }

    /// How many bookings hold slot `kind` at `start_us`.
    pub fn slot_bookings(&self, tenant: &str, kind: &str, start_us: i64) -> Result<usize> {
        let mut n = 0;
        for kv in self
            .db()?
            .tree
            .scan_prefix(keys::appointment_slot(tenant, kind, start_us))
        {
            kv.map_err(self.err())?;
            n += 1;
        }
        Ok(n)
    }

    /// The commune's booked appointments starting in `[from_us, to_us)`, by start.
    pub fn agenda(&self, tenant: &str, from_us: i64, to_us: i64) -> Result<Vec<pb::Appointment>> {
        let prefix = keys::agenda(tenant);
        let start = [prefix.clone(), from_us.to_be_bytes().to_vec()].concat();
        let end = [prefix.clone(), to_us.to_be_bytes().to_vec()].concat();
        let mut out = Vec::new();
        for kv in self.db()?.tree.range(start..end).take(2_000) {
            let (k, _) = kv.map_err(self.err())?;
            let id = String::from_utf8_lossy(&k[prefix.len() + 9..]).into_owned();
            out.extend(self.appointment(tenant, &id)?);
        }
        Ok(out)
    }

    /// A person's appointments, by start.
    pub fn citizen_appointments(
        &self,
        tenant: &str,
        citizen: &str,
    ) -> Result<Vec<pb::Appointment>> {
        let prefix = keys::citizen_appointments(tenant, citizen);
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(&prefix).take(500) {
            let (k, _) = kv.map_err(self.err())?;
            // start (8 bytes), \0, id
            let id = String::from_utf8_lossy(&k[prefix.len() + 9..]).into_owned();
            out.extend(self.appointment(tenant, &id)?);
        }
        Ok(out)
    }

    /// A citizens' space account: its citizen, or the proposal it waits on.
    pub fn account(&self, tenant: &str, account: &str) -> Result<Option<pb::Account>> {
        self.get_msg(&keys::account(tenant, account))
    }

    /// The accounts waiting for an agent, in proposal id order, at most `limit`.
    pub fn account_proposals(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<pb::AccountProposal>> {
        self.msgs(&keys::account_proposals_prefix(tenant), limit)
    }

    /// One account waiting for an agent, if `event_id` is one.
    pub fn account_proposal(
        &self,
        tenant: &str,
        event_id: &str,
    ) -> Result<Option<pb::AccountProposal>> {
        self.get_msg(&keys::account_proposal(tenant, event_id))
    }

    /// One contact for an agent, if it is one.
    pub fn unresolved_contact(
        &self,
        tenant: &str,
        event_id: &str,
    ) -> Result<Option<pb::Unresolved>> {
        self.get_msg(&keys::unresolved_claim(tenant, event_id))
    }

    /// The read-trail lines of `tenant` hubs shared through the log, with their hub, in hub
    /// then line order.
    pub fn trail_reads(&self, tenant: &str) -> Result<Vec<(String, pb::TrailRead)>> {
        let prefix = keys::trail_prefix(tenant);
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(self.err())?;
            let rest = &k[prefix.len()..];
            let hub = rest
                .split(|b| *b == 0)
                .next()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .unwrap_or_default();
            let line = pb::TrailRead::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?;
            out.push((hub, line));
        }
        Ok(out)
    }

    /// Every citizen record of a commune, in id order.
    pub fn citizens(&self, tenant: &str) -> Result<Vec<Citizen>> {
        let db = self.db()?;
        // Records and cards go in the same order (tenant, then citizen id): read side by side.
        let (records, cards) = (keys::citizens_prefix(tenant), keys::search_card(tenant, ""));
        let mut cards_read = db.tree.scan_prefix(&cards).peekable();
        let mut out = Vec::new();
        for kv in db.tree.scan_prefix(&records) {
            let (k, v) = kv.map_err(self.err())?;
            let mut c = Citizen::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?;
            let id = &k[records.len()..];
            loop {
                let (card_key, card) = match cards_read.peek() {
                    None => break,
                    Some(Ok(kv)) => kv,
                    Some(Err(_)) => {
                        let e = cards_read.next().and_then(Result::err);
                        return Err(self.err()(e.expect("the peeked error")));
                    }
                };
                let card_id = &card_key[cards.len()..];
                if card_id < id {
                    cards_read.next();
                    continue;
                }
                if card_id == id {
                    if let Some(card) = keys::Card::decode(card) {
                        fold::citizens::with_card(&mut c, &card);
                    }
                }
                break;
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Whether an agent said these two citizens are different people.
    pub fn dismissed(&self, tenant: &str, a: &str, b: &str) -> Result<bool> {
        self.db()?
            .tree
            .contains_key(keys::duplicate_dismissed(tenant, a, b))
            .map_err(self.err())
    }

    /// Members of a household with their roles.
    pub fn household(&self, tenant: &str, household: &str) -> Result<Vec<(String, String)>> {
        let prefix = keys::household_members_prefix(tenant, household);
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(&prefix).take(1_000) {
            let (k, v) = kv.map_err(self.err())?;
            out.push((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    /// Citizens whose names or addresses match every word of `query`, with a score.
    pub fn search_words(&self, tenant: &str, query: &str) -> Result<Vec<(String, u32)>> {
        Ok(contacthub_core::search::by_words(
            &ReadOnly(self.db()?),
            tenant,
            query,
        )?)
    }

    /// The citizen and every citizen merged into it, transitively.
    pub fn members(&self, tenant: &str, canonical: &str) -> Result<Vec<String>> {
        let mut out = vec![canonical.to_string()];
        let mut i = 0;
        while i < out.len() && out.len() < 1024 {
            let prefix = keys::merge_members_prefix(tenant, &out[i]);
            for kv in self.db()?.tree.scan_prefix(&prefix) {
                let (k, _) = kv.map_err(self.err())?;
                let member = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                if !out.contains(&member) {
                    out.push(member);
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// Where an applied event went: its citizen and time, if it was applied.
    pub fn applied_entry(&self, tenant: &str, event_id: &str) -> Result<Option<TimelineEntry>> {
        let Some(v) = self
            .db()?
            .tree
            .get(keys::applied(tenant, event_id))
            .map_err(self.err())?
        else {
            return Ok(None);
        };
        let Some(a) = keys::Applied::decode(&v) else {
            return Ok(None);
        };
        if a.citizen.is_empty() {
            // Waiting to be attached: its entry is in the worklist.
            return Ok(self
                .unresolved_contact(tenant, event_id)?
                .and_then(|u| u.entry));
        }
        self.get_msg(&keys::timeline_entry(
            tenant,
            &a.citizen,
            a.occurred_us,
            event_id,
        ))
    }

    /// Where an event went, with the fingerprint it was written with, if it was applied.
    pub fn applied(&self, tenant: &str, event_id: &str) -> Result<Option<keys::Applied>> {
        Ok(self
            .db()?
            .tree
            .get(keys::applied(tenant, event_id))
            .map_err(self.err())?
            .and_then(|v| keys::Applied::decode(&v)))
    }

    /// The personal data of an applied contact (whole text, form fields, attachment names).
    pub fn contact_detail(&self, tenant: &str, event_id: &str) -> Result<Option<Personal>> {
        let key = keys::applied(tenant, event_id);
        let Some(a) = self
            .db()?
            .tree
            .get(&key)
            .map_err(self.err())?
            .and_then(|v| keys::Applied::decode(&v))
        else {
            return Ok(None);
        };
        if a.detail.is_empty() {
            return Ok(None);
        }
        Personal::decode(&a.detail[..]).map(Some).map_err(|source| {
            Error::Domain(contacthub_core::Error::Corrupt {
                key: String::from_utf8_lossy(&key).into_owned(),
                source,
            })
        })
    }

    /// A page of the timeline of `canonical` and every citizen merged into it, newest first.
    pub fn timeline(
        &self,
        tenant: &str,
        canonical: &str,
        q: &TimelineQuery,
    ) -> Result<TimelinePage> {
        let page_size = q.page_size.clamp(1, 500);
        let cursor = match &q.page_token {
            None => None,
            Some(t) => Some(parse_token(t).ok_or_else(|| Error::PageToken(t.clone()))?),
        };
        let mut found: Vec<(Vec<u8>, TimelineEntry)> = Vec::new();
        for member in self.members(tenant, canonical)? {
            let prefix = keys::timeline_prefix(tenant, &member);
            let mut lo = prefix.clone();
            if let Some(s) = q.since_us {
                lo.extend_from_slice(&keys::time_bytes(s));
            }
            let mut hi = prefix.clone();
            match q.until_us {
                Some(u) => hi.extend_from_slice(&keys::time_bytes(u)),
                None => hi.push(0xff),
            }
            if let Some((us, id)) = &cursor {
                let mut c = prefix.clone();
                c.extend_from_slice(&keys::time_bytes(*us));
                c.extend_from_slice(id.as_bytes());
                if c < hi {
                    hi = c;
                }
            }
            if lo >= hi {
                continue; // An empty window (since after until, or a cursor before since).
            }
            let mut taken = 0;
            for kv in self.db()?.tree.range(lo..hi).rev() {
                let (k, v) = kv.map_err(self.err())?;
                let entry = TimelineEntry::decode(&*v).map_err(|source| {
                    Error::Domain(contacthub_core::Error::Corrupt {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        source,
                    })
                })?;
                if !q.channels.is_empty() && !q.channels.contains(&entry.channel) {
                    continue;
                }
                found.push((k[prefix.len()..].to_vec(), entry));
                taken += 1;
                if taken > page_size {
                    break;
                }
            }
        }
        found.sort_by(|a, b| b.0.cmp(&a.0));
        let mut more = found.len() > page_size;
        found.truncate(page_size);
        // A page always fits a client's default message limit (4 MiB).
        let mut bytes = 0;
        if let Some(cut) = found.iter().position(|(_, e)| {
            bytes += e.encoded_len() + 8;
            bytes > PAGE_BYTES
        }) {
            found.truncate(cut.max(1));
            more = true;
        }
        let next_page_token = if more {
            found.last().map(|(_, e)| {
                let us = e.occurred_at.as_ref().and_then(ts::to_micros).unwrap_or(0);
                format!("{us}:{}", e.event_id)
            })
        } else {
            None
        };
        Ok(TimelinePage {
            entries: found.into_iter().map(|(_, e)| e).collect(),
            next_page_token,
        })
    }

    /// A registered letter by chrono number.
    pub fn courrier(&self, tenant: &str, chrono: &str) -> Result<Option<CourrierState>> {
        self.get_msg(&keys::courrier(tenant, chrono))
    }

    /// The letter registered by event `event_id`, once projected.
    pub fn courrier_by_event(&self, tenant: &str, event_id: &str) -> Result<Option<CourrierState>> {
        match self
            .db()?
            .tree
            .get(keys::courrier_by_event(tenant, event_id))
            .map_err(self.err())?
        {
            Some(chrono) => self.courrier(tenant, &String::from_utf8_lossy(&chrono)),
            None => Ok(None),
        }
    }

    /// The ticket `id` of the waiting line (`hdv-20261204-A042`).
    pub fn ticket(&self, tenant: &str, id: &str) -> Result<Option<pb::Ticket>> {
        match contacthub_core::accueil::parse_ticket_id(id) {
            Some((site, day, number)) => self.get_msg(&keys::ticket(
                tenant,
                &day.format("%Y-%m-%d").to_string(),
                site,
                number,
            )),
            None => Ok(None),
        }
    }

    /// The tickets of `tenant` from day `from` to day `to` (Paris, inclusive), of one site
    /// when `site` is given, by day, site and arrival.
    pub fn tickets(
        &self,
        tenant: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        site: Option<&str>,
    ) -> Result<Vec<pb::Ticket>> {
        let start = keys::ticket_prefix(tenant, &from.format("%Y-%m-%d").to_string(), None);
        let mut end = keys::ticket_prefix(tenant, &to.format("%Y-%m-%d").to_string(), None);
        end.push(0xff);
        let mut out = Vec::new();
        for kv in self.db()?.tree.range(start..end) {
            let (k, v) = kv.map_err(self.err())?;
            let t = pb::Ticket::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: contacthub_core::redact_key(&String::from_utf8_lossy(&k)),
                    source,
                })
            })?;
            if site.is_none_or(|s| s == t.site) {
                out.push(t);
            }
        }
        out.sort_by_cached_key(|t| {
            (
                contacthub_core::accueil::day_of(t.arrived_us),
                t.site.clone(),
                t.seq,
            )
        });
        Ok(out)
    }

    /// The contacts of the people `elu` met at their permanences (every élu's when `None`),
    /// newest first, at most `limit`.
    pub fn permanence_meetings(
        &self,
        tenant: &str,
        elu: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for kv in self
            .db()?
            .tree
            .scan_prefix(keys::permanence_prefix(tenant, elu))
        {
            let (k, _) = kv.map_err(self.err())?;
            found.extend(keys::parse_permanence(&k));
        }
        found.sort_by(|a, b| b.cmp(a));
        found.truncate(limit);
        Ok(found.into_iter().map(|(_, event)| event).collect())
    }

    /// The accueil's day counters of `tenant` from `from` to `to` (inclusive), by day.
    pub fn accueil_days(
        &self,
        tenant: &str,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<(chrono::NaiveDate, BTreeMap<String, u64>)>> {
        let start = keys::accueil_day(tenant, &from.format("%Y-%m-%d").to_string());
        let end = keys::accueil_day(tenant, &to.format("%Y-%m-%d").to_string());
        let prefix_len = keys::accueil_day(tenant, "").len();
        let mut out = Vec::new();
        for kv in self.db()?.tree.range(start..=end) {
            let (k, v) = kv.map_err(self.err())?;
            let day = std::str::from_utf8(&k[prefix_len..])
                .ok()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            if let Some(day) = day {
                out.push((day, keys::unpack_counters(&v)));
            }
        }
        Ok(out)
    }

    /// Every letter of a commune, in chrono order.
    pub fn courriers(&self, tenant: &str) -> Result<Vec<CourrierState>> {
        let mut out = Vec::new();
        for kv in self.db()?.tree.scan_prefix(keys::courrier_prefix(tenant)) {
            let (k, v) = kv.map_err(self.err())?;
            out.push(CourrierState::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?);
        }
        Ok(out)
    }

    /// Dead letters, oldest first.
    pub fn dead_letters(
        &self,
        limit: usize,
        keep: impl Fn(&DeadLetter) -> bool,
    ) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for kv in self.db()?.tree.scan_prefix(keys::DEAD_LETTER) {
            if out.len() == limit {
                break;
            }
            let (k, v) = kv.map_err(self.err())?;
            let d = DeadLetter::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?;
            if !keep(&d) {
                continue;
            }
            bytes += v.len();
            if bytes > PAGE_BYTES && !out.is_empty() {
                break;
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Bytes of keys and values under `prefix` (to size an index).
    pub fn prefix_bytes(&self, prefix: &[u8]) -> Result<u64> {
        let mut n = 0u64;
        for kv in self.db()?.tree.scan_prefix(prefix) {
            let (k, v) = kv.map_err(self.err())?;
            n += (k.len() + v.len()) as u64;
        }
        Ok(n)
    }

    /// SHA-256 over every key and value, in order: equal digests, equal projections.
    pub fn digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        for kv in self.db()?.tree.iter() {
            let (k, v) = kv.map_err(self.err())?;
            h.update((k.len() as u64).to_be_bytes());
            h.update(&k);
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Starts a batch of changes over the current state.
    pub fn batch(&self) -> Result<Batch<'_>> {
        Ok(Batch {
            store: self,
            open: self.db()?,
            overlay: BTreeMap::new(),
        })
    }

    /// Makes everything applied so far durable (sled also does so every 500 ms).
    pub fn flush(&self) -> Result<()> {
        self.db()?.db.flush().map(|_| ()).map_err(self.err())
    }
}

fn parse_token(t: &str) -> Option<(i64, String)> {
    let (us, id) = t.split_once(':')?;
    Some((us.parse().ok()?, id.to_string()))
}

/// Buffered changes, read back by later folds of the same batch, applied atomically.
pub struct Batch<'a> {
    store: &'a Store,
    open: Arc<Open>,
    overlay: fold::Changes,
}

impl Kv for Batch<'_> {
    fn get(&self, key: &[u8]) -> contacthub_core::Result<Option<Vec<u8>>> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(v.clone());
        }
        self.open
            .tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| contacthub_core::Error::Store(e.to_string()))
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.overlay.insert(key, Some(value));
    }
    fn remove(&mut self, key: Vec<u8>) {
        self.overlay.insert(key, None);
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> contacthub_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let layers = [&self.overlay];
        let more = fold::pending(&layers, prefix);
        let base = scan(&self.open.tree, prefix, limit.saturating_add(more))?;
        Ok(fold::merge_scan(base, &layers, prefix, limit))
    }
}

/// Up to `limit` keys of `tree` starting with `prefix`, with their values.
pub(crate) fn scan(
    tree: &sled::Tree,
    prefix: &[u8],
    limit: usize,
) -> contacthub_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    tree.scan_prefix(prefix)
        .take(limit)
        .map(|kv| {
            kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(|e| contacthub_core::Error::Store(e.to_string()))
        })
        .collect()
}

impl Batch<'_> {
    /// Applies every change atomically, together with the given checkpoints.
    pub fn commit(mut self, checkpoints: &[(u32, u64)]) -> Result<()> {
        for &(p, next) in checkpoints {
            self.overlay
                .insert(keys::checkpoint(p), Some(next.to_be_bytes().to_vec()));
        }
        let mut b = sled::Batch::default();
        for (k, v) in self.overlay {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.open.tree.apply_batch(b).map_err(self.store.err())
    }
}

/// Read-only view for pure functions of the core that take a [`Kv`]: they only read, and a
/// write through it is a bug, so it panics rather than being silently dropped.
struct ReadOnly(Arc<Open>);

impl Kv for ReadOnly {
    fn get(&self, key: &[u8]) -> contacthub_core::Result<Option<Vec<u8>>> {
        self.0
            .tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| contacthub_core::Error::Store(e.to_string()))
    }
    fn put(&mut self, _: Vec<u8>, _: Vec<u8>) {
        unreachable!("a read-only view of the read model was written to")
    }
    fn remove(&mut self, _: Vec<u8>) {
        unreachable!("a read-only view of the read model was written to")
    }
    fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> contacthub_core::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan(&self.0.tree, prefix, limit)
    }
}
