//! Content-addressed storage of documents (scans, attachments, answer letters) by their
//! SHA-256: on local disk (`ROOT/sha256/ab/abcdef…`, the embedded default) or in S3-compatible
//! object storage every hub of a cluster shares (`sha256/ab/abcdef…` under the URL's prefix).
//! Uploads go to `ROOT/tmp` first, hashed as they come, and are put into place only once
//! complete and checked, so a failed upload leaves nothing behind; a document is stored before
//! the event that names it, and only documents no event names are ever collected, in two
//! steps (`App::collect_documents`): first moved to `trash/` (still readable there), then,
//! a grace period later, deleted — or put back if an event names it by then (an upload that
//! renewed the document while it was being moved).

use contacthub_core::pb::Attachment;
use futures::TryStreamExt;
use object_store::{path::Path as ObjectPath, ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
/// Kinds of scans accepted, by their first bytes.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Some("image/tiff")
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if head.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Some("image/png")
    } else {
        None
    }
}

/// Why an upload was refused, or the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("is not a PDF, TIFF, JPEG or PNG file")]
    NotAScan,
    #[error("is empty")]
    Empty,
    #[error("could not be stored: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not be stored in the object store: {0}")]
    Objects(#[from] object_store::Error),
    #[error("the object store {0}")]
    Config(String),
}

/// An error with the causes its message leaves out (an HTTP client's "error sending request"
/// hides the certificate its server was refused for).
fn causes(e: &dyn std::error::Error) -> String {
    let mut said = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !said.contains(&more) {
            said = format!("{said}: {more}");
        }
        cause = c.source();
    }
    said
}

/// How a hub reaches its object storage.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// The server's address when it is not AWS (`https://minio:9000`).
    pub endpoint: Option<String>,
    /// Plain HTTP to an endpoint that is not on this machine.
    pub allow_http: bool,
    /// The authority the server's certificate is checked against, when it is a private one
    /// (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

/// The content store: on disk, or in an object store the hubs share.
#[derive(Debug, Clone)]
pub struct ContentStore {
    /// Local folder: `tmp/` for uploads in progress, `sha256/` for the documents on disk.
    root: PathBuf,
    /// The shared object store, when documents live there.
    objects: Option<Objects>,
}

#[derive(Debug, Clone)]
struct Objects {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix`, as configured (for messages: no credentials in it).
    url: String,
}

/// The two places a document can be: in use, or in the trash on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Documents,
    Trash,
}

impl Area {
    fn dir(self) -> &'static str {
        match self {
            Area::Documents => "sha256",
            Area::Trash => "trash",
        }
    }
}

/// Where a document lives inside the store (on disk under the root, or as an object key).
fn location(area: Area, sha256: &str) -> String {
    format!("{}/{}/{sha256}", area.dir(), &sha256[..2.min(sha256.len())])
}

/// Whether `s` is a document's name in the store (64 hexadecimal digits).
fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ContentStore {
    /// A store on local disk under `root`.
    pub fn open(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("sha256"))?;
        Ok(ContentStore {
            root,
            objects: None,
        })
    }

    /// A store in S3-compatible object storage at `url` (`s3://bucket` or
    /// `s3://bucket/prefix`), uploads in progress under `root/tmp`. `transport.endpoint` is
    /// the server's address when it is not AWS (MinIO, Ceph, Garage, OVHcloud, Scaleway…);
    /// the credentials and region come from the usual `AWS_*` variables. Plain HTTP is
    /// allowed to a loopback endpoint, elsewhere only with `transport.allow_http` (never from
    /// `AWS_ALLOW_HTTP`: documents in clear are a choice made on the command line).
    pub async fn s3(
        root: impl AsRef<Path>,
        url: &str,
        transport: &Transport,
    ) -> Result<Self, UploadError> {
        Self::s3_with(root, url, transport, &[]).await
    }

