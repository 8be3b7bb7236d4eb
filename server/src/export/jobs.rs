//! Background export jobs: requests queued, run one at a time, and their
//! files kept in `<data>/exports/` across restarts.
//!
//! Per job, in `exports/`:
//! - `<id>.job`: the job record (see [`encode_record`]: JSON, then a
//!   footer line with version and CRC-32), rewritten atomically (temporary
//!   file, fsync, rename, fsync of the directory) at each state change;
//! - `<id>.<csv|ndjson|json>`: the finished file, written as
//!   `<id>.<ext>.partial` and renamed into place (after an fsync) only once
//!   complete, so a file under its final name is always whole.
//!
//! Ids are ULIDs generated here; every path is built from a parsed id and a
//! known extension, never from client text. On open, a job found `queued`
//! stays queued and one found `running` (the process stopped mid-job) is
//! queued again from the start: an export is a pure function of its
//! filter, range and the store, so redoing it is safe, and the partial file
//! is discarded. A job interrupted [`MAX_ATTEMPTS`] times is marked failed
//! instead, so one that kills the process cannot loop forever.
//!
//! Finished jobs (and their files) older than the retention period are
//! deleted by the worker. This module owns those files and nothing else in
//! the data directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use auditlog_engine::integrity::manifest::ExportFacts;
use auditlog_engine::io::{FileSystem, StdFs};
use auditlog_engine::query::parse_filter;
use auditlog_engine::{Engine, TimeRange, Timestamp};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use super::format::ExportFormat;
use super::run::{run_export, ExportSpec};

/// Times a job may be started before it is given up.
pub const MAX_ATTEMPTS: u32 = 3;
/// Jobs queued or running at once, at most; more are refused (429).
pub const MAX_PENDING: usize = 64;
/// How long finished jobs and their files are kept by default
/// (`export_retention_days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 7;
/// Longest job name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

const RECORD_FOOTER: &str = "AUDLJOB1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Failed,
}

/// A job as stored and as served (`GET /v1/exports/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub format: ExportFormat,
    pub filter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub status: JobStatus,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub rows: u64,
    pub bytes: u64,
    pub error: Option<String>,
    pub requested_by: String,
    /// Times the job was started (more than one after a restart).
    pub attempts: u32,
}

/// What a client asks for; checked by the handler before [`Jobs::submit`].
#[derive(Debug, Clone)]
pub struct NewJob {
    pub name: String,
    pub format: ExportFormat,
    pub filter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{MAX_PENDING} exports are already queued or running; try again later")]
    Busy,
    #[error("could not store the export job: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Jobs {
    dir: PathBuf,
    engine: Engine,
    jobs: Mutex<BTreeMap<Ulid, Job>>,
    wake: tokio::sync::Notify,
    /// `None`: finished jobs are kept until deleted by hand.
    retention: Option<Duration>,
}

/// The record file: the job's JSON, a newline, then
/// `AUDLJOB1 <crc32 of the JSON, 8 lower-case hex digits>\n`.
pub fn encode_record(job: &Job) -> Vec<u8> {
    let mut out = serde_json::to_vec(job).unwrap_or_default();
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(format!("\n{RECORD_FOOTER} {crc:08x}\n").as_bytes());
    out
}

pub fn decode_record(bytes: &[u8]) -> Option<Job> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body = text.strip_suffix('\n')?;
    let (json, footer) = body.rsplit_once('\n')?;
    let crc = footer.strip_prefix(RECORD_FOOTER)?.strip_prefix(' ')?;
    // Lower-case hex only: one spelling per record.
    if crc.len() != 8
        || !crc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(json.as_bytes())
    {
        return None;
    }
    serde_json::from_str(json).ok()
}

fn now_text() -> String {
    Timestamp::now().to_rfc3339()
}

