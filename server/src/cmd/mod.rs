//! The `auditlog` subcommands that work on a data directory or talk to a
//! running server: ingest, query, stats, export. The binary's edge: errors are
//! `anyhow`, output goes to the terminal.

pub mod client;
pub mod export;
pub mod ingest;
pub mod integrity;
pub mod query;
pub mod stats;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use auditlog_engine::Engine;

/// Opens a data directory, warning about anything set aside.
/// How the command line opens a store: like the server, except that it
/// never starts background compaction. A command is short-lived, and
/// `verify` must not rewrite the segments it is checking.
pub fn cli_config() -> auditlog_engine::EngineConfig {
    auditlog_engine::EngineConfig {
        compact_level: 0,
        ..Default::default()
    }
}

pub fn open(data: &Path) -> Result<Engine> {
    let (engine, report) =
        Engine::open(data, cli_config()).with_context(|| format!("opening {}", data.display()))?;
    for (path, why) in report.quarantined {
        tracing::warn!(file = %path.display(), reason = %why, "set aside");
    }
    Ok(engine)
}

/// Opens a data directory to write: seals get signed checkpoints and
/// retention drops signed tombstones, with the key beside the data
/// directory (`<data>.key`) unless `key` names another.
pub fn open_signed(data: &Path, key: Option<PathBuf>) -> Result<Engine> {
    let cfg = auditlog_engine::EngineConfig {
        signing_key: Some(key.unwrap_or_else(|| crate::config::default_key_path(data))),
        ..cli_config()
    };
    let (engine, report) =
        Engine::open(data, cfg).with_context(|| format!("opening {}", data.display()))?;
    for (path, why) in report.quarantined {
        tracing::warn!(file = %path.display(), reason = %why, "set aside");
    }
    for w in report.integrity_warnings {
        tracing::error!("{w}");
    }
    Ok(engine)
}
