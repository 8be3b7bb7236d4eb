//! Signed checkpoints: "the store held `position` events and its chain
//! stood at `chain_head`, at `time`", signed with the store's key and
//! linked to the previous checkpoint. Written at every seal, at an interval
//! while events arrive, and at shutdown; kept in `checkpoints/log` and
//! copied as JSON lines to a file meant to be shipped elsewhere.
//!
//! Record (224 bytes; the log is these back to back):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `AUDLCKPT` |
//! | 8 | 2 | version (1) |
//! | 10 | 2 | reason: 1 seal, 2 interval, 3 shutdown, 4 on request |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 16 | store id |
//! | 32 | 8 | sequence: 0 for the store's first checkpoint, then +1 |
//! | 40 | 8 | position: events in the chain since genesis, dropped ones included |
//! | 48 | 32 | chain value after those events |
//! | 80 | 8 | time (µs since the epoch) |
//! | 88 | 32 | SHA-256 of the previous record's 224 bytes (zero for the first) |
//! | 120 | 32 | Ed25519 public key of the signer |
//! | 152 | 64 | Ed25519 signature of bytes 0..152 |
//! | 216 | 2 | version again (footer) |
//! | 218 | 2 | reserved, 0 |
//! | 220 | 4 | crc32 of bytes 0..220 |
//!
//! This module owns the record and the log files; when to checkpoint is
//! the engine's decision.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::integrity::chain::{self, hex, ChainHead, Digest32};
use crate::integrity::key::{verify_signature, PublicKey, Signature, Signer};
use crate::io::{AppendFile, FileSystem};
use crate::segment::format::{i64_at, u32_at, u64_at};
use crate::types::Timestamp;

pub const CHECKPOINT_MAGIC: [u8; 8] = *b"AUDLCKPT";
pub const CHECKPOINT_VERSION: u16 = 1;
pub const CHECKPOINT_LEN: usize = 224;
/// Bytes covered by the signature.
pub const SIGNED_LEN: usize = 152;
pub const LOG_FILE: &str = "log";
pub const EXPORT_FILE: &str = "checkpoints.ndjson";
/// Checkpoints kept in memory for the tail stream.
const RECENT: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointReason {
    Seal = 1,
    Interval = 2,
    Shutdown = 3,
    Request = 4,
}

impl CheckpointReason {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Seal,
            2 => Self::Interval,
            3 => Self::Shutdown,
            4 => Self::Request,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seal => "seal",
            Self::Interval => "interval",
            Self::Shutdown => "shutdown",
            Self::Request => "request",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub reason: CheckpointReason,
    pub store_id: [u8; 16],
    pub sequence: u64,
    pub position: u64,
    pub chain_head: Digest32,
    pub time: Timestamp,
    pub previous: Digest32,
    pub public_key: PublicKey,
    pub signature: Signature,
}

impl Checkpoint {
    /// Builds and signs the next checkpoint after `previous`.
    pub fn sign(
        signer: &Signer,
        store_id: [u8; 16],
        previous: Option<&Checkpoint>,
        head: ChainHead,
        reason: CheckpointReason,
        time: Timestamp,
    ) -> Checkpoint {
        let mut c = Checkpoint {
            reason,
            store_id,
            sequence: previous.map_or(0, |p| p.sequence + 1),
            position: head.position,
            chain_head: head.value,
            time,
            previous: previous.map_or([0; 32], Checkpoint::hash),
            public_key: signer.public_key(),
            signature: [0; 64],
        };
        c.signature = signer.sign(&c.signed_bytes());
        c
    }

