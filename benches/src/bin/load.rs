//! `auditlog-load`: sustained-load measurements, of the engine in process
//! and of a running server over HTTP.
//!
//! `append`: N threads append pre-generated NDJSON batches (parse,
//! validate, compress, write, sync — the whole path from request bytes to
//! durable storage) and report events/s, MB/s of NDJSON, bytes on disk per
//! NDJSON byte, and resident memory.
//!
//! `http`: N client threads post pre-generated NDJSON batches to a running
//! `auditlog serve` while one more client runs first-page indexed queries;
//! reports events/s acknowledged and query latency percentiles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use auditlog_benches::{
    cpu_seconds, dir_bytes, ingest_ndjson, ndjson_batches, rss_anon_bytes, rss_bytes,
};
use auditlog_engine::{Engine, EngineConfig, SyncPolicy};
use auditlog_server::config::parse_ingest_codec;
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
        /// Block codec at ingest: auto (the engine's default: LZ4 while
        /// compaction is on, else zstd level 3) | lz4 | zstd:<level>
        /// (as `auditlog serve --ingest-codec`)
        #[arg(long, default_value = "auto")]
        codec: String,
        #[arg(long, default_value_t = 16 * 1024)]
        block_bytes: usize,
        /// zstd level of the background recompression of sealed segments
        /// (0: none). Disk use is reported before and after it.
        #[arg(long, default_value_t = EngineConfig::default().compact_level)]
        compact_level: i32,
        /// Distinct batches generated up front and reused in turn.
        #[arg(long, default_value_t = 400)]
        pool: usize,
        /// Measurement only: no hash chain (to see what chaining costs).
        #[arg(long)]
        no_chain: bool,
        /// Sign checkpoints at every seal with this key file (created if
        /// absent), as the server does.
        #[arg(long)]
        key: Option<std::path::PathBuf>,
    },
    /// Post generated NDJSON batches to a running server with N concurrent
    /// clients while another client runs first-page indexed queries.
    /// Start the server first, e.g.
    /// `auditlog serve --data /tmp/load --retention-days 0`.
    Http {
        /// The server, e.g. http://127.0.0.1:7600.
        #[arg(long, default_value = "http://127.0.0.1:7600")]
        url: String,
        /// Bearer token (an ingest and read one, or admin), if the server has tokens.
        #[arg(long, env = "AUDITLOG_TOKEN")]
        token: Option<String>,
        /// Total events to post.
        #[arg(long, default_value_t = 2_000_000)]
        events: usize,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Concurrent ingest clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Pause between two queries of the query client, ms (0: back to back).
        #[arg(long, default_value_t = 20)]
        query_pause_ms: u64,
        /// Distinct batches generated up front and reused in turn.
        #[arg(long, default_value_t = 200)]
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
    // The same allocator settings as the `auditlog` binary.
    auditlog_server::alloc::keep_freed_memory_a_while();
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
            codec,
            block_bytes,
            compact_level,
            pool,
            no_chain,
            key,
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
                ingest_codec: parse_ingest_codec(&codec).map_err(anyhow::Error::msg)?,
                block_bytes,
                hash_chain: !no_chain,
                signing_key: key,
                compact_level,
                ..EngineConfig::default()
            };
            let codec = cfg.ingest_codec();
            let (engine, _) = Engine::open(&dir, cfg)?;
            let next = Arc::new(AtomicUsize::new(0));
            let ndjson_bytes = Arc::new(AtomicUsize::new(0));
            let started = Instant::now();
            let cpu_before = cpu_seconds().unwrap_or(0.0);
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
            let cpu = cpu_seconds().unwrap_or(0.0) - cpu_before;
            engine.seal()?;
            let raw = ndjson_bytes.load(Ordering::Relaxed) as f64;
            let disk_sealed = dir_bytes(&dir) as f64;
            let waited = Instant::now();
            engine.wait_compacted();
            let compact_wait = waited.elapsed().as_secs_f64();
            let disk = dir_bytes(&dir) as f64;
            println!(
                "{}",
                serde_json::json!({
                    "events": stored,
                    "seconds": secs,
                    "events_per_s": stored as f64 / secs,
                    "cpu_seconds": cpu,
                    "cpu_us_per_event": cpu * 1e6 / stored.max(1) as f64,
                    "hash_chain": !no_chain,
                    "ndjson_mb_per_s": raw / secs / 1e6,
                    "disk_bytes": disk,
                    "ndjson_bytes": raw,
                    "disk_per_ndjson_byte": disk / raw,
                    "disk_per_ndjson_byte_before_compaction": disk_sealed / raw,
                    "compaction_wait_after_ingest_s": compact_wait,
                    "compact_level": compact_level,
                    "rss_mib": rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
                    "rss_anon_mib": rss_anon_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
                    "batch": batch, "threads": threads, "codec": format!("{codec:?}"), "block_bytes": block_bytes,
                })
            );
            Ok(())
        }
        Cmd::Http {
            url,
            token,
            events,
            batch,
            clients,
            query_pause_ms,
            pool,
        } => http_load(HttpLoad {
            url,
            token,
            events,
            batch,
            clients,
            query_pause: Duration::from_millis(query_pause_ms),
            pool,
        }),
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

