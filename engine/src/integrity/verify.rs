//! Offline verification of a data directory against the hash chain,
//! tombstones and signed checkpoints (docs/INTEGRITY.md). Reads files only:
//! it never changes the directory, so it runs on a copy with nothing but
//! the public key and, optionally, checkpoints kept elsewhere.
//!
//! Every finding names the file and where in it (byte offset, event
//! ordinal, chain position). The caller prints; nothing here knows of a
//! terminal or of HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::Caches;
use crate::error::Result;
use crate::integrity::chain::{hex, ChainHead, Digest32, CHAIN_NONE};
use crate::integrity::checkpoint::{read_log, Checkpoint, CHECKPOINT_LEN, LOG_FILE};
use crate::integrity::key::PublicKey;
use crate::integrity::notary::checkpoint_dir;
use crate::integrity::tombstone::{self, Tombstone};
use crate::io::{FileBytes, FileSystem};
use crate::segment::block::{decode_block, DecodedBlock};
use crate::segment::dict::DictStore;
use crate::segment::format::{self, BlockHeader, BlockMeta, SegmentHeader, HEADER_LEN};
use crate::segment::sealed::{OpenFailure, SealedSegment};
use crate::types::SegmentId;

/// What verification is given besides the directory.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The store's public key, obtained out of band. Without it signatures
    /// are checked against the key the files name, which proves nothing
    /// against someone who replaced the key.
    pub public_key: Option<PublicKey>,
    /// Checkpoints kept outside the store (shipped file, tail stream, API).
    pub external: Vec<Checkpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Checksums or structure fail: accident or clumsy tampering.
    Damaged,
    /// Content does not hash to the recorded chain or checkpoint.
    Altered,
    /// Events are missing from the middle or start of the chain.
    Removed,
    /// Segments out of order, or an old segment put back.
    Reordered,
    /// The store ends before a checkpoint's position.
    Truncated,
    /// A signature is missing, invalid, or by another key.
    Signature,
    /// A file from another store.
    Foreign,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Damaged => "DAMAGED",
            Self::Altered => "ALTERED",
            Self::Removed => "REMOVED",
            Self::Reordered => "REORDERED",
            Self::Truncated => "TRUNCATED",
            Self::Signature => "SIGNATURE",
            Self::Foreign => "FOREIGN",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub file: PathBuf,
    /// Where in the file: "byte 1234, events 40..52 (chain positions ...)".
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.kind.as_str(),
            self.file.display(),
            self.location,
            self.message
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub problems: Vec<Problem>,
    /// Facts worth knowing that are not problems.
    pub notes: Vec<String>,
    pub segments: usize,
    pub events: u64,
    pub tombstones: usize,
    /// Where the chain ends (position, value): what a fresh checkpoint
    /// would sign.
    pub chain: ChainHead,
    /// Checkpoints whose position and chain value were compared with the
    /// store (in the store's log / given from elsewhere).
    pub checkpoints_checked: usize,
    pub external_checked: usize,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        file: &Path,
        location: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            kind,
            file: file.to_path_buf(),
            location: location.into(),
            message: message.into(),
        });
    }
}

/// One stretch of the chain found in the directory.
enum Item {
    Sealed(Box<SealedSegment>),
    Head {
        path: PathBuf,
        header: SegmentHeader,
        bytes: FileBytes,
    },
    Tomb(Tombstone, PathBuf),
}

impl Item {
    fn start(&self) -> ChainHead {
        match self {
            Item::Sealed(s) => ChainHead {
                position: s.header.chain_position,
                value: s.header.chain_prev,
            },
            Item::Head { header, .. } => ChainHead {
                position: header.chain_position,
                value: header.chain_prev,
            },
            Item::Tomb(t, _) => ChainHead {
                position: t.position,
                value: t.chain_prev,
            },
        }
    }

    fn path(&self) -> &Path {
        match self {
            Item::Sealed(s) => &s.path,
            Item::Head { path, .. } | Item::Tomb(_, path) => path,
        }
    }
}

