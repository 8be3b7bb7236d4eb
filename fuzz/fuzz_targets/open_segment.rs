//! Arbitrary bytes as the head and as a sealed segment file of a store:
//! opening and scanning must never panic, and never return an event whose
//! bytes are not a whole, canonical event.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use auditlog_engine::testing::SimFs;
use auditlog_engine::{Engine, EngineConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fs = SimFs::new();
    let dir = Path::new("/data");
    // A real store first, so the STORE identity exists; then the input
    // replaces (or joins) its segment files.
    let Ok((engine, _)) = Engine::open_with(Arc::new(fs.clone()), dir, EngineConfig::default()) else { return };
    drop(engine);
    fs.put_file(&dir.join("segments/0000000000000001.seg"), data.to_vec());
    fs.put_file(&dir.join("segments/0000000000000002.seg"), data.to_vec());
    if let Ok((engine, _)) = Engine::open_with(Arc::new(fs), dir, EngineConfig::default()) {
        for event in engine.snapshot().events().flatten() {
            assert!(event.value().is_ok(), "served an event that is not JSON");
        }
        let _ = engine.verify();
    }
});
