//! The single integration-test binary (one link on 2 cores); one module per area.

mod db_rows;
mod ops;
mod standin;
mod support;

mod audit_live;
mod bed;
mod cache_live;
mod cli;
mod cli_baseline;
mod cli_gates;
mod deploy;
mod faults;
mod gate_live;
mod glance;
mod glance_live;
mod grpc_live;
mod hostile_nodes;
mod hostile_reports;
mod l4_live;
mod lock_live;
mod matrix_live;
mod moves_live;
mod repair_live;
mod secrets_live;
mod tls_certs_live;
mod tls_grpc_live;
mod tls_live;
mod token_live;
mod variants_live;
