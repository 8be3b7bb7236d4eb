//! The engine's signing side: the key, the checkpoint log, and the
//! tombstones retention writes. The engine decides when; this module
//! decides what is signed and where it is written.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::Result;
use crate::integrity::chain::ChainHead;
use crate::integrity::checkpoint::{Checkpoint, CheckpointLog, CheckpointReason, EXPORT_FILE};
use crate::integrity::key::{PublicKey, Signer};
use crate::integrity::tombstone::{self, Tombstone, REASON_RETENTION};
use crate::io::FileSystem;
use crate::segment::sealed::SealedSegment;
use crate::types::Timestamp;

pub fn checkpoint_dir(root: &Path) -> PathBuf {
    root.join("checkpoints")
}

pub struct Notary {
    signer: Signer,
    store_id: [u8; 16],
    log: Mutex<CheckpointLog>,
}

impl Notary {
    /// Loads (or creates) the key and opens the checkpoint log.
    pub fn open(
        fs: &dyn FileSystem,
        root: &Path,
        store_id: [u8; 16],
        key_path: &Path,
        export: Option<&Path>,
    ) -> Result<Notary> {
        let signer = Signer::load_or_create(fs, key_path)?;
        let dir = checkpoint_dir(root);
        let export = export.map_or_else(|| dir.join(EXPORT_FILE), Path::to_path_buf);
        let log = CheckpointLog::open(fs, &dir, export)?;
        Ok(Notary {
            signer,
            store_id,
            log: Mutex::new(log),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        self.signer.public_key()
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn latest(&self) -> Option<Checkpoint> {
        self.log.lock().last().cloned()
    }

    pub fn recent_after(&self, after: Option<u64>) -> Vec<Checkpoint> {
        self.log.lock().recent_after(after)
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.lock().log_path().to_path_buf()
    }

    pub fn export_path(&self) -> PathBuf {
        self.log.lock().export_path().to_path_buf()
    }

    /// Signs and writes a checkpoint at `head` unless the latest one is
    /// already there, or past it (two callers that read the chain in one
    /// order may get here in the other: positions never go backwards in
    /// the log). The caller has made every event up to `head` durable.
    pub fn checkpoint(
        &self,
        fs: &dyn FileSystem,
        head: ChainHead,
        reason: CheckpointReason,
    ) -> Result<Option<Checkpoint>> {
        let mut log = self.log.lock();
        if log.last().is_some_and(|c| {
            c.position > head.position
                || (c.position == head.position && c.chain_head == head.value)
        }) {
            return Ok(None);
        }
        let c = log.append(
            fs,
            &self.signer,
            self.store_id,
            head,
            reason,
            Timestamp::now(),
        )?;
        tracing::info!(
            sequence = c.sequence,
            position = c.position,
            reason = reason.as_str(),
            "signed checkpoint"
        );
        Ok(Some(c))
    }
}

/// The tombstone for a segment retention is about to remove.
pub fn tombstone_for(
    seg: &SealedSegment,
    store_id: [u8; 16],
    cutoff: Timestamp,
    signer: Option<&Signer>,
) -> Tombstone {
    Tombstone {
        reason: REASON_RETENTION,
        store_id,
        segment_id: seg.id,
        position: seg.header.chain_position,
        event_count: seg.event_count(),
        chain_prev: seg.header.chain_prev,
        chain_last: seg.facts.chain_last,
        cutoff,
        time: Timestamp::now(),
        public_key: [0; 32],
        signature: [0; 64],
    }
    .sign(signer)
}

/// Writes the tombstone; see [`tombstone::write`].
pub fn write_tombstone(fs: &dyn FileSystem, root: &Path, t: &Tombstone) -> Result<()> {
    tombstone::write(fs, root, t)
}
