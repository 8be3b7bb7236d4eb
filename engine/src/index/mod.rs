//! Roaring-bitmap indexes from a field value to the ordinals (positions
//! within one segment) of the events holding it.
//!
//! [`MemIndex`] is the mutable form kept for the head segment; it is encoded
//! into one section per field when the segment is sealed, and read back
//! lazily through [`StoredIndex`] straight from the memory map. This module
//! knows nothing of files or segments beyond those bytes.

pub mod path;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::event::IndexKeys;
use crate::segment::format::{u32_at, u64_at, SectionKind};

/// The fields with an index. `actor.type` and `actor.id` are indexed apart:
/// the pair is their intersection, which is exact because each event has one
/// actor, and it also answers `actor.id = …` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexedField {
    Action,
    ActorType,
    ActorId,
    Environment,
}

impl IndexedField {
    pub const ALL: [IndexedField; 4] = [
        IndexedField::Action,
        IndexedField::ActorType,
        IndexedField::ActorId,
        IndexedField::Environment,
    ];

    /// The dotted event path the index answers for.
    pub fn path(self) -> &'static str {
        match self {
            IndexedField::Action => "action_name",
            IndexedField::ActorType => "actor.type",
            IndexedField::ActorId => "actor.id",
            IndexedField::Environment => "environment.id",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        IndexedField::ALL.into_iter().find(|f| f.path() == path)
    }

    pub fn slot(self) -> usize {
        self as usize
    }

    pub fn section_kind(self) -> SectionKind {
        match self {
            IndexedField::Action => SectionKind::IndexAction,
            IndexedField::ActorType => SectionKind::IndexActorType,
            IndexedField::ActorId => SectionKind::IndexActorId,
            IndexedField::Environment => SectionKind::IndexEnvironment,
        }
    }

    fn key(self, keys: &IndexKeys) -> &str {
        match self {
            IndexedField::Action => &keys.action,
            IndexedField::ActorType => &keys.actor_type,
            IndexedField::ActorId => &keys.actor_id,
            IndexedField::Environment => &keys.environment,
        }
    }
}

/// Indexes of the head segment, updated on every commit.
#[derive(Debug, Default)]
pub struct MemIndex {
    maps: [FxHashMap<Box<str>, MemPosting>; 4],
}

/// The events of the head holding one value. Most actor ids of a segment
/// are held by one event, and a bitmap per such value would cost three
/// allocations and about a hundred bytes where an ordinal costs four.
#[derive(Debug)]
enum MemPosting {
    One(u32),
    Many(RoaringBitmap),
}

impl MemPosting {
    fn from_sorted(mut ordinals: impl Iterator<Item = u32> + Clone) -> Option<MemPosting> {
        let first = ordinals.next()?;
        let mut posting = MemPosting::One(first);
        posting.extend_sorted(ordinals);
        Some(posting)
    }

    /// Adds `ordinals`, ascending and above every ordinal already held, in
    /// one bitmap append. Pushing them one at a time made the bitmap look
    /// for its maximum before each: in a dense container that scans up to
    /// 1024 words from the end, and it was a third of the commit's own CPU
    /// in profiles (docs/PERFORMANCE.md, "Session 4").
    fn extend_sorted(&mut self, ordinals: impl Iterator<Item = u32> + Clone) {
        if ordinals.clone().next().is_none() {
            return;
        }
        if let MemPosting::One(first) = *self {
            let mut bm = RoaringBitmap::new();
            bm.push(first);
            *self = MemPosting::Many(bm);
        }
        if let MemPosting::Many(bm) = self {
            // The caller's promise makes `append` accept them all; were it
            // broken, inserting one by one is still right, only slower.
            if bm.append(ordinals.clone()).is_err() {
                for o in ordinals {
                    bm.insert(o);
                }
            }
        }
    }

