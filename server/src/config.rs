//! Server configuration: defaults, then the TOML file, then flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use auditlog_engine::{BlockCodec, EngineConfig, SyncPolicy};
use serde::Deserialize;

use crate::tokens::{TokenEntry, TokenSet};

/// What `auditlog serve` runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data: PathBuf,
    pub listen: SocketAddr,
    /// Initial retention period in days (0: keep forever). A value set
    /// through `PUT /v1/settings/retention` is stored in the data
    /// directory and wins over this one.
    pub retention_days: u32,
    pub sync: SyncPolicy,
    /// Largest request body (an NDJSON batch), bytes.
    pub max_body_bytes: usize,
    pub max_event_bytes: usize,
    /// Bearer tokens; empty means open and loopback-only.
    pub tokens: TokenSet,
    /// The Ed25519 signing key file (created on first start). Default:
    /// beside the data directory, `<data>.key`, so that a copy of the
    /// data directory does not carry the key.
    pub key: Option<PathBuf>,
    /// A signed checkpoint this often while events arrive (0: only at
    /// seals and shutdown).
    pub checkpoint_interval: Duration,
    /// The JSON-lines copy of the checkpoints meant to be shipped
    /// elsewhere; default `<data>/checkpoints/checkpoints.ndjson`.
    pub checkpoint_export: Option<PathBuf>,
    /// zstd level sealed segments are compressed again at in the
    /// background (0: no compaction). See docs/FORMAT.md, "Compaction".
    pub compact_level: i32,
    /// How blocks are compressed at ingest; `None` lets the engine choose
    /// (LZ4 while compaction is on, zstd level 3 when it is off).
    pub ingest_codec: Option<BlockCodec>,
    /// Days finished export jobs and their files are kept (0: until
    /// deleted by hand).
    pub export_retention_days: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            data: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7600)),
            retention_days: 180,
            sync: SyncPolicy::EveryBatch,
            max_body_bytes: 64 << 20,
            max_event_bytes: 1 << 20,
            tokens: TokenSet::default(),
            key: None,
            checkpoint_interval: Duration::from_secs(60),
            checkpoint_export: None,
            compact_level: EngineConfig::default().compact_level,
            ingest_codec: None,
            export_retention_days: crate::export::jobs::DEFAULT_RETENTION_DAYS,
        }
    }
}

/// A compaction level: 0 (off) or one of zstd's levels, 1 to 22.
pub fn parse_compact_level(level: i32) -> Result<i32, String> {
    if (0..=22).contains(&level) {
        Ok(level)
    } else {
        Err(format!(
            "compact_level {level} is out of range: use 0 (no compaction) or a zstd level from 1 to 22"
        ))
    }
}

/// An ingest codec: `auto` (the engine's choice), `lz4`, or
/// `zstd:<level>` with a zstd level from 1 to 22.
pub fn parse_ingest_codec(s: &str) -> Result<Option<BlockCodec>, String> {
    let level = s.strip_prefix("zstd:").map(str::parse::<i32>);
    match (s, level) {
        ("auto", _) => Ok(None),
        ("lz4", _) => Ok(Some(BlockCodec::Lz4)),
        (_, Some(Ok(level))) if (1..=22).contains(&level) => Ok(Some(BlockCodec::Zstd { level })),
        _ => Err(format!(
            "unknown ingest codec {s:?}: use auto, lz4 or zstd:<level from 1 to 22>"
        )),
    }
}

/// The signing key beside a data directory: `./data` -> `./data.key`.
pub fn default_key_path(data: &std::path::Path) -> PathBuf {
    let mut name = data
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "data".into());
    name.push(".key");
    data.with_file_name(name)
}

impl ServeConfig {
    /// How long finished export jobs are kept (`None`: until deleted).
    pub fn export_retention(&self) -> Option<Duration> {
        (self.export_retention_days > 0)
            .then(|| Duration::from_secs(u64::from(self.export_retention_days) * 86_400))
    }

    pub fn key_path(&self) -> PathBuf {
        self.key
            .clone()
            .unwrap_or_else(|| default_key_path(&self.data))
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut cfg = EngineConfig {
            sync: self.sync,
            signing_key: Some(self.key_path()),
            checkpoint_export: self.checkpoint_export.clone(),
            compact_level: self.compact_level,
            ingest_codec: self.ingest_codec,
            ..EngineConfig::default()
        };
        cfg.limits.max_event_bytes = self.max_event_bytes;
        cfg
    }
}

/// The TOML file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub retention_days: Option<u32>,
    pub sync: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_event_bytes: Option<usize>,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    pub key: Option<PathBuf>,
    pub checkpoint_interval_secs: Option<u64>,
    pub compact_level: Option<i32>,
    pub ingest_codec: Option<String>,
    pub export_retention_days: Option<u32>,
    pub checkpoint_export: Option<PathBuf>,
}

