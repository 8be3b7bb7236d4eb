//! Durability and recovery: torn tails, flipped bytes, power loss, full
//! disks and failed syncs. Each test checks the promise that matters: every
//! acknowledged event is there exactly once, and nothing damaged is served.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use auditlog_engine::segment::format::HEADER_LEN;
use auditlog_engine::testing::{Fault, SimFs};
use auditlog_engine::{EngineConfig, Error, EventId, SyncPolicy};
use common::{
    all_events, assert_all_acknowledged, event_json, open_sim, open_sim_report, small_config,
};

/// Appends `batches` batches of `size` events; returns every acknowledged
/// event (id -> canonical json) and the head file's length after each batch.
fn fill(
    fs: &SimFs,
    cfg: EngineConfig,
    batches: usize,
    size: usize,
) -> (HashMap<EventId, Vec<u8>>, Vec<u64>) {
    let engine = open_sim(fs, cfg);
    let mut acked = HashMap::new();
    let mut ends = Vec::new();
    for b in 0..batches {
        let events: Vec<String> = (0..size).map(|i| event_json(b * size + i)).collect();
        let out = engine.append_json(&events).unwrap();
        for o in out {
            let stored = engine.get(o.id).unwrap().unwrap();
            acked.insert(o.id, stored.json);
        }
        ends.push(head_len(fs));
    }
    (acked, ends)
}

fn segment_files(fs: &SimFs) -> Vec<PathBuf> {
    fs.files_in(Path::new("/data/segments"))
}

fn head_len(fs: &SimFs) -> u64 {
    segment_files(fs)
        .last()
        .and_then(|p| fs.file(p))
        .map_or(0, |b| b.len() as u64)
}

/// Opens a copy of `fs` and checks: every event served is one of `known`,
/// byte for byte, and appears once.
fn served_events_are_genuine(fs: &SimFs, known: &HashMap<EventId, Vec<u8>>) -> usize {
    let engine = open_sim(fs, small_config());
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    for e in engine.snapshot().events() {
        // A damaged block may be reported; it must never be decoded wrongly.
        let Ok(e) = e else { continue };
        assert_eq!(
            known.get(&e.id),
            Some(&e.json),
            "served an event that was never written"
        );
        assert!(seen.insert(e.id), "event {} served twice", e.id);
        count += 1;
    }
    count
}

/// Six acknowledged batches of five events, all in the head segment:
/// (acknowledged events, head length after each batch, head path).
fn six_batches_in_one_head(fs: &SimFs) -> (HashMap<EventId, Vec<u8>>, Vec<u64>, PathBuf) {
    let cfg = EngineConfig {
        max_segment_events: 10_000,
        ..small_config()
    };
    let (acked, ends) = fill(fs, cfg, 6, 5);
    let head = segment_files(fs).pop().unwrap();
    (acked, ends, head)
}

#[test]
fn truncation_at_every_offset_keeps_every_whole_batch() {
    let fs = SimFs::new();
    let (acked, ends, head) = six_batches_in_one_head(&fs);
    let bytes = fs.file(&head).unwrap();
    assert_eq!(bytes.len() as u64, *ends.last().unwrap());
    for cut in 0..=bytes.len() {
        let copy = fs.crash(|_, _| 0);
        copy.put_file(&head, bytes[..cut].to_vec());
        let whole_batches = ends.iter().filter(|&&e| e <= cut as u64).count();
        let engine = open_sim(&copy, small_config());
        // Whatever recovery cut is kept aside, byte for byte.
        let kept_end = ends
            .iter()
            .copied()
            .filter(|&e| e <= cut as u64)
            .max()
            .unwrap_or(HEADER_LEN as u64)
            .max(HEADER_LEN as u64);
        if (cut as u64) > kept_end {
            let saved = copy.files_in(Path::new("/data/quarantine"));
            assert_eq!(saved.len(), 1, "cut at {cut}");
            assert_eq!(
                copy.file(&saved[0]).unwrap(),
                bytes[kept_end as usize..cut].to_vec()
            );
        }
        let events = all_events(&engine);
        assert_eq!(events.len(), whole_batches * 5, "cut at {cut}");
        assert_all_acknowledged(&events, &acked);
        // The store takes new appends after recovery.
        engine.append_json(&[event_json(999)]).unwrap();
        assert_eq!(all_events(&engine).len(), whole_batches * 5 + 1);
    }
}