    /// Adds `ordinal`, which is above every ordinal already held.
    fn push(&mut self, ordinal: u32) {
        match self {
            MemPosting::One(first) => {
                let mut bm = RoaringBitmap::new();
                bm.push(*first);
                bm.push(ordinal);
                *self = MemPosting::Many(bm);
            }
            MemPosting::Many(bm) => {
                bm.push(ordinal);
            }
        }
    }

    fn held(&self) -> Held<'_> {
        match self {
            MemPosting::One(o) => Held::One(*o),
            MemPosting::Many(bm) => Held::Many(bm),
        }
    }
}

/// The events holding one value, borrowed: one ordinal, or a bitmap.
#[derive(Debug, Clone, Copy)]
pub enum Held<'b> {
    One(u32),
    Many(&'b RoaringBitmap),
}

impl Held<'_> {
    /// How many of `m` hold the value.
    pub fn count_in(self, m: &RoaringBitmap) -> u64 {
        match self {
            Held::One(o) => u64::from(m.contains(o)),
            Held::Many(b) => m.intersection_len(b),
        }
    }

    /// The part of `m` holding the value.
    pub fn part_of(self, m: &RoaringBitmap) -> RoaringBitmap {
        match self {
            Held::One(o) if m.contains(o) => RoaringBitmap::from_iter([o]),
            Held::One(_) => RoaringBitmap::new(),
            Held::Many(b) => m & b,
        }
    }

    pub fn to_bitmap(self) -> RoaringBitmap {
        match self {
            Held::One(o) => RoaringBitmap::from_iter([o]),
            Held::Many(bm) => bm.clone(),
        }
    }
}

/// One batch's index keys grouped by value. The appender builds it before
/// the commit lock, so that the commit, which readers of the head wait
/// for, looks each distinct value up once instead of once per event.
#[derive(Debug, Default, Clone)]
pub struct BatchKeys {
    /// Per field: positions in the batch, grouped by value (the groups in
    /// order of first appearance), ascending within a group.
    order: [Vec<u32>; 4],
    /// Per field: where each group ends in `order`.
    run_ends: [Vec<u32>; 4],
}

impl BatchKeys {
    /// One hash per key and a counting sort: sorting the keys as strings
    /// instead took about 2% of ingest CPU (docs/PERFORMANCE.md, "Session 5").
    pub fn group(keys: &[&IndexKeys]) -> BatchKeys {
        let mut grouped = BatchKeys::default();
        let mut group_ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut group_of: Vec<u32> = Vec::with_capacity(keys.len());
        let mut sizes: Vec<u32> = Vec::new();
        for field in IndexedField::ALL {
            group_ids.clear();
            group_of.clear();
            sizes.clear();
            for k in keys {
                let fresh = sizes.len() as u32;
                let g = *group_ids.entry(field.key(k)).or_insert(fresh);
                if g == fresh {
                    sizes.push(0);
                }
                if let Some(size) = sizes.get_mut(g as usize) {
                    *size += 1;
                }
                group_of.push(g);
            }
            let mut ends = Vec::with_capacity(sizes.len());
            let mut next_free = Vec::with_capacity(sizes.len());
            let mut total = 0u32;
            for &size in &sizes {
                next_free.push(total);
                total += size;
                ends.push(total);
            }
            let mut order = vec![0u32; keys.len()];
            for (position, &g) in (0u32..).zip(&group_of) {
                if let Some(free) = next_free.get_mut(g as usize) {
                    if let Some(slot) = order.get_mut(*free as usize) {
                        *slot = position;
                    }
                    *free += 1;
                }
            }
            let slot = field.slot();
            if let (Some(o), Some(e)) =
                (grouped.order.get_mut(slot), grouped.run_ends.get_mut(slot))
            {
                *o = order;
                *e = ends;
            }
        }
        grouped
    }
}

