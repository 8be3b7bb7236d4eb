//! Tampering the way an attacker who knows the format would: with every
//! checksum fixed up (using the engine's own encoders, see
//! `testing::forge`), on real files in temporary directories. Each attack
//! must be caught by offline verification with the public key alone, or
//! with a checkpoint kept elsewhere where the attack needs one.

use std::path::{Path, PathBuf};

use auditlog_engine::integrity::checkpoint::{parse_checkpoints, Checkpoint, CHECKPOINT_LEN};
use auditlog_engine::integrity::key::{PublicKey, Signer};
use auditlog_engine::integrity::tombstone::{self, Tombstone};
use auditlog_engine::integrity::verify::{verify_store, ProblemKind, VerifyOptions, VerifyReport};
use auditlog_engine::io::StdFs;
use auditlog_engine::segment::format::SegmentHeader;
use auditlog_engine::testing::forge;
use auditlog_engine::{Engine, EngineConfig, Error, SegmentId, TimeRange, Timestamp};

struct Store {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    key: PathBuf,
}

impl Store {
    fn config(&self) -> EngineConfig {
        EngineConfig {
            block_bytes: 512,
            max_segment_events: 40,
            dictionary: false,
            signing_key: Some(self.key.clone()),
            ..EngineConfig::default()
        }
    }

    fn open(&self) -> Engine {
        Engine::open(&self.data, self.config()).unwrap().0
    }

    fn public(&self) -> PublicKey {
        Signer::load_or_create(&StdFs, &self.key)
            .unwrap()
            .public_key()
    }

    fn verify(&self, external: &[Checkpoint]) -> VerifyReport {
        verify_store(
            &StdFs,
            &self.data,
            &VerifyOptions {
                public_key: Some(self.public()),
                external: external.to_vec(),
            },
        )
        .unwrap()
    }

    fn segments(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.data.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// The checkpoints as shipped elsewhere (the JSON-lines copy).
    fn shipped(&self) -> Vec<Checkpoint> {
        let bytes =
            std::fs::read(self.data.join("checkpoints").join("checkpoints.ndjson")).unwrap();
        parse_checkpoints(&bytes).unwrap()
    }

    /// Cuts the store's own checkpoint log to its first `keep` records, as
    /// an attacker covering their tracks would.
    fn trim_log(&self, keep: usize) {
        let path = self.data.join("checkpoints").join("log");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..keep * CHECKPOINT_LEN]).unwrap();
    }
}

/// Event `n`, `n` minutes into 2026 (so retention can cut by time).
fn event(n: usize) -> String {
    let t = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap().0 + n as i64 * 60_000_000;
    format!(
        r#"{{"occurred_at":"{}","action_name":"items.update","actor":{{"type":"user","id":"u{}"}},"request":{{"payload":{{"n":{n}}}}}}}"#,
        Timestamp(t).to_rfc3339(),
        n % 7
    )
}

/// 120 events in batches of 10: segments 1 and 2 sealed at 40 events
/// each, segment 3 the head (sealed too when `seal_last`), then closed
/// (a shutdown checkpoint).
fn build(seal_last: bool) -> Store {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store {
        data: tmp.path().join("data"),
        key: tmp.path().join("signing.key"),
        _tmp: tmp,
    };
    let engine = store.open();
    for b in 0..12 {
        let batch: Vec<String> = (b * 10..b * 10 + 10).map(event).collect();
        engine.append_json(&batch).unwrap();
    }
    if seal_last {
        engine.seal().unwrap();
    }
    engine.close().unwrap();
    store
}

fn kinds(r: &VerifyReport) -> Vec<ProblemKind> {
    r.problems.iter().map(|p| p.kind).collect()
}

fn assert_caught(r: &VerifyReport, kind: ProblemKind, file_part: &str) {
    assert!(
        r.problems
            .iter()
            .any(|p| p.kind == kind && p.file.to_string_lossy().contains(file_part)),
        "expected {kind:?} in {file_part}, got {:#?}",
        r.problems
    );
}

/// Rewrites segment file `path`: `edit` changes its events; `rechain`
/// recomputes the chain over the edited events (else the block chain
/// values stay those of the original events).
fn forge_segment(path: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>), rechain: bool) {
    let bytes = std::fs::read(path).unwrap();
    let (header, mut events, sealed) = forge::read_segment(&bytes, None).unwrap();
    let original = forge::leaves(&events);
    edit(&mut events);
    let leaves = if rechain {
        forge::leaves(&events)
    } else {
        original
    };
    std::fs::write(
        path,
        forge::write_segment(header, &events, &leaves, sealed, None).unwrap(),
    )
    .unwrap();
}

