//! auditlog-engine: an append-only store for audit events.
//!
//! Events are validated ([`event`]), compressed into checksummed blocks and
//! appended to time-partitioned segment files ([`segment`]) with bitmap
//! indexes ([`index`]); the [`Engine`] runs group commit, sealing, recovery
//! and retention; [`query`] parses filters and runs them over a snapshot.
//! All file access goes through [`io::FileSystem`].
//!
//! The engine must never panic on input, on bytes read from disk, or on an
//! I/O failure; the lints below let the compiler hold that line.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cache;
pub mod datadir;
pub mod engine;
pub mod error;
pub mod event;
pub mod index;
pub mod integrity;
pub mod io;
pub mod query;
pub mod segment;
pub mod testing;
pub mod types;

pub use engine::{
    AppendOutcome, DropReport, Engine, EngineConfig, EngineStats, OpenReport, Snapshot, SyncPolicy,
};
pub use error::{Error, Result};
pub use event::{EventError, EventLimits, PreparedEvent, StoredEvent};
pub use segment::block::BlockCodec;
pub use types::{EventId, Order, SegmentId, TimeRange, Timestamp};
