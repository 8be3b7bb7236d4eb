//! `auditlog export`: the bytes `GET /v1/export` would stream, written
//! from a data directory to a file (whole, then renamed into place) or to
//! stdout. The formats are `crate::export`'s; nothing is formatted here.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::api::events::{parse_filter_param, parse_range};
use crate::export::format::ExportFormat;
use crate::export::run::{run_export, ExportSpec};

/// `auditlog export`: the streamed export's bytes, to a file or stdout.
pub fn run(
    format: &str,
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    out: Option<PathBuf>,
    data: PathBuf,
) -> Result<()> {
    let format = ExportFormat::parse(format)
        .with_context(|| format!("unknown format {format:?}: use csv, ndjson or json"))?;
    let spec = ExportSpec {
        format,
        filter: parse_filter_param(&filter).map_err(|e| anyhow::anyhow!(e.message))?,
        range: parse_range(&from, &to).map_err(|e| anyhow::anyhow!(e.message))?,
    };
    let engine = super::open(&data)?;
    let partial = out.as_ref().map(|p| p.with_extension("partial"));
    let sink: Box<dyn Write> = match &partial {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 16, sink);
    let mut failed = None;
    let summary = run_export(&engine.snapshot(), &spec, |chunk| {
        match sink.write_all(&chunk) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    sink.flush()?;
    drop(sink);
    if let (Some(partial), Some(out)) = (partial, out) {
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, &out).with_context(|| format!("writing {}", out.display()))?;
    }
    eprintln!("exported {} events, {} bytes", summary.rows, summary.bytes);
    Ok(())
}
