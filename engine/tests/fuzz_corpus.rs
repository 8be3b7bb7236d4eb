//! Replays every committed fuzz input (`fuzz/seeds/<target>/`, which holds
//! the seeds and every input a fuzzer ever found a bug with) through the
//! same property checks the cargo-fuzz targets run
//! (`auditlog_engine::testing::fuzzing`), so CI catches a regression without
//! a fuzzer. Also replays `fuzz/corpus/<target>/` when a local fuzzing run
//! left one, and freshly written data-directory seeds, so that a format
//! change cannot leave the committed seeds testing only the old format.
//!
//! Each input runs under a watchdog (a hang fails the test, naming the
//! input) and a counting allocator (an input that makes the engine allocate
//! more than `ALLOC_LIMIT` at once fails it): the fuzzer's `-timeout` and
//! `-malloc_limit_mb`, for CI.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use auditlog_engine::testing::fuzzing;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The allocation peak is process-wide: measure one thing at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Far above what any input of a few KB needs (the caches are 1 MiB each),
/// far below what a length field trusted from damaged bytes would ask for.
const ALLOC_LIMIT: usize = 128 << 20;
/// A hang, not a slow input: the slowest seed takes well under a second.
const WATCHDOG: Duration = Duration::from_secs(60);

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 5] = [
    ("filter_parse", fuzzing::check_filter_parse),
    ("event_validate", fuzzing::check_event_validate),
    ("ndjson_batch", fuzzing::check_ndjson_batch),
    ("open_segment", fuzzing::check_open_segment),
    ("data_dir", fuzzing::check_data_dir),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

/// Runs one input on a worker thread under the watchdog and the
/// allocation limit; panics (failing the test) with the input's name.
fn run(check: Check, name: &str, input: Vec<u8>) {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| check(&input));
            let _ = tx.send(outcome.is_ok());
        })
        .unwrap();
    match rx.recv_timeout(WATCHDOG) {
        Ok(true) => {}
        Ok(false) => panic!("property violated by {name} (see the panic above)"),
        Err(_) => panic!("{name} hangs: no answer within {WATCHDOG:?}"),
    }
    worker.join().unwrap();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(
        peak < ALLOC_LIMIT,
        "{name} made the engine hold {peak} bytes at once"
    );
}

#[test]
fn every_committed_fuzz_input_passes_its_target_checks() {
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "no committed seeds for {target}");
        let local = inputs(&fuzz_dir().join("corpus").join(target));
        for (name, input) in seeds.into_iter().chain(local) {
            run(check, &name, input);
            replayed += 1;
        }
    }
    for (name, input) in fuzzing::seed_dirs() {
        run(fuzzing::check_data_dir, &format!("fresh {name}"), input);
    }
    println!("replayed {replayed} inputs");
}