impl MemIndex {
    pub fn insert(&mut self, ordinal: u32, keys: &IndexKeys) {
        for (field, map) in IndexedField::ALL.into_iter().zip(self.maps.iter_mut()) {
            let key = field.key(keys);
            match map.get_mut(key) {
                Some(posting) => posting.push(ordinal),
                None => {
                    map.insert(key.into(), MemPosting::One(ordinal));
                }
            }
        }
    }

    /// Adds a batch whose events get ordinals `base..`, with `grouped`
    /// built from the same `keys` by [`BatchKeys::group`].
    pub fn insert_batch(&mut self, base: u32, keys: &[&IndexKeys], grouped: &BatchKeys) {
        for field in IndexedField::ALL {
            let slot = field.slot();
            let (Some(map), Some(order), Some(ends)) = (
                self.maps.get_mut(slot),
                grouped.order.get(slot),
                grouped.run_ends.get(slot),
            ) else {
                continue;
            };
            let mut start = 0usize;
            for &end in ends {
                let run = order.get(start..end as usize).unwrap_or_default();
                start = end as usize;
                let Some(first) = run.first().and_then(|&i| keys.get(i as usize)) else {
                    continue;
                };
                let key = field.key(first);
                // Positions in a run ascend, and the batch's ordinals are
                // above all stored ones, so they append at the end.
                let ordinals = run.iter().map(|&i| base + i);
                match map.get_mut(key) {
                    Some(posting) => posting.extend_sorted(ordinals),
                    None => {
                        if let Some(posting) = MemPosting::from_sorted(ordinals) {
                            map.insert(key.into(), posting);
                        }
                    }
                }
            }
        }
    }

    pub fn get(&self, field: IndexedField, value: &str) -> Option<Held<'_>> {
        Some(self.maps.get(field.slot())?.get(value)?.held())
    }

    /// Every value of `field` with the events holding it.
    pub fn entries(&self, field: IndexedField) -> impl Iterator<Item = (&str, Held<'_>)> {
        self.maps
            .get(field.slot())
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (&**k, v.held())))
    }

    /// Encodes one field's index as a section (layout in docs/FORMAT.md):
    /// `key_count u32, keys_len u32, entries[key_count], keys, bitmaps`;
    /// entry = `key_off u32, key_len u32, bm_off u64, bm_len u32, card u32`.
    /// A value held by one event only (most actor ids in a segment) stores
    /// that event's ordinal in `bm_off`, with `bm_len` 0 and no bitmap.
    pub fn encode(&self, field: IndexedField) -> Vec<u8> {
        let mut entries: Vec<(&str, Held<'_>)> = self.entries(field).collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let keys_len: usize = entries.iter().map(|(k, _)| k.len()).sum();
        let mut dir = Vec::with_capacity(8 + entries.len() * ENTRY_LEN);
        let mut keys = Vec::with_capacity(keys_len);
        let mut bitmaps = Vec::new();
        dir.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        dir.extend_from_slice(&(keys_len as u32).to_le_bytes());
        for (key, bitmap) in entries {
            let (bm_off, bm_len, card) = match bitmap {
                Held::One(only) => (u64::from(only), 0, 1),
                Held::Many(bitmap) => {
                    let start = bitmaps.len() as u64;
                    // Writing into a Vec cannot fail.
                    let _ = bitmap.serialize_into(&mut bitmaps);
                    let len = (bitmaps.len() as u64 - start) as u32;
                    (start, len, bitmap.len() as u32)
                }
            };
            dir.extend_from_slice(&(keys.len() as u32).to_le_bytes());
            dir.extend_from_slice(&(key.len() as u32).to_le_bytes());
            dir.extend_from_slice(&bm_off.to_le_bytes());
            dir.extend_from_slice(&bm_len.to_le_bytes());
            dir.extend_from_slice(&card.to_le_bytes());
            keys.extend_from_slice(key.as_bytes());
        }
        dir.extend_from_slice(&keys);
        dir.extend_from_slice(&bitmaps);
        dir
    }
}

const ENTRY_LEN: usize = 24;

