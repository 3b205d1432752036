//! One module per subcommand that reads or compares (`audit`'s stages are in `run`).

pub mod audit;
pub mod baseline;
pub mod diff;
pub mod snapshot;

/// `--since` read before anything is audited or compared: a path that is not a nacos-drift JSON
/// report is a usage error, not a late surprise after a long run.
fn check_since(settings: &crate::settings::Settings) -> crate::error::Result<()> {
    match &settings.since {
        Some(p) => crate::history::load_report(p).map(|_| ()).map_err(|e| {
            crate::error::Error::new(crate::error::ErrorKind::Usage, format!("--since {e}"))
        }),
        None => Ok(()),
    }
}
