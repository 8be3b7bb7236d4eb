//! Settings changed at run time (today: the retention period), kept in
//! `<data>/server-settings` so they survive a restart.
//!
//! The file is small and rewritten whole, atomically, through the engine's
//! I/O layer (temp file, fsync, rename, fsync of the directory). Layout
//! (docs/OPERATIONS.md): one line of JSON, then the footer line
//! `# auditlog-settings version=1 crc32=<8 hex digits>\n`, the CRC-32 of
//! the JSON line with its newline. A file that fails its check stops the
//! server from starting instead of falling back to a default: a wrong
//! retention period deletes data.
//!
//! This module owns the file's format only; it knows nothing of HTTP.

use std::path::{Path, PathBuf};

use auditlog_engine::io::{FileSystem, StdFs};
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "server-settings";
const FOOTER_PREFIX: &str = "# auditlog-settings version=";
const VERSION: u32 = 1;

/// Longest retention period accepted, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSettings {
    /// Days of events kept; 0 keeps everything.
    pub retention_days: u32,
    /// When and by which token it was last set (RFC 3339).
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({why}); fix or remove it (see docs/OPERATIONS.md)")]
    Damaged { path: PathBuf, why: String },
}

pub fn path_in(data: &Path) -> PathBuf {
    data.join(FILE_NAME)
}

/// The stored settings of a data directory, `None` when never set.
pub fn load(data: &Path) -> Result<Option<StoredSettings>, SettingsError> {
    let path = path_in(data);
    let bytes = match StdFs.read_all(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SettingsError::Io { path, source }),
    };
    decode((*bytes).as_ref())
        .map(Some)
        .map_err(|why| SettingsError::Damaged { path, why })
}

/// Replaces the stored settings, durably, before returning.
pub fn save(data: &Path, s: &StoredSettings) -> Result<(), SettingsError> {
    let path = path_in(data);
    StdFs
        .write_atomic(&path, &encode(s))
        .map_err(|source| SettingsError::Io { path, source })
}

fn encode(s: &StoredSettings) -> Vec<u8> {
    // Serialising a struct of strings and integers cannot fail.
    let mut out = serde_json::to_vec(s).unwrap_or_default();
    out.push(b'\n');
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(format!("{FOOTER_PREFIX}{VERSION} crc32={crc:08x}\n").as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<StoredSettings, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let body_end = text
        .find('\n')
        .map(|i| i + 1)
        .ok_or_else(|| "no footer".to_string())?;
    let (body, footer) = text.split_at(body_end);
    let footer = footer
        .strip_prefix(FOOTER_PREFIX)
        .and_then(|f| f.strip_suffix('\n'))
        .ok_or_else(|| "no footer".to_string())?;
    let (version, crc) = footer
        .split_once(" crc32=")
        .ok_or_else(|| "malformed footer".to_string())?;
    if version != VERSION.to_string() {
        return Err(format!("unknown version {version}"));
    }
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "malformed checksum".to_string())?;
    if crc != crc32fast::hash(body.as_bytes()) {
        return Err("checksum mismatch".into());
    }
    let s: StoredSettings = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if s.retention_days > MAX_RETENTION_DAYS {
        return Err(format!(
            "retention_days {} is out of range",
            s.retention_days
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredSettings {
        StoredSettings {
            retention_days: 30,
            updated_at: "2026-11-21T10:00:00Z".into(),
            updated_by: "ops".into(),
        }
    }

    #[test]
    fn round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        let mut later = sample();
        later.retention_days = 0;
        save(dir.path(), &later).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(later));
    }

    #[test]
    fn every_flipped_byte_or_cut_is_detected() {
        let good = encode(&sample());
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at {i} undetected");
            assert!(decode(&good[..i]).is_err(), "cut at {i} undetected");
        }
        assert_eq!(decode(&good).unwrap(), sample());
    }
}