/// The chain values the walk must note down: at every checkpoint position.
struct Wanted(BTreeMap<u64, Option<Digest32>>);

impl Wanted {
    fn note(&mut self, at: &ChainHead) {
        if let Some(slot) = self.0.get_mut(&at.position) {
            *slot = Some(at.value);
        }
    }
}

/// Verifies the data directory at `root`. `Err` only when the directory
/// cannot be read at all (no STORE file, I/O errors listing it).
pub fn verify_store(
    fs: &dyn FileSystem,
    root: &Path,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let store_id = crate::datadir::read_store_id(fs, root)?;
    let log_path = checkpoint_dir(root).join(LOG_FILE);
    let log = read_log(fs, &log_path)?;

    let mut wanted = Wanted(BTreeMap::new());
    for c in log.checkpoints.iter().chain(&opts.external) {
        wanted.0.insert(c.position, None);
    }
    let genesis = ChainHead::genesis(&store_id);
    wanted.note(&genesis);

    let items = collect_items(fs, root, &store_id, &mut report)?;
    let quarantined: Vec<String> = fs.list_dir(&root.join("quarantine")).unwrap_or_default();

    let mut expected = genesis;
    let mut last_sealed_end: Option<u64> = None;
    for item in &items {
        let start = item.start();
        link(&mut report, item, &start, &expected, &quarantined);
        expected = start;
        match item {
            Item::Sealed(seg) => {
                report.segments += 1;
                report.events += u64::from(seg.event_count());
                expected = walk_sealed(&mut report, seg, expected, &mut wanted);
                last_sealed_end = Some(expected.position);
            }
            Item::Head {
                path,
                header,
                bytes,
            } => {
                report.segments += 1;
                expected = walk_head(
                    fs,
                    root,
                    &mut report,
                    path,
                    header,
                    bytes,
                    expected,
                    &mut wanted,
                );
            }
            Item::Tomb(t, path) => {
                report.tombstones += 1;
                check_tombstone(&mut report, t, path, &store_id, opts.public_key.as_ref());
                expected = t.end();
                wanted.note(&expected);
            }
        }
    }
    report.chain = expected;

    check_log(
        &mut report,
        &log,
        &log_path,
        &store_id,
        opts,
        &wanted,
        last_sealed_end,
    );
    check_external(&mut report, &log.checkpoints, &store_id, opts, &wanted);
    Ok(report)
}

