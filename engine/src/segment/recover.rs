//! Reopening the head segment after a stop or a crash: every block is
//! checked in order, and the file is cut back to the end of the last whole
//! batch. Nothing after that point was ever acknowledged (an append is
//! acknowledged only after its batch-end block is synced), so nothing
//! acknowledged is cut.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::block::decode_block;
use crate::segment::dict::DictStore;
use crate::segment::format::{
    BlockHeader, BlockMeta, SegmentHeader, CHAIN_NONE, FLAG_BATCH_END, HEADER_LEN,
};
use crate::segment::head::{replay_block, HeadState, HeadWriter};

/// What recovery did to a head file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadRecovery {
    pub events: u32,
    /// Bytes cut from the end of the file (kept in quarantine), and where
    /// the cut began.
    pub cut_bytes: u64,
    pub cut_offset: u64,
    /// Where the cut bytes were saved.
    pub saved: Option<PathBuf>,
    /// True when whole, valid blocks follow the first bad one: not the
    /// signature of a crash during an append (which loses a suffix), but of
    /// damage, or of un-synced pages that reached the disk out of order in
    /// a power cut. Reported as damage either way.
    pub damaged: bool,
}

/// Reopens `path` as the head segment. An `Err` means the file cannot be
/// trusted as a head (bad header, foreign store, or checksummed blocks that
/// do not hold valid events) and must be set aside.
/// A cut tail is first copied to `quarantine` (named after the segment and
/// the offset it was cut at): a torn write is the usual cause, but damage in
/// the middle of the file would otherwise take valid events with it.
pub fn recover_head(
    fs: &dyn FileSystem,
    path: PathBuf,
    store_id: &[u8; 16],
    quarantine: &Path,
    dicts: &DictStore,
    cache: std::sync::Arc<crate::cache::Caches>,
) -> Result<(HeadWriter, HeadRecovery)> {
    let bytes = fs.read_all(&path).map_err(|e| Error::io(&path, e))?;
    let file: &[u8] = (*bytes).as_ref();
    let file_header = SegmentHeader::decode(file).map_err(|w| Error::corrupt(&path, 0, w))?;
    let header = file_header;
    check_identity(&path, &header, store_id)?;
    let dict = match header.dict_id {
        0 => None,
        id => Some(dicts.by_id(id).cloned().ok_or_else(|| {
            Error::corrupt(
                &path,
                56,
                format!("compression dictionary {id:08x} is missing or damaged"),
            )
        })?),
    };

    let mut state = HeadState::starting(&header);
    let mut batch = Vec::new();
    let mut at = HEADER_LEN as u64;
    let mut next_ordinal = 0u32;
    // The chain is recomputed from the header's starting value; a block
    // whose stored chain value disagrees ends the valid part like any other
    // damage (its CRCs may be right: someone rewrote it).
    let mut chain = state.chain;
    while let Some(header) = file.get(at as usize..).and_then(BlockHeader::decode) {
        let meta = BlockMeta::from_header(at, &header);
        if header.first_ordinal != next_ordinal {
            break;
        }
        let Ok(block) = decode_block(
            &path,
            &meta,
            file.get(at as usize..).unwrap_or_default(),
            dict.as_ref(),
        ) else {
            break;
        };
        if !chain_matches(&header, &file_header) {
            break;
        }
        let after = chain.after_block(&block, file_header.chain_algo);
        if file_header.chain_algo != CHAIN_NONE && after.value != header.chain {
            break;
        }
        chain = after;
        next_ordinal = next_ordinal.saturating_add(header.event_count);
        at = meta.end_offset();
        batch.push((meta, block, chain));
        if header.flags & FLAG_BATCH_END != 0 {
            for (meta, block, chain) in batch.drain(..) {
                replay_block(&mut state, meta, &block, chain).map_err(|e| {
                    Error::corrupt(
                        &path,
                        meta.offset,
                        format!("checksummed block holds an invalid event: {e}"),
                    )
                })?;
            }
        }
    }
    let cut_bytes = file.len() as u64 - state.end_offset;
    let damaged = valid_block_after(file, at, &path, dict.as_ref());
    let mut saved = None;
    if cut_bytes > 0 {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("segment");
        let kind = if damaged { "damaged-tail" } else { "torn-tail" };
        let keep = quarantine.join(format!("{name}.{kind}-at-{}", state.end_offset));
        let tail = file.get(state.end_offset as usize..).unwrap_or_default();
        let written = fs.create_new(&keep).and_then(|mut f| {
            f.append(tail)?;
            f.sync_data()
        });
        written
            .and_then(|()| fs.sync_dir(quarantine))
            .map_err(|e| Error::io(&keep, e))?;
        saved = Some(keep);
    }
    drop(bytes);

    let mut out = fs.open_append(&path).map_err(|e| Error::io(&path, e))?;
    if cut_bytes > 0 {
        out.truncate(state.end_offset)
            .and_then(|()| out.sync_data())
            .map_err(|e| Error::io(&path, e))?;
    }
    let reader = fs.open_read(&path).map_err(|e| Error::io(&path, e))?;
    let events = state.event_count();
    let end_offset = state.end_offset;
    Ok((
        HeadWriter::from_parts(path, header, dict, cache, out, reader, state),
        HeadRecovery {
            events,
            cut_bytes,
            cut_offset: end_offset,
            saved,
            damaged,
        },
    ))
}

/// True if a whole, valid block starts anywhere after `from`.
fn valid_block_after(
    file: &[u8],
    from: u64,
    path: &Path,
    dict: Option<&crate::segment::dict::Dictionary>,
) -> bool {
    let magic = crate::segment::format::BLOCK_MAGIC.to_le_bytes();
    let start = (from as usize).saturating_add(1);
    let rest = file.get(start..).unwrap_or_default();
    memchr::memmem::find_iter(rest, &magic).any(|i| {
        let at = start + i;
        let bytes = file.get(at..).unwrap_or_default();
        BlockHeader::decode(bytes).is_some_and(|h| {
            let meta = BlockMeta::from_header(at as u64, &h);
            decode_block(path, &meta, bytes, dict).is_ok()
        })
    })
}

/// A block's chain algorithm must be its segment's.
pub fn chain_matches(block: &BlockHeader, segment: &SegmentHeader) -> bool {
    block.chain_algo == segment.chain_algo
}

pub fn check_identity(path: &Path, header: &SegmentHeader, store_id: &[u8; 16]) -> Result<()> {
    if &header.store_id != store_id {
        return Err(Error::corrupt(
            path,
            16,
            "segment belongs to another data directory",
        ));
    }
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(crate::types::SegmentId::from_file_name);
    if named != Some(header.segment_id) {
        return Err(Error::corrupt(
            path,
            32,
            "segment id in the header does not match the file name",
        ));
    }
    Ok(())
}
