//! Running a query over a snapshot: pick segments by time, get candidates
//! from the plan, walk them in key order, check the residual filter on
//! decoded events where the indexes were not exact, and stop at the limit.
//!
//! Results are ordered by the key `(occurred_at, segment, ordinal)`: time
//! order, with ties in arrival order. A cursor carries the last key and the
//! snapshot's watermark, so paging neither repeats nor skips an event while
//! appends go on (events appended after the first page are not part of that
//! result; a new query sees them).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::StoredEvent;
use crate::query::ast::{CmpOp, Filter, Literal};
use crate::query::eval::CompiledFilter;
use crate::query::plan::Plan;
use crate::segment::block::DecodedBlock;
use crate::segment::SegmentView;
use crate::types::{Order, SegmentId, TimeRange, Timestamp};
use crate::Snapshot;

/// The largest page a query may ask for.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<Filter>,
    pub range: TimeRange,
    pub order: Order,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    /// Present when the page is full: pass it back for the next page.
    pub next_cursor: Option<Cursor>,
}

/// Global sort key of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub ts: Timestamp,
    pub segment: SegmentId,
    pub ordinal: u32,
}

/// Where a page ended, and the snapshot it belongs to. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub watermark: (SegmentId, u32),
    pub last: Key,
    pub order: Order,
}

const CURSOR_VERSION: u8 = 1;