/// Reads every segment and tombstone, in chain order (by segment id).
fn collect_items(
    fs: &dyn FileSystem,
    root: &Path,
    store_id: &[u8; 16],
    report: &mut VerifyReport,
) -> Result<Vec<Item>> {
    let seg_dir = root.join("segments");
    let names = fs
        .list_dir(&seg_dir)
        .map_err(|e| crate::error::Error::io(&seg_dir, e))?;
    let mut ids: Vec<(SegmentId, PathBuf)> = names
        .iter()
        .filter_map(|n| SegmentId::from_file_name(n).map(|id| (id, seg_dir.join(n))))
        .collect();
    ids.sort();
    let last = ids.last().map(|(id, _)| *id);
    let caches = Arc::new(Caches::new(1 << 20, 1 << 20));
    let mut items: Vec<(SegmentId, Item)> = Vec::new();
    for (id, path) in ids {
        let bytes = match fs.read_all(&path) {
            Ok(b) => b,
            Err(e) => {
                report.problem(
                    ProblemKind::Damaged,
                    &path,
                    "whole file",
                    format!("cannot read: {e}"),
                );
                continue;
            }
        };
        let file: &[u8] = (*bytes).as_ref();
        if file.is_empty() {
            report.notes.push(format!(
                "{}: empty segment file (created, never written)",
                path.display()
            ));
            continue;
        }
        let header = match SegmentHeader::decode(file) {
            Ok(h) => h,
            Err(why) => {
                report.problem(ProblemKind::Damaged, &path, "byte 0 (segment header)", why);
                continue;
            }
        };
        if &header.store_id != store_id {
            report.problem(
                ProblemKind::Foreign,
                &path,
                "byte 16 (store id)",
                format!(
                    "segment belongs to store {}, not this one ({}): copied in from another store",
                    hex(&header.store_id),
                    hex(store_id)
                ),
            );
            continue;
        }
        if header.segment_id != id {
            report.problem(
                ProblemKind::Reordered,
                &path,
                "byte 32 (segment id)",
                format!(
                    "the header says segment {:016x}: the file was renamed (segments swapped or moved)",
                    header.segment_id.0
                ),
            );
        }
        match SealedSegment::from_bytes(path.clone(), bytes.clone(), store_id, caches.clone()) {
            Ok(seg) => items.push((id, Item::Sealed(Box::new(seg)))),
            Err(OpenFailure::NotSealed) if Some(id) == last => {
                items.push((
                    id,
                    Item::Head {
                        path,
                        header,
                        bytes,
                    },
                ));
            }
            Err(OpenFailure::NotSealed) => report.problem(
                ProblemKind::Damaged,
                &path,
                format!("byte {} (end)", file.len()),
                "an older segment without a valid footer: it was never sealed, or its end was cut",
            ),
            Err(OpenFailure::Damaged(e)) => {
                report.problem(ProblemKind::Damaged, &path, "sealed segment", e.to_string())
            }
        }
    }
    let (tombs, bad) = tombstone::read_all(fs, root)?;
    for (path, why) in bad {
        report.problem(ProblemKind::Damaged, &path, "tombstone", why);
    }
    for t in tombs {
        let path = tombstone::tombstone_path(root, t.segment_id);
        if let Some((_, Item::Sealed(seg))) = items.iter().find(|(id, _)| *id == t.segment_id) {
            // Retention wrote the tombstone and stopped before removing
            // the file: harmless if they agree.
            if seg.header.chain_position != t.position || seg.facts.chain_last != t.chain_last {
                report.problem(
                    ProblemKind::Altered,
                    &path,
                    "whole tombstone",
                    format!(
                        "disagrees with the segment {} that is still present",
                        seg.path.display()
                    ),
                );
            } else {
                report.notes.push(format!(
                    "{}: tombstone for a segment still present (a retention drop was interrupted)",
                    path.display()
                ));
            }
            continue;
        }
        items.push((t.segment_id, Item::Tomb(t, path)));
    }
    items.sort_by_key(|(id, _)| *id);
    Ok(items.into_iter().map(|(_, i)| i).collect())
}

/// Checks that `item` starts where the previous stretch ended.
fn link(
    report: &mut VerifyReport,
    item: &Item,
    start: &ChainHead,
    expected: &ChainHead,
    quarantined: &[String],
) {
    let path = item.path();
    let loc = format!("chain position {}", start.position);
    if start == expected {
        return;
    }
    if start.position > expected.position {
        let aside: Vec<&String> = quarantined.iter().filter(|n| n.contains(".seg")).collect();
        let hint = if aside.is_empty() {
            String::new()
        } else {
            format!(
                " (quarantine/ holds {} file(s) set aside as damaged)",
                aside.len()
            )
        };
        report.problem(
            ProblemKind::Removed,
            path,
            loc,
            format!(
                "events at chain positions {}..{} are missing before this file and no tombstone \
                 explains them: a segment was removed outside retention{hint}",
                expected.position, start.position
            ),
        );
    } else if start.position < expected.position {
        report.problem(
            ProblemKind::Reordered,
            path,
            loc,
            format!(
                "starts at chain position {} but the previous segment ends at {}: \
                 segments are out of order, or an old segment was put back (replayed)",
                start.position, expected.position
            ),
        );
    } else {
        report.problem(
            ProblemKind::Altered,
            path,
            loc,
            format!(
                "does not continue the chain: it starts from {} but the previous segment ends \
                 at {} (the previous segment was altered or re-chained, or this one replaced)",
                short(&start.value),
                short(&expected.value)
            ),
        );
    }
}

fn short(d: &Digest32) -> String {
    let mut h = hex(d);
    h.truncate(16);
    h
}

