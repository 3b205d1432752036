//! Reading one side through its Nacos nodes' HTTP API (L3): namespaces, configs, services.

use super::*;

/// Capture the cluster-wide data through the API: every node is checked, data is read from the first healthy one.
pub async fn capture_api(
    side: Side,
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
    let (cplan, unread) = match node.config_plan(node.config_meta).await {
        Ok(p) => p,
        Err(e) => {
            snap.errors.push(CaptureError {
                origin: node.base.clone(),
                namespace: None,
                message: e.message,
            });
            return snap;
        }
    };
    for (field, why) in unread {
        snap.config_fields_unread.insert(field.to_owned(), why);
    }
    let progress = crate::progress::bar(side);
    // The request rate on the side's line, refreshed while the read runs.
    let started = std::time::Instant::now();
    let ticker = tokio::spawn({
        let (node, progress) = (node.clone(), progress.clone());
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                crate::progress::rate(&progress, node.sent(), started.elapsed());
            }
        }
    });
    let per_ns = futures::future::join_all(scan.iter().map(|ns| {
        let node = node.clone();
        let id = ns.clone();
        let progress = progress.clone();
        async move {
            let configs = async {
                let items = match cplan {
                    ConfigPlan::Export => {
                        let items = node.configs_exported(&id).await?;
                        progress.inc_length(items.len() as u64);
                        progress.inc(items.len() as u64);
                        return Ok((items, false));
                    }
                    ConfigPlan::List => {
                        let (items, without_desc) = node.configs(&id).await?;
                        progress.inc_length(items.len() as u64);
                        progress.inc(items.len() as u64);
                        return Ok((items, without_desc));
                    }
                    ConfigPlan::ListThenDetail => node.configs(&id).await?.0,
                };
                progress.inc_length(items.len() as u64);
                // desc and tags are only in the DB-backed detail view: one request per config, bounded.
                let results: Vec<Result<Option<crate::model::ConfigItem>, nacos::NodeError>> =
                    stream::iter(items)
                        .map(|mut it| {
                            let node = node.clone();
                            let progress = progress.clone();
                            async move {
                                let found = node.config_detail(&mut it).await;
                                progress.inc(1);
                                let found = found?;
                                // On 3.x the detail is where content comes from: a config deleted
                                // since the listing is dropped, not compared as empty.
                                Ok((found || !node.is_v3()).then_some(it))
                            }
                        })
                        .buffer_unordered(16)
                        .collect()
                        .await;
                results
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| (v.into_iter().flatten().collect::<Vec<_>>(), false))
            };
            let services = async {
                // 3.x: the list pages carry every instance, so only the detail is per service.
                let listed: Vec<((String, String), Option<Vec<crate::model::Instance>>)> =
                    if node.lists_instances_with_services().await? {
                        node.services_with_instances(&id)
                            .await?
                            .into_iter()
                            .map(|(k, i)| (k, Some(i)))
                            .collect()
                    } else {
                        node.service_names(&id)
                            .await?
                            .into_iter()
                            .map(|k| (k, None))
                            .collect()
                    };
                progress.inc_length(listed.len() as u64);
                let results: Vec<Result<crate::model::Service, nacos::NodeError>> =
                    stream::iter(listed)
                        .map(|((g, n), instances)| {
                            let node = node.clone();
                            let id = id.clone();
                            let progress = progress.clone();
                            async move {
                                let s = match instances {
                                    Some(i) => node.service_with(&id, &g, &n, i).await,
                                    None => node.service(&id, &g, &n).await,
                                };
                                progress.inc(1);
                                s
                            }
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
            Ok((c, without_desc)) => {
                if without_desc {
                    snap.config_fields_unread.insert(
                        "desc".into(),
                        "the config list does not carry it on this server".into(),
                    );
                }
                snap.configs.extend(c);
            }
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
    // A field not compared is not kept either: a snapshot file says what it holds.
    let (no_desc, no_tags) = (
        snap.config_fields_unread.contains_key("desc"),
        snap.config_fields_unread.contains_key("tags"),
    );
    for c in &mut snap.configs {
        if no_desc {
            c.desc.clear();
        }
        if no_tags {
            c.tags.clear();
        }
    }
    snap.configs.sort_by(|a, b| a.key.cmp(&b.key));
    snap.services.sort_by(|a, b| a.key.cmp(&b.key));
    ticker.abort();
    crate::progress::rate(&progress, node.sent(), started.elapsed());
    snap
}
