//! The head segment: the one file being appended to. It owns the writer
//! side (stamping block headers, appending, syncing, cutting back a failed
//! write) and the in-memory state readers use until the segment is sealed.
//!
//! Readers see only what a commit has published, and only through
//! [`HeadSegment::state`]; the writer holds that lock just long enough to
//! publish a commit. This module never decides *when* to seal or sync; the
//! engine does.

use std::hash::BuildHasher;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::event::{IndexKeys, PreparedEvent};
use crate::index::{BatchKeys, MemIndex};
use crate::integrity::chain::{ChainHead, Digest32, CHAIN_NONE};
use crate::io::{AppendFile, FileSystem, ReadAt};
use crate::segment::block::{decode_block, DecodedBlock, EncodedBlock};
use crate::segment::dict::Dictionary;
use crate::segment::format::{
    self, BlockMeta, Facts, SectionKind, SegmentHeader, BLOCK_HEADER_LEN, FLAG_BATCH_END,
    FORMAT_VERSION, HEADER_LEN,
};
use crate::types::{EventId, SegmentId, Timestamp};

/// The head's event ids, for duplicate checks: a hash table of ordinals
/// into [`HeadState::ids`], four bytes a slot instead of a map's twenty
/// (id and ordinal, padded). The hash is keyed per process, so ids a
/// client chooses cannot be made to collide on purpose.
#[derive(Default)]
pub struct IdTable {
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for IdTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTable")
            .field("len", &self.table.len())
            .finish()
    }
}

impl IdTable {
    fn hash(&self, id: EventId) -> u64 {
        self.hasher.hash_one(id.as_u128())
    }

    fn id_at(ids: &[EventId], ordinal: u32) -> u128 {
        ids.get(ordinal as usize).map_or(u128::MAX, |i| i.as_u128())
    }

    /// The ordinal of `id` among `ids`, the column this table indexes.
    pub fn find(&self, ids: &[EventId], id: EventId) -> Option<u32> {
        let hash = self.hash(id);
        self.table
            .find(hash, |&o| Self::id_at(ids, o) == id.as_u128())
            .copied()
    }

    /// Records that `ids[ordinal]` is `id`.
    fn insert(&mut self, ids: &[EventId], id: EventId, ordinal: u32) {
        let hash = self.hash(id);
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, ordinal, |&o| hasher.hash_one(Self::id_at(ids, o)));
    }

    fn reserve(&mut self, ids: &[EventId], additional: usize) {
        let hasher = &self.hasher;
        self.table
            .reserve(additional, |&o| hasher.hash_one(Self::id_at(ids, o)));
    }
}

/// One appender's batch as a commit writes it: the events, their blocks
/// compressed, their leaf hashes (empty when the segment keeps no chain)
/// and their index keys grouped by value.
#[derive(Clone, Copy)]
pub struct BatchToWrite<'a> {
    pub events: &'a [PreparedEvent],
    pub blocks: &'a [EncodedBlock],
    pub leaves: &'a [Digest32],
    pub keys: &'a BatchKeys,
}

/// What a reader may see of the head: everything published by a commit.
#[derive(Default)]
pub struct HeadState {
    pub blocks: Vec<BlockMeta>,
    /// `occurred_at` by ordinal.
    pub ts: Vec<Timestamp>,
    /// Event id by ordinal.
    pub ids: Vec<EventId>,
    pub id_table: IdTable,
    pub index: MemIndex,
    pub raw_bytes: u64,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    /// File length covered by published blocks.
    pub end_offset: u64,
    /// The hash chain after the last published event.
    pub chain: ChainHead,
}

impl HeadState {
    /// An empty state continuing the chain where `header` says.
    pub fn starting(header: &SegmentHeader) -> HeadState {
        HeadState {
            end_offset: HEADER_LEN as u64,
            chain: ChainHead {
                position: header.chain_position,
                value: header.chain_prev,
            },
            ..HeadState::default()
        }
    }

    pub fn event_count(&self) -> u32 {
        self.ts.len() as u32
    }