/// Recomputes one block's events into the chain; a mismatch with the
/// block header is reported and the walk continues from the stored value,
/// so one alteration is reported once.
#[allow(clippy::too_many_arguments)]
fn walk_block(
    report: &mut VerifyReport,
    path: &Path,
    algo: u8,
    meta: &BlockMeta,
    header: &BlockHeader,
    block: &DecodedBlock,
    mut chain: ChainHead,
    wanted: &mut Wanted,
) -> ChainHead {
    let start = chain.position;
    if algo == CHAIN_NONE {
        chain.position += u64::from(meta.event_count);
        return chain;
    }
    for o in block.ordinals() {
        chain.push_json(block.json(o).unwrap_or_default());
        wanted.note(&chain);
    }
    if chain.value != header.chain {
        report.problem(
            ProblemKind::Altered,
            path,
            format!(
                "block at byte {}, events {}..{} (chain positions {}..{})",
                meta.offset,
                meta.first_ordinal,
                meta.first_ordinal + meta.event_count,
                start,
                chain.position
            ),
            "the events do not hash to the chain value in the block header: an event was \
             altered, inserted or removed here (and the checksums recomputed)",
        );
        chain.value = header.chain;
        // Values noted inside this block came from altered content.
        for (_, v) in wanted.0.range_mut(start + 1..=chain.position) {
            *v = None;
        }
        wanted.note(&chain);
    }
    chain
}

fn walk_sealed(
    report: &mut VerifyReport,
    seg: &SealedSegment,
    mut chain: ChainHead,
    wanted: &mut Wanted,
) -> ChainHead {
    if seg.header.chain_algo == CHAIN_NONE {
        report.problem(
            ProblemKind::Altered,
            &seg.path,
            "byte 60 (chain algorithm)",
            "segment keeps no hash chain (written with hash_chain off): its events cannot be checked",
        );
    }
    for meta in seg.blocks() {
        let header = match seg.block_header(meta) {
            Ok(h) => h,
            Err(e) => {
                report.problem(
                    ProblemKind::Damaged,
                    &seg.path,
                    format!("block at byte {}", meta.offset),
                    e.to_string(),
                );
                return skip_to_end(seg, chain);
            }
        };
        match seg.decode(meta) {
            Ok(block) => {
                chain = walk_block(
                    report,
                    &seg.path,
                    seg.header.chain_algo,
                    meta,
                    &header,
                    &block,
                    chain,
                    wanted,
                );
            }
            Err(e) => {
                report.problem(
                    ProblemKind::Damaged,
                    &seg.path,
                    format!("block at byte {}", meta.offset),
                    e.to_string(),
                );
                chain.position += u64::from(meta.event_count);
                chain.value = header.chain;
            }
        }
    }
    if seg.header.chain_algo != CHAIN_NONE && chain.value != seg.facts.chain_last {
        report.problem(
            ProblemKind::Altered,
            &seg.path,
            "facts section",
            "the recorded last chain value disagrees with the blocks",
        );
        chain.value = seg.facts.chain_last;
    }
    chain
}

