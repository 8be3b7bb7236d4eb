//! The engine: the one entry point for storing and reading events.
//!
//! It owns the set of segments and the policies around them (group commit,
//! sync policy, when to seal, retention, quarantine). Bytes on disk are the
//! business of `segment`; query planning is the business of `query`. The
//! engine knows nothing of HTTP.
//!
//! Concurrency: appenders queue their (already validated and compressed)
//! batches; one of them becomes the leader, writes every queued batch and
//! syncs once for all of them (group commit), then publishes. At most one
//! appender per core validates and compresses at a time. A full head is
//! sealed on a thread of its own (`segment::sealer`) while appends go on
//! into the next one. Readers take a [`Snapshot`] (a few `Arc` clones) and
//! never wait for a sync.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::cache::Caches;
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::event::{prepare_event, EventLimits, IndexKeys, PreparedEvent, StoredEvent};
use crate::index::BatchKeys;
use crate::integrity::chain::{leaf_hash, ChainHead, Digest32, CHAIN_NONE, CHAIN_SHA256};
use crate::integrity::checkpoint::{Checkpoint, CheckpointReason};
use crate::integrity::key::PublicKey;
use crate::integrity::manifest::{ExportFacts, SignedManifest};
use crate::integrity::notary::{tombstone_for, write_tombstone, Notary};
use crate::integrity::proof::EventProof;
use crate::integrity::tombstone;
use crate::io::{FileSystem, StdFs};
use crate::segment::block::{encode_blocks, BlockCodec, EncodedBlock};
use crate::segment::dict::{DictStore, Dictionary};
use crate::segment::format::SegmentHeader;
use crate::segment::head::{new_header, BatchToWrite, HeadWriter};
use crate::segment::recover::recover_head;
use crate::segment::sealed::{OpenFailure, SealedSegment};
use crate::segment::sealer::{self, SealContext, SealOutcome, SealSlot};
use crate::segment::SegmentView;
use crate::types::{EventId, SegmentId, Timestamp};

/// When an append is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fdatasync before every acknowledgement (shared by concurrent
    /// appenders). Nothing acknowledged is lost on power failure. Default.
    EveryBatch,
    /// Acknowledge after the write reaches the OS; sync at most this long
    /// afterwards. A power failure loses up to this much acknowledged data;
    /// a process crash loses nothing.
    Interval(Duration),
    /// Never sync except when sealing. A power failure may lose every
    /// acknowledged event of the head segment; a process crash loses nothing.
    Never,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub sync: SyncPolicy,
    /// Length of a time partition. Default one day: see docs/FORMAT.md.
    pub window_micros: i64,
    /// Seal the head when it holds this many events...
    pub max_segment_events: u32,
    /// ...or this many bytes of event JSON.
    pub max_segment_raw_bytes: u64,
    /// Target uncompressed size of one block.
    pub block_bytes: usize,
    /// How blocks are compressed at ingest; `None` (the default) chooses
    /// from `compact_level`: see [`EngineConfig::ingest_codec`].
    pub ingest_codec: Option<BlockCodec>,
    pub limits: EventLimits,
    /// Largest batch one append may carry.
    pub max_batch_events: usize,
    /// Train zstd dictionaries on the store's own events (see
    /// docs/FORMAT.md). Without one, blocks are compressed alone.
    pub dictionary: bool,
    /// While the store has no dictionary and ingest compresses with one
    /// (zstd), the head is sealed at this many events so that one can be
    /// trained early. With LZ4 at ingest only compaction uses dictionaries,
    /// and it trains them itself.
    pub dict_bootstrap_events: u32,
    /// Train a fresh dictionary after this many seals, to follow the data.
    pub dict_retrain_segments: u32,
    /// Memory for decompressed blocks shared by all readers.
    pub block_cache_bytes: u64,
    /// Memory for decoded index bitmaps of sealed segments.
    pub bitmap_cache_bytes: u64,
    /// zstd level at which sealed segments are compressed again, in the
    /// background at low CPU priority (docs/FORMAT.md §4, "Compaction");
    /// 0 never does it. Ingest compresses with a fast codec, which must
    /// keep up with appends; compaction spends more CPU once per segment to
    /// make it smaller for the rest of its life.
    pub compact_level: i32,
    /// Keep the hash chain (docs/INTEGRITY.md). Always on in real use; the
    /// switch exists only to measure what chaining costs on ingest.
    pub hash_chain: bool,
    /// The Ed25519 signing key file, created on first open; keep it apart
    /// from the data directory. `None`: no checkpoints are written and
    /// retention tombstones are unsigned (tests, tools).
    pub signing_key: Option<PathBuf>,
    /// Where checkpoints are also appended as JSON lines, for shipping
    /// elsewhere. Default `<data>/checkpoints/checkpoints.ndjson`.
    pub checkpoint_export: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sync: SyncPolicy::EveryBatch,
            window_micros: 24 * 3600 * 1_000_000,
            max_segment_events: 1_000_000,
            max_segment_raw_bytes: 1 << 30,
            block_bytes: 16 << 10,
            ingest_codec: None,
            limits: EventLimits::default(),
            max_batch_events: 100_000,
            dictionary: true,
            dict_bootstrap_events: 20_000,
            dict_retrain_segments: 64,
            block_cache_bytes: 64 << 20,
            bitmap_cache_bytes: 16 << 20,
            hash_chain: true,
            compact_level: 15,
            signing_key: None,
            checkpoint_export: None,
        }
    }
}

impl EngineConfig {
    /// The codec ingest compresses blocks with: the one set, or else LZ4
    /// while compaction is on (it compresses every sealed segment again
    /// with zstd and the dictionary) and zstd level 3 when it is off, so
    /// that a store never compacted is not left at LZ4's size.
    pub fn ingest_codec(&self) -> BlockCodec {
        self.ingest_codec.unwrap_or(if self.compact_level > 0 {
            BlockCodec::Lz4
        } else {
            BlockCodec::Zstd { level: 3 }
        })
    }

    /// Whether ingest compresses with the store's dictionary. Only zstd
    /// does; with LZ4 the dictionary serves compaction alone, so it is
    /// trained by the compactor at idle priority instead of by the sealer,
    /// and a new store's first head is not sealed early for it.
    pub fn ingest_uses_dictionary(&self) -> bool {
        self.dictionary && matches!(self.ingest_codec(), BlockCodec::Zstd { .. })
    }
}

/// What happened to one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub id: EventId,
    /// True when an event with this id was already stored: nothing new was
    /// written, and `id` names the stored event.
    pub duplicate: bool,
}

/// What opening the store found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub sealed_segments: usize,
    pub head_events: u32,
    /// Bytes of torn tail cut from the head segment.
    pub head_cut_bytes: u64,
    /// Files set aside, with the reason.
    pub quarantined: Vec<(PathBuf, String)>,
    /// Integrity findings at open (e.g. the store is behind its own latest
    /// checkpoint); `auditlog verify` gives the full picture.
    pub integrity_warnings: Vec<String>,
}

/// What a retention drop removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropReport {
    pub segments: usize,
    pub events: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub segments: usize,
    pub events: u64,
    pub disk_bytes: u64,
    /// Bytes of event JSON stored (before compression).
    pub raw_bytes: u64,
    pub head_events: u32,
    /// Full heads handed to the sealing thread and not yet published.
    pub sealing_segments: usize,
    /// Sealed segments the compactor has not rewritten yet (0 with
    /// compaction off): a backlog that grows under sustained peak ingest.
    pub awaiting_compaction: usize,
}

/// A consistent view of the store at one instant.
#[derive(Clone)]
pub struct Snapshot {
    /// Sealed segments in id order, then the head (if any).
    pub segments: Vec<SegmentView>,
}

impl Snapshot {
    /// The position that ends this snapshot: (segment id, events visible in
    /// it). Everything at or before it is in the snapshot.
    pub fn watermark(&self) -> (SegmentId, u32) {
        self.segments
            .last()
            .map_or((SegmentId(0), 0), |s| (s.id(), s.event_count()))
    }

    /// This snapshot cut back to an earlier watermark.
    pub fn until(mut self, (seg, events): (SegmentId, u32)) -> Snapshot {
        self.segments.retain(|s| s.id() <= seg);
        if let Some(last) = self.segments.pop() {
            let last = if last.id() == seg {
                last.truncated(events)
            } else {
                last
            };
            self.segments.push(last);
        }
        self
    }

