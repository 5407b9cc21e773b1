//! The `macrolake` binary: parse arguments, run, map the outcome to an exit code
//! (0 ok, 1 failure, 2 usage — clap exits with 2 on bad arguments itself).

use std::process::ExitCode;

use clap::Parser;
use macrolake::cli::{Cli, Command, error_text, init_logging, run};
use macrolake::memory::Workload;

/// mimalloc, as datafusion-cli uses: a large ingest or build frees its memory back to the system
/// instead of leaving it fragmented across glibc's per-thread arenas for the rest of the run (the
/// daemon and the server run for days).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off, decided before mimalloc starts: its constructor (priority 101,
/// section `.init_array.00101`) reads `MIMALLOC_ALLOW_THP` once, and with 0 it neither asks for
/// huge pages on its arenas nor lets the kernel back the process with them. With them (it asks by
/// `madvise`, which Debian's and Ubuntu's default THP mode honours) each first touch of a 2 MiB
/// region faulted in a whole zeroed huge page, again after every purge. Measured on the 13M-row
/// bench lake (2026-12-05, interleaved runs): the next night's ingest took 0.77–0.85 s at
/// 330–345 MiB peak against 0.72–1.66 s at 415–590 MiB; every model built from scratch,
/// 7.9–8.2 s at 510–580 MiB against 7.8–8.5 s at 650–715 MiB (and 9.7–11.0 s in another
/// round). Turning them off later, from `main`, was slower than either (the arenas were already
/// advised). A value the user set wins.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static NO_HUGE_PAGES: extern "C" fn() = {
    extern "C" fn no_huge_pages() {
        unsafe extern "C" {
            fn setenv(
                name: *const std::ffi::c_char,
                value: *const std::ffi::c_char,
                overwrite: std::ffi::c_int,
            ) -> std::ffi::c_int;
        }
        // SAFETY: runs before `main` and before any thread exists; both strings are
        // NUL-terminated literals; overwrite = 0 keeps a value already set.
        unsafe { setenv(c"MIMALLOC_ALLOW_THP".as_ptr(), c"0".as_ptr(), 0) };
    }
    no_huge_pages
};

/// Restores the default action of SIGPIPE: a process writing to a pipe whose reader is gone
/// (`macrolake status | head`) ends quietly, as Unix tools do. Rust ignores the signal, so the
/// write fails instead and `println!` panics with a backtrace. Sockets are unaffected: Rust and
/// tokio send on them with `MSG_NOSIGNAL`, and a closed connection is an error as before.
#[cfg(unix)]
fn default_sigpipe() {
    unsafe extern "C" {
        fn signal(signum: std::ffi::c_int, handler: usize) -> usize;
    }
    const SIGPIPE: std::ffi::c_int = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: called first thing in `main`, before any thread exists; SIG_DFL is a valid action.
    unsafe { signal(SIGPIPE, SIG_DFL) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server and the daemon keep ignoring SIGPIPE: they run for days, and a closed pipe on
    // their log output must not end them without a word.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve { .. } | Command::Daemon { .. }) {
        default_sigpipe();
    }
    macrolake::memory::configure(match cli.command {
        Command::Serve { .. } => Workload::Serving,
        _ => Workload::Batch,
    });
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
