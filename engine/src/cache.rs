//! Bounded caches of decoded data shared by all readers: decompressed
//! blocks, decoded index bitmaps, and value indexes on event paths built by
//! queries (`index::path`; sealed segments only). Both are keyed by segment id, and what
//! they cache never changes once written (blocks are immutable; only sealed
//! segments' bitmaps are cached), so entries never go stale; those of a
//! dropped segment simply age out.
//!
//! The caches hold no truth: a miss reads and checks the bytes again.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use roaring::RoaringBitmap;

use crate::index::path::PathIndex;
use crate::index::IndexedField;
use crate::segment::block::DecodedBlock;
use crate::types::SegmentId;

/// (segment, first ordinal of the block).
type BlockKey = (SegmentId, u32);
type BitmapKey = (SegmentId, IndexedField, Box<str>);
type PathKey = (SegmentId, Box<[String]>);
/// `None`: the path has too many distinct values in that segment.
type PathValue = Arc<Option<PathIndex>>;

#[derive(Clone)]
struct BlockWeight;
impl Weighter<BlockKey, Arc<DecodedBlock>> for BlockWeight {
    fn weight(&self, _: &BlockKey, v: &Arc<DecodedBlock>) -> u64 {
        v.weight() as u64
    }
}

#[derive(Clone)]
struct BitmapWeight;
impl Weighter<BitmapKey, Arc<RoaringBitmap>> for BitmapWeight {
    fn weight(&self, k: &BitmapKey, v: &Arc<RoaringBitmap>) -> u64 {
        (v.serialized_size() + k.2.len() + 64) as u64
    }
}

#[derive(Clone)]
struct PathWeight;
impl Weighter<PathKey, PathValue> for PathWeight {
    fn weight(&self, k: &PathKey, v: &PathValue) -> u64 {
        let key: usize = k.1.iter().map(|s| s.len() + 24).sum();
        (key + v.as_ref().as_ref().map_or(0, PathIndex::weight) + 64) as u64
    }
}

pub struct Caches {
    blocks: Cache<BlockKey, Arc<DecodedBlock>, BlockWeight>,
    bitmaps: Cache<BitmapKey, Arc<RoaringBitmap>, BitmapWeight>,
    paths: Cache<PathKey, PathValue, PathWeight>,
}

impl Caches {
    /// `block_bytes` and `bitmap_bytes` bound those caches' memory; path
    /// indexes get as much as bitmaps.
    pub fn new(block_bytes: u64, bitmap_bytes: u64) -> Caches {
        Caches {
            blocks: Cache::with_weighter(
                (block_bytes / (32 << 10)).max(16) as usize,
                block_bytes.max(1),
                BlockWeight,
            ),
            bitmaps: Cache::with_weighter(
                (bitmap_bytes / 4096).max(16) as usize,
                bitmap_bytes.max(1),
                BitmapWeight,
            ),
            paths: Cache::with_weighter(
                (bitmap_bytes / (64 << 10)).max(16) as usize,
                bitmap_bytes.max(1),
                PathWeight,
            ),
        }
    }

    pub fn block(
        &self,
        key: BlockKey,
        load: impl FnOnce() -> crate::Result<DecodedBlock>,
    ) -> crate::Result<Arc<DecodedBlock>> {
        if let Some(b) = self.blocks.get(&key) {
            return Ok(b);
        }
        let b = Arc::new(load()?);
        self.blocks.insert(key, b.clone());
        Ok(b)
    }

    pub fn bitmap(
        &self,
        seg: SegmentId,
        field: IndexedField,
        value: &str,
        load: impl FnOnce() -> crate::Result<RoaringBitmap>,
    ) -> crate::Result<Arc<RoaringBitmap>> {
        let key = (seg, field, Box::<str>::from(value));
        if let Some(b) = self.bitmaps.get(&key) {
            return Ok(b);
        }
        let b = Arc::new(load()?);
        self.bitmaps.insert(key, b.clone());
        Ok(b)
    }

    /// The value index of `path` in segment `seg`, if a query built it and
    /// it is still cached (`Some(None)`: known not to be indexable).
    pub fn path_index(&self, seg: SegmentId, path: &[String]) -> Option<PathValue> {
        self.paths.get(&(seg, Box::from(path)))
    }

    pub fn put_path_index(&self, seg: SegmentId, path: &[String], index: Option<PathIndex>) {
        self.paths.insert((seg, Box::from(path)), Arc::new(index));
    }
}

impl Default for Caches {
    fn default() -> Self {
        Caches::new(64 << 20, 16 << 20)
    }
}
