//! Segment files: the unit of storage, sealing and retention.
//!
//! - `format`: the byte layout (pure encode/decode).
//! - `block`: compressing events into checksummed blocks and back.
//! - `head`: the segment being appended to, and its writer.
//! - `sealed`: finished segments, read through a memory map.
//! - `recover`: reopening the head after a crash.
//! - `sealer`: sealing a full head on its own thread.
//! - `compact`: rewriting a sealed segment smaller, in the background.
//!
//! [`SegmentView`] gives readers one way to look at either kind, frozen at
//! the number of events visible when their snapshot was taken.

pub mod block;
pub mod compact;
pub mod dict;
pub mod format;
pub mod head;
pub mod recover;
pub mod sealed;
pub mod sealer;

use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::event::StoredEvent;
use crate::index::{Held, IndexedField};
use crate::query::ast::{FieldPath, Filter};
use crate::types::{EventId, SegmentId, Timestamp};
use block::DecodedBlock;
use format::BlockMeta;
use head::HeadSegment;
use sealed::SealedSegment;

/// A segment as one reader sees it.
#[derive(Clone)]
pub enum SegmentView {
    /// A sealed segment, limited to its first `events` events (less than
    /// all only for a cursor made while it was still the head).
    Sealed {
        seg: Arc<SealedSegment>,
        events: u32,
    },
    /// The head, limited to the first `events` events and `blocks` blocks.
    Head {
        seg: Arc<HeadSegment>,
        events: u32,
        blocks: usize,
        min_ts: Timestamp,
        max_ts: Timestamp,
    },
}

impl SegmentView {
    pub fn id(&self) -> SegmentId {
        match self {
            SegmentView::Sealed { seg, .. } => seg.id,
            SegmentView::Head { seg, .. } => seg.id,
        }
    }

    /// The segment's header (where it continues the hash chain).
    pub fn header(&self) -> &format::SegmentHeader {
        match self {
            SegmentView::Sealed { seg, .. } => &seg.header,
            SegmentView::Head { seg, .. } => &seg.header,
        }
    }

    /// A block's header as stored (its chain value), read from the file.
    pub fn block_header(&self, meta: &BlockMeta) -> Result<format::BlockHeader> {
        match self {
            SegmentView::Sealed { seg, .. } => seg.block_header(meta),
            SegmentView::Head { seg, .. } => seg.block_header(meta),
        }
    }

    pub fn event_count(&self) -> u32 {
        match self {
            SegmentView::Sealed { events, .. } => *events,
            SegmentView::Head { events, .. } => *events,
        }
    }

    /// Inclusive `(min, max)` of `occurred_at`; meaningless when empty.
    pub fn time_bounds(&self) -> (Timestamp, Timestamp) {
        match self {
            SegmentView::Sealed { seg, .. } => (seg.facts.min_ts, seg.facts.max_ts),
            SegmentView::Head { min_ts, max_ts, .. } => (*min_ts, *max_ts),
        }
    }

    /// Limits the view to its first `n` events (for a cursor's snapshot).
    pub fn truncated(self, n: u32) -> SegmentView {
        match self {
            SegmentView::Head {
                seg,
                events,
                min_ts,
                max_ts,
                ..
            } if n < events => {
                let blocks = seg
                    .state()
                    .blocks
                    .iter()
                    .take_while(|b| b.first_ordinal < n)
                    .count();
                SegmentView::Head {
                    seg,
                    events: n,
                    blocks,
                    min_ts,
                    max_ts,
                }
            }
            SegmentView::Sealed { seg, events } => SegmentView::Sealed {
                seg,
                events: events.min(n),
            },
            other => other,
        }
    }

    pub fn blocks(&self) -> Vec<BlockMeta> {
        match self {
            SegmentView::Sealed { seg, events } => seg
                .blocks()
                .iter()
                .take_while(|b| b.first_ordinal < *events)
                .copied()
                .collect(),
            SegmentView::Head { seg, blocks, .. } => seg
                .state()
                .blocks
                .get(..*blocks)
                .unwrap_or_default()
                .to_vec(),
        }
    }

    pub fn read_block(&self, meta: &BlockMeta) -> Result<Arc<DecodedBlock>> {
        match self {
            SegmentView::Sealed { seg, .. } => seg.read_block(meta),
            SegmentView::Head { seg, .. } => seg.read_block(meta),
        }
    }

    /// Events holding `value` in `field`, limited to the view.
    pub fn index_lookup(&self, field: IndexedField, value: &str) -> Result<Arc<RoaringBitmap>> {
        match self {
            SegmentView::Sealed { seg, events } => {
                let bm = seg.index_lookup(field, value)?;
                if *events < seg.event_count() {
                    let mut limited = (*bm).clone();
                    limited.remove_range(*events..);
                    return Ok(Arc::new(limited));
                }
                Ok(bm)
            }
            SegmentView::Head { seg, events, .. } => {
                let st = seg.state();
                let mut bm = st
                    .index
                    .get(field, value)
                    .map(Held::to_bitmap)
                    .unwrap_or_default();
                bm.remove_range(*events..);
                Ok(Arc::new(bm))
            }
        }
    }

