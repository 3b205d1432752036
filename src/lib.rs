//! nacos-drift: audit and repair drift between a source and a target Nacos cluster during a live migration.
//!
//! The binary is a thin wrapper over [`app::run`]; everything else is here so the integration tests
//! can use the same model and sources.

pub mod accounts;
pub mod app;
pub mod baseline;
pub mod cache;
pub mod cancel;
pub mod capture;
pub mod check_config;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod cmd;
pub mod db;
pub mod diff;
pub mod error;
pub mod escape;
pub mod exit;
pub mod finding;
pub mod history;
pub mod listeners;
pub mod model;
pub mod nacos;
pub mod outdir;
pub mod progress;
pub mod report;
pub mod run;
pub mod secret;
pub mod settings;
pub mod state;
pub mod tls;
pub mod validate;
pub mod version;
