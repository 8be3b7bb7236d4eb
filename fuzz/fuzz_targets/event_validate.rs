//! Any bytes as an event: validation never panics, and an accepted event's
//! canonical JSON is valid JSON that validates again to the same keys.
#![no_main]

use auditlog_engine::event::{keys_of_stored, prepare_event, EventLimits};
use auditlog_engine::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = prepare_event(data, Timestamp(1_767_225_600_000_000), &EventLimits::default()) {
        assert!(serde_json::from_slice::<serde_json::Value>(&e.json).is_ok());
        assert_eq!(keys_of_stored(&e.json).ok(), Some(e.keys));
    }
});
