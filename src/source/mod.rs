//! Capturing one side: reads its DB and/or its Nacos nodes concurrently into a `SideSnapshot`.
//!
//! Read failures do not stop the capture: they are recorded as `CaptureError`s and become
//! `source-error` findings, so a partial audit is reported as incomplete, never as clean.

pub mod grpc;
pub mod mysql;
pub mod nacos;

use crate::model::{ApiSnapshot, CaptureError, DbSnapshot, Side, SideSnapshot};
use crate::settings::{Settings, SideSettings};
use futures::stream::{self, StreamExt};
use nacos::NacosNode;
use std::sync::Arc;

/// Which namespaces (in this side's own ids) to read.
pub type NamespaceFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Build the node clients of a side.
#[must_use]
pub fn nodes(side: &SideSettings, settings: &Settings) -> Vec<Arc<NacosNode>> {
    let http = nacos::http_client(settings.timeout_secs);
    side.nacos
        .iter()
        .map(|u| {
            Arc::new(NacosNode::new(
                http.clone(),
                u,
                side.nacos_username.clone(),
                side.nacos_password.clone(),
                settings.concurrency,
                settings.retries,
            ))
        })
        .collect()
}

/// Capture a side from whatever it has configured.
///
/// `also` names namespaces to scan even if the side does not list them (a namespace row lost on the
/// target still has its configs and services, which should not then be reported missing as well).
pub async fn capture(
    side: Side,
    conf: &SideSettings,
    settings: &Settings,
    wanted: NamespaceFilter,
    also: &[String],
) -> SideSnapshot {
    let db = async {
        match &conf.db {
            Some(dsn) => Some(capture_db(dsn, conf, settings, wanted.clone()).await),
            None => None,
        }
    };
    let api = async {
        if conf.nacos.is_empty() {
            None
        } else {
            Some(capture_api(&nodes(conf, settings), wanted.clone(), also).await)
        }
    };
    let (db, api) = tokio::join!(db, api);
    SideSnapshot {
        schema_version: crate::model::SNAPSHOT_SCHEMA_VERSION,
        side: Some(side),
        db,
        api,
    }
}

async fn capture_db(
    dsn: &str,
    conf: &SideSettings,
    settings: &Settings,
    wanted: NamespaceFilter,
) -> DbSnapshot {
    let mut snap = DbSnapshot {
        origin: dsn.to_owned(),
        ..DbSnapshot::default()
    };
    let db = match mysql::NacosDb::new(dsn, conf.db_password.as_ref(), settings.timeout_secs) {
        Ok(db) => db,
        Err(e) => {
            snap.errors.push(CaptureError {
                origin: dsn.to_owned(),
                namespace: None,
                message: e.0,
            });
            return snap;
        }
    };
    let result = async {
        let mut conn = db.conn().await?;
        let tables = db.tables(&mut conn).await?;
        if !tables.iter().any(|t| t.eq_ignore_ascii_case("config_info")) {
            return Err(mysql::DbError(format!(
                "database {dsn}: no `config_info` table: is this a Nacos database?"
            )));
        }
        let namespaces = db.namespaces(&mut conn).await?;
        drop(conn);
        let configs = db.configs(&tables).await?;
        let deleted = if tables
            .iter()
            .any(|t| t.eq_ignore_ascii_case("his_config_info"))
        {
            db.deleted(0).await?
        } else {
            (Vec::new(), None)
        };
        Ok((namespaces, configs, deleted))
    }
    .await;
    match result {
        Ok((namespaces, configs, (deleted, max_nid))) => {
            snap.namespaces = namespaces.into_iter().filter(|n| wanted(&n.id)).collect();
            snap.configs = configs
                .into_iter()
                .filter(|c| wanted(&c.key.namespace))
                .collect();
            snap.deleted = deleted
                .into_iter()
                .filter(|k| wanted(&k.namespace))
                .collect();
            snap.max_his_nid = max_nid;
        }
        Err(e) => snap.errors.push(CaptureError {
            origin: dsn.to_owned(),
            namespace: None,
            message: e.0,
        }),
    }
    db.close().await;
    snap
}

