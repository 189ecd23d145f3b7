//! The projector: reads the event log and folds it into the read model in sled; and the read
//! side of that model, used by the API.
//!
//! Layout:
//! - [`store`]: the sled read model, its queries and the batch that applies a group of events.
//! - [`runner`]: the loop that reads the log, applies batches and publishes what changed.
//! - [`replay`]: the whole log folded into a new read model, written in key order.
//!
//! Invariant: the live projector writes the checkpoint (next offset per partition) in the
//! same atomic sled batch as the state those offsets produced, so a crash at any instant
//! loses or doubles nothing: the restarted projector resumes exactly after the last applied
//! batch. A replay is not atomic; it marks the read model unfinished until its last write is
//! on disk, and an unfinished one is never served.

pub mod replay;
pub mod runner;
pub mod store;

pub use runner::{Applied, NotVisible, Projector, ProjectorHandle};
pub use store::{Store, TimelinePage, TimelineQuery};

/// Errors of the projector and read model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read-model store {path}: {source}")]
    Sled { path: String, source: sled::Error },
    /// Another process has the read model open: it is theirs, not to be rebuilt.
    #[error("the read model in {path} is open in another process (serve or project)")]
    Locked { path: String },
    #[error(transparent)]
    Domain(#[from] contacthub_core::Error),
    #[error(transparent)]
    Log(#[from] contacthub_log::Error),
    #[error("invalid page token {0:?}")]
    PageToken(String),
    #[error("read-model store {path} is closed: it is being reopened after an error")]
    Closed { path: String },
    #[error("read-model store {path} is still in use; it could not be reopened")]
    Busy { path: String },
    #[error("making the read model again after an erasure: {0}")]
    Rebuild(String),
    #[error("read-model folder {path} does not take writes yet: {source}")]
    NotWritable {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
