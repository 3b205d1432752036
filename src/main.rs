//! Entry point: parse flags, run, map the outcome to an exit code, print the error chain.

use clap::Parser;
use nacos_drift::{app, cli::Cli, exit::ExitStatus};
use std::io::Write;
use std::process::ExitCode;

/// mimalloc, not the system allocator: glibc keeps up to 8 arenas per core, one per thread that
/// allocates (tokio's workers and blocking pool, rayon's), each holding on to what its thread
/// freed. An audit parses namespace exports on those threads and then holds little: measured
/// at 100,000 configs per side, glibc's peak RSS was about twice the peak heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    nacos_drift::tls::install_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NACOS_DRIFT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        // Log lines carry node answers: control characters shown, not sent (so no colour either).
        .with_writer(nacos_drift::report::escape::LogWriter)
        .with_ansi(false)
        .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Usage.into()
            } else {
                ExitStatus::Clean.into()
            };
        }
    };
    match app::run(cli) {
        Ok(status) => status.into(),
        Err(e) => {
            // Node answers end up in error messages: shown visibly, except the line breaks of
            // the list of configuration problems, which come from the user's own file and flags.
            let chain = e.chain();
            let shown = if e.kind == nacos_drift::error::ErrorKind::Config {
                nacos_drift::report::escape::visible_lines(&chain)
            } else {
                nacos_drift::report::escape::visible(&chain)
            };
            let _ = writeln!(std::io::stderr(), "error: {shown}");
            e.exit_status().into()
        }
    }
}
