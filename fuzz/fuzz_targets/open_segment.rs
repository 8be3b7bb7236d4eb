//! Arbitrary bytes as the head and as a sealed segment file of a store;
//! see `auditlog_engine::testing::fuzzing::check_open_segment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auditlog_engine::testing::fuzzing::check_open_segment(data);
});