    /// [`ContentStore::s3`] with settings that take precedence over the environment's, by
    /// their variable names (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`…).
    pub async fn s3_with(
        root: impl AsRef<Path>,
        url: &str,
        transport: &Transport,
        settings: &[(&str, String)],
    ) -> Result<Self, UploadError> {
        let rest = url.trim().strip_prefix("s3://").ok_or_else(|| {
            UploadError::Config(format!(
                "{url:?} is not an S3 address: give s3://bucket or s3://bucket/prefix"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.len() > 63 {
            return Err(UploadError::Config(format!(
                "{url:?} names no bucket: give s3://bucket or s3://bucket/prefix"
            )));
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            });
        let endpoint = transport
            .endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        let on_loopback = endpoint.is_some_and(loopback);
        if let Some(pem) = &transport.ca_pem {
            let ca = object_store::Certificate::from_pem(pem).map_err(|e| {
                UploadError::Config(format!(
                    "authority (--content-ca) is not a PEM certificate: {}",
                    causes(&e)
                ))
            })?;
            // The client's options replaced whole: the environment's client settings (proxy,
            // time-outs) applied again over them.
            builder = builder
                .with_client_options(object_store::ClientOptions::new().with_root_certificate(ca));
            for (name, value) in std::env::vars() {
                let Some(rest) = name.strip_prefix("AWS_") else {
                    continue;
                };
                if let Ok(key @ object_store::aws::AmazonS3ConfigKey::Client(_)) =
                    rest.to_ascii_lowercase().parse()
                {
                    builder = builder.with_config(key, value);
                }
            }
        }
        builder = builder.with_allow_http(on_loopback || transport.allow_http);
        for (name, value) in settings {
            let key = name
                .to_ascii_lowercase()
                .parse::<object_store::aws::AmazonS3ConfigKey>()
                .map_err(|_| UploadError::Config(format!("has no setting {name}")))?;
            builder = builder.with_config(key, value);
        }
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
            let clear = endpoint.starts_with("http://") && !on_loopback;
            if clear && !transport.allow_http {
                return Err(UploadError::Config(format!(
                    "{url:?} is reached in plain HTTP at {endpoint}: give an https:// endpoint, or --content-allow-http inside a network nobody else reaches"
                )));
            }
            if clear {
                tracing::warn!(
                    endpoint,
                    "documents travel in clear to the object storage (--content-allow-http): only inside a network nobody else reaches"
                );
            }
        }
        let store: Arc<dyn ObjectStore> =
            Arc::new(builder.build().map_err(|e| {
                UploadError::Config(format!("{url:?} cannot be used: {}", causes(&e)))
            })?);
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("tmp"))?;
        let s = ContentStore {
            root,
            objects: Some(Objects {
                store,
                url: format!("s3://{}", rest.trim_end_matches('/')),
            }),
        };
        // Reachable, the bucket there and the credentials good: said at start, not at the
        // first scan.
        let probe = ObjectPath::from("sha256");
        s.objects
            .as_ref()
            .expect("just set")
            .store
            .list_with_delimiter(Some(&probe))
            .await
            .map_err(|e| UploadError::Config(format!("{url:?} cannot be read: {}", causes(&e))))?;
        Ok(s)
    }

    /// Where the documents are, for messages: a folder or an `s3://` address.
    pub fn describe(&self) -> String {
        match &self.objects {
            Some(o) => o.url.clone(),
            None => self.root.join("sha256").display().to_string(),
        }
    }

    /// Whether the documents are shared by every hub (object storage) rather than on this
    /// hub's disk.
    pub fn shared(&self) -> bool {
        self.objects.is_some()
    }

    fn file(&self, area: Area, sha256: &str) -> PathBuf {
        self.root.join(location(area, sha256))
    }

    /// The document with this hash (from the trash if it is on its way out); `None` when
    /// the store has none.
    pub async fn read(&self, sha256: &str) -> Result<Option<Vec<u8>>, UploadError> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        for area in [Area::Documents, Area::Trash] {
            if let Some(bytes) = self.read_in(area, sha256).await? {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    async fn read_in(&self, area: Area, sha256: &str) -> Result<Option<Vec<u8>>, UploadError> {
        match &self.objects {
            Some(o) => match o.store.get(&ObjectPath::from(location(area, sha256))).await {
                Ok(got) => Ok(Some(got.bytes().await?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            },
            None => match tokio::fs::read(self.file(area, sha256)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Starts an upload limited to `limit` bytes.
    pub fn begin(&self, limit: u64) -> std::io::Result<Upload> {
        let path = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        Ok(Upload {
            file: Some(File::create(&path)?),
            path,
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            limit,
            media_type: None,
        })
    }

    /// Stores a document of any type (e-mail and form attachments) in one go: `media_type` as
    /// declared, else sniffed, else `application/octet-stream`.
    pub async fn put_document(
        &self,
        bytes: &[u8],
        media_type: &str,
        limit: u64,
    ) -> Result<Attachment, UploadError> {
        let mut u = self.begin(limit)?;
        let declared = media_type.trim();
        u.media_type = Some(if declared.is_empty() {
            sniff(bytes)
                .unwrap_or("application/octet-stream")
                .to_string()
        } else {
            declared.to_ascii_lowercase()
        });
        u.write(bytes)?;
        u.finish(self).await
    }

    /// Deletes the document with this hash at once, in use or in the trash; `false` when
    /// there was none. (Collection goes through the trash instead: [`ContentStore::discard`].)
    pub async fn remove(&self, sha256: &str) -> Result<bool, UploadError> {
        if !is_sha256(sha256) {
            return Ok(false);
        }
        let documents = self.delete(Area::Documents, sha256).await?;
        let trash = self.delete(Area::Trash, sha256).await?;
        Ok(documents || trash)
    }

    async fn delete(&self, area: Area, sha256: &str) -> Result<bool, UploadError> {
        match &self.objects {
            Some(o) => {
                let at = ObjectPath::from(location(area, sha256));
                match o.store.head(&at).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => return Ok(false),
                    Err(e) => return Err(e.into()),
                }
                o.store.delete(&at).await?;
                Ok(true)
            }
            None => match std::fs::remove_file(self.file(area, sha256)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// Stores bytes in one go.
    pub async fn put(&self, bytes: &[u8], limit: u64) -> Result<Attachment, UploadError> {
        let mut u = self.begin(limit)?;
        u.write(bytes)?;
        u.finish(self).await
    }

    /// Deletes the uploads left in `tmp/` since before `cutoff` (a process killed
    /// mid-upload); how many. Only collection calls it: an upload in progress is younger.
    pub fn sweep_uploads(&self, cutoff: SystemTime) -> usize {
        let mut swept = 0;
        if let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) {
            for e in rd.flatten() {
                if modified(&e.path()).is_some_and(|m| m < cutoff)
                    && std::fs::remove_file(e.path()).is_ok()
                {
                    swept += 1;
                }
            }
        }
        swept
    }

    /// The documents last stored before `cutoff` (storing a document again renews it), by
    /// hash.
    pub async fn stored_before(&self, cutoff: SystemTime) -> Result<BTreeSet<String>, UploadError> {
        self.listed(Area::Documents, Some(cutoff)).await
    }

    /// The documents put in the trash before `cutoff`, by hash.
    pub async fn trashed_before(
        &self,
        cutoff: SystemTime,
    ) -> Result<BTreeSet<String>, UploadError> {
        self.listed(Area::Trash, Some(cutoff)).await
    }

    /// The names in `area` last written before `cutoff` (all of them without one). Anything
    /// else found there (a stray file, a folder's name that is no hash) is left alone.
    async fn listed(
        &self,
        area: Area,
        cutoff: Option<SystemTime>,
    ) -> Result<BTreeSet<String>, UploadError> {
        let before = |when: SystemTime| cutoff.is_none_or(|c| when < c);
        let mut found = BTreeSet::new();
        match &self.objects {
            Some(o) => {
                let mut list = o.store.list(Some(&ObjectPath::from(area.dir())));
                while let Some(meta) = list.try_next().await? {
                    match meta.location.filename() {
                        Some(name) if is_sha256(name) && before(meta.last_modified.into()) => {
                            found.insert(name.to_string());
                        }
                        _ => {}
                    }
                }
            }
            None => {
                let top = match std::fs::read_dir(self.root.join(area.dir())) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
                    Err(e) => return Err(e.into()),
                };
                for dir in top.flatten() {
                    if !dir.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    for e in std::fs::read_dir(dir.path())?.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if is_sha256(&name) && modified(&e.path()).is_some_and(&before) {
                            found.insert(name);
                        }
                    }
                }
            }
        }
        Ok(found)
    }

    /// Moves `sha256` to the trash unless it was stored again since `cutoff` (`None`: in
    /// any case); whether it was moved. Still readable there; [`ContentStore::purge`] deletes
    /// it, [`ContentStore::restore`] puts it back.
    pub async fn discard(
        &self,
        sha256: &str,
        cutoff: Option<SystemTime>,
    ) -> Result<bool, UploadError> {
        if !is_sha256(sha256) {
            return Ok(false);
        }
        let Some(last) = self.last_written(Area::Documents, sha256).await? else {
            return Ok(false);
        };
        if cutoff.is_some_and(|c| last >= c) {
            return Ok(false);
        }
        self.shift(sha256, Area::Documents, Area::Trash).await?;
        Ok(true)
    }

    /// Deletes `sha256` for good (an erased person's document), in use and in the trash,
    /// unless it was written there since `since` (someone else's upload of the same bytes, or
    /// a collection's move racing that upload: kept, for collection to decide); whether
    /// anything was deleted. Object stores keep times to the second, on their own clock:
    /// give `since` with a margin.
    pub async fn erase(&self, sha256: &str, since: SystemTime) -> Result<bool, UploadError> {
        if !is_sha256(sha256) {
            return Ok(false);
        }
        let mut deleted = false;
        // Documents first: a move to the trash racing this lands where it is looked at next.
        for area in [Area::Documents, Area::Trash] {
            if let Some(last) = self.last_written(area, sha256).await? {
                if last < since {
                    deleted |= self.delete(area, sha256).await?;
                }
            }
        }
        Ok(deleted)
    }

    /// Puts `sha256` back from the trash (an event names it after all); whether it was there.
    pub async fn restore(&self, sha256: &str) -> Result<bool, UploadError> {
        if !is_sha256(sha256) || self.last_written(Area::Trash, sha256).await?.is_none() {
            return Ok(false);
        }
        self.shift(sha256, Area::Trash, Area::Documents).await?;
        Ok(true)
    }

    /// Deletes `sha256` from the trash for good; whether it was there.
    pub async fn purge(&self, sha256: &str) -> Result<bool, UploadError> {
        if !is_sha256(sha256) {
            return Ok(false);
        }
        self.delete(Area::Trash, sha256).await
    }

    /// When `sha256` was last written in `area`; `None` when it is not there.
    async fn last_written(
        &self,
        area: Area,
        sha256: &str,
    ) -> Result<Option<SystemTime>, UploadError> {
        match &self.objects {
            Some(o) => match o
                .store
                .head(&ObjectPath::from(location(area, sha256)))
                .await
            {
                Ok(meta) => Ok(Some(SystemTime::from(meta.last_modified))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            },
            None => Ok(modified(&self.file(area, sha256))),
        }
    }

    /// Moves a document from one area to the other, written now there (so the trash's time
    /// is when it went in). A copy already at the target (the same bytes) stays.
    async fn shift(&self, sha256: &str, from: Area, to: Area) -> Result<(), UploadError> {
        match &self.objects {
            Some(o) => {
                let (src, dst) = (
                    ObjectPath::from(location(from, sha256)),
                    ObjectPath::from(location(to, sha256)),
                );
                o.store.copy(&src, &dst).await?;
                o.store.delete(&src).await?;
            }
            None => {
                let (src, dst) = (self.file(from, sha256), self.file(to, sha256));
                if let Some(dir) = dst.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                if dst.exists() {
                    std::fs::remove_file(&src)?;
                } else {
                    std::fs::rename(&src, &dst)?;
                }
                File::options()
                    .write(true)
                    .open(&dst)?
                    .set_modified(SystemTime::now())?;
            }
        }
        Ok(())
    }

    /// Number of stored documents (in the trash included) and of pending uploads (for tests
    /// and status).
    pub async fn counts(&self) -> Result<(usize, usize), UploadError> {
        let pending = std::fs::read_dir(self.root.join("tmp")).map_or(0, |rd| rd.count());
        let mut stored = self.listed(Area::Documents, None).await?;
        stored.extend(self.listed(Area::Trash, None).await?);
        Ok((stored.len(), pending))
    }

    /// Copies every document of `self` (in the trash included: collection decides) into
    /// `to`, what `migrate` does with the log; the number copied and the number `to` already
    /// had.
    pub async fn copy_into(&self, to: &ContentStore) -> Result<(usize, usize), UploadError> {
        let mut all = self.listed(Area::Documents, None).await?;
        all.extend(self.listed(Area::Trash, None).await?);
        let (mut copied, mut already) = (0, 0);
        for sha in all {
            if to.has(&sha).await? {
                already += 1;
                continue;
            }
            let Some(bytes) = self.read(&sha).await? else {
                continue;
            };
            if hex(Sha256::digest(&bytes).as_slice()) != sha {
                return Err(UploadError::Config(format!(
                    "cannot copy: the document {sha} in {} does not match its hash",
                    self.describe()
                )));
            }
            to.place(&sha, None, bytes).await?;
            copied += 1;
        }
        Ok((copied, already))
    }

    /// Whether the store has `sha256`, in use or in the trash.
    async fn has(&self, sha256: &str) -> Result<bool, UploadError> {
        if !is_sha256(sha256) {
            return Ok(false);
        }
        for area in [Area::Documents, Area::Trash] {
            if self.last_written(area, sha256).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Puts a checked document in place: from its temporary file on disk (renamed, or
    /// touched when it is there already, so collection sees it as just stored), or as an
    /// object (stored again if there: the same bytes, renewed).
    async fn place(
        &self,
        sha256: &str,
        temporary: Option<&Path>,
        bytes: Vec<u8>,
    ) -> Result<(), UploadError> {
        match &self.objects {
            Some(o) => {
                let bytes = match temporary {
                    Some(t) if bytes.is_empty() => tokio::fs::read(t).await?,
                    _ => bytes,
                };
                o.store
                    .put(
                        &ObjectPath::from(location(Area::Documents, sha256)),
                        PutPayload::from(bytes),
                    )
                    .await?;
            }
            None => {
                let target = self.file(Area::Documents, sha256);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let renewed = target.exists()
                    && File::options()
                        .write(true)
                        .open(&target)
                        .and_then(|f| f.set_modified(SystemTime::now()))
                        .is_ok();
                if renewed {
                    return Ok(());
                }
                // Not there, or moved to the trash meanwhile: placed anew.
                if let Some(t) = temporary {
                    std::fs::rename(t, &target)?;
                } else {
                    let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
                    std::fs::write(&tmp, &bytes)?;
                    File::open(&tmp)?.sync_all()?;
                    std::fs::rename(&tmp, &target)?;
                }
            }
        }
        Ok(())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an endpoint is on this machine (plain HTTP allowed there).
fn loopback(endpoint: &str) -> bool {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint);
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An upload in progress; dropped unfinished, it deletes its temporary file.
pub struct Upload {
    file: Option<File>,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    limit: u64,
    /// Set for documents of any type; `None` for scans, which must sniff as one.
    media_type: Option<String>,
}

impl Upload {
    pub fn write(&mut self, data: &[u8]) -> Result<(), UploadError> {
        self.size += data.len() as u64;
        if self.size > self.limit {
            return Err(UploadError::TooLarge { limit: self.limit });
        }
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            if self.media_type.is_none() && self.head.len() == 8 && sniff(&self.head).is_none() {
                return Err(UploadError::NotAScan);
            }
        }
        self.hasher.update(data);
        if let Some(f) = self.file.as_mut() {
            f.write_all(data)?;
        }
        Ok(())
    }

    /// Whether the upload is a complete, accepted scan; its media type.
    pub fn check(&self) -> Result<String, UploadError> {
        if self.size == 0 {
            return Err(UploadError::Empty);
        }
        match &self.media_type {
            Some(m) => Ok(m.clone()),
            None => sniff(&self.head)
                .map(str::to_string)
                .ok_or(UploadError::NotAScan),
        }
    }

    /// What the upload will be once finished (hash, type, size), without keeping it.
    pub fn peek(&self) -> Result<Attachment, UploadError> {
        let media_type = self.check()?;
        let sha = hex(self.hasher.clone().finalize().as_slice());
        Ok(Attachment {
            sha256: sha,
            media_type,
            size_bytes: self.size,
        })
    }

    /// Checks the content and puts it into place (on disk or in the object store); the
    /// temporary file goes once this is done or dropped.
    pub async fn finish(mut self, store: &ContentStore) -> Result<Attachment, UploadError> {
        let media_type = self.check()?;
        let file = self.file.take().expect("unfinished upload has its file");
        file.sync_all()?;
        drop(file);
        let sha = hex(std::mem::take(&mut self.hasher).finalize().as_slice());
        store.place(&sha, Some(&self.path), Vec::new()).await?;
        Ok(Attachment {
            sha256: sha,
            media_type,
            size_bytes: self.size,
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.is_some() || self.path.exists() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause the message already says is not said twice; one it hides is added.
    #[test]
    fn an_error_says_the_causes_its_message_hides() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let certificate = E("invalid peer certificate: UnknownIssuer", None);
        let sending = E("error sending request", Some(Box::new(certificate)));
        let generic = E(
            "Generic S3 error: error sending request",
            Some(Box::new(sending)),
        );
        assert_eq!(
            causes(&generic),
            "Generic S3 error: error sending request: invalid peer certificate: UnknownIssuer"
        );
    }

    #[tokio::test]
    async fn scans_are_stored_by_hash_and_refusals_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let pdf = b"%PDF-1.4\n...".to_vec();
        let a = store.put(&pdf, 1000).await.unwrap();
        assert_eq!(a.media_type, "application/pdf");
        assert_eq!(store.read(&a.sha256).await.unwrap().unwrap(), pdf);
        assert_eq!(
            store.put(&pdf, 1000).await.unwrap(),
            a,
            "same content, same place"
        );
        assert!(matches!(
            store.put(b"hello world", 1000).await,
            Err(UploadError::NotAScan)
        ));
        assert!(matches!(
            store
                .put(&[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0], 5)
                .await,
            Err(UploadError::TooLarge { .. })
        ));
        assert_eq!(store.counts().await.unwrap(), (1, 0));
        assert_eq!(store.read("../../etc/passwd").await.unwrap(), None);
    }

    #[tokio::test]
    async fn listing_skips_strays_and_leaves_uploads_to_collection() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let a = store.put(b"%PDF-1.4 a", 1000).await.unwrap();
        // A stray file where folders are expected, a name that is no hash: left alone.
        std::fs::write(dir.path().join("sha256/stray.txt"), b"x").unwrap();
        std::fs::write(
            dir.path().join("sha256").join(&a.sha256[..2]).join("notes"),
            b"x",
        )
        .unwrap();
        let later = SystemTime::now() + Duration::from_secs(3600);
        let listed = store.stored_before(later).await.unwrap();
        assert_eq!(
            listed.into_iter().collect::<Vec<_>>(),
            vec![a.sha256.clone()]
        );
        // An upload in progress survives listings, counts and copies; only a sweep takes it.
        let mut upload = store.begin(1000).unwrap();
        upload.write(b"%PDF-1.4 in progress").unwrap();
        assert_eq!(store.counts().await.unwrap(), (1, 1));
        let other = ContentStore::open(dir.path().join("other")).unwrap();
        assert_eq!(store.copy_into(&other).await.unwrap(), (1, 0));
        assert_eq!(store.counts().await.unwrap(), (1, 1));
        assert_eq!(
            store.sweep_uploads(SystemTime::now() - Duration::from_secs(60)),
            0
        );
        assert_eq!(store.sweep_uploads(later), 1);
        assert!(matches!(
            upload.finish(&store).await,
            Err(UploadError::Io(_))
        ));
        // Names that are no hash are never looked up.
        assert!(!store.discard("../x", None).await.unwrap());
        assert!(!store.erase("../x", SystemTime::now()).await.unwrap());
        assert!(!store.restore("../x").await.unwrap());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(loopback("http://127.0.0.1:9000"));
        assert!(loopback("http://localhost:9000/"));
        assert!(loopback("http://[::1]:9000"));
        assert!(!loopback("http://minio:9000"));
        assert!(!loopback("https://s3.fr-par.scw.cloud"));
    }
}