    fn push_event(&mut self, ts: Timestamp, id: EventId, keys: &IndexKeys, json_len: usize) {
        let ordinal = self.push_columns(ts, id, json_len);
        self.index.insert(ordinal, keys);
    }

    /// Publishes a committed batch; `grouped` holds its index keys grouped
    /// by the appender (see [`BatchKeys`]).
    fn push_batch(&mut self, events: &[PreparedEvent], grouped: &BatchKeys) {
        let base = self.event_count();
        for e in events {
            self.push_columns(e.occurred_at, e.id, e.json.len());
        }
        let keys: Vec<&IndexKeys> = events.iter().map(|e| &e.keys).collect();
        self.index.insert_batch(base, &keys, grouped);
    }

    /// Adds one event to every column but the indexes; returns its ordinal.
    fn push_columns(&mut self, ts: Timestamp, id: EventId, json_len: usize) -> u32 {
        let ordinal = self.ts.len() as u32;
        if self.ts.is_empty() {
            self.min_ts = ts;
            self.max_ts = ts;
        } else {
            self.min_ts = self.min_ts.min(ts);
            self.max_ts = self.max_ts.max(ts);
        }
        self.ts.push(ts);
        self.ids.push(id);
        self.id_table.insert(&self.ids, id, ordinal);
        self.raw_bytes += json_len as u64;
        ordinal
    }

    /// The ordinal of the event with `id`, if the head holds it.
    pub fn find_id(&self, id: EventId) -> Option<u32> {
        self.id_table.find(&self.ids, id)
    }

    /// Ordinals `from..to` sorted by `(occurred_at, ordinal)`: time order,
    /// ties in arrival order.
    fn sorted_ordinals(&self, from: u32, to: u32) -> Vec<u32> {
        let mut v: Vec<u32> = (from..to).collect();
        v.sort_by_key(|&o| self.ts(o));
        v
    }

    pub fn ts(&self, ordinal: u32) -> Timestamp {
        self.ts.get(ordinal as usize).copied().unwrap_or_default()
    }

    pub fn key(&self, ordinal: u32) -> (Timestamp, u32) {
        (self.ts(ordinal), ordinal)
    }
}

pub struct HeadSegment {
    pub id: SegmentId,
    pub path: PathBuf,
    pub header: SegmentHeader,
    /// The dictionary named by the header, if any.
    pub dict: Option<Dictionary>,
    cache: Arc<Caches>,
    reader: Box<dyn ReadAt>,
    state: RwLock<HeadState>,
    /// Ordinals sorted by key for a prefix of the events, extended lazily by
    /// readers (most events arrive in order, so extending is usually a push).
    order: Mutex<Arc<Vec<u32>>>,
}

