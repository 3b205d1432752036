//! One module per subcommand that reads or compares (`audit`'s stages are in `run`).

pub mod audit;
pub mod diff;
pub mod snapshot;
