//! Tamper evidence (docs/INTEGRITY.md): the hash chain over every event,
//! the signing key, signed checkpoints and tombstones, offline verification
//! and proofs.
//!
//! - `chain`: the hash chain itself (pure computation).
//!
//! Everything here is storage logic: it reads and writes through
//! [`crate::io::FileSystem`] and knows nothing of HTTP.

pub mod chain;