/// The checks reject what they must: a store holding an event that is not
/// one of the seed events (as a damaged block decoded into something else
/// would be) fails the "never written" property, so the replay above can
/// fail at all.
#[test]
fn the_data_dir_check_catches_an_event_never_written() {
    let (_, packed) = fuzzing::seed_dirs().into_iter().next().unwrap();
    let (engine, fs) = fuzzing::open_packed(&packed).unwrap();
    engine
        .append_json(&[r#"{"action_name":"items.update","actor":{"type":"user","id":"intruder"}}"#])
        .unwrap();
    drop(engine);
    let intruded = fuzzing::pack_dir(&fuzzing::store_files(&fs));
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let caught = std::panic::catch_unwind(|| fuzzing::check_data_dir(&intruded));
    assert!(caught.is_err(), "an event never written went unnoticed");
}

/// Committed data-directory seeds must still open and serve their events:
/// after a format change they would otherwise be refused whole and fuzz
/// nothing but the refusal.
#[test]
fn committed_data_dir_seeds_are_in_the_current_format() {
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (name, input) in inputs(&fuzz_dir().join("seeds/data_dir")) {
        let (engine, _) = fuzzing::open_packed(&input).unwrap_or_else(|| {
            panic!("{name} no longer opens: regenerate the seeds (see write_seeds)")
        });
        assert!(
            engine.snapshot().events().flatten().count() > 0,
            "{name} serves nothing: regenerate the seeds (see write_seeds)"
        );
    }
}

/// Writes the seed inputs of every target into `fuzz/seeds/`. Run by hand
/// after a format change:
/// `cargo test -p auditlog-engine --test fuzz_corpus -- --ignored write_seeds`
/// (first renaming the old data-directory seeds `v<old version>_<name>`:
/// they go on fuzzing how older stores are read, as `v2_*` do).
#[test]
#[ignore = "writes files into the repository"]
fn write_seeds() {
    let seeds = fuzz_dir().join("seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (name, packed) in fuzzing::seed_dirs() {
        write("data_dir", name, &packed);
    }
    let events = fuzzing::seed_events();
    let lines = |n: usize| -> Vec<u8> {
        events[..n]
            .iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect()
    };
    write("ndjson_batch", "five_events", &lines(5));
    let mut crlf = b"\r\n".to_vec();
    for l in &events[5..8] {
        crlf.extend_from_slice(l);
        crlf.extend_from_slice(b"\r\n\n  \n");
    }
    write("ndjson_batch", "crlf_and_blank_lines", &crlf);
    let mut dup = lines(2);
    dup.extend_from_slice(&events[0]);
    write("ndjson_batch", "duplicate_id", &dup);
    let mut bad = lines(2);
    bad.extend_from_slice(b"{\"action_name\":\"x\"}\nnot json\n");
    write("ndjson_batch", "invalid_lines", &bad);
    write(
        "ndjson_batch",
        "no_ids",
        b"{\"action_name\":\"a\",\"actor\":{\"type\":\"u\",\"id\":\"1\"}}\n{\"action_name\":\"b\",\"actor\":{\"type\":\"u\",\"id\":\"2\"},\"occurred_at\":\"2025-12-31T23:00:00+01:00\"}\n",
    );
    write("event_validate", "generated", &events[0]);
    write(
        "event_validate",
        "minimal",
        b"{\"action_name\":\"a\",\"actor\":{\"type\":\"u\",\"id\":\"1\"}}",
    );
    write(
        "event_validate",
        "all_fields",
        br#"{"id":"01FC31EHYYR0MF7J7GEJK2TFM0","occurred_at":"2025-06-01T10:00:00.123456789+02:00","action_name":"items.update","actor":{"type":"user","id":"4845293","name":"alice"},"role":{"id":"1"},"environment":null,"request":{"id":"r","method":"PUT","path":"/items/1","ip":"10.0.0.1","user_agent":"curl","payload":{"a":[1,2,{"b":null}]}},"response":{"status":200,"payload":{}},"error":null,"description":"d","metadata":{"k":"v"},"extra":true}"#,
    );
    write(
        "event_validate",
        "duplicate_field",
        br#"{"action_name":"a","action_name":"b","actor":{"type":"u","id":"1"}}"#,
    );
    for (i, f) in [
        "action_name = 'items.update'",
        "actor.type = 'user' AND (actor.id IN ('1', '2') OR NOT environment.id = 'main')",
        "response.status >= 400 AND request.path LIKE '/items/%'",
        "occurred_at > '2026-01-01T00:00:00Z' AND metadata.\"odd key\" IS NOT NULL",
        "NOT (a = 1 AND NOT (b = 2))",
        "actor.id = ",
    ]
    .iter()
    .enumerate()
    {
        write("filter_parse", &format!("filter_{i}"), f.as_bytes());
    }
    write("open_segment", "empty", b"");
    for (name, packed) in fuzzing::seed_dirs().into_iter().take(1) {
        let files = fuzzing::unpack_dir(&packed);
        if let Some((_, seg)) = files.iter().find(|(p, _)| p.starts_with("segments")) {
            write("open_segment", &format!("{name}_first_segment"), seg);
        }
    }
}

/// A block header that claims four billion events (checksums fixed up, so
/// it reaches the event splitter) must not make the reader reserve room
/// for them: the count is bounded by the bytes actually there.
#[test]
fn an_implausible_event_count_allocates_nothing_up_front() {
    use auditlog_engine::segment::format::decode_events;
    let _alone = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    assert!(decode_events(&[0u8; 64], u32::MAX).is_none());
    assert!(PEAK.load(Ordering::Relaxed) - base < 1 << 20);
}