    /// Events matching `term` (a filter on `path` only), from a cached
    /// value index of `path`; `None` when there is none (the head segment
    /// never has one: it still grows).
    pub fn path_answer(&self, path: &FieldPath, term: &Filter) -> Option<RoaringBitmap> {
        match self {
            SegmentView::Sealed { seg, events } => {
                let cached = seg.cached_path_index(path)?;
                let index = cached.as_ref().as_ref()?;
                Some(index.answer(path, term, *events))
            }
            SegmentView::Head { .. } => None,
        }
    }

    pub fn find_id(&self, id: EventId) -> Result<Option<u32>> {
        Ok(match self {
            SegmentView::Sealed { seg, events } => {
                if id < seg.facts.min_id || id > seg.facts.max_id {
                    return Ok(None);
                }
                seg.find_id(id)?.filter(|o| o < events)
            }
            SegmentView::Head { seg, events, .. } => seg.state().find_id(id).filter(|o| o < events),
        })
    }

    /// The segment's events in key order `(occurred_at, ordinal)`.
    pub fn order(&self) -> SegmentOrder {
        match self {
            SegmentView::Sealed { seg, events } => SegmentOrder::Sealed {
                seg: seg.clone(),
                events: *events,
            },
            SegmentView::Head { seg, events, .. } => SegmentOrder::Head {
                order: seg.key_order(*events),
                seg: seg.clone(),
                events: *events,
            },
        }
    }

    /// The block holding `ordinal`: a binary search of the directory, in
    /// place (queries call this per candidate; copying the directory, tens
    /// of thousands of entries, would make each query O(segment)).
    pub fn block_for(&self, ordinal: u32) -> Option<BlockMeta> {
        if ordinal >= self.event_count() {
            return None;
        }
        let find = |blocks: &[BlockMeta]| {
            let i = blocks.partition_point(|b| b.first_ordinal <= ordinal);
            i.checked_sub(1).and_then(|i| blocks.get(i)).copied()
        };
        match self {
            SegmentView::Sealed { seg, .. } => find(seg.blocks()),
            SegmentView::Head { seg, blocks, .. } => {
                let st = seg.state();
                find(st.blocks.get(..*blocks).unwrap_or_default())
            }
        }
    }

    /// Reads one event by ordinal.
    pub fn event(&self, ordinal: u32) -> Result<Option<StoredEvent>> {
        match self.block_for(ordinal) {
            Some(meta) => Ok(self.read_block(&meta)?.event(ordinal)),
            None => Ok(None),
        }
    }
}

/// Access to a segment's key order, frozen for one reader. Lookups into the
/// head take its state lock only for the duration of one call, so a long
/// scan never holds the writer up.
pub enum SegmentOrder {
    Sealed {
        seg: Arc<SealedSegment>,
        events: u32,
    },
    /// `order` covers at least the first `events` ordinals (it may cover
    /// more when a newer reader extended it; those are skipped).
    Head {
        seg: Arc<HeadSegment>,
        order: Arc<Vec<u32>>,
        events: u32,
    },
}

impl SegmentOrder {
    /// Number of positions (for a truncated sealed view, positions may hold
    /// ordinals beyond the view; [`SegmentOrder::keys`] skips them).
    pub fn len(&self) -> u32 {
        match self {
            SegmentOrder::Sealed { seg, .. } => seg.event_count(),
            SegmentOrder::Head { order, .. } => order.len() as u32,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn visible(&self) -> u32 {
        match self {
            SegmentOrder::Sealed { events, .. } | SegmentOrder::Head { events, .. } => *events,
        }
    }

    /// The first position whose event is at or after `t`.
    pub fn lower_bound(&self, t: Timestamp) -> u32 {
        let (mut lo, mut hi) = (0u32, self.len());
        match self {
            SegmentOrder::Sealed { seg, .. } => {
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if seg.ts(seg.order_at(mid)) < t {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
            }
            SegmentOrder::Head { seg, order, .. } => {
                let st = seg.state();
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let o = order.get(mid as usize).copied().unwrap_or_default();
                    if st.ts(o) < t {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
            }
        }
        lo
    }

    /// Appends `(occurred_at, ordinal)` for the positions in `range`.
    pub fn keys(&self, range: std::ops::Range<u32>, out: &mut Vec<(Timestamp, u32)>) {
        let visible = self.visible();
        match self {
            SegmentOrder::Sealed { seg, .. } => {
                for pos in range {
                    let o = seg.order_at(pos);
                    if o < visible {
                        out.push((seg.ts(o), o));
                    }
                }
            }
            SegmentOrder::Head { seg, order, .. } => {
                let st = seg.state();
                for &o in order
                    .get(range.start as usize..range.end as usize)
                    .unwrap_or_default()
                {
                    if o < visible {
                        out.push((st.ts(o), o));
                    }
                }
            }
        }
    }

    /// `occurred_at` of each ordinal.
    pub fn times(&self, ordinals: impl Iterator<Item = u32>, out: &mut Vec<(Timestamp, u32)>) {
        match self {
            SegmentOrder::Sealed { seg, .. } => out.extend(ordinals.map(|o| (seg.ts(o), o))),
            SegmentOrder::Head { seg, .. } => {
                let st = seg.state();
                out.extend(ordinals.map(|o| (st.ts(o), o)));
            }
        }
    }
}
