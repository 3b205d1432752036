//! Stopping a run early: the whole-run deadline and SIGINT/SIGTERM are one mechanism, so either
//! way the run stops its work, reports what it gathered marked incomplete, and exits 3.
//!
//! Every step of a run that waits on the outside world runs through [`Stopper::run`], which
//! races it against the stop; a stopped step's future is dropped (its requests abandoned, its
//! database statements killed at clean-up) and the run goes straight to writing its reports.

use crate::finding::{Code, Finding, Layer};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `audit.deadline_secs` passed.
    Deadline(u64),
    /// A signal arrived (its name).
    Signal(&'static str),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Deadline(s) => write!(f, "the run deadline of {s} s (audit.deadline_secs) passed"),
            Why::Signal(name) => write!(f, "{name} received"),
        }
    }
}

/// A run stopped early: why, and during which step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Why.
    pub why: Why,
    /// The step that was under way (`reading both sides`, ...).
    pub during: String,
    /// The layer that step belongs to.
    pub layer: Layer,
}

impl Stopped {
    /// The `source-error` finding that marks the report incomplete and says why.
    #[must_use]
    pub fn finding(&self) -> Finding {
        let mut f = Finding::new(Code::SourceError, self.layer, "", "", "");
        f.detail = format!(
            "run stopped early: {} while {}; this report holds only what was gathered before, \
             and nothing after that step was compared",
            self.why, self.during
        );
        f
    }
}

/// The stop signal of one run, with its deadline. Cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    tx: Arc<watch::Sender<Option<Why>>>,
    deadline: Instant,
    deadline_secs: u64,
}

impl Stopper {
    /// A run that must end `deadline_secs` from now.
    #[must_use]
    pub fn new(deadline_secs: u64) -> Self {
        Self::until(
            Instant::now() + Duration::from_secs(deadline_secs),
            deadline_secs,
        )
    }

    /// A run that must end at `deadline` (`secs` is how it was configured, for messages).
    #[must_use]
    pub fn until(deadline: Instant, secs: u64) -> Self {
        Stopper {
            tx: Arc::new(watch::channel(None).0),
            deadline,
            deadline_secs: secs,
        }
    }

    /// When the run must end.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Stop the run; the first reason given is the one reported. True if this call stopped it.
    pub fn stop(&self, why: Why) -> bool {
        self.tx.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(why);
                true
            } else {
                false
            }
        })
    }

    /// Why the run is stopped, if it is (a passed deadline counts even before anyone noticed).
    #[must_use]
    pub fn why(&self) -> Option<Why> {
        if Instant::now() >= self.deadline {
            self.stop(Why::Deadline(self.deadline_secs));
        }
        self.tx.borrow().clone()
    }

    /// Resolves when the run is stopped.
    async fn stopped(&self) -> Why {
        let mut rx = self.tx.subscribe();
        tokio::select! {
            r = rx.wait_for(Option::is_some) => {
                if let Ok(v) = r {
                    if let Some(why) = v.clone() {
                        return why;
                    }
                }
                std::future::pending().await
            }
            () = tokio::time::sleep_until(self.deadline.into()) => {
                self.stop(Why::Deadline(self.deadline_secs));
                self.why().unwrap_or(Why::Deadline(self.deadline_secs))
            }
        }
    }

    /// `Err` if the run is stopped: for steps that do not wait (a check between steps).
    pub fn check(&self, during: &str, layer: Layer) -> Result<(), Stopped> {
        match self.why() {
            Some(why) => Err(Stopped {
                why,
                during: during.to_owned(),
                layer,
            }),
            None => Ok(()),
        }
    }

    /// Run one step on `rt`, unless and until the run is stopped: then the step is dropped
    /// where it stands and the answer says why and during what.
    pub fn run<F: Future>(
        &self,
        rt: &tokio::runtime::Runtime,
        during: &str,
        layer: Layer,
        step: F,
    ) -> Result<F::Output, Stopped> {
        self.check(during, layer)?;
        rt.block_on(async {
            tokio::select! {
                biased;
                v = step => Ok(v),
                why = self.stopped() => Err(Stopped { why, during: during.to_owned(), layer }),
            }
        })
    }

    /// Wait `secs` (the settling delay), unless the run is stopped first.
    pub fn sleep(
        &self,
        rt: &tokio::runtime::Runtime,
        secs: u64,
        during: &str,
        layer: Layer,
    ) -> Result<(), Stopped> {
        // Made inside the runtime: a tokio timer needs its context.
        let wait = async move { tokio::time::sleep(Duration::from_secs(secs)).await };
        self.run(rt, during, layer, wait)
    }

    /// Turn SIGINT and SIGTERM into a stop: the first one stops the run (its reports are still
    /// written, its lock released); a second one exits at once with 3. Installed before this
    /// returns, so no signal in between is lost to the default handler.
    pub fn listen(&self, rt: &tokio::runtime::Runtime) {
        use tokio::signal::unix::{signal, SignalKind};
        let _in_rt = rt.enter();
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!(
                "could not listen for SIGINT/SIGTERM: a signal will end the run without reports"
            );
            return;
        };
        let me = self.clone();
        rt.spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            me.stop(Why::Signal(name));
            crate::progress::clear();
            eprintln_now(&format!(
                "{name} received: stopping and writing the reports gathered so far (send it again to exit at once)"
            ));
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln_now("second signal: exiting now without reports (exit 3)");
            exit_now();
        });
    }
}

