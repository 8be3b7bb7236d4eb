//! The arrival-order feed: matching events in the order they were stored,
//! read from a position, for pollers (pull) and live tails.
//!
//! Order is storage position `(segment id, ordinal)`, never `occurred_at`:
//! appends only ever add events after the current end (the head segment
//! grows, new segments get larger ids), and every snapshot sees a prefix of
//! that order. So a reader that resumes from the position after the last
//! event it read never misses or repeats one, back-dated events included.
//!
//! Positions can outlive what they point into: retention drops whole
//! segments and `verify` sets damaged ones aside. A read then resumes at the
//! next stored position and reports a [`FeedGap`] instead of failing; the
//! report is conservative (a gap is said whenever events may have been
//! skipped, see [`GapReason`]). Segments dropped after the last one a reader
//! has read are only noticed once a later segment exists: the gap comes
//! with the first events stored after it. A read from
//! [`FeedPosition::START`] means "from the oldest stored event" and never
//! reports a gap. Segment ids are never reused (see `SEGMENT_FLOOR` in
//! docs/FORMAT.md), so positions keep their meaning across restarts.
//!
//! This module reads snapshots only. It must never write, and it never
//! decides storage order: it follows the engine's.

use std::sync::Arc;

use crate::engine::{Engine, Snapshot};
use crate::error::{Error, Result};
use crate::event::StoredEvent;
use crate::query::ast::Filter;
use crate::query::eval::CompiledFilter;
use crate::query::exec::MAX_LIMIT;
use crate::query::plan::Plan;
use crate::segment::block::DecodedBlock;
use crate::segment::SegmentView;
use crate::types::{SegmentId, TimeRange};

/// Events whose JSON one read may parse for a filter the indexes cannot
/// answer, at most. A read that stops on this budget returns what it found
/// and a position past what it examined, so a filter matching nothing
/// never turns one request into a scan of the whole store.
pub const SCAN_BUDGET: u64 = 50_000;

/// A place in storage order: the next event to read is `ordinal` in
/// `segment`. `ordinal == u32::MAX` means "after all of a sealed segment".
/// Opaque to clients: they see [`FeedPosition::encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPosition {
    pub segment: SegmentId,
    pub ordinal: u32,
}

const POSITION_VERSION: u8 = 1;
/// Tells a feed position from a query cursor handed to the wrong endpoint.
const POSITION_KIND: u8 = b'F';
const POSITION_BYTES: usize = 18;

impl FeedPosition {
    /// Before the oldest stored event (segment ids start at 1).
    pub const START: FeedPosition = FeedPosition {
        segment: SegmentId(0),
        ordinal: 0,
    };

    /// Lower-case hex of: version (1), kind `F`, segment id (u64 LE),
    /// ordinal (u32 LE), CRC-32 of the preceding 14 bytes (u32 LE).
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(POSITION_BYTES);
        b.push(POSITION_VERSION);
        b.push(POSITION_KIND);
        b.extend_from_slice(&self.segment.0.to_le_bytes());
        b.extend_from_slice(&self.ordinal.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn decode(s: &str) -> Result<FeedPosition> {
        use crate::segment::format::{u32_at, u64_at};
        let bad = Error::BadCursor;
        if s.len() != POSITION_BYTES * 2 {
            return Err(bad("wrong length for a feed cursor"));
        }
        // Lower-case only, so each position has exactly one spelling.
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("not hexadecimal"));
        }
        let bytes: Vec<u8> = (0..POSITION_BYTES)
            .map(|i| {
                s.get(i * 2..i * 2 + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or(bad("not hexadecimal"))?;
        let body = bytes.get(..14).ok_or(bad("too short"))?;
        if u32_at(&bytes, 14) != Some(crc32fast::hash(body)) {
            return Err(bad("checksum mismatch"));
        }
        if bytes.first() != Some(&POSITION_VERSION) || bytes.get(1) != Some(&POSITION_KIND) {
            return Err(bad("unknown cursor version or kind"));
        }
        Ok(FeedPosition {
            segment: SegmentId(u64_at(&bytes, 2).ok_or(bad("malformed"))?),
            ordinal: u32_at(&bytes, 10).ok_or(bad("malformed"))?,
        })
    }

    fn at(segment: SegmentId, ordinal: u32) -> FeedPosition {
        FeedPosition { segment, ordinal }
    }
}

/// Why a read could not resume exactly where its position said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The position's segment is no longer stored (dropped by retention or
    /// set aside as damaged) and had not been read to its end.
    SegmentGone,
    /// Segment ids between the last one read and the next stored one are
    /// missing: segments the reader had not reached were dropped or set
    /// aside. (A segment created but never written also leaves a hole in
    /// the ids, rarely: then nothing was missed.)
    SegmentsMissing,
    /// The position lies past the events stored in its segment: it was made
    /// before a power failure lost unsynced events (relaxed sync policies),
    /// or by another store.
    BeyondEnd,
}

impl GapReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::SegmentGone => "segment_gone",
            GapReason::SegmentsMissing => "segments_missing",
            GapReason::BeyondEnd => "beyond_end",
        }
    }
}

