//! The `macrolake` binary: parse arguments, run, map the outcome to an exit code
//! (0 ok, 1 failure, 2 usage — clap exits with 2 on bad arguments itself).

use std::process::ExitCode;

use clap::Parser;
use macrolake::cli::{Cli, error_text, init_logging, run};

/// mimalloc, as datafusion-cli uses: a large ingest or build frees its memory back to the system
/// instead of leaving it fragmented across glibc's per-thread arenas for the rest of the run (the
/// daemon and the server run for days).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Makes mimalloc return freed pages to the system at once (its `purge_delay` option, 10 ms by
/// default) unless `MIMALLOC_PURGE_DELAY` says otherwise. With the delay, pages a phase freed
/// stayed resident into the next (the nightly's steps run in one process, the daemon idles
/// between ticks): at 13M rows the next day's test step peaked at 1024 MiB, 561 MiB without
/// (`docs/benchmarks.md`), at no measurable cost in time.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    unsafe extern "C" {
        // mimalloc.h: `void mi_option_set(mi_option_t option, long value)`.
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_purge_delay` in mimalloc.h (the same in its v2 and v3).
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: a plain setter of mimalloc's option table, which is linked in as the global
    // allocator; any value is valid for this option.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let cli = Cli::parse();
    init_logging(&cli.global);
    // 64 MiB per worker: planning and dropping a statement recurse over its expression tree; the
    // server's guard caps the tree (1,000 operators, parser depth 50), and this leaves a wide margin
    // below that cap instead of the default 2 MiB.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(1)
        }
    }
}
