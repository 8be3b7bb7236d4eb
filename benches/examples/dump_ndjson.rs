//! Writes N generated events as NDJSON to stdout (for offline inspection
//! and for feeding `auditlog ingest`): `cargo run --release -p
//! auditlog-benches --example dump_ndjson -- 100000 > events.ndjson`.
//! Optional second and third arguments: the first event's time (RFC 3339)
//! and events per second, e.g. `-- 20000 2026-11-14T00:00:00Z 0.033` for
//! a week of events ending about now (the viewer's end-to-end tests).
use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut cfg = auditlog_engine::testing::gen::GenConfig::default();
    if let Some(start) = args.next() {
        cfg.start =
            time::OffsetDateTime::parse(&start, &time::format_description::well_known::Rfc3339)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    if let Some(eps) = args.next().and_then(|s| s.parse().ok()) {
        cfg.events_per_second = eps;
    }
    let mut gen = auditlog_engine::testing::gen::EventGenerator::new(cfg);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::with_capacity(8192);
    for _ in 0..n {
        line.clear();
        gen.write_ndjson_line(&mut line);
        out.write_all(&line)?;
    }
    out.flush()
}
