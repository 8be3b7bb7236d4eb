//! Writes N generated events as NDJSON to stdout (for offline inspection
//! and for feeding `auditlog ingest`): `cargo run --release -p
//! auditlog-benches --example dump_ndjson -- 100000 > events.ndjson`.
use std::io::Write;

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut gen = auditlog_engine::testing::gen::EventGenerator::new(Default::default());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::with_capacity(8192);
    for _ in 0..n {
        line.clear();
        gen.write_ndjson_line(&mut line);
        out.write_all(&line)?;
    }
    out.flush()
}
