//! Property tests: whatever is appended (in any batching, with seals and
//! restarts in between) reads back byte for byte, exactly once; ids sent
//! twice are stored once.

mod common;

use std::collections::HashMap;

use auditlog_engine::testing::SimFs;
use auditlog_engine::{EngineConfig, EventId};
use common::{all_events, open_sim};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<TestEvent>),
    Seal,
    Reopen,
}

#[derive(Debug, Clone)]
struct TestEvent {
    /// Index into a small id pool, so that retries (duplicates) happen.
    id: Option<u8>,
    minute: u16,
    action: u8,
    actor: u8,
    payload: String,
}

fn event_strategy() -> impl Strategy<Value = TestEvent> {
    (
        proptest::option::of(0u8..40),
        0u16..3000,
        0u8..6,
        0u8..9,
        "[a-z \\\\\"é😀]{0,300}",
    )
        .prop_map(|(id, minute, action, actor, payload)| TestEvent {
            id,
            minute,
            action,
            actor,
            payload,
        })
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => proptest::collection::vec(event_strategy(), 1..30).prop_map(Step::Append),
        1 => Just(Step::Seal),
        1 => Just(Step::Reopen),
    ]
}

fn pool_id(i: u8) -> EventId {
    EventId::from_u128(0x0180_0000_0000_0000_0000_0000_0000_0000 + u128::from(i) * 7919)
}

fn to_json(e: &TestEvent) -> String {
    let mut v = serde_json::json!({
        "occurred_at": format!("2026-01-{:02}T{:02}:{:02}:00.123Z", 1 + e.minute / 1440, (e.minute / 60) % 24, e.minute % 60),
        "action_name": format!("items.a{}", e.action),
        "actor": {"type": if e.actor.is_multiple_of(2) { "user" } else { "account" }, "id": format!("{}", e.actor)},
        "request": {"payload": {"text": e.payload}},
    });
    if let Some(i) = e.id {
        v["id"] = serde_json::Value::String(pool_id(i).to_string());
    }
    v.to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn appended_events_read_back_exactly_once(steps in proptest::collection::vec(step_strategy(), 1..25)) {
        let fs = SimFs::new();
        let cfg = EngineConfig { block_bytes: 700, max_segment_events: 50, window_micros: 6 * 3600 * 1_000_000, ..EngineConfig::default() };
        let mut engine = open_sim(&fs, cfg.clone());
        // The oracle: id -> json as first stored.
        let mut model: HashMap<EventId, serde_json::Value> = HashMap::new();
        for step in steps {
            match step {
                Step::Append(events) => {
                    let json: Vec<String> = events.iter().map(to_json).collect();
                    let out = engine.append_json(&json).unwrap();
                    prop_assert_eq!(out.len(), events.len());
                    for (o, src) in out.iter().zip(&json) {
                        let already = model.contains_key(&o.id);
                        prop_assert_eq!(o.duplicate, already, "duplicate flag for {}", o.id);
                        if !already {
                            let mut v: serde_json::Value = serde_json::from_str(src).unwrap();
                            v["id"] = serde_json::Value::String(o.id.to_string());
                            model.insert(o.id, v);
                        }
                    }
                }
                Step::Seal => engine.seal().unwrap(),
                Step::Reopen => {
                    drop(engine);
                    engine = open_sim(&fs, cfg.clone());
                }
            }
        }
        let stored = all_events(&engine);
        prop_assert_eq!(stored.len(), model.len());
        for e in stored {
            let mut got = e.value().unwrap();
            let expected = model.get(&e.id).unwrap();
            // occurred_at is normalised on the way in; compare it as a time.
            let t_got = got["occurred_at"].as_str().unwrap().to_owned();
            let t_exp = expected["occurred_at"].as_str().unwrap();
            prop_assert_eq!(
                auditlog_engine::Timestamp::parse_rfc3339(&t_got),
                auditlog_engine::Timestamp::parse_rfc3339(t_exp)
            );
            got["occurred_at"] = expected["occurred_at"].clone();
            got.as_object_mut().unwrap().remove("environment");
            prop_assert_eq!(&got, expected);
            prop_assert_eq!(engine.get(e.id).unwrap().map(|x| x.json), Some(e.json));
        }
    }
}

