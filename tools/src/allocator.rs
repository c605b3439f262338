//! Process-wide settings of the allocator (mimalloc), applied first thing in each binary's
//! `main`.
//!
//! mimalloc hands memory it has freed back to the system once it has been unused for
//! `purge_delay` milliseconds (1,000 by default). A server that fills and empties the same
//! memory many times a second (plan batches, log entries, snapshot buffers, replies) then
//! pays twice for it: the purge itself (an `madvise`, which on Linux also splits the
//! transparent huge pages mimalloc asks for) and a page fault that zeroes the memory again on
//! its next use. At a million allocations (the C1M scenario) that churn cost the
//! server about a sixth of its CPU, in the kernel and in user time alike (bench/RESULTS.md,
//! "Allocator"). drover therefore keeps freed memory for reuse: its resident size follows
//! its peak, which for a server that only grows with its state is about its size anyway.
//!
//! An operator can still choose the allocator's own behaviour: `MIMALLOC_PURGE_DELAY` in the
//! environment (milliseconds; `-1` never purges) is left to mimalloc and wins over this.

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in mimalloc v3's option enum (`include/mimalloc.h`); the Rust
/// bindings name no constant for it.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// The purge delay drover runs with: never give freed memory back to the system.
pub const PURGE_DELAY_NEVER: i64 = -1;

/// Applies drover's allocator settings unless the environment sets them. Call it before
/// starting any thread.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's option setters are plain stores into its option table; this
        // runs on the main thread before any other thread exists.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_NEVER as _) };
    }
}

/// The purge delay in effect, in milliseconds.
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads one entry of mimalloc's option table.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_index_is_mimallocs_purge_delay_and_tune_sets_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc v3's default purge delay is 1,000 ms; a wrong index reads another option.
        let before = purge_delay_ms();
        assert!(
            before == 1000 || before == PURGE_DELAY_NEVER,
            "option {MI_OPTION_PURGE_DELAY} reads {before}, not a purge delay"
        );
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_NEVER);
    }
}
