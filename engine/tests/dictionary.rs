//! Compression dictionaries: trained early, used by later segments, carried
//! inside sealed segments, and never a way to lose or damage events.

mod common;

use std::collections::HashMap;
use std::path::Path;

use auditlog_engine::testing::gen::{EventGenerator, GenConfig};
use auditlog_engine::testing::SimFs;
use auditlog_engine::{EngineConfig, EventId};
use common::{all_events, assert_all_acknowledged, open_sim, open_sim_report};

fn dict_config() -> EngineConfig {
    EngineConfig {
        block_bytes: 4096,
        max_segment_events: 600,
        dict_bootstrap_events: 300,
        dict_retrain_segments: 2,
        // The dictionaries segments are written with; compaction would give
        // the first ones the newest dictionary (tested in compaction.rs).
        compact_level: 0,
        ..EngineConfig::default()
    }
}

/// Appends `n` realistic events in batches of 50; returns id -> stored json.
fn fill(fs: &SimFs, n: usize) -> HashMap<EventId, Vec<u8>> {
    let engine = open_sim(fs, dict_config());
    let mut gen = EventGenerator::new(GenConfig::default());
    let mut stored = HashMap::new();
    for _ in 0..n / 50 {
        let batch: Vec<String> = (0..50).map(|_| gen.next_event().to_string()).collect();
        for o in engine.append_json(&batch).unwrap() {
            stored.insert(o.id, engine.get(o.id).unwrap().unwrap().json);
        }
    }
    stored
}

fn segment_dict_ids(fs: &SimFs) -> Vec<u32> {
    fs.files_in(Path::new("/data/segments"))
        .iter()
        .map(|p| {
            let b = fs.file(p).unwrap();
            u32::from_le_bytes(b[56..60].try_into().unwrap())
        })
        .collect()
}

#[test]
fn dictionary_is_trained_early_and_later_segments_use_it() {
    let fs = SimFs::new();
    let stored = fill(&fs, 3000);
    let ids = segment_dict_ids(&fs);
    assert_eq!(ids[0], 0, "the bootstrap segment has no dictionary");
    // The head started while the first dictionary is being trained (in
    // the background) has none either; every later segment has one.
    let first_with = ids.iter().position(|&d| d != 0).unwrap();
    assert!(first_with <= 2, "{ids:?}");
    assert!(ids[first_with..].iter().all(|&d| d != 0), "{ids:?}");
    assert!(
        ids.windows(2)
            .any(|w| w[0] != 0 && w[1] != 0 && w[0] != w[1]),
        "retraining makes new dictionaries: {ids:?}"
    );
    assert!(fs.files_in(Path::new("/data/dicts")).len() >= 2);
    // Everything reads back, before and after a restart.
    let engine = open_sim(&fs, dict_config());
    let events = all_events(&engine);
    assert_eq!(events.len(), stored.len());
    for e in events {
        assert_eq!(stored.get(&e.id), Some(&e.json));
    }
    assert!(engine.verify().is_empty());
}

#[test]
fn sealed_segments_carry_their_dictionary() {
    let fs = SimFs::new();
    let stored = fill(&fs, 1500);
    // With dicts/ gone, every sealed segment still reads; only a head that
    // needs a dictionary is set aside (kept in quarantine, not lost).
    let copy = fs.crash(|_, _| 0);
    for d in copy.files_in(Path::new("/data/dicts")) {
        let mut bytes = copy.file(&d).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        copy.put_file(&d, bytes);
    }
    let (engine, report) = open_sim_report(&copy, dict_config());
    assert!(
        !report.quarantined.is_empty(),
        "damaged dictionaries are reported"
    );
    let served = all_events(&engine);
    assert!(
        served.len() >= 900,
        "sealed segments still serve: {}",
        served.len()
    );
    assert_all_acknowledged(&served, &stored);
    // The store keeps accepting events.
    engine
        .append_json(&[r#"{"action_name":"a","actor":{"type":"u","id":"1"}}"#])
        .unwrap();
}

#[test]
fn damage_to_dictionary_segments_is_never_served() {
    let fs = SimFs::new();
    let stored = fill(&fs, 1000);
    let files = fs.files_in(Path::new("/data/segments"));
    let with_dict: Vec<_> = files
        .iter()
        .filter(|p| fs.file(p).unwrap()[56..60] != [0, 0, 0, 0])
        .collect();
    assert!(!with_dict.is_empty());
    for file in with_dict {
        let original = fs.file(file).unwrap();
        for at in (0..original.len()).step_by(997) {
            let copy = fs.crash(|_, _| 0);
            let mut damaged = original.clone();
            damaged[at] ^= 0x24;
            copy.put_file(file, damaged);
            let engine = open_sim(&copy, dict_config());
            for e in engine.snapshot().events().flatten() {
                assert_eq!(
                    stored.get(&e.id),
                    Some(&e.json),
                    "flip at {at} of {}",
                    file.display()
                );
            }
        }
    }
}
