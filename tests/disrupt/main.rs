//! Live fault tests that disrupt the shared bed for a moment (a locked table, a paused
//! database). A test binary of their own: cargo runs test binaries one after another, so these
//! never overlap the `it` tests in CI; inside this binary they run one at a time ([`serial`]).

#[path = "../it/ops.rs"]
mod ops;
#[path = "../it/support.rs"]
mod support;

mod child;
mod db_faults;
mod paused_node;

/// One disruptive test at a time: each holds this for its whole run.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
