//! The API dialects a node may speak (Nacos v1, Nacos 3.x v3 admin, r-nacos), and per endpoint the
//! request each one takes: method, path and parameters. Nothing here does I/O.

use crate::model::ConfigKey;
pub use crate::version::{semver, ServerKind};
use reqwest::Method;
use std::time::Duration;

/// Page size for config, service and instance listings.
pub const PAGE_SIZE: usize = 500;

/// Which API family a node is read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The v1 Open API and console API of Nacos 1.4 and 2.x.
    V1,
    /// Nacos 3.x: the v1 console and v2 admin APIs answer 410 Gone (or 404 without the console);
    /// configs, namespaces, services and cluster data are read through the v3 admin API.
    V3,
    /// r-nacos: the v1 Open API paths without the console state, members or connections APIs.
    RNacos,
}

/// What an endpoint is for, so that every error can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/auth/login`.
    Login,
    /// Server state (version).
    State,
    /// Namespace list.
    Namespaces,
    /// One page of the config list.
    ConfigList,
    /// One config's detail (desc, tags; content on 3.x).
    ConfigDetail,
    /// A namespace's configs as a zip (content, desc, type, appName).
    ConfigExport,
    /// One page of the service list.
    ServiceList,
    /// One service's detail.
    ServiceDetail,
    /// Instances of a service.
    InstanceList,
    /// Cluster members.
    Members,
    /// The listener md5 probe.
    Listener,
    /// One config as the node serves it from its cache.
    Served,
    /// SDK connections held by the node.
    Connections,
    /// Full reload of the node's config cache (repair).
    ReloadAll,
    /// Per-key cache reload through `dataChange` (repair).
    DataChange,
    /// One page of users, roles or permissions (`/v1/auth/*`, see `auth_api`).
    AuthList,
    /// Which clients listen to what, with the md5 each holds (L4).
    Listeners,
}

impl Endpoint {
    /// A short name for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::State => "server state",
            Endpoint::Namespaces => "namespace list",
            Endpoint::ConfigList => "config list",
            Endpoint::ConfigDetail => "config detail",
            Endpoint::ConfigExport => "config export",
            Endpoint::ServiceList => "service list",
            Endpoint::ServiceDetail => "service detail",
            Endpoint::InstanceList => "instance list",
            Endpoint::Members => "cluster members",
            Endpoint::Listener => "listener probe",
            Endpoint::Served => "served config",
            Endpoint::Connections => "SDK connections",
            Endpoint::ReloadAll => "full cache reload",
            Endpoint::DataChange => "dataChange",
            Endpoint::AuthList => "auth list",
            Endpoint::Listeners => "listening clients",
        }
    }
}

/// One request as a dialect spells it.
#[derive(Debug, Clone)]
pub struct Call {
    /// What it is for.
    pub endpoint: Endpoint,
    /// GET or POST (POST parameters go in a form body).
    pub method: Method,
    /// Path below the node's base URL, starting with `/`.
    pub path: &'static str,
    /// Query (GET) or form (POST) parameters.
    pub params: Vec<(&'static str, String)>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// A timeout of its own, for calls known to be slow on big databases.
    pub timeout: Option<Duration>,
    /// The answer is binary (a zip): kept as bytes, not read as text.
    pub binary: bool,
    /// The server answers it from a small bounded queue, which refuses what does not fit with a
    /// 503 (see [`SEARCH_QUEUE`]).
    pub queued: bool,
}

/// How many queued calls ([`Call::queued`]) one node is sent at a time. A 3.x config list page
/// is searched by `ConfigDetailService#findConfigInfoPage`: 2 worker threads take searches from
/// a queue of 4 (`nacos.config.search.max_thread` / `max_capacity` defaults), and a search that
/// does not fit is answered 503 "server limit match". Four keeps room for the console's users.
pub const SEARCH_QUEUE: usize = 4;

impl Call {
    pub(super) fn get(endpoint: Endpoint, path: &'static str) -> Self {
        Call {
            endpoint,
            method: Method::GET,
            path,
            params: Vec::new(),
            headers: Vec::new(),
            timeout: None,
            binary: false,
            queued: false,
        }
    }