    /// Every event in storage order (segment by segment, in append order).
    /// A damaged block yields an error and the scan goes on after it.
    pub fn events(&self) -> impl Iterator<Item = Result<StoredEvent>> + '_ {
        self.segments.iter().flat_map(|seg| {
            let visible = seg.event_count();
            seg.blocks().into_iter().flat_map(move |meta| {
                let events: Vec<Result<StoredEvent>> = match seg.read_block(&meta) {
                    Ok(block) => meta
                        .ordinals()
                        .filter(|o| *o < visible)
                        .filter_map(|o| block.event(o))
                        .map(Ok)
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                events
            })
        })
    }

    /// Chain position at the end of this snapshot: events since genesis,
    /// dropped ones included.
    pub fn chain_position(&self) -> u64 {
        self.segments.last().map_or(0, |s| {
            s.header().chain_position + u64::from(s.event_count())
        })
    }

    /// The chain position of event `id` (events before it since genesis).
    pub fn position_of(&self, id: EventId) -> Result<Option<u64>> {
        for seg in self.segments.iter().rev() {
            if let Some(o) = seg.find_id(id)? {
                return Ok(Some(seg.header().chain_position + u64::from(o)));
            }
        }
        Ok(None)
    }

    pub fn event_count(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| u64::from(s.event_count()))
            .sum()
    }

    pub fn get(&self, id: EventId) -> Result<Option<StoredEvent>> {
        for seg in self.segments.iter().rev() {
            if let Some(ordinal) = seg.find_id(id)? {
                return seg.event(ordinal);
            }
        }
        Ok(None)
    }

    pub fn contains(&self, id: EventId) -> Result<bool> {
        for seg in self.segments.iter().rev() {
            if seg.find_id(id)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

struct State {
    sealed: Arc<Vec<Arc<SealedSegment>>>,
    /// Heads that a newer head replaced and that are being sealed (at most
    /// one, unless a sealing thread died); read as heads until published.
    sealing: Vec<Arc<crate::segment::head::HeadSegment>>,
    head: Option<Arc<crate::segment::head::HeadSegment>>,
}

struct Writer {
    head: Option<HeadWriter>,
    next_segment: u64,
    last_sync: Instant,
    dicts: DictStore,
    /// Seals since the newest dictionary was trained.
    seals_since_training: u32,
    /// Where the hash chain stands after the last sealed segment (the head,
    /// while there is one, carries it further in its own state).
    chain: ChainHead,
    /// The seal under way or left failed, if any.
    sealing: Option<Sealing>,
    /// Whether that seal also trains a dictionary.
    training: bool,
}

impl Writer {
    /// The store has no dictionary yet, or its newest is due for retraining.
    fn wants_dictionary(&self, cfg: &EngineConfig) -> bool {
        cfg.dictionary
            && (self.dicts.newest().is_none()
                || self.seals_since_training >= cfg.dict_retrain_segments)
    }
}

/// A head being sealed off the commit path (`segment::sealer`).
enum Sealing {
    /// On its own thread; its outcome lands in the slot.
    Running(Arc<SealSlot>),
    /// A seal that failed; tried again before the next one starts.
    Failed(HeadWriter),
}

struct Queue {
    pending: Vec<(u64, PreparedBatch)>,
    /// Per ticket: ids found stored only at commit time, or the failure.
    done: HashMap<u64, Result<Vec<EventId>>>,
    next_ticket: u64,
    leader: bool,
}

struct PreparedBatch {
    events: Vec<PreparedEvent>,
    blocks: Vec<EncodedBlock>,
    /// Leaf hash of each event, computed by the appender (empty without a
    /// chain); the leader only folds them into the chain.
    leaves: Vec<Digest32>,
    /// Index keys grouped by value, so the leader looks each up once.
    keys: BatchKeys,
    /// Dictionary the blocks were compressed with (0: none).
    dict_id: u32,
}

struct Inner {
    fs: Arc<dyn FileSystem>,
    cfg: EngineConfig,
    dir: DataDir,
    state: RwLock<State>,
    writer: Mutex<Writer>,
    caches: Arc<Caches>,
    /// The dictionary new heads use; appenders compress with it.
    current_dict: RwLock<Option<Dictionary>>,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    cpu_gate: CpuGate,
    /// The signing key and checkpoint log, when a key is configured.
    notary: Option<Notary>,
    compactor: Arc<Compactor>,
    /// Sealing threads, joined before the store is released.
    sealer_threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    /// Handed to sealing threads, so that they publish their work.
    this: Weak<Inner>,
    _lock: Box<dyn Send + Sync>,
}

/// Lets at most one appender per core validate and compress at a time.
/// More would only take turns on the same cores, and every extra runnable
/// appender takes a share of CPU time from the readers answering queries
/// meanwhile. Appenders waiting for a commit's sync hold no place.
struct CpuGate {
    busy: Mutex<usize>,
    free: Condvar,
    limit: usize,
    /// When the gate was last full (µs since `base`; 0: never), so that
    /// background work can tell when ingest wants every core.
    last_full: std::sync::atomic::AtomicU64,
    base: Instant,
}

struct GateGuard<'a>(&'a CpuGate);

impl CpuGate {
    fn new(limit: usize) -> CpuGate {
        CpuGate {
            busy: Mutex::new(0),
            free: Condvar::new(),
            limit: limit.max(1),
            last_full: std::sync::atomic::AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    fn enter(&self) -> GateGuard<'_> {
        let mut busy = self.busy.lock();
        while *busy >= self.limit {
            self.mark_full();
            self.free.wait(&mut busy);
        }
        *busy += 1;
        if *busy >= self.limit {
            self.mark_full();
        }
        GateGuard(self)
    }

    fn mark_full(&self) {
        let now = self.base.elapsed().as_micros().max(1) as u64;
        self.last_full
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// True when appenders filled every place within the last `window`:
    /// ingest is then using all the cores it may.
    fn full_within(&self, window: Duration) -> bool {
        let last = self.last_full.load(std::sync::atomic::Ordering::Relaxed);
        last != 0
            && self.base.elapsed().as_micros() as u64
                <= last.saturating_add(window.as_micros() as u64)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock();
        *busy = busy.saturating_sub(1);
        self.0.free.notify_one();
    }
}

/// Work list of the background compaction thread (`segment::compact`).
#[derive(Default)]
struct Compactor {
    work: Mutex<CompactorWork>,
    cv: Condvar,
    /// Set when the engine goes away: a compaction in progress stops.
    cancel: std::sync::atomic::AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct CompactorWork {
    queue: std::collections::VecDeque<SegmentId>,
    busy: bool,
}

impl Compactor {
    fn push(&self, id: SegmentId) {
        self.work.lock().queue.push_back(id);
        self.cv.notify_all();
    }

    /// Whether the compaction thread is alive.
    fn running(&self) -> bool {
        self.thread
            .lock()
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Cancels the compaction in progress (it stops within a block) and
    /// waits for the thread to end.
    fn stop(&self) {
        {
            // Under the lock: the thread checks `cancel` and then waits while
            // holding it, so the wake-up below cannot fall between the two.
            let _work = self.work.lock();
            self.cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.cv.notify_all();
        if let Some(t) = self.thread.lock().take() {
            // The compaction thread may itself drop the last reference.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// The storage engine. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Engine {
    // Declared first so that it is dropped first: it stops the compaction
    // thread, which may briefly hold the engine, before `inner` goes.
    _handle: Arc<Handle>,
    inner: Arc<Inner>,
}

/// Dropped with the last `Engine` clone: stops the compaction thread and
/// waits for it, so that the store is released (its lock file included)
/// by the time the last handle is gone.
struct Handle {
    compactor: Arc<Compactor>,
    sealer_threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.compactor.stop();
        // A seal under way finishes (and publishes) first: the next
        // process to open the store must find its footer whole.
        let threads = std::mem::take(&mut *self.sealer_threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Engine {
    /// Opens (or creates) the store in `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>, cfg: EngineConfig) -> Result<(Engine, OpenReport)> {
        Self::open_with(Arc::new(StdFs), dir.as_ref(), cfg)
    }

    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        cfg: EngineConfig,
    ) -> Result<(Engine, OpenReport)> {
        if cfg.window_micros <= 0 || cfg.block_bytes == 0 || cfg.max_segment_events == 0 {
            return Err(Error::Config(
                "window, block size and segment size must be positive".into(),
            ));
        }
        fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = fs.lock(&lock_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked(dir.to_path_buf())
            } else {
                Error::io(&lock_path, e)
            }
        })?;
        let data = DataDir::open(fs.as_ref(), dir)?;
        let mut report = OpenReport::default();
        let caches = Arc::new(Caches::new(cfg.block_cache_bytes, cfg.bitmap_cache_bytes));
        let (dicts, damaged_dicts) = DictStore::open(fs.as_ref(), &data.root.join("dicts"))?;
        for (path, why) in damaged_dicts {
            let to = data.quarantine(fs.as_ref(), &path)?;
            report.quarantined.push((to, why));
        }
        let names = fs
            .list_dir(&data.segments)
            .map_err(|e| Error::io(&data.segments, e))?;
        let mut ids: Vec<(SegmentId, String)> = Vec::new();
        let mut max_id = 0u64;
        for name in names {
            match SegmentId::from_file_name(&name) {
                Some(id) => {
                    max_id = max_id.max(id.0);
                    ids.push((id, name));
                }
                None if name.ends_with(".tmp") => {
                    let _ = fs.remove_file(&data.segments.join(&name));
                }
                None => {
                    let path = data.segments.join(&name);
                    let to = data.quarantine(fs.as_ref(), &path)?;
                    report
                        .quarantined
                        .push((to, "not a segment file name".into()));
                }
            }
        }
        for name in fs.list_dir(&data.quarantine).unwrap_or_default() {
            if let Some(id) = name
                .split('.')
                .next()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                max_id = max_id.max(id);
            }
        }
        // Ids of dropped segments are never handed out again (feed
        // positions rely on it); a damaged floor file is set aside, as any
        // damaged file.
        match data.segment_floor(fs.as_ref()) {
            Ok(Some(next)) => max_id = max_id.max(next.saturating_sub(1)),
            Ok(None) => {}
            Err(e) => {
                let to = data.quarantine(fs.as_ref(), &data.segment_floor_path())?;
                report.quarantined.push((to, e.to_string()));
            }
        }
        ids.sort();
        let mut sealed = Vec::new();
        let mut head = None;
        // The head is the newest file that is really one of this store's
        // segments: a stray copy or a foreign file with a larger id must
        // not make the real head look like an unsealed older segment.
        let own_header = |name: &str| {
            let path = data.segments.join(name);
            let bytes = fs.read_all(&path).ok()?;
            SegmentHeader::decode((*bytes).as_ref()).ok().filter(|h| {
                crate::segment::recover::check_identity(&path, h, &data.store_id).is_ok()
            })
        };
        let newest = ids
            .iter()
            .rev()
            .find_map(|(id, name)| own_header(name).map(|h| (*id, h)));
        let last = newest.as_ref().map(|(id, _)| *id);
        // The segment before the head may be one whose seal a crash cut
        // short (heads are sealed in the background, after the next head
        // has started): it is sealed again below if it holds every event
        // up to where the head's chain starts.
        let before_last = last.and_then(|l| ids.iter().rev().map(|(id, _)| *id).find(|id| *id < l));
        let head_starts = newest.as_ref().map(|(_, h)| ChainHead {
            position: h.chain_position,
            value: h.chain_prev,
        });
        for (id, name) in ids {
            let path = data.segments.join(&name);
            if fs.file_len(&path).map_err(|e| Error::io(&path, e))? == 0 {
                // Created but never written: holds nothing.
                let _ = fs.remove_file(&path);
                continue;
            }
            match SealedSegment::open(fs.as_ref(), path.clone(), &data.store_id, caches.clone()) {
                Ok(seg) => {
                    match crate::segment::recover::check_identity(
                        &path,
                        &seg.header,
                        &data.store_id,
                    ) {
                        Err(e) => {
                            let to = data.quarantine(fs.as_ref(), &path)?;
                            report.quarantined.push((to, e.to_string()));
                        }
                        Ok(()) => sealed.push(Arc::new(seg)),
                    }
                }
                Err(OpenFailure::NotSealed) if Some(id) == last => {
                    match recover_head(
                        fs.as_ref(),
                        path.clone(),
                        &data.store_id,
                        &data.quarantine,
                        &dicts,
                        caches.clone(),
                    ) {
                        Ok((writer, rec)) => {
                            report.head_events = rec.events;
                            report.head_cut_bytes = rec.cut_bytes;
                            match (&rec.saved, rec.damaged) {
                                (Some(saved), true) => {
                                    let why = format!(
                                        "head segment damaged at byte {}: the {} bytes from there on are set aside \
                                         (valid blocks follow the damage; after a power cut they may also be \
                                         unacknowledged writes that reached the disk out of order)",
                                        rec.cut_offset, rec.cut_bytes
                                    );
                                    tracing::error!(file = %path.display(), "{why}");
                                    report.quarantined.push((saved.clone(), why));
                                }
                                (Some(_), false) => {
                                    tracing::warn!(file = %path.display(), bytes = rec.cut_bytes, "cut the torn tail of the head segment (unacknowledged writes)");
                                }
                                (None, _) => {}
                            }
                            head = Some(writer);
                        }
                        Err(e) => {
                            let to = data.quarantine(fs.as_ref(), &path)?;
                            tracing::error!(file = %path.display(), error = %e, "head segment set aside");
                            report.quarantined.push((to, e.to_string()));
                        }
                    }
                }
                Err(OpenFailure::NotSealed)
                    if Some(id) == before_last
                        && head_starts.is_some_and(|starts| {
                            reseal_interrupted(fs.clone(), &path, &data, &dicts, &caches, starts)
                                .map(|seg| sealed.push(Arc::new(seg)))
                                .is_some()
                        }) => {}
                Err(OpenFailure::NotSealed) => {
                    // Where its footer should be: cut short, or never sealed.
                    let end = fs.file_len(&path).unwrap_or_default();
                    let why = Error::corrupt(
                        &path,
                        end,
                        "an older segment has no footer: cut short, or never sealed",
                    );
                    let to = data.quarantine(fs.as_ref(), &path)?;
                    report.quarantined.push((to, why.to_string()));
                }
                Err(OpenFailure::Damaged(e)) => {
                    tracing::error!(file = %path.display(), error = %e, "segment set aside");
                    let to = data.quarantine(fs.as_ref(), &path)?;
                    report.quarantined.push((to, e.to_string()));
                }
            }
        }
        report.sealed_segments = sealed.len();
        let (tombstones, bad_tombstones) = tombstone::read_all(fs.as_ref(), &data.root)?;
        for (path, why) in bad_tombstones {
            report
                .integrity_warnings
                .push(format!("{}: {why}", path.display()));
        }
        let mut chain = chain_after_open(&data, &sealed, &tombstones);
        let notary = match &cfg.signing_key {
            Some(key) => Some(Notary::open(
                fs.as_ref(),
                &data.root,
                data.store_id,
                key,
                cfg.checkpoint_export.as_deref(),
            )?),
            None => None,
        };
        let published = head.as_ref().map_or(chain, |h| h.head.state().chain);
        if let Some(last) = notary.as_ref().and_then(Notary::latest) {
            if last.position > published.position {
                let why = format!(
                    "the store holds {} events but its checkpoint {} (signed {}) covers {}: \
                     the newest events are missing (run `auditlog verify`)",
                    published.position,
                    last.sequence,
                    last.time.to_rfc3339(),
                    last.position
                );
                tracing::error!("{why}");
                report.integrity_warnings.push(why);
                // New segments continue after the checkpoint rather than
                // reuse the missing positions, so the gap stays visible and
                // a segment restored from a backup (out of quarantine)
                // still fits. (A head being continued cannot jump.)
                if head.is_none() {
                    chain = ChainHead {
                        position: last.position,
                        value: last.chain_head,
                    };
                }
            }
        }
        let state = State {
            sealed: Arc::new(sealed),
            sealing: Vec::new(),
            head: head.as_ref().map(|w: &HeadWriter| w.head.clone()),
        };
        // New heads use the newest dictionary; a head being continued keeps
        // its own, so appenders start with that one.
        let current = match &head {
            Some(h) => h.head.dict.clone(),
            None => dicts.newest().cloned(),
        };
        let inner = Arc::new_cyclic(|this| Inner {
            fs,
            cfg,
            dir: data,
            state: RwLock::new(state),
            writer: Mutex::new(Writer {
                head,
                next_segment: max_id + 1,
                last_sync: Instant::now(),
                dicts,
                seals_since_training: 0,
                chain,
                sealing: None,
                training: false,
            }),
            current_dict: RwLock::new(current),
            caches,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                done: HashMap::new(),
                next_ticket: 0,
                leader: false,
            }),
            queue_cv: Condvar::new(),
            cpu_gate: CpuGate::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            ),
            notary,
            compactor: Arc::new(Compactor::default()),
            sealer_threads: Arc::new(Mutex::new(Vec::new())),
            this: this.clone(),
            _lock: lock,
        });
        if inner.cfg.compact_level > 0 {
            for seg in inner.state.read().sealed.iter().filter(|s| !s.compacted) {
                inner.compactor.push(seg.id);
            }
            let handle = spawn_compactor(Arc::downgrade(&inner), inner.compactor.clone());
            *inner.compactor.thread.lock() = handle;
        }
        if let SyncPolicy::Interval(every) = inner.cfg.sync {
            spawn_flusher(Arc::downgrade(&inner), every);
        }
        let handle = Arc::new(Handle {
            compactor: inner.compactor.clone(),
            sealer_threads: inner.sealer_threads.clone(),
        });
        Ok((
            Engine {
                _handle: handle,
                inner,
            },
            report,
        ))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir.root
    }

    /// Validates one JSON event against this engine's limits; an event
    /// without `occurred_at` is given the time now.
    pub fn prepare(&self, json: &[u8]) -> Result<PreparedEvent> {
        self.prepare_received(json, Timestamp::now())
    }

    /// As [`Engine::prepare`], for an event received at `received` (one
    /// time for a whole batch: reading the clock per event was 0.4% of
    /// ingest CPU).
    pub fn prepare_received(&self, json: &[u8], received: Timestamp) -> Result<PreparedEvent> {
        Ok(prepare_event(json, received, &self.inner.cfg.limits)?)
    }

    /// Validates and appends JSON events as one all-or-nothing batch.
    pub fn append_json<B: AsRef<[u8]>>(&self, events: &[B]) -> Result<Vec<AppendOutcome>> {
        let gate = self.inner.cpu_gate.enter();
        let now = Timestamp::now();
        let prepared = events
            .iter()
            .enumerate()
            .map(|(index, e)| {
                prepare_event(e.as_ref(), now, &self.inner.cfg.limits)
                    .map_err(|source| Error::InvalidEventInBatch { index, source })
            })
            .collect::<Result<Vec<_>>>()?;
        self.append_gated(prepared, gate)
    }

    /// Appends a batch of prepared events. Returns when the batch is durable
    /// under the sync policy. The batch is all-or-nothing, also across a
    /// crash. Events whose id is already stored are not stored again.
    pub fn append(&self, events: Vec<PreparedEvent>) -> Result<Vec<AppendOutcome>> {
        let gate = self.inner.cpu_gate.enter();
        self.append_gated(events, gate)
    }

    /// [`Engine::append`] for a caller already through the CPU gate; the
    /// gate is left before waiting for the commit.
    fn append_gated(
        &self,
        events: Vec<PreparedEvent>,
        gate: GateGuard<'_>,
    ) -> Result<Vec<AppendOutcome>> {
        if events.len() > self.inner.cfg.max_batch_events {
            return Err(Error::BatchTooLarge {
                len: events.len(),
                max: self.inner.cfg.max_batch_events,
            });
        }
        // Duplicates inside the batch are settled here, before compressing.
        let mut outcomes = Vec::with_capacity(events.len());
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut unique = Vec::with_capacity(events.len());
        for e in events {
            let duplicate = e.id_from_client && !seen.insert(e.id);
            outcomes.push(AppendOutcome {
                id: e.id,
                duplicate,
            });
            if !duplicate {
                unique.push(e);
            }
        }
        // Duplicates of stored events: checked against the latest snapshot
        // here, then again under the commit lock for what landed in between.
        let snapshot = self.snapshot();
        let unique = self.drop_stored(unique, &snapshot, &mut outcomes)?;
        if unique.is_empty() {
            return Ok(outcomes);
        }
        let dict = self.inner.current_dict.read().clone();
        let batch = self.compress(unique, dict.as_ref())?;
        drop(gate);
        self.commit(batch, &mut outcomes)?;
        Ok(outcomes)
    }

    fn compress(
        &self,
        events: Vec<PreparedEvent>,
        dict: Option<&Dictionary>,
    ) -> Result<PreparedBatch> {
        let cfg = &self.inner.cfg;
        let blocks = encode_blocks(&events, cfg.block_bytes, cfg.ingest_codec(), dict)
            .map_err(|e| Error::io(&self.inner.dir.segments, e))?;
        let leaves = if cfg.hash_chain {
            events.iter().map(|e| leaf_hash(&e.json)).collect()
        } else {
            Vec::new()
        };
        let keys = {
            let keys: Vec<&IndexKeys> = events.iter().map(|e| &e.keys).collect();
            BatchKeys::group(&keys)
        };
        Ok(PreparedBatch {
            events,
            blocks,
            leaves,
            keys,
            dict_id: dict.map_or(0, |d| d.id),
        })
    }

    /// Removes events whose client-given id is stored in `snapshot`,
    /// marking them duplicates in `outcomes`.
    fn drop_stored(
        &self,
        events: Vec<PreparedEvent>,
        snapshot: &Snapshot,
        outcomes: &mut [AppendOutcome],
    ) -> Result<Vec<PreparedEvent>> {
        let mut kept = Vec::with_capacity(events.len());
        for e in events {
            if e.id_from_client && snapshot.contains(e.id)? {
                for o in outcomes.iter_mut().filter(|o| o.id == e.id) {
                    o.duplicate = true;
                }
            } else {
                kept.push(e);
            }
        }
        Ok(kept)
    }

    /// Queues the batch for the next group commit and waits for it.
    fn commit(&self, batch: PreparedBatch, outcomes: &mut [AppendOutcome]) -> Result<()> {
        let inner = &self.inner;
        let mut q = inner.queue.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push((ticket, batch));
        loop {
            if let Some(result) = q.done.remove(&ticket) {
                for id in result? {
                    for o in outcomes.iter_mut().filter(|o| o.id == id) {
                        o.duplicate = true;
                    }
                }
                return Ok(());
            }
            if !q.leader {
                q.leader = true;
                let group = std::mem::take(&mut q.pending);
                drop(q);
                let results = self.commit_group(group);
                q = inner.queue.lock();
                q.done.extend(results);
                q.leader = false;
                inner.queue_cv.notify_all();
                continue;
            }
            inner.queue_cv.wait(&mut q);
        }
    }

    /// Writes a group of batches with one sync, as the leader.
    fn commit_group(&self, group: Vec<(u64, PreparedBatch)>) -> Vec<(u64, Result<Vec<EventId>>)> {
        let inner = &self.inner;
        let mut w = inner.writer.lock();
        // Ids that raced in since each appender's check: only possible for
        // client ids, and settled here where commits are serialised.
        let mut group = group;
        let snapshot = self.snapshot();
        let mut in_group: HashSet<EventId> = HashSet::new();
        let mut late: Vec<Vec<EventId>> = Vec::with_capacity(group.len());
        for i in 0..group.len() {
            let Some((_, batch)) = group.get_mut(i) else {
                continue;
            };
            let mut dups = Vec::new();
            let mut kept = Vec::with_capacity(batch.events.len());
            let mut lookup_error = None;
            for e in std::mem::take(&mut batch.events) {
                let fresh = !e.id_from_client
                    || (in_group.insert(e.id)
                        && match snapshot.contains(e.id) {
                            Ok(found) => !found,
                            Err(err) => {
                                lookup_error = Some(err);
                                false
                            }
                        });
                if fresh {
                    kept.push(e);
                } else {
                    dups.push(e.id);
                }
            }
            if let Some(err) = lookup_error {
                return fail_all(&group, &err);
            }
            if dups.is_empty() {
                batch.events = kept;
            } else {
                // The blocks held the duplicates: compress the rest anew.
                let dict_id = batch.dict_id;
                let dict = w.dicts.by_id(dict_id).cloned();
                match self.compress(kept, dict.as_ref()) {
                    Ok(b) => *batch = b,
                    Err(e) => return fail_all(&group, &e),
                }
            }
            late.push(dups);
        }
        let result = self.write_group(&mut w, &mut group);
        match result {
            Ok(()) => group
                .iter()
                .zip(late)
                .map(|((t, _), dups)| (*t, Ok(dups)))
                .collect(),
            Err(e) => fail_all(&group, &e),
        }
    }

    fn write_group(&self, w: &mut Writer, group: &mut [(u64, PreparedBatch)]) -> Result<()> {
        let inner = &self.inner;
        let cfg = &inner.cfg;
        let events: u32 = group.iter().map(|(_, b)| b.events.len() as u32).sum();
        if events == 0 {
            return Ok(());
        }
        let newest = group
            .iter()
            .flat_map(|(_, b)| b.events.iter().map(|e| e.occurred_at))
            .max()
            .unwrap_or_default();
        let window = Timestamp(newest.0 - newest.0.rem_euclid(cfg.window_micros));
        if let Some(head) = &w.head {
            let (count, raw) = {
                let st = head.head.state();
                (st.event_count(), st.raw_bytes)
            };
            // When ingest compresses with the dictionary, a store's first
            // head is sealed early so that one can be trained from it. A
            // head started while that training runs is sealed as soon as
            // the dictionary exists.
            let no_dict = cfg.ingest_uses_dictionary() && head.head.dict.is_none();
            let bootstrapping = no_dict && w.dicts.newest().is_none() && !w.training;
            let dict_arrived = no_dict && w.dicts.newest().is_some();
            let cap = if bootstrapping {
                cfg.max_segment_events.min(cfg.dict_bootstrap_events.max(1))
            } else {
                cfg.max_segment_events
            };
            let full = count.saturating_add(events) > cap || raw >= cfg.max_segment_raw_bytes;
            let newer_window = window > head.head.header.window_start;
            if count > 0 && (full || newer_window || dict_arrived) {
                self.inner.start_seal(w)?;
            }
        }
        if w.head.is_none() {
            let dict = if cfg.dictionary {
                w.dicts.newest().cloned()
            } else {
                None
            };
            let header = new_header(
                inner.dir.store_id,
                SegmentId(w.next_segment),
                Timestamp::now(),
                window,
                dict.as_ref(),
                if cfg.hash_chain {
                    CHAIN_SHA256
                } else {
                    CHAIN_NONE
                },
                w.chain,
            );
            let writer = HeadWriter::create(
                inner.fs.as_ref(),
                &inner.dir.segments,
                header,
                dict.clone(),
                inner.caches.clone(),
            )?;
            w.next_segment += 1;
            // Room for every event the head will take: growing its columns
            // and id table later happens under its state lock, which
            // queries wait for (query p99 went from about 20 to 50 ms
            // when a first head reserved for a bootstrap seal that never
            // came: docs/PERFORMANCE.md, "Session 7").
            let expected = if cfg.ingest_uses_dictionary() && w.dicts.newest().is_none() {
                cfg.dict_bootstrap_events.min(cfg.max_segment_events)
            } else {
                cfg.max_segment_events
            };
            writer.head.reserve(expected as usize);
            inner.state.write().head = Some(writer.head.clone());
            *inner.current_dict.write() = dict;
            w.head = Some(writer);
        }
        // Batches compressed before a dictionary change are redone (rare:
        // only around the seal that switched dictionaries).
        let head_dict = w.head.as_ref().and_then(|h| h.head.dict.clone());
        let head_dict_id = head_dict.as_ref().map_or(0, |d| d.id);
        let head_chained = w
            .head
            .as_ref()
            .is_some_and(|h| h.head.header.chain_algo != CHAIN_NONE);
        for (_, batch) in group.iter_mut() {
            if batch.dict_id != head_dict_id {
                *batch = self.compress(std::mem::take(&mut batch.events), head_dict.as_ref())?;
            }
            // A head continued from before a change of the measurement
            // switch keeps its own chain algorithm.
            if head_chained && batch.leaves.len() != batch.events.len() {
                batch.leaves = batch.events.iter().map(|e| leaf_hash(&e.json)).collect();
            }
        }
        let sync = match cfg.sync {
            SyncPolicy::EveryBatch => true,
            SyncPolicy::Interval(d) => w.last_sync.elapsed() >= d,
            SyncPolicy::Never => false,
        };
        let head = w
            .head
            .as_mut()
            .ok_or_else(|| Error::Config("no head segment".into()))?;
        head.write_batches(
            group.iter().map(|(_, b)| BatchToWrite {
                events: &b.events,
                blocks: &b.blocks,
                leaves: &b.leaves,
                keys: &b.keys,
            }),
            sync,
        )?;
        if sync {
            w.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Seals the head (if it holds events) and waits until it is
    /// published as sealed, with any seal already under way.
    fn seal_head(&self, w: &mut Writer) -> Result<()> {
        self.inner.start_seal(w)?;
        self.inner.finish_seal(w, true)
    }

    /// Seals the head segment now (used by tests, shutdown and retention).
    pub fn seal(&self) -> Result<()> {
        let mut w = self.inner.writer.lock();
        self.seal_head(&mut w)
    }

    /// Makes every acknowledged event durable (for the non-default sync
    /// policies; a no-op under `EveryBatch`).
    pub fn sync(&self) -> Result<()> {
        let mut w = self.inner.writer.lock();
        if let Some(head) = w.head.as_mut() {
            head.sync_published()?;
        }
        w.last_sync = Instant::now();
        Ok(())
    }

    /// A consistent view of everything acknowledged so far.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.inner.state.read();
        let mut segments: Vec<SegmentView> = state
            .sealed
            .iter()
            .map(|s| SegmentView::Sealed {
                events: s.event_count(),
                seg: s.clone(),
            })
            .collect();
        for head in state.sealing.iter().chain(&state.head) {
            let st = head.state();
            if st.event_count() > 0 {
                segments.push(SegmentView::Head {
                    seg: head.clone(),
                    events: st.event_count(),
                    blocks: st.blocks.len(),
                    min_ts: st.min_ts,
                    max_ts: st.max_ts,
                });
            }
        }
        // Readers rely on ascending ids. A head being sealed comes after
        // every sealed segment, except one whose sealing thread died.
        if !state.sealing.is_empty() {
            segments.sort_by_key(SegmentView::id);
        }
        Snapshot { segments }
    }

    /// Looks an event up by id.
    pub fn get(&self, id: EventId) -> Result<Option<StoredEvent>> {
        self.snapshot().get(id)
    }

    /// Removes every segment whose newest event is older than `cutoff`.
    /// Whole files only; readers holding a snapshot finish safely.
    pub fn drop_before(&self, cutoff: Timestamp) -> Result<DropReport> {
        let inner = &self.inner;
        let mut w = inner.writer.lock();
        // A segment still being sealed is judged with the rest; if its
        // seal fails, retention goes on without it.
        if let Err(e) = inner.finish_seal(&mut w, true) {
            tracing::error!(error = %e, "retention: a segment could not be sealed; it is kept");
        }
        let head_expired = w.head.as_ref().is_some_and(|h| {
            let st = h.head.state();
            st.event_count() > 0 && st.max_ts < cutoff
        });
        if head_expired {
            self.seal_head(&mut w)?;
        }
        let expired: Vec<Arc<SealedSegment>> = inner
            .state
            .read()
            .sealed
            .iter()
            .filter(|s| s.facts.max_ts < cutoff)
            .cloned()
            .collect();
        // A tombstone for each segment is durable before anything is
        // removed, so the chain verifies across the gap.
        let signer = inner.notary.as_ref().map(Notary::signer);
        for seg in &expired {
            let t = tombstone_for(seg, inner.dir.store_id, cutoff, signer);
            write_tombstone(inner.fs.as_ref(), &inner.dir.root, &t)?;
        }
        {
            let mut state = inner.state.write();
            let keep: Vec<Arc<SealedSegment>> = state
                .sealed
                .iter()
                .filter(|s| s.facts.max_ts >= cutoff)
                .cloned()
                .collect();
            state.sealed = Arc::new(keep);
        }
        let mut report = DropReport::default();
        if !expired.is_empty() {
            inner
                .dir
                .set_segment_floor(inner.fs.as_ref(), w.next_segment)?;
        }
        for seg in &expired {
            inner
                .fs
                .remove_file(&seg.path)
                .map_err(|e| Error::io(&seg.path, e))?;
            report.segments += 1;
            report.events += u64::from(seg.event_count());
            report.bytes += seg.file_len;
            tracing::info!(segment = %seg.id, events = seg.event_count(), "retention dropped segment");
        }
        if report.segments > 0 {
            inner
                .fs
                .sync_dir(&inner.dir.segments)
                .map_err(|e| Error::io(&inner.dir.segments, e))?;
        }
        Ok(report)
    }

    pub fn stats(&self) -> EngineStats {
        let snap = self.snapshot();
        let mut s = EngineStats::default();
        for seg in &snap.segments {
            s.segments += 1;
            s.events += u64::from(seg.event_count());
            match seg {
                SegmentView::Sealed { seg, .. } => {
                    s.disk_bytes += seg.file_len;
                    s.raw_bytes += seg.facts.raw_bytes;
                    if !seg.compacted && self.inner.cfg.compact_level > 0 {
                        s.awaiting_compaction += 1;
                    }
                }
                SegmentView::Head { seg, events, .. } => {
                    let st = seg.state();
                    s.disk_bytes += st.end_offset;
                    s.raw_bytes += st.raw_bytes;
                    s.head_events = *events;
                }
            }
        }
        s.sealing_segments = self.inner.state.read().sealing.len();
        s
    }

    /// Checks every checksum of every live segment and returns the damage
    /// found. A damaged sealed segment is set aside: moved to
    /// `quarantine/` (never deleted) and no longer served, so that queries
    /// over the rest stop failing on it. (Readers holding an older snapshot
    /// keep their view; they still never get a damaged event.)
    pub fn verify(&self) -> Vec<Error> {
        let mut damage = Vec::new();
        for seg in self.snapshot().segments {
            match &seg {
                SegmentView::Sealed { seg, .. } => {
                    if let Err(e) = seg.verify_blocks() {
                        damage.push(e);
                        if let Err(moved) = self.set_aside(seg) {
                            damage.push(moved);
                        }
                    }
                }
                SegmentView::Head { seg: head, .. } => {
                    for meta in seg.blocks() {
                        if let Err(e) = head.decode(&meta) {
                            damage.push(e);
                            break;
                        }
                    }
                }
            }
        }
        damage
    }

    /// Removes a sealed segment from the live set and moves its file to
    /// `quarantine/`.
    fn set_aside(&self, seg: &Arc<SealedSegment>) -> Result<()> {
        let inner = &self.inner;
        let _writer = inner.writer.lock();
        {
            let mut state = inner.state.write();
            let kept: Vec<Arc<SealedSegment>> = state
                .sealed
                .iter()
                .filter(|s| s.id != seg.id)
                .cloned()
                .collect();
            state.sealed = Arc::new(kept);
        }
        let to = inner.dir.quarantine(inner.fs.as_ref(), &seg.path)?;
        tracing::error!(segment = %seg.id, to = %to.display(), "damaged segment set aside");
        Ok(())
    }

    /// Waits until a seal under way in the background is published, and
    /// tries a failed one again (for tests and tools that need the files
    /// settled; appends never wait for this).
    pub fn wait_sealed(&self) -> Result<()> {
        let mut w = self.inner.writer.lock();
        self.inner.finish_seal(&mut w, true)
    }

    /// Waits until every sealed segment queued for compaction is done (for
    /// benchmarks and tests; compaction otherwise runs on its own).
    /// Returns at once when no compaction thread runs (it could not be
    /// started, or it died): nothing would ever empty the queue.
    pub fn wait_compacted(&self) {
        let c = &self.inner.compactor;
        let mut work = c.work.lock();
        while (!work.queue.is_empty() || work.busy) && c.running() {
            // Timed, so that a thread that dies (a bug) is noticed too.
            c.cv.wait_for(&mut work, Duration::from_millis(100));
        }
    }

    /// Flushes and releases the store, with a last checkpoint when events
    /// arrived since the previous one. Dropping the engine flushes too,
    /// best effort, without the checkpoint.
    pub fn close(self) -> Result<()> {
        // A seal under way is published first, so that its checkpoint (at
        // the segment's end) comes before the shutdown one. If sealing
        // fails, the rest still happens and the next open seals it.
        let sealed = self.wait_sealed();
        self.sync()?;
        self.checkpoint(CheckpointReason::Shutdown)?;
        sealed
    }

    /// The public half of the signing key, when one is configured.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.inner.notary.as_ref().map(Notary::public_key)
    }

    /// Where the chain stands after the last published event.
    pub fn chain_head(&self) -> ChainHead {
        let w = self.inner.writer.lock();
        current_chain(&w)
    }

    /// Writes a signed checkpoint at the current chain head if events were
    /// appended since the latest one (and a key is configured). Everything
    /// it covers is synced first, so a checkpoint never names events a
    /// power cut could take back.
    ///
    /// The commit lock is held only to sync and read the chain; signing
    /// and the checkpoint log's own fsync happen after, so appends wait
    /// for at most the head's sync.
    pub fn checkpoint(&self, reason: CheckpointReason) -> Result<Option<Checkpoint>> {
        let Some(notary) = &self.inner.notary else {
            return Ok(None);
        };
        let head = {
            let mut w = self.inner.writer.lock();
            if let Some(h) = w.head.as_mut() {
                h.sync_published()?;
            }
            current_chain(&w)
        };
        notary.checkpoint(self.inner.fs.as_ref(), head, reason)
    }

    /// The latest checkpoint at or past `position` events, writing one now
    /// if none is (for proofs and export manifests).
    pub fn checkpoint_covering(&self, position: u64) -> Result<Option<Checkpoint>> {
        let Some(notary) = &self.inner.notary else {
            return Ok(None);
        };
        if let Some(c) = notary.latest().filter(|c| c.position >= position) {
            return Ok(Some(c));
        }
        self.checkpoint(CheckpointReason::Request)?;
        Ok(notary.latest().filter(|c| c.position >= position))
    }

    /// The newest checkpoint written by this store, if any.
    pub fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.inner.notary.as_ref().and_then(Notary::latest)
    }

    /// Recent checkpoints (the last 64 at most) with a sequence above
    /// `after`, oldest first: what a tail stream emits as they come.
    pub fn checkpoints_after(&self, after: Option<u64>) -> Vec<Checkpoint> {
        self.inner
            .notary
            .as_ref()
            .map(|n| n.recent_after(after))
            .unwrap_or_default()
    }

    /// At most `limit` checkpoints of the store's log with a sequence
    /// above `after`, oldest first (damaged records skipped).
    pub fn checkpoints_page(&self, after: Option<u64>, limit: usize) -> Result<Vec<Checkpoint>> {
        let path = crate::integrity::notary::checkpoint_dir(&self.inner.dir.root)
            .join(crate::integrity::checkpoint::LOG_FILE);
        crate::integrity::checkpoint::read_log_page(self.inner.fs.as_ref(), &path, after, limit)
    }

    /// A proof that event `id` is in the log as of a signed checkpoint
    /// (the earliest that covers it; one is written now if none does).
    /// `Ok(None)`: no such event, or no signing key configured.
    pub fn prove(&self, id: EventId) -> Result<Option<EventProof>> {
        let snapshot = self.snapshot();
        let Some(position) = snapshot.position_of(id)? else {
            return Ok(None);
        };
        let path = crate::integrity::notary::checkpoint_dir(&self.inner.dir.root)
            .join(crate::integrity::checkpoint::LOG_FILE);
        let earliest = crate::integrity::checkpoint::first_covering(
            self.inner.fs.as_ref(),
            &path,
            position + 1,
        )?;
        let checkpoint = match earliest {
            Some(c) => c,
            None => match self.checkpoint_covering(position + 1)? {
                Some(c) => c,
                None => return Ok(None),
            },
        };
        // A snapshot taken after the checkpoint holds every event it covers.
        EventProof::build(&self.snapshot(), id, checkpoint)
    }

    /// Signs the manifest of an export read from a snapshot at
    /// `facts.position`, against a checkpoint that covers it (written now
    /// if needed). `None` without a signing key.
    pub fn sign_export_manifest(&self, facts: &ExportFacts) -> Result<Option<SignedManifest>> {
        let Some(notary) = &self.inner.notary else {
            return Ok(None);
        };
        let Some(checkpoint) = self.checkpoint_covering(facts.position)? else {
            return Ok(None);
        };
        Ok(Some(SignedManifest::sign(
            notary.signer(),
            &self.inner.dir.store_id,
            facts,
            &checkpoint,
        )))
    }

    pub fn store_id(&self) -> [u8; 16] {
        self.inner.dir.store_id
    }
}

impl Inner {
    fn seal_context(&self) -> SealContext {
        SealContext {
            fs: self.fs.clone(),
            store_id: self.dir.store_id,
            caches: self.caches.clone(),
        }
    }

    /// Hands the head (if it holds events) to a sealing thread; the next
    /// commit starts a new head. One seal at a time: one already under way
    /// is waited for first, and one that failed is tried again first (its
    /// error, if it fails again, is this call's).
    fn start_seal(&self, w: &mut Writer) -> Result<()> {
        self.finish_seal(w, true)?;
        let Some(mut head) = w.head.take() else {
            return Ok(());
        };
        if head.event_count() == 0 {
            w.head = Some(head);
            return Ok(());
        }
        // Under the interval and no-sync policies, what the head holds is
        // made durable before a newer head exists: recovery counts on an
        // older unsealed segment being whole (`open`).
        if let Err(e) = head.sync_published() {
            w.head = Some(head);
            return Err(e);
        }
        w.chain = head.head.state().chain;
        {
            let mut state = self.state.write();
            state.sealing.push(head.head.clone());
            state.head = None;
        }
        w.seals_since_training += 1;
        let train = self.cfg.ingest_uses_dictionary() && w.wants_dictionary(&self.cfg);
        w.training = train;
        let this = self.this.clone();
        let (slot, thread) = sealer::spawn(self.seal_context(), head, train, move || {
            // Publishes at once, so that a store that goes quiet right
            // after a seal still gets its segment compacted and its
            // checkpoint written.
            if let Some(inner) = this.upgrade() {
                let mut w = inner.writer.lock();
                if let Err(e) = inner.finish_seal(&mut w, false) {
                    tracing::error!(error = %e, "sealing failed; it is tried again before the next seal");
                }
            }
        });
        w.sealing = Some(Sealing::Running(slot));
        match thread {
            Some(t) => {
                // Finished threads are forgotten; one still running (it may
                // be waiting for the writer lock held here) is joined only
                // when the engine is dropped, never under this lock.
                let mut threads = self.sealer_threads.lock();
                threads.retain(|t| !t.is_finished());
                threads.push(t);
            }
            // No thread could be started: the seal ran here and is done.
            None => {
                if let Err(e) = self.finish_seal(w, false) {
                    tracing::error!(error = %e, "sealing failed; it is tried again before the next seal");
                }
            }
        }
        Ok(())
    }

    /// Publishes a seal that is done; with `wait`, waits for one under way
    /// and tries a failed one again. Without `wait` it never blocks.
    fn finish_seal(&self, w: &mut Writer, wait: bool) -> Result<()> {
        let outcome = match w.sealing.take() {
            None => return Ok(()),
            Some(Sealing::Running(slot)) => {
                let done = if wait { slot.wait() } else { slot.take() };
                match done {
                    Some(o) => o,
                    None if wait => {
                        // The sealing thread died without an outcome: the
                        // head stays readable (in `sealing`) and is sealed
                        // by recovery at the next open.
                        w.training = false;
                        return Err(Error::Internal(
                            "the sealing thread stopped without finishing".into(),
                        ));
                    }
                    None => {
                        w.sealing = Some(Sealing::Running(slot));
                        return Ok(());
                    }
                }
            }
            Some(Sealing::Failed(writer)) => {
                if !wait {
                    w.sealing = Some(Sealing::Failed(writer));
                    return Ok(());
                }
                sealer::seal_here(&self.seal_context(), writer, false)
            }
        };
        w.training = false;
        let SealOutcome {
            id,
            writer,
            result,
            dict,
            elapsed,
        } = outcome;
        match result {
            Ok(sealed) => {
                drop(writer);
                self.publish_sealed(w, Arc::new(sealed), dict, elapsed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(segment = %id, error = %e, "could not seal segment");
                w.sealing = Some(Sealing::Failed(writer));
                Err(e)
            }
        }
    }

    /// Makes a sealed segment the one readers use in place of its head.
    fn publish_sealed(
        &self,
        w: &mut Writer,
        sealed: Arc<SealedSegment>,
        dict: Option<Dictionary>,
        elapsed: Duration,
    ) {
        {
            let mut state = self.state.write();
            let mut list = (*state.sealed).clone();
            let at = list.partition_point(|s| s.id < sealed.id);
            list.insert(at, sealed.clone());
            state.sealed = Arc::new(list);
            state.sealing.retain(|h| h.id != sealed.id);
        }
        // A checkpoint at the segment's end (newer heads may hold more by
        // now; what they hold is covered by later checkpoints). The seal is
        // durable and published; a failed checkpoint costs evidence, not
        // data, so it is logged rather than failing the seal.
        if let Some(notary) = &self.notary {
            let end = ChainHead {
                position: sealed.header.chain_position + u64::from(sealed.event_count()),
                value: sealed.facts.chain_last,
            };
            if let Err(e) = notary.checkpoint(self.fs.as_ref(), end, CheckpointReason::Seal) {
                tracing::error!(error = %e, "could not write the seal checkpoint");
            }
        }
        tracing::info!(segment = %sealed.id, events = sealed.event_count(), ms = elapsed.as_millis() as u64, "sealed segment");
        // The dictionary first: the compactor gives it to a segment that
        // has none, such as the one it was trained from.
        if let Some(dict) = dict {
            match w.dicts.add(self.fs.as_ref(), dict) {
                Ok(()) => w.seals_since_training = 0,
                Err(e) => tracing::warn!(error = %e, "could not store a new dictionary"),
            }
        }
        if self.cfg.compact_level > 0 {
            self.compactor.push(sealed.id);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.compactor.stop();
        if let Some(head) = self.writer.get_mut().head.as_mut() {
            let _ = head.sync_published();
        }
    }
}

/// Seals again a segment whose seal a crash interrupted, if it is whole:
/// recovered, it must end exactly where the next segment's chain starts
/// (a segment that lost events is left to be set aside as damaged).
fn reseal_interrupted(
    fs: Arc<dyn FileSystem>,
    path: &Path,
    data: &DataDir,
    dicts: &DictStore,
    caches: &Arc<Caches>,
    next_starts: ChainHead,
) -> Option<SealedSegment> {
    let (mut writer, rec) = recover_head(
        fs.as_ref(),
        path.to_path_buf(),
        &data.store_id,
        &data.quarantine,
        dicts,
        caches.clone(),
    )
    .ok()?;
    let ends = writer.head.state().chain;
    let whole = ends.position == next_starts.position
        && (writer.head.header.chain_algo == CHAIN_NONE || ends.value == next_starts.value);
    if !whole || rec.damaged {
        return None;
    }
    let ctx = SealContext {
        fs,
        store_id: data.store_id,
        caches: caches.clone(),
    };
    match sealer::seal_and_open(&ctx, &mut writer) {
        Ok(seg) => {
            tracing::warn!(file = %path.display(), events = rec.events, "sealed a segment whose seal was interrupted");
            Some(seg)
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "could not seal a segment whose seal was interrupted");
            None
        }
    }
}

/// Where new segments continue the chain after opening: after the newest
/// sealed segment (or dropped one, when retention dropped them all), else
/// at genesis. (A head being continued carries its own chain state.)
fn chain_after_open(
    data: &DataDir,
    sealed: &[Arc<SealedSegment>],
    tombstones: &[tombstone::Tombstone],
) -> ChainHead {
    sealed
        .iter()
        .map(|s| ChainHead {
            position: s.header.chain_position + u64::from(s.event_count()),
            value: s.facts.chain_last,
        })
        .chain(tombstones.iter().map(tombstone::Tombstone::end))
        .max_by_key(|c| c.position)
        .unwrap_or_else(|| ChainHead::genesis(&data.store_id))
}

/// The chain after the last published event.
fn current_chain(w: &Writer) -> ChainHead {
    match &w.head {
        Some(h) => h.head.state().chain,
        None => w.chain,
    }
}

fn fail_all(group: &[(u64, PreparedBatch)], e: &Error) -> Vec<(u64, Result<Vec<EventId>>)> {
    group
        .iter()
        .map(|(t, _)| (*t, Err(e.duplicate())))
        .collect()
}

fn spawn_flusher(inner: Weak<Inner>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("auditlog-flush".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(inner) = inner.upgrade() else { return };
            let mut w = inner.writer.lock();
            if let Some(head) = w.head.as_mut() {
                if let Err(e) = head.sync_published() {
                    tracing::error!(error = %e, "interval sync failed");
                }
            }
            w.last_sync = Instant::now();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the sync thread; syncing on append only");
    }
}

/// The compaction thread: holds only a weak reference to the engine while
/// it works, so dropping the engine is never delayed by more than a block.
fn spawn_compactor(inner: Weak<Inner>, c: Arc<Compactor>) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("auditlog-compact".into())
        .spawn(move || {
            lower_priority();
            loop {
                let id = {
                    let mut work = c.work.lock();
                    work.busy = false;
                    c.cv.notify_all();
                    loop {
                        if c.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                        if let Some(id) = work.queue.pop_front() {
                            work.busy = true;
                            break id;
                        }
                        c.cv.wait(&mut work);
                    }
                };
                if let Err(e) = compact_one(&inner, &c, id) {
                    tracing::warn!(segment = %id, error = %e, "compaction failed; the segment stays as it was");
                }
            }
        })
        .ok()
}

/// Compaction competes with ingest for the cores: it only gets what
/// appenders leave idle. `SCHED_IDLE` says so to the scheduler more firmly
/// than nice 19 does (an appender waking from `fdatasync` preempts it at
/// once); nice 19 is the fallback where the policy is refused.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; `param` lives
    // across the call and is only read by it.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
}