#[test]
fn an_untampered_store_verifies_after_appends_seals_restarts_and_retention() {
    let store = build(false);
    let first = store.verify(&[]);
    assert!(first.ok(), "{:#?}", first.problems);
    assert_eq!(first.events, 120);
    assert_eq!(first.chain.position, 120);
    // Two seals and the shutdown.
    assert_eq!(first.checkpoints_checked, 3);
    let early = store.shipped();

    // Restart, more events, retention drops the oldest segments.
    let engine = store.open();
    for b in 12..20 {
        let batch: Vec<String> = (b * 10..b * 10 + 10).map(event).collect();
        engine.append_json(&batch).unwrap();
    }
    let cutoff = Timestamp::parse_rfc3339("2026-01-01T01:30:00Z").unwrap();
    let dropped = engine.drop_before(cutoff).unwrap();
    assert_eq!(dropped.segments, 2);
    engine.close().unwrap();
    let engine = store.open();
    engine.append_json(&[event(500)]).unwrap();
    engine.close().unwrap();

    let r = store.verify(&early);
    assert!(r.ok(), "{:#?}", r.problems);
    assert_eq!(r.tombstones, 2);
    assert_eq!(r.chain.position, 201);
    assert_eq!(r.events, 201 - 80);
    assert_eq!(r.external_checked, early.len());
}

#[test]
fn an_edited_event_with_fixed_up_checksums_is_caught_by_the_chain() {
    let store = build(false);
    let victim = store.segments()[1].clone();
    forge_segment(
        &victim,
        |events| {
            let e = &mut events[5];
            let at = e.windows(6).position(|w| w == b"update").unwrap();
            e[at] = b'U'; // items.update -> items.Update
        },
        false,
    );
    // The checksums all pass: opening and the checksum scan find nothing.
    let (engine, report) = Engine::open(&store.data, store.config()).unwrap();
    assert!(report.quarantined.is_empty());
    assert!(engine.verify().is_empty());
    drop(engine);
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Altered], "{:#?}", r.problems);
    let p = &r.problems[0];
    assert_eq!(p.file, victim);
    assert!(p.location.contains("block at byte"), "{}", p.location);
    assert!(p.location.contains("chain positions 4"), "{}", p.location);
}

#[test]
fn an_edited_event_in_the_head_is_cut_by_recovery_and_reported() {
    let store = build(false);
    let head = store.segments()[2].clone();
    forge_segment(
        &head,
        |events| {
            let e = &mut events[25];
            let at = e.windows(6).position(|w| w == b"update").unwrap();
            e[at] = b'U';
        },
        false,
    );
    let r = store.verify(&[]);
    assert_caught(&r, ProblemKind::Altered, "0000000000000003.seg");
    // Recovery stops at the altered block and sets the rest aside as damage.
    let (engine, report) = Engine::open(&store.data, store.config()).unwrap();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    assert!(report.quarantined[0]
        .0
        .to_string_lossy()
        .contains("damaged-tail"));
    assert!(engine.stats().events < 120);
}

#[test]
fn a_deleted_event_with_the_segment_rechained_breaks_the_link_to_the_next() {
    let store = build(false);
    forge_segment(&store.segments()[1], |events| drop(events.remove(7)), true);
    let r = store.verify(&[]);
    assert_caught(&r, ProblemKind::Removed, "0000000000000003.seg");
}

#[test]
fn a_deleted_event_with_the_whole_store_rechained_is_caught_by_checkpoints() {
    let store = build(false);
    let early = store.shipped();
    // Rewrite every segment from the victim on, positions and chain values
    // consistent, as if the event had never been there.
    let segs = store.segments();
    let mut chain: Option<(u64, [u8; 32])> = None;
    for (i, path) in segs.iter().enumerate().skip(1) {
        let bytes = std::fs::read(path).unwrap();
        let (mut header, mut events, sealed) = forge::read_segment(&bytes, None).unwrap();
        if i == 1 {
            events.remove(7);
        }
        if let Some((pos, value)) = chain {
            header.chain_position = pos;
            header.chain_prev = value;
        }
        let leaves = forge::leaves(&events);
        let mut c = auditlog_engine::integrity::chain::ChainHead {
            position: header.chain_position,
            value: header.chain_prev,
        };
        for l in &leaves {
            c.push(l);
        }
        chain = Some((c.position, c.value));
        std::fs::write(
            path,
            forge::write_segment(header, &events, &leaves, sealed, None).unwrap(),
        )
        .unwrap();
    }
    // The store's own signed checkpoints disagree...
    let r = store.verify(&[]);
    assert!(
        kinds(&r).contains(&ProblemKind::Altered),
        "{:#?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.file.ends_with("checkpoints/log") && p.location.contains("checkpoint 1")),
        "{:#?}",
        r.problems
    );
    // ...and removing them is itself visible; a checkpoint kept elsewhere
    // still shows the rewrite.
    std::fs::remove_file(store.data.join("checkpoints").join("log")).unwrap();
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Removed], "{:#?}", r.problems);
    let r = store.verify(&early[1..2]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.kind == ProblemKind::Altered && p.message.contains("kept elsewhere")),
        "{:#?}",
        r.problems
    );
}