    fn post(endpoint: Endpoint, path: &'static str) -> Self {
        Call {
            method: Method::POST,
            ..Call::get(endpoint, path)
        }
    }

    pub(super) fn param(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.params.push((k, v.into()));
        self
    }

    fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }

    /// `GET /v1/cs/configs (config list)`, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} {} ({})", self.method, self.path, self.endpoint.name())
    }
}

/// The v1 API spells the default namespace as an empty tenant.
#[must_use]
pub fn api_tenant(namespace: &str) -> String {
    if namespace == "public" {
        String::new()
    } else {
        namespace.to_owned()
    }
}

/// `groupName@@serviceName`, as the v1 catalog names a service.
fn grouped(group: &str, name: &str) -> String {
    format!("{group}@@{name}")
}

/// The dialect a server speaks (kept beside the dialects, not in `crate::version`).
impl ServerKind {
    /// The API family to read it through.
    #[must_use]
    pub fn dialect(self) -> Dialect {
        match self {
            ServerKind::Nacos(major, _, _) if major >= 3 => Dialect::V3,
            ServerKind::Nacos(..) => Dialect::V1,
            ServerKind::RNacos => Dialect::RNacos,
        }
    }
}

impl Dialect {
    /// `POST /v1/auth/login` (every dialect: Nacos 3.x keeps a v1 login shim, r-nacos serves it).
    #[must_use]
    pub fn login(user: &str, password: &str) -> Call {
        Call::post(Endpoint::Login, "/v1/auth/login")
            .param("username", user)
            .param("password", password)
    }

    /// r-nacos's health check (`openapi/health.rs`: `/nacos/health` answers `success`), the one
    /// path under the context path that tells r-nacos from Nacos (which has no such path) when
    /// neither state API answers.
    #[must_use]
    pub fn rnacos_health() -> Call {
        Call::get(Endpoint::State, "/health")
    }

    /// Server state with the version.
    #[must_use]
    pub fn state(self) -> Call {
        match self {
            Dialect::V3 => Call::get(Endpoint::State, "/v3/admin/core/state"),
            Dialect::V1 | Dialect::RNacos => Call::get(Endpoint::State, "/v1/console/server/state"),
        }
    }

    /// All namespaces.
    #[must_use]
    pub fn namespaces(self) -> Call {
        match self {
            Dialect::V3 => Call::get(Endpoint::Namespaces, "/v3/admin/core/namespace/list"),
            // The server counts each namespace's configs with a full scan of config_info (the
            // Nacos schema has no tenant index): with many namespaces and a big table this takes
            // minutes.
            Dialect::V1 | Dialect::RNacos => Call {
                timeout: Some(Duration::from_secs(600)),
                ..Call::get(Endpoint::Namespaces, "/v1/console/namespaces")
            },
        }
    }

    /// One page of a namespace's configs (`namespace` in its canonical form, `public` for the default).
    #[must_use]
    pub fn config_page(self, namespace: &str, page: usize) -> Call {
        let call = match self {
            // v3 spells the default namespace as `public`, v1 as an empty tenant.
            Dialect::V3 => Call {
                queued: true,
                ..Call::get(Endpoint::ConfigList, "/v3/admin/cs/config/list")
            }
            .param("search", "accurate")
            .param("dataId", "")
            .param("groupName", "")
            .param("namespaceId", namespace),
            Dialect::V1 | Dialect::RNacos => Call::get(Endpoint::ConfigList, "/v1/cs/configs")
                .param("search", "accurate")
                .param("dataId", "")
                .param("group", "")
                .param("tenant", api_tenant(namespace)),
        };
        call.param("pageNo", page.to_string())
            .param("pageSize", PAGE_SIZE.to_string())
    }

