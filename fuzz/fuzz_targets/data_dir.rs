//! A whole data directory (real small segments, mutated) opened, scanned,
//! queried, verified and reopened: no panic and no event served that was
//! never written; see `auditlog_engine::testing::fuzzing::check_data_dir`.
//! Seeds: `fuzz/seeds/data_dir/`, written by
//! `cargo test -p auditlog-engine --test fuzz_corpus -- --ignored write_seeds`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    auditlog_engine::testing::fuzzing::check_data_dir(data);
});
