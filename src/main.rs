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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
