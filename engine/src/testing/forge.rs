//! An attacker's toolkit for the tamper tests: rewrites a segment file the
//! way someone who knows the format would, with the engine's own encoders,
//! so every checksum is right and only the hash chain, the links between
//! segments and the signed checkpoints can give the change away.
//!
//! Never used on real data paths.

use std::path::Path;
use std::sync::Arc;

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::event::{prepare_event, EventLimits};
use crate::index::BatchKeys;
use crate::integrity::chain::{leaf_hash, Digest32};
use crate::io::FileSystem;
use crate::segment::block::{decode_block, encode_blocks, BlockCodec};
use crate::segment::dict::Dictionary;
use crate::segment::format::{BlockHeader, BlockMeta, SegmentHeader, HEADER_LEN};
use crate::segment::head::{BatchToWrite, HeadWriter};
use crate::segment::sealed::{OpenFailure, SealedSegment};
use crate::testing::SimFs;
use crate::types::Timestamp;

/// The events of a segment file (sealed or head), in order, as canonical
/// JSON, with its header.
pub fn read_segment(
    bytes: &[u8],
    dict: Option<&Dictionary>,
) -> Result<(SegmentHeader, Vec<Vec<u8>>, bool)> {
    let path = Path::new("forge");
    let header = SegmentHeader::decode(bytes).map_err(|w| Error::corrupt(path, 0, w))?;
    let mut events = Vec::new();
    let shared: crate::io::FileBytes = Arc::new(bytes.to_vec());
    match SealedSegment::from_bytes(
        path.to_path_buf(),
        shared,
        &header.store_id,
        Arc::new(Caches::new(1 << 20, 1 << 20)),
    ) {
        Ok(seg) => {
            for meta in seg.blocks() {
                let block = seg.decode(meta)?;
                events.extend(
                    block
                        .ordinals()
                        .filter_map(|o| block.json(o).map(<[u8]>::to_vec)),
                );
            }
            Ok((header, events, true))
        }
        Err(OpenFailure::Damaged(e)) => Err(e),
        Err(OpenFailure::NotSealed) => {
            let mut at = HEADER_LEN;
            while let Some(h) = bytes.get(at..).and_then(BlockHeader::decode) {
                let meta = BlockMeta::from_header(at as u64, &h);
                let block = decode_block(path, &meta, bytes.get(at..).unwrap_or_default(), dict)?;
                events.extend(
                    block
                        .ordinals()
                        .filter_map(|o| block.json(o).map(<[u8]>::to_vec)),
                );
                at = meta.end_offset() as usize;
            }
            Ok((header, events, false))
        }
    }
}

/// Writes a segment file holding `events` with `header`, sealed or not,
/// every checksum right. The block chain values are computed from `leaves`
/// (one per event): pass the events' own leaf hashes to re-chain
/// consistently, or the original ones to leave the chain as it was.
pub fn write_segment(
    header: SegmentHeader,
    events: &[Vec<u8>],
    leaves: &[Digest32],
    sealed: bool,
    dict: Option<&Dictionary>,
) -> Result<Vec<u8>> {
    let fs = SimFs::new();
    let dir = Path::new("/forge");
    fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let limits = EventLimits {
        max_future_skew_micros: i64::MAX,
        ..EventLimits::default()
    };
    let prepared = events
        .iter()
        .map(|e| prepare_event(e, Timestamp::now(), &limits))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let blocks = encode_blocks(&prepared, 512, BlockCodec::Zstd { level: 3 }, dict)
        .map_err(|e| Error::io(dir, e))?;
    let mut head = HeadWriter::create(
        &fs,
        dir,
        header,
        dict.cloned(),
        Arc::new(Caches::new(1 << 20, 1 << 20)),
    )?;
    let keys: Vec<&crate::event::IndexKeys> = prepared.iter().map(|e| &e.keys).collect();
    let batch = BatchToWrite {
        events: &prepared,
        blocks: &blocks,
        leaves,
        keys: &BatchKeys::group(&keys),
    };
    head.write_batches(std::iter::once(batch), true)?;
    if sealed {
        head.seal(Timestamp::now())?;
    }
    let path = dir.join(header.segment_id.file_name());
    fs.file(&path)
        .ok_or_else(|| Error::Internal("forged file vanished".into()))
}

/// The leaf hashes of `events`.
pub fn leaves(events: &[Vec<u8>]) -> Vec<Digest32> {
    events.iter().map(|e| leaf_hash(e)).collect()
}
