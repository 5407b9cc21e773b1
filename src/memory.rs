//! When freed memory goes back to the system.
//!
//! The binary's allocator is mimalloc, which hands freed pages back to the kernel after a delay
//! (`purge_delay`). Batch commands (ingest, build, test, run, the daemon) hand them back at once
//! (delay 0): a phase's freed pages then never stay resident into the next, and peak RSS at 13M
//! price rows stays near 600 MiB. The server keeps them 100 ms instead: with delay 0 each query
//! faults its working memory in again from zeroed pages, and a query's first run over pgwire
//! (`asset_daily`, one symbol) took 6.7–7.4 ms against 3.7–4.2 ms with 100 ms, for about 40 MiB
//! more resident. The same 100 ms for the batch phases bought no measurable time (full build
//! 11.8–12.7 s either way, runs interleaved) and raised their peak to 820–910 MiB
//! (`docs/benchmarks.md`). `MIMALLOC_PURGE_DELAY` overrides both.

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
            Workload::Batch => 0,
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
