//! Everything at once for a bounded time, on the real file system: writers
//! appending batches, readers paging with cursors, a tail following the
//! arrival-order feed, snapshot checkers, and retention dropping old
//! segments while small segments seal all the time. Checked against a
//! model of what the writers submitted and were acknowledged:
//! - no panic, no deadlock (a watchdog fails the test if a thread hangs);
//! - cursors never repeat an event, keep key order, and skip only events
//!   whose segment retention dropped while paging;
//! - every acknowledged event is in every later snapshot unless retention
//!   dropped it (then it is older than the newest cutoff);
//! - counts equal what a scan of the same snapshot finds;
//! - a segment in a snapshot is whole: scanning it yields exactly its
//!   event count, even while retention unlinks it;
//! - the tail never repeats or reorders, and at the end has seen every
//!   stored event.
//!
//! CI runs `SECS` seconds; longer:
//! `AUDITLOG_STRESS_SECS=300 cargo test -p auditlog-engine --test stress -- --nocapture`

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use auditlog_engine::query::feed::{Feed, FeedPosition};
use auditlog_engine::query::Query;
use auditlog_engine::{Engine, EngineConfig, EventId, Order, TimeRange, Timestamp};
use parking_lot::Mutex;

const SECS: u64 = 12;
const WRITERS: u64 = 2;
const WATCHDOG: Duration = Duration::from_secs(120);
/// Virtual clock: event n occurs at BASE + n ms.
const BASE: i64 = 1_767_225_600_000_000;

#[derive(Default)]
struct Model {
    /// id -> occurred_at (µs) of every event a writer submitted.
    submitted: Mutex<HashMap<EventId, i64>>,
    /// Ids whose append returned Ok.
    acked: Mutex<HashSet<EventId>>,
    /// The newest retention cutoff applied (µs); events older may be gone.
    cutoff: AtomicI64,
    drops: AtomicU64,
    /// Bumped before and after every `drop_before` call: a reader that
    /// sees `started` at its end equal to `finished` at its start knows no
    /// segment was removed meanwhile.
    drops_started: AtomicU64,
    drops_finished: AtomicU64,
    stop: AtomicBool,
    /// Writers that have returned: the tail stops only after all have.
    writers_done: AtomicU64,
    next_event: AtomicI64,
}

fn config() -> EngineConfig {
    EngineConfig {
        max_segment_events: 150,
        block_bytes: 2048,
        dictionary: false,
        block_cache_bytes: 4 << 20,
        ..EngineConfig::default()
    }
}

fn writer(engine: Engine, model: Arc<Model>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    while !model.stop.load(Ordering::Relaxed) {
        let size = rng.usize(1..25);
        let mut batch = Vec::with_capacity(size);
        let mut ids = Vec::with_capacity(size);
        for _ in 0..size {
            let n = model.next_event.fetch_add(1, Ordering::Relaxed);
            let ts = BASE + n * 1000;
            let id = EventId(ulid::Ulid::from_parts((ts / 1000) as u64, rng.u128(..)));
            let t = Timestamp(ts).to_rfc3339();
            batch.push(format!(
                r#"{{"id":"{id}","occurred_at":"{t}","action_name":"stress.a{}","actor":{{"type":"w","id":"{seed}"}},"n":{n}}}"#,
                n % 4
            ));
            ids.push((id, ts));
        }
        model.submitted.lock().extend(ids.iter().copied());
        let out = engine.append_json(&batch).expect("append failed");
        assert_eq!(out.len(), size);
        model.acked.lock().extend(ids.iter().map(|(id, _)| *id));
    }
    model.writers_done.fetch_add(1, Ordering::SeqCst);
}

