//! Reading a namespace's services with the fewest requests the node's version allows.
//!
//! | server | service list + instances | protect threshold, selector, service metadata |
//! |---|---|---|
//! | Nacos 1.x / 2.x, r-nacos | list pages, then per service one instance page per cluster | one detail per service |
//! | Nacos 3.x | `service/list?withInstances=true` pages carry every instance of every cluster | one detail per service |
//!
//! The v1 catalog's `withInstances=true` on 2.x (`CatalogController#listDetail` →
//! `CatalogServiceV2Impl#pageListServiceDetail`) answers a bare list (no total to check the
//! paging against) of `IpAddressInfo` hosts, which have no `ephemeral` flag: v1 keeps the
//! per-service instance pages. No version's bulk form carries protect threshold and selector,
//! so the detail stays one request per service. On 3.x the per-service instance list
//! (`/v3/admin/ns/instance/list`) would also need one request per cluster: without
//! `clusterName` it answers the `DEFAULT` cluster only (`InstanceListForm`).

use super::dialect::{Dialect, PAGE_SIZE};
use super::{parse, NacosNode, NodeError};
use crate::model::{Instance, Service};

impl NacosNode {
    /// Every service of a 3.x namespace with all its instances, from the `withInstances` list
    /// pages, paged by count and checked against the total like the plain listing.
    pub async fn services_with_instances(
        &self,
        namespace: &str,
    ) -> Result<Vec<parse::naming::Listed>, NodeError> {
        let mut out = Vec::new();
        let mut page = 1usize;
        let (total, call) = loop {
            let (d, call, resp) = self
                .call(|_| Dialect::service_page_with_instances(namespace, page))
                .await?;
            let p = self.read(d, &call, &resp, |v| {
                let p = parse::service_page_with_instances(v)?;
                parse::check_page(p.total, p.items.len(), PAGE_SIZE).map(|()| p)
            })?;
            let n = p.items.len();
            out.extend(p.items);
            // Paged by count: 3.1's `pagesAvailable` is off by one and more.
            if n < PAGE_SIZE || (page * PAGE_SIZE) as u64 >= p.total {
                break (p.total, call);
            }
            page += 1;
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        self.check_total(
            &call,
            &format!("services of namespace `{namespace}`"),
            out.len(),
            total,
        )?;
        Ok(out)
    }

    /// A service from its detail and the instances its list page already carried; `None` when
    /// the node answers that it does not exist (as [`NacosNode::service`]).
    pub async fn service_with(
        &self,
        namespace: &str,
        group: &str,
        name: &str,
        instances: Vec<Instance>,
    ) -> Result<Option<Service>, NodeError> {
        let (d, call, resp) = self
            .call(|d| d.service_detail(namespace, group, name))
            .await?;
        if super::transport::says_not_found(resp.status, &resp.body) {
            return Ok(None);
        }
        let detail = self.read(d, &call, &resp, |v| parse::service_detail(d, v, name))?;
        Ok(Some(parse::service(
            namespace, group, name, detail, instances,
        )))
    }

    /// Whether this node's services come with their instances in the list pages (3.x).
    pub async fn lists_instances_with_services(&self) -> Result<bool, NodeError> {
        Ok(self.kind().await?.1.dialect() == Dialect::V3)
    }
}
