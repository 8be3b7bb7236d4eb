//! Tamper evidence (docs/INTEGRITY.md): the hash chain over every event,
//! the signing key, signed checkpoints and tombstones, offline verification
//! and proofs.
//!
//! - `chain`: the hash chain itself (pure computation).
//! - `key`: the Ed25519 signing key file and public key formats.
//! - `checkpoint`: signed checkpoints and their log.
//! - `tombstone`: what retention leaves for a dropped segment.
//! - `notary`: the engine's signing side (key + checkpoint log).
//! - `verify`: offline verification of a data directory.
//! - `proof`: proof that one event is in the log as of a checkpoint.
//! - `manifest`: signed manifests for exports.
//!
//! Everything here is storage logic: it reads and writes through
//! [`crate::io::FileSystem`] and knows nothing of HTTP.

pub mod chain;
pub mod checkpoint;
pub mod key;
pub mod manifest;
pub mod notary;
pub mod proof;
pub mod tombstone;
pub mod verify;