#[test]
fn damage_in_the_middle_of_the_head_is_reported_and_kept_not_passed_off_as_a_torn_tail() {
    let fs = SimFs::new();
    let (acked, ends, head) = six_batches_in_one_head(&fs);
    let mut damaged = fs.file(&head).unwrap();
    // Damage the third batch; batches four to six stay whole after it.
    damaged[ends[1] as usize + 90] ^= 0x40;
    fs.put_file(&head, damaged.clone());
    let (engine, report) = open_sim_report(&fs, small_config());
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    let (saved, why) = &report.quarantined[0];
    assert!(why.contains("damaged at byte"), "{why}");
    assert!(saved.to_string_lossy().contains(".damaged-tail-at-"));
    assert!(
        fs.file(saved).unwrap() == damaged[ends[1] as usize..],
        "kept byte for byte, as found"
    );
    let served = all_events(&engine);
    assert_eq!(served.len(), 10, "the two whole batches before the damage");
    assert_all_acknowledged(&served, &acked);
}

#[test]
fn a_flipped_byte_anywhere_is_never_served_as_truth() {
    let fs = SimFs::new();
    let (acked, _) = fill(&fs, small_config(), 12, 7);
    let files = segment_files(&fs);
    assert!(files.len() >= 2, "want a sealed segment and a head");
    for file in &files {
        let original = fs.file(file).unwrap();
        // Every byte of small files; a stride over larger ones keeps the
        // test quick while still hitting every region (header, blocks,
        // sections, footer).
        let stride = if original.len() > 4000 { 7 } else { 1 };
        for at in (0..original.len()).step_by(stride) {
            let copy = fs.crash(|_, _| 0);
            let mut damaged = original.clone();
            damaged[at] ^= 0x5a;
            copy.put_file(file, damaged);
            served_events_are_genuine(&copy, &acked);
        }
    }
}

#[test]
fn power_loss_keeps_every_synced_event() {
    for seed in 0..40u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let fs = SimFs::new();
        let engine = open_sim(&fs, small_config());
        let mut acked = HashMap::new();
        for b in 0..rng.usize(1..12) {
            let events: Vec<String> = (0..rng.usize(1..9))
                .map(|i| event_json(b * 100 + i))
                .collect();
            for o in engine.append_json(&events).unwrap() {
                acked.insert(o.id, engine.get(o.id).unwrap().unwrap().json);
            }
        }
        // An append in flight: written, not yet synced, when power goes.
        // It must not start a new head: the older one's seal (on another
        // thread) could take the failing sync instead of it.
        if engine.stats().head_events + 5 > small_config().max_segment_events {
            engine.seal().unwrap();
        }
        engine.wait_sealed().unwrap();
        fs.arm(Fault::FailSyncs(1));
        let inflight: Vec<String> = (0..5).map(|i| event_json(5000 + i)).collect();
        assert!(engine.append_json(&inflight).is_err());
        let after = fs.crash(|_, unsynced| rng.usize(0..=unsynced));
        drop(engine);
        let engine = open_sim(&after, small_config());
        let events = all_events(&engine);
        for (id, json) in &acked {
            let got = engine.get(*id).unwrap();
            assert_eq!(
                got.map(|e| e.json).as_ref(),
                Some(json),
                "seed {seed}: lost {id}"
            );
        }
        assert_eq!(
            events.len(),
            acked.len(),
            "seed {seed}: unacknowledged events surfaced"
        );
    }
}

