//! Reading one side through its Nacos nodes' HTTP API (L3): namespaces, configs, services.

use super::*;
use crate::model::{ConfigKey, ServiceKey};
use std::collections::{BTreeMap, BTreeSet};

/// Capture the cluster-wide data through the API: every node is checked, data is read from the first healthy one.
///
/// With `digests_only`, each namespace's configs keep their MD5 and drop their content as soon
/// as they are read, where the node can give one config's content again by key (the DB-backed
/// detail view): an audit holds a 32-character hex digest per config instead of its content (at
/// 100,000 configs a side that was most of the memory), and fetches the content of the few that
/// differ after comparing ([`crate::run`]'s `fill_api_diffs`).
pub async fn capture_api(
    side: Side,
    nodes: &[Arc<NacosNode>],
    wanted: NamespaceFilter,
    also: &[String],
    digests_only: bool,
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
    // r-nacos has no by-key view to give content back later: it keeps content.
    let digests_only = digests_only && node.gives_config_by_key().await;
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
        let (node, id, progress) = (node.clone(), ns.clone(), progress.clone());
        async move {
            let configs = async {
                let read = namespace_configs(&node, cplan, &id, &progress).await;
                match read {
                    Ok((items, without_desc)) if digests_only => {
                        digests_of(items).await.map(|d| (d, without_desc))
                    }
                    other => other,
                }
            };
            let services = namespace_services(&node, &id, &progress, None);
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
    finish(&mut snap);
    ticker.abort();
    crate::progress::rate(&progress, node.sent(), started.elapsed());
    snap
}

/// `items` with their MD5 filled in from content and content dropped, hashed on rayon (not on
/// the async runtime's threads).
async fn digests_of(
    mut items: Vec<crate::model::ConfigItem>,
) -> Result<Vec<crate::model::ConfigItem>, nacos::NodeError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        crate::diff::hash_contents(&mut items);
        for it in &mut items {
            it.content = None;
        }
        // The receiver only goes away with the run itself.
        let _ = tx.send(items);
    });
    // Never an empty list in place of what was read: the namespace is then not read.
    rx.await.map_err(|_| nacos::NodeError {
        message: "hashing the configs read failed".into(),
        transient: false,
        status: None,
    })
}

