//! Sealing a full head on a thread of its own, so that appends go on into
//! a new head meanwhile: writing the sections and footer, reading the
//! result back as any reader would, and training a compression dictionary
//! from it when one is due.
//!
//! This module owns no engine state. It hands the outcome back through a
//! [`SealSlot`]; the engine publishes it (under its writer lock), and
//! decides when to seal and what to do when sealing fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::cache::Caches;
use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::dict::Dictionary;
use crate::segment::head::HeadWriter;
use crate::segment::sealed::{OpenFailure, SealedSegment};
use crate::types::{SegmentId, Timestamp};

/// What a seal needs besides the head itself.
#[derive(Clone)]
pub struct SealContext {
    pub fs: Arc<dyn FileSystem>,
    pub store_id: [u8; 16],
    pub caches: Arc<Caches>,
}

/// The result of sealing one head.
pub struct SealOutcome {
    pub id: SegmentId,
    /// The head's writer, kept so that a failed seal can be tried again.
    pub writer: HeadWriter,
    pub result: Result<SealedSegment>,
    /// A dictionary trained from the sealed segment, when one was asked for
    /// and the segment held enough to train one.
    pub dict: Option<Dictionary>,
    pub elapsed: Duration,
}

/// Where a sealing thread leaves its outcome, and how a caller that must
/// wait for it (an explicit seal, retention) does so.
#[derive(Default)]
pub struct SealSlot {
    outcome: Mutex<Option<SealOutcome>>,
    /// Set when the sealing thread is gone, with or without an outcome.
    gone: std::sync::atomic::AtomicBool,
    ready: Condvar,
}

/// Marks the slot's thread gone however it ends, a panic included, so
/// that nobody waits for an outcome that will never come.
struct GoneOnDrop(Arc<SealSlot>);

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        let _slot = self.0.outcome.lock();
        self.0
            .gone
            .store(true, std::sync::atomic::Ordering::Release);
        self.0.ready.notify_all();
    }
}

impl SealSlot {
    fn put(&self, outcome: SealOutcome) {
        *self.outcome.lock() = Some(outcome);
        self.ready.notify_all();
    }

    /// The outcome if the seal is done (and nobody took it yet).
    pub fn take(&self) -> Option<SealOutcome> {
        self.outcome.lock().take()
    }

    /// Waits for the outcome. `None` only if the sealing thread died
    /// without leaving one (it panicked).
    pub fn wait(&self) -> Option<SealOutcome> {
        let mut slot = self.outcome.lock();
        loop {
            if let Some(o) = slot.take() {
                return Some(o);
            }
            if self.gone.load(std::sync::atomic::Ordering::Acquire) {
                return None;
            }
            self.ready.wait(&mut slot);
        }
    }
}

/// Seals `head` and opens the result as any reader would before trusting
/// it; if that fails, the footer is cut off again so that the head can be
/// sealed again later, and stays readable as it was.
pub fn seal_and_open(ctx: &SealContext, head: &mut HeadWriter) -> Result<SealedSegment> {
    head.seal(Timestamp::now())?;
    let path = head.head.path.clone();
    match SealedSegment::open(
        ctx.fs.as_ref(),
        path.clone(),
        &ctx.store_id,
        ctx.caches.clone(),
    ) {
        Ok(s) => {
            // The new file's directory entry exists since the head was
            // created; syncing the directory only settles its metadata.
            let _ = ctx.fs.sync_dir(path.parent().unwrap_or(&path));
            Ok(s)
        }
        Err(failure) => {
            head.unseal()?;
            Err(match failure {
                OpenFailure::NotSealed => Error::corrupt(&path, 0, "sealed segment has no footer"),
                OpenFailure::Damaged(e) => e,
            })
        }
    }
}

/// Seals `writer` now, on the calling thread.
pub fn seal_here(ctx: &SealContext, mut writer: HeadWriter, train: bool) -> SealOutcome {
    let started = Instant::now();
    let id = writer.head.id;
    let result = seal_and_open(ctx, &mut writer);
    let dict = match (&result, train) {
        (Ok(seg), true) => train_dictionary(seg),
        _ => None,
    };
    SealOutcome {
        id,
        writer,
        result,
        dict,
        elapsed: started.elapsed(),
    }
}

/// Starts sealing `writer` on a new thread, which leaves the outcome in the
/// returned slot and then calls `done` (the engine's publisher). If no
/// thread can be started, the seal runs here and the slot is filled before
/// this returns.
pub fn spawn(
    ctx: SealContext,
    writer: HeadWriter,
    train: bool,
    done: impl FnOnce() + Send + 'static,
) -> (Arc<SealSlot>, Option<std::thread::JoinHandle<()>>) {
    let slot = Arc::new(SealSlot::default());
    // The writer travels through a channel, so that it is not lost with
    // the closure if the thread cannot be started.
    let (tx, rx) = std::sync::mpsc::channel::<HeadWriter>();
    let thread_slot = slot.clone();
    let thread_ctx = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("auditlog-seal".into())
        .spawn(move || {
            let _gone = GoneOnDrop(thread_slot.clone());
            if let Ok(writer) = rx.recv() {
                thread_slot.put(seal_here(&thread_ctx, writer, train));
                done();
            }
        });
    match spawned {
        Ok(handle) => match tx.send(writer) {
            Ok(()) => (slot, Some(handle)),
            Err(returned) => {
                slot.put(seal_here(&ctx, returned.0, train));
                (slot, None)
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not start a sealing thread; sealing inline");
            slot.put(seal_here(&ctx, writer, train));
            (slot, None)
        }
    }
}

/// Trains a dictionary on a sample of `seg`'s events (about 2 MiB, spread
/// over the segment). `None` if the segment holds too little to train on;
/// that only costs compression.
///
/// Training time grows with the sample; compression does not improve past
/// a few thousand events. On the generator's events, 8 MiB of samples took
/// 0.43 s to train and 2 MiB 0.10 s, and blocks compressed with the two
/// dictionaries came to 16.48% and 16.62% of their raw size
/// (docs/PERFORMANCE.md). The first training competes with ingest for the
/// cores, so the smaller sample is worth it.
pub fn train_dictionary(seg: &SealedSegment) -> Option<Dictionary> {
    const SAMPLE_BYTES: usize = 2 << 20;
    let started = Instant::now();
    let blocks = seg.blocks();
    let step = (seg.facts.raw_bytes as usize / SAMPLE_BYTES).max(1);
    let mut samples: Vec<Vec<u8>> = Vec::new();
    for meta in blocks.iter().step_by(step) {
        match seg.read_block(meta) {
            Ok(block) => samples.extend(
                meta.ordinals()
                    .filter_map(|o| block.json(o).map(<[u8]>::to_vec)),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "dictionary training skipped a block");
            }
        }
    }
    let dict = Dictionary::train(&samples);
    match &dict {
        Some(d) => tracing::info!(
            id = d.id,
            samples = samples.len(),
            ms = started.elapsed().as_millis() as u64,
            "trained compression dictionary"
        ),
        None => tracing::info!(
            samples = samples.len(),
            "too little data to train a dictionary yet"
        ),
    }
    dict
}
