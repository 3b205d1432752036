//! Exit codes of `nacos-drift`: one documented enum, the only meaning each code has.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | audit complete, nothing at `deny` level within the gate (the gate passes) |
//! | 1 | audit complete, drift at `deny` level within the gate (the gate fails) |
//! | 2 | usage or configuration error: nothing was audited |
//! | 3 | audit incomplete: a source could not be read; partial reports are still written and marked incomplete |
//!
//! Errors win over drift: an incomplete audit never exits 0 or 1.

use std::process::ExitCode;

/// How a run ended, in the order of precedence used by [`ExitStatus::worst`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// 0: complete and clean at `deny` level.
    Clean = 0,
    /// 1: complete, with drift at `deny` level.
    Drift = 1,
    /// 2: bad flags, environment or config file.
    Usage = 2,
    /// 3: some source could not be read, or a report could not be written.
    Incomplete = 3,
}

impl ExitStatus {
    /// The numeric process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Combine two outcomes: errors beat drift, drift beats clean.
    #[must_use]
    pub fn worst(self, other: Self) -> Self {
        self.max(other)
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_beat_drift_and_drift_beats_clean() {
        assert_eq!(
            ExitStatus::Clean.worst(ExitStatus::Drift),
            ExitStatus::Drift
        );
        assert_eq!(
            ExitStatus::Drift.worst(ExitStatus::Incomplete),
            ExitStatus::Incomplete
        );
        assert_eq!(
            ExitStatus::Incomplete.worst(ExitStatus::Clean),
            ExitStatus::Incomplete
        );
        assert_eq!(ExitStatus::Usage.code(), 2);
    }

    /// Every pair: the combined status is the one listed, whatever the order.
    #[test]
    fn precedence_table() {
        use ExitStatus::{Clean, Drift, Incomplete, Usage};
        let table = [
            (Clean, Clean, Clean),
            (Clean, Drift, Drift),
            (Clean, Incomplete, Incomplete),
            (Drift, Drift, Drift),
            (Drift, Incomplete, Incomplete),
            (Incomplete, Incomplete, Incomplete),
            (Usage, Clean, Usage),
            (Usage, Drift, Usage),
            (Usage, Incomplete, Incomplete),
        ];
        for (a, b, want) in table {
            assert_eq!(a.worst(b), want, "{a:?} + {b:?}");
            assert_eq!(b.worst(a), want, "{b:?} + {a:?}");
        }
        let codes: Vec<u8> = [Clean, Drift, Usage, Incomplete]
            .map(ExitStatus::code)
            .to_vec();
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