/// Events may have been skipped between `from` and `resumed_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedGap {
    pub reason: GapReason,
    pub from: FeedPosition,
    /// Where reading went on; `None` while nothing is stored after `from`.
    pub resumed_at: Option<FeedPosition>,
}

/// One event and the position just after it (where to resume once it has
/// been handled).
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub event: StoredEvent,
    pub next: FeedPosition,
}

#[derive(Debug, Clone)]
pub struct FeedPage {
    pub events: Vec<FeedEvent>,
    /// Where the next read starts: after the last event examined, which may
    /// be past the last event returned (non-matching events are skipped
    /// once).
    pub next: FeedPosition,
    pub gap: Option<FeedGap>,
    /// True when the read reached the end of the snapshot (a poller may
    /// wait before asking again); false when it stopped on the limit or the
    /// scan budget.
    pub at_end: bool,
}

/// A compiled feed filter, ready to read snapshots.
pub struct Feed {
    plan: Plan,
    /// The filter itself, checked on decoded events when the indexes do
    /// not answer it exactly.
    residual: Option<CompiledFilter>,
}

impl Feed {
    pub fn new(filter: Option<&Filter>) -> Result<Feed> {
        let plan = Plan::new(filter, TimeRange::ALL);
        let residual = match filter {
            Some(f) if !plan.is_exact() => Some(f.compile()?),
            _ => None,
        };
        Ok(Feed { plan, residual })
    }

    /// Up to `limit` matching events stored at or after `from`, in storage
    /// order.
    pub fn read(&self, snap: &Snapshot, from: FeedPosition, limit: usize) -> Result<FeedPage> {
        self.read_budget(snap, from, limit, SCAN_BUDGET)
    }

    fn read_budget(
        &self,
        snap: &Snapshot,
        from: FeedPosition,
        limit: usize,
        budget: u64,
    ) -> Result<FeedPage> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let mut segs: Vec<&SegmentView> = snap
            .segments
            .iter()
            .filter(|s| s.event_count() > 0)
            .collect();
        segs.sort_by_key(|s| s.id());
        let mut page = FeedPage {
            events: Vec::new(),
            next: from,
            gap: None,
            at_end: true,
        };
        let first = segs.partition_point(|s| s.id() < from.segment);
        // Where the position stands: inside a stored segment, or before the
        // next stored one.
        let mut pos = from;
        // The segment last read (or the position's own, when stored or fully
        // read), from which a jump to a later id is judged.
        let mut last_seen: Option<SegmentId> = None;
        match segs.get(first) {
            Some(seg) if seg.id() == from.segment => {
                let count = seg.event_count();
                let sealed = matches!(seg, SegmentView::Sealed { .. });
                if from.ordinal > count && !(sealed && from.ordinal == u32::MAX) {
                    pos = FeedPosition::at(seg.id(), count);
                    page.gap = Some(FeedGap {
                        reason: GapReason::BeyondEnd,
                        from,
                        resumed_at: Some(pos),
                    });
                }
                last_seen = Some(seg.id());
            }
            _ if from.segment == FeedPosition::START.segment => {}
            // The position's segment was read to its end: what follows is
            // judged by the ids in between.
            _ if from.ordinal == u32::MAX => last_seen = Some(from.segment),
            next => {
                page.gap = Some(FeedGap {
                    reason: GapReason::SegmentGone,
                    from,
                    resumed_at: next.map(|s| FeedPosition::at(s.id(), 0)),
                });
                match next {
                    Some(s) => {
                        pos = FeedPosition::at(s.id(), 0);
                        last_seen = Some(s.id());
                    }
                    None => return Ok(page),
                }
            }
        }
        let range = self.plan.range;
        let mut examined = 0u64;
        let mut block: Option<(u64, Arc<DecodedBlock>)> = None;
        for seg in segs.iter().skip(first) {
            let id = seg.id();
            let count = seg.event_count();
            if let Some(prev) = last_seen.filter(|p| *p < id) {
                if prev.0.checked_add(1) != Some(id.0) {
                    let gap = FeedGap {
                        reason: GapReason::SegmentsMissing,
                        from: pos,
                        resumed_at: Some(FeedPosition::at(id, 0)),
                    };
                    if page.gap.is_some() {
                        // One gap per answer: stop before this one, so the
                        // next read reports it.
                        page.next = pos;
                        page.at_end = false;
                        return Ok(page);
                    }
                    page.gap = Some(gap);
                }
            }
            last_seen = Some(id);
            let start = if id == pos.segment { pos.ordinal } else { 0 };
            // A sealed segment read to its end is marked as such, so that
            // dropping it later does not look like a gap.
            let end = match seg {
                SegmentView::Sealed { .. } => FeedPosition::at(id, u32::MAX),
                SegmentView::Head { .. } => FeedPosition::at(id, count),
            };
            if start < count {
                let (mut candidates, exact) = self.plan.candidates(seg)?;
                candidates.remove_range(..start);
                for ordinal in candidates.iter() {
                    if page.events.len() >= limit || examined >= budget {
                        page.next = FeedPosition::at(id, ordinal);
                        page.at_end = false;
                        return Ok(page);
                    }
                    let Some(meta) = seg.block_for(ordinal) else {
                        continue;
                    };
                    let decoded = match &block {
                        Some((offset, b)) if *offset == meta.offset => b.clone(),
                        _ => {
                            let b = seg.read_block(&meta)?;
                            block = Some((meta.offset, b.clone()));
                            b
                        }
                    };
                    // `occurred_at` terms are folded into the plan's range
                    // rather than left to the residual filter.
                    let ts = ordinal
                        .checked_sub(decoded.first_ordinal)
                        .and_then(|i| decoded.slots().get(i as usize))
                        .map(|s| s.ts);
                    if !ts.is_some_and(|t| range.contains(t)) {
                        continue;
                    }
                    if !exact {
                        examined += 1;
                        if !self.matches(&decoded, ordinal, seg)? {
                            continue;
                        }
                    }
                    if let Some(event) = decoded.event(ordinal) {
                        page.events.push(FeedEvent {
                            event,
                            next: FeedPosition::at(id, ordinal + 1),
                        });
                    }
                }
                block = None;
            }
            pos = end;
        }
        page.next = pos;
        Ok(page)
    }

    fn matches(&self, block: &DecodedBlock, ordinal: u32, seg: &SegmentView) -> Result<bool> {
        let Some(residual) = &self.residual else {
            return Ok(true);
        };
        let json = block.json(ordinal).unwrap_or_default();
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
            Error::corrupt(
                match seg {
                    SegmentView::Sealed { seg, .. } => seg.path.clone(),
                    SegmentView::Head { seg, .. } => seg.path.clone(),
                },
                0,
                format!("stored event is not JSON: {e}"),
            )
        })?;
        Ok(residual.matches(&value))
    }
}