struct HttpLoad {
    url: String,
    token: Option<String>,
    events: usize,
    batch: usize,
    clients: usize,
    query_pause: Duration,
    pool: usize,
}

/// First-page filters the indexes answer (action, actor, environment).
/// Also timed alone by `benches/scripts/query_alone.sh`: keep the two in step.
const INDEXED_FILTERS: &[&str] = &[
    "action_name = 'items.update'",
    "actor.type = 'user' AND action_name = 'items.create'",
    "actor.id = 'rare-7'",
    "environment.id = 'main' AND actor.type = 'api_key'",
];

fn http_load(a: HttpLoad) -> Result<()> {
    use std::sync::atomic::AtomicBool;

    let base = a.url.trim_end_matches('/').to_owned();
    let client = || -> Result<reqwest::blocking::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = &a.token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))?,
            );
        }
        Ok(reqwest::blocking::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(120))
            .build()?)
    };
    let total_batches = a.events.div_ceil(a.batch.max(1));
    eprintln!(
        "generating {} batches of {}...",
        a.pool.min(total_batches),
        a.batch
    );
    let data: Arc<Vec<bytes::Bytes>> = Arc::new(
        ndjson_batches(7, a.pool.min(total_batches).max(1), a.batch.max(1))
            .into_iter()
            .map(bytes::Bytes::from)
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let querier = {
        let (c, base, done, pause) = (client()?, base.clone(), done.clone(), a.query_pause);
        std::thread::spawn(move || -> Result<Vec<f64>> {
            let mut ms = Vec::new();
            let mut i = 0usize;
            while !done.load(Ordering::Relaxed) {
                let filter = INDEXED_FILTERS[i % INDEXED_FILTERS.len()];
                i += 1;
                let t = Instant::now();
                let r = c
                    .get(format!("{base}/v1/events"))
                    .query(&[("filter", filter), ("limit", "100")])
                    .send()?;
                let status = r.status();
                let _ = r.bytes()?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                anyhow::ensure!(status.is_success(), "query answered {status}");
                std::thread::sleep(pause);
            }
            Ok(ms)
        })
    };
    let workers: Vec<_> = (0..a.clients)
        .map(|_| {
            let (c, base, data, next) = (client(), base.clone(), data.clone(), next.clone());
            std::thread::spawn(move || -> Result<(usize, usize)> {
                let c = c?;
                let (mut events, mut bytes) = (0usize, 0usize);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total_batches {
                        return Ok((events, bytes));
                    }
                    let body = data[i % data.len()].clone();
                    bytes += body.len();
                    let r = c
                        .post(format!("{base}/v1/events"))
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()?;
                    let status = r.status();
                    let answer = r.bytes()?;
                    anyhow::ensure!(
                        status.as_u16() == 201,
                        "ingest answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                    );
                    let v: serde_json::Value = serde_json::from_slice(&answer)?;
                    events += v["ids"].as_array().map_or(0, Vec::len);
                }
            })
        })
        .collect();
    let (mut events, mut bytes) = (0, 0);
    let mut failure = None;
    for w in workers {
        match w.join().map_err(|_| anyhow::anyhow!("client panicked"))? {
            Ok((e, b)) => {
                events += e;
                bytes += b;
            }
            Err(e) => failure = Some(e),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut ms = querier
        .join()
        .map_err(|_| anyhow::anyhow!("query client panicked"))??;
    if let Some(e) = failure {
        return Err(e);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "seconds": secs,
            "events_per_s": events as f64 / secs,
            "ndjson_mb_per_s": bytes as f64 / secs / 1e6,
            "clients": a.clients, "batch": a.batch,
            "queries": ms.len(),
            "query_p50_ms": auditlog_benches::quantile(&ms, 0.5),
            "query_p99_ms": auditlog_benches::quantile(&ms, 0.99),
            "query_max_ms": ms.last().copied().unwrap_or(f64::NAN),
        })
    );
    Ok(())
}
