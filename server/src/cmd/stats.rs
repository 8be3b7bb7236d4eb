//! `auditlog stats`: counts and sizes of a store, from its data directory
//! or from a running server's `/metrics`.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::client::Server;

pub enum Source {
    Dir(PathBuf),
    Url { url: String, token: Option<String> },
}

pub fn run(source: Source, as_json: bool) -> Result<()> {
    let stats: Value = match source {
        Source::Dir(dir) => {
            let s = super::open(&dir)?.stats();
            json!({
                "segments": s.segments, "events": s.events, "disk_bytes": s.disk_bytes,
                "raw_bytes": s.raw_bytes, "head_events": s.head_events,
            })
        }
        Source::Url { url, token } => {
            let server = Server::new(&url, token)?;
            let text = server.send(server.get("/metrics", &[]))?.text()?;
            let gauge = |name: &str| -> Result<u64> {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
                    .map(|v| v as u64)
                    .ok_or_else(|| anyhow!("the server's /metrics has no {name}"))
            };
            json!({
                "segments": gauge("auditlog_segments")?, "events": gauge("auditlog_events_stored")?,
                "disk_bytes": gauge("auditlog_disk_bytes")?, "raw_bytes": gauge("auditlog_raw_event_bytes")?,
                "head_events": gauge("auditlog_head_events")?,
                "sealing": gauge("auditlog_segments_sealing")?,
                "awaiting_compaction": gauge("auditlog_segments_awaiting_compaction")?,
            })
        }
    };
    if as_json {
        println!("{stats}");
        return Ok(());
    }
    let n = |k: &str| stats[k].as_u64().unwrap_or(0);
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    println!("events      {}", n("events"));
    println!(
        "segments    {} (head: {} events)",
        n("segments"),
        n("head_events")
    );
    // Only a running server compacts (commands open stores without), so
    // only its figures say anything about the backlog.
    if stats.get("awaiting_compaction").is_some() {
        println!(
            "background  {} segment(s) being sealed, {} awaiting compaction",
            n("sealing"),
            n("awaiting_compaction")
        );
    }
    println!("disk        {:.1} MiB", mib(n("disk_bytes")));
    println!("event JSON  {:.1} MiB", mib(n("raw_bytes")));
    if n("raw_bytes") > 0 {
        println!(
            "ratio       {:.1}% of the JSON",
            100.0 * n("disk_bytes") as f64 / n("raw_bytes") as f64
        );
    }
    Ok(())
}
