//! The keyring: one key per data subject, wrapped by a master key kept outside the data
//! folder; destroying a key is how a person's data is erased (crypto-shredding).
//!
//! [`FileKeyring`] (the embedded default) keeps fixed-size slots in `DATA/keyring/keys`. A
//! destroyed key's slot is overwritten in place and synced, so its bytes do not survive in
//! the file; the slot keeps the key id (never personal data) and says « destroyed ».
//! [`crate::kafka::KafkaKeyring`] shares one keyring between the hubs of a cluster.

use crate::Error;
use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use contacthub_core::seal::{Key, Keys, Lookup, NONCE_LEN};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// The master key: 32 bytes, written as 64 hexadecimal digits in a file (or an environment
/// variable) outside the data folder. It wraps every key of the keyring: without it, the
/// keyring is noise.
#[derive(Clone)]
pub struct MasterKey(Key);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Reads 64 hexadecimal digits (surrounding white space allowed).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let hex = text.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Master(
                "64 hexadecimal digits expected (`openssl rand -hex 32`)".into(),
            ));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(Self(key))
    }

    /// Reads the master key from `path`, which must not lie inside `data` (a copy of the data
    /// folder must not carry the key that opens it).
    pub fn load(path: &Path, data: &Path) -> Result<Self, Error> {
        let inside = match (path.canonicalize(), data.canonicalize()) {
            (Ok(p), Ok(d)) => p.starts_with(d),
            _ => false,
        };
        if inside {
            return Err(Error::Master(format!(
                "{} is inside the data folder {}: keep the master key elsewhere",
                path.display(),
                data.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Master(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Master(format!("{}: {e}", path.display())))
    }

    /// Creates a new master key file at `path` (mode 0600), unless one is there already
    /// (another process made it first): then that one is read. Never overwrites a key.
    pub fn create_or_load(path: &Path, data: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        // Written whole beside it, then linked into place: a reader never sees half a key.
        let tmp = path.with_extension(format!("new.{}", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io)?;
        f.write_all(format!("{hex}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
                    let _ = dir.sync_all();
                }
                Self::load(path, data)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path, data),
            Err(e) => Err(io(e)),
        }
    }

    fn derive(&self, label: &str) -> Key {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The key of the events' content fingerprints (HMAC): the same on every hub of a cluster,
    /// and without it a stored fingerprint cannot be tested against a guess.
    pub fn fingerprint_key(&self) -> Key {
        self.derive("contacthub fingerprint v1")
    }

    fn wrapping(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.derive("contacthub keyring wrapping v1")).into())
    }

    /// `key` wrapped for storage: nonce (24 bytes) then ciphertext (48 bytes).
    pub fn wrap(&self, id: &str, key: &Key) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .wrapping()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: key,
                    aad: id.as_bytes(),
                },
            )
            .expect("32 bytes encrypt");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The key `wrapped` holds, if this master key wrapped it for `id`.
    pub fn unwrap(&self, id: &str, wrapped: &[u8]) -> Option<Key> {
        if wrapped.len() != WRAPPED {
            return None;
        }
        let clear = self
            .wrapping()
            .decrypt(
                XNonce::from_slice(&wrapped[..NONCE_LEN]),
                Payload {
                    msg: &wrapped[NONCE_LEN..],
                    aad: id.as_bytes(),
                },
            )
            .ok()?;
        clear.try_into().ok()
    }
}

/// A new random key.
pub fn new_key() -> Key {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Bytes of a wrapped key: nonce, key, tag.
pub const WRAPPED: usize = NONCE_LEN + 32 + 16;
/// Longest key id.
pub const MAX_ID: usize = 160;

/// The keys of the data subjects, shared by the writers (which seal) and the projector (which
/// opens).
#[async_trait]
pub trait Keyring: Keys + Send + Sync + 'static {
    /// The keys `ids`, each created where it does not exist yet; durable (and, on Kafka,
    /// visible to every hub) before this returns. A destroyed key is never created again:
    /// its id answers `None`.
    async fn keys_for(&self, ids: &[String]) -> Result<Vec<Option<Key>>, Error>;

    /// Destroys the keys `ids` for ever; returns how many were live.
    async fn destroy(&self, ids: &[String]) -> Result<usize, Error>;

    /// Learns every key created or destroyed elsewhere up to now (Kafka); after it, a key
    /// this keyring does not know was never created or is gone.
    async fn catch_up(&self) -> Result<(), Error>;

    /// What this writer adds to the key ids it makes (`@<hub>` on Kafka, where each hub makes
    /// its own keys; nothing on the embedded log).
    fn suffix(&self) -> &str {
        ""
    }

    /// The key of the events' content fingerprints ([`MasterKey::fingerprint_key`]).
    fn fingerprint_key(&self) -> Key;
}

