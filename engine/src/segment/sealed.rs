//! A sealed segment, read through a memory map. Opening checks the header,
//! the footer and every section's checksum and shape, so that later reads
//! of those sections cannot go wrong; block payloads are checked each time
//! they are decoded (and all at once by `verify`).
//!
//! A sealed file is never written again: only retention removes it whole.

use std::ops::Range;
use std::path::PathBuf;

use roaring::RoaringBitmap;

use std::sync::Arc;

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::index::path::{PathIndex, PathIndexBuilder};
use crate::index::{IndexedField, StoredIndex};
use crate::io::{FileBytes, FileSystem};
use crate::query::ast::FieldPath;
use crate::segment::block::{decode_block, DecodedBlock};
use crate::segment::dict::Dictionary;
use crate::segment::format::{
    self, i64_at, u32_at, BlockHeader, BlockMeta, Facts, SectionKind, SegmentHeader,
    BLOCK_HEADER_LEN, BLOCK_META_LEN, HEADER_LEN, ID_ENTRY_LEN,
};
use crate::types::{EventId, SegmentId, Timestamp};

pub struct SealedSegment {
    /// Its blocks were compressed again after sealing (`segment::compact`).
    pub compacted: bool,
    pub id: SegmentId,
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub facts: Facts,
    pub file_len: u64,
    pub dict: Option<Dictionary>,
    cache: Arc<Caches>,
    bytes: FileBytes,
    blocks: Vec<BlockMeta>,
    time_column: Range<usize>,
    time_order: Range<usize>,
    id_index: Range<usize>,
    indexes: [Range<usize>; 4],
}

impl std::fmt::Debug for SealedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSegment")
            .field("id", &self.id)
            .field("facts", &self.facts)
            .finish()
    }
}

/// Why a file could not be opened as a sealed segment.
pub enum OpenFailure {
    /// There is no footer: the file is (or was) a head segment.
    NotSealed,
    Damaged(Error),
}

impl SealedSegment {
    pub fn open(
        fs: &dyn FileSystem,
        path: PathBuf,
        store_id: &[u8; 16],
        cache: Arc<Caches>,
    ) -> Result<Self, OpenFailure> {
        let bytes = fs
            .read_all(&path)
            .map_err(|e| OpenFailure::Damaged(Error::io(&path, e)))?;
        Self::from_bytes(path, bytes, store_id, cache)
    }

