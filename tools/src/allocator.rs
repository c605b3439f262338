//! Process-wide settings of the allocator (mimalloc), applied first thing in each binary's
//! `main`, the idle trim that gives freed memory back to the system, and `Mimalloc`, the
//! global allocator of drover's binaries.
//!
//! `Mimalloc` asks mimalloc for a plain block (`mi_malloc`) whenever the layout's alignment
//! is at most a word, which every mimalloc block has, and for an aligned block only above
//! that. Asking for an aligned block of a word's alignment, as a generic wrapper does, costs
//! memory in mimalloc 3: for the size classes that are not powers of two (48, 80, ..., 384,
//! 448, 640 bytes) it takes a block of the class only when that class already has a free
//! one, and otherwise over-allocates by the alignment, into the next class. Since that path
//! never starts a page of the exact class, nearly every such block lands one class up: a
//! 448-byte allocation record took 512 bytes, a 384-byte block 448.
//!
//! mimalloc hands memory it has freed back to the system once it has been unused for
//! `purge_delay` milliseconds (1,000 by default). A server that fills and empties the same
//! memory many times a second (plan batches, log entries, snapshot buffers, replies) then
//! pays twice for it: the purge itself (an `madvise`, which on Linux also splits the
//! transparent huge pages mimalloc asks for) and a page fault that zeroes the memory again on
//! its next use. At a million allocations (the C1M scenario) that churn cost the
//! server about a sixth of its CPU, in the kernel and in user time alike (bench/RESULTS.md,
//! "Allocator"). drover therefore keeps freed memory for reuse while it works: the purge
//! delay is an hour, so a busy server does not purge.
//!
//! Freed memory is still marked for a later purge, and `trim` purges all of it at once. The
//! agent's main thread, each shard and the Raft core call it when the server has applied
//! nothing for a while (`agent::IdleTrim`), so an idle server's resident size follows what
//! it holds, not the peak of its last burst.
//!
//! The process also opts out of transparent huge pages (`PR_SET_THP_DISABLE`, and mimalloc's
//! `allow_thp` off so it no longer asks for them). A 2 MiB huge page is resident as a whole
//! as soon as one byte of it is used, and a purge of a 64 KiB range inside it gives nothing
//! back until the kernel splits it. After a C1M fill, 1.26 GB of the server's 1.48 GB were
//! huge pages; without them the same fill left 1.29 GB resident and took as long
//! (bench/RESULTS.md, "Memory per allocation").
//!
//! An operator can still choose the allocator's own behaviour: `MIMALLOC_PURGE_DELAY` in the
//! environment (milliseconds; `-1` never purges) and `MIMALLOC_ALLOW_THP` (`1` keeps huge
//! pages) are left to mimalloc and win over this.

use std::alloc::{GlobalAlloc, Layout};

use libmimalloc_sys::{
    mi_collect, mi_free, mi_malloc, mi_malloc_aligned, mi_option_get, mi_option_set, mi_option_t,
    mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};

/// The alignment every mimalloc block has: blocks are whole words, in word-aligned pages.
const WORD: usize = std::mem::size_of::<usize>();

/// The global allocator of drover's binaries: mimalloc, asked for aligned blocks only when
/// a layout needs more than a word's alignment (see the module comment).
pub struct Mimalloc;