impl Snapshot {
    /// The position after the newest event of this snapshot: where a live
    /// tail that wants only new events starts.
    pub fn feed_end(&self) -> FeedPosition {
        let (segment, ordinal) = self.watermark();
        FeedPosition { segment, ordinal }
    }
}

impl Engine {
    /// The end of the store now. Changes whenever a commit lands (and when
    /// retention drops the newest segment): a cheap value to poll for "new
    /// events may be there" without the engine knowing who listens.
    pub fn feed_end(&self) -> FeedPosition {
        self.snapshot().feed_end()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::query::parse_filter;
    use crate::testing::SimFs;
    use crate::{EngineConfig, Timestamp};

    fn engine(max_segment_events: u32) -> Engine {
        let cfg = EngineConfig {
            max_segment_events,
            dictionary: false,
            block_bytes: 256,
            ..EngineConfig::default()
        };
        Engine::open_with(Arc::new(SimFs::new()), Path::new("/d"), cfg)
            .unwrap()
            .0
    }

    fn ev(n: u32, action: &str, day: u32) -> String {
        format!(
            r#"{{"occurred_at":"2024-01-{:02}T00:00:00Z","action_name":"{action}","actor":{{"type":"user","id":"{n}"}},"request":{{"path":"/p/{n}"}}}}"#,
            day
        )
    }

    #[test]
    fn position_round_trips_and_rejects_tampering() {
        let p = FeedPosition::at(SegmentId(0x1234_5678_9abc), 77);
        let s = p.encode();
        assert_eq!(s.len(), 36);
        assert_eq!(FeedPosition::decode(&s).unwrap(), p);
        let mut flipped = s.clone().into_bytes();
        flipped[20] = if flipped[20] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(FeedPosition::decode(&flipped).is_err());
        assert!(FeedPosition::decode(&s.to_uppercase()).is_err());
        assert!(FeedPosition::decode("").is_err());
        assert!(FeedPosition::decode(&"0".repeat(76)).is_err());
    }

    #[test]
    fn scan_budget_moves_the_position_on_without_matches() {
        let e = engine(1000);
        let batch: Vec<String> = (0..100).map(|n| ev(n, "a", 1)).collect();
        e.append_json(&batch).unwrap();
        let feed = Feed::new(Some(&parse_filter("request.path LIKE '/none%'").unwrap())).unwrap();
        let snap = e.snapshot();
        let mut pos = FeedPosition::START;
        let mut reads = 0;
        loop {
            let page = feed.read_budget(&snap, pos, 10, 30).unwrap();
            assert!(page.events.is_empty());
            assert!(page.next > pos, "the position must move on");
            pos = page.next;
            reads += 1;
            if page.at_end {
                break;
            }
        }
        assert_eq!(reads, 4);
        assert_eq!(pos, snap.feed_end());
    }

    #[test]
    fn retention_drop_under_a_position_is_a_gap_not_an_error() {
        let e = engine(5);
        // Day 1 events fill segment 1 and 2, day 20 events the rest.
        let old: Vec<String> = (0..8).map(|n| ev(n, "a", 1)).collect();
        e.append_json(&old).unwrap();
        e.seal().unwrap();
        let new: Vec<String> = (0..3).map(|n| ev(n, "b", 20)).collect();
        e.append_json(&new).unwrap();
        let feed = Feed::new(None).unwrap();
        let first = feed.read(&e.snapshot(), FeedPosition::START, 2).unwrap();
        assert_eq!(first.events.len(), 2);
        assert!(first.gap.is_none());
        let cutoff = Timestamp::parse_rfc3339("2024-01-10T00:00:00Z").unwrap();
        assert!(e.drop_before(cutoff).unwrap().segments >= 1);
        let page = feed.read(&e.snapshot(), first.next, 100).unwrap();
        let gap = page.gap.expect("a gap must be reported");
        assert_eq!(gap.reason, GapReason::SegmentGone);
        assert_eq!(gap.from, first.next);
        let actions: Vec<String> = page
            .events
            .iter()
            .map(|f| f.event.value().unwrap()["action_name"].to_string())
            .collect();
        assert_eq!(actions, vec!["\"b\""; 3]);
        // From the end it resumes without a gap.
        let again = feed.read(&e.snapshot(), page.next, 100).unwrap();
        assert!(again.gap.is_none() && again.events.is_empty());
    }

    #[test]
    fn a_segment_read_to_its_end_and_dropped_is_no_gap() {
        let e = engine(1000);
        let old: Vec<String> = (0..4).map(|n| ev(n, "a", 1)).collect();
        e.append_json(&old).unwrap();
        e.seal().unwrap();
        let feed = Feed::new(None).unwrap();
        let page = feed.read(&e.snapshot(), FeedPosition::START, 100).unwrap();
        assert_eq!(page.events.len(), 4);
        let cutoff = Timestamp::parse_rfc3339("2024-01-10T00:00:00Z").unwrap();
        e.drop_before(cutoff).unwrap();
        let idle = feed.read(&e.snapshot(), page.next, 100).unwrap();
        assert!(idle.gap.is_none() && idle.events.is_empty());
        e.append_json(&[ev(9, "c", 20)]).unwrap();
        let later = feed.read(&e.snapshot(), idle.next, 100).unwrap();
        assert!(later.gap.is_none());
        assert_eq!(later.events.len(), 1);
    }

    #[test]
    fn segment_ids_are_not_reused_after_dropping_everything_and_reopening() {
        let fs = SimFs::new();
        let cfg = EngineConfig {
            dictionary: false,
            ..EngineConfig::default()
        };
        let open = || {
            Engine::open_with(Arc::new(fs.clone()), Path::new("/d"), cfg.clone())
                .unwrap()
                .0
        };
        let e = open();
        e.append_json(&[ev(1, "a", 1), ev(2, "a", 1)]).unwrap();
        let before = e.feed_end();
        let cutoff = Timestamp::parse_rfc3339("2024-01-10T00:00:00Z").unwrap();
        assert_eq!(e.drop_before(cutoff).unwrap().segments, 1);
        e.close().unwrap();
        let e = open();
        e.append_json(&[ev(3, "a", 20)]).unwrap();
        assert!(e.feed_end().segment > before.segment);
        let page = Feed::new(None)
            .unwrap()
            .read(&e.snapshot(), before, 10)
            .unwrap();
        assert_eq!(page.events.len(), 1);
    }

    #[test]
    fn a_position_past_the_end_resumes_at_the_end_with_a_gap() {
        let e = engine(1000);
        e.append_json(&[ev(1, "a", 1), ev(2, "a", 1)]).unwrap();
        let end = e.feed_end();
        let beyond = FeedPosition::at(end.segment, end.ordinal + 5);
        let page = Feed::new(None)
            .unwrap()
            .read(&e.snapshot(), beyond, 10)
            .unwrap();
        assert_eq!(page.gap.map(|g| g.reason), Some(GapReason::BeyondEnd));
        assert_eq!(page.next, end);
    }
}