impl HeadSegment {
    pub fn state(&self) -> RwLockReadGuard<'_, HeadState> {
        self.state.read()
    }

    /// Makes room for `events` more events in the columns up front: growing
    /// them step by step copies them and faults in fresh pages each time.
    /// They fill sequentially, so untouched capacity costs no memory. The
    /// id map is left to grow: its inserts land anywhere in the table, so a
    /// table sized for a full segment would become resident even in a
    /// small store.
    pub fn reserve(&self, events: usize) {
        let mut st = self.state.write();
        st.ts.reserve(events);
        st.ids.reserve(events);
        let st = &mut *st;
        st.id_table.reserve(&st.ids, events);
    }

    /// Ordinals in key order, covering at least `0..visible` (possibly more:
    /// a reader of an older snapshot skips ordinals beyond its view rather
    /// than sorting a copy of its own on every page).
    pub fn key_order(&self, visible: u32) -> Arc<Vec<u32>> {
        let mut cached = self.order.lock();
        let covered = cached.len() as u32;
        if covered >= visible {
            return cached.clone();
        }
        let st = self.state.read();
        let fresh = st.sorted_ordinals(covered, visible);
        // Extended in place unless a reader still holds the previous order
        // (then copied once). Copying the whole order on every query while
        // events arrived was 3-4% of the server's CPU under ingest, and it
        // faulted in fresh pages each time.
        let order = Arc::make_mut(&mut cached);
        // Merged from the back: events arrive mostly in time order, so
        // only the entries that sort after the oldest fresh one move, each
        // once, and nothing else is copied.
        let mut i = order.len();
        let mut j = fresh.len();
        order.resize(i + j, 0);
        let mut k = order.len();
        while let Some(&y) = j.checked_sub(1).and_then(|at| fresh.get(at)) {
            let x = i.checked_sub(1).and_then(|at| order.get(at)).copied();
            let value = match x {
                Some(x) if st.key(x) > st.key(y) => {
                    i -= 1;
                    x
                }
                _ => {
                    j -= 1;
                    y
                }
            };
            k -= 1;
            if let Some(slot) = order.get_mut(k) {
                *slot = value;
            }
        }
        cached.clone()
    }

    /// A decoded block (blocks never change once written, so the cache is
    /// safe for the head too).
    pub fn read_block(&self, meta: &BlockMeta) -> Result<Arc<DecodedBlock>> {
        self.cache
            .block((self.id, meta.first_ordinal), || self.decode(meta))
    }

    /// The header of a published block, read from the file.
    pub fn block_header(&self, meta: &BlockMeta) -> Result<format::BlockHeader> {
        let mut buf = [0u8; BLOCK_HEADER_LEN];
        self.reader
            .read_at(&mut buf, meta.offset)
            .map_err(|e| Error::io(&self.path, e))?;
        format::BlockHeader::decode(&buf)
            .ok_or_else(|| Error::corrupt(&self.path, meta.offset, "block header damaged"))
    }

    /// Reads and checks a block from the file, bypassing the cache.
    pub fn decode(&self, meta: &BlockMeta) -> Result<DecodedBlock> {
        let len = BLOCK_HEADER_LEN + meta.compressed_len as usize;
        let mut buf = vec![0u8; len];
        self.reader
            .read_at(&mut buf, meta.offset)
            .map_err(|e| Error::io(&self.path, e))?;
        decode_block(&self.path, meta, &buf, self.dict.as_ref())
    }
}

/// The write side of the head segment. Exactly one exists per engine, held
/// under the commit lock.
pub struct HeadWriter {
    pub head: Arc<HeadSegment>,
    file: Box<dyn AppendFile>,
    /// Length of the file up to the last published commit; a failed write
    /// is cut back to here.
    committed_len: u64,
    /// A failed write could not be cut back yet; retry before writing.
    needs_truncate: bool,
    /// Bytes appended since the last successful sync.
    unsynced: bool,
    /// The buffer each commit's blocks are gathered in, kept between
    /// commits: a fresh one grew by doubling and faulted in new pages every
    /// time, about 4% of ingest CPU (docs/PERFORMANCE.md, "Session 5").
    scratch: Vec<u8>,
}

/// A commit buffer larger than this is not kept for the next commit, so
/// that one huge batch does not pin its size for the segment's life.
const SCRATCH_KEEP: usize = 8 << 20;

