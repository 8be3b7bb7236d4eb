//! The property checks behind every fuzz target, in one place, so that the
//! cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the corpus replay test
//! (`engine/tests/fuzz_corpus.rs`) check exactly the same things. Each
//! `check_*` function takes arbitrary bytes and panics (through `assert!`)
//! only when the engine broke a promise: a panic inside the engine, an
//! event served that was never written, a batch stored in part, a cursor
//! that repeats an event.
//!
//! It also builds the seed inputs of the data-directory target: real small
//! stores written by the engine from [`seed_events`], packed into one byte
//! string by [`pack_dir`]. The fuzzer mutates those bytes; [`check_data_dir`]
//! unpacks them into a [`SimFs`] and opens, scans and queries the result.
//!
//! Never used on real data paths.
// The checks exist to panic when a promise is broken.
#![allow(clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::event::{keys_of_stored, ndjson_lines, prepare_event, EventLimits};
use crate::query::{parse_filter, Query};
use crate::testing::gen::{EventGenerator, GenConfig};
use crate::testing::SimFs;
use crate::types::{EventId, Order, TimeRange, Timestamp};
use crate::{BlockCodec, Engine, EngineConfig, Error, StoredEvent};

/// The receive time the checks validate against (2026-01-01T00:00:00Z):
/// fixed, so that a replayed input behaves as it did under the fuzzer.
const NOW: Timestamp = Timestamp(1_767_225_600_000_000);
/// Where the data-directory target puts its store inside the [`SimFs`].
const ROOT: &str = "/data";

/// Any text as a filter: parse errors carry a column inside the text (or
/// one past its end); a parsed filter prints to text that parses back to
/// the same filter.
pub fn check_filter_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_filter(text) {
        Ok(filter) => {
            let again = parse_filter(&filter.to_string());
            assert_eq!(
                again.as_ref(),
                Ok(&filter),
                "printing and parsing again changed the filter"
            );
        }
        Err(e) => assert!(
            e.column >= 1 && e.column <= text.chars().count() + 1,
            "error column {} outside the text",
            e.column
        ),
    }
}

/// Any bytes as one event: an accepted event's canonical JSON is valid
/// JSON, starts with its id and time at the fixed positions FORMAT.md
/// gives, and yields the same index keys when read back.
pub fn check_event_validate(data: &[u8]) {
    let Ok(e) = prepare_event(data, NOW, &EventLimits::default()) else {
        return;
    };
    check_canonical(&e.json, e.id, e.occurred_at);
    assert_eq!(keys_of_stored(&e.json).ok(), Some(e.keys));
}

fn check_canonical(json: &[u8], id: EventId, at: Timestamp) {
    assert!(
        serde_json::from_slice::<serde_json::Value>(json).is_ok(),
        "canonical form is not JSON"
    );
    let mut head = format!("{{\"id\":\"{id}\",\"occurred_at\":\"").into_bytes();
    at.write_canonical(&mut head);
    head.push(b'"');
    assert!(
        json.starts_with(&head),
        "canonical form does not start with its id and time"
    );
}

