//! `auditlog-load`: sustained-load measurements of the engine in process.
//!
//! `append`: N threads append pre-generated NDJSON batches (parse,
//! validate, compress, write, sync — the whole path from request bytes to
//! durable storage) and report events/s, MB/s of NDJSON, bytes on disk per
//! NDJSON byte, and resident memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use auditlog_benches::{dir_bytes, ingest_ndjson, ndjson_batches, rss_anon_bytes, rss_bytes};
use auditlog_engine::{Engine, EngineConfig, SyncPolicy};
use clap::{Parser, Subcommand};

// The same allocator as the `auditlog` binary, so figures match the server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Append generated events as fast as possible.
    Append {
        /// Total events to append.
        #[arg(long, default_value_t = 2_000_000)]
        events: usize,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// batch | none | interval:<ms>
        #[arg(long, default_value = "batch")]
        sync: String,
        /// Data directory (default: a fresh temporary one).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 3)]
        level: i32,
        #[arg(long, default_value_t = 16 * 1024)]
        block_bytes: usize,
        /// Distinct batches generated up front and reused in turn.
        #[arg(long, default_value_t = 400)]
        pool: usize,
    },
    /// Open an existing store, run a set of queries, report memory: what
    /// the engine holds for a store of this size beyond the page cache.
    Open {
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Append {
            events,
            batch,
            threads,
            sync,
            dir,
            level,
            block_bytes,
            pool,
        } => {
            let sync = match sync.as_str() {
                "batch" => SyncPolicy::EveryBatch,
                "none" => SyncPolicy::Never,
                s => SyncPolicy::Interval(Duration::from_millis(
                    s.strip_prefix("interval:")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(10),
                )),
            };
            let tmp = tempfile::tempdir()?;
            let dir = dir.unwrap_or_else(|| tmp.path().to_path_buf());
            let total_batches = events.div_ceil(batch);
            eprintln!(
                "generating {} batches of {batch}...",
                pool.min(total_batches)
            );
            let data = Arc::new(ndjson_batches(1, pool.min(total_batches), batch));
            let cfg = EngineConfig {
                sync,
                compression_level: level,
                block_bytes,
                ..EngineConfig::default()
            };
            let (engine, _) = Engine::open(&dir, cfg)?;
            let next = Arc::new(AtomicUsize::new(0));
            let ndjson_bytes = Arc::new(AtomicUsize::new(0));
            let started = Instant::now();
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let (engine, data, next, ndjson_bytes) = (
                        engine.clone(),
                        data.clone(),
                        next.clone(),
                        ndjson_bytes.clone(),
                    );
                    std::thread::spawn(move || -> Result<usize> {
                        let mut stored = 0;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= total_batches {
                                return Ok(stored);
                            }
                            let body = &data[i % data.len()];
                            ndjson_bytes.fetch_add(body.len(), Ordering::Relaxed);
                            stored += ingest_ndjson(&engine, body)?;
                        }
                    })
                })
                .collect();
            let mut stored = 0;
            for w in workers {
                stored += w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
            }
            let secs = started.elapsed().as_secs_f64();
            engine.seal()?;
            let raw = ndjson_bytes.load(Ordering::Relaxed) as f64;
            let disk = dir_bytes(&dir) as f64;
            println!(
                "{}",
                serde_json::json!({
                    "events": stored,
                    "seconds": secs,
                    "events_per_s": stored as f64 / secs,
                    "ndjson_mb_per_s": raw / secs / 1e6,
                    "disk_bytes": disk,
                    "ndjson_bytes": raw,
                    "disk_per_ndjson_byte": disk / raw,
                    "rss_mib": rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
                    "rss_anon_mib": rss_anon_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
                    "batch": batch, "threads": threads, "level": level, "block_bytes": block_bytes,
                })
            );
            Ok(())
        }
        Cmd::Open { dir } => {
            let started = Instant::now();
            let (engine, report) = Engine::open(&dir, EngineConfig::default())?;
            let open_ms = started.elapsed().as_secs_f64() * 1e3;
            let snap = engine.snapshot();
            let filters = [
                "actor.id = 'rare-7'",
                "action_name = 'items.update'",
                "actor.type = 'user' AND action_name = 'items.create'",
                "NOT (actor.type = 'user') AND action_name != 'items.update'",
                "action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '855832'",
                "request.path LIKE '/uploads/%'",
            ];
            let mut pages = Vec::new();
            for f in filters {
                let filter = auditlog_engine::query::parse_filter(f)?;
                let q = auditlog_engine::query::Query {
                    filter: Some(filter.clone()),
                    limit: 100,
                    ..Default::default()
                };
                // First page: once cold, then the median of 9 warm runs.
                let t = Instant::now();
                let n = snap.query(&q)?.events.len();
                let cold_ms = t.elapsed().as_secs_f64() * 1e3;
                let mut warm: Vec<f64> = (0..9)
                    .map(|_| {
                        let t = Instant::now();
                        let _ = snap.query(&q);
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                warm.sort_by(f64::total_cmp);
                let t = Instant::now();
                let count = snap.count(Some(&filter), Default::default())?;
                let count_ms = t.elapsed().as_secs_f64() * 1e3;
                pages.push(serde_json::json!({
                    "filter": f, "page": n, "page_cold_ms": cold_ms,
                    "page_warm_median_ms": auditlog_benches::quantile(&warm, 0.5),
                    "count": count, "count_ms": count_ms,
                }));
            }
            let stats = engine.stats();
            println!(
                "{}",
                serde_json::json!({
                    "events": stats.events, "segments": stats.segments, "disk_bytes": stats.disk_bytes,
                    "quarantined": report.quarantined.len(), "open_ms": open_ms, "queries": pages,
                    "rss_mib": rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
                    "rss_anon_mib": rss_anon_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
                })
            );
            Ok(())
        }
    }
}