// SAFETY: every method hands the layout's size to mimalloc and returns its block (or null).
// A block from `mi_malloc`, `mi_zalloc` or `mi_realloc` is aligned to a word, which is all a
// layout of at most a word's alignment needs; larger alignments go to the aligned calls.
// `mi_free` frees a block from any of them.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi_malloc(layout.size()).cast()
        } else {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi_zalloc(layout.size()).cast()
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr.cast());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi_realloc(ptr.cast(), new_size).cast()
        } else {
            mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

/// `mi_option_purge_delay` in mimalloc v3's option enum (`include/mimalloc.h`); the Rust
/// bindings name no constant for it.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// `mi_option_allow_thp` in the same enum.
const MI_OPTION_ALLOW_THP: mi_option_t = 43;

/// The purge delay drover runs with: an hour, so that only `trim` purges in practice.
pub const PURGE_DELAY_MS: i64 = 3_600_000;

/// Applies drover's allocator settings unless the environment sets them. Call it before
/// starting any thread.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's option setters are plain stores into its option table; this
        // runs on the main thread before any other thread exists.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as _) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // mimalloc read `allow_thp` when the process started, so it does not make this call
        // itself now; clearing the option stops it asking for huge pages for new arenas.
        // SAFETY: as above; prctl with PR_SET_THP_DISABLE takes plain integers and only
        // sets a flag of this process, which every thread started after it inherits.
        unsafe {
            mi_option_set(MI_OPTION_ALLOW_THP, 0);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// Gives every freed range of memory back to the system now (a forced `mi_collect`: the
/// calling thread's free pages, then every arena's ranges marked for purging). It costs
/// an `madvise` per range and page faults when the memory is used again, so call it when the
/// process is idle, not on a hot path. Does nothing when the purge delay is negative.
pub fn trim() {
    // SAFETY: mi_collect may be called from any thread at any time.
    unsafe { mi_collect(true) };
}

/// The purge delay in effect, in milliseconds.
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads one entry of mimalloc's option table.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size mimalloc gave the block at `p`.
    fn block_size(p: *mut u8) -> usize {
        // SAFETY: `p` is a live block from mimalloc.
        unsafe { libmimalloc_sys::mi_usable_size(p.cast()) }
    }

    #[test]
    fn blocks_are_aligned_as_asked_and_sized_to_their_own_class() {
        let a = Mimalloc;
        let mut live = Vec::new();
        for align in [1, 2, 4, 8, 16, 64, 4096] {
            for size in (1..=1100).chain([4000, 70_000]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                for zeroed in [false, true] {
                    // SAFETY: a non-zero size; checked for null; freed below with its layout.
                    let p = unsafe {
                        if zeroed {
                            a.alloc_zeroed(layout)
                        } else {
                            a.alloc(layout)
                        }
                    };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "{size} bytes at alignment {align}");
                    if zeroed {
                        // SAFETY: the block holds `size` bytes.
                        assert!(unsafe { std::slice::from_raw_parts(p, size) }
                            .iter()
                            .all(|&b| b == 0));
                    }
                    live.push((p, layout));
                }
            }
        }
        // A realloc keeps the contents and the alignment.
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: as above; the block is written within its size before it grows.
        unsafe {
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, 7, 100);
            let q = a.realloc(p, layout, 5000);
            assert!(std::slice::from_raw_parts(q, 100).iter().all(|&b| b == 7));
            live.push((q, Layout::from_size_align(5000, 8).unwrap()));
        }
        // The classes that are not powers of two, in many blocks each: each block is of
        // its own class, not the next one up (a word-aligned layout is a plain block).
        for (size, class) in [(48, 48), (80, 80), (384, 384), (448, 448), (640, 640)] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            for _ in 0..1000 {
                // SAFETY: as above.
                let p = unsafe { a.alloc(layout) };
                assert_eq!(block_size(p), class, "a {size}-byte block");
                live.push((p, layout));
            }
        }
        for (p, layout) in live {
            // SAFETY: each block came from `a` with this layout and is freed once.
            unsafe { a.dealloc(p, layout) };
        }
    }

    #[test]
    fn the_option_index_is_mimallocs_purge_delay_and_tune_sets_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // mimalloc v3's default purge delay is 1,000 ms; a wrong index reads another option.
        let before = purge_delay_ms();
        assert!(
            before == 1000 || before == PURGE_DELAY_MS,
            "option {MI_OPTION_PURGE_DELAY} reads {before}, not a purge delay"
        );
        tune();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }

    /// Reports whether transparent huge pages are off for this process.
    fn huge_pages_disabled() -> bool {
        // SAFETY: PR_GET_THP_DISABLE reads a flag of this process.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
    }

    #[test]
    fn tune_turns_huge_pages_off_for_the_process_and_in_the_allocator() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        tune();
        assert!(huge_pages_disabled(), "PR_SET_THP_DISABLE is not set");
        // SAFETY: reads one entry of mimalloc's option table.
        let allow = unsafe { mi_option_get(MI_OPTION_ALLOW_THP) };
        assert_eq!(
            allow, 0,
            "option {MI_OPTION_ALLOW_THP} is not allow_thp, or stayed on"
        );
        // The flag reaches the kernel's view of the process.
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert!(line.ends_with('0'), "{line}");
        }
    }

    fn rss_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn trim_gives_freed_memory_back_and_freeing_alone_does_not() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        tune();
        // 256 MiB in 4 KiB blocks from mimalloc itself (the test binary's global allocator
        // is the system's), written so that every page is resident.
        const BLOCKS: usize = 65_536;
        let blocks: Vec<*mut u8> = (0..BLOCKS)
            .map(|_| {
                // SAFETY: a plain allocation, checked for null and written within its size.
                unsafe {
                    let p = libmimalloc_sys::mi_malloc(4096).cast::<u8>();
                    assert!(!p.is_null());
                    std::ptr::write_bytes(p, 0xa5, 4096);
                    p
                }
            })
            .collect();
        let filled = rss_bytes();
        for p in blocks {
            // SAFETY: each block came from mi_malloc above and is freed once.
            unsafe { libmimalloc_sys::mi_free(p.cast()) };
        }
        let freed = rss_bytes();
        trim();
        let trimmed = rss_bytes();
        const MIB: usize = 1 << 20;
        assert!(
            freed + 64 * MIB > filled,
            "freeing alone returned memory: {} MiB filled, {} MiB after free",
            filled / MIB,
            freed / MIB
        );
        assert!(
            trimmed + 128 * MIB < freed,
            "trim returned too little: {} MiB after free, {} MiB after trim",
            freed / MIB,
            trimmed / MIB
        );
    }
}
