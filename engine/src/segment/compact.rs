//! Compaction: rewriting a sealed segment with its blocks compressed again
//! at a higher zstd level, off the commit path.
//!
//! Ingest compresses with a fast codec (LZ4 by default) so that two cores
//! keep up with appends; a sealed segment never changes again, so a
//! background pass can spend more CPU once to make it smaller for the rest
//! of its life. The new file has the same header (but for the dictionary it
//! may adopt), the same blocks (same events, boundaries, ordinals and chain
//! values; only each payload's codec, compressed bytes, length and CRC
//! change), the same sections except the block directory (new offsets), and
//! one more optional section recording the compaction.
//!
//! Owns: producing the new file next to the old one and syncing it.
//! Must never: touch the live file (the engine renames the new one over it
//! under its writer lock, after checking it), or hold any engine lock.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::block::compress_payload;
use crate::segment::dict::Dictionary;
use crate::segment::format::{
    self, BlockHeader, BlockMeta, SectionKind, SegmentHeader, BLOCK_HEADER_LEN, CODEC_ZSTD,
    SECTION_COMPACTED,
};
use crate::segment::sealed::SealedSegment;

/// Bytes gathered before each write to the new file.
const WRITE_CHUNK: usize = 1 << 20;

/// The compaction record (section [`SECTION_COMPACTED`]): zstd level u32,
/// then the length of the file before compaction u64.
pub fn encode_record(level: i32, old_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&(level as u32).to_le_bytes());
    out.extend_from_slice(&old_len.to_le_bytes());
    out
}

/// Writes the compacted form of `seg` to `tmp` (a new file) and syncs it.
/// `keep_going` is asked before each block; it may wait (compaction yields
/// to busy ingest), and `false` stops the work: then `Ok(false)`, and the
/// partial file is removed. A block that would not shrink keeps its old bytes.
///
/// A segment written without a dictionary (the store's first ones, before
/// a dictionary was trained) adopts `adopt`: its blocks are all compressed
/// with it, its header names it and a dictionary section carries it.
pub fn write_compacted(
    fs: &dyn FileSystem,
    seg: &SealedSegment,
    tmp: &Path,
    level: i32,
    adopt: Option<&Dictionary>,
    keep_going: &dyn Fn() -> bool,
) -> Result<bool> {
    let adopt = if seg.dict.is_none() { adopt } else { None };
    let dict = seg.dict.as_ref().or(adopt);
    let io = |e| Error::io(tmp, e);
    let file = seg.file_bytes();
    let sections = match format::decode_footer(file) {
        Ok(Some(s)) => s,
        _ => {
            return Err(Error::corrupt(
                &seg.path,
                0,
                "sealed segment lost its footer",
            ))
        }
    };
    let first_block = seg
        .blocks()
        .first()
        .map_or(format::HEADER_LEN as u64, |b| b.offset) as usize;
    let mut out = fs.create_new(tmp).map_err(io)?;
    let result = (|| -> Result<bool> {
        let mut buf = Vec::with_capacity(WRITE_CHUNK * 2);
        buf.extend_from_slice(
            file.get(..first_block)
                .ok_or_else(|| Error::corrupt(&seg.path, 0, "header"))?,
        );
        if let Some(d) = adopt {
            let header = SegmentHeader {
                dict_id: d.id,
                ..seg.header
            };
            if let Some(h) = buf.get_mut(..format::HEADER_LEN) {
                h.copy_from_slice(&header.encode());
            }
        }
        let mut offset = first_block as u64;
        let mut metas = Vec::with_capacity(seg.blocks().len());
        for meta in seg.blocks() {
            if !keep_going() {
                return Ok(false);
            }
            // Decoding checks the CRCs, the framing and the directory, so a
            // damaged block is never carried into the new file.
            let block = seg.decode(meta)?;
            let start = meta.offset as usize;
            let old = file
                .get(start..start + BLOCK_HEADER_LEN + meta.compressed_len as usize)
                .ok_or_else(|| Error::corrupt(&seg.path, meta.offset, "block outside the file"))?;
            let header = BlockHeader::decode(old)
                .ok_or_else(|| Error::corrupt(&seg.path, meta.offset, "block header damaged"))?;
            let packed =
                compress_payload(block.payload(), level, dict).map_err(|e| Error::io(tmp, e))?;
            // Adopting a dictionary, every block is compressed anew: the
            // header now names one for all of them.
            let compressed_len = if adopt.is_some() || packed.len() < meta.compressed_len as usize {
                let header = BlockHeader {
                    codec: CODEC_ZSTD,
                    compressed_len: packed.len() as u32,
                    payload_crc: format::crc32(&packed),
                    ..header
                };
                buf.extend_from_slice(&header.encode());
                buf.extend_from_slice(&packed);
                packed.len() as u32
            } else {
                buf.extend_from_slice(old);
                meta.compressed_len
            };
            metas.push(BlockMeta {
                offset,
                compressed_len,
                ..*meta
            });
            offset += (BLOCK_HEADER_LEN + compressed_len as usize) as u64;
            if buf.len() >= WRITE_CHUNK {
                out.append(&buf).map_err(io)?;
                buf.clear();
            }
        }
        let mut entries = Vec::with_capacity(sections.len() + 1);
        for s in &sections {
            if s.kind == SECTION_COMPACTED {
                continue;
            }
            let bytes = if s.kind == SectionKind::BlockDirectory as u32 {
                let mut dir = Vec::with_capacity(metas.len() * format::BLOCK_META_LEN);
                for m in &metas {
                    m.encode_into(&mut dir);
                }
                dir
            } else {
                format::section_bytes(file, s)
                    .ok_or_else(|| {
                        Error::corrupt(&seg.path, s.offset, "section checksum mismatch")
                    })?
                    .to_vec()
            };
            entries.push(format::section_entry(s.kind, offset, &bytes));
            offset += bytes.len() as u64;
            buf.extend_from_slice(&bytes);
        }
        if let Some(d) = adopt {
            entries.push(format::section_entry(
                SectionKind::Dictionary as u32,
                offset,
                &d.bytes,
            ));
            offset += d.bytes.len() as u64;
            buf.extend_from_slice(&d.bytes);
        }
        let record = encode_record(level, file.len() as u64);
        entries.push(format::section_entry(SECTION_COMPACTED, offset, &record));
        offset += record.len() as u64;
        buf.extend_from_slice(&record);
        buf.extend_from_slice(&format::encode_footer(offset, &entries, seg.header.version));
        out.append(&buf).map_err(io)?;
        out.sync_data().map_err(io)?;
        Ok(true)
    })();
    drop(out);
    if !matches!(result, Ok(true)) {
        let _ = fs.remove_file(tmp);
    }
    result
}
