//! Any text as a filter; see
//! `auditlog_engine::testing::fuzzing::check_filter_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auditlog_engine::testing::fuzzing::check_filter_parse(data);
});
