//! Any bytes as one event; see
//! `auditlog_engine::testing::fuzzing::check_event_validate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auditlog_engine::testing::fuzzing::check_event_validate(data);
});