/// Any bytes as an NDJSON batch body:
/// - the line splitter agrees with a naive one (numbers, CRLF, blank lines);
/// - every accepted line has a valid canonical form;
/// - appending the batch is all or nothing: one invalid line stores
///   nothing, and names the first bad line; a valid batch stores each
///   distinct event once, byte for byte, and it survives a restart.
pub fn check_ndjson_batch(data: &[u8]) {
    let lines: Vec<(usize, &[u8])> = ndjson_lines(data).collect();
    let naive: Vec<(usize, &[u8])> = data
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    assert_eq!(lines, naive, "line splitter disagrees with the naive split");

    let fs = SimFs::new();
    let Ok((engine, _)) = Engine::open_with(Arc::new(fs.clone()), Path::new(ROOT), small_config())
    else {
        panic!("an empty simulated store did not open");
    };
    let docs: Vec<&[u8]> = lines.iter().map(|(_, l)| *l).collect();
    let prepared: Vec<_> = docs.iter().map(|d| engine.prepare(d)).collect();
    let first_bad = prepared.iter().position(Result::is_err);
    match first_bad {
        Some(bad) => {
            match engine.append_json(&docs) {
                Err(Error::InvalidEventInBatch { index, .. }) => {
                    assert_eq!(index, bad, "the error names another line")
                }
                Err(Error::InvalidEvent(_)) => assert_eq!(docs.len(), 1),
                Err(Error::BatchTooLarge { .. }) => {}
                other => panic!("a batch with an invalid line was not refused: {other:?}"),
            }
            assert_eq!(engine.snapshot().event_count(), 0, "part of a batch stored");
        }
        None => {
            let prepared: Vec<_> = prepared.into_iter().flatten().collect();
            for p in &prepared {
                check_canonical(&p.json, p.id, p.occurred_at);
            }
            if prepared.is_empty() {
                return;
            }
            let Ok(outcomes) = engine.append(prepared.clone()) else {
                panic!("a valid batch was refused");
            };
            assert_eq!(outcomes.len(), prepared.len());
            let mut first: HashMap<EventId, &[u8]> = HashMap::new();
            for (o, p) in outcomes.iter().zip(&prepared) {
                assert_eq!(o.id, p.id);
                let earlier = first.insert(p.id, &p.json).is_some();
                assert_eq!(o.duplicate, earlier, "duplicate flag wrong for {}", p.id);
                if earlier {
                    // The stored one is the first, never overwritten.
                    first.insert(p.id, prepared_json(&prepared, p.id));
                }
            }
            let check = |engine: &Engine| {
                assert_eq!(engine.snapshot().event_count(), first.len() as u64);
                for (id, json) in &first {
                    let got = engine.get(*id).ok().flatten().map(|e| e.json);
                    assert_eq!(got.as_deref(), Some(*json), "event {id} not stored as sent");
                }
            };
            check(&engine);
            drop(engine);
            let Ok((reopened, _)) = Engine::open_with(
                Arc::new(fs.crash(|_, _| 0)),
                Path::new(ROOT),
                small_config(),
            ) else {
                panic!("the store did not reopen after a power cut");
            };
            check(&reopened);
        }
    }
}

fn prepared_json(prepared: &[crate::PreparedEvent], id: EventId) -> &[u8] {
    prepared
        .iter()
        .find(|p| p.id == id)
        .map_or(&[][..], |p| &p.json[..])
}

/// The configuration of the stores the data-directory seeds are written
/// with: tiny blocks and segments, so a few KB hold several sealed
/// segments, a head and every section kind.
pub fn small_config() -> EngineConfig {
    EngineConfig {
        block_bytes: 1024,
        max_segment_events: 12,
        dictionary: false,
        block_cache_bytes: 1 << 20,
        bitmap_cache_bytes: 1 << 20,
        ..EngineConfig::default()
    }
}

/// The events every data-directory seed holds (NDJSON lines, with ids and
/// times, from the shared generator), so that the check knows byte for
/// byte what was written whatever the fuzzer did to the files.
pub fn seed_events() -> &'static [Vec<u8>] {
    static EVENTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut g = EventGenerator::new(GenConfig {
            seed: 5,
            with_ids: true,
            ..GenConfig::default()
        });
        (0..SEED_EVENTS)
            .map(|_| {
                let mut line = Vec::new();
                g.write_ndjson_line(&mut line);
                while line.last() == Some(&b'\n') {
                    line.pop();
                }
                line
            })
            .collect()
    })
}

const SEED_EVENTS: usize = 112;

