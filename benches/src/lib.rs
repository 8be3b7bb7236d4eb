//! Shared pieces of the benchmarks and load tools: the generated data set,
//! the NDJSON-to-durable ingest path (the same work the server does per
//! request), and measurements of disk use and memory.

use std::path::Path;

use auditlog_engine::testing::gen::{EventGenerator, GenConfig};
use auditlog_engine::{Engine, Timestamp};

/// `count` NDJSON batches of `size` generated events each (deterministic).
pub fn ndjson_batches(seed: u64, count: usize, size: usize) -> Vec<Vec<u8>> {
    let mut gen = EventGenerator::new(GenConfig {
        seed,
        ..GenConfig::default()
    });
    (0..count).map(|_| gen.ndjson_batch(size)).collect()
}

/// What the server does with one NDJSON request body: split lines,
/// validate each event, append the batch durably. Returns events stored.
pub fn ingest_ndjson(engine: &Engine, body: &[u8]) -> anyhow::Result<usize> {
    let now = Timestamp::now();
    let limits = &engine.config().limits;
    let mut events = Vec::with_capacity(1024);
    for (_, line) in auditlog_engine::event::ndjson_lines(body) {
        events.push(auditlog_engine::event::prepare_event(line, now, limits)?);
    }
    Ok(engine.append(events)?.len())
}

/// The store the query and facet benchmarks read: `AUDITLOG_BENCH_EVENTS`
/// events (default 1,000,000) over 30 days, in a temporary directory that
/// lives as long as the returned handle.
pub fn bench_store() -> anyhow::Result<(tempfile::TempDir, Engine, usize)> {
    let events: usize = std::env::var("AUDITLOG_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    eprintln!("building a store of {events} events...");
    let engine = build_store(dir.path(), events, 30.0)?;
    Ok((dir, engine, events))
}

/// Builds a store of `events` generated events spread evenly over `days`
/// days (ending at the generator's default start + `days`), ingested in
/// batches of 10,000 without per-batch syncs, then sealed.
pub fn build_store(dir: &Path, events: usize, days: f64) -> anyhow::Result<Engine> {
    let cfg = auditlog_engine::EngineConfig {
        sync: auditlog_engine::SyncPolicy::Never,
        ..auditlog_engine::EngineConfig::default()
    };
    let (engine, _) = Engine::open(dir, cfg)?;
    let mut gen = EventGenerator::new(GenConfig {
        seed: 42,
        events_per_second: events as f64 / (days * 86_400.0),
        ..GenConfig::default()
    });
    let mut left = events;
    while left > 0 {
        let n = left.min(10_000);
        ingest_ndjson(&engine, &gen.ndjson_batch(n))?;
        left -= n;
    }
    engine.seal()?;
    engine.sync()?;
    engine.wait_compacted();
    Ok(engine)
}

/// Total size of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Resident set size of this process, from /proc (Linux), in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kb("VmRSS:").map(|kb| kb * 1024)
}

/// Anonymous resident memory: what the process holds beyond the page
/// cache (memory-mapped segment files are file-backed and not counted).
pub fn rss_anon_bytes() -> Option<u64> {
    proc_status_kb("RssAnon:").map(|kb| kb * 1024)
}

/// CPU time (user + system) this process has used so far, in seconds,
/// from /proc/self/stat (Linux; clock ticks of 1/100 s). On a shared,
/// noisy machine CPU time per event is a steadier cost figure than wall
/// time.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may
    // hold spaces): utime and stime are fields 14 and 15 of the line.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The value at quantile `q` (0..=1) of sorted `v`.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}
