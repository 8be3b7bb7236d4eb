//! Tombstones: what retention leaves where it removed a segment, so that
//! the chain still verifies across the gap and a removal that was not a
//! retention drop stands out. Written (atomically) before the segment file
//! is removed; `tombstones/<segment id, 16 hex digits>.tomb`.
//!
//! Record (240 bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `AUDLTOMB` |
//! | 8 | 2 | version (1) |
//! | 10 | 2 | reason: 1 = retention |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 16 | store id |
//! | 32 | 8 | segment id |
//! | 40 | 8 | chain position before the segment's first event |
//! | 48 | 4 | event count |
//! | 52 | 4 | reserved, 0 |
//! | 56 | 32 | chain value before the first event |
//! | 88 | 32 | chain value after the last event |
//! | 120 | 8 | retention cutoff (µs): the segment's newest event was older |
//! | 128 | 8 | time of the drop (µs) |
//! | 136 | 32 | Ed25519 public key of the signer (zero: unsigned) |
//! | 168 | 64 | Ed25519 signature of bytes 0..168 (zero: unsigned) |
//! | 232 | 2 | version again (footer) |
//! | 234 | 2 | reserved, 0 |
//! | 236 | 4 | crc32 of bytes 0..236 |
//!
//! A store running without a signing key writes unsigned tombstones; with
//! a public key, `verify` reports them as not signed.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::integrity::chain::{ChainHead, Digest32};
use crate::integrity::key::{verify_signature, PublicKey, Signature, Signer};
use crate::io::FileSystem;
use crate::segment::format::{i64_at, u32_at, u64_at};
use crate::types::{SegmentId, Timestamp};

pub const TOMBSTONE_MAGIC: [u8; 8] = *b"AUDLTOMB";
pub const TOMBSTONE_VERSION: u16 = 1;
pub const TOMBSTONE_LEN: usize = 240;
const SIGNED_LEN: usize = 168;
pub const REASON_RETENTION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub reason: u16,
    pub store_id: [u8; 16],
    pub segment_id: SegmentId,
    pub position: u64,
    pub event_count: u32,
    pub chain_prev: Digest32,
    pub chain_last: Digest32,
    pub cutoff: Timestamp,
    pub time: Timestamp,
    pub public_key: PublicKey,
    pub signature: Signature,
}

impl Tombstone {
    /// The chain right after the dropped segment.
    pub fn end(&self) -> ChainHead {
        ChainHead {
            position: self.position + u64::from(self.event_count),
            value: self.chain_last,
        }
    }

    /// Signs the tombstone (or leaves it unsigned without a key).
    pub fn sign(mut self, signer: Option<&Signer>) -> Tombstone {
        if let Some(s) = signer {
            self.public_key = s.public_key();
            self.signature = s.sign(&self.signed_bytes());
        }
        self
    }

    pub fn is_signed(&self) -> bool {
        self.public_key != [0; 32]
    }

    pub fn verify(&self, public: &PublicKey) -> bool {
        &self.public_key == public
            && verify_signature(public, &self.signed_bytes(), &self.signature)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(SIGNED_LEN);
        b.extend_from_slice(&TOMBSTONE_MAGIC);
        b.extend_from_slice(&TOMBSTONE_VERSION.to_le_bytes());
        b.extend_from_slice(&self.reason.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&self.store_id);
        b.extend_from_slice(&self.segment_id.0.to_le_bytes());
        b.extend_from_slice(&self.position.to_le_bytes());
        b.extend_from_slice(&self.event_count.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&self.chain_prev);
        b.extend_from_slice(&self.chain_last);
        b.extend_from_slice(&self.cutoff.0.to_le_bytes());
        b.extend_from_slice(&self.time.0.to_le_bytes());
        b.extend_from_slice(&self.public_key);
        b
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.signed_bytes();
        b.extend_from_slice(&self.signature);
        b.extend_from_slice(&TOMBSTONE_VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> std::result::Result<Tombstone, &'static str> {
        if b.len() != TOMBSTONE_LEN || b.get(..8) != Some(&TOMBSTONE_MAGIC[..]) {
            return Err("not a tombstone");
        }
        let version = TOMBSTONE_VERSION.to_le_bytes();
        if b.get(8..10) != Some(&version[..]) || b.get(232..234) != Some(&version[..]) {
            return Err("unsupported tombstone version");
        }
        if u32_at(b, 236) != Some(crc32fast::hash(b.get(..236).unwrap_or_default())) {
            return Err("tombstone checksum mismatch");
        }
        let arr = |r: std::ops::Range<usize>| b.get(r).ok_or("tombstone");
        Ok(Tombstone {
            reason: u16::from_le_bytes(arr(10..12)?.try_into().map_err(|_| "reason")?),
            store_id: arr(16..32)?.try_into().map_err(|_| "store id")?,
            segment_id: SegmentId(u64_at(b, 32).ok_or("segment")?),
            position: u64_at(b, 40).ok_or("position")?,
            event_count: u32_at(b, 48).ok_or("count")?,
            chain_prev: arr(56..88)?.try_into().map_err(|_| "chain")?,
            chain_last: arr(88..120)?.try_into().map_err(|_| "chain")?,
            cutoff: Timestamp(i64_at(b, 120).ok_or("cutoff")?),
            time: Timestamp(i64_at(b, 128).ok_or("time")?),
            public_key: arr(136..168)?.try_into().map_err(|_| "key")?,
            signature: arr(168..232)?.try_into().map_err(|_| "signature")?,
        })
    }
}

pub fn tombstone_dir(root: &Path) -> PathBuf {
    root.join("tombstones")
}

pub fn tombstone_path(root: &Path, id: SegmentId) -> PathBuf {
    tombstone_dir(root).join(format!("{:016x}.tomb", id.0))
}

/// Writes a tombstone durably (temporary file, sync, rename, sync).
pub fn write(fs: &dyn FileSystem, root: &Path, t: &Tombstone) -> Result<()> {
    let dir = tombstone_dir(root);
    fs.create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = tombstone_path(root, t.segment_id);
    fs.write_atomic(&path, &t.encode())
        .map_err(|e| Error::io(&path, e))
}

/// Files that are not what they should be, with why.
pub type BadFiles = Vec<(PathBuf, String)>;

/// Every tombstone file: the readable ones by segment id, and the files
/// that are not valid tombstones, with why.
pub fn read_all(fs: &dyn FileSystem, root: &Path) -> Result<(Vec<Tombstone>, BadFiles)> {
    let dir = tombstone_dir(root);
    let names = match fs.list_dir(&dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for name in names.iter().filter(|n| n.ends_with(".tomb")) {
        let path = dir.join(name);
        let bytes = fs.read_all(&path).map_err(|e| Error::io(&path, e))?;
        match Tombstone::decode((*bytes).as_ref()) {
            Ok(t) if format!("{:016x}.tomb", t.segment_id.0) == *name => good.push(t),
            Ok(_) => bad.push((path, "tombstone names another segment than its file".into())),
            Err(why) => bad.push((path, why.to_string())),
        }
    }
    good.sort_by_key(|t| t.segment_id);
    Ok((good, bad))
}