impl HeadWriter {
    /// Creates a new, empty head segment file (header written and synced).
    /// `header.dict_id` must name `dict` (or be 0 with `None`).
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        header: SegmentHeader,
        dict: Option<Dictionary>,
        cache: Arc<Caches>,
    ) -> Result<HeadWriter> {
        let path = dir.join(header.segment_id.file_name());
        let mut file = fs.create_new(&path).map_err(|e| Error::io(&path, e))?;
        let written = file
            .append(&header.encode())
            .and_then(|()| file.sync_data())
            .and_then(|()| fs.sync_dir(dir));
        if let Err(e) = written {
            drop(file);
            let _ = fs.remove_file(&path);
            return Err(Error::io(&path, e));
        }
        let reader = fs.open_read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self::from_parts(
            path,
            header,
            dict,
            cache,
            file,
            reader,
            HeadState::starting(&header),
        ))
    }

    /// Wraps a recovered head file whose blocks were already checked.
    pub fn from_parts(
        path: PathBuf,
        header: SegmentHeader,
        dict: Option<Dictionary>,
        cache: Arc<Caches>,
        file: Box<dyn AppendFile>,
        reader: Box<dyn ReadAt>,
        state: HeadState,
    ) -> HeadWriter {
        let committed_len = state.end_offset;
        let head = Arc::new(HeadSegment {
            id: header.segment_id,
            path,
            header,
            dict,
            cache,
            reader,
            state: RwLock::new(state),
            order: Mutex::new(Arc::new(Vec::new())),
        });
        HeadWriter {
            head,
            file,
            committed_len,
            needs_truncate: false,
            unsynced: false,
            scratch: Vec::new(),
        }
    }

    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Appends the batches' blocks (each batch's last block flagged as a
    /// batch end), syncs when `sync` is set, then publishes them to readers.
    /// On any failure the file is cut back to its last committed length and
    /// nothing is published.
    ///
    /// Each batch comes with its events' leaf hashes (computed by the
    /// appenders, empty when the segment keeps no chain); folding them into
    /// the chain is the only hashing done here, under the commit lock.
    pub fn write_batches<'a>(
        &mut self,
        batches: impl Iterator<Item = BatchToWrite<'a>> + Clone,
        sync: bool,
    ) -> Result<()> {
        self.repair()?;
        let (first_ordinal, mut chain) = {
            let st = self.head.state.read();
            (st.event_count(), st.chain)
        };
        let algo = self.head.header.chain_algo;
        let (bytes, block_count) = batches.clone().fold((0, 0), |(bytes, count), b| {
            let size: usize = b
                .blocks
                .iter()
                .map(|k| BLOCK_HEADER_LEN + k.compressed.len())
                .sum();
            (bytes + size, count + b.blocks.len())
        });
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.reserve(bytes);
        let mut metas = Vec::with_capacity(block_count);
        let mut ordinal = first_ordinal;
        let mut offset = self.committed_len;
        for batch in batches.clone() {
            let (blocks, mut leaves) = (batch.blocks, batch.leaves.iter());
            for (i, block) in blocks.iter().enumerate() {
                let flags = if i + 1 == blocks.len() {
                    FLAG_BATCH_END
                } else {
                    0
                };
                if algo == CHAIN_NONE {
                    chain.position += u64::from(block.event_count);
                } else {
                    for _ in 0..block.event_count {
                        let leaf = leaves.next().ok_or_else(|| {
                            Error::Internal("a batch has fewer leaf hashes than events".into())
                        })?;
                        chain.push(leaf);
                    }
                }
                let value = if algo == CHAIN_NONE {
                    [0; 32]
                } else {
                    chain.value
                };
                buf.extend_from_slice(&block.header(ordinal, flags, algo, value).encode());
                buf.extend_from_slice(&block.compressed);
                metas.push(BlockMeta {
                    offset,
                    compressed_len: block.compressed.len() as u32,
                    raw_len: block.raw_len,
                    first_ordinal: ordinal,
                    event_count: block.event_count,
                    min_ts: block.min_ts,
                    max_ts: block.max_ts,
                });
                offset += (BLOCK_HEADER_LEN + block.compressed.len()) as u64;
                ordinal += block.event_count;
            }
        }
        if buf.is_empty() {
            self.scratch = buf;
            return Ok(());
        }
        let mut result = self.file.append(&buf);
        if buf.capacity() <= SCRATCH_KEEP {
            self.scratch = buf;
        }
        if result.is_ok() {
            self.unsynced = true;
            if sync {
                result = self.sync();
            }
        }
        if let Err(e) = result {
            self.needs_truncate = true;
            let _ = self.repair();
            return Err(Error::io(&self.head.path, e));
        }
        self.committed_len = offset;
        let mut st = self.head.state.write();
        st.blocks.extend_from_slice(&metas);
        for batch in batches {
            st.push_batch(batch.events, batch.keys);
        }
        st.end_offset = offset;
        st.chain = chain;
        Ok(())
    }

    /// Cuts a failed write back to the committed length. After a failed
    /// fsync the kernel may have dropped the dirty pages, so the unsynced
    /// tail is never trusted: it is removed and the next batch rewritten.
    fn repair(&mut self) -> Result<()> {
        if self.needs_truncate {
            self.file
                .truncate(self.committed_len)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| Error::io(&self.head.path, e))?;
            self.needs_truncate = false;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Syncs published bytes (for the interval and close policies).
    pub fn sync_published(&mut self) -> Result<()> {
        self.sync().map_err(|e| Error::io(&self.head.path, e))
    }

    pub fn event_count(&self) -> u32 {
        self.head.state.read().event_count()
    }

    /// Cuts off a footer written by [`HeadWriter::seal`] that did not read
    /// back correctly, so the segment goes on as a head.
    pub fn unseal(&mut self) -> Result<()> {
        self.needs_truncate = true;
        self.repair()
    }

    /// Writes the sections and footer that seal this segment, and syncs.
    /// On failure the file is cut back so the head can go on as it was.
    pub fn seal(&mut self, now: Timestamp) -> Result<()> {
        self.repair()?;
        let tail = {
            let st = self.head.state.read();
            encode_sections(
                &st,
                &self.head.header,
                self.committed_len,
                now,
                self.head.dict.as_ref(),
            )
        };
        let result = tail
            .iter()
            .try_for_each(|piece| self.file.append(piece))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            self.needs_truncate = true;
            let _ = self.repair();
            return Err(Error::io(&self.head.path, e));
        }
        self.unsynced = false;
        Ok(())
    }
}