/// Where one value's events are: inline for a single event, else a bitmap.
#[derive(Debug, Clone, Copy)]
enum Posting<'a> {
    Single(u32),
    Bitmap(&'a [u8]),
}

/// A field's index section, read in place. Construction checks the
/// directory's shape; each bitmap is decoded only when looked up.
#[derive(Debug, Clone, Copy)]
pub struct StoredIndex<'a> {
    bytes: &'a [u8],
    count: usize,
    keys_start: usize,
    bitmaps_start: usize,
}

impl<'a> StoredIndex<'a> {
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let count = u32_at(bytes, 0)? as usize;
        let keys_len = u32_at(bytes, 4)? as usize;
        let keys_start = count.checked_mul(ENTRY_LEN)?.checked_add(8)?;
        let bitmaps_start = keys_start.checked_add(keys_len)?;
        if bitmaps_start > bytes.len() {
            return None;
        }
        Some(StoredIndex {
            bytes,
            count,
            keys_start,
            bitmaps_start,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry(&self, i: usize) -> Option<(&'a str, Posting<'a>, u32)> {
        let e = 8 + i * ENTRY_LEN;
        let key_off = u32_at(self.bytes, e)? as usize;
        let key_len = u32_at(self.bytes, e + 4)? as usize;
        let bm_off = usize::try_from(u64_at(self.bytes, e + 8)?).ok()?;
        let bm_len = u32_at(self.bytes, e + 16)? as usize;
        let card = u32_at(self.bytes, e + 20)?;
        let ks = self.keys_start.checked_add(key_off)?;
        let key_bytes = self.bytes.get(ks..ks.checked_add(key_len)?)?;
        if ks.checked_add(key_len)? > self.bitmaps_start {
            return None;
        }
        let key = std::str::from_utf8(key_bytes).ok()?;
        if bm_len == 0 {
            let only = u32::try_from(bm_off).ok()?;
            return (card == 1).then_some((key, Posting::Single(only), card));
        }
        let bs = self.bitmaps_start.checked_add(bm_off)?;
        let bitmap = self.bytes.get(bs..bs.checked_add(bm_len)?)?;
        Some((key, Posting::Bitmap(bitmap), card))
    }

    /// The bitmap for `value`: `Ok(None)` when no event has it, `Err` when
    /// the section is inconsistent.
    pub fn lookup(&self, value: &str) -> Result<Option<RoaringBitmap>, &'static str> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (key, bitmap, _) = self.entry(mid).ok_or("index entry out of bounds")?;
            match key.cmp(value) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return match bitmap {
                        Posting::Single(only) => Ok(Some(RoaringBitmap::from_iter([only]))),
                        Posting::Bitmap(bytes) => RoaringBitmap::deserialize_from(bytes)
                            .map(Some)
                            .map_err(|_| "index bitmap does not decode"),
                    };
                }
            }
        }
        Ok(None)
    }

    /// Every value with its event count, in key order.
    pub fn cardinalities(&self) -> Result<Vec<(&'a str, u32)>, &'static str> {
        (0..self.count)
            .map(|i| {
                self.entry(i)
                    .map(|(k, _, c)| (k, c))
                    .ok_or("index entry out of bounds")
            })
            .collect()
    }

    /// Every value in key order with the events holding it, read in one
    /// pass: a value held by one event gives its ordinal without decoding
    /// anything (the viewer's facets walk whole indexes this way).
    pub fn postings(&self) -> impl Iterator<Item = Result<(&'a str, Holders), &'static str>> + '_ {
        (0..self.count).map(|i| {
            let (key, posting, _) = self.entry(i).ok_or("index entry out of bounds")?;
            Ok((
                key,
                match posting {
                    Posting::Single(only) => Holders::One(only),
                    Posting::Bitmap(bytes) => Holders::Many(
                        RoaringBitmap::deserialize_from(bytes)
                            .map_err(|_| "index bitmap does not decode")?,
                    ),
                },
            ))
        })
    }
}

