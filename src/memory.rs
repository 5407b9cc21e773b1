//! When freed memory goes back to the system.
//!
//! The binary's allocator is mimalloc. Freed pages are handed back to the kernel after a delay
//! (`purge_delay`); handing them back at once (delay 0) keeps the resident set at its minimum,
//! but every query and every model then faults its working memory in again from zeroed pages:
//! at 13M price rows the full build took 13.96 s with delay 0 and 10.83 s with 100 ms, and a
//! first-time pgwire query on `asset_daily` 7.9 ms against 3.8 ms (`docs/benchmarks.md`). So the
//! delay is 100 ms, and at the boundaries where a large working set is done with — after each
//! step of a job, after each model of a build, between the bench's phases — [`release_freed`]
//! hands back everything already freed, so one phase's leftovers are not resident in the next
//! (the daemon and the server run for days and idle between ticks).
//!
//! Both are no-ops in effect where mimalloc is not the global allocator (the test binaries): the
//! calls reach mimalloc's own, unused, heap.

// Links mimalloc's C library into every binary built from this crate, the test binaries too
// (they do not use it as their allocator): the two functions below are its.
extern crate mimalloc as _;

/// The purge delay set by [`configure`], in milliseconds.
pub const PURGE_DELAY_MS: i64 = 100;

unsafe extern "C" {
    // mimalloc.h: `void mi_option_set(mi_option_t option, long value)`.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    // mimalloc.h: `void mi_collect(bool force)`.
    fn mi_collect(force: bool);
}

/// `mi_option_purge_delay` in mimalloc.h (the same in its v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`] unless `MIMALLOC_PURGE_DELAY` is set (the
/// user's value wins). Called once by the binary before anything allocates much.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: a plain setter of mimalloc's option table; any value is valid for this option.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS as std::ffi::c_long) }
}

/// Hands every page already freed back to the system now, whatever the purge delay: the
/// calling thread's free pages and every pending purge of the process's arenas (mimalloc's
/// `mi_collect(true)`; it costs well under a millisecond when there is little to hand back).
pub fn release_freed() {
    // SAFETY: mimalloc's collector takes no pointers and may be called from any thread at any
    // time.
    unsafe { mi_collect(true) }
}
