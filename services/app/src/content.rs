//! Content-addressed storage of scans on local disk: `ROOT/sha256/ab/abcdef…`. Uploads go to
//! `ROOT/tmp` first and are renamed into place only once complete and checked, so a failed
//! upload leaves nothing behind.

use contacthub_core::pb::Attachment;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// Why an upload was refused.
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
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    pub fn open(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("sha256"))?;
        Ok(ContentStore { root })
    }

    /// Where the content with this hash lives.
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root
            .join("sha256")
            .join(&sha256[..2.min(sha256.len())])
            .join(sha256)
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
    pub fn put_document(
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
        u.finish(self)
    }

    /// Deletes the content with this hash (an erased person's document no record uses any
    /// more); `false` when there was none.
    pub fn remove(&self, sha256: &str) -> std::io::Result<bool> {
        match std::fs::remove_file(self.path(sha256)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores bytes in one go.
    pub fn put(&self, bytes: &[u8], limit: u64) -> Result<Attachment, UploadError> {
        let mut u = self.begin(limit)?;
        u.write(bytes)?;
        u.finish(self)
    }

    /// Number of stored contents and of pending uploads (for tests and status).
    pub fn counts(&self) -> (usize, usize) {
        let count = |p: PathBuf| -> usize {
            std::fs::read_dir(p).map_or(0, |rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            std::fs::read_dir(e.path()).map_or(0, |x| x.count())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        };
        (
            count(self.root.join("sha256")),
            count(self.root.join("tmp")),
        )
    }
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
        let sha: String = self
            .hasher
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Attachment {
            sha256: sha,
            media_type,
            size_bytes: self.size,
        })
    }

    /// Checks the content and moves it into place.
    pub fn finish(mut self, store: &ContentStore) -> Result<Attachment, UploadError> {
        let media_type = self.check()?;
        let file = self.file.take().expect("unfinished upload has its file");
        file.sync_all()?;
        drop(file);
        let sha: String = std::mem::take(&mut self.hasher)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let target = store.path(&sha);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if target.exists() {
            std::fs::remove_file(&self.path)?;
        } else {
            std::fs::rename(&self.path, &target)?;
        }
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

    #[test]
    fn scans_are_stored_by_hash_and_refusals_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let pdf = b"%PDF-1.4\n...".to_vec();
        let a = store.put(&pdf, 1000).unwrap();
        assert_eq!(a.media_type, "application/pdf");
        assert_eq!(std::fs::read(store.path(&a.sha256)).unwrap(), pdf);
        assert_eq!(
            store.put(&pdf, 1000).unwrap(),
            a,
            "same content, same place"
        );
        assert!(matches!(
            store.put(b"hello world", 1000),
            Err(UploadError::NotAScan)
        ));
        assert!(matches!(
            store.put(&[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0], 5),
            Err(UploadError::TooLarge { .. })
        ));
        assert_eq!(store.counts(), (1, 0));
    }
}