fn skip_to_end(seg: &SealedSegment, chain: ChainHead) -> ChainHead {
    ChainHead {
        position: seg.header.chain_position + u64::from(seg.event_count()),
        value: if chain.position > 0 {
            seg.facts.chain_last
        } else {
            chain.value
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn walk_head(
    fs: &dyn FileSystem,
    root: &Path,
    report: &mut VerifyReport,
    path: &Path,
    header: &SegmentHeader,
    bytes: &FileBytes,
    mut chain: ChainHead,
    wanted: &mut Wanted,
) -> ChainHead {
    let file: &[u8] = (**bytes).as_ref();
    let dict = match header.dict_id {
        0 => None,
        id => {
            let found = DictStore::open(fs, &root.join("dicts"))
                .ok()
                .and_then(|(d, _)| d.by_id(id).cloned());
            if found.is_none() {
                report.problem(
                    ProblemKind::Damaged,
                    path,
                    "byte 56 (dictionary id)",
                    format!("head segment needs dictionary {id:08x}, which is missing or damaged"),
                );
                return chain;
            }
            found
        }
    };
    let mut at = HEADER_LEN as u64;
    let mut ordinal = 0u32;
    let mut events = 0u64;
    let mut last_batch_end = at;
    while let Some(h) = file.get(at as usize..).and_then(BlockHeader::decode) {
        let meta = BlockMeta::from_header(at, &h);
        if h.first_ordinal != ordinal || h.chain_algo != header.chain_algo {
            break;
        }
        let Ok(block) = decode_block(
            path,
            &meta,
            file.get(at as usize..).unwrap_or_default(),
            dict.as_ref(),
        ) else {
            break;
        };
        chain = walk_block(
            report,
            path,
            header.chain_algo,
            &meta,
            &h,
            &block,
            chain,
            wanted,
        );
        ordinal += h.event_count;
        events += u64::from(h.event_count);
        at = meta.end_offset();
        if h.flags & format::FLAG_BATCH_END != 0 {
            last_batch_end = at;
        }
    }
    report.events += events;
    if (file.len() as u64) > last_batch_end {
        report.notes.push(format!(
            "{}: {} bytes after byte {} are not whole batches (an interrupted append; opening the store cuts them)",
            path.display(),
            file.len() as u64 - last_batch_end,
            last_batch_end
        ));
    }
    chain
}

fn check_tombstone(
    report: &mut VerifyReport,
    t: &Tombstone,
    path: &Path,
    store_id: &[u8; 16],
    key: Option<&PublicKey>,
) {
    if &t.store_id != store_id {
        report.problem(
            ProblemKind::Foreign,
            path,
            "byte 16 (store id)",
            "tombstone of another store",
        );
        return;
    }
    match key {
        Some(_) if !t.is_signed() => report.problem(
            ProblemKind::Signature,
            path,
            "byte 136 (signature)",
            format!(
                "tombstone for segment {:016x} (chain positions {}..{}) is not signed: the removal \
                 cannot be shown to be a retention drop",
                t.segment_id.0,
                t.position,
                t.end().position
            ),
        ),
        Some(k) if !t.verify(k) => report.problem(
            ProblemKind::Signature,
            path,
            "byte 168 (signature)",
            "tombstone signature is not valid for the given public key: forged or altered",
        ),
        Some(_) => {}
        None => {
            if t.is_signed() && !t.verify(&t.public_key) {
                report.problem(
                    ProblemKind::Signature,
                    path,
                    "byte 168 (signature)",
                    "tombstone signature is not valid",
                );
            }
        }
    }
}

/// Checks the store's own checkpoint log: records, links, signatures, and
/// that the store reaches each one with the same chain value.
fn check_log(
    report: &mut VerifyReport,
    log: &crate::integrity::checkpoint::LogContents,
    path: &Path,
    store_id: &[u8; 16],
    opts: &VerifyOptions,
    wanted: &Wanted,
    last_sealed_end: Option<u64>,
) {
    for (offset, why) in &log.damaged {
        report.problem(
            ProblemKind::Damaged,
            path,
            format!("byte {offset}"),
            why.clone(),
        );
    }
    let mut prev: Option<&Checkpoint> = None;
    for (i, c) in log.checkpoints.iter().enumerate() {
        let loc = format!(
            "checkpoint {} (record {i}, byte {})",
            c.sequence,
            i * CHECKPOINT_LEN
        );
        if let Some(p) = prev {
            if c.sequence != p.sequence + 1 || c.previous != p.hash() {
                report.problem(
                    ProblemKind::Removed,
                    path,
                    loc.clone(),
                    format!(
                        "does not follow checkpoint {}: checkpoints were removed or reordered",
                        p.sequence
                    ),
                );
            }
            if c.position < p.position {
                report.problem(
                    ProblemKind::Reordered,
                    path,
                    loc.clone(),
                    "position goes backwards",
                );
            }
        } else if c.sequence != 0 || c.previous != [0; 32] {
            report.problem(
                ProblemKind::Removed,
                path,
                loc.clone(),
                "the log does not start at the first checkpoint: earlier ones were removed",
            );
        }
        prev = Some(c);
        check_one(
            report,
            c,
            path,
            &loc,
            store_id,
            opts.public_key.as_ref(),
            wanted,
            false,
        );
    }
    if opts.public_key.is_some() {
        let covered = log.checkpoints.last().map(|c| c.position);
        match (last_sealed_end, covered) {
            (Some(end), None) if end > 0 => report.problem(
                ProblemKind::Removed,
                path,
                "whole log",
                "the store has sealed segments but no checkpoint: every seal writes one (the log was removed)",
            ),
            (Some(end), Some(c)) if c < end => report.problem(
                ProblemKind::Removed,
                path,
                "end of log",
                format!(
                    "the latest checkpoint covers {c} events but sealed segments reach {end}: \
                     every seal writes a checkpoint, so the newest ones were removed"
                ),
            ),
            _ => {}
        }
    }
    report.checkpoints_checked = log.checkpoints.len();
}

#[allow(clippy::too_many_arguments)]
fn check_one(
    report: &mut VerifyReport,
    c: &Checkpoint,
    path: &Path,
    loc: &str,
    store_id: &[u8; 16],
    key: Option<&PublicKey>,
    wanted: &Wanted,
    external: bool,
) -> bool {
    if &c.store_id != store_id {
        report.problem(
            ProblemKind::Foreign,
            path,
            loc,
            "checkpoint of another store",
        );
        return false;
    }
    let signed = match key {
        Some(k) => c.verify(k),
        None => c.verify(&c.public_key),
    };
    if !signed {
        report.problem(
            ProblemKind::Signature,
            path,
            loc,
            "signature is not valid for the given public key: forged or altered checkpoint",
        );
        return false;
    }
    let end = report.chain.position;
    let whose = if external {
        "a checkpoint kept elsewhere"
    } else {
        "the store's checkpoint"
    };
    if c.position > end {
        report.problem(
            ProblemKind::Truncated,
            path,
            loc,
            format!(
                "{whose} (signed {}) covers {} events, but the store's chain ends at {}: \
                 the newest {} events were removed",
                c.time.to_rfc3339(),
                c.position,
                end,
                c.position - end
            ),
        );
        return true;
    }
    match wanted.0.get(&c.position).copied().flatten() {
        Some(v) if v == c.chain_head => {}
        Some(_) => report.problem(
            ProblemKind::Altered,
            path,
            loc,
            format!(
                "the store's chain value at position {} differs from {whose} (signed {}): \
                 history up to that position was rewritten",
                c.position,
                c.time.to_rfc3339()
            ),
        ),
        None => report.notes.push(format!(
            "{}: {loc} at position {} falls in events dropped by retention (or damaged): not comparable",
            path.display(),
            c.position
        )),
    }
    true
}

fn check_external(
    report: &mut VerifyReport,
    log: &[Checkpoint],
    store_id: &[u8; 16],
    opts: &VerifyOptions,
    wanted: &Wanted,
) {
    let path = PathBuf::from("(checkpoint given)");
    for c in &opts.external {
        let loc = format!("checkpoint {} at position {}", c.sequence, c.position);
        let trusted = check_one(
            report,
            c,
            &path,
            &loc,
            store_id,
            opts.public_key.as_ref(),
            wanted,
            true,
        );
        if trusted {
            if let Some(stored) = log.iter().find(|s| s.sequence == c.sequence) {
                if stored != c {
                    report.problem(
                        ProblemKind::Altered,
                        &path,
                        loc.clone(),
                        "the store's log holds a different checkpoint with this sequence number: the log was rewritten",
                    );
                }
            } else if log.last().is_none_or(|l| l.sequence < c.sequence) {
                report.problem(
                    ProblemKind::Removed,
                    &path,
                    loc.clone(),
                    "the store's checkpoint log ends before this checkpoint: its newest checkpoints were removed",
                );
            }
        }
        report.external_checked += 1;
    }
}
