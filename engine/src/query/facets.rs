//! Facets of a filtered range: how many events match, how many fall in each
//! time bucket, and the most frequent `action_name` values and actors. This
//! is what the viewer's overview draws.
//!
//! Per segment, the matching events are found as an exact bitmap of
//! ordinals: straight from the [`Plan`] when the indexes answer the filter
//! (the usual case: action, actor, environment), else by decoding the
//! plan's candidates and checking the residual filter. From that bitmap
//! everything else comes without decoding an event: times from the time
//! column, and each facet value's count as the size of the bitmap's
//! intersection with that value's index bitmap.
//!
//! The work is bounded ([`FacetLimits`]): decoding stops before a segment
//! would take the decoded-event count over the budget (segments are taken
//! newest first, so the result then covers the newest part of the range),
//! and at most `max_distinct` values per facet are tracked. Either limit
//! being hit is reported in [`Facets`], never hidden. This module only
//! reads; it never changes a segment or an index.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::index::{Held, Holders, IndexedField};
use crate::query::ast::{CmpOp, FieldPath, Filter, Literal};
use crate::query::eval::CompiledFilter;
use crate::query::exec::Prepared;
use crate::query::plan::Plan;
use crate::segment::block::DecodedBlock;
use crate::segment::SegmentView;
use crate::types::{Order, TimeRange, Timestamp};
use crate::Snapshot;

/// How far one facet computation may go.
#[derive(Debug, Clone, Copy)]
pub struct FacetLimits {
    /// Events whose bodies may be decoded to check a filter the indexes do
    /// not answer. Counting from indexes alone has no such cost.
    pub max_decoded_events: u64,
    /// Distinct values tracked per facet; further new values are not counted.
    pub max_distinct: usize,
}

impl Default for FacetLimits {
    fn default() -> Self {
        FacetLimits {
            max_decoded_events: 500_000,
            max_distinct: 100_000,
        }
    }
}