/// After a catch-up: a key still unknown is gone (a compacted-away destruction).
#[derive(Debug, Clone, Copy)]
pub struct Settled<'a, K: ?Sized>(pub &'a K);

impl<K: Keys + ?Sized> Keys for Settled<'_, K> {
    fn key(&self, id: &str) -> Lookup {
        match self.0.key(id) {
            Lookup::Unknown => Lookup::Destroyed,
            known => known,
        }
    }
}

/// One slot of the keyring file:
/// state (1: live, 2: destroyed), id length, id (160 bytes), wrapped key (72), CRC-32 of the
/// bytes before it (4), padding to 256.
const SLOT: usize = 256;
const LIVE: u8 = 1;
const DESTROYED: u8 = 2;

#[derive(Debug, Clone, Copy)]
enum Held {
    Live(Key),
    Destroyed,
}

struct FileState {
    file: File,
    slots: u64,
    index: HashMap<String, (u64, Held)>,
}

/// The embedded keyring: `DATA/keyring/keys`.
pub struct FileKeyring {
    path: PathBuf,
    master: MasterKey,
    state: Mutex<FileState>,
    /// Lock-free-ish reads for the projector: a copy of the index's answers.
    read: RwLock<HashMap<String, Held>>,
}

impl std::fmt::Debug for FileKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyring")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn encode_slot(state: u8, id: &str, wrapped: &[u8]) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[0] = state;
    slot[1] = id.len() as u8;
    slot[2..2 + id.len()].copy_from_slice(id.as_bytes());
    let w = 2 + MAX_ID;
    slot[w..w + wrapped.len()].copy_from_slice(wrapped);
    let crc = crc32fast::hash(&slot[..w + WRAPPED]);
    slot[w + WRAPPED..w + WRAPPED + 4].copy_from_slice(&crc.to_le_bytes());
    slot
}

