//! Segment files: the unit of storage, sealing and retention.
//!
//! - `format`: the byte layout (pure encode/decode).
//! - `block`: compressing events into checksummed blocks and back.
//! - `head`: the segment being appended to, and its writer.
//! - `sealed`: finished segments, read through a memory map.
//! - `recover`: reopening the head after a crash.
//!
//! [`SegmentView`] gives readers one way to look at either kind, frozen at
//! the number of events visible when their snapshot was taken.

pub mod block;
pub mod format;
pub mod head;
pub mod recover;
pub mod sealed;

use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::event::StoredEvent;
use crate::index::IndexedField;
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

    pub fn read_block(&self, meta: &BlockMeta) -> Result<DecodedBlock> {
        match self {
            SegmentView::Sealed { seg, .. } => seg.read_block(meta),
            SegmentView::Head { seg, .. } => seg.read_block(meta),
        }
    }

    /// Events holding `value` in `field`, limited to the view.
    pub fn index_lookup(&self, field: IndexedField, value: &str) -> Result<RoaringBitmap> {
        match self {
            SegmentView::Sealed { seg, events } => {
                let mut bm = seg.index_lookup(field, value)?;
                if *events < seg.event_count() {
                    bm.remove_range(*events..);
                }
                Ok(bm)
            }
            SegmentView::Head { seg, events, .. } => {
                let st = seg.state();
                let mut bm = st.index.get(field, value).cloned().unwrap_or_default();
                bm.remove_range(*events..);
                Ok(bm)
            }
        }
    }

    pub fn find_id(&self, id: EventId) -> Option<u32> {
        match self {
            SegmentView::Sealed { seg, events } => {
                if id < seg.facts.min_id || id > seg.facts.max_id {
                    return None;
                }
                seg.find_id(id).filter(|o| o < events)
            }
            SegmentView::Head { seg, events, .. } => seg
                .state()
                .id_map
                .get(&id.as_u128())
                .copied()
                .filter(|o| o < events),
        }
    }

    /// Reads one event by ordinal.
    pub fn event(&self, ordinal: u32) -> Result<Option<StoredEvent>> {
        let blocks = self.blocks();
        let i = blocks.partition_point(|b| b.first_ordinal <= ordinal);
        let Some(meta) = i.checked_sub(1).and_then(|i| blocks.get(i)) else {
            return Ok(None);
        };
        if ordinal >= self.event_count() {
            return Ok(None);
        }
        Ok(self.read_block(meta)?.event(ordinal))
    }
}