impl Cursor {
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(38);
        b.push(CURSOR_VERSION);
        b.push(match self.order {
            Order::NewestFirst => 0,
            Order::OldestFirst => 1,
        });
        b.extend_from_slice(&self.watermark.0 .0.to_le_bytes());
        b.extend_from_slice(&self.watermark.1.to_le_bytes());
        b.extend_from_slice(&self.last.ts.0.to_le_bytes());
        b.extend_from_slice(&self.last.segment.0.to_le_bytes());
        b.extend_from_slice(&self.last.ordinal.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn decode(s: &str) -> Result<Cursor> {
        let bad = Error::BadCursor;
        if s.len() != 76 {
            return Err(bad("wrong length"));
        }
        // Lower-case hex only, so each cursor has exactly one spelling.
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("not hexadecimal"));
        }
        let bytes: Vec<u8> = (0..38)
            .map(|i| {
                s.get(i * 2..i * 2 + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()
            .ok_or(bad("not hexadecimal"))?;
        let body = bytes.get(..34).ok_or(bad("too short"))?;
        if crate::segment::format::u32_at(&bytes, 34) != Some(crc32fast::hash(body)) {
            return Err(bad("checksum mismatch"));
        }
        use crate::segment::format::{i64_at, u32_at, u64_at};
        if bytes.first() != Some(&CURSOR_VERSION) {
            return Err(bad("unknown version"));
        }
        let order = match bytes.get(1) {
            Some(0) => Order::NewestFirst,
            Some(1) => Order::OldestFirst,
            _ => return Err(bad("unknown order")),
        };
        let field = || bad("malformed");
        Ok(Cursor {
            order,
            watermark: (
                SegmentId(u64_at(&bytes, 2).ok_or_else(field)?),
                u32_at(&bytes, 10).ok_or_else(field)?,
            ),
            last: Key {
                ts: Timestamp(i64_at(&bytes, 14).ok_or_else(field)?),
                segment: SegmentId(u64_at(&bytes, 22).ok_or_else(field)?),
                ordinal: u32_at(&bytes, 30).ok_or_else(field)?,
            },
        })
    }
}

/// The blocks one query has touched, in front of the shared block cache
/// (which may evict them mid-query under pressure from other readers).
/// Bounded: cleared when it holds 256 blocks.
#[derive(Default)]
struct BlockCache {
    blocks: HashMap<(SegmentId, u64), Arc<DecodedBlock>>,
}

impl BlockCache {
    const MAX_BLOCKS: usize = 256;

    fn get(&mut self, seg: &SegmentView, ordinal: u32) -> Result<Option<Arc<DecodedBlock>>> {
        let Some(meta) = seg.block_for(ordinal) else {
            return Ok(None);
        };
        let key = (seg.id(), meta.offset);
        if let Some(b) = self.blocks.get(&key) {
            return Ok(Some(b.clone()));
        }
        if self.blocks.len() >= Self::MAX_BLOCKS {
            self.blocks.clear();
        }
        let block = seg.read_block(&meta)?;
        self.blocks.insert(key, block.clone());
        Ok(Some(block))
    }
}

/// A compiled query, ready to run against snapshots.
pub struct Prepared {
    plan: Plan,
    residual: Option<CompiledFilter>,
    /// Byte strings a matching event's JSON must contain (see
    /// [`required_bytes`]); events without them skip the JSON parse.
    required: Vec<Vec<u8>>,
}

/// For each top-level AND term `path = 'text'` or `path LIKE 'prefix%'`,
/// the JSON encoding of the text (with its opening quote) that any
/// matching event's JSON must contain. Only a necessary condition, and only
/// trusted for events whose JSON has no backslash (no escapes that could
/// spell the same text differently).
fn required_bytes(filter: &Filter) -> Vec<Vec<u8>> {
    let terms: &[Filter] = match filter {
        Filter::And(terms) => terms,
        other => std::slice::from_ref(other),
    };
    let mut out = Vec::new();
    for term in terms {
        match term {
            Filter::Compare {
                op: CmpOp::Eq,
                value: Literal::String(s),
                path,
            } if !path.is("occurred_at") => {
                if let Ok(bytes) = serde_json::to_vec(s) {
                    out.push(bytes);
                }
            }
            Filter::Like {
                pattern,
                negated: false,
                ..
            } => {
                let prefix: String = pattern
                    .chars()
                    .take_while(|c| !matches!(c, '%' | '_' | '\\'))
                    .collect();
                if let Ok(mut bytes) = serde_json::to_vec(&prefix) {
                    bytes.pop(); // the closing quote: the text goes on
                    if bytes.len() > 1 {
                        out.push(bytes);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

impl Prepared {
    pub fn new(filter: Option<&Filter>, range: TimeRange) -> Result<Prepared> {
        let plan = Plan::new(filter, range);
        let residual = match filter {
            Some(f) if !plan.is_exact() => Some(f.compile()?),
            _ => None,
        };
        let required = match (filter, &residual) {
            (Some(f), Some(_)) => required_bytes(f),
            _ => Vec::new(),
        };
        Ok(Prepared {
            plan,
            residual,
            required,
        })
    }

    pub fn range(&self) -> TimeRange {
        self.plan.range
    }

    fn segments<'a>(&self, snap: &'a Snapshot) -> impl Iterator<Item = &'a SegmentView> {
        let range = self.plan.range;
        snap.segments.iter().filter(move |s| {
            let (lo, hi) = s.time_bounds();
            s.event_count() > 0 && range.overlaps(lo, hi)
        })
    }

    /// Checks the residual filter on one candidate.
    fn matches(
        &self,
        seg: &SegmentView,
        cache: &mut BlockCache,
        ordinal: u32,
        exact: bool,
    ) -> Result<bool> {
        let Some(residual) = self.residual.as_ref().filter(|_| !exact) else {
            return Ok(true);
        };
        let Some(block) = cache.get(seg, ordinal)? else {
            return Ok(false);
        };
        let json = block.json(ordinal).unwrap_or_default();
        if !self.required.is_empty()
            && memchr::memchr(b'\\', json).is_none()
            && self
                .required
                .iter()
                .any(|r| memchr::memmem::find(json, r).is_none())
        {
            return Ok(false);
        }
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

    /// Counts matching events.
    pub fn count(&self, snap: &Snapshot) -> Result<u64> {
        self.build_path_indexes(snap)?;
        let range = self.plan.range;
        let mut total = 0u64;
        // Segments whose events must be read are counted on all cores:
        // that work is independent per segment and dominated by
        // decompression.
        let mut to_scan: Vec<(&SegmentView, Vec<u32>)> = Vec::new();
        for seg in self.segments(snap) {
            let (candidates, exact) = self.plan.candidates(seg)?;
            if candidates.is_empty() {
                continue;
            }
            let (lo, hi) = seg.time_bounds();
            let whole = range.from.is_none_or(|f| lo >= f) && range.to.is_none_or(|t| hi < t);
            if exact && whole {
                total += candidates.len();
                continue;
            }
            let order = seg.order();
            let mut keyed = Vec::new();
            let span = self.span(&order);
            if candidates.len() <= u64::from(span.end - span.start) {
                order.times(candidates.iter(), &mut keyed);
                keyed.retain(|(t, _)| range.contains(*t));
            } else {
                order.keys(span, &mut keyed);
                keyed.retain(|(_, o)| candidates.contains(*o));
            }
            if exact {
                total += keyed.len() as u64;
                continue;
            }
            // Block order makes neighbouring candidates share a decode.
            let mut ordinals: Vec<u32> = keyed.into_iter().map(|(_, o)| o).collect();
            ordinals.sort_unstable();
            to_scan.push((seg, ordinals));
        }
        total += on_all_cores(&to_scan, |(seg, ordinals)| {
            self.count_matching(seg, ordinals)
        })?;
        Ok(total)
    }

    /// Builds the value indexes of the filter's non-indexed paths in every
    /// sealed segment whose events a count would otherwise read (most of
    /// them): the build reads each event once, as the count would, and
    /// later queries on those paths are then answered from the cache.
    /// Segments where the indexed terms already leave few candidates are
    /// left alone: checking those few is cheaper.
    fn build_path_indexes(&self, snap: &Snapshot) -> Result<()> {
        let paths = self.plan.paths();
        if paths.is_empty() {
            return Ok(());
        }
        let mut jobs = Vec::new();
        for view in self.segments(snap) {
            let SegmentView::Sealed { seg, .. } = view else {
                continue;
            };
            let (candidates, exact) = self.plan.candidates(view)?;
            if exact || candidates.len() < u64::from(view.event_count()) / 8 {
                continue;
            }
            for path in &paths {
                if seg.cached_path_index(path).is_none() {
                    jobs.push((seg.clone(), *path));
                }
            }
        }
        on_all_cores(&jobs, |(seg, path)| {
            seg.build_path_index(path)?;
            Ok(0)
        })?;
        Ok(())
    }

    /// How many of `ordinals` (sorted) match the residual filter.
    fn count_matching(&self, seg: &SegmentView, ordinals: &[u32]) -> Result<u64> {
        let mut cache = BlockCache::default();
        let mut n = 0u64;
        for &o in ordinals {
            if self.matches(seg, &mut cache, o, false)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Positions of `order` inside the time range.
    fn span(&self, order: &crate::segment::SegmentOrder) -> std::ops::Range<u32> {
        let start = self.plan.range.from.map_or(0, |f| order.lower_bound(f));
        let end = self
            .plan
            .range
            .to
            .map_or(order.len(), |t| order.lower_bound(t));
        start..end.max(start)
    }

    /// One page of results.
    pub fn page(
        &self,
        snap: &Snapshot,
        order: Order,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let snap = match cursor {
            Some(c) => {
                if c.order != order {
                    return Err(Error::BadCursor("cursor was made for the other order"));
                }
                snap.clone().until(c.watermark)
            }
            None => snap.clone(),
        };
        let watermark = snap.watermark();
        let after_cursor = |k: &Key| match (cursor, order) {
            (None, _) => true,
            (Some(c), Order::NewestFirst) => *k < c.last,
            (Some(c), Order::OldestFirst) => *k > c.last,
        };
        let mut segs: Vec<&SegmentView> = self.segments(&snap).collect();
        match order {
            Order::NewestFirst => {
                segs.sort_by_key(|s| std::cmp::Reverse((s.time_bounds().1, s.id())))
            }
            Order::OldestFirst => segs.sort_by_key(|s| (s.time_bounds().0, s.id())),
        }
        // The best `limit` keys so far, with the segment they came from.
        let mut found: Vec<(Key, usize)> = Vec::with_capacity(limit + 1);
        let mut cache = BlockCache::default();
        for (si, seg) in segs.iter().enumerate() {
            let (lo, hi) = seg.time_bounds();
            if found.len() >= limit {
                let worst = found.last().map(|(k, _)| k.ts).unwrap_or_default();
                let hopeless = match order {
                    Order::NewestFirst => hi < worst,
                    Order::OldestFirst => lo > worst,
                };
                if hopeless {
                    break;
                }
            }
            let (candidates, exact) = self.plan.candidates(seg)?;
            if candidates.is_empty() {
                continue;
            }
            let seg_order = seg.order();
            let span = self.span(&seg_order);
            let id = seg.id();
            let key_of = |(ts, ordinal): (Timestamp, u32)| Key {
                ts,
                segment: id,
                ordinal,
            };
            let better = |k: &Key, found: &[(Key, usize)]| {
                found.len() < limit
                    || found.last().is_some_and(|(w, _)| match order {
                        Order::NewestFirst => k > w,
                        Order::OldestFirst => k < w,
                    })
            };
            let mut taken = 0usize;
            let accept = |k: Key, found: &mut Vec<(Key, usize)>| {
                let pos = match order {
                    Order::NewestFirst => found.partition_point(|(f, _)| *f > k),
                    Order::OldestFirst => found.partition_point(|(f, _)| *f < k),
                };
                found.insert(pos, (k, si));
                found.truncate(limit);
            };
            if candidates.len() <= 4 * limit as u64 + u64::from(span.end - span.start) / 64 {
                // Few candidates: sort them by key directly.
                let mut keyed = Vec::with_capacity(candidates.len() as usize);
                seg_order.times(candidates.iter(), &mut keyed);
                keyed.retain(|(t, _)| self.plan.range.contains(*t));
                keyed.sort_unstable();
                if order == Order::NewestFirst {
                    keyed.reverse();
                }
                for kt in keyed {
                    let k = key_of(kt);
                    if !after_cursor(&k) {
                        continue;
                    }
                    if !better(&k, &found) || taken >= limit {
                        break;
                    }
                    if self.matches(seg, &mut cache, k.ordinal, exact)? {
                        accept(k, &mut found);
                        taken += 1;
                    }
                }
            } else {
                // Many candidates: walk the time order, a chunk at a time.
                const CHUNK: u32 = 1024;
                let mut keyed = Vec::with_capacity(CHUNK as usize);
                let mut next = match order {
                    Order::NewestFirst => span.end,
                    Order::OldestFirst => span.start,
                };
                'walk: loop {
                    let chunk = match order {
                        Order::NewestFirst if next > span.start => {
                            next.saturating_sub(CHUNK).max(span.start)..next
                        }
                        Order::OldestFirst if next < span.end => {
                            next..next.saturating_add(CHUNK).min(span.end)
                        }
                        _ => break,
                    };
                    next = match order {
                        Order::NewestFirst => chunk.start,
                        Order::OldestFirst => chunk.end,
                    };
                    keyed.clear();
                    seg_order.keys(chunk, &mut keyed);
                    if order == Order::NewestFirst {
                        keyed.reverse();
                    }
                    for &kt in &keyed {
                        if !candidates.contains(kt.1) {
                            continue;
                        }
                        let k = key_of(kt);
                        if !after_cursor(&k) {
                            continue;
                        }
                        if !better(&k, &found) || taken >= limit {
                            break 'walk;
                        }
                        if self.matches(seg, &mut cache, k.ordinal, exact)? {
                            accept(k, &mut found);
                            taken += 1;
                        }
                    }
                }
            }
        }
        let mut events = Vec::with_capacity(found.len());
        for (k, si) in &found {
            let Some(seg) = segs.get(*si) else { continue };
            if let Some(e) = cache.get(seg, k.ordinal)?.and_then(|b| b.event(k.ordinal)) {
                events.push(e);
            }
        }
        let next_cursor = (found.len() == limit)
            .then(|| {
                found.last().map(|(k, _)| Cursor {
                    watermark,
                    last: *k,
                    order,
                })
            })
            .flatten();
        Ok(Page {
            events,
            next_cursor,
        })
    }
}

/// Runs `job` on every item, spread over all cores (the items are
/// independent, and each is dominated by decompression), and sums.
fn on_all_cores<T: Sync>(items: &[T], job: impl Fn(&T) -> Result<u64> + Sync) -> Result<u64> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(&job).sum();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut sum = 0u64;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return Ok(sum);
                        };
                        sum += job(item)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("a query thread panicked".into())))
            })
            .collect()
    });
    results.into_iter().sum()
}

