//! The single integration-test binary (one link on 2 cores); one module per area.

mod ops;
mod standin;
mod support;

mod audit_live;
mod bed;
mod cache_live;
mod cli;
mod faults;
mod grpc_live;
mod hostile_nodes;
mod token_live;
