//! Allocator settings for the binaries that use mimalloc (`auditlog` and
//! the load tool). Only settings live here; each binary declares the
//! global allocator itself.

use libmimalloc_sys::mi_option_t;

/// `mi_option_purge_delay` in mimalloc.h (v3), which the bindings do not
/// name: it is declared just before `mi_option_use_numa_nodes` (16).
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// mimalloc hands freed pages back to the system after 10 ms by default.
/// Under steady ingest they are wanted again at once, and faulting them
/// back in means zeroing them (2 MiB at a time with huge pages): 5-7% of
/// ingest CPU in profiles, and a second's delay takes a fifth of the page
/// faults away (docs/PERFORMANCE.md). Memory still goes back to the system
/// once a burst is over.
pub fn keep_freed_memory_a_while() {
    // SAFETY: sets one process-wide allocator option; it takes plain
    // integers and touches no memory of ours.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_where_mimalloc_declares_it() {
        assert_eq!(
            libmimalloc_sys::mi_option_use_numa_nodes,
            MI_OPTION_PURGE_DELAY + 1
        );
        keep_freed_memory_a_while();
        // SAFETY: reads one allocator option.
        let set = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(set, 1000);
    }
}
