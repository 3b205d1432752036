//! Tests that disrupt the shared test bed (paused or stopped servers); a separate binary so that
//! they run after `it`, one at a time.

#[path = "../it/support.rs"]
mod support;

mod paused_node;

/// Held by every test here: one disruption at a time.
pub static DISRUPT: std::sync::Mutex<()> = std::sync::Mutex::new(());