/// Ingest counts as busy while its appenders have filled the CPU gate this
/// recently; compaction then waits this long before looking again.
const INGEST_BUSY_WINDOW: Duration = Duration::from_millis(200);
const COMPACTION_PAUSE: Duration = Duration::from_millis(100);

/// Called by compaction before each block: waits while ingest wants every
/// core (its appenders fill the CPU gate), and says whether to go on
/// (`false` once the engine is going away).
///
/// Idle CPU priority alone was not enough. Appenders sleep briefly many
/// times a second (each sync, each turn at the commit lock); compaction ran
/// in those gaps and took 8% of ingest over HTTP (docs/PERFORMANCE.md,
/// "Session 4"). A store whose ingest never fills the gate, a steady
/// trickle included, is compacted as before.
fn yield_to_ingest(weak: &Weak<Inner>, c: &Compactor) -> bool {
    loop {
        if c.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let busy = weak
            .upgrade()
            .is_some_and(|inner| inner.cpu_gate.full_within(INGEST_BUSY_WINDOW));
        if !busy {
            return true;
        }
        let mut work = c.work.lock();
        // Checked under the lock that `stop` sets it under, so its wake-up
        // cannot come between this check and the wait.
        if c.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        c.cv.wait_for(&mut work, COMPACTION_PAUSE);
    }
}

