//! Entry point: parse flags, run, map the outcome to an exit code, print the error chain.

use clap::Parser;
use nacos_drift::{app, cli::Cli, exit::ExitStatus};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NACOS_DRIFT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
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
            let _ = writeln!(std::io::stderr(), "error: {}", e.chain());
            e.exit_status().into()
        }
    }
}