/// id -> canonical JSON of every event in [`seed_events`].
fn originals() -> &'static HashMap<EventId, Vec<u8>> {
    static ORIGINALS: OnceLock<HashMap<EventId, Vec<u8>>> = OnceLock::new();
    ORIGINALS.get_or_init(|| {
        seed_events()
            .iter()
            .filter_map(|l| prepare_event(l, NOW, &EventLimits::default()).ok())
            .map(|e| (e.id, e.json))
            .collect()
    })
}

/// Which directory of a store a packed file belongs to.
const KINDS: [&str; 4] = ["", "segments", "dicts", "quarantine"];

/// Packs files of a store (paths relative to its root) into one input of
/// the data-directory target: per file, a kind byte (0 root, 1 segments,
/// 2 dicts, 3 quarantine), a name length byte, the name, a u32 LE length
/// and the bytes.
pub fn pack_dir(files: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, bytes) in files {
        let dir = path.parent().and_then(|p| p.to_str()).unwrap_or_default();
        let kind = KINDS.iter().position(|k| *k == dir).unwrap_or(0);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        out.push(kind as u8);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// The inverse of [`pack_dir`], lenient so that mutations stay useful: a
/// length past the end takes what is left; a bad kind or name skips the
/// entry.
pub fn unpack_dir(mut data: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    while let [kind, name_len, rest @ ..] = data {
        let Some((name, rest)) = rest.split_at_checked(usize::from(*name_len)) else {
            break;
        };
        let Some((len, rest)) = rest.split_at_checked(4) else {
            break;
        };
        let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        let (bytes, rest) = rest.split_at(len.min(rest.len()));
        data = rest;
        let name = std::str::from_utf8(name).unwrap_or_default();
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            continue;
        }
        let Some(kind) = KINDS.get(usize::from(*kind)) else {
            continue;
        };
        files.push((Path::new(kind).join(name), bytes.to_vec()));
    }
    files
}

/// Writes the seed stores: the [`seed_events`] appended in a few batches
/// with [`small_config`], then packed. Different shapes: sealed segments
/// and a head; only a head; only sealed segments (these three with LZ4
/// blocks); segments compressed with zstd and a dictionary.
pub fn seed_dirs() -> Vec<(&'static str, Vec<u8>)> {
    let events = seed_events();
    let batches = |sizes: &[usize]| -> Vec<&[Vec<u8>]> {
        let mut out = Vec::new();
        let mut at = 0;
        for s in sizes {
            let end = (at + s).min(events.len());
            out.push(events.get(at..end).unwrap_or_default());
            at = end;
        }
        out
    };
    // (name, batches, seal the head at the end)
    type Shape<'a> = (&'static str, Vec<&'a [Vec<u8>]>, bool);
    let shapes: [Shape; 3] = [
        ("sealed_and_head", batches(&[5, 7, 3, 9, 4, 2]), false),
        ("head_only", batches(&[3, 4, 2]), false),
        ("all_sealed", batches(&[6, 6, 6, 6]), true),
    ];
    let mut out = Vec::new();
    for (name, batches, seal) in shapes {
        let fs = SimFs::new();
        let Ok((engine, _)) =
            Engine::open_with(Arc::new(fs.clone()), Path::new(ROOT), small_config())
        else {
            continue;
        };
        for b in batches {
            let _ = engine.append_json(b);
        }
        if seal {
            let _ = engine.seal();
        }
        drop(engine);
        out.push((name, pack_dir(&store_files(&fs))));
    }
    if let Some(packed) = dictionary_seed(events) {
        out.push(("with_dictionary", packed));
    }
    out
}