impl FileKeyring {
    /// Opens (or creates) the keyring in `dir`. A torn last slot (a crash while a key was
    /// being created, before any event used it) is ignored and written over by the next key
    /// (never cut here: a replay may open the keyring of a hub that is writing it); any other
    /// damage is an error.
    pub fn open(dir: &Path, master: MasterKey) -> Result<Self, Error> {
        let path = dir.join("keys");
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let whole = bytes.len() / SLOT;
        let mut index = HashMap::new();
        let mut slots = whole as u64;
        for n in 0..whole {
            let slot = &bytes[n * SLOT..(n + 1) * SLOT];
            let w = 2 + MAX_ID;
            let crc = u32::from_le_bytes(slot[w + WRAPPED..w + WRAPPED + 4].try_into().unwrap());
            let corrupt = |reason: &str| Error::KeyringCorrupt {
                path: path.display().to_string(),
                slot: n as u64,
                reason: reason.into(),
            };
            if crc != crc32fast::hash(&slot[..w + WRAPPED]) {
                if n + 1 == whole {
                    // Torn while created: no event was sealed with it (creation is synced
                    // before the events are appended).
                    slots = n as u64;
                    break;
                }
                return Err(corrupt("checksum mismatch"));
            }
            let len = slot[1] as usize;
            let id = std::str::from_utf8(&slot[2..2 + len.min(MAX_ID)])
                .map_err(|_| corrupt("key id is not UTF-8"))?
                .to_string();
            let held = match slot[0] {
                LIVE => Held::Live(
                    master
                        .unwrap(&id, &slot[w..w + WRAPPED])
                        .ok_or_else(|| corrupt("does not open with this master key (another hub's keyring, or the wrong master key?)"))?,
                ),
                DESTROYED => Held::Destroyed,
                _ => return Err(corrupt("unknown slot state")),
            };
            index.insert(id, (n as u64, held));
        }
        let read = index.iter().map(|(k, (_, h))| (k.clone(), *h)).collect();
        Ok(Self {
            path,
            master,
            state: Mutex::new(FileState { file, slots, index }),
            read: RwLock::new(read),
        })
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Every key id with its key (`None`: destroyed), for a copy to another keyring.
    pub fn entries(&self) -> Vec<(String, Option<Key>)> {
        let read = self.read.read().expect("keyring index");
        let mut all: Vec<(String, Option<Key>)> = read
            .iter()
            .map(|(id, h)| {
                let key = match h {
                    Held::Live(k) => Some(*k),
                    Held::Destroyed => None,
                };
                (id.clone(), key)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// How many keys are live and destroyed.
    pub fn counts(&self) -> (usize, usize) {
        let read = self.read.read().expect("keyring index");
        let live = read.values().filter(|h| matches!(h, Held::Live(_))).count();
        (live, read.len() - live)
    }
}

impl Keys for FileKeyring {
    fn key(&self, id: &str) -> Lookup {
        match self.read.read().expect("keyring index").get(id) {
            Some(Held::Live(k)) => Lookup::Live(*k),
            Some(Held::Destroyed) => Lookup::Destroyed,
            None => Lookup::Unknown,
        }
    }
}

#[async_trait]
impl Keyring for FileKeyring {
    fn fingerprint_key(&self) -> Key {
        self.master.fingerprint_key()
    }

    async fn keys_for(&self, ids: &[String]) -> Result<Vec<Option<Key>>, Error> {
        let mut state = self.state.lock().expect("keyring");
        let mut out = Vec::with_capacity(ids.len());
        let mut new = Vec::new();
        for id in ids {
            if id.len() > MAX_ID {
                return Err(Error::KeyIdTooLong(id.len()));
            }
            let known = state.index.get(id).map(|(_, h)| *h).or_else(|| {
                new.iter()
                    .find(|(n, _): &&(String, Key)| n == id)
                    .map(|(_, k)| Held::Live(*k))
            });
            out.push(match known {
                Some(Held::Live(k)) => Some(k),
                Some(Held::Destroyed) => None,
                None => {
                    let key = new_key();
                    new.push((id.clone(), key));
                    Some(key)
                }
            });
        }
        if new.is_empty() {
            return Ok(out);
        }
        let mut bytes = Vec::with_capacity(new.len() * SLOT);
        for (id, key) in &new {
            bytes.extend_from_slice(&encode_slot(LIVE, id, &self.master.wrap(id, key)));
        }
        let at = state.slots * SLOT as u64;
        state
            .file
            .seek(SeekFrom::Start(at))
            .map_err(|e| self.io(e))?;
        state.file.write_all(&bytes).map_err(|e| self.io(e))?;
        state.file.sync_data().map_err(|e| self.io(e))?;
        let mut read = self.read.write().expect("keyring index");
        for (id, key) in new {
            let n = state.slots;
            state.slots += 1;
            state.index.insert(id.clone(), (n, Held::Live(key)));
            read.insert(id, Held::Live(key));
        }
        Ok(out)
    }

    async fn destroy(&self, ids: &[String]) -> Result<usize, Error> {
        let mut state = self.state.lock().expect("keyring");
        let mut live = 0;
        for id in ids {
            if id.len() > MAX_ID {
                return Err(Error::KeyIdTooLong(id.len()));
            }
            let slot = match state.index.get(id) {
                Some((_, Held::Destroyed)) => continue,
                Some((n, Held::Live(_))) => {
                    live += 1;
                    *n
                }
                None => {
                    // Never created: record it destroyed, so it is never created afterwards.
                    let n = state.slots;
                    state.slots += 1;
                    n
                }
            };
            let bytes = encode_slot(DESTROYED, id, &[0u8; WRAPPED]);
            state
                .file
                .seek(SeekFrom::Start(slot * SLOT as u64))
                .map_err(|e| self.io(e))?;
            state.file.write_all(&bytes).map_err(|e| self.io(e))?;
            state.index.insert(id.clone(), (slot, Held::Destroyed));
        }
        state.file.sync_data().map_err(|e| self.io(e))?;
        let mut read = self.read.write().expect("keyring index");
        for id in ids {
            read.insert(id.clone(), Held::Destroyed);
        }
        Ok(live)
    }

    async fn catch_up(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// A shared handle.
pub type SharedKeyring = Arc<dyn Keyring>;

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::parse(&"ab".repeat(32)).unwrap()
    }

    #[tokio::test]
    async fn keys_survive_a_reopen_and_a_destroyed_key_leaves_no_byte_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let ring = FileKeyring::open(dir.path(), master()).unwrap();
        let ids = vec!["c/A".to_string(), "i/00ff".to_string()];
        let keys = ring.keys_for(&ids).await.unwrap();
        assert_eq!(
            ring.keys_for(&ids).await.unwrap(),
            keys,
            "same keys asked again"
        );
        drop(ring);
        let ring = FileKeyring::open(dir.path(), master()).unwrap();
        assert_eq!(ring.key("c/A"), Lookup::Live(keys[0].unwrap()));
        let before = std::fs::read(dir.path().join("keys")).unwrap();
        assert_eq!(ring.destroy(&["c/A".to_string()]).await.unwrap(), 1);
        assert_eq!(ring.key("c/A"), Lookup::Destroyed);
        assert_eq!(ring.keys_for(&ids[..1]).await.unwrap(), vec![None]);
        let after = std::fs::read(dir.path().join("keys")).unwrap();
        assert_eq!(before.len(), after.len(), "destroyed in place");
        // The wrapped key's bytes are gone from the file (a wrapped key is random: any 16 of
        // its bytes found again would be the key surviving).
        let old = &before[2 + MAX_ID..2 + MAX_ID + WRAPPED];
        assert!(!after.windows(16).any(|w| old.windows(16).any(|o| o == w)));
        drop(ring);
        let ring = FileKeyring::open(dir.path(), master()).unwrap();
        assert_eq!(ring.key("c/A"), Lookup::Destroyed);
        assert_eq!(ring.key("i/00ff"), Lookup::Live(keys[1].unwrap()));
        assert_eq!(ring.key("c/B"), Lookup::Unknown);
        assert_eq!(ring.counts(), (1, 1));
    }

    #[tokio::test]
    async fn a_torn_last_slot_is_cut_and_another_master_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ring = FileKeyring::open(dir.path(), master()).unwrap();
        ring.keys_for(&["c/A".to_string(), "c/B".to_string()])
            .await
            .unwrap();
        drop(ring);
        let path = dir.path().join("keys");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(SLOT + 100);
        std::fs::write(&path, &bytes).unwrap();
        let ring = FileKeyring::open(dir.path(), master()).unwrap();
        assert!(matches!(ring.key("c/A"), Lookup::Live(_)));
        assert_eq!(ring.key("c/B"), Lookup::Unknown);
        // The next key is written over the torn slot.
        let c = ring.keys_for(&["c/C".to_string()]).await.unwrap()[0].unwrap();
        drop(ring);
        let ring = FileKeyring::open(dir.path(), master()).unwrap();
        assert_eq!(ring.key("c/C"), Lookup::Live(c));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * SLOT as u64);
        drop(ring);
        let other = MasterKey::parse(&"cd".repeat(32)).unwrap();
        let err = FileKeyring::open(dir.path(), other).unwrap_err();
        assert!(err.to_string().contains("master key"), "{err}");
    }

    #[test]
    fn a_master_key_must_be_64_hex_digits_outside_the_data_folder() {
        assert!(MasterKey::parse("abc").is_err());
        let data = tempfile::tempdir().unwrap();
        let inside = data.path().join("master.key");
        let err = MasterKey::create_or_load(&inside, data.path()).unwrap_err();
        assert!(err.to_string().contains("inside the data folder"), "{err}");
        let outside = tempfile::tempdir().unwrap();
        let path = outside.path().join("master.key");
        let created = MasterKey::create_or_load(&path, data.path()).unwrap();
        let loaded = MasterKey::load(&path, data.path()).unwrap();
        assert_eq!(created.0, loaded.0);
        let again = MasterKey::create_or_load(&path, data.path()).unwrap();
        assert_eq!(again.0, created.0, "never overwritten");
    }
}