#[test]
fn interval_policy_loses_at_most_unsynced_events_on_power_loss_but_nothing_on_close() {
    let fs = SimFs::new();
    let cfg = EngineConfig {
        sync: SyncPolicy::Never,
        ..small_config()
    };
    let engine = open_sim(&fs, cfg.clone());
    engine.append_json(&[event_json(1), event_json(2)]).unwrap();
    let lost = fs.crash(|_, _| 0);
    assert_eq!(all_events(&open_sim(&lost, cfg.clone())).len(), 0);
    engine.sync().unwrap();
    let kept = fs.crash(|_, _| 0);
    assert_eq!(all_events(&open_sim(&kept, cfg)).len(), 2);
}

#[test]
fn full_disk_fails_the_append_keeps_the_rest_and_recovers_by_itself() {
    let fs = SimFs::new();
    let engine = open_sim(&fs, small_config());
    let first = engine.append_json(&[event_json(1), event_json(2)]).unwrap();
    fs.arm(Fault::Capacity(Some(
        fs.file(&segment_files(&fs)[0]).unwrap().len() as u64 + 100,
    )));
    let big: Vec<String> = (10..30).map(event_json).collect();
    let err = engine.append_json(&big).unwrap_err();
    assert!(matches!(err, Error::StorageFull(_)), "{err}");
    assert_eq!(all_events(&engine).len(), 2);
    fs.arm(Fault::Capacity(None));
    let again = engine.append_json(&big).unwrap();
    assert_eq!(again.len(), 20);
    assert_eq!(all_events(&engine).len(), 22);
    // And after a restart, exactly those events.
    drop(engine);
    let reopened = open_sim(&fs.crash(|_, _| 0), small_config());
    assert_eq!(all_events(&reopened).len(), 22);
    assert!(reopened.get(first[0].id).unwrap().is_some());
}

#[test]
fn failed_sync_is_not_acknowledged_and_the_write_is_retried_cleanly() {
    let fs = SimFs::new();
    let engine = open_sim(&fs, small_config());
    engine.append_json(&[event_json(1)]).unwrap();
    fs.arm(Fault::FailSyncs(1));
    assert!(engine.append_json(&[event_json(2)]).is_err());
    fs.arm(Fault::FailWrites(1));
    assert!(engine.append_json(&[event_json(3)]).is_err());
    engine.append_json(&[event_json(4)]).unwrap();
    let after = fs.crash(|_, u| u);
    let events = all_events(&open_sim(&after, small_config()));
    assert_eq!(events.len(), 2, "only the two acknowledged events");
}

#[test]
fn damaged_sealed_segment_is_quarantined_and_the_rest_served() {
    let fs = SimFs::new();
    let (acked, _) = fill(&fs, small_config(), 12, 7);
    let files = segment_files(&fs);
    let victim = &files[0];
    let mut bytes = fs.file(victim).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 0xff; // inside the section table / footer
    fs.put_file(victim, bytes);
    let (engine, report) = open_sim_report(&fs, small_config());
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert!(fs.file(victim).is_none(), "moved out of segments/");
    assert_eq!(
        fs.files_in(Path::new("/data/quarantine")).len(),
        1,
        "kept, not deleted"
    );
    let served = all_events(&engine);
    assert!(!served.is_empty() && served.len() < acked.len());
    assert_all_acknowledged(&served, &acked);
}

#[test]
fn verify_sets_aside_a_sealed_segment_with_a_damaged_block_and_the_rest_serves() {
    let fs = SimFs::new();
    let (acked, _) = fill(&fs, small_config(), 12, 7);
    let victim = segment_files(&fs)[0].clone();
    let mut bytes = fs.file(&victim).unwrap();
    // Inside the first block's payload: only reading the block finds it.
    bytes[HEADER_LEN + 80 + 10] ^= 0x01;
    fs.put_file(&victim, bytes);
    let engine = open_sim(&fs, small_config());
    assert!(
        engine.snapshot().events().any(|e| e.is_err()),
        "the damage is met on read"
    );
    let damage = engine.verify();
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert!(matches!(&damage[0], auditlog_engine::Error::Corrupt { .. }));
    assert!(fs.file(&victim).is_none());
    assert_eq!(fs.files_in(Path::new("/data/quarantine")).len(), 1);
    // Everything else serves, and a second verify is clean.
    let served = all_events(&engine);
    assert!(!served.is_empty() && served.len() < acked.len());
    assert_all_acknowledged(&served, &acked);
    assert!(engine.verify().is_empty());
}