fn eprintln_now(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

#[allow(clippy::exit)] // why: the user asked twice; the lock's flock dies with the process.
fn exit_now() -> ! {
    std::process::exit(i32::from(crate::exit::ExitStatus::Incomplete.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_first_reason_wins_and_a_stopped_run_starts_no_step() {
        let s = Stopper::new(3600);
        assert_eq!(s.why(), None);
        assert!(s.stop(Why::Signal("SIGTERM")));
        assert!(!s.stop(Why::Signal("SIGINT")));
        assert_eq!(s.why(), Some(Why::Signal("SIGTERM")));
        let r = s.run(&rt(), "reading both sides", Layer::L1, async {
            panic!("a step of a stopped run must not start")
        });
        let stopped: Stopped = r.unwrap_err();
        assert_eq!(stopped.during, "reading both sides");
        assert_eq!(stopped.why, Why::Signal("SIGTERM"));
    }

    #[test]
    fn a_passed_deadline_stops_a_step_that_would_never_end() {
        let s = Stopper::until(Instant::now(), 7);
        let r = s.run(
            &rt(),
            "probing node caches",
            Layer::L2,
            std::future::pending::<()>(),
        );
        assert_eq!(r.unwrap_err().why, Why::Deadline(7));
    }

    #[test]
    fn a_step_that_ends_gives_its_answer() {
        let s = Stopper::new(3600);
        assert_eq!(s.run(&rt(), "x", Layer::L3, async { 42 }), Ok(42));
        assert_eq!(s.check("y", Layer::L3), Ok(()));
        assert_eq!(s.sleep(&rt(), 0, "settling", Layer::L1), Ok(()));
    }

    #[test]
    fn a_stop_makes_the_report_incomplete_whatever_else_it_holds() {
        let stopped = Stopped {
            why: Why::Deadline(5),
            during: "waiting to re-check differences".into(),
            layer: Layer::L1,
        };
        let f = stopped.finding();
        assert_eq!(f.code, Code::SourceError);
        assert!(f.detail.contains("deadline of 5 s"), "{}", f.detail);
        assert!(f.detail.contains("waiting to re-check"), "{}", f.detail);
        // Drift found before the stop does not turn the run into a plain drift failure (1).
        let drift = Finding::new(Code::ConfigMissing, Layer::L1, "public", "G", "a");
        let r = crate::report::Report::new("audit", "r".into(), None, vec![drift, f]);
        assert!(!r.complete);
        assert_eq!(r.status(), crate::exit::ExitStatus::Incomplete);
        assert_eq!(r.exit_code, 3);
    }
}