    /// How many configs a namespace holds: the first page of its listing, one item long (the
    /// total comes with it).
    #[must_use]
    pub fn config_count(self, namespace: &str) -> Call {
        let mut call = self.config_page(namespace, 1);
        for (k, v) in &mut call.params {
            if *k == "pageSize" {
                *v = "1".to_owned();
            }
        }
        call
    }

    /// A namespace's configs in one zip with content, desc, type and appName (see
    /// [`ServerKind::exports_configs`]). Both versions want `ids` present, even empty (2.x
    /// calls `ids.removeAll` on it). The server builds the whole zip from one query, so it gets
    /// the namespaces listing's long timeout.
    #[must_use]
    pub fn config_export(self, namespace: &str) -> Call {
        let call = match self {
            Dialect::V3 => Call::get(Endpoint::ConfigExport, "/v3/admin/cs/config/export")
                .param("namespaceId", namespace),
            Dialect::V1 | Dialect::RNacos => Call::get(Endpoint::ConfigExport, "/v1/cs/configs")
                .param("exportV2", "true")
                .param("tenant", api_tenant(namespace)),
        };
        Call {
            timeout: Some(Duration::from_secs(600)),
            binary: true,
            ..call.param("ids", "")
        }
    }

    /// The configs of these row ids in one zip, as [`Self::config_export`]: with `ids` the
    /// server selects by id alone (`id IN (...)`, `findAllConfigInfo4Export` of
    /// `ExternalStoragePersistServiceImpl` on 2.x and of `ConfigInfoMapper` on 3.x), so the
    /// ids must come from this namespace's listing.
    #[must_use]
    pub fn config_export_ids(self, namespace: &str, ids: &[u64]) -> Call {
        let mut call = self.config_export(namespace);
        let joined = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        for (k, v) in &mut call.params {
            if *k == "ids" {
                v.clone_from(&joined);
            }
        }
        call
    }

    /// One config's DB-backed detail: desc and tags (`show=all`), and on 3.x content as well.
    #[must_use]
    pub fn config_detail(self, key: &ConfigKey) -> Call {
        match self {
            Dialect::V3 => Call::get(Endpoint::ConfigDetail, "/v3/admin/cs/config")
                .param("dataId", key.data_id.clone())
                .param("groupName", key.group.clone())
                .param("namespaceId", key.namespace.clone()),
            Dialect::V1 | Dialect::RNacos => Call::get(Endpoint::ConfigDetail, "/v1/cs/configs")
                .param("show", "all")
                .param("dataId", key.data_id.clone())
                .param("group", key.group.clone())
                .param("tenant", api_tenant(&key.namespace)),
        }
    }

    /// One page of a namespace's services, all groups.
    #[must_use]
    pub fn service_page(self, namespace: &str, page: usize) -> Call {
        let call = match self {
            Dialect::V3 => Call::get(Endpoint::ServiceList, "/v3/admin/ns/service/list"),
            Dialect::V1 | Dialect::RNacos => {
                Call::get(Endpoint::ServiceList, "/v1/ns/catalog/services")
            }
        }
        .param("namespaceId", namespace)
        .param("pageNo", page.to_string())
        .param("pageSize", PAGE_SIZE.to_string())
        .param("groupNameParam", "")
        .param("serviceNameParam", "");
        match self {
            Dialect::V3 => call.param("ignoreEmptyService", "false"),
            Dialect::V1 | Dialect::RNacos => call
                .param("withInstances", "false")
                .param("hasIpCount", "false"),
        }
    }

    /// One page of a 3.x namespace's services with every instance of each
    /// (`withInstances=true`, see [`crate::nacos::parse::service_page_with_instances`]).
    #[must_use]
    pub fn service_page_with_instances(namespace: &str, page: usize) -> Call {
        Call::get(Endpoint::ServiceList, "/v3/admin/ns/service/list")
            .param("namespaceId", namespace)
            .param("pageNo", page.to_string())
            .param("pageSize", PAGE_SIZE.to_string())
            .param("groupNameParam", "")
            .param("serviceNameParam", "")
            .param("withInstances", "true")
    }