/// A namespace's configs as `plan` reads them, and whether some came without a desc.
async fn namespace_configs(
    node: &Arc<NacosNode>,
    plan: ConfigPlan,
    id: &str,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<crate::model::ConfigItem>, bool), nacos::NodeError> {
    let items = match plan {
        ConfigPlan::Export => {
            let items = node.configs_exported(id).await?;
            progress.inc_length(items.len() as u64);
            progress.inc(items.len() as u64);
            return Ok((items, false));
        }
        ConfigPlan::List => {
            let (items, without_desc) = node.configs(id).await?;
            progress.inc_length(items.len() as u64);
            progress.inc(items.len() as u64);
            return Ok((items, without_desc));
        }
        ConfigPlan::ListThenDetail => node.configs(id).await?.0,
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
}

#[allow(clippy::type_complexity)] // why: one local list, (key, instances if listed).
/// A namespace's services with their instances; with `only`, just those `(group, name)` of
/// them (the listing still says which exist).
async fn namespace_services(
    node: &Arc<NacosNode>,
    id: &str,
    progress: &indicatif::ProgressBar,
    only: Option<&BTreeSet<(String, String)>>,
) -> Result<Vec<crate::model::Service>, nacos::NodeError> {
    // 3.x: the list pages carry every instance, so only the detail is per service.
    // Each service with its instances when the listing carried them.
    let mut listed: Vec<((String, String), Option<Vec<crate::model::Instance>>)> =
        if node.lists_instances_with_services().await? {
            node.services_with_instances(id)
                .await?
                .into_iter()
                .map(|(k, i)| (k, Some(i)))
                .collect()
        } else {
            node.service_names(id)
                .await?
                .into_iter()
                .map(|k| (k, None))
                .collect()
        };
    if let Some(only) = only {
        listed.retain(|(k, _)| only.contains(k));
    }
    progress.inc_length(listed.len() as u64);
    let results: Vec<Result<_, nacos::NodeError>> = stream::iter(listed)
        .map(|((g, n), instances)| {
            let node = node.clone();
            let progress = progress.clone();
            async move {
                let s = match instances {
                    Some(i) => node.service_with(id, &g, &n, i).await,
                    None => node.service(id, &g, &n).await,
                };
                progress.inc(1);
                s.map(|s| s.ok_or((g, n)))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut services = Vec::new();
    let mut gone = Vec::new();
    for r in results {
        match r? {
            Ok(s) => services.push(s),
            Err(key) => gone.push(key),
        }
    }
    confirm_gone(node, id, gone).await?;
    Ok(services)
}

/// Services listed, then answered "not found" by their detail: dropped if a second listing no
/// longer has them (removed while the namespace was read, as Nacos 2.x's empty-service cleaner
/// does), an error if it still does. A node that lists a service it cannot show must not pass as
/// one without it: r-nacos asked by the bare name answered "not found" for every service outside
/// `DEFAULT_GROUP`.
async fn confirm_gone(
    node: &Arc<NacosNode>,
    id: &str,
    mut gone: Vec<(String, String)>,
) -> Result<(), nacos::NodeError> {
    if gone.is_empty() {
        return Ok(());
    }
    gone.sort();
    let still: BTreeSet<(String, String)> = node.service_names(id).await?.into_iter().collect();
    if let Some((g, n)) = gone.iter().find(|k| still.contains(*k)) {
        return Err(nacos::NodeError {
            message: format!(
                "{}: namespace `{id}` lists service `{g}@@{n}` but its detail answers that it does not exist",
                node.base
            ),
            transient: false,
            status: None,
        });
    }
    for (g, n) in &gone {
        tracing::info!(
            "{}: service `{g}@@{n}` of namespace `{id}` was removed while it was read; not compared",
            node.base
        );
    }
    Ok(())
}

/// The settling re-check of one side through the API: only what `plan` names (side terms),
/// from the node the first pass read. The snapshot holds just that (and the first pass's
/// namespaces), so comparing two of them finds nothing outside the plan.
pub(crate) async fn recheck_api(
    side: Side,
    nodes: &[Arc<NacosNode>],
    first: &ApiSnapshot,
    plan: &ApiRecheck,
) -> ApiSnapshot {
    let mut snap = ApiSnapshot {
        origin: first.origin.clone(),
        version: first.version.clone(),
        namespaces: first.namespaces.clone(),
        config_fields_unread: first.config_fields_unread.clone(),
        ..ApiSnapshot::default()
    };
    let Some(node) = nodes
        .iter()
        .find(|n| n.base == first.origin)
        .or(nodes.first())
        .cloned()
    else {
        return snap;
    };
    let progress = crate::progress::bar(side);
    let fail = |ns: Option<&str>, e: nacos::NodeError| CaptureError {
        origin: node.base.clone(),
        namespace: ns.map(str::to_owned),
        message: e.message,
    };
    let cplan = match node.config_plan(node.config_meta).await {
        Ok((p, _)) => p,
        Err(e) => {
            snap.errors.push(fail(None, e));
            return snap;
        }
    };
    let whole = futures::future::join_all(plan.config_namespaces.iter().map(|ns| {
        let (node, progress) = (node.clone(), progress.clone());
        async move { (ns, namespace_configs(&node, cplan, ns, &progress).await) }
    }));
    let keys = stream::iter(plan.config_keys.iter().cloned())
        .map(|k| {
            let node = node.clone();
            async move {
                let r = node.config_by_key(&k).await;
                (k, r)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let mut by_ns: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    for s in &plan.services {
        by_ns
            .entry(s.namespace.as_str())
            .or_default()
            .insert((s.group.clone(), s.name.clone()));
    }
    let services = futures::future::join_all(by_ns.iter().map(|(ns, only)| {
        let (node, progress) = (node.clone(), progress.clone());
        async move {
            (
                *ns,
                namespace_services(&node, ns, &progress, Some(only)).await,
            )
        }
    }));
    let (whole, keys, services) = tokio::join!(whole, keys, services);
    for (ns, r) in whole {
        match r {
            Ok((c, _)) => snap.configs.extend(c),
            Err(e) => snap.errors.push(fail(Some(ns), e)),
        }
    }
    for (k, r) in keys {
        match r {
            Ok(c) => snap.configs.extend(c),
            Err(e) => snap.errors.push(fail(Some(&k.namespace), e)),
        }
    }
    for (ns, r) in services {
        match r {
            Ok(s) => snap.services.extend(s),
            Err(e) => snap.errors.push(fail(Some(ns), e)),
        }
    }
    finish(&mut snap);
    snap
}

/// The last step of every API read (first pass and re-check alike): a field not compared is not
/// kept either, so a snapshot file says what it holds; configs and services in key order.
fn finish(snap: &mut ApiSnapshot) {
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
}

/// What the settling re-check reads again through the API: only what differed at L3.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ApiRecheck {
    /// Namespaces whose configs are read whole.
    pub(crate) config_namespaces: BTreeSet<String>,
    /// Configs read one by one (the DB-backed detail view).
    pub(crate) config_keys: BTreeSet<ConfigKey>,
    /// Services read one by one (their namespace's listing says whether they exist).
    pub(crate) services: BTreeSet<ServiceKey>,
}

impl ApiRecheck {
    /// The same plan in the other side's namespace terms.
    pub(crate) fn mapped(&self, to: impl Fn(&str) -> String) -> ApiRecheck {
        ApiRecheck {
            config_namespaces: self.config_namespaces.iter().map(|n| to(n)).collect(),
            config_keys: self
                .config_keys
                .iter()
                .map(|k| ConfigKey {
                    namespace: to(&k.namespace),
                    ..k.clone()
                })
                .collect(),
            services: self
                .services
                .iter()
                .map(|k| ServiceKey {
                    namespace: to(&k.namespace),
                    ..k.clone()
                })
                .collect(),
        }
    }
}
