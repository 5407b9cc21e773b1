//! When freed memory goes back to the system.
//!
//! The binary's allocator is mimalloc, which hands freed pages back to the kernel after a delay
//! (`purge_delay`). With delay 0 every operator's working memory is faulted in again from zeroed
//! pages each time it grows: a 13M-row build of `asset_daily` spent 4.7–5.4 s of system time
//! doing so, and took 9.3–10.1 s against 7.8–8.6 s with 100 ms (2026-12-05, runs interleaved,
//! peak RSS 575–600 MiB → 624–680 MiB). A query's first run over pgwire (`asset_daily`, one
//! symbol) likewise took 6.7–7.4 ms against 3.7–4.2 ms. So every workload keeps freed pages
//! 100 ms; the batch commands used 0 until then, for a lower peak, when an earlier measurement on a
//! noisier machine showed no time to gain. `MIMALLOC_PURGE_DELAY` overrides both.
//!
//! Transparent huge pages are off for the binary (`MIMALLOC_ALLOW_THP=0` unless set): that has to
//! be decided before mimalloc starts, so it is done in `src/main.rs`, where the figures are.

// Links mimalloc's C library into every binary built from this crate, the test binaries too
// (they do not use it as their allocator): the function below is its.
extern crate mimalloc as _;

unsafe extern "C" {
    // mimalloc.h: `void mi_option_set(mi_option_t option, long value)`.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h (the same in its v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// What the process is about to do, which decides how long freed memory is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Ingest, build, test, jobs, the daemon, one-shot queries: large working sets, one after
    /// another.
    Batch,
    /// `macrolake serve`: many small queries, each allocating and freeing much the same memory.
    Serving,
}

impl Workload {
    /// mimalloc's purge delay for this workload, in milliseconds.
    pub fn purge_delay_ms(self) -> i64 {
        match self {
            Workload::Batch => 100,
            Workload::Serving => 100,
        }
    }
}

/// Sets mimalloc's purge delay for `workload` unless `MIMALLOC_PURGE_DELAY` is set (the user's
/// value wins). Called once by the binary, after parsing its arguments and before any real work.
pub fn configure(workload: Workload) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: a plain setter of mimalloc's option table; any value is valid for this option.
    unsafe {
        mi_option_set(
            MI_OPTION_PURGE_DELAY,
            workload.purge_delay_ms() as std::ffi::c_long,
        )
    }
}