    /// The bytes the signature covers (record bytes 0..152).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SIGNED_LEN);
        b.extend_from_slice(&CHECKPOINT_MAGIC);
        b.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.reason as u16).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&self.store_id);
        b.extend_from_slice(&self.sequence.to_le_bytes());
        b.extend_from_slice(&self.position.to_le_bytes());
        b.extend_from_slice(&self.chain_head);
        b.extend_from_slice(&self.time.0.to_le_bytes());
        b.extend_from_slice(&self.previous);
        b.extend_from_slice(&self.public_key);
        b
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.signed_bytes();
        b.extend_from_slice(&self.signature);
        b.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes one record, checking its layout and CRC (not its signature).
    pub fn decode(b: &[u8]) -> std::result::Result<Checkpoint, &'static str> {
        let b = b
            .get(..CHECKPOINT_LEN)
            .ok_or("checkpoint record cut short")?;
        if b.get(..8) != Some(&CHECKPOINT_MAGIC[..]) {
            return Err("not a checkpoint record");
        }
        let version = CHECKPOINT_VERSION.to_le_bytes();
        if b.get(8..10) != Some(&version[..]) || b.get(216..218) != Some(&version[..]) {
            return Err("unsupported checkpoint version");
        }
        if u32_at(b, 220) != Some(crc32fast::hash(b.get(..220).unwrap_or_default())) {
            return Err("checkpoint record checksum mismatch");
        }
        let arr = |r: std::ops::Range<usize>| b.get(r).ok_or("checkpoint record");
        Ok(Checkpoint {
            reason: CheckpointReason::from_u16(u16::from_le_bytes(
                arr(10..12)?.try_into().map_err(|_| "reason")?,
            ))
            .ok_or("unknown checkpoint reason")?,
            store_id: arr(16..32)?.try_into().map_err(|_| "store id")?,
            sequence: u64_at(b, 32).ok_or("sequence")?,
            position: u64_at(b, 40).ok_or("position")?,
            chain_head: arr(48..80)?.try_into().map_err(|_| "chain")?,
            time: Timestamp(i64_at(b, 80).ok_or("time")?),
            previous: arr(88..120)?.try_into().map_err(|_| "previous")?,
            public_key: arr(120..152)?.try_into().map_err(|_| "key")?,
            signature: arr(152..216)?.try_into().map_err(|_| "signature")?,
        })
    }

    /// SHA-256 of the whole record: what the next checkpoint links to.
    pub fn hash(&self) -> Digest32 {
        chain::sha256(&self.encode())
    }

    /// True when the signature is `public`'s over this record.
    pub fn verify(&self, public: &PublicKey) -> bool {
        &self.public_key == public
            && verify_signature(public, &self.signed_bytes(), &self.signature)
    }

    /// The JSON form served over HTTP and written to the shipped file.
    /// `record` is the exact signed record; the other fields repeat it for
    /// people.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sequence": self.sequence,
            "position": self.position,
            "chain_head": hex(&self.chain_head),
            "time": self.time.to_rfc3339(),
            "reason": self.reason.as_str(),
            "store_id": hex(&self.store_id),
            "previous": hex(&self.previous),
            "public_key": hex(&self.public_key),
            "signature": hex(&self.signature),
            "record": hex(&self.encode()),
        })
    }

    /// Reads the JSON form back from its `record` (the only field trusted).
    pub fn from_json(v: &serde_json::Value) -> std::result::Result<Checkpoint, &'static str> {
        let record = v
            .get("record")
            .and_then(|r| r.as_str())
            .ok_or("checkpoint JSON has no \"record\"")?;
        let bytes = chain::from_hex(record).ok_or("checkpoint \"record\" is not hex")?;
        if bytes.len() != CHECKPOINT_LEN {
            return Err("checkpoint \"record\" has the wrong length");
        }
        Checkpoint::decode(&bytes)
    }
}

/// Parses checkpoints from a file: binary records back to back (a copy of
/// `checkpoints/log`), or JSON (one object, an array, `{"checkpoints":[..]}`
/// as served, or JSON lines as shipped).
pub fn parse_checkpoints(bytes: &[u8]) -> std::result::Result<Vec<Checkpoint>, String> {
    if bytes.starts_with(&CHECKPOINT_MAGIC) {
        return bytes
            .chunks(CHECKPOINT_LEN)
            .enumerate()
            .map(|(i, r)| {
                Checkpoint::decode(r)
                    .map_err(|e| format!("record {i} (byte {}): {e}", i * CHECKPOINT_LEN))
            })
            .collect();
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "neither checkpoint records nor JSON")?;
    let from_value = |v: &serde_json::Value| -> std::result::Result<Vec<Checkpoint>, String> {
        let list = match v {
            serde_json::Value::Array(a) => a.iter().collect::<Vec<_>>(),
            serde_json::Value::Object(o) => {
                match o.get("checkpoints").or_else(|| o.get("checkpoint")) {
                    Some(serde_json::Value::Array(a)) => a.iter().collect(),
                    Some(one) => vec![one],
                    None => vec![v],
                }
            }
            _ => return Err("JSON is not a checkpoint".into()),
        };
        list.into_iter()
            .map(|c| Checkpoint::from_json(c).map_err(String::from))
            .collect()
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => from_value(&v),
        Err(_) => {
            let mut out = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value =
                    serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
                out.extend(from_value(&v).map_err(|e| format!("line {}: {e}", n + 1))?);
            }
            Ok(out)
        }
    }
}

