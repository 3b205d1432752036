//! `nacos-drift audit`: settings resolved and checked, then the run ([`crate::run::audit`]).

use crate::cli::AuditArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::exit::ExitStatus;
use crate::settings::{self, Inputs};

/// `nacos-drift audit`: the flags checked against each other, then the audit run.
pub(crate) fn run(a: &AuditArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<ExitStatus> {
    let settings = settings::resolve(&Inputs {
        sides: Some(&a.sides),
        report: Some(&a.report),
        config: a.sides.config.as_deref(),
        namespaces: &[],
        settle: a.settle,
        state: a.state.as_deref(),
        no_probe: a.no_probe,
        env,
    })?;
    super::check_since(&settings)?;
    settings.check_comparable()?;
    if (a.dry_run || a.fix_source) && !a.fix {
        return Err(Error::new(
            ErrorKind::Usage,
            "--dry-run and --fix-source only make sense with --fix",
        ));
    }
    if a.fix && !settings.probe {
        return Err(Error::new(
            ErrorKind::Usage,
            "--fix needs the L2 probe: drop --no-probe (or `probe = false` in [audit])",
        ));
    }
    if a.check_config {
        print!("{}", crate::check_config::describe(&settings));
        return Ok(ExitStatus::Clean);
    }
    crate::run::audit(a, &settings)
}