#[test]
fn dropping_the_last_segment_is_caught_and_with_the_log_trimmed_needs_an_outside_checkpoint() {
    let store = build(false);
    let early = store.shipped();
    std::fs::remove_file(&store.segments()[2]).unwrap();
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Truncated], "{:#?}", r.problems);
    assert!(r.problems[0].message.contains("newest 40 events"));

    // Covering tracks: only the checkpoints up to the new end remain.
    store.trim_log(2);
    let r = store.verify(&[]);
    assert!(
        r.ok(),
        "without outside evidence this is undetectable: {:#?}",
        r.problems
    );
    let r = store.verify(&early[2..]);
    assert!(
        kinds(&r).contains(&ProblemKind::Truncated),
        "{:#?}",
        r.problems
    );
    assert!(
        kinds(&r).contains(&ProblemKind::Removed),
        "{:#?}",
        r.problems
    );
}

#[test]
fn dropping_the_newest_events_and_rewriting_the_segment_consistently_is_caught() {
    let store = build(false);
    let early = store.shipped();
    forge_segment(&store.segments()[2], |events| events.truncate(25), true);
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Truncated], "{:#?}", r.problems);
    store.trim_log(2);
    let r = store.verify(&early);
    assert!(
        kinds(&r).contains(&ProblemKind::Truncated),
        "{:#?}",
        r.problems
    );
    assert!(r
        .problems
        .iter()
        .any(|p| p.message.contains("covers 120 events") && p.message.contains("ends at 105")));
}

#[test]
fn swapped_segments_are_caught_renamed_or_with_rewritten_headers() {
    let store = build(true);
    let segs = store.segments();
    let (a, b) = (segs[0].clone(), segs[1].clone());
    let tmp = a.with_extension("x");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    let r = store.verify(&[]);
    assert_caught(&r, ProblemKind::Reordered, "0000000000000001.seg");

    // Headers rewritten to match the new names: the chain order gives it away.
    for (path, id) in [(&a, 1u64), (&b, 2u64)] {
        let bytes = std::fs::read(path).unwrap();
        let (mut header, events, sealed) = forge::read_segment(&bytes, None).unwrap();
        header.segment_id = SegmentId(id);
        let leaves = forge::leaves(&events);
        std::fs::write(
            path,
            forge::write_segment(header, &events, &leaves, sealed, None).unwrap(),
        )
        .unwrap();
    }
    let r = store.verify(&[]);
    assert_caught(&r, ProblemKind::Reordered, "0000000000000002.seg");
}

#[test]
fn a_replayed_old_segment_is_caught() {
    let store = build(true);
    let old = std::fs::read(&store.segments()[0]).unwrap();
    let (mut header, events, _) = forge::read_segment(&old, None).unwrap();
    header.segment_id = SegmentId(9);
    let leaves = forge::leaves(&events);
    let replay = store.data.join("segments").join(SegmentId(9).file_name());
    std::fs::write(
        &replay,
        forge::write_segment(header, &events, &leaves, true, None).unwrap(),
    )
    .unwrap();
    let r = store.verify(&[]);
    assert_caught(&r, ProblemKind::Reordered, "0000000000000009.seg");
}