/// What was found in a checkpoint log.
#[derive(Debug, Default)]
pub struct LogContents {
    pub checkpoints: Vec<Checkpoint>,
    /// Records that failed their checks: (byte offset, why).
    pub damaged: Vec<(u64, String)>,
    /// Length of the whole records at the start of the file (a torn last
    /// record is not counted).
    pub whole_len: u64,
}

/// Reads every record of a checkpoint log (missing file: empty).
pub fn read_log(fs: &dyn FileSystem, path: &Path) -> Result<LogContents> {
    let bytes = match fs.read_all(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogContents::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bytes: &[u8] = (*bytes).as_ref();
    let mut out = LogContents::default();
    for (i, record) in bytes.chunks_exact(CHECKPOINT_LEN).enumerate() {
        let offset = (i * CHECKPOINT_LEN) as u64;
        match Checkpoint::decode(record) {
            Ok(c) => out.checkpoints.push(c),
            Err(why) => out.damaged.push((offset, why.to_string())),
        }
        out.whole_len = offset + CHECKPOINT_LEN as u64;
    }
    Ok(out)
}

/// The index of the first of the log's `n` fixed-size records whose
/// `key` (sequence or position, which only grow along the log) is at least
/// `value`: a binary search. Probing a damaged record gives 0, so that the
/// caller scans from the start rather than trust a search that damage may
/// have sent past what it looks for.
fn first_at_least(bytes: &[u8], n: usize, key: fn(&Checkpoint) -> u64, value: u64) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let record = bytes.get(mid * CHECKPOINT_LEN..).unwrap_or_default();
        let Ok(c) = Checkpoint::decode(record) else {
            return 0;
        };
        if key(&c) < value {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The earliest checkpoint in the log at `path` whose position is at least
/// `position`.
pub fn first_covering(
    fs: &dyn FileSystem,
    path: &Path,
    position: u64,
) -> Result<Option<Checkpoint>> {
    let bytes = match fs.read_all(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bytes: &[u8] = (*bytes).as_ref();
    let n = bytes.len() / CHECKPOINT_LEN;
    let lo = first_at_least(bytes, n, |c| c.position, position);
    // A damaged record is skipped for the next whole one.
    Ok((lo..n).find_map(|i| {
        bytes
            .get(i * CHECKPOINT_LEN..)
            .and_then(|r| Checkpoint::decode(r).ok())
            .filter(|c| c.position >= position)
    }))
}

/// At most `limit` checkpoints of the log at `path` with a sequence above
/// `after`, oldest first, damaged records skipped: what [`read_log`] would
/// give filtered, but decoding only the page, so that a page costs the same
/// in a log of years (a checkpoint a minute is 118 MB a year).
pub fn read_log_page(
    fs: &dyn FileSystem,
    path: &Path,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<Checkpoint>> {
    let bytes = match fs.read_all(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bytes: &[u8] = (*bytes).as_ref();
    let n = bytes.len() / CHECKPOINT_LEN;
    let lo = after.map_or(0, |a| {
        first_at_least(bytes, n, |c| c.sequence, a.saturating_add(1))
    });
    Ok((lo..n)
        .filter_map(|i| {
            bytes
                .get(i * CHECKPOINT_LEN..)
                .and_then(|r| Checkpoint::decode(r).ok())
        })
        .filter(|c| after.is_none_or(|a| c.sequence > a))
        .take(limit)
        .collect())
}

/// The engine's checkpoint writer: the log in the data directory and the
/// shipped JSON-lines copy.
pub struct CheckpointLog {
    log_path: PathBuf,
    export_path: PathBuf,
    file: Box<dyn AppendFile>,
    last: Option<Checkpoint>,
    recent: Vec<Checkpoint>,
}

impl CheckpointLog {
    /// Opens (creating) `dir/log`. A torn last record (a crash while
    /// appending: never shipped, since the copy is written after) is cut;
    /// damaged records elsewhere are left for `verify` to report.
    pub fn open(fs: &dyn FileSystem, dir: &Path, export_path: PathBuf) -> Result<CheckpointLog> {
        fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let log_path = dir.join(LOG_FILE);
        let contents = read_log(fs, &log_path)?;
        let mut file = match fs.open_append(&log_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let f = fs
                    .create_new(&log_path)
                    .map_err(|e| Error::io(&log_path, e))?;
                fs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                f
            }
            Err(e) => return Err(Error::io(&log_path, e)),
        };
        let mut whole_len = contents.whole_len;
        // A last record that fails its CRC is a torn append too.
        if contents
            .damaged
            .last()
            .is_some_and(|(at, _)| at + CHECKPOINT_LEN as u64 == whole_len)
        {
            whole_len -= CHECKPOINT_LEN as u64;
        }
        if file.len() != whole_len {
            tracing::warn!(file = %log_path.display(), bytes = file.len() - whole_len, "cut a torn checkpoint record");
            file.truncate(whole_len)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io(&log_path, e))?;
        }
        let mut checkpoints = contents.checkpoints;
        let last = checkpoints.last().cloned();
        let recent = checkpoints.split_off(checkpoints.len().saturating_sub(RECENT));
        Ok(CheckpointLog {
            log_path,
            export_path,
            file,
            last,
            recent,
        })
    }

    pub fn last(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn export_path(&self) -> &Path {
        &self.export_path
    }

    /// Recent checkpoints with a sequence above `after`, oldest first.
    pub fn recent_after(&self, after: Option<u64>) -> Vec<Checkpoint> {
        self.recent
            .iter()
            .filter(|c| after.is_none_or(|a| c.sequence > a))
            .cloned()
            .collect()
    }

    /// Signs a checkpoint at `head`, appends it durably to the log, then to
    /// the shipped copy. A failure to write the copy is logged, not
    /// returned: the signed record in the log is what counts.
    pub fn append(
        &mut self,
        fs: &dyn FileSystem,
        signer: &Signer,
        store_id: [u8; 16],
        head: ChainHead,
        reason: CheckpointReason,
        now: Timestamp,
    ) -> Result<Checkpoint> {
        let c = Checkpoint::sign(signer, store_id, self.last.as_ref(), head, reason, now);
        let len = self.file.len();
        let written = self
            .file
            .append(&c.encode())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.truncate(len);
            return Err(Error::io(&self.log_path, e));
        }
        if let Err(e) = self.append_export(fs, &c) {
            tracing::error!(file = %self.export_path.display(), error = %e, "could not append to the shipped checkpoint file");
        }
        self.last = Some(c.clone());
        self.recent.push(c.clone());
        if self.recent.len() > RECENT {
            self.recent.remove(0);
        }
        Ok(c)
    }

    fn append_export(&self, fs: &dyn FileSystem, c: &Checkpoint) -> std::io::Result<()> {
        let mut line = c.to_json().to_string().into_bytes();
        line.push(b'\n');
        let mut f = match fs.open_append(&self.export_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = self.export_path.parent() {
                    fs.create_dir_all(dir)?;
                }
                fs.create_new(&self.export_path)?
            }
            Err(e) => return Err(e),
        };
        f.append(&line)?;
        f.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SimFs;

    #[test]
    fn records_round_trip_link_and_verify() {
        let fs = SimFs::new();
        let signer = Signer::load_or_create(&fs, Path::new("/k")).unwrap();
        let mut log =
            CheckpointLog::open(&fs, Path::new("/d/checkpoints"), "/d/ship.ndjson".into()).unwrap();
        let mut head = ChainHead::genesis(&[1; 16]);
        head.push_json(b"{}");
        let a = log
            .append(
                &fs,
                &signer,
                [1; 16],
                head,
                CheckpointReason::Seal,
                Timestamp(5),
            )
            .unwrap();
        head.push_json(b"{1}");
        let b = log
            .append(
                &fs,
                &signer,
                [1; 16],
                head,
                CheckpointReason::Interval,
                Timestamp(6),
            )
            .unwrap();
        assert_eq!(b.sequence, 1);
        assert_eq!(b.previous, a.hash());
        assert!(b.verify(&signer.public_key()));
        let mut forged = b.clone();
        forged.position += 1;
        assert!(!forged.verify(&signer.public_key()));
        let read = read_log(&fs, Path::new("/d/checkpoints/log")).unwrap();
        assert_eq!(read.checkpoints, vec![a.clone(), b.clone()]);
        let shipped = fs.file(Path::new("/d/ship.ndjson")).unwrap();
        assert_eq!(parse_checkpoints(&shipped).unwrap(), vec![a, b.clone()]);
        let served = serde_json::json!({"checkpoints": [b.to_json()]}).to_string();
        assert_eq!(parse_checkpoints(served.as_bytes()).unwrap(), vec![b]);
    }

    #[test]
    fn a_torn_last_record_is_cut_on_open() {
        let fs = SimFs::new();
        let signer = Signer::load_or_create(&fs, Path::new("/k")).unwrap();
        let dir = Path::new("/d/checkpoints");
        let mut log = CheckpointLog::open(&fs, dir, "/d/ship".into()).unwrap();
        let head = ChainHead::genesis(&[1; 16]);
        let a = log
            .append(
                &fs,
                &signer,
                [1; 16],
                head,
                CheckpointReason::Seal,
                Timestamp(5),
            )
            .unwrap();
        drop(log);
        let path = dir.join(LOG_FILE);
        let mut bytes = fs.file(&path).unwrap();
        bytes.extend_from_slice(&a.encode()[..100]);
        fs.put_file(&path, bytes);
        let log = CheckpointLog::open(&fs, dir, "/d/ship".into()).unwrap();
        assert_eq!(log.last(), Some(&a));
        assert_eq!(fs.file(&path).unwrap().len(), CHECKPOINT_LEN);
    }

    /// A log of `n` checkpoints, then `damaged` of its records with a
    /// byte flipped.
    fn damaged_log(n: usize, damaged: &[(usize, usize)]) -> (SimFs, PathBuf) {
        let fs = SimFs::new();
        let signer = Signer::load_or_create(&fs, Path::new("/k")).unwrap();
        let dir = Path::new("/d/checkpoints");
        let mut log = CheckpointLog::open(&fs, dir, "/d/ship".into()).unwrap();
        let mut head = ChainHead::genesis(&[1; 16]);
        for i in 0..n {
            head.push_json(format!("{{\"i\":{i}}}").as_bytes());
            log.append(
                &fs,
                &signer,
                [1; 16],
                head,
                CheckpointReason::Interval,
                Timestamp(i as i64),
            )
            .unwrap();
        }
        drop(log);
        let path = dir.join(LOG_FILE);
        let mut bytes = fs.file(&path).unwrap();
        for &(record, byte) in damaged {
            if let Some(b) =
                bytes.get_mut((record % n.max(1)) * CHECKPOINT_LEN + byte % CHECKPOINT_LEN)
            {
                *b ^= 0x40;
            }
        }
        fs.put_file(&path, bytes);
        (fs, path)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// A page is what the whole log, read and filtered, gives: with
        /// damaged records anywhere, also where the binary search probes.
        #[test]
        fn a_page_of_the_log_is_the_whole_log_filtered(
            n in 0usize..40,
            damaged in proptest::collection::vec((0usize..40, 0usize..CHECKPOINT_LEN), 0..4),
            after in proptest::option::of(0u64..45),
            limit in 1usize..50,
        ) {
            let (fs, path) = damaged_log(n, &damaged);
            let all = read_log(&fs, &path).unwrap().checkpoints;
            let expected: Vec<Checkpoint> = all
                .iter()
                .filter(|c| after.is_none_or(|a| c.sequence > a))
                .take(limit)
                .cloned()
                .collect();
            proptest::prop_assert_eq!(read_log_page(&fs, &path, after, limit).unwrap(), expected);
            for c in &all {
                let first = all.iter().find(|d| d.position >= c.position).cloned();
                proptest::prop_assert_eq!(first_covering(&fs, &path, c.position).unwrap(), first);
            }
        }
    }
}
