//! Typed errors of the engine. Every failure a caller can meet is one of these;
//! the engine never panics on input, on bytes found on disk, or on I/O failure.

use std::path::PathBuf;

use crate::event::EventError;
use crate::query::FilterError;

/// Where damage was found: a file and a byte offset inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub offset: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.file.display(), self.offset)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The event was rejected before anything was written.
    #[error("invalid event: {0}")]
    InvalidEvent(#[from] EventError),

    /// An event inside a batch was rejected; `index` is its 0-based position.
    #[error("invalid event at index {index}: {source}")]
    InvalidEventInBatch { index: usize, source: EventError },

    #[error("batch of {len} events is larger than the limit of {max}")]
    BatchTooLarge { len: usize, max: usize },

    #[error("bad filter: {0}")]
    BadFilter(#[from] FilterError),

    #[error("bad cursor: {0}")]
    BadCursor(&'static str),

    #[error("bad query: {0}")]
    BadQuery(String),

    /// Checksums or format checks failed: the bytes there are not trusted.
    #[error("corrupt data in {location}: {what}")]
    Corrupt { location: Location, what: String },

    /// The disk is full; nothing of the failed append was acknowledged.
    #[error("storage full: {0}")]
    StorageFull(std::io::Error),

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file written by a format version this build does not read.
    #[error("{path}: format version {found} is not supported (this build reads version {supported}); {hint}")]
    UnsupportedVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
        hint: &'static str,
    },

    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),

    #[error("{0}")]
    Config(String),

    /// A bug: a worker thread panicked. Never the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on, classifying a full disk.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        if is_storage_full(&source) {
            Error::StorageFull(source)
        } else {
            Error::Io {
                path: path.into(),
                source,
            }
        }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Error {
        Error::Corrupt {
            location: Location {
                file: file.into(),
                offset,
            },
            what: what.into(),
        }
    }

    /// A copy for each appender of a failed group commit. I/O errors are
    /// not `Clone`, so their kind and message are carried over.
    pub(crate) fn duplicate(&self) -> Error {
        let io_copy = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            Error::StorageFull(e) => Error::StorageFull(io_copy(e)),
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: io_copy(source),
            },
            Error::Corrupt { location, what } => Error::Corrupt {
                location: location.clone(),
                what: what.clone(),
            },
            other => Error::Config(other.to_string()),
        }
    }

    /// True when the caller, not the store, is at fault (maps to a 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidEvent(_)
                | Error::InvalidEventInBatch { .. }
                | Error::BatchTooLarge { .. }
                | Error::BadFilter(_)
                | Error::BadCursor(_)
                | Error::BadQuery(_)
        )
    }
}

fn is_storage_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