/// A store whose later segments are compressed with a trained dictionary:
/// the training segment (zstd wants 100 samples) is written, then dropped
/// by retention to keep the seed small; what stays is `dicts/`, a sealed
/// segment embedding the dictionary, and a head using it.
fn dictionary_seed(events: &[Vec<u8>]) -> Option<Vec<u8>> {
    let cfg = EngineConfig {
        dictionary: true,
        // zstd at ingest, so that the head's blocks use the dictionary too
        // (the other seeds have LZ4 blocks, the default with compaction on).
        ingest_codec: Some(BlockCodec::Zstd { level: 3 }),
        dict_bootstrap_events: 100,
        max_segment_events: 100,
        ..small_config()
    };
    let fs = SimFs::new();
    let (engine, _) = Engine::open_with(Arc::new(fs.clone()), Path::new(ROOT), cfg).ok()?;
    let (training, rest) = events.split_at_checked(100)?;
    engine.append_json(training).ok()?;
    engine.seal().ok()?;
    let cutoff = engine.snapshot().segments.first()?.time_bounds().1;
    let (sealed, head) = rest.split_at_checked(rest.len().min(8))?;
    engine.append_json(sealed).ok()?;
    engine.seal().ok()?;
    engine.append_json(head.get(..4)?).ok()?;
    engine
        .drop_before(Timestamp(cutoff.as_micros().saturating_add(1)))
        .ok()?;
    drop(engine);
    let files = store_files(&fs);
    files
        .iter()
        .any(|(p, _)| p.starts_with("dicts"))
        .then(|| pack_dir(&files))
}

/// Every file of the store at [`ROOT`] in `fs`, relative to the root.
pub fn store_files(fs: &SimFs) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(ROOT);
    let mut files = Vec::new();
    for kind in KINDS {
        let dir = root.join(kind);
        let dir = if kind.is_empty() {
            root.to_path_buf()
        } else {
            dir
        };
        for path in fs.files_in(&dir) {
            if path.file_name().is_some_and(|n| n == "LOCK") {
                continue;
            }
            if let (Some(bytes), Ok(rel)) = (fs.file(&path), path.strip_prefix(root)) {
                files.push((rel.to_path_buf(), bytes));
            }
        }
    }
    files
}

/// Arbitrary bytes as the head and as a sealed segment file of an
/// otherwise empty store: opening, scanning and verifying never panic, and
/// nothing is served (no bytes but the seeds' can hold a written event).
pub fn check_open_segment(data: &[u8]) {
    let fs = SimFs::new();
    let root = Path::new(ROOT);
    let Ok((engine, _)) = Engine::open_with(Arc::new(fs.clone()), root, small_config()) else {
        panic!("an empty simulated store did not open");
    };
    drop(engine);
    for name in ["0000000000000001.seg", "0000000000000002.seg"] {
        fs.put_file(&root.join("segments").join(name), data.to_vec());
    }
    if let Ok((engine, _)) = Engine::open_with(Arc::new(fs), root, small_config()) {
        // The store id is random, so these bytes cannot carry a segment of
        // this store: at most they are set aside, never served.
        assert_eq!(
            engine.snapshot().events().flatten().count(),
            0,
            "served events from a file of another store"
        );
        let _ = engine.verify();
    }
}

/// Any bytes as a packed data directory (see [`pack_dir`]): open it, scan
/// everything, look every written event up by id, run filtered and paged
/// queries, verify, reopen, and append. Whatever the bytes:
/// - nothing panics;
/// - every event served is byte-identical to one of [`seed_events`]
///   (damage is reported as an error, never decoded into another event);
/// - a full scan serves each id at most once;
/// - a filtered page holds only events that match the filter;
/// - paging with cursors never repeats an event, and ends.
pub fn check_data_dir(data: &[u8]) {
    let Some((engine, fs)) = open_packed(data) else {
        return;
    };
    let root = Path::new(ROOT);
    check_served(&engine);
    let _ = engine.verify();
    check_served(&engine);
    // New appends after whatever recovery did: stored, or a clean error.
    let extra = br#"{"action_name":"fuzz.after","actor":{"type":"t","id":"after"}}"#;
    if let Ok(out) = engine.append_json(&[&extra[..]]) {
        for o in out {
            let got = engine.get(o.id).ok().flatten();
            assert!(got.is_some(), "an acknowledged append is not readable");
        }
    }
    drop(engine);
    // And once more after a restart: recovery of what recovery left.
    if let Ok((engine, _)) = Engine::open_with(Arc::new(fs.crash(|_, _| 0)), root, small_config()) {
        check_served(&engine);
    }
}

