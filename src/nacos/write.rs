//! The node operations that change something, used only by the cache repair: a full reload of a
//! node's config cache and the per-key `dataChange` reload. Both refresh a cache from the node's
//! own DB and never write a config.

use super::dialect::{Call, Dialect};
use super::{NacosNode, NodeError};

/// Add the server identity header (node-to-node endpoints check it) to a call.
fn with_identity(mut call: Call, identity: Option<(&str, &str)>) -> Call {
    call.headers
        .extend(identity.map(|(k, v)| (k.to_owned(), v.to_owned())));
    call
}

impl NacosNode {
    /// Full reload of this node's cache from its DB (asynchronous on the server).
    pub async fn reload_all(&self, identity: Option<(&str, &str)>) -> Result<(), NodeError> {
        let (d, call, resp) = self
            .call(|d| with_identity(d.reload_all(), identity))
            .await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        // 3.x answers in the v3 envelope (`code` 0 when the dump was started); v1 with text.
        if d == Dialect::V3 {
            super::parse::envelope(&resp.body).map_err(|e| self.transport.shape_error(&call, e))?;
        }
        Ok(())
    }

    /// Incremental reload of one config through the HTTP `dataChange` endpoint (Nacos ≤ 2.2.0).
    pub async fn data_change(
        &self,
        namespace: &str,
        group: &str,
        data_id: &str,
        identity: Option<(&str, &str)>,
    ) -> Result<(), NodeError> {
        let now = u128::try_from(crate::clock::now_ms()).unwrap_or(0);
        let call = with_identity(
            Dialect::data_change(namespace, group, data_id, now),
            identity,
        );
        let resp = self.transport.send(&call).await?;
        if resp.status != 200 {
            return Err(self.transport.status_error(&call, &resp));
        }
        Ok(())
    }
}