/// Parses a sync policy: `batch` (default), `none`, or `interval:<ms>`.
pub fn parse_sync(s: &str) -> Result<SyncPolicy, String> {
    match s {
        "batch" | "every-batch" => Ok(SyncPolicy::EveryBatch),
        "none" | "never" => Ok(SyncPolicy::Never),
        other => match other
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            Some(ms) if ms > 0 => Ok(SyncPolicy::Interval(Duration::from_millis(ms))),
            _ => Err(format!(
                "unknown sync policy {other:?}: use batch, none or interval:<milliseconds>"
            )),
        },
    }
}

impl ServeConfig {
    /// Applies a TOML file's settings over the defaults.
    pub fn apply_file(&mut self, text: &str) -> Result<(), String> {
        let f: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(v) = f.data {
            self.data = v;
        }
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.retention_days {
            self.retention_days = v;
        }
        if let Some(v) = f.sync {
            self.sync = parse_sync(&v)?;
        }
        if let Some(v) = f.max_body_bytes {
            self.max_body_bytes = v;
        }
        if let Some(v) = f.max_event_bytes {
            self.max_event_bytes = v;
        }
        self.tokens = TokenSet::from_entries(&f.tokens)?;
        if let Some(v) = f.key {
            self.key = Some(v);
        }
        if let Some(v) = f.compact_level {
            self.compact_level = parse_compact_level(v)?;
        }
        if let Some(v) = f.export_retention_days {
            self.export_retention_days = v;
        }
        if let Some(v) = f.ingest_codec {
            self.ingest_codec = parse_ingest_codec(&v)?;
        }
        if let Some(v) = f.checkpoint_interval_secs {
            self.checkpoint_interval = Duration::from_secs(v);
        }
        if let Some(v) = f.checkpoint_export {
            self.checkpoint_export = Some(v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let mut c = ServeConfig::default();
        c.apply_file("listen = \"0.0.0.0:9000\"\nsync = \"interval:50\"\n")
            .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.sync, SyncPolicy::Interval(Duration::from_millis(50)));
        assert!(c.apply_file("lisen = 1").is_err());
        assert!(parse_sync("sometimes").is_err());
    }

    #[test]
    fn export_files_are_kept_a_week_unless_configured() {
        let mut c = ServeConfig::default();
        assert_eq!(c.export_retention(), Some(Duration::from_secs(7 * 86_400)));
        c.apply_file("export_retention_days = 90\n").unwrap();
        assert_eq!(c.export_retention(), Some(Duration::from_secs(90 * 86_400)));
        c.apply_file("export_retention_days = 0\n").unwrap();
        assert_eq!(c.export_retention(), None);
        assert!(c.apply_file("export_retention_days = -1\n").is_err());
    }

    #[test]
    fn the_ingest_codec_is_auto_lz4_or_a_zstd_level() {
        let mut c = ServeConfig::default();
        assert_eq!(c.engine_config().ingest_codec(), BlockCodec::Lz4);
        c.compact_level = 0;
        assert_eq!(
            c.engine_config().ingest_codec(),
            BlockCodec::Zstd { level: 3 },
            "a store never compacted is not left at LZ4's size"
        );
        c.apply_file("ingest_codec = \"zstd:7\"\n").unwrap();
        assert_eq!(
            c.engine_config().ingest_codec(),
            BlockCodec::Zstd { level: 7 }
        );
        c.apply_file("ingest_codec = \"lz4\"\n").unwrap();
        assert_eq!(c.engine_config().ingest_codec(), BlockCodec::Lz4);
        c.apply_file("ingest_codec = \"auto\"\n").unwrap();
        assert_eq!(c.ingest_codec, None);
        for bad in ["zstd", "zstd:0", "zstd:23", "zstd:x", "gzip", ""] {
            let e = parse_ingest_codec(bad).unwrap_err();
            assert!(e.contains("use auto, lz4"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_key_lives_beside_the_data_directory_unless_configured() {
        let mut c = ServeConfig {
            data: PathBuf::from("/var/lib/auditlog/data"),
            ..ServeConfig::default()
        };
        assert_eq!(c.key_path(), PathBuf::from("/var/lib/auditlog/data.key"));
        c.apply_file("key = \"/etc/auditlog/signing.key\"\ncheckpoint_interval_secs = 5\n")
            .unwrap();
        assert_eq!(c.key_path(), PathBuf::from("/etc/auditlog/signing.key"));
        assert_eq!(c.checkpoint_interval, Duration::from_secs(5));
        assert_eq!(
            default_key_path(std::path::Path::new("./data/")),
            PathBuf::from("./data.key")
        );
    }

    #[test]
    fn tokens_come_from_the_file() {
        let token = crate::tokens::generate_token().unwrap();
        let mut c = ServeConfig::default();
        c.apply_file(&format!(
            "[[tokens]]\nname = \"ops\"\nrole = \"admin\"\nhash = \"{}\"\n",
            crate::tokens::hash_token(&token)
        ))
        .unwrap();
        assert_eq!(c.tokens.len(), 1);
        assert_eq!(c.tokens.authenticate(&token).unwrap().name, "ops");
        assert!(c
            .apply_file("[[tokens]]\nname = \"ops\"\nrole = \"root\"\nhash = \"sha256:00\"\n")
            .is_err());
    }
}
