//! The arrival-order feed checked against a naive oracle: every event of
//! `Snapshot::events()` (storage order) that the filter matches, checked
//! with `Filter::matches` on the parsed JSON.
//!
//! Appends (with back-dated `occurred_at`, across time windows), seals and
//! restarts are interleaved with polls of random sizes; a poller that
//! always resumes from the returned position must end up with exactly the
//! oracle's list: nothing missed, nothing repeated, no gap reported.

mod common;

use auditlog_engine::query::{parse_filter, Feed, FeedPosition, Filter};
use auditlog_engine::testing::SimFs;
use auditlog_engine::{EngineConfig, EventId};
use common::{all_events, open_sim};
use proptest::prelude::*;

const FILTERS: [Option<&str>; 7] = [
    None,
    Some("action_name = 'a'"),
    Some("action_name IN ('a', 'b') AND request.path LIKE '/p/1%'"),
    Some("occurred_at >= '2024-01-05T00:00:00Z'"),
    Some("NOT actor.id = '3'"),
    Some("request.method = 'PUT' OR actor.type = 'bot'"),
    Some("action_name = 'nothing'"),
];

#[derive(Debug, Clone)]
enum Op {
    /// Events as (action index, actor id, day, method is PUT).
    Append(Vec<(u8, u8, u8, bool)>),
    Poll(usize),
    Seal,
    Restart,
    /// Retention: drop segments whose newest event is before this day.
    Drop(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((0u8..3, 0u8..6, 1u8..10, any::<bool>()), 1..9).prop_map(Op::Append),
        4 => (1usize..6).prop_map(Op::Poll),
        1 => Just(Op::Seal),
        1 => Just(Op::Restart),
    ]
}

fn op_with_drops() -> impl Strategy<Value = Op> {
    prop_oneof![8 => op(), 1 => (2u8..10).prop_map(Op::Drop)]
}

fn event_json(n: usize, (action, actor, day, put): (u8, u8, u8, bool)) -> String {
    let action = ["a", "b", "c"][usize::from(action)];
    let actor_type = if actor == 5 { "bot" } else { "user" };
    let method = if put { "PUT" } else { "GET" };
    format!(
        r#"{{"occurred_at":"2024-01-{day:02}T{:02}:00:00Z","action_name":"{action}","actor":{{"type":"{actor_type}","id":"{actor}"}},"request":{{"method":"{method}","path":"/p/{n}"}}}}"#,
        n % 24
    )
}