    /// One service's detail (metadata, protect threshold, selector, clusters).
    ///
    /// r-nacos takes the group from a `group@@name` service name only and ignores `groupName`
    /// (`openapi/naming/service.rs`, 0.8.5 and the bed's 0.8.8): asked by the bare name it looks
    /// for the service in `DEFAULT_GROUP` and answers 500 "service not found".
    #[must_use]
    pub fn service_detail(self, namespace: &str, group: &str, name: &str) -> Call {
        let service = match self {
            Dialect::RNacos => grouped(group, name),
            Dialect::V1 | Dialect::V3 => name.to_owned(),
        };
        match self {
            Dialect::V3 => Call::get(Endpoint::ServiceDetail, "/v3/admin/ns/service"),
            Dialect::V1 | Dialect::RNacos => Call::get(Endpoint::ServiceDetail, "/v1/ns/service"),
        }
        .param("namespaceId", namespace)
        .param("serviceName", service)
        .param("groupName", group)
    }

    /// Instances of a service: on v1 one page of one cluster (the console catalog, disabled
    /// instances included); on 3.x every instance at once (no paging, no cluster filter).
    #[must_use]
    pub fn instances(
        self,
        namespace: &str,
        group: &str,
        name: &str,
        cluster: &str,
        page: usize,
    ) -> Call {
        match self {
            Dialect::V3 => Call::get(Endpoint::InstanceList, "/v3/admin/ns/instance/list")
                .param("namespaceId", namespace)
                .param("serviceName", name)
                .param("groupName", group)
                .param("healthyOnly", "false"),
            Dialect::V1 | Dialect::RNacos => {
                Call::get(Endpoint::InstanceList, "/v1/ns/catalog/instances")
                    .param("namespaceId", namespace)
                    .param("serviceName", grouped(group, name))
                    .param("groupName", group)
                    .param("clusterName", cluster)
                    .param("pageNo", page.to_string())
                    .param("pageSize", PAGE_SIZE.to_string())
            }
        }
    }

    /// Cluster members.
    #[must_use]
    pub fn members(self) -> Call {
        match self {
            Dialect::V3 => Call::get(Endpoint::Members, "/v3/admin/core/cluster/node/list"),
            Dialect::V1 | Dialect::RNacos => Call::get(Endpoint::Members, "/v1/core/cluster/nodes"),
        }
    }

    /// SDK connections (Nacos ≥ 2.0).
    #[must_use]
    pub fn connections(self) -> Call {
        match self {
            Dialect::V3 => Call::get(Endpoint::Connections, "/v3/admin/core/loader/current"),
            Dialect::V1 | Dialect::RNacos => {
                Call::get(Endpoint::Connections, "/v2/core/loader/current")
            }
        }
    }

    /// The listener md5 probe with its `Listening-Configs` body (every dialect serves the v1
    /// listener; it stays an open API on 3.x). The node answers at once, without holding the
    /// request for the long-poll timeout.
    #[must_use]
    pub fn listener(listening_configs: String) -> Call {
        Call::post(Endpoint::Listener, "/v1/cs/configs/listener")
            .param("Listening-Configs", listening_configs)
            .header("Long-Pulling-Timeout", "30000")
            .header("Long-Pulling-Timeout-No-Hangup", "true")
    }

    /// One config as the node serves it (plain v1 GET on every dialect).
    #[must_use]
    pub fn served(namespace: &str, group: &str, data_id: &str) -> Call {
        Call::get(Endpoint::Served, "/v1/cs/configs")
            .param("dataId", data_id)
            .param("group", group)
            .param("tenant", api_tenant(namespace))
    }

    /// Full reload of the node's cache from its DB (3.x: the v1 ops API is off by default; the
    /// v3 admin API replaces it).
    #[must_use]
    pub fn reload_all(self) -> Call {
        match self {
            Dialect::V3 => Call::post(Endpoint::ReloadAll, "/v3/admin/cs/ops/localCache"),
            Dialect::V1 | Dialect::RNacos => {
                Call::post(Endpoint::ReloadAll, "/v1/cs/ops/localCache")
            }
        }
    }

