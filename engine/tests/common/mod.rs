//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use auditlog_engine::testing::SimFs;
use auditlog_engine::{Engine, EngineConfig, StoredEvent};

/// Opens the store in `/data` and returns the open report too.
pub fn open_sim_report(fs: &SimFs, cfg: EngineConfig) -> (Engine, auditlog_engine::OpenReport) {
    match Engine::open_with(Arc::new(fs.clone()), Path::new("/data"), cfg) {
        Ok(opened) => opened,
        Err(e) => panic!("open failed: {e}"),
    }
}

/// Asserts every served event is one that was acknowledged, byte for byte.
pub fn assert_all_acknowledged(
    served: &[StoredEvent],
    acked: &std::collections::HashMap<auditlog_engine::EventId, Vec<u8>>,
) {
    for e in served {
        assert_eq!(
            acked.get(&e.id),
            Some(&e.json),
            "served an event never acknowledged"
        );
    }
}

pub fn small_config() -> EngineConfig {
    EngineConfig {
        block_bytes: 512,
        max_segment_events: 40,
        ..EngineConfig::default()
    }
}

pub fn open_sim(fs: &SimFs, cfg: EngineConfig) -> Engine {
    open_sim_report(fs, cfg).0
}

/// A small valid event; `n` makes it unique and varies its size.
pub fn event_json(n: usize) -> String {
    format!(
        r#"{{"occurred_at":"2026-01-01T00:{:02}:{:02}.{:03}Z","action_name":"items.a{}","actor":{{"type":"user","id":"{}"}},"request":{{"payload":{{"n":{n},"pad":"{}"}}}}}}"#,
        (n / 60) % 60,
        n % 60,
        n % 1000,
        n % 5,
        n % 7,
        "x".repeat(n % 37)
    )
}

pub fn all_events(engine: &Engine) -> Vec<StoredEvent> {
    engine
        .snapshot()
        .events()
        .map(|e| match e {
            Ok(e) => e,
            Err(e) => panic!("scan failed: {e}"),
        })
        .collect()
}
