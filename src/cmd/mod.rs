//! One module per offline-capable subcommand besides `audit` (whose stages are in `run`).

pub mod baseline;
pub mod diff;
pub mod snapshot;
