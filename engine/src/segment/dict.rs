//! Compression dictionaries. A zstd dictionary trained on this store's own
//! events lets small blocks (fast point reads) compress as well as large
//! ones: the JSON structure that repeats from event to event is in the
//! dictionary instead of in every block.
//!
//! A segment uses at most one dictionary, named by id in its header. Head
//! segments find it in `dicts/`; sealed segments carry a copy as a section,
//! so a sealed file can be read (and verified) on its own.
//!
//! File `dicts/<seq, 8 hex digits>.dict`:
//! `magic "AUDLDICT" | version u16 | reserved u16 | dict id u32 | dictionary
//! bytes | length u32 | crc32 of everything before | magic "AUDLDEND"`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use zstd::zstd_safe::{CDict, DDict};

use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::format::{u32_at, FORMAT_VERSION};

const MAGIC: [u8; 8] = *b"AUDLDICT";
const END_MAGIC: [u8; 8] = *b"AUDLDEND";
const HEAD_LEN: usize = 16;
const FOOT_LEN: usize = 16;

/// Largest dictionary trained (zstd's usual size; more gains little).
pub const MAX_DICT_BYTES: usize = 110 << 10;

/// Digested compression dictionaries, one per compression level.
type CDicts = Arc<Mutex<Vec<(i32, Arc<CDict<'static>>)>>>;

/// A dictionary and its id (the id zstd writes into every frame using
/// it), with zstd's digested forms: digesting a dictionary costs more than
/// compressing a block, so it is done once per dictionary, not per block.
#[derive(Clone)]
pub struct Dictionary {
    pub id: u32,
    pub bytes: Arc<[u8]>,
    ddict: Arc<DDict<'static>>,
    /// Compression form, per level (levels rarely change; usually one).
    cdicts: CDicts,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Dictionary {
    /// Wraps raw zstd dictionary bytes, reading their id.
    pub fn from_bytes(bytes: &[u8]) -> Option<Dictionary> {
        let id = zstd::zstd_safe::get_dict_id(bytes)?.get();
        let ddict = DDict::try_create(bytes)?;
        Some(Dictionary {
            id,
            bytes: Arc::from(bytes),
            ddict: Arc::new(ddict),
            cdicts: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn ddict(&self) -> &DDict<'static> {
        &self.ddict
    }

    /// The digested form for compressing at `level`.
    pub fn cdict(&self, level: i32) -> Option<Arc<CDict<'static>>> {
        let mut cdicts = self.cdicts.lock();
        if let Some((_, c)) = cdicts.iter().find(|(l, _)| *l == level) {
            return Some(c.clone());
        }
        let c = Arc::new(CDict::try_create(&self.bytes, level)?);
        cdicts.push((level, c.clone()));
        Some(c)
    }

    /// Trains a dictionary from sample events. `None` when the samples are
    /// too few or too alike for zstd to build one (the store then goes on
    /// without a dictionary).
    pub fn train<S: AsRef<[u8]>>(samples: &[S]) -> Option<Dictionary> {
        let total: usize = samples.iter().map(|s| s.as_ref().len()).sum();
        if samples.len() < 100 || total < 64 << 10 {
            return None;
        }
        let max = MAX_DICT_BYTES.min(total / 10);
        let bytes = zstd::dict::from_samples(samples, max).ok()?;
        Dictionary::from_bytes(&bytes)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN + self.bytes.len() + FOOT_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(&(self.bytes.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&END_MAGIC);
        out
    }

    fn decode(file: &[u8]) -> Option<Dictionary> {
        let n = file.len();
        if n < HEAD_LEN + FOOT_LEN || file.get(..8)? != MAGIC || file.get(n - 8..)? != END_MAGIC {
            return None;
        }
        let version = u16::from_le_bytes(file.get(8..10)?.try_into().ok()?);
        if version == 0 || version > FORMAT_VERSION {
            return None;
        }
        let len = u32_at(file, n - 16)? as usize;
        if HEAD_LEN.checked_add(len)? + FOOT_LEN != n
            || u32_at(file, n - 12)? != crc32fast::hash(file.get(..n - 12)?)
        {
            return None;
        }
        let d = Dictionary::from_bytes(file.get(HEAD_LEN..HEAD_LEN + len)?)?;
        (u32_at(file, 12)? == d.id).then_some(d)
    }
}

/// The store's dictionaries, oldest first, by sequence number.
pub struct DictStore {
    dir: PathBuf,
    dicts: Vec<(u32, Dictionary)>,
}

impl DictStore {
    /// Loads every dictionary; damaged files are reported, not loaded.
    pub fn open(fs: &dyn FileSystem, dir: &Path) -> Result<(DictStore, Vec<(PathBuf, String)>)> {
        fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut dicts = Vec::new();
        let mut damaged = Vec::new();
        for name in fs.list_dir(dir).map_err(|e| Error::io(dir, e))? {
            let Some(seq) = name
                .strip_suffix(".dict")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            let path = dir.join(&name);
            let bytes = fs.read_all(&path).map_err(|e| Error::io(&path, e))?;
            match Dictionary::decode((*bytes).as_ref()) {
                Some(d) => dicts.push((seq, d)),
                None => damaged.push((path, "dictionary file is damaged".to_string())),
            }
        }
        dicts.sort_by_key(|(seq, _)| *seq);
        Ok((
            DictStore {
                dir: dir.to_path_buf(),
                dicts,
            },
            damaged,
        ))
    }

    pub fn newest(&self) -> Option<&Dictionary> {
        self.dicts.last().map(|(_, d)| d)
    }

    pub fn by_id(&self, id: u32) -> Option<&Dictionary> {
        self.dicts.iter().find(|(_, d)| d.id == id).map(|(_, d)| d)
    }

    /// Adds a dictionary, durably, before any block may use it.
    pub fn add(&mut self, fs: &dyn FileSystem, dict: Dictionary) -> Result<()> {
        if self.by_id(dict.id).is_some() {
            return Ok(());
        }
        let seq = self.dicts.last().map_or(1, |(s, _)| s + 1);
        let path = self.dir.join(format!("{seq:08x}.dict"));
        fs.write_atomic(&path, &dict.encode())
            .map_err(|e| Error::io(&path, e))?;
        self.dicts.push((seq, dict));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        (0..2000)
            .map(|i| format!(r#"{{"action_name":"items.update","actor":{{"type":"user","id":"{}"}},"n":{i}}}"#, i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn file_round_trip_and_damage_is_caught() {
        let d = Dictionary::train(&samples()).unwrap();
        let bytes = d.encode();
        let back = Dictionary::decode(&bytes).unwrap();
        assert_eq!((back.id, &back.bytes[..]), (d.id, &d.bytes[..]));
        for at in [
            0,
            9,
            13,
            20,
            bytes.len() / 2,
            bytes.len() - 14,
            bytes.len() - 1,
        ] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(Dictionary::decode(&bad).is_none(), "flip at {at}");
        }
        assert!(Dictionary::decode(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn too_few_samples_train_nothing() {
        assert!(Dictionary::train(&samples()[..10]).is_none());
    }
}
