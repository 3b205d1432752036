//! Progress of the API reads on stderr, one line per side, drawn only when stderr is a terminal.
//!
//! Reading a big cluster through its API takes one request per config (desc and tags, and on
//! 3.x the content) and per service: minutes at 100,000 configs. A silent terminal at 3 a.m.
//! looks like a hang; these lines say how far each side has got. Pipes, files and CI logs get
//! nothing (indicatif draws only to a terminal).

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
        ProgressStyle::with_template("{prefix:>6} API reads {pos}/{len} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_prefix(side.as_str());
    s.1.push((side, b.clone()));
    b
}

/// Remove every bar (before the report is printed).
pub fn clear() {
    let mut s = state().lock().unwrap_or_else(PoisonError::into_inner);
    for (_, b) in s.1.drain(..) {
        b.finish_and_clear();
    }
    let _ = s.0.clear();
}