    pub fn from_bytes(
        path: PathBuf,
        bytes: FileBytes,
        store_id: &[u8; 16],
        cache: Arc<Caches>,
    ) -> Result<Self, OpenFailure> {
        let file: &[u8] = (*bytes).as_ref();
        let damaged = |offset: u64, what: &str| {
            OpenFailure::Damaged(Error::corrupt(&path, offset, what.to_string()))
        };
        let header = SegmentHeader::decode(file).map_err(|w| damaged(0, w))?;
        if &header.store_id != store_id {
            return Err(damaged(16, "segment belongs to another data directory"));
        }
        let sections = match format::decode_footer(file) {
            Ok(Some(s)) => s,
            Ok(None) => return Err(OpenFailure::NotSealed),
            Err(w) => {
                let footer = file.len().saturating_sub(format::FOOTER_LEN);
                return Err(damaged(footer as u64, w));
            }
        };
        let find = |kind: SectionKind| -> Result<(Range<usize>, &[u8]), OpenFailure> {
            let entry = sections
                .iter()
                .find(|s| s.kind == kind as u32)
                .ok_or_else(|| damaged(file.len() as u64, &format!("missing section {kind:?}")))?;
            let bytes = format::section_bytes(file, entry).ok_or_else(|| {
                damaged(entry.offset, &format!("section {kind:?} checksum mismatch"))
            })?;
            let start = entry.offset as usize;
            Ok((start..start + bytes.len(), bytes))
        };
        let (_, facts_bytes) = find(SectionKind::Facts)?;
        let facts =
            Facts::decode(facts_bytes).ok_or_else(|| damaged(0, "facts section malformed"))?;
        let n = facts.event_count as usize;
        let (dir_range, dir) = find(SectionKind::BlockDirectory)?;
        if dir.len() != facts.block_count as usize * BLOCK_META_LEN {
            return Err(damaged(
                dir_range.start as u64,
                "block directory has the wrong length",
            ));
        }
        let data_end = sections.iter().map(|s| s.offset).min().unwrap_or(0);
        let mut blocks = Vec::with_capacity(facts.block_count as usize);
        let mut next_offset = HEADER_LEN as u64;
        let mut next_ordinal = 0u32;
        for chunk in dir.chunks_exact(BLOCK_META_LEN) {
            let m = BlockMeta::decode(chunk)
                .ok_or_else(|| damaged(dir_range.start as u64, "block directory entry"))?;
            if m.offset != next_offset
                || m.first_ordinal != next_ordinal
                || m.event_count == 0
                || m.end_offset() > data_end
            {
                return Err(damaged(
                    dir_range.start as u64,
                    "block directory is inconsistent",
                ));
            }
            next_offset = m.end_offset();
            next_ordinal = next_ordinal
                .checked_add(m.event_count)
                .ok_or_else(|| damaged(0, "event count overflows"))?;
            blocks.push(m);
        }
        if next_ordinal as usize != n || next_offset != data_end {
            return Err(damaged(
                dir_range.start as u64,
                "block directory does not cover the segment",
            ));
        }
        let (time_column, tc) = find(SectionKind::TimeColumn)?;
        let (time_order, to) = find(SectionKind::TimeOrder)?;
        let (id_index, ix) = find(SectionKind::IdIndex)?;
        if tc.len() != n * 8 || to.len() != n * 4 || ix.len() != n * ID_ENTRY_LEN {
            return Err(damaged(
                time_column.start as u64,
                "column sections have the wrong length",
            ));
        }
        // The order must be a permutation sorted by (time, ordinal), and the id
        // index must point inside the segment: checked once here so that
        // every later lookup can trust them.
        let mut seen = RoaringBitmap::new();
        let mut prev: Option<(i64, u128)> = None;
        for chunk in to.chunks_exact(4) {
            let o = u32_at(chunk, 0).unwrap_or(u32::MAX);
            if o as usize >= n || !seen.insert(o) {
                return Err(damaged(
                    time_order.start as u64,
                    "time order is not a permutation",
                ));
            }
            let key = (i64_at(tc, o as usize * 8).unwrap_or_default(), 0u128);
            if prev.is_some_and(|p| p.0 > key.0) {
                return Err(damaged(time_order.start as u64, "time order is not sorted"));
            }
            prev = Some(key);
        }
        let mut prev_low = 0u32;
        for chunk in ix.chunks_exact(ID_ENTRY_LEN) {
            let low = u32_at(chunk, 0).unwrap_or_default();
            if u32_at(chunk, 4).is_none_or(|o| o as usize >= n) || low < prev_low {
                return Err(damaged(
                    id_index.start as u64,
                    "id index is not sorted or points outside the segment",
                ));
            }
            prev_low = low;
        }
        let dict = match header.dict_id {
            0 => None,
            id => {
                let (range, bytes) = find(SectionKind::Dictionary)?;
                let d = Dictionary::from_bytes(bytes)
                    .filter(|d| d.id == id)
                    .ok_or_else(|| {
                        damaged(
                            range.start as u64,
                            "embedded dictionary does not match the header",
                        )
                    })?;
                Some(d)
            }
        };
        // The chain fields must agree with each other (the values
        // themselves are recomputed by `verify`, which reads every event).
        if facts.chain_prev != header.chain_prev {
            return Err(damaged(
                0,
                "facts and header disagree on where the hash chain starts",
            ));
        }
        let last_chain = blocks
            .last()
            .and_then(|m| file.get(m.offset as usize..))
            .and_then(BlockHeader::decode)
            .filter(|h| h.chain_algo == header.chain_algo)
            .map(|h| h.chain);
        if last_chain != Some(facts.chain_last) {
            return Err(damaged(
                blocks.last().map_or(0, |m| m.offset),
                "the last block's chain value disagrees with the facts",
            ));
        }
        let mut indexes: [Range<usize>; 4] = Default::default();
        for field in IndexedField::ALL {
            let (range, bytes) = find(field.section_kind())?;
            StoredIndex::parse(bytes)
                .ok_or_else(|| damaged(range.start as u64, "index section malformed"))?;
            if let Some(slot) = indexes.get_mut(field.slot()) {
                *slot = range;
            }
        }
        let compacted = sections.iter().any(|s| s.kind == format::SECTION_COMPACTED);
        Ok(SealedSegment {
            compacted,
            id: header.segment_id,
            path,
            header,
            facts,
            file_len: file.len() as u64,
            dict,
            cache,
            bytes,
            blocks,
            time_column,
            time_order,
            id_index,
            indexes,
        })
    }