/// With LZ4 at ingest, the compactor is the only user of dictionaries and
/// trains them itself, from the segment it is about to compact, at its idle
/// priority and only once ingest leaves a core free: a new store's first
/// training (about 4% of the CPU of its first million events over HTTP,
/// docs/PERFORMANCE.md, "Session 7") no longer competes with ingest. A
/// failed or skipped training only leaves the segment to be compacted
/// with the dictionary the store has, or none.
fn train_for_compaction(weak: &Weak<Inner>, c: &Compactor, seg: &SealedSegment) {
    let wanted = weak.upgrade().is_some_and(|inner| {
        !inner.cfg.ingest_uses_dictionary() && inner.writer.lock().wants_dictionary(&inner.cfg)
    });
    if !wanted || !yield_to_ingest(weak, c) {
        return;
    }
    let Some(dict) = sealer::train_dictionary(seg) else {
        return;
    };
    let Some(inner) = weak.upgrade() else {
        return;
    };
    let mut w = inner.writer.lock();
    // Another training may have landed meanwhile (a seal under a changed
    // configuration); one is enough.
    if !w.wants_dictionary(&inner.cfg) {
        return;
    }
    match w.dicts.add(inner.fs.as_ref(), dict) {
        Ok(()) => w.seals_since_training = 0,
        Err(e) => tracing::warn!(error = %e, "could not store a new dictionary"),
    }
}