/// Everything after the last block of a sealed segment, in the order it is
/// written: the sections, then the section table with the footer. They are
/// written piece by piece rather than joined: a million-event segment has
/// tens of MiB of sections, and copying them into one fresh buffer cost a
/// third of the seal in profiles (faulting in and zeroing new pages).
fn encode_sections(
    st: &HeadState,
    header: &SegmentHeader,
    start: u64,
    now: Timestamp,
    dict: Option<&Dictionary>,
) -> Vec<Vec<u8>> {
    let n = st.event_count();
    let chain_last = if header.chain_algo == CHAIN_NONE {
        [0; 32]
    } else {
        st.chain.value
    };
    let (min_id, max_id) = st.ids.iter().fold(
        (EventId::from_u128(u128::MAX), EventId::from_u128(0)),
        |(lo, hi), &id| (lo.min(id), hi.max(id)),
    );
    let facts = Facts {
        event_count: n,
        block_count: st.blocks.len() as u32,
        min_ts: st.min_ts,
        max_ts: st.max_ts,
        min_id,
        max_id,
        raw_bytes: st.raw_bytes,
        sealed_at: now,
        chain_prev: header.chain_prev,
        chain_last,
    };
    let mut directory = Vec::with_capacity(st.blocks.len() * format::BLOCK_META_LEN);
    for b in &st.blocks {
        b.encode_into(&mut directory);
    }
    let mut time_column = Vec::with_capacity(n as usize * 8);
    for t in &st.ts {
        time_column.extend_from_slice(&t.0.to_le_bytes());
    }
    let mut time_order = Vec::with_capacity(n as usize * 4);
    for o in st.sorted_ordinals(0, n) {
        time_order.extend_from_slice(&o.to_le_bytes());
    }
    // The id index keys on the low 32 bits of each id (random in a ULID);
    // a lookup confirms a hit against the event itself.
    let mut by_id: Vec<(u32, u32)> = st
        .ids
        .iter()
        .map(|id| id.as_u128() as u32)
        .zip(0u32..)
        .collect();
    by_id.sort_unstable();
    let mut id_index = Vec::with_capacity(n as usize * format::ID_ENTRY_LEN);
    for (low, o) in by_id {
        id_index.extend_from_slice(&low.to_le_bytes());
        id_index.extend_from_slice(&o.to_le_bytes());
    }
    let mut sections: Vec<(SectionKind, Vec<u8>)> = vec![
        (SectionKind::Facts, facts.encode()),
        (SectionKind::BlockDirectory, directory),
        (SectionKind::TimeColumn, time_column),
        (SectionKind::TimeOrder, time_order),
        (SectionKind::IdIndex, id_index),
    ];
    if let Some(d) = dict {
        sections.push((SectionKind::Dictionary, d.bytes.to_vec()));
    }
    for field in crate::index::IndexedField::ALL {
        sections.push((field.section_kind(), st.index.encode(field)));
    }
    let mut offset = start;
    let mut entries = Vec::with_capacity(sections.len());
    let mut pieces = Vec::with_capacity(sections.len() + 1);
    for (kind, bytes) in sections {
        entries.push(format::section_entry(kind as u32, offset, &bytes));
        offset += bytes.len() as u64;
        pieces.push(bytes);
    }
    pieces.push(format::encode_footer(offset, &entries, header.version));
    pieces
}