impl Snapshot {
    /// Runs `query` against this snapshot.
    pub fn query(&self, query: &Query) -> Result<Page> {
        Prepared::new(query.filter.as_ref(), query.range)?.page(
            self,
            query.order,
            query.limit,
            query.cursor.as_ref(),
        )
    }

    pub fn count(&self, filter: Option<&Filter>, range: TimeRange) -> Result<u64> {
        Prepared::new(filter, range)?.count(self)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::query::parse_filter;
    use crate::testing::SimFs;
    use crate::{Engine, EngineConfig};

    #[test]
    fn byte_prefilter_never_hides_a_match_spelled_with_escapes() {
        let (engine, _) = Engine::open_with(
            Arc::new(SimFs::new()),
            Path::new("/d"),
            EngineConfig::default(),
        )
        .unwrap();
        engine
            .append_json(&[
                r#"{"action_name":"a","actor":{"type":"u","id":"1"},"request":{"path":"/items/\u0031"}}"#,
                r#"{"action_name":"a","actor":{"type":"u","id":"1"},"request":{"path":"/items/1"}}"#,
                r#"{"action_name":"a","actor":{"type":"u","id":"1"},"request":{"path":"/items/2"}}"#,
            ])
            .unwrap();
        let snap = engine.snapshot();
        for (text, want) in [
            ("request.path = '/items/1'", 2),
            ("request.path LIKE '/items/1%'", 2),
            (
                "request.path LIKE '/items/%' AND request.path = '/items/2'",
                1,
            ),
            ("request.path = '/nowhere'", 0),
        ] {
            let f = parse_filter(text).unwrap();
            assert_eq!(
                snap.count(Some(&f), TimeRange::ALL).unwrap(),
                want,
                "{text}"
            );
            let page = snap
                .query(&Query {
                    filter: Some(f),
                    limit: 10,
                    ..Query::default()
                })
                .unwrap();
            assert_eq!(page.events.len() as u64, want, "{text}");
        }
    }

    #[test]
    fn required_bytes_come_only_from_and_terms() {
        let f = parse_filter("a.b = 'x\"y' AND c LIKE 'pre%' AND (d = 'no' OR e = 'no')").unwrap();
        assert_eq!(
            required_bytes(&f),
            vec![br#""x\"y""#.to_vec(), br#""pre"#.to_vec()]
        );
        assert!(required_bytes(&parse_filter("NOT a = 'x'").unwrap()).is_empty());
    }
}
