//! The `auditlog` subcommands that work on a data directory or talk to a
//! running server: ingest, query, stats. The binary's edge: errors are
//! `anyhow`, output goes to the terminal.

pub mod client;
pub mod ingest;
pub mod query;
pub mod stats;

use std::path::Path;

use anyhow::{Context, Result};
use auditlog_engine::Engine;

/// Opens a data directory, warning about anything set aside.
pub fn open(data: &Path) -> Result<Engine> {
    let (engine, report) = Engine::open(data, Default::default())
        .with_context(|| format!("opening {}", data.display()))?;
    for (path, why) in report.quarantined {
        tracing::warn!(file = %path.display(), reason = %why, "set aside");
    }
    Ok(engine)
}
