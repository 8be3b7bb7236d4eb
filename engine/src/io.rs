//! The one door to the disk. Every byte the engine reads or writes goes
//! through [`FileSystem`], so tests can swap in [`crate::testing::SimFs`] to
//! tear writes, lose un-synced data, fail syncs and fill the disk on purpose.
//!
//! This module owns no format knowledge; it must never interpret bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Read-only bytes of a whole file: a memory map for real files.
pub type FileBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A file opened for appending. Writes go to the end; nothing is durable
/// until [`AppendFile::sync_data`] returns `Ok`.
pub trait AppendFile: Send + Sync {
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// fdatasync: after `Ok`, every byte appended so far survives power loss.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file back to `len` bytes (used to drop a torn tail).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A read-only handle for positional reads. The head segment is read this
/// way (a memory map of a growing file is unsafe to touch past its end), on
/// its own handle so readers never wait for the writer's sync.
pub trait ReadAt: Send + Sync {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

pub trait FileSystem: Send + Sync + 'static {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Plain file names (not paths) in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a new file; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>>;
    /// The whole file, memory-mapped where the file system allows.
    fn read_all(&self, path: &Path) -> io::Result<FileBytes>;
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if absent) for as long as
    /// the returned guard lives. `WouldBlock` when another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let _ = path;
        Ok(Box::new(()))
    }
    /// Writes a small file atomically: temp file, fsync, rename, fsync dir.
    /// As [`FileSystem::write_atomic`], but the file is created readable
    /// and writable by its owner only (mode 0600) where that means
    /// something: for the signing key.
    fn write_atomic_private(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write_atomic(path, bytes)
    }
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        let _ = self.remove_file(&tmp);
        {
            let mut f = self.create_new(&tmp)?;
            f.append(bytes)?;
            f.sync_data()?;
        }
        self.rename(&tmp, path)?;
        match path.parent() {
            Some(dir) => self.sync_dir(dir),
            None => Ok(()),
        }
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdAppendFile {
    file: File,
    len: u64,
}

impl AppendFile for StdAppendFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.file.write_all(buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A partial write may have moved the OS file position; put it
                // back where our length says so the caller's truncate works.
                if let Ok(actual) = self.file.metadata().map(|m| m.len()) {
                    self.len = actual;
                }
                Err(e)
            }
        }
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        // O_APPEND keeps writing at the (new) end; nothing else to move.
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

struct StdReadAt(File);

impl ReadAt for StdReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.0.read_exact_at(buf, offset)
    }
}

struct Mapped(memmap2::Mmap);
impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FileSystem for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(StdAppendFile { file, len: 0 }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(StdAppendFile { file, len }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadAt>> {
        Ok(Box::new(StdReadAt(File::open(path)?)))
    }
    fn read_all(&self, path: &Path) -> io::Result<FileBytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Arc::new(Vec::<u8>::new()));
        }
        // SAFETY: sealed segments are never modified in place: retention
        // unlinks whole files (the mapping stays valid after unlink) and
        // nothing else writes to a sealed file. A process outside auditlog
        // truncating the file could still fault; that is outside the model.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Arc::new(Mapped(map)))
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn write_atomic_private(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => self.sync_dir(dir),
            _ => Ok(()),
        }
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn Send + Sync>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
