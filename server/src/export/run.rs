//! Running one export: query pages from a snapshot, oldest first, format
//! each page and hand it on as one chunk.
//!
//! Memory is bounded by construction: one page of events
//! ([`PAGE_EVENTS`]) and its formatted chunk are held at a time; the
//! caller's sink decides how many chunks wait (the HTTP export sends them
//! through a bounded channel, a job writes them to its file). The pages
//! are those of `GET /v1/events?order=oldest` with the same filter and
//! range, over one snapshot: events appended during the export are not in
//! it. This module never touches HTTP or files.

use auditlog_engine::integrity::manifest::ContentHasher;
use auditlog_engine::query::{Filter, Query};
use auditlog_engine::{Order, Snapshot, TimeRange};

use super::format::{ExportFormat, FormatError, RowWriter};

/// Events per page, and so at most per chunk.
pub const PAGE_EVENTS: usize = 1000;

#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub format: ExportFormat,
    pub filter: Option<Filter>,
    pub range: TimeRange,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub bytes: u64,
    /// False when the sink stopped the export (the client went away).
    pub complete: bool,
    /// SHA-256 of every byte handed to the sink, for the signed manifest.
    pub content_sha256: [u8; 32],
    /// Chain position of the snapshot exported (docs/INTEGRITY.md).
    pub position: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Engine(#[from] auditlog_engine::Error),
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Writes the export of `spec` over `snap` to `sink`, one chunk per page
/// (plus the opening and closing bytes). `sink` returns false to stop.
pub fn run_export(
    snap: &Snapshot,
    spec: &ExportSpec,
    mut sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<ExportSummary, ExportError> {
    let mut writer = RowWriter::new(spec.format);
    let mut summary = ExportSummary {
        position: snap.chain_position(),
        ..ExportSummary::default()
    };
    let mut hasher = ContentHasher::default();
    let mut send = |chunk: Vec<u8>, summary: &mut ExportSummary| {
        summary.bytes += chunk.len() as u64;
        hasher.update(&chunk);
        chunk.is_empty() || sink(chunk)
    };
    let mut chunk = Vec::new();
    writer.begin(&mut chunk)?;
    let mut query = Query {
        filter: spec.filter.clone(),
        range: spec.range,
        order: Order::OldestFirst,
        limit: PAGE_EVENTS,
        cursor: None,
    };
    loop {
        let page = snap.query(&query)?;
        for event in &page.events {
            writer.row(event, &mut chunk)?;
        }
        if page.next_cursor.is_none() {
            writer.finish(&mut chunk)?;
        }
        if !send(std::mem::take(&mut chunk), &mut summary) {
            summary.rows = writer.rows();
            return Ok(summary);
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    summary.rows = writer.rows();
    summary.complete = true;
    summary.content_sha256 = hasher.finish().0;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use auditlog_engine::testing::SimFs;
    use auditlog_engine::{Engine, EngineConfig};

    use super::*;

    fn store(n: usize) -> Engine {
        let cfg = EngineConfig {
            dictionary: false,
            ..EngineConfig::default()
        };
        let (engine, _) = Engine::open_with(Arc::new(SimFs::new()), Path::new("/d"), cfg).unwrap();
        let events: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"occurred_at":"2024-01-01T00:{:02}:{:02}Z","action_name":"a{}","actor":{{"type":"user","id":"{i}"}}}}"#,
                    (i / 60) % 60,
                    i % 60,
                    i % 3
                )
            })
            .collect();
        for batch in events.chunks(1000) {
            engine.append_json(batch).unwrap();
        }
        engine
    }

    /// The producer runs ahead of a stalled reader by at most the channel's
    /// capacity plus the page in hand: it blocks, it does not buffer the
    /// export. Then, drained, it delivers every row.
    #[test]
    fn a_stalled_reader_stops_the_producer_after_a_bounded_number_of_pages() {
        let engine = store(20 * PAGE_EVENTS);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let produced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = produced.clone();
        let snap = engine.snapshot();
        let producer = std::thread::spawn(move || {
            let spec = ExportSpec {
                format: ExportFormat::Ndjson,
                filter: None,
                range: TimeRange::ALL,
            };
            run_export(&snap, &spec, |chunk| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tx.send(chunk).is_ok()
            })
            .unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        // Two chunks in the channel, the third blocked in `send`.
        assert_eq!(produced.load(std::sync::atomic::Ordering::SeqCst), 3);
        let mut lines = 0usize;
        let mut largest = 0usize;
        for chunk in rx {
            largest = largest.max(chunk.iter().filter(|b| **b == b'\n').count());
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        let summary = producer.join().unwrap();
        assert!(summary.complete);
        assert_eq!(lines, 20 * PAGE_EVENTS);
        assert_eq!(summary.rows, 20 * PAGE_EVENTS as u64);
        assert_eq!(largest, PAGE_EVENTS, "a chunk holds at most one page");
    }

    #[test]
    fn a_sink_that_refuses_stops_the_export() {
        let engine = store(3 * PAGE_EVENTS);
        let spec = ExportSpec {
            format: ExportFormat::Csv,
            filter: None,
            range: TimeRange::ALL,
        };
        let mut calls = 0;
        let summary = run_export(&engine.snapshot(), &spec, |_| {
            calls += 1;
            false
        })
        .unwrap();
        assert_eq!(calls, 1);
        assert!(!summary.complete);
    }
}