/// Writes segment `id` compacted next to itself, checks the new file as a
/// reader would (every block included), then, under the writer lock (which
/// retention and quarantine also hold while they remove files), renames it
/// over the old one and publishes it, if the segment is still live.
fn compact_one(weak: &Weak<Inner>, c: &Compactor, id: SegmentId) -> Result<()> {
    let (fs, seg, level, store_id, caches, dir) = {
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        let seg = inner
            .state
            .read()
            .sealed
            .iter()
            .find(|s| s.id == id)
            .cloned();
        let Some(seg) = seg.filter(|s| !s.compacted) else {
            return Ok(());
        };
        (
            inner.fs.clone(),
            seg,
            inner.cfg.compact_level,
            inner.dir.store_id,
            inner.caches.clone(),
            inner.dir.segments.clone(),
        )
    };
    let started = Instant::now();
    let tmp = seg.path.with_extension("seg.compact.tmp");
    let _ = fs.remove_file(&tmp);
    train_for_compaction(weak, c, &seg);
    // A segment written before the store had a dictionary adopts the
    // newest one.
    let adopt = weak
        .upgrade()
        .filter(|inner| inner.cfg.dictionary)
        .and_then(|inner| inner.writer.lock().dicts.newest().cloned());
    let keep_going = || yield_to_ingest(weak, c);
    if !crate::segment::compact::write_compacted(
        fs.as_ref(),
        &seg,
        &tmp,
        level,
        adopt.as_ref(),
        &keep_going,
    )? {
        return Ok(());
    }
    let checked =
        (|| {
            let bytes = fs.read_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let new = SealedSegment::from_bytes(seg.path.clone(), bytes, &store_id, caches)
                .map_err(|f| match f {
                    OpenFailure::NotSealed => {
                        Error::corrupt(&tmp, 0, "compacted file has no footer")
                    }
                    OpenFailure::Damaged(e) => e,
                })?;
            new.verify_blocks()?;
            Ok(new)
        })();
    let new = match checked {
        Ok(new) => new,
        Err(e) => {
            let _ = fs.remove_file(&tmp);
            return Err(e);
        }
    };
    let Some(inner) = weak.upgrade() else {
        let _ = fs.remove_file(&tmp);
        return Ok(());
    };
    let _writer = inner.writer.lock();
    let live = inner
        .state
        .read()
        .sealed
        .iter()
        .position(|s| Arc::ptr_eq(s, &seg));
    let Some(pos) = live else {
        // Dropped by retention or set aside meanwhile: never bring it back.
        let _ = fs.remove_file(&tmp);
        return Ok(());
    };
    fs.rename(&tmp, &seg.path)
        .map_err(|e| Error::io(&seg.path, e))?;
    // Either name binding that survives a crash is a whole, synced file.
    let synced = fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e));
    let new = Arc::new(new);
    {
        let mut state = inner.state.write();
        let mut list = (*state.sealed).clone();
        if let Some(slot) = list.get_mut(pos) {
            *slot = new.clone();
        }
        state.sealed = Arc::new(list);
    }
    tracing::info!(segment = %id, before = seg.file_len, after = new.file_len, ms = started.elapsed().as_millis() as u64, "compacted segment");
    synced
}

