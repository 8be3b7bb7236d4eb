//! An in-memory [`FileSystem`] that remembers, per file, what was synced.
//! [`SimFs::crash`] models a power cut: each file keeps its synced bytes
//! plus a chosen prefix of the un-synced ones (a torn write). Faults can be
//! armed: failing writes or syncs, and a capacity that makes writes fail
//! with ENOSPC part way through.
//!
//! Directory operations (create, rename, remove) are durable at once; the
//! engine syncs directories after each of them anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::io::{AppendFile, FileBytes, FileSystem, ReadAt};

#[derive(Debug, Clone, Default)]
struct SimFile {
    data: Vec<u8>,
    durable: Vec<u8>,
}

/// A file's bytes, shared by its directory entry and every open handle:
/// like an inode, it outlives an unlink while handles hold it.
type Inode = Arc<Mutex<SimFile>>;

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, Inode>,
    dirs: BTreeSet<PathBuf>,
    capacity: Option<u64>,
    fail_writes: u32,
    fail_syncs: u32,
}

impl State {
    fn used(&self) -> u64 {
        self.files
            .values()
            .map(|f| f.lock().data.len() as u64)
            .sum()
    }
}

/// A fault to arm on a [`SimFs`].
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The next `n` appends fail with EIO (nothing written).
    FailWrites(u32),
    /// The next `n` syncs fail with EIO (data stays un-synced).
    FailSyncs(u32),
    /// Total bytes the disk holds; appends past it write what fits, then
    /// fail with ENOSPC. `None` lifts the limit.
    Capacity(Option<u64>),
}

#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    pub fn arm(&self, fault: Fault) {
        let mut s = self.state.lock();
        match fault {
            Fault::FailWrites(n) => s.fail_writes = n,
            Fault::FailSyncs(n) => s.fail_syncs = n,
            Fault::Capacity(c) => s.capacity = c,
        }
    }

    /// The disk after a power cut: for each file, its synced bytes plus the
    /// first `torn(path, unsynced_len)` of its un-synced bytes.
    pub fn crash(&self, mut torn: impl FnMut(&Path, usize) -> usize) -> SimFs {
        let s = self.state.lock();
        let mut files = BTreeMap::new();
        for (path, f) in &s.files {
            let f = f.lock();
            let mut data = f.durable.clone();
            if f.data.starts_with(&f.durable) {
                let extra = f.data.get(f.durable.len()..).unwrap_or_default();
                let keep = torn(path, extra.len()).min(extra.len());
                data.extend_from_slice(extra.get(..keep).unwrap_or_default());
            }
            files.insert(
                path.clone(),
                Arc::new(Mutex::new(SimFile {
                    durable: data.clone(),
                    data,
                })),
            );
        }
        SimFs {
            state: Arc::new(Mutex::new(State {
                files,
                dirs: s.dirs.clone(),
                ..State::default()
            })),
        }
    }

    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        self.state
            .lock()
            .files
            .get(path)
            .map(|f| f.lock().data.clone())
    }

    /// Replaces a file's bytes, durably (for damage and tampering tests).
    pub fn put_file(&self, path: &Path, bytes: Vec<u8>) {
        self.state.lock().files.insert(
            path.to_path_buf(),
            Arc::new(Mutex::new(SimFile {
                durable: bytes.clone(),
                data: bytes,
            })),
        );
    }

    pub fn files_in(&self, dir: &Path) -> Vec<PathBuf> {
        self.state
            .lock()
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect()
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

struct SimAppend {
    state: Arc<Mutex<State>>,
    file: Inode,
}

impl AppendFile for SimAppend {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.fail_writes > 0 {
            s.fail_writes -= 1;
            return Err(io::Error::other("injected write failure"));
        }
        let room = s.capacity.map(|c| c.saturating_sub(s.used()));
        drop(s);
        let mut f = self.file.lock();
        match room {
            Some(room) if (buf.len() as u64) > room => {
                f.data
                    .extend_from_slice(buf.get(..room as usize).unwrap_or_default());
                Err(io::Error::from_raw_os_error(28))
            }
            _ => {
                f.data.extend_from_slice(buf);
                Ok(())
            }
        }
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.fail_syncs > 0 {
            s.fail_syncs -= 1;
            return Err(io::Error::other("injected sync failure"));
        }
        drop(s);
        let mut f = self.file.lock();
        f.durable = f.data.clone();
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.lock().data.truncate(len as usize);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.file.lock().data.len() as u64
    }
}

struct SimRead {
    file: Inode,
}

impl ReadAt for SimRead {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let f = self.file.lock();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = f
            .data
            .get(start..start + buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        for a in path.ancestors() {
            s.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(s.files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut s = self.state.lock();
        if s.files.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let file = Inode::default();
        s.files.insert(path.to_path_buf(), file.clone());
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            file,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = self
            .state
            .lock()
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| not_found(path))?;
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            file,
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        let file = self
            .state
            .lock()
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| not_found(path))?;
        Ok(Box::new(SimRead { file }))
    }
    fn read_all(&self, path: &Path) -> io::Result<FileBytes> {
        let s = self.state.lock();
        let f = s.files.get(path).ok_or_else(|| not_found(path))?;
        let data = f.lock().data.clone();
        Ok(Arc::new(data))
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let s = self.state.lock();
        let f = s.files.get(path).ok_or_else(|| not_found(path))?;
        let len = f.lock().data.len() as u64;
        Ok(len)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        let f = s.files.remove(from).ok_or_else(|| not_found(from))?;
        s.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}