fn config() -> EngineConfig {
    EngineConfig {
        max_segment_events: 6,
        block_bytes: 300,
        dictionary: false,
        ..EngineConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn polling_from_the_returned_position_yields_exactly_the_oracle(
        filter_index in 0..FILTERS.len(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let filter: Option<Filter> = FILTERS[filter_index].map(|f| parse_filter(f).unwrap());
        let feed = Feed::new(filter.as_ref()).unwrap();
        let fs = SimFs::new();
        let mut engine = open_sim(&fs, config());
        let mut pos = FeedPosition::START;
        let mut seen: Vec<EventId> = Vec::new();
        let mut n = 0usize;
        let poll = |engine: &auditlog_engine::Engine, pos: &mut FeedPosition, limit: usize, seen: &mut Vec<EventId>| {
            let page = feed.read(&engine.snapshot(), *pos, limit).unwrap();
            assert!(page.gap.is_none(), "gap without any drop: {:?}", page.gap);
            assert!(page.events.len() <= limit);
            if let Some(last) = page.events.last() {
                assert!(last.next <= page.next);
            }
            assert!(page.next >= *pos, "position went back");
            seen.extend(page.events.iter().map(|e| e.event.id));
            *pos = page.next;
            page.at_end
        };
        for op in ops {
            match op {
                Op::Append(events) => {
                    let batch: Vec<String> = events
                        .into_iter()
                        .map(|e| {
                            n += 1;
                            event_json(n, e)
                        })
                        .collect();
                    engine.append_json(&batch).unwrap();
                }
                Op::Poll(limit) => {
                    poll(&engine, &mut pos, limit, &mut seen);
                }
                Op::Seal => engine.seal().unwrap(),
                Op::Restart => {
                    engine.close().unwrap();
                    engine = open_sim(&fs, config());
                }
                Op::Drop(_) => unreachable!("this property has no drops"),
            }
        }
        // Bounded, so that a feed that never reaches its end fails here
        // instead of spinning.
        let mut rounds = 0;
        while !poll(&engine, &mut pos, 4, &mut seen) {
            rounds += 1;
            prop_assert!(rounds < 100_000, "the feed never reached its end");
        }
        let oracle: Vec<EventId> = all_events(&engine)
            .into_iter()
            .filter(|e| filter.as_ref().is_none_or(|f| f.matches(&e.value().unwrap())))
            .map(|e| e.id)
            .collect();
        prop_assert_eq!(seen, oracle);
        // Caught up: the position is the end, and nothing more comes.
        let page = feed.read(&engine.snapshot(), pos, 10).unwrap();
        prop_assert!(page.events.is_empty() && page.at_end);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With retention dropping segments between polls: the poller never
    /// fails, never repeats an event, sees every event still stored, and
    /// when it missed an event (dropped before it got there) a gap was
    /// reported.
    #[test]
    fn drops_between_polls_are_gaps_never_repeats_or_silent_misses(
        filter_index in 0..FILTERS.len(),
        ops in prop::collection::vec(op_with_drops(), 1..40),
    ) {
        let filter: Option<Filter> = FILTERS[filter_index].map(|f| parse_filter(f).unwrap());
        let matches = |json: &str| filter.as_ref().is_none_or(|f| f.matches(&serde_json::from_str(json).unwrap()));
        let feed = Feed::new(filter.as_ref()).unwrap();
        let fs = SimFs::new();
        let mut engine = open_sim(&fs, config());
        let mut pos = FeedPosition::START;
        let mut seen: Vec<EventId> = Vec::new();
        let mut acked: Vec<EventId> = Vec::new();
        let mut gaps = 0usize;
        let mut from_start_dropped = false;
        let mut n = 0usize;
        let mut poll = |engine: &auditlog_engine::Engine, pos: &mut FeedPosition, limit: usize, seen: &mut Vec<EventId>| {
            let page = feed.read(&engine.snapshot(), *pos, limit).unwrap();
            gaps += usize::from(page.gap.is_some());
            seen.extend(page.events.iter().map(|e| e.event.id));
            *pos = page.next;
            page.at_end
        };
        for op in ops {
            match op {
                Op::Append(events) => {
                    let batch: Vec<String> = events
                        .into_iter()
                        .map(|e| {
                            n += 1;
                            event_json(n, e)
                        })
                        .collect();
                    let out = engine.append_json(&batch).unwrap();
                    for (o, json) in out.iter().zip(&batch) {
                        if matches(json) {
                            acked.push(o.id);
                        }
                    }
                }
                Op::Poll(limit) => {
                    poll(&engine, &mut pos, limit, &mut seen);
                }
                Op::Seal => engine.seal().unwrap(),
                Op::Restart => {
                    engine.close().unwrap();
                    engine = open_sim(&fs, config());
                }
                Op::Drop(day) => {
                    // From START a read means "from the oldest stored
                    // event": what was dropped before is not a gap.
                    from_start_dropped |= pos == FeedPosition::START;
                    let cutoff = auditlog_engine::Timestamp::parse_rfc3339(&format!("2024-01-{day:02}T00:00:00Z")).unwrap();
                    engine.drop_before(cutoff).unwrap();
                }
            }
        }
        // A gap is reported with the first events stored after it: one
        // more event makes every gap so far reportable.
        let sentinel = event_json(0, (0, 0, 9, true));
        let out = engine.append_json(&[&sentinel]).unwrap();
        if matches(&sentinel) {
            acked.extend(out.iter().map(|o| o.id));
        }
        // Bounded, so that a feed that never reaches its end fails here
        // instead of spinning.
        let mut rounds = 0;
        while !poll(&engine, &mut pos, 4, &mut seen) {
            rounds += 1;
            prop_assert!(rounds < 100_000, "the feed never reached its end");
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), seen.len(), "an event was repeated");
        // Seen events come in arrival order.
        let order: std::collections::HashMap<EventId, usize> =
            acked.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        prop_assert!(seen.windows(2).all(|w| order[&w[0]] < order[&w[1]]));
        for e in all_events(&engine) {
            if acked.contains(&e.id) {
                prop_assert!(seen.contains(&e.id), "a stored event was never seen");
            }
        }
        if seen.len() < acked.len() && !from_start_dropped {
            prop_assert!(gaps > 0, "events were missed without a gap");
        }
    }
}