#[test]
fn segment_from_another_store_is_refused() {
    let a = SimFs::new();
    fill(&a, small_config(), 8, 7);
    let b = SimFs::new();
    fill(&b, small_config(), 8, 7);
    let foreign = segment_files(&a)[0].clone();
    let target = Path::new("/data/segments/00000000000000ff.seg");
    b.put_file(target, a.file(&foreign).unwrap());
    let (_, report) = open_sim_report(&b, small_config());
    assert!(
        report
            .quarantined
            .iter()
            .any(|(_, why)| why.contains("another data directory")),
        "{report:?}"
    );
}

/// Heads are sealed in the background once a newer head has started. A
/// seal that fails (here: its sync) leaves the older segment without a
/// footer behind a live head; nothing acknowledged may be lost, whether the
/// power then goes (the next open seals it again) or the store goes on (the
/// next seal tries it again first).
#[test]
fn a_failed_background_seal_loses_nothing_and_is_finished_later() {
    let fs = SimFs::new();
    let engine = open_sim(&fs, small_config());
    let first: Vec<String> = (0..10).map(event_json).collect();
    let mut acked: Vec<_> = engine.append_json(&first).unwrap();
    fs.arm(Fault::FailSyncs(1));
    assert!(engine.seal().is_err(), "the seal's sync failed");
    let second: Vec<String> = (10..20).map(event_json).collect();
    acked.extend(engine.append_json(&second).unwrap());
    let files = segment_files(&fs);
    assert_eq!(
        files.len(),
        2,
        "the unsealed older segment and the new head"
    );
    assert_eq!(all_events(&engine).len(), 20, "both are served meanwhile");
    assert_eq!(
        engine.stats().sealing_segments,
        1,
        "still waiting to be sealed"
    );

    // Power goes now: the older segment is sealed again on open.
    let (reopened, report) = open_sim_report(&fs.crash(|_, _| 0), small_config());
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(report.sealed_segments, 1, "{report:?}");
    for o in &acked {
        assert!(reopened.get(o.id).unwrap().is_some(), "lost {}", o.id);
    }
    assert_eq!(all_events(&reopened).len(), 20);
    assert!(reopened.verify().is_empty());
    drop(reopened);

    // Or the store goes on: the next seal finishes the failed one first.
    engine.seal().unwrap();
    assert_eq!(engine.stats().sealing_segments, 0);
    assert_eq!(all_events(&engine).len(), 20);
    drop(engine);
    let (reopened, report) = open_sim_report(&fs.crash(|_, _| 0), small_config());
    assert_eq!(report.sealed_segments, 2, "{report:?}");
    assert_eq!(report.head_events, 0);
    assert_eq!(all_events(&reopened).len(), 20);
    assert!(reopened.verify().is_empty());
}

/// An older segment without a footer that is missing events at its end
/// (it does not reach where the next segment's chain starts) is damage,
/// not an interrupted seal: it is set aside, never sealed as if whole.
#[test]
fn an_unsealed_older_segment_that_lost_events_is_set_aside() {
    let fs = SimFs::new();
    let engine = open_sim(&fs, small_config());
    engine
        .append_json(&(0..10).map(event_json).collect::<Vec<_>>())
        .unwrap();
    fs.arm(Fault::FailSyncs(1));
    assert!(engine.seal().is_err());
    engine
        .append_json(&(10..20).map(event_json).collect::<Vec<_>>())
        .unwrap();
    drop(engine);
    let copy = fs.crash(|_, _| 0);
    let older = segment_files(&copy)[0].clone();
    let mut bytes = copy.file(&older).unwrap();
    // Cut the last block off: whole blocks remain, but events are gone.
    let cut = bytes.len() - 200;
    bytes.truncate(cut);
    copy.put_file(&older, bytes);
    let (reopened, report) = open_sim_report(&copy, small_config());
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert_eq!(report.sealed_segments, 0, "{report:?}");
    assert_eq!(all_events(&reopened).len(), 10, "the head's events stay");
}
