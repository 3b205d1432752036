//! Progress of the API reads on stderr, one line per side, drawn only when stderr is a terminal.
//!
//! Reading a big cluster through its API takes a request or two per service (and, with
//! `audit.config_meta = "per-config"`, one per config): minutes at 100,000 configs. A silent
//! terminal at 3 a.m. looks like a hang; these lines say how far each side has got and how many
//! requests a second its node answers. Pipes, files and CI logs get nothing (indicatif draws
//! only to a terminal).

use crate::model::Side;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The terminal's bars, and which side each belongs to.
type Bars = (MultiProgress, Vec<(Side, ProgressBar)>);

fn state() -> &'static Mutex<Bars> {
    static S: OnceLock<Mutex<Bars>> = OnceLock::new();
    S.get_or_init(|| {
        Mutex::new((
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)),
            Vec::new(),
        ))
    })
}

/// The bar of one side's API reads (created on first use; its length grows as listings arrive).
pub fn bar(side: Side) -> ProgressBar {
    let mut s = state().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, b)) = s.1.iter().find(|(x, _)| *x == side) {
        return b.clone();
    }
    let b = s.0.add(ProgressBar::new(0));
    b.set_style(
        ProgressStyle::with_template("{prefix:>6} API reads {pos}/{len} items [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_prefix(side.as_str());
    s.1.push((side, b.clone()));
    b
}

/// Show a side's request count and rate on its line.
pub fn rate(bar: &ProgressBar, requests: u64, elapsed: std::time::Duration) {
    let secs = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    // why: a display rate; exact beyond 2^52 requests is moot.
    let per_sec = if secs > 0.0 {
        requests as f64 / secs
    } else {
        0.0
    };
    bar.set_message(format!("{requests} requests, {per_sec:.0}/s"));
}

/// Remove every bar (before the report is printed).
pub fn clear() {
    let mut s = state().lock().unwrap_or_else(PoisonError::into_inner);
    for (_, b) in s.1.drain(..) {
        b.finish_and_clear();
    }
    let _ = s.0.clear();
}