    fn file(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    /// The whole file, as mapped (compaction copies sections from it).
    pub fn file_bytes(&self) -> &[u8] {
        self.file()
    }

    fn section(&self, r: &Range<usize>) -> &[u8] {
        self.file().get(r.clone()).unwrap_or_default()
    }

    pub fn event_count(&self) -> u32 {
        self.facts.event_count
    }

    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    pub fn ts(&self, ordinal: u32) -> Timestamp {
        Timestamp(i64_at(self.section(&self.time_column), ordinal as usize * 8).unwrap_or_default())
    }

    /// The ordinal at position `pos` of the `(time, id)` order.
    pub fn order_at(&self, pos: u32) -> u32 {
        u32_at(self.section(&self.time_order), pos as usize * 4).unwrap_or_default()
    }

    /// The ordinal of event `id`. The index holds the low 64 bits of each
    /// id; every entry that matches them is confirmed against the stored
    /// event, so a lookup never returns another event.
    pub fn find_id(&self, id: EventId) -> Result<Option<u32>> {
        let ix = self.section(&self.id_index);
        let low = id.as_u128() as u32;
        let entries = ix.len() / ID_ENTRY_LEN;
        let key = |i: usize| u32_at(ix, i * ID_ENTRY_LEN).unwrap_or(u32::MAX);
        let (mut lo, mut hi) = (0usize, entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(mid) < low {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        while lo < entries && key(lo) == low {
            let ordinal = u32_at(ix, lo * ID_ENTRY_LEN + 4).unwrap_or(u32::MAX);
            let i = self.blocks.partition_point(|b| b.first_ordinal <= ordinal);
            if let Some(meta) = i.checked_sub(1).and_then(|i| self.blocks.get(i)) {
                let block = self.read_block(meta)?;
                if block.event(ordinal).is_some_and(|e| e.id == id) {
                    return Ok(Some(ordinal));
                }
            }
            lo += 1;
        }
        Ok(None)
    }

    pub fn index(&self, field: IndexedField) -> Option<StoredIndex<'_>> {
        StoredIndex::parse(self.section(self.indexes.get(field.slot())?))
    }

    /// Events holding `value` in `field` (decoded once, then cached).
    pub fn index_lookup(&self, field: IndexedField, value: &str) -> Result<Arc<RoaringBitmap>> {
        self.cache.bitmap(self.id, field, value, || {
            let index = self
                .index(field)
                .ok_or_else(|| Error::corrupt(&self.path, 0, "index section malformed"))?;
            index
                .lookup(value)
                .map(Option::unwrap_or_default)
                .map_err(|w| {
                    Error::corrupt(
                        &self.path,
                        self.indexes.get(field.slot()).map_or(0, |r| r.start as u64),
                        w,
                    )
                })
        })
    }

    /// The value index of `path`, if a query built it and it is cached
    /// (`Some(None)`: the path has too many values here to be indexed).
    pub fn cached_path_index(&self, path: &FieldPath) -> Option<Arc<Option<PathIndex>>> {
        self.cache.path_index(self.id, &path.0)
    }

    /// Reads every event once to build the value index of `path`, and
    /// caches it. Blocks are decoded straight from the file: a whole
    /// segment would only flush the block cache.
    pub fn build_path_index(&self, path: &FieldPath) -> Result<Arc<Option<PathIndex>>> {
        let mut builder = PathIndexBuilder::new(path);
        for meta in &self.blocks {
            if builder.gave_up() {
                break;
            }
            let block = self.decode(meta)?;
            for o in meta.ordinals() {
                let json = block.json(o).unwrap_or_default();
                builder.add(o, json).map_err(|e| {
                    Error::corrupt(
                        &self.path,
                        meta.offset,
                        format!("stored event is not JSON: {e}"),
                    )
                })?;
            }
        }
        let index = builder.finish();
        self.cache.put_path_index(self.id, &path.0, index.clone());
        Ok(Arc::new(index))
    }

    /// A decoded block, from the cache when it is there.
    pub fn read_block(&self, meta: &BlockMeta) -> Result<Arc<DecodedBlock>> {
        // Keyed by first ordinal, not offset: compaction moves blocks
        // within the file, but the block holding an ordinal never changes.
        self.cache
            .block((self.id, meta.first_ordinal), || self.decode(meta))
    }

    /// The header of a block, read from the file (checked by its CRC).
    pub fn block_header(&self, meta: &BlockMeta) -> Result<BlockHeader> {
        self.file()
            .get(meta.offset as usize..)
            .and_then(BlockHeader::decode)
            .ok_or_else(|| Error::corrupt(&self.path, meta.offset, "block header damaged"))
    }

    /// Decodes a block from the file, checking every checksum; never from
    /// the cache, so verification sees what is on disk.
    pub fn decode(&self, meta: &BlockMeta) -> Result<DecodedBlock> {
        let start = meta.offset as usize;
        let bytes = self
            .file()
            .get(start..start + BLOCK_HEADER_LEN + meta.compressed_len as usize)
            .ok_or_else(|| {
                Error::corrupt(&self.path, meta.offset, "block lies outside the file")
            })?;
        decode_block(&self.path, meta, bytes, self.dict.as_ref())
    }

    /// Checks every block: checksum, decompression, event framing, and that
    /// the stored columns agree with the events. Returns the first damage.
    pub fn verify_blocks(&self) -> Result<()> {
        let mut ids = Vec::with_capacity(self.event_count() as usize);
        for meta in &self.blocks {
            // Straight from the file: verification must not trust the cache.
            let block = self.decode(meta)?;
            let header =
                BlockHeader::decode(self.file().get(meta.offset as usize..).unwrap_or_default());
            if header.is_none_or(|h| {
                h.min_ts != meta.min_ts
                    || h.max_ts != meta.max_ts
                    || h.chain_algo != self.header.chain_algo
            }) {
                return Err(Error::corrupt(
                    &self.path,
                    meta.offset,
                    "block header disagrees with the directory",
                ));
            }
            for (o, slot) in meta.ordinals().zip(block.slots()) {
                if self.ts(o) != slot.ts {
                    return Err(Error::corrupt(
                        &self.path,
                        meta.offset,
                        "time column disagrees with the block",
                    ));
                }
                ids.push((slot.id, o));
            }
        }
        let mut lows: Vec<(u32, u32)> = ids
            .iter()
            .map(|(id, o)| (id.as_u128() as u32, *o))
            .collect();
        lows.sort_unstable();
        let ix = self.section(&self.id_index);
        for (i, (low, o)) in lows.iter().enumerate() {
            let at = i * ID_ENTRY_LEN;
            if u32_at(ix, at) != Some(*low) || u32_at(ix, at + 4) != Some(*o) {
                return Err(Error::corrupt(
                    &self.path,
                    self.id_index.start as u64,
                    "id index disagrees with the blocks",
                ));
            }
        }
        let min_id = ids.iter().map(|(id, _)| *id).min();
        let max_id = ids.iter().map(|(id, _)| *id).max();
        if min_id != Some(self.facts.min_id) || max_id != Some(self.facts.max_id) {
            return Err(Error::corrupt(
                &self.path,
                0,
                "facts disagree with the blocks",
            ));
        }
        Ok(())
    }
}