#[cfg(test)]
mod gate_tests {
    use super::CpuGate;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// However many threads knock, no more than the limit are inside.
    #[test]
    fn the_cpu_gate_admits_at_most_its_limit() {
        let gate = CpuGate::new(2);
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let _g = gate.enter();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    /// Compaction yields while the gate reads as full (`yield_to_ingest`):
    /// one appender of two never fills it, both do, and the mark fades.
    #[test]
    fn the_cpu_gate_tells_when_ingest_filled_it() {
        let gate = CpuGate::new(2);
        let window = std::time::Duration::from_millis(200);
        {
            let _one = gate.enter();
            assert!(!gate.full_within(window), "one appender of two");
        }
        {
            let _one = gate.enter();
            let _two = gate.enter();
            assert!(gate.full_within(window), "both places taken");
        }
        assert!(gate.full_within(window), "still recent after leaving");
        std::thread::sleep(window * 3);
        assert!(!gate.full_within(window), "the mark fades");
    }
}

#[cfg(test)]
mod compactor_tests {
    use std::path::Path;
    use std::sync::Arc;

    use crate::testing::SimFs;
    use crate::types::SegmentId;
    use crate::{Engine, EngineConfig};

    /// Work left queued with no thread to do it (it died, or never
    /// started) must not make `wait_compacted` wait for ever.
    #[test]
    fn waiting_for_compaction_ends_when_no_thread_runs() {
        let (e, _) = Engine::open_with(
            Arc::new(SimFs::new()),
            Path::new("/d"),
            EngineConfig::default(),
        )
        .unwrap();
        let c = e.inner.compactor.clone();
        assert!(c.running());
        c.stop();
        assert!(!c.running());
        c.push(SegmentId(999));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = e.clone();
        std::thread::spawn(move || {
            waiter.wait_compacted();
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("wait_compacted did not return within 30 s");
    }
}