/// One facet request.
#[derive(Debug, Clone)]
pub struct FacetQuery {
    pub filter: Option<Filter>,
    pub range: TimeRange,
    /// Bucket width in microseconds; buckets start at multiples of it
    /// since the Unix epoch (so hour and day buckets are UTC hours and days).
    pub bucket_micros: i64,
    /// How many top values to return per facet.
    pub top: usize,
    /// Look up each top actor's latest `actor.name` (one small indexed
    /// query per actor).
    pub actor_names: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorCount {
    pub actor_type: String,
    pub id: String,
    pub name: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facets {
    pub total: u64,
    /// Non-empty buckets only, by start time.
    pub buckets: Vec<(Timestamp, u64)>,
    /// By count (highest first), then value.
    pub top_actions: Vec<(String, u64)>,
    pub top_actors: Vec<ActorCount>,
    pub top_environments: Vec<(String, u64)>,
    /// Events decoded to check a residual filter.
    pub decoded_events: u64,
    /// Segments left out because decoding them would exceed the budget
    /// (the counts then miss their events).
    pub skipped_segments: usize,
    /// True when more than `max_distinct` values of a facet were seen: the
    /// top lists may then miss values first seen after the cap.
    pub distinct_capped: bool,
}

impl Facets {
    /// True when every matching event was counted.
    pub fn complete(&self) -> bool {
        self.skipped_segments == 0 && !self.distinct_capped
    }
}

/// Counts per value, with a cap on how many values are tracked.
struct Tally<K> {
    counts: HashMap<K, u64>,
    cap: usize,
    capped: bool,
}

impl<K: std::hash::Hash + Eq + Ord + Clone> Tally<K> {
    fn new(cap: usize) -> Self {
        Tally {
            counts: HashMap::new(),
            cap,
            capped: false,
        }
    }

    fn add(&mut self, key: impl FnOnce() -> K, probe: &K, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(c) = self.counts.get_mut(probe) {
            *c += n;
        } else if self.counts.len() < self.cap {
            self.counts.insert(key(), n);
        } else {
            self.capped = true;
        }
    }

    fn top(self, k: usize) -> Vec<(K, u64)> {
        let mut all: Vec<(K, u64)> = self.counts.into_iter().collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

fn seg_path(seg: &SegmentView) -> std::path::PathBuf {
    match seg {
        SegmentView::Sealed { seg, .. } => seg.path.clone(),
        SegmentView::Head { seg, .. } => seg.path.clone(),
    }
}

/// Calls `f` with each value of `field` in `seg` and the ordinals holding
/// it. A sealed segment's index section is read in one pass, in place: a
/// value held by one event (most actor ids) costs no decoding at all, and
/// the shared bitmap cache is left alone (each bitmap is needed once). The
/// head's bitmaps are in memory and read under its lock, which is held
/// only for these intersections.
fn for_each_value(
    seg: &SegmentView,
    field: IndexedField,
    mut f: impl FnMut(&str, Held<'_>),
) -> Result<()> {
    match seg {
        SegmentView::Sealed { seg: s, .. } => {
            let corrupt = |what: &str| Error::corrupt(&s.path, 0, what.to_string());
            let index = s
                .index(field)
                .ok_or_else(|| corrupt("index section malformed"))?;
            for posting in index.postings() {
                match posting.map_err(corrupt)? {
                    (value, Holders::One(o)) => f(value, Held::One(o)),
                    (value, Holders::Many(bm)) => f(value, Held::Many(&bm)),
                }
            }
        }
        SegmentView::Head { seg: h, .. } => {
            let st = h.state();
            for (value, held) in st.index.entries(field) {
                f(value, held);
            }
        }
    }
    Ok(())
}

/// Calls `f` with each value of `field` in `seg` and how many of `matched`
/// hold it. When `matched` is every event of a sealed segment (no filter, a
/// range around the whole segment: the overview's usual case), the counts
/// are the cardinalities kept in the index directory and nothing is read.
fn for_each_count(
    seg: &SegmentView,
    field: IndexedField,
    matched: &RoaringBitmap,
    mut f: impl FnMut(&str, u64),
) -> Result<()> {
    if let SegmentView::Sealed { seg: s, events } = seg {
        if *events == s.event_count() && matched.len() == u64::from(*events) {
            let corrupt = |what: &str| Error::corrupt(&s.path, 0, what.to_string());
            let index = s
                .index(field)
                .ok_or_else(|| corrupt("index section malformed"))?;
            for (value, card) in index.cardinalities().map_err(corrupt)? {
                f(value, u64::from(card));
            }
            return Ok(());
        }
    }
    for_each_value(seg, field, |value, held| f(value, held.count_in(matched)))
}

/// The ordinals of `seg` whose time is inside `range`.
fn in_range(seg: &SegmentView, range: TimeRange) -> RoaringBitmap {
    let order = seg.order();
    let start = range.from.map_or(0, |f| order.lower_bound(f));
    let end = range.to.map_or(order.len(), |t| order.lower_bound(t));
    let mut keyed = Vec::new();
    order.keys(start..end.max(start), &mut keyed);
    let mut ordinals: Vec<u32> = keyed.into_iter().map(|(_, o)| o).collect();
    ordinals.sort_unstable();
    RoaringBitmap::from_sorted_iter(ordinals).unwrap_or_default()
}

/// The candidates that match `residual`, decoding their blocks.
fn scan(
    seg: &SegmentView,
    candidates: &RoaringBitmap,
    residual: &CompiledFilter,
) -> Result<RoaringBitmap> {
    let mut matched = RoaringBitmap::new();
    let mut block: Option<Arc<DecodedBlock>> = None;
    let mut block_end = 0u32;
    for o in candidates {
        let current = match &block {
            Some(b) if o >= b.first_ordinal && o < block_end => b.clone(),
            _ => {
                let Some(meta) = seg.block_for(o) else {
                    continue;
                };
                let b = seg.read_block(&meta)?;
                block_end = meta.ordinals().end;
                block = Some(b.clone());
                b
            }
        };
        let Some(json) = current.json(o) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
            Error::corrupt(seg_path(seg), 0, format!("stored event is not JSON: {e}"))
        })?;
        if residual.matches(&value) {
            matched.push(o);
        }
    }
    Ok(matched)
}

fn bucket_of(t: Timestamp, width: i64) -> Timestamp {
    Timestamp(t.0.div_euclid(width).saturating_mul(width))
}

fn field_path(dotted: &str) -> FieldPath {
    FieldPath(dotted.split('.').map(str::to_string).collect())
}

fn eq(path: &str, value: &str) -> Filter {
    Filter::Compare {
        path: field_path(path),
        op: CmpOp::Eq,
        value: Literal::String(value.to_string()),
    }
}

impl Snapshot {
    /// Facets of the events matching `q`, within `limits`.
    pub fn facets(&self, q: &FacetQuery, limits: FacetLimits) -> Result<Facets> {
        if q.bucket_micros <= 0 {
            return Err(Error::BadQuery("bucket width must be positive".into()));
        }
        let plan = Plan::new(q.filter.as_ref(), q.range);
        let range = plan.range;
        let residual = match &q.filter {
            Some(f) if !plan.is_exact() => Some(f.compile()?),
            _ => None,
        };
        let mut segs: Vec<&SegmentView> = self
            .segments
            .iter()
            .filter(|s| {
                let (lo, hi) = s.time_bounds();
                s.event_count() > 0 && range.overlaps(lo, hi)
            })
            .collect();
        // Newest first: if the decode budget runs out, the newest events
        // are the ones counted.
        segs.sort_by_key(|s| std::cmp::Reverse((s.time_bounds().1, s.id())));

        let mut out = Facets {
            total: 0,
            buckets: Vec::new(),
            top_actions: Vec::new(),
            top_actors: Vec::new(),
            top_environments: Vec::new(),
            decoded_events: 0,
            skipped_segments: 0,
            distinct_capped: false,
        };
        let mut buckets: HashMap<Timestamp, u64> = HashMap::new();
        let mut actions: Tally<String> = Tally::new(limits.max_distinct);
        let mut environments: Tally<String> = Tally::new(limits.max_distinct);
        let mut actors: Tally<(String, String)> = Tally::new(limits.max_distinct);
        let mut probe = (String::new(), String::new());

        for (i, seg) in segs.iter().enumerate() {
            let (mut matched, exact) = plan.candidates(seg)?;
            let (lo, hi) = seg.time_bounds();
            let whole = range.from.is_none_or(|f| lo >= f) && range.to.is_none_or(|t| hi < t);
            if !whole && !matched.is_empty() {
                matched &= in_range(seg, range);
            }
            if matched.is_empty() {
                continue;
            }
            if let (false, Some(residual)) = (exact, &residual) {
                if out.decoded_events + matched.len() > limits.max_decoded_events {
                    out.skipped_segments = segs.len() - i;
                    break;
                }
                out.decoded_events += matched.len();
                matched = scan(seg, &matched, residual)?;
                if matched.is_empty() {
                    continue;
                }
            }
            out.total += matched.len();

            let (b_lo, b_hi) = (
                bucket_of(lo, q.bucket_micros),
                bucket_of(hi, q.bucket_micros),
            );
            if b_lo == b_hi {
                *buckets.entry(b_lo).or_default() += matched.len();
            } else {
                let mut times = Vec::with_capacity(matched.len() as usize);
                seg.order().times(matched.iter(), &mut times);
                for (t, _) in times {
                    *buckets.entry(bucket_of(t, q.bucket_micros)).or_default() += 1;
                }
            }

            for (field, tally) in [
                (IndexedField::Action, &mut actions),
                (IndexedField::Environment, &mut environments),
            ] {
                for_each_count(seg, field, &matched, |value, n| {
                    probe.0.clear();
                    probe.0.push_str(value);
                    tally.add(|| value.to_string(), &probe.0, n);
                })?;
            }

            // An actor is the pair (type, id); both are indexed apart, and a
            // segment usually has a handful of types, so the matches are
            // split by type first and each id intersected with each part.
            let mut by_type: Vec<(String, RoaringBitmap)> = Vec::new();
            for_each_value(seg, IndexedField::ActorType, |value, held| {
                let part = held.part_of(&matched);
                if !part.is_empty() {
                    by_type.push((value.to_string(), part));
                }
            })?;
            let mut add = |actor_type: &String, id: &str, n: u64| {
                probe.0.clear();
                probe.0.push_str(actor_type);
                probe.1.clear();
                probe.1.push_str(id);
                actors.add(|| (actor_type.clone(), id.to_string()), &probe, n);
            };
            if let [(actor_type, part)] = by_type.as_slice() {
                // One actor type among the matches: an id's count is its
                // count among them (from the directory when they are the
                // whole segment).
                for_each_count(seg, IndexedField::ActorId, part, |id, n| {
                    add(actor_type, id, n);
                })?;
            } else {
                for_each_value(seg, IndexedField::ActorId, |id, held| {
                    for (actor_type, part) in &by_type {
                        add(actor_type, id, held.count_in(part));
                    }
                })?;
            }
        }

        out.distinct_capped = actions.capped || actors.capped || environments.capped;
        out.buckets = buckets.into_iter().collect();
        out.buckets.sort_unstable();
        out.top_actions = actions.top(q.top);
        out.top_environments = environments.top(q.top);
        for ((actor_type, id), count) in actors.top(q.top) {
            let name = if q.actor_names {
                self.actor_name(&actor_type, &id, range)?
            } else {
                None
            };
            out.top_actors.push(ActorCount {
                actor_type,
                id,
                name,
                count,
            });
        }
        Ok(out)
    }

    /// `actor.name` of this actor's newest event in `range`, if it has one.
    fn actor_name(&self, actor_type: &str, id: &str, range: TimeRange) -> Result<Option<String>> {
        let filter = Filter::And(vec![eq("actor.type", actor_type), eq("actor.id", id)]);
        let page = Prepared::new(Some(&filter), range)?.page(self, Order::NewestFirst, 1, None)?;
        Ok(page.events.first().and_then(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.json).ok()?;
            v.get("actor")?.get("name")?.as_str().map(str::to_string)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::query::parse_filter;
    use crate::testing::SimFs;
    use crate::{Engine, EngineConfig};

    const HOUR: i64 = 3_600_000_000;
    const BASE: i64 = 1_710_028_800_000_000; // 2024-03-10T00:00:00Z
    const ACTIONS: [&str; 4] = [
        "items.create",
        "items.update",
        "items.publish",
        "users.login",
    ];
    const TYPES: [&str; 3] = ["user", "account", "access_token"];
    const IDS: [&str; 5] = ["1", "2", "3", "42", "4845293"];
    const PATHS: [&str; 3] = ["/items/1", "/items/2/publish", "/users"];

    /// (minutes after BASE, action, actor type, actor id, path)
    type Ev = (u16, usize, usize, usize, usize);

    fn event_json(e: &Ev) -> String {
        let (min, a, t, i, p) = *e;
        let mut v = json!({
            "occurred_at": Timestamp(BASE + i64::from(min) * 60_000_000).to_rfc3339(),
            "action_name": ACTIONS[a],
            "actor": {"type": TYPES[t], "id": IDS[i], "name": format!("{}-{}", TYPES[t], IDS[i])},
            "request": {"path": PATHS[p]},
        });
        // Environments: two named ones, and none (stored as the default).
        match min % 3 {
            0 => v["environment"] = json!({"id": "staging"}),
            1 => v["environment"] = json!({"id": "main", "primary": true}),
            _ => {}
        }
        v.to_string()
    }

    fn store(batches: &[Vec<Ev>], seal_after: &[bool]) -> Engine {
        let (engine, _) = Engine::open_with(
            Arc::new(SimFs::new()),
            Path::new("/d"),
            EngineConfig {
                block_bytes: 400,
                window_micros: 6 * HOUR,
                max_segment_events: 30,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        for (b, seal) in batches
            .iter()
            .zip(seal_after.iter().chain([false].iter().cycle()))
        {
            let lines: Vec<String> = b.iter().map(event_json).collect();
            if !lines.is_empty() {
                engine.append_json(&lines).unwrap();
            }
            if *seal {
                engine.seal().unwrap();
            }
        }
        engine
    }

    /// The facets computed the obvious way: every event decoded and checked.
    fn oracle(snap: &Snapshot, q: &FacetQuery) -> Facets {
        let compiled = q.filter.as_ref().map(|f| f.compile().unwrap());
        let mut buckets: HashMap<Timestamp, u64> = HashMap::new();
        let mut actions: HashMap<String, u64> = HashMap::new();
        let mut envs: HashMap<String, u64> = HashMap::new();
        let mut actors: HashMap<(String, String), u64> = HashMap::new();
        let mut names: HashMap<(String, String), (Timestamp, String)> = HashMap::new();
        let mut total = 0;
        for e in snap.events() {
            let e = e.unwrap();
            let v: Value = serde_json::from_slice(&e.json).unwrap();
            if !q.range.contains(e.occurred_at) || compiled.as_ref().is_some_and(|c| !c.matches(&v))
            {
                continue;
            }
            total += 1;
            *buckets
                .entry(bucket_of(e.occurred_at, q.bucket_micros))
                .or_default() += 1;
            *actions
                .entry(v["action_name"].as_str().unwrap().into())
                .or_default() += 1;
            let env = v
                .pointer("/environment/id")
                .and_then(Value::as_str)
                .unwrap_or("main");
            *envs.entry(env.into()).or_default() += 1;
            let key = (
                v["actor"]["type"].as_str().unwrap().to_string(),
                v["actor"]["id"].as_str().unwrap().to_string(),
            );
            *actors.entry(key).or_default() += 1;
        }
        // Names come from the actor's newest event in the range, filter or not.
        for e in snap.events() {
            let e = e.unwrap();
            if !q.range.contains(e.occurred_at) {
                continue;
            }
            let v: Value = serde_json::from_slice(&e.json).unwrap();
            let key = (
                v["actor"]["type"].as_str().unwrap().to_string(),
                v["actor"]["id"].as_str().unwrap().to_string(),
            );
            let name = v["actor"]["name"].as_str().unwrap().to_string();
            let slot = names.entry(key).or_insert((e.occurred_at, name.clone()));
            if e.occurred_at >= slot.0 {
                *slot = (e.occurred_at, name);
            }
        }
        let mut b: Vec<(Timestamp, u64)> = buckets.into_iter().collect();
        b.sort_unstable();
        let mut top_actions: Vec<(String, u64)> = actions.into_iter().collect();
        top_actions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top_actions.truncate(q.top);
        let mut top_environments: Vec<(String, u64)> = envs.into_iter().collect();
        top_environments.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top_environments.truncate(q.top);
        let mut top: Vec<((String, String), u64)> = actors.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(q.top);
        Facets {
            total,
            buckets: b,
            top_actions,
            top_actors: top
                .into_iter()
                .map(|(k, count)| ActorCount {
                    name: names.get(&k).map(|(_, n)| n.clone()),
                    actor_type: k.0,
                    id: k.1,
                    count,
                })
                .collect(),
            top_environments,
            decoded_events: 0,
            skipped_segments: 0,
            distinct_capped: false,
        }
    }

    fn ev() -> impl Strategy<Value = Ev> {
        (
            0u16..48 * 60,
            0..ACTIONS.len(),
            0..TYPES.len(),
            0..IDS.len(),
            0..PATHS.len(),
        )
    }

    fn filter_text() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            (0..ACTIONS.len()).prop_map(|a| Some(format!("action_name = '{}'", ACTIONS[a]))),
            (0..TYPES.len(), 0..IDS.len()).prop_map(|(t, i)| Some(format!(
                "actor.type = '{}' AND actor.id = '{}'",
                TYPES[t], IDS[i]
            ))),
            (0..ACTIONS.len()).prop_map(|a| Some(format!("action_name != '{}'", ACTIONS[a]))),
            Just(Some(
                "environment.id = 'staging' OR actor.type = 'user'".to_string()
            )),
            (0..IDS.len(), 0..IDS.len())
                .prop_map(|(a, b)| Some(format!("actor.id IN ('{}', '{}')", IDS[a], IDS[b]))),
            // Residual: needs the events decoded.
            (0..PATHS.len()).prop_map(|p| Some(format!("request.path = '{}'", PATHS[p]))),
            (0..ACTIONS.len()).prop_map(|a| Some(format!(
                "request.path LIKE '/items/%' OR action_name = '{}'",
                ACTIONS[a]
            ))),
            Just(Some("occurred_at >= '2024-03-10T06:00:00Z'".to_string())),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn facets_match_a_full_scan(
            batches in proptest::collection::vec(proptest::collection::vec(ev(), 0..25), 1..6),
            seal_after in proptest::collection::vec(any::<bool>(), 0..6),
            filter in filter_text(),
            from in proptest::option::of(0i64..48),
            len in proptest::option::of(1i64..30),
            day in any::<bool>(),
            top in 1usize..6,
        ) {
            let engine = store(&batches, &seal_after);
            let snap = engine.snapshot();
            let from_t = from.map(|h| Timestamp(BASE + h * HOUR));
            let to_t = len.map(|l| Timestamp(BASE + from.unwrap_or(0) * HOUR + l * HOUR + 17));
            let q = FacetQuery {
                filter: filter.as_deref().map(|f| parse_filter(f).unwrap()),
                range: TimeRange { from: from_t, to: to_t },
                bucket_micros: if day { 24 * HOUR } else { HOUR },
                top,
                actor_names: true,
            };
            let got = snap.facets(&q, FacetLimits::default()).unwrap();
            let want = oracle(&snap, &q);
            prop_assert!(got.complete());
            prop_assert_eq!(got.total, want.total);
            prop_assert_eq!(&got.buckets, &want.buckets);
            prop_assert_eq!(&got.top_actions, &want.top_actions);
            prop_assert_eq!(&got.top_actors, &want.top_actors);
            prop_assert_eq!(&got.top_environments, &want.top_environments);
            if filter.as_deref().is_some_and(|f| f.contains("request.path")) {
                prop_assert!(got.decoded_events >= got.total);
            } else {
                prop_assert_eq!(got.decoded_events, 0, "indexed filters decode nothing");
            }
        }
    }

    #[test]
    fn the_decode_budget_is_reported_not_hidden() {
        let evs: Vec<Vec<Ev>> = (0..4)
            .map(|b| (0..20).map(|i| (b * 600 + i, 0, 0, 0, 0)).collect())
            .collect();
        let engine = store(&evs, &[true, true, true, true]);
        let snap = engine.snapshot();
        let q = FacetQuery {
            filter: Some(parse_filter("request.path = '/items/1'").unwrap()),
            range: TimeRange::ALL,
            bucket_micros: HOUR,
            top: 3,
            actor_names: false,
        };
        let limits = FacetLimits {
            max_decoded_events: 45,
            max_distinct: 10,
        };
        let got = snap.facets(&q, limits).unwrap();
        assert!(!got.complete());
        assert!(got.skipped_segments >= 1);
        assert!(got.decoded_events <= 45);
        assert_eq!(got.total, got.decoded_events, "every decoded event matches");
        // The newest segments are the ones counted.
        let newest = got.buckets.last().unwrap().0;
        assert_eq!(newest, bucket_of(Timestamp(BASE + 1819 * 60_000_000), HOUR));

        let all = snap.facets(&q, FacetLimits::default()).unwrap();
        assert!(all.complete());
        assert_eq!(all.total, 80);
    }

    #[test]
    fn distinct_values_over_the_cap_are_reported() {
        let evs: Vec<Ev> = (0..5).map(|i| (i as u16, 0, 0, i, 0)).collect();
        let engine = store(&[evs], &[]);
        let q = FacetQuery {
            filter: None,
            range: TimeRange::ALL,
            bucket_micros: HOUR,
            top: 10,
            actor_names: false,
        };
        let limits = FacetLimits {
            max_decoded_events: 0,
            max_distinct: 3,
        };
        let got = engine.snapshot().facets(&q, limits).unwrap();
        assert!(got.distinct_capped);
        assert_eq!(got.total, 5, "the total does not depend on the cap");
        assert_eq!(got.top_actors.len(), 3);
    }

    #[test]
    fn a_zero_bucket_width_is_a_bad_query() {
        let engine = store(&[vec![(0, 0, 0, 0, 0)]], &[]);
        let q = FacetQuery {
            filter: None,
            range: TimeRange::ALL,
            bucket_micros: 0,
            top: 1,
            actor_names: false,
        };
        assert!(matches!(
            engine.snapshot().facets(&q, FacetLimits::default()),
            Err(Error::BadQuery(_))
        ));
    }
}