#[test]
fn retry_of_a_stored_id_returns_the_stored_event_across_seal_and_restart() {
    let fs = SimFs::new();
    let cfg = EngineConfig::default();
    let engine = open_sim(&fs, cfg.clone());
    let id = pool_id(1).to_string();
    let first = format!(r#"{{"id":"{id}","action_name":"a","actor":{{"type":"u","id":"1"}}}}"#);
    let retry =
        format!(r#"{{"id":"{id}","action_name":"changed","actor":{{"type":"u","id":"1"}}}}"#);
    assert!(!engine.append_json(&[&first]).unwrap()[0].duplicate);
    assert!(engine.append_json(&[&retry]).unwrap()[0].duplicate);
    engine.seal().unwrap();
    assert!(engine
        .append_json(&[&retry, &retry])
        .unwrap()
        .iter()
        .all(|o| o.duplicate));
    drop(engine);
    let engine = open_sim(&fs, cfg);
    assert!(engine.append_json(&[&retry]).unwrap()[0].duplicate);
    let all = all_events(&engine);
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].value().unwrap()["action_name"],
        "a",
        "the first one stays"
    );
}

#[test]
fn concurrent_appenders_share_syncs_and_lose_nothing() {
    let fs = SimFs::new();
    let engine = open_sim(
        &fs,
        EngineConfig {
            max_segment_events: 500,
            ..EngineConfig::default()
        },
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for b in 0..50 {
                    let batch: Vec<String> = (0..10)
                        .map(|i| common::event_json(t * 10_000 + b * 10 + i))
                        .collect();
                    ids.extend(
                        engine
                            .append_json(&batch)
                            .unwrap()
                            .into_iter()
                            .map(|o| o.id),
                    );
                }
                ids
            })
        })
        .collect();
    let mut all_ids = Vec::new();
    for t in threads {
        all_ids.extend(t.join().unwrap());
    }
    let stored = all_events(&engine);
    assert_eq!(stored.len(), 2000);
    let mut stored_ids: Vec<EventId> = stored.iter().map(|e| e.id).collect();
    stored_ids.sort();
    all_ids.sort();
    assert_eq!(stored_ids, all_ids);
}

#[test]
fn retention_drops_whole_old_segments_and_a_running_scan_finishes() {
    let fs = SimFs::new();
    let cfg = EngineConfig {
        max_segment_events: 10,
        ..EngineConfig::default()
    };
    let engine = open_sim(&fs, cfg);
    for day in 1..=5 {
        let batch: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"occurred_at":"2026-01-0{day}T10:00:{i:02}Z","action_name":"a","actor":{{"type":"u","id":"1"}}}}"#))
            .collect();
        engine.append_json(&batch).unwrap();
    }
    let before = engine.snapshot();
    let cutoff = auditlog_engine::Timestamp::parse_rfc3339("2026-01-03T00:00:00Z").unwrap();
    let report = engine.drop_before(cutoff).unwrap();
    assert_eq!((report.segments, report.events), (2, 20));
    assert!(report.bytes > 0);
    // The old snapshot still reads the dropped segments whole.
    assert_eq!(before.events().filter(|e| e.is_ok()).count(), 50);
    let after = all_events(&engine);
    assert_eq!(after.len(), 30);
    assert!(after.iter().all(|e| e.occurred_at >= cutoff));
    // Dropping again removes nothing; a cutoff in the future drops all but
    // never the data of the current head unless it is wholly expired.
    assert_eq!(engine.drop_before(cutoff).unwrap().segments, 0);
    let all = engine
        .drop_before(auditlog_engine::Timestamp::parse_rfc3339("2027-01-01T00:00:00Z").unwrap())
        .unwrap();
    assert_eq!(all.events, 30);
    assert_eq!(all_events(&engine).len(), 0);
    engine.append_json(&[common::event_json(1)]).unwrap();
    assert_eq!(all_events(&engine).len(), 1);
}
