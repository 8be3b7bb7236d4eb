//! The layout of a data directory and the files that are not segments:
//!
//! ```text
//! <dir>/STORE          identity of this store (id, format version, CRC)
//! <dir>/SEGMENT_FLOOR  lowest id a new segment may take, once retention has
//!                      dropped segments (ids are never reused)
//! <dir>/LOCK           held by the one process that has the store open
//! <dir>/segments/      <segment id, 16 hex digits>.seg
//! <dir>/quarantine/    damaged files set aside, never deleted by auditlog
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::format::{u32_at, FORMAT_VERSION, MIN_READ_VERSION};

const STORE_MAGIC: [u8; 8] = *b"AUDLSTOR";
const STORE_LEN: usize = 32;
const FLOOR_MAGIC: [u8; 8] = *b"AUDLSFLR";
const FLOOR_LEN: usize = 24;
const FLOOR_FILE: &str = "SEGMENT_FLOOR";

pub struct DataDir {
    pub root: PathBuf,
    pub segments: PathBuf,
    pub quarantine: PathBuf,
    pub store_id: [u8; 16],
}

impl DataDir {
    /// Opens the directory, creating it and its identity on first use.
    pub fn open(fs: &dyn FileSystem, root: &Path) -> Result<DataDir> {
        let segments = root.join("segments");
        let quarantine = root.join("quarantine");
        for d in [root, &segments, &quarantine] {
            fs.create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let store_path = root.join("STORE");
        let store_id = match fs.read_all(&store_path) {
            Ok(bytes) => {
                let (version, id) = decode_store((*bytes).as_ref())
                    .ok_or_else(|| Error::corrupt(&store_path, 0, "STORE file is damaged"))?;
                if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
                    // Refused as a whole before any segment is looked at:
                    // otherwise every old segment would be quarantined.
                    return Err(Error::UnsupportedVersion {
                        path: store_path,
                        found: version,
                        supported: FORMAT_VERSION,
                        hint: "version 1 stores have no hash chain; export their events with the \
                               auditlog release that wrote them and ingest them into a new store",
                    });
                }
                if version < FORMAT_VERSION {
                    // Raised before this build writes a file of the newer
                    // version: an older build then refuses the whole store
                    // at this file instead of quarantining every new
                    // segment it cannot read.
                    fs.write_atomic(&store_path, &encode_store(&id))
                        .map_err(|e| Error::io(&store_path, e))?;
                }
                id
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let has_segments = fs
                    .list_dir(&segments)
                    .map(|names| names.iter().any(|n| n.ends_with(".seg")))
                    .unwrap_or(false);
                if has_segments {
                    // Never mint a new identity over existing data: that
                    // would make every segment look foreign.
                    return Err(Error::corrupt(
                        &store_path,
                        0,
                        "STORE file is missing but segments exist",
                    ));
                }
                let id = random_id();
                fs.write_atomic(&store_path, &encode_store(&id))
                    .map_err(|e| Error::io(&store_path, e))?;
                id
            }
            Err(e) => return Err(Error::io(&store_path, e)),
        };
        Ok(DataDir {
            root: root.to_path_buf(),
            segments,
            quarantine,
            store_id,
        })
    }

    /// Moves a damaged file into `quarantine/`, never overwriting.
    pub fn quarantine(&self, fs: &dyn FileSystem, path: &Path) -> Result<PathBuf> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("unnamed");
        let taken = fs.list_dir(&self.quarantine).unwrap_or_default();
        let mut target = name.to_string();
        let mut n = 1;
        while taken.contains(&target) {
            target = format!("{name}.{n}");
            n += 1;
        }
        let to = self.quarantine.join(&target);
        fs.rename(path, &to).map_err(|e| Error::io(path, e))?;
        let _ = fs.sync_dir(&self.quarantine);
        let _ = fs.sync_dir(&self.segments);
        Ok(to)
    }
}

impl DataDir {
    /// The lowest id a new segment may take, as recorded when segments
    /// were last dropped (`None`: never). Readers of the arrival-order feed
    /// hold positions `(segment id, ordinal)`; reusing the id of a dropped
    /// segment after a restart would put new events behind their positions.
    pub fn segment_floor(&self, fs: &dyn FileSystem) -> Result<Option<u64>> {
        let path = self.root.join(FLOOR_FILE);
        match fs.read_all(&path) {
            Ok(bytes) => decode_floor((*bytes).as_ref())
                .map(Some)
                .ok_or_else(|| Error::corrupt(&path, 0, "SEGMENT_FLOOR file is damaged")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Records that no segment id below `next` may be used again. Written
    /// atomically before dropped segment files are removed.
    pub fn set_segment_floor(&self, fs: &dyn FileSystem, next: u64) -> Result<()> {
        let path = self.root.join(FLOOR_FILE);
        fs.write_atomic(&path, &encode_floor(next))
            .map_err(|e| Error::io(&path, e))
    }

    pub fn segment_floor_path(&self) -> PathBuf {
        self.root.join(FLOOR_FILE)
    }
}

fn encode_floor(next: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(FLOOR_LEN);
    b.extend_from_slice(&FLOOR_MAGIC);
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&next.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode_floor(b: &[u8]) -> Option<u64> {
    if b.len() != FLOOR_LEN || b.get(..8)? != FLOOR_MAGIC || b.get(8..10)? != [1, 0] {
        return None;
    }
    if u32_at(b, 20)? != crc32fast::hash(b.get(..20)?) {
        return None;
    }
    crate::segment::format::u64_at(b, 12)
}

fn random_id() -> [u8; 16] {
    let a = fastrand::u64(..).to_le_bytes();
    let b = fastrand::u64(..).to_le_bytes();
    let mut id = [0u8; 16];
    for (dst, src) in id.iter_mut().zip(a.iter().chain(b.iter())) {
        *dst = *src;
    }
    id
}

fn encode_store(id: &[u8; 16]) -> Vec<u8> {
    let mut b = Vec::with_capacity(STORE_LEN);
    b.extend_from_slice(&STORE_MAGIC);
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(id);
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Reads the store id of the data directory at `root` without creating or
/// changing anything (for offline verification of a copy).
pub fn read_store_id(fs: &dyn FileSystem, root: &Path) -> Result<[u8; 16]> {
    let path = root.join("STORE");
    let bytes = fs.read_all(&path).map_err(|e| Error::io(&path, e))?;
    let (version, id) = decode_store((*bytes).as_ref())
        .ok_or_else(|| Error::corrupt(&path, 0, "STORE file is damaged"))?;
    if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            path,
            found: version,
            supported: FORMAT_VERSION,
            hint: "this build verifies version 2 and 3 stores only",
        });
    }
    Ok(id)
}

/// The format version and store id, if the file is intact.
fn decode_store(b: &[u8]) -> Option<(u16, [u8; 16])> {
    if b.len() != STORE_LEN || b.get(..8)? != STORE_MAGIC {
        return None;
    }
    if u32_at(b, 28)? != crc32fast::hash(b.get(..28)?) {
        return None;
    }
    let version = u16::from_le_bytes(b.get(8..10)?.try_into().ok()?);
    Some((version, b.get(12..28)?.try_into().ok()?))
}
