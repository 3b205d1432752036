//! The run's context: each side's handles (node clients logged in once, a DB pool) built exactly
//! once per run and borrowed by every stage, the async runtime, and the namespace filters.
//!
//! Like ripgrep's `HiArgs`, what the stages share is built up front from the settings; a stage
//! never builds a client or a pool of its own, and the pools are closed by their owner here.

use crate::capture::{self, NamespaceFilter, Nodes, SideHandles};
use crate::db;
use crate::diff::Scope;
use crate::error::{Error, ErrorKind, Result};
use crate::model::Side;
use crate::settings::{Settings, SideSettings};
use std::sync::Arc;
use std::time::Instant;

/// What every stage of one run borrows: both sides' node clients and DB pools.
pub struct RunContext {
    /// Both sides' node clients: each node logs in once, and one found down stays down.
    pub nodes: Nodes,
    /// The source's DB pool (`None`: no DB configured).
    source_db: Option<db::Handle>,
    /// The target's DB pool (`None`: no DB configured).
    target_db: Option<db::Handle>,
    /// Accounts are read through the auth API: L1 cannot compare them (a side has no DB).
    accounts_by_api: bool,
    /// API configs keep digests only (an audit), not content (a snapshot file).
    api_digests_only: bool,
}

fn accounts_by_api(settings: &Settings) -> bool {
    settings.source.db.is_none() || settings.target.db.is_none()
}

/// A side's DB pool, made once (no connection is made yet); statements end by `deadline`.
fn open_db(conf: &SideSettings, settings: &Settings, deadline: Instant) -> Option<db::Handle> {
    let dsn = conf.db.as_deref()?;
    Some(db::NacosDb::new(
        dsn,
        conf.db_password.as_ref(),
        settings.timeout_secs,
        Some(deadline),
    ))
}

impl RunContext {
    /// Both sides' handles, for a run that ends by `deadline`.
    #[must_use]
    pub fn new(settings: &Settings, deadline: Instant) -> Self {
        RunContext {
            nodes: Nodes::new(settings),
            source_db: open_db(&settings.source, settings, deadline),
            target_db: open_db(&settings.target, settings, deadline),
            accounts_by_api: accounts_by_api(settings),
            api_digests_only: true,
        }
    }

    /// One side's handles only (`snapshot` reads one side).
    #[must_use]
    pub fn for_side(settings: &Settings, side: Side, deadline: Instant) -> Self {
        let conf = side_conf(settings, side);
        let built = capture::nodes(conf, settings);
        let db = open_db(conf, settings, deadline);
        let (source, target) = match side {
            Side::Source => ((built, db), (Vec::new(), None)),
            Side::Target => ((Vec::new(), None), (built, db)),
        };
        RunContext {
            nodes: Nodes {
                source: source.0,
                target: target.0,
            },
            source_db: source.1,
            target_db: target.1,
            accounts_by_api: accounts_by_api(settings),
            api_digests_only: false,
        }
    }

    /// A side's DB pool, if it has a DB.
    #[must_use]
    pub fn db(&self, side: Side) -> Option<&db::Handle> {
        match side {
            Side::Source => self.source_db.as_ref(),
            Side::Target => self.target_db.as_ref(),
        }
    }

    /// A side's handles, for a stage.
    #[must_use]
    pub fn side(&self, side: Side) -> SideHandles<'_> {
        SideHandles {
            nodes: self.nodes.side(side),
            db: self.db(side),
            accounts_by_api: self.accounts_by_api,
            api_digests_only: self.api_digests_only,
        }
    }

    /// The databases are done with: kill what a stopped run left running and close the pools.
    /// Idempotent; called on the runtime that used the pools.
    pub async fn close_dbs(&self) {
        let pools = [&self.source_db, &self.target_db];
        let open = pools.iter().filter_map(|h| h.as_ref()?.as_ref().ok());
        futures::future::join_all(open.map(db::NacosDb::close)).await;
    }
}

/// A side's settings.
#[must_use]
pub fn side_conf(settings: &Settings, side: Side) -> &SideSettings {
    match side {
        Side::Source => &settings.source,
        Side::Target => &settings.target,
    }
}

/// The multi-threaded runtime the async I/O runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::with_source(ErrorKind::Source, "starting the async runtime", e))
}

/// Namespace filters for both sides, from the scope (source ids for the source, mapped ids for the target).
pub(crate) fn filters(scope: &Arc<Scope>) -> (NamespaceFilter, NamespaceFilter) {
    let s = scope.clone();
    let t = scope.clone();
    (
        Arc::new(move |ns: &str| s.namespace_in_scope(&crate::model::canonical_namespace(ns))),
        Arc::new(move |ns: &str| t.namespace_in_scope(&t.to_source(ns))),
    )
}

/// The audited namespaces (`--namespace`) in the target's ids, after `[namespace_map]`.
pub(crate) fn target_namespaces(settings: &Settings, scope: &Scope) -> Vec<String> {
    settings
        .namespaces
        .iter()
        .map(|n| scope.to_target(n))
        .collect()
}
