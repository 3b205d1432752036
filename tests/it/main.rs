//! The single integration-test binary (one link on 2 cores); one module per area.

mod support;

mod bed;
mod cli;
