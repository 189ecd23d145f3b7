//! The read model in sled: one tree, keys laid out by `contacthub_core::keys`.

use crate::{Error, Result};
use contacthub_core::fold::{self, Kv};
use contacthub_core::keys;
use contacthub_core::pb::{Citizen, CourrierState, DeadLetter, Personal, TimelineEntry};
use contacthub_proto::ts;
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The read model.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
}

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
    /// Opens (or creates) the read model in `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(256 << 20)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|source| Error::Sled {
                path: path.display().to_string(),
                source,
            })?;
        let tree = db.open_tree("read-model").map_err(|source| Error::Sled {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Store { path, db, tree })
    }

    fn err(&self) -> impl Fn(sled::Error) -> Error + '_ {
        move |source| Error::Sled {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn get_msg<M: Message + Default>(&self, key: &[u8]) -> Result<Option<M>> {
        match self.tree.get(key).map_err(self.err())? {
            None => Ok(None),
            Some(v) => M::decode(&*v).map(Some).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(key).into_owned(),
                    source,
                })
            }),
        }
    }

    /// Next offset to apply, per partition.
    pub fn checkpoints(&self, partitions: u32) -> Result<Vec<u64>> {
        (0..partitions)
            .map(|p| {
                Ok(self
                    .tree
                    .get(keys::checkpoint(p))
                    .map_err(self.err())?
                    .map_or(0, |v| keys::read_u64(&v)))
            })
            .collect()
    }

    /// Value of a counter (`keys::COUNTER_*`).
    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self
            .tree
            .get(keys::counter(name))
            .map_err(self.err())?
            .map_or(0, |v| keys::read_u64(&v)))
    }

    /// Every counter whose name starts with `prefix`, by name.
    pub fn counters(&self, prefix: &str) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        let start = keys::counter(prefix);
        for kv in self.tree.scan_prefix(&start) {
            let (k, v) = kv.map_err(self.err())?;
            let name = String::from_utf8_lossy(&k[start.len() - prefix.len()..]).into_owned();
            out.insert(name, keys::read_u64(&v));
        }
        Ok(out)
    }

    pub fn citizen(&self, tenant: &str, id: &str) -> Result<Option<Citizen>> {
        self.get_msg(&keys::citizen(tenant, id))
    }

    /// The citizen an identifier (kind `phone` or `email`, normalised) belongs to.
    pub fn by_identifier(
        &self,
        tenant: &str,
        kind: &str,
        normalized: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .tree
            .get(keys::identifier(tenant, kind, normalized))
            .map_err(self.err())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The citizen a possibly merged citizen id stands for now.
    pub fn canonical(&self, tenant: &str, id: &str) -> Result<String> {
        Ok(fold::canonical(&ReadOnly(self), tenant, id)?)
    }

    /// The citizen and every citizen merged into it, transitively.
    pub fn members(&self, tenant: &str, canonical: &str) -> Result<Vec<String>> {
        let mut out = vec![canonical.to_string()];
        let mut i = 0;
        while i < out.len() && out.len() < 1024 {
            let prefix = keys::merge_members_prefix(tenant, &out[i]);
            for kv in self.tree.scan_prefix(&prefix) {
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
            .tree
            .get(keys::applied(tenant, event_id))
            .map_err(self.err())?
        else {
            return Ok(None);
        };
        if v.len() < 20 {
            return Ok(None);
        }
        let occurred = i64::from_be_bytes(v[12..20].try_into().unwrap());
        let citizen = String::from_utf8_lossy(&v[20..]).into_owned();
        self.get_msg(&keys::timeline_entry(tenant, &citizen, occurred, event_id))
    }

    /// The personal data of an applied contact (whole text, form fields, attachment names).
    pub fn contact_detail(&self, tenant: &str, event_id: &str) -> Result<Option<Personal>> {
        self.get_msg(&keys::contact_detail(tenant, event_id))
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
            for kv in self.tree.range(lo..hi).rev() {
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
        let more = found.len() > page_size;
        found.truncate(page_size);
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
            .tree
            .get(keys::courrier_by_event(tenant, event_id))
            .map_err(self.err())?
        {
            Some(chrono) => self.courrier(tenant, &String::from_utf8_lossy(&chrono)),
            None => Ok(None),
        }
    }

    /// Every letter of a commune, in chrono order.
    pub fn courriers(&self, tenant: &str) -> Result<Vec<CourrierState>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(keys::courrier_prefix(tenant)) {
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
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(keys::DEAD_LETTER).take(limit) {
            let (k, v) = kv.map_err(self.err())?;
            out.push(DeadLetter::decode(&*v).map_err(|source| {
                Error::Domain(contacthub_core::Error::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })
            })?);
        }
        Ok(out)
    }

    /// SHA-256 over every key and value, in order: equal digests, equal projections.
    pub fn digest(&self) -> Result<String> {
        let mut h = Sha256::new();
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(self.err())?;
            h.update((k.len() as u64).to_be_bytes());
            h.update(&k);
            h.update((v.len() as u64).to_be_bytes());
            h.update(&v);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Starts a batch of changes over the current state.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            overlay: BTreeMap::new(),
        }
    }

    /// Makes everything applied so far durable (sled also does so every 500 ms).
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(self.err())
    }
}

fn parse_token(t: &str) -> Option<(i64, String)> {
    let (us, id) = t.split_once(':')?;
    Some((us.parse().ok()?, id.to_string()))
}

/// Buffered changes, read back by later folds of the same batch, applied atomically.
pub struct Batch<'a> {
    store: &'a Store,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Kv for Batch<'_> {
    fn get(&self, key: &[u8]) -> contacthub_core::Result<Option<Vec<u8>>> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(v.clone());
        }
        self.store
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
        self.store.tree.apply_batch(b).map_err(self.store.err())
    }
}

/// Read-only view for pure functions of the core that take a [`Kv`].
struct ReadOnly<'a>(&'a Store);

impl Kv for ReadOnly<'_> {
    fn get(&self, key: &[u8]) -> contacthub_core::Result<Option<Vec<u8>>> {
        self.0
            .tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| contacthub_core::Error::Store(e.to_string()))
    }
    fn put(&mut self, _: Vec<u8>, _: Vec<u8>) {}
    fn remove(&mut self, _: Vec<u8>) {}
}