impl Jobs {
    /// Opens `<data>/exports`, loads the jobs and settles the ones a stop
    /// interrupted (see the module comment).
    pub fn open(
        engine: Engine,
        data: &Path,
        retention: Option<Duration>,
    ) -> std::io::Result<Arc<Jobs>> {
        let dir = data.join("exports");
        std::fs::create_dir_all(&dir)?;
        let mut jobs = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".partial") || name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".job") else {
                continue;
            };
            let Ok(id) = Ulid::from_string(stem) else {
                continue;
            };
            match std::fs::read(&path).ok().and_then(|b| decode_record(&b)) {
                Some(job) if job.id == id.to_string() => {
                    jobs.insert(id, job);
                }
                _ => tracing::warn!(file = %path.display(), "damaged export job record ignored"),
            }
        }
        let this = Arc::new(Jobs {
            dir,
            engine,
            jobs: Mutex::new(jobs),
            wake: tokio::sync::Notify::new(),
            retention,
        });
        let interrupted: Vec<Job> = this
            .lock()
            .values()
            .filter(|j| j.status == JobStatus::Running)
            .cloned()
            .collect();
        for mut job in interrupted {
            if job.attempts >= MAX_ATTEMPTS {
                job.status = JobStatus::Failed;
                job.finished_at = Some(now_text());
                job.error = Some(format!(
                    "interrupted by a stop of the server {} times; not retried",
                    job.attempts
                ));
                tracing::warn!(id = %job.id, "export job failed after repeated interruptions");
            } else {
                job.status = JobStatus::Queued;
                tracing::info!(id = %job.id, "export job interrupted by a stop: queued again");
            }
            this.save(&job)?;
        }
        this.remove_expired();
        Ok(this)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Ulid, Job>> {
        // A panic while holding the lock cannot leave a job half-updated
        // (updates are single inserts), so a poisoned lock is still usable.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Persists `job` (atomically) and then publishes it.
    fn save(&self, job: &Job) -> std::io::Result<()> {
        let id = Ulid::from_string(&job.id)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        StdFs.write_atomic(&self.record_path(id), &encode_record(job))?;
        self.lock().insert(id, job.clone());
        Ok(())
    }

    fn record_path(&self, id: Ulid) -> PathBuf {
        // Not `.json`: that is a JSON export's own file name.
        self.dir.join(format!("{id}.job"))
    }

    /// Where a finished job's file lives.
    pub fn file_path(&self, id: Ulid, format: ExportFormat) -> PathBuf {
        self.dir.join(format!("{id}.{}", format.extension()))
    }

    /// The signed manifest beside a finished job's file
    /// (docs/INTEGRITY.md §6).
    pub fn manifest_path(&self, id: Ulid, format: ExportFormat) -> PathBuf {
        self.dir
            .join(format!("{id}.{}.manifest.json", format.extension()))
    }

    pub fn submit(&self, new: NewJob, requested_by: &str) -> Result<Job, JobError> {
        let pending = self
            .lock()
            .values()
            .filter(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running))
            .count();
        if pending >= MAX_PENDING {
            return Err(JobError::Busy);
        }
        let id = Ulid::new();
        let job = Job {
            id: id.to_string(),
            name: new.name,
            format: new.format,
            filter: new.filter,
            from: new.from,
            to: new.to,
            status: JobStatus::Queued,
            created_at: now_text(),
            started_at: None,
            finished_at: None,
            rows: 0,
            bytes: 0,
            error: None,
            requested_by: requested_by.to_owned(),
            attempts: 0,
        };
        self.save(&job)?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Job> {
        self.lock().values().rev().cloned().collect()
    }

    pub fn get(&self, id: Ulid) -> Option<Job> {
        self.lock().get(&id).cloned()
    }

    /// Runs queued jobs one at a time until `stop` turns true. Between
    /// jobs it deletes expired ones, at least hourly.
    pub async fn worker(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let next = self
                .lock()
                .iter()
                .find(|(_, j)| j.status == JobStatus::Queued)
                .map(|(id, _)| *id);
            match next {
                Some(id) => {
                    let this = self.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || this.run(id)).await {
                        tracing::error!(error = %e, "export job task failed");
                    }
                }
                None => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        _ = stop.changed() => {}
                        () = tokio::time::sleep(Duration::from_secs(3600)) => {
                            let this = self.clone();
                            let _ = tokio::task::spawn_blocking(move || this.remove_expired()).await;
                        }
                    }
                }
            }
        }
    }

    /// Runs one job to its end and records the outcome.
    fn run(&self, id: Ulid) {
        let Some(mut job) = self.get(id) else { return };
        job.status = JobStatus::Running;
        job.attempts += 1;
        job.started_at = Some(now_text());
        if let Err(e) = self.save(&job) {
            tracing::error!(id = %job.id, error = %e, "could not record a job start");
            return;
        }
        let outcome = self.write_file(id, &job);
        job.finished_at = Some(now_text());
        match outcome {
            Ok((rows, bytes)) => {
                job.status = JobStatus::Completed;
                job.rows = rows;
                job.bytes = bytes;
                tracing::info!(id = %job.id, rows, bytes, "export job completed");
            }
            Err(e) => {
                job.status = JobStatus::Failed;
                job.error = Some(e.clone());
                tracing::warn!(id = %job.id, error = %e, "export job failed");
            }
        }
        if let Err(e) = self.save(&job) {
            tracing::error!(id = %job.id, error = %e, "could not record a job's end");
        }
    }

    fn write_file(&self, id: Ulid, job: &Job) -> Result<(u64, u64), String> {
        let filter = match job.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(parse_filter(f).map_err(|e| format!("bad filter: {e}"))?),
        };
        let time = |name: &str, v: &Option<String>| -> Result<Option<Timestamp>, String> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => Timestamp::parse_rfc3339(s)
                    .map(Some)
                    .ok_or_else(|| format!("`{name}` is not an RFC 3339 time")),
            }
        };
        let spec = ExportSpec {
            format: job.format,
            filter,
            range: TimeRange {
                from: time("from", &job.from)?,
                to: time("to", &job.to)?,
            },
        };
        let done = self.file_path(id, job.format);
        let partial = self
            .dir
            .join(format!("{id}.{}.partial", job.format.extension()));
        let result = (|| -> Result<(u64, u64), String> {
            let file = std::fs::File::create(&partial).map_err(|e| e.to_string())?;
            let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
            let mut io_error = None;
            let summary = run_export(&self.engine.snapshot(), &spec, |chunk| {
                match out.write_all(&chunk) {
                    Ok(()) => true,
                    Err(e) => {
                        io_error = Some(e);
                        false
                    }
                }
            })
            .map_err(|e| e.to_string())?;
            if let Some(e) = io_error {
                return Err(format!("writing the export file: {e}"));
            }
            let file = out.into_inner().map_err(|e| e.error().to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            // The manifest is durable before the export counts as done, so
            // a completed job always has one.
            let facts = ExportFacts {
                filter: job.filter.clone(),
                from: job.from.clone(),
                to: job.to.clone(),
                format: job.format.as_str().to_string(),
                count: summary.rows,
                bytes: summary.bytes,
                content_sha256: summary.content_sha256,
                complete: summary.complete,
                position: summary.position,
            };
            if let Some(signed) = self
                .engine
                .sign_export_manifest(&facts)
                .map_err(|e| format!("signing the manifest: {e}"))?
            {
                let text = signed.to_json().to_string();
                StdFs
                    .write_atomic(&self.manifest_path(id, job.format), text.as_bytes())
                    .map_err(|e| format!("writing the manifest: {e}"))?;
            }
            std::fs::rename(&partial, &done).map_err(|e| e.to_string())?;
            sync_dir(&self.dir).map_err(|e| e.to_string())?;
            Ok((summary.rows, summary.bytes))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    /// Deletes finished jobs older than the retention period: the file
    /// first, then the record (a record without its file is still deleted
    /// next time; a file without a record is never served).
    pub fn remove_expired(&self) {
        let Some(retention) = self.retention else {
            return;
        };
        let cutoff = Timestamp::now()
            .as_micros()
            .saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        let expired: Vec<(Ulid, Job)> = self
            .lock()
            .iter()
            .filter(|(_, j)| {
                matches!(j.status, JobStatus::Completed | JobStatus::Failed)
                    && j.finished_at
                        .as_deref()
                        .and_then(Timestamp::parse_rfc3339)
                        .is_some_and(|t| t.as_micros() < cutoff)
            })
            .map(|(id, j)| (*id, j.clone()))
            .collect();
        for (id, job) in expired {
            let file = self.file_path(id, job.format);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "could not delete an expired export");
                    continue;
                }
            }
            let _ = std::fs::remove_file(self.manifest_path(id, job.format));
            if std::fs::remove_file(self.record_path(id)).is_ok() {
                self.lock().remove(&id);
                tracing::info!(id = %id, "expired export deleted");
            }
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            id: Ulid::new().to_string(),
            name: "q1 \"audit\"".into(),
            format: ExportFormat::Csv,
            filter: Some("action_name = 'a'".into()),
            from: None,
            to: None,
            status: JobStatus::Queued,
            created_at: now_text(),
            started_at: None,
            finished_at: None,
            rows: 0,
            bytes: 0,
            error: None,
            requested_by: "local".into(),
            attempts: 0,
        }
    }

    #[test]
    fn record_round_trips_and_damage_is_detected() {
        let j = job();
        let bytes = encode_record(&j);
        assert_eq!(decode_record(&bytes), Some(j));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert_eq!(decode_record(&bad), None, "flip at {i} undetected");
        }
        assert_eq!(decode_record(&bytes[..bytes.len() - 3]), None);
    }

    #[test]
    fn interrupted_jobs_are_requeued_then_failed_and_partials_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path().join("store"), Default::default()).unwrap();
        let exports = dir.path().join("exports");
        std::fs::create_dir_all(&exports).unwrap();
        let mut running = job();
        running.status = JobStatus::Running;
        running.attempts = 1;
        let mut doomed = job();
        doomed.status = JobStatus::Running;
        doomed.attempts = MAX_ATTEMPTS;
        for j in [&running, &doomed] {
            std::fs::write(exports.join(format!("{}.job", j.id)), encode_record(j)).unwrap();
        }
        let partial = exports.join(format!("{}.csv.partial", running.id));
        std::fs::write(&partial, b"half").unwrap();
        std::fs::write(exports.join("../exports/nonsense.job"), b"{}").unwrap();
        let jobs = Jobs::open(engine, dir.path(), None).unwrap();
        let id = |j: &Job| Ulid::from_string(&j.id).unwrap();
        assert_eq!(jobs.get(id(&running)).unwrap().status, JobStatus::Queued);
        let failed = jobs.get(id(&doomed)).unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert!(failed.error.unwrap().contains("interrupted"));
        assert!(!partial.exists());
        assert_eq!(jobs.list().len(), 2);
        // What was settled is on disk, not only in memory.
        let stored = decode_record(&std::fs::read(jobs.record_path(id(&running))).unwrap());
        assert_eq!(stored.unwrap().status, JobStatus::Queued);
    }

    #[test]
    fn expired_jobs_and_their_files_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path().join("store"), Default::default()).unwrap();
        let jobs = Jobs::open(engine, dir.path(), Some(Duration::from_secs(3600))).unwrap();
        let mut old = job();
        old.status = JobStatus::Completed;
        old.finished_at =
            Some(Timestamp::from_micros(Timestamp::now().as_micros() - 7_200_000_000).to_rfc3339());
        let mut fresh = old.clone();
        fresh.id = Ulid::new().to_string();
        fresh.finished_at = Some(now_text());
        for j in [&old, &fresh] {
            jobs.save(j).unwrap();
            let id = Ulid::from_string(&j.id).unwrap();
            std::fs::write(jobs.file_path(id, j.format), b"x").unwrap();
        }
        jobs.remove_expired();
        let old_id = Ulid::from_string(&old.id).unwrap();
        let fresh_id = Ulid::from_string(&fresh.id).unwrap();
        assert!(jobs.get(old_id).is_none());
        assert!(!jobs.file_path(old_id, old.format).exists());
        assert!(!jobs.record_path(old_id).exists());
        assert!(jobs.get(fresh_id).is_some());
        assert!(jobs.file_path(fresh_id, fresh.format).exists());
    }

    #[test]
    fn without_a_retention_period_finished_jobs_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path().join("store"), Default::default()).unwrap();
        let jobs = Jobs::open(engine, dir.path(), None).unwrap();
        let mut old = job();
        old.status = JobStatus::Completed;
        old.finished_at = Some(
            Timestamp::from_micros(Timestamp::now().as_micros() - 400 * 86_400_000_000)
                .to_rfc3339(),
        );
        jobs.save(&old).unwrap();
        let id = Ulid::from_string(&old.id).unwrap();
        std::fs::write(jobs.file_path(id, old.format), b"x").unwrap();
        jobs.remove_expired();
        assert!(jobs.get(id).is_some());
        assert!(jobs.file_path(id, old.format).exists());
    }
}
