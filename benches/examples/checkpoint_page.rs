//! Times one page of `GET /v1/checkpoints` against reading the whole
//! checkpoint log, on a synthetic year of checkpoints (one a minute:
//! 525,600 records, 118 MB): one real checkpoint from a fresh store,
//! written again with sequences 0 to 525,599 (docs/PERFORMANCE.md,
//! "Session 6").
//!
//! `cargo run --release -p auditlog-benches --example checkpoint_page`

use std::time::Instant;

use auditlog_engine::integrity::checkpoint::{read_log, read_log_page, LOG_FILE};
use auditlog_engine::io::StdFs;
use auditlog_engine::{Engine, EngineConfig};

const RECORDS: u64 = 525_600;

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let (engine, _) = Engine::open(
        &dir,
        EngineConfig {
            signing_key: Some(tmp.path().join("key")),
            ..EngineConfig::default()
        },
    )?;
    engine.append_json(&[r#"{"action_name":"a","actor":{"type":"u","id":"1"}}"#])?;
    engine.close()?;
    let path = dir.join("checkpoints").join(LOG_FILE);
    let one = read_log(&StdFs, &path)?
        .checkpoints
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the store wrote no checkpoint"))?;
    let mut bytes = Vec::new();
    for i in 0..RECORDS {
        let mut c = one.clone();
        c.sequence = i;
        c.position = i;
        bytes.extend_from_slice(&c.encode());
    }
    std::fs::write(&path, bytes)?;
    let after = RECORDS - 25_600;
    for _ in 0..3 {
        let t = Instant::now();
        let all = read_log(&StdFs, &path)?.checkpoints;
        let filtered: Vec<_> = all
            .iter()
            .filter(|c| c.sequence > after)
            .take(1000)
            .cloned()
            .collect();
        let whole = t.elapsed();
        let t = Instant::now();
        let page = read_log_page(&StdFs, &path, Some(after), 1000)?;
        let paged = t.elapsed();
        anyhow::ensure!(page == filtered, "the page differs from the filtered log");
        println!(
            "{} records: whole log then filter {whole:?}, page {paged:?}",
            all.len()
        );
    }
    Ok(())
}
