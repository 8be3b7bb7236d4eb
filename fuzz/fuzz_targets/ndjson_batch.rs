//! Any bytes as an NDJSON batch body: split, validated and appended all or
//! nothing; see `auditlog_engine::testing::fuzzing::check_ndjson_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auditlog_engine::testing::fuzzing::check_ndjson_batch(data);
});
