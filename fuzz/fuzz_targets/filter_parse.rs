//! Any text as a filter: parse errors carry a column inside the text (or
//! one past its end), and parsing never panics or overflows the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match auditlog_engine::query::parse_filter(text) {
            Ok(filter) => {
                let again = auditlog_engine::query::parse_filter(&filter.to_string());
                assert_eq!(again.as_ref(), Ok(&filter), "printing and parsing again changed the filter");
            }
            Err(e) => assert!(e.column >= 1 && e.column <= text.chars().count() + 1),
        }
    }
});