/// Pages through the store with cursors, newest or oldest first.
fn pager(engine: Engine, model: Arc<Model>, order: Order) {
    let mut pages = 0u64;
    while !model.stop.load(Ordering::Relaxed) {
        let drops_before = model.drops_finished.load(Ordering::SeqCst);
        let mut query = Query {
            filter: None,
            range: TimeRange::default(),
            order,
            limit: 37,
            cursor: None,
        };
        let mut got: Vec<(Timestamp, EventId)> = Vec::new();
        let mut seen = HashSet::new();
        // The first page fixes the snapshot; it may be a little newer than
        // snap0, so compare against the first page's own watermark below.
        let first = engine.snapshot();
        let watermark_set: HashSet<EventId> = first.events().map(|e| e.unwrap().id).collect();
        loop {
            let page = first_or_next(&engine, &first, &query);
            for e in &page.events {
                assert!(seen.insert(e.id), "{order:?}: cursor repeated {}", e.id);
                assert!(
                    watermark_set.contains(&e.id),
                    "{order:?}: page served an event newer than its snapshot"
                );
                got.push((e.occurred_at, e.id));
            }
            pages += 1;
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        let sorted = {
            let mut s = got.clone();
            s.sort();
            if order == Order::NewestFirst {
                s.reverse();
            }
            s
        };
        assert_eq!(got, sorted, "{order:?}: pages out of key order");
        let dropped_meanwhile = model.drops_started.load(Ordering::SeqCst) != drops_before;
        let cutoff = model.cutoff.load(Ordering::SeqCst);
        for id in watermark_set.difference(&seen) {
            assert!(
                dropped_meanwhile,
                "{order:?}: cursor skipped {id} with no retention drop"
            );
            let ts = model.submitted.lock()[id];
            assert!(ts < cutoff, "{order:?}: skipped {id}, not expired");
        }
    }
    assert!(pages > 0);
}

fn first_or_next(
    engine: &Engine,
    first: &auditlog_engine::Snapshot,
    query: &Query,
) -> auditlog_engine::query::Page {
    // The first page runs on the snapshot whose contents were recorded;
    // later pages on a fresh one, as a server would, cut to the cursor's
    // watermark by the engine.
    match query.cursor {
        None => first.query(query),
        Some(_) => engine.snapshot().query(query),
    }
    .expect("query failed")
}

/// Snapshots: acknowledged events present unless expired, counts agree
/// with scans, every segment whole.
fn checker(engine: Engine, model: Arc<Model>) {
    while !model.stop.load(Ordering::Relaxed) {
        let acked_before: Vec<EventId> = model.acked.lock().iter().copied().collect();
        let snap = engine.snapshot();
        let mut scanned = HashSet::new();
        for seg in &snap.segments {
            let mut n = 0u32;
            for meta in seg.blocks() {
                let block = seg.read_block(&meta).expect("a block of a live segment");
                n += meta.ordinals().filter(|o| *o < seg.event_count()).count() as u32;
                for o in meta.ordinals().filter(|o| *o < seg.event_count()) {
                    scanned.insert(block.event(o).expect("event in block").id);
                }
            }
            assert_eq!(n, seg.event_count(), "segment {:?} not whole", seg.id());
        }
        assert_eq!(
            snap.count(None, TimeRange::default()).unwrap(),
            scanned.len() as u64,
            "count disagrees with the scan"
        );
        let cutoff = model.cutoff.load(Ordering::SeqCst);
        let submitted = model.submitted.lock();
        for id in acked_before {
            if !scanned.contains(&id) {
                assert!(submitted[&id] < cutoff, "acknowledged {id} missing");
            }
        }
    }
}

fn retention(engine: Engine, model: Arc<Model>) {
    while !model.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(300));
        // Keep roughly the newest 3000 events' worth of time.
        let newest = model.next_event.load(Ordering::Relaxed);
        let cutoff = BASE + (newest - 3000).max(0) * 1000;
        model.cutoff.fetch_max(cutoff, Ordering::SeqCst);
        model.drops_started.fetch_add(1, Ordering::SeqCst);
        let r = engine
            .drop_before(Timestamp(cutoff))
            .expect("retention failed");
        model.drops_finished.fetch_add(1, Ordering::SeqCst);
        if r.segments > 0 {
            model.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Follows the arrival-order feed from the start.
fn tail(engine: Engine, model: Arc<Model>) -> HashSet<EventId> {
    let feed = Feed::new(None).unwrap();
    let mut pos = FeedPosition::START;
    let mut seen = HashSet::new();
    loop {
        let stopping = model.writers_done.load(Ordering::SeqCst) == WRITERS;
        let page = feed.read(&engine.snapshot(), pos, 200).expect("tail read");
        for e in &page.events {
            assert!(seen.insert(e.event.id), "tail repeated {}", e.event.id);
            assert!(e.next > pos, "tail went backwards");
            pos = e.next;
        }
        assert!(page.next >= pos, "tail went backwards");
        pos = page.next;
        if stopping && page.at_end {
            return seen;
        }
        if page.at_end {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn writers_readers_tail_and_retention_at_once() {
    let secs: u64 = std::env::var("AUDITLOG_STRESS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SECS);
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), config()).unwrap();
    let model = Arc::new(Model::default());
    let (done_tx, done_rx) = mpsc::channel::<(&'static str, bool)>();
    let mut handles = Vec::new();
    let spawn = |name: &'static str, f: Box<dyn FnOnce() + Send>| {
        let tx = done_tx.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
                let _ = tx.send((name, ok));
            })
            .unwrap()
    };
    for seed in 0..WRITERS {
        let (e, m) = (engine.clone(), model.clone());
        handles.push(spawn("writer", Box::new(move || writer(e, m, seed))));
    }
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let (e, m) = (engine.clone(), model.clone());
        handles.push(spawn("pager", Box::new(move || pager(e, m, order))));
    }
    {
        let (e, m) = (engine.clone(), model.clone());
        handles.push(spawn("checker", Box::new(move || checker(e, m))));
        let (e, m) = (engine.clone(), model.clone());
        handles.push(spawn("retention", Box::new(move || retention(e, m))));
    }
    let tail_seen = Arc::new(Mutex::new(HashSet::new()));
    {
        let (e, m, out) = (engine.clone(), model.clone(), tail_seen.clone());
        handles.push(spawn("tail", Box::new(move || *out.lock() = tail(e, m))));
    }
    drop(done_tx);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        // No thread ends before the stop: one that did has panicked.
        if let Ok((name, _)) = done_rx.recv_timeout(Duration::from_millis(100)) {
            panic!("{name} stopped early (see its panic above)");
        }
    }
    model.stop.store(true, Ordering::SeqCst);
    for _ in 0..handles.len() {
        match done_rx.recv_timeout(WATCHDOG) {
            Ok((_, true)) => {}
            Ok((name, false)) => panic!("{name} panicked (see above)"),
            Err(_) => panic!("a thread did not finish within {WATCHDOG:?}: deadlock"),
        }
    }
    for h in handles {
        h.join().unwrap();
    }

    // The final store: exactly the acknowledged events retention kept.
    let acked = model.acked.lock().clone();
    let submitted = model.submitted.lock().clone();
    let cutoff = model.cutoff.load(Ordering::SeqCst);
    let stored: HashSet<EventId> = engine.snapshot().events().map(|e| e.unwrap().id).collect();
    assert!(stored.is_subset(&acked), "stored events never acknowledged");
    for id in acked.difference(&stored) {
        assert!(submitted[id] < cutoff, "{id} lost, not expired");
    }
    let tail_seen = tail_seen.lock().clone();
    assert!(
        stored.is_subset(&tail_seen),
        "the tail missed stored events"
    );
    assert!(tail_seen.is_subset(&acked));
    println!(
        "{secs}s: {} acknowledged, {} stored, {} retention drops",
        acked.len(),
        stored.len(),
        model.drops.load(Ordering::SeqCst)
    );
    assert!(acked.len() > 1000 && model.drops.load(Ordering::SeqCst) > 0);
    // And after a restart, the same.
    drop(engine);
    let (engine, _) = Engine::open(dir.path(), config()).unwrap();
    let again: HashSet<EventId> = engine.snapshot().events().map(|e| e.unwrap().id).collect();
    assert_eq!(again, stored);
}