/// The events holding one value, as [`StoredIndex::postings`] reads them.
#[derive(Debug, Clone, PartialEq)]
pub enum Holders {
    One(u32),
    Many(RoaringBitmap),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(action: &str, actor: &str) -> IndexKeys {
        IndexKeys {
            action: action.into(),
            actor_type: "user".into(),
            actor_id: actor.into(),
            environment: "main".into(),
        }
    }

    #[test]
    fn encode_then_lookup_matches_memory() {
        let mut m = MemIndex::default();
        for i in 0..1000u32 {
            m.insert(i, &keys(&format!("a{}", i % 7), &format!("u{}", i % 13)));
        }
        m.insert(1000, &keys("only-once", "u-once"));
        let actors = m.encode(IndexedField::ActorId);
        let a = StoredIndex::parse(&actors).unwrap();
        assert_eq!(
            a.lookup("u-once").unwrap(),
            Some(RoaringBitmap::from_iter([1000u32]))
        );
        assert_eq!(
            a.lookup("u3").unwrap(),
            m.get(IndexedField::ActorId, "u3").map(Held::to_bitmap)
        );
        let bytes = m.encode(IndexedField::Action);
        let s = StoredIndex::parse(&bytes).unwrap();
        assert_eq!(s.len(), 8);
        for a in 0..7 {
            let key = format!("a{a}");
            assert_eq!(
                s.lookup(&key).unwrap(),
                m.get(IndexedField::Action, &key).map(Held::to_bitmap)
            );
        }
        assert_eq!(s.lookup("zzz").unwrap(), None);
        let total: u32 = s.cardinalities().unwrap().iter().map(|(_, c)| c).sum();
        assert_eq!(total, 1001);
    }

    /// Grouping a batch before the commit must index exactly what adding
    /// its events one by one does, whatever the values and their order.
    #[test]
    fn batch_insert_matches_one_by_one() {
        use proptest::prelude::*;
        let batch = proptest::collection::vec((0u8..6, 0u8..40), 0..60);
        proptest!(|(batches in proptest::collection::vec(batch, 1..6))| {
            let mut one_by_one = MemIndex::default();
            let mut grouped = MemIndex::default();
            let mut base = 0u32;
            for b in &batches {
                let ks: Vec<IndexKeys> = b
                    .iter()
                    .map(|(a, u)| keys(&format!("a{a}"), &format!("u{u}")))
                    .collect();
                for (i, k) in ks.iter().enumerate() {
                    one_by_one.insert(base + i as u32, k);
                }
                let refs: Vec<&IndexKeys> = ks.iter().collect();
                grouped.insert_batch(base, &refs, &BatchKeys::group(&refs));
                base += ks.len() as u32;
            }
            for field in IndexedField::ALL {
                let mut a: Vec<(String, Vec<u32>)> = one_by_one
                    .entries(field)
                    .map(|(k, h)| (k.to_string(), h.to_bitmap().iter().collect()))
                    .collect();
                let mut b: Vec<(String, Vec<u32>)> = grouped
                    .entries(field)
                    .map(|(k, h)| (k.to_string(), h.to_bitmap().iter().collect()))
                    .collect();
                a.sort();
                b.sort();
                prop_assert_eq!(a, b);
                prop_assert_eq!(one_by_one.encode(field), grouped.encode(field));
            }
        });
    }

    #[test]
    fn truncated_sections_never_panic() {
        let mut m = MemIndex::default();
        for i in 0..100u32 {
            m.insert(i, &keys(&format!("a{}", i % 5), "x"));
        }
        let bytes = m.encode(IndexedField::Action);
        for cut in 0..bytes.len() {
            if let Some(s) = StoredIndex::parse(&bytes[..cut]) {
                let _ = s.lookup("a3");
                let _ = s.cardinalities();
            }
        }
    }
}