/// The header for a new segment, continuing the chain at `chain`.
pub fn new_header(
    store_id: [u8; 16],
    segment_id: SegmentId,
    now: Timestamp,
    window_start: Timestamp,
    dict: Option<&Dictionary>,
    chain_algo: u8,
    chain: ChainHead,
) -> SegmentHeader {
    SegmentHeader {
        version: FORMAT_VERSION,
        store_id,
        segment_id,
        created_at: now,
        window_start,
        dict_id: dict.map_or(0, |d| d.id),
        chain_algo,
        chain_position: chain.position,
        chain_prev: chain.value,
    }
}

/// Rebuilds a head's state from its blocks (after a restart). `chain` is
/// the chain after the block, already checked against its header.
pub fn replay_block(
    st: &mut HeadState,
    meta: BlockMeta,
    block: &DecodedBlock,
    chain: ChainHead,
) -> std::result::Result<(), crate::event::EventError> {
    for (i, slot) in (0u32..).zip(block.slots()) {
        let json = block.json(block.first_ordinal + i).unwrap_or_default();
        let keys = crate::event::keys_of_stored(json)?;
        st.push_event(slot.ts, slot.id, &keys, json.len());
    }
    st.blocks.push(meta);
    st.end_offset = meta.end_offset();
    st.chain = chain;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::segment::format::{FORMAT_VERSION, HEADER_LEN};
    use crate::testing::SimFs;

    fn empty_head() -> HeadWriter {
        let header = SegmentHeader {
            version: FORMAT_VERSION,
            store_id: [1; 16],
            segment_id: SegmentId(1),
            created_at: Timestamp(0),
            window_start: Timestamp(0),
            dict_id: 0,
            chain_algo: CHAIN_NONE,
            chain_position: 0,
            chain_prev: [0; 32],
        };
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let caches = Arc::new(Caches::new(1 << 20, 1 << 20));
        let w = HeadWriter::create(&fs, Path::new("/d"), header, None, caches).unwrap();
        assert_eq!(w.head.state().end_offset, HEADER_LEN as u64);
        w
    }

    proptest! {
        /// However events arrive (in order, late, in bursts) and whether
        /// or not a reader still holds an older order, `key_order` equals a
        /// full sort of the visible events by (time, ordinal).
        #[test]
        fn key_order_is_a_full_sort_of_what_is_visible(
            steps in prop::collection::vec(
                (prop::collection::vec(0i64..50, 0..40), any::<bool>()),
                1..30,
            ),
        ) {
            let w = empty_head();
            let head = &w.head;
            let mut held = Vec::new();
            let mut clock = 0i64;
            for (offsets, hold) in steps {
                {
                    let mut st = head.state.write();
                    for off in offsets {
                        // Mostly forwards, sometimes back in time.
                        clock += 3;
                        let n = u128::from(st.event_count());
                        st.push_columns(Timestamp(clock - off), EventId::from_u128(n + 1), 10);
                    }
                }
                let visible = head.state().event_count();
                let order = head.key_order(visible);
                let st = head.state();
                let mut expected: Vec<u32> = (0..visible).collect();
                expected.sort_by_key(|&o| st.key(o));
                prop_assert_eq!(order.as_slice(), expected.as_slice());
                if hold {
                    // A reader keeps this one: the next call must not change it.
                    held.push((order.clone(), expected));
                }
            }
            for (order, expected) in held {
                prop_assert_eq!(order.as_slice(), expected.as_slice());
            }
        }
    }
}