    /// Per-key reload through `GET /v1/cs/communication/dataChange` (Nacos ≤ 2.2.0) with a
    /// fresh `lastModified`, so the node's timestamp check lets the dump through.
    #[must_use]
    pub fn data_change(namespace: &str, group: &str, data_id: &str, now_ms: u128) -> Call {
        let call = Call::get(Endpoint::DataChange, "/v1/cs/communication/dataChange")
            .param("dataId", data_id)
            .param("group", group)
            .header("lastModified", now_ms.to_string());
        let tenant = api_tenant(namespace);
        if tenant.is_empty() {
            call
        } else {
            call.param("tenant", tenant)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_known_by_family_and_nothing_else_passes() {
        use ServerKind::*;
        for (v, want) in [
            ("2.3.2", Some(Nacos(2, 3, 2))),
            ("v2.0.4", Some(Nacos(2, 0, 4))),
            ("3.1.0-bugfix", Some(Nacos(3, 1, 0))),
            ("1.4.8", Some(Nacos(1, 4, 8))),
            ("r-nacos", Some(RNacos)),
            ("r-nacos 0.8.8", Some(RNacos)),
            ("rnacos-v0.8.8", Some(RNacos)),
            ("4.0.0", None),
            ("0.9.0", None),
            ("unknown", None),
            ("", None),
            ("2.3", None),
            ("2.3.x", None),
            ("r-nacos!", None),
        ] {
            assert_eq!(ServerKind::parse(v), want, "{v}");
        }
        assert_eq!(Nacos(3, 0, 0).dialect(), Dialect::V3);
        assert_eq!(Nacos(2, 5, 1).dialect(), Dialect::V1);
        assert!(!Nacos(1, 4, 8).lists_connections() && Nacos(2, 0, 4).lists_connections());
        assert!(!RNacos.lists_members() && !RNacos.has_config_detail());
    }

    #[test]
    fn each_dialect_spells_the_default_namespace_its_own_way() {
        let v1 = Dialect::V1.config_page("public", 2);
        assert_eq!(v1.path, "/v1/cs/configs");
        assert!(v1.params.contains(&("tenant", String::new())));
        assert!(v1.params.contains(&("pageNo", "2".into())));
        let v3 = Dialect::V3.config_page("public", 1);
        assert_eq!(v3.path, "/v3/admin/cs/config/list");
        assert!(v3.params.contains(&("namespaceId", "public".into())));
        assert!(v3.params.contains(&("groupName", String::new())));
    }

    #[test]
    fn data_change_names_a_tenant_only_outside_the_default_namespace() {
        let c = Dialect::data_change("public", "G", "d", 7);
        assert!(c.params.iter().all(|(k, _)| *k != "tenant"));
        assert_eq!(c.headers, vec![("lastModified".to_owned(), "7".to_owned())]);
        let c = Dialect::data_change("prod", "G", "d", 7);
        assert!(c.params.contains(&("tenant", "prod".into())));
    }

    #[test]
    fn r_nacos_service_detail_names_the_service_with_its_group() {
        let c = Dialect::RNacos.service_detail("ns", "G", "svc");
        assert!(c.params.contains(&("serviceName", "G@@svc".into())));
        for d in [Dialect::V1, Dialect::V3] {
            let c = d.service_detail("ns", "G", "svc");
            assert!(c.params.contains(&("serviceName", "svc".into())));
            assert!(c.params.contains(&("groupName", "G".into())));
        }
    }

    #[test]
    fn v1_instances_name_the_service_with_its_group() {
        let c = Dialect::V1.instances("ns", "G", "svc", "DEFAULT", 1);
        assert!(c.params.contains(&("serviceName", "G@@svc".into())));
        let c = Dialect::V3.instances("ns", "G", "svc", "DEFAULT", 1);
        assert!(c.params.contains(&("serviceName", "svc".into())));
        assert!(c.params.iter().all(|(k, _)| *k != "pageNo"));
    }
}
