//! Background compaction of sealed segments: the events served never
//! change, the files get smaller, and a power loss at any moment of a
//! compaction leaves a store that opens whole, with nothing set aside.

mod common;

use auditlog_engine::query::parse_filter;
use auditlog_engine::segment::format::{CODEC_LZ4, CODEC_ZSTD};
use auditlog_engine::segment::SegmentView;
use auditlog_engine::testing::gen::{EventGenerator, GenConfig};
use auditlog_engine::testing::SimFs;
use auditlog_engine::{BlockCodec, EngineConfig, StoredEvent, TimeRange};
use common::{open_sim, open_sim_report};

fn config(compact_level: i32) -> EngineConfig {
    EngineConfig {
        max_segment_events: 400,
        dict_bootstrap_events: 300,
        compact_level,
        ..EngineConfig::default()
    }
}

fn all(engine: &auditlog_engine::Engine) -> Vec<StoredEvent> {
    engine
        .snapshot()
        .events()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A store of 2,000 generated events in several sealed segments, written
/// without compaction (so with zstd at ingest).
fn store() -> (SimFs, Vec<StoredEvent>) {
    store_with(config(0))
}

fn store_with(cfg: EngineConfig) -> (SimFs, Vec<StoredEvent>) {
    let fs = SimFs::new();
    let engine = open_sim(&fs, cfg);
    let mut gen = EventGenerator::new(GenConfig::default());
    for _ in 0..10 {
        let batch: Vec<String> = (0..200).map(|_| gen.next_event().to_string()).collect();
        engine.append_json(&batch).unwrap();
    }
    engine.seal().unwrap();
    let events = all(&engine);
    assert_eq!(events.len(), 2000);
    (fs, events)
}

fn sealed(engine: &auditlog_engine::Engine) -> Vec<(bool, u64)> {
    engine
        .snapshot()
        .segments
        .iter()
        .filter_map(|s| match s {
            SegmentView::Sealed { seg, .. } => Some((seg.compacted, seg.file_len)),
            SegmentView::Head { .. } => None,
        })
        .collect()
}

/// The codec of every block of every sealed segment, as its header says.
fn sealed_codecs(engine: &auditlog_engine::Engine) -> Vec<u8> {
    let snap = engine.snapshot();
    let mut codecs = Vec::new();
    for view in &snap.segments {
        if let SegmentView::Sealed { seg, .. } = view {
            for meta in seg.blocks() {
                codecs.push(view.block_header(meta).unwrap().codec);
            }
        }
    }
    codecs
}

#[test]
fn compaction_turns_lz4_blocks_into_smaller_zstd_ones() {
    let (fs, events) = store_with(EngineConfig {
        ingest_codec: Some(BlockCodec::Lz4),
        ..config(0)
    });
    let uncompacted = open_sim(&fs, config(0));
    let codecs = sealed_codecs(&uncompacted);
    assert!(
        codecs.len() > 10 && codecs.iter().all(|&c| c == CODEC_LZ4),
        "{codecs:?}"
    );
    let before = sealed(&uncompacted);
    drop(uncompacted);
    // Compaction on: ingest's default codec is then LZ4 as well.
    assert_eq!(config(9).ingest_codec(), BlockCodec::Lz4);
    let engine = open_sim(&fs, config(9));
    engine.wait_compacted();
    let codecs = sealed_codecs(&engine);
    assert!(codecs.iter().all(|&c| c == CODEC_ZSTD), "{codecs:?}");
    let after = sealed(&engine);
    let total = |v: &[(bool, u64)]| v.iter().map(|(_, l)| l).sum::<u64>();
    assert!(
        total(&after) * 10 < total(&before) * 7,
        "zstd with a dictionary should take a third off LZ4: {before:?} -> {after:?}"
    );
    assert_eq!(all(&engine), events);
    assert!(engine.verify().is_empty());
}

/// With LZ4 at ingest the dictionary serves compaction alone: a new store's
/// first head is not sealed early for it, and the compactor trains one.
#[test]
fn with_lz4_at_ingest_the_compactor_trains_the_dictionary() {
    let fs = SimFs::new();
    let engine = open_sim(&fs, config(9));
    let mut gen = EventGenerator::new(GenConfig::default());
    for _ in 0..5 {
        let batch: Vec<String> = (0..200).map(|_| gen.next_event().to_string()).collect();
        engine.append_json(&batch).unwrap();
    }
    engine.seal().unwrap();
    engine.wait_compacted();
    let snap = engine.snapshot();
    let sealed: Vec<_> = snap
        .segments
        .iter()
        .filter_map(|s| match s {
            SegmentView::Sealed { seg, .. } => Some(seg.clone()),
            SegmentView::Head { .. } => None,
        })
        .collect();
    // Full at `max_segment_events` (400); a bootstrap seal for the
    // dictionary would have cut it at 200 (`dict_bootstrap_events` 300).
    let counts: Vec<u32> = sealed.iter().map(|s| s.event_count()).collect();
    assert_eq!(counts, [400, 400, 200]);
    assert!(
        sealed.iter().all(|s| s.compacted && s.dict.is_some()),
        "every segment compacted with the trained dictionary"
    );
    assert!(!fs.files_in(std::path::Path::new("/data/dicts")).is_empty());
    assert!(engine.verify().is_empty());
}

#[test]
fn compaction_shrinks_files_and_serves_the_same_events() {
    let (fs, events) = store();
    let uncompacted = open_sim(&fs, config(0));
    let before = sealed(&uncompacted);
    assert!(before.len() >= 5 && before.iter().all(|(c, _)| !c));
    assert_eq!(
        uncompacted.stats().awaiting_compaction,
        0,
        "with compaction off nothing awaits it"
    );
    drop(uncompacted);
    let engine = open_sim(&fs, config(9));
    // A query while compaction runs reads through the same caches.
    let f = parse_filter("request.method = 'PUT'").unwrap();
    let during = engine.snapshot().count(Some(&f), TimeRange::ALL).unwrap();
    engine.wait_compacted();
    let after = sealed(&engine);
    assert!(after.iter().all(|(c, _)| *c), "{after:?}");
    assert_eq!(engine.stats().awaiting_compaction, 0);
    let total = |v: &[(bool, u64)]| v.iter().map(|(_, l)| l).sum::<u64>();
    assert!(total(&after) < total(&before), "{before:?} -> {after:?}");
    assert_eq!(all(&engine), events);
    assert_eq!(
        engine.snapshot().count(Some(&f), TimeRange::ALL).unwrap(),
        during
    );
    assert!(engine.verify().is_empty());
    drop(engine);
    let (engine, report) = open_sim_report(&fs, config(9));
    assert!(report.quarantined.is_empty());
    engine.wait_compacted();
    assert_eq!(sealed(&engine), after, "nothing is compacted twice");
    assert_eq!(all(&engine), events);
}

#[test]
fn a_power_loss_at_any_moment_of_compaction_loses_nothing() {
    let (mut fs, events) = store();
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..12 {
        let engine = open_sim(&fs, config(9));
        std::thread::sleep(std::time::Duration::from_micros(rng.u64(0..30_000)));
        let crashed = fs.crash(|_, unsynced| rng.usize(0..=unsynced));
        drop(engine);
        let (engine, report) = open_sim_report(&crashed, config(0));
        assert!(report.quarantined.is_empty(), "{:?}", report.quarantined);
        assert_eq!(all(&engine), events);
        assert!(engine.verify().is_empty());
        drop(engine);
        fs = crashed;
    }
    let engine = open_sim(&fs, config(9));
    engine.wait_compacted();
    assert!(sealed(&engine).iter().all(|(c, _)| *c));
    assert_eq!(all(&engine), events);
}

#[test]
fn retention_during_compaction_never_brings_a_segment_back() {
    let (fs, events) = store();
    let engine = open_sim(&fs, config(9));
    let newest = events.iter().map(|e| e.occurred_at).max().unwrap();
    let report = engine.drop_before(newest).unwrap();
    assert!(report.segments > 0);
    engine.wait_compacted();
    let left = all(&engine);
    drop(engine);
    let engine = open_sim(&fs, config(0));
    assert_eq!(all(&engine), left);
    assert!(left.len() < events.len());
}

/// The store's first segments are written before it has a dictionary;
/// compaction gives them the one new heads use, so that they end as small
/// as the rest. What they serve does not change, across a restart too.
#[test]
fn segments_written_without_a_dictionary_adopt_one() {
    let (fs, events) = store();
    let dicts = |engine: &auditlog_engine::Engine| -> Vec<Option<u32>> {
        engine
            .snapshot()
            .segments
            .iter()
            .filter_map(|s| match s {
                SegmentView::Sealed { seg, .. } => Some(seg.dict.as_ref().map(|d| d.id)),
                SegmentView::Head { .. } => None,
            })
            .collect()
    };
    let before = dicts(&open_sim(&fs, config(0)));
    assert_eq!(before.first(), Some(&None), "{before:?}");
    let engine = open_sim(&fs, config(9));
    engine.wait_compacted();
    let after = dicts(&engine);
    assert!(after.iter().all(Option::is_some), "{after:?}");
    assert_eq!(all(&engine), events);
    assert!(engine.verify().is_empty());
    drop(engine);
    let (engine, report) = open_sim_report(&fs, config(0));
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(dicts(&engine), after);
    assert_eq!(all(&engine), events);
}