/// A filter's meaning, said naively over the parsed event.
type Oracle = fn(&serde_json::Value) -> bool;

/// The value at a JSON pointer, `null` when absent.
fn at<'a>(v: &'a serde_json::Value, pointer: &str) -> &'a serde_json::Value {
    v.pointer(pointer).unwrap_or(&serde_json::Value::Null)
}

/// Unpacks a packed data directory (see [`pack_dir`]) into a fresh
/// [`SimFs`] and opens it; `None` when the engine refuses to open it.
pub fn open_packed(data: &[u8]) -> Option<(Engine, SimFs)> {
    let fs = SimFs::new();
    let root = Path::new(ROOT);
    for kind in KINDS {
        let _ = crate::io::FileSystem::create_dir_all(&fs, &root.join(kind));
    }
    for (rel, bytes) in unpack_dir(data) {
        fs.put_file(&root.join(rel), bytes);
    }
    let (engine, _report) = Engine::open_with(Arc::new(fs.clone()), root, small_config()).ok()?;
    Some((engine, fs))
}

/// Scan, lookups and queries of one open store: see [`check_data_dir`].
fn check_served(engine: &Engine) {
    let known = originals();
    // Written: one of the seed events, or the one check_data_dir appends.
    let genuine = |e: &StoredEvent| match known.get(&e.id) {
        Some(json) => *json == e.json,
        None => e.value().is_ok_and(|v| {
            at(&v, "/action_name") == "fuzz.after" && at(&v, "/actor/id") == "after"
        }),
    };
    let snap = engine.snapshot();
    let mut seen = HashSet::new();
    let mut served = 0u64;
    for e in snap.events().flatten() {
        assert!(genuine(&e), "served an event that was never written: {e:?}");
        assert!(seen.insert(e.id), "event {} served twice by one scan", e.id);
        served += 1;
    }
    assert!(served <= snap.event_count());
    for (id, json) in known {
        if let Ok(Some(e)) = snap.get(*id) {
            assert_eq!(&e.json, json, "lookup of {id} returned other bytes");
        }
    }
    let filters: [(Option<&str>, Oracle); 4] = [
        (None, |_| true),
        (Some("action_name = 'items.update'"), |v| {
            at(v, "/action_name") == "items.update"
        }),
        (
            Some("actor.type = 'user' AND environment.id = 'main'"),
            |v| at(v, "/actor/type") == "user" && at(v, "/environment/id") == "main",
        ),
        (
            Some("response.status >= 400 OR action_name = 'items.create'"),
            |v| {
                at(v, "/response/status").as_i64().is_some_and(|s| s >= 400)
                    || at(v, "/action_name") == "items.create"
            },
        ),
    ];
    for (text, matches) in filters {
        let filter = text.and_then(|t| parse_filter(t).ok());
        let _ = snap.count(filter.as_ref(), TimeRange::default());
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let mut query = Query {
                filter: filter.clone(),
                range: TimeRange::default(),
                order,
                limit: 7,
                cursor: None,
            };
            let mut paged = HashSet::new();
            // Each page holds at least one event, so the number of pages is
            // bounded by what the store holds.
            for _ in 0..=snap.event_count() + 1 {
                let Ok(page) = snap.query(&query) else { break };
                for e in &page.events {
                    assert!(genuine(e), "query served an event never written");
                    let v = e.value().unwrap_or_default();
                    assert!(matches(&v), "query {text:?} served a non-matching event");
                    assert!(paged.insert(e.id), "paging repeated {}", e.id);
                }
                match page.next_cursor {
                    Some(c) if !page.events.is_empty() => query.cursor = Some(c),
                    _ => break,
                }
            }
        }
    }
}