#[test]
fn a_segment_removed_without_a_tombstone_or_with_a_forged_one_is_caught() {
    let store = build(true);
    let victim = store.segments()[1].clone();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::remove_file(&victim).unwrap();
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Removed], "{:#?}", r.problems);
    assert!(
        r.problems[0].message.contains("40..80"),
        "{}",
        r.problems[0].message
    );

    // A tombstone made to look like retention, but not signed by the key.
    let (header, _, _) = forge::read_segment(&bytes, None).unwrap();
    let (_, events, _) = forge::read_segment(&bytes, None).unwrap();
    let mut end = auditlog_engine::integrity::chain::ChainHead {
        position: header.chain_position,
        value: header.chain_prev,
    };
    for l in forge::leaves(&events) {
        end.push(&l);
    }
    let forged = tombstone_for(&header, events.len() as u32, end.value);
    tombstone::write(&StdFs, &store.data, &forged).unwrap();
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Signature], "{:#?}", r.problems);

    let other = tempfile::tempdir().unwrap();
    let stranger = Signer::load_or_create(&StdFs, &other.path().join("k")).unwrap();
    tombstone::write(&StdFs, &store.data, &forged.clone().sign(Some(&stranger))).unwrap();
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Signature], "{:#?}", r.problems);
}

fn tombstone_for(header: &SegmentHeader, count: u32, last: [u8; 32]) -> Tombstone {
    Tombstone {
        reason: tombstone::REASON_RETENTION,
        store_id: header.store_id,
        segment_id: header.segment_id,
        position: header.chain_position,
        event_count: count,
        chain_prev: header.chain_prev,
        chain_last: last,
        cutoff: Timestamp::now(),
        time: Timestamp::now(),
        public_key: [0; 32],
        signature: [0; 64],
    }
}

#[test]
fn a_forged_checkpoint_and_one_from_another_store_are_refused() {
    let store = build(false);
    let mut forged = store.shipped().pop().unwrap();
    forged.position += 5;
    let r = store.verify(&[forged]);
    assert_eq!(kinds(&r), vec![ProblemKind::Signature], "{:#?}", r.problems);
    let other = build(false);
    let r = store.verify(&other.shipped()[..1]);
    assert!(
        kinds(&r).contains(&ProblemKind::Foreign),
        "{:#?}",
        r.problems
    );
}

#[test]
fn the_engine_warns_at_open_when_it_is_behind_its_own_checkpoint() {
    let store = build(false);
    std::fs::remove_file(&store.segments()[2]).unwrap();
    let (_, report) = Engine::open(&store.data, store.config()).unwrap();
    assert_eq!(report.integrity_warnings.len(), 1, "{report:?}");
    assert!(report.integrity_warnings[0].contains("covers 120"));
}

#[test]
fn a_version_1_store_is_refused_with_a_clear_error() {
    let store = build(false);
    let path = store.data.join("STORE");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    match Engine::open(&store.data, store.config()) {
        Err(Error::UnsupportedVersion { found: 1, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a version 1 store was opened"),
    }
    assert_eq!(store.segments().len(), 3, "nothing was set aside");
}

#[test]
fn after_losing_the_newest_segment_new_events_continue_past_the_checkpoint() {
    let store = build(true);
    let victim = store.segments()[2].clone();
    // Damage set the last segment aside.
    let aside = store
        .data
        .join("quarantine")
        .join(victim.file_name().unwrap());
    std::fs::rename(&victim, &aside).unwrap();
    let engine = store.open();
    engine.append_json(&[event(900)]).unwrap();
    engine.close().unwrap();
    let r = store.verify(&[]);
    assert_eq!(kinds(&r), vec![ProblemKind::Removed], "{:#?}", r.problems);
    assert!(
        r.problems[0].message.contains("80..120"),
        "{:#?}",
        r.problems
    );
    assert!(
        r.problems[0].message.contains("quarantine"),
        "{:#?}",
        r.problems
    );
    // Putting the segment back (repaired from a backup) heals the chain.
    std::fs::rename(&aside, &victim).unwrap();
    let r = store.verify(&[]);
    assert!(r.ok(), "{:#?}", r.problems);
    assert_eq!(r.chain.position, 121);
}

#[test]
fn a_version_2_store_is_read_and_marked_version_3_before_anything_is_written() {
    let store = build(false);
    let path = store.data.join("STORE");
    let set_version = |v: u16| {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..10].copy_from_slice(&v.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
    };
    let version = || u16::from_le_bytes(std::fs::read(&path).unwrap()[8..10].try_into().unwrap());
    assert_eq!(version(), 3, "new stores are version 3");
    set_version(2);
    let before = store.segments().len();
    let engine = store.open();
    // An older build, which refuses version 3 stores as a whole, now stops
    // at this file instead of meeting segments it cannot read.
    assert_eq!(version(), 3);
    assert_eq!(engine.snapshot().count(None, TimeRange::ALL).unwrap(), 120);
    engine.close().unwrap();
    assert_eq!(store.segments().len(), before, "nothing was set aside");
}