/// Capture the cluster-wide data through the API: every node is checked, data is read from the first healthy one.
pub async fn capture_api(
    nodes: &[Arc<NacosNode>],
    wanted: NamespaceFilter,
    also: &[String],
) -> ApiSnapshot {
    let mut snap = ApiSnapshot {
        version: "unknown".into(),
        ..ApiSnapshot::default()
    };
    let checks = futures::future::join_all(nodes.iter().map(|n| async move {
        n.login().await?;
        n.version().await
    }))
    .await;
    let mut healthy: Option<Arc<NacosNode>> = None;
    for (node, r) in nodes.iter().zip(checks) {
        match r {
            Ok(v) => {
                if healthy.is_none() {
                    healthy = Some(node.clone());
                    snap.version = v;
                }
            }
            Err(e) => snap.errors.push(CaptureError {
                origin: node.base.clone(),
                namespace: None,
                message: e.message,
            }),
        }
    }
    let Some(node) = healthy else {
        snap.origin = nodes.first().map(|n| n.base.clone()).unwrap_or_default();
        return snap;
    };
    snap.origin = node.base.clone();
    let namespaces = match node.namespaces().await {
        Ok(ns) => ns.into_iter().filter(|n| wanted(&n.id)).collect::<Vec<_>>(),
        Err(e) => {
            snap.errors.push(CaptureError {
                origin: node.base.clone(),
                namespace: None,
                message: e.message,
            });
            return snap;
        }
    };
    // Configs and services of every namespace, concurrently (the node's semaphore bounds the load).
    let mut scan: Vec<String> = namespaces.iter().map(|n| n.id.clone()).collect();
    for ns in also {
        let ns = crate::model::canonical_namespace(ns);
        if wanted(&ns) && !scan.contains(&ns) {
            scan.push(ns);
        }
    }
    let per_ns = futures::future::join_all(scan.iter().map(|ns| {
        let node = node.clone();
        let id = ns.clone();
        async move {
            let configs = async {
                let items = node.configs(&id).await?;
                // desc and tags are only in the DB-backed detail view: one request per config, bounded.
                let results: Vec<Result<crate::model::ConfigItem, nacos::NodeError>> =
                    stream::iter(items)
                        .map(|mut it| {
                            let node = node.clone();
                            async move {
                                node.config_detail(&mut it).await?;
                                Ok(it)
                            }
                        })
                        .buffer_unordered(16)
                        .collect()
                        .await;
                results.into_iter().collect::<Result<Vec<_>, _>>()
            };
            let services = async {
                let names = node.service_names(&id).await?;
                let results: Vec<Result<crate::model::Service, nacos::NodeError>> =
                    stream::iter(names)
                        .map(|(g, n)| {
                            let node = node.clone();
                            let id = id.clone();
                            async move { node.service(&id, &g, &n).await }
                        })
                        .buffer_unordered(16)
                        .collect()
                        .await;
                results.into_iter().collect::<Result<Vec<_>, _>>()
            };
            let (c, s) = tokio::join!(configs, services);
            (id, c, s)
        }
    }))
    .await;
    snap.namespaces = namespaces;
    for (id, c, s) in per_ns {
        match c {
            Ok(c) => snap.configs.extend(c),
            Err(e) => snap.errors.push(CaptureError {
                origin: node.base.clone(),
                namespace: Some(id.clone()),
                message: e.message,
            }),
        }
        match s {
            Ok(s) => snap.services.extend(s),
            Err(e) => snap.errors.push(CaptureError {
                origin: node.base.clone(),
                namespace: Some(id),
                message: e.message,
            }),
        }
    }
    snap.configs.sort_by(|a, b| a.key.cmp(&b.key));
    snap.services.sort_by(|a, b| a.key.cmp(&b.key));
    snap
}
