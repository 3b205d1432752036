//! Dispatch: a parsed command line to its subcommand (one module each in `cmd/`); the returned
//! status becomes the process exit code.

use crate::cli::{Cli, Command};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;

/// Run a parsed command line; the returned status becomes the process exit code.
pub fn run(cli: Cli) -> Result<ExitStatus> {
    let env = |k: &str| std::env::var(k).ok();
    match cli.command {
        Command::Audit(a) => crate::cmd::audit::run(&a, &env),
        Command::Snapshot(a) => crate::cmd::snapshot::run(&a, &env),
        Command::Diff(a) => crate::cmd::diff::run(&a, &env),
        Command::Completions(a) => crate::cli::write_completions(a.shell, &mut std::io::stdout())
            .map(|()| ExitStatus::Clean)
            .map_err(|e| Error::with_source(ErrorKind::Report, "writing the completion script", e)),
        Command::Status(a) => crate::report::status::run(a.report.as_deref(), a.reports.as_deref()),
        Command::Man => crate::cli::write_man(&mut std::io::stdout())
            .map(|()| ExitStatus::Clean)
            .map_err(|e| Error::with_source(ErrorKind::Report, "writing the man page", e)),
    }
}
